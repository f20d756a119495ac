"""A lower bound on the iteration time, shown beside every plan.

Generation cannot beat the cluster's HBM bandwidth: every decode step of the longest
response reads the weights at least once, and every generated token reads the KV cache of
its context; nor its peak FLOP/s. Everything else (forward-only passes and training) is
at least its FLOPs over the cluster's peak. In a synchronous iteration generation comes
first, so the two add up.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LowerBound:
    generation_s: float
    compute_s: float

    @property
    def total_s(self) -> float:
        return self.generation_s + self.compute_s

    def to_dict(self) -> dict:
        return {"total_s": self.total_s, "generation_s": self.generation_s, "compute_s": self.compute_s}


def lower_bound(inputs, num_gpus: int) -> LowerBound:
    cluster = inputs.cluster
    peak = sum(g.gpu.peak_tflops * 1e12 * g.num_gpus for g in cluster.node_groups)
    hbm = sum(g.gpu.hbm_gbps * 1e9 * g.num_gpus for g in cluster.node_groups)
    share = num_gpus / cluster.num_gpus
    peak, hbm = peak * share, hbm * share
    gen_s, compute_flops = 0.0, 0.0
    for stage in inputs.dataflow.stages.values():
        if stage.role is None:
            continue
        model = inputs.models[stage.role]
        resp = stage.response.expected
        if stage.kind.value == "generate":
            tokens = stage.num_seqs * (stage.prompt_len + resp)
            flops = tokens * model.matmul_flops_per_token() + stage.num_seqs * resp * model.attention_flops_per_token(
                stage.prompt_len + resp / 2)
            kv_reads = stage.num_seqs * resp * (stage.prompt_len + resp / 2) * model.kv_bytes_per_token()
            weight_reads = stage.response.max_len * model.weight_bytes() * 1.0
            gen_s += max(flops / peak, (kv_reads + weight_reads) / hbm)
        else:
            tokens = stage.num_seqs * (stage.prompt_len + resp)
            fwd = tokens * model.forward_flops_per_token((stage.prompt_len + resp) / 2)
            factor = 3 * stage.epochs if stage.kind.value == "train" else 1
            compute_flops += fwd * factor
    return LowerBound(generation_s=gen_s, compute_s=compute_flops / peak)
