"""Workload numbers from the user's own files.

- Prompt lengths from the training dataset (``--prompts-from data.jsonl|data.parquet``,
  the prompt in ``--prompt-key``, verl's ``data.prompt_key``, default ``prompt``): a string,
  or a chat (a list of ``{"role", "content"}`` messages, as verl's datasets hold it).
- Response lengths from a previous run (``--response-from FILE``): rollouts as JSONL
  (a length field, or the response text: verl's ``trainer.rollout_data_dir`` dumps write
  it as ``output``), or a metrics JSONL (verl's file logger writes
  ``{"step": N, "data": {"response_length/mean": ...}}``; flat records work too).

Text is counted with the model's tokenizer when its folder has one (``tokenizer.json``
through the ``tokenizers`` package, else ``transformers.AutoTokenizer``); otherwise as
characters / 4, and the caller prints a note saying so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np

from planner.errors import PlanError, require
from planner.workload import LengthDistribution

CHARS_PER_TOKEN = 4
"""Rough English text density (OpenAI's tokenizer guidance: ~4 characters per token)."""
LENGTH_FIELDS = ("response_length", "response_len", "length", "num_tokens", "output_tokens")
TEXT_FIELDS = ("output", "response", "completion", "generated_text", "text")
METRIC_MEAN, METRIC_MAX, METRIC_CLIP = "response_length/mean", "response_length/max", "response_length/clip_ratio"
LAST_STEPS = 10
"""Metrics files: the response shape of the last steps counts (lengths drift during training)."""
TAIL_QUANTILE = 0.999
"""Without clipped responses, the largest observed length is read as this quantile
(the same tail LengthDistribution.parse gives a default cap)."""


@dataclass(frozen=True)
class TokenCounter:
    count: object
    """text -> number of tokens."""
    how: str
    """What counts: the tokenizer used, or the characters/4 estimate."""
    estimated: bool


def token_counter(model_dir: str | Path | None) -> TokenCounter:
    """The model folder's tokenizer when there is one, else characters / 4."""
    folder = Path(model_dir).expanduser() if model_dir else None
    if folder is not None and folder.is_file():
        folder = folder.parent
    if folder is not None and (folder / "tokenizer.json").is_file():
        try:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
            return TokenCounter(lambda text: len(tok.encode(text, add_special_tokens=False).ids),
                                f"the tokenizer in {folder}", False)
        except ImportError:
            pass
    if folder is not None and any((folder / n).is_file() for n in ("tokenizer_config.json", "tokenizer.model")):
        try:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(str(folder))
            return TokenCounter(lambda text: len(tok.encode(text, add_special_tokens=False)),
                                f"the tokenizer in {folder}", False)
        except (ImportError, OSError, ValueError):
            pass
    return TokenCounter(lambda text: max(1, math.ceil(len(text) / CHARS_PER_TOKEN)),
                        f"characters/{CHARS_PER_TOKEN} (no tokenizer found"
                        + (f" in {folder})" if folder is not None else "; give --tokenizer MODEL_DIR)"), True)


# ---- records ----------------------------------------------------------------------------------
def read_records(path_text: str, what: str) -> list[dict]:
    """Rows of a JSONL (one JSON object a line) or Parquet file."""
    path = Path(path_text).expanduser()
    require(path.is_file(), f"{what} file {path_text!r} not found: give a .jsonl or .parquet file")
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise PlanError(f"reading {path.name} needs pyarrow: `pip install pyarrow`, or convert it to JSONL") from None
        try:
            return pq.read_table(path).to_pylist()
        except Exception as err:  # pyarrow raises several types for a bad file
            raise PlanError(f"{path_text}: not a readable Parquet file ({' '.join(str(err).split())[:120]})") from None
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise PlanError(f"{path_text}:{number}: not valid JSON: {what} files are JSONL, one object a line") from None
        require(isinstance(row, dict), f"{path_text}:{number}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    require(bool(rows), f"{what} file {path_text!r} has no records")
    return rows


def text_of(value) -> str | None:
    """A prompt or response as text: a string, or a chat's message contents joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(m, dict) for m in value):
        return "\n".join(str(m.get("content", "")) for m in value)
    if hasattr(value, "tolist"):  # numpy arrays from Parquet
        return text_of(value.tolist())
    return None


# ---- prompts -----------------------------------------------------------------------------------
def prompt_lengths(path_text: str, key: str, counter: TokenCounter) -> np.ndarray:
    """Tokens of every prompt in a dataset."""
    rows = read_records(path_text, "prompt")
    require(key in rows[0], f"{path_text}: no field {key!r} (fields: {', '.join(map(str, rows[0]))}): "
                            "give the prompt's field with --prompt-key")
    lengths = []
    for i, row in enumerate(rows):
        text = text_of(row.get(key))
        require(text is not None, f"{path_text}: record {i + 1}'s {key!r} is neither text nor a chat")
        lengths.append(counter.count(text))
    return np.asarray(lengths, dtype=np.int64)


# ---- responses ---------------------------------------------------------------------------------
def response_distribution(path_text: str, counter: TokenCounter, max_len: int | None = None
                          ) -> tuple[LengthDistribution, str]:
    """The response-length distribution of a previous run and how it was read."""
    rows = read_records(path_text, "response")
    metrics = [_metrics(r) for r in rows]
    if any(m is not None for m in metrics):
        return _from_metrics([m for m in metrics if m is not None], path_text, max_len)
    lengths, how = _rollout_lengths(rows, path_text, counter)
    cap = max_len or int(lengths.max())
    dist = LengthDistribution("empirical", 0.0, max_len=cap, values=tuple(int(v) for v in lengths))
    return dist, f"{len(lengths)} responses in {path_text} ({how})"


def _metrics(row: dict) -> dict | None:
    data = row.get("data") if isinstance(row.get("data"), dict) else row
    return data if METRIC_MEAN in data else None


def _rollout_lengths(rows: list[dict], path_text: str, counter: TokenCounter) -> tuple[np.ndarray, str]:
    first = rows[0]
    key = next((k for k in LENGTH_FIELDS if k in first), None)
    if key is not None:
        values = []
        for i, row in enumerate(rows):
            v = row.get(key)
            require(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 1,
                    f"{path_text}: record {i + 1}'s {key} is {v!r}, not a positive length")
            values.append(int(v))
        return np.asarray(values, dtype=np.int64), f"field {key}"
    key = next((k for k in TEXT_FIELDS if k in first), None)
    require(key is not None, f"{path_text}: records have no length field ({', '.join(LENGTH_FIELDS)}), no response "
                             f"text ({', '.join(TEXT_FIELDS)}) and no {METRIC_MEAN} metric: give rollouts or metrics")
    values = [max(1, counter.count(text_of(row.get(key)) or "")) for row in rows]
    return np.asarray(values, dtype=np.int64), f"text of {key!r} counted with {counter.how}"


def _from_metrics(metrics: list[dict], path_text: str, max_len: int | None) -> tuple[LengthDistribution, str]:
    """A lognormal with the run's mean length whose tail matches its clip ratio (or its longest response)."""
    last = metrics[-LAST_STEPS:]
    mean = float(np.mean([m[METRIC_MEAN] for m in last]))
    longest = float(np.mean([m.get(METRIC_MAX, mean) for m in last]))
    clip = float(np.mean([m.get(METRIC_CLIP, 0.0) for m in last]))
    cap = max_len or max(1, math.ceil(max(m.get(METRIC_MAX, mean) for m in last)))
    require(mean > 0, f"{path_text}: {METRIC_MEAN} is {mean:g}, not a positive length")
    how = f"lognormal with the mean of {METRIC_MEAN} over the last {len(last)} steps of {path_text}"
    if mean >= cap * 0.999:
        return LengthDistribution("fixed", cap, max_len=cap), f"every response at the cap {cap} ({path_text})"
    if 0 < clip < 0.5:
        sigma = _lognormal_sigma(mean, cap, 1 - clip)
        how += f" and {clip:.1%} of responses cut at {cap}"
    else:
        sigma = _lognormal_sigma(mean, max(longest, mean * 1.01), TAIL_QUANTILE)
        how += f" and its longest response ({longest:.0f}) as the {TAIL_QUANTILE:.1%} quantile"
    std = mean * math.sqrt(math.expm1(sigma * sigma))
    return LengthDistribution("lognormal", mean, std, max_len=cap), how


def _lognormal_sigma(mean: float, length: float, quantile: float) -> float:
    """sigma of the lognormal with ``mean`` whose ``quantile`` is ``length``.

    With mu = ln(mean) - sigma^2/2 the condition (ln(length) - mu) / sigma = z reads
    sigma^2/2 - z*sigma + ln(length/mean) = 0; the smaller root is the narrower shape. When
    no sigma reaches it (the tail asked for is heavier than any lognormal of that mean
    gives) the widest-tailed one, sigma = sqrt(2 ln(length/mean)), is used."""
    z = NormalDist().inv_cdf(quantile)
    gap = math.log(length / mean)
    disc = z * z - 2 * gap
    return z - math.sqrt(disc) if disc >= 0 else math.sqrt(2 * gap)


# ---- the CLI's use ------------------------------------------------------------------------------
def apply_user_data(workload, args, model_dir: str | None, from_job: bool = False):
    """``workload`` with the prompt length of ``--prompts-from`` and the response lengths of
    ``--response-from``; also the notes to print. ``from_job``: the response cap is the
    job's ``max_response_length`` (verl cuts responses there)."""
    from dataclasses import replace

    notes: list[str] = []
    prompts_from, response_from = getattr(args, "prompts_from", None), getattr(args, "response_from", None)
    if not (prompts_from or response_from):
        return workload, notes
    counter = token_counter(getattr(args, "tokenizer", None) or model_dir)
    if prompts_from:
        require(getattr(args, "prompt_len", None) is None, "give --prompt-len or --prompts-from, not both")
        lengths = prompt_lengths(prompts_from, getattr(args, "prompt_key", "prompt"), counter)
        mean = int(math.ceil(lengths.mean()))
        workload = replace(workload, prompt_len=mean)
        notes.append(f"prompt length {mean} tokens: the mean of {len(lengths)} prompts in {prompts_from} "
                     f"(median {np.median(lengths):.0f}, p99 {np.percentile(lengths, 99):.0f}, max {lengths.max()}), "
                     f"counted with {counter.how}")
    if response_from:
        require(getattr(args, "response_len", None) is None and getattr(args, "response", None) is None,
                "give --response-from or --response-len/--response-dist, not both")
        cap = getattr(args, "max_response_len", None) or (workload.response.max_len if from_job else None)
        dist, how = response_distribution(response_from, counter, cap)
        workload = replace(workload, response=dist)
        notes.append(f"response lengths {dist.describe()}: {how}")
    return workload, notes


__all__ = ["TokenCounter", "token_counter", "read_records", "prompt_lengths", "response_distribution",
           "apply_user_data"]
