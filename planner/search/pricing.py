"""Prices a complete assignment (pools, a candidate per role) exactly: durations of every
job, which pools each occupies, lags of edges that cross pools, memory per pool, and the
optimal schedule. The CP-SAT model encodes exactly these rules; tests check both agree."""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.cost_model import memory as mem
from planner.search.candidates import Candidate
from planner.search.schedule import Edge, JobGraph, ScheduledJob, build_job_graph, driver_time, list_schedule, objective


@dataclass(frozen=True)
class Assignment:
    """Every choice of a plan: each role's pool and candidate. Pools are numbered 0..k-1."""

    role_pool: dict[str, int]
    choice: dict[str, Candidate]

    @property
    def pools(self) -> dict[int, tuple[int, int]]:
        """pool -> (node group, GPU count)."""
        return {p: (self.choice[r].group, self.choice[r].num_gpus) for r, p in self.role_pool.items()}

    def roles_in(self, pool: int) -> list[str]:
        return [r for r, p in self.role_pool.items() if p == pool]


@dataclass(frozen=True)
class Evaluation:
    objective_s: float
    schedule: dict[str, ScheduledJob]
    durations: dict[str, float]
    order: list[str]


KIB = 1024


def kib(nbytes: float) -> int:
    """Memory is counted in whole KiB (rounded up) by the evaluator and the solver alike."""
    return int(math.ceil(nbytes / KIB))


def usable_kib(cluster, group: int) -> int:
    return int(mem.usable_bytes(cluster.node_groups[group].gpu) // KIB)


class Pricer:
    """Everything placement-dependent about one search problem, as plain numbers."""

    def __init__(self, inputs) -> None:
        from planner.cost_model import transfer

        self.inputs = inputs
        self.graph: JobGraph = build_job_graph(inputs.dataflow)
        self.mode = inputs.options.mode
        self.first_job = next(n for n, j in self.graph.jobs.items() if j.kind == "generate")
        self.driver_durations = {n: driver_time(j) for n, j in self.graph.jobs.items() if j.on_driver}
        # Batches travel through the driver's object store (as verl's DataProto does), so an
        # edge's lag depends on its bytes and on whether it crosses pools, not on pool sizes.
        one_gpu = inputs.cluster.gpu_set(1, 0)
        self.edge_lag = {
            (e.src, e.dst): (transfer.move_batch(e.nbytes, one_gpu, one_gpu, True).time_s,
                             transfer.move_batch(e.nbytes, one_gpu, one_gpu, False).time_s)
            for e in self.graph.edges
        }
        self._orders = None
        self._colocated_s: dict[tuple, float] = {}
        self._evaluations: dict[tuple, Evaluation | None] = {}

    # ---- weight sync ------------------------------------------------------------------
    def sync_colocated_s(self, src: Candidate, dst: Candidate) -> float:
        """Reshard time on the shared GPUs; asked for the same pair by the pruning, every
        CP-SAT model and the evaluator, so it is priced once."""
        from planner.cost_model.transfer import reshard_colocated

        key = (src.role, src.group, src.num_gpus, src.layout, dst.layout)
        if key not in self._colocated_s:
            gpus = self.inputs.cluster.gpu_set(src.num_gpus, src.group)
            self._colocated_s[key] = reshard_colocated(self.inputs.models[src.role], src.layout, dst.layout,
                                                       gpus).time_s
        return self._colocated_s[key]

    def sync_cross_s(self, src: Candidate, dst: Candidate) -> float:
        from planner.cost_model.transfer import sync_across_pools

        cluster = self.inputs.cluster
        return sync_across_pools(self.inputs.models[src.role], cluster.gpu_set(src.num_gpus, src.group),
                                 dst.layout, cluster.gpu_set(dst.num_gpus, dst.group)).time_s

    # ---- one assignment -------------------------------------------------------------------
    def durations(self, a: Assignment) -> dict[str, float]:
        out = dict(self.driver_durations)
        for name, job in self.graph.jobs.items():
            if job.kind == "sync":
                src, dst = job.roles
                ca, cd = a.choice[src], a.choice[dst]
                same = a.role_pool[src] == a.role_pool[dst]
                out[name] = self.sync_colocated_s(ca, cd) if same else self.sync_cross_s(ca, cd)
            elif not job.on_driver:
                out[name] = a.choice[job.roles[0]].stage_times[name]
        return out

    def job_pools(self, a: Assignment) -> dict[str, tuple[int, ...]]:
        return {name: tuple(sorted({a.role_pool[r] for r in job.roles})) for name, job in self.graph.jobs.items()}

    def lag_fn(self, a: Assignment):
        jobs = self.graph.jobs

        def lag(e: Edge) -> float:
            same_lag, cross_lag = self.edge_lag[(e.src, e.dst)]
            u, v = jobs[e.src], jobs[e.dst]
            if u.on_driver or v.on_driver:
                return cross_lag
            return same_lag if a.role_pool[u.roles[0]] == a.role_pool[v.roles[0]] else cross_lag

        return lag

    def pool_memory(self, a: Assignment) -> dict[int, float]:
        """Peak bytes per GPU of each pool: all residents' static memory plus the largest
        transient (in KiB steps, exactly as the CP-SAT model counts it)."""
        out = {}
        for p in set(a.role_pool.values()):
            roles = a.roles_in(p)
            out[p] = KIB * (sum(kib(a.choice[r].static_bytes) for r in roles)
                            + max(kib(a.choice[r].transient_bytes) for r in roles))
        return out

    def feasible(self, a: Assignment) -> bool:
        cluster = self.inputs.cluster
        for p, (group, n) in a.pools.items():
            if any(a.choice[r].num_gpus != n or a.choice[r].group != group for r in a.roles_in(p)):
                return False
        used: dict[int, int] = {}
        for group, n in a.pools.values():
            used[group] = used.get(group, 0) + n
        if any(used[g] > cluster.node_groups[g].num_gpus for g in used):
            return False
        if self.inputs.options.max_gpus is not None and sum(used.values()) > self.inputs.options.max_gpus:
            return False
        for p, peak in self.pool_memory(a).items():
            group = a.pools[p][0]
            if peak > KIB * usable_kib(cluster, group):
                return False
        return True

    def orders(self) -> list[list[str]]:
        if self._orders is None:
            self._orders = self.graph.topological_orders()
        return self._orders

    def evaluate(self, a: Assignment, order: list[str] | None = None) -> Evaluation | None:
        """The best schedule of ``a`` (over every order, or the given one); None if infeasible."""
        if order is not None:
            return self._evaluate(a, order)
        key = tuple((r, a.role_pool[r], a.choice[r].key) for r in sorted(a.choice))
        if key not in self._evaluations:
            self._evaluations[key] = self._evaluate(a, None)
        return self._evaluations[key]

    def _evaluate(self, a: Assignment, order: list[str] | None) -> Evaluation | None:
        if not self.feasible(a):
            return None
        durations, pools, lag = self.durations(a), self.job_pools(a), self.lag_fn(a)
        best = None
        for candidate_order in ([order] if order is not None else self.orders()):
            sched = list_schedule(candidate_order, self.graph, durations, pools, lag)
            value = objective(sched, self.mode, durations, pools, self.first_job)
            if best is None or value < best.objective_s - 1e-12:
                best = Evaluation(value, sched, durations, list(candidate_order))
        return best
