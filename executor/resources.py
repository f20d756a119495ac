"""Ray resources for a plan: check the cluster, then one placement group per plan pool.

- :func:`check_executable` refuses a plan that needs what the executor cannot run
  (pipeline parallelism, a layout larger than its pool, an unknown kind of role).
- :func:`ray_gpu_nodes` lists the Ray nodes that have GPUs in the plan's node order, and
  :func:`check_cluster` refuses a plan made for another cluster (node count, GPUs per
  node, and the GPU type where Ray reports one).
- :class:`Placement` creates the placement groups: bundle ``i`` of a pool is
  ``{"GPU": 1, "CPU": c}`` pinned (``bundle_label_selector`` on ``ray.io/node-id``) to the
  Ray node of the plan's ``pools[*].gpus[i]``. Ray picks which GPU of that node; every
  GPU of a node is the same to the cost model.

Plan node ``k`` is the ``k``-th Ray node with GPUs, ordered by the node label
``rlplan.io/node-index`` when every such node carries one (``ray start
--labels='{"rlplan.io/node-index": "0"}'``), otherwise by IP address, then node ID.

Colocated roles (several roles in one pool) share the pool's GPUs as *fractional* Ray
GPUs: each role has its own process per GPU, asking for ``1/k`` of the bundle when ``k``
roles share it (OpenRLHF's ``--colocate_all_models`` does the same). We chose this over
verl's fused worker (one process holding every role of a GPU) because each role keeps
its own torch.distributed world and its own vLLM engine, so a role's code does not
depend on which other roles share its GPUs; the cost is one CUDA context per role and
GPU, and memory is handed over by vLLM's sleep mode and by the trainers' offload.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

from planner.errors import PlanError, require

NODE_INDEX_LABEL = "rlplan.io/node-index"
NODE_ID_LABEL = "ray.io/node-id"
ROLE_KINDS = ("generate", "parallel")
PLACEMENT_TIMEOUT_S = 120.0


# ---- the plan: what the executor can run --------------------------------------------------
def check_executable(plan: dict) -> None:
    """Refuse, in one line, a plan whose layouts the executor cannot run."""
    pools = {p["id"]: p for p in plan["pools"]}
    for role, entry in plan["roles"].items():
        layout, kind = entry["layout"], entry["kind"]
        require(kind in ROLE_KINDS, f"role {role!r} has kind {kind!r}, which the executor does not run: "
                                    f"re-plan with this rlplan (kinds: {', '.join(ROLE_KINDS)})")
        require(entry["pool"] in pools, f"role {role!r} is in pool {entry['pool']}, which the plan does not list: "
                                        "the plan file is damaged; re-plan it")
        if kind == "parallel":
            require(layout.get("pp", 1) == 1,
                    f"role {role!r} uses pipeline parallelism (pp={layout['pp']}), which rlplan's executor does "
                    "not run: re-plan with --executor-only")
            world = layout["tp"] * layout["dp"]
        else:
            world = layout["tp"] * layout["replicas"]
        size = pools[entry["pool"]]["num_gpus"]
        require(world <= size, f"role {role!r} needs {world} GPUs but its pool {entry['pool']} has {size}: "
                               "the plan file is damaged; re-plan it")


# ---- the cluster Ray reports --------------------------------------------------------------
@dataclass(frozen=True)
class RayNode:
    """A Ray node that has GPUs, as this module needs it."""

    node_id: str
    ip: str
    gpus: int
    cpus: float
    accelerator: str | None = None
    """Ray's ``accelerator_type:<X>`` resource (e.g. ``H100``), where Ray detected one."""
    index_label: int | None = None
    """The node's ``rlplan.io/node-index`` label, if set."""


