"""``plan execute``: a plan on Ray, trained for real, timed stage by stage.

:func:`execute` checks the plan (what the executor runs, the cluster Ray reports), reserves
one placement group per pool, starts one worker group per role (vLLM engines for the
rollout, FSDP2 ranks for the others; all groups start at once), then drives the plan's
dataflow with the same controller as the dry run on :class:`executor.real.backend.RayBackend`.
Each step's metrics go to ``metrics.jsonl`` and the console; every call's measured time to
``trace.json`` (the dry run's format); checkpoints every K steps; ``resume`` continues from
the newest complete checkpoint. Sync plans run the controller one step at a time (it waits
for every step anyway); one-step-off plans run it over the steps between checkpoints.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from planner.errors import PlanError, require


@dataclass
class ExecuteOptions:
    plan_path: str
    models: dict[str, str]
    """Plan role -> local Hugging Face model folder (roles of the same model share one)."""
    data: str
    out_dir: str
    steps: int
    prompt_key: str = "prompt"
    answer_key: str = "answer"
    checkpoint_every: int = 0
    """Save every K steps (0: only at the end)."""
    resume: bool = False
    ray_address: str | None = None
    cluster: str | None = None
    """The plan's cluster as a profile name or YAML path (default: the plan's profile, by name)."""
    lr: float = 1e-5
    reward: str = "numeric"
    temperature: float = 1.0
    max_tokens: int | None = None
    """Response cap (default: the plan's maximum response length)."""
    seed: int = 0
    numerics_options: dict = field(default_factory=dict)
    verify_sync: bool = False
    quiet: bool = False


@dataclass
class ExecutionResult:
    out_dir: Path
    metrics: list[dict]
    records: list
    """Every call of this process's run (``executor.trace.CallRecord``)."""
    resumed_from: int


# ---- inputs -------------------------------------------------------------------------------
def resolve_models(plan: dict, given: dict[str, str]) -> dict[str, str]:
    """A folder for every plan role: given ones, else a given role's folder of the same model."""
    names = plan["inputs"]["models"]
    unknown = sorted(set(given) - set(names))
    require(not unknown, f"--model names role(s) {', '.join(unknown)} that the plan does not have: its roles are "
                         f"{', '.join(names)}")
    for role, folder in given.items():
        require(Path(folder, "config.json").is_file(),
                f"--model {role}={folder}: no config.json there: pass a Hugging Face model folder")
    by_name = {names[role]: folder for role, folder in given.items()}
    folders = {}
    for role, name in names.items():
        folder = given.get(role) or by_name.get(name)
        require(folder is not None, f"the plan's {role} is model {name!r}: pass its folder with --model {role}=DIR")
        folders[role] = folder
    return folders


def _prepare_out(out: Path, resume: bool) -> None:
    if out.exists() and not out.is_dir():
        raise PlanError(f"--out {str(out)!r} is a file: give a folder")
    if not resume and (out / "metrics.jsonl").exists():
        raise PlanError(f"{out} already holds a run (metrics.jsonl): pass --resume to continue it, or another --out")
    out.mkdir(parents=True, exist_ok=True)


def _start_ray(plan: dict, address: str | None) -> None:
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False)
        return
    groups = plan["inputs"]["cluster"]["node_groups"]
    if plan["inputs"]["cluster"]["name"] == "local":
        # the CPU development profile: logical GPUs, as many as the plan's one node has
        ray.init(num_gpus=groups[0]["gpus_per_node"], num_cpus=2 * groups[0]["gpus_per_node"],
                 include_dashboard=False, log_to_driver=False)
    else:
        ray.init(include_dashboard=False, log_to_driver=False)


def _write_placement(path: Path, plan: dict, placement) -> None:
    """Where Ray put every bundle (node ID and IP) beside the plan's (node, local rank)."""
    import json

    import ray

    ips = {n["NodeID"]: n.get("NodeManagerAddress") for n in ray.nodes()}
    pools = []
    for pool in plan["pools"]:
        nodes = placement.bundle_nodes(pool["id"])
        pools.append({"id": pool["id"], "roles": pool["roles"], "plan_gpus": pool["gpus"],
                      "ray_nodes": nodes, "ray_ips": [ips.get(n) for n in nodes]})
    path.write_text(json.dumps({"pools": pools}, indent=2))


