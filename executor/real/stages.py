"""What each stage call does on real workers: the RL algorithm itself.

:class:`StageRunner.run` maps one ``StageCall`` (``rollout.generate``, ``reward.rule``,
``ref.log_prob``, ``critic.values``, ``advantages``, ``actor.update``,
``rollout.sync_weights``, ...) onto the worker groups and the numeric core of
``algos.numerics_registry``. A call's inputs are looked up by their payload names from
the dataflow (``responses``, ``scores``, ``old_log_probs``, ``ref_log_probs``, ``values``,
``advantages``, ``returns``, ``baseline_scores``) among the outputs of the same training
step; the batch itself is the step's main generation.

``run`` returns ``(output, args)``: the output feeds later calls, ``args`` goes into the
call's trace slice (sizes, rewards, losses) and the step's metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable

from planner.errors import PlanError, require

MAIN_GENERATION = "rollout.generate"
FILTER = "filter"
CRITICS = {"critic": ("values", "returns"), "cost_critic": ("cost_values", "cost_returns")}
"""Critic roles: the payload of their old values and the advantages' output they regress on."""
SUPPORTED_ALGOS = ("grpo", "ppo", "rloo", "remax", "reinforce_pp", "dapo", "safe_rlhf")
"""Algorithms the executor runs: all of ``algos`` today. One added there is planned and
simulated, and refused here before Ray starts, until its stages run in this module."""


@dataclass
class Rollout:
    """One generate call's samples: the padded batch and, per row, its prompt's example."""

    batch: dict
    examples: list
    """The data example each row answers (prompt text, reference answer)."""
    scores: object = None
    """Set on the rows DAPO's filter kept: their rewards."""

    @property
    def rows(self) -> int:
        return int(self.batch["responses"].shape[0])


@dataclass
class RunSettings:
    """Sampling, optimisation and reward settings of one execution (the plan gives the layout)."""

    samples: int
    max_tokens: int
    mini_batches: int
    epochs: int
    reward: str = "numeric"
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    value_clip: float = 0.2
    verify_sync: bool = False
    """After every weight sync, compare the engines' copies with the trainer's weights."""
    numerics_options: dict = field(default_factory=dict)
    """Changes to the algorithm's numerics (``kl_coef``, ``entropy_coef``, ...; see ``AlgoNumerics``)."""
    kept_prompts: int = 0
    """DAPO: prompt groups trained on per step (the plan's prompts; the stream gives the over-sampled count)."""


# ---- losses (module-level: they are pickled to the trainer ranks) --------------------------
def policy_loss(numerics, logits, mb: dict):
    """The actor's loss on one micro-batch: clipped policy loss (+ KL loss, - entropy)."""
    from algos import numerics as N
    from algos.numerics_registry import actor_loss

    mask = mb["response_mask"]
    log_probs = N.log_probs_from_logits(logits, mb["responses"])
    entropy = N.entropy_from_logits(logits) if numerics.entropy_coef > 0 else None
    out = actor_loss(numerics, log_probs, mb["old_log_probs"], mb["advantages"], mask,
                     ref_log_probs=mb.get("ref_log_probs"), entropy=entropy)
    if entropy is None:  # reported even when it is not in the loss
        import torch

        with torch.no_grad():
            out.metrics["actor/entropy"] = N.masked_mean(N.entropy_from_logits(logits), mask).item()
    return out.loss, out.metrics


def value_loss(clip: float, values, mb: dict):
    """A critic's clipped value loss on one micro-batch (metrics get the role's prefix)."""
    from algos import numerics as N

    out = N.clipped_value_loss(values, mb["old_values"], mb["returns"], mb["response_mask"], clip)
    return out.vf_loss, {"vf_loss": out.vf_loss.item(), "vf_clipfrac": out.vf_clipfrac.item()}


