"""Utilisation: how much of the run each GPU pool spends busy, and the pools table."""

from __future__ import annotations

from executor.report.figures import IDLE_COLOUR, PALETTE, Chart, figure
from executor.report.text import fmt_gib, fmt_pct, table
from executor.report.timeline import pool_label

BUSY_COLOUR = PALETTE[2]
LABEL_MIN = 8  # percent: a narrower segment has no room for its label (the hover has it)


def utilisation_chart(simulation: dict) -> Chart:
    import plotly.graph_objects as go

    pools = sorted(simulation["pools"], key=lambda p: p["id"])
    labels = [f"{pool_label(p)}<br>{', '.join(p['roles'])}" for p in pools]
    busy = [p["busy_fraction"] * 100 for p in pools]
    idle = [p["idle_fraction"] * 100 for p in pools]
    traces = [
        go.Bar(name="busy", orientation="h", y=labels, x=busy, marker={"color": BUSY_COLOUR},
               text=[f"busy {b:.0f}%" if b >= LABEL_MIN else "" for b in busy], textposition="inside", insidetextanchor="middle",
               hovertemplate="%{y}<br>busy %{x:.1f}%<extra></extra>"),
        go.Bar(name="idle", orientation="h", y=labels, x=idle, marker={"color": IDLE_COLOUR},
               text=[f"idle {i:.0f}%" if i >= LABEL_MIN else "" for i in idle], textposition="inside", insidetextanchor="middle",
               textfont={"color": "#444"}, hovertemplate="%{y}<br>idle %{x:.1f}%<extra></extra>"),
    ]
    height = 110 + 55 * len(pools)
    fig = figure(traces, height, barmode="stack", bargap=0.3,
                 xaxis={"title": {"text": "share of the simulated run (%)"}, "range": [0, 100]},
                 yaxis={"categoryorder": "array", "categoryarray": labels, "autorange": "reversed"})
    return Chart("chart-utilisation", fig, height)


def pools_table(simulation: dict) -> str:
    rows = []
    for p in sorted(simulation["pools"], key=lambda p: p["id"]):
        rows.append([str(p["id"]), f"{p['num_gpus']} x {p['gpu']}", ", ".join(p["roles"]), fmt_pct(p["busy_fraction"]),
                     fmt_pct(p["idle_fraction"]), f"{fmt_gib(p['peak_memory_gib'])} / {p['capacity_gib']:g} GiB",
                     fmt_pct(p["peak_memory_gib"] / p["capacity_gib"])])
    return table(["pool", "GPUs", "roles", "busy", "idle", "peak memory / GPU", "of capacity"], rows,
                 numeric={3, 4, 5, 6})
