"""``plan execute`` refuses what it cannot run in one line with exit code 2, before Ray starts."""

from __future__ import annotations

import json

import pytest

from executor_setup import make_plan
from planner.cli import main


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    pytest.importorskip("transformers")
    from executor.tiny_model import build_tiny_model
    from executor.toy_task import write_toy_task

    root = tmp_path_factory.mktemp("cli")
    model = build_tiny_model(root / "model")
    data = write_toy_task(root / "toy.jsonl", 32)
    plan = make_plan(root / "plan.json", "grpo", model, "--prompts", "8", "--samples", "2", "--response-len", "2")
    return root, model, data, plan


def _run(capsys, *argv) -> str:
    assert main(["execute", *map(str, argv)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    return err


def test_pipeline_parallel_plans_are_refused_with_the_flag_that_avoids_them(setup, tmp_path, capsys):
    root, model, data, plan = setup
    edited = json.loads(plan.read_text())
    edited["roles"]["actor"]["layout"]["pp"] = 2
    (tmp_path / "pp.json").write_text(json.dumps(edited))
    err = _run(capsys, tmp_path / "pp.json", "--model", f"actor={model}", "--data", data, "--out", tmp_path / "run")
    assert "pipeline parallelism" in err and "--executor-only" in err
    assert not (tmp_path / "run").exists()


def test_algorithms_the_executor_does_not_run_are_refused(setup, tmp_path, capsys, monkeypatch):
    """The executor runs every algorithm of algos/ today; one added there without its stages
    here is refused before Ray starts (shown by narrowing the list the executor runs)."""
    root, model, data, _ = setup
    monkeypatch.setattr("executor.real.stages.SUPPORTED_ALGOS", ("grpo", "ppo"))
    plan = make_plan(tmp_path / "rloo.json", "rloo", model, "--prompts", "8", "--samples", "2", "--response-len", "2")
    err = _run(capsys, plan, "--model", f"actor={model}", "--data", data, "--out", tmp_path / "run")
    assert "the executor runs grpo, ppo, not rloo" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("change, expected", [
    (lambda r, m, d: ["--model", f"actor={r}/nowhere", "--data", d], "no config.json there"),
    (lambda r, m, d: ["--model", f"critic={m}", "--data", d], "that the plan does not have"),
    (lambda r, m, d: ["--model", "actor", "--data", d], "use ROLE=PATH"),
    (lambda r, m, d: ["--model", f"actor={m}", "--data", f"{r}/missing.jsonl"], "missing.jsonl"),
    (lambda r, m, d: ["--model", f"actor={m}", "--data", d, "--reward-fn", "bleu"], "bleu"),
])
def test_bad_inputs_are_one_line(setup, tmp_path, capsys, change, expected):
    root, model, data, plan = setup
    err = _run(capsys, plan, *change(root, model, data), "--out", tmp_path / "run")
    assert expected in err
    assert not (tmp_path / "run").exists()


def test_too_little_data_for_one_step_is_refused(setup, tmp_path, capsys):
    from executor.toy_task import write_toy_task

    root, model, _, plan = setup
    small = write_toy_task(tmp_path / "small.jsonl", 4)
    err = _run(capsys, plan, "--model", f"actor={model}", "--data", small, "--out", tmp_path / "run")
    assert "has 4 prompts but the plan takes 8 per step" in err
