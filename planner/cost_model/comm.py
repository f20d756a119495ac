"""Collectives and point-to-point transfers: latency + bandwidth, inside a node or across.

Bus-bandwidth factors follow nccl-tests (PERFORMANCE.md): all-reduce moves
``2(n-1)/n`` of the message per GPU, all-gather and reduce-scatter ``(n-1)/n``,
broadcast 1. Time is ``launch + steps * hop latency + bytes * factor / busbw``.

Across nodes, NCCL runs one ring (channel) per NIC and each channel carries its share of
the message, so a group with ``k`` members on each node gets the NIC bandwidth of ``k``
GPUs: a whole DGX A100 node (8 x 200 Gb/s HDR) reaches a bus bandwidth near 8 x 25 GB/s,
and a group with one GPU per node (e.g. the DP group of a TP-8 layout) only its own NIC's
25 GB/s. Measured: 4 HDR NICs per 8 A100s reach 85-96 GB/s of a theoretical 100
(nccl-tests issue 119). Groups running side by side on the same nodes use disjoint NICs.
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
    """Sequential hops of a ring collective over ``n`` ranks."""
    if n <= 1:
        return 0
    return 2 * (n - 1) if op == "all_reduce" else n - 1


def intra_node_busbw_gbps(gpus: GpuSet, eff: Efficiency = EFFICIENCY) -> float:
    """Bus bandwidth a ring reaches inside one node (NVLink, or PCIe without it)."""
    return gpus.gpu.intra_node_gbps * (eff.nvlink_fraction if gpus.gpu.nvlink else eff.pcie_fraction)


def link_busbw_gbps(gpus: GpuSet, nodes_spanned: int, members_per_node: int = 1,
                    eff: Efficiency = EFFICIENCY) -> float:
    """Bus bandwidth of a ring inside one node, or across ``nodes_spanned`` nodes with
    ``members_per_node`` ranks of the group on each (their NICs carry the channels)."""
    intra = intra_node_busbw_gbps(gpus, eff)
    if nodes_spanned <= 1:
        return intra
    network = gpus.inter_node_gbps * eff.network_fraction * max(1, members_per_node)
    return min(intra, network)


def collective(op: str, nbytes: float, size: int, gpus: GpuSet, stride: int = 1,
               eff: Efficiency = EFFICIENCY) -> CommCost:
    """Cost of ``op`` on a message of ``nbytes`` over ``size`` ranks ``stride`` apart in ``gpus``."""
    require(nbytes >= 0, f"message size must be non-negative, got {nbytes}")
    require(size >= 1, f"group size must be >= 1, got {size}")
    factor = bus_factor(op, size)
    if size == 1 or nbytes == 0:
        return CommCost(0.0, 0.0, 0.0)
    spanned = gpus.nodes_spanned(size, stride)
    members = -(-size // spanned)
    busbw = link_busbw_gbps(gpus, spanned, members, eff)
    if spanned > 1:
        # NCCL crosses nodes hierarchically: hops grow with the nodes and the in-node ranks.
        latency_us = ring_steps(op, spanned) * gpus.inter_node_latency_us \
            + ring_steps(op, members) * eff.collective_step_latency_us
    else:
        latency_us = ring_steps(op, size) * eff.collective_step_latency_us
    time_s = (eff.collective_launch_us + latency_us) * 1e-6 + nbytes * factor / (busbw * 1e9)
    algbw = nbytes / time_s / 1e9
    return CommCost(time_s=time_s, algbw_gbps=algbw, busbw_gbps=algbw * factor)


def send_recv_time(nbytes: float, gpus: GpuSet, crosses_nodes: bool, eff: Efficiency = EFFICIENCY) -> float:
    """Seconds to send ``nbytes`` from one GPU to another (a pipeline-stage boundary)."""
    if nbytes <= 0:
        return 0.0
    if crosses_nodes:
        bw, hop = gpus.inter_node_gbps * eff.network_fraction, gpus.inter_node_latency_us
    else:
        bw, hop = intra_node_busbw_gbps(gpus, eff), eff.collective_step_latency_us
    return (eff.collective_launch_us + hop) * 1e-6 + nbytes / (bw * 1e9)
