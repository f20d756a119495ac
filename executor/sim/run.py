"""One simulated run: a replayed plan, the controller and the simulated backend."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from executor.sim.one_step_off import iteration_ends, steady_periods


@dataclass
class SimulationRun:
    """What one run produced (raw): records, the backend's state, iteration ends."""

    replayed: object
    backend: object
    iterations: int
    seed: int
    generation_after: str | None
    length_cap: int | None = None

    @property
    def records(self) -> list:
        return self.backend.records()

    @property
    def ends(self) -> np.ndarray:
        return iteration_ends(self.records, self.iterations)

    @property
    def iteration_times(self) -> np.ndarray:
        """Time between consecutive iteration ends (iteration 0: from the start)."""
        return np.diff(np.concatenate([[0.0], self.ends]))

    @property
    def steady_iteration_times(self) -> np.ndarray:
        """The iteration times the summary averages: all of them in sync mode; one-step-off
        drops the pipeline's fill (first) and drain (last) when there are 3 or more."""
        if self.replayed.plan.get("mode") == "one-step-off":
            return steady_periods(self.ends)
        return self.iteration_times

    def main_generations(self) -> list:
        """StageCosts of the main generation (``rollout.generate``) of every iteration, in order."""
        main = self.backend.sampler.main_stage
        return [cost for _, job, cost in sorted(self.backend.pricer.generations, key=lambda g: g[0]) if job == main]


def run_simulation(replayed, iterations: int, seed: int = 0, length_cap: int | None = None,
                   generation_after: str | None = None) -> SimulationRun:
    """Drive ``iterations`` iterations of ``replayed`` on the simulated backend."""
    from executor.controller import Controller
    from executor.sim.backend import SimBackend

    backend = SimBackend(replayed, seed=seed, length_cap=length_cap)
    Controller(replayed.plan, replayed.inputs.dataflow, backend, generation_after).run(iterations)
    return SimulationRun(replayed, backend, iterations, seed, generation_after, length_cap)
