"""What the executor's tests share: a tiny model, the toy task, plans for the `local` cluster.

Everything is real: the tiny Llama is built with the project's own code and loaded by
vLLM-CPU and transformers, plans come from the CP-SAT search, runs start Ray.
"""

from __future__ import annotations

import json
from pathlib import Path

from planner.cli import main as plan_main

TOY_PROMPTS = 64


def make_plan(out: Path, algo: str, actor: Path, *extra: str, cluster: str = "local") -> Path:
    """``plan --cluster local --algo ALGO --executor-only ...`` written to ``out``."""
    argv = ["--cluster", cluster, "--algo", algo, "--actor", str(actor), "--executor-only", "--prompt-len", "8",
            "--out", str(out), "--json", *extra]
    assert plan_main(argv) == 0
    return out


def execute_options(plan: Path, model: Path, data: Path, out: Path, steps: int, **changes):
    from executor.real.run import ExecuteOptions

    return ExecuteOptions(plan_path=str(plan), models={"actor": str(model)}, data=str(data), out_dir=str(out),
                          steps=steps, lr=1e-3, quiet=True, verify_sync=True, **changes)


def read_metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines() if line.strip()]
