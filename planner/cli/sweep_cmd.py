"""``plan sweep --cluster C --cluster-gpus 16,32,64,128 --algo A``: one job planned and
simulated on several sizes of one cluster, to see how throughput and the best placement
change with the GPU count.

Each size is the base cluster's node type (GPU, GPUs per node, network) with as many
nodes as the count needs (a count below one node is a partial node). Every point is a
full search (without HybridFlow's enumeration, which only serves as a baseline) followed
by a dry run; a size on which the job does not fit is a point with its reason and no
numbers. ``--report DIR`` writes the largest feasible point's report with the scaling plot.
"""

from __future__ import annotations

import dataclasses
import sys

from planner.errors import PlanError, require


def add_arguments(parser, name: str) -> None:
    from planner.cli.search_cmd import add_arguments as add_search_arguments

    add_search_arguments(parser, name)
    parser.add_argument("--cluster-gpus", required=True, metavar="N,N,...",
                        help="GPU counts to plan for, e.g. 16,32,64,128 (the --cluster gives the node type)")


def parse_counts(text: str, per_node: int) -> list[int]:
    """Sorted distinct GPU counts; each a whole number of nodes or a divisor of one node."""
    counts = []
    for part in str(text).split(","):
        part = part.strip()
        require(part.isdigit() and int(part) >= 1, f"--cluster-gpus {text!r}: {part!r} is not a positive integer; "
                                                   "write counts like 16,32,64")
        n = int(part)
        require(n % per_node == 0 or per_node % n == 0,
                f"--cluster-gpus {n} is neither whole {per_node}-GPU nodes nor a part of one: use a multiple of {per_node}")
        counts.append(n)
    return sorted(set(counts))


def scaled_cluster(base, num_gpus: int):
    """``base``'s node type with ``num_gpus`` GPUs (whole nodes, or one partial node)."""
    require(len(base.node_groups) == 1, f"plan sweep scales one node type; {base.name} has "
                                        f"{len(base.node_groups)} node groups: pass a homogeneous cluster")
    group = base.node_groups[0]
    per_node = group.gpus_per_node
    nodes, gpus_per_node = (num_gpus // per_node, per_node) if num_gpus >= per_node else (1, num_gpus)
    scaled = dataclasses.replace(group, nodes=nodes, gpus_per_node=gpus_per_node)
    return dataclasses.replace(base, name=f"{base.name}@{num_gpus}", node_groups=(scaled,))


def placement_text(plan: dict) -> str:
    """Pools as ``actor+ref: 32 | rollout: 32``."""
    return " | ".join(f"{'+'.join(p['roles'])}: {p['num_gpus']}" for p in plan["pools"])


def run(args, name: str) -> int:
    from planner.clusters import load_cluster
    from planner.cli.search_cmd import build_inputs

    require(not args.out, "plan sweep writes no plan file: drop --out (use --report DIR for the report)")
    require(not args.dry_run, "plan sweep always simulates: drop --dry-run")
    require(args.max_gpus is None, "plan sweep sets the GPU count itself: drop --max-gpus, use --cluster-gpus")
    require(args.seed >= 0, f"--seed must be a non-negative integer, got {args.seed}")
    base = load_cluster(args.cluster)
    scaled_cluster(base, base.node_groups[0].gpus_per_node)  # refuses a heterogeneous base early
    counts = parse_counts(args.cluster_gpus, base.node_groups[0].gpus_per_node)
    if args.report:
        from planner.cli.simulate_cmd import check_report_dir

        check_report_dir(args.report)
    from planner.cli.simulate_cmd import output_format

    fmt = output_format(args)
    inputs = build_inputs(args)
    points, best = [], None
    for n in counts:
        point, done = _sweep_point(dataclasses.replace(inputs, cluster=scaled_cluster(base, n)), args,
                                   quiet=fmt != "table")
        points.append(point)
        best = done or best
    sweep = {"cluster_base": base.name, "points": points}
    written = []
    if args.report:
        require(best is not None, "no size of the sweep fits the job, so there is no report to write: use more GPUs")
        from planner.cli.simulate_cmd import write_outputs

        written = write_outputs(args.report, best[0], best[1], sweep)
    if fmt != "table":
        from planner.cli.formats import emit

        emit(sweep, fmt)
    else:
        _print_sweep(sweep, inputs)
        for path in written:
            print(f"wrote {path}")
    return 0


def _sweep_point(inputs, args, quiet: bool):
    """One size: (the sweep's point, (simulation, plan) or None if the job does not fit)."""
    from executor.sim import simulate
    from planner.plan import plan_to_dict
    from planner.replay import replay_search
    from planner.search import run_search

    n = inputs.cluster.num_gpus
    if not quiet:
        print(f"planning and simulating on {n} GPUs ...", file=sys.stderr)
    try:
        result = run_search(inputs, hybridflow=False)
    except PlanError as err:
        return {"gpus": n, "iteration_time_s": None, "tokens_per_s": None, "tokens_per_s_per_gpu": None,
                "placement": "", "status": f"no plan: {err}"}, None
    plan = plan_to_dict(result)
    simulation = simulate(replay_search(result, plan), args.iterations, args.seed, what_if=args.what_if).to_dict()
    point = {"gpus": n, "iteration_time_s": simulation["iteration_time_s"], "tokens_per_s": simulation["tokens_per_s"],
             "tokens_per_s_per_gpu": simulation["tokens_per_s_per_gpu"], "placement": placement_text(plan),
             "status": plan["status"], "gpus_used": plan["gpus_used"],
             "predicted_iteration_time_s": plan["iteration_time_s"],
             "layouts": {role: r["layout_str"] for role, r in plan["roles"].items()}}
    return point, (simulation, plan)


def _print_sweep(sweep: dict, inputs) -> None:
    from rich.table import Table

    from planner.cli.plan_report import _console, fmt_s

    con = _console()
    table = Table(title=f"{inputs.algo} on {sweep['cluster_base']}'s nodes, by GPU count "
                        f"({inputs.workload.describe()})", title_justify="left")
    for col in ("GPUs", "iteration", "tokens/s", "tokens/s/GPU", "placement", "status"):
        table.add_column(col)
    for p in sweep["points"]:
        if p["iteration_time_s"] is None:
            table.add_row(str(p["gpus"]), "-", "-", "-", "-", p["status"])
            continue
        table.add_row(str(p["gpus"]), fmt_s(p["iteration_time_s"]), f"{p['tokens_per_s']:,.0f}",
                      f"{p['tokens_per_s_per_gpu']:,.0f}", p["placement"], p["status"])
    con.print(table)
