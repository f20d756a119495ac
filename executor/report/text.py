"""Numbers and small HTML pieces as the report writes them."""

from __future__ import annotations

from html import escape

from planner.cli.plan_report import fmt_s  # the CLI's format for seconds: 267 s, 58.86 s, 200.0 ms

__all__ = ["fmt_s", "fmt_pct", "fmt_rate", "fmt_gib", "fmt_signed_pct", "table", "escape"]


def fmt_pct(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


def fmt_signed_pct(fraction: float) -> str:
    """A relative difference, e.g. +3.7% or -0.2%."""
    return f"{fraction * 100:+.1f}%"


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def fmt_gib(value: float) -> str:
    return f"{value:.1f} GiB"


def table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset(), css: str = "") -> str:
    """An HTML table; cells are escaped, columns in ``numeric`` are right-aligned."""
    def cell(tag: str, i: int, text: str) -> str:
        align = ' class="num"' if i in numeric else ""
        return f"<{tag}{align}>{escape(str(text))}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    cls = f' class="{css}"' if css else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
