"""Stage breakdown: each stage's simulated time (mean, p95) against the plan's prediction."""

from __future__ import annotations

from executor.report.figures import Chart, figure
from executor.report.text import fmt_s, fmt_signed_pct, table
from executor.report.timeline import job_order, stage_colours

PREDICTED_COLOUR = "#c9c9c9"


def stage_rows(simulation: dict) -> list[dict]:
    """The stages in the order they run, each with its deviation from the prediction
    and whether it is on the critical path."""
    critical = set(simulation.get("critical_path") or ())
    rows = []
    for job in job_order(simulation):
        s = simulation["stages"].get(job)
        if s is None:
            continue
        predicted = s["predicted_s"]
        rows.append({
            "job": job, "role": s.get("role"), "kind": s["kind"], "pools": s["pools"],
            "mean_s": s["mean_s"], "p95_s": s["p95_s"], "predicted_s": predicted,
            "deviation": (s["mean_s"] - predicted) / predicted if predicted > 0 else None,
            "critical": job in critical,
        })
    return rows


def stages_chart(simulation: dict) -> Chart:
    import plotly.graph_objects as go

    rows = stage_rows(simulation)
    colours = stage_colours(simulation)
    jobs = [r["job"] for r in rows]
    predicted = go.Bar(
        name="predicted by the plan", orientation="h", y=jobs, x=[r["predicted_s"] for r in rows],
        marker={"color": PREDICTED_COLOUR}, customdata=[fmt_s(r["predicted_s"]) for r in rows],
        hovertemplate="%{y}: predicted %{customdata}<extra></extra>")
    simulated = go.Bar(
        name="simulated mean (whisker: p95)", orientation="h", y=jobs, x=[r["mean_s"] for r in rows],
        marker={"color": [colours[j] for j in jobs]},
        error_x={"type": "data", "symmetric": False, "array": [max(r["p95_s"] - r["mean_s"], 0) for r in rows],
                 "arrayminus": [0] * len(rows), "color": "#333", "thickness": 1.5},
        customdata=[[fmt_s(r["mean_s"]), fmt_s(r["p95_s"])] for r in rows],
        hovertemplate="%{y}: mean %{customdata[0]}, p95 %{customdata[1]}<extra></extra>")
    height = 120 + 48 * len(rows)
    fig = figure([predicted, simulated], height, barmode="group", bargap=0.25, bargroupgap=0.05,
                 xaxis={"title": {"text": "time per iteration (s)"}},
                 yaxis={"categoryorder": "array", "categoryarray": jobs, "autorange": "reversed"})
    return Chart("chart-stages", fig, height)


def stages_table(simulation: dict) -> str:
    body = []
    for r in stage_rows(simulation):
        pools = ", ".join(map(str, r["pools"])) or "driver"
        deviation = fmt_signed_pct(r["deviation"]) if r["deviation"] is not None else "-"
        body.append([r["job"], r["role"] or "-", r["kind"], pools, fmt_s(r["predicted_s"]), fmt_s(r["mean_s"]),
                     fmt_s(r["p95_s"]), deviation, "yes" if r["critical"] else ""])
    return table(["stage", "role", "kind", "pools", "predicted", "simulated mean", "p95", "vs predicted",
                  "critical path"], body, numeric={4, 5, 6, 7})
