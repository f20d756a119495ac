"""Which requests run in which engine step: static and continuous batching schedules.

A schedule is a list of *pieces*: a request admitted at step ``start`` prefills ``prompt``
tokens in that step (sampling its next token) and then decodes one token per step, for
``tokens`` steps in all (steps ``start .. start + tokens - 1``). A request that is never
preempted is one piece; a preempted one is split into pieces as vLLM does it.

**Continuous batching** (vLLM, offline: every request submitted at step 0, FCFS):
a request leaves after the step that samples its last token and the head of the waiting
queue is admitted in the next step, its prefill sharing that step with the decodes. The
running set is bounded by ``max_num_seqs`` and by the KV cache:

- a sequence holding ``c`` tokens occupies ``ceil(c/16)`` vLLM blocks; we count ``c + 8``
  tokens (its expected rounding) so that the running total updates in O(1);
- a waiting request is admitted only if its prompt fits below the capacity less a 1%
  watermark (vLLM's block manager and Vidur use the same watermark);
- when the running sequences' growth would overflow the cache, the most recently admitted
  one is preempted (vLLM's recompute preemption, FCFS priority): it frees its blocks and
  goes back to the front of the queue; on re-admission it prefills its prompt plus the
  tokens it had generated and continues. Prefix-cache hits on that recompute are not
  modelled.

Prefills are not split by a token budget (``max_num_batched_tokens``): chunking spreads
the same prefill work over a few steps alongside decodes, which changes when first tokens
appear by a few steps but hardly the total time.

When the KV cache never binds, FCFS admission into ``max_num_seqs`` slots is list
scheduling and runs on a heap, O(N log S); the event loop is used only if the fast
schedule would overflow the cache.

**Static batching** (TensorRT-LLM / FasterTransformer sessions): requests run in batches
of ``batch_size`` that start together; the batch prefills in one step and decodes until
its longest request is done, finished sequences still occupying their slot.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass

import numpy as np

from planner.cost_model.step_time import StepLoad

BLOCK_TOKENS = 16
"""vLLM's default KV block size (tokens per block)."""
BLOCK_ROUNDING_TOKENS = BLOCK_TOKENS // 2
"""Expected unused tail of a sequence's last block."""
WATERMARK = 0.01
"""Fraction of KV blocks admission keeps free (vLLM block manager, Vidur config)."""


@dataclass(frozen=True)
class Schedule:
    """Pieces of requests on one engine (arrays aligned by piece)."""

    request: np.ndarray
    start: np.ndarray
    prompt: np.ndarray
    tokens: np.ndarray
    """Steps the piece runs (its prefill step plus its decode steps)."""
    preemptions: int = 0
    kv_bound: bool = False
    """The KV cache, not ``max_num_seqs``, held back an admission (more cache would change it)."""

    @property
    def num_steps(self) -> int:
        return int((self.start + self.tokens).max()) if len(self.start) else 0

    def first_step(self, num_requests: int) -> np.ndarray:
        """Step in which each request samples its first token (its first admission)."""
        first = np.full(num_requests, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, self.request, self.start)
        return first

    def last_step(self, num_requests: int) -> np.ndarray:
        """Step after which each request has all its tokens."""
        last = np.zeros(num_requests, dtype=np.int64)
        np.maximum.at(last, self.request, self.start + self.tokens - 1)
        return last


# ---- static batching -------------------------------------------------------------------------
def static_schedule(prompts: np.ndarray, outputs: np.ndarray, batch_size: int) -> Schedule:
    """Batches of ``batch_size`` consecutive requests, one after another; each decodes until
    its longest output is done."""
    n = len(outputs)
    batch = np.arange(n) // batch_size
    longest = np.maximum.reduceat(outputs, np.arange(0, n, batch_size))
    batch_start = np.concatenate([[0], np.cumsum(longest)[:-1]])
    return Schedule(request=np.arange(n), start=batch_start[batch], prompt=np.asarray(prompts, dtype=np.int64),
                    tokens=longest[batch])


# ---- continuous batching ---------------------------------------------------------------------
def continuous_schedule(prompts: np.ndarray, outputs: np.ndarray, max_num_seqs: int,
                        kv_capacity_tokens: float = float("inf")) -> Schedule:
    """vLLM-style continuous batching of requests all submitted at step 0 (module docstring)."""
    prompts = np.asarray(prompts, dtype=np.int64)
    outputs = np.asarray(outputs, dtype=np.int64)
    starts = _slot_schedule(outputs, max_num_seqs)
    admit_limit = kv_capacity_tokens * (1.0 - WATERMARK)
    if np.isinf(kv_capacity_tokens) or _peak_kv_tokens(prompts, outputs, starts) <= admit_limit:
        return Schedule(request=np.arange(len(outputs)), start=starts, prompt=prompts, tokens=outputs)
    return _kv_bound_schedule(prompts, outputs, max_num_seqs, kv_capacity_tokens)


