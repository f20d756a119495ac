"""One rank of a training or forward-only role: a Hugging Face decoder under FSDP2 (+TP).

A role with one DP rank is not wrapped in FSDP (nothing to shard; its hooks would only
cost time): its parameters stay plain tensors (or TP DTensors) and bf16 comes from autocast.

A :class:`TrainerWorker` is a Ray actor, one per GPU of its role's pool; the ranks of a
role form their own torch.distributed world (gloo on CPU, NCCL on GPU) with a 2-D mesh
``(dp, tp)``, TP fastest, so a TP group sits on consecutive GPUs of one node.
``head="lm"`` loads ``AutoModelForCausalLM`` (actor, reference); ``head="value"`` loads
``AutoModelForTokenClassification`` with one label, i.e. the LM body with a scalar value
head (critic, reward model; verl's critic does the same).

Loading: rank 0 reads the checkpoint; the other ranks build the model on the meta device,
every rank applies TP/FSDP, and rank 0's weights are broadcast into the shards, so host
memory holds the full model once per node-group leader, not once per rank.

Update semantics: :meth:`update` gets this rank's part of each mini-batch (one optimizer
step each) and splits it into ``num_micro`` micro-batches. ``loss_fn(out, micro_batch)``
returns the micro-batch's mean loss; the step's gradient is the sample-weighted mean over
the whole mini-batch (each micro-batch's loss is weighted by ``dp * rows / mini_batch_rows``
because FSDP averages gradients over DP), as verl's ``loss_scale_factor`` does. ``out`` is
the response-aligned logits ``(b, R, V)`` divided by the sampling temperature (``lm``),
or the values ``(b, R)`` (``value``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from executor.workers import dist as wdist

LossFn = Callable[[object, dict], tuple[object, dict]]
HEADS = ("lm", "value")


@dataclass(frozen=True)
class TrainerConfig:
    """Optimizer and process settings of one role; the layout comes from the plan."""

    lr: float = 1e-5
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = 1.0
    """Global gradient-norm clip (None: no clipping)."""
    seed: int = 0
    """Seeds the value head's init (same on every rank) and the ranks' RNGs."""
    cpu_threads: int = 1


class TrainerWorker:
    """One rank. Created by :class:`executor.workers.groups.TrainerGroup`; see its methods."""

    def __init__(self, rank: int, world_size: int, tp: int, model_path: str, head: str, layout: dict,
                 config: TrainerConfig, trainable: bool) -> None:
        assert head in HEADS, head
        self.rank, self.world_size, self.tp = rank, world_size, tp
        self.dp = world_size // tp
        self.model_path, self.head, self.layout = model_path, head, layout
        self.config, self.trainable = config, trainable
        self.device_type = wdist.device_type()
        if self.device_type == "cpu":
            wdist.limit_cpu_threads(config.cpu_threads)
        self.model = self.optimizer = None
        self.steps = 0

    # ---- setup ------------------------------------------------------------------------
    def rendezvous(self) -> tuple[str, int]:
        """(IP, free port) of this rank's node: rank 0's is the world's rendezvous."""
        return wdist.node_ip(), wdist.free_port()

    def setup(self, master_addr: str, master_port: int) -> None:
        import torch
        from torch.distributed.device_mesh import init_device_mesh

        from executor.workers import parallelize as par

        wdist.init_world(self.rank, self.world_size, master_addr, master_port, self.device_type)
        self._seed(self.config.seed + self.rank)
        self.mesh = init_device_mesh(self.device_type, (self.dp, self.tp), mesh_dim_names=("dp", "tp"))
        model, full_state, extra_buffers = self._load()
        if self.tp > 1:
            par.apply_tp(model, self.mesh["tp"])
        if self.trainable and self.layout.get("recompute", "none") != "none":
            par.apply_recompute(model)
        param_dtype = torch.bfloat16 if self.device_type == "cuda" else None
        # FSDP on one DP rank shards nothing but still runs its hooks in every pass (measured
        # on the tiny model: 64 forward+backward passes take 0.88 s with it, 0.50 s without),
        # so a single-rank role keeps plain (or TP) parameters and gets bf16 from autocast.
        self.sharded = self.dp > 1
        if self.sharded:
            par.apply_fsdp(model, self.mesh["dp"], reshard_after_forward=self.layout.get("zero", 3) == 3,
                           param_dtype=param_dtype)
        self._materialize(model, full_state, extra_buffers)
        self.model = model.eval()  # no dropout; update() switches to train mode (recompute needs it)
        if self.trainable:
            self.optimizer = torch.optim.AdamW(model.parameters(), lr=self.config.lr, betas=self.config.betas,
                                               weight_decay=self.config.weight_decay)

    def _model_class(self):
        from transformers import AutoModelForCausalLM, AutoModelForTokenClassification

        return AutoModelForCausalLM if self.head == "lm" else AutoModelForTokenClassification

    def _load(self):
        """Rank 0: the checkpoint (full weights kept for the broadcast); others: meta."""
        import torch
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(self.model_path)
        if self.head == "value":  # one scalar per token, no dropout (attributes, not model kwargs)
            config.num_labels = 1
            config.classifier_dropout = 0.0
        torch.manual_seed(self.config.seed)  # the value head's init, identical on every rank
        if self.rank == 0:
            model = self._model_class().from_pretrained(self.model_path, config=config, dtype=torch.float32)
            full_state = {k: v for k, v in model.state_dict().items()}
            persistent = set(full_state)
            buffers = {k: v.clone() for k, v in model.named_buffers() if k not in persistent}
        else:
            with torch.device("meta"):
                model = self._model_class().from_config(config, dtype=torch.float32)
            full_state, buffers = {}, None
        model.config.use_cache = False
        return model, full_state, buffers

    def _materialize(self, model, full_state: dict, buffers: dict | None) -> None:
        """Allocate the shards on the device and fill them from rank 0's weights."""
        import torch
        import torch.distributed as dist
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        device = torch.device(self.device_type, 0) if self.device_type == "cuda" else torch.device("cpu")
        model.to_empty(device=device)
        holder = [buffers]
        dist.broadcast_object_list(holder, src=0, device=device)  # non-persistent buffers (RoPE tables)
        for name, value in holder[0].items():
            module_name, _, buffer_name = name.rpartition(".")
            model.get_submodule(module_name)._buffers[buffer_name] = value.to(device)
        set_model_state_dict(model, full_state,
                             options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))
        full_state.clear()

    # ---- forward ----------------------------------------------------------------------
    def _forward(self, batch: dict, temperature: float):
        """Response-aligned logits / temperature (``lm``) or values (``value``)."""
        import contextlib

        import torch

        inputs = {k: batch[k].to(self._device) for k in ("input_ids", "attention_mask", "position_ids")}
        autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if self.device_type == "cuda" and not self.sharded
                    else contextlib.nullcontext())
        with autocast:
            out = self.model(**inputs, use_cache=False)
        P, R = batch["prompts"].shape[1], batch["responses"].shape[1]
        scores = out.logits[:, P - 1:P + R - 1].float()
        return scores / temperature if self.head == "lm" else scores.squeeze(-1)

    @property
    def _device(self):
        import torch

        return torch.device("cuda", 0) if self.device_type == "cuda" else torch.device("cpu")

    def _micro(self, batch: dict) -> list[dict]:
        from executor.workers.batch import chunks

        return chunks(batch, max(1, int(self.layout.get("micro_batch", 1))))

    def log_prob(self, batch: dict, temperature: float = 1.0):
        """Per-token log-probabilities of ``responses`` ``(b, R)`` (0 on padding), on CPU."""
        import torch

        assert self.head == "lm", "log_prob needs an lm head"
        outs = []
        with torch.no_grad():
            for mb in self._micro(batch):
                logits = self._forward(mb, temperature)
                picked = logits.gather(-1, mb["responses"].to(logits.device).unsqueeze(-1)).squeeze(-1)
                logp = picked - torch.logsumexp(logits, dim=-1)
                outs.append((logp * mb["response_mask"].to(logp.device)).cpu())
        return torch.cat(outs)

    def values(self, batch: dict):
        """Per-token values ``(b, R)`` of the value head (0 on padding), on CPU."""
        import torch

        assert self.head == "value", "values needs a value head"
        outs = []
        with torch.no_grad():
            for mb in self._micro(batch):
                values = self._forward(mb, 1.0)
                outs.append((values * mb["response_mask"].to(values.device)).cpu())
        return torch.cat(outs)

    # ---- update -----------------------------------------------------------------------
    def update(self, parts: list[dict], mini_batch_rows: list[int], num_micro: list[int], loss_fn: LossFn,
               temperature: float = 1.0) -> list[dict]:
        """One optimizer step per entry of ``parts`` (this rank's rows of a mini-batch).

        ``num_micro[i]`` is the same on every rank (FSDP needs every rank in every
        collective); a rank with fewer rows runs an extra micro-batch with weight 0.
        Returns per-step metrics: the row-weighted means of ``loss_fn``'s metrics, the
        loss, the gradient norm before clipping, and this rank's row count.
        """
        from executor.workers import parallelize as par
        from executor.workers.batch import batch_size, split

        assert self.trainable, "this role is forward-only"
        self.model.train()
        results = []
        for part, total_rows, micro_count in zip(parts, mini_batch_rows, num_micro):
            self.optimizer.zero_grad(set_to_none=True)
            rows = batch_size(part)
            sums: dict[str, float] = {}
            for piece in split(part, micro_count):
                n = batch_size(piece)
                weight = self.dp * n / total_rows
                if n == 0:  # keep step with the other ranks; contributes no gradient
                    piece, weight = {k: v[:1] for k, v in part.items()}, 0.0
                out = self._forward(piece, temperature)
                loss, metrics = loss_fn(out, {k: v.to(out.device) for k, v in piece.items()})
                (loss * weight).backward()
                for key, value in {"loss": loss, **metrics}.items():
                    sums[key] = sums.get(key, 0.0) + float(value.detach() if hasattr(value, "detach") else value) * n
            grad_norm = par.clip_grad_norm(list(self.model.parameters()), self.config.grad_clip)
            self.optimizer.step()
            self.steps += 1
            results.append({**{k: v / max(rows, 1) for k, v in sums.items()}, "grad_norm": grad_norm,
                            "rows": rows})
        self.model.eval()
        return results

    # ---- weights and checkpoints ------------------------------------------------------
    def full_state_dict(self) -> dict | None:
        """Every rank gathers; rank 0 returns ``{"version": optimizer steps, "weights":
        {name: tensor}}``, the full weights on CPU in the checkpoint's names (what vLLM
        loads); the other ranks return ``None``."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if self.rank != 0:
            return None
        return {"version": self.steps, "weights": {k: v.contiguous() for k, v in state.items()}}

    def save_checkpoint(self, folder: str) -> None:
        """Model and optimizer shards (torch.distributed.checkpoint, one file per rank) and
        each rank's RNG states; ``folder`` must be on storage every node sees."""
        import torch
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        model_state, optim_state = get_state_dict(self.model, self.optimizer or [])
        state = {"model": model_state, **({"optimizer": optim_state} if self.optimizer else {})}
        dcp.save(state, checkpoint_id=folder)
        torch.save({"steps": self.steps, "rng": self._rng_state()}, Path(folder) / f"rng_rank{self.rank}.pt")

    def load_checkpoint(self, folder: str) -> None:
        import torch
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        model_state, optim_state = get_state_dict(self.model, self.optimizer or [])
        state = {"model": model_state, **({"optimizer": optim_state} if self.optimizer else {})}
        dcp.load(state, checkpoint_id=folder)
        set_state_dict(self.model, self.optimizer or [], model_state_dict=state["model"],
                       optim_state_dict=state.get("optimizer", {}))
        saved = torch.load(Path(folder) / f"rng_rank{self.rank}.pt", weights_only=False)
        self.steps = saved["steps"]
        self._set_rng_state(saved["rng"])

    # ---- RNG --------------------------------------------------------------------------
    def _seed(self, seed: int) -> None:
        import numpy as np
        import torch

        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def _rng_state(self) -> dict:
        import numpy as np
        import torch

        state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
        if self.device_type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state()
        return state

    def _set_rng_state(self, state: dict) -> None:
        import numpy as np
        import torch

        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
        torch.set_rng_state(state["torch"])
        if "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"])

    def rng_sample(self) -> float:
        """A draw from this rank's torch RNG (tests check checkpoints restore the stream)."""
        import torch

        return float(torch.rand(()))

    def shutdown(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
