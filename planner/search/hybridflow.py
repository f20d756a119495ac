"""HybridFlow's Algorithm 1 ("Device Mapping for an RLHF Dataflow", Sheng et al. 2024,
§6 and App. C), implemented as a second, independent search on rlplan's cost model.

1. ``get_placements``: every partition of the models into colocated sets (the Bell
   number: 15 for PPO's four models). The rollout is the actor's generation engine, so it
   always lives in the actor's set (3D-HybridEngine).
2. ``get_min_alloc``: for each set, the fewest GPUs on which its models fit together.
3. ``enum_alloc``: every allocation of GPUs to the sets at or above those minimums.
4. ``auto_parallel``: each model's fastest layout on its allocation (cached per model and
   GPU count, as the paper does), keeping the set within memory.
5. ``d_cost``: for each stage level of the dataflow, colocated models run one after
   another (sum over a set) and sets run side by side (max over sets); the iteration cost
   is the sum over levels. Weight resharding and data transfers are not in d_cost (the
   paper's cost omits them); the chosen mapping is then priced by rlplan's exact
   evaluator so it can be compared with the CP-SAT plan.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import networkx as nx
import numpy as np

from planner.search.candidates import Candidate, CandidateBuilder, pool_sizes
from planner.search.pricing import Assignment, Pricer, kib, usable_kib


@dataclass
class HybridFlowResult:
    assignment: Assignment | None
    d_cost_s: float
    search_time_s: float
    placements: int
    allocations: int
    timed_out: bool = False


def set_partitions(items: list[str]):
    """Every partition of ``items`` into non-empty sets (restricted-growth enumeration)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in set_partitions(rest):
        for i in range(len(part)):
            yield part[:i] + [[first] + part[i]] + part[i + 1:]
        yield [[first]] + part


def stage_levels(dataflow) -> list[list[str]]:
    """The dataflow's stages grouped by topological generation (generation, inference, training)."""
    return [sorted(level) for level in nx.topological_generations(dataflow.graph)]


class _SetPricer:
    """auto_parallel and memory for one colocated set on n GPUs, cached."""

    def __init__(self, builder: CandidateBuilder, cluster, levels: list[list[str]]):
        self.builder, self.cluster, self.levels = builder, cluster, levels
        self.cache: dict[tuple, tuple[dict[str, Candidate], np.ndarray] | None] = {}

    def choose(self, members: tuple[str, ...], n: int):
        key = (members, n)
        if key not in self.cache:
            self.cache[key] = self._choose(members, n)
        return self.cache[key]

    def _choose(self, members, n):
        cands = {r: self.builder.candidates(r, 0, n) for r in members}
        if any(not c for c in cands.values()):
            return None
        cap = usable_kib(self.cluster, 0)
        pick = {r: min(c, key=lambda x: sum(x.stage_times.values())) for r, c in cands.items()}

        def fits(choice) -> bool:
            return sum(kib(c.static_bytes) for c in choice.values()) + max(kib(c.transient_bytes) for c in choice.values()) <= cap

        # Shrink the biggest memory users to their leanest layouts until the set fits (t_min, p_min).
        for r in sorted(members, key=lambda r: -(pick[r].static_bytes + pick[r].transient_bytes)):
            if fits(pick):
                break
            pick[r] = min(cands[r], key=lambda x: (x.static_bytes + x.transient_bytes, sum(x.stage_times.values())))
        if not fits(pick):
            return None
        per_level = np.array([sum(pick[r].stage_times.get(s, 0.0) for r in members for s in level)
                              for level in self.levels])
        return pick, per_level


def hybridflow_search(inputs, builder: CandidateBuilder, pricer: Pricer, time_limit_s: float = 600.0) -> HybridFlowResult:
    t0 = time.perf_counter()
    cluster = inputs.cluster
    total = min(inputs.options.max_gpus or cluster.num_gpus, cluster.node_groups[0].num_gpus)
    sizes = np.array(pool_sizes(cluster, 0, total))
    levels = stage_levels(inputs.dataflow)
    models = [r for r in inputs.roles if r != "rollout"]
    sp = _SetPricer(builder, cluster, levels)
    best = (float("inf"), None)
    placements = allocations = 0
    timed_out = False
    for partition in set_partitions(models):
        placements += 1
        sets = [tuple(s + ["rollout"]) if "actor" in s and "rollout" in inputs.roles else tuple(s) for s in partition]
        # get_min_alloc and the per-size level costs of every set.
        costs, valid = [], []
        for members in sets:
            rows, ok = [], []
            for n in sizes:
                chosen = sp.choose(members, int(n))
                ok.append(chosen is not None)
                rows.append(chosen[1] if chosen is not None else np.full(len(levels), np.inf))
            costs.append(np.array(rows))          # [size, level]
            valid.append(np.array(ok))
        if not all(v.any() for v in valid):
            continue
        # enum_alloc + d_cost: loop over the sizes of all but the last two sets, and
        # evaluate the last two sets' sizes at once as a grid.
        k = len(sets)
        idx = [np.flatnonzero(v) for v in valid]
        if k == 1:
            head, tail = [], [idx[0]]
        else:
            head, tail = idx[:-2], idx[-2:]
        for combo in itertools.product(*head):
            used = sum(int(sizes[i]) for i in combo)
            fixed = (np.max([costs[s][i] for s, i in enumerate(combo)], axis=0) if combo
                     else np.zeros(len(levels)))
            if len(tail) == 1:
                grid = np.maximum(fixed, costs[-1][tail[0]])[:, None, :]
                gpus = sizes[tail[0]][:, None]
                shape = (len(tail[0]), 1)
            else:
                a, b = costs[-2][tail[0]], costs[-1][tail[1]]
                grid = np.maximum(fixed, np.maximum(a[:, None, :], b[None, :, :]))
                gpus = sizes[tail[0]][:, None] + sizes[tail[1]][None, :]
                shape = (len(tail[0]), len(tail[1]))
            d = np.where(gpus + used <= total, grid.sum(axis=-1), np.inf)
            allocations += int(np.isfinite(d).sum())
            flat = int(np.argmin(d))
            if d.flat[flat] < best[0]:
                i, j = np.unravel_index(flat, shape)
                chosen = list(combo) + ([int(tail[0][i])] if len(tail) == 1 else [int(tail[0][i]), int(tail[1][j])])
                best = (float(d.flat[flat]), (sets, chosen))
            if time.perf_counter() - t0 > time_limit_s:
                timed_out = True
                break
        if timed_out:
            break
    if best[1] is None:
        return HybridFlowResult(None, float("inf"), time.perf_counter() - t0, placements, allocations, timed_out)
    sets, idx = best[1]
    role_pool, choice = {}, {}
    for p, (members, i) in enumerate(zip(sets, idx)):
        pick, _ = sp.choose(members, int(sizes[i]))
        for r in members:
            role_pool[r], choice[r] = p, pick[r]
    return HybridFlowResult(Assignment(role_pool, choice), best[0], time.perf_counter() - t0, placements, allocations,
                            timed_out)


__all__ = ["hybridflow_search", "HybridFlowResult", "set_partitions", "stage_levels"]
