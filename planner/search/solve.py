"""Solve one placement problem to proven optimality with small CP-SAT models.

(A problem of a few dozen candidates, such as a baseline's, goes to the one exact model.)

The exact model over every candidate finds the optimum quickly but proves it slowly: its
linear relaxation is weak and hundreds of near-identical candidates per pool size must
all be ruled out. So the proof comes from a relaxation instead (``relaxation.py``):

1. *incumbent*: the hint (the best baseline, a real plan) or, without one, the exact model
   over a handful of candidates per role and pool size (the fastest ones and the leanest
   in memory) gives a real plan and its time U;
2. *prune*: a candidate with a stage longer than U cannot be in a better plan (every
   objective is at least each job's duration), and U fixes a fine time unit (U / 10^7);
3. *bound*: the relaxed model (group ideals, durations rounded down) gives a lower bound L;
   its plan is *realised* by the exact model over the members of the groups it chose,
   with its pools, which may improve U;
4. stop when U <= L (to the rounding of the time unit): U is optimal over the whole
   candidate space. Otherwise the chosen groups are split into their members and step 3
   repeats; a group of one member is exact, so the loop ends. At the time limit, U is
   returned as feasible with its gap (U - L) / U.
"""

from __future__ import annotations

import time

from planner.search.candidates import Candidate
from planner.search.cpsat import Constraints, CpSatModel, Solution
from planner.search.pricing import Assignment, Pricer
from planner.search.relaxation import Relaxation

UNIT_FRACTION = 1e-7
"""The time unit as a fraction of the incumbent's time: rounding error far below any gap that matters."""
INCUMBENT_FASTEST = 2
"""Fastest candidates per role and pool size offered to the incumbent's model."""
EXACT_MAX_CANDIDATES = 64
"""Up to this many candidates in all (a baseline's fixed pools, a tiny cluster) the one
exact model proves its optimum sooner than the loop's three models (h100x64 ppo
baselines: 0.011 s vs 0.039 s each, same plans)."""


def lean_candidates(cands: list[Candidate], fastest: int = INCUMBENT_FASTEST) -> list[Candidate]:
    """Per node group and pool size: the ``fastest`` quickest candidates and the leanest in
    resident, transient and total memory (what a crowded pool needs)."""
    by_size: dict[tuple, list[Candidate]] = {}
    for c in cands:
        by_size.setdefault((c.group, c.num_gpus), []).append(c)
    out: list[Candidate] = []
    for members in by_size.values():
        speed = lambda c: sum(c.stage_times.values())  # noqa: E731
        picks = sorted(members, key=speed)[:fastest]
        picks += [min(members, key=lambda c: (c.static_bytes, speed(c))),
                  min(members, key=lambda c: (c.transient_bytes, speed(c))),
                  min(members, key=lambda c: (c.static_bytes + c.transient_bytes, speed(c)))]
        out.extend(c for i, c in enumerate(picks) if all(c is not p for p in picks[:i]))
    return out


def _solve_model(model: CpSatModel, time_limit_s: float, workers: int):
    if not model.build():
        return None
    return model.solve(max(time_limit_s, 0.01), workers)


class _Best:
    """The best real plan found so far, priced by the exact evaluator."""

    def __init__(self, pricer: Pricer) -> None:
        self.pricer, self.assignment, self.time_s = pricer, None, float("inf")

    def offer(self, sol: Solution | None) -> None:
        if sol is not None:
            self.offer_assignment(sol.assignment)

    def offer_assignment(self, assignment: Assignment) -> None:
        ev = self.pricer.evaluate(assignment)
        if ev is not None and ev.objective_s < self.time_s:
            self.assignment, self.time_s = assignment, ev.objective_s


