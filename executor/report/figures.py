"""What every chart of the report shares: colours, the base layout, and the embedding.

A chart is a plotly figure embedded as a ``<div>`` plus a script that draws it with the
plotly.js inlined once in the page's head (so the page works offline). Div ids are
given, not random, so the same inputs write the same page.
"""

from __future__ import annotations

from dataclasses import dataclass

# Tableau 10 (Tableau's default qualitative palette), readable on white and in print.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
           "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
SYNC_COLOUR = "#555555"
IDLE_COLOUR = "#e6e6e6"
PLAN_COLOUR = "#4e79a7"
CAPACITY_COLOUR = "#d62728"

PLOTLY_CONFIG = {
    "displaylogo": False,  # the logo is a link to plotly.com: the page links nowhere
    "responsive": True,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
    "toImageButtonOptions": {"format": "png", "scale": 2},
}

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


@dataclass(frozen=True)
class Chart:
    """One embedded figure: its div id, the figure, and its height in pixels."""

    div_id: str
    figure: object
    height: int

    def to_html(self) -> str:
        import plotly.io as pio  # plotly escapes "</" in the figure JSON

        return pio.to_html(self.figure, full_html=False, include_plotlyjs=False, div_id=self.div_id,
                           config=PLOTLY_CONFIG, default_width="100%", default_height=f"{self.height}px")


def job_colours(jobs: list[str], kinds: dict[str, str]) -> dict[str, str]:
    """A colour per job, in the order given: weight syncs are dark grey, the others take
    the palette in turn so that the same job has the same colour in every chart."""
    colours, k = {}, 0
    for job in jobs:
        if kinds.get(job) == "sync":
            colours[job] = SYNC_COLOUR
        else:
            colours[job] = PALETTE[k % len(PALETTE)]
            k += 1
    return colours


def base_layout(height: int, **extra) -> dict:
    """The layout every chart starts from: white, compact margins, legend on top."""
    layout = {
        "template": "plotly_white",
        "height": height,
        "margin": {"l": 10, "r": 20, "t": 40, "b": 50},
        "font": {"family": FONT, "size": 13, "color": "#222"},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
        "hoverlabel": {"font": {"family": FONT, "size": 12}},
    }
    layout.update(extra)
    return layout


def figure(traces: list, height: int, **layout):
    import plotly.graph_objects as go

    fig = go.Figure(data=traces, layout=base_layout(height, **layout))
    fig.update_yaxes(automargin=True)
    fig.update_xaxes(automargin=True)
    return fig
