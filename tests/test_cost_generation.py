"""Generation cost model: schedules, step times, memory, published measurements."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from planner.cost_model import compute
from planner.cost_model.batching import continuous_schedule, static_schedule, step_load
from planner.cost_model.comm import collective
from planner.cost_model.efficiency import EFFICIENCY
from planner.cost_model.generation import engine_memory, generate, kv_capacity_tokens, min_generation_tp
from planner.cost_model.step_time import all_reduce_affine, hbm_seconds, matmul_seconds, step_times
from planner.errors import PlanError
from planner.hardware import GiB, gpu_by_name, single_node_group_cluster
from planner.model_loading import load_model
from planner.models import ModelSpec
from planner.parallel import GenerationConfig


def gpu_set(name: str, n: int = 1):
    return single_node_group_cluster(gpu_by_name(name), n, gpus_per_node=min(8, n)).gpu_set(n)


OPT_13B = ModelSpec(name="opt-13b", hidden_size=5120, num_layers=40, num_heads=40, num_kv_heads=40,
                    intermediate_size=20480, vocab_size=50272, mlp="gelu", tied_embeddings=True)


# ---- schedules -------------------------------------------------------------------------------
def test_continuous_schedule_by_hand():
    # 3 requests, 2 slots, outputs 2, 4, 3 tokens. Step 0: prefill r0, r1 (1st tokens).
    # Step 1: decode r0 (done), r1. Step 2: prefill r2, decode r1. Step 3: decode r1 (done), r2.
    # Step 4: decode r2 (done). 5 steps.
    sched = continuous_schedule([5, 5, 5], [2, 4, 3], max_num_seqs=2)
    assert sched.start.tolist() == [0, 0, 2]
    load = step_load(sched)
    assert load.decode_seqs.tolist() == [0, 2, 1, 2, 1]
    assert load.prefill_seqs.tolist() == [2, 0, 1, 0, 0]
    assert load.prefill_tokens.tolist() == [10, 0, 5, 0, 0]
    # context read by decode at step t is prompt + (t - start): step 1: 6 + 6, step 3: 8 + 6
    assert load.decode_context.tolist() == [0, 12, 7, 14, 7]
    assert load.prefill_pairs.tolist() == [30, 0, 15, 0, 0]


def test_generate_runs_the_hand_schedule():
    model = load_model("qwen2.5-0.5b")
    gpus = gpu_set("a100-80gb")
    cost = generate(model, GenerationConfig(max_num_seqs=2), gpus, [2, 4, 3], 5)
    assert cost.info["steps"] == 5
    assert cost.info["peak_batch"] == 2
    expected = step_times(model, 1, gpus, step_load(continuous_schedule([5, 5, 5], [2, 4, 3], 2))).total.sum()
    assert cost.time_s == pytest.approx(expected)
    assert sum(cost.time_parts.values()) == pytest.approx(cost.info["total_time_s"])


def test_kv_bound_schedule_preempts_newest_and_recomputes():
    # footprint = sum(prompt + t - start) + 8 per sequence. Two prompts of 10 at step 0 use
    # 36 + 2t tokens: with room for 60 the cache overflows at step 13; the newest request is
    # preempted with 13 tokens generated, the other finishes after step 19, then the
    # preempted one re-prefills 10 + 13 tokens at step 20 and samples its last 7 tokens.
    sched = continuous_schedule([10, 10], [20, 20], max_num_seqs=2, kv_capacity_tokens=60)
    assert sched.preemptions == 1
    pieces = sorted(zip(sched.request.tolist(), sched.start.tolist(), sched.prompt.tolist(), sched.tokens.tolist()))
    assert pieces == [(0, 0, 10, 20), (1, 0, 10, 13), (1, 20, 23, 7)]
    assert sched.num_steps == 27


def test_kv_bound_schedule_never_exceeds_capacity():
    rng = np.random.default_rng(1)
    outputs = rng.integers(1, 600, 400)
    prompts = rng.integers(16, 300, 400)
    sched = continuous_schedule(prompts, outputs, max_num_seqs=128, kv_capacity_tokens=40_000)
    assert sched.preemptions > 0
    load = step_load(sched)
    used = load.decode_context + load.prefill_tokens + 8 * (load.decode_seqs + load.prefill_seqs)
    assert used.max() <= 40_000
    # every request samples all its tokens exactly once across its pieces
    assert np.bincount(sched.request, sched.tokens, minlength=400).tolist() == outputs.tolist()


def test_static_schedule_pads_to_longest_in_batch():
    sched = static_schedule(np.array([4, 4, 4]), np.array([1, 3, 2]), batch_size=2)
    assert sched.start.tolist() == [0, 0, 3]
    assert step_load(sched).decode_seqs.tolist() == [0, 2, 2, 0, 1]


# ---- the step model --------------------------------------------------------------------------
def test_array_primitives_match_compute_module():
    gpu = gpu_by_name("h100-80gb")
    for flops, rows in ((1e12, 1), (3e13, 100), (5e14, 8192)):
        assert matmul_seconds(flops, rows, gpu.peak_tflops * 1e12, EFFICIENCY) == pytest.approx(
            compute.matmul_time(flops, rows, gpu))
    assert hbm_seconds(1e9, gpu.hbm_gbps * 1e9, EFFICIENCY) == pytest.approx(compute.memory_time(1e9, gpu))
    gpus = gpu_set("h100-80gb", 8)
    a, b = all_reduce_affine(1e9, 8, gpus, EFFICIENCY)
    for nbytes in (2e3, 1e6, 3e8):
        assert a + b * nbytes == pytest.approx(collective("all_reduce", nbytes, 8, gpus).time_s)


def test_tp_communication_only_with_tp():
    model = load_model("qwen2.5-7b")
    one = generate(model, GenerationConfig(tp=1, max_num_seqs=8), gpu_set("h100-80gb", 1), [64] * 8, 128)
    two = generate(model, GenerationConfig(tp=2, max_num_seqs=8), gpu_set("h100-80gb", 2), [64] * 8, 128)
    assert one.time_parts["tp_comm"] == 0
    assert two.time_parts["tp_comm"] > 0
    assert two.info["decode_step_s"] < one.info["decode_step_s"]


def test_decode_is_weight_bound_and_moe_reads_only_touched_experts():
    gpus = gpu_set("h100-80gb", 1)
    dense = load_model("qwen2.5-7b")
    cost = generate(dense, GenerationConfig(max_num_seqs=1), gpus, [16], 16, static=True)
    read_weights = compute.memory_time(dense.weight_bytes(), gpus.gpu)
    assert read_weights < cost.info["decode_step_s"] < 1.5 * read_weights
    moe = load_model("qwen3-30b-a3b")
    moe_cost = generate(moe, GenerationConfig(max_num_seqs=1), gpus, [16], 16, static=True)
    assert moe_cost.info["decode_step_s"] < 0.3 * compute.memory_time(moe.weight_bytes(), gpus.gpu)


def test_distserve_opt13b_prefill_and_decode():
    # DistServe's fitted A100-80GB latency model for OPT-13B at tp1 (notes §1): a 512-token
    # prefill takes 65.6 ms and a batch-1 decode step 20.3 ms. Tolerance: 15%.
    cost = generate(OPT_13B, GenerationConfig(max_num_seqs=1), gpu_set("a100-80gb"), [2], 512, static=True)
    assert cost.info["prefill_s"] == pytest.approx(0.0656, rel=0.15)
    assert cost.info["decode_step_s"] == pytest.approx(0.0203, rel=0.15)


def test_published_generation_measurements():
    from planner.validate import run_validation

    rows = [r for r in run_validation(["generation"]).rows if r.category == "generation"]
    errors = [abs(r.error_pct) for r in rows]
    assert len(errors) >= 7
    assert np.mean(errors) <= 20
    assert max(errors) <= 35


# ---- continuous batching: the long tail ------------------------------------------------------
def test_long_tail_costs_more_than_its_mean():
    model = load_model("qwen2.5-7b")
    gen, gpus = GenerationConfig(max_num_seqs=128), gpu_set("h100-80gb")
    fixed = generate(model, gen, gpus, [300] * 1024, 256)
    tail = generate(model, gen, gpus, ([200] * 9 + [1200]) * 102 + [300] * 4, 256)
    assert np.mean(([200] * 9 + [1200]) * 102 + [300] * 4) == 300
    assert tail.time_s > 1.15 * fixed.time_s
    assert tail.info["tail_s"] > fixed.info["tail_s"]
    assert tail.info["mean_batch"] < fixed.info["mean_batch"]


def test_kv_cache_limits_the_batch():
    model = load_model("llama-2-7b")   # 512 KiB of KV per token
    gpus = gpu_set("a100-80gb")
    roomy = generate(model, GenerationConfig(gpu_memory_utilization=0.9), gpus, [512] * 512, 512)
    tight = generate(model, GenerationConfig(gpu_memory_utilization=0.4), gpus, [512] * 512, 512)
    assert tight.info["peak_batch"] < roomy.info["peak_batch"]
    assert tight.info["peak_batch"] * 512 <= tight.info["kv_capacity_tokens"]
    assert tight.time_s > roomy.time_s


def test_replicas_split_requests():
    model = load_model("qwen2.5-1.5b")
    gpus = gpu_set("h100-80gb", 4)
    lengths = list(np.random.default_rng(0).integers(50, 400, 1024))
    one = generate(model, GenerationConfig(replicas=1), gpus, lengths, 128)
    four = generate(model, GenerationConfig(replicas=4), gpus, lengths, 128)
    assert four.info["engines"] == 4
    assert 2.5 * four.time_s < one.time_s
    # requests are dealt out in turn: sorted lengths do not pile the long ones on one engine
    ordered = generate(model, GenerationConfig(replicas=4), gpus, sorted(lengths), 128)
    assert ordered.time_s == pytest.approx(four.time_s, rel=0.1)


def test_generate_is_fast_enough_for_the_planner():
    model = load_model("qwen2.5-7b")
    gpus = gpu_set("h100-80gb", 8)
    lengths = np.clip(np.random.default_rng(0).lognormal(np.log(300), 0.8, 5120), 1, 1024).astype(int)
    gen = GenerationConfig(replicas=8)
    generate(model, gen, gpus, lengths, 512)
    start = time.perf_counter()
    for _ in range(5):
        generate(model, gen, gpus, lengths, 512)
    assert (time.perf_counter() - start) / 5 < 0.05


# ---- memory and errors ---------------------------------------------------------------------------
def test_engine_memory_fills_the_utilisation_budget():
    model, gpu = load_model("qwen2.5-7b"), gpu_by_name("h100-80gb")
    gen = GenerationConfig(gpu_memory_utilization=0.6)
    parts = engine_memory(model, gen, gpu)
    assert sum(parts.values()) == pytest.approx(0.6 * 80 * GiB)
    assert parts["weights"] == pytest.approx(model.weight_bytes())
    capacity = kv_capacity_tokens(model, gen, gpu)
    assert capacity % 16 == 0
    assert capacity * model.kv_bytes_per_token(1) <= parts["kv_cache"] < (capacity + 16) * model.kv_bytes_per_token(1)
    cost = generate(model, gen, gpu_set("h100-80gb"), [8], 8)
    assert cost.memory_parts["kv_cache"] == pytest.approx(parts["kv_cache"])
    assert cost.static_bytes == pytest.approx(parts["weights"])


def test_weights_that_do_not_fit_name_the_tp():
    model = load_model("qwen2.5-72b")
    with pytest.raises(PlanError, match=r"qwen2\.5-72b generation at tp1 needs 135\.\d GiB of weights per GPU .*"
                                        r"72\.0 GiB is usable at gpu_memory_utilization 0\.9: use tp >= (\d+)") as err:
        generate(model, GenerationConfig(tp=1), gpu_set("a100-80gb"), [1024] * 4, 1024)
    tp = int(err.value.args[0].rsplit(" ", 1)[-1])
    assert tp == min_generation_tp(model, gpu_by_name("a100-80gb"), 0.9, 2048)
    generate(model, GenerationConfig(tp=tp), gpu_set("a100-80gb", tp), [1024] * 4, 1024)
    smaller = [t for t in (1, 2, 4) if t < tp]
    for t in smaller:
        with pytest.raises(PlanError):
            generate(model, GenerationConfig(tp=t), gpu_set("a100-80gb", t), [1024] * 4, 1024)
    assert "\n" not in str(err.value)


def test_one_sequence_longer_than_the_cache_is_an_error():
    model = load_model("llama-2-7b")
    with pytest.raises(PlanError, match="KV-cache room for .* tokens per engine but one sequence needs 200,000"):
        generate(model, GenerationConfig(), gpu_set("a100-80gb"), [100_000], 100_000)


def test_static_batch_that_does_not_fit_names_the_largest():
    model = load_model("llama-2-7b")
    with pytest.raises(PlanError, match=r"use a batch <= (\d+)") as err:
        generate(model, GenerationConfig(max_num_seqs=400), gpu_set("a100-80gb"), [2048] * 400, 2048, static=True)
    fits = int(err.value.args[0].split("<= ")[1].split()[0])
    generate(model, GenerationConfig(max_num_seqs=fits), gpu_set("a100-80gb"), [2048] * fits, 2048, static=True)


@pytest.mark.parametrize("outputs, inputs, message", [
    ([0, 5], 8, "output lengths must be positive integers"),
    ([2.5], 8, "output lengths must be positive integers"),
    ([], 8, "at least one request"),
    ([4, 4], [8, 8, 8], "input_len has 3 entries for 2 requests"),
    ([4], 0, "input lengths must be positive integers"),
])
def test_bad_lengths(outputs, inputs, message):
    with pytest.raises(PlanError, match=message):
        generate(load_model("qwen2.5-0.5b"), GenerationConfig(), gpu_set("a100-80gb"), outputs, inputs)


def test_more_engines_than_gpus_and_bad_tp():
    model = load_model("qwen2.5-7b")
    with pytest.raises(PlanError, match="needs 8 GPUs but the GPU set has 4"):
        generate(model, GenerationConfig(tp=2, replicas=4), gpu_set("h100-80gb", 4), [4], 4)
    with pytest.raises(PlanError, match="does not divide the 28 attention heads"):
        generate(model, GenerationConfig(tp=3), gpu_set("h100-80gb", 4), [4], 4)


def test_efficiency_parameters_move_the_estimate():
    model = load_model("qwen2.5-7b")
    base = generate(model, GenerationConfig(), gpu_set("h100-80gb"), [256] * 256, 256)
    slower = dataclasses.replace(EFFICIENCY, gen_step_overhead_s=EFFICIENCY.gen_step_overhead_s + 1e-3)
    cost = generate(model, GenerationConfig(), gpu_set("h100-80gb"), [256] * 256, 256, eff=slower)
    assert cost.time_s == pytest.approx(base.time_s + 1e-3 * base.info["steps"])
