"""``plan --cluster C --algo A``: find the best layout and explain it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from planner.errors import require

DEFAULT_ACTOR = "qwen2.5-7b"


def add_arguments(parser, name: str) -> None:
    from planner.workload import add_workload_arguments

    parser.add_argument("--cluster", help="a built-in profile (`plan clusters`) or a cluster YAML path "
                                         "(required unless --from-verl with --gpu)")
    parser.add_argument("--algo", help="RL algorithm (`plan algos`): ppo, grpo, remax, rloo, ... "
                                       "(required unless --from-verl)")
    models = parser.add_argument_group("models (zoo name or a config.json / model folder)")
    models.add_argument("--actor", help=f"actor and rollout model (default {DEFAULT_ACTOR}, or --from-verl's)")
    models.add_argument("--ref", help="reference model (default: the actor's)")
    models.add_argument("--critic", help="critic model (default: the actor's)")
    models.add_argument("--reward", help="reward model (default: the critic's)")
    models.add_argument("--cost", help="cost model of safe_rlhf (default: the reward model's)")
    scoring = models.add_mutually_exclusive_group()
    scoring.add_argument("--reward-model", dest="reward_model", action="store_true", default=None,
                         help="score with a reward model role")
    scoring.add_argument("--rule-reward", dest="reward_model", action="store_false",
                         help="score with a rule on the driver (no reward model)")
    add_workload_arguments(parser)
    _add_user_input_arguments(parser)
    asks = parser.add_argument_group("constraints")
    asks.add_argument("--colocate", action="append", default=[], metavar="ROLES",
                      help="roles that must share GPUs, comma-separated (repeatable), e.g. actor,ref")
    asks.add_argument("--max-gpus", type=int, help="use at most this many GPUs")
    asks.add_argument("--rollout-tp", type=int, help="force the rollout engines' tensor-parallel size")
    asks.add_argument("--mode", default="sync", choices=("sync", "one-step-off"),
                      help="sync: on-policy iterations; one-step-off: generation overlaps the previous training")
    asks.add_argument("--executor-only", action="store_true",
                      help="plan only layouts rlplan's executor runs (no pipeline parallelism)")
    asks.add_argument("--no-offload", action="store_true", help="never park forward-only weights on the host")
    solver = parser.add_argument_group("solver and output")
    solver.add_argument("--time-limit", type=float, default=60.0, help="CP-SAT time limit in seconds (default 60)")
    solver.add_argument("--workers", type=int,
                        help="processes pricing candidates and CP-SAT workers (default: the cores, at most 8)")
    solver.add_argument("--out", help="write the plan JSON here")
    solver.add_argument("--json", action="store_true", help="print the plan JSON on stdout (same as --format json)")
    solver.add_argument("--format", choices=("table", "json", "yaml"), default="table",
                        help="print the plan as tables (default), JSON or YAML")
    solver.add_argument("--dry-run", action="store_true",
                        help="then simulate the plan (as `plan simulate`; with --json, prints the simulation with the plan under \"plan\")")
    from planner.cli.simulate_cmd import add_simulation_arguments

    add_simulation_arguments(parser)


def build_inputs(args):
    """SearchInputs from the command's flags (shared with the commands that plan first)."""
    from algos import build_dataflow, get_algorithm
    from planner.clusters import load_cluster
    from planner.model_loading import load_model
    from planner.search.inputs import SearchInputs, SearchOptions
    from planner.workload import workload_from_args

    basis = None
    if getattr(args, "from_verl", None):
        from planner.from_verl import job_basis

        basis = job_basis(args)
        cluster, algorithm, workload, reward_model = (basis.cluster, get_algorithm(basis.algo), basis.workload,
                                                      basis.reward_model)
        by_flag, model_dir = basis.models, basis.model_dir
    else:
        require(bool(args.cluster) and bool(args.algo),
                "give --cluster and --algo (e.g. plan --cluster a100x64 --algo grpo), or --from-verl CONFIG")
        cluster = load_cluster(args.cluster)
        algorithm = get_algorithm(args.algo)
        workload = workload_from_args(args)
        reward_model = args.reward_model
        actor = load_model(args.actor or DEFAULT_ACTOR)
        by_flag = {"actor": actor}
        by_flag["ref"] = load_model(args.ref) if args.ref else actor
        by_flag["critic"] = load_model(args.critic) if args.critic else actor
        by_flag["reward"] = load_model(args.reward) if args.reward else by_flag["critic"]
        by_flag["cost"] = load_model(args.cost) if args.cost else by_flag["reward"]
        model_dir = args.actor if args.actor and Path(args.actor).expanduser().is_dir() else None
    actor = by_flag["actor"]
    from planner.user_data import apply_user_data

    workload, args.input_notes = apply_user_data(workload, args, model_dir, from_job=basis is not None)
    args.verl_job = basis.job if basis is not None else None
    dataflow = build_dataflow(algorithm.name, workload, reward_model)
    models = {role: by_flag[spec.model_of] for role, spec in dataflow.roles.items()}
    colocate = []
    for text in args.colocate:
        group = tuple(r.strip() for r in text.split(",") if r.strip())
        for r in group:
            require(r in dataflow.roles,
                    f"--colocate names {r!r}, which {algorithm.name} does not have: its roles are {', '.join(dataflow.roles)}")
        require(len(group) >= 2, f"--colocate {text!r} needs at least two roles, e.g. actor,ref")
        colocate.append(group)
    max_gpus = args.max_gpus if args.max_gpus is not None else (basis.max_gpus if basis is not None else None)
    options = SearchOptions(mode=args.mode, max_gpus=max_gpus, colocate=tuple(colocate),
                            rollout_tp=args.rollout_tp, executor_only=args.executor_only,
                            allow_offload=not args.no_offload, time_limit_s=args.time_limit,
                            **({"workers": args.workers} if args.workers is not None else {}))
    if args.rollout_tp is not None:
        from planner.search.candidates import TP_CHOICES

        valid = [t for t in TP_CHOICES if t <= cluster.gpus_per_node and actor.num_heads % t == 0]
        require(args.rollout_tp in valid, f"--rollout-tp {args.rollout_tp} is not a tensor-parallel size for "
                f"{actor.name} on {cluster.gpus_per_node}-GPU nodes: use one of {', '.join(map(str, valid))}")
    require(args.max_gpus is None or args.max_gpus <= cluster.num_gpus,
            f"--max-gpus {args.max_gpus} is more than the {cluster.num_gpus} GPUs of {cluster.name}")
    return SearchInputs(cluster, algorithm.name, dataflow, models, workload, options)


