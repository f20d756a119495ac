"""End to end on this machine: plan for `local`, then execute it on Ray for real.

vLLM-CPU engines generate, FSDP2 ranks (gloo) train, the reference scores log-probs, the
trainer's weights are synced into the engines after every update; the trace and metrics
files are checked as a user reads them. Each run starts Ray and the engines (a couple of
minutes on 2 cores), so each plan runs once per module and several tests read it.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("vllm")
pytest.importorskip("ray")

from executor_setup import execute_options, make_plan, read_metrics  # noqa: E402

STEPS = 3
UPDATES_PER_STEP = 4  # the plan's default: 1 epoch x 4 mini-batches


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from executor.tiny_model import build_tiny_model
    from executor.toy_task import write_toy_task

    root = tmp_path_factory.mktemp("tiny")
    return build_tiny_model(root / "model"), write_toy_task(root / "toy.jsonl", 64, seed=0)


@pytest.fixture(scope="module")
def grpo_run(tiny, tmp_path_factory):
    from executor.real.run import execute

    model, data = tiny
    root = tmp_path_factory.mktemp("grpo")
    plan = make_plan(root / "plan.json", "grpo", model, "--prompts", "16", "--samples", "4", "--response-len", "4")
    # an entropy bonus gives every step a gradient, whatever the (random) model's rewards
    result = execute(execute_options(plan, model, data, root / "run", STEPS, numerics_options={"entropy_coef": 0.01}))
    return json.loads(plan.read_text()), result


def test_the_plan_trains_the_actor_with_fsdp_over_two_workers(grpo_run):
    plan, _ = grpo_run
    actor = plan["roles"]["actor"]["layout"]
    assert (actor["dp"], actor["tp"], actor["zero"]) == (2, 1, 3)
    assert plan["roles"]["rollout"]["pool"] != plan["roles"]["actor"]["pool"]  # the sync crosses pools


def test_every_step_writes_its_metrics(grpo_run):
    _, result = grpo_run
    metrics = read_metrics(result.out_dir)
    assert [m["step"] for m in metrics] == list(range(STEPS))
    for m in metrics:
        assert 0.0 <= m["reward_mean"] <= 1.0
        assert m["response_length/mean"] > 0 and m["tokens_per_s"] > 0
        for job in ("rollout.generate", "ref.log_prob", "actor.log_prob", "actor.update", "rollout.sync_weights"):
            assert m[f"time/{job}"] > 0


def test_the_engines_sample_with_the_trainers_latest_weights(grpo_run):
    """On-policy: step k samples after k updates; after each sync the engines' weights equal
    the trainer's, and the engines' log-probs of what they sampled equal the trainer's."""
    _, result = grpo_run
    for m in result.metrics:
        assert m["policy_version"] == m["step"] * UPDATES_PER_STEP
        assert m["sync/max_abs_diff"] == 0.0
        assert m["rollout/logprob_diff_max"] < 1e-4


def test_training_changes_the_policy(grpo_run):
    _, result = grpo_run
    assert all(m["actor/grad_norm"] > 0 for m in result.metrics)
    # the reference keeps the initial weights: from the second optimizer step on the actor differs
    assert all(m["actor/kl_loss"] > 1e-6 for m in result.metrics)


def test_trace_has_every_call_on_the_plans_pools(grpo_run):
    from executor.trace import validate_trace

    plan, result = grpo_run
    trace = json.loads((result.out_dir / "trace.json").read_text())
    validate_trace(trace)
    pool_names = {e["pid"]: e["args"]["name"] for e in trace["traceEvents"] if e.get("name") == "process_name"}
    slices = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    planned = {job["job"]: job["pools"] for job in plan["schedule"]}
    for step in range(STEPS):
        names = {e["name"] for e in slices if e["args"]["iteration"] == step}
        assert names == set(planned)
    for e in slices:
        if planned[e["name"]]:  # a GPU stage is drawn in (one of) its planned pools
            assert any(pool_names[e["pid"]].startswith(f"pool {p}:") for p in planned[e["name"]])


def test_pools_land_on_the_gpus_the_plan_names(grpo_run):
    _, result = grpo_run
    placement = json.loads((result.out_dir / "placement.json").read_text())
    for pool in placement["pools"]:
        assert len(pool["ray_nodes"]) == len(pool["plan_gpus"])
        assert len(set(pool["ray_nodes"])) == 1  # `local` is one node


