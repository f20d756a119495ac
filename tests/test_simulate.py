"""The dry run reproduces the plan: with fixed response lengths the simulated iteration
(or one-step-off period) equals the CP-SAT schedule's objective, stage by stage; the
controller runs each pool's calls in the plan's order and keeps the rollout's weights as
fresh (sync) or one step stale (one-step-off) as the mode says; memory peaks where the
plan says; runs are reproducible per seed.

Plans come from real searches on small jobs (qwen2.5-1.5b, 64 prompts x 4, 256-token
prompts) so the file runs in about half a minute on two cores.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from executor.controller import Controller, StageCall, plan_jobs
from executor.sim import simulate
from executor.sim.backend import SimBackend
from executor.sim.run import run_simulation
from planner.cli.search_cmd import add_arguments, build_inputs
from planner.plan import plan_to_dict
from planner.replay import replay_plan, replay_search
from planner.search import run_search

SMALL = ["--actor", "qwen2.5-1.5b", "--prompts", "64", "--samples", "4", "--prompt-len", "256"]
FIXED = [*SMALL, "--response-len", "256"]
LONG_TAILED = [*SMALL, "--response-dist", "lognormal:200,150,max=512"]

_plans: dict[tuple, dict] = {}


def make_plan(cluster: str, algo: str, *extra: str) -> dict:
    """The plan JSON of a real search (cached per argv), as `plan ... --out` writes it."""
    argv = ("--cluster", cluster, "--algo", algo, *extra)
    if argv not in _plans:
        parser = argparse.ArgumentParser()
        add_arguments(parser, "search")
        args = parser.parse_args([*argv, "--time-limit", "3"])
        _plans[argv] = json.loads(json.dumps(plan_to_dict(run_search(build_inputs(args), hybridflow=False))))
    return _plans[argv]


def run_of(plan: dict, iterations: int, seed: int = 0, slot=None):
    return run_simulation(replay_plan(plan), iterations, seed, generation_after=slot)


SYNC_CASES = [
    ("a100x8", "ppo", ()),            # one pool: everything colocated
    ("a100x8", "grpo", ()),
    ("a100x64", "ppo", ()),           # split pools
    ("a100x64", "grpo", ()),
    ("a100x64", "grpo", ("--colocate", "actor,rollout,ref")),
    ("h100x128", "ppo", ()),
    ("h100x128", "grpo", ()),
]


@pytest.mark.parametrize("cluster,algo,extra", SYNC_CASES)
def test_fixed_lengths_reproduce_the_plans_iteration_time(cluster, algo, extra):
    plan = make_plan(cluster, algo, *FIXED, *extra)
    sim = simulate(replay_plan(plan), iterations=3, what_if=False).to_dict()
    objective = plan["iteration_time_s"]
    assert sim["iteration_time_s"] == pytest.approx(objective, rel=0.01)
    assert sim["iteration_times_s"] == pytest.approx([objective] * 3, rel=1e-9)
    for job in plan["schedule"]:
        assert sim["stages"][job["job"]]["mean_s"] == pytest.approx(job["time_s"], rel=1e-9, abs=1e-12), job["job"]
    assert sim["predicted_iteration_time_s"] == objective


def test_split_and_colocated_plans_are_both_covered():
    assert len(make_plan("a100x8", "ppo", *FIXED)["pools"]) == 1
    assert len(make_plan("a100x64", "ppo", *FIXED)["pools"]) >= 2
    colocated = make_plan("a100x64", "grpo", *FIXED, "--colocate", "actor,rollout,ref")
    assert len(colocated["pools"]) == 1


def test_calls_follow_the_plans_schedule_in_every_pool():
    plan = make_plan("a100x64", "ppo", *FIXED)
    run = run_of(plan, 2)
    for k in range(2):
        for pool in plan["pools"]:
            planned = [j["job"] for j in plan["schedule"] if pool["id"] in j["pools"]]
            ran = [r.job for r in sorted(run.records, key=lambda r: r.start_s) if r.iteration == k and pool["id"] in r.pools]
            assert ran == planned
    # iteration k+1 starts when k ends (verl's on-policy loop)
    first_of_1 = min(r.start_s for r in run.records if r.iteration == 1)
    assert first_of_1 == pytest.approx(max(r.end_s for r in run.records if r.iteration == 0))


def test_sync_mode_generates_with_the_latest_weights():
    run = run_of(make_plan("a100x8", "grpo", *FIXED), 3)
    gens = [r for r in run.records if r.job == "rollout.generate"]
    syncs = {r.iteration: r for r in run.records if r.job == "rollout.sync_weights"}
    assert [g.args["weights_version"] for g in gens] == [0, 1, 2]
    for g in gens[1:]:
        assert g.start_s >= syncs[g.iteration - 1].end_s


ONE_STEP_OFF_CASES = [("a100x8", "ppo"), ("a100x8", "grpo"), ("a100x64", "grpo")]


@pytest.mark.parametrize("cluster,algo", ONE_STEP_OFF_CASES)
def test_one_step_off_period_matches_the_plans_objective(cluster, algo):
    plan = make_plan(cluster, algo, *FIXED, "--mode", "one-step-off")
    assert plan["mode"] == "one-step-off"
    sim = simulate(replay_plan(plan), iterations=6, what_if=False).to_dict()
    assert len(sim["iteration_time_steady_s"]) == 4  # fill and drain left out
    assert sim["iteration_time_s"] == pytest.approx(plan["iteration_time_s"], rel=0.01)


def test_one_step_off_overlaps_generation_with_training_on_stale_weights():
    plan = make_plan("a100x64", "grpo", *FIXED, "--mode", "one-step-off")
    replayed = replay_plan(plan)
    run = run_simulation(replayed, 4, generation_after=None)
    by = {(r.job, r.iteration): r for r in run.records}
    assert [by[("rollout.generate", k)].args["weights_version"] for k in range(4)] == [0, 0, 1, 2]
    for k in range(3):
        nxt, update = by[("rollout.generate", k + 1)], by[("actor.update", k)]
        assert nxt.start_s < update.end_s  # generation k+1 runs while iteration k trains
        if k >= 1:  # ... with the weights synced after update k-1
            assert nxt.start_s >= by[("rollout.sync_weights", k - 1)].end_s
        # the sync of update k waits for generation k+1 to finish
        assert by[("rollout.sync_weights", k)].start_s >= nxt.end_s


def test_memory_peaks_at_the_plans_peak_and_returns_to_resident():
    plan = make_plan("a100x64", "ppo", *FIXED)
    sim = simulate(replay_plan(plan), iterations=2, what_if=False).to_dict()
    for planned, simulated in zip(plan["pools"], sim["pools"]):
        assert simulated["peak_memory_gib"] == pytest.approx(planned["peak_memory_gib"], abs=1e-4)
        assert simulated["peak_memory_gib"] <= simulated["capacity_gib"]
        timeline = np.array(simulated["memory_timeline"])
        assert timeline[:, 1].max() == pytest.approx(simulated["peak_memory_gib"])
        assert timeline[-1, 1] == pytest.approx(timeline[0, 1])  # back to what stays resident
        assert np.all(np.diff(timeline[:, 0]) >= 0)
        parts = simulated["memory_peak_breakdown_gib"]
        assert {"weights", "optimizer", "activations", "kv_cache"} <= set(parts)
        assert sum(parts.values()) == pytest.approx(simulated["peak_memory_gib"], rel=1e-9)
    rollout_pool = next(p for p in sim["pools"] if "rollout" in p["roles"])
    gen = next(e for e in sim["events"] if e["job"] == "rollout.generate")
    during = [g for t, g in rollout_pool["memory_timeline"] if gen["start_s"] <= t < gen["end_s"]]
    assert max(during) > rollout_pool["memory_timeline"][0][1]  # the engine's KV cache is taken while it generates


def test_same_seed_same_run_other_seed_other_lengths():
    plan = make_plan("a100x8", "grpo", *LONG_TAILED)
    a = simulate(replay_plan(plan), iterations=3, seed=7, what_if=False).to_dict()
    b = simulate(replay_plan(plan), iterations=3, seed=7, what_if=False).to_dict()
    c = simulate(replay_plan(plan), iterations=3, seed=8, what_if=False).to_dict()
    assert a == b
    assert a["response_lengths"] != c["response_lengths"]
    assert a["iteration_times_s"] != c["iteration_times_s"]
    # sampled lengths make iterations differ; the plan priced quantiles of the same distribution
    assert len(set(a["iteration_times_s"])) == 3
    assert a["iteration_time_s"] == pytest.approx(plan["iteration_time_s"], rel=0.15)


def test_more_iterations_keep_the_first_ones():
    plan = make_plan("a100x8", "grpo", *LONG_TAILED)
    short, long_ = run_of(plan, 2, seed=3), run_of(plan, 4, seed=3)
    assert long_.iteration_times[:2] == pytest.approx(short.iteration_times)


def test_summary_schema():
    plan = make_plan("a100x64", "ppo", *LONG_TAILED)
    sim = simulate(replay_plan(plan), iterations=2).to_dict()
    assert sim["kind"] == "rlplan.simulation" and sim["version"] == 1
    assert (sim["cluster"], sim["algo"], sim["mode"], sim["seed"], sim["iterations"]) == ("a100x64", "ppo", "sync", 0, 2)
    assert sim["iteration_time_p95_s"] >= min(sim["iteration_times_s"])
    assert sim["tokens_per_s_per_gpu"] == pytest.approx(sim["tokens_per_s"] / plan["gpus_used"])
    for job, st in sim["stages"].items():
        assert set(st) >= {"role", "kind", "pools", "mean_s", "p95_s", "predicted_s"}
    assert sim["stages"]["advantages"]["role"] is None and sim["stages"]["advantages"]["pools"] == []
    assert sim["stages"]["rollout.sync_weights"]["role"] == "rollout"
    for pool in sim["pools"]:
        assert pool["busy_fraction"] + pool["idle_fraction"] == pytest.approx(1.0)
        assert 0 < pool["busy_fraction"] <= 1
    assert sim["critical_path"][-1] in {e["job"] for e in sim["events"] if e["iteration"] == 1}
    assert sim["critical_path"][0] == "rollout.generate"
    assert len(sim["events"]) == 2 * len(plan["schedule"])
    assert set(sim["events"][0]) == {"job", "roles", "kind", "pools", "iteration", "start_s", "end_s", "args"}
    lengths = sim["response_lengths"]
    assert sum(lengths["counts"]) == 2 * 64 * 4
    assert len(lengths["bin_edges"]) == len(lengths["counts"]) + 1 and lengths["max"] <= 512
    assert sim["baselines"] == plan["baselines"]
    json.dumps(sim)  # plain JSON


def test_replay_search_equals_replay_of_the_file():
    parser = argparse.ArgumentParser()
    add_arguments(parser, "search")
    result = run_search(build_inputs(parser.parse_args(["--cluster", "a100x8", "--algo", "grpo", *FIXED])),
                        hybridflow=False)
    plan = plan_to_dict(result)
    direct, from_file = replay_search(result, plan), replay_plan(json.loads(json.dumps(plan)))
    assert direct.objective_s == from_file.objective_s == plan["iteration_time_s"]
    assert not from_file.stale
    assert {r: c.key for r, c in direct.assignment.choice.items()} == \
        {r: c.key for r, c in from_file.assignment.choice.items()}


def test_controller_submits_every_job_once_per_iteration_with_named_inputs():
    plan = make_plan("a100x8", "ppo", *FIXED)
    replayed = replay_plan(plan)
    submitted: list[tuple[StageCall, dict]] = []

    class Recording(SimBackend):
        def submit(self, call, deps):
            submitted.append((call, dict(deps)))
            return super().submit(call, deps)

    Controller(plan, replayed.inputs.dataflow, Recording(replayed)).run(2)
    jobs = [j["job"] for j in plan["schedule"]]
    assert [c.job for c, _ in submitted] == jobs * 2
    calls = {(c.job, c.iteration): (c, d) for c, d in submitted}
    advantages, deps = calls[("advantages", 0)]
    assert set(deps) == {"scores", "old_log_probs", "ref_log_probs", "values"} and advantages.on_driver
    sync, deps = calls[("rollout.sync_weights", 1)]
    assert sync.kind == "sync" and sync.method == "sync_weights" and sync.role == "rollout" and set(deps) == {"weights"}
    gen, deps = calls[("rollout.generate", 1)]
    assert set(deps) == {"weights"} and gen.method == "generate"
    assert calls[("critic.values", 0)][0].method == "values"
    assert [j.name for j in plan_jobs(plan, replayed.inputs.dataflow)] == jobs
