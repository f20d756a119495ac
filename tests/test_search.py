"""The search: CP-SAT optimum equals exhaustive enumeration, never loses to a baseline,
fits memory, uses at most the cluster, and more GPUs never hurt."""

from __future__ import annotations

import itertools

import pytest

from algos import build_dataflow
from planner.clusters import load_cluster
from planner.cost_model import memory as mem
from planner.model_loading import load_model
from planner.search import run_search
from planner.search.candidates import CandidateBuilder
from planner.search.cpsat import CpSatModel
from planner.search.hybridflow import set_partitions
from planner.search.inputs import SearchInputs, SearchOptions
from planner.search.pricing import Assignment, Pricer
from planner.search.relaxation import Relaxation
from planner.search.solve import EXACT_MAX_CANDIDATES, solve_placement
from planner.search.space import candidate_space
from planner.workload import LengthDistribution, Workload


def make_inputs(cluster="a100x8", algo="grpo", actor="qwen2.5-1.5b", prompts=64, samples=4, max_gpus=None,
                response=None, mode="sync", **opts) -> SearchInputs:
    workload = Workload(prompts=prompts, samples_per_prompt=samples, prompt_len=256,
                        response=response or LengthDistribution("fixed", mean=256, max_len=256), mini_batches=2)
    dataflow = build_dataflow(algo, workload)
    model = load_model(actor)
    models = {role: model for role in dataflow.roles}
    options = SearchOptions(max_gpus=max_gpus, mode=mode, time_limit_s=60, **opts)
    return SearchInputs(load_cluster(cluster), algo, dataflow, models, workload, options)


def thin(space, per_size=2):
    """Keep at most ``per_size`` candidates per (role, group, size): small enough to enumerate."""
    out = {}
    for role, cands in space.items():
        seen: dict = {}
        for c in cands:
            seen.setdefault((c.group, c.num_gpus), []).append(c)
        out[role] = [c for group in seen.values() for c in group[:per_size]]
    return out


def brute_force(pricer: Pricer, space) -> float:
    """Best objective over every partition, pool size and candidate: the reference answer."""
    roles = list(pricer.inputs.roles)
    best = float("inf")
    for partition in set_partitions(roles):
        sizes_per_pool = []
        for members in partition:
            common = set.intersection(*({(c.group, c.num_gpus) for c in space[r]} for r in members))
            sizes_per_pool.append(sorted(common))
        for sizes in itertools.product(*sizes_per_pool):
            per_role = []
            for members, gn in zip(partition, sizes):
                for r in members:
                    per_role.append([c for c in space[r] if (c.group, c.num_gpus) == gn])
            for picks in itertools.product(*per_role):
                role_pool, choice = {}, {}
                k = 0
                for p, members in enumerate(partition):
                    for r in members:
                        role_pool[r], choice[r] = p, picks[k]
                        k += 1
                ev = pricer.evaluate(Assignment(role_pool, choice))
                if ev is not None:
                    best = min(best, ev.objective_s)
    return best


@pytest.mark.parametrize("cluster,algo,mode", [
    ("a100x8", "grpo", "sync"),
    ("h100x8", "grpo", "one-step-off"),
    ("a100x16", "remax", "sync"),
])
def test_cpsat_optimum_equals_exhaustive_enumeration(cluster, algo, mode):
    inputs = make_inputs(cluster, algo, mode=mode)
    space = thin(candidate_space(inputs, CandidateBuilder(inputs)))
    pricer = Pricer(inputs)
    model = CpSatModel(pricer, space)
    assert model.build()
    sol = model.solve(60, 2)
    assert sol is not None and sol.status == "optimal"
    found = pricer.evaluate(sol.assignment).objective_s
    assert found == pytest.approx(brute_force(pricer, space), rel=1e-4)
    # The solver's own objective is the evaluator's, to the integer time unit.
    assert sol.objective_units * sol.unit_s == pytest.approx(found, rel=1e-4)


def test_ppo_exhaustive_on_small_cluster():
    inputs = make_inputs("a100x8", "ppo", actor="qwen2.5-0.5b", prompts=32)
    space = thin(candidate_space(inputs, CandidateBuilder(inputs)), per_size=1)
    pricer = Pricer(inputs)
    model = CpSatModel(pricer, space)
    assert model.build()
    sol = model.solve(60, 2)
    assert sol.status == "optimal"
    assert pricer.evaluate(sol.assignment).objective_s == pytest.approx(brute_force(pricer, space), rel=1e-4)


