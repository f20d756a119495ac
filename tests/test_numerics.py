"""The RL numeric core against numbers worked out by hand (in the comments).

Batches are 2-3 sequences of 3-4 tokens; the response mask is 1 on response tokens and 0
on padding. Padding positions hold garbage (large, inf, NaN) that must never show up.
"""

import math

import pytest
import torch

from algos import numerics as N
from algos import numerics_registry as R
from algos.registry import ALGORITHMS
from conftest import one_line_error

T = torch.tensor
close = torch.testing.assert_close


def lp(*probs):
    """Log-probabilities of the sampled tokens, as a float tensor."""
    return torch.log(T(probs, dtype=torch.float64))


# ---- masked reductions and whitening -------------------------------------------------------
def test_masked_mean_ignores_padding_and_is_zero_on_an_empty_mask():
    values = T([[1.0, 2.0, 3.0], [4.0, math.inf, math.nan]])
    mask = T([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    assert N.masked_mean(values, mask).item() == pytest.approx(10 / 4)
    close(N.masked_mean(values, mask, dim=-1), T([2.0, 4.0]))
    assert N.masked_mean(values, torch.zeros_like(mask)).item() == 0.0


def test_masked_whiten_by_hand():
    # [2, 4, 6]: mean 4, unbiased variance (4 + 0 + 4) / 2 = 4, std 2 -> [-1, 0, 1].
    values = T([[2.0, 4.0, 6.0, 100.0]])
    mask = T([[1.0, 1.0, 1.0, 0.0]])
    close(N.masked_whiten(values, mask), T([[-1.0, 0.0, 1.0, 0.0]]), atol=1e-6, rtol=0)
    # shift_mean=False adds the mean back: [3, 4, 5]; padding stays 0.
    close(N.masked_whiten(values, mask, shift_mean=False), T([[3.0, 4.0, 5.0, 0.0]]), atol=1e-6, rtol=0)
    garbage = values.clone()
    garbage[0, 3] = math.nan
    close(N.masked_whiten(garbage, mask), N.masked_whiten(values, mask))


# ---- loss aggregation ----------------------------------------------------------------------
LOSS = T([[1.0, 2.0, 3.0], [4.0, 100.0, -7.0], [9.0, 9.0, 9.0]])
LOSS_MASK = T([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])


@pytest.mark.parametrize("mode, expected", [
    ("token-mean", 10 / 4),                          # (1+2+3+4) / 4 tokens
    ("seq-mean-token-mean", (2 + 4) / 2),            # row means 2 and 4; the empty row is not a sequence
    ("seq-mean-token-sum", (6 + 4) / 2),             # row sums 6 and 4
    ("seq-mean-token-sum-norm", (6 / 3 + 4 / 3) / 2),  # row sums over the horizon T = 3
])
def test_aggregate_loss_modes(mode, expected):
    assert N.aggregate_loss(LOSS, LOSS_MASK, mode).item() == pytest.approx(expected)


def test_token_mean_weighs_tokens_and_seq_mean_weighs_responses():
    # A long response of loss 1 (3 tokens) and a short one of loss 4 (1 token):
    # token-mean (3*1 + 4) / 4 = 1.75, seq-mean (1 + 4) / 2 = 2.5.
    loss = T([[1.0, 1.0, 1.0], [4.0, 0.0, 0.0]])
    mask = T([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    assert N.aggregate_loss(loss, mask, N.LossAgg.TOKEN_MEAN).item() == pytest.approx(1.75)
    assert N.aggregate_loss(loss, mask, N.LossAgg.SEQ_MEAN_TOKEN_MEAN).item() == pytest.approx(2.5)


def test_sum_norm_horizon_and_micro_batch_normalizer():
    # Dr. GRPO's constant horizon 10: (6/10 + 4/10) / 2 = 0.5.
    assert N.aggregate_loss(LOSS, LOSS_MASK, "seq-mean-token-sum-norm", horizon=10).item() == pytest.approx(0.5)
    # Micro-batches of one row, each divided by the whole batch's count, add up to the batch's loss.
    for mode, normalizer in (("token-mean", 4), ("seq-mean-token-mean", 2), ("seq-mean-token-sum", 2)):
        whole = N.aggregate_loss(LOSS[:2], LOSS_MASK[:2], mode)
        parts = sum(N.aggregate_loss(LOSS[i:i + 1], LOSS_MASK[i:i + 1], mode, normalizer=normalizer)
                    for i in range(2))
        assert parts.item() == pytest.approx(whole.item()), mode


def test_unknown_aggregation_mode_raises():
    with pytest.raises(ValueError):
        N.aggregate_loss(LOSS, LOSS_MASK, "token-sum")


# ---- advantage estimators ------------------------------------------------------------------
# One 3-token response with its reward on the last token and values [0.5, 0.6, 0.7].
REWARDS = T([[0.0, 0.0, 1.0]])
VALUES = T([[0.5, 0.6, 0.7]])
FULL = T([[1.0, 1.0, 1.0]])


def test_gae_with_gamma_and_lambda_one_is_return_minus_value():
    # delta_2 = 1 - 0.7 = 0.3;          A_2 = 0.3
    # delta_1 = 0 + 0.7 - 0.6 = 0.1;    A_1 = 0.1 + 0.3 = 0.4
    # delta_0 = 0 + 0.6 - 0.5 = 0.1;    A_0 = 0.1 + 0.4 = 0.5   (= 1 - V_t)
    adv, ret = N.gae_advantages(REWARDS, VALUES, FULL, gamma=1.0, lam=1.0, whiten=False)
    close(adv, T([[0.5, 0.4, 0.3]]))
    close(ret, T([[1.0, 1.0, 1.0]]))


def test_gae_with_discount_by_hand():
    # gamma 0.9, lambda 0.95, gamma*lambda = 0.855.
    # delta_2 = 1 + 0 - 0.7 = 0.3                 A_2 = 0.3
    # delta_1 = 0 + 0.9*0.7 - 0.6 = 0.03          A_1 = 0.03 + 0.855*0.3 = 0.2865
    # delta_0 = 0 + 0.9*0.6 - 0.5 = 0.04          A_0 = 0.04 + 0.855*0.2865 = 0.2849575
    # returns = A + V = [0.7849575, 0.8865, 1.0]
    adv, ret = N.gae_advantages(REWARDS, VALUES, FULL, gamma=0.9, lam=0.95, whiten=False)
    close(adv, T([[0.2849575, 0.2865, 0.3]]))
    close(ret, T([[0.7849575, 0.8865, 1.0]]))


def test_gae_skips_padding_and_ignores_its_contents():
    # Row 1 is [r=0, r=2, pad] with values [1.0, 0.5, pad]: A_1 = 2 - 0.5 = 1.5,
    # A_0 = (0 + 0.5 - 1.0) + 1.5 = 1.0; after the last real token V = 0, whatever the pad holds.
    rewards = T([[0.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    values = T([[0.5, 0.6, 0.7], [1.0, 0.5, 0.0]])
    mask = T([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    adv, ret = N.gae_advantages(rewards, values, mask, whiten=False)
    close(adv, T([[0.5, 0.4, 0.3], [1.0, 1.5, 0.0]]))
    close(ret, T([[1.0, 1.0, 1.0], [2.0, 2.0, 0.0]]))
    dirty_r, dirty_v = rewards.clone(), values.clone()
    dirty_r[1, 2], dirty_v[1, 2] = math.nan, math.inf
    for whiten in (False, True):
        clean = N.gae_advantages(rewards, values, mask, whiten=whiten)
        dirty = N.gae_advantages(dirty_r, dirty_v, mask, whiten=whiten)
        close(dirty.advantages, clean.advantages)
        close(dirty.returns, clean.returns)


def test_gae_bridges_a_hole_in_the_mask():
    # A masked-out token in the middle is skipped: [a, hole, b] equals the response [a, b].
    rewards, values = T([[0.0, 5.0, 1.0]]), T([[0.2, 9.0, 0.7]])
    holed = N.gae_advantages(rewards, values, T([[1.0, 0.0, 1.0]]), gamma=0.9, lam=0.95, whiten=False)
    compact = N.gae_advantages(T([[0.0, 1.0]]), T([[0.2, 0.7]]), T([[1.0, 1.0]]), gamma=0.9, lam=0.95,
                               whiten=False)
    close(holed.advantages[:, [0, 2]], compact.advantages)
    assert holed.advantages[0, 1].item() == 0.0


def test_gae_whitens_advantages_but_not_returns():
    rewards = T([[0.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    values = T([[0.5, 0.6, 0.7], [1.0, 0.5, 0.0]])
    mask = T([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    raw = N.gae_advantages(rewards, values, mask, whiten=False)
    white = N.gae_advantages(rewards, values, mask, whiten=True)
    close(white.advantages, N.masked_whiten(raw.advantages, mask))
    close(white.returns, raw.returns)
    assert N.masked_mean(white.advantages, mask).item() == pytest.approx(0.0, abs=1e-6)


GROUP_MASK = T([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])


def test_grpo_normalises_within_the_group():
    # Scores [1, 0, 0, 0]: mean 0.25, unbiased var (0.75^2 + 3 * 0.25^2) / 3 = 0.25, std 0.5.
    # Advantages 0.75 / 0.5 = 1.5 and -0.25 / 0.5 = -0.5, on every real token of the response.
    adv = N.grpo_advantages(T([1.0, 0.0, 0.0, 0.0]), ["p"] * 4, GROUP_MASK)
    close(adv, T([[1.5, 1.5, 1.5], [-0.5, -0.5, 0.0], [-0.5, 0.0, 0.0], [-0.5, -0.5, -0.5]]),
          atol=1e-5, rtol=0)


def test_grpo_epsilon_is_added_to_the_std():
    # eps 0.5: 0.75 / (0.5 + 0.5) = 0.75, -0.25 / 1.0 = -0.25.
    adv = N.grpo_advantages(T([1.0, 0.0, 0.0, 0.0]), ["p"] * 4, GROUP_MASK, eps=0.5)
    close(adv[:, 0], T([0.75, -0.25, -0.25, -0.25]))


def test_grpo_equal_scores_give_zero_and_groups_are_separate():
    # Group "a" (rows 0, 2) is all correct: advantage 0, not NaN. Group "b": scores 1 and 0,
    # mean 0.5, unbiased std sqrt(0.5) -> +-0.5 / 0.7071 = +-0.7071.
    adv = N.grpo_advantages(T([1.0, 1.0, 1.0, 0.0]), ["a", "b", "a", "b"], GROUP_MASK)
    assert not torch.isnan(adv).any()
    close(adv[:, 0], T([0.0, 0.70710, 0.0, -0.70710]), atol=1e-4, rtol=0)
    # Without the std (Dr. GRPO) only the mean is removed: +-0.5.
    mean_only = N.grpo_advantages(T([1.0, 1.0, 1.0, 0.0]), T([7, 3, 7, 3]), GROUP_MASK, norm_by_std=False)
    close(mean_only[:, 0], T([0.0, 0.5, 0.0, -0.5]))


def test_grpo_group_of_one_keeps_its_score():
    adv = N.grpo_advantages(T([0.8, 1.0, 0.0]), ["solo", "x", "x"], GROUP_MASK[:3])
    assert adv[0, 0].item() == pytest.approx(0.8)


def test_rloo_leave_one_out_baseline():
    # Scores [1, 0, 2] in one group: baselines mean(0, 2) = 1, mean(1, 2) = 1.5, mean(1, 0) = 0.5,
    # advantages 0, -1.5, 1.5. A group of one keeps its score (0.3).
    adv = N.rloo_advantages(T([1.0, 0.0, 2.0, 0.3]), ["g", "g", "g", "alone"], GROUP_MASK)
    close(adv, T([[0.0, 0.0, 0.0], [-1.5, -1.5, 0.0], [1.5, 0.0, 0.0], [0.3, 0.3, 0.3]]))


def test_returns_to_go_and_remax_greedy_baseline():
    # Rewards [-0.1, -0.1, 0.9] (a KL-shaped reward): returns-to-go [0.7, 0.8, 0.9];
    # the greedy response scored 0.5, so the advantages are [0.2, 0.3, 0.4].
    # Row 1 [0, 1, pad], greedy 1.0: returns [1, 1], advantages [0, 0].
    rewards = T([[-0.1, -0.1, 0.9], [0.0, 1.0, 123.0]])
    mask = T([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    adv, ret = N.remax_advantages(rewards, T([0.5, 1.0]), mask)
    close(ret, T([[0.7, 0.8, 0.9], [1.0, 1.0, 0.0]]))
    close(adv, T([[0.2, 0.3, 0.4], [0.0, 0.0, 0.0]]))
    # gamma 0.5 on [0, 0, 1]: [0.25, 0.5, 1].
    close(N.returns_to_go(T([[0.0, 0.0, 1.0]]), FULL, gamma=0.5), T([[0.25, 0.5, 1.0]]))


def test_reinforce_pp_whitens_returns_over_the_batch():
    # Returns [1, 1, 1] and [-1, -1, pad]: mean 1/5 = 0.2; squared deviations 3 * 0.64 + 2 * 1.44 = 4.8,
    # unbiased var 4.8 / 4 = 1.2, std 1.095445 -> 0.8 / std = 0.730297, -1.2 / std = -1.095445.
    rewards = T([[0.0, 0.0, 1.0], [0.0, -1.0, 50.0]])
    mask = T([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    adv, ret = N.reinforce_pp_advantages(rewards, mask)
    close(ret, T([[1.0, 1.0, 1.0], [-1.0, -1.0, 0.0]]))
    close(adv, T([[0.730297, 0.730297, 0.730297], [-1.095445, -1.095445, 0.0]]), atol=1e-5, rtol=0)


def test_scores_land_on_the_last_response_token():
    mask = T([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    rewards = N.scores_to_token_rewards(T([1.0, 2.0, 3.0]), mask)
    close(rewards, T([[0.0, 0.0, 1.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0]]))
    close(N.last_token_values(T([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]]), mask), T([0.3, 0.5, 0.7]))


def test_informative_groups_drop_all_equal_groups():
    keep = N.informative_groups(T([1.0, 1.0, 0.0, 1.0, 0.0, 0.0]), ["a", "a", "b", "b", "c", "c"])
    assert keep.tolist() == [False, False, True, True, False, False]


# ---- KL ------------------------------------------------------------------------------------
def test_kl_estimators_by_hand():
    # pi = 0.5, pi_ref = 0.25: r = 0.5, log r = -ln 2.
    # k1 = ln 2 = 0.693147; k2 = (ln 2)^2 / 2 = 0.240227; k3 = (0.5 - 1) + ln 2 = 0.193147.
    # pi = 0.25, pi_ref = 0.5: r = 2: k1 = -ln 2 (negative), k3 = (2 - 1) - ln 2 = 0.306853.
    policy, ref = lp(0.5, 0.25), lp(0.25, 0.5)
    close(N.kl_penalty(policy, ref, "k1"), T([0.693147, -0.693147], dtype=torch.float64), atol=1e-6, rtol=0)
    close(N.kl_penalty(policy, ref, "k2"), T([0.240227, 0.240227], dtype=torch.float64), atol=1e-6, rtol=0)
    close(N.kl_penalty(policy, ref, "k3"), T([0.193147, 0.306853], dtype=torch.float64), atol=1e-6, rtol=0)
    close(N.kl_penalty(policy, policy, "k3"), torch.zeros(2, dtype=torch.float64))


def test_k1_and_k3_are_unbiased_for_the_true_kl():
    # E_{x~p}[k(x)] computed exactly over a 3-token vocabulary equals KL(p || q).
    p, q = T([0.5, 0.3, 0.2], dtype=torch.float64), T([0.2, 0.5, 0.3], dtype=torch.float64)
    true_kl = (p * (p / q).log()).sum()
    for estimator in ("k1", "k3"):
        expectation = (p * N.kl_penalty(p.log(), q.log(), estimator)).sum()
        assert expectation.item() == pytest.approx(true_kl.item()), estimator


def test_k3_stays_finite_for_a_wild_token():
    kl = N.kl_penalty(T([0.0]), T([-500.0]), "k3")
    assert torch.isfinite(kl).all() and kl.item() > 0


def test_kl_in_reward_subtracts_coef_times_kl_on_real_tokens():
    # k1 per token: log pi - log pi_ref = [ln 2, -ln 2, pad]; coef 0.1.
    rewards = T([[0.0, 1.0, 0.0]], dtype=torch.float64)
    policy = lp(0.5, 0.25, 0.9).unsqueeze(0).requires_grad_()
    ref = torch.log(T([[0.25, 0.5, 1e-30]], dtype=torch.float64))
    mask = T([[1.0, 1.0, 0.0]], dtype=torch.float64)
    shaped, kl = N.kl_in_reward(rewards, policy, ref, mask, coef=0.1)
    close(kl, T([[0.693147, -0.693147, 0.0]], dtype=torch.float64), atol=1e-6, rtol=0)
    close(shaped, T([[-0.0693147, 1.0693147, 0.0]], dtype=torch.float64), atol=1e-6, rtol=0)
    assert not shaped.requires_grad  # rewards are data


def test_kl_loss_is_aggregated_and_differentiable():
    # k3 on [r = 0.5, r = 2, pad]: (0.193147 + 0.306853) / 2 = 0.25 (token-mean).
    policy = lp(0.5, 0.25, 0.9).unsqueeze(0).requires_grad_()
    ref = lp(0.25, 0.5, 0.1).unsqueeze(0)
    mask = T([[1.0, 1.0, 0.0]], dtype=torch.float64)
    loss = N.kl_loss(policy, ref, mask)
    assert loss.item() == pytest.approx(0.25, abs=1e-6)
    loss.backward()
    # d k3 / d log pi = 1 - r: (1 - 0.5) / 2 and (1 - 2) / 2; nothing reaches the padding.
    close(policy.grad, T([[0.25, -0.5, 0.0]], dtype=torch.float64))


def test_kl_controller_fixed_and_adaptive():
    assert N.KLController(0.1).update(kl=5.0, steps=100) == 0.1
    # kl / target - 1 = 1 clipped to 0.2: 0.1 * (1 + 0.2 * 5000 / 10000) = 0.11.
    assert N.KLController(0.1, target=1.0).update(kl=2.0, steps=5000) == pytest.approx(0.11)
    # 1.05 / 1 - 1 = 0.05: 0.1 * (1 + 0.05 * 0.5) = 0.1025; below target the coefficient shrinks.
    assert N.KLController(0.1, target=1.0).update(kl=1.05, steps=5000) == pytest.approx(0.1025)
    assert N.KLController(0.1, target=1.0).update(kl=0.5, steps=5000) < 0.1


# ---- policy loss ---------------------------------------------------------------------------
# Five tokens, clip 0.2 (range [0.8, 1.2]), per-token loss max(-A r, -A clip(r)):
#   a: A=+1 r=1.1 inside         -> -1.1   (unclipped)
#   b: A=+1 r=1.5 above          -> -1.2   (clipped active)
#   c: A=-1 r=0.5 below          -> +0.8   (clipped active)
#   d: A=-1 r=1.5 above          -> +1.5   (unclipped is the pessimistic one)
#   e: A=+1 r=0.5 below          -> -0.5   (unclipped is the pessimistic one)
# Row 0 = [a, b, c], row 1 = [d, e, pad].
RATIOS = T([[1.1, 1.5, 0.5], [1.5, 0.5, 7.0]], dtype=torch.float64)
ADVS = T([[1.0, 1.0, -1.0], [-1.0, 1.0, 3.0]], dtype=torch.float64)
PG_MASK = T([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]], dtype=torch.float64)
OLD = torch.log(T([[0.5, 0.4, 0.6], [0.1, 0.8, 0.1]], dtype=torch.float64))


def _new_log_probs():
    return (OLD + RATIOS.log()).requires_grad_()


def test_clipped_policy_loss_by_hand():
    new = _new_log_probs()
    out = N.clipped_policy_loss(new, OLD, ADVS, PG_MASK)
    # token-mean (-1.1 - 1.2 + 0.8 + 1.5 - 0.5) / 5 = -0.1; clipped on b and c: 2 / 5.
    assert out.pg_loss.item() == pytest.approx(-0.1)
    assert out.clipfrac.item() == pytest.approx(0.4)
    assert out.dual_clipfrac.item() == 0.0
    # approx_kl = mean of (r - 1) - ln r: 0.0046898 (1.1), 0.0945349 (1.5) x2, 0.1931472 (0.5) x2.
    assert out.approx_kl.item() == pytest.approx((0.0046898 + 2 * 0.0945349 + 2 * 0.1931472) / 5, abs=1e-6)
    # seq-mean-token-mean: row 0 (-1.1 - 1.2 + 0.8) / 3 = -0.5, row 1 (1.5 - 0.5) / 2 = 0.5 -> 0.
    seq = N.clipped_policy_loss(new, OLD, ADVS, PG_MASK, agg="seq-mean-token-mean")
    assert seq.pg_loss.item() == pytest.approx(0.0, abs=1e-12)


def test_clipped_tokens_get_no_gradient():
    new = _new_log_probs()
    N.clipped_policy_loss(new, OLD, ADVS, PG_MASK).pg_loss.backward()
    # d(-A r)/d log pi = -A r, divided by 5 tokens: a -1.1/5, d +1.5/5, e -0.5/5; b, c clipped; pad 0.
    close(new.grad, T([[-0.22, 0.0, 0.0], [0.3, -0.1, 0.0]], dtype=torch.float64))


def test_clip_higher_widens_only_the_upper_bound():
    # clip_high 0.28 (DAPO): b -> -1.28, so (-1.1 - 1.28 + 0.8 + 1.5 - 0.5) / 5 = -0.116; c still at 0.8.
    out = N.clipped_policy_loss(_new_log_probs(), OLD, ADVS, PG_MASK, clip_low=0.2, clip_high=0.28)
    assert out.pg_loss.item() == pytest.approx(-0.116)
    assert out.clipfrac.item() == pytest.approx(0.4)


def test_dual_clip_bounds_a_negative_advantage_with_a_huge_ratio():
    # A = -1, r = 5: the standard loss is max(5, 1.2) = 5; dual-clip c = 3 bounds it to 3.
    old = torch.log(T([[0.1, 0.1]], dtype=torch.float64))
    new = old + torch.log(T([[5.0, 5.0]], dtype=torch.float64))
    adv, mask = T([[-1.0, 1.0]], dtype=torch.float64), T([[1.0, 1.0]], dtype=torch.float64)
    # Token 2 (A = +1, r = 5) is clipped to -1.2 as usual. Mean (3 - 1.2) / 2 = 0.9.
    out = N.clipped_policy_loss(new, old, adv, mask, dual_clip=3.0)
    assert out.pg_loss.item() == pytest.approx(0.9)
    assert out.dual_clipfrac.item() == pytest.approx(0.5)
    assert N.clipped_policy_loss(new, old, adv, mask).pg_loss.item() == pytest.approx((5 - 1.2) / 2)
    assert "dual-clip" in one_line_error(lambda: N.clipped_policy_loss(new, old, adv, mask, dual_clip=0.5))


def test_padding_never_changes_the_policy_loss():
    clean = N.clipped_policy_loss(_new_log_probs(), OLD, ADVS, PG_MASK)
    new, old, adv = _new_log_probs().detach().clone(), OLD.clone(), ADVS.clone()
    new[1, 2], old[1, 2], adv[1, 2] = 40.0, -math.inf, math.nan
    dirty = N.clipped_policy_loss(new, old, adv, PG_MASK)
    for field in ("pg_loss", "clipfrac", "approx_kl"):
        assert getattr(dirty, field).item() == pytest.approx(getattr(clean, field).item()), field


# ---- value loss ----------------------------------------------------------------------------
def test_clipped_value_loss_by_hand():
    # Token 0: V 1.0, V_old 0.5, R 2.0: error 1.0; clipped V 0.7 -> error 1.69; 0.5 * 1.69 = 0.845 (clipped).
    # Token 1: V = V_old = 0.5, R 0.0: both errors 0.25 -> 0.125. Token 2 is padding.
    values = T([[1.0, 0.5, 50.0]], requires_grad=True)
    old, returns, mask = T([[0.5, 0.5, 0.0]]), T([[2.0, 0.0, -50.0]]), T([[1.0, 1.0, 0.0]])
    out = N.clipped_value_loss(values, old, returns, mask, clip_range=0.2)
    assert out.vf_loss.item() == pytest.approx((0.845 + 0.125) / 2)
    assert out.vf_clipfrac.item() == pytest.approx(0.5)
    out.vf_loss.backward()
    # The clipped token's prediction cannot move further: gradient 0; token 1: (0.5 - 0) / 2.
    close(values.grad, T([[0.0, 0.25, 0.0]]))
    plain = N.clipped_value_loss(values, old, returns, mask, clip_range=None)
    assert plain.vf_loss.item() == pytest.approx(0.5 * (1.0 + 0.25) / 2)


# ---- from logits ---------------------------------------------------------------------------
def test_entropy_of_known_distributions():
    # Uniform over 4: ln 4. [1/2, 1/4, 1/4]: 0.5 ln 2 + 2 * 0.25 ln 4 = 1.5 ln 2.
    logits = torch.stack([torch.zeros(4), torch.log(T([0.5, 0.25, 0.25, 1e-45]))])
    close(N.entropy_from_logits(logits), T([math.log(4), 1.5 * math.log(2)]), atol=1e-5, rtol=0)
    # A shift of the logits changes nothing and large ones do not overflow: [1000, 1000, 900] -> ln 2.
    big = N.entropy_from_logits(T([[1000.0, 1000.0, 900.0]]))
    close(big, T([math.log(2)]), atol=1e-4, rtol=0)
    # The gradient points towards more entropy: raising the largest logit lowers H.
    z = T([[2.0, 1.0, 0.0]], requires_grad=True)
    N.entropy_from_logits(z).sum().backward()
    assert z.grad[0, 0] < 0 < z.grad[0, 2]


def test_log_probs_from_logits_pick_the_sampled_token():
    logits = torch.log(T([[[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]])) + 7.0  # a shift changes nothing
    close(N.log_probs_from_logits(logits, T([[1, 2]])), torch.log(T([[0.25, 0.8]])))


# ---- Safe RLHF -----------------------------------------------------------------------------
def test_lagrangian_mix_and_multiplier_update():
    # (A_r - lambda A_c) / (1 + lambda) = (1 - 1 * 0.5) / 2 = 0.25.
    close(N.lagrangian_advantages(T([1.0]), T([0.5]), 1.0), T([0.25]))
    # log lambda 0 (lambda 1), cost 2 over threshold 1, lr 0.1: 0 + 0.1 * 1 * (2 - 1) = 0.1.
    assert N.update_log_lagrange(0.0, mean_cost=2.0, threshold=1.0, lr=0.1) == pytest.approx(0.1)
    assert N.update_log_lagrange(0.0, mean_cost=0.5, threshold=1.0, lr=0.1) < 0.0


def test_lagrange_multiplier_follows_a_window_of_costs_and_its_cap():
    lagrangian = N.Lagrangian(threshold=1.0, lr=0.5, max_value=2.0, window=2)
    # costs 3, 3 over threshold 1: log lambda 0 + 0.5 * 1 * 2 = 1, capped at log 2
    assert lagrangian.update([3.0, 3.0]) == pytest.approx(2.0)
    # the window keeps the last two costs (3, 0): mean 1.5 -> log 2 + 0.5 * 2 * 0.5, capped again
    assert lagrangian.update([0.0]) == pytest.approx(2.0) and lagrangian.recent_costs == [3.0, 0.0]
    # under the threshold lambda shrinks: window (0, 0), log 2 + 0.5 * 2 * (0 - 1) = log 2 - 1
    assert lagrangian.update([0.0, 0.0]) == pytest.approx(2.0 * math.exp(-1.0))
    restored = N.Lagrangian(threshold=1.0, lr=0.5, max_value=2.0, window=2)
    restored.load_state_dict(lagrangian.state_dict())
    assert restored.update([5.0]) == pytest.approx(lagrangian.update([5.0]))


# ---- mini-batches --------------------------------------------------------------------------
def test_minibatches_cover_every_item_once_per_epoch():
    batches = list(N.minibatches(10, 3, epochs=2, seed=1))
    assert [(b.epoch, b.step) for b in batches] == [(e, s) for e in range(2) for s in range(3)]
    for epoch in range(2):
        parts = [b.indices.tolist() for b in batches if b.epoch == epoch]
        assert sorted(len(p) for p in parts) == [3, 3, 4]
        assert sorted(i for p in parts for i in p) == list(range(10))
    orders = [[i for b in batches if b.epoch == e for i in b.indices.tolist()] for e in range(2)]
    assert orders[0] != orders[1]  # a fresh shuffle each epoch
    again = [b.indices.tolist() for b in N.minibatches(10, 3, epochs=2, seed=1)]
    assert again == [b.indices.tolist() for b in batches]


def test_minibatches_reject_impossible_splits():
    assert "at most 4 mini-batches" in one_line_error(lambda: list(N.minibatches(4, 5)))
    assert "at least 1" in one_line_error(lambda: list(N.minibatches(4, 0)))


# ---- the registry --------------------------------------------------------------------------
def test_every_algorithm_has_numerics_that_agree_on_the_estimator():
    for name, algorithm in ALGORITHMS.items():
        assert R.numerics_for(name).advantage.value == algorithm.advantage, name
    assert "grpo" in one_line_error(R.numerics_for, "a2c")


def test_with_options_parses_names_and_checks_values():
    grpo = R.numerics_for("grpo").with_options(loss_agg="token-mean", kl_coef=0.01)
    assert grpo.loss_agg is N.LossAgg.TOKEN_MEAN and grpo.kl_coef == 0.01
    assert "kl_coef" in one_line_error(lambda: R.numerics_for("grpo").with_options(kl_coeff=0.1))
    assert "k3" in one_line_error(lambda: R.numerics_for("grpo").with_options(kl_estimator="k9"))
    assert "negative" in one_line_error(lambda: R.numerics_for("grpo").with_options(kl_coef=-1.0))


def test_shape_rewards_follows_the_kl_placement():
    rewards, mask = T([[0.0, 1.0]], dtype=torch.float64), T([[1.0, 1.0]], dtype=torch.float64)
    policy, ref = lp(0.5, 0.25).unsqueeze(0), lp(0.25, 0.5).unsqueeze(0)
    # PPO (k1 in the reward, coef 0.5): [0 - 0.5 ln 2, 1 + 0.5 ln 2].
    shaped, kl = R.shape_rewards(R.numerics_for("ppo"), rewards, mask, policy, ref, kl_coef=0.5)
    close(shaped, T([[-0.346574, 1.346574]], dtype=torch.float64), atol=1e-6, rtol=0)
    # GRPO keeps its KL in the loss: rewards unchanged, zero KL.
    shaped, kl = R.shape_rewards(R.numerics_for("grpo"), rewards, mask, policy, ref)
    close(shaped, rewards)
    assert kl.abs().sum().item() == 0.0
    with pytest.raises(ValueError, match="log-probs"):
        R.shape_rewards(R.numerics_for("ppo"), rewards, mask)


def test_compute_advantages_dispatches_to_the_estimator():
    mask = T([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    rewards = N.scores_to_token_rewards(T([1.0, 0.0]), mask)
    grpo = R.compute_advantages(R.numerics_for("grpo"), rewards, mask, group_ids=[0, 0])
    close(grpo.advantages, N.grpo_advantages(T([1.0, 0.0]), [0, 0], mask))
    rloo = R.compute_advantages(R.numerics_for("rloo"), rewards, mask, group_ids=[0, 0])
    close(rloo.advantages, T([[1.0, 1.0, 1.0], [-1.0, -1.0, 0.0]]))
    values = T([[0.5, 0.6, 0.7], [0.1, 0.2, 0.0]])
    gae = R.compute_advantages(R.numerics_for("ppo"), rewards, mask, values=values)
    close(gae.advantages, N.gae_advantages(rewards, values, mask).advantages)
    remax = R.compute_advantages(R.numerics_for("remax"), rewards, mask, baseline_scores=T([0.5, 0.5]))
    close(remax.advantages, T([[0.5, 0.5, 0.5], [-0.5, -0.5, 0.0]]))
    for algo, missing in (("grpo", "group_ids"), ("ppo", "values"), ("remax", "baseline_scores")):
        with pytest.raises(ValueError, match=missing):
            R.compute_advantages(R.numerics_for(algo), rewards, mask)


def test_actor_loss_adds_the_kl_term_and_the_entropy_bonus():
    new = _new_log_probs()
    ref = OLD.clone()
    entropy = T([[1.0, 2.0, 3.0], [4.0, 5.0, 99.0]], dtype=torch.float64)
    numerics = R.numerics_for("grpo").with_options(kl_coef=0.1, entropy_coef=0.01, loss_agg="token-mean")
    out = R.actor_loss(numerics, new, OLD, ADVS, PG_MASK, ref_log_probs=ref, entropy=entropy)
    pg = N.clipped_policy_loss(new, OLD, ADVS, PG_MASK).pg_loss
    kl = N.kl_loss(new, ref, PG_MASK)
    # mean entropy over real tokens (1 + 2 + 3 + 4 + 5) / 5 = 3.
    assert out.metrics["actor/entropy"] == pytest.approx(3.0)
    assert out.loss.item() == pytest.approx((pg + 0.1 * kl - 0.01 * 3.0).item())
    assert set(out.metrics) >= {"actor/pg_loss", "actor/clipfrac", "actor/approx_kl", "actor/kl_loss"}
    with pytest.raises(ValueError, match="reference"):
        R.actor_loss(numerics, new, OLD, ADVS, PG_MASK)
    # PPO has its KL in the reward: no KL term in the loss.
    ppo = R.actor_loss(R.numerics_for("ppo"), new, OLD, ADVS, PG_MASK)
    assert "actor/kl_loss" not in ppo.metrics and ppo.loss.item() == pytest.approx(pg.item())
