"""An RL algorithm as a dataflow: roles (models), stages (calls on them) and a DAG.

This is HybridFlow's "RLHF dataflow graph" (Sheng et al. 2024, §6): the planner prices
every stage for every layout, and the scheduler runs stages when their inputs are ready.
An edge ``u -> v`` means that ``v`` needs ``u``'s output in the same iteration; what flows
along it is the edge's ``payload`` attribute. Work that crosses iterations (the rollout's
weights come from the previous ``actor.update``) is declared on the role
(``weights_from``), not as an edge, so the graph stays acyclic.

Imports only numpy/networkx: the planning path must not pull in torch, ray or vllm.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable, Iterable

import networkx as nx

from planner.workload import LengthDistribution, Workload

MODEL_FLAGS = ("actor", "critic", "ref", "reward", "cost")
HEADS = ("lm", "value")


class StageKind(str, Enum):
    GENERATE = "generate"
    """Autoregressive sampling (vLLM): prefill plus one decode step per response token."""
    FORWARD = "forward"
    """One forward pass over prompt+response: log-probs, values or reward scores."""
    TRAIN = "train"
    """Forward, backward and optimizer steps over ``epochs x mini_batches``."""
    RULE_REWARD = "rule_reward"
    """A reward function on the driver's CPU (math checker, code tests); no GPU pool."""
    COMPUTE = "compute"
    """Driver-side arithmetic: advantages, group filtering; no GPU pool."""


@dataclass(frozen=True)
class RoleSpec:
    """One model of the algorithm, as it is placed on GPUs."""

    name: str
    """actor, rollout, ref, critic, reward, cost, cost_critic, ..."""
    model_of: str
    """Which user model flag gives its architecture: actor | critic | ref | reward | cost."""
    trainable: bool
    head: str
    """``lm`` (log-probs, generation) or ``value`` (a scalar head: critic, reward, cost)."""
    weights_from: str | None = None
    """A role whose weights are copied here after each of its updates (rollout <- actor)."""

    def __post_init__(self) -> None:
        if self.model_of not in MODEL_FLAGS:
            raise ValueError(f"role {self.name!r}: model_of must be one of {MODEL_FLAGS}, got {self.model_of!r}")
        if self.head not in HEADS:
            raise ValueError(f"role {self.name!r}: head must be one of {HEADS}, got {self.head!r}")

    def to_dict(self) -> dict:
        return {"name": self.name, "model_of": self.model_of, "trainable": self.trainable,
                "head": self.head, "weights_from": self.weights_from}


@dataclass(frozen=True)
class Stage:
    """One call of one iteration, named as it appears in traces (``actor.update``)."""

    name: str
    role: str | None
    """The role whose GPUs run it; None for driver-side stages."""
    kind: StageKind
    num_seqs: int
    """Sequences processed per iteration (per epoch for train stages)."""
    prompt_len: int
    response: LengthDistribution
    """Lengths of the responses it processes (for generate: the lengths it produces)."""
    epochs: int = 1
    mini_batches: int = 1
    greedy: bool = False
    """Generate with temperature 0 (ReMax's baseline): one response per prompt."""

    def __post_init__(self) -> None:
        if self.num_seqs < 1 or self.epochs < 1 or self.mini_batches < 1:
            raise ValueError(f"stage {self.name!r}: num_seqs, epochs and mini_batches must be positive")
        if (self.role is None) != (self.kind in (StageKind.RULE_REWARD, StageKind.COMPUTE)):
            raise ValueError(f"stage {self.name!r}: {self.kind.value} stages "
                             f"{'run on the driver (role None)' if self.role else 'need a role'}")

    @property
    def tokens_per_seq(self) -> float:
        """Expected prompt + response tokens of one sequence."""
        return self.prompt_len + self.response.expected

    @property
    def tokens(self) -> float:
        """Expected tokens this stage touches per iteration: generated ones for generate,
        prompt+response times epochs otherwise."""
        if self.kind is StageKind.GENERATE:
            return self.num_seqs * self.response.expected
        return self.num_seqs * self.tokens_per_seq * self.epochs

    def to_dict(self) -> dict:
        return {"name": self.name, "role": self.role, "kind": self.kind.value, "num_seqs": self.num_seqs,
                "prompt_len": self.prompt_len, "response": self.response.to_dict(), "epochs": self.epochs,
                "mini_batches": self.mini_batches, "greedy": self.greedy}


