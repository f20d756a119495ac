"""The verl and OpenRLHF exports, checked by the frameworks themselves.

Real plans (CP-SAT solves of ppo and grpo with Qwen2.5-7B on a100x64 and h100x128) with
colocated and split placements are exported; verl's shipped trainer config must compose
with every override in struct mode (Hydra, as ``python -m verl.trainer.main_ppo`` does),
and OpenRLHF's own ``train_ppo_ray`` parser and launch checks must accept the command line.
Install the frameworks without their heavy dependencies to run these:
``pip install --no-deps verl==0.9.1 openrlhf==0.11.2 && pip install hydra-core``.
"""

from __future__ import annotations

import ast
import importlib.util

import pytest

from planner.errors import PlanError
from planner.export import export_plan
from planner.export.checks import check_openrlhf, compose_verl, package_dir
from planner.export.verl import override_list

HAVE_VERL = importlib.util.find_spec("verl") is not None and importlib.util.find_spec("hydra") is not None
HAVE_OPENRLHF = importlib.util.find_spec("openrlhf") is not None
needs_verl = pytest.mark.skipif(not HAVE_VERL, reason="verl and hydra-core not installed "
                                "(pip install --no-deps verl==0.9.1 && pip install hydra-core)")
needs_openrlhf = pytest.mark.skipif(not HAVE_OPENRLHF, reason="OpenRLHF not installed "
                                    "(pip install --no-deps openrlhf==0.11.2)")

COLOCATED = None
PPO_SPLIT = [["actor", "rollout", "ref"], ["critic", "reward"]]
"""verl's examples/split_placement: actor side and critic side on separate halves."""
PPO_STANDALONE = [["actor", "ref"], ["rollout"], ["critic", "reward"]]
"""OpenRLHF's layout: vLLM engines, actor+ref, critic+reward on their own GPUs."""
GRPO_STANDALONE = [["actor", "ref"], ["rollout"]]
CASES = [
    ("a100x64", "ppo", "sync", COLOCATED), ("a100x64", "ppo", "sync", PPO_SPLIT),
    ("a100x64", "ppo", "sync", PPO_STANDALONE),
    ("a100x64", "grpo", "sync", COLOCATED), ("a100x64", "grpo", "sync", GRPO_STANDALONE),
    ("a100x64", "grpo", "one-step-off", GRPO_STANDALONE),
    ("h100x128", "ppo", "sync", COLOCATED), ("h100x128", "ppo", "sync", PPO_SPLIT),
    ("h100x128", "ppo", "sync", PPO_STANDALONE),
    ("h100x128", "grpo", "sync", COLOCATED), ("h100x128", "grpo", "sync", GRPO_STANDALONE),
]
IDS = [f"{c}-{a}-{m}-{'colocated' if p is None else '|'.join('+'.join(g) for g in p)}" for c, a, m, p in CASES]

LIMIT_S = 5.0
"""CP-SAT time per plan: past it the best plan found so far (a real, feasible one) is exported."""
_spaces: dict[tuple, tuple] = {}
_plans: dict[tuple, dict] = {}


def _plan(cluster: str, algo: str, mode: str, partition) -> dict:
    """A real plan of ``algo`` on ``cluster``, its pools fixed to ``partition`` (None: free)."""
    key = (cluster, algo, mode, str(partition))
    if key in _plans:
        return _plans[key]
    from algos import build_dataflow
    from planner.clusters import load_cluster
    from planner.model_loading import load_model
    from planner.plan import plan_to_dict
    from planner.search.candidates import CandidateBuilder
    from planner.search.cpsat import Constraints
    from planner.search.inputs import SearchInputs, SearchOptions
    from planner.search.pricing import Pricer
    from planner.search.run import SearchResult
    from planner.search.solve import solve_placement
    from planner.search.space import candidate_space
    from planner.workload import Workload

    if (cluster, algo, mode) not in _spaces:
        workload = Workload()
        flow = build_dataflow(algo, workload)
        model = load_model("qwen2.5-7b")
        inputs = SearchInputs(load_cluster(cluster), algo, flow, {r: model for r in flow.roles}, workload,
                              SearchOptions(mode=mode, time_limit_s=LIMIT_S))
        pricer = Pricer(inputs)
        _spaces[cluster, algo, mode] = (inputs, pricer, candidate_space(inputs, CandidateBuilder(inputs), pricer))
    inputs, pricer, space = _spaces[cluster, algo, mode]
    solution, _ = solve_placement(pricer, space, Constraints(partition=partition) if partition else None, LIMIT_S, 2)
    assert solution is not None
    evaluation = pricer.evaluate(solution.assignment)
    result = SearchResult(inputs, pricer, solution.assignment, evaluation, solution.status, solution.gap, 0.0,
                          solution.wall_s)
    _plans[key] = plan_to_dict(result)
    return _plans[key]


