"""Scaling (from ``plan sweep``): throughput and the best placement against GPU count."""

from __future__ import annotations

import math

from executor.report.figures import PALETTE, Chart, figure
from executor.report.text import escape, fmt_pct, fmt_rate, fmt_s, table


def planned_points(sweep: dict) -> list[dict]:
    """The points that have a plan, by GPU count."""
    return sorted((p for p in sweep["points"] if p.get("tokens_per_s")), key=lambda p: p["gpus"])


def scaling_efficiency(sweep: dict) -> dict[int, float]:
    """Tokens/s per GPU at each GPU count relative to the smallest planned count (1.0 =
    linear scaling)."""
    points = planned_points(sweep)
    if not points:
        return {}
    base = points[0]["tokens_per_s_per_gpu"]
    return {p["gpus"]: p["tokens_per_s_per_gpu"] / base for p in points}


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks between ``lo`` and ``hi`` at 1, 2 and 5 times a power of ten, or at every
    digit times a power of ten when that gives fewer than three (plotly's own log ticks
    label every minor step, which crowds the axis)."""
    for mantissas in ((1, 2, 5), (1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks, power = [], 10.0 ** math.floor(math.log10(lo))
        while power <= hi:
            ticks += [m * power for m in mantissas if lo <= m * power <= hi]
            power *= 10
        if len(ticks) >= 3:
            break
    return ticks


def _si(value: float) -> str:
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:g}{suffix}"
    return f"{value:g}"


def placement_label(placement: str) -> str:
    """The placement on one line per pool, to label a point without crowding its neighbours."""
    return "<br>".join(escape(part.strip()) for part in placement.split("|"))


def scaling_chart(sweep: dict) -> Chart:
    """Top: tokens/s on log-log axes, where linear scaling is a straight line, each point
    labelled with its placement. Bottom: tokens/s per GPU, which falls where scaling does."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    points = planned_points(sweep)
    gpus = [p["gpus"] for p in points]
    hover = [[escape(p["placement"]), fmt_s(p["iteration_time_s"]), escape(p["status"])] for p in points]
    template = ("%{x} GPUs: %{y:,.0f} {unit}<br>iteration %{customdata[1]} (%{customdata[2]})<br>"
                "%{customdata[0]}<extra></extra>")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.62, 0.38], vertical_spacing=0.08)
    fig.add_trace(go.Scatter(
        name="tokens/s of the best plan", x=gpus, y=[p["tokens_per_s"] for p in points], mode="lines+markers+text",
        line={"color": PALETTE[0], "width": 2.5}, marker={"size": 9}, customdata=hover,
        text=[placement_label(p["placement"]) for p in points],
        textposition=["bottom right"] * (len(points) - 1) + ["top left"],
        textfont={"size": 11, "color": "#444"}, hovertemplate=template.replace("{unit}", "tokens/s")), row=1, col=1)
    linear = [points[0]["tokens_per_s"] * g / points[0]["gpus"] for g in gpus] if points else []
    fig.add_trace(go.Scatter(
        name="linear scaling from the smallest", x=gpus, y=linear, mode="lines",
        line={"color": "#999", "width": 1, "dash": "dot"}, hoverinfo="skip"), row=1, col=1)
    fig.add_trace(go.Scatter(
        name="tokens/s per GPU", x=gpus, y=[p["tokens_per_s_per_gpu"] for p in points], mode="lines+markers",
        line={"color": PALETTE[1], "width": 2}, marker={"size": 8, "symbol": "diamond"}, customdata=hover,
        hovertemplate=template.replace("{unit}", "tokens/s per GPU")), row=2, col=1)
    height = 560
    fig.update_layout(figure([], height).layout)
    fig.update_layout(hovermode="closest")
    fig.update_xaxes(type="log", tickvals=gpus, ticktext=[str(g) for g in gpus])
    fig.update_xaxes(title_text="GPUs", row=2, col=1)
    if points:
        shown = [p["tokens_per_s"] for p in points] + linear
        lo, hi = min(shown) / 1.3, max(shown) * 1.3
        ticks = log_ticks(lo, hi)
        fig.update_yaxes(type="log", title_text="tokens/s", range=[math.log10(lo), math.log10(hi)], tickvals=ticks,
                         ticktext=[_si(t) for t in ticks], row=1, col=1)
    fig.update_yaxes(title_text="tokens/s per GPU", rangemode="tozero", row=2, col=1)
    return Chart("chart-scaling", fig, height)


def scaling_table(sweep: dict) -> str:
    efficiency = scaling_efficiency(sweep)
    body = []
    for p in sorted(sweep["points"], key=lambda p: p["gpus"]):
        if p.get("tokens_per_s"):
            body.append([str(p["gpus"]), fmt_s(p["iteration_time_s"]), fmt_rate(p["tokens_per_s"]),
                         fmt_rate(p["tokens_per_s_per_gpu"]), fmt_pct(efficiency[p["gpus"]]), p["placement"], p["status"]])
        else:
            body.append([str(p["gpus"]), "-", "-", "-", "-", p.get("placement") or "", p["status"]])
    return table(["GPUs", "iteration", "tokens/s", "tokens/s per GPU", "per-GPU vs smallest", "best placement",
                  "status"], body, numeric={0, 1, 2, 3, 4}, css="wrap")
