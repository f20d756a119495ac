"""The controller: one RL driver program for both backends (simulated and real).

An algorithm is its dataflow (``algos/``): stages on roles with named inputs. The
controller turns a plan and that dataflow into :class:`StageCall`s, one per job and
iteration, and submits them to a :class:`Backend` with the futures of their inputs, as
verl's driver calls worker groups. It never looks at durations: timing is the backend's.

The contract
------------
- ``StageCall``: the job (``rollout.generate``, ``actor.update``,
  ``rollout.sync_weights``), its kind (generate | forward | rule_reward | compute | train |
  sync), the roles and pools it occupies, the iteration, its named inputs
  (payload -> producing job, e.g. ``responses <- rollout.generate``), the dataflow stage
  (None for a weight sync) and, for generation, which weights it samples with.
  ``call.method`` is the worker-group method it maps to: ``generate``, ``log_prob``,
  ``values``, ``score``, ``update``, ``sync_weights`` on a role, or a driver function
  (``rule``, ``advantages``, ``filter``).
- ``Backend``: ``submit(call, deps) -> handle`` where ``deps`` maps each input's payload
  name (and ``weights`` for the rollout's previous sync) to the producer's handle and
  returns at once (a future); ``wait(handles)`` blocks (or, simulated, advances virtual
  time) until they are done; ``result(handle)`` is the call's output; ``records()``
  lists one ``executor.trace.CallRecord`` per finished call. A backend runs the calls of
  one pool one at a time, in the order they were submitted: the controller submits in
  the order of the plan's CP-SAT schedule, so every pool runs its calls in that order.
- Modes (``plan["mode"]``): ``sync`` submits iteration k, waits for all of it, then
  iteration k+1 (verl's on-policy loop); the generation of k+1 reads the weights synced
  after update k. ``one-step-off``: the generation of iteration k+1 is submitted before
  the training calls of iteration k, so it overlaps them; it samples with the weights
  synced after update k-1 (one step stale), and the sync of update k waits for it to
  finish (it occupies the rollout's pool). Where generation k+1 enters iteration k's
  submission order (``generation_after``: after which job of iteration k; None: before
  all of them) decides the order of calls on a pool the rollout shares with other
  roles; ``executor.sim.one_step_off.best_generation_slot`` picks it for a plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Mapping, Protocol

from planner.errors import require

Handle = Hashable
"""A backend's future for one call (opaque to the controller)."""
WEIGHTS = "weights"
"""Payload name of a weight dependency (update -> sync -> the next generation)."""
MODES = ("sync", "one-step-off")


@dataclass(frozen=True)
class StageCall:
    """One job of one iteration, as the controller submits it."""

    job: str
    kind: str
    roles: tuple[str, ...]
    """GPU roles it occupies (a weight sync: source and destination); empty on the driver."""
    pools: tuple[int, ...]
    iteration: int
    inputs: tuple[tuple[str, str], ...]
    """(payload, producing job) of each input in this iteration, in dataflow order."""
    stage: object | None = None
    """The dataflow ``Stage`` (None for a weight sync)."""
    weights_version: int | None = None
    """Generation: how many actor updates its weights include (iteration k in sync mode, k-1 one-step-off)."""

    @property
    def role(self) -> str | None:
        """The role whose worker group serves the call (the receiving role of a sync); None on the driver."""
        return self.job.split(".", 1)[0] if self.roles else None

    @property
    def method(self) -> str:
        """The worker-group method (``generate``, ``log_prob``, ``update``, ...) or driver function."""
        return self.job.split(".", 1)[-1]

    @property
    def on_driver(self) -> bool:
        return not self.roles


class Backend(Protocol):
    """What the controller needs of a backend (module docstring)."""

    def submit(self, call: StageCall, deps: Mapping[str, Handle]) -> Handle: ...

    def wait(self, handles: Iterable[Handle]) -> None: ...

    def result(self, handle: Handle) -> Any: ...

    def records(self) -> list: ...


@dataclass(frozen=True)
class Job:
    """One job of the iteration: what the controller needs to make its calls."""

    name: str
    kind: str
    roles: tuple[str, ...]
    pools: tuple[int, ...]
    inputs: tuple[tuple[str, str], ...]
    stage: object | None


