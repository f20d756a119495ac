"""Every calibrated parameter of the cost model, in one place, with its source.

Parameters are few and physical: the fraction of a datasheet peak that real kernels and
collectives reach, and fixed per-call overheads. They are shared by every GPU, model and
layout; there is no per-case correction anywhere in the cost model. ``plan validate``
checks the whole model against published measurements (planner/data/measurements.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Efficiency:
    # ---- compute (shared) -----------------------------------------------------------------
    matmul_peak_fraction: float = 0.72
    """Best fraction of dense BF16 peak a large GEMM reaches end to end (cuBLAS on big
    shapes reaches 0.75-0.9 of peak; Calculon uses 0.95-0.99 at >=128 GFLOP before its
    other losses). Set so that large prefills reproduce TensorRT-LLM's 2048-token TTFT."""
    matmul_half_tokens: float = 48.0
    """GEMM efficiency falls with the token (M) dimension as m / (m + m_half): a GEMM of
    m_half rows reaches half the best rate (tile quantisation and launch cost; Calculon's
    efficiency-by-size table shows the same knee)."""
    attention_peak_fraction: float = 0.5
    """FlashAttention-2 forward reaches about 50-70% of A100 peak, backward less
    (Dao 2023, Fig. 5-6)."""
    hbm_fraction: float = 0.8
    """Achieved fraction of HBM bandwidth for streaming kernels (Calculon: 0.9 at >=100 MB;
    DistServe's 13B decode floor implies about 0.65-0.8 with overheads)."""

    # ---- communication (shared) -------------------------------------------------------------
    nvlink_fraction: float = 0.8
    """NCCL bus bandwidth over the per-direction NVLink rate: A100 230/300 = 0.77,
    H100 370/450 = 0.82 (nccl-tests issues 149 and 212)."""
    pcie_fraction: float = 0.7
    """Bus bandwidth over the PCIe per-direction rate for GPUs without NVLink."""
    network_fraction: float = 0.9
    """Achieved fraction of InfiniBand line rate (Calculon; notes: about 0.9x line rate)."""
    collective_launch_us: float = 6.0
    """Fixed latency of one NCCL collective call (kernel launch and the first handshake).
    NCCL's own tuning model uses a ring base latency of 3.6 us (LL) to 8.4 us (Simple)
    (nccl src/graph/tuning.cc, baseLat)."""
    collective_step_latency_us: float = 1.0
    """Latency of one hop of a ring collective inside a node; NCCL's model uses 0.47 us
    (LL) to 3.4 us (Simple) per NVLink hop (tuning.cc, hwLat). Across nodes the
    cluster's inter-node latency applies per hop."""

    # ---- memory -----------------------------------------------------------------------------
    memory_reserve_gib: float = 2.0
    """Device memory no framework can fill: CUDA context (about 0.5 GiB), NCCL
    communicator buffers (0.5-1 GiB) and caching-allocator fragmentation."""

    # ---- training (planner/cost_model/training.py, inference.py) ------------------------------
    elementwise_traffic: float = 2.0
    """HBM traffic of the non-GEMM kernels of a layer (norms, activation function, residual
    adds, dropout, rotary embedding) in one forward pass, as a multiple of the bytes the
    layer stores for backward (Korthikanti et al.'s ``34 sbh``): each stored tensor is
    written once and its input read once. Backward moves twice the forward traffic
    (gradient in, gradient out, saved tensor read)."""
    flash_attention: bool = True
    """The attention kernel of the stack. FlashAttention (Dao et al. 2022) in every current
    training and inference stack (verl's FSDP and Megatron-Core backends, vLLM): causal,
    scores never stored. ``False`` prices the unfused kernels of Megatron-LM before 2022:
    full ``s x s`` score GEMMs (masked afterwards), then scale-mask-softmax and dropout
    streaming the scores through HBM, which are stored for backward (``5as/h``)."""
    grad_reduce_bytes: int = 4
    """Bytes per gradient element in the data-parallel reduction: fp32, the default of
    Megatron-Core (fp32 ``main_grad`` buffers unless ``--grad-reduce-in-bf16``) and of
    verl's FSDP mixed-precision policy (``reduce_dtype: fp32``)."""

    # ---- generation -----------------------------------------------------------------------
    # (owned by planner/cost_model/generation.py, step_time.py, transfer.py)
    roofline_norm: float = 2.0
    """How a kernel that both streams bytes and does math combines the two times:
    ``t = (t_compute^p + t_memory^p)^(1/p)``. ``p = inf`` is the ideal roofline (perfect
    overlap, ``max``), ``p = 1`` no overlap (sum). Near the ridge point real GEMMs reach
    neither roof (a 128-token prefill of a 7B model on A100 sits there); ``p = 2`` gives
    1/sqrt(2) of the roof at the ridge and the roof itself far from it. llm-analysis's pure
    roofline (``max``) is 13.8% (tp1) to 24% (tp2) low on FasterTransformer 13B decode
    (notes: llm-analysis)."""
    gen_layer_overhead_s: float = 20e-6
    """GPU time per decoder layer per engine step beyond its GEMMs, attention and HBM
    traffic: the ~10 kernel boundaries of a layer (norms, rotary, activation, residual,
    KV-cache write, projections) at ~2 us of launch ramp and tail each (CUDA launch latency
    is 2-5 us; under CUDA graphs about 1-2 us). Vidur models the same per-layer kernels
    (norms, add, rotary) as separate measured operators."""
    gen_step_overhead_s: float = 1.0e-3
    """Host time per engine step not hidden behind the GPU: scheduling, input preparation,
    sampler launch and output processing. Vidur's A100 profile of vLLM
    (data/profiling/a100/cpu_overheads.csv, Llama-2-7B tp1, batch 8, medians): schedule
    0.17 + prepare inputs 0.29 + sampler 0.89 + process outputs 0.62 = 2.0 ms; vLLM >= 0.6
    overlaps output processing with the next step (async output processing) and V1 moves
    detokenisation to another process, leaving about half of that exposed."""
    engine_non_torch_gib: float = 0.5
    """Memory inside vLLM's ``gpu_memory_utilization`` budget that is neither weights,
    activations nor KV cache: NCCL and cuBLAS workspaces, CUDA-graph pools (vLLM's start-up
    log reports "non_torch_memory" of 0.2-0.6 GiB)."""
    host_link_fraction: float = 0.8
    """Achieved fraction of the GPU-host link (PCIe) for pinned-memory copies: about
    25-26 GB/s of PCIe Gen4 x16's 32 GB/s and ~50 GB/s of Gen5's 64 (nvbandwidth /
    bandwidthTest host-to-device figures)."""
    engine_wake_s: float = 0.2
    """Fixed cost of waking a sleeping vLLM engine beyond moving bytes: re-mapping the
    weight and KV-cache memory (cuMemCreate/cuMemMap) and resetting the block manager.
    vLLM's sleep-mode blog (2025-10) reports wake-ups of 0.1-0.4 s for small models, where
    the weight copy itself is a small part."""
    weight_sync_per_tensor_s: float = 250e-6
    """Per-tensor cost of streaming weights into a vLLM engine tensor by tensor (verl's
    ``update_weights`` after FSDP ``full_tensor()``, its NCCL checkpoint engine, OpenRLHF's
    broadcast): Python work on both sides (DTensor gather dispatch and name mapping on the
    trainer, vLLM's per-tensor ``weight_loader`` narrow-and-copy) plus a collective launch,
    about 0.1 ms each. Consistent with verl's checkpoint-engine benchmark: Qwen3-30B-A3B
    (about 19k tensors, 128 experts x 3 per layer) syncs in ~7 s, 8.25 GB/s, far below its
    400 Gb/s links, i.e. bound by per-tensor work, not bytes."""
    batch_move_latency_s: float = 5e-3
    """Fixed cost of moving a batch between worker groups through the driver (verl's single
    controller): two Ray remote-call round trips and (de)serialising the DataProto; Ray
    task overhead is about 1 ms per call, pickling tensors of a few MB adds a few ms."""


EFFICIENCY = Efficiency()
"""The parameters in force. Functions take an ``eff`` argument defaulting to this."""
