"""The RL numeric core: advantages, policy and value losses, KL penalties, entropy.

Pure torch functions over padded batches, in the manner of verl's ``core_algos`` (written
anew here). Shapes: ``B`` sequences, ``T`` response tokens, ``V`` vocabulary. Every
per-token tensor comes with a ``mask`` of shape ``(B, T)``, 1 on response tokens and 0 on
padding, and nothing outside the mask changes a result. The per-algorithm choices (which
estimator, where the KL goes) live in :mod:`algos.numerics_registry`, which also
combines these pieces into the actor's loss.

The planning path must not import torch: nothing in ``algos/__init__.py`` or
``algos/registry.py`` imports this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Hashable, Iterator, NamedTuple, Sequence

import torch

from planner.errors import PlanError

Tensor = torch.Tensor


# ---- masked reductions ---------------------------------------------------------------------
def apply_mask(values: Tensor, mask: Tensor) -> Tensor:
    """``values * mask``, but exactly 0 outside the mask even where ``values`` is inf or NaN.

    A plain product turns an ``inf`` on a padding position (a ``-inf`` log-prob, an overflowed
    ratio) into NaN, which then poisons every sum it enters.
    """
    return torch.where(mask.bool(), values, torch.zeros((), dtype=values.dtype, device=values.device)) * mask


def masked_sum(values: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Sum of ``values`` where ``mask`` is 1; over all elements, or along ``dim``."""
    masked = apply_mask(values, mask)
    return masked.sum() if dim is None else masked.sum(dim)


