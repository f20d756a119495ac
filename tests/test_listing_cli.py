"""``plan clusters`` and ``plan models``: tables, JSON, details, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from planner.cli import main
from planner.clusters import cluster_names
from planner.model_loading import zoo_names

FIXTURES = Path(__file__).parent / "fixtures"
RUN_PLAN = [sys.executable, "-c", "import sys; from planner.cli import main; sys.exit(main())"]


def test_clusters_table_lists_every_profile(capsys):
    assert main(["clusters"]) == 0
    out = capsys.readouterr().out
    for name in cluster_names():
        assert name in out
    assert "PCIe" in out and "NVLink" in out
    a100x64 = next(line for line in out.splitlines() if " a100x64 " in line)
    assert "64" in a100x64 and "8 x 8" in a100x64 and "25" in a100x64


def test_clusters_json(capsys):
    assert main(["clusters", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in data] == cluster_names()
    by_name = {c["name"]: c for c in data}
    assert by_name["a100x64"]["num_gpus"] == 64 and by_name["a100x64"]["num_nodes"] == 8
    assert len(by_name["h100x32+a100x32"]["node_groups"]) == 2


def test_clusters_show_builtin_and_user_file(capsys):
    assert main(["clusters", "--show", "h100x32+a100x32"]) == 0
    out = capsys.readouterr().out
    assert "h100-80gb" in out and "a100-80gb" in out and "64 GPUs on 8 nodes" in out
    assert main(["clusters", "--show", str(FIXTURES / "clusters" / "my_cluster.yaml"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["node_groups"][0]["gpu"]["memory_gib"] == 94


def test_clusters_unknown_name_is_one_line_exit_2(capsys):
    assert main(["clusters", "--show", "a100x63"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "unknown cluster 'a100x63'" in captured.err


def test_models_table_lists_the_zoo(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in zoo_names():
        assert name in out
    moe = next(line for line in out.splitlines() if "qwen3-30b-a3b" in line)
    assert "30.53" in moe and "3.35" in moe and "128x768" in moe


def test_models_json_and_show(capsys):
    assert main(["models", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in data] == zoo_names()
    assert all(m["source"].startswith("https://huggingface.co/") for m in data)
    assert main(["models", "--show", "qwen3-30b-a3b", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_experts"] == 128 and round(info["active_params"] / 1e9, 1) == 3.4
    assert main(["models", "--show", str(FIXTURES / "models" / "gpt2")]) == 0
    assert "gelu" in capsys.readouterr().out


def test_models_unknown_name_suggests(capsys):
    assert main(["models", "--show", "llama-3-8b"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "llama-3.1-8b" in err


def test_plan_clusters_process_exits_0():
    result = subprocess.run(RUN_PLAN + ["clusters"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "a100x64" in result.stdout and result.stderr == ""


def test_bad_yaml_process_exits_2_with_one_line():
    bad = FIXTURES / "clusters" / "bad_syntax.yaml"
    result = subprocess.run(RUN_PLAN + ["clusters", "--show", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("plan clusters: error:") and "line 5" in result.stderr
