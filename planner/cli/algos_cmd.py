"""``plan algos``: list the RL algorithms, or show one algorithm's dataflow.

    plan algos                      # table: roles, stages in order, advantage, reward, source
    plan algos --show grpo          # stages with kind, role, work and dependencies
    plan algos --show ppo --prompts 512 --samples 8 --reward rule
    plan algos --json               # the same, machine-readable
"""

from __future__ import annotations

import json

from rich import box
from rich.console import Console
from rich.table import Table

from algos import ALGORITHMS, Algorithm, Dataflow, StageKind, build_dataflow, get_algorithm
from planner.cli.formats import emit, output_format
from planner.errors import PlanError
from planner.workload import Workload, add_workload_arguments, workload_from_args

WORKLOAD_FLAGS = ("prompts", "samples", "prompt_len", "response", "max_response_len", "epochs",
                  "mini_batches", "oversample")


def add_arguments(parser, name: str) -> None:
    parser.add_argument("--show", metavar="ALGO", help="show one algorithm's stages, roles and dependencies")
    parser.add_argument("--reward", choices=("model", "rule"),
                        help="score with a reward model or a rule on the driver (default: the algorithm's)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables (same as --format json)")
    from planner.cli.formats import add_format_arguments

    add_format_arguments(parser, json_alias=False)
    add_workload_arguments(parser)


def run(args, name: str) -> int:
    reward_model = None if args.reward is None else args.reward == "model"
    if args.show is None:
        given = [f"--{flag.replace('_', '-')}" for flag in WORKLOAD_FLAGS if getattr(args, flag) is not None]
        if given:
            raise PlanError(f"{' '.join(given)} only apply to one algorithm: add --show ALGO")
        return _list(reward_model, output_format(args))
    algorithm = get_algorithm(args.show)
    workload = workload_from_args(args)
    flow = build_dataflow(algorithm.name, workload, reward_model)
    if fmt := output_format(args):
        emit(_show_json(algorithm, workload, flow), fmt)
    else:
        _show(algorithm, workload, flow)
    return 0


# ---- the list --------------------------------------------------------------------------------
def _list(reward_model: bool | None, as_json: str | None) -> int:
    """``as_json``: None for a table, else the structured format (json or yaml)."""
    rows = []
    for algorithm in ALGORITHMS.values():
        flow = build_dataflow(algorithm.name, Workload(), reward_model)
        rows.append({"name": algorithm.name, "summary": algorithm.summary, "roles": list(flow.roles),
                     "stages": flow.order(), "advantage": algorithm.advantage,
                     "default_reward": _reward_word(algorithm.default_reward_model), "source": algorithm.source})
    if as_json:
        emit(rows, as_json)
        return 0
    table = Table(title="RL algorithms (plan algos --show NAME for one dataflow)", box=box.SIMPLE_HEAD,
                  padding=(0, 1))
    table.add_column("algorithm", no_wrap=True)
    table.add_column("roles", ratio=2)
    table.add_column("stages, in order", ratio=4)
    table.add_column("advantage", no_wrap=True)
    table.add_column("reward", no_wrap=True)
    table.add_column("source", ratio=2)
    for row in rows:
        table.add_row(row["name"], ", ".join(row["roles"]), " > ".join(row["stages"]), row["advantage"],
                      row["default_reward"], row["source"])
    _console().print(table)
    return 0


# ---- one algorithm -----------------------------------------------------------------------------
def _show(algorithm: Algorithm, workload: Workload, flow: Dataflow) -> None:
    console = _console()
    reward = "model" if "reward" in flow.roles else "rule"
    default = " (default)" if (reward == "model") == algorithm.default_reward_model else ""
    console.print(f"[bold]{algorithm.name}[/bold]: {algorithm.summary}", highlight=False)
    console.print(f"source: {algorithm.source}; advantage: {algorithm.advantage}; reward: {reward}{default}",
                  highlight=False)
    console.print(f"workload: {workload.describe()}", highlight=False)

    roles = Table(title="roles", box=box.SIMPLE_HEAD, padding=(0, 1))
    for column in ("role", "model", "trainable", "head", "weights from"):
        roles.add_column(column)
    for role in flow.roles.values():
        roles.add_row(role.name, role.model_of, "yes" if role.trainable else "no", role.head, role.weights_from or "-")
    console.print(roles)

    stages = Table(title="stages, in order", box=box.SIMPLE_HEAD, padding=(0, 1))
    for column, justify in (("#", "right"), ("stage", "left"), ("kind", "left"), ("role", "left"),
                            ("seqs", "right"), ("tok/seq", "right"), ("tokens", "right")):
        stages.add_column(column, justify=justify, no_wrap=True)
    stages.add_column("work", min_width=18)
    stages.add_column("needs", no_wrap=True)
    for i, name in enumerate(flow.order(), start=1):
        stage = flow.stages[name]
        stages.add_row(str(i), name, stage.kind.value, stage.role or "driver", f"{stage.num_seqs:,}",
                       f"{stage.tokens_per_seq:,.0f}", _si(stage.tokens) if stage.role else "-", _work(stage),
                       "\n".join(flow.needs(name)) or "-")
    console.print(stages)


def _work(stage) -> str:
    """What drives the stage's cost, in words."""
    if stage.kind is StageKind.GENERATE:
        mode = "greedy" if stage.greedy else "sampled"
        return f"{mode}; response mean {stage.response.expected:.0f}, max {stage.response.max_len}"
    if stage.kind is StageKind.TRAIN:
        return f"{_plural(stage.epochs, 'epoch')} x {_plural(stage.mini_batches, 'step')}"
    if stage.kind is StageKind.FORWARD:
        return "prompt + response"
    return "driver CPU"


def _show_json(algorithm: Algorithm, workload: Workload, flow: Dataflow) -> dict:
    return {"name": algorithm.name, "summary": algorithm.summary, "advantage": algorithm.advantage,
            "source": algorithm.source, "default_reward": _reward_word(algorithm.default_reward_model),
            "reward": "model" if "reward" in flow.roles else "rule",
            "workload": workload.to_dict(), "dataflow": flow.to_dict()}


# ---- helpers ---------------------------------------------------------------------------------------
def _reward_word(reward_model: bool) -> str:
    return "model" if reward_model else "rule"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _si(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.2f}{unit}"
    return f"{value:.0f}"


def _console() -> Console:
    """A console at least 120 columns wide, so the tables stay readable when piped."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=max(console.width, 120))
    return console
