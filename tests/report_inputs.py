"""Real inputs for the report tests: a plan searched by the planner and simulated by the
simulated backend (``plan --cluster C --algo A --dry-run --json``), and a sweep.

The job is small so that it plans and simulates in seconds on two cores: PPO with a
1.5B actor on two nodes of A100s (the plan splits it over two pools), 64 prompts x 4
samples with long-tailed (lognormal) response lengths, 6 iterations.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json

from planner.cli import main

JOB = ["--algo", "ppo", "--actor", "qwen2.5-1.5b", "--prompts", "64", "--samples", "4", "--prompt-len", "256",
       "--response-dist", "lognormal:200,150,max=512"]
CLUSTER = "a100x16"
ITERATIONS = 6

CHART_IDS = ("chart-timeline", "chart-stages", "chart-utilisation", "chart-memory-timeline", "chart-memory-peak",
             "chart-lengths", "chart-what-if", "chart-baselines", "chart-scaling")
"""Every chart of a report with a sweep, in page order."""


def _json_of(argv: list[str]) -> dict:
    """What the CLI prints with ``--json`` (it must succeed)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main([*argv, "--json"])
    assert rc == 0, f"plan {' '.join(argv)} exited {rc}"
    return json.loads(out.getvalue())


@functools.lru_cache(maxsize=None)
def _cached() -> tuple[dict, dict, dict]:
    data = _json_of(["--cluster", CLUSTER, *JOB, "--dry-run", "--iterations", str(ITERATIONS)])
    plan = data.pop("plan")
    return data, plan, _sweep()


def _sweep() -> dict:
    """``plan sweep`` over one and two nodes of the same job."""
    return _json_of(["sweep", "--cluster-gpus", "8,16", "--cluster", CLUSTER, *JOB, "--iterations", "2", "--no-what-if"])


def report_inputs() -> tuple[dict, dict, dict]:
    """(simulation, plan, sweep); a fresh copy for each caller (tests may change them)."""
    return copy.deepcopy(_cached())