def masked_mean(values: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of ``values`` where ``mask`` is 1; 0 (not NaN) where the mask is empty."""
    count = mask.sum() if dim is None else mask.sum(dim)
    return masked_sum(values, mask, dim) / count.clamp(min=1)


def masked_whiten(values: Tensor, mask: Tensor, shift_mean: bool = True, eps: float = 1e-8) -> Tensor:
    """``(values - mean) / std`` over the masked elements, 0 outside the mask.

    The variance is the unbiased one (n - 1), as verl's ``masked_whiten``; with
    ``shift_mean=False`` the mean is added back (only the scale changes).
    """
    mean = masked_mean(values, mask)
    count = mask.sum()
    var = masked_sum((values - mean) ** 2, mask) / (count - 1).clamp(min=1)
    whitened = (values - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        whitened = whitened + mean
    return apply_mask(whitened, mask)


class LossAgg(str, Enum):
    """How a ``(B, T)`` matrix of per-token losses becomes one number (verl's ``loss_agg_mode``)."""

    TOKEN_MEAN = "token-mean"
    """Every token weighs the same: long responses count more (DAPO, Yu et al. 2025, §3.3)."""
    SEQ_MEAN_TOKEN_MEAN = "seq-mean-token-mean"
    """Mean over each response, then over responses (GRPO as written in DeepSeekMath, eq. 3)."""
    SEQ_MEAN_TOKEN_SUM = "seq-mean-token-sum"
    """Sum over each response, then mean over responses."""
    SEQ_MEAN_TOKEN_SUM_NORM = "seq-mean-token-sum-norm"
    """Sum over each response divided by a constant horizon, then mean over responses
    (Dr. GRPO, Liu et al. 2025: no length bias in either direction)."""


def aggregate_loss(loss_mat: Tensor, mask: Tensor, mode: LossAgg | str = LossAgg.TOKEN_MEAN, *,
                   normalizer: float | Tensor | None = None, horizon: int | None = None) -> Tensor:
    """Reduce per-token losses ``(B, T)`` to a scalar.

    ``normalizer`` replaces this batch's own count (tokens for ``token-mean``, non-empty
    responses for the ``seq-mean-*`` modes): a trainer that splits a mini-batch into
    micro-batches passes the mini-batch's count, so the micro-batch losses add up to the
    mini-batch's loss. ``horizon`` is the constant of ``seq-mean-token-sum-norm``
    (default ``T``, the padded response length).
    """
    mode = LossAgg(mode)
    if mode is LossAgg.TOKEN_MEAN:
        denominator = mask.sum().clamp(min=1) if normalizer is None else normalizer
        return masked_sum(loss_mat, mask) / denominator
    if mode is LossAgg.SEQ_MEAN_TOKEN_MEAN:
        per_seq = masked_mean(loss_mat, mask, dim=-1)
    elif mode is LossAgg.SEQ_MEAN_TOKEN_SUM:
        per_seq = masked_sum(loss_mat, mask, dim=-1)
    else:
        per_seq = masked_sum(loss_mat, mask, dim=-1) / (horizon or loss_mat.shape[-1])
    seqs = (mask.sum(-1) > 0).sum().clamp(min=1) if normalizer is None else normalizer
    return per_seq.sum() / seqs


# ---- KL to the reference policy ------------------------------------------------------------
class KLEstimator(str, Enum):
    """Per-token estimators of KL(pi || pi_ref) from samples of pi (Schulman 2020,
    "Approximating KL Divergence"), with ``r = pi_ref / pi`` at the sampled token."""

    K1 = "k1"
    """``-log r``: unbiased, high variance, can be negative."""
    K2 = "k2"
    """``(log r)^2 / 2``: biased, low variance, never negative."""
    K3 = "k3"
    """``(r - 1) - log r``: unbiased, low variance, never negative (DeepSeekMath's KL term)."""


_MAX_LOG_RATIO = 20.0
"""|log r| is clamped here before ``exp`` so one wild token cannot give inf (verl clamps at 20 too)."""


def kl_penalty(log_probs: Tensor, ref_log_probs: Tensor, estimator: KLEstimator | str = KLEstimator.K1) -> Tensor:
    """Per-token KL estimate ``(B, T)`` from the policy's and the reference's log-probs of the sampled tokens."""
    estimator = KLEstimator(estimator)
    log_r = ref_log_probs - log_probs
    if estimator is KLEstimator.K1:
        return -log_r
    if estimator is KLEstimator.K2:
        return 0.5 * log_r.square()
    log_r = log_r.clamp(-_MAX_LOG_RATIO, _MAX_LOG_RATIO)
    return torch.expm1(log_r) - log_r


def kl_in_reward(token_rewards: Tensor, log_probs: Tensor, ref_log_probs: Tensor, mask: Tensor, coef: float,
                 estimator: KLEstimator | str = KLEstimator.K1) -> tuple[Tensor, Tensor]:
    """Fold the KL penalty into the rewards: ``r_t - coef * kl_t`` on every response token
    (InstructGPT, Ouyang et al. 2022, eq. 2). Returns ``(rewards (B, T), kl (B, T))``; the
    KL is masked and carries no gradient (rewards are data)."""
    kl = apply_mask(kl_penalty(log_probs, ref_log_probs, estimator).detach(), mask)
    return token_rewards - coef * kl, kl


def kl_loss(log_probs: Tensor, ref_log_probs: Tensor, mask: Tensor, estimator: KLEstimator | str = KLEstimator.K3,
            agg: LossAgg | str = LossAgg.TOKEN_MEAN, **agg_kwargs) -> Tensor:
    """The KL to the reference as a loss term (GRPO, DeepSeekMath eq. 4); differentiable in ``log_probs``."""
    return aggregate_loss(kl_penalty(log_probs, ref_log_probs, estimator), mask, agg, **agg_kwargs)


@dataclass
class KLController:
    """The KL coefficient: fixed, or adaptive towards a target KL (Ziegler et al. 2019, §2.2).

    Adaptive: ``coef *= 1 + clip(kl / target - 1, -0.2, 0.2) * steps / horizon`` after each
    iteration, so the coefficient grows while the policy drifts too far and shrinks otherwise.
    """

    coef: float
    target: float | None = None
    """None keeps ``coef`` fixed."""
    horizon: int = 10_000

    def update(self, kl: float, steps: int) -> float:
        """Adjust after an iteration with mean per-sequence KL ``kl`` over ``steps`` samples; returns the new coef."""
        if self.target is not None:
            error = min(max(kl / self.target - 1.0, -0.2), 0.2)
            self.coef *= 1.0 + error * steps / self.horizon
        return self.coef

    def state_dict(self) -> dict:
        return {"coef": self.coef, "target": self.target, "horizon": self.horizon}


# ---- rewards on tokens ---------------------------------------------------------------------
def last_token_index(mask: Tensor) -> Tensor:
    """``(B,)`` index of each row's last response token (0 for an empty row)."""
    positions = torch.arange(mask.shape[-1], device=mask.device).expand_as(mask)
    return torch.where(mask.bool(), positions, torch.zeros_like(positions)).amax(-1)


def scores_to_token_rewards(scores: Tensor, mask: Tensor) -> Tensor:
    """Place each sequence's score ``(B,)`` on its last response token: ``(B, T)``, 0 elsewhere."""
    rewards = torch.zeros(mask.shape, dtype=scores.dtype, device=scores.device)
    rewards.scatter_(-1, last_token_index(mask).unsqueeze(-1), scores.unsqueeze(-1))
    return rewards * mask


def last_token_values(values: Tensor, mask: Tensor) -> Tensor:
    """A value head's output at each sequence's last response token, ``(B, T) -> (B,)``:
    how a reward model (or a cost model) turns its per-token head into one score."""
    return values.gather(-1, last_token_index(mask).unsqueeze(-1)).squeeze(-1)


# ---- advantage estimators ------------------------------------------------------------------
class Advantages(NamedTuple):
    """Per-token advantages for the policy loss and returns for a critic, both ``(B, T)``."""

    advantages: Tensor
    returns: Tensor


def gae_advantages(token_rewards: Tensor, values: Tensor, mask: Tensor, gamma: float = 1.0, lam: float = 1.0,
                   whiten: bool = True) -> Advantages:
    """Generalized Advantage Estimation (Schulman et al. 2016) over the response tokens.

    ``delta_t = r_t + gamma * V_{t+1} - V_t`` and ``A_t = delta_t + gamma * lam * A_{t+1}``,
    where ``t+1`` is the next *masked-in* token (padding is skipped; after the last token
    ``V = 0``). ``returns = A + V`` (before whitening) are the critic's targets; with
    ``whiten`` the advantages are whitened over the batch (as verl does for PPO).
    """
    next_value = torch.zeros_like(values[:, 0])
    next_adv = torch.zeros_like(values[:, 0])
    advantages = torch.zeros_like(values)
    for t in reversed(range(values.shape[-1])):
        on = mask[:, t]
        delta = token_rewards[:, t] + gamma * next_value - values[:, t]
        adv_t = delta + gamma * lam * next_adv
        advantages[:, t] = apply_mask(adv_t, on)
        next_adv = torch.where(on.bool(), adv_t, next_adv)
        next_value = torch.where(on.bool(), values[:, t], next_value)
    returns = apply_mask(advantages + values, mask)
    if whiten:
        advantages = masked_whiten(advantages, mask)
    return Advantages(advantages.detach(), returns.detach())


def group_index(group_ids: Sequence[Hashable] | Tensor) -> Tensor:
    """Map group ids (one per sequence: the prompt it answers) to ``0..G-1``, ``(B,) long``."""
    if isinstance(group_ids, torch.Tensor):
        return torch.unique(group_ids, return_inverse=True)[1]
    first_seen: dict[Hashable, int] = {}
    return torch.tensor([first_seen.setdefault(g, len(first_seen)) for g in group_ids], dtype=torch.long)


def _group_stats(scores: Tensor, groups: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-sequence ``(size, mean, unbiased std)`` of its group's scores; std is 0 for a group of one."""
    count = torch.zeros(int(groups.max()) + 1, dtype=scores.dtype, device=scores.device)
    count.index_add_(0, groups, torch.ones_like(scores))
    total = torch.zeros_like(count).index_add_(0, groups, scores)
    mean = (total / count)[groups]
    square_dev = torch.zeros_like(count).index_add_(0, groups, (scores - mean) ** 2)
    std = (square_dev / (count - 1).clamp(min=1)).sqrt()[groups]
    return count[groups], mean, std


def grpo_advantages(scores: Tensor, group_ids: Sequence[Hashable] | Tensor, mask: Tensor,
                    norm_by_std: bool = True, eps: float = 1e-6) -> Tensor:
    """Group-relative advantages (Shao et al. 2024, §4.1.2): ``(r - mean_g) / (std_g + eps)``
    on every token of the response, ``(B,) -> (B, T)``.

    A group whose scores are all equal gets advantage 0 (no NaN). ``norm_by_std=False`` keeps
    only the mean baseline (Dr. GRPO, Liu et al. 2025). A group of one sample has no baseline:
    its advantage is its score, as in verl (mean 0, std 1).
    """
    size, mean, std = _group_stats(scores, group_index(group_ids).to(scores.device))
    alone = size < 2
    centred = scores - torch.where(alone, torch.zeros_like(mean), mean)
    if norm_by_std:
        centred = centred / torch.where(alone, torch.ones_like(std), std + eps)
    return (centred.unsqueeze(-1) * mask).detach()


def rloo_advantages(scores: Tensor, group_ids: Sequence[Hashable] | Tensor, mask: Tensor) -> Tensor:
    """Leave-one-out baseline (Ahmadian et al. 2024, eq. 6): ``r_i - mean of the other k-1``,
    ``(B,) -> (B, T)``. A group of one has no other sample: its advantage is its score."""
    size, mean, _ = _group_stats(scores, group_index(group_ids).to(scores.device))
    others_mean = (mean * size - scores) / (size - 1).clamp(min=1)
    advantage = torch.where(size < 2, scores, scores - others_mean)
    return (advantage.unsqueeze(-1) * mask).detach()


def returns_to_go(token_rewards: Tensor, mask: Tensor, gamma: float = 1.0) -> Tensor:
    """``G_t = sum_{s >= t} gamma^(s-t) r_s`` over the masked-in tokens, ``(B, T)``."""
    returns = torch.zeros_like(token_rewards)
    running = torch.zeros_like(token_rewards[:, 0])
    for t in reversed(range(token_rewards.shape[-1])):
        on = mask[:, t].bool()
        running = torch.where(on, token_rewards[:, t] + gamma * running, running)
        returns[:, t] = torch.where(on, running, torch.zeros_like(running))
    return returns


def remax_advantages(token_rewards: Tensor, baseline_scores: Tensor, mask: Tensor) -> Advantages:
    """ReMax (Li et al. 2023, Alg. 1): return-to-go minus the greedy response's score ``(B,)``."""
    returns = returns_to_go(token_rewards, mask)
    advantages = (returns - baseline_scores.unsqueeze(-1)) * mask
    return Advantages(advantages.detach(), returns.detach())


def reinforce_pp_advantages(token_rewards: Tensor, mask: Tensor, gamma: float = 1.0) -> Advantages:
    """REINFORCE++ (Hu 2025, §3): discounted returns-to-go, whitened over the whole batch
    (global advantage normalisation) instead of a critic or a per-prompt baseline."""
    returns = returns_to_go(token_rewards, mask, gamma)
    return Advantages(masked_whiten(returns, mask).detach(), returns.detach())


def informative_groups(scores: Tensor, group_ids: Sequence[Hashable] | Tensor) -> Tensor:
    """``(B,) bool``: True for sequences whose group's scores are not all equal.

    DAPO's dynamic sampling (Yu et al. 2025, §3.2) keeps only these groups: an all-right or
    all-wrong group has zero group-relative advantage and gives no gradient.
    """
    groups = group_index(group_ids).to(scores.device)
    size = int(groups.max()) + 1
    high = torch.full((size,), -torch.inf, dtype=scores.dtype, device=scores.device).scatter_reduce(
        0, groups, scores, "amax")
    low = torch.full((size,), torch.inf, dtype=scores.dtype, device=scores.device).scatter_reduce(
        0, groups, scores, "amin")
    return (high > low)[groups]


# ---- losses --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicyLoss:
    """The clipped surrogate loss and the statistics people log with it (named as cleanRL/verl)."""

    pg_loss: Tensor
    clipfrac: Tensor
    """Fraction of tokens where the clipped term was the active one."""
    approx_kl: Tensor
    """KL(old || new) estimated with k3 on the sampled tokens: how far this update moved."""
    dual_clipfrac: Tensor
    """Fraction of tokens where dual-clip's lower bound was active (0 without dual-clip)."""


def clipped_policy_loss(log_probs: Tensor, old_log_probs: Tensor, advantages: Tensor, mask: Tensor,
                        clip_low: float = 0.2, clip_high: float | None = None, dual_clip: float | None = None,
                        agg: LossAgg | str = LossAgg.TOKEN_MEAN, **agg_kwargs) -> PolicyLoss:
    """PPO's clipped surrogate (Schulman et al. 2017, eq. 7), per token, aggregated by ``agg``.

    ``ratio = exp(log_probs - old_log_probs)``; per token ``max(-A * ratio, -A * clip(ratio,
    1 - clip_low, 1 + clip_high))``. ``clip_high`` defaults to ``clip_low``; DAPO's
    clip-higher raises it (0.28). ``dual_clip = c > 1`` also bounds the loss of a
    negative-advantage token by ``-A * c`` (Ye et al. 2020), so a huge ratio on a bad token
    cannot dominate.
    """
    clip_high = clip_low if clip_high is None else clip_high
    if dual_clip is not None and dual_clip <= 1.0:
        raise PlanError(f"dual-clip constant {dual_clip} must be above 1: use 3.0 (Ye et al. 2020) or none")
    log_ratio = (log_probs - old_log_probs).clamp(-_MAX_LOG_RATIO, _MAX_LOG_RATIO)
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    loss = torch.maximum(unclipped, clipped)
    clipfrac = masked_mean((clipped > unclipped).float(), mask)
    dual_clipfrac = torch.zeros((), device=loss.device)
    if dual_clip is not None:
        bound = -advantages * dual_clip
        dual_active = (advantages < 0) & (loss > bound)
        loss = torch.where(dual_active, bound, loss)
        dual_clipfrac = masked_mean(dual_active.float(), mask)
    approx_kl = masked_mean((torch.expm1(log_ratio) - log_ratio).detach(), mask)
    return PolicyLoss(aggregate_loss(loss, mask, agg, **agg_kwargs), clipfrac.detach(), approx_kl,
                      dual_clipfrac.detach())


@dataclass(frozen=True)
class ValueLoss:
    vf_loss: Tensor
    vf_clipfrac: Tensor
    """Fraction of tokens where the clipped prediction gave the larger error."""


def clipped_value_loss(values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor,
                       clip_range: float | None = 0.2, agg: LossAgg | str = LossAgg.TOKEN_MEAN,
                       **agg_kwargs) -> ValueLoss:
    """``0.5 * max((V - R)^2, (V_clipped - R)^2)`` with ``V_clipped = V_old + clip(V - V_old,
    -c, c)``: the critic may not move its prediction more than ``c`` per update (the PPO
    value clipping of OpenAI baselines; Engstrom et al. 2020 study it). ``clip_range=None``
    is the plain squared error."""
    error = (values - returns).square()
    if clip_range is None:
        return ValueLoss(aggregate_loss(0.5 * error, mask, agg, **agg_kwargs), torch.zeros((), device=values.device))
    clipped_values = old_values + (values - old_values).clamp(-clip_range, clip_range)
    clipped_error = (clipped_values - returns).square()
    loss = 0.5 * torch.maximum(error, clipped_error)
    return ValueLoss(aggregate_loss(loss, mask, agg, **agg_kwargs),
                     masked_mean((clipped_error > error).float(), mask).detach())


# ---- from logits ---------------------------------------------------------------------------
def log_probs_from_logits(logits: Tensor, tokens: Tensor) -> Tensor:
    """Log-probability of each chosen token: logits ``(B, T, V)``, tokens ``(B, T)`` -> ``(B, T)``."""
    logits = logits.float()
    picked = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy of the softmax over the last axis: ``(..., V) -> (...)``;
    ``H = logsumexp(z) - sum softmax(z) * z``, stable for large logits (absolute error about
    ``max|z| * 1e-7`` in float32). The logits must be finite: this form keeps one ``(..., V)``
    tensor for the backward pass, not the three a ``-inf``-safe one would."""
    logits = logits.float()
    probs = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (probs * logits).sum(-1)


# ---- Safe RLHF -----------------------------------------------------------------------------
def lagrangian_advantages(reward_advantages: Tensor, cost_advantages: Tensor, lagrange: float) -> Tensor:
    """Safe RLHF's actor advantage (Dai et al. 2023, §3.3): maximise reward minus
    ``lambda`` times cost, divided by ``1 + lambda`` so its scale does not grow with lambda."""
    return (reward_advantages - lagrange * cost_advantages) / (1.0 + lagrange)


def update_log_lagrange(log_lagrange: float, mean_cost: float, threshold: float, lr: float) -> float:
    """One gradient-ascent step on ``log lambda`` for ``lambda * (J_C - d)`` (Dai et al. 2023,
    eq. 10): lambda grows while the mean episode cost ``J_C`` exceeds the threshold ``d``,
    and shrinks towards 0 once the constraint holds. Working in log space keeps lambda > 0."""
    lagrange = float(torch.tensor(log_lagrange).exp())
    return log_lagrange + lr * lagrange * (mean_cost - threshold)


@dataclass
class Lagrangian:
    """Safe RLHF's multiplier ``lambda``, kept on the driver across steps.

    Each step's episode costs join a window of the last ``window`` (a moving mean of
    ``J_C``), then ``log lambda`` takes one :func:`update_log_lagrange` step, capped at
    ``log(max_value)``. Defaults are safe-rlhf's ``scripts/ppo-lag.sh``: threshold 0,
    lambda_init 1, lambda_lr 0.1, lambda_max 5, episode_cost_window_size 128.
    """

    threshold: float = 0.0
    lr: float = 0.1
    max_value: float | None = 5.0
    window: int = 128
    log_value: float = 0.0
    """``log lambda``; 0 is lambda_init 1."""
    recent_costs: list[float] = field(default_factory=list)

    @property
    def value(self) -> float:
        return math.exp(self.log_value)

    def update(self, episode_costs: Sequence[float]) -> float:
        """Take one step's episode costs; returns the new ``lambda``."""
        self.recent_costs = (self.recent_costs + [float(c) for c in episode_costs])[-self.window:]
        mean_cost = sum(self.recent_costs) / len(self.recent_costs)
        self.log_value = update_log_lagrange(self.log_value, mean_cost, self.threshold, self.lr)
        if self.max_value is not None:
            self.log_value = min(self.log_value, math.log(self.max_value))
        return self.value

    def state_dict(self) -> dict:
        return {"log_value": self.log_value, "recent_costs": list(self.recent_costs)}

    def load_state_dict(self, state: dict) -> None:
        self.log_value, self.recent_costs = float(state["log_value"]), list(state["recent_costs"])


# ---- mini-batches --------------------------------------------------------------------------
class MiniBatch(NamedTuple):
    epoch: int
    step: int
    """Optimizer step within the epoch, ``0 .. num_mini_batches - 1``."""
    indices: Tensor
    """Rows of the batch in this mini-batch, ``(n,) long``."""


def minibatches(num_items: int, num_mini_batches: int, epochs: int = 1, seed: int = 0) -> Iterator[MiniBatch]:
    """PPO's update loop order: ``epochs`` passes over a batch of ``num_items`` rows, each a fresh
    seeded shuffle split into ``num_mini_batches`` parts (sizes differ by at most one).
    Every row is in exactly one mini-batch per epoch; the same seed gives the same order."""
    if num_mini_batches < 1 or epochs < 1:
        raise PlanError(f"mini-batches ({num_mini_batches}) and epochs ({epochs}) must be at least 1: fix the config")
    if num_mini_batches > num_items:
        raise PlanError(f"{num_mini_batches} mini-batches from a batch of {num_items} responses: "
                        f"use at most {num_items} mini-batches or a larger batch")
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        order = torch.randperm(num_items, generator=generator)
        for step, indices in enumerate(torch.tensor_split(order, num_mini_batches)):
            yield MiniBatch(epoch, step, indices)
