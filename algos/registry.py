"""The algorithm registry: name -> :class:`Algorithm`. A duplicate name raises."""

from __future__ import annotations

from planner.errors import PlanError
from planner.workload import Workload

from algos.dataflow import Algorithm, Dataflow

ALGORITHMS: dict[str, Algorithm] = {}


def register(algorithm: Algorithm) -> Algorithm:
    """Add ``algorithm`` to :data:`ALGORITHMS`; a name already taken is a programming error."""
    if algorithm.name in ALGORITHMS:
        raise ValueError(f"algorithm {algorithm.name!r} is already registered")
    ALGORITHMS[algorithm.name] = algorithm
    return algorithm


def get_algorithm(name: str) -> Algorithm:
    if name not in ALGORITHMS:
        raise PlanError(f"unknown algorithm {name!r}: use one of {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]


def build_dataflow(name: str, workload: Workload, reward_model: bool | None = None) -> Dataflow:
    """The dataflow of ``name`` for ``workload``; ``reward_model=None`` takes the algorithm's default."""
    algorithm = get_algorithm(name)
    use_model = algorithm.default_reward_model if reward_model is None else bool(reward_model)
    return algorithm.build(workload, use_model)
