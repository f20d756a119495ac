"""`plan sweep --cluster C --cluster-gpus N,N,... --algo A`: a plan and a dry run per size,
sizes that do not fit reported as such, the report with the scaling data, bad input."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from planner.cli import main
from planner.cli.sweep_cmd import parse_counts, scaled_cluster
from planner.clusters import load_cluster

JOB = ["--algo", "grpo", "--actor", "qwen2.5-0.5b", "--prompts", "32", "--samples", "4", "--prompt-len", "128",
       "--response-len", "128", "--time-limit", "5", "--iterations", "2"]


run = run_cli


@pytest.fixture(scope="module")
def sweep_report(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("sweep") / "report"
    rc = main(["sweep", "--cluster", "a100x8", "--cluster-gpus", "16,2,8", *JOB, "--json", "--report", str(out_dir)])
    assert rc == 0
    return out_dir


def test_sweep_points(sweep_report):
    sweep = json.loads((sweep_report / "sweep.json").read_text())
    assert sweep["cluster_base"] == "a100x8"
    points = sweep["points"]
    assert [p["gpus"] for p in points] == [2, 8, 16]
    for p in points:
        assert p["status"] == "optimal"
        assert p["iteration_time_s"] > 0 and p["tokens_per_s"] > 0
        assert p["tokens_per_s_per_gpu"] == pytest.approx(p["tokens_per_s"] / p["gpus_used"])
        assert p["placement"] and p["gpus_used"] <= p["gpus"]
        # fixed lengths: each point's dry run reproduces its plan
        assert p["iteration_time_s"] == pytest.approx(p["predicted_iteration_time_s"], rel=1e-6)
    assert points[0]["tokens_per_s"] < points[-1]["tokens_per_s"]
    # the report shows the largest size
    sim = json.loads((sweep_report / "simulation.json").read_text())
    assert sim["cluster"] == "a100x8@16"
    assert {p.name for p in sweep_report.iterdir()} == {"report.html", "simulation.json", "sweep.json", "trace.json"}


def test_sweep_table_and_a_size_that_does_not_fit(capsys):
    rc, out, err = run(["sweep", "--cluster", "a100x8", "--cluster-gpus", "1,8", "--algo", "ppo",
                        "--actor", "qwen2.5-7b", "--prompts", "16", "--samples", "2", "--prompt-len", "128",
                        "--response-len", "128", "--time-limit", "5", "--iterations", "1", "--no-what-if"], capsys)
    assert rc == 0, err
    assert "GPUs" in out and "tokens/s/GPU" in out
    assert "no plan:" in out  # 1 GPU cannot hold PPO's five 7B models
    assert "planning and simulating on 8 GPUs" in err


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_sweep_format_json_and_yaml(capsys, fmt):
    import yaml

    rc, out, err = run(["sweep", "--cluster", "a100x8", "--cluster-gpus", "2", *JOB, "--no-what-if",
                        "--format", fmt], capsys)
    assert rc == 0, err
    sweep = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    assert sweep["cluster_base"] == "a100x8" and [p["gpus"] for p in sweep["points"]] == [2]
    assert "planning and simulating" not in err  # no progress lines around structured output


def test_scaled_cluster_keeps_the_node_type():
    base = load_cluster("h100x8")
    big = scaled_cluster(base, 32)
    assert (big.num_gpus, big.num_nodes, big.gpus_per_node) == (32, 4, 8)
    assert big.node_groups[0].gpu == base.gpu and big.node_groups[0].inter_node_gbps == base.node_groups[0].inter_node_gbps
    small = scaled_cluster(base, 2)
    assert (small.num_gpus, small.num_nodes) == (2, 1)
    assert parse_counts("64, 16,16,32", 8) == [16, 32, 64]


@pytest.mark.parametrize("flags,expected", [
    (["--cluster", "a100x8", "--cluster-gpus", "8,x"], "'x' is not a positive integer"),
    (["--cluster", "a100x8", "--cluster-gpus", "12"], "neither whole 8-GPU nodes"),
    (["--cluster", "a100x8", "--cluster-gpus", "0"], "'0' is not a positive integer"),
    (["--cluster", "h100x32+a100x32", "--cluster-gpus", "8"], "node groups"),
    (["--cluster", "a100x8", "--cluster-gpus", "8", "--out", "plan.json"], "drop --out"),
    (["--cluster", "a100x8", "--cluster-gpus", "8", "--max-gpus", "4"], "drop --max-gpus"),
    (["--cluster", "nowhere", "--cluster-gpus", "8"], "unknown cluster"),
])
def test_bad_sweeps(tmp_path, capsys, flags, expected):
    rc, out, err = run(["sweep", *flags, *JOB, "--report", str(tmp_path / "r")], capsys)
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert expected in err
    assert not (tmp_path / "r").exists()