def test_compare_prints_measured_and_predicted_per_stage(grpo_run, capsys):
    from planner.cli import main

    plan, result = grpo_run
    plan_file = result.out_dir.parent / "plan.json"
    assert main(["compare", str(result.out_dir / "trace.json"), str(plan_file), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["stages"]
    assert {r["stage"] for r in rows} == {job["job"] for job in plan["schedule"]}
    for r in rows:
        assert r["measured_s"] > 0 and r["predicted_s"] > 0
        assert r["error"] == pytest.approx(r["measured_s"] / r["predicted_s"] - 1)


def test_a_finished_run_keeps_its_checkpoint_and_refuses_a_second_run_in_its_folder(grpo_run, tiny):
    from executor.real import checkpoint
    from executor.real.run import execute
    from planner.errors import PlanError

    _, result = grpo_run
    folder, state = checkpoint.latest(result.out_dir)
    assert state["steps_done"] == STEPS and (folder / "actor").is_dir()
    plan = result.out_dir.parent / "plan.json"
    with pytest.raises(PlanError, match="already holds a run"):
        execute(execute_options(plan, *tiny, result.out_dir, STEPS))


def test_ppo_trains_a_critic_with_gae(tiny, tmp_path):
    from executor.real.run import execute

    model, data = tiny
    plan = make_plan(tmp_path / "plan.json", "ppo", model, "--rule-reward", "--prompts", "8", "--samples", "2",
                     "--response-len", "4")
    result = execute(execute_options(plan, model, data, tmp_path / "run", 2))
    for m in result.metrics:
        assert m["critic/vf_loss"] > 0 and m["time/critic.values"] > 0 and m["time/critic.update"] > 0
        assert "kl_in_reward" in m  # PPO's KL penalty sits in the reward
        assert m["sync/max_abs_diff"] == 0.0
    assert result.metrics[1]["policy_version"] == UPDATES_PER_STEP


@pytest.mark.parametrize("algo, extra, stages", [
    ("remax", [], {"rollout.generate_greedy", "reward.score", "reward.score_greedy"}),
    ("rloo", [], {"reward.score"}),
    ("reinforce_pp", [], {"reward.rule"}),
])
def test_the_other_algorithms_run_on_the_same_numeric_core(tiny, tmp_path, algo, extra, stages):
    """ReMax (greedy baseline, reward model), RLOO (leave-one-out, reward model) and
    REINFORCE++ (rule reward, whitened returns): two on-policy steps each."""
    from executor.real.run import execute

    model, data = tiny
    plan = make_plan(tmp_path / "plan.json", algo, model, "--prompts", "8", "--samples", "2", "--response-len", "2",
                     *extra)
    result = execute(execute_options(plan, model, data, tmp_path / "run", 2))
    for m in result.metrics:
        assert all(m[f"time/{job}"] > 0 for job in stages)
        assert m["actor/grad_norm"] >= 0 and "kl_in_reward" in m and m["sync/max_abs_diff"] == 0.0
    assert [m["policy_version"] for m in result.metrics] == [0, UPDATES_PER_STEP]


def test_dapo_trains_on_the_groups_its_filter_keeps(tiny, tmp_path):
    """DAPO: 2x over-sampled prompts, the driver's filter keeps the planned 8 groups
    (informative ones first), the old log-probs and the update see only those rows, and
    there is no reference or KL."""
    from executor.real.run import execute

    model, data = tiny
    plan = make_plan(tmp_path / "plan.json", "dapo", model, "--prompts", "8", "--samples", "2", "--response-len", "2",
                     "--oversample", "2")
    result = execute(execute_options(plan, model, data, tmp_path / "run", 2))
    for m in result.metrics:
        assert len(m["prompt_ids"]) == 16 and m["dapo/generated_groups"] == 16
        assert m["dapo/kept_informative_groups"] == min(8, m["dapo/informative_groups"])
        assert m["time/filter"] > 0 and m["actor/grad_norm"] >= 0 and m["kl"] == 0.0
        assert "time/ref.log_prob" not in m and m["sync/max_abs_diff"] == 0.0
    rows = {(r.iteration, r.job): r.args.get("rows", r.args.get("responses")) for r in result.records}
    for step in range(2):
        assert rows[step, "rollout.generate"] == 32
        assert rows[step, "filter"] == rows[step, "actor.log_prob"] == 16
    assert [m["policy_version"] for m in result.metrics] == [0, UPDATES_PER_STEP]


def test_safe_rlhf_trains_two_critics_under_a_lagrange_multiplier(tiny, tmp_path):
    """Safe RLHF: a reward and a cost model score, two critics train on their own GAE
    returns, and lambda moves by one step of its log-space ascent per step, over the
    window of episode costs (threshold 0, lambda_init 1, lr 0.1)."""
    import math

    from executor.real.run import execute

    model, data = tiny
    plan = make_plan(tmp_path / "plan.json", "safe_rlhf", model, "--prompts", "8", "--samples", "2",
                     "--response-len", "2")
    result = execute(execute_options(plan, model, data, tmp_path / "run", 2))
    for m in result.metrics:
        assert all(m[f"time/{job}"] > 0 for job in ("cost.score", "cost_critic.values", "cost_critic.update",
                                                     "critic.update", "reward.score", "ref.log_prob"))
        assert m["critic/vf_loss"] > 0 and m["cost_critic/vf_loss"] > 0 and "kl_in_reward" in m
        assert m["sync/max_abs_diff"] == 0.0
    first, second = (m["cost_mean"] for m in result.metrics)
    log_lambda = 0.1 * first
    assert result.metrics[0]["lagrange"] == pytest.approx(math.exp(log_lambda), rel=1e-5)
    log_lambda += 0.1 * math.exp(log_lambda) * (first + second) / 2  # equal batches: the window's mean
    assert result.metrics[1]["lagrange"] == pytest.approx(math.exp(min(log_lambda, math.log(5.0))), rel=1e-5)
    assert [m["policy_version"] for m in result.metrics] == [0, UPDATES_PER_STEP]


def test_colocated_roles_share_one_device(tiny, tmp_path):
    """Actor, rollout engine and reference on one logical GPU (fractional Ray GPUs, one
    process each): the weight sync stays in the pool and is exact."""
    from executor.real.run import execute

    model, data = tiny
    plan_file = make_plan(tmp_path / "plan.json", "grpo", model, "--prompts", "8", "--samples", "2",
                          "--response-len", "2", "--max-gpus", "1")
    plan = json.loads(plan_file.read_text())
    assert [sorted(p["roles"]) for p in plan["pools"]] == [["actor", "ref", "rollout"]]
    result = execute(execute_options(plan_file, model, data, tmp_path / "run", 2))
    placement = json.loads((result.out_dir / "placement.json").read_text())
    assert [len(p["ray_nodes"]) for p in placement["pools"]] == [1]
    for m in result.metrics:
        assert m["sync/max_abs_diff"] == 0.0 and m["rollout/logprob_diff_max"] < 1e-4
    assert [m["policy_version"] for m in result.metrics] == [0, UPDATES_PER_STEP]
