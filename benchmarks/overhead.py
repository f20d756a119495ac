"""Executor overhead: a step of ``plan execute`` vs a plain single-process loop doing the same work.

Both run GRPO on the toy task with the tiny model and the demo's settings (64 prompts x 8
samples, one-token answers, one optimizer step per step, the reference's log-probs): the
executor on a plan with every role on one logical device of the ``local`` cluster (actor,
rollout and reference colocated, one process each, so the comparison is not about
parallelism), the loop in ``benchmarks/plain_loop.py`` (vLLM and the trainer in one
process, nothing in between) with the plan's micro-batch size (passes of that many rows,
gradients accumulated), since on this toy workload the passes, not the FLOPs, set the time. The mean step time over the steps after ``--warmup`` is
compared; the issue's target is a ratio of at most 1.15.

    python benchmarks/overhead.py [--steps 40] [--warmup 5] [--out benchmarks/results/overhead.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def executor_steps(root: Path, steps: int, settings) -> list[dict]:
    """The demo's run on a plan that puts every role on one logical device."""
    import json as _json

    from executor.demo import run_demo

    result = run_demo(root, steps, settings, quiet=True, plan_args=("--max-gpus", "1"))
    plan = _json.loads((root / "plan.json").read_text())
    assert len(plan["pools"]) == 1 and plan["pools"][0]["num_gpus"] == 1, "expected one colocated device"
    return result.metrics


def plain_steps(root: Path, steps: int, settings, threads: int) -> list[float]:
    """The plain loop's step times; ``threads``: torch threads of its trainer (0: torch's default)."""
    out = root / f"plain_{threads}.json"
    micro = json.loads((root / "plan.json").read_text())["roles"]["actor"]["layout"]["micro_batch"]
    cmd = [sys.executable, str(HERE / "plain_loop.py"), "--prompts", str(settings.prompts), "--samples",
           str(settings.samples), "--max-tokens", str(settings.response_len), "--mini-batches",
           str(settings.mini_batches), "--lr", str(settings.lr), "--kl-coef", "0.001",
           "--entropy-coef", str(settings.entropy_coef), "--reward", "numeric", "--steps", str(steps),
           "--model-dir", str(root / "model"), "--data", str(root / "toy.jsonl"), "--out", str(out),
           "--threads", str(threads), "--micro-batch", str(micro)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    history = json.loads(out.read_text())["history"]
    return [h["times"]["step"] for h in history]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", default=str(HERE / "results" / "overhead.json"))
    args = parser.parse_args()

    from executor.demo import DemoSettings

    settings = DemoSettings()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        metrics = executor_steps(root, args.steps, settings)
        # one thread: the executor's device is one core (a rank runs one torch thread); 0: all cores
        plain = {threads: plain_steps(root, args.steps, settings, threads) for threads in (1, 0)}
    executor_times = [m["step_time_s"] for m in metrics][args.warmup:]
    mean_exec = sum(executor_times) / len(executor_times)
    mean_plain = {t: sum(v[args.warmup:]) / len(v[args.warmup:]) for t, v in plain.items()}
    stages = {k[5:]: sum(m[k] for m in metrics[args.warmup:]) / len(executor_times)
              for k in metrics[0] if k.startswith("time/")}
    summary = {"platform": platform.platform(), "settings": settings.__dict__, "steps": args.steps,
               "warmup": args.warmup, "executor_step_s": mean_exec,
               "plain_step_s_1_thread": mean_plain[1], "plain_step_s_all_threads": mean_plain[0],
               "ratio_1_thread": mean_exec / mean_plain[1], "ratio_all_threads": mean_exec / mean_plain[0],
               "executor_stages_s": stages}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
