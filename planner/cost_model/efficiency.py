"""Every calibrated parameter of the cost model, in one place, with its source.

Parameters are few and physical: the fraction of a datasheet peak that real kernels and
collectives reach, and fixed per-call overheads. They are shared by every GPU, model and
layout; there is no per-case correction anywhere in the cost model. ``plan validate``
checks the whole model against published measurements (planner/data/measurements.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Efficiency:
    # ---- compute (shared) -----------------------------------------------------------------
    matmul_peak_fraction: float = 0.72
    """Best fraction of dense BF16 peak a large GEMM reaches end to end (cuBLAS on big
    shapes reaches 0.75-0.9 of peak; Calculon uses 0.95-0.99 at >=128 GFLOP before its
    other losses). Set so that large prefills reproduce TensorRT-LLM's 2048-token TTFT."""
    matmul_half_tokens: float = 48.0
    """GEMM efficiency falls with the token (M) dimension as m / (m + m_half): a GEMM of
    m_half rows reaches half the best rate (tile quantisation and launch cost; Calculon's
    efficiency-by-size table shows the same knee)."""
    attention_peak_fraction: float = 0.5
    """FlashAttention-2 forward reaches about 50-70% of A100 peak, backward less
    (Dao 2023, Fig. 5-6)."""
    hbm_fraction: float = 0.8
    """Achieved fraction of HBM bandwidth for streaming kernels (Calculon: 0.9 at >=100 MB;
    DistServe's 13B decode floor implies about 0.65-0.8 with overheads)."""

    # ---- communication (shared) -------------------------------------------------------------
    nvlink_fraction: float = 0.8
    """NCCL bus bandwidth over the per-direction NVLink rate: A100 230/300 = 0.77,
    H100 370/450 = 0.82 (nccl-tests issues 149 and 212)."""
    pcie_fraction: float = 0.7
    """Bus bandwidth over the PCIe per-direction rate for GPUs without NVLink."""
    network_fraction: float = 0.9
    """Achieved fraction of InfiniBand line rate (Calculon; notes: about 0.9x line rate)."""
    collective_step_latency_us: float = 5.0
    """Latency of one step of a ring collective inside a node (launch + sync); across
    nodes the cluster's inter-node latency applies."""

    # ---- training -------------------------------------------------------------------------
    # (owned by planner/cost_model/training.py)

    # ---- generation -----------------------------------------------------------------------
    # (owned by planner/cost_model/generation.py)


EFFICIENCY = Efficiency()
"""The parameters in force. Functions take an ``eff`` argument defaulting to this."""
