"""The layouts people write by hand today, priced on the same cost model as the plan.

Each baseline is a constrained search over the same candidates: its pools are fixed and
its layouts are restricted to the family the framework uses, and within that family it
gets its best micro-batch, recompute and offload settings (a generous baseline, so a
speedup over it is not flattery).
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.search.cpsat import Constraints

VERL_ROLLOUT_UTIL = 0.5
"""verl's rollout.gpu_memory_utilization default (verl/trainer/config/rollout/rollout.yaml)."""


@dataclass(frozen=True)
class Baseline:
    name: str
    description: str
    constraints: Constraints | None
    why_not: str = ""
    """Set when the baseline does not apply to this job (then constraints is None)."""


def verl_rollout_tp(model, gpu, util: float = VERL_ROLLOUT_UTIL) -> int:
    """verl's rule for the rollout TP: the smallest tp with gpu_mem * util * tp > 2 * params
    (docs/perf/best_practices.rst)."""
    tp = 1
    while gpu.memory_bytes * util * tp <= 2 * model.num_params and tp < 8:
        tp *= 2
    return tp


def _fsdp(c) -> bool:
    """verl's FSDP workers and OpenRLHF's DeepSpeed: ZeRO-3 data parallel, no TP/PP."""
    from planner.parallel import GenerationConfig

    if isinstance(c.layout, GenerationConfig):
        return True
    return c.layout.tp == 1 and c.layout.pp == 1 and (c.layout.zero == 3 or c.layout.dp == 1)


def _pool_share(gpus: int, per_node: int) -> int:
    """A pool size of at most ``gpus``: whole nodes, or below a node a power of two
    (the sizes a pool may have, see ``candidates.pool_sizes``)."""
    if gpus >= per_node:
        return gpus // per_node * per_node
    size = 1
    while size * 2 <= gpus and per_node % (size * 2) == 0:
        size *= 2
    return size


def baselines_for(inputs) -> list[Baseline]:
    cluster = inputs.cluster
    roles = list(inputs.roles)
    group = max(range(len(cluster.node_groups)), key=lambda g: cluster.node_groups[g].num_gpus)
    total = cluster.node_groups[group].num_gpus
    if inputs.options.max_gpus:
        total = min(total, inputs.options.max_gpus)
    per_node = cluster.node_groups[group].gpus_per_node
    gpu = cluster.node_groups[group].gpu
    rollout_tp = verl_rollout_tp(inputs.models["rollout"], gpu)
    allow_fsdp = {r: _fsdp for r in roles}
    verl_allow = dict(allow_fsdp)
    # The rule fixes the TP; the engine's memory level is left to the search (no higher than
    # verl's default) so that a level the pruning dropped for an equal-or-better one counts.
    verl_allow["rollout"] = lambda c: c.layout.tp == rollout_tp and c.layout.gpu_memory_utilization <= VERL_ROLLOUT_UTIL

    out = [Baseline(
        "verl default",
        f"every role on all {total} GPUs (one global pool), FSDP, rollout tp{rollout_tp} by verl's "
        f"`gpu_mem*util*tp > 2*params` rule at util {VERL_ROLLOUT_UTIL}",
        Constraints(partition=[roles], num_gpus={r: total for r in roles}, allow=verl_allow),
    )]

    actor_side = [r for r in roles if r in ("actor", "rollout", "ref")]
    critic_side = [r for r in roles if r not in actor_side]
    half = _pool_share(total // 2, per_node)
    if critic_side:
        out.append(Baseline(
            "verl split",
            f"actor+rollout+ref on {half} GPUs, {'+'.join(critic_side)} on the other {half} (examples/split_placement)",
            Constraints(partition=[actor_side, critic_side], num_gpus={r: half for r in roles}, allow=verl_allow),
        ))
    else:
        out.append(Baseline("verl split", "", None, why_not="no critic or reward model to split off"))

    groups = [["rollout"], [r for r in ("actor", "ref") if r in roles]] + ([critic_side] if critic_side else [])
    share = _pool_share(total // len(groups), per_node)
    out.append(Baseline(
        "OpenRLHF 1:1:1",
        f"standalone pools of {share} GPUs each: vLLM engines | " + " | ".join("+".join(g) for g in groups[1:])
        + " (OpenRLHF's vLLM:Actor:Critic = 1:1:1 advice, ref with actor, reward with critic), DeepSpeed ZeRO-3",
        Constraints(partition=groups, num_gpus={r: share for r in roles}, allow=allow_fsdp),
    ))
    return out