def plan_jobs(plan: dict, dataflow) -> list[Job]:
    """The iteration's jobs in the order of the plan's schedule, with their named inputs.

    The job set and the weight-sync edges come from ``planner.search.schedule``'s job
    graph of the dataflow (the one the search scheduled), the payload names from the
    dataflow's edges, the order and the pools from the plan.
    """
    from planner.search.schedule import build_job_graph

    graph = build_job_graph(dataflow)
    scheduled = {entry["job"]: entry for entry in plan["schedule"]}
    require(set(scheduled) == set(graph.jobs),
            f"the plan schedules {', '.join(scheduled)} but the {dataflow.algo} dataflow has "
            f"{', '.join(graph.jobs)}: re-plan it with this version")
    inputs: dict[str, list[tuple[str, str]]] = {name: [] for name in graph.jobs}
    for edge in graph.edges:
        data = dataflow.graph.get_edge_data(edge.src, edge.dst) or {}
        inputs[edge.dst].append((data.get("payload", WEIGHTS), edge.src))
    jobs = []
    for entry in plan["schedule"]:
        spec = graph.jobs[entry["job"]]
        jobs.append(Job(spec.name, spec.kind, spec.roles, tuple(entry["pools"]), tuple(inputs[spec.name]), spec.stage))
    return jobs


class Controller:
    """Drives iterations of one plan on one backend (module docstring)."""

    def __init__(self, plan: dict, dataflow, backend: Backend, generation_after: str | None = None) -> None:
        self.mode = plan.get("mode", "sync")
        require(self.mode in MODES, f"the plan's mode {self.mode!r} is not one of {', '.join(MODES)}: re-plan it")
        self.jobs = plan_jobs(plan, dataflow)
        self.backend = backend
        names = [j.name for j in self.jobs]
        require(generation_after is None or generation_after in names,
                f"generation_after {generation_after!r} is not a job of the plan: use one of {', '.join(names)}")
        self.generation_after = generation_after
        receivers = {role for role, spec in dataflow.roles.items() if spec.weights_from}
        self.syncs = {f"{role}.sync_weights": role for role in receivers}
        self._fed_by_sync = {job.name: f"{job.roles[0]}.sync_weights"
                             for job in self.jobs if job.kind == "generate" and job.roles[0] in receivers}
        self.handles: list[dict[str, Handle]] = []

    def run(self, iterations: int) -> list[dict[str, Handle]]:
        """Run ``iterations`` iterations; returns each iteration's handles by job name."""
        require(isinstance(iterations, int) and iterations >= 1,
                f"iterations must be a positive integer, got {iterations!r}")
        self.handles = [{} for _ in range(iterations)]
        if self.mode == "sync":
            for k in range(iterations):
                self._submit(k, self.jobs)
                self.backend.wait(self.handles[k].values())
            return self.handles
        ahead = [j for j in self.jobs if j.name in self._fed_by_sync]
        rest = [j for j in self.jobs if j.name not in self._fed_by_sync]
        names = [j.name for j in rest]
        cut = names.index(self.generation_after) + 1 if self.generation_after in names else 0
        self._submit(0, ahead)
        for k in range(iterations):
            self._submit(k, rest[:cut])
            if k + 1 < iterations:
                self._submit(k + 1, ahead)
            self._submit(k, rest[cut:])
        self.backend.wait(h for per_iteration in self.handles for h in per_iteration.values())
        return self.handles

    def _weights_iteration(self, k: int) -> int:
        """The iteration whose update (and sync) produced the weights generation k samples with."""
        return k - 1 if self.mode == "sync" else k - 2

    def _submit(self, k: int, jobs: list[Job]) -> None:
        mine = self.handles[k]
        for job in jobs:
            deps = {payload: mine[src] for payload, src in job.inputs}
            version = None
            if job.name in self._fed_by_sync:
                source = self._weights_iteration(k)
                version = max(0, source + 1)
                if source >= 0:
                    deps[WEIGHTS] = self.handles[source][self._fed_by_sync[job.name]]
            call = StageCall(job.name, job.kind, job.roles, job.pools, k, job.inputs, job.stage, version)
            mine[job.name] = self.backend.submit(call, deps)
