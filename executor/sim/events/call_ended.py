"""A call ends: its pools and memory are released, its output is ready, waiting calls may start."""

from __future__ import annotations

from dataclasses import dataclass, field

from executor.sim.events.base import Event


@dataclass(frozen=True)
class CallEnded(Event):
    call_id: int
    _record: list = field(default_factory=list, compare=False, repr=False)

    priority = 0

    def handle(self, state) -> list[Event]:
        self._record.append(state.finish(self.call_id, self.time))
        return state.dispatch(self.time)

    def to_trace(self) -> list:
        return list(self._record)