def _pool_of(plan: dict, role: str) -> dict:
    return next(p for p in plan["pools"] if role in p["roles"])


def _verl_roles() -> set[str]:
    """Members of verl's ``Role`` enum, read from its source (importing verl needs torch)."""
    source = (package_dir("verl") / "trainer" / "ppo" / "utils.py").read_text()
    enum = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "Role")
    return {t.id for s in enum.body if isinstance(s, ast.Assign) for t in s.targets}


# ---- verl -------------------------------------------------------------------------------------
@needs_verl
@pytest.mark.parametrize("cluster,algo,mode,partition", CASES, ids=IDS)
def test_verl_export_composes_with_verls_own_config(cluster, algo, mode, partition):
    plan = _plan(cluster, algo, mode, partition)
    export = export_plan(plan, "verl")
    config = compose_verl(override_list(export.settings["overrides"]), export.settings["config_name"])
    actor_pool = _pool_of(plan, "actor")
    trainer = config["trainer"]
    assert trainer["nnodes"] * trainer["n_gpus_per_node"] == actor_pool["num_gpus"]
    rollout = config["actor_rollout_ref"]["rollout"]
    layout = plan["roles"]["rollout"]["layout"]
    assert rollout["tensor_model_parallel_size"] == layout["tp"]
    assert rollout["n"] == plan["inputs"]["workload"]["samples_per_prompt"]
    assert rollout["name"] == "vllm"
    assert config["algorithm"]["adv_estimator"] == {"ppo": "gae", "grpo": "grpo"}[algo]
    assert config["data"]["train_batch_size"] == plan["inputs"]["workload"]["prompts"]
    # verl multiplies ppo_mini_batch_size by n and splits it over the data-parallel ranks into
    # micro-batches (workers/engine_workers.py, workers/engine/utils.py): it must divide.
    actor = config["actor_rollout_ref"]["actor"]
    par = actor.get("megatron", {"tensor_model_parallel_size": 1, "pipeline_model_parallel_size": 1})
    dp = actor_pool["num_gpus"] // (par["tensor_model_parallel_size"] * par["pipeline_model_parallel_size"])
    assert export.settings["config_name"] == ("ppo_megatron_trainer" if dp < actor_pool["num_gpus"] else "ppo_trainer")
    per_rank = actor["ppo_mini_batch_size"] * rollout["n"] // dp
    assert per_rank * dp == actor["ppo_mini_batch_size"] * rollout["n"]
    assert per_rank % actor["ppo_micro_batch_size_per_gpu"] == 0
    assert (config["data"]["train_batch_size"] * rollout["n"]) % actor_pool["num_gpus"] == 0  # validate_config

    standalone = len(_pool_of(plan, "rollout")["roles"]) == 1
    if partition is None:
        assert export.settings["resource_pools"] is None
        assert "EXPORT.md" in export.files and "verl_resource_pools.yaml" not in export.files
    elif mode == "one-step-off" and standalone:
        assert export.settings["resource_pools"] is None  # verl's separate_async says it in config
        assert config["trainer"]["v1"]["trainer_mode"] == "separate_async"
        assert config["actor_rollout_ref"]["hybrid_engine"] is False
        assert rollout["nnodes"] * rollout["n_gpus_per_node"] == _pool_of(plan, "rollout")["num_gpus"]
        assert config["data"]["train_batch_size"] == (config["trainer"]["v1"]["separate_async"]["parameter_sync_step"]
                                                      * actor["ppo_mini_batch_size"])
    else:
        pools = export.settings["resource_pools"]
        assert pools is not None and "verl_resource_pools.yaml" in export.files
        assert set(pools["mapping"]) <= _verl_roles()
        spec = pools["resource_pool_spec"]
        assert sorted(sum(v) for v in spec.values()) == sorted(p["num_gpus"] for p in plan["pools"])
        for role_name, pool_name in pools["mapping"].items():
            role = {"ActorRolloutRef": "actor", "ActorRollout": "actor", "Actor": "actor", "Rollout": "rollout",
                    "RefPolicy": "ref", "Critic": "critic", "RewardModel": "reward"}[role_name]
            assert sum(spec[pool_name]) == _pool_of(plan, role)["num_gpus"]


