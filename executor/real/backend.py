"""The real backend: the controller's stage calls run on Ray worker groups, timed.

``executor.controller.Backend`` on real hardware. Every pool of the plan (and the driver)
has one thread that runs that pool's calls one at a time in submission order, as the
contract says; a call first waits for its inputs' futures, then runs on its role's worker
group through :class:`executor.real.stages.StageRunner`, and its wall-clock start and end
(seconds from the backend's start) become an ``executor.trace.CallRecord``, the same
record the simulated backend writes. Calls of different pools run concurrently, as the
plan schedules them; Ray actors keep each group's own calls in order.

A call that spans two pools (a weight sync across pools) runs on the thread of the pool
it writes to (the rollout's), after the update it reads from has finished.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from typing import Iterable, Mapping

from executor.trace import CallRecord

DRIVER = "driver"
_STOP = object()


class RayBackend:
    """Runs stage calls with ``runner`` (a :class:`executor.real.stages.StageRunner`)."""

    def __init__(self, runner, iteration_offset: int = 0, t0: float | None = None) -> None:
        """``iteration_offset``: the training step of the controller's iteration 0;
        ``t0``: the ``time.perf_counter()`` that record times count from (default: now)."""
        self.runner = runner
        self.iteration_offset = iteration_offset
        self.t0 = time.perf_counter() if t0 is None else t0
        self._futures: list[Future] = []
        self._calls: list = []
        self._records: list[CallRecord] = []
        self._lock = threading.Lock()
        self._queues: dict[object, queue.Queue] = {}
        self._threads: list[threading.Thread] = []
        self.outputs: dict[int, dict[str, object]] = {}
        """Training step -> job -> output, for the steps in flight (the runner reads them)."""

    # ---- the Backend protocol -------------------------------------------------------------
    def submit(self, call, deps: Mapping[str, int]) -> int:
        handle = len(self._futures)
        future: Future = Future()
        self._futures.append(future)
        self._calls.append(call)
        self._queue_of(call).put((handle, call, [self._futures[h] for h in deps.values()]))
        return handle

    def wait(self, handles: Iterable[int]) -> None:
        futures = [self._futures[h] for h in handles]
        wait_futures(futures)
        for f in futures:
            if f.exception() is not None:
                raise f.exception()

    def result(self, handle: int):
        return self._futures[handle].result()

    def records(self) -> list[CallRecord]:
        with self._lock:
            return sorted(self._records, key=lambda r: (r.start_s, r.end_s))

    def close(self) -> None:
        """Stop the pool threads (after the last wait)."""
        for q in self._queues.values():
            q.put(_STOP)
        for t in self._threads:
            t.join(timeout=60)
        self._queues.clear()
        self._threads.clear()

    # ---- the pool threads -------------------------------------------------------------
    def _queue_of(self, call) -> queue.Queue:
        key = DRIVER if call.on_driver else call.pools[-1]
        if key not in self._queues:
            self._queues[key] = queue.Queue()
            thread = threading.Thread(target=self._serve, args=(self._queues[key],), name=f"rlplan-pool-{key}",
                                      daemon=True)
            self._threads.append(thread)
            thread.start()
        return self._queues[key]

    def _serve(self, q: queue.Queue) -> None:
        while (item := q.get()) is not _STOP:
            handle, call, inputs = item
            future = self._futures[handle]
            try:
                wait_futures(inputs)
                failed = next((f.exception() for f in inputs if f.exception() is not None), None)
                if failed is not None:
                    raise failed
                step = call.iteration + self.iteration_offset
                done = self.outputs.setdefault(step, {})
                start = time.perf_counter() - self.t0
                output, args = self.runner.run(call, step, done)
                end = time.perf_counter() - self.t0
                done[call.job] = output
                with self._lock:
                    self._records.append(CallRecord(call.job, call.kind, tuple(call.roles), tuple(call.pools), step,
                                                    start, end, args))
                future.set_result(output)
            except BaseException as err:  # noqa: BLE001 - handed to whoever waits on the call
                future.set_exception(err)
