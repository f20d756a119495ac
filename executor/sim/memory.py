"""Memory per GPU of each pool through the run: what is resident, what a call adds.

The accounting is the search's (``Pricer.pool_memory``): a role's *resident* memory
(training states, or weights of a forward-only model that is not offloaded) is held for
the whole run; while one of its calls runs, the call's other memory parts are added
(activations, logits, KV cache, gathered FSDP weights). A rollout engine and an offloaded
model hold nothing between calls: their weights come onto the GPU for the call (vLLM
wakes from sleep, the offloaded model is copied in) and leave after it. Parts are named
as the cost model names them (weights, gradients, optimizer, activations, kv_cache,
logits, gathered_weights). A weight sync adds nothing here, as in the search.
"""

from __future__ import annotations

from planner.cost_model.costs import STATIC_MEMORY
from planner.hardware import GiB

REPORTED_PARTS = ("weights", "optimizer", "activations", "kv_cache")
"""Parts every peak breakdown names, 0 when absent."""


def resident_parts(cand) -> dict[str, float]:
    """Bytes per GPU a role holds between its calls, by part (empty if offloaded or a rollout)."""
    if cand.static_bytes <= 0 or not cand.stage_costs:
        return {}
    cost = max(cand.stage_costs.values(), key=lambda c: c.static_bytes)
    return {k: v for k, v in cost.memory_parts.items() if k in STATIC_MEMORY}


def call_parts(cand, stage_name: str, resident: dict[str, float]) -> dict[str, float]:
    """Bytes per GPU a call adds on top of its role's resident memory."""
    cost = cand.stage_costs.get(stage_name)
    if cost is None:
        return {}
    return {k: v - resident.get(k, 0.0) for k, v in cost.memory_parts.items() if v - resident.get(k, 0.0) > 0}


class MemoryTracker:
    """Per-pool timeline and peak (with its breakdown) of memory per GPU."""

    def __init__(self, assignment) -> None:
        self.assignment = assignment
        self.resident = {r: resident_parts(c) for r, c in assignment.choice.items()}
        self.parts: dict[int, dict[str, float]] = {}
        for role, pool in assignment.role_pool.items():
            into = self.parts.setdefault(pool, {})
            for k, v in self.resident[role].items():
                into[k] = into.get(k, 0.0) + v
        self.timeline: dict[int, list[list[float]]] = {p: [[0.0, self._total(p) / GiB]] for p in self.parts}
        self.peak: dict[int, float] = {p: self._total(p) for p in self.parts}
        self.peak_parts: dict[int, dict[str, float]] = {p: dict(v) for p, v in self.parts.items()}

    def _total(self, pool: int) -> float:
        return sum(self.parts[pool].values())

    def _added(self, call) -> dict[str, float]:
        if call.kind == "sync" or not call.roles:
            return {}
        role = call.roles[0]
        return call_parts(self.assignment.choice[role], call.job, self.resident[role])

    def take(self, now: float, call) -> None:
        added = self._added(call)
        if not added:
            return
        for p in call.pools:
            for k, v in added.items():
                self.parts[p][k] = self.parts[p].get(k, 0.0) + v
            self._mark(now, p)

    def release(self, now: float, call) -> None:
        added = self._added(call)
        if not added:
            return
        for p in call.pools:
            for k, v in added.items():
                self.parts[p][k] -= v
            self._mark(now, p)

    def _mark(self, now: float, pool: int) -> None:
        total = self._total(pool)
        self.timeline[pool].append([now, total / GiB])
        if total > self.peak[pool]:
            self.peak[pool] = total
            self.peak_parts[pool] = {k: v for k, v in self.parts[pool].items() if v > 1e-9 * GiB}

    def breakdown_gib(self, pool: int) -> dict[str, float]:
        out = {k: 0.0 for k in REPORTED_PARTS}
        out.update({k: v / GiB for k, v in self.peak_parts[pool].items()})
        return out
