"""Collectives: latency + bandwidth over rings, inside a node or across nodes.

Bus-bandwidth factors follow nccl-tests (PERFORMANCE.md): all-reduce moves
``2(n-1)/n`` of the message per GPU, all-gather and reduce-scatter ``(n-1)/n``,
broadcast 1. The slowest link of the ring sets the pace: NVLink/PCIe inside a node,
the per-GPU network share when the group spans nodes (each GPU of a DGX-style node has
its own NIC, so groups running side by side do not share it).
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.cost_model.efficiency import EFFICIENCY, Efficiency
from planner.errors import require
from planner.hardware import GpuSet

OPS = ("all_reduce", "all_gather", "reduce_scatter", "broadcast")


@dataclass(frozen=True)
class CommCost:
    time_s: float
    algbw_gbps: float
    """Message bytes over time (nccl-tests' algbw)."""
    busbw_gbps: float
    """algbw times the op's bus factor (nccl-tests' busbw): comparable across group sizes."""

    def to_dict(self) -> dict:
        return {"time_s": self.time_s, "algbw_gbps": self.algbw_gbps, "busbw_gbps": self.busbw_gbps}


def bus_factor(op: str, n: int) -> float:
    """Bytes each GPU sends per message byte for ``op`` over a ring of ``n``."""
    require(op in OPS, f"unknown collective {op!r}: use one of {', '.join(OPS)}")
    if n <= 1:
        return 0.0
    if op == "all_reduce":
        return 2 * (n - 1) / n
    if op in ("all_gather", "reduce_scatter"):
        return (n - 1) / n
    return 1.0


def ring_steps(op: str, n: int) -> int:
    if n <= 1:
        return 0
    return 2 * (n - 1) if op == "all_reduce" else n - 1


def link_busbw_gbps(gpus: GpuSet, nodes_spanned: int, eff: Efficiency = EFFICIENCY) -> float:
    """Achievable bus bandwidth of a ring inside one node, or across ``nodes_spanned`` nodes."""
    intra = gpus.gpu.intra_node_gbps * (eff.nvlink_fraction if gpus.gpu.nvlink else eff.pcie_fraction)
    if nodes_spanned <= 1:
        return intra
    return min(intra, gpus.inter_node_gbps * eff.network_fraction)


def collective(op: str, nbytes: float, size: int, gpus: GpuSet, stride: int = 1,
               eff: Efficiency = EFFICIENCY) -> CommCost:
    """Cost of ``op`` on a message of ``nbytes`` over ``size`` ranks ``stride`` apart in ``gpus``."""
    require(nbytes >= 0, f"message size must be non-negative, got {nbytes}")
    require(size >= 1, f"group size must be >= 1, got {size}")
    if size == 1 or nbytes == 0:
        return CommCost(0.0, 0.0, 0.0)
    spanned = gpus.nodes_spanned(size, stride)
    busbw = link_busbw_gbps(gpus, spanned, eff)
    step_latency = eff.collective_step_latency_us if spanned <= 1 else gpus.inter_node_latency_us
    if spanned > 1:
        # NCCL crosses nodes with trees/hierarchical rings: latency grows with the number of
        # nodes and the in-node hops, not with every rank.
        steps = ring_steps(op, spanned) + ring_steps(op, min(size, gpus.gpus_per_node))
    else:
        steps = ring_steps(op, size)
    factor = bus_factor(op, size)
    time_s = steps * step_latency * 1e-6 + nbytes * factor / (busbw * 1e9)
    algbw = nbytes / time_s / 1e9
    return CommCost(time_s=time_s, algbw_gbps=algbw, busbw_gbps=algbw * factor)
