"""The batch the worker groups pass around: a dict of tensors with one row per sample.

Layout (verl's, so numerics written for it read the same): prompts left-padded to ``P``,
responses right-padded to ``R``, the model input their concatenation.

================== ============ =====================================================
key                shape        meaning
================== ============ =====================================================
prompts            (B, P) long  prompt tokens, left-padded with the pad id
responses          (B, R) long  response tokens, right-padded with the pad id
input_ids          (B, P+R)     ``cat(prompts, responses)``
attention_mask     (B, P+R)     1 on real tokens
position_ids       (B, P+R)     0.. along the real tokens (pads repeat the neighbour)
response_mask      (B, R) float 1 on response tokens
rollout_log_probs  (B, R) float vLLM's log-probability of each sampled token (0 on pads)
prompt_index       (B,) long    which prompt of the generate call a sample answers
================== ============ =====================================================

Other engineers' stages add their own ``(B, ...)`` tensors (advantages, returns, old
log-probs); every helper here treats all keys alike.
"""

from __future__ import annotations

from typing import Sequence

import torch

Batch = dict[str, torch.Tensor]


def batch_size(batch: Batch) -> int:
    sizes = {k: v.shape[0] for k, v in batch.items()}
    assert len(set(sizes.values())) == 1, f"batch rows disagree: {sizes}"
    return next(iter(sizes.values()))


def split(batch: Batch, parts: int) -> list[Batch]:
    """``parts`` contiguous pieces whose sizes differ by at most one."""
    pieces = {k: torch.tensor_split(v, parts) for k, v in batch.items()}
    return [{k: pieces[k][i] for k in batch} for i in range(parts)]


def chunks(batch: Batch, size: int) -> list[Batch]:
    """Contiguous pieces of ``size`` rows (the last may be smaller)."""
    n = batch_size(batch)
    return [{k: v[i:i + size] for k, v in batch.items()} for i in range(0, n, size)]


def concat(batches: Sequence[Batch]) -> Batch:
    return {k: torch.cat([b[k] for b in batches]) for k in batches[0]}


def select(batch: Batch, rows: torch.Tensor) -> Batch:
    return {k: v[rows] for k, v in batch.items()}


def rollout_batch(prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]],
                  log_probs: Sequence[Sequence[float]], prompt_index: Sequence[int], pad_id: int) -> Batch:
    """Pad one generate call's samples into a :data:`Batch`."""
    P = max(len(p) for p in prompts)
    R = max(1, max(len(r) for r in responses))
    B = len(prompts)
    prompt_t = torch.full((B, P), pad_id, dtype=torch.long)
    response_t = torch.full((B, R), pad_id, dtype=torch.long)
    logp_t = torch.zeros((B, R), dtype=torch.float32)
    response_mask = torch.zeros((B, R), dtype=torch.float32)
    prompt_mask = torch.zeros((B, P), dtype=torch.long)
    for i, (p, r, lp) in enumerate(zip(prompts, responses, log_probs)):
        if p:
            prompt_t[i, P - len(p):] = torch.tensor(p)
            prompt_mask[i, P - len(p):] = 1
        if r:
            response_t[i, :len(r)] = torch.tensor(r)
            logp_t[i, :len(r)] = torch.tensor(lp, dtype=torch.float32)
            response_mask[i, :len(r)] = 1
    attention_mask = torch.cat([prompt_mask, response_mask.long()], dim=1)
    position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
    return {
        "prompts": prompt_t, "responses": response_t, "input_ids": torch.cat([prompt_t, response_t], dim=1),
        "attention_mask": attention_mask, "position_ids": position_ids, "response_mask": response_mask,
        "rollout_log_probs": logp_t, "prompt_index": torch.tensor(list(prompt_index), dtype=torch.long),
    }
