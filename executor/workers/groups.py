"""Worker groups: one per plan role, fanning a batch out over its ranks and gathering.

Every method returns a :class:`Pending` at once (the Ray calls are in flight); its
``result()`` waits and combines the ranks' answers, ``ready()`` polls. Calls to one group
run in submission order (Ray actors run one call at a time), calls to different groups
run concurrently, as the plan's pools do.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

from executor.workers.batch import Batch, batch_size, concat, rollout_batch, select, split
from executor.workers.rollout import RolloutWorker
from executor.workers.trainer import LossFn, TrainerConfig, TrainerWorker
from planner.errors import require


class Pending:
    """The answers of one group call: Ray object refs and how to combine their values."""

    def __init__(self, refs: list, combine: Callable[[list], Any] = lambda values: values) -> None:
        self.refs = refs
        self._combine = combine

    def ready(self) -> bool:
        import ray

        done, _ = ray.wait(self.refs, num_returns=len(self.refs), timeout=0)
        return len(done) == len(self.refs)

    def result(self, timeout: float | None = None):
        import ray

        return self._combine(ray.get(self.refs, timeout=timeout))


def _spawn(cls, placement, count: int, kwargs_of: Callable[[int], dict]) -> list:
    """``count`` actors of ``cls``, actor ``i`` on bundle ``i`` of the pool."""
    import ray

    remote = ray.remote(cls)
    return [remote.options(**placement.actor_options(i)).remote(**kwargs_of(i)) for i in range(count)]


def _pad_rows(batch: Batch, multiple: int) -> tuple[Batch, int]:
    """Repeat the last row until the row count divides ``multiple`` (FSDP ranks must run
    the same number of forwards); returns the padded batch and the real row count."""
    rows = batch_size(batch)
    extra = (-rows) % multiple
    if extra == 0:
        return batch, rows
    import torch

    filler = torch.full((extra,), rows - 1, dtype=torch.long)
    return concat([batch, select(batch, filler)]), rows


class TrainerGroup:
    """A training or forward-only role: ``tp * dp`` :class:`TrainerWorker` ranks.

    Methods (``batch`` is an :mod:`executor.workers.batch` dict):

    - ``log_prob(batch, temperature)`` -> ``(B, R)`` log-probs of ``responses`` (lm head);
    - ``values(batch)`` -> ``(B, R)`` values (value head; a reward model's score is the
      value at the last response token);
    - ``update(batch, loss_fn, mini_batches, epochs, seed, temperature)`` -> one metrics
      dict per optimizer step (mini-batches from :func:`algos.numerics.minibatches`);
    - ``full_state_dict()`` -> refs for a weight sync (see :func:`sync_weights`);
    - ``save_checkpoint(folder)`` / ``load_checkpoint(folder)``: model, optimizer, RNG.
    """

    def __init__(self, role: str, placement, model_path: str, head: str, layout: Mapping,
                 config: TrainerConfig = TrainerConfig(), trainable: bool = True) -> None:
        import ray

        self.role, self.layout = role, dict(layout)
        self.tp, self.dp = int(layout["tp"]), int(layout["dp"])
        world = self.tp * self.dp
        self.workers = _spawn(TrainerWorker, placement, world, lambda r: dict(
            rank=r, world_size=world, tp=self.tp, model_path=str(model_path), head=head, layout=self.layout,
            config=config, trainable=trainable))
        addr, port = ray.get(self.workers[0].rendezvous.remote())
        ray.get([w.setup.remote(addr, port) for w in self.workers])

    def _leaders(self, values: list) -> list:
        """The answers of TP rank 0 of every DP rank, in DP order."""
        return values[::self.tp]

    def _forward(self, method: str, batch: Batch, *args) -> Pending:
        import torch

        padded, rows = _pad_rows(batch, self.dp)
        pieces = split(padded, self.dp)
        refs = [getattr(w, method).remote(pieces[r // self.tp], *args) for r, w in enumerate(self.workers)]
        return Pending(refs, lambda values: torch.cat(self._leaders(values))[:rows])

    def log_prob(self, batch: Batch, temperature: float = 1.0) -> Pending:
        return self._forward("log_prob", batch, temperature)

    def values(self, batch: Batch) -> Pending:
        return self._forward("values", batch)

    def update(self, batch: Batch, loss_fn: LossFn, *, mini_batches: int = 1, epochs: int = 1, seed: int = 0,
               temperature: float = 1.0) -> Pending:
        from algos.numerics import minibatches

        micro = max(1, int(self.layout.get("micro_batch", 1)))
        parts: list[list[Batch]] = [[] for _ in range(self.dp)]
        totals, counts = [], []
        for mb in minibatches(batch_size(batch), mini_batches, epochs, seed):
            rows = len(mb.indices)
            require(rows >= self.dp, f"{self.role}: a mini-batch of {rows} responses cannot feed dp={self.dp} ranks: "
                                     "use fewer mini-batches or more prompts")
            pieces = split(select(batch, mb.indices), self.dp)
            for d, piece in enumerate(pieces):
                parts[d].append(piece)
            totals.append(rows)
            counts.append(math.ceil(max(batch_size(p) for p in pieces) / micro))
        refs = [w.update.remote(parts[r // self.tp], totals, counts, loss_fn, temperature)
                for r, w in enumerate(self.workers)]
        return Pending(refs, lambda values: _merge_step_metrics(self._leaders(values)))

    def full_state_dict(self) -> list:
        """Refs of every rank's gather; the first holds ``{"version", "weights"}``."""
        return [w.full_state_dict.remote() for w in self.workers]

    def save_checkpoint(self, folder: str) -> Pending:
        return Pending([w.save_checkpoint.remote(str(folder)) for w in self.workers], lambda _: None)

    def load_checkpoint(self, folder: str) -> Pending:
        return Pending([w.load_checkpoint.remote(str(folder)) for w in self.workers], lambda _: None)

    def shutdown(self) -> None:
        _shutdown(self.workers)


