"""Exports of a plan to the frameworks people run: verl and OpenRLHF.

``export_plan(plan, "verl" | "openrlhf")`` returns an :class:`Export`: a ready command,
the framework's settings as data, the files ``plan export --out DIR`` writes, and notes
where the framework cannot say exactly what the plan says. ``planner.export.checks`` runs
the frameworks' own config composition and argument parser on an export.
"""

from __future__ import annotations

from planner.errors import require
from planner.export.common import Export

TARGETS = ("verl", "openrlhf")


def export_plan(plan: dict, target: str, model_paths: dict[str, str] | None = None, engine: str = "auto") -> Export:
    """``plan`` (a plan dict, as ``planner.plan.load_plan`` returns) spelled for ``target``;
    ``engine`` picks verl's trainer engine (auto, fsdp, megatron)."""
    require(target in TARGETS, f"unknown export target {target!r}: use one of {', '.join(TARGETS)}")
    if target == "verl":
        from planner.export.verl import export_verl

        return export_verl(plan, model_paths, engine)
    from planner.export.openrlhf import export_openrlhf

    return export_openrlhf(plan, model_paths)


__all__ = ["TARGETS", "Export", "export_plan"]
