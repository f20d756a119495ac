"""Which numerics each algorithm runs: advantage estimator, KL placement, clipping, loss mode.

One :class:`AlgoNumerics` per algorithm of :mod:`algos.registry`, keyed by the same name;
its ``advantage`` agrees with the ``Algorithm.advantage`` that algorithm declares. The
controller calls :func:`shape_rewards` and :func:`compute_advantages` on the driver, the
actor's trainer :func:`actor_loss`, the critic's trainer
:func:`algos.numerics.clipped_value_loss`.

Defaults not fixed by a paper are verl's (``trainer/config/ppo_trainer.yaml``):
``algorithm.kl_ctrl.kl_coef`` and ``actor.kl_loss_coef`` 0.001, ``clip_ratio`` 0.2,
``gamma`` = ``lam`` = 1.0, ``entropy_coeff`` 0. Imports torch: not for the planning path.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import Hashable, Sequence

import torch

from algos import numerics as N
from algos.numerics import Advantages, KLEstimator, LossAgg
from planner.errors import PlanError, require

Tensor = torch.Tensor


class AdvantageEstimator(str, Enum):
    """Named as verl's ``adv_estimator`` and as ``Algorithm.advantage`` in algos/."""

    GAE = "gae"
    GRPO = "grpo"
    RLOO = "rloo"
    REMAX = "remax"
    REINFORCE_PP = "reinforce_pp"


class KLPlacement(str, Enum):
    REWARD = "reward"
    """A per-token penalty subtracted from the rewards before the advantages (verl ``use_kl_in_reward``)."""
    LOSS = "loss"
    """A term of the actor's loss (verl ``use_kl_loss``)."""
    NONE = "none"
    """No KL and no reference model (DAPO)."""


