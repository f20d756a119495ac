"""Time of compute-bound and memory-bound work on one GPU, and of one transformer layer.

The primitives (``matmul_time``, ``attention_time``, ``memory_time``) are shared by the
training, forward-only and generation models. ``layer_forward`` and ``head_forward``
price the forward pass of one decoder layer / the output head over a micro-batch on one
GPU of a tensor-parallel group; backward and recomputation are multiples of those parts
(training.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.cost_model.efficiency import EFFICIENCY, Efficiency
from planner.cost_model.memory import activation_bytes_per_layer, logits_bytes
from planner.hardware import GPUSpec
from planner.models import ModelSpec


def matmul_efficiency(tokens, eff: Efficiency = EFFICIENCY):
    """Fraction of peak a GEMM with ``tokens`` rows (the batch x sequence dimension) reaches
    (a number, or an array of them)."""
    tokens = np.maximum(tokens, 1.0)
    return eff.matmul_peak_fraction * tokens / (tokens + eff.matmul_half_tokens)


def matmul_time(flops: float, tokens: float, gpu: GPUSpec, eff: Efficiency = EFFICIENCY) -> float:
    """Seconds for ``flops`` of GEMM work whose M dimension is ``tokens``."""
    if flops <= 0:
        return 0.0
    return flops / (gpu.peak_tflops * 1e12 * matmul_efficiency(tokens, eff))


def attention_time(flops: float, gpu: GPUSpec, eff: Efficiency = EFFICIENCY) -> float:
    """Seconds for the QK^T / AV FLOPs of a fused attention kernel."""
    if flops <= 0:
        return 0.0
    return flops / (gpu.peak_tflops * 1e12 * eff.attention_peak_fraction)


def memory_time(nbytes: float, gpu: GPUSpec, eff: Efficiency = EFFICIENCY) -> float:
    """Seconds to stream ``nbytes`` through HBM."""
    if nbytes <= 0:
        return 0.0
    return nbytes / (gpu.hbm_gbps * 1e9 * eff.hbm_fraction)


# ---- one transformer layer ---------------------------------------------------------------
@dataclass(frozen=True)
class LayerTimes:
    """Forward seconds of one layer (or the head) over one micro-batch on one GPU."""

    gemm: float
    attention: float
    elementwise: float

    @property
    def total(self) -> float:
        return self.gemm + self.attention + self.elementwise


def causal_context(tokens_per_seq: float) -> float:
    """Mean number of keys a query attends to in a causal sequence of this length."""
    return (tokens_per_seq + 1.0) / 2.0


def layer_gemm_time(model: ModelSpec, tokens: float, tp: int, gpu: GPUSpec, eff: Efficiency = EFFICIENCY) -> float:
    """Projections and MLP of one layer over ``tokens`` rows, split ``tp`` ways.

    A MoE layer runs the router and each active expert's GEMMs on the tokens routed to it
    (``tokens * k / E`` rows on average), which is what makes fine-grained experts slow.
    """
    attn = 2.0 * model.attention_params_per_layer / tp * tokens
    time = matmul_time(attn, tokens, gpu, eff)
    if not model.is_moe:
        return time + matmul_time(2.0 * model.dense_mlp_params_per_layer / tp * tokens, tokens, gpu, eff)
    router = 2.0 * model.hidden_size * model.num_experts * tokens
    routed = 2.0 * model.experts_per_token * model.expert_params / tp * tokens
    shared = 2.0 * model.num_shared_experts * model.expert_params / tp * tokens
    rows_per_expert = tokens * model.experts_per_token / model.num_experts
    return (time + matmul_time(router, tokens, gpu, eff) + matmul_time(routed, rows_per_expert, gpu, eff)
            + matmul_time(shared, tokens, gpu, eff))


def layer_forward(model: ModelSpec, tokens: float, tokens_per_seq: float, tp: int, gpu: GPUSpec,
                  sequence_parallel: bool = False, eff: Efficiency = EFFICIENCY) -> LayerTimes:
    """Forward time of one decoder layer over a micro-batch of ``tokens`` (packed sequences
    of ``tokens_per_seq``), causal mask.

    Non-GEMM kernels are memory-bound: their HBM traffic is ``eff.elementwise_traffic``
    times the bytes the layer stores for backward (Korthikanti et al. 2022). With
    FlashAttention the attention core is one fused kernel over the causal half of the
    scores; without it (``eff.flash_attention`` False) it is two batched GEMMs over the
    full score matrix plus softmax and dropout streaming the ``5as`` stored score bytes.
    """
    stored = activation_bytes_per_layer(model, 1, 1, tp=tp, sequence_parallel=sequence_parallel) * tokens
    elementwise = memory_time(eff.elementwise_traffic * stored, gpu, eff)
    heads = model.num_heads / tp
    if eff.flash_attention:
        flops = 4.0 * model.q_size * causal_context(tokens_per_seq) * tokens / tp
        attention = attention_time(flops, gpu, eff)
    else:
        flops = 4.0 * model.q_size * tokens_per_seq * tokens / tp
        scores = 5.0 * heads * tokens_per_seq * tokens
        attention = matmul_time(flops, tokens_per_seq, gpu, eff) + memory_time(eff.elementwise_traffic * scores, gpu, eff)
    return LayerTimes(gemm=layer_gemm_time(model, tokens, tp, gpu, eff), attention=attention, elementwise=elementwise)


def head_forward(model: ModelSpec, tokens: float, tp: int, gpu: GPUSpec, head: str = "lm",
                 eff: Efficiency = EFFICIENCY) -> LayerTimes:
    """Output head over ``tokens``: the vocabulary projection and log-softmax for ``lm``
    (vocab-parallel over ``tp``), a scalar projection for ``value`` (critic, reward)."""
    if head == "value":
        return LayerTimes(gemm=matmul_time(2.0 * model.hidden_size * tokens, tokens, gpu, eff),
                          attention=0.0, elementwise=0.0)
    flops = 2.0 * model.hidden_size * model.vocab_size / tp * tokens
    return LayerTimes(gemm=matmul_time(flops, tokens, gpu, eff), attention=0.0,
                      elementwise=memory_time(eff.elementwise_traffic * logits_bytes(model, tokens, tp), gpu, eff))