@needs_verl
def test_verl_megatron_export_composes_with_the_megatron_config():
    plan = _plan("a100x64", "ppo", "sync", COLOCATED)
    export = export_plan(plan, "verl", engine="megatron")
    assert export.settings["config_name"] == "ppo_megatron_trainer"
    config = compose_verl(override_list(export.settings["overrides"]), "ppo_megatron_trainer")
    megatron = config["actor_rollout_ref"]["actor"]["megatron"]
    layout = plan["roles"]["actor"]["layout"]
    assert megatron["tensor_model_parallel_size"] == layout["tp"]
    assert megatron["use_distributed_optimizer"] == (layout["zero"] >= 1)


@needs_verl
def test_verl_refuses_a_key_it_does_not_have():
    """The check is verl's: a misspelt key fails to compose."""
    plan = _plan("a100x64", "grpo", "sync", COLOCATED)
    overrides = override_list(export_plan(plan, "verl").settings["overrides"]) + ["trainer.n_gpu_per_node=8"]
    with pytest.raises(PlanError, match="trainer.n_gpu_per_node"):
        compose_verl(overrides)
    # FSDP keys do not exist in the Megatron trainer's config.
    with pytest.raises(PlanError, match="fsdp"):
        compose_verl(override_list(export_plan(plan, "verl").settings["overrides"]), "ppo_megatron_trainer")


# ---- OpenRLHF ---------------------------------------------------------------------------------
@needs_openrlhf
@pytest.mark.parametrize("cluster,algo,mode,partition", CASES, ids=IDS)
def test_openrlhf_export_passes_openrlhfs_parser_and_checks(cluster, algo, mode, partition):
    plan = _plan(cluster, algo, mode, partition)
    export = export_plan(plan, "openrlhf")
    args = check_openrlhf(export.settings["argv"])
    actor_pool, rollout_pool = _pool_of(plan, "actor"), _pool_of(plan, "rollout")
    assert args.actor.num_nodes * args.actor.num_gpus_per_node == actor_pool["num_gpus"]
    assert args.vllm.num_engines * args.vllm.tensor_parallel_size == rollout_pool["num_gpus"]
    assert args.rollout.n_samples_per_prompt == plan["inputs"]["workload"]["samples_per_prompt"]
    assert args.algo.advantage.estimator == {"ppo": "gae", "grpo": "group_norm"}[algo]
    assert args.train.colocate_all == (actor_pool is rollout_pool)
    if "critic" in plan["roles"]:
        assert args.critic.model_name_or_path  # OpenRLHF builds a critic for gae
        assert args.train.colocate_critic_reward == (_pool_of(plan, "critic") is _pool_of(plan, "reward")
                                                     and _pool_of(plan, "critic") is not actor_pool)
    else:
        assert args.critic.model_name_or_path is None
    assert args.train.colocate_actor_ref == (not args.train.colocate_all and _pool_of(plan, "ref") is actor_pool)
    assert args.train.async_enable == (mode == "one-step-off")


@needs_openrlhf
def test_openrlhf_refuses_what_its_launcher_would():
    """The checks are OpenRLHF's: its parser rejects an unknown flag, and train()'s own
    assertion rejects vLLM engines that do not fill the actor's GPUs under colocate_all."""
    argv = export_plan(_plan("a100x64", "grpo", "sync", COLOCATED), "openrlhf").settings["argv"]
    with pytest.raises(PlanError, match="unrecognized arguments"):
        check_openrlhf(argv + ["--vllm.engines", "2"])
    with pytest.raises(PlanError, match="vllm_num_engines"):
        check_openrlhf(argv + ["--vllm.num_engines", "3"])