@dataclass(frozen=True)
class AlgoNumerics:
    """The numeric choices of one algorithm; :meth:`with_options` changes some of them."""

    algo: str
    advantage: AdvantageEstimator
    kl_placement: KLPlacement
    kl_estimator: KLEstimator = KLEstimator.K1
    kl_coef: float = 0.001
    clip_low: float = 0.2
    clip_high: float | None = None
    """None: the same as ``clip_low``."""
    dual_clip: float | None = None
    loss_agg: LossAgg = LossAgg.TOKEN_MEAN
    entropy_coef: float = 0.0
    gamma: float = 1.0
    lam: float = 1.0
    norm_adv_by_std: bool = True
    """GRPO: divide by the group's std (False: Dr. GRPO's mean-only baseline)."""
    filter_groups: bool = False
    """DAPO: drop prompt groups whose rewards are all equal (:func:`algos.numerics.informative_groups`)."""
    cost_critic: bool = False
    """Safe RLHF: a cost critic with its own GAE, mixed by :func:`algos.numerics.lagrangian_advantages`."""
    source: str = ""

    def __post_init__(self) -> None:
        where = f"{self.algo} numerics"
        require(self.kl_coef >= 0, f"{where}: KL coefficient {self.kl_coef} is negative: use 0 or more")
        require(0 < self.clip_low < 1, f"{where}: clip ratio {self.clip_low} must be in (0, 1): 0.2 is usual")
        require(self.clip_high is None or self.clip_high > 0,
                f"{where}: upper clip ratio {self.clip_high} must be positive: DAPO uses 0.28")
        require(0 <= self.gamma <= 1 and 0 <= self.lam <= 1,
                f"{where}: gamma {self.gamma} and lambda {self.lam} must be in [0, 1]: 1.0 is usual for LLMs")
        require(self.entropy_coef >= 0, f"{where}: entropy coefficient {self.entropy_coef} is negative: use 0 or more")
        require(self.dual_clip is None or self.dual_clip > 1,
                f"{where}: dual-clip constant {self.dual_clip} must be above 1: 3.0 is usual")

    @property
    def uses_critic(self) -> bool:
        return self.advantage is AdvantageEstimator.GAE

    @property
    def uses_reference(self) -> bool:
        return self.kl_placement is not KLPlacement.NONE

    def with_options(self, **changes) -> "AlgoNumerics":
        """A copy with some fields changed (a user's ``--kl-coef`` and the like), checked again."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        require(not unknown, f"unknown numerics option(s) {', '.join(unknown)}: "
                             f"use {', '.join(f.name for f in dataclasses.fields(self) if f.name != 'algo')}")
        for name, enum in (("advantage", AdvantageEstimator), ("kl_placement", KLPlacement),
                           ("kl_estimator", KLEstimator), ("loss_agg", LossAgg)):
            if name in changes:
                changes[name] = _parse(enum, changes[name], name)
        return dataclasses.replace(self, **changes)


def _parse(enum: type[Enum], value, what: str) -> Enum:
    try:
        return enum(value)
    except ValueError:
        raise PlanError(f"unknown {what} {value!r}: use one of {', '.join(e.value for e in enum)}") from None


NUMERICS: dict[str, AlgoNumerics] = {}


def _register(numerics: AlgoNumerics) -> None:
    if numerics.algo in NUMERICS:
        raise ValueError(f"numerics for {numerics.algo!r} registered twice")
    NUMERICS[numerics.algo] = numerics


_register(AlgoNumerics("ppo", AdvantageEstimator.GAE, KLPlacement.REWARD,
                       source="Ouyang et al. 2022 (KL in the reward), Schulman et al. 2016/2017 (GAE, PPO)"))
_register(AlgoNumerics("grpo", AdvantageEstimator.GRPO, KLPlacement.LOSS, kl_estimator=KLEstimator.K3,
                       loss_agg=LossAgg.SEQ_MEAN_TOKEN_MEAN,
                       source="Shao et al. 2024: k3 KL as a loss (eq. 4), per-response token mean (eq. 3)"))
_register(AlgoNumerics("rloo", AdvantageEstimator.RLOO, KLPlacement.REWARD,
                       source="Ahmadian et al. 2024: leave-one-out baseline, KL in the reward"))
_register(AlgoNumerics("remax", AdvantageEstimator.REMAX, KLPlacement.REWARD,
                       source="Li et al. 2023: greedy baseline; verl's ReMax scripts put the KL in the reward"))
_register(AlgoNumerics("reinforce_pp", AdvantageEstimator.REINFORCE_PP, KLPlacement.REWARD,
                       source="Hu 2025: token-level KL in the reward, batch-whitened returns"))
_register(AlgoNumerics("dapo", AdvantageEstimator.GRPO, KLPlacement.NONE, clip_high=0.28, filter_groups=True,
                       source="Yu et al. 2025: no KL, clip-higher 0.2/0.28, token-level loss, dynamic sampling"))
_register(AlgoNumerics("safe_rlhf", AdvantageEstimator.GAE, KLPlacement.REWARD, cost_critic=True,
                       source="Dai et al. 2023: PPO-Lagrangian with reward and cost critics, KL in the reward"))


def numerics_for(algo: str) -> AlgoNumerics:
    """The registered numerics of ``algo`` (a name from :data:`algos.ALGORITHMS`)."""
    if algo not in NUMERICS:
        raise PlanError(f"no numerics for algorithm {algo!r}: use one of {', '.join(NUMERICS)}")
    return NUMERICS[algo]


# ---- the driver's side: rewards and advantages ---------------------------------------------
def shape_rewards(numerics: AlgoNumerics, token_rewards: Tensor, mask: Tensor, log_probs: Tensor | None = None,
                  ref_log_probs: Tensor | None = None, kl_coef: float | None = None) -> tuple[Tensor, Tensor]:
    """Rewards ``(B, T)`` the advantages are computed from, and the per-token KL ``(B, T)``.

    With the KL in the reward, ``r_t - coef * kl_t`` (``coef`` from a :class:`KLController`
    when given, else the numerics' own); otherwise the rewards unchanged and a zero KL.
    """
    if numerics.kl_placement is not KLPlacement.REWARD:
        return token_rewards, torch.zeros_like(token_rewards)
    if log_probs is None or ref_log_probs is None:
        raise ValueError(f"{numerics.algo}: the KL in the reward needs the old and the reference log-probs")
    coef = numerics.kl_coef if kl_coef is None else kl_coef
    return N.kl_in_reward(token_rewards, log_probs, ref_log_probs, mask, coef, numerics.kl_estimator)


def compute_advantages(numerics: AlgoNumerics, token_rewards: Tensor, mask: Tensor, *,
                       group_ids: Sequence[Hashable] | Tensor | None = None, values: Tensor | None = None,
                       baseline_scores: Tensor | None = None) -> Advantages:
    """The algorithm's advantages and returns, both ``(B, T)``, from shaped rewards ``(B, T)``.

    Needs ``values`` ``(B, T)`` for gae, ``group_ids`` (one per sequence: the prompt it
    answers) for grpo and rloo, ``baseline_scores`` ``(B,)`` (the greedy responses') for
    remax. The outcome estimators (grpo, rloo) score a sequence by the sum of its token
    rewards; critic-free estimators return their advantages as returns, as verl does.
    """
    kind = numerics.advantage
    required = {AdvantageEstimator.GAE: ("values", values), AdvantageEstimator.GRPO: ("group_ids", group_ids),
                AdvantageEstimator.RLOO: ("group_ids", group_ids),
                AdvantageEstimator.REMAX: ("baseline_scores", baseline_scores)}.get(kind)
    if required is not None and required[1] is None:
        raise ValueError(f"{numerics.algo}: {kind.value} advantages need {required[0]}")
    if kind is AdvantageEstimator.GAE:
        return N.gae_advantages(token_rewards, values, mask, numerics.gamma, numerics.lam)
    if kind is AdvantageEstimator.REMAX:
        return N.remax_advantages(token_rewards, baseline_scores, mask)
    if kind is AdvantageEstimator.REINFORCE_PP:
        return N.reinforce_pp_advantages(token_rewards, mask, numerics.gamma)
    scores = N.masked_sum(token_rewards, mask, dim=-1)
    if kind is AdvantageEstimator.GRPO:
        advantages = N.grpo_advantages(scores, group_ids, mask, numerics.norm_adv_by_std)
    else:
        advantages = N.rloo_advantages(scores, group_ids, mask)
    return Advantages(advantages, advantages)


# ---- the actor's side: its loss -------------------------------------------------------------
@dataclass(frozen=True)
class ActorLoss:
    loss: Tensor
    """What the trainer calls ``backward()`` on."""
    metrics: dict[str, float]
    """``actor/pg_loss``, ``actor/clipfrac``, ``actor/approx_kl``, ``actor/kl_loss``, ``actor/entropy``, ..."""


def actor_loss(numerics: AlgoNumerics, log_probs: Tensor, old_log_probs: Tensor, advantages: Tensor, mask: Tensor,
               *, ref_log_probs: Tensor | None = None, entropy: Tensor | None = None,
               kl_coef: float | None = None, **agg_kwargs) -> ActorLoss:
    """Clipped policy loss, plus ``kl_coef * KL`` when the KL is a loss term, minus
    ``entropy_coef * entropy`` when that coefficient is set; all aggregated by the
    numerics' ``loss_agg`` (``agg_kwargs``: ``normalizer`` / ``horizon`` for micro-batches).
    ``entropy`` ``(B, T)`` comes from :func:`algos.numerics.entropy_from_logits`."""
    agg = numerics.loss_agg
    policy = N.clipped_policy_loss(log_probs, old_log_probs, advantages, mask, numerics.clip_low,
                                   numerics.clip_high, numerics.dual_clip, agg, **agg_kwargs)
    loss = policy.pg_loss
    metrics = {"actor/pg_loss": policy.pg_loss.item(), "actor/clipfrac": policy.clipfrac.item(),
               "actor/approx_kl": policy.approx_kl.item(), "actor/dual_clipfrac": policy.dual_clipfrac.item()}
    if numerics.kl_placement is KLPlacement.LOSS:
        if ref_log_probs is None:
            raise ValueError(f"{numerics.algo}: the KL loss needs the reference log-probs")
        kl = N.kl_loss(log_probs, ref_log_probs, mask, numerics.kl_estimator, agg, **agg_kwargs)
        loss = loss + (numerics.kl_coef if kl_coef is None else kl_coef) * kl
        metrics["actor/kl_loss"] = kl.item()
    if entropy is not None:
        mean_entropy = N.aggregate_loss(entropy, mask, agg, **agg_kwargs)
        loss = loss - numerics.entropy_coef * mean_entropy
        metrics["actor/entropy"] = mean_entropy.item()
    return ActorLoss(loss, metrics)
