"""Training and forward-only costs: FLOPs, pipeline bubble, TP/DP communication, memory."""

from dataclasses import replace

import pytest

from planner.cost_model.comm import collective
from planner.cost_model.compute import memory_time
from planner.cost_model.efficiency import EFFICIENCY
from planner.cost_model.inference import forward_pass
from planner.cost_model.memory import stage_params
from planner.cost_model.training import ADAM_BYTES_PER_PARAM, model_forward_flops_per_token, train_step
from planner.errors import PlanError
from planner.hardware import gpu_by_name, single_node_group_cluster
from planner.models import ModelSpec
from planner.parallel import ParallelConfig

LLAMA_7B = ModelSpec("llama-2-7b", 4096, 32, 32, 32, 11008, 32000)
GPT_175B = ModelSpec("gpt-175b", 12288, 96, 96, 96, 49152, 51200, mlp="gelu")


def gpus(n, gpu="a100-80gb"):
    return single_node_group_cluster(gpu_by_name(gpu), n).gpu_set(n)


# ---- FLOPs -------------------------------------------------------------------------------
def test_flops_per_token_close_to_6nd_for_short_sequences():
    # 6ND (Kaplan et al. 2020) counts the embedding table, which does no GEMM (2% of 7B).
    cost = train_step(LLAMA_7B, ParallelConfig(dp=8), gpus(8), 64, 128)
    per_token = cost.info["flops"] / (64 * 128)
    assert per_token == pytest.approx(6 * LLAMA_7B.num_params, rel=0.03)


def test_flops_match_narayanan_formula_up_to_causal_attention():
    # Narayanan et al. 2021 (no recompute): 72 B s l h^2 (1 + s/(6h) + V/(12 l h)), with
    # attention over the full s x s scores. Causal attention halves the s/(6h) term.
    b, s, l, h, v = 8, 2048, GPT_175B.num_layers, GPT_175B.hidden_size, GPT_175B.vocab_size
    ours = 3 * b * s * model_forward_flops_per_token(GPT_175B, s)
    narayanan = 72 * b * s * l * h**2 * (1 + s / (6 * h) + v / (12 * l * h))
    causal = 72 * b * s * l * h**2 * (1 + (s + 1) / (12 * h) + v / (12 * l * h))
    assert ours == pytest.approx(causal, rel=1e-6)
    assert ours / narayanan == pytest.approx(1.0, abs=s / (12 * h) + 0.001)


def test_moe_time_follows_active_experts_memory_all_experts():
    def moe(k):
        return ModelSpec("moe", 2048, 8, 16, 16, 0, 32000, num_experts=64, experts_per_token=k,
                         moe_intermediate_size=1024)
    par = ParallelConfig(dp=8, zero=0)
    few, many = train_step(moe(2), par, gpus(8), 64, 2048), train_step(moe(8), par, gpus(8), 64, 2048)
    assert many.info["flops"] > 1.5 * few.info["flops"]
    assert many.time_parts["compute"] > few.time_parts["compute"]
    assert many.memory_parts["weights"] == few.memory_parts["weights"]


# ---- pipeline and tensor parallelism -------------------------------------------------------
def test_pipeline_bubble_is_p_minus_1_over_m():
    model = ModelSpec("m", 4096, 32, 32, 32, 11008, 32000)
    par = ParallelConfig(tp=2, pp=4, dp=1, zero=1, micro_batch=1)
    cost = train_step(model, par, gpus(8), 16, 2048)
    work = cost.time_parts["compute"] + cost.time_parts["recompute"] + cost.time_parts["tp_comm"]
    assert cost.info["micro_batches"] == 16
    assert cost.time_parts["bubble"] == pytest.approx(work * (4 - 1) / 16)
    no_pp = train_step(model, ParallelConfig(tp=2, pp=1, dp=4, zero=1), gpus(8), 16, 2048)
    assert no_pp.time_parts["bubble"] == 0


def test_tp_communication_four_all_reduces_per_layer_six_with_full_recompute():
    par = ParallelConfig(tp=8, dp=1, zero=1)
    base = train_step(LLAMA_7B, par, gpus(8), 4, 2048)
    one = collective("all_reduce", 2048 * 4096 * 2, 8, gpus(8)).time_s
    assert base.time_parts["tp_comm"] == pytest.approx(4 * 4 * 32 * one)
    full = train_step(LLAMA_7B, replace(par, recompute="full"), gpus(8), 4, 2048)
    assert full.time_parts["tp_comm"] == pytest.approx(1.5 * base.time_parts["tp_comm"])
    single = train_step(LLAMA_7B, ParallelConfig(dp=8, zero=3), gpus(8), 8, 2048)
    assert single.time_parts["tp_comm"] == 0


def test_full_recompute_costs_a_forward_and_saves_activations():
    par = ParallelConfig(dp=8, zero=3)
    none = train_step(LLAMA_7B, par, gpus(8), 64, 4096)
    full = train_step(LLAMA_7B, replace(par, recompute="full"), gpus(8), 64, 4096)
    assert full.time_parts["recompute"] == pytest.approx(none.time_parts["compute"] / 3, rel=0.15)
    assert full.memory_parts["activations"] < none.memory_parts["activations"] / 5


