"""Time of compute-bound and memory-bound work on one GPU."""

from __future__ import annotations

from planner.cost_model.efficiency import EFFICIENCY, Efficiency
from planner.hardware import GPUSpec


def matmul_efficiency(tokens: float, eff: Efficiency = EFFICIENCY) -> float:
    """Fraction of peak a GEMM with ``tokens`` rows (the batch x sequence dimension) reaches."""
    tokens = max(tokens, 1.0)
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
