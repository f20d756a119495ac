"""Bytes per GPU: model states by sharding scheme, activations, and the fit check.

Sources:
- Model states: Rajbhandari et al. 2020 (ZeRO), mixed-precision Adam holds 2 bytes of
  bf16/fp16 parameters, 2 of gradients and 12 of optimizer state (fp32 master copy,
  momentum, variance) per parameter: 16, 4 + 12/N, 2 + 14/N and 16/N bytes for ZeRO
  stages 0, 1, 2 and 3. FSDP full-shard (what verl uses) has the ZeRO-3 total.
- Activations: Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
  Transformer Models"), Table 2, generalised to any MLP width, gated MLPs and grouped
  KV heads the way Megatron's ``theoretical_memory_usage.py`` does. Modern stacks use
  FlashAttention, which never stores the ``a*s*s`` score matrices: that drops the
  ``5as/h`` term (so selective recomputation saves nothing more).
- Pipeline: under 1F1B the first stage holds ``min(m, p)`` micro-batches of
  activations (Narayanan et al. 2021).
"""

from __future__ import annotations

from planner.cost_model.costs import StageCost
from planner.cost_model.efficiency import EFFICIENCY, Efficiency
from planner.errors import PlanError
from planner.hardware import GiB, GPUSpec
from planner.models import BF16_BYTES, ModelSpec
from planner.parallel import ParallelConfig

ADAM_STATE_BYTES = 12
"""fp32 master parameter, momentum and variance per parameter (ZeRO paper, K = 12)."""


# ---- model states ----------------------------------------------------------------------
def model_state_bytes(params: float, zero: int, dp: int) -> dict[str, float]:
    """Bytes per GPU of weights, gradients and Adam states for ``params`` parameters on one
    GPU of a ``dp``-way data-parallel group sharded with ZeRO stage ``zero``.

    ZeRO-1 shards the optimizer states, ZeRO-2 also the gradients, ZeRO-3 (FSDP full
    shard) also the parameters: 16, 4 + 12/N, 2 + 14/N, 16/N bytes per parameter.
    """
    n = max(dp, 1)
    weights = BF16_BYTES * params / (n if zero >= 3 else 1)
    gradients = BF16_BYTES * params / (n if zero >= 2 else 1)
    optimizer = ADAM_STATE_BYTES * params / (n if zero >= 1 else 1)
    return {"weights": weights, "gradients": gradients, "optimizer": optimizer}


