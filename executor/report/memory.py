"""Memory per GPU of each pool: over time against capacity, and what the peak is made of."""

from __future__ import annotations

from executor.report.figures import CAPACITY_COLOUR, Chart, figure
from executor.report.text import fmt_gib
from executor.report.timeline import pool_label, shown_window

PART_COLOURS = {"weights": "#4e79a7", "gradients": "#76b7b2", "optimizer": "#f28e2b",
                "activations": "#59a14f", "kv_cache": "#b07aa1", "logits": "#edc948"}
OTHER_PART_COLOURS = ("#9c755f", "#ff9da7", "#bab0ac", "#86bcb6", "#d4a6c8", "#8cd17d")  # none red: red is capacity
LINE_COLOUR = "#1f4e79"


def memory_parts(simulation: dict) -> list[str]:
    """Every component named in any pool's peak breakdown: the known ones in a fixed
    order (weights first), then the others as they appear."""
    seen: list[str] = []
    for p in simulation["pools"]:
        for key in p.get("memory_peak_breakdown_gib") or {}:
            if key not in seen:
                seen.append(key)
    known = [k for k in PART_COLOURS if k in seen]
    return known + [k for k in seen if k not in PART_COLOURS]


def _part_colour(part: str, others: list[str]) -> str:
    return PART_COLOURS.get(part) or OTHER_PART_COLOURS[others.index(part) % len(OTHER_PART_COLOURS)]


def memory_timeline_chart(simulation: dict) -> Chart:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    pools = sorted(simulation["pools"], key=lambda p: p["id"])
    end = max((e["end_s"] for e in simulation["events"]), default=0.0)
    fig = make_subplots(rows=len(pools), cols=1, shared_xaxes=True, vertical_spacing=0.12 / max(len(pools), 1),
                        subplot_titles=[f"{pool_label(p)}: {', '.join(p['roles'])}" for p in pools])
    for i, p in enumerate(pools, start=1):
        points = p["memory_timeline"] or [[0.0, 0.0]]
        times = [t for t, _ in points] + [max(end, points[-1][0])]
        gib = [g for _, g in points] + [points[-1][1]]
        fig.add_trace(go.Scatter(
            x=times, y=gib, mode="lines", line={"shape": "hv", "color": LINE_COLOUR, "width": 1.5},
            fill="tozeroy", fillcolor="rgba(31,78,121,0.15)", name="memory per GPU", legendgroup="memory",
            showlegend=i == 1, hovertemplate="%{x:.1f} s: %{y:.1f} GiB<extra>pool " + str(p["id"]) + "</extra>"),
            row=i, col=1)
        fig.add_trace(go.Scatter(
            x=[0, times[-1]], y=[p["capacity_gib"]] * 2, mode="lines", name="capacity", legendgroup="capacity",
            line={"color": CAPACITY_COLOUR, "dash": "dash", "width": 1.5}, showlegend=i == 1,
            hovertemplate=f"capacity {p['capacity_gib']:g} GiB<extra></extra>"), row=i, col=1)
        fig.update_yaxes(title_text="GiB", range=[0, max(p["capacity_gib"], p["peak_memory_gib"]) * 1.1], row=i, col=1)
    window = shown_window(simulation)
    if window:
        fig.update_xaxes(range=list(window))
    fig.update_xaxes(title_text="time (s)", row=len(pools), col=1)
    height = 110 + 190 * len(pools)
    fig.update_layout(figure([], height).layout)
    fig.update_layout(legend={"xanchor": "center", "x": 0.5})  # subplot titles left, the tool bar right
    fig.update_annotations(font_size=13, xanchor="left", x=0)
    return Chart("chart-memory-timeline", fig, height)


def memory_peak_chart(simulation: dict) -> Chart:
    import plotly.graph_objects as go

    pools = sorted(simulation["pools"], key=lambda p: p["id"])
    labels = [pool_label(p) for p in pools]
    parts = memory_parts(simulation)
    others = [k for k in parts if k not in PART_COLOURS]
    traces = [go.Bar(name=part, orientation="h", y=labels,
                     x=[(p.get("memory_peak_breakdown_gib") or {}).get(part, 0.0) for p in pools],
                     marker={"color": _part_colour(part, others)},
                     hovertemplate=f"%{{y}}<br>{part}: %{{x:.1f}} GiB<extra></extra>") for part in parts]
    traces.append(go.Scatter(
        name="capacity", y=labels, x=[p["capacity_gib"] for p in pools], mode="markers",
        marker={"symbol": "line-ns", "size": 34, "line": {"width": 3, "color": CAPACITY_COLOUR}},
        hovertemplate="%{y}<br>capacity %{x:g} GiB<extra></extra>"))
    height = 120 + 55 * len(pools)
    fig = figure(traces, height, barmode="stack", bargap=0.35,
                 xaxis={"title": {"text": "memory per GPU at the peak (GiB)"}, "rangemode": "tozero"},
                 yaxis={"categoryorder": "array", "categoryarray": labels, "autorange": "reversed"})
    fig.update_layout(legend={"traceorder": "normal"})
    return Chart("chart-memory-peak", fig, height)


def memory_headroom(simulation: dict) -> str:
    """One sentence on the tightest pool."""
    pools = simulation["pools"]
    if not pools:
        return ""
    tight = max(pools, key=lambda p: p["peak_memory_gib"] / p["capacity_gib"])
    share = tight["peak_memory_gib"] / tight["capacity_gib"]
    spare = tight["capacity_gib"] - tight["peak_memory_gib"]
    if share > 1:
        verdict = "exceeds the capacity: this plan would run out of memory"
    elif share > 0.95:
        verdict = "leaves less than 5% free: allocator fragmentation may push it over"
    else:
        verdict = f"leaves {fmt_gib(spare)} free"
    return (f"The tightest pool is pool {tight['id']}: its peak is {fmt_gib(tight['peak_memory_gib'])} of "
            f"{tight['capacity_gib']:g} GiB per GPU ({share * 100:.0f}%), which {verdict}.")
