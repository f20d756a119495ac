"""``plan demo [--steps N] [--out DIR]``: plan for `local` and train GRPO on a toy task, here.

Builds a tiny random Llama and a single-digit-sum task, plans GRPO on the ``local`` cluster
(4 logical devices on the CPU), executes it with vLLM-CPU rollouts and FSDP2 training, and
shows the reward curve. DIR keeps the plan, the model, the data, ``run/trace.json`` and
``run/metrics.jsonl``.
"""

from __future__ import annotations

from pathlib import Path

from planner.cli.argtypes import positive_int
from planner.errors import require


def add_arguments(parser, name: str) -> None:
    parser.add_argument("--steps", type=positive_int, default=200, help="GRPO steps (default 200: about 8 minutes on 2 cores)")
    parser.add_argument("--out", default="rlplan-demo", help="folder for everything the demo makes (default rlplan-demo)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model, the data and sampling (default 0)")


def run(args, name: str) -> int:
    from planner.cli.execute_cmd import print_summary, require_executor

    require_executor()
    require(args.seed >= 0, f"--seed must be 0 or more, got {args.seed}")
    out = Path(args.out)
    require(not (out / "run" / "metrics.jsonl").exists(),
            f"{out} already holds a demo run: remove it or pass another --out")
    from executor.demo import DemoSettings, reward_curve, run_demo

    result = run_demo(out, args.steps, DemoSettings(seed=args.seed))
    print(reward_curve(result.metrics))
    print_summary(result, str(out / "plan.json"))
    return 0