def _merge_step_metrics(per_rank: list[list[dict]]) -> list[dict]:
    """Row-weighted mean over DP ranks of each step's metrics (grad_norm is global already)."""
    merged = []
    for step in zip(*per_rank):
        rows = sum(m["rows"] for m in step)
        out = {k: sum(m[k] * m["rows"] for m in step) / rows for k in step[0] if k not in ("rows", "grad_norm")}
        merged.append({**out, "grad_norm": step[0]["grad_norm"], "rows": rows})
    return merged


class RolloutGroup:
    """The rollout role: ``replicas`` vLLM engines of ``tp`` :class:`RolloutWorker` ranks.

    - ``generate(prompts, n, max_tokens, temperature, top_p, top_k, seed)`` -> a
      :func:`~executor.workers.batch.rollout_batch` of ``len(prompts) * n`` rows (prompt
      ``i``'s samples together, in prompt order) plus ``policy_version`` ``(B,)``: the
      optimizer step of the weights that produced each row;
    - ``load_weights(payload_ref)``: every rank loads the trainer's full weights.

    Prompts are split over replicas in contiguous, near-equal parts.
    """

    def __init__(self, placement, model_path: str, layout: Mapping, *, seed: int = 0,
                 max_model_len: int | None = None) -> None:
        import ray

        self.tp, self.replicas = int(layout["tp"]), int(layout["replicas"])
        self.colocated = placement.colocated
        self.workers = _spawn(RolloutWorker, placement, self.tp * self.replicas, lambda i: dict(
            model_path=str(model_path), tp=self.tp, tp_rank=i % self.tp, replica=i // self.tp, layout=dict(layout),
            seed=seed, max_model_len=max_model_len, colocated=self.colocated))
        leaders = ray.get([self.workers[r * self.tp].rendezvous.remote() for r in range(self.replicas)])
        pad_ids = ray.get([w.start.remote(*leaders[i // self.tp]) for i, w in enumerate(self.workers)])
        self.pad_id = pad_ids[0]

    def generate(self, prompts: Sequence[Sequence[int]], *, max_tokens: int, n: int = 1, temperature: float = 1.0,
                 top_p: float = 1.0, top_k: int = -1, seed: int | None = None) -> Pending:
        require(len(prompts) > 0, "generate needs at least one prompt")
        sampling = dict(n=n, max_tokens=max_tokens, temperature=temperature, top_p=top_p, top_k=top_k, seed=seed)
        bounds = [round(len(prompts) * r / self.replicas) for r in range(self.replicas + 1)]
        refs = []
        for i, worker in enumerate(self.workers):
            lo, hi = bounds[i // self.tp], bounds[i // self.tp + 1]
            if hi > lo:
                refs.append(worker.generate.remote([list(p) for p in prompts[lo:hi]], sampling, lo))
        return Pending(refs, self._gather)

    def _gather(self, values: list) -> Batch:
        import torch

        parts = [v for v in values if v is not None]
        merged = {k: [x for p in parts for x in p[k]] for k in ("prompts", "responses", "log_probs", "prompt_index")}
        batch = rollout_batch(merged["prompts"], merged["responses"], merged["log_probs"], merged["prompt_index"],
                              self.pad_id)
        batch["policy_version"] = torch.tensor([p["version"] for p in parts for _ in p["responses"]])
        return batch

    def load_weights(self, payload_ref) -> Pending:
        """Every rank of every replica loads ``payload_ref`` (a Ray ref of the trainer's
        rank-0 ``full_state_dict``); Ray moves it through its object store."""
        return Pending([w.load_weights.remote(payload_ref) for w in self.workers], lambda v: v[0])

    def read_weights(self, names: Sequence[str]) -> Pending:
        """Every rank's engine copies of ``names`` (unsharded parameters, e.g. the norms)."""
        return Pending([w.read_weights.remote(list(names)) for w in self.workers])

    def shutdown(self) -> None:
        _shutdown(self.workers)


def sync_weights(trainer: TrainerGroup, rollout: RolloutGroup) -> Pending:
    """Trainer's full weights -> every rollout rank; ``result()`` is the policy version.

    Through Ray's object store in both placements: colocated (same GPUs, so the same
    node: the object stays in that node's shared memory and each rank's load is a copy
    in place into its engine) and across pools (Ray ships the object once per node).
    verl and the cost model use an NCCL broadcast across pools instead; the object store
    path needs no process group spanning two roles' worlds and works on gloo and NCCL
    alike, at the price of a host round trip that the traces measure.
    """
    gathers = trainer.full_state_dict()
    loads = rollout.load_weights(gathers[0])
    return Pending(gathers[1:] + loads.refs, lambda values: values[-1])


def verify_sync(trainer: TrainerGroup, rollout: RolloutGroup) -> float:
    """Largest difference between the trainer's weights and every engine's copy, over the
    parameters vLLM keeps as they are (norm weights); 0.0 after an exact sync.

    Gathers the trainer's full weights once more: a check for tests and ``--verify-sync``,
    not for every step of a large model.
    """
    import ray

    gathers = trainer.full_state_dict()
    payload = ray.get(gathers[0])
    ray.get(gathers[1:])
    names = [n for n in payload["weights"] if n.endswith("norm.weight")]
    require(bool(names), "the model has no norm weights to compare: --verify-sync needs a Llama-style model")
    worst = 0.0
    for engine in rollout.read_weights(names).result():
        require(set(engine) == set(names), f"the engines have no parameters named {sorted(set(names) - set(engine))}")
        for name in names:
            worst = max(worst, float((engine[name].float() - payload["weights"][name].float()).abs().max()))
    return worst


def _shutdown(workers: list) -> None:
    import ray

    try:
        ray.get([w.shutdown.remote() for w in workers], timeout=60)
    except Exception:  # a dead worker has nothing left to close
        pass
    for w in workers:
        ray.kill(w)
