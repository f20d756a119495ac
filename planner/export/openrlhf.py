"""A plan as an OpenRLHF job: the ``train_ppo_ray`` command line.

Targets OpenRLHF 0.11.2 (PyPI), whose flags are dotted (``--actor.num_nodes``). How its
launcher places models (openrlhf/cli/train_ppo_ray.py ``train``): every model group asks
Ray for its own GPUs, except that ``--train.colocate_actor_ref`` puts actor and reference
on one placement group, ``--train.colocate_critic_reward`` does the same for critic and
reward model, and ``--train.colocate_all`` puts the vLLM engines, actor and reference
(and the critic and reward model too, unless they have their own group by
``colocate_critic_reward``) on the actor's GPUs. A plan whose pools are none of these
cannot be launched by OpenRLHF, and the export says so instead of writing a command that
would place models elsewhere.
"""

from __future__ import annotations

import shlex

from planner.errors import require
from planner.export.common import Export, PlanView, largest_divisor_at_most, model_path, per_gpu_batch

OPENRLHF_VERSION = "0.11.2"
ESTIMATOR = {"ppo": "gae", "grpo": "group_norm", "dapo": "group_norm", "rloo": "rloo", "reinforce_pp": "reinforce"}
"""rlplan algorithm -> ``--algo.advantage.estimator`` (OpenRLHF's choices: gae, reinforce, rloo,
reinforce_baseline, group_norm, dr_grpo, flash_reinforce; REINFORCE++ is ``reinforce``)."""
RULE_REWARD_FILE = "reward_func.py"
"""A rule reward in OpenRLHF is a Python file with ``reward_func`` passed as ``--reward.remote_url``
(openrlhf/utils/agent.py SingleTurnAgentExecutor)."""


def export_openrlhf(plan: dict, model_paths: dict[str, str] | None = None) -> Export:
    """The ``train_ppo_ray`` command line that realises ``plan``."""
    view = PlanView(plan)
    require(view.algo in ESTIMATOR,
            f"OpenRLHF has no {view.algo}: its advantage estimators cover {', '.join(ESTIMATOR)}; "
            "export this plan to verl or re-plan with one of those")
    pp = [r for r in view.roles if view.roles[r].kind == "parallel" and view.roles[r].layout.get("pp", 1) > 1]
    require(not pp, f"OpenRLHF has no pipeline parallelism, which the plan uses for {', '.join(pp)}: "
                    "re-plan with --executor-only (no pipeline stages) or export to verl")
    notes: list[str] = []
    flags: dict[str, object] = {}
    placement = _placement(view, flags, notes)
    _models(view, flags, model_paths or {})
    _batches(view, flags, notes)
    _deepspeed(view, flags, notes)
    _algorithm(view, flags, notes)
    argv = flag_list(flags)
    command = " \\\n    ".join(["python3 -m openrlhf.cli.train_ppo_ray"] + _quoted_pairs(argv))
    notes.append("add your data and output: --data.prompt_dataset ... --data.input_key ... --ckpt.output_dir ...")
    if "--reward.remote_url" in flags:
        notes.append(f"the rule reward: write {RULE_REWARD_FILE} (in the folder you launch from) with "
                     "`reward_func(queries, prompts, labels)` returning {'rewards': ..., 'scores': ...} "
                     "(OpenRLHF loads it from --reward.remote_url)")
    files = {"run_openrlhf.sh": _script(command, plan), "EXPORT.md": _explanation(placement, notes, plan)}
    return Export("openrlhf", OPENRLHF_VERSION, placement, command, {"flags": flags, "argv": argv}, files, notes)


