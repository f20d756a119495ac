"""``write_report``: one self-contained page from a real plan and its real simulation;
atomic writes; one-line errors; no network references; no torch, ray or vllm."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys

import pytest

from conftest import one_line_error
from executor.report import REPORT_NAME, render_report, write_report
from report_inputs import CHART_IDS, report_inputs


@pytest.fixture(scope="module")
def inputs():
    """(simulation, plan, sweep) of a two-pool PPO plan, simulated for real."""
    return report_inputs()


@pytest.fixture(scope="module")
def written(inputs, tmp_path_factory):
    """The report of ``inputs`` with its sweep: (path, html)."""
    simulation, plan, sweep = inputs
    folder = tmp_path_factory.mktemp("report")
    path = write_report(simulation, plan, folder, sweep)
    assert path == folder / REPORT_NAME
    return path, path.read_text(encoding="utf-8")


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def test_report_is_one_page_with_every_section_and_chart(inputs, written):
    simulation, _, _ = inputs
    _, html = written
    for div_id in CHART_IDS:
        assert f'id="{div_id}"' in html
    for anchor in ("timeline", "stages", "utilisation", "memory", "long-tail", "what-if", "baselines", "scaling"):
        assert f'<section id="{anchor}">' in html
    assert f"<h1>Dry run: {simulation['algo']} on {simulation['cluster']}</h1>" in html
    # every stage and every pool of the simulation is named on the page
    for job in simulation["stages"]:
        assert job in html
    for pool in simulation["pools"]:
        assert f"pool {pool['id']} ({pool['num_gpus']}x {pool['gpu']})" in html


def test_report_works_offline(written):
    """plotly.js is inlined once; outside it the page names no http(s) URL and loads nothing
    (the bundle's own URL strings, e.g. map tile servers, are only fetched by map charts,
    which the report has none of; the browser test watches every request)."""
    _, html = written
    bundle = _plotly_js()
    assert html.count(bundle) == 1
    ours = html.replace(bundle, "")
    assert not re.search(r"https?://", ours), re.search(r".{60}https?://.{60}", ours)
    assert not re.search(r"<(script|img|iframe|link|source|video|audio)\b[^>]*\b(src|href)=", ours, re.I)
    assert "@import" not in ours and "url(" not in ours
    size_mb = len(html.encode()) / 2**20
    assert size_mb < 6, f"report is {size_mb:.1f} MiB"


def test_same_inputs_write_the_same_page(inputs, written):
    simulation, plan, sweep = inputs
    assert render_report(simulation, plan, sweep) == written[1]


def test_without_a_sweep_there_is_no_scaling_section(inputs):
    simulation, plan, _ = inputs
    html = render_report(simulation, plan)
    assert 'id="chart-scaling"' not in html and '<section id="scaling">' not in html


def test_write_is_atomic_and_replaces_an_old_report(inputs, tmp_path):
    simulation, plan, sweep = inputs
    (tmp_path / REPORT_NAME).write_text("old")
    (tmp_path / "trace.json").write_text("{}")  # the simulator's trace lives next to it
    write_report(simulation, plan, tmp_path, sweep)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "trace.json"]
    assert (tmp_path / REPORT_NAME).read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_missing_report_folder_is_created(inputs, tmp_path):
    simulation, plan, _ = inputs
    assert write_report(simulation, plan, tmp_path / "a" / "b").is_file()


def test_report_folder_that_cannot_be_made_is_one_line_and_writes_nothing(inputs, tmp_path):
    simulation, plan, _ = inputs
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "is a file" in one_line_error(write_report, simulation, plan, blocker)
    message = one_line_error(write_report, simulation, plan, blocker / "sub")
    assert message.startswith("cannot write the report") and message.endswith("write it elsewhere")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_inputs_of_another_kind_version_or_plan_are_one_line_errors(inputs, tmp_path):
    simulation, plan, _ = inputs
    assert "not an rlplan simulation" in one_line_error(write_report, plan, plan, tmp_path)
    assert "version 2" in one_line_error(write_report, dict(simulation, version=2), plan, tmp_path)
    assert "not an rlplan plan" in one_line_error(write_report, simulation, simulation, tmp_path)
    other = copy.deepcopy(plan)
    other["inputs"]["cluster"]["name"] = "h100x8"
    assert "pass the plan that was simulated" in one_line_error(write_report, simulation, other, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_names_from_the_user_are_escaped(inputs):
    """A cluster YAML's name is the user's text: it is shown, never run."""
    simulation, plan, _ = inputs
    simulation, plan = copy.deepcopy(simulation), copy.deepcopy(plan)
    name = "<script>alert(1)</script>"
    simulation["cluster"] = plan["inputs"]["cluster"]["name"] = name
    html = render_report(simulation, plan)
    assert name not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_writing_a_report_imports_no_torch_ray_or_vllm(inputs, tmp_path):
    simulation, plan, sweep = inputs
    (tmp_path / "in.json").write_text(json.dumps([simulation, plan, sweep]))
    code = (
        "import json, sys; from pathlib import Path\n"
        "from executor.report import write_report\n"
        f"sim, plan, sweep = json.loads(Path({str(tmp_path / 'in.json')!r}).read_text())\n"
        f"write_report(sim, plan, Path({str(tmp_path / 'out')!r}), sweep)\n"
        "print(sorted(m for m in ('torch', 'ray', 'vllm') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "out" / REPORT_NAME).is_file()