def solve_placement(pricer: Pricer, space: dict[str, list[Candidate]], constraints: Constraints | None,
                    time_limit_s: float, workers: int, hint: Assignment | None = None) -> tuple[Solution | None, bool]:
    """The best plan over ``space`` under ``constraints`` and whether none exists (proven)."""
    t0 = time.perf_counter()
    left = lambda: time_limit_s - (time.perf_counter() - t0)  # noqa: E731
    constraints = constraints or Constraints()
    space = {r: [c for c in cands if constraints.allows(r, c)] for r, cands in space.items()}
    if any(not cands for cands in space.values()):
        return None, True
    if sum(map(len, space.values())) <= EXACT_MAX_CANDIDATES:
        return _solve_exact(pricer, space, constraints, time_limit_s, workers, t0)

    best = _Best(pricer)
    if hint is not None and all(constraints.allows(r, c) for r, c in hint.choice.items()):
        # A real plan is incumbent enough: the proof below improves on it where it can.
        # (Solving the lean model first measured slower: h100x64 ppo 0.44 s vs 0.24 s,
        # h100x1024 0.64 s vs 0.53 s, same optimum.)
        best.offer_assignment(hint)
    if best.assignment is None:
        lean = {r: lean_candidates(cands) for r, cands in space.items()}
        # A good incumbent is enough here (the proof comes later): a third of the time at most.
        best.offer(_solve_model(CpSatModel(pricer, lean, constraints), left() / 3, workers))

    if best.assignment is not None:
        limit = best.time_s * (1 + 1e-9)
        space = {r: [c for c in cands if max(c.stage_times.values(), default=0.0) <= limit] for r, cands in space.items()}
        unit_s = best.time_s * UNIT_FRACTION
    else:
        unit_s = None
    relaxation = Relaxation(pricer, space)
    # Rounding down loses at most a unit per job and per edge on a path; a few more cover
    # the one-step-off objective's subtraction.
    slack_units = len(pricer.graph.jobs) + len(pricer.graph.edges) + 4
    bound_s = 0.0
    while True:
        relaxed = CpSatModel(pricer, relaxation.ideals, constraints, unit_s=unit_s, sync=relaxation, round_down=True)
        unit_s = relaxed.unit_s
        relaxed.build()
        sol = relaxed.solve(max(left(), 0.01), workers)
        if sol is None:
            if relaxed.proven_infeasible and best.assignment is None:
                return None, True
            break
        bound_s = max(bound_s, (sol.bound_units - slack_units) * unit_s)
        chosen = {r: next(i for i, x in enumerate(relaxed.cands[r]) if x is c) for r, c in sol.assignment.choice.items()}
        members = {r: relaxation.groups[r][i] for r, i in chosen.items()}
        pools: dict[int, list[str]] = {}
        for r, p in sol.assignment.role_pool.items():
            pools.setdefault(p, []).append(r)
        realise = Constraints(partition=list(pools.values()), num_gpus=constraints.num_gpus, allow=constraints.allow)
        best.offer(_solve_model(CpSatModel(pricer, members, realise, unit_s=unit_s), left(), workers))
        if best.time_s <= bound_s + 2 * slack_units * unit_s or left() <= 0:
            break
        if not any([relaxation.split(r, i) for r, i in chosen.items()]):
            break
    return _result(best, bound_s, unit_s, 2 * slack_units, t0), False


def _solve_exact(pricer: Pricer, space: dict[str, list[Candidate]], constraints: Constraints, time_limit_s: float,
                 workers: int, t0: float) -> tuple[Solution | None, bool]:
    model = CpSatModel(pricer, space, constraints)
    sol = _solve_model(model, time_limit_s, workers)
    if sol is None:
        return None, model.proven_infeasible
    sol.wall_s = time.perf_counter() - t0
    return sol, False


def _result(best: _Best, bound_s: float, unit_s: float, tolerance_units: int, t0: float) -> Solution | None:
    """``optimal`` when the plan is within ``tolerance_units`` of the proven bound (the
    rounding of the time unit, about a millionth of the objective)."""
    if best.assignment is None:
        return None
    objective_units = int(round(best.time_s / unit_s))
    bound_units = int(bound_s / unit_s)
    optimal = objective_units <= bound_units + tolerance_units
    return Solution(assignment=best.assignment, objective_units=objective_units,
                    bound_units=objective_units if optimal else bound_units, unit_s=unit_s,
                    status="optimal" if optimal else "feasible", wall_s=time.perf_counter() - t0)
