"""The critical path of one iteration: the chain of calls that decided when it ended.

Walking back from the iteration's last call, each call's start was set either by an
input that arrived just then (its producer's end plus the transfer lag) or by a pool
that freed just then (the previous call on one of its pools). The walk follows that
binding predecessor, inputs first, and stops at a call nothing delayed or at a call of
another iteration (one-step-off overlaps iterations).
"""

from __future__ import annotations

TOLERANCE_S = 1e-9


def critical_path(state, iteration: int) -> list[str]:
    """Job names of ``iteration``'s critical path, first to last (``state``: the backend's ``SimState``)."""
    calls = [c for c in state.calls if c.status == "done"]
    mine = [c for c in calls if c.call.iteration == iteration]
    if not mine:
        return []
    by_pool: dict[int, list] = {}
    for c in sorted(calls, key=lambda c: (c.start_s, c.id)):
        for p in c.call.pools:
            by_pool.setdefault(p, []).append(c)
    current = max(mine, key=lambda c: (c.end_s, c.id))
    path = [current]
    while True:
        previous = _binding(current, state, by_pool)
        if previous is None or previous.call.iteration != iteration:
            break
        path.append(previous)
        current = previous
    return [c.call.job for c in reversed(path)]


def _binding(sim, state, by_pool):
    def close(t: float) -> bool:
        return abs(t - sim.start_s) <= TOLERANCE_S * max(1.0, sim.start_s)

    for dep in sim.deps.values():
        producer = state.calls[dep]
        if close(producer.end_s + state.lags.get((producer.call.job, sim.call.job), 0.0)):
            return producer
    for p in sim.call.pools:
        before = [c for c in by_pool[p] if c.end_s <= sim.start_s + TOLERANCE_S and c.id != sim.id]
        if before and close(before[-1].end_s):
            return before[-1]
    return None
