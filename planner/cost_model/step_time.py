"""Time of inference-engine steps, vectorised over many steps at once.

One engine step is one forward pass over every scheduled token: the prompts being
prefilled this step and one token for each sequence being decoded. Per GPU of a ``tp``
group, a step costs (each part a kernel family, summed because the kernels run one
after another):

- **GEMMs** (projections, MLP or experts, the vocabulary head): ``2 * params`` FLOPs per
  token at the shared size-dependent GEMM efficiency (compute.matmul_efficiency), against
  streaming their weights through HBM once per step; the two combine through
  ``eff.roofline_norm``. Decode steps are weight-bound, prefill steps compute-bound.
  The head runs only on the rows that sample a token (vLLM and TensorRT-LLM compute the
  logits of the last prompt position only). A MoE layer reads the experts its tokens
  touch: ``E * (1 - (1 - k/E)^T)`` of them for ``T`` tokens routed uniformly.
- **attention**: prefill is compute-bound over the causal pairs ``p(p+1)/2`` of each
  prompt (FlashAttention at ``eff.attention_peak_fraction``); decode reads every cached
  K/V byte of the running sequences (vLLM's paged attention) against ``4 * q_size`` FLOPs
  per cached token and layer.
- **elementwise**: the memory-bound kernels (fused residual-add + RMSNorm twice, rotary on
  q/k, the gated activation, the KV-cache write) and the sampler's fp32 logits.
- **TP communication**: two all-reduces of ``tokens * hidden`` bf16 values per layer
  (Megatron-style TP as in vLLM), priced by ``comm.collective``; vLLM does not overlap them.
- **overhead**: ``eff.gen_layer_overhead_s`` per layer (kernel boundaries) plus
  ``eff.gen_step_overhead_s`` of exposed host time per step (Vidur's CPU-overhead terms).

The scalar primitives of compute.py and comm.py are evaluated here in array form with the
same parameters (tests check they agree), so one call prices thousands of steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.cost_model.comm import collective
from planner.cost_model.compute import matmul_efficiency
from planner.cost_model.efficiency import EFFICIENCY, Efficiency
from planner.hardware import GpuSet
from planner.models import BF16_BYTES, ModelSpec

LOGIT_BYTES = 4
"""Logits are sampled in fp32 (vLLM's sampler upcasts them)."""


@dataclass(frozen=True)
class StepLoad:
    """The work of each engine step (arrays of one length, one entry per step)."""

    decode_seqs: np.ndarray
    """Sequences decoding one token this step."""
    decode_context: np.ndarray
    """Cached tokens their attention reads, summed over those sequences."""
    prefill_tokens: np.ndarray
    """Prompt tokens prefilled this step (recomputed tokens of preempted requests included)."""
    prefill_seqs: np.ndarray
    """Prompts whose prefill ends this step (each samples its first token)."""
    prefill_pairs: np.ndarray
    """Causal query-key pairs of those prompts, ``sum p(p+1)/2``."""

    def __len__(self) -> int:
        return len(self.decode_seqs)


@dataclass(frozen=True)
class StepTimes:
    """Seconds per step and cause (arrays aligned with the :class:`StepLoad`)."""

    gemm: np.ndarray
    prefill_attention: np.ndarray
    decode_attention: np.ndarray
    elementwise: np.ndarray
    tp_comm: np.ndarray
    overhead: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return (self.gemm + self.prefill_attention + self.decode_attention + self.elementwise
                + self.tp_comm + self.overhead)


# ---- array forms of the shared primitives -------------------------------------------------
def matmul_seconds(flops, rows, peak_flops: float, eff: Efficiency):
    """``compute.matmul_time`` over arrays: GEMM FLOPs whose M dimension is ``rows``."""
    return np.asarray(flops, dtype=float) / (peak_flops * matmul_efficiency(rows, eff))


def hbm_seconds(nbytes, hbm_bytes_per_s: float, eff: Efficiency):
    """``compute.memory_time`` over arrays."""
    return np.asarray(nbytes, dtype=float) / (hbm_bytes_per_s * eff.hbm_fraction)


def roofline(compute, memory, eff: Efficiency):
    """Combine the compute and memory times of one kernel (``eff.roofline_norm``)."""
    p = eff.roofline_norm
    if np.isinf(p):
        return np.maximum(compute, memory)
    if p == 2.0:
        return np.hypot(compute, memory)
    return (np.power(compute, p) + np.power(memory, p)) ** (1.0 / p)


def all_reduce_affine(nbytes_scale: float, tp: int, gpus: GpuSet, eff: Efficiency) -> tuple[float, float]:
    """``(a, b)`` with ``collective("all_reduce", n) = a + b * n`` for n > 0 on a TP group of
    ``tp`` consecutive ranks (the shared model is affine in the message size)."""
    if tp <= 1:
        return 0.0, 0.0
    small = collective("all_reduce", 1.0, tp, gpus, eff=eff).time_s
    large = collective("all_reduce", 1.0 + nbytes_scale, tp, gpus, eff=eff).time_s
    slope = (large - small) / nbytes_scale
    return small - slope, slope


# ---- per-model constants --------------------------------------------------------------------
@dataclass(frozen=True)
class _Shape:
    """What a step's cost needs of the model on one GPU of a ``tp`` group."""

    layers: int
    dense_params: float      # per layer per GPU: attention + dense MLP (+ shared experts, router)
    expert_params: float     # one routed expert per GPU (0 for dense models)
    experts: int
    experts_per_token: int
    head_params: float       # vocabulary projection per GPU
    attn_flops_per_ctx: float   # decode/prefill attention FLOPs per (query, key) pair, all layers
    kv_bytes_per_token: float   # all layers, one GPU
    elementwise_bytes_per_token: float  # all layers
    vocab: int
    hidden: int


def _shape(model: ModelSpec, tp: int) -> _Shape:
    h = model.hidden_size
    dense = model.attention_params_per_layer / tp
    if model.is_moe:
        dense += model.num_shared_experts * model.expert_params / tp + h * model.num_experts
        mlp_width = (model.experts_per_token + model.num_shared_experts) * model.moe_intermediate_size
    else:
        dense += model.dense_mlp_params_per_layer / tp
        mlp_width = model.intermediate_size
    # elements moved per token and layer: 2 fused add+norm (read x and residual, write both),
    # rotary on q and k, gated activation (read gate and up, write one; GELU reads one),
    # and the K/V written into the cache.
    elements = (8 * h + 2 * (model.q_size + model.kv_size) / tp
                + model.mlp_matrices * mlp_width / tp + 2 * model.kv_size / tp)
    return _Shape(
        layers=model.num_layers, dense_params=dense,
        expert_params=model.expert_params / tp if model.is_moe else 0.0,
        experts=model.num_experts, experts_per_token=model.experts_per_token,
        head_params=h * model.vocab_size / tp,
        attn_flops_per_ctx=model.attention_flops_per_token(1.0) / tp,
        kv_bytes_per_token=model.kv_bytes_per_token(tp),
        elementwise_bytes_per_token=model.num_layers * elements * BF16_BYTES,
        vocab=model.vocab_size, hidden=h,
    )


# ---- the step model -------------------------------------------------------------------------
def step_times(model: ModelSpec, tp: int, gpus: GpuSet, load: StepLoad, eff: Efficiency = EFFICIENCY) -> StepTimes:
    """Seconds of every step in ``load`` on one engine of ``tp`` GPUs of ``gpus``."""
    s = _shape(model, tp)
    gpu = gpus.gpu
    peak, hbm = gpu.peak_tflops * 1e12, gpu.hbm_gbps * 1e9
    decode = np.asarray(load.decode_seqs, dtype=float)
    tokens = decode + load.prefill_tokens
    sampled = decode + load.prefill_seqs
    active = tokens > 0

    def gemm(params, rows, weight_bytes):
        compute = matmul_seconds(2.0 * params * rows, rows, peak, eff)
        return roofline(compute, hbm_seconds(weight_bytes, hbm, eff), eff)

    dense = gemm(s.layers * s.dense_params, tokens, s.layers * s.dense_params * BF16_BYTES)
    head = gemm(s.head_params, sampled, s.head_params * BF16_BYTES)
    time_gemm = dense + head
    if s.experts:
        routed = tokens * s.experts_per_token
        touched = s.experts * (1.0 - (1.0 - s.experts_per_token / s.experts) ** tokens)
        rows = routed / np.maximum(touched, 1.0)
        compute = matmul_seconds(2.0 * s.layers * s.expert_params * routed, rows, peak, eff)
        memory = hbm_seconds(s.layers * s.expert_params * touched * BF16_BYTES, hbm, eff)
        time_gemm = time_gemm + roofline(compute, memory, eff)

    attention_peak = peak * eff.attention_peak_fraction
    prefill_attention = s.attn_flops_per_ctx * np.asarray(load.prefill_pairs, dtype=float) / attention_peak
    context = np.asarray(load.decode_context, dtype=float)
    decode_attention = roofline(s.attn_flops_per_ctx * context / attention_peak,
                                hbm_seconds(context * s.kv_bytes_per_token, hbm, eff), eff)
    elementwise = hbm_seconds(tokens * s.elementwise_bytes_per_token
                              + sampled * s.vocab * LOGIT_BYTES * 2, hbm, eff)

    a, b = all_reduce_affine(1e9, tp, gpus, eff)
    tp_comm = np.where(active, 2 * s.layers * (a + b * tokens * s.hidden * BF16_BYTES), 0.0)
    overhead = np.where(active, s.layers * eff.gen_layer_overhead_s + eff.gen_step_overhead_s, 0.0)
    zero = ~active
    return StepTimes(gemm=np.where(zero, 0.0, time_gemm), prefill_attention=prefill_attention,
                     decode_attention=decode_attention, elementwise=elementwise, tp_comm=tp_comm,
                     overhead=overhead)
