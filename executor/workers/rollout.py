"""One GPU of a rollout replica: a vLLM engine rank in a Ray actor.

A replica of generation TP ``t`` is ``t`` :class:`RolloutWorker` actors, one per GPU,
each running vLLM's engine in-process with ``distributed_executor_backend=
"external_launcher"`` (verl's SPMD rollout does the same): the ranks of a replica form
their own torch.distributed world, every rank receives the same prompts and sampling
seed, and rank 0's outputs are the replica's. One process per GPU, no vLLM-spawned
processes, so Ray's placement is exactly the plan's.

Weights come from the trainer as full, checkpoint-named tensors (the Hugging Face names);
:class:`WeightLoadExtension`, installed in the engine's worker, hands them to
``model_runner.reload_weights``, which shards them for TP and repacks them as at load
time (a plain ``load_weights`` fails on CPU, where weights are repacked after loading).

Colocated with trainers (same GPUs), a replica sleeps after each ``generate`` (vLLM's
sleep level 1: weights offloaded to host, KV cache freed) and wakes the weights before a
weight load and the KV cache before the next ``generate``. vLLM's CPU build has no sleep
mode (it logs "not supported" and keeps its memory), so on CPU the engine keeps its KV
cache (``VLLM_CPU_KVCACHE_SPACE`` GiB, 1 by default here) while the trainers run.
"""

from __future__ import annotations

import os

from executor.workers import dist as wdist

CPU_KV_CACHE_GIB = 1
CPU_MEMORY_UTILIZATION = 0.1
"""On CPU vLLM's ``gpu_memory_utilization`` is a fraction of host memory: keep it small."""


class WeightLoadExtension:
    """Mixed into vLLM's worker (``worker_extension_cls``); called via ``collective_rpc``."""

    def load_full_weights(self, weights: dict) -> int:
        self.model_runner.reload_weights(weights_iterator=iter(weights.items()))
        return len(weights)

    def read_weights(self, names: list[str]) -> dict:
        """The engine's own copies of ``names`` (parameters vLLM neither fuses nor shards,
        such as the norms, keep the checkpoint's names and shapes)."""
        wanted = set(names)
        return {n: p.detach().cpu().clone() for n, p in self.model_runner.model.named_parameters() if n in wanted}


def _checkpoint_dtype(model_path: str) -> str:
    """The checkpoint's own dtype for float32 models, else vLLM's "auto".

    vLLM's "auto" runs float32 checkpoints in bfloat16 on CPU, so the weights a trainer
    syncs would no longer be bit-equal in the engine; the tiny test models are float32.
    """
    import json
    from pathlib import Path

    try:
        config = json.loads((Path(model_path) / "config.json").read_text())
    except (OSError, ValueError):
        return "auto"
    return "float32" if (config.get("dtype") or config.get("torch_dtype")) == "float32" else "auto"


