"""Generation in the dry run: continuous batching over sampled lengths, checked against
hand-built step loads; the long tail grows with the distribution's spread; the length-cap
what-if; empirical lengths from a file; memory of an offloaded model.

The plans here are placed by hand (every role on one GPU, the rollout one tp1 engine),
written in the real plan format through ``plan_to_dict``, so the hand computation knows
which engine serves which request.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from algos import build_dataflow
from executor.sim import simulate
from executor.sim.memory import call_parts, resident_parts
from executor.sim.run import run_simulation
from planner.clusters import load_cluster
from planner.cost_model.step_time import StepLoad, step_times
from planner.hardware import GiB
from planner.model_loading import load_model
from planner.plan import plan_to_dict
from planner.replay import replay_plan
from planner.search.candidates import CandidateBuilder
from planner.search.inputs import SearchInputs, SearchOptions
from planner.search.pricing import Assignment, Pricer
from planner.search.run import SearchResult
from planner.workload import LengthDistribution, Workload

MODEL = "qwen2.5-0.5b"
PROMPT = 64


def hand_plan(workload: Workload, algo: str = "grpo", pool_gpus: int = 1, offload: set[str] = frozenset()) -> dict:
    """A plan with every role in one pool of ``pool_gpus`` GPUs of a100x8; each role takes its
    fastest candidate (offloaded ones for roles in ``offload``) that fits with the others."""
    cluster = load_cluster("a100x8")
    dataflow = build_dataflow(algo, workload)
    model = load_model(MODEL)
    inputs = SearchInputs(cluster, algo, dataflow, {r: model for r in dataflow.roles}, workload, SearchOptions())
    builder, pricer = CandidateBuilder(inputs), Pricer(inputs)
    options = []
    for role in inputs.roles:
        cands = [c for c in builder.candidates(role, 0, pool_gpus) if c.offload == (role in offload)
                 and getattr(c.layout, "replicas", 1) * getattr(c.layout, "tp", 1) == pool_gpus]
        options.append(sorted(cands, key=lambda c: sum(c.stage_times.values()))[:3])
    for combo in itertools.product(*options):
        assignment = Assignment({r: 0 for r in inputs.roles}, dict(zip(inputs.roles, combo)))
        evaluation = pricer.evaluate(assignment)
        if evaluation is not None:
            result = SearchResult(inputs, pricer, assignment, evaluation, "hand-placed", 0.0, 0.0, 0.0)
            return plan_to_dict(result)
    raise AssertionError("no hand placement fits")


def workload(response: LengthDistribution, prompts: int = 4, samples: int = 4) -> Workload:
    return Workload(prompts=prompts, samples_per_prompt=samples, prompt_len=PROMPT, response=response, mini_batches=1)


def engine_seconds(plan: dict, load: StepLoad) -> float:
    """Seconds of the hand-built steps on the plan's rollout engine (the cost model's step prices)."""
    cluster = load_cluster("a100x8")
    tp = plan["roles"]["rollout"]["layout"]["tp"]
    return float(step_times(load_model(MODEL), tp, cluster.gpu_set(tp), load).total.sum())


def generation_calls(run) -> list:
    return [r for r in run.records if r.job == "rollout.generate"]


def test_long_tail_generation_equals_the_hand_computed_steps(tmp_path):
    """16 requests on one engine, all admitted at once (16 < max_num_seqs): step 0
    prefills every prompt; step s decodes the requests longer than s. Lengths are drawn
    from a file of mostly short and a few long responses."""
    lengths_file = tmp_path / "lengths.txt"
    lengths_file.write_text("\n".join(map(str, [8] * 9 + [40] * 2 + [300])) + "\n")
    plan = hand_plan(workload(LengthDistribution.parse(f"file:{lengths_file}")))
    assert plan["roles"]["rollout"]["layout_str"] == "tp1x1"
    run = run_simulation(replay_plan(plan), iterations=2, seed=5)
    for call in generation_calls(run):
        drawn = run.backend.sampler.drawn[(call.iteration, "rollout.generate")]
        assert set(drawn.tolist()) <= {8, 40, 300} and drawn.size == 16
        steps = np.arange(int(drawn.max()))
        decoding = np.array([(drawn > s).sum() if s > 0 else 0 for s in steps], dtype=float)
        n = drawn.size
        load = StepLoad(decode_seqs=decoding, decode_context=decoding * (PROMPT + steps),
                        prefill_tokens=np.where(steps == 0, n * PROMPT, 0).astype(float),
                        prefill_seqs=np.where(steps == 0, n, 0).astype(float),
                        prefill_pairs=np.where(steps == 0, n * PROMPT * (PROMPT + 1) / 2, 0).astype(float))
        assert call.end_s - call.start_s == pytest.approx(engine_seconds(plan, load), rel=1e-9)
        assert call.args["max_response_tokens"] == drawn.max()


def test_queueing_for_a_slot_equals_the_hand_computed_waves():
    """300 requests of 32 tokens on one engine of 256 slots (vLLM's max_num_seqs): 256 run
    steps 0-31, the other 44 wait and run steps 32-63."""
    plan = hand_plan(workload(LengthDistribution("fixed", 32, max_len=32), prompts=75))
    run = run_simulation(replay_plan(plan), iterations=1)
    (call,) = generation_calls(run)
    steps = np.arange(64)
    wave = np.where(steps < 32, 256, 44).astype(float)
    local = steps % 32
    first = local == 0
    load = StepLoad(decode_seqs=np.where(first, 0, wave), decode_context=np.where(first, 0, wave * (PROMPT + local)),
                    prefill_tokens=np.where(first, wave * PROMPT, 0), prefill_seqs=np.where(first, wave, 0),
                    prefill_pairs=np.where(first, wave * PROMPT * (PROMPT + 1) / 2, 0))
    assert call.end_s - call.start_s == pytest.approx(engine_seconds(plan, load), rel=1e-9)
    assert call.end_s - call.start_s == pytest.approx(plan["schedule"][0]["time_s"], rel=1e-9)


def test_generation_time_grows_with_the_tail():
    times, tails = [], []
    for std in (50, 200, 400):
        dist = LengthDistribution("lognormal", 200.0, float(std), max_len=2048)
        plan = hand_plan(workload(dist, prompts=8, samples=8))
        first = simulate(replay_plan(plan), iterations=3, seed=1, what_if=False).to_dict()
        again = simulate(replay_plan(plan), iterations=3, seed=1, what_if=False).to_dict()
        assert first["long_tail"] == again["long_tail"]  # deterministic per seed
        times.append(first["long_tail"]["generation_time_s"])
        tails.append(first["long_tail"]["tail_wait_s"])
    assert times[0] < times[1] < times[2]
    assert tails[0] < tails[1] < tails[2]


def test_fixed_lengths_have_no_tail_and_no_caps():
    plan = hand_plan(workload(LengthDistribution("fixed", 128, max_len=128)))
    tail = simulate(replay_plan(plan), iterations=2).to_dict()["long_tail"]
    assert tail["tail_wait_s"] == 0 and tail["tail_fraction"] == 0 and tail["what_if_caps"] == []


def test_length_caps_shorten_generation_without_changing_the_plan():
    plan = hand_plan(workload(LengthDistribution("lognormal", 200.0, 300.0, max_len=2048), prompts=8, samples=8))
    before = {k: v for k, v in plan.items()}
    sim = simulate(replay_plan(plan), iterations=3, seed=2).to_dict()
    tail = sim["long_tail"]
    caps = tail["what_if_caps"]
    assert [c["cap_tokens"] for c in caps] == sorted((c["cap_tokens"] for c in caps), reverse=True) and len(caps) >= 2
    gens = [tail["generation_time_s"]] + [c["generation_time_s"] for c in caps]
    assert all(a > b for a, b in zip(gens, gens[1:]))
    cut = [c["samples_truncated_fraction"] for c in caps]
    assert all(0 < a < b for a, b in zip(cut, cut[1:]))
    assert all(c["speedup"] > 1 for c in caps)
    assert caps[0]["iteration_time_s"] == pytest.approx(tail["what_if_baseline_iteration_time_s"] / caps[0]["speedup"])
    assert 0 < tail["tail_wait_s"] < tail["generation_time_s"] and tail["tail_fraction"] == pytest.approx(
        tail["tail_wait_s"] / tail["generation_time_s"])
    assert plan == before


def test_offloaded_model_holds_nothing_between_its_calls():
    plan = hand_plan(workload(LengthDistribution("fixed", 64, max_len=64)), offload={"ref"})
    assert plan["roles"]["ref"]["offload"] is True
    replayed = replay_plan(plan)
    ref = replayed.assignment.choice["ref"]
    assert resident_parts(ref) == {}
    added = call_parts(ref, "ref.log_prob", {})
    assert added["weights"] > 0
    assert sum(added.values()) == pytest.approx(ref.transient_bytes)
    run = run_simulation(replayed, iterations=1)
    (call,) = [r for r in run.records if r.job == "ref.log_prob"]
    assert "offload" in call.args
    timeline = run.backend.memory.timeline[0]
    during = [g for t, g in timeline if t == call.start_s]
    assert during[-1] - timeline[0][1] == pytest.approx(sum(added.values()) / GiB)
    actor = replayed.assignment.choice["actor"]
    assert sum(resident_parts(actor).values()) == pytest.approx(actor.static_bytes)
