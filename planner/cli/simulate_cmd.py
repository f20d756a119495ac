"""``plan simulate plan.json``: the dry run. Runs the plan on the simulated backend and
prints what will happen (iteration time, stages, pools, memory, critical path, long tail);
``--report DIR`` writes ``trace.json`` (Perfetto), ``simulation.json`` and ``report.html``.

The helpers here are shared with ``plan --dry-run`` and ``plan sweep``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from planner.cli.argtypes import positive_int, role_paths
from planner.errors import PlanError, require

DEFAULT_ITERATIONS = 10
TRACE_NAME = "trace.json"
SIMULATION_NAME = "simulation.json"
SWEEP_NAME = "sweep.json"


def add_arguments(parser, name: str) -> None:
    parser.add_argument("plan", help="a plan written by `plan ... --out plan.json`")
    parser.add_argument("--cluster", help="the cluster to run on (default: the plan's own); "
                                          "a plan made for another cluster is refused")
    parser.add_argument("--model", action="append", default=[], metavar="ROLE=PATH",
                        help="config.json of a role's model that is not in the zoo (repeatable)")
    add_simulation_arguments(parser)
    from planner.cli.formats import add_format_arguments

    add_format_arguments(parser)


def add_simulation_arguments(parser) -> None:
    """``--iterations --seed --report --no-what-if`` (also on `plan --dry-run` and `plan sweep`)."""
    group = parser.add_argument_group("dry run")
    group.add_argument("--iterations", type=positive_int, default=DEFAULT_ITERATIONS,
                       help=f"iterations to simulate (default {DEFAULT_ITERATIONS})")
    group.add_argument("--seed", type=int, default=0, help="seed of the sampled response lengths (default 0)")
    group.add_argument("--report", metavar="DIR", help="write trace.json, simulation.json and report.html into DIR")
    group.add_argument("--no-what-if", dest="what_if", action="store_false",
                       help="skip the length-cap what-ifs of the long-tail analysis")


def run(args, name: str) -> int:
    from planner.plan import load_plan
    from planner.replay import replay_plan

    require(args.seed >= 0, f"--seed must be a non-negative integer, got {args.seed}")
    if args.report:
        check_report_dir(args.report)
    plan = load_plan(args.plan)
    if args.cluster is None:
        _require_known_cluster(plan)
    replayed = replay_plan(plan, args.cluster, role_paths(args.model, example="actor=./my-model/config.json"))
    simulation = simulate_replayed(replayed, args)
    written = write_outputs(args.report, simulation, plan) if args.report else []
    fmt = output_format(args)
    if fmt != "table":
        emit_structured(simulation, fmt)
    else:
        from planner.cli.simulate_report import print_simulation

        print_simulation(simulation, source=args.plan)
        for path in written:
            print(f"wrote {path}")
    return 0


def dry_run(result, plan: dict, args) -> int:
    """``plan --cluster C --algo A --dry-run``: simulate the plan the search just made."""
    from planner.replay import replay_search

    require(args.seed >= 0, f"--seed must be a non-negative integer, got {args.seed}")
    simulation = simulate_replayed(replay_search(result, plan), args)
    written = write_outputs(args.report, simulation, plan) if args.report else []
    fmt = output_format(args)
    if fmt != "table":
        emit_structured({**simulation, "plan": plan}, fmt)
        return 0
    from planner.cli.search_cmd import print_plan_with_inputs
    from planner.cli.simulate_report import print_simulation

    print_plan_with_inputs(result.inputs, plan, args)
    print()
    print_simulation(simulation)
    for path in written:
        print(f"wrote {path}")
    return 0


def output_format(args) -> str:
    """``table``, ``json`` or ``yaml``: ``--format``, or ``--json`` where a command has it as its own flag."""
    fmt = getattr(args, "format", None) or "table"
    return "json" if fmt == "table" and getattr(args, "json", False) else fmt


def emit_structured(data: dict, fmt: str) -> None:
    """``data`` on stdout: one line of JSON (simulations are long), or YAML."""
    if fmt == "json":
        json.dump(data, sys.stdout)
        sys.stdout.write("\n")
    else:
        from planner.cli.formats import emit

        emit(data, fmt)


def simulate_replayed(replayed, args) -> dict:
    from executor.sim import simulate

    return simulate(replayed, args.iterations, args.seed, what_if=args.what_if).to_dict()


def _require_known_cluster(plan: dict) -> None:
    """A plan made on a cluster YAML names a cluster that is not built in: say how to give
    it, rather than 'unknown cluster'. (A ``--from-verl`` plan's cluster is rebuilt from
    the plan; only one on a GPU type this version does not know ends up here.)"""
    from planner.clusters import cluster_names
    from planner.from_verl import rebuild_job_cluster

    recorded = plan.get("inputs", {}).get("cluster")
    name = recorded.get("name") if isinstance(recorded, dict) else None
    if not isinstance(name, str) or name in cluster_names() or rebuild_job_cluster(recorded) is not None:
        return
    if name.startswith("verl "):
        gpus = {g.get("gpu") for g in recorded.get("node_groups", []) if isinstance(g, dict)}
        raise PlanError(f"the plan was made by `plan --from-verl` for {name[5:]} GPUs, which no built-in profile "
                        f"describes: dry-run it with `plan --from-verl CONFIG --gpu {'/'.join(sorted(map(str, gpus)))} "
                        "--dry-run`")
    raise PlanError(f"the plan was made for cluster {name!r}, which is not a built-in profile: "
                    f"pass its YAML with --cluster FILE")


# ---- output files ------------------------------------------------------------------------------
def check_report_dir(path: str) -> None:
    """Refuse a report folder that cannot be written, before any work is done."""
    folder = Path(path)
    require(not folder.exists() or folder.is_dir(), f"--report {path!r} is a file: give a folder for the report")
    require(folder.parent.is_dir() or folder.parent == Path(""),
            f"--report {path!r}: folder {str(folder.parent)!r} does not exist: create it or write elsewhere")


def write_outputs(report_dir: str, simulation: dict, plan: dict, sweep: dict | None = None) -> list[Path]:
    """Write trace.json, simulation.json (and sweep.json) and report.html into ``report_dir``, all or nothing:
    they are made in a temporary folder beside it and moved in only when all are done."""
    from executor.report import write_report
    from executor.trace import build_trace, write_trace

    folder = Path(report_dir)
    check_report_dir(report_dir)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent if str(folder.parent) else "."))
    try:
        trace = build_trace(_records(simulation), plan["pools"],
                            {p["id"]: p["memory_timeline"] for p in simulation["pools"]},
                            {"algo": simulation["algo"], "cluster": simulation["cluster"], "seed": simulation["seed"]})
        write_trace(trace, staging / TRACE_NAME)
        (staging / SIMULATION_NAME).write_text(json.dumps(simulation))
        if sweep is not None:
            (staging / SWEEP_NAME).write_text(json.dumps(sweep))
        write_report(simulation, plan, staging, sweep)
        folder.mkdir(exist_ok=True)
        names = sorted(p.name for p in staging.iterdir())
        for name in names:
            os.replace(staging / name, folder / name)
    except OSError as err:
        raise PlanError(f"cannot write the report into {report_dir!r}: {err.strerror}: write it elsewhere") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [folder / name for name in names]


def _records(simulation: dict) -> list:
    from executor.trace import CallRecord

    return [CallRecord(e["job"], e["kind"], tuple(e["roles"]), tuple(e["pools"]), e["iteration"], e["start_s"],
                       e["end_s"], e["args"]) for e in simulation["events"]]