class RolloutWorker:
    """One TP rank of one replica. Created by :class:`executor.workers.groups.RolloutGroup`."""

    def __init__(self, model_path: str, tp: int, tp_rank: int, replica: int, layout: dict, seed: int,
                 max_model_len: int | None, colocated: bool) -> None:
        self.model_path, self.tp, self.tp_rank, self.replica = model_path, tp, tp_rank, replica
        self.layout, self.seed, self.max_model_len, self.colocated = layout, seed, max_model_len, colocated
        self.device_type = wdist.device_type()
        self.llm = None
        self.sleeping: list[str] = []
        """vLLM memory tags released by sleep and not yet woken."""
        self.version = 0
        """Optimizer steps of the policy these weights came from (0: the checkpoint)."""

    def rendezvous(self) -> tuple[str, int]:
        return wdist.node_ip(), wdist.free_port()

    def start(self, master_addr: str, master_port: int) -> int:
        """Build the engine; returns the tokenizer's pad id (its EOS id if it has no pad)."""
        os.environ.update(RANK=str(self.tp_rank), LOCAL_RANK="0", WORLD_SIZE=str(self.tp),
                          MASTER_ADDR=master_addr, MASTER_PORT=str(master_port))
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        on_cpu = self.device_type == "cpu"
        if on_cpu:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(CPU_KV_CACHE_GIB))
        from vllm import LLM

        utilization = self.layout.get("gpu_memory_utilization", 0.9)
        self.llm = LLM(
            model=self.model_path, tensor_parallel_size=self.tp, distributed_executor_backend="external_launcher",
            dtype=_checkpoint_dtype(self.model_path), seed=self.seed + self.replica, max_model_len=self.max_model_len,
            gpu_memory_utilization=min(utilization, CPU_MEMORY_UTILIZATION) if on_cpu else utilization,
            max_num_seqs=int(self.layout.get("max_num_seqs", 256)), enforce_eager=on_cpu,
            enable_sleep_mode=self.colocated and not on_cpu, logprobs_mode="processed_logprobs",
            worker_extension_cls=f"{__name__}.WeightLoadExtension",
        )
        tokenizer = self.llm.get_tokenizer()
        return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    @property
    def can_sleep(self) -> bool:
        return self.colocated and self.device_type == "cuda"

    def generate(self, prompts: list[list[int]], sampling: dict, first_index: int) -> dict | None:
        """Sample ``sampling["n"]`` responses per prompt; rank 0 returns them, others ``None``.

        ``sampling``: n, max_tokens, temperature, top_p, top_k, seed (optional; request ``i``
        then uses ``seed + first_index + i``, so a sample does not depend on how prompts are
        split over replicas). Log-probs are those of the distribution sampled from
        (after temperature, top-p, top-k: vLLM's ``processed_logprobs``).
        """
        from vllm import SamplingParams

        self._wake(list(self.sleeping))
        seed = sampling.get("seed")
        base = dict(n=sampling.get("n", 1), max_tokens=sampling["max_tokens"],
                    temperature=sampling.get("temperature", 1.0), top_p=sampling.get("top_p", 1.0),
                    top_k=sampling.get("top_k", -1), logprobs=0)
        params = [SamplingParams(**base, seed=None if seed is None else seed + first_index + i)
                  for i in range(len(prompts))]
        outputs = self.llm.generate([{"prompt_token_ids": list(p)} for p in prompts], params, use_tqdm=False)
        if self.can_sleep:
            self.llm.sleep(level=1)
            self.sleeping = ["weights", "kv_cache"]
        if self.tp_rank != 0:
            return None
        result = {"prompts": [], "responses": [], "log_probs": [], "prompt_index": [], "version": self.version}
        for i, out in enumerate(outputs):
            for sample in out.outputs:
                tokens = list(sample.token_ids)
                result["prompts"].append(list(out.prompt_token_ids))
                result["responses"].append(tokens)
                result["log_probs"].append([lp[t].logprob for t, lp in zip(tokens, sample.logprobs)])
                result["prompt_index"].append(first_index + i)
        return result

    def load_weights(self, payload: dict) -> int:
        """Load ``{"version": steps, "weights": {name: tensor}}`` from a trainer; returns the version."""
        self._wake(["weights"])  # the KV cache stays freed until the next generate
        self.llm.collective_rpc("load_full_weights", args=(payload["weights"],))
        self.version = payload["version"]
        return self.version

    def read_weights(self, names: list[str]) -> dict:
        """This rank's engine copies of ``names`` (see :class:`WeightLoadExtension`)."""
        self._wake(["weights"])
        return self.llm.collective_rpc("read_weights", args=(list(names),))[0]

    def _wake(self, tags: list[str]) -> None:
        tags = [t for t in tags if t in self.sleeping]
        if tags:
            self.llm.wake_up(tags=tags)
            self.sleeping = [t for t in self.sleeping if t not in tags]

    def shutdown(self) -> None:
        import torch.distributed as dist

        self.llm = None
        if dist.is_initialized():
            dist.destroy_process_group()
