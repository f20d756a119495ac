"""Response lengths and the long tail: the histogram of sampled lengths, how much of
generation waits on the slowest samples, and what a length cap would gain (a what-if,
not a change to the plan)."""

from __future__ import annotations

from executor.report.figures import PALETTE, PLAN_COLOUR, Chart, figure
from executor.report.text import fmt_pct, fmt_s, table

MAX_TRUNCATED = 0.05  # the summary recommends only caps that cut at most 5% of the samples
MARKERS = (("mean", "#222222"), ("p50", PALETTE[2]), ("p95", PALETTE[1]), ("max", PALETTE[3]))


def histogram_chart(lengths: dict) -> Chart:
    import plotly.graph_objects as go

    edges, counts = lengths["bin_edges"], lengths["counts"]
    centres = [(a + b) / 2 for a, b in zip(edges, edges[1:])]
    widths = [b - a for a, b in zip(edges, edges[1:])]
    bars = go.Bar(x=centres, y=counts, width=widths, name="responses", marker={"color": PLAN_COLOUR,
                  "line": {"color": "white", "width": 0.5}},
                  customdata=[[a, b] for a, b in zip(edges, edges[1:])],
                  hovertemplate="%{customdata[0]}-%{customdata[1]} tokens: %{y} responses<extra></extra>")
    shapes, notes = [], []
    for k, (key, colour) in enumerate(MARKERS):
        x = lengths[key]
        shapes.append({"type": "line", "x0": x, "x1": x, "yref": "paper", "y0": 0, "y1": 1,
                       "line": {"color": colour, "width": 1.5, "dash": "dot"}})
        notes.append({"x": x, "yref": "paper", "y": 1 - 0.09 * k, "text": f"{key} {x:,.0f}", "showarrow": False,
                      "xanchor": "left", "xshift": 3, "font": {"color": colour, "size": 12},
                      "bgcolor": "rgba(255,255,255,0.8)"})
    height = 340
    fig = figure([bars], height, shapes=shapes, annotations=notes, showlegend=False, bargap=0,
                 xaxis={"title": {"text": "response length (tokens)"}},
                 yaxis={"title": {"text": "responses"}})
    return Chart("chart-lengths", fig, height)


def long_tail_summary(long_tail: dict) -> str:
    """How much of generation is spent waiting on the slowest samples, in one sentence."""
    gen, wait = long_tail["generation_time_s"], long_tail["tail_wait_s"]
    if wait <= 0:
        return ("No generation time is spent waiting on a long tail: the engines' batches stay above half their "
                "peak until generation ends.")
    return (f"{fmt_pct(long_tail['tail_fraction'])} of generation time ({fmt_s(wait)} of {fmt_s(gen)}) is spent "
            "waiting on the slowest samples: the slowest engine decodes below half its peak batch while the "
            "longest responses finish.")


def best_cap(long_tail: dict, max_truncated: float = MAX_TRUNCATED) -> dict | None:
    """The cap with the largest speedup among those that truncate at most
    ``max_truncated`` of the samples (the mildest on ties), or None."""
    ok = [c for c in long_tail["what_if_caps"] if c["samples_truncated_fraction"] <= max_truncated and c["speedup"] > 1]
    return max(ok, key=lambda c: (c["speedup"], c["cap_tokens"])) if ok else None


def uncapped_iteration_s(long_tail: dict, iteration_time_s: float) -> float:
    """The iteration time the caps' speedups are relative to: the simulator re-runs the
    first few iterations uncapped for the what-if (same seed, same samples); the run's
    mean stands in if it does not say."""
    return long_tail.get("what_if_baseline_iteration_time_s", iteration_time_s)


