"""The CPU demo: a tiny model learns single-digit sums with GRPO, planned and executed by rlplan.

:func:`prepare` builds the tiny Llama (``executor.tiny_model``) and the toy task
(``executor.toy_task``) in a folder and plans GRPO for the ``local`` cluster with the
executor's layouts; :func:`run_demo` then executes the plan for real (vLLM-CPU rollouts,
FSDP2 training on gloo) and returns the run. ``plan demo`` and ``benchmarks/learn.py`` use
these settings, tuned with ``benchmarks/plain_loop.py`` on a 2-core machine
(``benchmarks/results/plain_loop.md``): one-token answers, 64 prompts x 8 samples and one
optimizer step per step, AdamW at 5e-4, an entropy bonus of 0.01 (without it some seeds
collapse onto a few answers and stall near 0.65), no KL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DemoSettings:
    prompts: int = 64
    samples: int = 8
    response_len: int = 1
    """Tokens per answer: the answers are one digit."""
    mini_batches: int = 1
    lr: float = 5e-4
    kl_coef: float = 0.0
    entropy_coef: float = 0.01
    data_size: int = 1000
    seed: int = 0


def prepare(out_dir: str | Path, settings: DemoSettings = DemoSettings(),
            plan_args: tuple[str, ...] = ()) -> tuple[Path, Path, Path]:
    """Model folder, toy data and plan in ``out_dir`` (made if missing); returns their paths.
    ``plan_args``: more ``plan`` flags (``--max-gpus 1``, ``--colocate ...``)."""
    import argparse

    from executor.tiny_model import TinyModelConfig, build_tiny_model
    from executor.toy_task import write_toy_task
    from planner.cli.search_cmd import add_arguments, build_inputs
    from planner.plan import plan_to_dict, save_plan
    from planner.search import run_search

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = build_tiny_model(out / "model", TinyModelConfig(seed=settings.seed))
    data = write_toy_task(out / "toy.jsonl", settings.data_size, seed=settings.seed)
    parser = argparse.ArgumentParser()
    add_arguments(parser, "search")
    args = parser.parse_args(["--cluster", "local", "--algo", "grpo", "--actor", str(model), "--executor-only",
                              "--prompts", str(settings.prompts), "--samples", str(settings.samples),
                              "--prompt-len", "4", "--response-len", str(settings.response_len),
                              "--mini-batches", str(settings.mini_batches), *plan_args])
    plan = plan_to_dict(run_search(build_inputs(args)))
    save_plan(plan, out / "plan.json")
    return model, data, out / "plan.json"


def run_demo(out_dir: str | Path, steps: int, settings: DemoSettings = DemoSettings(), quiet: bool = False,
             checkpoint_every: int = 0, plan_args: tuple[str, ...] = ()):
    """Prepare, then execute ``steps`` GRPO steps; returns the ``ExecutionResult``."""
    from executor.real.run import ExecuteOptions, execute

    model, data, plan = prepare(out_dir, settings, plan_args)
    return execute(ExecuteOptions(plan_path=str(plan), models={"actor": str(model)}, data=str(data),
                                  out_dir=str(Path(out_dir) / "run"), steps=steps, lr=settings.lr,
                                  reward="numeric", seed=settings.seed, checkpoint_every=checkpoint_every,
                                  numerics_options={"kl_coef": settings.kl_coef,
                                                    "entropy_coef": settings.entropy_coef}, quiet=quiet))


def reward_curve(metrics: list[dict], width: int = 60) -> str:
    """The mean reward per step as one line of block characters (0 to 1), with its ends."""
    blocks = " ▁▂▃▄▅▆▇█"
    rewards = [m["reward_mean"] for m in metrics]
    if not rewards:
        return ""
    stride = max(1, -(-len(rewards) // width))
    means = [sum(rewards[i:i + stride]) / len(rewards[i:i + stride]) for i in range(0, len(rewards), stride)]
    line = "".join(blocks[min(len(blocks) - 1, round(r * (len(blocks) - 1)))] for r in means)
    return f"reward {rewards[0]:.2f} |{line}| {rewards[-1]:.2f}  ({len(rewards)} steps)"
