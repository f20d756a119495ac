"""What a search is asked: the cluster, the algorithm's dataflow, a model per role, the
workload, and the user's constraints."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

from planner.errors import require
from planner.hardware import ClusterSpec
from planner.models import ModelSpec

MODES = ("sync", "one-step-off")


MAX_DEFAULT_WORKERS = 8
"""CP-SAT's portfolio gains little past 8 workers on models this size."""


def default_workers() -> int:
    """The cores this process may use, at most ``MAX_DEFAULT_WORKERS``."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MAX_DEFAULT_WORKERS, cores))


@dataclass(frozen=True)
class SearchOptions:
    """The user's constraints and the solver's knobs."""

    mode: str = "sync"
    """``sync``: minimise one on-policy iteration; ``one-step-off``: generation of
    iteration k+1 overlaps training of iteration k, minimise the steady-state period."""
    max_gpus: int | None = None
    """Use at most this many GPUs of the cluster."""
    colocate: tuple[tuple[str, ...], ...] = ()
    """Groups of roles that must share a pool (``--colocate actor,ref``)."""
    rollout_tp: int | None = None
    """Force the rollout engines' tensor-parallel size."""
    executor_only: bool = False
    """Plan only layouts the rlplan executor runs (no pipeline parallelism)."""
    allow_offload: bool = True
    """Let forward-only roles keep their weights on the host between their stages."""
    time_limit_s: float = 60.0
    workers: int = field(default_factory=lambda: default_workers())
    """Processes that price candidates, and CP-SAT's search workers (``--workers``)."""

    def __post_init__(self) -> None:
        require(self.mode in MODES, f"unknown mode {self.mode!r}: use one of {', '.join(MODES)}")
        require(self.max_gpus is None or self.max_gpus >= 1, f"--max-gpus must be >= 1, got {self.max_gpus}")
        require(self.rollout_tp is None or self.rollout_tp >= 1, f"--rollout-tp must be >= 1, got {self.rollout_tp}")
        require(self.time_limit_s > 0, f"--time-limit must be positive, got {self.time_limit_s}")
        require(self.workers >= 1, f"--workers must be >= 1, got {self.workers}")

    def to_dict(self) -> dict:
        return {"mode": self.mode, "max_gpus": self.max_gpus, "colocate": [list(g) for g in self.colocate],
                "rollout_tp": self.rollout_tp, "executor_only": self.executor_only,
                "allow_offload": self.allow_offload, "time_limit_s": self.time_limit_s}


@dataclass(frozen=True)
class SearchInputs:
    cluster: ClusterSpec
    algo: str
    dataflow: object
    """``algos.Dataflow`` of the algorithm under this workload."""
    models: dict[str, ModelSpec]
    """Model of each role (the rollout role carries the actor's model)."""
    workload: object
    """``planner.workload.Workload``."""
    options: SearchOptions = field(default_factory=SearchOptions)

    @property
    def roles(self) -> list[str]:
        """GPU roles in a fixed order (the order of the dataflow's role table)."""
        return list(self.dataflow.roles)

    def digest(self) -> str:
        """A hash of everything the plan was made from."""
        payload = {
            "cluster": self.cluster.fingerprint(),
            "algo": self.algo,
            "models": {r: m.name for r, m in sorted(self.models.items())},
            "workload": self.workload.to_dict(),
            "options": self.options.to_dict(),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
