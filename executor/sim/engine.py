"""The discrete-event loop on virtual time (after vidur's ``simulator.py``).

Events sit in a heap ordered by (time, type priority, insertion id), so ties break the
same way on every run. The loop pops an event, advances the clock to it, lets it change
the simulation state and *return* its follow-up events, and collects what it reports for
the trace. Events never touch the queue, so each can be tested alone.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Callable

from executor.sim.events.base import Event


class Simulator:
    """A clock and an event queue over one simulation state."""

    def __init__(self, state) -> None:
        self.state = state
        self.now = 0.0
        self._queue: list[tuple[float, int, int, Event]] = []
        self._ids = itertools.count()
        self.records: list = []
        """What the processed events reported (``Event.to_trace``), in processing order."""

    def schedule(self, event: Event) -> None:
        if event.time < self.now:
            raise ValueError(f"{type(event).__name__} at {event.time} is before the clock ({self.now})")
        heapq.heappush(self._queue, (event.time, event.priority, next(self._ids), event))

    def run(self, done: Callable[[], bool]) -> None:
        """Process events until ``done()`` holds; an empty queue before that is a deadlock."""
        while not done():
            if not self._queue:
                raise RuntimeError("the simulation has nothing left to run but the awaited calls are not done "
                                   "(a call waits on a pool or input that never frees)")
            time, _, _, event = heapq.heappop(self._queue)
            self.now = time
            for follow_up in event.handle(self.state):
                self.schedule(follow_up)
            self.records.extend(event.to_trace())
