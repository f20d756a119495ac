"""Workload numbers from the user's files: prompt lengths from a JSONL/Parquet dataset
(counted with a real tokenizer, or characters/4), response lengths from rollouts or from
verl's metrics file, and `plan --prompts-from/--response-from` end to end."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import one_line_error

from planner.cli import main
from planner.user_data import (apply_user_data, prompt_lengths, response_distribution, token_counter)
from planner.workload import Workload

WORDS = ["solve", "the", "equation", "for", "x", "and", "show", "your", "work", "answer", "is", "42"]


@pytest.fixture
def model_dir(tmp_path):
    """A model folder with a real (tiny, word-level) tokenizer.json, built with `tokenizers`."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(["[UNK]", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    folder = tmp_path / "model"
    folder.mkdir()
    tok.save(str(folder / "tokenizer.json"))
    return folder


def _chat(text: str) -> list[dict]:
    return [{"role": "system", "content": "answer is"}, {"role": "user", "content": text}]


PROMPTS = ["solve the equation for x", "show your work", "x", "solve for x and show your work please"]


def test_prompt_lengths_use_the_models_tokenizer_on_chats(tmp_path, model_dir):
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": _chat(p), "id": i}) for i, p in enumerate(PROMPTS)))
    counter = token_counter(model_dir)
    assert not counter.estimated
    lengths = prompt_lengths(str(data), "prompt", counter)
    # The system message's 2 words plus each user message's words (unknown words count as one token).
    assert lengths.tolist() == [2 + len(p.split()) for p in PROMPTS]


def test_parquet_reads_like_jsonl(tmp_path, model_dir):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"question": PROMPTS, "answer": ["1", "2", "3", "4"]})
    pq.write_table(table, tmp_path / "train.parquet")
    lengths = prompt_lengths(str(tmp_path / "train.parquet"), "question", token_counter(model_dir))
    assert lengths.tolist() == [len(p.split()) for p in PROMPTS]


def test_without_a_tokenizer_it_estimates_characters_over_four(tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text(json.dumps({"prompt": "x" * 40}) + "\n")
    counter = token_counter(None)
    assert counter.estimated and "characters/4" in counter.how
    assert prompt_lengths(str(data), "prompt", counter).tolist() == [10]


def test_responses_from_rollouts_text_and_length_fields(tmp_path, model_dir):
    dump = tmp_path / "rollouts.jsonl"  # verl's rollout_data_dir dump: input, output, score, step
    dump.write_text("\n".join(json.dumps({"input": "q", "output": " ".join(["x"] * n), "score": 1.0, "step": 3})
                              for n in (5, 9, 30)))
    dist, how = response_distribution(str(dump), token_counter(model_dir))
    assert dist.kind == "empirical" and sorted(dist.values) == [5, 9, 30] and dist.max_len == 30
    assert "'output'" in how
    lengths = tmp_path / "lengths.jsonl"
    lengths.write_text("\n".join(json.dumps({"response_length": n}) for n in (100, 300, 2000)))
    dist, _ = response_distribution(str(lengths), token_counter(None), max_len=1024)
    assert dist.max_len == 1024 and dist.truncated_fraction == pytest.approx(1 / 3)


def test_responses_from_verls_metrics_file_match_its_mean_and_clip_ratio(tmp_path):
    metrics = tmp_path / "metrics.jsonl"  # verl's file logger: {"step": N, "data": {...}}
    rows = [{"step": s, "data": {"response_length/mean": 500.0 + s, "response_length/max": 1024,
                                 "response_length/clip_ratio": 0.05, "actor/pg_loss": 0.1}} for s in range(20)]
    metrics.write_text("\n".join(json.dumps(r) for r in rows))
    dist, how = response_distribution(str(metrics), token_counter(None), max_len=1024)
    assert dist.kind == "lognormal" and dist.max_len == 1024
    assert dist.mean == pytest.approx(np.mean([500.0 + s for s in range(10, 20)]))  # the last 10 steps
    assert dist.truncated_fraction == pytest.approx(0.05, abs=1e-6)
    assert "last 10 steps" in how


def test_unclipped_metrics_put_the_longest_response_in_the_tail(tmp_path):
    metrics = tmp_path / "m.jsonl"
    metrics.write_text(json.dumps({"response_length/mean": 300.0, "response_length/max": 900.0,
                                   "response_length/clip_ratio": 0.0}) + "\n")
    dist, _ = response_distribution(str(metrics), token_counter(None), max_len=2048)
    assert dist.kind == "lognormal"
    # 900 is the 99.9% quantile of the fitted shape.
    from statistics import NormalDist

    mu = math.log(dist.mean) - math.log1p((dist.std / dist.mean) ** 2) / 2
    sigma = math.sqrt(math.log1p((dist.std / dist.mean) ** 2))
    assert math.exp(mu + sigma * NormalDist().inv_cdf(0.999)) == pytest.approx(900, rel=1e-6)


@pytest.mark.parametrize("content,message", [
    ('{"text": 5}\nnot json\n', "not valid JSON"),
    ('{"foo": 1}\n', "no length field"),
    ('{"response_length": -3}\n', "not a positive length"),
])
def test_bad_response_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    assert message in one_line_error(response_distribution, str(path), token_counter(None))


def test_missing_prompt_field_names_the_fields(tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text(json.dumps({"question": "x"}) + "\n")
    message = one_line_error(prompt_lengths, str(data), "prompt", token_counter(None))
    assert "question" in message and "--prompt-key" in message


def test_apply_user_data_sets_the_workload_and_says_how(tmp_path, model_dir):
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": p}) for p in PROMPTS))
    args = SimpleNamespace(prompts_from=str(data), prompt_key="prompt", response_from=None, tokenizer=None,
                           prompt_len=None, response_len=None, response=None, max_response_len=None)
    workload, notes = apply_user_data(Workload(), args, str(model_dir))
    assert workload.prompt_len == math.ceil(np.mean([len(p.split()) for p in PROMPTS]))
    assert "the tokenizer in" in notes[0]
    args.prompt_len = 100
    assert "not both" in one_line_error(apply_user_data, Workload(), args, str(model_dir))


def test_plan_with_prompts_and_responses_from_files(tmp_path, capsys):
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": "w " * n}) for n in (100, 200, 300)))
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(json.dumps({"step": 1, "data": {"response_length/mean": 180.0, "response_length/max": 256,
                                                       "response_length/clip_ratio": 0.02}}) + "\n")
    code = main(["--cluster", "a100x8", "--algo", "grpo", "--actor", "qwen2.5-0.5b", "--prompts", "32",
                 "--samples", "4", "--max-response-len", "256", "--prompts-from", str(data),
                 "--response-from", str(metrics), "--time-limit", "10", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0
    plan = json.loads(out)
    w = plan["inputs"]["workload"]
    assert w["prompt_len"] == 100  # 400 characters / 4
    assert w["response"]["kind"] == "lognormal" and w["response"]["mean"] == 180.0
    assert w["response"]["max_len"] == 256
    assert "characters/4" in err  # notes go to stderr when stdout is JSON
