"""The report's header: what was simulated, the headline numbers, and the layouts."""

from __future__ import annotations

from planner.errors import PlanError
from planner.workload import Workload

from executor.report.text import escape, fmt_gib, fmt_rate, fmt_s, fmt_signed_pct, table


def title(simulation: dict) -> str:
    return f"Dry run: {simulation['algo']} on {simulation['cluster']}"


def subtitle(simulation: dict, plan: dict) -> str:
    """Models, workload, mode and seed on one line of plain text."""
    inputs = plan["inputs"]
    models = ", ".join(f"{role}={name}" for role, name in inputs["models"].items())
    try:
        workload = Workload.from_dict(inputs["workload"]).describe()
    except (PlanError, TypeError, ValueError, KeyError):
        workload = "workload as in the plan"  # a plan from another rlplan version: say less, not nothing
    return (f"{models}; {workload}; mode {simulation['mode']}; {simulation['iterations']} simulated "
            f"iteration{'s' if simulation['iterations'] != 1 else ''}, seed {simulation['seed']}")


def headline_cards(simulation: dict, plan: dict) -> list[tuple[str, str, str]]:
    """(label, value, detail) for each card of the header."""
    mean, p95 = simulation["iteration_time_s"], simulation["iteration_time_p95_s"]
    predicted = simulation["predicted_iteration_time_s"]
    per_type: dict[str, int] = {}
    for p in simulation["pools"]:
        per_type[p["gpu"]] = per_type.get(p["gpu"], 0) + p["num_gpus"]
    gap, search = plan.get("gap"), plan.get("search_time_s")
    solver_detail = ", ".join(([f"gap {gap * 100:.2f}%"] if isinstance(gap, (int, float)) else [])
                              + ([f"search {search:.2f} s"] if isinstance(search, (int, float)) else []))
    return [
        ("iteration time (simulated)", fmt_s(mean), f"{_averaged_over(simulation)}; p95 {fmt_s(p95)}"),
        ("predicted by the plan", fmt_s(predicted),
         f"simulated mean is {fmt_signed_pct((mean - predicted) / predicted)} off" if predicted > 0 else ""),
        ("throughput", f"{fmt_rate(simulation['tokens_per_s'])} tokens/s",
         f"{fmt_rate(simulation['tokens_per_s_per_gpu'])} tokens/s per GPU"),
        ("GPUs", " + ".join(f"{n} x {gpu}" for gpu, n in sorted(per_type.items())),
         f"{len(simulation['pools'])} pool{'s' if len(simulation['pools']) != 1 else ''} on {simulation['cluster']}"),
        ("solver", str(plan.get("status", "-")), solver_detail),
    ]


def _averaged_over(simulation: dict) -> str:
    """What the mean is over: every iteration, or (one-step-off) the steady ones the
    simulator keeps after leaving out the pipeline's fill and drain."""
    total = simulation["iterations"]
    steady = len(simulation.get("iteration_time_steady_s") or simulation["iteration_times_s"])
    if steady < total:
        return f"mean of {steady} steady iteration{'s' if steady != 1 else ''} of {total}"
    return f"mean of {total} iteration{'s' if total != 1 else ''}"


def cards_html(simulation: dict, plan: dict) -> str:
    cards = "".join(
        f'<div class="card"><div class="label">{escape(label)}</div><div class="value">{escape(value)}</div>'
        f'<div class="detail">{escape(detail)}</div></div>'
        for label, value, detail in headline_cards(simulation, plan))
    return f'<div class="cards">{cards}</div>'


def critical_path_html(simulation: dict) -> str:
    path = simulation.get("critical_path") or []
    if not path:
        return ""
    steps = " &rarr; ".join(f"<code>{escape(job)}</code>" for job in path)
    return f'<p class="path"><b>Critical path</b> (last iteration): {steps}</p>'


def layouts_table(plan: dict) -> str:
    rows = [[role, r["model"], str(r["pool"]), r["layout_str"], fmt_gib(r["static_memory_gib"]),
             fmt_gib(r["transient_memory_gib"])] for role, r in plan["roles"].items()]
    return table(["role", "model", "pool", "layout", "resident / GPU", "during its stages / GPU"], rows,
                 numeric={2, 4, 5})
