"""``plan --cluster C --algo A``: find the best layout and explain it."""

from __future__ import annotations

import json
import sys

from planner.errors import require

DEFAULT_ACTOR = "qwen2.5-7b"


def add_arguments(parser, name: str) -> None:
    from planner.workload import add_workload_arguments

    parser.add_argument("--cluster", required=True, help="a built-in profile (`plan clusters`) or a cluster YAML path")
    parser.add_argument("--algo", required=True, help="RL algorithm (`plan algos`): ppo, grpo, remax, rloo, ...")
    models = parser.add_argument_group("models (zoo name or a config.json / model folder)")
    models.add_argument("--actor", default=DEFAULT_ACTOR, help=f"actor and rollout model (default {DEFAULT_ACTOR})")
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
    solver.add_argument("--out", help="write the plan JSON here")
    solver.add_argument("--json", action="store_true", help="print the plan JSON on stdout")


def build_inputs(args):
    """SearchInputs from the command's flags (shared with the commands that plan first)."""
    from algos import build_dataflow, get_algorithm
    from planner.clusters import load_cluster
    from planner.model_loading import load_model
    from planner.search.inputs import SearchInputs, SearchOptions
    from planner.workload import workload_from_args

    cluster = load_cluster(args.cluster)
    algorithm = get_algorithm(args.algo)
    workload = workload_from_args(args)
    dataflow = build_dataflow(algorithm.name, workload, args.reward_model)
    actor = load_model(args.actor)
    by_flag = {"actor": actor}
    by_flag["ref"] = load_model(args.ref) if args.ref else actor
    by_flag["critic"] = load_model(args.critic) if args.critic else actor
    by_flag["reward"] = load_model(args.reward) if args.reward else by_flag["critic"]
    by_flag["cost"] = load_model(args.cost) if args.cost else by_flag["reward"]
    models = {role: by_flag[spec.model_of] for role, spec in dataflow.roles.items()}
    colocate = []
    for text in args.colocate:
        group = tuple(r.strip() for r in text.split(",") if r.strip())
        for r in group:
            require(r in dataflow.roles,
                    f"--colocate names {r!r}, which {algorithm.name} does not have: its roles are {', '.join(dataflow.roles)}")
        require(len(group) >= 2, f"--colocate {text!r} needs at least two roles, e.g. actor,ref")
        colocate.append(group)
    options = SearchOptions(mode=args.mode, max_gpus=args.max_gpus, colocate=tuple(colocate),
                            rollout_tp=args.rollout_tp, executor_only=args.executor_only,
                            allow_offload=not args.no_offload, time_limit_s=args.time_limit)
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
    result = _search_with_progress(inputs, quiet=args.json)
    plan = plan_to_dict(result)
    if args.out:
        save_plan(plan, args.out)
    if args.json:
        json.dump(plan, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from planner.cli.plan_report import print_inputs, print_plan
        print_inputs(inputs)
        print_plan(plan)
        if args.out:
            print(f"plan written to {args.out}")
    return 0


def _search_with_progress(inputs, quiet: bool):
    """Run the search with a spinner on stderr when it is a terminal."""
    from planner.search import run_search

    if quiet or not sys.stderr.isatty():
        return run_search(inputs)
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("searching ...") as status:
        return run_search(inputs, progress=lambda msg: status.update(f"searching: {msg} ..."))


