"""A toy task with verifiable answers, small enough for a random tiny Llama to learn.

Prompts are single-digit sums whose result is one digit, ``"3+4="`` -> ``"7"``: 55 distinct
problems, four characters each, answered by one character, all in
:func:`executor.tiny_model.vocabulary`. Rows are drawn so that every answer 0-9 is equally
common (then a uniform problem with that answer), not every problem: drawn by problem,
answer 9 would be ten times as common as 0, and the policy collapses onto the frequent
answers before it learns to read the digits.

Measured (2-core CPU, HF forward, one-token responses, ``numeric`` reward, GRPO with 16
prompts x 8 samples, AdamW lr 3e-4, a random ``TinyModelConfig()`` model): greedy
accuracy over the 55 problems went from 4% to 96% in 550 steps (50 s); drawn by problem,
the same run stalled near 35%. With longer responses the model must also learn to stop
(``"77"`` is not 7), which takes more steps.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from executor.tiny_model import CHARACTERS
from planner.errors import require

MAX_SUM = 9
"""The largest answer: keeps every answer a single character."""


def toy_problems() -> list[tuple[str, str]]:
    """Every ``("a+b=", "a+b")`` with digits ``a``, ``b`` and ``a + b <= 9``, in a fixed order."""
    return [(f"{a}+{b}=", str(a + b)) for a in range(10) for b in range(10) if a + b <= MAX_SUM]


def toy_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    """``n`` rows ``{"prompt", "answer"}``, seeded: the answers in passes of a shuffled 0..9
    (so each comes ``n // 10`` or ``n // 10 + 1`` times), each with a uniform problem ``a+b``
    having that sum."""
    require(n >= 1, f"a toy task of {n} prompts: ask for at least 1")
    by_answer: dict[str, list[str]] = {}
    for prompt, answer in toy_problems():
        by_answer.setdefault(answer, []).append(prompt)
    rng = random.Random(f"rlplan-toy:{seed}")
    rows: list[dict[str, str]] = []
    while len(rows) < n:
        answers = sorted(by_answer)
        rng.shuffle(answers)
        rows.extend({"prompt": rng.choice(by_answer[a]), "answer": a} for a in answers[:n - len(rows)])
    return rows


def write_toy_task(path: str | Path, n: int, seed: int = 0) -> Path:
    """Write ``n`` toy prompts with answers to ``path`` as JSONL (:func:`executor.data.load_prompts`
    reads it with the default keys); returns the path."""
    rows = toy_rows(n, seed)
    unknown = {c for row in rows for c in row["prompt"] + row["answer"]} - set(CHARACTERS)
    assert not unknown, f"toy task uses characters the tiny tokenizer lacks: {sorted(unknown)}"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path
