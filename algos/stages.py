"""The roles and stages algorithms are built from, named as in verl's driver and in traces.

verl's ``RayPPOTrainer.fit`` runs, per iteration: ``generate_sequences`` on the rollout,
reward (a reward model's ``compute_rm_score`` or a reward function on the driver),
``compute_log_prob`` on the actor (old log-probs) and on the reference, ``compute_values``
on the critic, ``compute_advantage`` on the driver, then ``update_critic`` and
``update_actor``. Each function here makes one of those stages from a :class:`Workload`.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.errors import require
from planner.workload import Workload

from algos.dataflow import Dataflow, RoleSpec, Stage, StageKind

# ---- roles ---------------------------------------------------------------------------------
ACTOR = RoleSpec("actor", model_of="actor", trainable=True, head="lm")
ROLLOUT = RoleSpec("rollout", model_of="actor", trainable=False, head="lm", weights_from="actor")
"""The actor's inference copy (vLLM); its weights are synced from the actor after each update."""
REF = RoleSpec("ref", model_of="ref", trainable=False, head="lm")
CRITIC = RoleSpec("critic", model_of="critic", trainable=True, head="value")
REWARD = RoleSpec("reward", model_of="reward", trainable=False, head="value")
COST = RoleSpec("cost", model_of="cost", trainable=False, head="value")
COST_CRITIC = RoleSpec("cost_critic", model_of="cost", trainable=True, head="value")
"""Safe RLHF initialises the cost critic from the cost model (Dai et al. 2023), so it has its architecture."""


# ---- stages --------------------------------------------------------------------------------
def generate(w: Workload, num_seqs: int | None = None) -> Stage:
    """``rollout.generate``: sample ``samples_per_prompt`` responses per prompt."""
    return Stage("rollout.generate", "rollout", StageKind.GENERATE, num_seqs or w.num_samples,
                 w.prompt_len, w.response)


def generate_greedy(w: Workload) -> Stage:
    """``rollout.generate_greedy``: one temperature-0 response per prompt (verl ``do_sample=False``).

    The greedy responses are assumed to follow the sampled responses' length distribution.
    """
    return Stage("rollout.generate_greedy", "rollout", StageKind.GENERATE, w.prompts, w.prompt_len,
                 w.response, greedy=True)


def forward(w: Workload, name: str, role: str, num_seqs: int | None = None) -> Stage:
    """A forward-only pass over prompt+response: ``actor.log_prob``, ``ref.log_prob``, ``critic.values``, ``reward.score``."""
    return Stage(name, role, StageKind.FORWARD, num_seqs or w.num_samples, w.prompt_len, w.response)


def rule_reward(w: Workload, name: str = "reward.rule", num_seqs: int | None = None) -> Stage:
    """A reward function on the driver (verl's ``reward_fn``: math answer check, code tests)."""
    return Stage(name, None, StageKind.RULE_REWARD, num_seqs or w.num_samples, w.prompt_len, w.response)


def compute(w: Workload, name: str, num_seqs: int | None = None) -> Stage:
    """Driver-side arithmetic over the batch: ``advantages``, ``filter``."""
    return Stage(name, None, StageKind.COMPUTE, num_seqs or w.num_samples, w.prompt_len, w.response)


def update(w: Workload, role: str) -> Stage:
    """``<role>.update``: ``ppo_epochs`` passes of ``mini_batches`` optimizer steps each."""
    return Stage(f"{role}.update", role, StageKind.TRAIN, w.num_samples, w.prompt_len, w.response,
                 epochs=w.ppo_epochs, mini_batches=w.mini_batches)


@dataclass(frozen=True)
class Reward:
    """How an algorithm scores responses: a reward model role or a rule on the driver."""

    roles: tuple[RoleSpec, ...]
    name: str
    """The scoring stage's name (``reward.score`` or ``reward.rule``)."""

    def stage(self, w: Workload, num_seqs: int | None = None, suffix: str = "") -> Stage:
        if self.roles:
            return forward(w, self.name + suffix, "reward", num_seqs)
        return rule_reward(w, self.name + suffix, num_seqs)


def reward(reward_model: bool) -> Reward:
    """``reward.score`` on a reward-model role, or ``reward.rule`` on the driver."""
    return Reward((REWARD,), "reward.score") if reward_model else Reward((), "reward.rule")


def require_no_oversample(w: Workload, algo: str) -> None:
    """Only dynamic-sampling algorithms generate more than they train on."""
    require(w.oversample == 1, f"oversample={w.oversample:g} needs dynamic sampling, which {algo} does not do: "
                               f"drop --oversample or use --algo dapo")


def kl_in_reward_flow(algo: str, w: Workload, reward_model: bool) -> Dataflow:
    """The critic-free dataflow with the KL penalty folded into the reward (RLOO,
    REINFORCE++): the advantages need the scores and both log-probs; the update needs the
    advantages and the old log-probs."""
    require_no_oversample(w, algo)
    scorer = reward(reward_model)
    return Dataflow.from_stages(algo, [ACTOR, ROLLOUT, REF, *scorer.roles], [
        (generate(w), {}),
        (scorer.stage(w), {"rollout.generate": "responses"}),
        (forward(w, "actor.log_prob", "actor"), {"rollout.generate": "responses"}),
        (forward(w, "ref.log_prob", "ref"), {"rollout.generate": "responses"}),
        (compute(w, "advantages"), {scorer.name: "scores", "actor.log_prob": "old_log_probs",
                                    "ref.log_prob": "ref_log_probs"}),
        (update(w, "actor"), {"advantages": "advantages", "actor.log_prob": "old_log_probs"}),
    ])
