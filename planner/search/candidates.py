"""Candidate layouts per role and GPU count, priced by the cost model.

A candidate is everything the search may choose for one role once it knows how many GPUs
of which node group the role's pool has: the parallel layout (training, forward-only or
generation), whether its weights wait on the host between stages, the time of each of
its stages and its memory per GPU (resident between stages vs only during them).
Candidates that do not fit in memory are dropped; candidates that another one beats on
every count (time of every stage, both kinds of memory, and what weight sync depends on)
are pruned, so the search space stays small without losing an optimum.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.cost_model import memory as mem
from planner.cost_model.costs import StageCost
from planner.errors import PlanError
from planner.hardware import ClusterSpec, GpuSet
from planner.models import ModelSpec
from planner.parallel import GenerationConfig, ParallelConfig

TP_CHOICES = (1, 2, 4, 8)
PP_CHOICES = (1, 2, 4, 8, 16)
MICRO_BATCHES = (1, 2, 4, 8)
RECOMPUTES = ("none", "selective", "full")
ROLLOUT_UTILS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""vLLM gpu_memory_utilization levels offered to a rollout sharing GPUs with trainers
(verl suggests 0.5-0.7 when colocated, 0.8-0.9 when offloading; docs/perf)."""


@dataclass(frozen=True)
class Candidate:
    """One choice for one role on ``num_gpus`` GPUs of node group ``group``."""

    role: str
    group: int
    num_gpus: int
    layout: ParallelConfig | GenerationConfig
    offload: bool
    stage_times: dict[str, float]
    static_bytes: float
    """Per GPU, held for the whole iteration (training states; weights unless offloaded)."""
    transient_bytes: float
    """Per GPU, held only while one of the role's stages runs (activations, KV cache)."""
    stage_costs: dict[str, StageCost] = field(default_factory=dict, compare=False, repr=False)

    @property
    def key(self) -> tuple:
        """What the search sees of this candidate (two candidates equal here are interchangeable)."""
        return (self.role, self.group, self.num_gpus, self.layout, self.offload)

    def describe(self) -> str:
        return self.layout.describe() + ("/offload" if self.offload else "")


def pool_sizes(cluster: ClusterSpec, group: int, cap: int) -> list[int]:
    """GPU counts a pool may have in node group ``group``: divisors of a node (powers of two
    below it), or whole nodes. Such pools always pack onto the group's nodes when their
    sum fits, so the search only needs the sum constraint. Above 8 nodes the grid of
    node counts thins out geometrically (every count up to 8, then steps of 2 up to 16,
    4 up to 32, 8 up to 64 ...: at most 12.5% apart), which the README states as the
    candidate space's resolution; the whole cluster is always a size."""
    g = cluster.node_groups[group]
    per_node = g.gpus_per_node
    limit = min(cap, g.num_gpus)
    sizes = [s for s in (1, 2, 4, 8, 16, 32) if s < per_node and per_node % s == 0 and s <= limit]
    max_nodes = limit // per_node
    nodes, step = 1, 1
    while nodes <= max_nodes:
        sizes.append(nodes * per_node)
        if nodes >= 8 * step:
            step *= 2
        nodes += step
    if max_nodes and max_nodes * per_node not in sizes:
        sizes.append(max_nodes * per_node)
    return sorted(set(sizes))


def _pp_allowed(model: ModelSpec, tp: int, pp: int, per_node: int, executor_only: bool) -> bool:
    """Pipeline stages only once tensor parallelism fills the node (Megatron's and verl's
    advice: "prefer increasing TP first, add PP when necessary"), and only as many as
    divide the layers."""
    if pp == 1:
        return True
    if executor_only or model.num_layers % pp:
        return False
    return tp == max(t for t in TP_CHOICES if t <= per_node and model.num_heads % t == 0)


def _tp_options(model: ModelSpec, num_gpus: int, per_node: int, forced: int | None = None) -> list[int]:
    options = []
    for tp in TP_CHOICES:
        if tp > per_node or num_gpus % tp or model.num_heads % tp:
            continue
        if model.num_kv_heads % tp and tp % model.num_kv_heads:
            continue
        if forced is not None and tp != forced:
            continue
        options.append(tp)
    return options


