"""Algorithms as dataflows: every DAG is well formed and each algorithm has its own shape."""

import json

import networkx as nx
import pytest

from algos import ALGORITHMS, Algorithm, Dataflow, StageKind, build_dataflow, get_algorithm, register
from algos import stages as S
from planner.cli import main
from planner.errors import PlanError
from planner.workload import Workload

W = Workload(prompts=64, samples_per_prompt=4, mini_batches=2, ppo_epochs=2)
EXPECTED = {"ppo", "grpo", "remax", "rloo", "reinforce_pp", "dapo", "safe_rlhf"}


def _workload(name):
    return Workload(prompts=64, samples_per_prompt=4, mini_batches=2, ppo_epochs=2,
                    oversample=2.0 if name == "dapo" else 1.0)


def test_registry_has_the_algorithms():
    assert EXPECTED <= set(ALGORITHMS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("reward_model", [True, False])
def test_every_algorithm_builds_a_well_formed_dag(name, reward_model):
    flow = build_dataflow(name, _workload(name), reward_model)
    assert nx.is_directed_acyclic_graph(flow.graph) and nx.is_weakly_connected(flow.graph)
    assert set(flow.graph.nodes) == set(flow.stages)
    for stage in flow.stages.values():
        assert stage.role is None or stage.role in flow.roles
        assert (stage.role is None) == (stage.kind in (StageKind.RULE_REWARD, StageKind.COMPUTE))
    for role in flow.roles:
        assert flow.stages_of(role), f"{name}: role {role} has no stage"
    order = flow.order()
    assert order == flow.order() and sorted(order) == sorted(flow.stages)
    assert all(order.index(u) < order.index(v) for u, v in flow.graph.edges)
    assert order[0] == "rollout.generate" and order[-1] == "actor.update"
    # the reward choice decides whether there is a reward-model role
    assert ("reward" in flow.roles) == reward_model
    assert ("reward.score" in flow.stages) == reward_model and ("reward.rule" in flow.stages) != reward_model


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_common_roles_and_train_stages(name):
    flow = build_dataflow(name, _workload(name))
    rollout = flow.roles["rollout"]
    assert (rollout.model_of, rollout.weights_from, rollout.trainable) == ("actor", "actor", False)
    assert flow.roles["actor"].trainable and flow.roles["actor"].head == "lm"
    for stage in flow.stages.values():
        if stage.kind is StageKind.TRAIN:
            assert (stage.epochs, stage.mini_batches, stage.num_seqs) == (2, 2, 64 * 4)
            assert flow.roles[stage.role].trainable
    generate = flow.stages["rollout.generate"]
    assert generate.kind is StageKind.GENERATE and generate.role == "rollout"
    assert generate.tokens_per_seq == pytest.approx(W.prompt_len + W.response.expected)


def test_grpo_has_no_critic_and_a_rule_reward_by_default():
    flow = build_dataflow("grpo", W)
    assert set(flow.roles) == {"actor", "rollout", "ref"}
    assert flow.stages["reward.rule"].kind is StageKind.RULE_REWARD and flow.stages["reward.rule"].role is None
    assert not any(s.kind is StageKind.TRAIN and s.role != "actor" for s in flow.stages.values())
    # group advantages need only the rewards; the KL loss reads the ref log-probs in the update
    assert flow.needs("advantages") == ["reward.rule"]
    assert "ref.log_prob" in flow.needs("actor.update")


def test_ppo_updates_are_independent_and_follow_verl_phases():
    flow = build_dataflow("ppo", W)
    assert set(flow.roles) == {"actor", "rollout", "ref", "critic", "reward"}
    assert not nx.has_path(flow.graph, "actor.update", "critic.update")
    assert not nx.has_path(flow.graph, "critic.update", "actor.update")
    for forward in ("reward.score", "actor.log_prob", "ref.log_prob", "critic.values"):
        assert flow.stages[forward].kind is StageKind.FORWARD
        assert flow.needs(forward) == ["rollout.generate"]
        assert nx.has_path(flow.graph, forward, "advantages")
    assert [s.name for s in flow.stages_of("critic")] == ["critic.values", "critic.update"]
    assert flow.roles["critic"].head == "value" and flow.roles["reward"].head == "value"


def test_dapo_generates_oversample_times_what_it_trains():
    w = Workload(prompts=64, samples_per_prompt=4, mini_batches=2, oversample=3.0)
    flow = build_dataflow("dapo", w)
    assert "ref" not in flow.roles and "ref.log_prob" not in flow.stages  # no KL term
    generated, trained = flow.stages["rollout.generate"].num_seqs, flow.stages["actor.update"].num_seqs
    assert generated == 3 * trained == 3 * 64 * 4
    assert flow.stages["reward.rule"].num_seqs == generated
    assert flow.stages["filter"].kind is StageKind.COMPUTE and flow.stages["filter"].role is None
    assert flow.stages["actor.log_prob"].num_seqs == trained  # old log-probs only on the kept batch
    assert nx.has_path(flow.graph, "filter", "actor.log_prob")


def test_remax_adds_a_greedy_generation_per_prompt():
    flow = build_dataflow("remax", W)
    greedy = flow.stages["rollout.generate_greedy"]
    assert greedy.greedy and greedy.kind is StageKind.GENERATE and greedy.role == "rollout"
    assert greedy.num_seqs == W.prompts and flow.stages["rollout.generate"].num_seqs == W.num_samples
    assert flow.stages["reward.score_greedy"].num_seqs == W.prompts
    assert "reward.score_greedy" in flow.needs("advantages")


def test_safe_rlhf_adds_cost_model_and_cost_critic():
    flow = build_dataflow("safe_rlhf", W)
    assert {"cost", "cost_critic"} <= set(flow.roles)
    assert flow.roles["cost_critic"].trainable and not flow.roles["cost"].trainable
    assert {"cost.score", "cost_critic.values", "cost_critic.update"} <= set(flow.stages)
    updates = ["actor.update", "critic.update", "cost_critic.update"]
    assert not any(nx.has_path(flow.graph, a, b) for a in updates for b in updates if a != b)


def test_rloo_and_remax_and_reinforce_pp_have_no_critic():
    for name in ("rloo", "remax", "reinforce_pp"):
        flow = build_dataflow(name, W)
        assert "critic" not in flow.roles and "ref" in flow.roles


def test_only_dapo_accepts_oversampling():
    with pytest.raises(PlanError, match="oversample"):
        build_dataflow("grpo", Workload(oversample=2.0))


def test_rloo_needs_two_samples():
    with pytest.raises(PlanError, match="at least 2 samples"):
        build_dataflow("rloo", Workload(samples_per_prompt=1))


def test_unknown_algorithm_names_the_known_ones():
    with pytest.raises(PlanError, match="unknown algorithm 'nope'.*grpo"):
        get_algorithm("nope")


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="already registered"):
        register(ALGORITHMS["ppo"])
    assert ALGORITHMS["ppo"].name == "ppo"


