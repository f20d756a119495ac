"""GPU types and clusters: the hardware half of the data model.

Peak figures are vendor datasheet values (dense BF16, no sparsity); sources are given per
GPU. Bandwidths are in GB/s (1e9 bytes/s) *per GPU, per direction*: a datasheet's
"600 GB/s NVLink" (bidirectional) is 300 GB/s here. Effective rates (what NCCL reaches)
come from the efficiency parameters in ``planner.cost_model.efficiency``, not from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.errors import PlanError, require

GiB = 1024**3


@dataclass(frozen=True)
class GPUSpec:
    """One accelerator type."""

    name: str
    peak_tflops: float
    """Dense BF16 peak, TFLOP/s."""
    memory_gib: float
    """Device memory, GiB (what a user sees as "80 GB" is 80 GiB-ish; we use the datasheet number as GiB)."""
    hbm_gbps: float
    """Device memory bandwidth, GB/s."""
    intra_node_gbps: float
    """Per-GPU, per-direction bandwidth to peers in its node (NVLink, or PCIe when there is none)."""
    nvlink: bool
    """Whether peers in a node are linked by NVLink (else PCIe through the host)."""
    scale_out_gbps: float
    """Typical per-GPU, per-direction scale-out bandwidth of nodes built with this GPU."""
    host_link_gbps: float
    """Per-direction GPU-host link (PCIe Gen4 x16: 32 GB/s; Gen5 x16: 64 GB/s): offload and onload go through it."""
    source: str = ""
    reserve_gib: float | None = None
    """Memory no framework can fill on this device; None: the CUDA default of
    ``planner.cost_model.efficiency`` (context, NCCL buffers, fragmentation)."""

    def __post_init__(self) -> None:
        for name in ("peak_tflops", "memory_gib", "hbm_gbps", "intra_node_gbps", "host_link_gbps"):
            require(getattr(self, name) > 0, f"GPU {self.name!r}: {name} must be positive")

    @property
    def memory_bytes(self) -> float:
        return self.memory_gib * GiB


# Datasheet values; see ../shared/reference/notes.md section "Hardware specifications".
GPUS: dict[str, GPUSpec] = {
    g.name: g
    for g in (
        GPUSpec("a100-40gb", 312, 40, 1555, 300, True, 25, 32, "NVIDIA A100 datasheet (SXM4 40GB)"),
        GPUSpec("a100-80gb", 312, 80, 2039, 300, True, 25, 32, "NVIDIA A100 datasheet (SXM4 80GB)"),
        GPUSpec("h100-80gb", 989, 80, 3350, 450, True, 50, 64, "NVIDIA H100 datasheet (SXM5)"),
        GPUSpec("h800-80gb", 989, 80, 3350, 200, True, 50, 64, "H100 compute; NVLink 400 GB/s bidirectional (nccl#1374)"),
        GPUSpec("h200-141gb", 989, 141, 4800, 450, True, 50, 64, "NVIDIA H200 datasheet (SXM)"),
        GPUSpec("h20-96gb", 148, 96, 4000, 450, True, 50, 64, "NVIDIA H20 (China SKU) published figures"),
        GPUSpec("rtx4090-24gb", 165, 24, 1008, 32, False, 12.5, 32, "NVIDIA Ada whitepaper: 165 TF dense BF16 with FP32 accumulate; PCIe Gen4"),
        GPUSpec("l40s-48gb", 362, 48, 864, 32, False, 12.5, 32, "NVIDIA L40S datasheet; PCIe Gen4 x16 64 GB/s bidirectional"),
        # The executor's logical devices on a CPU-only development machine: one CPU core's
        # worth of fp32 matmul and DRAM bandwidth, so that plans for `local` are sane.
        GPUSpec("cpu-logical", 0.05, 2, 10, 5, False, 1, 10, "logical device on a CPU-only machine (measured order of magnitude)",
                reserve_gib=0.25),  # no CUDA context or NCCL buffers: a gloo process's own overhead
    )
}


def gpu_by_name(name: str) -> GPUSpec:
    key = name.strip().lower()
    if key not in GPUS:
        raise PlanError(f"unknown GPU {name!r}: use one of {', '.join(GPUS)}")
    return GPUS[key]


@dataclass(frozen=True)
class NodeGroup:
    """Identical nodes: ``nodes`` machines with ``gpus_per_node`` GPUs of one type each."""

    gpu: GPUSpec
    nodes: int
    gpus_per_node: int
    inter_node_gbps: float
    """Per-GPU, per-direction scale-out bandwidth (e.g. 8x200 Gb/s IB per 8-GPU node = 25 GB/s)."""

    def __post_init__(self) -> None:
        require(self.nodes >= 1, f"node group of {self.gpu.name}: nodes must be >= 1, got {self.nodes}")
        require(self.gpus_per_node >= 1, f"node group of {self.gpu.name}: gpus_per_node must be >= 1, got {self.gpus_per_node}")
        require(self.inter_node_gbps > 0 or self.nodes == 1,
                f"node group of {self.gpu.name}: inter_node_gbps must be positive for several nodes")

    @property
    def num_gpus(self) -> int:
        return self.nodes * self.gpus_per_node


@dataclass(frozen=True)
class ClusterSpec:
    """A cluster: one or more groups of identical nodes (several groups = heterogeneous)."""

    name: str
    node_groups: tuple[NodeGroup, ...]
    description: str = ""
    intra_node_latency_us: float = 10.0
    """Per-hop latency of a collective step inside a node (NVLink/PCIe; Calculon uses 10 us)."""
    inter_node_latency_us: float = 20.0
    """Per-hop latency of a collective step across nodes (IB/RoCE)."""

    def __post_init__(self) -> None:
        require(len(self.node_groups) >= 1, f"cluster {self.name!r} has no node groups")

    @property
    def num_gpus(self) -> int:
        return sum(g.num_gpus for g in self.node_groups)

    @property
    def num_nodes(self) -> int:
        return sum(g.nodes for g in self.node_groups)

    @property
    def homogeneous(self) -> bool:
        return len({(g.gpu.name, g.gpus_per_node) for g in self.node_groups}) == 1

    @property
    def gpu(self) -> GPUSpec:
        """The GPU type of a homogeneous cluster (the first group's type otherwise)."""
        return self.node_groups[0].gpu

    @property
    def gpus_per_node(self) -> int:
        return self.node_groups[0].gpus_per_node

    def nodes(self) -> list[tuple[int, NodeGroup]]:
        """Every node as (global node index, its group), in order."""
        out, index = [], 0
        for group in self.node_groups:
            for _ in range(group.nodes):
                out.append((index, group))
                index += 1
        return out

    def gpu_set(self, num_gpus: int, group: int = 0) -> "GpuSet":
        """``num_gpus`` GPUs of node group ``group``, packed onto as few nodes as possible."""
        g = self.node_groups[group]
        require(1 <= num_gpus <= g.num_gpus,
                f"cluster {self.name!r} has {g.num_gpus} {g.gpu.name} GPUs; cannot take {num_gpus}")
        return GpuSet(gpu=g.gpu, num_gpus=num_gpus, gpus_per_node=g.gpus_per_node, inter_node_gbps=g.inter_node_gbps,
                      intra_node_latency_us=self.intra_node_latency_us, inter_node_latency_us=self.inter_node_latency_us)

    def fingerprint(self) -> dict:
        """What a plan records to refuse being run on another cluster."""
        return {
            "name": self.name,
            "node_groups": [
                {"gpu": g.gpu.name, "nodes": g.nodes, "gpus_per_node": g.gpus_per_node} for g in self.node_groups
            ],
        }


@dataclass(frozen=True)
class GpuSet:
    """The GPUs one model occupies: ``num_gpus`` of one type, packed on nodes of ``gpus_per_node``.

    Ranks are numbered node by node; a parallel group of ``size`` ranks taken every
    ``stride`` ranks (TP fastest, then PP, then DP, as Megatron orders them) crosses nodes
    when it does not fit in one. This is what every cost function needs to know about
    where a model lives.
    """

    gpu: GPUSpec
    num_gpus: int
    gpus_per_node: int
    inter_node_gbps: float
    intra_node_latency_us: float = 10.0
    inter_node_latency_us: float = 20.0

    def __post_init__(self) -> None:
        require(self.num_gpus >= 1, f"a GPU set needs at least one GPU, got {self.num_gpus}")

    @property
    def nodes(self) -> int:
        return -(-self.num_gpus // self.gpus_per_node)

    def nodes_spanned(self, size: int, stride: int = 1) -> int:
        """Nodes touched by a group of ``size`` ranks ``stride`` apart."""
        if size <= 1:
            return 1
        if stride >= self.gpus_per_node:
            return size
        return -(-(size * stride) // self.gpus_per_node) if size * stride > self.gpus_per_node else 1


def single_node_group_cluster(gpu: GPUSpec, num_gpus: int, gpus_per_node: int = 8,
                              inter_node_gbps: float | None = None, name: str | None = None) -> ClusterSpec:
    """A homogeneous cluster of ``num_gpus`` GPUs (whole nodes, last one possibly partial).

    Used by ``plan estimate`` where the user gives a GPU type and a count, not a cluster.
    """
    require(num_gpus >= 1, f"--gpus must be >= 1, got {num_gpus}")
    per_node = min(gpus_per_node, num_gpus)
    require(num_gpus % per_node == 0,
            f"{num_gpus} GPUs do not fill whole nodes of {per_node}: use a multiple of {per_node}")
    group = NodeGroup(gpu=gpu, nodes=num_gpus // per_node, gpus_per_node=per_node,
                      inter_node_gbps=inter_node_gbps if inter_node_gbps is not None else gpu.scale_out_gbps)
    return ClusterSpec(name=name or f"{gpu.name}x{num_gpus}", node_groups=(group,))


__all__ = ["GiB", "GPUSpec", "GPUS", "gpu_by_name", "NodeGroup", "ClusterSpec", "GpuSet", "single_node_group_cluster"]
