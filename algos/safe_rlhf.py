"""Safe RLHF: PPO with a second, cost objective under a Lagrangian constraint.

Dai et al. 2023 train a reward model (helpfulness) and a cost model (harmlessness), and
run PPO with two critics: the reward critic and a cost critic initialised from the cost
model. Each gets its own GAE advantages; the actor maximises reward advantage minus
lambda times cost advantage, and lambda is updated on the driver. KL to the reference is
a reward penalty, as in PPO-RLHF.

Dataflow: ppo's, plus cost.score and cost_critic.values before the advantages and
cost_critic.update after them; the three updates are independent of each other.
"""

from __future__ import annotations

from planner.workload import Workload

from algos import stages as S
from algos.dataflow import Algorithm, Dataflow


def build(w: Workload, reward_model: bool) -> Dataflow:
    S.require_no_oversample(w, "safe_rlhf")
    scorer = S.reward(reward_model)
    roles = [S.ACTOR, S.ROLLOUT, S.REF, S.CRITIC, S.COST_CRITIC, *scorer.roles, S.COST]
    return Dataflow.from_stages("safe_rlhf", roles, [
        (S.generate(w), {}),
        (scorer.stage(w), {"rollout.generate": "responses"}),
        (S.forward(w, "cost.score", "cost"), {"rollout.generate": "responses"}),
        (S.forward(w, "actor.log_prob", "actor"), {"rollout.generate": "responses"}),
        (S.forward(w, "ref.log_prob", "ref"), {"rollout.generate": "responses"}),
        (S.forward(w, "critic.values", "critic"), {"rollout.generate": "responses"}),
        (S.forward(w, "cost_critic.values", "cost_critic"), {"rollout.generate": "responses"}),
        (S.compute(w, "advantages"), {scorer.name: "scores", "cost.score": "costs",
                                      "actor.log_prob": "old_log_probs", "ref.log_prob": "ref_log_probs",
                                      "critic.values": "values", "cost_critic.values": "cost_values"}),
        (S.update(w, "critic"), {"advantages": "returns", "critic.values": "values"}),
        (S.update(w, "cost_critic"), {"advantages": "cost_returns", "cost_critic.values": "cost_values"}),
        (S.update(w, "actor"), {"advantages": "advantages", "actor.log_prob": "old_log_probs"}),
    ])


ALGORITHM = Algorithm(
    name="safe_rlhf",
    summary="PPO with a cost model and cost critic; Lagrangian trade-off of reward and cost",
    advantage="gae",
    source="Dai et al. 2023 (Safe RLHF)",
    build=build,
    default_reward_model=True,
)
