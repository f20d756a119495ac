"""Cluster profiles: every built-in loads with the right shape; every user mistake is one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import one_line_error

from planner.clusters import cluster_names, cluster_to_dict, load_cluster

FIXTURES = Path(__file__).parent / "fixtures" / "clusters"
REQUIRED = {"a100x8", "a100x16", "a100x32", "a100x64", "a100x128", "a100-40gbx64", "h100x8", "h100x64",
            "h100x128", "h100x1024", "h800x64", "h200x64", "h20x128", "l40sx32", "h100x32+a100x32", "local"}


def test_every_required_profile_is_built_in():
    assert REQUIRED <= set(cluster_names())


@pytest.mark.parametrize("name", cluster_names())
def test_every_profile_loads_and_its_name_matches(name):
    cluster = load_cluster(name)
    assert cluster.name == name
    assert cluster.description
    match = re.fullmatch(r"[a-z0-9-]+?x(\d+)", name)
    if match:  # "<gpu>x<N>" names promise N GPUs
        assert cluster.num_gpus == int(match.group(1))


def test_a100x64_is_8_dgx_a100_nodes():
    cluster = load_cluster("a100x64")
    assert (cluster.num_gpus, cluster.num_nodes, cluster.gpus_per_node) == (64, 8, 8)
    assert cluster.gpu.name == "a100-80gb" and cluster.gpu.nvlink
    assert cluster.node_groups[0].inter_node_gbps == 25  # 8 x 200 Gb/s IB per 8 GPUs
    assert len(cluster.nodes()) == 8


def test_h100_profiles_have_ndr_scale_out():
    for name in ("h100x8", "h100x64", "h100x128", "h100x1024"):
        assert load_cluster(name).node_groups[0].inter_node_gbps == 50  # 8 x 400 Gb/s per 8 GPUs
    assert load_cluster("h100x1024").num_nodes == 128


def test_memory_sizes_by_sku():
    assert load_cluster("a100-40gbx64").gpu.memory_gib == 40
    assert load_cluster("h200x64").gpu.memory_gib == 141
    assert load_cluster("h20x128").gpu.memory_gib == 96


def test_l40s_is_pcie_only():
    cluster = load_cluster("l40sx32")
    assert not cluster.gpu.nvlink
    assert cluster.node_groups[0].inter_node_gbps < load_cluster("a100x32").node_groups[0].inter_node_gbps


def test_heterogeneous_cluster_has_two_groups():
    cluster = load_cluster("h100x32+a100x32")
    assert [g.gpu.name for g in cluster.node_groups] == ["h100-80gb", "a100-80gb"]
    assert [g.num_gpus for g in cluster.node_groups] == [32, 32]
    assert cluster.num_gpus == 64 and not cluster.homogeneous
    assert cluster.gpu_set(16, group=1).gpu.name == "a100-80gb"


def test_local_is_one_node_of_logical_devices():
    cluster = load_cluster("local")
    assert cluster.num_nodes == 1 and cluster.gpu.name == "cpu-logical"
    assert cluster.num_gpus >= 2  # room for a split layout


def test_names_are_case_insensitive():
    assert load_cluster(" A100x8 ").name == "a100x8"


def test_user_yaml_with_gpu_override(tmp_path):
    cluster = load_cluster(str(FIXTURES / "my_cluster.yaml"))
    assert cluster.name == "my_cluster"  # no name in the file: the file's stem
    assert (cluster.num_gpus, cluster.gpus_per_node) == (8, 4)
    assert cluster.gpu.name == "h100-nvl-94gb" and cluster.gpu.memory_gib == 94
    assert cluster.gpu.peak_tflops == 989  # not overridden: the H100 datasheet value
    assert cluster.inter_node_latency_us == 25
    assert cluster.fingerprint()["node_groups"][0]["gpu"] == "h100-nvl-94gb"


def test_user_yaml_defaults_scale_out_to_the_gpu_typical_value(tmp_path):
    path = tmp_path / "mini.yaml"
    path.write_text("name: mini\nnode_groups:\n  - {gpu: H100-80GB, nodes: 2, gpus_per_node: 8}\n")
    cluster = load_cluster(str(path))
    assert cluster.name == "mini" and cluster.node_groups[0].inter_node_gbps == 50


def test_cluster_to_dict_is_complete():
    info = cluster_to_dict(load_cluster("h100x32+a100x32"))
    assert info["num_gpus"] == 64 and len(info["node_groups"]) == 2
    assert info["node_groups"][1]["gpu"]["memory_gib"] == 80


# ---- errors ----------------------------------------------------------------------------
def _error(name_or_path: str) -> str:
    return one_line_error(load_cluster, name_or_path)


def test_unknown_name_lists_the_profiles():
    message = _error("a100x63")
    assert "unknown cluster 'a100x63'" in message and "a100x64" in message and "h100x1024" in message


def test_missing_file():
    message = _error("/nonexistent/cluster.yaml")
    assert "not found" in message and "/nonexistent/cluster.yaml" in message


def test_malformed_yaml_names_the_line():
    message = _error(str(FIXTURES / "bad_syntax.yaml"))
    assert "malformed YAML at line 5" in message


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


GROUP = "node_groups:\n  - {gpu: a100-80gb, nodes: %s, gpus_per_node: %s, inter_node_gbps: %s}\n"


@pytest.mark.parametrize("text, expected", [
    (GROUP % ("'8'", 8, 25), "nodes must be an integer, got '8'"),
    (GROUP % (8, 8.5, 25), "gpus_per_node must be an integer, got 8.5"),
    (GROUP % (8, 8, "fast"), "inter_node_gbps must be a number, got 'fast'"),
    (GROUP % (0, 8, 25), "nodes must be >= 1, got 0"),
    (GROUP % (8, -1, 25), "gpus_per_node must be >= 1, got -1"),
    (GROUP % (8, 8, 0), "inter_node_gbps must be positive, got 0"),
    ("node_groups: {gpu: a100-80gb}\n", "node_groups must be a non-empty list"),
    ("node_groups: []\n", "node_groups must be a non-empty list"),
    ("name: x\n", "missing key 'node_groups'"),
    ("", "expected a mapping"),
    ("- a\n- b\n", "expected a mapping"),
    ("nodes: 8\nnode_groups: []\n", "unknown key 'nodes': allowed keys are name, description, node_groups"),
    ("node_groups:\n  - {gpu: a100-80gb, nodes: 1, gpus_per_node: 8, nvlink: true}\n",
     "node_groups[0]: unknown key 'nvlink': allowed keys are gpu, nodes, gpus_per_node"),
    ("node_groups:\n  - {gpu: a100-80gb, nodes: 1, gpus_per_node: 8, gpu_overrides: {memory: 96}}\n",
     "unknown key 'memory': allowed keys are name, peak_tflops, memory_gib"),
    ("node_groups:\n  - {gpu: b200, nodes: 1, gpus_per_node: 8}\n", "unknown GPU 'b200': use one of a100-40gb"),
    ("node_groups:\n  - {nodes: 1, gpus_per_node: 8}\n", "missing key 'gpu'"),
    ("node_groups:\n  - {gpu: a100-80gb, gpus_per_node: 8}\n", "missing key 'nodes'"),
    ("intra_node_latency_us: -3\nnode_groups:\n  - {gpu: a100-80gb, nodes: 1, gpus_per_node: 8}\n",
     "intra_node_latency_us must be positive"),
])
def test_bad_files_are_one_line_errors(tmp_path, text, expected):
    message = _error(_write(tmp_path, text))
    assert expected in message
    assert message.startswith(str(tmp_path / "c.yaml"))