def dominates(a: Candidate, b: Candidate, extra_a=(), extra_b=()) -> bool:
    """``a`` is no worse than ``b`` on memory, every stage time and every extra cost."""
    return (a.static_bytes <= b.static_bytes and a.transient_bytes <= b.transient_bytes
            and all(a.stage_times[s] <= b.stage_times[s] for s in b.stage_times)
            and all(x <= y for x, y in zip(extra_a, extra_b)))


def prune(cands: list[Candidate], sync_key=lambda c: (), extra=lambda c: ()) -> list[Candidate]:
    """Drop candidates dominated by another with the same ``sync_key``, comparing ``extra``
    costs (e.g. weight-sync times against each partner) too."""
    kept: list[tuple[Candidate, tuple]] = []
    for c in sorted(cands, key=lambda c: (sum(c.stage_times.values()), c.static_bytes, c.transient_bytes)):
        ec = tuple(extra(c))
        if any(sync_key(k) == sync_key(c) and dominates(k, c, ek, ec) for k, ek in kept):
            continue
        kept.append((c, ec))
    return [c for c, _ in kept]


class CandidateBuilder:
    """Prices every layout of every role on every GPU count, with caching."""

    def __init__(self, inputs) -> None:
        self.inputs = inputs
        self.cluster: ClusterSpec = inputs.cluster
        self.workload = inputs.workload
        self.dataflow = inputs.dataflow
        self.options = inputs.options
        self._cache: dict[tuple, list[Candidate]] = {}

    # ---- public ------------------------------------------------------------------------
    def candidates(self, role: str, group: int, num_gpus: int) -> list[Candidate]:
        key = (role, group, num_gpus)
        if key not in self._cache:
            gpus = self.cluster.gpu_set(num_gpus, group)
            spec = self.dataflow.roles[role]
            stages = self.dataflow.stages_of(role)
            if self.simulates_generation(role):
                found = self._rollout(role, group, gpus, stages)
            elif any(s.kind.value == "train" for s in stages):
                found = self._trainer(role, group, gpus, stages)
            else:
                found = self._forward_only(role, group, gpus, stages, spec.head)
            self._cache[key] = found
        return self._cache[key]

    def is_priced(self, role: str, group: int, num_gpus: int) -> bool:
        return (role, group, num_gpus) in self._cache

    def store(self, key: tuple[str, int, int], found: list[Candidate]) -> None:
        """Take candidates priced elsewhere (another process) for ``key``."""
        self._cache[key] = found

    def simulates_generation(self, role: str) -> bool:
        return any(s.kind.value == "generate" for s in self.dataflow.stages_of(role))

    # ---- per kind of role ----------------------------------------------------------------
    def _shapes(self, model: ModelSpec, gpus: GpuSet):
        """(tp, pp, dp) splits of ``gpus`` worth pricing for ``model``."""
        for tp in _tp_options(model, gpus.num_gpus, gpus.gpus_per_node):
            for pp in PP_CHOICES:
                if _pp_allowed(model, tp, pp, gpus.gpus_per_node, self.options.executor_only) \
                        and gpus.num_gpus % (tp * pp) == 0:
                    yield tp, pp, gpus.num_gpus // (tp * pp)

    def _trainer(self, role, group, gpus: GpuSet, stages) -> list[Candidate]:
        from planner.cost_model.inference import forward_pass
        from planner.cost_model.training import train_step

        model = self.inputs.models[role]
        head = self.dataflow.roles[role].head
        train = next(s for s in stages if s.kind.value == "train")
        mini_batch = max(1, train.num_seqs // train.mini_batches)
        seq_len = train.prompt_len + train.response.max_len
        out = []
        forwards: dict[tuple, StageCost] = {}  # a forward pass ignores recompute: priced once for all three
        for tp, pp, dp in self._shapes(model, gpus):
            for zero in ((1,) if pp > 1 else (1, 3)):
                for recompute in RECOMPUTES:
                    for mb in MICRO_BATCHES:
                        if dp * mb > mini_batch:
                            continue
                        par = ParallelConfig(tp=tp, pp=pp, dp=dp, zero=zero, sequence_parallel=tp > 1,
                                             recompute=recompute, micro_batch=mb)
                        cand = self._price_trainer(role, group, gpus, model, par, stages, train, mini_batch,
                                                   seq_len, head, train_step, forward_pass, forwards)
                        if cand is not None:
                            out.append(cand)
        return prune(out, lambda c: (c.layout.tp, c.layout.pp, c.layout.dp))

    def _price_trainer(self, role, group, gpus, model, par, stages, train, mini_batch, seq_len, head,
                       train_step, forward_pass, forwards) -> Candidate | None:
        try:
            step = train_step(model, par, gpus, mini_batch, seq_len, train.tokens_per_seq)
        except PlanError:
            return None
        if not mem.fits(step, gpus.gpu):
            return None
        steps = train.epochs * train.mini_batches
        costs = {train.name: step.repeated(steps)}
        times = {train.name: costs[train.name].time_s}
        transient = step.transient_bytes
        for stage in stages:
            if stage.kind.value != "forward":
                continue
            key = (stage.name, par.tp, par.pp, par.dp, par.zero, par.micro_batch)
            if key not in forwards:
                forwards[key] = forward_pass(model, par, gpus, stage.num_seqs,
                                             stage.prompt_len + stage.response.max_len, stage.tokens_per_seq,
                                             head=head)
            fwd = forwards[key]
            costs[stage.name] = fwd
            times[stage.name] = fwd.time_s
            transient = max(transient, fwd.transient_bytes)
        return Candidate(role, group, gpus.num_gpus, par, False, times, step.static_bytes, transient, costs)

    def _forward_only(self, role, group, gpus: GpuSet, stages, head: str) -> list[Candidate]:
        from planner.cost_model.inference import forward_pass
        from planner.cost_model.transfer import offload, onload

        model = self.inputs.models[role]
        out = []
        for tp, pp, dp in self._shapes(model, gpus):
            for zero in (0, 3):
                if zero == 3 and (dp == 1 or pp > 1):
                    continue
                for mb in MICRO_BATCHES:
                    par = ParallelConfig(tp=tp, pp=pp, dp=dp, zero=zero, micro_batch=mb)
                    costs, times, static, transient = {}, {}, 0.0, 0.0
                    try:
                        for stage in stages:
                            c = forward_pass(model, par, gpus, stage.num_seqs,
                                             stage.prompt_len + stage.response.max_len, stage.tokens_per_seq,
                                             head=head)
                            costs[stage.name], times[stage.name] = c, c.time_s
                            static, transient = max(static, c.static_bytes), max(transient, c.transient_bytes)
                    except PlanError:
                        continue
                    variants = [(False, static, transient, times)]
                    if self.options.allow_offload:
                        swap = onload(static, gpus.gpu).time_s + offload(static, gpus.gpu).time_s
                        variants.append((True, 0.0, transient + static, {k: v + swap for k, v in times.items()}))
                    for off, st, tr, tm in variants:
                        cand = Candidate(role, group, gpus.num_gpus, par, off, dict(tm), st, tr, costs)
                        if st + tr <= mem.usable_bytes(gpus.gpu):
                            out.append(cand)
        return prune(out)

    def _rollout(self, role, group, gpus: GpuSet, stages) -> list[Candidate]:
        from planner.cost_model.generation import generate

        model = self.inputs.models[role]
        lengths = {s.name: _arrival_order(s.response.planning_lengths(s.num_seqs)) for s in stages}
        out = []
        for tp in _tp_options(model, gpus.num_gpus, gpus.gpus_per_node, self.options.rollout_tp):
            replicas = gpus.num_gpus // tp
            for util in ROLLOUT_UTILS:
                gen = GenerationConfig(tp=tp, replicas=replicas, gpu_memory_utilization=util)
                try:
                    costs = {s.name: generate(model, gen, gpus, lengths[s.name], s.prompt_len) for s in stages}
                except PlanError:
                    continue
                times = {name: c.time_s for name, c in costs.items()}
                out.append(Candidate(role, group, gpus.num_gpus, gen, False, times, 0.0,
                                     util * gpus.gpu.memory_bytes, costs))
                # Once the KV cache holds back no engine, more memory changes no step: the
                # higher levels would take as long with more memory (dominated), so stop.
                if not any(c.info["kv_bound_engines"] for c in costs.values()):
                    break
        return prune(out, lambda c: (c.layout.tp,))


def _arrival_order(lengths):
    """Requests reach the engine in no particular order of their (unknown) lengths: a
    fixed seeded shuffle of the planning quantiles, so every call sees the same order."""
    import numpy as np

    return np.random.default_rng(0).permutation(lengths)
