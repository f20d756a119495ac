"""Model architectures: the ``ModelSpec`` of the data model.

A spec comes from the built-in zoo (``planner/data/model_zoo.yaml``) or from a Hugging Face
``config.json`` (Llama/Qwen/Mistral style and GPT-2 style). Parameter counts, FLOPs and KV
bytes are derived here from the architecture, never typed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from planner.errors import require

BF16_BYTES = 2


@dataclass(frozen=True)
class ModelSpec:
    """A decoder-only transformer, dense or mixture-of-experts.

    Parameter counts are cached per spec (``cached_property``): the search asks for them
    tens of thousands of times; the fields they derive from are frozen."""

    name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    """Dense MLP width (per expert width is ``moe_intermediate_size``)."""
    vocab_size: int
    head_dim: int = 0
    """Per-head width; 0 means hidden_size // num_heads."""
    mlp: str = "swiglu"
    """``swiglu`` (3 matrices: gate, up, down) or ``gelu`` (2 matrices)."""
    tied_embeddings: bool = False
    num_experts: int = 0
    """Routed experts per MoE layer; 0 for a dense model."""
    experts_per_token: int = 0
    moe_intermediate_size: int = 0
    num_shared_experts: int = 0
    max_position_embeddings: int = 0
    qkv_bias: bool = False
    """Biases on the q, k and v projections (Qwen2/Qwen2.5)."""
    qk_norm: bool = False
    """Per-head RMSNorm on queries and keys (Qwen3)."""

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "vocab_size"):
            require(getattr(self, name) > 0, f"model {self.name!r}: {name} must be positive, got {getattr(self, name)}")
        require(self.num_heads % self.num_kv_heads == 0,
                f"model {self.name!r}: num_heads {self.num_heads} is not a multiple of num_kv_heads {self.num_kv_heads}")
        require(self.mlp in ("swiglu", "gelu"), f"model {self.name!r}: mlp must be swiglu or gelu, got {self.mlp!r}")
        if self.head_dim == 0:
            require(self.hidden_size % self.num_heads == 0,
                    f"model {self.name!r}: hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}")
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_heads)
        if self.is_moe:
            require(0 < self.experts_per_token <= self.num_experts and self.moe_intermediate_size > 0,
                    f"model {self.name!r}: a MoE model needs 0 < experts_per_token <= num_experts and moe_intermediate_size")
        else:
            require(self.intermediate_size > 0, f"model {self.name!r}: intermediate_size must be positive")

    # ---- shape -------------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def q_size(self) -> int:
        """Width of the query projection output (heads x head_dim)."""
        return self.num_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        """Width of one of the key/value projection outputs."""
        return self.num_kv_heads * self.head_dim

    @property
    def mlp_matrices(self) -> int:
        return 3 if self.mlp == "swiglu" else 2

    # ---- parameters --------------------------------------------------------------------
    @cached_property
    def attention_params_per_layer(self) -> int:
        h = self.hidden_size
        return h * (self.q_size + 2 * self.kv_size) + self.q_size * h

    @cached_property
    def dense_mlp_params_per_layer(self) -> int:
        return self.mlp_matrices * self.hidden_size * self.intermediate_size

    @cached_property
    def expert_params(self) -> int:
        """Parameters of one routed expert."""
        return self.mlp_matrices * self.hidden_size * self.moe_intermediate_size

    @cached_property
    def mlp_params_per_layer(self) -> int:
        """All MLP parameters of a layer (every expert for MoE, plus the router)."""
        if not self.is_moe:
            return self.dense_mlp_params_per_layer
        experts = (self.num_experts + self.num_shared_experts) * self.expert_params
        return experts + self.hidden_size * self.num_experts

    @cached_property
    def active_mlp_params_per_layer(self) -> int:
        """MLP parameters one token touches (active experts and the router for MoE)."""
        if not self.is_moe:
            return self.dense_mlp_params_per_layer
        return (self.experts_per_token + self.num_shared_experts) * self.expert_params + self.hidden_size * self.num_experts

    @property
    def norm_params_per_layer(self) -> int:
        return 2 * self.hidden_size

    @cached_property
    def attention_extra_params_per_layer(self) -> int:
        """q/k/v biases and q/k norm weights: no GEMM FLOPs, but weights to store and shard."""
        bias = self.q_size + 2 * self.kv_size if self.qkv_bias else 0
        return bias + (2 * self.head_dim if self.qk_norm else 0)

    @cached_property
    def params_per_layer(self) -> int:
        return (self.attention_params_per_layer + self.attention_extra_params_per_layer
                + self.mlp_params_per_layer + self.norm_params_per_layer)

    @cached_property
    def embedding_params(self) -> int:
        """Input embedding plus the output head unless tied."""
        table = self.vocab_size * self.hidden_size
        return table if self.tied_embeddings else 2 * table

    @cached_property
    def num_params(self) -> int:
        return self.num_layers * self.params_per_layer + self.embedding_params + self.hidden_size

    @cached_property
    def active_params(self) -> int:
        """Parameters touched per token (equals ``num_params`` for a dense model)."""
        per_layer = (self.attention_params_per_layer + self.attention_extra_params_per_layer
                     + self.active_mlp_params_per_layer + self.norm_params_per_layer)
        return self.num_layers * per_layer + self.embedding_params + self.hidden_size

    def weight_bytes(self, bytes_per_param: int = BF16_BYTES) -> float:
        return self.num_params * bytes_per_param

    # ---- FLOPs (forward, per token) ----------------------------------------------------
    def matmul_flops_per_token(self) -> float:
        """Forward GEMM FLOPs per token: projections, (active) MLP and the logits head.

        2 FLOPs per multiply-accumulate; the Megatron formula's terms without attention
        scores (Narayanan et al. 2021; megatron/training/training.py).
        """
        per_layer = 2 * (self.attention_params_per_layer + self.active_mlp_params_per_layer)
        return self.num_layers * per_layer + 2 * self.hidden_size * self.vocab_size

    def attention_flops_per_token(self, context: float) -> float:
        """Forward FLOPs of QK^T and AV for one token attending over ``context`` tokens."""
        return self.num_layers * 4 * self.q_size * context

    def forward_flops_per_token(self, context: float) -> float:
        return self.matmul_flops_per_token() + self.attention_flops_per_token(context)

    # ---- KV cache ----------------------------------------------------------------------
    def kv_bytes_per_token(self, tp: int = 1, bytes_per_elem: int = BF16_BYTES) -> float:
        """KV-cache bytes per token on one GPU of a TP group (vLLM: n_kv_dev = max(1, n_kv // tp))."""
        kv_heads_per_gpu = max(1, self.num_kv_heads // tp)
        return 2 * self.num_layers * kv_heads_per_gpu * self.head_dim * bytes_per_elem
