"""The timeline (Gantt chart): one row per GPU pool, one bar per stage call.

A pool runs one call at a time, so its row never overlaps itself; a weight sync between
two pools occupies both rows. Stages on the driver (rule reward, advantages) use no GPU
and get their own row. The last iteration's critical path is outlined in black.
"""

from __future__ import annotations

from dataclasses import dataclass

from executor.report.figures import Chart, figure, job_colours
from executor.report.text import escape, fmt_s

DRIVER_ROW = "driver (CPU)"
SHOWN_ITERATIONS = 2  # the chart opens on the last two iterations; the range slider shows the rest


@dataclass(frozen=True)
class GanttBar:
    row: str
    job: str
    iteration: int
    start_s: float
    end_s: float
    args: dict
    critical: bool


def pool_label(pool: dict) -> str:
    return f"pool {pool['id']} ({pool['num_gpus']}x {pool['gpu']})"


def job_order(simulation: dict) -> list[str]:
    """Jobs in the order they first start (ties: as listed in ``stages``), then any
    stage that never ran."""
    listed = list(simulation["stages"])
    rank = {job: i for i, job in enumerate(listed)}
    first: dict[str, float] = {}
    for e in simulation["events"]:
        first[e["job"]] = min(first.get(e["job"], e["start_s"]), e["start_s"])
    ran = sorted(first, key=lambda j: (first[j], rank.get(j, len(rank))))
    return ran + [j for j in listed if j not in first]


def stage_colours(simulation: dict) -> dict[str, str]:
    kinds = {job: s["kind"] for job, s in simulation["stages"].items()}
    kinds.update({e["job"]: e["kind"] for e in simulation["events"]})
    return job_colours(job_order(simulation), kinds)


def gantt_rows(simulation: dict) -> list[str]:
    """Row labels top to bottom: pools by id, then the driver if any call ran there."""
    rows = [pool_label(p) for p in sorted(simulation["pools"], key=lambda p: p["id"])]
    if any(not e["pools"] for e in simulation["events"]):
        rows.append(DRIVER_ROW)
    return rows


def gantt_bars(simulation: dict) -> list[GanttBar]:
    """One bar per (event, pool it ran on); driver events go to the driver row."""
    labels = {p["id"]: pool_label(p) for p in simulation["pools"]}
    critical = set(simulation.get("critical_path") or ())
    last = max((e["iteration"] for e in simulation["events"]), default=0)
    bars = []
    for e in simulation["events"]:
        rows = [labels[p] for p in e["pools"]] or [DRIVER_ROW]
        on_path = e["iteration"] == last and e["job"] in critical
        for row in rows:
            bars.append(GanttBar(row, e["job"], e["iteration"], e["start_s"], e["end_s"], e.get("args") or {}, on_path))
    return bars


def shown_window(simulation: dict, count: int = SHOWN_ITERATIONS) -> tuple[float, float] | None:
    """(start, end) of the last ``count`` iterations, the steady state the charts open on
    (and where the critical path is outlined), or None when the run has no more than
    ``count`` iterations and the charts show all of it."""
    events = simulation["events"]
    last = max((e["iteration"] for e in events), default=0)
    if last + 1 <= count:
        return None
    start = min(e["start_s"] for e in events if e["iteration"] > last - count)
    end = max(e["end_s"] for e in events)
    return start - 0.01 * (end - start), end + 0.01 * (end - start)


def _args_text(args: dict, limit: int = 8) -> str:
    items = list(args.items())
    lines = [f"{escape(str(k))}: {escape(_short(v))}" for k, v in items[:limit]]
    if len(items) > limit:
        lines.append(f"... {len(items) - limit} more")
    return "<br>".join(lines)


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def timeline_chart(simulation: dict) -> Chart:
    import plotly.graph_objects as go

    rows = gantt_rows(simulation)
    bars = gantt_bars(simulation)
    colours = stage_colours(simulation)
    traces = []
    for job in job_order(simulation):
        mine = [b for b in bars if b.job == job]
        if not mine:
            continue
        traces.append(go.Bar(
            name=job, orientation="h", y=[b.row for b in mine], base=[b.start_s for b in mine],
            x=[b.end_s - b.start_s for b in mine], marker={
                "color": colours[job],
                "line": {"color": ["#000" if b.critical else colours[job] for b in mine],
                         "width": [2 if b.critical else 0.5 for b in mine]}},
            customdata=[[b.iteration, fmt_s(b.start_s), fmt_s(b.end_s), fmt_s(b.end_s - b.start_s),
                         _args_text(b.args), " (critical path)" if b.critical else ""] for b in mine],
            hovertemplate=(f"<b>{escape(job)}</b>%{{customdata[5]}}<br>iteration %{{customdata[0]}}<br>"
                           "%{customdata[1]} to %{customdata[2]} (%{customdata[3]})<br>%{customdata[4]}<extra></extra>"),
        ))
    window = shown_window(simulation)
    xaxis = {"title": {"text": "time (s)"}, "zeroline": False}
    if window:
        xaxis.update(range=list(window), rangeslider={"visible": True, "thickness": 0.08})
    height = 140 + 70 * len(rows) + (90 if window else 0)
    fig = figure(traces, height, barmode="overlay", bargap=0.35, xaxis=xaxis,
                 yaxis={"categoryorder": "array", "categoryarray": rows, "autorange": "reversed"},
                 hovermode="closest",
                 # one entry per stage: a column at the right, clear of the tool bar above the plot
                 legend={"orientation": "v", "yanchor": "top", "y": 1, "xanchor": "left", "x": 1.01})
    return Chart("chart-timeline", fig, height)
