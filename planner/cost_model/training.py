"""One optimizer step of a model on a (tp, pp, dp, ZeRO) layout: ``train_step``.

The step runs ``m = global_batch / (dp * micro_batch)`` micro-batches through a 1F1B
pipeline (Narayanan et al. 2021). Per micro-batch, the slowest stage (the last: its
layers plus the output head) does:

- forward GEMMs, FlashAttention and memory-bound elementwise kernels (compute.py);
- backward: twice the forward GEMMs (data and weight gradients), 2.5 times the forward
  attention FLOPs (FlashAttention's backward runs five matmuls to the forward's two,
  Dao et al. 2022) and twice the elementwise traffic;
- recomputation: full = one more forward of every layer (and its TP all-reduces),
  selective = one more forward of the attention core (Korthikanti et al. 2022);
- tensor-parallel communication: 2 all-reduces of ``b*s*h`` forward and 2 backward per
  layer (sequence parallel: a reduce-scatter plus an all-gather each, same volume), on the
  critical path as in Megatron's default (no TP/compute overlap).

Pipeline: the step takes ``(m + p - 1)`` stage-micro-batch times; the ``(p - 1)`` extra ones
are the bubble, ``(p - 1)/m`` of the work. Stage boundaries send ``b*s*h`` each way per
micro-batch (split over TP ranks: Megatron's scatter/gather).

Data parallel, ranks ordered tp-dp-pp as Megatron-Core does (``order="tp-cp-ep-dp-pp"``),
so a DP group strides over the TP ranks:

- ZeRO 0: gradient all-reduce; ZeRO 1/2: reduce-scatter of gradients and all-gather of
  parameters (Megatron's distributed optimizer). Both run after the last backward and
  are *exposed*: Megatron leaves ``overlap_grad_reduce`` off by default, and the 2021
  Megatron runs had no overlap.
- ZeRO 3 (FSDP, what verl trains with): every micro-batch all-gathers parameters before
  forward and again before backward and reduce-scatters gradients (verl accumulates
  gradients without ``no_sync``). FSDP prefetches the next layer's all-gather and
  overlaps the reduce-scatter with the previous layer's backward, so only what exceeds
  the compute of its pass is exposed, plus the first layer's all-gather of each pass.

The optimizer step is a memory-bound Adam over the local shard.
"""

from __future__ import annotations

from planner.cost_model import memory as mem
from planner.cost_model.comm import collective, send_recv_time
from planner.cost_model.compute import causal_context, head_forward, layer_forward, memory_time
from planner.cost_model.costs import StageCost
from planner.cost_model.efficiency import EFFICIENCY, Efficiency
from planner.errors import require
from planner.hardware import GpuSet
from planner.models import BF16_BYTES, ModelSpec
from planner.parallel import ParallelConfig, check_divides_model

ADAM_BYTES_PER_PARAM = 34
"""HBM bytes a fused Adam step moves per parameter: read fp32 parameter, gradient,
momentum and variance (16), write parameter, momentum and variance (12), write the
16-bit working copy (2), plus one fp32 gradient read for the global-norm clip (4)."""

FLASH_BACKWARD_FACTOR = 2.5
"""FlashAttention backward FLOPs over forward FLOPs: it recomputes the scores, so five
matmuls to the forward's two (Dao et al. 2022, Section 3)."""


def check_layout(model: ModelSpec, par: ParallelConfig, gpus: GpuSet) -> None:
    """The layout must use exactly the GPU set and split the model evenly."""
    check_divides_model(model, par.tp)
    require(par.world_size == gpus.num_gpus,
            f"layout {par.describe()} needs tp*pp*dp = {par.world_size} GPUs but has {gpus.num_gpus}: "
            f"make tp*pp*dp equal the GPU count")
    require(par.pp <= model.num_layers,
            f"pp={par.pp} exceeds the {model.num_layers} layers of {model.name}: use pp <= {model.num_layers}")


