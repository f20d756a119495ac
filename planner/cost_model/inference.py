"""Forward-only passes: log-probabilities (reference, actor) and values/rewards (critic,
reward model) over a batch of complete sequences: ``forward_pass``.

The same per-layer model as training (compute.py) without backward: ``num_seqs`` are
split over ``dp`` ranks and run in micro-batches of ``micro_batch`` sequences through a
``pp``-stage pipeline, ``(m + p - 1)`` stage slots of which ``p - 1`` are the fill bubble.
Tensor parallelism costs 2 all-reduces of ``b*s*h`` per layer. With ZeRO 3 (FSDP) every
micro-batch all-gathers the parameters; FSDP prefetches layer ``i+1`` while layer ``i``
runs, so only the gather time beyond the forward compute is exposed, plus the first
layer's gather.
"""

from __future__ import annotations

from planner.cost_model import memory as mem
from planner.cost_model.comm import collective, send_recv_time
from planner.cost_model.compute import head_forward, layer_forward
from planner.cost_model.costs import StageCost
from planner.cost_model.efficiency import EFFICIENCY, Efficiency
from planner.cost_model.training import check_layout, model_forward_flops_per_token, stage_layers
from planner.errors import require
from planner.hardware import GpuSet
from planner.models import BF16_BYTES, ModelSpec
from planner.parallel import ParallelConfig

HEADS = ("lm", "value")


def forward_pass(model: ModelSpec, par: ParallelConfig, gpus: GpuSet, num_seqs: int, seq_len: int,
                 tokens_per_seq: float | None = None, head: str = "lm", eff: Efficiency = EFFICIENCY) -> StageCost:
    """Time and memory of a forward-only pass over ``num_seqs`` sequences.

    ``head="lm"`` computes vocabulary logits and log-probabilities; ``head="value"`` a
    scalar per token (critic values, reward scores), with no vocabulary logits.
    ``seq_len`` sizes memory, ``tokens_per_seq`` (default ``seq_len``) the time.
    """
    check_layout(model, par, gpus)
    require(head in HEADS, f"unknown head {head!r}: use one of {', '.join(HEADS)}")
    require(num_seqs >= 1 and seq_len >= 1,
            f"number of sequences and sequence length must be positive, got {num_seqs} and {seq_len}")
    tps = float(seq_len if tokens_per_seq is None else tokens_per_seq)
    require(0 < tps <= seq_len, f"tokens per sequence must be in (0, seq_len={seq_len}], got {tps}")
    per_rank = -(-num_seqs // par.dp)
    m = -(-per_rank // par.micro_batch)
    tokens = par.micro_batch * tps
    sp = par.sequence_parallel and par.tp > 1
    layers = stage_layers(model, par.pp)
    layer = layer_forward(model, tokens, tps, par.tp, gpus.gpu, sp, eff)
    compute = layers * layer.total + head_forward(model, tokens, par.tp, gpus.gpu, head, eff).total
    tp_comm = layers * 2 * collective("all_reduce", tokens * model.hidden_size * BF16_BYTES, par.tp, gpus, 1, eff).time_s
    params = mem.stage_params(model, par.tp, par.pp)
    time_parts = {
        "compute": m * compute,
        "tp_comm": m * tp_comm,
        "pp_comm": _pp_comm(model, par, gpus, tokens, m, eff),
        "bubble": (par.pp - 1) * (compute + tp_comm),
        "dp_comm": m * _gather_exposed(par, gpus, params, compute, layers, eff),
    }
    time_s = sum(time_parts.values())
    flops = num_seqs * tps * model_forward_flops_per_token(model, tps)
    info = {
        "flops": flops,
        "tokens_per_s_per_gpu": num_seqs * tps / time_s / gpus.num_gpus,
        "tflops_per_gpu": flops / time_s / gpus.num_gpus / 1e12,
        "micro_batches": float(m),
    }
    return StageCost(time_parts=time_parts, memory_parts=forward_memory(model, par, seq_len, head, eff), info=info)


def _pp_comm(model: ModelSpec, par: ParallelConfig, gpus: GpuSet, tokens: float, m: int, eff: Efficiency) -> float:
    if par.pp == 1:
        return 0.0
    crosses = gpus.nodes_spanned(2, par.tp * par.dp) > 1
    return (m + par.pp - 1) * send_recv_time(tokens * model.hidden_size * BF16_BYTES / par.tp, gpus, crosses, eff)


def _gather_exposed(par: ParallelConfig, gpus: GpuSet, params: float, compute: float, layers: int,
                    eff: Efficiency) -> float:
    """Per micro-batch: the ZeRO-3 parameter all-gather not hidden behind the forward."""
    if par.zero < 3 or par.dp == 1:
        return 0.0
    gather = collective("all_gather", params * BF16_BYTES, par.dp, gpus, par.tp, eff).time_s
    return max(0.0, gather - compute) + gather / max(layers, 1)


def forward_memory(model: ModelSpec, par: ParallelConfig, seq_len: int, head: str = "lm",
                   eff: Efficiency = EFFICIENCY) -> dict[str, float]:
    """Bytes per GPU of a forward-only pass: bf16 weights (sharded over dp under ZeRO 3) and
    the transient working set of one layer and the head for one micro-batch."""
    params = mem.stage_params(model, par.tp, par.pp)
    weights = BF16_BYTES * params / (par.dp if par.zero >= 3 else 1)
    working = mem.activation_bytes_per_layer(model, seq_len, par.micro_batch, tp=par.tp,
                                             sequence_parallel=par.sequence_parallel and par.tp > 1,
                                             flash_attention=eff.flash_attention)
    parts = {"weights": weights, "activations": working,
             "logits": mem.logits_bytes(model, par.micro_batch * seq_len, par.tp) if head == "lm" else 0.0}
    gathered = mem.gathered_weight_bytes(model, par)
    if gathered:
        parts["gathered_weights"] = gathered
    return parts
