"""A plan as a verl job: Hydra overrides for ``verl.trainer.main_ppo``, and a resource-pool
mapping when the placement needs one.

Targets verl 0.9.1 (PyPI). What its trainer expresses in config alone
(verl/trainer/ppo/v1/trainer_base.py ``_init_resource_pool_mgr``): one ``global_pool`` of
``trainer.nnodes x trainer.n_gpus_per_node`` GPUs holding actor, rollout (the hybrid
engine), reference and critic; a reward model either there or in its own ``reward_pool``
(``reward.reward_model.enable_resource_pool``); and, only in the asynchronous
``trainer.v1.trainer_mode=separate_async``, a standalone rollout pool
(``actor_rollout_ref.rollout.nnodes x n_gpus_per_node``). Any other placement (a critic or
reference on GPUs of its own, a synchronous standalone rollout) needs a
``ResourcePoolManager(resource_pool_spec, mapping)`` built in code; the export then writes
that mapping as a file and says where it goes.

Trainers use verl's FSDP engine (``ppo_trainer``) unless a role of the plan uses tensor or
pipeline parallelism, which only its Megatron engine (``ppo_megatron_trainer``) has.
"""

from __future__ import annotations

import re
import shlex

import yaml

from planner.errors import PlanError, require
from planner.export.common import Export, PlanView, micro_batch_for, model_path, per_gpu_batch

VERL_VERSION = "0.9.1"
ADV_ESTIMATOR = {"ppo": "gae", "grpo": "grpo", "dapo": "grpo", "rloo": "rloo", "remax": "remax",
                 "reinforce_pp": "reinforce_plus_plus"}
"""rlplan algorithm -> verl ``algorithm.adv_estimator`` (verl/trainer/ppo/core_algos.py AdvantageEstimator)."""
KL_AS_LOSS = ("grpo", "reinforce_pp")
"""Algorithms whose KL to the reference is a loss term (verl's GRPO and REINFORCE++ examples set
``actor.use_kl_loss=True``); the others put it in the reward (``algorithm.use_kl_in_reward``).
verl creates the reference only when one of the two is on (trainer/ppo/utils.py need_reference_policy)."""
TRAINER_ROLES = ("actor", "ref", "critic")
_PLAIN = re.compile(r"^[A-Za-z0-9_./:+~-]+$")


ENGINES = ("auto", "fsdp", "megatron")


def export_verl(plan: dict, model_paths: dict[str, str] | None = None, engine: str = "auto") -> Export:
    """The verl job that realises ``plan`` (see the module docstring for what maps where).

    ``engine``: ``auto`` takes FSDP unless a trainer needs tensor or pipeline parallelism;
    ``megatron`` also realises ZeRO-1 exactly (Megatron's distributed optimizer), which
    FSDP approximates."""
    view = PlanView(plan)
    require(view.algo in ADV_ESTIMATOR,
            f"verl has no {view.algo}: its advantage estimators cover {', '.join(ADV_ESTIMATOR)}; "
            "export this plan to another framework or re-plan with one of those")
    require(engine in ENGINES, f"unknown verl engine {engine!r}: use one of {', '.join(ENGINES)}")
    needs = _needs_megatron(view)
    require(engine != "fsdp" or not needs, f"verl's FSDP engine has no tensor or pipeline parallelism, which the "
                                           f"plan uses for {', '.join(needs)}: use --engine megatron or auto")
    megatron = engine == "megatron" or bool(needs)
    notes: list[str] = []
    overrides: dict[str, object] = {}
    placement, mapping = _placement(view, overrides, notes)
    _data_and_algorithm(view, overrides)
    _actor(view, overrides, megatron, notes, model_paths or {})
    _rollout(view, overrides, notes)
    if view.has("ref"):
        _ref(view, overrides, megatron, notes)
    if view.has("critic"):
        _critic(view, overrides, megatron, notes, model_paths or {})
    if view.has("reward"):
        _reward(view, overrides, notes, model_paths or {})
    _check_batch_rules(view, megatron)
    config_name = "ppo_megatron_trainer" if megatron else "ppo_trainer"
    command = verl_command(overrides, config_name)
    files = {"verl_overrides.txt": overrides_text(overrides, plan), "run_verl.sh": _script(command, plan)}
    if mapping is not None:
        files["verl_resource_pools.yaml"] = _mapping_file(mapping, plan)
    notes.append("add your data: data.train_files=... data.val_files=... (and a reward function for rule rewards)")
    files["EXPORT.md"] = _explanation(placement, config_name, mapping, notes, plan)
    settings = {"config_name": config_name, "overrides": overrides, "resource_pools": mapping}
    return Export("verl", VERL_VERSION, placement, command, settings, files, notes)


