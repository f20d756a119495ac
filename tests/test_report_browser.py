"""The report in a real browser: headless Chromium (Debian's ``chromium``) opens
report.html with the network off, logs no console error, requests nothing but the file,
and its screenshot shows every chart drawn.

The screenshot is kept as ``report.png`` next to the report in pytest's temporary
folder (``--basetemp`` to choose where) for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from browser import CHROMIUM, load_page
from executor.report import write_report
from executor.report.timeline import gantt_bars
from report_inputs import CHART_IDS, report_inputs

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`")

CHARTS_DRAWN = "document.querySelectorAll('.plotly-graph-div').length > 0 && " \
               "Array.from(document.querySelectorAll('.plotly-graph-div')).every(d => d._fullLayout && " \
               "d.querySelector('.main-svg'))"

# For every chart: its id, and for every subplot the plot area (page coordinates) and how
# many marks (bars, points, line paths) plotly drew in it.
CHART_INFO = """
Array.from(document.querySelectorAll('.plotly-graph-div')).map(div => ({
  id: div.id,
  subplots: Array.from(div.querySelectorAll('.draglayer .nsewdrag')).map(area => {
    const r = area.getBoundingClientRect();
    return {x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: r.height};
  }),
  marks: div.querySelectorAll('.cartesianlayer .trace .point, .cartesianlayer .trace path.js-line').length,
}))
"""

INK = 200  # a pixel is ink if a channel is darker than this: white and the light grid lines are not


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    simulation, plan, sweep = report_inputs()
    folder = tmp_path_factory.mktemp("report")
    html = write_report(simulation, plan, folder, sweep)
    page = load_page(html, folder / "report.png", script=CHART_INFO, ready=CHARTS_DRAWN)
    return simulation, page


def test_page_loads_without_console_errors(loaded):
    _, page = loaded
    assert page.exceptions == []
    assert page.console_errors == []
    assert page.console_warnings == []


def test_page_requests_nothing_but_itself(loaded):
    _, page = loaded
    assert page.requests and all(url.startswith(("file:", "data:", "blob:")) for url in page.requests), page.requests


def test_every_chart_is_rendered_with_marks(loaded):
    simulation, page = loaded
    charts = {c["id"]: c for c in page.evaluated}
    assert sorted(charts) == sorted(CHART_IDS)
    for chart in charts.values():
        assert chart["subplots"], chart["id"]
        assert all(s["width"] > 300 and s["height"] > 50 for s in chart["subplots"]), chart
        assert chart["marks"] > 0, chart["id"]
    assert len(charts["chart-memory-timeline"]["subplots"]) == len(simulation["pools"])  # one per pool
    # the timeline draws a bar per call and pool it ran on (plotly may skip a zero-length one)
    bars = gantt_bars(simulation)
    assert len([b for b in bars if b.end_s > b.start_s]) <= charts["chart-timeline"]["marks"] <= len(bars)


def test_screenshot_shows_every_chart(loaded):
    """In every subplot of every chart, enough pixels are ink (bars, lines, points): a
    chart that failed to draw leaves a white area with light grid lines only."""
    from PIL import Image

    _, page = loaded
    image = Image.open(page.screenshot).convert("RGB")
    assert image.width == 1400
    for chart in page.evaluated:
        for area in chart["subplots"]:
            box = tuple(round(v) for v in (area["x"], area["y"], area["x"] + area["width"], area["y"] + area["height"]))
            assert box[3] <= image.height, f"{chart['id']} is below the screenshot"
            share = float((np.asarray(image.crop(box)).min(axis=2) < INK).mean())
            assert share > 0.005, f"{chart['id']}: only {share:.2%} of its plot area is drawn"
