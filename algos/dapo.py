"""DAPO: GRPO without KL, plus dynamic sampling that drops uninformative prompt groups.

Yu et al. 2025 over-sample prompts and filter out the groups whose responses are all
right or all wrong (zero advantage, no gradient), refilling until the batch is full; they
also remove the KL term, so there is no reference model. verl's DAPO recipe generates
``data.gen_batch_size`` prompts for ``data.train_batch_size`` kept ones (its docs use
1536 for 512, i.e. ``--oversample 3``); the old log-probs are computed after filtering,
on the kept batch only. Rewards are rule-based (answer checking).

Dataflow: generate (prompts x samples x oversample) -> reward -> filter -> {old
log-probs, advantages} -> actor.update (prompts x samples).
"""

from __future__ import annotations

from planner.workload import Workload

from algos import stages as S
from algos.dataflow import Algorithm, Dataflow


def build(w: Workload, reward_model: bool) -> Dataflow:
    scorer = S.reward(reward_model)
    generated = w.num_generated
    return Dataflow.from_stages("dapo", [S.ACTOR, S.ROLLOUT, *scorer.roles], [
        (S.generate(w, num_seqs=generated), {}),
        (scorer.stage(w, num_seqs=generated), {"rollout.generate": "responses"}),
        # Keep prompt groups whose rewards are not all equal, up to `prompts` groups.
        (S.compute(w, "filter", num_seqs=generated), {scorer.name: "scores"}),
        (S.forward(w, "actor.log_prob", "actor"), {"filter": "kept_responses"}),
        (S.compute(w, "advantages"), {"filter": "kept_scores"}),
        (S.update(w, "actor"), {"advantages": "advantages", "actor.log_prob": "old_log_probs"}),
    ])


ALGORITHM = Algorithm(
    name="dapo",
    summary="GRPO-style groups without KL or reference; over-sample and keep informative groups",
    advantage="grpo",
    source="Yu et al. 2025 (DAPO)",
    build=build,
    default_reward_model=False,
)
