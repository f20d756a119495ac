"""One training step's metrics from its stage calls, and the JSONL file they go to.

A step's metrics are read off the trace records of its calls (their ``args`` and
durations), so what the console shows, what ``metrics.jsonl`` holds and what
``trace.json`` draws are one set of numbers. Keys follow verl's names where verl has one
(``actor/pg_loss``, ``actor/clipfrac``, ``actor/entropy``, ``response_length/mean``).
"""

from __future__ import annotations

import json
from pathlib import Path

from executor.real.stages import MAIN_GENERATION


def step_metrics(step: int, records: list, prompt_ids: list[int], prompt_tokens: int) -> dict:
    """Metrics of ``step`` from its ``records`` (``executor.trace.CallRecord``)."""
    mine = [r for r in records if r.iteration == step]
    start, end = min(r.start_s for r in mine), max(r.end_s for r in mine)
    step_time = end - start
    out: dict = {"step": step, "step_time_s": step_time}
    for rec in mine:
        for key, value in rec.args.items():
            if key in ("rows", "responses", "policy_version"):
                continue
            out.setdefault(key, value)
        out[f"time/{rec.job}"] = rec.end_s - rec.start_s
    gen = next((r for r in mine if r.job == MAIN_GENERATION), None)
    if gen is not None:
        response_tokens = gen.args["response_tokens"]
        out["response_length/mean"] = out.pop("response_len_mean")
        out["response_length/max"] = out.pop("response_len_max")
        out.pop("response_tokens", None)
        out["tokens_per_s"] = (prompt_tokens + response_tokens) / step_time if step_time > 0 else 0.0
        out["policy_version"] = gen.args["policy_version"]
    out["kl"] = out.get("actor/kl_loss", out.get("kl_in_reward", 0.0))
    out["prompt_ids"] = list(prompt_ids)
    return out


class MetricsFile:
    """``metrics.jsonl``: one JSON object per finished step, appended as steps finish."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def keep_until(self, steps_done: int) -> None:
        """Drop the lines of steps a resumed run will redo (after its checkpoint)."""
        if not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] < steps_done]
        self.path.write_text("".join(line + "\n" for line in kept))

    def append(self, metrics: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(metrics) + "\n")
            f.flush()

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
