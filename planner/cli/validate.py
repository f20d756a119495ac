"""``plan validate [--category C ...] [--json]``: the cost model against published runs."""

from __future__ import annotations

import json

from planner.validate import CATEGORIES, Report, run_validation


def add_arguments(parser, name: str) -> None:
    parser.add_argument("--category", action="append", choices=CATEGORIES,
                        help="only this category (repeatable; default: all)")
    parser.add_argument("--file", default=None,
                        help="a measurements YAML file (default: the package's planner/data/measurements.yaml)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables (same as --format json)")
    from planner.cli.formats import add_format_arguments

    add_format_arguments(parser, json_alias=False)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4g}"
    return f"{value:.3e}"


def _print_tables(report: Report) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="cost model vs published measurements", title_justify="left")
    notes = any(row.note for row in report.rows)
    for col, justify in (("id", "left"), ("category", "left"), ("metric", "left"), ("measured", "right"),
                         ("predicted", "right"), ("error %", "right")) + ((("note", "left"),) if notes else ()):
        table.add_column(col, justify=justify, no_wrap=True)
    for row in report.rows:
        err = "-" if row.error_pct is None else f"{row.error_pct:+.1f}"
        table.add_row(row.id, row.category, row.metric, _fmt(row.measured), _fmt(row.predicted), err,
                      *((row.note,) if notes else ()))
    summary = Table(title="MAPE per category", title_justify="left")
    for col in ("category", "entries", "MAPE %", "max |error| %"):
        summary.add_column(col, justify="left" if col == "category" else "right")
    for category in report.categories():
        errors = [abs(r.error_pct) for r in report.rows if r.category == category and r.error_pct is not None]
        mape = report.mape(category)
        summary.add_row(category, str(len(errors)), "-" if mape is None else f"{mape:.1f}",
                        f"{max(errors):.1f}" if errors else "-")
    console = Console(width=max(110, Console().width))
    console.print(table)
    console.print(summary)


def run(args, name: str) -> int:
    report = run_validation(args.category, args.file)
    from planner.cli.formats import emit, output_format

    if fmt := output_format(args):
        emit(report.to_dict(), fmt)
    else:
        _print_tables(report)
    return 0
