"""PPO for RLHF: actor, rollout, reference, critic and reward model; GAE advantages.

Ouyang et al. 2022 (InstructGPT) train the policy with PPO (Schulman et al. 2017) against a
reward model, with a per-token KL penalty to the reference policy folded into the reward;
advantages are GAE (Schulman et al. 2016) over the critic's values. verl runs this as
``adv_estimator=gae`` with ``use_kl_in_reward=True``.

Dataflow: generate -> {reward, old log-probs, ref log-probs, values} -> advantages ->
{actor.update, critic.update}; the two updates are independent of each other.
"""

from __future__ import annotations

from planner.workload import Workload

from algos import stages as S
from algos.dataflow import Algorithm, Dataflow


def build(w: Workload, reward_model: bool) -> Dataflow:
    S.require_no_oversample(w, "ppo")
    scorer = S.reward(reward_model)
    return Dataflow.from_stages("ppo", [S.ACTOR, S.ROLLOUT, S.REF, S.CRITIC, *scorer.roles], [
        (S.generate(w), {}),
        (scorer.stage(w), {"rollout.generate": "responses"}),
        (S.forward(w, "actor.log_prob", "actor"), {"rollout.generate": "responses"}),
        (S.forward(w, "ref.log_prob", "ref"), {"rollout.generate": "responses"}),
        (S.forward(w, "critic.values", "critic"), {"rollout.generate": "responses"}),
        # The KL penalty enters the reward, so GAE reads both log-probs.
        (S.compute(w, "advantages"), {scorer.name: "scores", "actor.log_prob": "old_log_probs",
                                      "ref.log_prob": "ref_log_probs", "critic.values": "values"}),
        (S.update(w, "critic"), {"advantages": "returns", "critic.values": "values"}),
        (S.update(w, "actor"), {"advantages": "advantages", "actor.log_prob": "old_log_probs"}),
    ])


ALGORITHM = Algorithm(
    name="ppo",
    summary="PPO with a learned critic and GAE; KL to the reference in the reward",
    advantage="gae",
    source="Ouyang et al. 2022 (InstructGPT); Schulman et al. 2017 (PPO)",
    build=build,
    default_reward_model=True,
)
