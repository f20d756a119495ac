"""``plan execute plan.json``: run a plan on Ray (vLLM rollouts, FSDP2 training), for real.

Needs the executor's extras (``pip install -e ".[executor]"``, or ``executor-cpu``). The
plan's layout, workload (prompts and samples per step, response cap, epochs, mini-batches)
and algorithm are used as planned; the flags give what a plan does not hold: the model
folders, the data, the optimiser and the run's own settings.
"""

from __future__ import annotations

from planner.cli.argtypes import positive_float, positive_int
from planner.errors import PlanError, require


def add_arguments(parser, name: str) -> None:
    from planner.cli.formats import add_format_arguments

    parser.add_argument("plan", help="a plan written by `plan ... --executor-only --out plan.json`")
    add_run_arguments(parser)
    add_format_arguments(parser)


def add_run_arguments(parser, need_data: bool = True) -> None:
    """The run's flags, shared with ``plan demo``."""
    parser.add_argument("--model", action="append", default=[], metavar="ROLE=DIR", required=need_data,
                        help="Hugging Face model folder of a role (repeatable); roles of the same model share it, "
                             "e.g. --model actor=./qwen2.5-0.5b")
    parser.add_argument("--data", required=need_data,
                        help="prompts with reference answers: .jsonl or .parquet")
    parser.add_argument("--prompt-key", default="prompt", help="the prompt's field (default prompt)")
    parser.add_argument("--answer-key", default="answer", help="the reference answer's field (default answer)")
    parser.add_argument("--steps", type=positive_int, default=10, help="training steps (default 10)")
    parser.add_argument("--out", default="run", help="folder for metrics.jsonl, trace.json, checkpoints (default run)")
    parser.add_argument("--checkpoint-every", type=positive_int, default=None, metavar="K",
                        help="save a checkpoint every K steps (default: at the end only)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    parser.add_argument("--ray-address", help="an existing Ray cluster (default: start one on this machine)")
    parser.add_argument("--cluster", help="the plan's cluster YAML, for a plan made with --cluster FILE")
    train = parser.add_argument_group("training")
    train.add_argument("--lr", type=positive_float, default=1e-5, help="learning rate of trained roles (default 1e-5)")
    train.add_argument("--reward-fn", default="numeric",
                       help="rule reward: numeric, exact, math, format, or a sum like math+0.1*format (default numeric)")
    train.add_argument("--temperature", type=positive_float, default=1.0, help="sampling temperature (default 1.0)")
    train.add_argument("--max-tokens", type=positive_int, help="response cap (default: the plan's maximum length)")
    train.add_argument("--kl-coef", type=float, help="KL coefficient (default: the algorithm's)")
    train.add_argument("--entropy-coef", type=float, help="entropy bonus coefficient (default 0)")
    train.add_argument("--seed", type=int, default=0, help="seed of sampling, data order and init (default 0)")
    parser.add_argument("--verify-sync", action="store_true",
                        help="after every weight sync, check the engines' weights equal the trainer's (slow on big models)")


def options_from_args(args, plan_path: str):
    from executor.real.run import ExecuteOptions
    from planner.cli.argtypes import role_paths

    numerics = {}
    if args.kl_coef is not None:
        numerics["kl_coef"] = args.kl_coef
    if args.entropy_coef is not None:
        numerics["entropy_coef"] = args.entropy_coef
    require(args.seed >= 0, f"--seed must be 0 or more, got {args.seed}")
    return ExecuteOptions(plan_path=plan_path, models=role_paths(args.model), data=args.data,
                          out_dir=args.out, steps=args.steps, prompt_key=args.prompt_key, answer_key=args.answer_key,
                          checkpoint_every=args.checkpoint_every or 0, resume=args.resume,
                          ray_address=args.ray_address, cluster=args.cluster, lr=args.lr, reward=args.reward_fn,
                          temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed,
                          numerics_options=numerics, verify_sync=args.verify_sync)


def require_executor() -> None:
    """One line, not a traceback, when the executor's extras are missing."""
    import importlib.util

    missing = [m for m in ("torch", "ray", "vllm", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        raise PlanError(f"executing needs {', '.join(missing)}: pip install -e \".[executor]\" "
                        "(or \".[executor-cpu]\" on a machine without a GPU)")


def run(args, name: str) -> int:
    require_executor()
    from algos.rewards import parse_reward
    from executor.real.run import execute

    from planner.cli.formats import emit, output_format

    parse_reward(args.reward_fn)  # a bad name fails before Ray starts
    options = options_from_args(args, args.plan)
    fmt = output_format(args)
    options.quiet = fmt is not None  # structured output: nothing else on stdout
    result = execute(options)
    if fmt:
        emit(summary(result, args.plan), fmt)
    else:
        print_summary(result, args.plan)
    return 0


def summary(result, plan_path: str) -> dict:
    """The run as data: where its files are, every step's metrics, measured vs predicted stages."""
    from planner.cli.compare_cmd import comparison

    return {"out_dir": str(result.out_dir), "resumed_from_step": result.resumed_from, "steps": result.metrics,
            "stages": comparison(result.out_dir / "trace.json", plan_path)}


def print_summary(result, plan_path: str) -> None:
    """The run's last metrics and the measured vs predicted stage times."""
    from planner.cli.compare_cmd import print_comparison

    last = result.metrics[-1] if result.metrics else {}
    print(f"{len(result.metrics)} steps in {result.out_dir} (metrics.jsonl, trace.json, checkpoints/); "
          f"last reward {last.get('reward_mean', float('nan')):.3f}")
    print_comparison(result.out_dir / "trace.json", plan_path, title="measured vs predicted (the plan's stage times)")