# ---- placement ----------------------------------------------------------------------------
def _placement(view: PlanView, ov: dict, notes: list[str]) -> tuple[str, dict | None]:
    """Set the GPU counts; return a description and, when config cannot say it, the mapping."""
    nnodes, per_node = view.nodes_and_gpus("actor")
    ov["trainer.nnodes"], ov["trainer.n_gpus_per_node"] = nnodes, per_node
    standalone_rollout = not view.shares("rollout", "actor")
    reward_apart = view.has("reward") and not view.shares("reward", "actor")
    reasons = [f"{r} apart from the actor" for r in TRAINER_ROLES if view.has(r) and not view.shares(r, "actor")]
    if standalone_rollout and view.mode == "sync":
        reasons.append("a standalone rollout pool in a synchronous plan (verl runs one only in separate_async mode)")
    if reward_apart and view.pool_roles("reward") != ["reward"]:
        reasons.append("the reward model sharing GPUs with " + "+".join(r for r in view.pool_roles("reward") if r != "reward"))
    if standalone_rollout and view.has("reward") and not reward_apart:
        reasons.append("a colocated reward model with a standalone rollout (separate_async needs a reward pool)")

    if reward_apart and not reasons:
        r_nodes, r_per_node = view.nodes_and_gpus("reward")
        ov["reward.reward_model.enable_resource_pool"] = True
        ov["reward.reward_model.nnodes"], ov["reward.reward_model.n_gpus_per_node"] = r_nodes, r_per_node
    if view.mode == "one-step-off":
        ov["trainer.v1.trainer_mode"] = "separate_async" if standalone_rollout else "colocate_async"
        notes.append(f"the plan overlaps generation with the previous update ({view.mode}); verl's closest mode is "
                     f"trainer.v1.trainer_mode={ov['trainer.v1.trainer_mode']}, which is asynchronous with partial "
                     "rollouts rather than exactly one step off")
    if standalone_rollout and not reasons:
        r_nodes, r_per_node = view.nodes_and_gpus("rollout")
        ov["actor_rollout_ref.hybrid_engine"] = False
        ov["actor_rollout_ref.rollout.nnodes"], ov["actor_rollout_ref.rollout.n_gpus_per_node"] = r_nodes, r_per_node
        ov["actor_rollout_ref.rollout.checkpoint_engine.backend"] = "nccl"
        # trainer_separate_async.py asserts train_batch_size == parameter_sync_step * ppo_mini_batch_size.
        ov["trainer.v1.separate_async.parameter_sync_step"] = view.workload.mini_batches
    if not reasons:
        parts = ["all roles on one global_pool" if not (standalone_rollout or reward_apart) else "global_pool for "
                 + "+".join(r for r in view.pool_roles("actor"))]
        if standalone_rollout:
            parts.append("a standalone rollout pool")
        if reward_apart:
            parts.append("a reward_pool")
        return ", ".join(parts) + " (config only)", None
    notes.append("verl's config cannot place " + "; ".join(reasons) + ": pass verl_resource_pools.yaml to a "
                 "ResourcePoolManager (see EXPORT.md)")
    return "resource-pool mapping (" + "; ".join(reasons) + ")", _resource_pools(view)


def _resource_pools(view: PlanView) -> dict:
    """verl's ``resource_pool_spec`` (pool -> GPUs on each node) and ``mapping`` (Role -> pool)."""
    spec, names = {}, {}
    for pid in sorted(view.pools):
        role = view.pools[pid]["roles"][0]
        nnodes, per_node = view.nodes_and_gpus(role)
        names[pid] = f"pool_{pid}"
        spec[names[pid]] = [per_node] * nnodes
    pool = {r: names[p.pool] for r, p in view.roles.items()}
    mapping = {}
    if view.shares("rollout", "actor"):
        fused = view.has("ref") and view.shares("ref", "actor")
        mapping["ActorRolloutRef" if fused else "ActorRollout"] = pool["actor"]
        if view.has("ref") and not fused:
            mapping["RefPolicy"] = pool["ref"]
    else:
        mapping["Actor"], mapping["Rollout"] = pool["actor"], pool["rollout"]
        if view.has("ref"):
            mapping["RefPolicy"] = pool["ref"]
    if view.has("critic"):
        mapping["Critic"] = pool["critic"]
    if view.has("reward"):
        mapping["RewardModel"] = pool["reward"]
    return {"resource_pool_spec": spec, "mapping": mapping}


