"""The dry run's HTML report: ``write_report(simulation, plan, out_dir, sweep=None)``.

The page is one self-contained file (plotly.js inlined once, no link to any server), so
it opens offline and can be mailed around. Sections: a header with the plan summary,
the timeline of the pools, the stage breakdown, utilisation, memory against capacity,
response lengths and the long tail with a length-cap what-if, the plan against the
search's baselines, and, with a sweep, throughput against GPU count.

Inputs: ``simulation`` is ``SimulationResult.to_dict()`` of the simulator (kind
``rlplan.simulation``, version 1; extra keys are ignored), ``plan`` the plan JSON of
``planner.plan.plan_to_dict``, ``sweep`` the dict of ``plan sweep``. Modules: ``page``
lays out the sections; ``timeline``, ``stages``, ``pools``, ``memory``, ``lengths``,
``baselines`` and ``scaling`` each shape their data and draw their charts. Imports no
torch, ray or vllm.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from planner.errors import PlanError
from planner.plan import PLAN_KIND

from executor.sim.result import KIND as SIMULATION_KIND
from executor.sim.result import VERSION as SIMULATION_VERSION

REPORT_NAME = "report.html"


def write_report(simulation: dict, plan: dict, out_dir: Path, sweep: dict | None = None) -> Path:
    """Write ``out_dir/report.html`` atomically (a temporary file renamed into place,
    so a failure never leaves half a page) and return its path."""
    check_inputs(simulation, plan)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise PlanError(f"report folder {str(out_dir)!r} is a file: give a folder for the report")
    html = render_report(simulation, plan, sweep)
    path = out_dir / REPORT_NAME
    tmp = out_dir / f".{REPORT_NAME}.{os.getpid()}.tmp"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(path)
    except OSError as err:
        with contextlib.suppress(OSError):  # the folder may not exist: then there is nothing to remove
            tmp.unlink(missing_ok=True)
        raise PlanError(f"cannot write the report to {str(path)!r}: {err.strerror}: write it elsewhere") from None
    return path


def render_report(simulation: dict, plan: dict, sweep: dict | None = None) -> str:
    """The report's HTML as a string (what ``write_report`` writes)."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise PlanError("the HTML report draws its charts with plotly, which is not installed: "
                        "pip install 'plotly>=5.20'") from None

    from executor.report.page import render

    return render(simulation, plan, sweep, get_plotlyjs())


def check_inputs(simulation: dict, plan: dict) -> None:
    """Refuse a simulation or plan of another kind or version, or a simulation of another plan."""
    if not isinstance(simulation, dict) or simulation.get("kind") != SIMULATION_KIND:
        raise PlanError(f"not an rlplan simulation (no \"kind\": \"{SIMULATION_KIND}\"): pass the result of `plan simulate`")
    if simulation.get("version") != SIMULATION_VERSION:
        raise PlanError(f"simulation of version {simulation.get('version')!r}; this rlplan reports version "
                        f"{SIMULATION_VERSION}: simulate the plan again with this version")
    if not isinstance(plan, dict) or plan.get("kind") != PLAN_KIND:
        raise PlanError(f"not an rlplan plan (no \"kind\": \"{PLAN_KIND}\"): pass the plan that was simulated")
    made_for = (plan["inputs"]["cluster"]["name"], plan["inputs"]["algo"])
    if (simulation.get("cluster"), simulation.get("algo")) != made_for:
        raise PlanError(f"the simulation is of {simulation.get('algo')} on {simulation.get('cluster')} but the plan of "
                        f"{made_for[1]} on {made_for[0]}: pass the plan that was simulated")
