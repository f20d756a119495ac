"""A run killed between two checkpoints resumes from the last one: no prompt of the epoch is
skipped or trained on twice, and the steps it redoes see the same prompts as before."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("vllm")
pytest.importorskip("ray")

from executor_setup import make_plan, read_metrics  # noqa: E402

PROMPTS, PER_STEP, STEPS, EVERY = 64, 16, 4, 2
"""4 steps of 16 prompts are exactly one epoch of the 64; checkpoints after steps 2 and 4."""
KILL_AFTER = 3
"""Steps finished when the run is killed: one past the checkpoint at 2."""


def _execute(plan, model, data, out, *extra) -> subprocess.Popen:
    argv = ["execute", str(plan), "--model", f"actor={model}", "--data", str(data), "--out", str(out),
            "--steps", str(STEPS), "--checkpoint-every", str(EVERY), "--lr", "1e-3", *extra]
    code = "import sys; from planner.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, text=True)


def _kill_session(proc: subprocess.Popen) -> None:
    """SIGKILL the run and everything it started (Ray's processes share its session)."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    out = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True).stdout
    for line in out.splitlines():
        pid, sid = (int(x) for x in line.split())
        if sid == proc.pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    from executor.tiny_model import build_tiny_model
    from executor.toy_task import write_toy_task

    model = build_tiny_model(tmp_path / "model")
    data = write_toy_task(tmp_path / "toy.jsonl", PROMPTS)
    plan = make_plan(tmp_path / "plan.json", "grpo", model, "--prompts", str(PER_STEP), "--samples", "2",
                     "--response-len", "2")
    out = tmp_path / "run"
    proc = _execute(plan, model, data, out)
    deadline = time.time() + 600
    try:
        while time.time() < deadline and proc.poll() is None:
            if (out / "metrics.jsonl").exists() and len(read_metrics(out)) >= KILL_AFTER:
                break
            time.sleep(0.2)
        assert proc.poll() is None, f"the run ended before it could be killed:\n{proc.stdout.read()[-3000:]}"
        before = read_metrics(out)
    finally:
        _kill_session(proc)
    assert [m["step"] for m in before] == list(range(KILL_AFTER))
    assert (out / "checkpoints" / "step_000002" / "driver.json").is_file()
    assert not (out / "checkpoints" / "step_000004").exists()

    resumed = _execute(plan, model, data, out, "--resume")
    log, _ = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, log[-3000:]
    after = read_metrics(out)
    assert [m["step"] for m in after] == list(range(STEPS))
    # the steps before the checkpoint are kept as they were; the redone step sees the same prompts
    assert after[:EVERY] == before[:EVERY]
    assert after[EVERY]["prompt_ids"] == before[EVERY]["prompt_ids"]
    # one epoch: every prompt exactly once
    seen = [i for m in after for i in m["prompt_ids"]]
    assert sorted(seen) == list(range(PROMPTS))
    # the resumed trainer continued from the checkpoint's optimizer steps, not from scratch
    assert [m["policy_version"] for m in after] == [4 * s for s in range(STEPS)]
    assert json.loads((out / "checkpoints" / "step_000004" / "driver.json").read_text())["steps_done"] == STEPS
