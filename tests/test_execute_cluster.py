"""A two-node Ray cluster (``ray.cluster_utils.Cluster``): the pools land on the nodes the
plan names, colocated roles share their pool's GPUs, and a plan made for another cluster
is refused before anything starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("vllm")
ray = pytest.importorskip("ray")

from executor_setup import execute_options, make_plan, read_metrics  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "clusters"
NODE_LABEL = "rlplan.io/node-index"


@pytest.fixture(scope="module")
def two_nodes():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0})
    # added in the opposite order of their plan index: placement must follow the labels
    for index in (1, 0):
        cluster.add_node(num_cpus=4, num_gpus=2, labels={NODE_LABEL: str(index)})
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from executor.tiny_model import build_tiny_model
    from executor.toy_task import write_toy_task

    root = tmp_path_factory.mktemp("tiny")
    return build_tiny_model(root / "model"), write_toy_task(root / "toy.jsonl", 32)


def _node_of_index() -> dict[int, str]:
    return {int(n["Labels"][NODE_LABEL]): n["NodeID"] for n in ray.nodes()
            if n["Alive"] and NODE_LABEL in (n.get("Labels") or {})}


def test_pools_land_on_the_nodes_the_plan_names(two_nodes, tiny, tmp_path):
    from executor.real.run import execute

    model, data = tiny
    plan_file = make_plan(tmp_path / "plan.json", "grpo", model, "--prompts", "8", "--samples", "2",
                          "--response-len", "4", cluster=str(FIXTURES / "local2x2.yaml"))
    plan = json.loads(plan_file.read_text())
    assert len({node for pool in plan["pools"] for node, _ in pool["gpus"]}) == 2  # the plan spans both nodes
    node_of = _node_of_index()
    result = execute(execute_options(plan_file, model, data, tmp_path / "run", 2, ray_address=two_nodes.address,
                                     cluster=str(FIXTURES / "local2x2.yaml")))
    placement = json.loads((result.out_dir / "placement.json").read_text())
    for pool in placement["pools"]:
        assert pool["ray_nodes"] == [node_of[node] for node, _ in pool["plan_gpus"]]
    metrics = read_metrics(result.out_dir)
    assert [m["step"] for m in metrics] == [0, 1]
    assert all(m["sync/max_abs_diff"] == 0.0 for m in metrics)  # the sync crossed nodes


def test_a_plan_for_another_cluster_is_refused(two_nodes, tiny, tmp_path):
    """A plan for `local` (one node of 4) on this Ray cluster (two nodes of 2): one line, and
    no placement group is left behind."""
    from executor.resources import Placement
    from planner.errors import PlanError

    plan = json.loads(make_plan(tmp_path / "plan.json", "grpo", tiny[0], "--prompts", "8", "--samples",
                                "2", "--response-len", "4").read_text())
    with pytest.raises(PlanError) as info:
        Placement.create(plan)
    message = str(info.value)
    assert "\n" not in message
    assert "plan was made for cluster 'local'" in message and "Ray reports 2 node(s)" in message
    from ray.util.placement_group import placement_group_table

    assert all(pg["state"] == "REMOVED" for pg in placement_group_table().values())
