"""Human output of a dry run: what a person reads after `plan simulate plan.json`."""

from __future__ import annotations

from planner.cli.plan_report import _console, fmt_s


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def print_simulation(sim: dict, source: str | None = None) -> None:
    from rich.table import Table

    con = _console()
    what = f" of {source}" if source else ""
    con.print(f"[bold]Dry run{what}[/]: {sim['algo']} on {sim['cluster']} ({sim['mode']}), "
              f"{sim['iterations']} iterations, seed {sim['seed']}")
    diff = sim["iteration_time_s"] / sim["predicted_iteration_time_s"] - 1
    con.print(f"[bold]iteration time: mean {fmt_s(sim['iteration_time_s'])}, p95 {fmt_s(sim['iteration_time_p95_s'])}[/]"
              f"   (plan predicted {fmt_s(sim['predicted_iteration_time_s'])}, {diff * 100:+.1f}%)")
    if sim["mode"] == "one-step-off" and sim["iterations"] >= 3:
        con.print("  one-step-off: mean and p95 leave out the pipeline's fill (first) and drain (last) iterations")
    con.print(f"throughput: {sim['tokens_per_s']:,.0f} tokens/s ({sim['tokens_per_s_per_gpu']:,.0f} tokens/s/GPU "
              f"on {sim['gpus_used']} GPUs)")
    if sim.get("plan_stale"):
        con.print("[yellow]note: this rlplan prices the plan differently from when it was made; re-plan to compare[/]")

    stages = Table(title="Stages (per iteration)", title_justify="left")
    for col in ("stage", "pools", "mean", "p95", "plan", "diff"):
        stages.add_column(col)
    for job, st in sim["stages"].items():
        rel = f"{(st['mean_s'] / st['predicted_s'] - 1) * 100:+.1f}%" if st["predicted_s"] > 0 else "-"
        stages.add_row(job, ",".join(map(str, st["pools"])) or "driver", fmt_s(st["mean_s"]), fmt_s(st["p95_s"]),
                       fmt_s(st["predicted_s"]), rel)
    con.print(stages)

    pools = Table(title="Pools", title_justify="left")
    for col in ("pool", "GPUs", "roles", "busy", "idle", "peak memory / GPU", "largest parts at peak"):
        pools.add_column(col)
    for p in sim["pools"]:
        parts = sorted(((k, v) for k, v in p["memory_peak_breakdown_gib"].items() if v > 0), key=lambda kv: -kv[1])
        pools.add_row(str(p["id"]), f"{p['num_gpus']} x {p['gpu']}", ", ".join(p["roles"]), _pct(p["busy_fraction"]),
                      _pct(p["idle_fraction"]), f"{p['peak_memory_gib']:.1f} / {p['capacity_gib']:g} GiB",
                      ", ".join(f"{k} {v:.1f}" for k, v in parts[:3]))
    con.print(pools)
    con.print(f"critical path (last iteration): {' -> '.join(sim['critical_path'])}")
    _print_long_tail(con, sim)


def _print_long_tail(con, sim: dict) -> None:
    from rich.table import Table

    lengths, tail = sim["response_lengths"], sim["long_tail"]
    con.print(f"response lengths: mean {lengths['mean']:.0f}, p50 {lengths['p50']:.0f}, p95 {lengths['p95']:.0f}, "
              f"max {lengths['max']} tokens")
    con.print(f"long tail: generation takes {fmt_s(tail['generation_time_s'])}, of which {fmt_s(tail['tail_wait_s'])} "
              f"({_pct(tail['tail_fraction'])}) decodes the slowest samples (batch below half its peak)")
    if not tail["what_if_caps"]:
        return
    caps = Table(title=f"What if responses were capped (first {tail.get('what_if_iterations', '?')} iterations; "
                       "the plan is unchanged)", title_justify="left")
    for col in ("cap", "responses cut", "generation", "iteration", "speedup"):
        caps.add_column(col)
    for c in tail["what_if_caps"]:
        caps.add_row(f"{c['cap_tokens']} tokens", _pct(c["samples_truncated_fraction"]), fmt_s(c["generation_time_s"]),
                     fmt_s(c["iteration_time_s"]), f"{c['speedup']:.2f}x")
    con.print(caps)
