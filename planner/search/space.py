"""The candidate space of one search: every role's candidates on every pool size."""

from __future__ import annotations

from planner.errors import PlanError
from planner.search.candidates import Candidate, CandidateBuilder, pool_sizes, prune


def candidate_space(inputs, builder: CandidateBuilder, pricer=None) -> dict[str, list[Candidate]]:
    """Candidates per role over every node group and allowed pool size; with a ``pricer``,
    also pruned by dominance that counts weight-sync costs (see ``prune_by_sync``)."""
    cluster = inputs.cluster
    cap = inputs.options.max_gpus or cluster.num_gpus
    space: dict[str, list[Candidate]] = {r: [] for r in inputs.roles}
    for group in range(len(cluster.node_groups)):
        for n in pool_sizes(cluster, group, cap):
            for role in inputs.roles:
                space[role].extend(builder.candidates(role, group, n))
    for role, cands in space.items():
        if not cands:
            model = inputs.models[role]
            raise PlanError(
                f"{role} ({model.name}) fits no layout on {cluster.name} "
                f"({cluster.num_gpus} x {cluster.gpu.name}, {cluster.gpu.memory_gib:g} GiB each): "
                f"{minimum_cluster_hint(inputs, role)}")
    if pricer is not None:
        prune_by_sync(space, pricer)
    return space


def prune_by_sync(space: dict[str, list[Candidate]], pricer) -> None:
    """Prune the two ends of each weight sync against each other, in place.

    The builder keeps one Pareto set per layout shape of a sync's source and destination,
    because the colocated reshard depends on both layouts. Here a candidate is dropped
    when another of the same pool size is no worse on memory, on every stage time and
    on the reshard time with every partner of that size (the cross-pool sync does not
    depend on the layout, only on the pool). Pruning the source first and then the
    destination against the survivors keeps an optimum: a dropped choice always has a
    surviving one that is at least as good with the partner the optimum used."""
    for _, src, dst in pricer.graph.syncs:
        for role, other, as_src in ((src, dst, True), (dst, src, False)):
            by_size: dict[tuple, list[Candidate]] = {}
            for c in space[role]:
                by_size.setdefault((c.group, c.num_gpus), []).append(c)
            kept = []
            for key, cands in by_size.items():
                partners = [p for p in space[other] if (p.group, p.num_gpus) == key]

                def sync_costs(c, partners=partners):
                    return [pricer.sync_colocated_s(c, p) if as_src else pricer.sync_colocated_s(p, c)
                            for p in partners]

                kept.extend(prune(cands, extra=sync_costs))
            space[role] = kept


def minimum_cluster_hint(inputs, role: str) -> str:
    """Name the smallest cluster of the same GPU type on which ``role`` alone would fit."""
    from planner.hardware import single_node_group_cluster
    from planner.search.inputs import SearchInputs

    cluster = inputs.cluster
    gpu, per_node = cluster.gpu, cluster.gpus_per_node
    for nodes in (1, 2, 4, 8, 16, 32, 64, 128):
        bigger = single_node_group_cluster(gpu, nodes * per_node, per_node, cluster.node_groups[0].inter_node_gbps)
        trial = SearchInputs(bigger, inputs.algo, inputs.dataflow, inputs.models, inputs.workload, inputs.options)
        builder = CandidateBuilder(trial)
        for n in pool_sizes(bigger, 0, bigger.num_gpus):
            if builder.candidates(role, 0, n):
                return (f"it needs at least {n} x {gpu.name} on its own "
                        f"(a cluster of {nodes} node{'s' if nodes > 1 else ''} x {per_node}): use a larger cluster or a smaller model")
    return "even 1024 GPUs of this type are not enough: use GPUs with more memory or a smaller model"
