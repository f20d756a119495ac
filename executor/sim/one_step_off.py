"""Where the next iteration's generation enters the submission order in one-step-off mode.

The search prices one-step-off as a steady-state period bounded below by each pool's busy
time and by the part of an iteration after its generation (``planner.search.schedule.
objective``); it does not fix the order in which a pool that hosts the rollout and other
roles runs generation k+1 against the calls of iteration k. That order is the controller's
``generation_after``. Every slot is tried here on the plan's own durations (no sampling,
so it is cheap and deterministic), and the one with the shortest steady-state period wins;
ties go to the earliest slot (the most overlap).
"""

from __future__ import annotations

import numpy as np

TRIAL_ITERATIONS = 6
"""Iterations per trial: the first fills the pipeline and the last drains it; the periods
between settle within a couple of iterations for the dataflows of algos/."""


def iteration_ends(records, iterations: int) -> np.ndarray:
    """When the last call of each iteration ends."""
    ends = np.zeros(iterations)
    for rec in records:
        ends[rec.iteration] = max(ends[rec.iteration], rec.end_s)
    return ends


def steady_periods(ends: np.ndarray) -> np.ndarray:
    """Times between consecutive iteration ends, without the fill (first) and drain (last) when there are 3+."""
    periods = np.diff(np.concatenate([[0.0], ends]))
    return periods[1:-1] if len(periods) >= 3 else periods


def best_generation_slot(replayed) -> str | None:
    """The ``generation_after`` with the shortest simulated steady-state period (None in sync mode)."""
    from executor.controller import Controller, plan_jobs
    from executor.sim.backend import SimBackend

    if replayed.plan.get("mode") != "one-step-off":
        return None
    jobs = plan_jobs(replayed.plan, replayed.inputs.dataflow)
    slots = [None] + [j.name for j in jobs if j.kind != "generate"]
    best, best_period = None, float("inf")
    for slot in slots:
        backend = SimBackend(replayed, planned=True)
        Controller(replayed.plan, replayed.inputs.dataflow, backend, generation_after=slot).run(TRIAL_ITERATIONS)
        period = float(steady_periods(iteration_ends(backend.records(), TRIAL_ITERATIONS)).mean())
        if period < best_period * (1 - 1e-9):
            best, best_period = slot, period
    return best
