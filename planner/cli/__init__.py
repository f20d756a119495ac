"""The ``plan`` command.

``plan --cluster C --algo A ...`` searches for the best layout; ``plan <command> ...`` runs
one of the commands below. Each command lives in its own module with ``add_arguments``
and ``run``; modules are imported only when used, so ``plan estimate`` starts fast.
Every user error (``PlanError`` or a bad flag) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from planner.errors import PlanError

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module, one-line help)
    "search": ("planner.cli.search_cmd", "find the best layout (the default: plan --cluster C --algo A)"),
    "estimate": ("planner.cli.estimate", "price one stage: train, generate or comm"),
    "validate": ("planner.cli.validate", "compare the cost model with published measurements"),
    "clusters": ("planner.cli.listing", "list the built-in cluster profiles"),
    "models": ("planner.cli.listing", "list the built-in model zoo"),
    "algos": ("planner.cli.algos_cmd", "list the RL algorithms and their dataflows"),
    "simulate": ("planner.cli.simulate_cmd", "dry run: simulate a plan (timeline, memory, long tail, trace)"),
    "sweep": ("planner.cli.sweep_cmd", "plan and simulate one job on several cluster sizes"),
    "export": ("planner.cli.export_cmd", "write the verl or OpenRLHF config that realises a plan"),
    "execute": ("planner.cli.execute_cmd", "run a plan on Ray: vLLM rollouts, FSDP2 training, the RL algorithm"),
    "compare": ("planner.cli.compare_cmd", "measured vs predicted stage times of two traces (or a trace and its plan)"),
    "demo": ("planner.cli.demo_cmd", "plan for `local` and train GRPO on a toy task with a tiny model, on this machine"),
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (no usage dump) with exit code 2."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _top_help() -> str:
    lines = ["usage: plan [--cluster C --algo A ...] | plan <command> ...", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `plan <command> --help` for a command's flags."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help") and len(argv) == 1:
        print(_top_help())
        return 0
    name = argv.pop(0) if argv and argv[0] in COMMANDS else "search"
    module = importlib.import_module(COMMANDS[name][0])
    prog = "plan" if name == "search" else f"plan {name}"
    parser = ArgumentParser(prog=prog, description=COMMANDS[name][1])
    module.add_arguments(parser, name)
    args = parser.parse_args(argv)
    try:
        return int(module.run(args, name) or 0)
    except PlanError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
