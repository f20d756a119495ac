"""The executor's Ray worker groups: vLLM rollouts, FSDP2 trainers, weight sync.

Typical use (the controller's real backend maps stage calls onto these)::

    placement = Placement.create(plan)                       # executor.resources
    actor  = TrainerGroup("actor", placement.pool_of("actor"), path, "lm", plan["roles"]["actor"]["layout"])
    ref    = TrainerGroup("ref", placement.pool_of("ref"), path, "lm", layout, trainable=False)
    critic = TrainerGroup("critic", placement.pool_of("critic"), path, "value", layout)
    rollout = RolloutGroup(placement.pool_of("rollout"), path, plan["roles"]["rollout"]["layout"])

    batch = rollout.generate(prompt_ids, n=5, max_tokens=256, temperature=1.0).result()   # rollout.generate
    old = actor.log_prob(batch).result()                                                 # actor.log_prob
    batch["ref_log_probs"] = ref.log_prob(batch).result()                                # ref.log_prob
    batch["values"] = critic.values(batch).result()                                      # critic.values
    metrics = actor.update(batch, loss_fn, mini_batches=4).result()                      # actor.update
    version = sync_weights(actor, rollout).result()                                      # rollout.sync_weights

Methods and their data:

- ``RolloutGroup.generate(prompts: list[list[int]], *, max_tokens, n=1, temperature=1.0,
  top_p=1.0, top_k=-1, seed=None)`` -> :class:`Pending` of a batch (see
  :mod:`executor.workers.batch`: ``prompts``, ``responses``, ``input_ids``,
  ``attention_mask``, ``position_ids``, ``response_mask``, ``rollout_log_probs``,
  ``prompt_index``, ``policy_version``), ``len(prompts) * n`` rows, grouped by prompt.
- ``TrainerGroup.log_prob(batch, temperature=1.0)`` -> ``(B, R)`` float tensor;
  ``TrainerGroup.values(batch)`` -> ``(B, R)``; both 0 on padding.
- ``TrainerGroup.update(batch, loss_fn, *, mini_batches=1, epochs=1, seed=0,
  temperature=1.0)`` -> list of per-step metric dicts (``loss``, ``grad_norm``, ``rows``
  and the loss's own metrics). ``loss_fn(out, micro_batch) -> (loss, metrics)``: ``out``
  is the logits ``(b, R, V)`` / temperature for an lm head, the values ``(b, R)`` for a
  value head; ``micro_batch`` is the batch's rows on the worker's device; ``loss`` is the
  micro-batch's mean. It is pickled to the workers, so use a module-level function or a
  ``functools.partial`` of one.
- ``sync_weights(trainer, rollout)`` -> the policy version (optimizer steps) now in
  every rollout engine; call it after every update (on-policy) or one iteration late
  (one-step-off); ``batch["policy_version"]`` lets a driver check.
- ``save_checkpoint(folder)`` / ``load_checkpoint(folder)`` on a ``TrainerGroup``.
- ``shutdown()`` on every group before ``ray.shutdown()``.

On CPU (vLLM's CPU build, gloo) everything runs with Ray's logical GPUs; set
``VLLM_CPU_KVCACHE_SPACE`` (GiB, default 1 here) for the engines' KV cache.
"""

from executor.workers.groups import Pending, RolloutGroup, TrainerGroup, sync_weights, verify_sync
from executor.workers.trainer import TrainerConfig

__all__ = ["Pending", "RolloutGroup", "TrainerConfig", "TrainerGroup", "sync_weights", "verify_sync"]