def run(args, name: str) -> int:
    from planner.plan import check_writable, plan_to_dict, save_plan

    inputs = build_inputs(args)
    if args.out:
        check_writable(args.out)
    if getattr(args, "report", None):
        from planner.cli.simulate_cmd import check_report_dir

        require(args.dry_run, "--report needs --dry-run (or run `plan simulate plan.json --report DIR`)")
        check_report_dir(args.report)
    fmt = "json" if args.json else getattr(args, "format", "table")
    args.json = fmt != "table"
    result = _search_with_progress(inputs, quiet=args.json)
    job = getattr(args, "verl_job", None)
    if job is not None:
        from planner.from_verl import price_user_layout

        result.baselines.insert(0, price_user_layout(inputs, job))
    plan = plan_to_dict(result)
    for note in getattr(args, "input_notes", []):
        print(f"note: {note}", file=sys.stderr if args.json else sys.stdout)
    if args.out:
        save_plan(plan, args.out)
    if getattr(args, "dry_run", False):
        from planner.cli.simulate_cmd import dry_run

        return dry_run(result, plan, args)
    if args.json:
        from planner.cli.formats import emit

        emit(plan, fmt)
    else:
        print_plan_with_inputs(inputs, plan, args)
    return 0


def print_plan_with_inputs(inputs, plan: dict, args) -> None:
    """The human output of ``plan``: the inputs, the plan (with the user's verl layout
    around it when planning --from-verl) and where it was written."""
    from planner.cli.plan_report import print_inputs, print_plan

    print_inputs(inputs)
    job = getattr(args, "verl_job", None)
    if job is not None:
        from planner.from_verl import comparison_lines

        before, after = comparison_lines(plan, job, args.out)
        print(before)
    print_plan(plan)
    if job is not None:
        print(after)
    if args.out:
        print(f"plan written to {args.out}")


def _add_user_input_arguments(parser) -> None:
    """Inputs people already have: a verl job, their dataset, a previous run's lengths."""
    group = parser.add_argument_group("inputs from your job and data")
    group.add_argument("--from-verl", metavar="CONFIG",
                       help="plan an existing verl job: its config YAML, Hydra overrides or launch script; "
                            "prints your layout, the plan and the speedup")
    group.add_argument("--gpu", help="GPU type of the --from-verl job's nodes (e.g. a100-80gb), unless --cluster")
    group.add_argument("--prompts-from", metavar="FILE", help="prompt length from your dataset (.jsonl or .parquet)")
    group.add_argument("--prompt-key", default="prompt", help="the prompt's field in --prompts-from (default prompt)")
    group.add_argument("--response-from", metavar="FILE",
                       help="response lengths from a previous run: rollouts JSONL or a metrics JSONL")
    group.add_argument("--tokenizer", metavar="MODEL_DIR",
                       help="count tokens with this model folder's tokenizer (default: the actor's folder)")


def _search_with_progress(inputs, quiet: bool):
    """Run the search with a spinner on stderr when it is a terminal."""
    from planner.search import run_search

    if quiet or not sys.stderr.isatty():
        return run_search(inputs)
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("searching ...") as status:
        return run_search(inputs, progress=lambda msg: status.update(f"searching: {msg} ..."))


