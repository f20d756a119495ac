"""Prompts with reference answers, and the order a run feeds them in.

:func:`load_prompts` reads a JSONL (one object per line) or Parquet file into
:class:`Example` rows. A prompt is text, or a chat (a list of ``{"role", "content"}``
messages, as in verl's Parquet files) whose contents are joined into text for models
without a chat template; the messages are kept for those with one. Keys may be dotted to
reach into nested fields: verl's GSM8K files keep the answer in
``reward_model.ground_truth``.

:class:`PromptStream` hands out ``batch_size`` examples per step, in a fresh seeded
shuffle each epoch. Its position is three integers (epoch, offset into that epoch's
order, seed) that go into a checkpoint as JSON: a run resumed from it continues with
exactly the prompts the uninterrupted run would have used, none skipped, none repeated.

No torch here; Parquet support imports pyarrow when a Parquet file is read.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from planner.errors import PlanError

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class Example:
    prompt: str
    """The prompt as text (a chat's message contents joined by newlines)."""
    answer: str
    """The reference answer the rule reward compares against."""
    index: int
    """The row's position in the file, from 0: stable across shuffles and resumes."""
    messages: tuple[dict[str, str], ...] | None = None
    """The chat, when the prompt field was one (for a tokenizer's chat template)."""


# ---- reading files -------------------------------------------------------------------------
def load_prompts(path: str | Path, prompt_key: str = "prompt", answer_key: str = "answer") -> list[Example]:
    """Every row of a JSONL or Parquet file as an :class:`Example`, in file order.

    Raises :class:`PlanError` (one line, naming the file and the line or row) for a missing
    or empty file, a line that is not a JSON object, a row without ``prompt_key`` or
    ``answer_key`` (listing the keys it has), or a prompt or answer of the wrong type.
    """
    path = Path(path)
    if not path.is_file():
        raise PlanError(f"prompt file {path} not found: pass an existing .jsonl or .parquet file")
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        rows = _read_jsonl(path)
    elif suffix in PARQUET_SUFFIXES:
        rows = _read_parquet(path)
    else:
        raise PlanError(f"prompt file {path}: unknown format {suffix or '(no suffix)'!r}: "
                        f"use one of {', '.join(JSONL_SUFFIXES + PARQUET_SUFFIXES)}")
    examples = [_example(row, where, i, prompt_key, answer_key) for i, (where, row) in enumerate(rows)]
    if not examples:
        raise PlanError(f"prompt file {path} has no rows: add prompts, one JSON object per line")
    return examples


def _read_jsonl(path: Path) -> list[tuple[str, dict]]:
    """``(where, row)`` for each non-blank line; ``where`` is ``file:line`` for messages."""
    rows = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise PlanError(f"{where}: not valid JSON ({err.msg} at column {err.colno}): "
                                "write one JSON object per line") from None
            if not isinstance(row, dict):
                raise PlanError(f"{where}: a JSON {type(row).__name__}, not an object: "
                                'write one object per line, such as {"prompt": ..., "answer": ...}')
            rows.append((where, row))
    return rows


def _read_parquet(path: Path) -> list[tuple[str, dict]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise PlanError(f"prompt file {path}: not a readable Parquet file ({type(err).__name__}): "
                        "check the file or write JSONL") from None
    return [(f"{path} row {i}", row) for i, row in enumerate(table.to_pylist())]


def _lookup(row: dict, key: str) -> tuple[bool, Any]:
    """``row[key]``, or the nested field of a dotted key (``reward_model.ground_truth``)."""
    if key in row:
        return True, row[key]
    value: Any = row
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _example(row: dict, where: str, index: int, prompt_key: str, answer_key: str) -> Example:
    fields = {}
    for role, key in (("prompt", prompt_key), ("answer", answer_key)):
        found, value = _lookup(row, key)
        if not found:
            raise PlanError(f"{where}: no {role} key {key!r}; the row has {', '.join(map(repr, row)) or 'no keys'}: "
                            f"name the right one with {role}_key")
        fields[role] = value
    prompt, messages = _prompt_text(fields["prompt"], where, prompt_key)
    return Example(prompt, _answer_text(fields["answer"], where, answer_key), index, messages)


def _prompt_text(value: Any, where: str, key: str) -> tuple[str, tuple[dict[str, str], ...] | None]:
    if isinstance(value, str):
        if not value.strip():
            raise PlanError(f"{where}: the prompt {key!r} is empty: remove the row or fill it in")
        return value, None
    if isinstance(value, list) and value and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in value):
        messages = tuple({"role": m["role"], "content": m["content"]} for m in value)
        return "\n".join(m["content"] for m in messages), messages
    raise PlanError(f"{where}: the prompt {key!r} is a {type(value).__name__}: use text or a list of "
                    '{"role": ..., "content": ...} messages')


def _answer_text(value: Any, where: str, key: str) -> str:
    if isinstance(value, bool) or value is None or not isinstance(value, (str, int, float)):
        raise PlanError(f"{where}: the answer {key!r} is {value!r}: use text or a number")
    return value if isinstance(value, str) else str(value)


# ---- the order of prompts ------------------------------------------------------------------
def fingerprint(examples: Sequence[Example]) -> str:
    """A short hash of the prompts and answers, so a checkpoint is not resumed on other data."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(json.dumps([example.prompt, example.answer]).encode())
    return digest.hexdigest()[:16]


class PromptStream:
    """``batch_size`` examples per :meth:`next_batch`, each epoch a fresh seeded shuffle.

    Within an epoch no example comes twice. With ``drop_last`` (the default, as verl's
    training loader) an epoch ends when fewer than ``batch_size`` examples are left, so
    every batch is full; the leftovers differ from epoch to epoch, since the shuffles do.
    Without it the epoch's last batch is shorter.
    """

    def __init__(self, examples: Sequence[Example], batch_size: int, seed: int = 0, drop_last: bool = True):
        if not examples:
            raise PlanError("no prompts to stream: load a non-empty prompt file")
        if not 1 <= batch_size <= len(examples):
            raise PlanError(f"{batch_size} prompts per step from {len(examples)} prompts: "
                            f"use 1 to {len(examples)} prompts per step or a larger prompt file")
        self.examples = list(examples)
        self.batch_size = batch_size
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        self.offset = 0
        """Examples of this epoch's order already handed out."""
        self._fingerprint = fingerprint(self.examples)
        self._order: list[int] | None = None

    def epoch_order(self, epoch: int) -> list[int]:
        """Positions in ``examples`` in the order epoch ``epoch`` visits them (the same for the
        same seed, on every machine: string seeds hash with SHA-512 in :mod:`random`)."""
        order = list(range(len(self.examples)))
        random.Random(f"rlplan-prompts:{self.seed}:{epoch}").shuffle(order)
        return order

    def next_batch(self) -> list[Example]:
        """The next batch; moves to the next epoch first when this one is used up."""
        left = len(self.examples) - self.offset
        if left == 0 or (self.drop_last and left < self.batch_size):
            self.epoch, self.offset, self._order = self.epoch + 1, 0, None
        if self._order is None:
            self._order = self.epoch_order(self.epoch)
        rows = self._order[self.offset:self.offset + self.batch_size]
        self.offset += len(rows)
        return [self.examples[i] for i in rows]

    def __iter__(self) -> Iterator[list[Example]]:
        """Batches without end; stop after as many steps as the run has."""
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict:
        """The position, as JSON-able values; :meth:`load_state_dict` resumes from it."""
        return {"epoch": self.epoch, "offset": self.offset, "seed": self.seed,
                "num_examples": len(self.examples), "fingerprint": self._fingerprint}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a :meth:`state_dict`, on the same prompts (checked) and its seed."""
        if state.get("fingerprint") != self._fingerprint or state.get("num_examples") != len(self.examples):
            raise PlanError(f"the checkpoint's prompt position is for {state.get('num_examples')} other prompts, "
                            f"not these {len(self.examples)}: resume with the prompt file it was made with")
        epoch, offset = int(state["epoch"]), int(state["offset"])
        if epoch < 0 or not 0 <= offset <= len(self.examples):
            raise PlanError(f"the checkpoint's prompt position (epoch {epoch}, offset {offset}) is out of range: "
                            "the checkpoint is damaged")
        self.seed, self.epoch, self.offset, self._order = int(state["seed"]), epoch, offset, None
