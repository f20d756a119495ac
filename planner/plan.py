"""The plan: versioned JSON shared by the planner, the simulator and the executor.

A plan records its inputs (cluster fingerprint, algorithm, models, workload, options)
with a digest, so it is never executed on a cluster it was not made for; its pools name
concrete GPUs as (node, local rank); every role has one layout and per-stage predicted
times; the schedule lists every job with its predicted start and end.
"""

from __future__ import annotations

import json
from pathlib import Path

from planner.errors import PlanError
from planner.hardware import GiB
from planner.parallel import GenerationConfig

PLAN_KIND = "rlplan.plan"
PLAN_VERSION = 1


def place_pools(cluster, pools: dict[int, tuple[int, int]]) -> dict[int, list[tuple[int, int]]]:
    """Concrete GPUs (node index, local rank) for each pool: whole-node pools take whole
    nodes in order, smaller pools fill the remaining nodes largest first."""
    placed: dict[int, list[tuple[int, int]]] = {}
    node_base = 0
    for gi, group in enumerate(cluster.node_groups):
        per_node = group.gpus_per_node
        mine = sorted((p for p, (g, _) in pools.items() if g == gi), key=lambda p: (-pools[p][1], p))
        free = {node_base + k: list(range(per_node)) for k in range(group.nodes)}
        for p in mine:
            n = pools[p][1]
            if n >= per_node:
                nodes = [node for node, ranks in free.items() if len(ranks) == per_node][: n // per_node]
                placed[p] = [(node, r) for node in nodes for r in range(per_node)]
                for node in nodes:
                    free[node] = []
            else:
                node = next(node for node, ranks in free.items() if len(ranks) >= n)
                placed[p] = [(node, r) for r in free[node][:n]]
                free[node] = free[node][n:]
        node_base += group.nodes
    return placed


def _stage_entry(cost, time_s: float) -> dict:
    entry = cost.to_dict() if cost is not None else {}
    entry["time_s"] = time_s
    return entry


def plan_to_dict(result) -> dict:
    inputs, a, ev = result.inputs, result.assignment, result.evaluation
    cluster, workload = inputs.cluster, inputs.workload
    placed = place_pools(cluster, a.pools)
    memory = result.pricer.pool_memory(a)
    pools = []
    for p in sorted(a.pools):
        group, n = a.pools[p]
        gpu = cluster.node_groups[group].gpu
        pools.append({
            "id": p, "gpu": gpu.name, "num_gpus": n,
            "nodes": sorted({node for node, _ in placed[p]}),
            "gpus": [list(x) for x in placed[p]],
            "roles": a.roles_in(p),
            "peak_memory_gib": memory[p] / GiB, "capacity_gib": gpu.memory_gib,
        })
    roles = {}
    for role, cand in a.choice.items():
        layout = cand.layout
        roles[role] = {
            "model": inputs.models[role].name,
            "pool": a.role_pool[role],
            "kind": "generate" if isinstance(layout, GenerationConfig) else "parallel",
            "layout": layout.to_dict(),
            "layout_str": cand.describe(),
            "offload": cand.offload,
            "static_memory_gib": cand.static_bytes / GiB,
            "transient_memory_gib": cand.transient_bytes / GiB,
            "stages": {s: _stage_entry(cand.stage_costs.get(s), t) for s, t in cand.stage_times.items()},
        }
    schedule = [
        {"job": j.name, "roles": list(result.pricer.graph.jobs[j.name].roles),
         "kind": result.pricer.graph.jobs[j.name].kind, "pools": list(j.pools),
         "start_s": j.start_s, "end_s": j.end_s, "time_s": j.end_s - j.start_s}
        for j in sorted(ev.schedule.values(), key=lambda j: (j.start_s, ev.order.index(j.name)))
    ]
    tokens = workload.num_samples * (workload.prompt_len + workload.response.expected)
    used = sum(n for _, n in a.pools.values())
    baselines = []
    for b in result.baselines:
        entry = {"name": b.baseline.name, "description": b.baseline.description, **b.extra}
        if b.evaluation is None:
            entry.update(feasible=False, reason=b.why_not)
        else:
            entry.update(feasible=True, iteration_time_s=b.evaluation.objective_s,
                         speedup=b.evaluation.objective_s / ev.objective_s,
                         pools=[{"roles": b.assignment.roles_in(p), "num_gpus": n}
                                for p, (_, n) in sorted(b.assignment.pools.items())],
                         layouts={r: c.describe() for r, c in b.assignment.choice.items()})
        baselines.append(entry)
    return {
        "kind": PLAN_KIND,
        "version": PLAN_VERSION,
        "inputs": {
            "cluster": cluster.fingerprint(),
            "algo": inputs.algo,
            "models": {r: m.name for r, m in inputs.models.items()},
            "workload": workload.to_dict(),
            "options": inputs.options.to_dict(),
            "digest": inputs.digest(),
        },
        "mode": inputs.options.mode,
        "objective": "iteration time" if inputs.options.mode == "sync" else "steady-state period",
        "iteration_time_s": ev.objective_s,
        "status": result.status,
        "gap": result.gap,
        "search_time_s": result.search_time_s,
        "solver_time_s": result.solver_time_s,
        "num_candidates": result.num_candidates,
        "gpus_used": used,
        "tokens_per_iteration": tokens,
        "tokens_per_s": tokens / ev.objective_s,
        "tokens_per_s_per_gpu": tokens / ev.objective_s / used,
        "lower_bound_s": result.lower_bound.total_s if result.lower_bound else None,
        "lower_bound": result.lower_bound.to_dict() if result.lower_bound else None,
        "pools": pools,
        "roles": roles,
        "schedule": schedule,
        "baselines": baselines,
    }


def check_writable(path: str | Path) -> None:
    """Refuse an output path before any work is done, not after."""
    path = Path(path)
    if path.is_dir():
        raise PlanError(f"--out {str(path)!r} is a folder: give a file name, e.g. {path / 'plan.json'}")
    if not path.parent.is_dir():
        raise PlanError(f"--out {str(path)!r}: folder {str(path.parent)!r} does not exist: create it or write elsewhere")


def save_plan(plan: dict, path: str | Path) -> None:
    """Write atomically: a failed write never leaves half a plan."""
    check_writable(path)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(plan, indent=2, sort_keys=False))
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise PlanError(f"cannot write the plan to {str(path)!r}: {err.strerror}: write it elsewhere") from None


def load_plan(path: str | Path) -> dict:
    """Read a plan file, refusing anything that is not a plan of this version."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise PlanError(f"plan file {str(path)!r} not found: make one with `plan --cluster C --algo A --out plan.json`") from None
    except json.JSONDecodeError as err:
        raise PlanError(f"{path} is not valid JSON (line {err.lineno}, column {err.colno}): "
                        "pass a plan written by `plan ... --out`") from None
    if not isinstance(data, dict) or data.get("kind") != PLAN_KIND:
        raise PlanError(f"{path} is not an rlplan plan (no \"kind\": \"{PLAN_KIND}\"): pass a plan written by `plan ... --out`")
    if data.get("version") != PLAN_VERSION:
        raise PlanError(f"{path} is a plan of version {data.get('version')!r}; this rlplan reads version "
                        f"{PLAN_VERSION}: re-plan it with this version")
    return data