def _needs_megatron(view: PlanView) -> list[str]:
    """The trainer roles with tensor or pipeline parallelism, which only Megatron has."""
    return [r for r in TRAINER_ROLES if view.has(r)
            and (view.roles[r].layout.get("tp", 1) > 1 or view.roles[r].layout.get("pp", 1) > 1)]


# ---- roles -------------------------------------------------------------------------------
def _data_and_algorithm(view: PlanView, ov: dict) -> None:
    w = view.workload
    ov["data.train_batch_size"] = w.prompts
    ov["data.max_prompt_length"] = w.prompt_len
    ov["data.max_response_length"] = w.response.max_len
    ov["algorithm.adv_estimator"] = ADV_ESTIMATOR[view.algo]
    if view.has("ref"):
        if view.algo in KL_AS_LOSS:
            ov["actor_rollout_ref.actor.use_kl_loss"] = True
            ov["algorithm.use_kl_in_reward"] = False
        else:
            ov["actor_rollout_ref.actor.use_kl_loss"] = False
            ov["algorithm.use_kl_in_reward"] = True
    else:
        ov["actor_rollout_ref.actor.use_kl_loss"] = False
        ov["algorithm.use_kl_in_reward"] = False
    if w.oversample > 1:
        ov["data.gen_batch_size"] = w.generated_prompts
        ov["algorithm.filter_groups.enable"] = True


def _actor(view: PlanView, ov: dict, megatron: bool, notes: list[str], paths: dict) -> None:
    w, a = view.workload, "actor_rollout_ref.actor"
    ov["actor_rollout_ref.model.path"] = model_path(view, "actor", paths)
    ov[f"{a}.ppo_mini_batch_size"] = w.prompts // w.mini_batches
    ov[f"{a}.ppo_epochs"] = w.ppo_epochs
    ov[f"{a}.use_dynamic_bsz"] = False
    per_gpu = per_gpu_batch(view.samples_per_mini_batch, view.data_parallel("actor"), "actor mini-batch")
    mb = micro_batch_for(view, "actor", per_gpu, "update", notes)
    ov[f"{a}.ppo_micro_batch_size_per_gpu"] = mb
    ov[f"{a}.ppo_max_token_len_per_gpu"] = mb * view.max_seq_len
    ov["actor_rollout_ref.model.enable_gradient_checkpointing"] = view.roles["actor"].layout["recompute"] != "none"
    _engine(view, "actor", f"{a}.megatron" if megatron else f"{a}.fsdp_config", megatron, ov, notes, trains=True)


def _rollout(view: PlanView, ov: dict, notes: list[str]) -> None:
    r, g = "actor_rollout_ref.rollout", view.roles["rollout"].layout
    ov[f"{r}.name"] = "vllm"
    ov[f"{r}.n"] = view.workload.samples_per_prompt
    ov[f"{r}.tensor_model_parallel_size"] = g["tp"]
    ov[f"{r}.gpu_memory_utilization"] = g["gpu_memory_utilization"]
    ov[f"{r}.max_num_seqs"] = g["max_num_seqs"]
    # The old log-probs (actor.log_prob) run on the actor's workers with the actor's layout.
    per_gpu = per_gpu_batch(view.workload.num_samples, view.data_parallel("actor"), "actor log-prob batch")
    mb = micro_batch_for(view, "actor", per_gpu, "log-prob", notes)
    ov[f"{r}.log_prob_micro_batch_size_per_gpu"] = mb
    ov[f"{r}.log_prob_max_token_len_per_gpu"] = mb * view.max_seq_len


def _ref(view: PlanView, ov: dict, megatron: bool, notes: list[str]) -> None:
    ref = "actor_rollout_ref.ref"
    if view.roles["ref"].model != view.roles["actor"].model:
        notes.append(f"verl loads the reference from the actor's model path; the plan's reference is "
                     f"{view.roles['ref'].model}, not {view.roles['actor'].model}")
    per_gpu = per_gpu_batch(view.workload.num_samples, view.data_parallel("ref"), "reference log-prob batch")
    mb = micro_batch_for(view, "ref", per_gpu, "log-prob", notes)
    ov[f"{ref}.log_prob_micro_batch_size_per_gpu"] = mb
    ov[f"{ref}.log_prob_max_token_len_per_gpu"] = mb * view.max_seq_len
    _engine(view, "ref", f"{ref}.megatron" if megatron else f"{ref}.fsdp_config", megatron, ov, notes, trains=False)


