"""The event interface: a time, a tie-break priority, ``handle`` and ``to_trace``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class Event(ABC):
    time: float
    """Virtual seconds since the start of the run."""

    priority = 0
    """Among events at the same time, lower runs first (ends free pools before starts claim them)."""

    @abstractmethod
    def handle(self, state) -> list["Event"]:
        """Apply the event to ``state``; return the events it causes."""

    def to_trace(self) -> list:
        """``executor.trace.CallRecord``s this event completes (most events: none)."""
        return []