def test_a_new_algorithm_is_one_build_function(monkeypatch):
    def build(w, reward_model):
        return Dataflow.from_stages("tiny", [S.ACTOR, S.ROLLOUT], [
            (S.generate(w), {}),
            (S.rule_reward(w), {"rollout.generate": "responses"}),
            (S.update(w, "actor"), {"reward.rule": "scores"}),
        ])

    monkeypatch.setitem(ALGORITHMS, "tiny", Algorithm("tiny", "test", "none", "none", build, False))
    assert build_dataflow("tiny", W).order() == ["rollout.generate", "reward.rule", "actor.update"]


def test_malformed_dataflows_are_refused():
    gen, upd = S.generate(W), S.update(W, "actor")
    with pytest.raises(ValueError, match="not listed before"):
        Dataflow.from_stages("bad", [S.ACTOR, S.ROLLOUT], [(upd, {"rollout.generate": "x"}), (gen, {})])
    with pytest.raises(ValueError, match="undeclared role"):
        Dataflow.from_stages("bad", [S.ACTOR], [(gen, {}), (upd, {"rollout.generate": "x"})])
    with pytest.raises(ValueError, match="has no stage"):
        Dataflow.from_stages("bad", [S.ACTOR, S.ROLLOUT, S.REF], [(gen, {}), (upd, {"rollout.generate": "x"})])
    with pytest.raises(ValueError, match="not connected"):
        Dataflow.from_stages("bad", [S.ACTOR, S.ROLLOUT], [(gen, {}), (upd, {})])
    flow = build_dataflow("grpo", W)
    flow.graph.add_edge("actor.update", "rollout.generate")
    with pytest.raises(ValueError, match="cycle"):
        Dataflow(flow.algo, flow.roles, flow.stages, flow.graph)


def test_dataflow_to_dict_is_json():
    data = json.loads(json.dumps(build_dataflow("ppo", W).to_dict()))
    assert [s["name"] for s in data["stages"]][0] == "rollout.generate"
    assert {"from": "advantages", "to": "actor.update", "payload": "advantages"} in data["edges"]


# ---- CLI ----------------------------------------------------------------------------------------
def test_cli_lists_algorithms(capsys):
    assert main(["algos"]) == 0
    out = capsys.readouterr().out
    for name in EXPECTED:
        assert name in out
    assert "Shao et al. 2024" in out and "rollout.generate" in out


def test_cli_shows_one_algorithm_with_workload_flags(capsys):
    assert main(["algos", "--show", "grpo", "--prompts", "128", "--samples", "8"]) == 0
    out = capsys.readouterr().out
    assert "128 prompts x 8 samples" in out
    assert "1,024" in out  # 128 x 8 sequences generated
    assert "ref.log_prob" in out and "critic.values" not in out


def test_cli_json(capsys):
    assert main(["algos", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= EXPECTED
    assert main(["algos", "--show", "dapo", "--oversample", "2", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    stages = {s["name"]: s for s in shown["dataflow"]["stages"]}
    assert stages["rollout.generate"]["num_seqs"] == 2 * stages["actor.update"]["num_seqs"]


@pytest.mark.parametrize("argv, words", [
    (["algos", "--show", "nope"], "unknown algorithm"),
    (["algos", "--show", "ppo", "--mini-batches", "3"], "does not divide"),
    (["algos", "--show", "grpo", "--response", "weird"], "response length"),
    (["algos", "--prompts", "8"], "--show"),
])
def test_cli_bad_input_exits_2_with_one_line(capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_planning_path_imports_no_torch_ray_or_vllm():
    import subprocess
    import sys

    code = ("import sys, algos, planner.workload, planner.cli.algos_cmd; "
            "print(sorted(m for m in ('torch', 'ray', 'vllm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
