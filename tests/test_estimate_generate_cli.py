"""``plan estimate generate``: output forms and one-line errors."""

from __future__ import annotations

import json

import pytest

from planner.cli import main

STATIC = ["estimate", "generate", "--model", "llama-2-7b", "--gpu", "a100-80gb", "--batch", "8",
          "--input-len", "128", "--output-len", "64"]


def run(capsys, argv):
    """Exit code, stdout and stderr of ``plan <argv>`` (argparse errors exit via SystemExit)."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def test_static_batch_json(capsys):
    code, out, err = run(capsys, STATIC + ["--json"])
    assert code == 0 and err == ""
    result = json.loads(out)
    for key in ("total_time_s", "output_tokens_per_s", "requests_per_s", "ttft_s", "prefill_s", "decode_step_s"):
        assert result[key] > 0
    assert result["mode"] == "static" and result["max_num_seqs"] == 8
    assert result["output_tokens_per_s"] == pytest.approx(8 * 64 / result["total_time_s"])
    assert sum(result["breakdown"]["time_s"].values()) == pytest.approx(result["total_time_s"])
    assert set(result["breakdown"]["memory_gib"]) == {"weights", "activations", "kv_cache"}


def test_continuous_batching_with_a_length_distribution(capsys):
    argv = ["estimate", "generate", "--model", "qwen2.5-7b", "--gpu", "h100-80gb", "--tp", "2",
            "--num-prompts", "512", "--input-len", "256", "--output-dist", "lognormal:300,200,max=1024",
            "--max-num-seqs", "128", "--gpu-memory-utilization", "0.6", "--json"]
    code, out, _ = run(capsys, argv)
    fixed = argv[:argv.index("--output-dist")] + ["--output-len", "300"] + argv[argv.index("--max-num-seqs"):]
    code_fixed, out_fixed, _ = run(capsys, fixed)
    assert code == code_fixed == 0
    dist, flat = json.loads(out), json.loads(out_fixed)
    assert dist["mode"] == "continuous" and dist["breakdown"]["time_s"]["tp_comm"] > 0
    assert dist["total_time_s"] > flat["total_time_s"]          # the long tail costs time
    assert json.loads(out) == dist and main(argv) == 0            # reproducible


def test_human_table(capsys):
    code, out, err = run(capsys, STATIC)
    assert code == 0 and err == ""
    for text in ("total time", "output tokens/s", "TTFT", "decode step", "prefill", "kv_cache", "weights"):
        assert text in out


@pytest.mark.parametrize("change, message", [
    ({"--model": "no-such-model"}, "unknown model"),
    ({"--gpu": "b200"}, "unknown GPU"),
    ({"--tp": "3"}, "does not divide the 32 attention heads"),
    ({"--batch": "0"}, "must be a positive integer"),
    ({"--input-len": "-4"}, "must be a positive integer"),
    ({"--output-len": "0"}, "must be a positive integer"),
    ({"--model": "llama-2-70b"}, "use tp >= "),
    ({"--batch": None}, "one of the arguments --batch --num-prompts is required"),
    ({"--num-prompts": "4"}, "not allowed with argument --batch"),
    ({"--output-len": None}, "give the response length"),
    ({"--output-dist": "lognormal:300"}, "either --output-len or --output-dist"),
    ({"--gpu-memory-utilization": "1.5"}, "must be in (0, 1]"),
])
def test_errors_are_one_line(capsys, change, message):
    argv = list(STATIC)
    for flag, value in change.items():
        if flag in argv:
            i = argv.index(flag)
            argv[i:i + 2] = [] if value is None else [flag, value]
        else:
            argv += [flag, value]
    code, out, err = run(capsys, argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and message in err
