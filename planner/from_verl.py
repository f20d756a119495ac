"""Plan an existing verl job: read its config, and price the layout it describes.

``plan --from-verl FILE`` takes a verl config YAML (nested, or with dotted keys) or the
Hydra overrides of a ``python3 -m verl.trainer.main_ppo ...`` run: a text file or the
launch script itself (``key=value`` words, shell quoting, ``\\`` continuations, ``#``
comments; ``NAME=value`` shell variables set earlier in the file are substituted). Keys
it does not set take verl 0.9.1's defaults (:data:`VERL_DEFAULTS`, checked against verl's
shipped ``_generated_ppo_trainer.yaml`` by the tests).

The user's layout is what verl builds from that config: every trainer role and the
rollout on one pool of ``trainer.nnodes x trainer.n_gpus_per_node`` GPUs (a reward model
optionally in its own pool), FSDP trainers (or Megatron's tp/pp), the rollout's TP and
memory level, gradient checkpointing and reference offload as configured. It is priced
by a constrained solve of the same model the plan comes from (as the baselines are), so
the speedup compares like with like.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from planner.errors import PlanError, require

VERL_DEFAULTS: dict[str, object] = {
    "algorithm.adv_estimator": "gae",
    "algorithm.filter_groups.enable": False,
    "algorithm.use_kl_in_reward": False,
    "data.train_batch_size": 1024,
    "data.max_prompt_length": 512,
    "data.max_response_length": 512,
    "data.gen_batch_size": None,
    "actor_rollout_ref.model.path": "~/models/deepseek-llm-7b-chat",
    "actor_rollout_ref.model.enable_gradient_checkpointing": True,
    "actor_rollout_ref.actor.strategy": "fsdp",
    "actor_rollout_ref.actor.ppo_mini_batch_size": 256,
    "actor_rollout_ref.actor.ppo_epochs": 1,
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": None,
    "actor_rollout_ref.actor.use_kl_loss": False,
    "actor_rollout_ref.actor.fsdp_config.param_offload": False,
    "actor_rollout_ref.ref.fsdp_config.param_offload": False,
    "actor_rollout_ref.rollout.n": 1,
    "actor_rollout_ref.rollout.tensor_model_parallel_size": 2,
    "actor_rollout_ref.rollout.gpu_memory_utilization": 0.5,
    "actor_rollout_ref.rollout.max_num_seqs": 256,
    "critic.model.path": "~/models/deepseek-llm-7b-chat",
    "critic.model.enable_gradient_checkpointing": True,
    "reward.reward_model.enable": False,
    "reward.reward_model.model_path": None,
    "reward.reward_model.enable_resource_pool": False,
    "reward.reward_model.nnodes": 0,
    "reward.reward_model.n_gpus_per_node": 8,
    "trainer.nnodes": 1,
    "trainer.n_gpus_per_node": 8,
}
"""verl 0.9.1's values of the keys rlplan reads (verl/trainer/config/_generated_ppo_trainer.yaml)."""
MEGATRON_DEFAULTS = {"actor_rollout_ref.actor.megatron.tensor_model_parallel_size": 1,
                     "actor_rollout_ref.actor.megatron.pipeline_model_parallel_size": 1}
"""The same for the Megatron engine (verl/trainer/config/_generated_ppo_megatron_trainer.yaml)."""
LEGACY_KEYS = {"reward_model.enable": "reward.reward_model.enable",
               "reward_model.model.path": "reward.reward_model.model_path",
               "reward_model.enable_resource_pool": "reward.reward_model.enable_resource_pool",
               "reward_model.nnodes": "reward.reward_model.nnodes",
               "reward_model.n_gpus_per_node": "reward.reward_model.n_gpus_per_node"}
"""verl before 0.8 kept the reward model under ``reward_model.*``."""
ALGO_OF = {"gae": "ppo", "grpo": "grpo", "rloo": "rloo", "remax": "remax", "reinforce_plus_plus": "reinforce_pp"}
_KEY = re.compile(r"^(\+{0,2})([A-Za-z_][\w\-]*(?:\.[\w\-]+)*)=(.*)$", re.S)
_VAR = re.compile(r"\$(\w+)|\$\{(\w+)\}")


