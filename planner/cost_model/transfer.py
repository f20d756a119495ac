"""Moving weights and batches: resharding, cross-pool weight sync, batch moves, offload.

- ``reshard_colocated``: the actor's weights go from its training layout to its
  generation layout on the same GPUs before each rollout.
  * Megatron-style training (ZeRO < 3, weights split by tp/pp and replicated over dp): the
    3D-HybridEngine of HybridFlow (§5, Table 2). Generation TP groups take ranks at stride
    ``t*p/t_g`` and the micro-DP groups of ``d_g = t*p/t_g`` consecutive ranks each
    all-gather their training shards into one generation shard: every GPU receives
    ``(t*p - t_g*p_g) / (t_g*p_g*t*p) * M`` bytes (zero when the layouts match), peak
    memory ``M / (t_g*p_g)``. The gather writes straight into the generation buffer.
    When ``t_g`` does not divide ``t*p`` the zero-redundancy grouping does not exist and
    each model-parallel group gathers the whole model (HybridFlow-V: ``(tp-1)/tp * M``).
  * FSDP / ZeRO-3 training: what verl's FSDP->vLLM path does (``rollout_mode`` in
    fsdp_workers.py): every rank materialises each full parameter (DTensor
    ``full_tensor()``: an all-gather over the whole training group, ``(N-1)/N * M``
    bytes per GPU over the run) and the engine loads its ``1/t_g`` slice tensor by
    tensor (an HBM copy plus ``eff.weight_sync_per_tensor_s`` per tensor); the full tensor
    is freed after each copy.
  Both then wake the engine (``eff.engine_wake_s``: re-map weight and KV-cache memory).
- ``sync_across_pools``: trainer pool -> separate rollout pool (verl's one-step-off and
  checkpoint engine, OpenRLHF): trainers gather full tensors (all-gather over the trainer
  pool: the trainer is taken to be FSDP, the usual disaggregated setup), trainer rank 0
  broadcasts each over NCCL to every rollout GPU, which loads its slice tensor by tensor.
  The broadcast group spans the rollout pool's nodes plus the sender's node, and NCCL
  runs one channel per NIC of the group's GPUs on a node (comm.py).
- ``move_batch``: token ids, log-probs, rewards between worker groups through the driver
  (verl's single controller: worker -> host -> driver -> host -> worker).
- ``offload`` / ``onload``: bytes per GPU over the host link (PCIe), all GPUs in parallel.
"""

from __future__ import annotations

from planner.cost_model.comm import collective
from planner.cost_model.compute import memory_time
from planner.cost_model.costs import StageCost
from planner.cost_model.efficiency import EFFICIENCY, Efficiency
from planner.errors import require
from planner.hardware import GPUSpec, GpuSet
from planner.models import BF16_BYTES, ModelSpec
from planner.parallel import GenerationConfig, ParallelConfig, check_divides_model


def num_weight_tensors(model: ModelSpec) -> int:
    """Parameter tensors of a Hugging Face checkpoint (what a tensor-by-tensor sync moves):
    per layer q, k, v, o, two norms and the MLP matrices (every expert's, plus the router,
    for MoE); then the embedding, the final norm and an untied head."""
    if model.is_moe:
        mlp = (model.num_experts + model.num_shared_experts) * model.mlp_matrices + 1
    else:
        mlp = model.mlp_matrices
    ends = 2 + (0 if model.tied_embeddings else 1)
    return model.num_layers * (4 + 2 + mlp) + ends


def hybrid_engine_volume(model_bytes: float, train: ParallelConfig, gen_tp: int, gen_pp: int = 1) -> float:
    """Bytes each GPU receives in the training -> generation transition (HybridFlow Table 2)."""
    mp, gmp = train.tp * train.pp, gen_tp * gen_pp
    if gmp >= mp:
        return 0.0 if gmp % mp == 0 else model_bytes * (mp - 1) / mp
    if mp % gmp:
        return model_bytes * (mp - 1) / mp
    return model_bytes * (mp - gmp) / (gmp * mp)


def _load_time(model: ModelSpec, shard_bytes: float, gpu: GPUSpec, eff: Efficiency) -> float:
    """Copy each received tensor's slice into the engine's buffers (read + write)."""
    return memory_time(2 * shard_bytes, gpu, eff) + num_weight_tensors(model) * eff.weight_sync_per_tensor_s


def reshard_colocated(model: ModelSpec, train: ParallelConfig, gen: GenerationConfig, gpus: GpuSet,
                      eff: Efficiency = EFFICIENCY) -> StageCost:
    """Training layout -> generation layout of the same actor on the same GPUs (module docstring)."""
    check_divides_model(model, gen.tp)
    require(train.world_size == gen.world_size,
            f"colocated resharding needs the same GPUs: training {train.describe()} uses {train.world_size} "
            f"but generation {gen.describe()} uses {gen.world_size}; make tp*replicas equal tp*pp*dp")
    require(gpus.num_gpus >= train.world_size,
            f"layout {train.describe()} needs {train.world_size} GPUs but the GPU set has {gpus.num_gpus}")
    m = model.weight_bytes(BF16_BYTES)
    shard = m / gen.tp
    if train.zero >= 3:
        group = train.world_size
        volume = m * (group - 1) / group
        gather = collective("all_gather", m, group, gpus, eff=eff).time_s
        load = _load_time(model, shard, gpus.gpu, eff)
        method = "fsdp_full_tensor"
        peak = max(model.vocab_size * model.hidden_size, model.hidden_size * model.intermediate_size) * BF16_BYTES
    else:
        mp = train.tp * train.pp
        volume = hybrid_engine_volume(m, train, gen.tp)
        zero_redundancy = gen.tp <= mp and mp % gen.tp == 0
        group = mp // gen.tp if zero_redundancy else mp
        out = shard if zero_redundancy else m
        gather = collective("all_gather", out, group, gpus, eff=eff).time_s if volume > 0 else 0.0
        load = 0.0 if zero_redundancy else memory_time(2 * shard, gpus.gpu, eff)
        method = "hybrid_engine" if zero_redundancy else "naive_grouping"
        peak = 0.0 if zero_redundancy else m
    return StageCost(
        time_parts={"gather": gather, "load": load, "wake": eff.engine_wake_s},
        memory_parts={"generation_weights": shard, "gather_buffer": peak},
        info={"comm_bytes_per_gpu": volume, "gather_group": float(group), "model_bytes": m,
              "fsdp": float(train.zero >= 3), "zero_redundancy": float(method == "hybrid_engine"),
              "tensors": float(num_weight_tensors(model))},
    )