def what_if_summary(long_tail: dict, iteration_time_s: float, lengths: dict) -> str:
    """What a length cap would gain, in one sentence (``lengths``: the sampled response
    lengths, which say why no cap was tried)."""
    iteration_time_s = uncapped_iteration_s(long_tail, iteration_time_s)
    caps = long_tail["what_if_caps"]
    if not caps:
        if lengths["p95"] >= lengths["max"]:
            return (f"No length cap was simulated: at least 5% of the responses are as long as the longest "
                    f"({lengths['max']:,} tokens), so any cap would cut many of them.")
        return "The length-cap what-if was not run (--no-what-if)."
    best = best_cap(long_tail)
    if best is None:
        mildest = min(caps, key=lambda c: c["samples_truncated_fraction"])
        return (f"No cap pays off without truncating more than {fmt_pct(MAX_TRUNCATED)} of the samples: the "
                f"mildest one tried, {mildest['cap_tokens']:,} tokens, truncates "
                f"{fmt_pct(mildest['samples_truncated_fraction'])} for a {mildest['speedup']:.2f}x speedup.")
    return (f"Capping responses at {best['cap_tokens']:,} tokens would cut the iteration from {fmt_s(iteration_time_s)} "
            f"to {fmt_s(best['iteration_time_s'])} ({best['speedup']:.2f}x) and generation to "
            f"{fmt_s(best['generation_time_s'])}, truncating {fmt_pct(best['samples_truncated_fraction'])} of the samples.")


def _what_if_rows(long_tail: dict, iteration_time_s: float) -> list[dict]:
    """No cap first, then the caps from the mildest to the harshest."""
    none = {"label": "no cap (the plan)", "generation_time_s": long_tail["generation_time_s"],
            "iteration_time_s": uncapped_iteration_s(long_tail, iteration_time_s), "speedup": 1.0, "samples_truncated_fraction": 0.0}
    caps = sorted(long_tail["what_if_caps"], key=lambda c: -c["cap_tokens"])
    return [none] + [dict(c, label=f"cap {c['cap_tokens']:,}") for c in caps]


def what_if_chart(long_tail: dict, iteration_time_s: float) -> Chart:
    import plotly.graph_objects as go

    rows = _what_if_rows(long_tail, iteration_time_s)
    labels = [r["label"] for r in rows]
    custom = [[fmt_s(r["iteration_time_s"]), fmt_s(r["generation_time_s"]), r["speedup"],
               fmt_pct(r["samples_truncated_fraction"])] for r in rows]
    iteration = go.Bar(
        name="iteration time", x=labels, y=[r["iteration_time_s"] for r in rows], marker={"color": PLAN_COLOUR},
        text=[f"{r['speedup']:.2f}x<br>{fmt_pct(r['samples_truncated_fraction'])} cut" for r in rows],
        textposition="outside", customdata=custom, cliponaxis=False,
        hovertemplate="%{x}<br>iteration %{customdata[0]} (%{customdata[2]:.2f}x)<br>"
                      "truncated samples %{customdata[3]}<extra></extra>")
    generation = go.Bar(
        name="generation time", x=labels, y=[r["generation_time_s"] for r in rows], marker={"color": "rgba(78,121,167,0.4)"},
        customdata=custom, hovertemplate="%{x}<br>generation %{customdata[1]}<extra></extra>")
    height = 360
    top = max(r["iteration_time_s"] for r in rows)
    fig = figure([generation, iteration], height, barmode="group", bargap=0.3,
                 yaxis={"title": {"text": "time (s)"}, "range": [0, top * 1.25]})
    return Chart("chart-what-if", fig, height)


def what_if_table(long_tail: dict, iteration_time_s: float) -> str:
    body = [[r["label"], fmt_s(r["generation_time_s"]), fmt_s(r["iteration_time_s"]), f"{r['speedup']:.2f}x",
             fmt_pct(r["samples_truncated_fraction"])] for r in _what_if_rows(long_tail, iteration_time_s)]
    return table(["length cap", "generation", "iteration", "speedup", "samples truncated"], body,
                 numeric={1, 2, 3, 4})
