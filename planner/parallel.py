"""Parallel layouts: ``ParallelConfig`` (training and forward-only) and ``GenerationConfig``.

Like torchtitan's ``ParallelDims``, each config checks itself and names every factor in
its error.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.errors import require

RECOMPUTE = ("none", "selective", "full")


@dataclass(frozen=True)
class ParallelConfig:
    """How one model is split across ``tp * pp * dp`` GPUs for training or inference."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    zero: int = 3
    """Sharding of model states over dp: 0 none, 1 optimizer, 2 +gradients, 3 +parameters (FSDP full shard)."""
    sequence_parallel: bool = False
    recompute: str = "none"
    """Activation recomputation: none, selective (attention core) or full (every layer)."""
    micro_batch: int = 1
    """Sequences per micro-batch per data-parallel rank."""

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "dp", "micro_batch"):
            value = getattr(self, name)
            require(isinstance(value, int) and value >= 1, f"{name} must be a positive integer, got {value!r}")
        require(self.zero in (0, 1, 2, 3), f"zero must be 0, 1, 2 or 3, got {self.zero!r}")
        require(self.recompute in RECOMPUTE, f"recompute must be one of {', '.join(RECOMPUTE)}, got {self.recompute!r}")

    @property
    def world_size(self) -> int:
        return self.tp * self.pp * self.dp

    def describe(self) -> str:
        parts = [f"tp{self.tp}", f"pp{self.pp}", f"dp{self.dp}"]
        if self.zero:
            parts.append(f"zero{self.zero}")
        if self.sequence_parallel and self.tp > 1:
            parts.append("sp")
        if self.recompute != "none":
            parts.append(f"rc-{self.recompute}")
        parts.append(f"mb{self.micro_batch}")
        return "/".join(parts)

    def to_dict(self) -> dict:
        return {"tp": self.tp, "pp": self.pp, "dp": self.dp, "zero": self.zero,
                "sequence_parallel": self.sequence_parallel, "recompute": self.recompute,
                "micro_batch": self.micro_batch}

    @classmethod
    def from_dict(cls, data: dict) -> "ParallelConfig":
        return cls(**data)


@dataclass(frozen=True)
class GenerationConfig:
    """A rollout layout: ``replicas`` independent inference engines of ``tp`` GPUs each."""

    tp: int = 1
    replicas: int = 1
    gpu_memory_utilization: float = 0.9
    """Fraction of device memory the engine may take (vLLM's knob of the same name)."""
    max_num_seqs: int = 256
    """Most sequences decoded together per engine (vLLM's default is 256)."""

    def __post_init__(self) -> None:
        for name in ("tp", "replicas", "max_num_seqs"):
            value = getattr(self, name)
            require(isinstance(value, int) and value >= 1, f"{name} must be a positive integer, got {value!r}")
        require(0 < self.gpu_memory_utilization <= 1,
                f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")

    @property
    def world_size(self) -> int:
        return self.tp * self.replicas

    def describe(self) -> str:
        return f"tp{self.tp}x{self.replicas}"

    def to_dict(self) -> dict:
        return {"tp": self.tp, "replicas": self.replicas, "gpu_memory_utilization": self.gpu_memory_utilization,
                "max_num_seqs": self.max_num_seqs}

    @classmethod
    def from_dict(cls, data: dict) -> "GenerationConfig":
        return cls(**data)


def check_divides_model(model, tp: int) -> None:
    """TP shards attention heads and MLP columns: heads must split evenly over ``tp``."""
    require(model.num_heads % tp == 0,
            f"tp={tp} does not divide the {model.num_heads} attention heads of {model.name}: use a tp that divides {model.num_heads}")
    require(model.num_kv_heads % tp == 0 or tp % model.num_kv_heads == 0,
            f"tp={tp} cannot split the {model.num_kv_heads} KV heads of {model.name}: use a divisor or multiple of {model.num_kv_heads}")
