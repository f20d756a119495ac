"""Events of the simulated backend: one class per file, each returning its follow-ups."""

from executor.sim.events.base import Event
from executor.sim.events.call_ended import CallEnded
from executor.sim.events.call_started import CallStarted
from executor.sim.events.call_submitted import CallSubmitted

__all__ = ["Event", "CallSubmitted", "CallStarted", "CallEnded"]