# ---- data parallelism ---------------------------------------------------------------------
def test_zero3_moves_1_5x_the_bytes_of_plain_dp():
    eff = replace(EFFICIENCY, grad_reduce_bytes=2)
    z0 = train_step(LLAMA_7B, ParallelConfig(dp=8, zero=0, micro_batch=8), gpus(8), 64, 512, eff=eff)
    z3 = train_step(LLAMA_7B, ParallelConfig(dp=8, zero=3, micro_batch=8), gpus(8), 64, 512, eff=eff)
    assert z3.info["dp_bytes_per_gpu"] == pytest.approx(1.5 * z0.info["dp_bytes_per_gpu"])
    psi = stage_params(LLAMA_7B, 1, 1)
    assert z0.info["dp_bytes_per_gpu"] == pytest.approx(2 * psi * 2 * 7 / 8)


def test_dp_all_reduce_exposed_fsdp_overlapped():
    many = gpus(64)
    z0 = train_step(LLAMA_7B, ParallelConfig(dp=64, zero=0), many, 64, 4096)
    all_reduce = collective("all_reduce", stage_params(LLAMA_7B, 1, 1) * 4, 64, many).time_s
    assert z0.time_parts["dp_comm"] == pytest.approx(all_reduce)
    z3 = train_step(LLAMA_7B, ParallelConfig(dp=64, zero=3), many, 64, 4096)
    assert z3.time_parts["dp_comm"] < 0.05 * z3.time_s


def test_optimizer_is_memory_bound_adam_over_local_shard():
    cost = train_step(LLAMA_7B, ParallelConfig(dp=8, zero=3), gpus(8), 8, 1024)
    local = LLAMA_7B.num_params / 8
    assert cost.time_parts["optimizer"] == pytest.approx(memory_time(local * ADAM_BYTES_PER_PARAM, gpu_by_name("a100-80gb")))


# ---- sequences, memory and errors ---------------------------------------------------------
def test_remove_padding_cuts_time_not_memory():
    par = ParallelConfig(dp=8, zero=3)
    padded = train_step(LLAMA_7B, par, gpus(8), 64, 4096)
    packed = train_step(LLAMA_7B, par, gpus(8), 64, 4096, tokens_per_seq=1024)
    assert packed.time_s < 0.3 * padded.time_s
    assert packed.memory_parts == padded.memory_parts


def test_memory_parts_and_throughput_info():
    cost = train_step(LLAMA_7B, ParallelConfig(dp=8, zero=3), gpus(8), 64, 4096)
    assert {"weights", "gradients", "optimizer", "activations", "logits"} <= set(cost.memory_parts)
    assert cost.static_bytes == pytest.approx(16 * LLAMA_7B.num_params / 8)
    assert cost.info["tokens_per_s_per_gpu"] == pytest.approx(64 * 4096 / cost.time_s / 8)
    assert 100 < cost.info["tflops_per_gpu"] < 0.8 * 312
    assert sum(cost.time_parts.values()) == pytest.approx(cost.time_s)


def test_bad_layouts_raise_plan_errors():
    with pytest.raises(PlanError, match="not divisible by dp\\*micro_batch"):
        train_step(LLAMA_7B, ParallelConfig(dp=8), gpus(8), 60, 1024)
    with pytest.raises(PlanError, match="needs tp\\*pp\\*dp = 4 GPUs but has 8"):
        train_step(LLAMA_7B, ParallelConfig(dp=4), gpus(8), 8, 1024)
    with pytest.raises(PlanError, match="does not divide the 32 attention heads"):
        train_step(LLAMA_7B, ParallelConfig(tp=3, dp=1), gpus(3), 8, 1024)


# ---- forward-only ----------------------------------------------------------------------------
def test_forward_pass_heads_and_sharding():
    par = ParallelConfig(dp=8, zero=3, micro_batch=4)
    lm = forward_pass(LLAMA_7B, par, gpus(8), 256, 2048)
    value = forward_pass(LLAMA_7B, par, gpus(8), 256, 2048, head="value")
    assert lm.memory_parts["logits"] > 0 and value.memory_parts["logits"] == 0
    assert value.time_s < lm.time_s
    assert lm.memory_parts["weights"] == pytest.approx(2 * LLAMA_7B.num_params / 8)
    replicated = forward_pass(LLAMA_7B, replace(par, zero=0), gpus(8), 256, 2048)
    assert replicated.memory_parts["weights"] == pytest.approx(2 * LLAMA_7B.num_params)
    train = train_step(LLAMA_7B, par, gpus(8), 256, 2048)
    assert 2.5 < train.time_s / lm.time_s < 3.6
    with pytest.raises(PlanError, match="unknown head"):
        forward_pass(LLAMA_7B, par, gpus(8), 8, 128, head="reward")