# ---- the runner ---------------------------------------------------------------------------
class StageRunner:
    """Runs stage calls for one execution: worker groups, tokenizer, prompts, numerics."""

    def __init__(self, algo: str, groups: dict, tokenizer, prompts_for: Callable[[int], list],
                 settings: RunSettings) -> None:
        from algos.numerics_registry import numerics_for

        require(algo in SUPPORTED_ALGOS, f"the executor runs {', '.join(SUPPORTED_ALGOS)}, not {algo}: "
                                         "plan one of those (or use `plan simulate` for a dry run)")
        self.algo, self.groups, self.tokenizer = algo, groups, tokenizer
        self.prompts_for, self.settings = prompts_for, settings
        self.numerics = numerics_for(algo).with_options(**settings.numerics_options)
        self.steps_per_update = settings.mini_batches * settings.epochs
        self.lagrangian = None
        if self.numerics.cost_critic:
            from algos.numerics import Lagrangian

            self.lagrangian = Lagrangian()

    def state_dict(self) -> dict:
        """What the driver carries from step to step (Safe RLHF's multiplier), for checkpoints."""
        return {"lagrangian": self.lagrangian.state_dict()} if self.lagrangian is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.lagrangian is not None and "lagrangian" in state:
            self.lagrangian.load_state_dict(state["lagrangian"])

    def run(self, call, step: int, done: dict) -> tuple[object, dict]:
        method = call.method
        if call.kind == "generate":
            return self._generate(call, step, greedy=method.endswith("greedy"))
        inputs = {payload: done[src] for payload, src in call.inputs}
        if call.kind == "rule_reward":
            return self._rule_reward(inputs)
        if call.kind == "forward":
            return self._forward(call, inputs)
        if call.kind == "compute" and method == "advantages":
            return self._advantages(inputs, done)
        if call.kind == "compute" and method == FILTER:
            return self._filter(inputs, done)
        if call.kind == "train":
            return self._update(call, step, inputs, done)
        if call.kind == "sync":
            return self._sync(call)
        raise PlanError(f"the executor has no implementation of {call.job} ({call.kind}): "
                        f"plan one of {', '.join(SUPPORTED_ALGOS)}")

    # ---- generation and rewards -----------------------------------------------------
    def _generate(self, call, step: int, greedy: bool) -> tuple[Rollout, dict]:
        s = self.settings
        examples = self.prompts_for(step)
        ids = [self.tokenizer.encode(e.prompt, add_special_tokens=False) for e in examples]
        n = 1 if greedy else s.samples
        batch = self.groups[call.role].generate(
            ids, n=n, max_tokens=s.max_tokens, temperature=0.0 if greedy else s.temperature,
            top_p=1.0 if greedy else s.top_p, seed=s.seed * 1_000_003 + step).result()
        if call.weights_version is not None:
            # updates synced before this step: the run's earlier chunks (step - iteration,
            # all drained) plus those the controller made this call wait for
            expected = (step - call.iteration + call.weights_version) * self.steps_per_update
            seen = sorted(set(batch["policy_version"].tolist()))
            require(seen == [expected], f"{call.job} of step {step} sampled with the policy after optimizer "
                                        f"step(s) {seen}, not {expected}: the weight sync did not reach every engine")
        rows = [examples[i] for i in batch["prompt_index"].tolist()]
        lengths = batch["response_mask"].sum(dim=1)
        args = {"responses": len(rows), "response_tokens": int(lengths.sum()),
                "response_len_mean": float(lengths.mean()), "response_len_max": int(lengths.max()),
                "policy_version": int(batch["policy_version"][0])}
        return Rollout(batch, rows), args

    def decode(self, rollout: Rollout) -> list[str]:
        """Response texts, special tokens kept (the rewards cut at the end token; the format reward reads <think>)."""
        responses = rollout.batch["responses"]
        mask = rollout.batch["response_mask"].bool()
        return [self.tokenizer.decode(responses[i][mask[i]].tolist(), skip_special_tokens=False)
                for i in range(responses.shape[0])]

    def _rule_reward(self, inputs: dict) -> tuple[object, dict]:
        import torch

        from algos.rewards import score

        rollout = _rollout_of(inputs)
        scores = torch.tensor(score(self.settings.reward, self.decode(rollout), [e.answer for e in rollout.examples]),
                              dtype=torch.float32)
        return scores, {"reward_mean": float(scores.mean())}

    # ---- forward-only stages --------------------------------------------------------
    def _forward(self, call, inputs: dict) -> tuple[object, dict]:
        from algos import numerics as N

        rollout = _rollout_of(inputs)
        group = self.groups[call.role]
        if call.method == "log_prob":
            log_probs = group.log_prob(rollout.batch, self.settings.temperature).result()
            args = {"rows": rollout.rows}
            if call.role == "actor":  # the engine sampled with these weights: its log-probs should agree
                mask = rollout.batch["response_mask"]
                gap = ((log_probs - rollout.batch["rollout_log_probs"]) * mask).abs().max()
                args["rollout/logprob_diff_max"] = float(gap)
            return log_probs, args
        values = group.values(rollout.batch).result()
        if call.method == "values":
            return values, {"rows": rollout.rows}
        # a reward (or cost) model's score is its value at the last response token
        scores = N.last_token_values(values, rollout.batch["response_mask"])
        return scores, {"rows": rollout.rows, f"{'cost' if call.role == 'cost' else 'reward'}_mean": float(scores.mean())}

    # ---- the driver's filter and advantages ------------------------------------------
    def _filter(self, inputs: dict, done: dict) -> tuple[Rollout, dict]:
        """DAPO's dynamic sampling over one over-sampled generation: keep ``prompts`` groups,
        those whose rewards are not all equal first (they carry the gradient). When fewer
        are informative, the batch is topped up with uninformative groups: their advantage
        is zero, so they add no gradient, and every step trains on the planned batch."""
        import torch

        from algos import numerics as N
        from executor.workers.batch import select

        rollout, scores = done[MAIN_GENERATION], inputs["scores"]
        group = rollout.batch["prompt_index"]
        informative = N.informative_groups(scores, group)
        groups = torch.unique(group)
        wanted = self.settings.kept_prompts or len(groups)
        useful = torch.unique(group[informative])
        rest = groups[~torch.isin(groups, useful)]
        kept_groups = torch.cat([useful, rest])[:wanted]
        rows = torch.nonzero(torch.isin(group, kept_groups)).flatten()
        kept = Rollout(select(rollout.batch, rows), [rollout.examples[i] for i in rows.tolist()], scores[rows])
        args = {"rows": kept.rows, "dapo/informative_groups": int(len(useful)),
                "dapo/kept_informative_groups": int(min(len(useful), wanted)), "dapo/generated_groups": len(groups)}
        return kept, args

    def _advantages(self, inputs: dict, done: dict) -> tuple[dict, dict]:
        from algos import numerics as N
        from algos.numerics_registry import compute_advantages, shape_rewards

        batch = _trained_rollout(done).batch
        mask = batch["response_mask"]
        scores = inputs["kept_scores"].scores if "kept_scores" in inputs else inputs["scores"]
        token_rewards = N.scores_to_token_rewards(scores, mask)
        shaped, kl = shape_rewards(self.numerics, token_rewards, mask, inputs.get("old_log_probs"),
                                   inputs.get("ref_log_probs"))
        baseline = inputs.get("baseline_scores")
        if baseline is not None:  # one greedy response per prompt -> the baseline of each of its samples
            greedy = next(v for job, v in done.items() if isinstance(v, Rollout) and job != MAIN_GENERATION)
            per_prompt = baseline.new_zeros(int(greedy.batch["prompt_index"].max()) + 1)
            per_prompt[greedy.batch["prompt_index"]] = baseline
            baseline = per_prompt[batch["prompt_index"]]
        result = compute_advantages(self.numerics, shaped, mask, group_ids=batch["prompt_index"],
                                    values=inputs.get("values"), baseline_scores=baseline)
        out = {"advantages": result.advantages, "returns": result.returns}
        args = {"reward_mean": float(scores.mean())}
        if self.lagrangian is not None:
            # Safe RLHF: the costs get their own GAE (no KL), mixed in by the updated lambda
            costs = inputs["costs"]
            cost = N.gae_advantages(N.scores_to_token_rewards(costs, mask), inputs["cost_values"], mask,
                                    self.numerics.gamma, self.numerics.lam)
            lagrange = self.lagrangian.update(costs.tolist())
            out.update(advantages=N.lagrangian_advantages(result.advantages, cost.advantages, lagrange),
                       cost_returns=cost.returns)
            args.update(cost_mean=float(costs.mean()), lagrange=lagrange)
        args["advantage_abs_mean"] = float(N.masked_mean(out["advantages"].abs(), mask))
        if self.numerics.kl_placement.value == "reward":
            args["kl_in_reward"] = float(N.masked_mean(kl, mask))
        return out, args

    # ---- updates and weight sync ----------------------------------------------------
    def _update(self, call, step: int, inputs: dict, done: dict) -> tuple[list, dict]:
        s = self.settings
        batch = dict(_trained_rollout(done).batch)
        computed = done["advantages"]
        group = self.groups[call.role]
        if call.role in CRITICS:
            values, returns = CRITICS[call.role]
            batch.update(old_values=inputs[values], returns=computed[returns])
            loss = partial(value_loss, s.value_clip)
        else:
            batch.update(old_log_probs=inputs["old_log_probs"], advantages=computed["advantages"])
            if "ref_log_probs" in inputs:
                batch["ref_log_probs"] = inputs["ref_log_probs"]
            loss = partial(policy_loss, self.numerics)
        steps = group.update(batch, loss, mini_batches=s.mini_batches, epochs=s.epochs, seed=s.seed + step,
                             temperature=s.temperature).result()
        means = {k: sum(m[k] for m in steps) / len(steps) for k in steps[0] if k != "rows"}
        return steps, {f"{call.role}/{k}" if "/" not in k else k: v for k, v in means.items()}

    def _sync(self, call) -> tuple[int, dict]:
        from executor.workers import sync_weights

        source = self.groups[call.roles[0]]
        version = sync_weights(source, self.groups[call.role]).result()
        args = {"policy_version": int(version)}
        if self.settings.verify_sync:
            from executor.workers import verify_sync

            args["sync/max_abs_diff"] = verify_sync(source, self.groups[call.role])
        return version, args


def _trained_rollout(done: dict) -> Rollout:
    """The rows the step trains on: the main generation, or what DAPO's filter kept of it."""
    return done[FILTER] if FILTER in done else done[MAIN_GENERATION]


def _rollout_of(inputs: dict) -> Rollout:
    rollouts = [v for v in inputs.values() if isinstance(v, Rollout)]
    require(len(rollouts) == 1, f"a stage needs exactly one generation among its inputs, got {len(rollouts)}")
    return rollouts[0]
