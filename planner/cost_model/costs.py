"""Itemised results of the cost model (as vidur's ``ExecutionTime``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.hardware import GiB


STATIC_MEMORY = ("weights", "gradients", "optimizer")
"""Memory parts a model holds for the whole job unless offloaded; every other part
(activations, kv_cache, logits, workspace, ...) is transient: held only during its stage."""


@dataclass(frozen=True)
class StageCost:
    """Time and memory of one stage call on one layout.

    ``time_parts`` are the *exposed* seconds of each cause (compute, communication,
    bubble, optimizer, ...) and add up to ``time_s``. ``memory_parts`` are bytes per GPU
    (weights, gradients, optimizer, activations, kv_cache, ...) and add up to
    ``memory_bytes``. ``info`` carries derived figures a user may want (FLOPs, tokens).
    """

    time_parts: dict[str, float]
    memory_parts: dict[str, float] = field(default_factory=dict)
    info: dict[str, float] = field(default_factory=dict)

    @property
    def time_s(self) -> float:
        return float(sum(self.time_parts.values()))

    @property
    def memory_bytes(self) -> float:
        return float(sum(self.memory_parts.values()))

    @property
    def static_bytes(self) -> float:
        return float(sum(v for k, v in self.memory_parts.items() if k in STATIC_MEMORY))

    @property
    def transient_bytes(self) -> float:
        return self.memory_bytes - self.static_bytes

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / GiB

    def repeated(self, times: int) -> "StageCost":
        """The same call ``times`` times in a row (e.g. the optimizer steps of a train stage):
        time parts scale, memory does not."""
        return StageCost({k: v * times for k, v in self.time_parts.items()}, dict(self.memory_parts),
                         {**self.info, "calls": times})

    def to_dict(self) -> dict:
        return {
            "time_s": self.time_s,
            "time_parts_s": dict(self.time_parts),
            "memory_gib": self.memory_gib,
            "memory_parts_gib": {k: v / GiB for k, v in self.memory_parts.items()},
            **({"info": dict(self.info)} if self.info else {}),
        }