def describe_ray_nodes(entries: list[dict]) -> list[RayNode]:
    """Alive nodes with at least one GPU from ``ray.nodes()`` entries, in plan node order."""
    nodes = []
    for entry in entries:
        resources = entry.get("Resources", {})
        if not entry.get("Alive", True) or resources.get("GPU", 0) < 1:
            continue
        accelerators = [k.split(":", 1)[1] for k in resources if k.startswith("accelerator_type:")]
        label = (entry.get("Labels") or {}).get(NODE_INDEX_LABEL)
        nodes.append(RayNode(node_id=entry["NodeID"], ip=entry.get("NodeManagerAddress", ""),
                             gpus=int(resources["GPU"]), cpus=float(resources.get("CPU", 0)),
                             accelerator=accelerators[0] if accelerators else None,
                             index_label=int(label) if label is not None and str(label).isdigit() else None))
    return order_nodes(nodes)


def order_nodes(nodes: list[RayNode]) -> list[RayNode]:
    """By ``rlplan.io/node-index`` if every node has a distinct one, else by (IP, node ID)."""
    labels = [n.index_label for n in nodes]
    if nodes and None not in labels and len(set(labels)) == len(labels):
        return sorted(nodes, key=lambda n: n.index_label)
    return sorted(nodes, key=lambda n: (_ip_key(n.ip), n.node_id))


def _ip_key(ip: str) -> tuple:
    try:
        return (0, int(ipaddress.ip_address(ip)))
    except ValueError:
        return (1, ip)


def ray_gpu_nodes() -> list[RayNode]:
    """The connected Ray cluster's GPU nodes, in plan node order."""
    import ray

    return describe_ray_nodes(ray.nodes())


def check_cluster(plan: dict, nodes: list[RayNode]) -> None:
    """Refuse, in one line, a plan made for another cluster than ``nodes``."""
    fingerprint = plan["inputs"]["cluster"]
    groups = fingerprint["node_groups"]
    wanted = [(g["gpu"], g["gpus_per_node"]) for g in groups for _ in range(g["nodes"])]
    name = fingerprint["name"]
    shape = " + ".join(f"{g['nodes']} node(s) x {g['gpus_per_node']} {g['gpu']}" for g in groups)
    fix = f"run it on the cluster it was made for, or re-plan with a --cluster that describes this one"
    seen = ", ".join(f"{n.gpus}" for n in nodes) or "none"
    require(len(nodes) == len(wanted),
            f"plan was made for cluster {name!r} ({shape}) but Ray reports {len(nodes)} node(s) with GPUs "
            f"(GPUs per node: {seen}): {fix}")
    for k, (node, (gpu, per_node)) in enumerate(zip(nodes, wanted)):
        require(node.gpus == per_node,
                f"plan was made for cluster {name!r} ({shape}) but Ray's node {k} ({node.ip}) has {node.gpus} "
                f"GPUs, not {per_node}: {fix}")
        require(_same_gpu_type(gpu, node.accelerator),
                f"plan was made for cluster {name!r} ({shape}) but Ray's node {k} ({node.ip}) has "
                f"{node.accelerator} GPUs, not {gpu}: {fix}")


def _same_gpu_type(plan_gpu: str, accelerator: str | None) -> bool:
    """Only a type Ray detected can disagree: 'a100-80gb' matches Ray's 'A100' or 'A100-80G'."""
    if accelerator is None:
        return True
    family = plan_gpu.split("-")[0].upper()
    return accelerator.upper().startswith(family) or family.startswith(accelerator.upper())


# ---- placement groups ---------------------------------------------------------------------
@dataclass
class PoolPlacement:
    """One plan pool on Ray: a placement group of one bundle per GPU, in the plan's GPU order."""

    pool_id: int
    roles: tuple[str, ...]
    placement_group: object
    node_ids: tuple[str, ...]
    """Ray node ID of each bundle."""
    gpus: tuple[tuple[int, int], ...]
    """The plan's (node index, local rank) of each bundle."""
    cpus_per_bundle: float

    @property
    def num_gpus(self) -> int:
        return len(self.gpus)

    @property
    def share(self) -> float:
        """Fraction of a bundle each role's process asks for (1/k for k colocated roles)."""
        return _floor4(1.0 / len(self.roles))

    @property
    def colocated(self) -> bool:
        return len(self.roles) > 1

    def actor_options(self, bundle: int) -> dict:
        """``.options(...)`` for one role's actor on ``bundle``: its share of the GPU and CPUs."""
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        return {"num_gpus": self.share, "num_cpus": _floor4(self.cpus_per_bundle * self.share),
                "scheduling_strategy": PlacementGroupSchedulingStrategy(
                    placement_group=self.placement_group, placement_group_bundle_index=bundle)}


