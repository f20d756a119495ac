"""The iteration as jobs on pools, and the exact schedule of a fixed assignment.

The CP-SAT model (``cpsat.py``) and this evaluator share one definition of the jobs: the
dataflow's stages, plus a weight-sync job after each update whose weights feed another
role (actor -> rollout). A job occupies the pools of its roles (the sync occupies both
ends); an edge carries a lag when its batch crosses pools. Given every choice, the best
schedule is found by serial list scheduling over every topological order: processing the
jobs of an optimal schedule in order of their start times reproduces it or better, so the
minimum over orders is the optimum (the classical argument for the serial scheme).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import networkx as nx

from planner.cost_model.driver import driver_stage_time

BATCH_BYTES_PER_TOKEN = 12
"""Bytes moved per token between stages: token id (4), a log-prob or value (4), a mask or
advantage (4); verl's DataProto carries about this much per token."""


@dataclass(frozen=True)
class Job:
    name: str
    roles: tuple[str, ...]
    """GPU roles whose pools the job occupies; empty for driver-side stages."""
    kind: str
    stage: object | None = None
    """The dataflow ``Stage`` (None for weight-sync jobs)."""

    @property
    def on_driver(self) -> bool:
        return not self.roles


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    nbytes: float


@dataclass
class JobGraph:
    jobs: dict[str, Job]
    edges: list[Edge]
    syncs: list[tuple[str, str, str]]
    """(job name, source role, destination role) of every weight sync."""

    def topological_orders(self, limit: int = 50_000) -> list[list[str]]:
        g = nx.DiGraph()
        g.add_nodes_from(self.jobs)
        g.add_edges_from((e.src, e.dst) for e in self.edges)
        return list(itertools.islice(nx.all_topological_sorts(g), limit))

    def predecessors(self) -> dict[str, list[Edge]]:
        preds: dict[str, list[Edge]] = {name: [] for name in self.jobs}
        for e in self.edges:
            preds[e.dst].append(e)
        return preds


def build_job_graph(dataflow) -> JobGraph:
    jobs: dict[str, Job] = {}
    for name in dataflow.order():
        stage = dataflow.stages[name]
        jobs[name] = Job(name, (stage.role,) if stage.role else (), stage.kind.value, stage)
    edges = []
    for u, v in dataflow.graph.edges:
        su = dataflow.stages[u]
        edges.append(Edge(u, v, su.num_seqs * su.tokens_per_seq * BATCH_BYTES_PER_TOKEN))
    syncs = []
    for role, spec in dataflow.roles.items():
        if not spec.weights_from:
            continue
        src = spec.weights_from
        name = f"{role}.sync_weights"
        jobs[name] = Job(name, (src, role), "sync")
        for stage in dataflow.stages_of(src):
            if stage.kind.value == "train":
                edges.append(Edge(stage.name, name, 0.0))
        syncs.append((name, src, role))
    return JobGraph(jobs, edges, syncs)


def driver_time(job: Job) -> float:
    stage = job.stage
    return driver_stage_time(job.kind, stage.num_seqs, stage.tokens_per_seq)


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    start_s: float
    end_s: float
    pools: tuple[int, ...]


def list_schedule(order, graph: JobGraph, durations: dict[str, float], job_pools: dict[str, tuple[int, ...]],
                  lag) -> dict[str, ScheduledJob]:
    """Serial schedule of ``order``: each job starts when its inputs have arrived and its pools are free."""
    preds = graph.predecessors()
    free: dict[int, float] = {}
    out: dict[str, ScheduledJob] = {}
    for name in order:
        ready = max((out[e.src].end_s + lag(e) for e in preds[name]), default=0.0)
        pools = job_pools[name]
        start = max([ready] + [free.get(p, 0.0) for p in pools])
        end = start + durations[name]
        for p in pools:
            free[p] = end
        out[name] = ScheduledJob(name, start, end, pools)
    return out


def objective(schedule: dict[str, ScheduledJob], mode: str, durations: dict[str, float],
              job_pools: dict[str, tuple[int, ...]], first_job: str) -> float:
    """Iteration time (``sync``) or steady-state period (``one-step-off``).

    One-step-off: generation of iteration k+1 runs while iteration k is processed, so the
    period is bounded by each pool's busy time (its jobs cannot overlap) and by the
    part of an iteration after its generation (which must finish before the next batch
    is consumed)."""
    makespan = max(j.end_s for j in schedule.values())
    if mode == "sync":
        return makespan
    busy: dict[int, float] = {}
    for name, pools in job_pools.items():
        for p in pools:
            busy[p] = busy.get(p, 0.0) + durations[name]
    return max([makespan - schedule[first_job].end_s] + list(busy.values()))
