"""One search from inputs to a result: candidates, baselines, CP-SAT, lower bound."""

from __future__ import annotations

import gc
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from planner.errors import PlanError
from planner.search.baselines import Baseline, baselines_for
from planner.search.bounds import LowerBound, lower_bound
from planner.search.candidates import CandidateBuilder
from planner.search.pricing import Assignment, Evaluation, Pricer
from planner.search.solve import solve_placement
from planner.search.space import candidate_space


BASELINE_LIMIT_S = 10.0
"""Time limit of each baseline's constrained solve (they are small; past it the best found counts)."""
BASELINE_WORKERS = 1
"""CP-SAT workers of a baseline's solve: its pools are fixed, so the models are small and one
worker proves them sooner than a portfolio starts (benchmarks/search.py, h100x64 ppo: the
three baselines take 0.06 s with one worker, 0.2 s with two)."""


@dataclass
class BaselineResult:
    baseline: Baseline
    assignment: Assignment | None = None
    evaluation: Evaluation | None = None
    why_not: str = ""
    extra: dict = field(default_factory=dict)


@dataclass
class SearchResult:
    inputs: object
    pricer: Pricer
    assignment: Assignment
    evaluation: Evaluation
    status: str
    gap: float
    search_time_s: float
    solver_time_s: float
    baselines: list[BaselineResult] = field(default_factory=list)
    lower_bound: LowerBound | None = None
    num_candidates: int = 0


def _hybridflow_baseline(inputs, builder, pricer) -> BaselineResult:
    from planner.search.hybridflow import hybridflow_search

    hf = hybridflow_search(inputs, builder, pricer, time_limit_s=inputs.options.time_limit_s)
    b = Baseline("HybridFlow Alg. 1",
                 "HybridFlow's device-mapping enumeration (colocation sets x GPU allocations x per-model "
                 "parallelism, stage-barrier cost), re-priced by rlplan's evaluator", None)
    extra = {"own_estimate_s": hf.d_cost_s, "search_time_s": hf.search_time_s, "placements": hf.placements,
             "allocations": hf.allocations, "timed_out": hf.timed_out}
    if hf.assignment is None:
        return BaselineResult(b, why_not="found no layout that fits", extra=extra)
    evaluation = pricer.evaluate(hf.assignment)
    if evaluation is None:
        return BaselineResult(b, why_not="its mapping does not fit rlplan's memory model", extra=extra)
    return BaselineResult(b, hf.assignment, evaluation, extra=extra)


@contextmanager
def _collector_paused():
    """The candidate space is some 10^5 small objects without reference cycles; the cyclic
    collector's full passes over them took 0.11 s of a 1 s search (h100x64 ppo). Nothing
    a search builds needs it, so it waits until the search is done."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def run_search(inputs, progress=None, hybridflow: bool = True) -> SearchResult:
    """Find the best plan for ``inputs``; ``progress(msg)`` is told what is happening.
    ``hybridflow=False`` skips HybridFlow's enumeration (the benchmark times it apart)."""
    with _collector_paused():
        return _search(inputs, progress, hybridflow)


def _search(inputs, progress, hybridflow: bool) -> SearchResult:
    t0 = time.perf_counter()
    say = progress or (lambda msg: None)
    opts = inputs.options
    say("pricing candidate layouts")
    builder = CandidateBuilder(inputs)
    pricer = Pricer(inputs)
    space = candidate_space(inputs, builder, pricer)

    say("pricing baselines")
    base_results = []
    for b in baselines_for(inputs):
        if b.constraints is None:
            base_results.append(BaselineResult(b, why_not=b.why_not))
            continue
        sol, infeasible = solve_placement(pricer, space, b.constraints, min(opts.time_limit_s, BASELINE_LIMIT_S),
                                            BASELINE_WORKERS)
        if sol is None:
            why = "does not fit in memory on this cluster" if infeasible else f"no layout found in {BASELINE_LIMIT_S:g} s"
            if infeasible and (opts.colocate or opts.rollout_tp or opts.max_gpus):
                why = "does not fit in memory or breaks your --colocate/--rollout-tp/--max-gpus asks"
            base_results.append(BaselineResult(b, why_not=why))
            continue
        base_results.append(BaselineResult(b, sol.assignment, pricer.evaluate(sol.assignment)))

    if hybridflow:
        say("running HybridFlow's Algorithm 1")
        base_results.append(_hybridflow_baseline(inputs, builder, pricer))

    say("solving the CP-SAT model")
    feasible_bases = [r for r in base_results if r.evaluation is not None]
    hint = min(feasible_bases, key=lambda r: r.evaluation.objective_s).assignment if feasible_bases else None
    if hint is not None and any(r not in hint.choice for r in inputs.roles):
        hint = None
    solution, infeasible = solve_placement(pricer, space, None, opts.time_limit_s, opts.workers, hint)
    if solution is None and infeasible:
        raise PlanError(
            f"no layout of {inputs.algo} fits on {inputs.cluster.name}: its roles do not fit together in memory "
            "under your constraints; use more GPUs, smaller models, fewer --colocate asks, or allow offload")
    if solution is None:
        raise PlanError(f"the solver found no layout within --time-limit {opts.time_limit_s:g} s: raise it")
    evaluation = pricer.evaluate(solution.assignment)
    bound = lower_bound(inputs, opts.max_gpus or inputs.cluster.num_gpus)
    return SearchResult(
        inputs=inputs, pricer=pricer, assignment=solution.assignment, evaluation=evaluation,
        status=solution.status, gap=solution.gap, search_time_s=time.perf_counter() - t0,
        solver_time_s=solution.wall_s, baselines=base_results, lower_bound=bound,
        num_candidates=sum(len(v) for v in space.values()),
    )
