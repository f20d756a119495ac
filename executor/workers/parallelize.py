"""Parallelisms applied to a Hugging Face decoder, in order: TP, recompute, FSDP2.

Each is a function of the model and a device mesh, like torchtitan's ``parallelize_llama``.
The model is a Llama-style ``*ForCausalLM`` or ``*ForTokenClassification`` (value head):
``model.model.layers`` holds the decoder blocks with ``self_attn.{q,k,v,o}_proj`` and
``mlp.{gate,up,down}_proj``.
"""

from __future__ import annotations

import torch
from torch import nn

ATTENTION_COLUMNS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")
MLP_COLUMNS = ("mlp.gate_proj", "mlp.up_proj")
ROWS = ("self_attn.o_proj", "mlp.down_proj")


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    body = getattr(model, "model", None)
    layers = getattr(body, "layers", None)
    if layers is None:
        raise TypeError(f"{type(model).__name__} has no model.layers: the executor trains Llama-style decoders")
    return list(layers)


def apply_tp(model: nn.Module, tp_mesh) -> None:
    """Megatron-style TP inside every decoder block: Q/K/V and gate/up split by columns
    (heads), O and down by rows, one all-reduce after each; embeddings, norms and the
    head stay replicated over TP (FSDP still shards them over DP).

    Sequence parallelism (the plan's ``sp``) is not applied: it only saves activation
    memory in the norms, and the numerics are the same without it.
    """
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    plan = {name: ColwiseParallel() for name in ATTENTION_COLUMNS + MLP_COLUMNS}
    plan.update({name: RowwiseParallel() for name in ROWS})
    for layer in decoder_layers(model):
        # src_data_rank=None: no scatter now (other ranks may hold meta tensors); the
        # weights are broadcast into the shards afterwards.
        parallelize_module(layer, tp_mesh, plan, src_data_rank=None)


def apply_recompute(model: nn.Module) -> None:
    """Recompute each decoder block in backward (the plan's ``full``; ``selective`` runs
    as ``full`` too: less memory than planned, somewhat more time)."""
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def apply_fsdp(model: nn.Module, dp_mesh, reshard_after_forward: bool, param_dtype: torch.dtype | None) -> None:
    """FSDP2 (``fully_shard``) per decoder block, then the root (embeddings, norm, head).

    ``reshard_after_forward`` is the plan's ZeRO stage: True for ZeRO-3; False keeps the
    gathered parameters from forward to backward (ZeRO-2's memory, which is at most
    ZeRO-1's and ZeRO-0's). ``param_dtype`` is the compute dtype (bf16 on GPUs); the
    sharded master weights, gradients' reduction and AdamW states stay float32.
    """
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=dp_mesh, reshard_after_forward=reshard_after_forward, mp_policy=mp)
    fully_shard(model, mesh=dp_mesh, reshard_after_forward=reshard_after_forward, mp_policy=mp)


def clip_grad_norm(params, max_norm: float) -> float:
    """Clip the global gradient norm over DTensor gradients that may live on different
    meshes (FSDP-only embeddings next to FSDP+TP blocks), returning the norm before clipping."""
    from torch.distributed.tensor import DTensor

    squares = []
    for p in params:
        if p.grad is None:
            continue
        norm = p.grad.norm(2)
        if isinstance(norm, DTensor):
            norm = norm.full_tensor()
        squares.append(norm.float() ** 2)
    total = torch.stack(squares).sum().sqrt() if squares else torch.zeros(())
    if max_norm is not None and max_norm > 0:
        scale = min(1.0, max_norm / (float(total) + 1e-6))
        for p in params:
            if p.grad is not None and scale < 1.0:
                p.grad.mul_(scale)
    return float(total)
