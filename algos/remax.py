"""ReMax: REINFORCE with the reward of the greedy response as the baseline.

Li et al. 2023 drop the critic and subtract, per prompt, the reward of the greedy
(argmax) response from the reward of the sampled one. verl generates the greedy batch
with ``do_sample=False`` right after the sampled batch and scores it with the same reward
(``RayPPOTrainer.fit``, ``gen_max``); its ReMax scripts put the KL to the reference in
the reward (``use_kl_in_reward=True``). The paper is RLHF with a reward model, hence that
default.

Dataflow: generate and generate_greedy (one response per prompt), each scored; advantages
read both scores and both log-probs; then actor.update.
"""

from __future__ import annotations

from planner.workload import Workload

from algos import stages as S
from algos.dataflow import Algorithm, Dataflow


def build(w: Workload, reward_model: bool) -> Dataflow:
    S.require_no_oversample(w, "remax")
    scorer = S.reward(reward_model)
    return Dataflow.from_stages("remax", [S.ACTOR, S.ROLLOUT, S.REF, *scorer.roles], [
        (S.generate(w), {}),
        (S.generate_greedy(w), {}),
        (scorer.stage(w), {"rollout.generate": "responses"}),
        (scorer.stage(w, num_seqs=w.prompts, suffix="_greedy"), {"rollout.generate_greedy": "greedy_responses"}),
        (S.forward(w, "actor.log_prob", "actor"), {"rollout.generate": "responses"}),
        (S.forward(w, "ref.log_prob", "ref"), {"rollout.generate": "responses"}),
        (S.compute(w, "advantages"), {scorer.name: "scores", f"{scorer.name}_greedy": "baseline_scores",
                                      "actor.log_prob": "old_log_probs", "ref.log_prob": "ref_log_probs"}),
        (S.update(w, "actor"), {"advantages": "advantages", "actor.log_prob": "old_log_probs"}),
    ])


ALGORITHM = Algorithm(
    name="remax",
    summary="REINFORCE with the greedy response's reward as baseline, no critic",
    advantage="remax",
    source="Li et al. 2023 (ReMax)",
    build=build,
    default_reward_model=True,
)
