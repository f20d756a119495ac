"""A plan's JSON back into priced search objects: the inputs, the chosen candidates, the
pricer, and the schedule order the plan chose.

The simulator and the exporters work from a plan file, but they must price stages with
exactly the cost-model calls the search used, so that a simulation with fixed response
lengths reproduces the plan's objective. :func:`replay_plan` therefore rebuilds the
``SearchInputs`` from the plan's recorded inputs, checks that they are the ones the plan
was made from (the cluster's fingerprint, the digest), re-prices each role's recorded
layout with ``CandidateBuilder`` on its pool, and re-evaluates the plan's schedule order
with ``Pricer``. Nothing is read from the plan's predicted numbers except to compare.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.errors import PlanError, require
from planner.parallel import GenerationConfig, ParallelConfig

STALE_TOLERANCE = 1e-6
"""Relative difference between the plan's objective and the re-priced one above which the
plan counts as made by another version of the cost model."""


@dataclass(frozen=True)
class ReplayedPlan:
    """A plan with everything needed to price and run it again."""

    plan: dict
    inputs: object
    """``SearchInputs`` the plan was made from."""
    pricer: object
    """``Pricer`` of those inputs."""
    assignment: object
    """``Assignment``: every role's pool and re-priced candidate."""
    order: list[str]
    """Jobs in the order of the plan's schedule (by predicted start)."""
    evaluation: object
    """``Evaluation`` of ``order``: re-priced durations and schedule."""

    @property
    def objective_s(self) -> float:
        return self.evaluation.objective_s

    @property
    def stale(self) -> bool:
        """True if re-pricing does not give the plan's objective (another cost-model version)."""
        recorded = self.plan["iteration_time_s"]
        return abs(self.objective_s - recorded) > STALE_TOLERANCE * max(recorded, 1e-12)

    def gpu_set(self, role: str):
        cand = self.assignment.choice[role]
        return self.inputs.cluster.gpu_set(cand.num_gpus, cand.group)


def replay_search(result, plan: dict) -> ReplayedPlan:
    """The replay of a search that just ran (no re-pricing needed): ``plan = plan_to_dict(result)``."""
    order = [job["job"] for job in plan["schedule"]]
    evaluation = result.pricer.evaluate(result.assignment, order)
    return ReplayedPlan(plan, result.inputs, result.pricer, result.assignment, order, evaluation)


def replay_plan(plan: dict, cluster: str | None = None, model_paths: dict[str, str] | None = None) -> ReplayedPlan:
    """Rebuild a plan loaded by ``planner.plan.load_plan``.

    ``cluster``: the cluster to run on (a profile name or YAML path); by default the plan's
    own, by name. A plan made for another cluster is refused. ``model_paths``: role ->
    config.json path for models that are not in the zoo.
    """
    from planner.search.candidates import CandidateBuilder
    from planner.search.pricing import Assignment, Pricer

    _require_fields(plan)
    inputs = _rebuild_inputs(plan, cluster, model_paths or {})
    builder = CandidateBuilder(inputs)
    role_pool, choice = {}, {}
    pools = {p["id"]: p for p in plan["pools"]}
    for role in inputs.roles:
        entry = plan["roles"].get(role)
        require(entry is not None and entry.get("pool") in pools,
                f"the plan has no pool for role {role!r} of {inputs.algo}: re-plan it with this version")
        pool = pools[entry["pool"]]
        group = _node_group(inputs.cluster, pool)
        role_pool[role] = pool["id"]
        choice[role] = _find_candidate(builder, role, group, pool["num_gpus"], entry)
    assignment = Assignment(role_pool, choice)
    pricer = Pricer(inputs)
    order = [job["job"] for job in plan["schedule"]]
    require(sorted(order) == sorted(pricer.graph.jobs),
            f"the plan's schedule lists {', '.join(order)} but {inputs.algo} runs {', '.join(pricer.graph.jobs)}: "
            "re-plan it with this version")
    evaluation = pricer.evaluate(assignment, order)
    require(evaluation is not None,
            f"the plan's layout does not fit in memory on {inputs.cluster.name} under this version's cost model: re-plan it")
    return ReplayedPlan(plan, inputs, pricer, assignment, order, evaluation)


# ---- inputs ---------------------------------------------------------------------------------
def _require_fields(plan: dict) -> None:
    for key in ("inputs", "pools", "roles", "schedule", "iteration_time_s", "mode"):
        require(key in plan, f"the plan has no {key!r}: pass a plan written by `plan ... --out`")
    for key in ("cluster", "algo", "models", "workload", "options", "digest"):
        require(key in plan["inputs"], f"the plan's inputs have no {key!r}: pass a plan written by `plan ... --out`")