def _critic(view: PlanView, ov: dict, megatron: bool, notes: list[str], paths: dict) -> None:
    ov["critic.model.path"] = model_path(view, "critic", paths)
    per_gpu = per_gpu_batch(view.samples_per_mini_batch, view.data_parallel("critic"), "critic mini-batch")
    mb = micro_batch_for(view, "critic", per_gpu, "update", notes)
    ov["critic.ppo_micro_batch_size_per_gpu"] = mb
    ov["critic.ppo_max_token_len_per_gpu"] = mb * view.max_seq_len
    if not megatron:  # the Megatron critic has no separate forward micro-batch
        per_gpu = per_gpu_batch(view.workload.num_samples, view.data_parallel("critic"), "critic value batch")
        ov["critic.forward_micro_batch_size_per_gpu"] = micro_batch_for(view, "critic", per_gpu, "values", notes)
    ov["critic.model.enable_gradient_checkpointing"] = view.roles["critic"].layout["recompute"] != "none"
    _engine(view, "critic", "critic.megatron" if megatron else "critic.fsdp", megatron, ov, notes, trains=True)


def _reward(view: PlanView, ov: dict, notes: list[str], paths: dict) -> None:
    """verl 0.9.1 serves a reward model with an inference engine (reward/reward.yaml)."""
    rm, layout = "reward.reward_model", view.roles["reward"].layout
    ov[f"{rm}.enable"] = True
    ov[f"{rm}.model_path"] = model_path(view, "reward", paths)
    ov[f"{rm}.rollout.name"] = "vllm"
    ov[f"{rm}.rollout.tensor_model_parallel_size"] = layout.get("tp", 1)
    ov[f"{rm}.rollout.pipeline_model_parallel_size"] = layout.get("pp", 1)
    ov[f"{rm}.rollout.prompt_length"] = view.workload.prompt_len
    ov[f"{rm}.rollout.response_length"] = view.workload.response.max_len
    notes.append("reward: verl 0.9.1 scores with the reward model on a vLLM server; rlplan priced it as a forward "
                 f"pass with layout {_describe(layout)} on the same GPUs")


def _engine(view: PlanView, role: str, prefix: str, megatron: bool, ov: dict, notes: list[str], trains: bool) -> None:
    """Parallel sizes, sharding and offload of one FSDP or Megatron worker."""
    layout, offload = view.roles[role].layout, view.roles[role].offload
    ov[f"{prefix}.param_offload"] = offload
    if trains:
        ov[f"{prefix}.optimizer_offload"] = False
    if megatron:
        ov[f"{prefix}.tensor_model_parallel_size"] = layout["tp"]
        ov[f"{prefix}.pipeline_model_parallel_size"] = layout["pp"]
        if not trains and layout["zero"] == 3 and view.data_parallel(role) > 1:
            notes.append(f"{role}: Megatron does not shard a forward-only model over data-parallel ranks; the "
                         "plan's ZeRO-3 sharding of it held less memory (param_offload helps if memory is short)")
        if trains:
            ov[f"{prefix}.sequence_parallel"] = bool(layout["sequence_parallel"]) and layout["tp"] > 1
            ov[f"{prefix}.use_distributed_optimizer"] = layout["zero"] >= 1
            if layout["zero"] >= 2:
                notes.append(f"{role}: Megatron's distributed optimizer shards optimizer states only (ZeRO-1); "
                             f"the plan's ZeRO-{layout['zero']} also shards "
                             + ("gradients" if layout["zero"] == 2 else "gradients and weights")
                             + ", so this uses more memory than planned")
            if layout["recompute"] != "none":
                tc = f"{prefix}.override_transformer_config"
                ov[f"{tc}.recompute_granularity"] = layout["recompute"]
                if layout["recompute"] == "full":
                    ov[f"{tc}.recompute_method"], ov[f"{tc}.recompute_num_layers"] = "uniform", 1
        return
    dp = view.data_parallel(role)
    zero = layout["zero"]
    if zero == 3 or dp == 1:
        ov[f"{prefix}.fsdp_size"] = -1
    elif zero == 0:
        ov[f"{prefix}.fsdp_size"] = 1  # a shard group of one: every GPU holds the whole model
    elif dp > view.nodes_and_gpus(role)[1]:
        group = view.nodes_and_gpus(role)[1]
        ov[f"{prefix}.fsdp_size"] = group
        notes.append(f"{role}: FSDP has no ZeRO-{zero}; fsdp_size={group} shards the model within each node "
                     "and replicates it across nodes (hybrid sharding): less memory than the plan's "
                     f"ZeRO-{zero}, weight gathers on the node's links; --engine megatron realises ZeRO-1 exactly")
    else:
        ov[f"{prefix}.fsdp_size"] = -1
        notes.append(f"{role}: FSDP has no ZeRO-{zero}; it shards the model fully (ZeRO-3) on these {dp} GPUs: less "
                     "memory and more weight gathers than planned, so the update may take longer than "
                     "predicted; --engine megatron realises ZeRO-1 exactly")


