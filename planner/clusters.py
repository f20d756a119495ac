"""Cluster profiles: YAML files that load into a :class:`~planner.hardware.ClusterSpec`.

Built-in profiles live in the ``cluster_profiles`` package (one ``<name>.yaml`` each); a
user passes either such a name or the path of a YAML file of the same schema::

    name: my-cluster                 # optional; defaults to the file name
    description: "..."               # optional
    node_groups:                     # one entry per kind of node (several = heterogeneous)
      - gpu: h100-80gb               # a type of planner.hardware.GPUS
        nodes: 4
        gpus_per_node: 8
        inter_node_gbps: 50          # per GPU, per direction, GB/s; optional (the GPU's typical value)
        gpu_overrides:               # optional: a custom SKU, e.g. H100 NVL 94 GB
          memory_gib: 94
    intra_node_latency_us: 10        # optional
    inter_node_latency_us: 20        # optional

Every mistake (unknown key, wrong type, non-positive count, unknown GPU, bad YAML) is a
:class:`PlanError` of one line that names the file and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import importlib.resources
import re
from pathlib import Path

import yaml

from planner.errors import PlanError, require
from planner.hardware import GPUS, ClusterSpec, GPUSpec, NodeGroup, gpu_by_name

PROFILE_PACKAGE = "cluster_profiles"
TOP_KEYS = ("name", "description", "node_groups", "intra_node_latency_us", "inter_node_latency_us")
GROUP_KEYS = ("gpu", "nodes", "gpus_per_node", "inter_node_gbps", "gpu_overrides")
OVERRIDE_KEYS = ("name", "peak_tflops", "memory_gib", "hbm_gbps", "intra_node_gbps", "nvlink",
                 "scale_out_gbps", "host_link_gbps")


# ---- public API ------------------------------------------------------------------------
def cluster_names() -> list[str]:
    """Names of the built-in cluster profiles, sorted with numbers in order (a100x8 < a100x16)."""
    return sorted(_builtin_files(), key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])


def load_cluster(name_or_path: str) -> ClusterSpec:
    """A built-in profile by name (case-insensitive) or a user's YAML file by path."""
    text = str(name_or_path).strip()
    require(text != "", f"empty cluster name: use one of {', '.join(cluster_names())} or a path to a YAML file")
    builtin = _builtin_files()
    if text.lower() in builtin:
        return _load_file(builtin[text.lower()], f"cluster profile {text.lower()!r}")
    path = Path(text).expanduser()
    if path.is_file():
        return _load_file(path, str(path))
    if _looks_like_path(text):
        raise PlanError(f"cluster file {text!r} not found: check the path, "
                        f"or use a built-in profile ({', '.join(cluster_names())})")
    close = difflib.get_close_matches(text.lower(), list(builtin), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise PlanError(f"unknown cluster {text!r}{hint}: use one of {', '.join(cluster_names())} "
                    f"or a path to a YAML file (see `plan clusters`)")


def parse_cluster(data: object, source: str, default_name: str = "cluster") -> ClusterSpec:
    """Build a spec from already-parsed YAML ``data``; ``source`` prefixes every error."""
    require(isinstance(data, dict),
            f"{source}: expected a mapping with keys {', '.join(TOP_KEYS)}, got {_kind(data)}")
    _check_keys(data, TOP_KEYS, source)
    require("node_groups" in data, f"{source}: missing key 'node_groups': add a list of node groups")
    name = _string(data, "name", source, default=default_name)
    description = _string(data, "description", source, default="", allow_empty=True)
    groups = data["node_groups"]
    require(isinstance(groups, list) and len(groups) >= 1,
            f"{source}: node_groups must be a non-empty list of node groups, got {_kind(groups)}")
    node_groups = tuple(_parse_group(g, f"{source}: node_groups[{i}]") for i, g in enumerate(groups))
    latencies = {key: _number(data, key, source, positive=True) for key in TOP_KEYS[3:] if key in data}
    return ClusterSpec(name=name, node_groups=node_groups, description=description, **latencies)


def cluster_to_dict(cluster: ClusterSpec) -> dict:
    """A JSON-ready description of ``cluster``: its groups and their GPUs' figures."""
    return {
        "name": cluster.name,
        "description": cluster.description,
        "num_gpus": cluster.num_gpus,
        "num_nodes": cluster.num_nodes,
        "homogeneous": cluster.homogeneous,
        "intra_node_latency_us": cluster.intra_node_latency_us,
        "inter_node_latency_us": cluster.inter_node_latency_us,
        "node_groups": [
            {"nodes": g.nodes, "gpus_per_node": g.gpus_per_node, "num_gpus": g.num_gpus,
             "inter_node_gbps": g.inter_node_gbps, "gpu": dataclasses.asdict(g.gpu)}
            for g in cluster.node_groups
        ],
    }


# ---- files -----------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _builtin_files() -> dict[str, Path]:
    try:
        entries = [Path(str(e)) for e in importlib.resources.files(PROFILE_PACKAGE).iterdir()]
    except NotADirectoryError:
        # An editable install made before cluster_profiles/__init__.py existed registers it as
        # a namespace package with a non-folder path entry, which importlib.resources rejects.
        package = importlib.import_module(PROFILE_PACKAGE)
        entries = [p for d in package.__path__ if Path(d).is_dir() for p in Path(d).iterdir()]
    return {p.stem.lower(): p for p in entries if p.suffix == ".yaml"}


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.endswith((".yaml", ".yml")) or text.startswith(("~", "."))


def _load_file(path: Path, source: str) -> ClusterSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise PlanError(f"{source}: cannot read {path} ({err.strerror}): check the path and its permissions") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise PlanError(f"{source}: malformed YAML{_yaml_where(err)}: fix the syntax there") from None
    return parse_cluster(data, source, default_name=path.stem)


def _yaml_where(err: yaml.YAMLError) -> str:
    """' at line L, column C: <problem>' from a PyYAML error, on one line."""
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(err, "problem", None) or str(err)
    return f"{where}: {' '.join(str(problem).split())}"


# ---- fields ----------------------------------------------------------------------------
def _parse_group(group: object, where: str) -> NodeGroup:
    require(isinstance(group, dict),
            f"{where}: expected a mapping with keys {', '.join(GROUP_KEYS)}, got {_kind(group)}")
    _check_keys(group, GROUP_KEYS, where)
    require("gpu" in group, f"{where}: missing key 'gpu': use one of {', '.join(GPUS)}")
    gpu_name = _string(group, "gpu", where)
    try:
        gpu = gpu_by_name(gpu_name)
    except PlanError as err:
        raise PlanError(f"{where}: {err}") from None
    if "gpu_overrides" in group:
        gpu = _override_gpu(gpu, group["gpu_overrides"], f"{where}.gpu_overrides")
    for key in ("nodes", "gpus_per_node"):
        require(key in group, f"{where}: missing key {key!r}: give a positive integer")
    nodes = _count(group, "nodes", where)
    per_node = _count(group, "gpus_per_node", where)
    if "inter_node_gbps" in group:
        gbps = _number(group, "inter_node_gbps", where, positive=nodes > 1)
    else:
        gbps = gpu.scale_out_gbps
    return NodeGroup(gpu=gpu, nodes=nodes, gpus_per_node=per_node, inter_node_gbps=gbps)


def _override_gpu(gpu: GPUSpec, overrides: object, where: str) -> GPUSpec:
    """The catalog GPU with some datasheet fields replaced; renamed so plans tell them apart."""
    require(isinstance(overrides, dict) and overrides,
            f"{where}: expected a mapping of some of {', '.join(OVERRIDE_KEYS)}, got {_kind(overrides)}")
    _check_keys(overrides, OVERRIDE_KEYS, where)
    changes: dict = {"name": _string(overrides, "name", where, default=f"{gpu.name}-custom")}
    for key in OVERRIDE_KEYS[1:]:
        if key == "nvlink" and key in overrides:
            value = overrides[key]
            require(isinstance(value, bool), f"{where}: nvlink must be true or false, got {value!r}")
            changes[key] = value
        elif key in overrides:
            changes[key] = _number(overrides, key, where, positive=True)
    return dataclasses.replace(gpu, source=f"{gpu.source}; overridden: {', '.join(sorted(changes))}", **changes)


def _check_keys(data: dict, allowed: tuple[str, ...], where: str) -> None:
    for key in data:
        require(key in allowed, f"{where}: unknown key {key!r}: allowed keys are {', '.join(allowed)}")


def _string(data: dict, key: str, where: str, default: str | None = None, allow_empty: bool = False) -> str:
    value = data.get(key, default)
    require(isinstance(value, str) and (allow_empty or value.strip() != ""),
            f"{where}: {key} must be a non-empty string, got {value!r}")
    return value.strip()


def _count(data: dict, key: str, where: str) -> int:
    value = data[key]
    require(isinstance(value, int) and not isinstance(value, bool),
            f"{where}: {key} must be an integer, got {value!r}")
    require(value >= 1, f"{where}: {key} must be >= 1, got {value}")
    return value


def _number(data: dict, key: str, where: str, positive: bool) -> float:
    value = data[key]
    require(isinstance(value, (int, float)) and not isinstance(value, bool),
            f"{where}: {key} must be a number, got {value!r}")
    if positive:
        require(value > 0, f"{where}: {key} must be positive, got {value}")
    else:
        require(value >= 0, f"{where}: {key} must be >= 0, got {value}")
    return float(value)


def _kind(value: object) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"[:80]


__all__ = ["cluster_names", "load_cluster", "parse_cluster", "cluster_to_dict"]