def _rebuild_inputs(plan: dict, cluster_arg: str | None, model_paths: dict[str, str]):
    from algos import build_dataflow
    from planner.clusters import load_cluster
    from planner.search.inputs import SearchInputs, SearchOptions
    from planner.workload import Workload

    from planner.from_verl import rebuild_job_cluster

    recorded = plan["inputs"]
    planned_cluster = recorded["cluster"]
    cluster = (None if cluster_arg else rebuild_job_cluster(planned_cluster)) \
        or load_cluster(cluster_arg or planned_cluster["name"])
    if cluster.fingerprint() != planned_cluster:
        raise PlanError(f"the plan was made for cluster {_describe(planned_cluster)}, not {_describe(cluster.fingerprint())}"
                        f"{' (the profile changed since)' if cluster_arg is None else ''}: "
                        f"re-plan with `plan --cluster {cluster_arg or cluster.name} ...`")
    workload = Workload.from_dict(recorded["workload"])
    models = _load_models(recorded["models"], model_paths)
    dataflow = build_dataflow(recorded["algo"], workload, reward_model="reward" in recorded["models"])
    options = dict(recorded["options"])
    options["colocate"] = tuple(tuple(group) for group in options.get("colocate", ()))
    try:
        search_options = SearchOptions(**options)
    except TypeError as err:
        raise PlanError(f"the plan's options are not this version's ({err}): re-plan it") from None
    require(set(models) == set(dataflow.roles),
            f"the plan's models are for roles {', '.join(models)} but {recorded['algo']} has "
            f"{', '.join(dataflow.roles)}: re-plan it with this version")
    inputs = SearchInputs(cluster, recorded["algo"], dataflow, {r: models[r] for r in dataflow.roles}, workload,
                          search_options)
    require(inputs.digest() == recorded["digest"],
            f"the plan's inputs do not match its digest {recorded['digest']} (got {inputs.digest()}): "
            "the file was edited or made by another version; re-plan it")
    return inputs


def _describe(fingerprint: dict) -> str:
    groups = " + ".join(f"{g['nodes']} x {g['gpus_per_node']} {g['gpu']}" for g in fingerprint["node_groups"])
    return f"{fingerprint['name']!r} ({groups})"


def _load_models(names: dict[str, str], paths: dict[str, str]):
    from planner.model_loading import load_model

    unknown = sorted(set(paths) - set(names))
    require(not unknown, f"--model names role(s) {', '.join(unknown)} that the plan does not have: "
                         f"its roles are {', '.join(names)}")
    models = {}
    for role, name in names.items():
        if role in paths:
            spec = load_model(paths[role])
            require(spec.name == name, f"--model {role}={paths[role]} reads as {spec.name!r} but the plan's {role} "
                                       f"is {name!r}: pass that model's config.json")
        else:
            try:
                spec = load_model(name)
            except PlanError:
                raise PlanError(f"the plan's {role} model {name!r} is not in the zoo: pass its config.json with "
                                f"--model {role}=PATH") from None
        models[role] = spec
    return models


# ---- candidates -----------------------------------------------------------------------------
def _node_group(cluster, pool: dict) -> int:
    """Node group of a pool: the group of the node its first GPU is on."""
    nodes = dict(cluster.nodes())
    first_node = pool["gpus"][0][0] if pool.get("gpus") else pool["nodes"][0]
    require(first_node in nodes, f"pool {pool['id']} is on node {first_node}, which {cluster.name} does not have: re-plan")
    group = nodes[first_node]
    return next(i for i, g in enumerate(cluster.node_groups) if g is group)


def _find_candidate(builder, role: str, group: int, num_gpus: int, entry: dict):
    """The candidate the search priced for ``role``'s recorded layout on its pool."""
    layout_cls = GenerationConfig if entry.get("kind") == "generate" else ParallelConfig
    try:
        layout = layout_cls.from_dict(entry["layout"])
    except (TypeError, KeyError):
        raise PlanError(f"the plan's layout of {role} ({entry.get('layout')!r}) is not this version's: re-plan it") from None
    offload = bool(entry.get("offload", False))
    for cand in builder.candidates(role, group, num_gpus):
        if cand.layout == layout and cand.offload == offload:
            return cand
    raise PlanError(f"{role}'s layout {layout.describe()}{'/offload' if offload else ''} on {num_gpus} GPUs is not a "
                    "layout this version of rlplan prices there (it does not fit or the cost model changed): re-plan it")