def _floor4(x: float) -> float:
    """Ray keeps resource amounts to 4 decimals; round down so k shares fit in one."""
    return math.floor(x * 10_000) / 10_000


class Placement:
    """Every pool of a plan as a placement group; :meth:`remove` gives them back."""

    def __init__(self, pools: dict[int, PoolPlacement], role_pool: dict[str, int]) -> None:
        self.pools = pools
        self.role_pool = role_pool

    @classmethod
    def create(cls, plan: dict, nodes: list[RayNode] | None = None, cpus_per_gpu: float | None = None,
               timeout_s: float = PLACEMENT_TIMEOUT_S) -> "Placement":
        """Check ``plan`` against the connected Ray cluster and reserve its pools.

        ``cpus_per_gpu`` defaults to the fewest CPUs per GPU over the plan's nodes (at
        most 8), so every bundle fits however the pools share a node.
        """
        from ray.util.placement_group import placement_group, remove_placement_group

        check_executable(plan)
        nodes = ray_gpu_nodes() if nodes is None else nodes
        check_cluster(plan, nodes)
        if cpus_per_gpu is None:
            cpus_per_gpu = min(8.0, _floor4(min(n.cpus / n.gpus for n in nodes)))
        require(cpus_per_gpu > 0, "Ray reports no CPUs on the GPU nodes: start Ray with --num-cpus on every node")
        pools: dict[int, PoolPlacement] = {}
        try:
            for pool in plan["pools"]:
                gpus = tuple((int(node), int(rank)) for node, rank in pool["gpus"])
                node_ids = tuple(nodes[node].node_id for node, _ in gpus)
                pg = placement_group([{"GPU": 1, "CPU": cpus_per_gpu}] * len(gpus), strategy="PACK",
                                     name=f"rlplan-pool-{pool['id']}",
                                     bundle_label_selector=[{NODE_ID_LABEL: n} for n in node_ids])
                pools[pool["id"]] = PoolPlacement(pool["id"], tuple(pool["roles"]), pg, node_ids, gpus, cpus_per_gpu)
            for p in pools.values():
                if not p.placement_group.wait(timeout_s):
                    raise PlanError(f"Ray could not reserve pool {p.pool_id} ({p.num_gpus} GPUs with "
                                    f"{cpus_per_gpu:g} CPUs each on nodes {sorted({n for n, _ in p.gpus})}) "
                                    f"in {timeout_s:g} s: free those GPUs/CPUs (other jobs?) or pass fewer CPUs per GPU")
        except BaseException:
            for p in pools.values():
                remove_placement_group(p.placement_group)
            raise
        role_pool = {role: entry["pool"] for role, entry in plan["roles"].items()}
        return cls(pools, role_pool)

    def pool_of(self, role: str) -> PoolPlacement:
        require(role in self.role_pool, f"role {role!r} is not in the plan: use one of {', '.join(self.role_pool)}")
        return self.pools[self.role_pool[role]]

    def bundle_nodes(self, pool_id: int) -> list[str]:
        """Ray node ID of every bundle of a pool, as Ray placed it."""
        from ray.util.placement_group import placement_group_table

        table = placement_group_table(self.pools[pool_id].placement_group)["bundles_to_node_id"]
        return [table[i] for i in range(self.pools[pool_id].num_gpus)]

    def remove(self) -> None:
        from ray.util.placement_group import remove_placement_group

        for p in self.pools.values():
            remove_placement_group(p.placement_group)
        self.pools = {}
