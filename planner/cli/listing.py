"""``plan clusters`` and ``plan models``: what the planner knows about, as a table or JSON.

``--show NAME`` prints one cluster profile or model in detail; NAME may also be a user's
cluster YAML or a model's config.json, so a person can check how rlplan reads their file.
"""

from __future__ import annotations

import argparse
import json

from planner.cli.formats import emit, output_format
from planner.errors import PlanError
from planner.clusters import cluster_names, cluster_to_dict, load_cluster
from planner.hardware import ClusterSpec
from planner.model_loading import load_model, model_to_dict, zoo_metadata, zoo_names


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    what = "cluster profile (a built-in name or a YAML path)" if name == "clusters" else \
        "model (a zoo name or a config.json path)"
    parser.add_argument("--show", metavar="NAME", help=f"print one {what} in detail")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table (same as --format json)")
    from planner.cli.formats import add_format_arguments

    add_format_arguments(parser, json_alias=False)


def run(args: argparse.Namespace, name: str) -> int:
    if name == "clusters":
        return _run_clusters(args)
    return _run_models(args)


# ---- clusters --------------------------------------------------------------------------
def _run_clusters(args: argparse.Namespace) -> int:
    if args.show:
        cluster = load_cluster(args.show)
        if fmt := output_format(args):
            emit(cluster_to_dict(cluster), fmt)
        else:
            _print_cluster_detail(cluster)
        return 0
    clusters = [load_cluster(n) for n in cluster_names()]
    if fmt := output_format(args):
        emit([cluster_to_dict(c) for c in clusters], fmt)
        return 0
    from rich.table import Table

    table = Table(title="Cluster profiles (plan --cluster NAME, or a path to your own YAML)")
    for header in ("name", "GPUs", "GPU type", "nodes x GPUs/node", "intra-node", "scale-out GB/s/GPU",
                   "memory/GPU GiB", "total GiB"):
        table.add_column(header, justify="left" if header in ("name", "GPU type", "intra-node") else "right",
                         no_wrap=True)
    for c in clusters:
        groups = c.node_groups
        table.add_row(
            c.name, str(c.num_gpus), " + ".join(g.gpu.name for g in groups),
            " + ".join(f"{g.nodes} x {g.gpus_per_node}" for g in groups),
            " + ".join("NVLink" if g.gpu.nvlink else "PCIe/host" for g in groups),
            " / ".join(f"{g.inter_node_gbps:g}" for g in groups),
            " / ".join(f"{g.gpu.memory_gib:g}" for g in groups),
            f"{sum(g.num_gpus * g.gpu.memory_gib for g in groups):,.0f}",
        )
    _console().print(table)
    return 0


def _print_cluster_detail(cluster: ClusterSpec) -> None:
    from rich.table import Table

    console = _console()
    console.print(f"[bold]{cluster.name}[/bold]: {cluster.description}")
    console.print(f"{cluster.num_gpus} GPUs on {cluster.num_nodes} nodes; per-hop latency "
                  f"{cluster.intra_node_latency_us:g} us in a node, {cluster.inter_node_latency_us:g} us across nodes")
    table = Table(title="node groups")
    for header in ("group", "GPU", "nodes x GPUs/node", "BF16 TFLOP/s", "memory GiB", "HBM GB/s",
                   "intra-node GB/s", "scale-out GB/s", "host link GB/s"):
        table.add_column(header, no_wrap=True)
    for i, g in enumerate(cluster.node_groups):
        link = "NVLink" if g.gpu.nvlink else "PCIe/host"
        table.add_row(str(i), g.gpu.name, f"{g.nodes} x {g.gpus_per_node}", f"{g.gpu.peak_tflops:g}",
                      f"{g.gpu.memory_gib:g}", f"{g.gpu.hbm_gbps:g}", f"{g.gpu.intra_node_gbps:g} ({link})",
                      f"{g.inter_node_gbps:g}", f"{g.gpu.host_link_gbps:g}")
    console.print(table)
    console.print("Bandwidths are per GPU, per direction. Sources: "
                  + "; ".join(sorted({f"{g.gpu.name}: {g.gpu.source}" for g in cluster.node_groups})))


# ---- models ----------------------------------------------------------------------------
def _run_models(args: argparse.Namespace) -> int:
    if args.show:
        model = load_model(args.show)
        info = model_to_dict(model)
        info.update(_zoo_meta(args.show))
        if fmt := output_format(args):
            emit(info, fmt)
        else:
            _print_model_detail(info)
        return 0
    models = [load_model(n) for n in zoo_names()]
    if fmt := output_format(args):
        emit([{**model_to_dict(m), **zoo_metadata(m.name)} for m in models], fmt)
        return 0
    from rich.table import Table

    table = Table(title="Model zoo (--model NAME, or a path to a config.json)")
    for header in ("name", "params (B)", "active (B)", "layers", "hidden", "heads/kv", "head dim",
                   "FFN", "vocab", "tied"):
        table.add_column(header, justify="left" if header == "name" else "right", no_wrap=True)
    for m in models:
        ffn = f"{m.num_experts}x{m.moe_intermediate_size} top{m.experts_per_token}" if m.is_moe \
            else str(m.intermediate_size)
        table.add_row(m.name, f"{m.num_params / 1e9:.2f}", f"{m.active_params / 1e9:.2f}" if m.is_moe else "",
                      str(m.num_layers), str(m.hidden_size), f"{m.num_heads}/{m.num_kv_heads}", str(m.head_dim),
                      ffn, f"{m.vocab_size:,}", "yes" if m.tied_embeddings else "no")
    _console().print(table)
    return 0


def _zoo_meta(name: str) -> dict:
    """The zoo's repo and source URL for a zoo model; nothing for a user's config.json."""
    try:
        return zoo_metadata(name)
    except PlanError:
        return {}


def _print_model_detail(info: dict) -> None:
    from rich.table import Table

    table = Table(title=f"{info['name']}", show_header=False)
    table.add_column("field", no_wrap=True)
    table.add_column("value")
    for key, value in info.items():
        if key in ("num_params", "active_params"):
            value = f"{value:,} ({value / 1e9:.2f} B)"
        table.add_row(key, str(value))
    _console().print(table)


def _console():
    """A rich console that does not squeeze tables when stdout is a pipe (80 columns)."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    return console
