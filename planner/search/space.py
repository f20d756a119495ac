"""The candidate space of one search: every role's candidates on every pool size.

Pricing is most of a search's time at scale (h100x1024 ppo: 27 pool sizes x 5 roles, the
rollout's engines simulated step by step), and every (role, pool size) is priced on its
own, so the pairs are shared out over forked processes (``SearchOptions.workers``).
"""

from __future__ import annotations

import multiprocessing
import os
import sys

from planner.errors import PlanError
from planner.search.candidates import Candidate, CandidateBuilder, pool_sizes, prune

PARALLEL_MIN_PAIRS = 32
"""Fewer (role, pool size) pairs than this are priced in this process: forking and sending
the candidates back (~30 ms) would cost more than the pairs (small clusters price in
well under 0.2 s)."""


def candidate_space(inputs, builder: CandidateBuilder, pricer=None) -> dict[str, list[Candidate]]:
    """Candidates per role over every node group and allowed pool size; with a ``pricer``,
    also pruned by dominance that counts weight-sync costs (see ``prune_by_sync``)."""
    cluster = inputs.cluster
    cap = inputs.options.max_gpus or cluster.num_gpus
    pairs = [(role, group, n) for group in range(len(cluster.node_groups))
             for n in pool_sizes(cluster, group, cap) for role in inputs.roles]
    price_in_parallel(builder, pairs, inputs.options.workers)
    space: dict[str, list[Candidate]] = {r: [] for r in inputs.roles}
    for role, group, n in pairs:
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


def price_in_parallel(builder: CandidateBuilder, pairs: list[tuple[str, int, int]], processes: int) -> None:
    """Fill ``builder``'s cache for every (role, group, GPUs) in ``pairs``, shared out over
    ``processes`` processes (this one and forked children) where that pays (Linux). The
    candidates are the same as priced here: each pair is priced on its own."""
    todo = [p for p in dict.fromkeys(pairs) if not builder.is_priced(*p)]
    processes = min(processes, len(todo))
    if processes < 2 or len(todo) < PARALLEL_MIN_PAIRS or sys.platform != "linux":
        return
    # Dearest first (rollouts simulate their engines; then larger pools) and handed out
    # one at a time from a shared counter, so the processes finish together. (A
    # multiprocessing Pool measured slower: its workers ran each task ~1.5x longer.)
    todo.sort(key=lambda p: (builder.simulates_generation(p[0]), p[2]), reverse=True)
    context = multiprocessing.get_context("fork")
    counter = context.Value("i", 0)
    children = []
    for _ in range(processes - 1):
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_price_in_child, args=(builder, todo, counter, send), daemon=True)
        child.start()
        send.close()
        children.append((child, receive))
    collected = False
    try:
        _price_share(builder, todo, counter)
        for child, receive in children:
            try:
                ok, payload = receive.recv()
            except EOFError:
                child.join()
                raise RuntimeError(f"a pricing process died (exit code {child.exitcode})") from None
            if not ok:
                raise payload
            for pair, found in payload:
                builder.store(pair, found)
        collected = True
    finally:
        for child, _ in children:
            if not collected and child.is_alive():  # after an error their work is not wanted
                child.terminate()
            child.join()


def _price_share(builder: CandidateBuilder, todo: list[tuple[str, int, int]], counter) -> list[tuple]:
    """Price the pairs this process draws from ``counter`` until none are left."""
    done = []
    while True:
        with counter.get_lock():
            index = counter.value
            counter.value += 1
        if index >= len(todo):
            return done
        done.append((todo[index], builder.candidates(*todo[index])))


def _price_in_child(builder: CandidateBuilder, todo: list[tuple[str, int, int]], counter, send) -> None:
    """A forked child's share, sent back to the parent (or the error it raised)."""
    # A child writes nothing; fresh streams also keep it off any lock of the parent's
    # (a progress spinner's thread may hold one at the fork).
    sys.stdout = sys.stderr = open(os.devnull, "w")
    try:
        send.send((True, _price_share(builder, todo, counter)))
    except BaseException as err:  # noqa: BLE001 - the parent re-raises it
        send.send((False, err))
    finally:
        send.close()


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
