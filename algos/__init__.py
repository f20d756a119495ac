"""RL algorithms as dataflows (roles, stages, a DAG), registered by name.

To add an algorithm, write ``algos/<name>.py`` with a ``build(workload, reward_model)``
returning a :class:`Dataflow` and an ``ALGORITHM = Algorithm(...)``, and add ``<name>`` to
``BUILTIN`` below. The dataflow modules import only numpy and networkx.
"""

from importlib import import_module

from algos.dataflow import Algorithm, Dataflow, RoleSpec, Stage, StageKind
from algos.registry import ALGORITHMS, build_dataflow, get_algorithm, register

BUILTIN = ("ppo", "grpo", "remax", "rloo", "reinforce_pp", "dapo", "safe_rlhf")

for _name in BUILTIN:
    register(import_module(f"algos.{_name}").ALGORITHM)

__all__ = ["ALGORITHMS", "Algorithm", "Dataflow", "RoleSpec", "Stage", "StageKind",
           "build_dataflow", "get_algorithm", "register", "BUILTIN"]
