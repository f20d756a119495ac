"""What the simulated cluster is doing: every submitted call, each pool's queue, the clock-free state.

A pool runs one call at a time, in the order calls were submitted to it (the controller
submits in the plan's schedule order). A call starts when it is at the head of the queue
of every pool it occupies, none of them is busy, and its inputs have arrived: each input
arrives when its producer ends plus the transfer lag of that edge (the search's lag:
a batch that crosses pools goes through the driver). Driver-side calls occupy no pool.
These are the rules of ``planner.search.schedule.list_schedule``, so with the search's
durations the simulation reproduces its schedule.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from executor.trace import CallRecord


@dataclass
class SimCall:
    id: int
    call: object
    """``executor.controller.StageCall``."""
    deps: dict[str, int]
    """payload -> id of the producing call."""
    status: str = "submitted"
    """submitted | reserved (start scheduled) | running | done."""
    start_s: float = float("nan")
    end_s: float = float("nan")
    output: object = None
    """The batch this call produced or passed on: response lengths (numpy), or None."""
    args: dict = field(default_factory=dict)


class SimState:
    """Calls, queues and busy pools; priced by a ``CallPricer``, memory kept by a ``MemoryTracker``."""

    def __init__(self, pricer, memory, lags: dict[tuple[str, str], float]) -> None:
        self.pricer = pricer
        self.memory = memory
        self.lags = lags
        self.calls: list[SimCall] = []
        self.queues: dict[int, deque[int]] = {}
        self.busy: set[int] = set()
        self.driver_waiting: list[int] = []

    # ---- submission ---------------------------------------------------------------------
    def add(self, call, deps: dict[str, int]) -> int:
        self.calls.append(SimCall(len(self.calls), call, dict(deps)))
        return len(self.calls) - 1

    def enqueue(self, call_id: int) -> None:
        pools = self.calls[call_id].call.pools
        for p in pools:
            self.queues.setdefault(p, deque()).append(call_id)
        if not pools:
            self.driver_waiting.append(call_id)

    def done(self, call_id: int) -> bool:
        return self.calls[call_id].status == "done"

    # ---- dispatch -------------------------------------------------------------------------
    def dispatch(self, now: float) -> list:
        """Start events for every call that may start now or once its inputs arrive."""
        from executor.sim.events.call_started import CallStarted

        heads = [q[0] for q in self.queues.values() if q] + self.driver_waiting
        events = []
        for call_id in dict.fromkeys(heads):
            sim = self.calls[call_id]
            pools = sim.call.pools
            if sim.status != "submitted" or any(self.queues[p][0] != call_id or p in self.busy for p in pools):
                continue
            if not all(self.done(d) for d in sim.deps.values()):
                continue
            ready = max((self.calls[d].end_s + self.lags.get((self.calls[d].call.job, sim.call.job), 0.0)
                         for d in sim.deps.values()), default=now)
            sim.status = "reserved"
            self.busy.update(pools)
            if not pools:
                self.driver_waiting.remove(call_id)
            events.append(CallStarted(max(now, ready), call_id))
        return events

    # ---- a call's life ----------------------------------------------------------------------
    def start(self, call_id: int, now: float) -> float:
        """Price the call, take its memory; returns its duration."""
        sim = self.calls[call_id]
        batch = next((self.calls[d].output for d in sim.deps.values() if self.calls[d].output is not None), None)
        priced = self.pricer.price(sim.call, batch)
        sim.status, sim.start_s, sim.output, sim.args = "running", now, priced.output, priced.args
        self.memory.take(now, sim.call)
        return priced.seconds

    def finish(self, call_id: int, now: float) -> CallRecord:
        sim = self.calls[call_id]
        sim.status, sim.end_s = "done", now
        for p in sim.call.pools:
            self.queues[p].popleft()
            self.busy.discard(p)
        self.memory.release(now, sim.call)
        c = sim.call
        return CallRecord(c.job, c.kind, c.roles, c.pools, c.iteration, sim.start_s, now, sim.args)
