"""The plan against the baselines of the search (the layouts people write by hand and
HybridFlow's Algorithm 1), all priced by the same cost model."""

from __future__ import annotations

from executor.report.figures import PALETTE, PLAN_COLOUR, Chart, figure
from executor.report.text import fmt_s, table

BASELINE_COLOUR = "#bab0ac"
PLAN_LABEL = "rlplan (this plan)"


def baseline_rows(plan: dict, baselines: list[dict]) -> list[dict]:
    """The plan first, then the feasible baselines from fastest to slowest."""
    feasible = sorted((b for b in baselines if b.get("feasible")), key=lambda b: b["iteration_time_s"])
    rows = [{"name": PLAN_LABEL, "iteration_time_s": plan["iteration_time_s"], "speedup": 1.0, "plan": True}]
    rows += [{"name": b["name"], "iteration_time_s": b["iteration_time_s"], "speedup": b["speedup"], "plan": False}
             for b in feasible]
    return rows


def _layout_text(baseline: dict) -> str:
    if not baseline.get("feasible"):
        return baseline.get("reason", "")
    pools = baseline.get("pools") or []
    return " | ".join(f"{'+'.join(p['roles'])}: {p['num_gpus']}" for p in pools)


def baselines_chart(plan: dict, baselines: list[dict], simulated_s: float) -> Chart:
    import plotly.graph_objects as go

    rows = baseline_rows(plan, baselines)
    names = [r["name"] for r in rows]
    bars = go.Bar(
        orientation="h", y=names, x=[r["iteration_time_s"] for r in rows],
        marker={"color": [PLAN_COLOUR if r["plan"] else BASELINE_COLOUR for r in rows]},
        text=["predicted " + fmt_s(r["iteration_time_s"]) if r["plan"] else
              f"{fmt_s(r['iteration_time_s'])}: the plan is {r['speedup']:.2f}x faster" for r in rows],
        textposition="outside", cliponaxis=False, showlegend=False,
        hovertemplate="%{y}: %{x:.1f} s per iteration<extra></extra>")
    top = max(r["iteration_time_s"] for r in rows + [{"iteration_time_s": simulated_s}])
    simulated = {"type": "line", "x0": simulated_s, "x1": simulated_s, "yref": "paper", "y0": 0, "y1": 1,
                 "line": {"color": PALETTE[3], "dash": "dash", "width": 1.5}}
    note = {"x": simulated_s, "yref": "paper", "y": 1.0, "yanchor": "bottom", "text": f"simulated {fmt_s(simulated_s)}",
            "showarrow": False, "font": {"color": PALETTE[3], "size": 12}}
    height = 120 + 50 * len(rows)
    fig = figure([bars], height, shapes=[simulated], annotations=[note], bargap=0.35,
                 xaxis={"title": {"text": "iteration time predicted by the cost model (s)"}, "range": [0, top * 1.45]},
                 yaxis={"categoryorder": "array", "categoryarray": names, "autorange": "reversed"},
                 margin={"l": 10, "r": 20, "t": 40, "b": 50})
    return Chart("chart-baselines", fig, height)


def baselines_table(baselines: list[dict]) -> str:
    body = []
    for b in baselines:
        if b.get("feasible"):
            body.append([b["name"], fmt_s(b["iteration_time_s"]), f"{b['speedup']:.2f}x", _layout_text(b),
                         b.get("description", "")])
        else:
            body.append([b["name"], "does not run", "-", _layout_text(b), b.get("description", "")])
    return table(["baseline", "iteration", "plan's speedup", "pools (roles: GPUs) or why not", "what it is"], body,
                 numeric={1, 2}, css="wrap")
