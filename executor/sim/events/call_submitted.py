"""The controller submits a call: it joins the queue of every pool it occupies."""

from __future__ import annotations

from dataclasses import dataclass

from executor.sim.events.base import Event


@dataclass(frozen=True)
class CallSubmitted(Event):
    call_id: int

    priority = 1

    def handle(self, state) -> list[Event]:
        state.enqueue(self.call_id)
        return state.dispatch(self.time)
