"""`plan export PLAN --to verl|openrlhf`: what it prints and writes, its formats, and its
one-line errors (exit 2, nothing written)."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex

import pytest
import yaml

from planner.cli import main

SMALL = ["--prompts", "64", "--samples", "4", "--response-len", "256", "--prompt-len", "256", "--time-limit", "10"]


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    """Small real plans: grpo (rule reward) and remax (which OpenRLHF does not have)."""
    folder = tmp_path_factory.mktemp("plans")
    out = {}
    for algo in ("grpo", "remax"):
        path = folder / f"{algo}.json"
        assert main(["--cluster", "a100x8", "--algo", algo, "--actor", "qwen2.5-1.5b", *SMALL,
                     "--out", str(path), "--json"]) == 0
        out[algo] = path
    return out


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_verl_export_prints_a_command_and_writes_its_files(plans, tmp_path, capsys):
    folder = tmp_path / "job"
    code, out, _ = run(capsys, "export", str(plans["grpo"]), "--to", "verl", "--out", str(folder),
                       "--model-path", "actor=/models/qwen")
    assert code == 0
    assert out.startswith("verl 0.9.1: ")
    assert "python3 -m verl.trainer.main_ppo" in out
    assert sorted(os.listdir(folder)) == ["EXPORT.md", "run_verl.sh", "verl_overrides.txt"]
    assert os.access(folder / "run_verl.sh", os.X_OK)
    overrides = [line for line in (folder / "verl_overrides.txt").read_text().splitlines() if not line.startswith("#")]
    assert "actor_rollout_ref.model.path=/models/qwen" in overrides
    assert "algorithm.adv_estimator=grpo" in overrides
    script_words = shlex.split((folder / "run_verl.sh").read_text().replace("\\\n", " "), comments=True)
    assert [w for w in script_words if "=" in w and not w.startswith("--")] == overrides


def test_export_json_and_yaml_carry_the_same_settings(plans, capsys):
    _, as_json, _ = run(capsys, "export", str(plans["grpo"]), "--to", "openrlhf", "--format", "json")
    _, as_yaml, _ = run(capsys, "export", str(plans["grpo"]), "--to", "openrlhf", "--format", "yaml")
    _, alias, _ = run(capsys, "export", str(plans["grpo"]), "--to", "openrlhf", "--json")
    data = json.loads(as_json)
    assert data == yaml.safe_load(as_yaml) == json.loads(alias)
    assert data["framework"] == "openrlhf" and data["version"] == "0.11.2"
    argv = data["settings"]["argv"]
    assert argv[argv.index("--vllm.num_engines") + 1] == str(data["settings"]["flags"]["--vllm.num_engines"])
    assert data["command"].startswith("python3 -m openrlhf.cli.train_ppo_ray")
    # grpo scores with a rule: the command points at reward_func.py and a note says what to write in it
    assert data["settings"]["flags"]["--reward.remote_url"] == "reward_func.py"
    assert any("reward_func(queries, prompts, labels)" in note for note in data["notes"])


@pytest.mark.skipif(importlib.util.find_spec("verl") is None or importlib.util.find_spec("hydra") is None,
                    reason="verl and hydra-core not installed (pip install --no-deps verl==0.9.1 && pip install hydra-core)")
def test_check_runs_verls_composition(plans, capsys):
    code, out, _ = run(capsys, "export", str(plans["grpo"]), "--to", "verl", "--check")
    assert code == 0
    assert "checked: verl 0.9.1 composes ppo_trainer with all" in out


@pytest.mark.parametrize("make_argv,message", [
    (lambda p, t: ["export", str(t / "missing.json"), "--to", "verl"], "not found"),
    (lambda p, t: ["export", str(p["grpo"]), "--to", "openrlhf", "--model-path", "critic=/x"], "no role 'critic'"),
    (lambda p, t: ["export", str(p["grpo"]), "--to", "verl", "--model-path", "actor"], "use ROLE=PATH"),
    (lambda p, t: ["export", str(p["remax"]), "--to", "openrlhf"], "OpenRLHF has no remax"),
    (lambda p, t: ["export", str(p["grpo"]), "--to", "openrlhf", "--engine", "megatron"], "--engine is for --to verl"),
])
def test_errors_are_one_line_with_exit_2(plans, tmp_path, capsys, make_argv, message):
    code, out, err = run(capsys, *make_argv(plans, tmp_path))
    assert code == 2
    assert out == ""
    assert message in err and err.count("\n") == 1


def test_out_on_a_file_writes_nothing(plans, tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("mine")
    code, _, err = run(capsys, "export", str(plans["grpo"]), "--to", "verl", "--out", str(target))
    assert code == 2 and "is a file" in err
    assert target.read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["taken"]


def test_not_a_plan_is_refused(tmp_path, capsys):
    bogus = tmp_path / "bogus.json"
    bogus.write_text(json.dumps({"kind": "something else"}))
    code, _, err = run(capsys, "export", str(bogus), "--to", "verl")
    assert code == 2 and "not an rlplan plan" in err


@pytest.mark.parametrize("argv", [
    ["clusters"], ["clusters", "--show", "a100x8"], ["models"], ["models", "--show", "qwen2.5-7b"],
    ["algos"], ["algos", "--show", "ppo"], ["validate", "--category", "communication"],
    ["estimate", "train", "--model", "qwen2.5-0.5b", "--gpu", "a100-80gb", "--gpus", "8", "--global-batch", "16",
     "--seq-len", "1024"],
    ["estimate", "comm", "--gpu", "a100-80gb", "--gpus", "8", "--op", "all_reduce", "--bytes", "64MiB"],
    ["estimate", "generate", "--model", "qwen2.5-0.5b", "--gpu", "a100-80gb", "--tp", "1", "--batch", "4",
     "--input-len", "128", "--output-len", "32"],
])
def test_format_json_yaml_and_the_json_alias_agree_everywhere(capsys, argv):
    """`--format json|yaml|table` on every command with structured output; `--json` is its alias."""
    _, as_json, _ = run(capsys, *argv, "--format", "json")
    _, as_yaml, _ = run(capsys, *argv, "--format", "yaml")
    _, alias, _ = run(capsys, *argv, "--json")
    assert json.loads(as_json) == yaml.safe_load(as_yaml) == json.loads(alias)
    code, table, _ = run(capsys, *argv, "--format", "table")
    assert code == 0 and not table.lstrip().startswith(("{", "["))
