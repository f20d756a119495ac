"""REINFORCE++: critic-free REINFORCE with PPO's clipping and a token-level KL penalty.

Hu 2025 keeps PPO's tricks (ratio clipping, KL to the reference as a per-token reward
penalty) but drops the critic: the return is normalised over the whole batch (global
advantage normalisation) instead of a value baseline. verl: ``adv_estimator=
reinforce_plus_plus`` with ``use_kl_in_reward=True``. The paper evaluates both reward
models and verifiable rewards; the default here is a rule reward (verifiable answers).

Dataflow: generate -> {reward, old log-probs, ref log-probs} -> advantages -> actor.update.
"""

from __future__ import annotations

from planner.workload import Workload

from algos import stages as S
from algos.dataflow import Algorithm, Dataflow


def build(w: Workload, reward_model: bool) -> Dataflow:
    return S.kl_in_reward_flow("reinforce_pp", w, reward_model)


ALGORITHM = Algorithm(
    name="reinforce_pp",
    summary="REINFORCE++: PPO clipping, token-level KL in the reward, batch-normalised returns, no critic",
    advantage="reinforce_pp",
    source="Hu 2025 (REINFORCE++)",
    build=build,
    default_reward_model=False,
)
