"""The simulated backend: the controller's calls become events on virtual time.

``submit`` records the call and schedules its submission at the current virtual time
(the driver takes no time to submit); ``wait`` runs the event loop until the awaited
calls have ended; ``result`` is a call's batch (its response lengths). Durations come
from ``CallPricer`` (the cost model), memory from ``MemoryTracker``. Imports no torch, ray
or vllm.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from executor.sim.engine import Simulator
from executor.sim.events import CallSubmitted
from executor.sim.memory import MemoryTracker
from executor.sim.pricing import CallPricer
from executor.sim.sampling import LengthSampler
from executor.sim.state import SimState


def edge_lags(replayed) -> dict[tuple[str, str], float]:
    """Seconds a batch takes along each dataflow edge of the plan (the search's ``lag``)."""
    lag = replayed.pricer.lag_fn(replayed.assignment)
    return {(e.src, e.dst): lag(e) for e in replayed.pricer.graph.edges}


class SimBackend:
    """``executor.controller.Backend`` on a discrete-event simulation of one replayed plan."""

    def __init__(self, replayed, seed: int = 0, length_cap: int | None = None, planned: bool = False) -> None:
        """``planned``: every call takes the search's duration (no sampling; see ``CallPricer``)."""
        self.sampler = LengthSampler(replayed.inputs.dataflow, seed, length_cap)
        self.pricer = CallPricer(replayed, self.sampler, planned)
        self.memory = MemoryTracker(replayed.assignment)
        self.state = SimState(self.pricer, self.memory, edge_lags(replayed))
        self.sim = Simulator(self.state)

    @property
    def now(self) -> float:
        return self.sim.now

    def submit(self, call, deps: Mapping[str, int]) -> int:
        call_id = self.state.add(call, dict(deps))
        self.sim.schedule(CallSubmitted(self.sim.now, call_id))
        return call_id

    def wait(self, handles: Iterable[int]) -> None:
        pending = list(handles)
        self.sim.run(lambda: all(self.state.done(h) for h in pending))

    def result(self, handle: int):
        if not self.state.done(handle):
            self.wait([handle])
        return self.state.calls[handle].output

    def records(self) -> list:
        return list(self.sim.records)