# ---- placement ---------------------------------------------------------------------------------
def _placement(view: PlanView, flags: dict, notes: list[str]) -> str:
    """Node and GPU counts per model group and the colocation flags; refuses what OpenRLHF cannot place."""
    for role in ("actor", "ref", "critic", "reward"):
        if view.has(role):
            flags[f"--{role}.num_nodes"], flags[f"--{role}.num_gpus_per_node"] = view.nodes_and_gpus(role)
    side = [r for r in ("critic", "reward") if view.has(r)]
    if view.shares("rollout", "actor"):
        flags["--train.colocate_all"] = True
        flags["--vllm.enable_sleep"], flags["--ds.enable_sleep"] = True, True
        require(not view.has("ref") or view.shares("ref", "actor"),
                "with vLLM on the actor's GPUs (--train.colocate_all) OpenRLHF puts the reference there too, "
                "but the plan does not: export to verl or re-plan")
        apart = [r for r in side if not view.shares(r, "actor")]
        if not apart:
            return "every model on the same GPUs (colocate_all; vLLM and DeepSpeed sleep between stages)"
        require("critic" in apart and apart == side and sorted(view.pool_roles("critic")) == sorted(side),
                f"OpenRLHF cannot place {' and '.join(apart)} apart from the actor while vLLM shares the actor's "
                "GPUs, unless critic and reward model have one group of their own: re-plan or export to verl")
        flags["--train.colocate_critic_reward"] = True
        return "vLLM, actor and reference on the same GPUs (colocate_all); " + "+".join(side) + " on their own"
    require(view.pool_roles("rollout") == ["rollout"],
            "OpenRLHF runs standalone vLLM engines on GPUs of their own, but the plan's rollout shares GPUs with "
            + "+".join(r for r in view.pool_roles("rollout") if r != "rollout") + ": export to verl or re-plan")
    groups = ["vLLM engines on their own GPUs"]
    with_actor = set(view.pool_roles("actor")) - {"actor"}
    require(with_actor <= {"ref"}, "OpenRLHF cannot put the " + "+".join(sorted(with_actor - {"ref"}))
            + " on the actor's GPUs without vLLM there too (its only such flag is --train.colocate_all): "
            "export to verl or re-plan")
    if with_actor:
        flags["--train.colocate_actor_ref"] = True
        groups.append("actor+reference (colocate_actor_ref)")
    else:
        groups.append("actor on its own GPUs")
    rest = [r for r in ("ref", "critic", "reward") if view.has(r) and not view.shares(r, "actor")]
    if len(side) == 2 and set(side) <= set(rest) and view.shares("critic", "reward"):
        require(sorted(view.pool_roles("critic")) == ["critic", "reward"],
                "OpenRLHF cannot add " + "+".join(r for r in view.pool_roles("critic") if r not in side)
                + " to the critic and reward model's GPUs: export to verl or re-plan")
        flags["--train.colocate_critic_reward"] = True
        groups.append("critic+reward model (colocate_critic_reward)")
        rest = [r for r in rest if r not in side]
    for role in rest:
        require(view.pool_roles(role) == [role], f"OpenRLHF cannot share the {role}'s GPUs with "
                + "+".join(r for r in view.pool_roles(role) if r != role) + ": export to verl or re-plan")
        groups.append(f"{role} on its own GPUs")
    if view.mode == "one-step-off":
        flags["--train.async_enable"] = True
        notes.append("the plan overlaps generation with the previous update: --train.async_enable runs OpenRLHF's "
                     "asynchronous trainer (a queue of one batch)")
    return "; ".join(groups)


# ---- models, batches, engines ----------------------------------------------------------------------
def _models(view: PlanView, flags: dict, paths: dict) -> None:
    flags["--actor.model_name_or_path"] = model_path(view, "actor", paths)
    if view.has("critic"):
        flags["--critic.model_name_or_path"] = model_path(view, "critic", paths)
    if view.has("reward"):
        flags["--reward.model_name_or_path"] = model_path(view, "reward", paths)
    else:
        flags["--reward.remote_url"] = RULE_REWARD_FILE
    g = view.roles["rollout"].layout
    flags["--vllm.num_engines"] = g["replicas"]
    flags["--vllm.tensor_parallel_size"] = g["tp"]
    flags["--vllm.gpu_memory_utilization"] = g["gpu_memory_utilization"]


