"""Rollout generation on inference engines: ``generate`` -> StageCost.

``gen.replicas`` engines of ``gen.tp`` GPUs each generate the requests, dealt out in
turn (request ``i`` to engine ``i mod replicas``, as verl's agent-loop rollout balances
requests over its vLLM servers), so every engine sees the same mix of lengths even when
the caller passes them sorted. Each engine is simulated step by step over the actual lengths (batching.py) and
each step priced by the kernel-level model of step_time.py; the stage ends when the
slowest engine does, so a few long responses that keep a small batch decoding decide it.

Memory per GPU (vLLM's accounting, ``gpu_memory_utilization`` of the device):

- ``weights``: the bf16 parameters over ``tp`` (vocabulary-parallel embedding and head);
- ``activations``: the peak of vLLM's profiling forward over ``PROFILE_TOKENS`` tokens
  (hidden states, q/k/v, the MLP's gate/up/activation outputs) and the fp32 sampler logits
  of ``max_num_seqs`` rows, plus ``eff.engine_non_torch_gib`` (NCCL/cuBLAS workspaces);
- ``kv_cache``: everything else in the budget, which vLLM reserves as KV blocks while the
  engine is awake (``util * M - weights - activations``). It is transient: a colocated
  engine frees it when it sleeps.

Static batching (``static=True``; TensorRT-LLM / FasterTransformer sessions) reserves no
utilisation fraction: it allocates ``batch x max length`` of KV and must fit in the usable
device memory (memory.usable_bytes) next to the weights and the batch's prefill workspace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.cost_model.batching import BLOCK_TOKENS, Schedule, continuous_schedule, static_schedule, step_load
from planner.cost_model.costs import StageCost
from planner.cost_model.efficiency import EFFICIENCY, Efficiency
from planner.cost_model.memory import usable_bytes
from planner.cost_model.step_time import LOGIT_BYTES, StepLoad, StepTimes, step_times
from planner.errors import PlanError, require
from planner.hardware import GiB, GPUSpec, GpuSet
from planner.models import BF16_BYTES, ModelSpec
from planner.parallel import GenerationConfig, check_divides_model

PROFILE_TOKENS = 8192
"""Tokens of vLLM's memory-profiling forward pass (``max_num_batched_tokens``; verl's
rollout default is 8192)."""


# ---- memory ----------------------------------------------------------------------------------
def generation_weight_bytes(model: ModelSpec, tp: int) -> float:
    """bf16 weights on one GPU of a ``tp`` engine (every matrix, embedding and head split)."""
    return model.weight_bytes(BF16_BYTES) / tp


def activation_workspace_bytes(model: ModelSpec, tp: int, tokens: float, sampled_rows: float) -> float:
    """Peak activation bytes of one forward over ``tokens`` tokens on one GPU, plus the
    fp32 logits of ``sampled_rows`` sampled rows (gathered whole on the sampling rank).

    Inference frees each tensor once consumed, so the peak is the residual stream plus the
    larger of the attention block (normed input, q/k/v, attention output) and the MLP
    block (gate and up outputs and the activation: ``mlp_matrices x width``).
    """
    width = model.intermediate_size if not model.is_moe else \
        (model.experts_per_token + model.num_shared_experts) * model.moe_intermediate_size
    attention = model.hidden_size + (2 * model.q_size + 2 * model.kv_size) / tp
    per_token = model.hidden_size + max(attention, model.mlp_matrices * width / tp)
    return tokens * per_token * BF16_BYTES + sampled_rows * model.vocab_size * LOGIT_BYTES


def engine_memory(model: ModelSpec, gen: GenerationConfig, gpu: GPUSpec, eff: Efficiency = EFFICIENCY) -> dict[str, float]:
    """Bytes per GPU of a vLLM engine: weights, activations (with non-torch workspaces) and
    the KV cache it reserves. ``kv_cache`` is negative when the weights do not fit."""
    weights = generation_weight_bytes(model, gen.tp)
    activations = (activation_workspace_bytes(model, gen.tp, PROFILE_TOKENS, gen.max_num_seqs)
                   + eff.engine_non_torch_gib * GiB)
    budget = gen.gpu_memory_utilization * gpu.memory_bytes
    return {"weights": weights, "activations": activations, "kv_cache": budget - weights - activations}


def kv_capacity_tokens(model: ModelSpec, gen: GenerationConfig, gpu: GPUSpec, eff: Efficiency = EFFICIENCY) -> int:
    """Tokens the engine's KV blocks hold (``num_blocks * 16``, as vLLM sizes them)."""
    free = engine_memory(model, gen, gpu, eff)["kv_cache"]
    block_bytes = BLOCK_TOKENS * model.kv_bytes_per_token(gen.tp)
    return max(0, int(free // block_bytes)) * BLOCK_TOKENS


def _tp_candidates(model: ModelSpec, limit: int = 64) -> list[int]:
    out = []
    for tp in range(1, limit + 1):
        try:
            check_divides_model(model, tp)
        except PlanError:
            continue
        out.append(tp)
    return out


def min_generation_tp(model: ModelSpec, gpu: GPUSpec, util: float = 0.9, max_len: int = 0,
                      eff: Efficiency = EFFICIENCY) -> int | None:
    """Smallest tp (dividing the heads) at which the weights and one ``max_len``-token
    sequence's KV fit in ``util`` of ``gpu``; None if none up to 64 does."""
    for tp in _tp_candidates(model):
        gen = GenerationConfig(tp=tp, gpu_memory_utilization=util)
        if kv_capacity_tokens(model, gen, gpu, eff) >= max(max_len, 1):
            return tp
    return None


def _tp_hint(model: ModelSpec, gpu: GPUSpec, util: float, max_len: int, eff: Efficiency) -> str:
    tp = min_generation_tp(model, gpu, util, max_len, eff)
    if tp is None:
        return f"no tp up to 64 fits on {gpu.name}: use GPUs with more memory or shorter sequences"
    return f"use tp >= {tp}"


def require_engine_fits(model: ModelSpec, gen: GenerationConfig, gpu: GPUSpec, max_len: int,
                        eff: Efficiency = EFFICIENCY) -> int:
    """KV capacity in tokens; PlanError if the weights, or one ``max_len`` sequence, do not fit."""
    mem = engine_memory(model, gen, gpu, eff)
    budget = gen.gpu_memory_utilization * gpu.memory_bytes
    util = gen.gpu_memory_utilization
    if mem["kv_cache"] <= 0:
        raise PlanError(
            f"{model.name} generation at tp{gen.tp} needs {mem['weights'] / GiB:.1f} GiB of weights per GPU "
            f"(+{mem['activations'] / GiB:.1f} GiB workspace) but {budget / GiB:.1f} GiB is usable at "
            f"gpu_memory_utilization {util:g}: {_tp_hint(model, gpu, util, max_len, eff)}")
    capacity = kv_capacity_tokens(model, gen, gpu, eff)
    if capacity < max_len:
        raise PlanError(
            f"{model.name} generation at tp{gen.tp} has KV-cache room for {capacity:,} tokens per engine but one "
            f"sequence needs {max_len:,} (input + output) at gpu_memory_utilization {util:g}: "
            f"{_tp_hint(model, gpu, util, max_len, eff)}, a higher gpu_memory_utilization or shorter outputs")
    return capacity


def _static_memory(model: ModelSpec, gen: GenerationConfig, gpu: GPUSpec, batch: int, prompts: np.ndarray,
                   max_len: int, eff: Efficiency) -> dict[str, float]:
    """Per-GPU bytes of a static batch; PlanError naming the largest batch that fits if not.

    The batch's KV (``max_len`` tokens per slot) and its prefill workspace (the longest
    prompt per slot) both grow with the batch.
    """
    weights = generation_weight_bytes(model, gen.tp)
    longest_prompt = float(prompts.max())
    per_seq = max_len * model.kv_bytes_per_token(gen.tp) + activation_workspace_bytes(model, gen.tp, longest_prompt, 1)
    free = usable_bytes(gpu, eff) - weights
    if free < batch * per_seq:
        fits = max(0, int(free // per_seq))
        fix = f"use a batch <= {fits} or a larger tp" if fits >= 1 else _tp_hint(model, gpu, 1.0, max_len, eff)
        raise PlanError(
            f"a static batch of {batch} sequences of {max_len:,} tokens needs {batch * per_seq / GiB:.1f} GiB of KV "
            f"cache and prefill workspace per GPU but {max(free, 0) / GiB:.1f} GiB is left on {gpu.name} next to "
            f"{weights / GiB:.1f} GiB of weights at tp{gen.tp}: {fix}")
    activations = activation_workspace_bytes(model, gen.tp, longest_prompt * batch, batch)
    return {"weights": weights, "activations": activations,
            "kv_cache": batch * max_len * model.kv_bytes_per_token(gen.tp)}


# ---- inputs ----------------------------------------------------------------------------------
def _lengths(output_lens, input_len) -> tuple[np.ndarray, np.ndarray]:
    outputs = np.asarray(output_lens, dtype=float).reshape(-1)
    require(outputs.size >= 1, "generation needs at least one request: give one output length per request")
    require(bool(np.all(outputs >= 1)) and bool(np.all(outputs == np.round(outputs))),
            "output lengths must be positive integers (tokens per response)")
    prompts = np.broadcast_to(np.asarray(input_len, dtype=float), outputs.shape) if np.ndim(input_len) == 0 \
        else np.asarray(input_len, dtype=float).reshape(-1)
    require(prompts.shape == outputs.shape,
            f"input_len has {prompts.size} entries for {outputs.size} requests: give one per request or one int")
    require(bool(np.all(prompts >= 1)) and bool(np.all(prompts == np.round(prompts))),
            "input lengths must be positive integers (prompt tokens)")
    return prompts.astype(np.int64), outputs.astype(np.int64)


# ---- the stage -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Engine:
    """One engine's schedule, per-step work and per-step times."""

    schedule: Schedule
    load: StepLoad
    times: StepTimes
    requests: int


def generate(model: ModelSpec, gen: GenerationConfig, gpus: GpuSet, output_lens, input_len, *,
             static: bool = False, eff: Efficiency = EFFICIENCY) -> StageCost:
    """Time and per-GPU memory of generating one response per request (module docstring).

    ``output_lens``: tokens each request generates (one entry per request); ``input_len``:
    prompt tokens, one int or one per request. ``static``: static batches of
    ``gen.max_num_seqs`` instead of vLLM continuous batching.

    ``time_parts`` (seconds of the slowest engine, summing to ``time_s``): ``prefill``,
    ``decode``, ``tp_comm``, ``overhead``. ``info``:

    - ``total_time_s``, ``output_tokens_per_s``, ``requests_per_s`` (all engines together);
    - ``ttft_s`` / ``ttft_max_s``: mean / largest time from submission (t = 0) to a
      request's first token, queueing included;
    - ``prefill_s`` / ``decode_s``: seconds per engine spent on prefill / decode work, each
      with its token share of the step's communication and overheads (a pure prefill step
      counts whole); ``decode_step_s``: mean duration of the steps that only decode;
    - ``steps``, ``mean_batch`` (time-weighted sequences per step), ``peak_batch``,
      ``tail_s`` (time the slowest engine runs below half its peak batch: the long tail),
      ``preemptions``, ``kv_capacity_tokens`` (per engine), ``engines``, ``kv_bound_engines``
      (engines whose KV cache, not ``max_num_seqs``, held back admissions: with more
      cache they would run faster).
    """
    check_divides_model(model, gen.tp)
    require(gen.world_size <= gpus.num_gpus,
            f"generation {gen.describe()} needs {gen.world_size} GPUs but the GPU set has {gpus.num_gpus}: "
            f"use fewer replicas or a smaller tp")
    prompts, outputs = _lengths(output_lens, input_len)
    max_len = int((prompts + outputs).max())
    gpu = gpus.gpu
    chunks = [c for c in (np.arange(r, outputs.size, gen.replicas) for r in range(gen.replicas)) if c.size]
    if static:
        batch = min(gen.max_num_seqs, max(c.size for c in chunks))
        memory = _static_memory(model, gen, gpu, batch, prompts, max_len, eff)
        capacity = int(memory["kv_cache"] // model.kv_bytes_per_token(gen.tp))
        schedules = [static_schedule(prompts[c], outputs[c], batch) for c in chunks]
    else:
        capacity = require_engine_fits(model, gen, gpu, max_len, eff)
        memory = engine_memory(model, gen, gpu, eff)
        schedules = [continuous_schedule(prompts[c], outputs[c], gen.max_num_seqs, capacity) for c in chunks]
    engines = _price(model, gen.tp, gpus, schedules, [c.size for c in chunks], eff)
    return _stage_cost(engines, outputs, memory, capacity, static)


def _price(model: ModelSpec, tp: int, gpus: GpuSet, schedules: list[Schedule], sizes: list[int],
           eff: Efficiency) -> list[_Engine]:
    """Price every engine's steps in one vectorised call."""
    loads = [step_load(s) for s in schedules]
    fields = ("decode_seqs", "decode_context", "prefill_tokens", "prefill_seqs", "prefill_pairs")
    joined = StepLoad(**{f: np.concatenate([getattr(load, f) for load in loads]) for f in fields})
    times = step_times(model, tp, gpus, joined, eff)
    bounds = np.cumsum([0] + [len(load) for load in loads])
    parts = ("gemm", "prefill_attention", "decode_attention", "elementwise", "tp_comm", "overhead")
    out = []
    for i, (schedule, load) in enumerate(zip(schedules, loads)):
        lo, hi = bounds[i], bounds[i + 1]
        out.append(_Engine(schedule, load, StepTimes(**{p: getattr(times, p)[lo:hi] for p in parts}), sizes[i]))
    return out


def _attribute(engine: _Engine) -> dict[str, np.ndarray]:
    """Per-step seconds by cause. GEMMs and elementwise kernels serve prefill and decode
    tokens together: they are split by each side's share of the step's tokens."""
    load, t = engine.load, engine.times
    tokens = load.decode_seqs + load.prefill_tokens
    share = np.divide(load.prefill_tokens, tokens, out=np.zeros_like(tokens), where=tokens > 0)
    shared = t.gemm + t.elementwise
    return {"prefill": share * shared + t.prefill_attention,
            "decode": (1 - share) * shared + t.decode_attention,
            "tp_comm": t.tp_comm, "overhead": t.overhead, "prefill_share": share}


def _engine_stats(engine: _Engine) -> dict[str, np.ndarray | float]:
    """What the stage's info aggregates over engines."""
    step = engine.times.total
    parts = _attribute(engine)
    share, fixed = parts["prefill_share"], engine.times.tp_comm + engine.times.overhead
    running = engine.load.decode_seqs + engine.load.prefill_seqs
    pure_decode = (engine.load.prefill_tokens == 0) & (engine.load.decode_seqs > 0)
    return {
        "ttft": np.cumsum(step)[engine.schedule.first_step(engine.requests)],
        "busy": float(step.sum()),
        "batch_seconds": float((running * step).sum()),
        "prefill": float((parts["prefill"] + share * fixed).sum()),
        "decode": float((parts["decode"] + (1 - share) * fixed).sum()),
        "decode_steps": step[pure_decode],
    }


def _stage_cost(engines: list[_Engine], outputs: np.ndarray, memory: dict[str, float], capacity: int,
                static: bool) -> StageCost:
    """Time parts of the slowest engine (the stage waits for it), info over all engines."""
    totals = [float(e.times.total.sum()) for e in engines]
    slowest = engines[int(np.argmax(totals))]
    total = max(totals)
    parts = {k: float(v.sum()) for k, v in _attribute(slowest).items() if k != "prefill_share"}
    stats = [_engine_stats(e) for e in engines]
    ttft = np.concatenate([s["ttft"] for s in stats])
    decode_steps = np.concatenate([s["decode_steps"] for s in stats])
    running = slowest.load.decode_seqs + slowest.load.prefill_seqs
    info = {
        "total_time_s": total,
        "output_tokens_per_s": float(outputs.sum()) / total,
        "requests_per_s": outputs.size / total,
        "ttft_s": float(ttft.mean()),
        "ttft_max_s": float(ttft.max()),
        "prefill_s": sum(s["prefill"] for s in stats) / len(stats),
        "decode_s": sum(s["decode"] for s in stats) / len(stats),
        "decode_step_s": float(decode_steps.mean()) if decode_steps.size else 0.0,
        "steps": float(len(running)),
        "mean_batch": sum(s["batch_seconds"] for s in stats) / sum(s["busy"] for s in stats),
        "peak_batch": float(running.max()),
        "kv_capacity_tokens": float(capacity),
        "tail_s": float(slowest.times.total[running < 0.5 * running.max()].sum()),
        "preemptions": float(sum(e.schedule.preemptions for e in engines)),
        "kv_bound_engines": float(sum(e.schedule.kv_bound for e in engines)),
        "output_tokens": float(outputs.sum()),
        "engines": float(len(engines)),
        "static": float(static),
    }
    return StageCost(time_parts=parts, memory_parts=dict(memory), info=info)


__all__ = ["generate", "min_generation_tp", "kv_capacity_tokens", "engine_memory", "require_engine_fits",
           "generation_weight_bytes", "activation_workspace_bytes", "PROFILE_TOKENS"]