def _start_groups(plan: dict, dataflow, placement, folders: dict, options: ExecuteOptions) -> dict:
    """Every role's worker group, started concurrently (vLLM engines take the longest)."""
    from executor.workers import RolloutGroup, TrainerConfig, TrainerGroup

    workload = plan["inputs"]["workload"]
    max_len = workload["prompt_len"] + (options.max_tokens or workload["response"]["max_len"]) + 8
    groups, errors = {}, []

    def start(role: str) -> None:
        try:
            entry, spec = plan["roles"][role], dataflow.roles[role]
            pool = placement.pool_of(role)
            if entry["kind"] == "generate":
                groups[role] = RolloutGroup(pool, folders[role], entry["layout"], seed=options.seed,
                                            max_model_len=max_len)
            else:
                groups[role] = TrainerGroup(role, pool, folders[role], spec.head, entry["layout"],
                                            TrainerConfig(lr=options.lr, seed=options.seed), trainable=spec.trainable)
        except BaseException as err:  # noqa: BLE001 - re-raised below, on the caller's thread
            errors.append(err)

    threads = [threading.Thread(target=start, args=(role,)) for role in plan["roles"]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        for g in groups.values():
            g.shutdown()
        raise errors[0]
    return groups


# ---- the run ------------------------------------------------------------------------------
def execute(options: ExecuteOptions) -> ExecutionResult:
    """Run ``options.steps`` training steps of the plan; see the module docstring."""
    from executor.resources import Placement, check_executable
    from planner.plan import load_plan
    from planner.replay import replay_plan

    require(options.steps >= 1, f"--steps must be at least 1, got {options.steps}")
    plan = load_plan(options.plan_path)
    check_executable(plan)
    folders = resolve_models(plan, options.models)
    replayed = replay_plan(plan, options.cluster, {r: str(Path(f, "config.json")) for r, f in folders.items()})
    dataflow = replayed.inputs.dataflow
    from executor.real.stages import SUPPORTED_ALGOS

    require(dataflow.algo in SUPPORTED_ALGOS, f"the executor runs {', '.join(SUPPORTED_ALGOS)}, not {dataflow.algo}: "
                                              "re-plan with one of those (`plan simulate` dry-runs any)")
    from executor.data import PromptStream, load_prompts

    examples = load_prompts(options.data, options.prompt_key, options.answer_key)
    per_step = _prompts_per_step(plan)
    require(len(examples) >= per_step,
            f"{options.data} has {len(examples)} prompts but the plan takes {per_step} per step: "
            "use more data or re-plan with --prompts" + (" or a smaller --oversample" if per_step >
                                                          plan["inputs"]["workload"]["prompts"] else ""))
    out = Path(options.out_dir)
    _prepare_out(out, options.resume)

    import ray

    _start_ray(plan, options.ray_address)
    placement = Placement.create(plan)
    _write_placement(out / "placement.json", plan, placement)
    groups = {}
    try:
        groups = _start_groups(plan, dataflow, placement, folders, options)
        return _train(plan, dataflow, groups, folders, examples, out, options, PromptStream)
    finally:
        for g in groups.values():
            g.shutdown()
        placement.remove()
        if options.ray_address is None:
            ray.shutdown()


def _train(plan, dataflow, groups: dict, folders: dict, examples: list, out: Path, options: ExecuteOptions,
           stream_cls):
    import time

    from transformers import AutoTokenizer

    from executor.controller import Controller
    from executor.real import checkpoint
    from executor.real.backend import RayBackend
    from executor.real.metrics import MetricsFile, step_metrics
    from executor.real.stages import RunSettings, StageRunner
    from executor.trace import build_trace, write_trace
    from executor.workers import sync_weights

    workload = plan["inputs"]["workload"]
    tokenizer = AutoTokenizer.from_pretrained(folders["actor"])
    stream = stream_cls(examples, _prompts_per_step(plan), seed=options.seed)
    trainers = {role: g for role, g in groups.items() if dataflow.roles[role].trainable}
    metrics_file = MetricsFile(out / "metrics.jsonl")
    steps_done, state = 0, {}
    if options.resume and (found := checkpoint.latest(out)) is not None:
        folder, state = found
        checkpoint.load(folder, trainers)
        stream.load_state_dict(state["stream"])
        steps_done = state["steps_done"]
        for role, spec in dataflow.roles.items():
            if spec.weights_from:  # the engines restart from the checkpoint's policy
                sync_weights(groups[spec.weights_from], groups[role]).result()
    metrics_file.keep_until(steps_done)
    resumed_from = steps_done
    cached: dict[int, list] = {}
    drawn = [steps_done]
    """The next step whose prompts the stream has not given yet."""

    def prompts_for(step: int) -> list:
        while drawn[0] <= step:
            cached[drawn[0]] = stream.next_batch()
            drawn[0] += 1
        return cached[step]

    settings = RunSettings(samples=workload["samples_per_prompt"],
                           max_tokens=options.max_tokens or workload["response"]["max_len"],
                           mini_batches=workload["mini_batches"], epochs=workload["ppo_epochs"],
                           reward=options.reward, temperature=options.temperature, seed=options.seed,
                           numerics_options=dict(options.numerics_options), verify_sync=options.verify_sync,
                           kept_prompts=workload["prompts"])
    runner = StageRunner(dataflow.algo, groups, tokenizer, prompts_for, settings)
    runner.load_state_dict(state.get("driver", {}))
    t0 = time.perf_counter()
    records, metrics = [], []
    progress = _Progress(options.steps, steps_done, quiet=options.quiet)
    chunk = 1 if plan["mode"] == "sync" else (options.checkpoint_every or options.steps)
    try:
        while steps_done < options.steps:
            n = min(chunk, options.steps - steps_done)
            if options.checkpoint_every:
                n = min(n, options.checkpoint_every - steps_done % options.checkpoint_every)
            backend = RayBackend(runner, iteration_offset=steps_done, t0=t0)
            try:
                Controller(plan, dataflow, backend).run(n)
            finally:
                backend.close()
            new = backend.records()
            records.extend(new)
            for step in range(steps_done, steps_done + n):
                batch = cached.pop(step)
                prompt_tokens = sum(len(tokenizer.encode(e.prompt, add_special_tokens=False)) for e in batch)
                m = step_metrics(step, new, [e.index for e in batch], prompt_tokens * settings.samples)
                metrics_file.append(m)
                metrics.append(m)
                progress.step(m)
                backend.outputs.pop(step, None)
            steps_done += n
            write_trace(build_trace(records, plan["pools"], metadata=_trace_metadata(plan, "measured")),
                        out / "trace.json")
            if (options.checkpoint_every and steps_done % options.checkpoint_every == 0) or steps_done == options.steps:
                checkpoint.save(out, steps_done, trainers, {"stream": stream.state_dict(), "seed": options.seed,
                                                            "driver": runner.state_dict()})
    finally:
        progress.close()
    return ExecutionResult(out, metrics_file.read(), records, resumed_from)


def _prompts_per_step(plan: dict) -> int:
    """Prompts generated for per step: the plan's prompts, times DAPO's over-sampling."""
    from planner.workload import Workload

    return Workload.from_dict(plan["inputs"]["workload"]).generated_prompts


def _trace_metadata(plan: dict, source: str) -> dict:
    return {"source": source, "algo": plan["inputs"]["algo"], "cluster": plan["inputs"]["cluster"]["name"],
            "plan_digest": plan["inputs"]["digest"], "mode": plan["mode"]}


class _Progress:
    """A progress bar on the console with one line per step above it."""

    def __init__(self, total: int, done: int, quiet: bool) -> None:
        self.quiet = quiet
        if quiet:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("{task.fields[info]}"))
        self.task = self.bar.add_task("steps", total=total, completed=done, info="")
        self.bar.start()

    def step(self, m: dict) -> None:
        if self.quiet:
            return
        info = (f"reward {m.get('reward_mean', float('nan')):.3f}  kl {m['kl']:.4f}  "
                f"len {m.get('response_length/mean', 0):.1f}  {m['step_time_s']:.2f} s  "
                f"{m.get('tokens_per_s', 0):,.0f} tok/s")
        self.bar.console.print(f"step {m['step'] + 1}: {info}")
        self.bar.update(self.task, advance=1, info=info)

    def close(self) -> None:
        if not self.quiet:
            self.bar.stop()