def stage_params(model: ModelSpec, tp: int, pp: int) -> float:
    """Parameters on one GPU of the most-loaded pipeline stage (before any ZeRO sharding).

    Layers split evenly over ``pp`` stages (the last ones round up) and their matrices over
    ``tp``; norms are replicated. The embedding sits on the first stage and the output
    head on the last (Megatron's ``params_stage = (l/p) params_layer / t + V h / t``);
    with one stage, both. Every expert of a MoE layer is stored (no expert parallelism).
    """
    layers = -(-model.num_layers // pp)
    sharded = model.params_per_layer - model.norm_params_per_layer
    per_layer = sharded / tp + model.norm_params_per_layer
    table = model.vocab_size * model.hidden_size / tp
    if pp == 1:
        ends = model.embedding_params / tp + model.hidden_size
    else:
        ends = table
    return layers * per_layer + ends


def training_state_bytes(model: ModelSpec, par: ParallelConfig) -> dict[str, float]:
    """Weights, gradients and optimizer bytes per GPU of the most-loaded stage."""
    return model_state_bytes(stage_params(model, par.tp, par.pp), par.zero, par.dp)


def gathered_weight_bytes(model: ModelSpec, par: ParallelConfig) -> float:
    """Unsharded 16-bit parameters FSDP holds at once under ZeRO 3 (transient): the root
    unit (embedding and head) for the whole pass, plus the running layer and the
    prefetched next one. Zero without ZeRO 3 or data parallelism."""
    if par.zero < 3 or par.dp == 1:
        return 0.0
    layer = (model.params_per_layer - model.norm_params_per_layer) / par.tp + model.norm_params_per_layer
    return BF16_BYTES * (model.embedding_params / par.tp + 2 * layer)


# ---- activations -----------------------------------------------------------------------
def activation_bytes_per_layer(model: ModelSpec, seq_len: int, micro_batch: int, tp: int = 1,
                               sequence_parallel: bool = False, recompute: str = "none",
                               flash_attention: bool = True, dropout: bool = False) -> float:
    """Bytes one transformer layer keeps for backward, per micro-batch, on one GPU (16-bit).

    Korthikanti et al. 2022, Table 2, for ``s`` tokens, ``b`` sequences, hidden ``h``,
    ``a`` heads, tensor parallel ``t``:

    - none / selective without FlashAttention: ``sbh(10 + 24/t + 5as/(ht))`` and
      ``sbh(10 + 24/t)``; with sequence parallelism the first term is divided by ``t`` too
      (``34 sbh / t`` for selective + SP);
    - full recomputation: only the layer input, ``2sbh`` (``2sbh/t`` with SP).

    The 24 splits into query/key/value (2·(q + 2kv)/h), attention output (2q/h) and MLP
    intermediates (GELU: 4F/h; gated: 6F/h for gate, up and their product) so that GQA and
    SwiGLU models are counted exactly; the 10 is 4 (norm inputs) + 4 (norm outputs) + 2
    (dropout masks, only if the model trains with dropout; RL fine-tuning runs without).
    """
    s, b, h = seq_len, micro_batch, model.hidden_size
    sbh = s * b * h
    replicated = 8.0 + (2.0 if dropout else 0.0)
    if recompute == "full":
        return 2.0 * sbh / (tp if sequence_parallel else 1)
    attention = 2.0 * (model.q_size + 2 * model.kv_size) / h + 2.0 * model.q_size / h
    width = model.moe_intermediate_size * (model.experts_per_token + model.num_shared_experts) \
        if model.is_moe else model.intermediate_size
    mlp = (6.0 if model.mlp == "swiglu" else 4.0) * width / h
    split = attention + mlp
    scores = 0.0
    if not flash_attention and recompute == "none":
        scores = 5.0 * model.num_heads * s / h  # softmax out 2, dropout mask 1, dropout out 2 bytes
    per = replicated / (tp if sequence_parallel else 1) + (split + scores) / tp
    return sbh * per


def in_flight_micro_batches(micro_batches: int, pp: int) -> int:
    """Micro-batches whose activations the first 1F1B stage holds at once: min(m, p)."""
    return max(1, min(micro_batches, pp))


def activation_bytes(model: ModelSpec, par: ParallelConfig, seq_len: int, micro_batches: int,
                     flash_attention: bool = True, dropout: bool = False) -> float:
    """Peak activation bytes per GPU on the first pipeline stage during one training step.

    Stored activations of ``ceil(l/p)`` layers times the micro-batches in flight, plus,
    under full recomputation, the working set of the one layer being recomputed.
    """
    layers = -(-model.num_layers // par.pp)
    kw = dict(tp=par.tp, sequence_parallel=par.sequence_parallel and par.tp > 1,
              flash_attention=flash_attention, dropout=dropout)
    stored = activation_bytes_per_layer(model, seq_len, par.micro_batch, recompute=par.recompute, **kw)
    total = layers * stored * in_flight_micro_batches(micro_batches, par.pp)
    if par.recompute == "full":
        total += activation_bytes_per_layer(model, seq_len, par.micro_batch, recompute="none", **kw)
    return total


def logits_bytes(model: ModelSpec, tokens: float, tp: int) -> float:
    """Output-head bytes of one micro-batch of ``tokens`` on one GPU: bf16 logits plus the
    fp32 copy that log-softmax / cross-entropy keeps (vocab-parallel over ``tp``).

    Megatron counts ``4 s b V / t`` for this term (theoretical_memory_usage.py); the bf16
    logits add ``2 s b V / t``.
    """
    return tokens * model.vocab_size * (BF16_BYTES + 4) / tp


# ---- the fit check ---------------------------------------------------------------------
def usable_bytes(gpu: GPUSpec, eff: Efficiency = EFFICIENCY) -> float:
    """Device memory a framework can fill: the total less the CUDA context, NCCL buffers
    and allocator fragmentation (``eff.memory_reserve_gib``, unless the device sets its own)."""
    reserve = eff.memory_reserve_gib if gpu.reserve_gib is None else gpu.reserve_gib
    return gpu.memory_bytes - reserve * GiB


def fits(cost: StageCost, gpu: GPUSpec, eff: Efficiency = EFFICIENCY) -> bool:
    """Whether the stage's peak memory per GPU fits in ``gpu``."""
    return cost.memory_bytes <= usable_bytes(gpu, eff)


def require_fits(cost: StageCost, gpu: GPUSpec, what: str, eff: Efficiency = EFFICIENCY,
                 fix: str = "shard more (zero 3, larger tp/pp), recompute activations, or use more GPUs") -> None:
    """Raise ``PlanError`` naming the need, the capacity and the biggest parts unless it fits."""
    if fits(cost, gpu, eff):
        return
    parts = sorted(cost.memory_parts.items(), key=lambda kv: -kv[1])
    biggest = ", ".join(f"{k} {v / GiB:.1f}" for k, v in parts[:3] if v > 0)
    raise PlanError(
        f"{what} needs {cost.memory_gib:.1f} GiB per GPU ({biggest}) but {gpu.name} has "
        f"{gpu.memory_gib:g} GiB ({usable_bytes(gpu, eff) / GiB:.1f} usable): {fix}")
