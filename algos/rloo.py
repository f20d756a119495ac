"""RLOO: REINFORCE with a leave-one-out baseline over each prompt's k samples.

Ahmadian et al. 2024 ("Back to Basics") sample k responses per prompt and use, for each,
the mean reward of the other k-1 as its baseline; the KL to the reference is a penalty in
the sequence reward. No critic. Their experiments are RLHF with a reward model, hence
that default. verl: ``adv_estimator=rloo``.

Dataflow: generate -> {reward, old log-probs, ref log-probs} -> advantages -> actor.update.
"""

from __future__ import annotations

from planner.errors import require
from planner.workload import Workload

from algos import stages as S
from algos.dataflow import Algorithm, Dataflow


def build(w: Workload, reward_model: bool) -> Dataflow:
    require(w.samples_per_prompt >= 2, "rloo needs at least 2 samples per prompt for a leave-one-out baseline: "
                                       "set --samples 2 or more")
    return S.kl_in_reward_flow("rloo", w, reward_model)


ALGORITHM = Algorithm(
    name="rloo",
    summary="REINFORCE with a leave-one-out baseline over the k samples of a prompt, no critic",
    advantage="rloo",
    source="Ahmadian et al. 2024 (Back to Basics: RLOO)",
    build=build,
    default_reward_model=True,
)