@dataclass
class VerlJob:
    """The keys of one verl job that matter for placement, with verl's defaults behind them."""

    source: str
    given: dict[str, object] = field(default_factory=dict)

    def get(self, key: str):
        if key in self.given:
            return self.given[key]
        return {**VERL_DEFAULTS, **MEGATRON_DEFAULTS}.get(key)

    def number(self, key: str, kind=int):
        value = self.get(key)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (kind is float or float(value).is_integer())
        require(ok and value > 0, f"{self.source}: {key}={value!r} must be a positive {'number' if kind is float else 'integer'}")
        return kind(value)

    def flag(self, key: str) -> bool:
        value = self.get(key)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return bool(value)

    # ---- what the job is --------------------------------------------------------------------
    @property
    def algo(self) -> str:
        estimator = str(self.get("algorithm.adv_estimator"))
        require(estimator in ALGO_OF, f"{self.source}: algorithm.adv_estimator={estimator}: rlplan plans "
                                      f"{', '.join(ALGO_OF)}; pass --algo to plan it as one of those")
        if estimator == "grpo" and self.flag("algorithm.filter_groups.enable"):
            return "dapo"
        return ALGO_OF[estimator]

    @property
    def megatron(self) -> bool:
        return str(self.get("actor_rollout_ref.actor.strategy")) == "megatron"

    @property
    def trainer_gpus(self) -> tuple[int, int]:
        return self.number("trainer.nnodes"), self.number("trainer.n_gpus_per_node")

    @property
    def reward_model(self) -> bool:
        return self.flag("reward.reward_model.enable")

    @property
    def reward_pool(self) -> tuple[int, int] | None:
        """(nodes, GPUs per node) of a standalone reward pool, or None."""
        if not (self.reward_model and self.flag("reward.reward_model.enable_resource_pool")):
            return None
        return self.number("reward.reward_model.nnodes"), self.number("reward.reward_model.n_gpus_per_node")

    @property
    def total_gpus(self) -> int:
        nodes, per_node = self.trainer_gpus
        extra = self.reward_pool
        return nodes * per_node + (extra[0] * extra[1] if extra else 0)

    def layout_text(self) -> str:
        nodes, per_node = self.trainer_gpus
        engine = "Megatron tp{}/pp{}".format(self.number("actor_rollout_ref.actor.megatron.tensor_model_parallel_size"),
                                             self.number("actor_rollout_ref.actor.megatron.pipeline_model_parallel_size")) \
            if self.megatron else "FSDP"
        text = (f"{nodes} x {per_node} GPUs in one pool (verl's global_pool), {engine} trainers, rollout tp"
                f"{self.number('actor_rollout_ref.rollout.tensor_model_parallel_size')} at gpu_memory_utilization "
                f"{self.number('actor_rollout_ref.rollout.gpu_memory_utilization', float):g}")
        if self.reward_pool:
            text += f", reward model on {self.reward_pool[0]} x {self.reward_pool[1]} GPUs of its own"
        return text


# ---- reading -------------------------------------------------------------------------------------
def read_verl_job(path_text: str) -> VerlJob:
    """A verl config YAML, or a file of Hydra overrides / a launch script."""
    path = Path(path_text).expanduser()
    require(path.is_file(), f"verl config {path_text!r} not found: give a config YAML, an overrides file or "
                            "the script that runs verl.trainer.main_ppo")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    given = _flatten(data) if isinstance(data, dict) else _overrides(text, path_text)
    for old, new in LEGACY_KEYS.items():
        if old in given and new not in given:
            given[new] = given.pop(old)
    require(bool(given), f"{path_text}: found no verl settings (key=value overrides or a config mapping)")
    return VerlJob(str(path_text), given)


def _flatten(data: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _overrides(text: str, source: str) -> dict[str, object]:
    """``key=value`` words of a Hydra command line; dotless ``NAME=value`` words are shell variables."""
    try:
        words = shlex.split(text.replace("\\\n", " "), comments=True)
    except ValueError as err:
        raise PlanError(f"{source}: cannot split it into words ({err}): fix the quoting") from None
    variables: dict[str, str] = {}
    given: dict[str, object] = {}
    for word in words:
        match = _KEY.match(word)
        if match is None:
            continue
        _, key, raw = match.groups()
        raw = _VAR.sub(lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), raw)
        if "." not in key:
            variables[key] = raw
            continue
        given[key] = _value(raw)
    return given