def _broadcast_group(train_gpus: GpuSet, gen: GenerationConfig, gen_gpus: GpuSet) -> GpuSet:
    """Trainer rank 0 plus every rollout GPU, on the rollout pool's nodes and one more."""
    size = 1 + gen.world_size
    nodes = 1 + -(-gen.world_size // gen_gpus.gpus_per_node)
    return GpuSet(gpu=gen_gpus.gpu, num_gpus=size, gpus_per_node=-(-size // nodes),
                  inter_node_gbps=min(train_gpus.inter_node_gbps, gen_gpus.inter_node_gbps),
                  intra_node_latency_us=gen_gpus.intra_node_latency_us,
                  inter_node_latency_us=max(train_gpus.inter_node_latency_us, gen_gpus.inter_node_latency_us))


def sync_across_pools(model: ModelSpec, train_gpus: GpuSet, gen: GenerationConfig, gen_gpus: GpuSet,
                      eff: Efficiency = EFFICIENCY) -> StageCost:
    """Trainer pool -> rollout pool weight sync by NCCL broadcast (module docstring)."""
    check_divides_model(model, gen.tp)
    require(gen.world_size <= gen_gpus.num_gpus,
            f"generation {gen.describe()} needs {gen.world_size} GPUs but the rollout pool has {gen_gpus.num_gpus}")
    m = model.weight_bytes(BF16_BYTES)
    gather = collective("all_gather", m, train_gpus.num_gpus, train_gpus, eff=eff).time_s
    group = _broadcast_group(train_gpus, gen, gen_gpus)
    broadcast = collective("broadcast", m, group.num_gpus, group, eff=eff).time_s
    load = _load_time(model, m / gen.tp, gen_gpus.gpu, eff)
    total = gather + broadcast + load
    return StageCost(
        time_parts={"gather": gather, "broadcast": broadcast, "load": load},
        memory_parts={"receive_buffer": max(model.vocab_size * model.hidden_size,
                                            model.hidden_size * model.intermediate_size) * BF16_BYTES},
        info={"model_bytes": m, "effective_gbps": m / total / 1e9, "broadcast_ranks": float(group.num_gpus),
              "tensors": float(num_weight_tensors(model))},
    )


def move_batch(nbytes: float, src: GpuSet, dst: GpuSet, same_pool: bool, eff: Efficiency = EFFICIENCY) -> StageCost:
    """A batch of ``nbytes`` from one worker group to another through the driver.

    Workers copy their shards to host memory in parallel; the driver collects them over
    its network link and dispatches them again, then workers copy to device. When both
    groups are the same single-node pool the driver runs on that node (verl places it on
    the head node) and Ray's object store hands the batch over in shared memory: no
    network leg.
    """
    require(nbytes >= 0, f"batch size in bytes must be non-negative, got {nbytes}")
    if nbytes == 0:
        return StageCost(time_parts={"host_copy": 0.0, "network": 0.0, "latency": 0.0}, info={"bytes": 0.0})
    host = (nbytes / src.num_gpus / (src.gpu.host_link_gbps * 1e9 * eff.host_link_fraction)
            + nbytes / dst.num_gpus / (dst.gpu.host_link_gbps * 1e9 * eff.host_link_fraction))
    local = same_pool and src.nodes == 1 and dst.nodes == 1
    link = min(src.inter_node_gbps, dst.inter_node_gbps) * 1e9 * eff.network_fraction
    network = 0.0 if local else 2 * nbytes / link
    return StageCost(time_parts={"host_copy": host, "network": network, "latency": eff.batch_move_latency_s},
                     info={"bytes": float(nbytes)})


def _host_link(nbytes_per_gpu: float, gpu: GPUSpec, eff: Efficiency, part: str) -> StageCost:
    require(nbytes_per_gpu >= 0, f"bytes per GPU must be non-negative, got {nbytes_per_gpu}")
    rate = gpu.host_link_gbps * eff.host_link_fraction
    return StageCost(time_parts={part: nbytes_per_gpu / (rate * 1e9)},
                     info={"bytes_per_gpu": float(nbytes_per_gpu), "gbps": rate})


def offload(nbytes_per_gpu: float, gpu: GPUSpec, eff: Efficiency = EFFICIENCY) -> StageCost:
    """Device -> host copy of ``nbytes_per_gpu`` on every GPU at once (each has its own link)."""
    return _host_link(nbytes_per_gpu, gpu, eff, "offload")


def onload(nbytes_per_gpu: float, gpu: GPUSpec, eff: Efficiency = EFFICIENCY) -> StageCost:
    """Host -> device copy of ``nbytes_per_gpu`` on every GPU at once."""
    return _host_link(nbytes_per_gpu, gpu, eff, "onload")


__all__ = ["reshard_colocated", "sync_across_pools", "move_batch", "offload", "onload",
           "hybrid_engine_volume", "num_weight_tensors"]
