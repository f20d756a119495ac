"""`plan simulate plan.json` and `plan --cluster C --algo A --dry-run`: the summary, --json,
--report's files (trace.json validates, one process per pool, one track per role), and
bad input as one line with exit code 2 and nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from executor.trace import validate_trace
from conftest import run_cli
from planner.cli import main

REPO = Path(__file__).resolve().parents[1]
JOB = ["--actor", "qwen2.5-1.5b", "--prompts", "64", "--samples", "4", "--prompt-len", "256",
       "--response-dist", "lognormal:200,150,max=512"]
SIM_KEYS = {"kind", "version", "cluster", "algo", "mode", "seed", "iterations", "iteration_time_s",
            "iteration_time_p95_s", "iteration_times_s", "predicted_iteration_time_s", "tokens_per_s",
            "tokens_per_s_per_gpu", "stages", "pools", "critical_path", "events", "response_lengths", "long_tail",
            "baselines"}


run = run_cli


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    assert main(["--cluster", "a100x16", "--algo", "ppo", *JOB, "--time-limit", "5", "--json", "--out", str(path)]) == 0
    return path


def one_line_exit_2(rc, out, err) -> str:
    assert rc == 2
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_simulate_prints_the_summary(plan_file, capsys):
    rc, out, err = run(["simulate", str(plan_file), "--iterations", "3"], capsys)
    assert rc == 0, err
    for text in ("iteration time: mean", "plan predicted", "tokens/s", "Stages", "Pools", "critical path",
                 "long tail", "What if responses were capped", "rollout.generate", "actor.update"):
        assert text in out, text


def test_simulate_json_has_the_schema(plan_file, capsys):
    rc, out, err = run(["simulate", str(plan_file), "--iterations", "2", "--seed", "4", "--json"], capsys)
    assert rc == 0, err
    sim = json.loads(out)
    assert SIM_KEYS <= set(sim)
    assert (sim["iterations"], sim["seed"], sim["algo"], sim["cluster"]) == (2, 4, "ppo", "a100x16")
    plan = json.loads(plan_file.read_text())
    assert sim["predicted_iteration_time_s"] == plan["iteration_time_s"]
    assert set(sim["stages"]) == {j["job"] for j in plan["schedule"]}
    assert [p["id"] for p in sim["pools"]] == [p["id"] for p in plan["pools"]]


def test_simulate_yaml_carries_the_same_fields(plan_file, capsys):
    import yaml

    rc, out, err = run(["simulate", str(plan_file), "--iterations", "2", "--no-what-if", "--format", "yaml"], capsys)
    assert rc == 0, err
    sim = yaml.safe_load(out)
    assert SIM_KEYS <= set(sim) and sim["iterations"] == 2
    rc, again, _ = run(["simulate", str(plan_file), "--iterations", "2", "--no-what-if", "--json"], capsys)
    assert json.loads(again)["iteration_time_s"] == pytest.approx(sim["iteration_time_s"])


def test_report_writes_trace_simulation_and_page(plan_file, tmp_path, capsys):
    out_dir = tmp_path / "report"
    rc, out, err = run(["simulate", str(plan_file), "--iterations", "2", "--report", str(out_dir)], capsys)
    assert rc == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == ["report.html", "simulation.json", "trace.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no staging folder left
    trace = json.loads((out_dir / "trace.json").read_text())
    validate_trace(trace)
    plan = json.loads(plan_file.read_text())
    events = trace["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert len(names) == len(plan["pools"]) + 1 and "driver" in names.values()
    for pool in plan["pools"]:
        tracks = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"
                  and e["pid"] == pool["id"]}
        assert tracks == set(pool["roles"])
    slices = [e for e in events if e["ph"] == "X"]
    assert {e["name"] for e in slices} == {j["job"] for j in plan["schedule"]}
    assert {e["args"]["iteration"] for e in slices} == {0, 1}
    sim = json.loads((out_dir / "simulation.json").read_text())
    assert SIM_KEYS <= set(sim)
    assert "<html" in (out_dir / "report.html").read_text()[:2000].lower()
    assert f"wrote {out_dir / 'trace.json'}" in out


def test_dry_run_shortcut(tmp_path, capsys):
    argv = ["--cluster", "a100x8", "--algo", "grpo", *JOB, "--dry-run", "--iterations", "2"]
    rc, out, err = run([*argv, "--json"], capsys)
    assert rc == 0, err
    sim = json.loads(out)
    assert SIM_KEYS <= set(sim) and sim["plan"]["kind"] == "rlplan.plan"
    assert sim["predicted_iteration_time_s"] == sim["plan"]["iteration_time_s"]
    import yaml

    rc, out, err = run([*argv, "--no-what-if", "--format", "yaml"], capsys)
    assert rc == 0, err
    assert yaml.safe_load(out)["plan"]["kind"] == "rlplan.plan"
    rc, out, err = run([*argv, "--report", str(tmp_path / "r")], capsys)
    assert rc == 0, err
    assert "Schedule (one iteration)" in out and "iteration time: mean" in out
    assert (tmp_path / "r" / "trace.json").is_file() and (tmp_path / "r" / "report.html").is_file()


def test_report_without_dry_run_is_refused(tmp_path, capsys):
    err = one_line_exit_2(*run(["--cluster", "a100x8", "--algo", "grpo", *JOB, "--report", str(tmp_path / "r")], capsys))
    assert "--report needs --dry-run" in err
    assert not (tmp_path / "r").exists()


def edited(plan_file: Path, tmp_path: Path, change) -> Path:
    plan = json.loads(plan_file.read_text())
    change(plan)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(plan))
    return path


@pytest.mark.parametrize("make,expected", [
    (lambda f, t: (t / "bad.json", (t / "bad.json").write_text("{ not json"))[0], "is not valid JSON"),
    (lambda f, t: (t / "list.json", (t / "list.json").write_text("[1, 2]"))[0], "is not an rlplan plan"),
    (lambda f, t: (t / "other.json", (t / "other.json").write_text('{"kind": "rlplan.simulation"}'))[0],
     "is not an rlplan plan"),
    (lambda f, t: t / "missing.json", "not found"),
    (lambda f, t: edited(f, t, lambda p: p.update(version=2)), "plan of version 2"),
    (lambda f, t: edited(f, t, lambda p: p.pop("schedule")), "the plan has no 'schedule'"),
    (lambda f, t: edited(f, t, lambda p: p["inputs"]["cluster"]["node_groups"][0].update(nodes=3)),
     "the profile changed since"),
    (lambda f, t: edited(f, t, lambda p: p["inputs"]["workload"].update(prompts=32)), "do not match its digest"),
    (lambda f, t: edited(f, t, lambda p: p["inputs"]["cluster"].update(name="lab")), "pass its YAML with --cluster"),
    (lambda f, t: edited(f, t, lambda p: p["inputs"]["cluster"].update(
        name="verl 2 x 8 b300", node_groups=[{"gpu": "b300", "nodes": 2, "gpus_per_node": 8}])),
     "`plan --from-verl CONFIG --gpu b300 --dry-run`"),
    (lambda f, t: edited(f, t, lambda p: p["roles"]["rollout"]["layout"].update(tp=3)), "is not a layout"),
])
def test_bad_plan_files(plan_file, tmp_path, capsys, make, expected):
    path = make(plan_file, tmp_path)
    report = tmp_path / "report"
    err = one_line_exit_2(*run(["simulate", str(path), "--report", str(report)], capsys))
    assert expected in err
    assert not report.exists()


def test_plan_for_another_cluster_is_refused(plan_file, capsys):
    err = one_line_exit_2(*run(["simulate", str(plan_file), "--cluster", "a100x64"], capsys))
    assert "made for cluster 'a100x16'" in err and "not 'a100x64'" in err


@pytest.mark.parametrize("flags,expected", [
    (["--iterations", "0"], "--iterations: must be a positive integer"),
    (["--iterations", "-3"], "--iterations: must be a positive integer"),
    (["--iterations", "two"], "'two' is not an integer"),
    (["--seed", "-1"], "--seed must be a non-negative integer"),
    (["--model", "actor"], "use ROLE=PATH"),
    (["--model", "judge=x/config.json"], "the plan does not have"),
])
def test_bad_flags(plan_file, capsys, flags, expected):
    err = one_line_exit_2(*run(["simulate", str(plan_file), *flags], capsys))
    assert expected in err


def test_report_path_that_is_a_file(plan_file, tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("keep me")
    err = one_line_exit_2(*run(["simulate", str(plan_file), "--report", str(target)], capsys))
    assert "is a file" in err and target.read_text() == "keep me"


def test_simulate_imports_no_torch_ray_or_vllm(plan_file):
    code = ("import sys; from planner.cli import main; "
            f"rc = main(['simulate', {str(plan_file)!r}, '--iterations', '1', '--json']); "
            "heavy = [m for m in ('torch', 'ray', 'vllm') if m in sys.modules]; "
            "assert rc == 0 and not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
