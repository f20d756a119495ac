"""``plan estimate train|generate|comm``: price one stage on one layout, without a search.

``train`` prints the step time of one optimizer step with its breakdown (compute,
recompute, TP/PP/DP communication, bubble, optimizer) and the memory per GPU;
``comm`` one NCCL collective; ``generate`` is implemented in
``planner/cli/estimate_generate.py`` and imported only when chosen.
"""

from __future__ import annotations

import json
import re

from planner.cli.argtypes import positive_float, positive_int
from planner.cli.formats import add_format_arguments, emit, output_format
from planner.errors import require

OPS = ("all_reduce", "all_gather", "reduce_scatter", "broadcast")
_UNITS = {"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str) -> float:
    """``64MiB``, ``1GB``, ``1e9``, ``4096`` -> bytes (KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else None
    require(match is not None and unit in _UNITS,
            f"--bytes {text!r} is not a size: use a number with an optional unit, e.g. 64MiB, 1GB, 4096")
    value = float(match.group(1)) * _UNITS[unit]
    require(value > 0, f"--bytes must be positive, got {text!r}")
    return value




def _lazy_parser_class(base):
    """A parser class whose ``setup`` callback adds its arguments on first use, so that a
    subcommand's module is imported only when that subcommand is chosen."""

    class LazyParser(base):
        def __init__(self, *args, setup=None, **kwargs):
            super().__init__(*args, **kwargs)
            self._setup = setup

        def parse_known_args(self, args=None, namespace=None):
            if self._setup is not None:
                setup, self._setup = self._setup, None
                setup(self)
            return super().parse_known_args(args, namespace)

    return LazyParser


def _setup_generate(parser) -> None:
    try:
        from planner.cli.estimate_generate import add_generate_arguments
    except ImportError:
        parser.error("generation estimates are not available in this build (planner/cli/estimate_generate.py)")
    add_generate_arguments(parser)
    add_format_arguments(parser, json_alias=False)


def add_arguments(parser, name: str) -> None:
    sub = parser.add_subparsers(dest="what", metavar="{train,generate,comm}", required=True,
                                parser_class=_lazy_parser_class(type(parser)))
    train = sub.add_parser("train", help="one optimizer step of a model on a parallel layout",
                           description="Time and memory of one training step (Megatron-style 1F1B pipeline, "
                                       "ZeRO/FSDP data parallelism).")
    train.add_argument("--model", required=True, help="a zoo name (plan models) or a config.json path")
    train.add_argument("--gpu", required=True, help="GPU type, e.g. a100-80gb, h100-80gb")
    train.add_argument("--gpus", required=True, type=positive_int, help="number of GPUs (dp = gpus / (tp*pp))")
    train.add_argument("--tp", type=positive_int, default=1, help="tensor-parallel size (default 1)")
    train.add_argument("--pp", type=positive_int, default=1, help="pipeline-parallel size (default 1)")
    train.add_argument("--zero", type=int, choices=(0, 1, 2, 3), default=3,
                       help="ZeRO stage over dp: 0 none, 1 optimizer, 2 +gradients, 3 +parameters (FSDP; default 3)")
    train.add_argument("--sequence-parallel", action="store_true", help="Megatron sequence parallelism (tp > 1)")
    train.add_argument("--recompute", choices=("none", "selective", "full"), default="none",
                       help="activation recomputation (default none)")
    train.add_argument("--global-batch", required=True, type=positive_int, help="sequences per optimizer step")
    train.add_argument("--seq-len", required=True, type=positive_int, help="(padded) tokens per sequence")
    train.add_argument("--tokens-per-seq", type=positive_float, default=None,
                       help="mean real tokens per sequence with remove-padding (default: seq-len)")
    train.add_argument("--micro-batch", type=positive_int, default=1,
                       help="sequences per micro-batch per data-parallel rank (default 1)")
    train.add_argument("--gpus-per-node", type=positive_int, default=8, help="GPUs per node (default 8)")
    train.add_argument("--json", action="store_true", help="print one JSON object (same as --format json)")
    add_format_arguments(train, json_alias=False)

    sub.add_parser("generate", help="rollout generation on an inference engine", setup=_setup_generate)

    comm = sub.add_parser("comm", help="one NCCL collective", description="Time and bandwidth of one collective.")
    comm.add_argument("--gpu", required=True, help="GPU type, e.g. a100-80gb")
    comm.add_argument("--gpus", required=True, type=positive_int, help="ranks in the collective")
    comm.add_argument("--nodes", type=positive_int, default=None, help="nodes they span (default: packed, 8 per node)")
    comm.add_argument("--op", required=True, choices=OPS, help="the collective")
    comm.add_argument("--bytes", required=True, help="message size: 4096, 64MiB, 1GB ...")
    comm.add_argument("--json", action="store_true", help="print one JSON object (same as --format json)")
    add_format_arguments(comm, json_alias=False)


def run(args, name: str) -> int:
    if args.what == "generate":
        from planner.cli.estimate_generate import estimate_generate, run_generate

        if not args.json and (fmt := output_format(args)):
            emit(estimate_generate(args), fmt)
            return 0
        return run_generate(args)
    if args.what == "comm":
        return _run_comm(args)
    return _run_train(args)


# ---- train -----------------------------------------------------------------------------
def estimate_train(args) -> dict:
    """The ``plan estimate train`` result as a dict (raises PlanError on bad input)."""
    from planner.cost_model.memory import require_fits
    from planner.cost_model.training import train_step
    from planner.hardware import GiB, gpu_by_name, single_node_group_cluster
    from planner.model_loading import load_model
    from planner.parallel import ParallelConfig, check_divides_model

    gpu = gpu_by_name(args.gpu)
    model = load_model(args.model)
    check_divides_model(model, args.tp)
    group = args.tp * args.pp
    require(args.gpus % group == 0,
            f"--gpus {args.gpus} is not divisible by tp*pp = {args.tp}*{args.pp}: use a multiple of {group}")
    par = ParallelConfig(tp=args.tp, pp=args.pp, dp=args.gpus // group, zero=args.zero,
                         sequence_parallel=args.sequence_parallel, recompute=args.recompute,
                         micro_batch=args.micro_batch)
    gpus = single_node_group_cluster(gpu, args.gpus, gpus_per_node=args.gpus_per_node).gpu_set(args.gpus)
    cost = train_step(model, par, gpus, args.global_batch, args.seq_len, args.tokens_per_seq)
    layout = f"tp{par.tp}/pp{par.pp}/dp{par.dp}/zero{par.zero}"
    require_fits(cost, gpu, f"{model.name} training with {layout}, micro-batch {par.micro_batch}, "
                            f"recompute {par.recompute}")
    return {
        "model": model.name, "gpu": gpu.name, "gpus": args.gpus, "layout": par.to_dict(),
        "global_batch": args.global_batch, "seq_len": args.seq_len,
        "step_time_s": cost.time_s,
        "tokens_per_s_per_gpu": cost.info["tokens_per_s_per_gpu"],
        "tflops_per_gpu": cost.info["tflops_per_gpu"],
        "memory_gib_per_gpu": cost.memory_gib,
        "micro_batches": int(cost.info["micro_batches"]),
        "breakdown": {"time_s": dict(cost.time_parts),
                      "memory_gib": {k: v / GiB for k, v in cost.memory_parts.items()}},
    }


def _run_train(args) -> int:
    result = estimate_train(args)
    if fmt := output_format(args):
        emit(result, fmt)
        return 0
    lay = result["layout"]
    title = (f"{result['model']} on {result['gpus']} x {result['gpu']}: tp{lay['tp']} pp{lay['pp']} dp{lay['dp']} "
             f"zero{lay['zero']}, {result['micro_batches']} micro-batches of {lay['micro_batch']}")
    headline = [("step time", f"{result['step_time_s']:.3f} s"),
                ("tokens/s per GPU", f"{result['tokens_per_s_per_gpu']:,.0f}"),
                ("TFLOP/s per GPU", f"{result['tflops_per_gpu']:.1f}"),
                ("memory per GPU", f"{result['memory_gib_per_gpu']:.1f} GiB")]
    time_rows = [(k, f"{v:.3f} s", f"{100 * v / result['step_time_s']:.0f}%")
                 for k, v in result["breakdown"]["time_s"].items() if v > 0]
    mem_rows = [(k, f"{v:.1f} GiB", "") for k, v in result["breakdown"]["memory_gib"].items() if v > 0]
    _print_table(title, headline, [("time", time_rows), ("memory per GPU", mem_rows)])
    return 0


# ---- comm ------------------------------------------------------------------------------
def estimate_comm(args) -> dict:
    from planner.cost_model.comm import collective
    from planner.hardware import gpu_by_name, single_node_group_cluster

    gpu = gpu_by_name(args.gpu)
    nbytes = parse_bytes(args.bytes)
    nodes = args.nodes or -(-args.gpus // 8)
    require(args.gpus % nodes == 0,
            f"--gpus {args.gpus} do not split evenly over --nodes {nodes}: use a multiple of {nodes}")
    gpus = single_node_group_cluster(gpu, args.gpus, gpus_per_node=args.gpus // nodes).gpu_set(args.gpus)
    cost = collective(args.op, nbytes, args.gpus, gpus)
    return {"gpu": gpu.name, "gpus": args.gpus, "nodes": nodes, "op": args.op, "bytes": nbytes, **cost.to_dict()}


def _run_comm(args) -> int:
    result = estimate_comm(args)
    if fmt := output_format(args):
        emit(result, fmt)
        return 0
    title = f"{result['op']} of {result['bytes']:,.0f} bytes over {result['gpus']} x {result['gpu']} ({result['nodes']} node(s))"
    _print_table(title, [("time", f"{result['time_s'] * 1e3:.3f} ms"),
                         ("algbw", f"{result['algbw_gbps']:.1f} GB/s"),
                         ("busbw", f"{result['busbw_gbps']:.1f} GB/s")], [])
    return 0


def _print_table(title: str, headline: list[tuple[str, str]], sections: list[tuple[str, list[tuple]]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    table.add_column("", justify="right")
    for key, value in headline:
        table.add_row(key, value, "")
    for name, rows in sections:
        table.add_section()
        table.add_row(f"[dim]{name}[/dim]", "", "")
        for row in rows:
            table.add_row(f"  {row[0]}", row[1], row[2])
    console = Console(width=100)
    console.print(title)
    console.print(table)


__all__ = ["add_arguments", "run", "parse_bytes", "estimate_train", "estimate_comm"]