@dataclass
class Dataflow:
    """The roles, stages and dependency DAG of one iteration of one algorithm."""

    algo: str
    roles: dict[str, RoleSpec]
    stages: dict[str, Stage]
    graph: nx.DiGraph

    def __post_init__(self) -> None:
        _check(self)

    @classmethod
    def from_stages(cls, algo: str, roles: Iterable[RoleSpec],
                    stages: Iterable[tuple[Stage, dict[str, str]]]) -> "Dataflow":
        """Build from ``(stage, {dependency: payload})`` pairs, listed in driver order."""
        graph = nx.DiGraph()
        stage_map: dict[str, Stage] = {}
        for stage, needs in stages:
            if stage.name in stage_map:
                raise ValueError(f"{algo}: stage {stage.name!r} listed twice")
            stage_map[stage.name] = stage
            graph.add_node(stage.name)
            for dep, payload in needs.items():
                if dep not in stage_map:
                    raise ValueError(f"{algo}: stage {stage.name!r} needs {dep!r}, which is not listed before it")
                graph.add_edge(dep, stage.name, payload=payload)
        return cls(algo, {role.name: role for role in roles}, stage_map, graph)

    def order(self) -> list[str]:
        """A topological order; ties keep the order the algorithm listed its stages in."""
        rank = {name: i for i, name in enumerate(self.stages)}
        return list(nx.lexicographical_topological_sort(self.graph, key=rank.__getitem__))

    def stages_of(self, role: str) -> list[Stage]:
        """The stages one role runs, in :meth:`order`."""
        return [self.stages[name] for name in self.order() if self.stages[name].role == role]

    def needs(self, stage: str) -> list[str]:
        """Stages whose output ``stage`` reads, in :meth:`order`."""
        before = set(self.graph.predecessors(stage))
        return [name for name in self.order() if name in before]

    def to_dict(self) -> dict:
        return {"algo": self.algo,
                "roles": [role.to_dict() for role in self.roles.values()],
                "stages": [{**self.stages[name].to_dict(), "needs": self.needs(name)} for name in self.order()],
                "edges": [{"from": u, "to": v, "payload": d["payload"]} for u, v, d in self.graph.edges(data=True)]}


def _check(flow: Dataflow) -> None:
    """A dataflow is a DAG, one piece, whose stages use declared roles and whose roles all work."""
    if set(flow.graph.nodes) != set(flow.stages):
        raise ValueError(f"{flow.algo}: graph nodes and stages differ")
    if not nx.is_directed_acyclic_graph(flow.graph):
        raise ValueError(f"{flow.algo}: the stage graph has a cycle: {nx.find_cycle(flow.graph)}")
    if flow.stages and not nx.is_weakly_connected(flow.graph):
        raise ValueError(f"{flow.algo}: the stage graph is not connected")
    for stage in flow.stages.values():
        if stage.role is not None and stage.role not in flow.roles:
            raise ValueError(f"{flow.algo}: stage {stage.name!r} runs on undeclared role {stage.role!r}")
    for role in flow.roles.values():
        if not any(stage.role == role.name for stage in flow.stages.values()):
            raise ValueError(f"{flow.algo}: role {role.name!r} has no stage")
        if role.weights_from is not None and role.weights_from not in flow.roles:
            raise ValueError(f"{flow.algo}: role {role.name!r} takes weights from undeclared {role.weights_from!r}")
        trains = any(s.role == role.name and s.kind is StageKind.TRAIN for s in flow.stages.values())
        if trains != role.trainable:
            raise ValueError(f"{flow.algo}: role {role.name!r} trainable={role.trainable} but "
                             f"{'has' if trains else 'has no'} train stage")


@dataclass(frozen=True)
class Algorithm:
    """A registered RL algorithm: its metadata and the function that builds its dataflow."""

    name: str
    summary: str
    advantage: str
    """Advantage estimator, named as verl's AdvantageEstimator: gae, grpo, rloo, remax, reinforce_pp."""
    source: str
    """The paper it follows."""
    build: Callable[[Workload, bool], Dataflow]
    """``build(workload, reward_model)``; reward_model False scores with a driver-side rule."""
    default_reward_model: bool