def _slot_schedule(outputs: np.ndarray, slots: int) -> np.ndarray:
    """FCFS list scheduling: each request starts in the first step a slot is free."""
    if len(outputs) <= slots:
        return np.zeros(len(outputs), dtype=np.int64)
    free = [0] * slots
    starts = []
    for length in outputs.tolist():
        step = free[0]
        starts.append(step)
        heapq.heapreplace(free, step + length)
    return np.asarray(starts, dtype=np.int64)


def _peak_kv_tokens(prompts: np.ndarray, outputs: np.ndarray, starts: np.ndarray) -> float:
    """Largest KV footprint (tokens, with block rounding) of any step of a schedule."""
    ends = starts + outputs
    steps = int(ends.max()) + 1
    count = np.bincount(starts, minlength=steps) - np.bincount(ends, minlength=steps)
    base = (np.bincount(starts, prompts - starts, minlength=steps)
            - np.bincount(ends, prompts - starts, minlength=steps))
    count, base = np.cumsum(count), np.cumsum(base)
    used = base + np.arange(steps) * count + BLOCK_ROUNDING_TOKENS * count
    return float(used.max())


def _kv_bound_schedule(prompts: np.ndarray, outputs: np.ndarray, slots: int, capacity: float) -> Schedule:
    """Event loop over admissions, completions and preemptions (module docstring).

    Between events the running set is fixed and its KV footprint at step ``t`` is
    ``A + n * (t + 8)`` with ``A = sum(prompt - start)``: completions and overflows are
    found in closed form, never step by step.
    """
    push, pop = heapq.heappush, heapq.heappop
    admit_limit = capacity * (1.0 - WATERMARK)
    rounding = BLOCK_ROUNDING_TOKENS
    prompt = prompts.tolist()          # current prompt of each request (grows on preemption)
    left = outputs.tolist()            # tokens still to sample
    waiting = deque(range(len(left)))
    pieces: list[list[int]] = []       # [request, start, prompt, tokens, alive]
    finish: list[tuple[int, int]] = []  # heap of (end step, piece)
    order: list[int] = []              # running pieces in admission order (lazy deletion)
    base = running = preemptions = step = 0
    while waiting or running:
        while waiting and running < slots:
            r = waiting[0]
            p = prompt[r]
            if running and base + running * (step + rounding) + p + rounding > admit_limit:
                break
            waiting.popleft()
            push(finish, (step + left[r], len(pieces)))
            order.append(len(pieces))
            pieces.append([r, step, p, left[r], 1])
            base += p - step
            running += 1
        while not pieces[finish[0][1]][4]:
            pop(finish)
        end = finish[0][0]
        if running > 1 and base + running * (end - 1 + rounding) > capacity:
            # the step in which the running set outgrows the cache: preempt the newest
            step = max(step, int((capacity - base) // running) - rounding + 1)
            while not pieces[order[-1]][4]:
                order.pop()
            piece = pieces[order.pop()]
            r, generated = piece[0], step - piece[1]
            piece[3], piece[4] = generated, 0
            base -= piece[2] - piece[1]
            running -= 1
            prompt[r] += generated
            left[r] -= generated
            waiting.appendleft(r)
            preemptions += 1
            continue
        while finish and finish[0][0] == end:
            piece = pieces[pop(finish)[1]]
            if piece[4]:
                piece[4] = 0
                base -= piece[2] - piece[1]
                running -= 1
        step = end
    table = np.asarray(pieces, dtype=np.int64).reshape(-1, 5)
    table = table[table[:, 3] > 0]
    return Schedule(request=table[:, 0], start=table[:, 1], prompt=table[:, 2], tokens=table[:, 3],
                    preemptions=preemptions, kv_bound=True)


# ---- from pieces to per-step work ------------------------------------------------------------
def step_load(schedule: Schedule) -> StepLoad:
    """The per-step work of a schedule (difference arrays, no loop over steps)."""
    steps = schedule.num_steps
    start, prompt, tokens = schedule.start, schedule.prompt, schedule.tokens
    end = start + tokens
    first_decode = start + 1
    size = steps + 1

    def spread(values, lo, hi):
        """Sum of ``values`` over the pieces active in each step ``lo <= t < hi``."""
        return np.cumsum(np.bincount(lo, values, minlength=size) - np.bincount(hi, values, minlength=size))[:steps]

    ones = np.ones(len(start))
    decode_seqs = spread(ones, first_decode, np.maximum(end, first_decode))
    offset = spread((prompt - start).astype(float), first_decode, np.maximum(end, first_decode))
    decode_context = offset + np.arange(steps) * decode_seqs
    prompt_f = prompt.astype(float)
    return StepLoad(
        decode_seqs=decode_seqs,
        decode_context=decode_context,
        prefill_tokens=np.bincount(start, prompt_f, minlength=steps)[:steps],
        prefill_seqs=np.bincount(start, minlength=steps)[:steps].astype(float),
        prefill_pairs=np.bincount(start, prompt_f * (prompt_f + 1) / 2, minlength=steps)[:steps],
    )
