"""``plan compare MEASURED PREDICTED``: per-stage measured vs predicted time, and the error.

Both files are traces in rlplan's format (``trace.json`` of ``plan execute`` and of
``plan simulate --report``), or the second is the plan itself (its schedule's stage times).
A stage's time is its mean over the iterations in the file; a call drawn on several tracks
(a weight sync occupies two roles) counts once.
"""

from __future__ import annotations

import json
from pathlib import Path

from planner.cli.formats import add_format_arguments, emit, output_format
from planner.errors import PlanError, require


def add_arguments(parser, name: str) -> None:
    parser.add_argument("measured", help="trace.json of `plan execute`")
    parser.add_argument("predicted", help="trace.json of `plan simulate --report DIR`, or the plan.json itself")
    add_format_arguments(parser)


def stage_times(path: str | Path) -> dict[str, float]:
    """Mean seconds per stage (job name) in a trace file, or the plan's predicted stage times."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise PlanError(f"{path} not found: pass a trace.json (plan execute / plan simulate --report) or a plan") from None
    except json.JSONDecodeError as err:
        raise PlanError(f"{path} is not valid JSON (line {err.lineno}): pass a trace.json or a plan") from None
    if isinstance(data, dict) and data.get("kind") == "rlplan.plan":
        return {job["job"]: float(job["time_s"]) for job in data["schedule"]}
    require(isinstance(data, dict) and isinstance(data.get("traceEvents"), list),
            f"{path} is neither a trace (no traceEvents) nor a plan: pass a trace.json or a plan.json")
    seen, durations = set(), {}
    for ev in data["traceEvents"]:
        if not isinstance(ev, dict) or ev.get("ph") != "X":
            continue
        key = (ev.get("name"), (ev.get("args") or {}).get("iteration"), ev.get("ts"))
        if key in seen:
            continue
        seen.add(key)
        durations.setdefault(ev["name"], []).append(float(ev.get("dur", 0.0)) / 1e6)
    require(bool(durations), f"{path} has no stage slices: pass the trace.json of a run or a dry run")
    return {name: sum(values) / len(values) for name, values in durations.items()}


def comparison(measured: str | Path, predicted: str | Path) -> list[dict]:
    """One row per stage present in either file: measured, predicted, error (fraction of predicted)."""
    got, want = stage_times(measured), stage_times(predicted)
    rows = []
    for job in list(want) + [j for j in got if j not in want]:
        m, p = got.get(job), want.get(job)
        error = (m - p) / p if m is not None and p else None
        rows.append({"stage": job, "measured_s": m, "predicted_s": p, "error": error})
    return rows


def print_comparison(measured, predicted, title: str = "measured vs predicted") -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD)
    for col in ("stage", "measured", "predicted", "error"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for row in comparison(measured, predicted):
        table.add_row(row["stage"], _seconds(row["measured_s"]), _seconds(row["predicted_s"]),
                      "-" if row["error"] is None else f"{row['error']:+.0%}")
    Console().print(table)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"


def run(args, name: str) -> int:
    if fmt := output_format(args):
        emit({"measured": args.measured, "predicted": args.predicted,
              "stages": comparison(args.measured, args.predicted)}, fmt)
        return 0
    print_comparison(args.measured, args.predicted)
    return 0
