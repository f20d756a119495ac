"""What every export reads from a plan, and what it hands back.

A plan JSON (``planner.plan``) records pools of concrete GPUs, the roles in each, and one
layout per role. The frameworks want other words for the same facts: nodes and GPUs per
node for a group of workers, micro-batch sizes per GPU that divide their batches, a model
path. :class:`PlanView` answers those questions once, so the verl and OpenRLHF exports
only decide how to spell them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.errors import PlanError, require
from planner.workload import Workload


@dataclass(frozen=True)
class RolePlan:
    """One role of a plan: where it runs and how it is split."""

    role: str
    model: str
    pool: int
    kind: str
    """``parallel`` (training / forward-only) or ``generate`` (vLLM engines)."""
    layout: dict
    offload: bool
    num_gpus: int


@dataclass
class Export:
    """A plan spelled for one framework: a command, the files to write, and what to know."""

    framework: str
    version: str
    """The framework release this export was checked against."""
    placement: str
    """How the plan's pools map onto the framework (e.g. ``colocated``, ``resource-pool mapping``)."""
    command: str
    """A ready shell command."""
    settings: dict
    """The framework's settings as data: verl's overrides (key -> value) or OpenRLHF's flags."""
    files: dict[str, str] = field(default_factory=dict)
    """File name -> content, written by ``plan export --out DIR``."""
    notes: list[str] = field(default_factory=list)
    """Where the export differs from the plan, and anything to do by hand."""

    def to_dict(self) -> dict:
        return {"kind": "rlplan.export", "framework": self.framework, "version": self.version,
                "placement": self.placement, "command": self.command, "settings": self.settings,
                "files": sorted(self.files), "notes": list(self.notes)}


class PlanView:
    """Read-only questions about a plan dict (as ``plan_to_dict`` writes it)."""

    def __init__(self, plan: dict) -> None:
        self.plan = plan
        inputs = plan["inputs"]
        self.algo: str = inputs["algo"]
        self.mode: str = plan.get("mode", "sync")
        self.workload = Workload.from_dict(inputs["workload"])
        self._per_node = {g["gpu"]: g["gpus_per_node"] for g in inputs["cluster"]["node_groups"]}
        self.pools = {p["id"]: p for p in plan["pools"]}
        self.roles: dict[str, RolePlan] = {
            name: RolePlan(name, r["model"], r["pool"], r["kind"], dict(r["layout"]), bool(r["offload"]),
                           self.pools[r["pool"]]["num_gpus"])
            for name, r in plan["roles"].items()
        }

    def has(self, role: str) -> bool:
        return role in self.roles

    def shares(self, a: str, b: str) -> bool:
        """Whether roles ``a`` and ``b`` run on the same GPUs."""
        return self.roles[a].pool == self.roles[b].pool

    def pool_roles(self, role: str) -> list[str]:
        return list(self.pools[self.roles[role].pool]["roles"])

    def nodes_and_gpus(self, role: str) -> tuple[int, int]:
        """(nodes, GPUs per node) of ``role``'s pool: whole nodes, or part of one node."""
        pool = self.pools[self.roles[role].pool]
        per_node = self._per_node[pool["gpu"]]
        n = pool["num_gpus"]
        if n < per_node:
            return 1, n
        require(n % per_node == 0, f"pool {pool['id']} has {n} GPUs, not whole nodes of {per_node}: re-plan it")
        return n // per_node, per_node

    def data_parallel(self, role: str) -> int:
        """Data-parallel ranks of a training or forward-only role (GPUs / (tp * pp))."""
        layout = self.roles[role].layout
        return self.roles[role].num_gpus // (layout.get("tp", 1) * layout.get("pp", 1))

    @property
    def max_seq_len(self) -> int:
        return self.workload.prompt_len + self.workload.response.max_len

    @property
    def samples_per_mini_batch(self) -> int:
        """Sequences per optimizer step: prompts per mini-batch times samples per prompt."""
        w = self.workload
        return w.prompts // w.mini_batches * w.samples_per_prompt


def largest_divisor_at_most(n: int, cap: int) -> int:
    """The largest divisor of ``n`` that is at most ``cap`` (at least 1)."""
    for d in range(max(1, min(cap, n)), 0, -1):
        if n % d == 0:
            return d
    return 1


def micro_batch_for(view: PlanView, role: str, batch_per_gpu: int, what: str, notes: list[str]) -> int:
    """The plan's micro-batch of ``role``, lowered to a divisor of the per-GPU batch when
    the framework splits that batch into equal micro-batches (a note says so)."""
    planned = int(view.roles[role].layout.get("micro_batch", 1))
    chosen = largest_divisor_at_most(batch_per_gpu, planned)
    if chosen != planned:
        notes.append(f"{role}: {what} micro-batch {chosen} instead of the plan's {planned}, because "
                     f"{planned} does not divide the {batch_per_gpu} sequences each GPU gets (less memory, "
                     "slightly slower)")
    return chosen


def per_gpu_batch(total: int, ranks: int, what: str) -> int:
    """``total`` sequences split over ``ranks`` data-parallel ranks, which must divide it."""
    require(total % ranks == 0,
            f"{what}: {total} sequences do not split evenly over {ranks} data-parallel ranks, which the "
            f"framework requires: re-plan with --prompts/--samples/--mini-batches whose product divides by {ranks}")
    return total // ranks


def model_path(view: PlanView, role: str, given: dict[str, str]) -> str:
    """The path a framework loads ``role``'s model from: the user's ``--model-path``, else
    the zoo model's Hugging Face repo id, else the model's name (a local folder's name)."""
    from planner.model_loading import zoo_metadata

    source_role = "actor" if role in ("rollout",) else role
    if source_role in given:
        return given[source_role]
    name = view.roles[role].model
    try:
        return zoo_metadata(name).get("hf_repo", name)
    except PlanError:
        return name


def parse_model_paths(items: list[str], roles: list[str]) -> dict[str, str]:
    """``ROLE=PATH`` pairs of ``--model-path`` into a dict, checking the role names."""
    from planner.cli.argtypes import role_paths

    return role_paths(items, example="actor=/models/qwen", flag="--model-path", roles=roles)