def _batches(view: PlanView, flags: dict, notes: list[str]) -> None:
    w = view.workload
    flags["--rollout.batch_size"] = w.prompts
    flags["--rollout.n_samples_per_prompt"] = w.samples_per_prompt
    flags["--train.batch_size"] = view.samples_per_mini_batch
    flags["--train.max_epochs"] = w.ppo_epochs
    flags["--data.max_len"] = view.max_seq_len
    flags["--rollout.max_new_tokens"] = w.response.max_len
    per_gpu = per_gpu_batch(view.samples_per_mini_batch, view.data_parallel("actor"), "actor mini-batch")
    trainers = [r for r in ("actor", "critic") if view.has(r)]
    planned = min(view.roles[r].layout["micro_batch"] for r in trainers)
    flags["--train.micro_batch_size"] = largest_divisor_at_most(per_gpu, planned)
    forward = [r for r in ("actor", "ref", "critic", "reward") if view.has(r)]
    flags["--rollout.micro_batch_size"] = min(view.roles[r].layout["micro_batch"] for r in forward)
    if len({view.roles[r].layout["micro_batch"] for r in forward}) > 1:
        notes.append("OpenRLHF has one training micro-batch (--train.micro_batch_size) and one forward micro-batch "
                     "(--rollout.micro_batch_size) for all models: the smallest of the plan's is used")


def _deepspeed(view: PlanView, flags: dict, notes: list[str]) -> None:
    actor = view.roles["actor"].layout
    flags["--ds.zero_stage"] = actor["zero"]
    flags["--ds.tensor_parallel_size"] = actor["tp"]
    others = {r: view.roles[r].layout for r in ("ref", "critic", "reward") if view.has(r)}
    differ = [r for r, lay in others.items() if lay["zero"] != actor["zero"] or lay["tp"] != actor["tp"]]
    if differ:
        notes.append(f"OpenRLHF gives every DeepSpeed model the actor's ZeRO stage {actor['zero']} and TP "
                     f"{actor['tp']}; the plan chose other layouts for {', '.join(differ)}")
    if actor["recompute"] != "none":
        flags["--actor.gradient_checkpointing_enable"] = True
    for role in ("ref", "reward"):
        if view.has(role) and view.roles[role].offload:
            flags[f"--{role}.offload"] = True


def _algorithm(view: PlanView, flags: dict, notes: list[str]) -> None:
    flags["--algo.advantage.estimator"] = ESTIMATOR[view.algo]
    if not view.has("ref"):
        flags["--algo.kl.init_coef"] = 0
    elif view.algo == "grpo":  # OpenRLHF's GRPO recipe: the KL as a loss, k3 estimator
        flags["--algo.kl.use_loss"], flags["--algo.kl.estimator"] = True, "k3"
    if view.workload.oversample > 1:
        flags["--algo.dynamic_filtering_enable"] = True
        notes.append(f"the plan over-generates {view.workload.oversample:g}x for dynamic sampling; OpenRLHF's "
                     "dynamic filtering refills batches by itself")


# ---- text ---------------------------------------------------------------------------------------
def flag_list(flags: dict) -> list[str]:
    """``--flag value`` words; a True flag is a bare switch, False/None flags are left out."""
    argv = []
    for flag, value in flags.items():
        if value is True:
            argv.append(flag)
        elif value is False or value is None:
            continue
        else:
            argv += [flag, str(value)]
    return argv


def _quoted_pairs(argv: list[str]) -> list[str]:
    """One line per flag with its value, shell-quoted."""
    lines, i = [], 0
    while i < len(argv):
        if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            lines.append(f"{argv[i]} {shlex.quote(argv[i + 1])}")
            i += 2
        else:
            lines.append(argv[i])
            i += 1
    return lines


def _script(command: str, plan: dict) -> str:
    return ("#!/usr/bin/env bash\n"
            f"# Runs rlplan plan {plan['inputs']['digest']} with OpenRLHF {OPENRLHF_VERSION}; extra flags go after it.\n"
            "set -euo pipefail\n" + command + ' \\\n    "$@"\n')


def _explanation(placement: str, notes: list[str], plan: dict) -> str:
    lines = [f"# rlplan plan {plan['inputs']['digest']} for OpenRLHF {OPENRLHF_VERSION}", "",
             f"Placement: {placement}.", "run_openrlhf.sh runs `python3 -m openrlhf.cli.train_ppo_ray` with the "
             "plan's flags; append yours (`bash run_openrlhf.sh --data.prompt_dataset ...`).", ""]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


__all__ = ["OPENRLHF_VERSION", "ESTIMATOR", "export_openrlhf", "flag_list"]
