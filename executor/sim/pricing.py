"""Seconds of one stage call, from the cost-model functions the search priced it with.

The search priced every stage of a role's layout on the *expected* response length
(``CandidateBuilder``): generation over planning quantiles of the distribution, forward
and training passes over ``prompt + E[response]`` tokens per sequence. A simulated call
is priced the same way on the batch it actually received: generation step by step over
the sampled lengths (``cost_model.generation.generate``: continuous batching with the KV
limit), forward and train passes over the batch's mean length (their time follows real
tokens, their memory the padded ``prompt + max_len``), driver stages over its tokens. A
weight sync and a batch's move between pools do not depend on lengths: they take the
search's own prices. With fixed lengths every call costs exactly what the plan says
(tests check it stage by stage).

Offloaded roles pay the same host swap the search added (stage time minus its cost).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from executor.sim.sampling import LengthSampler


@dataclass(frozen=True)
class PricedCall:
    seconds: float
    output: object
    """The batch passed on: response lengths (numpy int array) or None."""
    args: dict = field(default_factory=dict)
    """What the trace shows about the call."""


class CallPricer:
    """Prices ``StageCall``s of one replayed plan (``planner.replay.ReplayedPlan``)."""

    def __init__(self, replayed, sampler: LengthSampler, planned: bool = False) -> None:
        self.replayed = replayed
        self.planned = planned
        """Price every call at the search's own duration (expected lengths), sampling nothing."""
        self.inputs = replayed.inputs
        self.sampler = sampler
        self.fixed = replayed.evaluation.durations
        """The search's durations: weight syncs are priced once, here."""
        self.generations: list[tuple[int, str, object]] = []
        """(iteration, job, generation StageCost) of every simulated generation, in order."""
        self._cache: dict[tuple, float] = {}

    def price(self, call, batch) -> PricedCall:
        kind = call.kind
        if self.planned:
            return PricedCall(self.fixed[call.job], None)
        if kind == "sync":
            return PricedCall(self.fixed[call.job], None, {"weights_from": call.roles[0], "to": call.roles[1]})
        stage = call.stage
        if kind == "generate":
            return self._generate(call, stage)
        lengths = batch if batch is not None else self.sampler.expected_batch(stage)
        mean_len = float(np.mean(lengths))
        args = {"num_seqs": stage.num_seqs, "mean_response_tokens": round(mean_len, 2)}
        if call.on_driver:
            from planner.cost_model.driver import driver_stage_time

            return PricedCall(driver_stage_time(kind, stage.num_seqs, stage.prompt_len + mean_len), lengths, args)
        role = call.roles[0]
        key = (call.job, mean_len)
        if key not in self._cache:
            self._cache[key] = self._device_seconds(role, stage, mean_len) + self._swap_s(role, stage.name)
        cand = self.replayed.assignment.choice[role]
        args.update(layout=cand.describe())
        if cand.offload:
            args["offload"] = "weights onloaded before the call and offloaded after it"
        return PricedCall(self._cache[key], lengths, args)

    # ---- per kind -------------------------------------------------------------------------
    def _generate(self, call, stage) -> PricedCall:
        from planner.cost_model.generation import generate

        role = call.roles[0]
        cand = self.replayed.assignment.choice[role]
        lengths = self.sampler.lengths(stage, call.iteration)
        cost = generate(self.inputs.models[role], cand.layout, self.replayed.gpu_set(role), lengths, stage.prompt_len)
        self.generations.append((call.iteration, call.job, cost))
        info = cost.info
        args = {"num_seqs": int(lengths.size), "layout": cand.describe(), "weights_version": call.weights_version,
                "mean_response_tokens": round(float(lengths.mean()), 2), "max_response_tokens": int(lengths.max()),
                "tail_s": round(info["tail_s"], 6), "mean_batch": round(info["mean_batch"], 2),
                "preemptions": int(info["preemptions"])}
        return PricedCall(cost.time_s + self._swap_s(role, stage.name), lengths, args)

    def _device_seconds(self, role: str, stage, mean_len: float) -> float:
        """A forward or train pass of ``role``'s layout over sequences of ``mean_len`` response tokens."""
        model, layout, gpus = self.inputs.models[role], self.replayed.assignment.choice[role].layout, self.replayed.gpu_set(role)
        seq_len = stage.prompt_len + stage.response.max_len
        tokens_per_seq = stage.prompt_len + mean_len
        if stage.kind.value == "train":
            from planner.cost_model.training import train_step

            mini_batch = max(1, stage.num_seqs // stage.mini_batches)
            step = train_step(model, layout, gpus, mini_batch, seq_len, tokens_per_seq)
            return step.repeated(stage.epochs * stage.mini_batches).time_s
        from planner.cost_model.inference import forward_pass

        head = self.inputs.dataflow.roles[role].head
        return forward_pass(model, layout, gpus, stage.num_seqs, seq_len, tokens_per_seq, head=head).time_s

    def _swap_s(self, role: str, stage_name: str) -> float:
        """Seconds the search added to the stage beyond its cost (an offloaded role's host swap)."""
        cand = self.replayed.assignment.choice[role]
        return cand.stage_times[stage_name] - cand.stage_costs[stage_name].time_s