@pytest.mark.parametrize("cluster,algo,actor,mode", [
    ("a100x8", "ppo", "qwen2.5-0.5b", "sync"),
    ("a100x16", "grpo", "qwen2.5-7b", "sync"),
    ("h100x32+a100x32", "ppo", "qwen2.5-1.5b", "sync"),
    ("h100x8", "grpo", "qwen2.5-1.5b", "one-step-off"),
])
def test_relaxation_proof_finds_the_exact_models_optimum(cluster, algo, actor, mode):
    """The search proves optimality with small models (incumbent, relaxation, refinement);
    on the full candidate space it must land on the optimum of the one exact model."""
    inputs = make_inputs(cluster, algo, actor=actor, mode=mode, prompts=128,
                         response=LengthDistribution("lognormal", mean=300, std=200, max_len=1024))
    pricer = Pricer(inputs)
    space = candidate_space(inputs, CandidateBuilder(inputs), pricer)
    assert sum(map(len, space.values())) > EXACT_MAX_CANDIDATES, "small enough for the one exact model: no loop"
    sol, infeasible = solve_placement(pricer, space, None, 60, 2)
    assert not infeasible and sol.status == "optimal" and sol.gap < 1e-5
    exact = CpSatModel(pricer, space)
    assert exact.build()
    reference = exact.solve(60, 2)
    assert reference.status == "optimal"
    assert pricer.evaluate(sol.assignment).objective_s == pytest.approx(
        pricer.evaluate(reference.assignment).objective_s, rel=1e-5)


def test_relaxed_model_is_a_lower_bound_and_splitting_tightens_it():
    inputs = make_inputs("a100x8", "ppo", actor="qwen2.5-0.5b", prompts=64)
    pricer = Pricer(inputs)
    space = candidate_space(inputs, CandidateBuilder(inputs), pricer)
    exact = CpSatModel(pricer, space)
    exact.build()
    optimum = pricer.evaluate(exact.solve(60, 2).assignment).objective_s
    relaxation = Relaxation(pricer, space)
    assert sum(map(len, relaxation.groups.values())) < sum(map(len, space.values()))
    # Every candidate is covered by a group whose ideal is no worse on any count.
    for role, cands in space.items():
        for c in cands:
            assert any(all(i.stage_times[s] <= c.stage_times[s] for s in c.stage_times)
                       and i.static_bytes <= c.static_bytes and i.transient_bytes <= c.transient_bytes
                       for g, i in zip(relaxation.groups[role], relaxation.ideals[role]) if c in g)
    bounds = []
    for _ in range(2):
        relaxed = CpSatModel(pricer, relaxation.ideals, sync=relaxation, round_down=True)
        relaxed.build()
        sol = relaxed.solve(60, 2)
        bounds.append(sol.objective_units * sol.unit_s)
        chosen = {role: next(i for i, x in enumerate(relaxation.ideals[role]) if x is c)
                  for role, c in sol.assignment.choice.items()}
        for role, i in chosen.items():
            relaxation.split(role, i)
    assert bounds[0] <= optimum * (1 + 1e-9)
    assert bounds[0] - 1e-9 <= bounds[1] <= optimum * (1 + 1e-9)


@pytest.fixture(scope="module")
def grpo_a100x16():
    return run_search(make_inputs("a100x16", "grpo", actor="qwen2.5-7b", prompts=128, samples=4,
                                  response=LengthDistribution("lognormal", mean=300, std=200, max_len=1024)))


def test_plan_never_loses_to_a_baseline(grpo_a100x16):
    result = grpo_a100x16
    assert result.status == "optimal"
    assert any(b.evaluation is not None for b in result.baselines)
    for b in result.baselines:
        if b.evaluation is not None:
            assert result.evaluation.objective_s <= b.evaluation.objective_s * (1 + 1e-6), b.baseline.name


def test_plan_fits_memory_and_cluster(grpo_a100x16):
    result = grpo_a100x16
    a = result.assignment
    assert sum(n for _, n in a.pools.values()) <= 16
    gpu = result.inputs.cluster.gpu
    for peak in result.pricer.pool_memory(a).values():
        assert peak <= mem.usable_bytes(gpu)
    for role, cand in a.choice.items():
        assert cand.num_gpus == a.pools[a.role_pool[role]][1]


def test_more_gpus_never_make_the_optimum_worse():
    times = []
    for max_gpus in (8, 16, 32):
        result = run_search(make_inputs("a100x32", "grpo", actor="qwen2.5-1.5b", max_gpus=max_gpus, prompts=128))
        assert result.status == "optimal"
        times.append(result.evaluation.objective_s)
    assert times[0] >= times[1] - 1e-9 >= times[2] - 2e-9


def test_colocate_constraint_is_respected():
    result = run_search(make_inputs("a100x8", "ppo", actor="qwen2.5-0.5b", prompts=32, colocate=(("actor", "critic"),)))
    a = result.assignment
    assert a.role_pool["actor"] == a.role_pool["critic"]
