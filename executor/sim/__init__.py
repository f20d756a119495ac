"""The simulated backend and the dry run: ``simulate(replayed_plan, iterations, seed)``.

The dry run is the executor's controller (``executor.controller``) on a discrete-event
backend (``backend.py``) whose durations come from the cost model, with response lengths
sampled per iteration (``sampling.py``), memory tracked per pool (``memory.py``), and a
long-tail what-if (``long_tail.py``). Imports no torch, ray or vllm.
"""

from __future__ import annotations

from planner.errors import require

from executor.sim.result import SimulationResult


def simulate(replayed, iterations: int = 10, seed: int = 0, what_if: bool = True) -> SimulationResult:
    """Simulate ``iterations`` iterations of a ``planner.replay.ReplayedPlan``; ``what_if`` adds the length-cap what-ifs."""
    from executor.sim.long_tail import long_tail
    from executor.sim.one_step_off import best_generation_slot
    from executor.sim.result import summarise
    from executor.sim.run import run_simulation

    require(isinstance(iterations, int) and not isinstance(iterations, bool) and iterations >= 1,
            f"--iterations must be a positive integer, got {iterations!r}")
    require(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0,
            f"--seed must be a non-negative integer, got {seed!r}")
    run = run_simulation(replayed, iterations, seed, generation_after=best_generation_slot(replayed))
    return summarise(run, long_tail(run, what_if))


__all__ = ["simulate", "SimulationResult"]
