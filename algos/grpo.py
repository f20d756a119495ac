"""GRPO: no critic; the advantage is the reward normalised within each prompt's group.

Shao et al. 2024 (DeepSeekMath, §4.1) sample a group of responses per prompt and use
``(r - mean(group)) / std(group)`` as every token's advantage, and add the KL to the
reference as a loss term instead of a reward penalty. verl runs this as
``adv_estimator=grpo`` with ``use_kl_loss=True``. DeepSeekMath scored with a reward model;
the default here is a rule reward, as in verl's GRPO examples and R1-style RL on
verifiable answers.

Dataflow: generate -> {reward, old log-probs, ref log-probs}; the group advantages need
only the rewards; actor.update reads advantages and both log-probs (the KL loss).
"""

from __future__ import annotations

from planner.workload import Workload

from algos import stages as S
from algos.dataflow import Algorithm, Dataflow


def build(w: Workload, reward_model: bool) -> Dataflow:
    S.require_no_oversample(w, "grpo")
    scorer = S.reward(reward_model)
    return Dataflow.from_stages("grpo", [S.ACTOR, S.ROLLOUT, S.REF, *scorer.roles], [
        (S.generate(w), {}),
        (scorer.stage(w), {"rollout.generate": "responses"}),
        (S.forward(w, "actor.log_prob", "actor"), {"rollout.generate": "responses"}),
        (S.forward(w, "ref.log_prob", "ref"), {"rollout.generate": "responses"}),
        (S.compute(w, "advantages"), {scorer.name: "scores"}),
        (S.update(w, "actor"), {"advantages": "advantages", "actor.log_prob": "old_log_probs",
                                "ref.log_prob": "ref_log_probs"}),
    ])


ALGORITHM = Algorithm(
    name="grpo",
    summary="group-normalised rewards as advantages, no critic; KL to the reference as a loss",
    advantage="grpo",
    source="Shao et al. 2024 (DeepSeekMath)",
    build=build,
    default_reward_model=False,
)
