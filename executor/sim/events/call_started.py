"""A call starts on its pools: it is priced now (its inputs are known) and its memory is taken."""

from __future__ import annotations

from dataclasses import dataclass

from executor.sim.events.base import Event


@dataclass(frozen=True)
class CallStarted(Event):
    call_id: int

    priority = 2

    def handle(self, state) -> list[Event]:
        from executor.sim.events.call_ended import CallEnded

        duration = state.start(self.call_id, self.time)
        return [CallEnded(self.time + duration, self.call_id)]