def _value(raw: str):
    """A Hydra value read as YAML reads it (true, 1e-6, null, [a, b]); anything else stays text."""
    try:
        return yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        return raw


# ---- the job as planning inputs ------------------------------------------------------------------
@dataclass
class JobBasis:
    """What ``plan --from-verl`` plans: the cluster, algorithm, workload and models of the job."""

    job: VerlJob
    cluster: object
    algo: str
    workload: object
    reward_model: bool
    models: dict
    """--actor/--ref/--critic/--reward/--cost -> ModelSpec (the roles' models by flag)."""
    max_gpus: int | None
    model_dir: str | None
    """The actor's local model folder, if any (for its tokenizer)."""


def job_basis(args) -> JobBasis:
    """Planning inputs from ``args.from_verl``; flags the user gives win over the config."""
    from planner.model_loading import load_model

    job = read_verl_job(args.from_verl)
    algo = args.algo or job.algo
    cluster, max_gpus = _cluster(job, args)
    workload = _workload(job, args)
    actor_path = str(job.get("actor_rollout_ref.model.path"))
    actor = load_model(args.actor) if args.actor else resolve_model(actor_path, job.source, "--actor")
    models = {"actor": actor, "ref": load_model(args.ref) if args.ref else actor}
    critic_given = "critic.model.path" in job.given
    models["critic"] = load_model(args.critic) if args.critic else \
        resolve_model(str(job.get("critic.model.path")), job.source, "--critic") if critic_given else actor
    reward_path = job.get("reward.reward_model.model_path")
    models["reward"] = load_model(args.reward) if args.reward else \
        resolve_model(str(reward_path), job.source, "--reward") if reward_path else models["critic"]
    models["cost"] = load_model(args.cost) if args.cost else models["reward"]
    reward_model = job.reward_model if args.reward_model is None else args.reward_model
    local = Path(actor_path).expanduser()
    return JobBasis(job, cluster, algo, workload, reward_model, models, max_gpus,
                    str(local) if local.is_dir() else None)


def resolve_model(path: str, source: str, flag: str):
    """A verl model path as a ModelSpec: a local folder, a zoo name or Hugging Face id, or the
    folder's base name matched to the zoo (``Qwen/Qwen2-7B-Instruct`` -> ``qwen2-7b-instruct``)."""
    from planner.model_loading import load_model

    base = path.rstrip("/").split("/")[-1]
    for name in (path, base, re.sub(r"-(instruct|chat|base|it)$", "", base, flags=re.I)):
        try:
            return load_model(name)
        except PlanError:
            continue
    raise PlanError(f"{source}: model {path!r} is neither a local folder with a config.json nor a zoo model "
                    f"(`plan models`): pass {flag} with a zoo name or the model's folder")