def _describe(layout: dict) -> str:
    return f"tp{layout.get('tp', 1)}/pp{layout.get('pp', 1)}/dp{layout.get('dp', 1)}"


def _check_batch_rules(view: PlanView, megatron: bool) -> None:
    """verl's own launch checks (verl/utils/config.py validate_config): the batch of
    train_batch_size * n sequences splits evenly over the trainer GPUs (FSDP) or over
    Megatron's data-parallel ranks times the micro-batch."""
    total = view.workload.num_samples
    gpus = view.roles["actor"].num_gpus
    if not megatron:
        require(total % gpus == 0, f"verl needs train_batch_size x n ({total}) to divide by the {gpus} trainer GPUs: "
                                   f"re-plan with --prompts or --samples whose product divides by {gpus}")


# ---- text ---------------------------------------------------------------------------------
def hydra_value(value) -> str:
    """A value as Hydra's override grammar reads it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if _PLAIN.match(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def override_list(overrides: dict) -> list[str]:
    return [f"{key}={hydra_value(value)}" for key, value in overrides.items()]


def verl_command(overrides: dict, config_name: str) -> str:
    head = ["python3", "-m", "verl.trainer.main_ppo"]
    if config_name != "ppo_trainer":
        head.append(f"--config-name={config_name}")
    lines = [" ".join(head)] + [shlex.quote(o) for o in override_list(overrides)]
    return " \\\n    ".join(lines)


def overrides_text(overrides: dict, plan: dict) -> str:
    header = (f"# verl {VERL_VERSION} Hydra overrides written by rlplan for plan {plan['inputs']['digest']} "
              f"({plan['inputs']['algo']} on {plan['inputs']['cluster']['name']})\n")
    return header + "\n".join(override_list(overrides)) + "\n"


def _script(command: str, plan: dict) -> str:
    return ("#!/usr/bin/env bash\n"
            f"# Runs rlplan plan {plan['inputs']['digest']} with verl {VERL_VERSION}; extra overrides go after it.\n"
            "set -euo pipefail\n" + command + ' \\\n    "$@"\n')


def _mapping_file(mapping: dict, plan: dict) -> str:
    header = (f"# verl {VERL_VERSION} ResourcePoolManager(resource_pool_spec, mapping) for rlplan plan "
              f"{plan['inputs']['digest']}.\n# resource_pool_spec: pool -> GPUs on each of its nodes; "
              "mapping: verl Role name -> pool.\n")
    return header + yaml.safe_dump(mapping, sort_keys=False, default_flow_style=None)


def _explanation(placement: str, config_name: str, mapping: dict | None, notes: list[str], plan: dict) -> str:
    lines = [f"# rlplan plan {plan['inputs']['digest']} for verl {VERL_VERSION}", "",
             f"Placement: {placement}.", f"Config: `{config_name}` plus the overrides in verl_overrides.txt; "
             "run_verl.sh runs them (`bash run_verl.sh data.train_files=... data.val_files=...`).", ""]
    if mapping is not None:
        lines += [
            "## Resource pools",
            "",
            "verl builds its pools in `PPOTrainer._init_resource_pool_mgr` "
            "(verl/trainer/ppo/v1/trainer_base.py), which puts every trainer role in one `global_pool`. "
            "This plan needs the pools in verl_resource_pools.yaml instead. Subclass the trainer and replace "
            "that method so that it ends with",
            "",
            "```python",
            "spec = yaml.safe_load(open('verl_resource_pools.yaml'))",
            "self.mapping = {Role[name]: pool for name, pool in spec['mapping'].items()}",
            "self.resource_pool_manager = ResourcePoolManager(",
            "    resource_pool_spec=spec['resource_pool_spec'], mapping=self.mapping)",
            "```",
            "",
            "(keeping its `role_worker_mapping`), register it with `@register_trainer(...)` and select it with "
            "`trainer.v1.trainer_mode`. Roles in different pools run their stages at the same time only when "
            "the driver does not wait on one before calling the other (verl's examples/split_placement "
            "issues the actor and critic updates with `blocking=False`).",
            "",
        ]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


__all__ = ["VERL_VERSION", "ADV_ESTIMATOR", "export_verl", "hydra_value", "override_list", "verl_command"]
