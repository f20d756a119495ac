"""``plan estimate generate``: rollout generation of a batch of requests on one engine.

``--batch B`` runs B requests with the same lengths as one static batch (TensorRT-LLM
style); ``--num-prompts N`` submits N requests at once to a vLLM-style engine with
continuous batching (at most ``--max-num-seqs`` running, bounded by the KV cache).
``--output-dist`` replaces the fixed output length by a distribution (workload.py's
spec, e.g. ``lognormal:400,250,max=1024``): the requests get its quantiles in a fixed
shuffled order, so the estimate is reproducible.
"""

from __future__ import annotations

import json

import numpy as np

from planner.cli.argtypes import fraction, positive_int
from planner.errors import require

SHUFFLE_SEED = 0
"""Seed of the order in which distributed output lengths are submitted."""




def add_generate_arguments(parser) -> None:
    """Flags of ``plan estimate generate``."""
    parser.description = ("Time, throughput and memory of generating responses on one inference engine "
                          "(static batch or vLLM continuous batching).")
    parser.add_argument("--model", required=True, help="a zoo name (plan models) or a config.json path")
    parser.add_argument("--gpu", required=True, help="GPU type, e.g. a100-80gb, h100-80gb")
    parser.add_argument("--tp", type=positive_int, default=1, help="tensor-parallel size of the engine (default 1)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--batch", type=positive_int, help="one static batch of this many requests")
    mode.add_argument("--num-prompts", type=positive_int,
                      help="this many requests submitted at once, continuous batching")
    parser.add_argument("--input-len", type=positive_int, required=True, help="prompt tokens per request")
    parser.add_argument("--output-len", type=positive_int, default=None,
                        help="generated tokens per request (or give --output-dist)")
    parser.add_argument("--output-dist", default=None,
                        help="output length distribution instead of --output-len: fixed:N, normal:MEAN,STD, "
                             "lognormal:MEAN,STD, optional ,max=N; or file:PATH")
    parser.add_argument("--max-num-seqs", type=positive_int, default=None,
                        help="most sequences decoded together (default 256; --batch sets it to the batch)")
    parser.add_argument("--gpu-memory-utilization", type=fraction, default=0.9,
                        help="fraction of GPU memory the engine may take (continuous batching; default 0.9)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _output_lengths(args, requests: int) -> tuple[np.ndarray, str]:
    require(args.output_len is not None or args.output_dist is not None,
            "give the response length: --output-len N or --output-dist SPEC")
    require(args.output_len is None or args.output_dist is None,
            "give either --output-len or --output-dist, not both")
    if args.output_dist is None:
        return np.full(requests, args.output_len, dtype=np.int64), f"{args.output_len}"
    from planner.workload import LengthDistribution

    dist = LengthDistribution.parse(args.output_dist)
    lengths = np.random.default_rng(SHUFFLE_SEED).permutation(dist.planning_lengths(requests))
    return lengths.astype(np.int64), dist.describe()


def estimate_generate(args) -> dict:
    """The ``plan estimate generate`` result as a dict (raises PlanError on bad input)."""
    from planner.cost_model.generation import generate
    from planner.hardware import GiB, gpu_by_name, single_node_group_cluster
    from planner.model_loading import load_model
    from planner.parallel import GenerationConfig, check_divides_model

    gpu = gpu_by_name(args.gpu)
    model = load_model(args.model)
    check_divides_model(model, args.tp)
    static = args.batch is not None
    requests = args.batch if static else args.num_prompts
    outputs, output_desc = _output_lengths(args, requests)
    max_num_seqs = args.max_num_seqs or (args.batch if static else 256)
    gen = GenerationConfig(tp=args.tp, replicas=1, gpu_memory_utilization=args.gpu_memory_utilization,
                           max_num_seqs=max_num_seqs)
    gpus = single_node_group_cluster(gpu, args.tp, gpus_per_node=min(8, args.tp)).gpu_set(args.tp)
    cost = generate(model, gen, gpus, output_lens=outputs, input_len=args.input_len, static=static)
    info = cost.info
    return {
        "model": model.name, "gpu": gpu.name, "tp": args.tp, "mode": "static" if static else "continuous",
        "requests": requests, "input_len": args.input_len, "output_len": output_desc,
        "max_num_seqs": max_num_seqs, "gpu_memory_utilization": gen.gpu_memory_utilization,
        "total_time_s": cost.time_s,
        "output_tokens_per_s": info["output_tokens_per_s"],
        "requests_per_s": info["requests_per_s"],
        "ttft_s": info["ttft_s"],
        "prefill_s": info["prefill_s"],
        "decode_step_s": info["decode_step_s"],
        "mean_batch": info["mean_batch"],
        "kv_capacity_tokens": int(info["kv_capacity_tokens"]),
        "tail_s": info["tail_s"],
        "preemptions": int(info["preemptions"]),
        "memory_gib_per_gpu": cost.memory_gib,
        "breakdown": {"time_s": dict(cost.time_parts),
                      "memory_gib": {k: v / GiB for k, v in cost.memory_parts.items()}},
    }


def _seconds(value: float) -> str:
    return f"{value:.3f} s" if value >= 1 else f"{value * 1e3:.2f} ms"


def _table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    title = (f"{result['model']} on {result['tp']} x {result['gpu']} (tp{result['tp']}), {result['mode']} batching: "
             f"{result['requests']} requests, input {result['input_len']}, output {result['output_len']}")
    total = result["total_time_s"]
    headline = [("total time", f"{total:.3f} s"),
                ("output tokens/s", f"{result['output_tokens_per_s']:,.0f}"),
                ("requests/s", f"{result['requests_per_s']:,.2f}"),
                ("TTFT (mean)", _seconds(result["ttft_s"])),
                ("prefill", f"{result['prefill_s']:.3f} s"),
                ("decode step (mean)", _seconds(result["decode_step_s"])),
                ("mean batch", f"{result['mean_batch']:.1f}"),
                ("KV capacity", f"{result['kv_capacity_tokens']:,} tokens"),
                ("tail (batch < half peak)", f"{result['tail_s']:.3f} s"),
                ("preemptions", f"{result['preemptions']}")]
    table = Table(show_header=False)
    for _ in range(3):
        table.add_column("")
    for key, value in headline:
        table.add_row(key, value, "")
    table.add_section()
    table.add_row("[dim]time[/dim]", "", "")
    for key, value in result["breakdown"]["time_s"].items():
        table.add_row(f"  {key}", f"{value:.3f} s", f"{100 * value / total:.0f}%" if total else "")
    table.add_section()
    table.add_row("[dim]memory per GPU[/dim]", f"{result['memory_gib_per_gpu']:.1f} GiB", "")
    for key, value in result["breakdown"]["memory_gib"].items():
        table.add_row(f"  {key}", f"{value:.1f} GiB", "")
    console = Console(width=110)
    console.print(title)
    console.print(table)


def run_generate(args) -> int:
    """Run ``plan estimate generate``; PlanError propagates to the CLI (one line, exit 2)."""
    result = estimate_generate(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _table(result)
    return 0


__all__ = ["add_generate_arguments", "run_generate", "estimate_generate"]
