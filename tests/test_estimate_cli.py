"""`plan estimate train|comm`: output, JSON, one-line errors, start-up time."""

import json
import shutil
import subprocess
import sys
import time

import pytest

from conftest import run_cli
from planner.cli import main
from planner.cli.estimate import parse_bytes
from planner.errors import PlanError

TRAIN = ["estimate", "train", "--model", "llama-2-7b", "--gpu", "a100-80gb", "--gpus", "8", "--tp", "1",
         "--pp", "1", "--zero", "3", "--global-batch", "64", "--seq-len", "4096"]


run = run_cli


def test_train_human_output_has_headline_and_breakdown(capsys):
    rc, out, err = run(TRAIN, capsys)
    assert rc == 0 and err == ""
    for word in ("step time", "tokens/s per GPU", "TFLOP/s per GPU", "memory per GPU", "compute", "dp_comm",
                 "optimizer", "activations", "weights"):
        assert word in out


def test_train_json(capsys):
    rc, out, _ = run(TRAIN + ["--json"], capsys)
    assert rc == 0
    doc = json.loads(out)
    assert doc["step_time_s"] == pytest.approx(sum(doc["breakdown"]["time_s"].values()))
    assert doc["memory_gib_per_gpu"] == pytest.approx(sum(doc["breakdown"]["memory_gib"].values()))
    assert doc["layout"]["dp"] == 8 and doc["layout"]["zero"] == 3
    assert doc["micro_batches"] == 8
    assert doc["tokens_per_s_per_gpu"] * doc["step_time_s"] * 8 == pytest.approx(64 * 4096)


def test_train_defaults_are_zero3_and_micro_batch_1(capsys):
    argv = ["estimate", "train", "--model", "llama-2-7b", "--gpu", "h100-80gb", "--gpus", "16", "--tp", "2",
            "--global-batch", "32", "--seq-len", "2048", "--sequence-parallel", "--recompute", "full", "--json"]
    rc, out, _ = run(argv, capsys)
    doc = json.loads(out)
    assert rc == 0 and doc["layout"]["zero"] == 3 and doc["layout"]["micro_batch"] == 1
    assert doc["breakdown"]["time_s"]["recompute"] > 0 and doc["breakdown"]["time_s"]["tp_comm"] > 0


def test_comm_json_and_units(capsys):
    rc, out, _ = run(["estimate", "comm", "--gpu", "a100-80gb", "--gpus", "8", "--op", "all_reduce",
                      "--bytes", "1GiB", "--json"], capsys)
    doc = json.loads(out)
    assert rc == 0 and doc["bytes"] == 2**30
    assert doc["busbw_gbps"] == pytest.approx(doc["algbw_gbps"] * 2 * 7 / 8)
    assert doc["time_s"] == pytest.approx(2**30 / (doc["algbw_gbps"] * 1e9))
    rc, out, _ = run(["estimate", "comm", "--gpu", "h100-80gb", "--gpus", "16", "--nodes", "2", "--op",
                      "all_gather", "--bytes", "64MB"], capsys)
    assert rc == 0 and "busbw" in out and "2 node" in out


def test_parse_bytes():
    assert parse_bytes("64MiB") == 64 * 2**20
    assert parse_bytes("1GB") == 1e9
    assert parse_bytes("1.5kb") == 1500
    assert parse_bytes("4096") == 4096
    assert parse_bytes("2e6") == 2e6
    for bad in ("lots", "12 parsecs", "0", "-5MB"):
        with pytest.raises(PlanError):
            parse_bytes(bad)


@pytest.mark.parametrize("change,needle", [
    ({"--gpu": "a200"}, "unknown GPU"),
    ({"--model": "llama-9-7b"}, "unknown model"),
    ({"--tp": "3", "--gpus": "6"}, "does not divide the 32 attention heads"),
    ({"--tp": "4", "--gpus": "6"}, "not divisible by tp*pp"),
    ({"--global-batch": "0"}, "positive integer"),
    ({"--seq-len": "-4096"}, "positive integer"),
    ({"--global-batch": "60"}, "not divisible by dp*micro_batch"),
    ({"--model": "llama-2-70b", "--zero": "0"}, "needs 1112"),
])
def test_train_errors_are_one_line_exit_2(capsys, change, needle):
    argv = list(TRAIN)
    for flag, value in change.items():
        argv[argv.index(flag) + 1] = value
    rc, out, err = run(argv, capsys)
    assert rc == 2 and out == ""
    assert needle in err and err.count("\n") == 1


def test_layout_that_does_not_fit_names_parts_and_capacity(capsys):
    argv = list(TRAIN)
    argv[argv.index("--model") + 1] = "llama-2-70b"
    argv[argv.index("--zero") + 1] = "1"
    rc, _, err = run(argv, capsys)
    assert rc == 2
    assert "tp1/pp1/dp8/zero1" in err and "a100-80gb has 80 GiB (78.0 usable)" in err and "optimizer" in err


def test_comm_errors(capsys):
    rc, out, err = run(["estimate", "comm", "--gpu", "a100-80gb", "--gpus", "8", "--op", "all_reduce",
                        "--bytes", "big"], capsys)
    assert rc == 2 and out == "" and "--bytes" in err
    rc, _, err = run(["estimate", "comm", "--gpu", "a100-80gb", "--gpus", "12", "--nodes", "5", "--op",
                      "broadcast", "--bytes", "1MB"], capsys)
    assert rc == 2 and "--nodes 5" in err


def test_console_script_is_fast_and_light():
    exe = shutil.which("plan")
    if exe is None:
        pytest.skip("the plan console script is not installed")
    start = time.perf_counter()
    done = subprocess.run([exe, *TRAIN], capture_output=True, text=True, timeout=60)
    wall = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    assert "step time" in done.stdout
    assert wall < 3.0
    code = ("import sys; from planner.cli import main; main(%r); "
            "print(sorted(m for m in ('torch', 'ray', 'vllm', 'ortools') if m in sys.modules))" % (TRAIN + ["--json"],))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().endswith("[]"), done.stdout[-200:]
