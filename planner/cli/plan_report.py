"""Human output of a plan: what a person reads after `plan --cluster C --algo A`."""

from __future__ import annotations


def _console():
    from rich.console import Console

    return Console(highlight=False, width=max(100, Console().width))


def fmt_s(seconds: float) -> str:
    if seconds >= 100:
        return f"{seconds:.0f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1e3:.1f} ms"


def print_inputs(inputs) -> None:
    w = inputs.workload
    models = ", ".join(f"{r}={m.name}" for r, m in inputs.models.items())
    c = inputs.cluster
    _console().print(
        f"[bold]{inputs.algo}[/] on [bold]{c.name}[/] ({c.num_gpus} GPUs, {c.num_nodes} node{'' if c.num_nodes == 1 else 's'})\n"
        f"  models:   {models}\n"
        f"  workload: {w.describe()}\n"
        f"  mode:     {inputs.options.mode}")


def print_plan(plan: dict) -> None:
    from rich.table import Table

    con = _console()
    pools = Table(title="Pools", title_justify="left")
    for col in ("pool", "GPUs", "nodes", "roles", "peak memory / GPU"):
        pools.add_column(col)
    for p in plan["pools"]:
        nodes = p["nodes"]
        node_text = f"{nodes[0]}" if len(nodes) == 1 else f"{nodes[0]}-{nodes[-1]}"
        pools.add_row(str(p["id"]), f"{p['num_gpus']} x {p['gpu']}", node_text, ", ".join(p["roles"]),
                      f"{p['peak_memory_gib']:.1f} / {p['capacity_gib']:g} GiB")
    con.print(pools)

    roles = Table(title="Layouts", title_justify="left")
    for col in ("role", "model", "pool", "layout", "resident / GPU", "during stage / GPU"):
        roles.add_column(col)
    for name, r in plan["roles"].items():
        roles.add_row(name, r["model"], str(r["pool"]), r["layout_str"], f"{r['static_memory_gib']:.1f} GiB",
                      f"{r['transient_memory_gib']:.1f} GiB")
    con.print(roles)

    sched = Table(title="Schedule (one iteration)", title_justify="left")
    for col in ("stage", "pools", "start", "end", "time", "breakdown"):
        sched.add_column(col)
    for job in plan["schedule"]:
        breakdown = ""
        role = job["roles"][0] if job["roles"] else None
        stage = plan["roles"].get(role, {}).get("stages", {}).get(job["job"]) if role else None
        if stage and stage.get("time_parts_s"):
            parts = sorted(stage["time_parts_s"].items(), key=lambda kv: -kv[1])
            breakdown = ", ".join(f"{k} {fmt_s(v)}" for k, v in parts[:3] if v > 0)
        pools_text = ",".join(map(str, job["pools"])) or "driver"
        sched.add_row(job["job"], pools_text, fmt_s(job["start_s"]), fmt_s(job["end_s"]), fmt_s(job["time_s"]), breakdown)
    con.print(sched)

    lb = plan.get("lower_bound_s")
    con.print(
        f"[bold]{plan['objective']}: {fmt_s(plan['iteration_time_s'])}[/]   "
        f"throughput {plan['tokens_per_s']:,.0f} tokens/s ({plan['tokens_per_s_per_gpu']:,.0f} tokens/s/GPU on "
        f"{plan['gpus_used']} GPUs)")
    con.print(f"solver: {plan['status']} (gap {plan['gap'] * 100:.2f}%), search {plan['search_time_s']:.2f} s, "
              f"{plan['num_candidates']} candidate layouts")
    if lb:
        con.print(f"lower bound: {fmt_s(lb)} (generation {fmt_s(plan['lower_bound']['generation_s'])} + compute "
                  f"{fmt_s(plan['lower_bound']['compute_s'])}); the plan is {plan['iteration_time_s'] / lb:.2f}x the bound")

    base = Table(title="Against the layouts people write by hand", title_justify="left")
    for col in ("baseline", "iteration", "plan's speedup", "layout"):
        base.add_column(col)
    for b in plan["baselines"]:
        if b.get("feasible"):
            layout = " | ".join(f"{'+'.join(p['roles'])}: {p['num_gpus']}" for p in b["pools"])
            base.add_row(b["name"], fmt_s(b["iteration_time_s"]), f"{b['speedup']:.2f}x", layout)
        else:
            base.add_row(b["name"], "-", "-", b.get("reason", ""))
    con.print(base)