def stage_layers(model: ModelSpec, pp: int) -> int:
    """Layers on the most-loaded pipeline stage."""
    return -(-model.num_layers // pp)


def _micro_batch_parts(model: ModelSpec, par: ParallelConfig, gpus: GpuSet, tokens: float,
                       tokens_per_seq: float, eff: Efficiency) -> dict[str, float]:
    """Seconds of one micro-batch (forward + backward) on the slowest stage, by cause."""
    sp = par.sequence_parallel and par.tp > 1
    layer = layer_forward(model, tokens, tokens_per_seq, par.tp, gpus.gpu, sp, eff)
    head = head_forward(model, tokens, par.tp, gpus.gpu, "lm", eff)
    layers = stage_layers(model, par.pp)
    fwd = layers * layer.total + head.total
    attention_bwd = FLASH_BACKWARD_FACTOR if eff.flash_attention else 2.0
    bwd = layers * (2 * layer.gemm + attention_bwd * layer.attention + 2 * layer.elementwise) \
        + 2 * head.total
    if par.recompute == "full":
        recompute = layers * layer.total
    elif par.recompute == "selective":
        recompute = layers * layer.attention
    else:
        recompute = 0.0
    all_reduces = 4 + (2 if par.recompute == "full" else 0)
    nbytes = tokens * model.hidden_size * BF16_BYTES
    if sp:
        one = (collective("reduce_scatter", nbytes, par.tp, gpus, 1, eff).time_s
               + collective("all_gather", nbytes, par.tp, gpus, 1, eff).time_s)
    else:
        one = collective("all_reduce", nbytes, par.tp, gpus, 1, eff).time_s
    return {"forward": fwd, "backward": bwd, "recompute": recompute,
            "tp_comm": layers * all_reduces * one}


def _pp_comm(model: ModelSpec, par: ParallelConfig, gpus: GpuSet, tokens: float, m: int,
             eff: Efficiency) -> float:
    """Exposed pipeline send/recv: each stage-micro-batch slot sends activations forward
    and receives gradients backward."""
    if par.pp == 1:
        return 0.0
    nbytes = tokens * model.hidden_size * BF16_BYTES / par.tp
    crosses = gpus.nodes_spanned(2, par.tp * par.dp) > 1
    return (m + par.pp - 1) * 2 * send_recv_time(nbytes, gpus, crosses, eff)


def _dp_comm(par: ParallelConfig, gpus: GpuSet, params: float, m: int, fwd: float, bwd: float,
             layers: int, eff: Efficiency) -> float:
    """Exposed data-parallel communication per step (see the module docstring)."""
    if par.dp == 1:
        return 0.0

    def op(name: str, nbytes: float) -> float:
        return collective(name, nbytes, par.dp, gpus, par.tp, eff).time_s

    grads = params * eff.grad_reduce_bytes
    weights = params * BF16_BYTES
    if par.zero == 0:
        return op("all_reduce", grads)
    if par.zero in (1, 2):
        return op("reduce_scatter", grads) + op("all_gather", weights)
    gather, scatter = op("all_gather", weights), op("reduce_scatter", grads)
    first_layer = gather / max(layers, 1)
    per_micro_batch = max(0.0, gather - fwd) + max(0.0, gather + scatter - bwd) + 2 * first_layer
    return m * per_micro_batch


def dp_bytes_per_gpu(params: float, zero: int, dp: int, micro_batches: int, eff: Efficiency = EFFICIENCY) -> float:
    """Bytes each GPU sends for data parallelism in one step (ring collectives).

    ZeRO 0-2: ``2 (N-1)/N`` of the gradients (an all-reduce, or a reduce-scatter of
    gradients plus an all-gather of parameters); ZeRO 3: two all-gathers of the
    parameters and a reduce-scatter of the gradients, ``3 (N-1)/N`` per micro-batch,
    1.5 times plain DP in equal dtypes (Rajbhandari et al. 2020, Section 7).
    """
    if dp <= 1:
        return 0.0
    share = (dp - 1) / dp
    grads, weights = params * eff.grad_reduce_bytes, params * BF16_BYTES
    if zero == 0:
        return 2 * share * grads
    if zero in (1, 2):
        return share * (grads + weights)
    return micro_batches * share * (2 * weights + grads)


def optimizer_time(params: float, par: ParallelConfig, gpus: GpuSet, eff: Efficiency = EFFICIENCY) -> float:
    """Memory-bound Adam over the parameters this GPU updates."""
    local = params / par.dp if par.zero >= 1 else params
    return memory_time(local * ADAM_BYTES_PER_PARAM, gpus.gpu, eff)


def train_step(model: ModelSpec, par: ParallelConfig, gpus: GpuSet, global_batch: int, seq_len: int,
               tokens_per_seq: float | None = None, eff: Efficiency = EFFICIENCY) -> StageCost:
    """Time and memory of one optimizer step over ``global_batch`` sequences.

    ``seq_len`` is the padded (maximum) length that sizes activation memory;
    ``tokens_per_seq`` (default ``seq_len``) the mean real tokens per sequence that the
    time is computed on (remove-padding / sequence packing, as verl does).
    """
    check_layout(model, par, gpus)
    require(global_batch >= 1 and seq_len >= 1,
            f"global batch and sequence length must be positive, got {global_batch} and {seq_len}")
    per_step = par.dp * par.micro_batch
    require(global_batch % per_step == 0,
            f"global batch {global_batch} is not divisible by dp*micro_batch = {par.dp}*{par.micro_batch}: "
            f"use a multiple of {per_step}")
    tps = float(seq_len if tokens_per_seq is None else tokens_per_seq)
    require(0 < tps <= seq_len, f"tokens per sequence must be in (0, seq_len={seq_len}], got {tps}")
    m = global_batch // per_step
    tokens = par.micro_batch * tps
    mb = _micro_batch_parts(model, par, gpus, tokens, tps, eff)
    params = mem.stage_params(model, par.tp, par.pp)
    layers = stage_layers(model, par.pp)
    slot = mb["forward"] + mb["backward"] + mb["recompute"] + mb["tp_comm"]
    time_parts = {
        "compute": m * (mb["forward"] + mb["backward"]),
        "recompute": m * mb["recompute"],
        "tp_comm": m * mb["tp_comm"],
        "pp_comm": _pp_comm(model, par, gpus, tokens, m, eff),
        "bubble": (par.pp - 1) * slot,
        "dp_comm": _dp_comm(par, gpus, params, m, mb["forward"], mb["backward"] + mb["recompute"], layers, eff),
        "optimizer": optimizer_time(params, par, gpus, eff),
    }
    memory_parts = {**mem.training_state_bytes(model, par), **_activation_parts(model, par, seq_len, m, eff)}
    flops = 3.0 * global_batch * tps * model_forward_flops_per_token(model, tps)
    time_s = sum(time_parts.values())
    info = {
        "flops": flops,
        "tokens_per_s_per_gpu": global_batch * tps / time_s / gpus.num_gpus,
        "tflops_per_gpu": flops / time_s / gpus.num_gpus / 1e12,
        "micro_batches": float(m),
        "dp_bytes_per_gpu": dp_bytes_per_gpu(params, par.zero, par.dp, m, eff),
    }
    return StageCost(time_parts=time_parts, memory_parts=memory_parts, info=info)


def model_forward_flops_per_token(model: ModelSpec, tokens_per_seq: float) -> float:
    """Model FLOPs of one token's forward pass: GEMMs plus causal attention (mean context)."""
    return model.forward_flops_per_token(causal_context(tokens_per_seq))


def _activation_parts(model: ModelSpec, par: ParallelConfig, seq_len: int, m: int,
                      eff: Efficiency) -> dict[str, float]:
    """Transient bytes of the most-loaded stage: the first holds ``min(m, p)`` micro-batches
    of activations, the last one micro-batch plus the logits (both when ``p = 1``)."""
    extra = {"gathered_weights": mem.gathered_weight_bytes(model, par)} if par.zero >= 3 and par.dp > 1 else {}
    logits = mem.logits_bytes(model, par.micro_batch * seq_len, par.tp)
    first = mem.activation_bytes(model, par, seq_len, m, flash_attention=eff.flash_attention)
    if par.pp == 1:
        return {"activations": first, "logits": logits, **extra}
    last = mem.activation_bytes(model, par, seq_len, 1, flash_attention=eff.flash_attention)
    if first >= last + logits:
        return {"activations": first, "logits": 0.0, **extra}
    return {"activations": last, "logits": logits, **extra}