def _cluster(job: VerlJob, args):
    """The job's GPUs: nnodes x n_gpus_per_node (plus a reward pool) of ``--gpu``, or ``--cluster``."""
    from planner.clusters import load_cluster
    from planner.hardware import gpu_by_name

    nodes, per_node = job.trainer_gpus
    total = job.total_gpus
    if job.reward_pool:
        require(job.reward_pool[1] == per_node, f"{job.source}: the reward pool has {job.reward_pool[1]} GPUs per "
                                                f"node, the trainer {per_node}: rlplan needs nodes of one size")
    require(not (args.cluster and args.gpu), "give --gpu (the job's GPU type) or --cluster (a profile), not both")
    if args.cluster:
        cluster = load_cluster(args.cluster)
        require(total <= cluster.num_gpus, f"{job.source} uses {total} GPUs but {cluster.name} has "
                                           f"{cluster.num_gpus}: pass a larger --cluster, or --gpu TYPE")
        return cluster, (total if total < cluster.num_gpus else None)
    require(bool(args.gpu), f"{job.source} does not say which GPUs the job runs on: add --gpu TYPE "
                            "(e.g. a100-80gb, h100-80gb) or --cluster PROFILE")
    cluster = verl_job_cluster(gpu_by_name(args.gpu), total // per_node, per_node)
    return _same_profile(cluster) or cluster, None


def verl_job_cluster(gpu, nodes: int, per_node: int):
    """The cluster of a verl job on ``nodes`` x ``per_node`` GPUs of type ``gpu`` (no profile)."""
    from planner.hardware import single_node_group_cluster

    return single_node_group_cluster(gpu, nodes * per_node, per_node, name=f"verl {nodes} x {per_node} {gpu.name}")


def rebuild_job_cluster(fingerprint: dict):
    """The cluster a ``plan --from-verl --gpu`` plan was made on, from the plan's record
    of it (it matches no profile, so no name finds it again); None for any other cluster."""
    from planner.hardware import gpu_by_name

    groups = fingerprint.get("node_groups") or []
    if len(groups) != 1 or not str(fingerprint.get("name", "")).startswith("verl "):
        return None
    group = groups[0]
    try:
        cluster = verl_job_cluster(gpu_by_name(group["gpu"]), int(group["nodes"]), int(group["gpus_per_node"]))
    except (PlanError, KeyError, TypeError, ValueError):
        return None
    return cluster if cluster.fingerprint() == fingerprint else None


def _same_profile(cluster):
    """The built-in profile that is ``cluster`` under another name, if there is one: a plan
    made on it names a profile, so `plan simulate` and `plan export` find its cluster again."""
    import dataclasses

    from planner.clusters import cluster_names, load_cluster

    for name in cluster_names():
        profile = load_cluster(name)
        if dataclasses.replace(profile, name=cluster.name, description=cluster.description) == cluster:
            return profile
    return None


def _workload(job: VerlJob, args):
    """The job's batch shape; ``--prompts``/``--samples``/... given on the command line win."""
    import copy

    from planner.workload import workload_from_args

    prompts = args.prompts or job.number("data.train_batch_size")
    mini = job.number("actor_rollout_ref.actor.ppo_mini_batch_size")
    if args.prompts:
        require(args.mini_batches or prompts % mini == 0, f"--prompts {prompts} is not a multiple of the job's "
                f"ppo_mini_batch_size {mini}: give --mini-batches too")
    require(args.mini_batches or prompts % mini == 0,
            f"{job.source}: data.train_batch_size {prompts} is not a multiple of ppo_mini_batch_size {mini}, "
            "which verl requires: fix the config")
    filled = copy.copy(args)
    filled.prompts = prompts
    filled.samples = args.samples or job.number("actor_rollout_ref.rollout.n")
    filled.prompt_len = args.prompt_len or (None if getattr(args, "prompts_from", None)
                                            else job.number("data.max_prompt_length"))
    filled.max_response_len = args.max_response_len or job.number("data.max_response_length")
    filled.mini_batches = args.mini_batches or prompts // mini
    filled.epochs = args.epochs or job.number("actor_rollout_ref.actor.ppo_epochs")
    gen = job.get("data.gen_batch_size")
    if args.oversample is None and job.algo == "dapo" and gen:
        filled.oversample = job.number("data.gen_batch_size") / prompts
    return workload_from_args(filled)


# ---- the user's layout ---------------------------------------------------------------------------
USER_LAYOUT = "your verl config"


def user_layout_constraints(job: VerlJob, inputs):
    """The pools and layouts verl builds from the job's config, as search constraints."""
    from planner.search.cpsat import Constraints

    roles = list(inputs.roles)
    nodes, per_node = job.trainer_gpus
    apart = ["reward"] if job.reward_pool and "reward" in roles else []
    together = [r for r in roles if r not in apart]
    num_gpus = {r: nodes * per_node for r in together}
    if apart:
        num_gpus["reward"] = job.reward_pool[0] * job.reward_pool[1]
    tp = job.number("actor_rollout_ref.rollout.tensor_model_parallel_size")
    util = job.number("actor_rollout_ref.rollout.gpu_memory_utilization", float)
    allow = {r: _trainer_rule(job, r) for r in roles if r != "rollout"}
    # Memory levels above the user's are not theirs; lower ones that pruning kept as no worse count.
    allow["rollout"] = lambda c: c.layout.tp == tp and c.layout.gpu_memory_utilization <= util + 1e-9
    return Constraints(partition=[together] + ([apart] if apart else []), num_gpus=num_gpus, allow=allow)


def _trainer_rule(job: VerlJob, role: str):
    from planner.search.baselines import _fsdp  # verl's FSDP family: ZeRO-3 data parallel, no TP/PP

    megatron = job.megatron
    mtp = job.number("actor_rollout_ref.actor.megatron.tensor_model_parallel_size")
    mpp = job.number("actor_rollout_ref.actor.megatron.pipeline_model_parallel_size")
    checkpointing = {"actor": job.flag("actor_rollout_ref.model.enable_gradient_checkpointing"),
                     "critic": job.flag("critic.model.enable_gradient_checkpointing")}
    micro = job.get("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu") if role == "actor" else None
    ref_offload = job.flag("actor_rollout_ref.ref.fsdp_config.param_offload")

    def allowed(c) -> bool:
        lay = c.layout
        if megatron and role in ("actor", "ref"):
            family = lay.tp == mtp and lay.pp == mpp
        else:
            family = _fsdp(c)
        if role in checkpointing and (lay.recompute != "none") != checkpointing[role]:
            return False
        if isinstance(micro, int) and lay.micro_batch != micro and micro in (1, 2, 4, 8):
            return False
        if role == "ref" and c.offload != ref_offload:
            return False
        return family

    return allowed


def price_user_layout(inputs, job: VerlJob):
    """The user's layout priced like the plan: a BaselineResult named :data:`USER_LAYOUT`."""
    from planner.search.baselines import Baseline
    from planner.search.candidates import CandidateBuilder
    from planner.search.pricing import Pricer
    from planner.search.cpsat import CpSatModel
    from planner.search.run import BaselineResult
    from planner.search.space import prune_by_sync

    constraints = user_layout_constraints(job, inputs)
    baseline = Baseline(USER_LAYOUT, job.layout_text(), constraints)
    builder, pricer = CandidateBuilder(inputs), Pricer(inputs)
    space = {r: list(builder.candidates(r, 0, n)) for r, n in constraints.num_gpus.items()}
    prune_by_sync(space, pricer)
    if any(not space[r] for r in space):
        return BaselineResult(baseline, why_not="does not fit in memory (rlplan's memory model)")
    # One pool per group of roles and fixed sizes leave few candidates: the exact model solves it directly.
    opts = inputs.options
    model = CpSatModel(pricer, space, constraints)
    solution = model.solve(opts.time_limit_s, opts.workers) if model.build() else None
    infeasible = model.proven_infeasible
    if solution is None:
        why = ("does not fit in memory with these settings (rlplan's memory model)" if infeasible
               else f"no layout found in {opts.time_limit_s:g} s")
        return BaselineResult(baseline, why_not=why)
    return BaselineResult(baseline, solution.assignment, pricer.evaluate(solution.assignment))


def comparison_lines(plan: dict, job: VerlJob, out: str | None = None) -> tuple[str, str]:
    """What to print before the plan (the user's layout) and after it (the speedup).
    ``out``: where the plan was written (``--out``), for the export hint."""
    from planner.cli.plan_report import fmt_s

    mine = next((b for b in plan["baselines"] if b["name"] == USER_LAYOUT), None)
    before = f"Your verl job ({job.source}): {job.layout_text()}"
    if mine is None or not mine.get("feasible"):
        reason = mine.get("reason", "not priced") if mine else "not priced"
        before += f"\n  rlplan cannot run it as configured: {reason}"
        return before, f"plan: {fmt_s(plan['iteration_time_s'])} per iteration; your layout {reason}"
    layouts = ", ".join(f"{r} {text}" for r, text in mine["layouts"].items())
    before += f"\n  priced by rlplan: {fmt_s(mine['iteration_time_s'])} per iteration ({layouts})"
    after = (f"speedup of the plan over your verl config: {mine['speedup']:.2f}x "
             f"({fmt_s(mine['iteration_time_s'])} -> {fmt_s(plan['iteration_time_s'])} per iteration); "
             + (f"`plan export {out} --to verl` writes its config" if out else
                "with --out plan.json, `plan export plan.json --to verl` writes its config"))
    return before, after


__all__ = ["VERL_DEFAULTS", "MEGATRON_DEFAULTS", "VerlJob", "read_verl_job", "JobBasis", "job_basis",
           "resolve_model", "user_layout_constraints", "price_user_layout", "USER_LAYOUT", "comparison_lines"]
