"""`plan --from-verl`: reading a verl job (overrides, launch script, YAML), verl's defaults,
the user's layout priced like the plan, and the speedup printed for verl's own Qwen2-7B
GRPO example (tests/fixtures/verl_qwen2_7b_seq_balance.txt)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml
from conftest import one_line_error

from planner.cli import main
from planner.from_verl import MEGATRON_DEFAULTS, USER_LAYOUT, VERL_DEFAULTS, read_verl_job, resolve_model

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLE = FIXTURES / "verl_qwen2_7b_seq_balance.txt"
HAVE_VERL = importlib.util.find_spec("verl") is not None and importlib.util.find_spec("hydra") is not None
needs_verl = pytest.mark.skipif(not HAVE_VERL, reason="verl and hydra-core not installed "
                                "(pip install --no-deps verl==0.9.1 && pip install hydra-core)")

SCRIPT = """set -x
# a launch script in the style of verl's examples
rollout_name="vllm" # sglang or vllm
n_resp=4
python3 -m verl.trainer.main_ppo \\
    algorithm.adv_estimator=grpo \\
    data.train_batch_size=256 \\
    actor_rollout_ref.model.path=Qwen/Qwen2.5-0.5B \\
    actor_rollout_ref.rollout.name=$rollout_name \\
    actor_rollout_ref.rollout.n=${n_resp} \\
    trainer.logger='["console","wandb"]' \\
    trainer.experiment_name='my run' $@
"""


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---- reading ----------------------------------------------------------------------------------------
def test_reads_the_overrides_of_verls_example():
    job = read_verl_job(str(EXAMPLE))
    assert job.algo == "grpo"
    assert job.trainer_gpus == (1, 8)
    assert job.number("data.train_batch_size") == 1024 and job.number("actor_rollout_ref.rollout.n") == 5
    assert job.number("actor_rollout_ref.rollout.tensor_model_parallel_size") == 2
    assert job.number("actor_rollout_ref.rollout.gpu_memory_utilization", float) == 0.6
    assert job.flag("actor_rollout_ref.ref.fsdp_config.param_offload") is True
    assert job.get("trainer.logger") == ["console", "wandb"]
    assert job.get("data.truncation") == "error"
    # Keys the example leaves out take verl's defaults.
    assert job.get("actor_rollout_ref.rollout.max_num_seqs") == 256


def test_reads_a_launch_script_with_shell_variables_and_quoting(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text(SCRIPT)
    job = read_verl_job(str(script))
    assert job.get("actor_rollout_ref.rollout.name") == "vllm"
    assert job.number("actor_rollout_ref.rollout.n") == 4
    assert job.get("trainer.experiment_name") == "my run"
    assert job.get("trainer.logger") == ["console", "wandb"]
    assert "rollout_name" not in job.given and "n_resp" not in job.given


def test_reads_a_nested_yaml_config_and_legacy_reward_keys(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "algorithm": {"adv_estimator": "gae"},
        "data": {"train_batch_size": 64},
        "trainer": {"nnodes": 2, "n_gpus_per_node": 8},
        "reward_model": {"enable": True, "enable_resource_pool": True, "nnodes": 1, "n_gpus_per_node": 8,
                         "model": {"path": "Qwen/Qwen2.5-0.5B"}},
    }))
    job = read_verl_job(str(config))
    assert job.algo == "ppo"
    assert job.reward_pool == (1, 8)
    assert job.total_gpus == 24
    assert job.get("reward.reward_model.model_path") == "Qwen/Qwen2.5-0.5B"


def test_resolves_model_paths_to_folders_and_zoo_names():
    assert resolve_model(str(FIXTURES / "models" / "qwen2.5-7b"), "cfg", "--actor").hidden_size == 3584
    assert resolve_model("Qwen/Qwen2-7B-Instruct", "cfg", "--actor").name == "qwen2-7b-instruct"
    assert resolve_model("/data/ckpt/Qwen2.5-7B-Instruct", "cfg", "--actor").name == "qwen2.5-7b"
    message = one_line_error(resolve_model, "/data/ckpt/my-own-model", "cfg", "--actor")
    assert "pass --actor" in message


@needs_verl
def test_rlplans_verl_defaults_are_verls():
    from omegaconf import OmegaConf

    from planner.export.checks import verl_config_dir

    for name, defaults in (("ppo_trainer", VERL_DEFAULTS), ("ppo_megatron_trainer", MEGATRON_DEFAULTS)):
        shipped = OmegaConf.load(verl_config_dir() / f"_generated_{name}.yaml")
        for key, value in defaults.items():
            assert OmegaConf.select(shipped, key) == value, key


@needs_verl
def test_the_example_fixture_is_valid_verl_input():
    from planner.export.checks import compose_verl

    lines = [line for line in EXAMPLE.read_text().splitlines() if line and not line.startswith("#")]
    config = compose_verl(lines)
    assert config["actor_rollout_ref"]["rollout"]["tensor_model_parallel_size"] == 2


# ---- planning ---------------------------------------------------------------------------------------
def test_plan_from_verls_example_prints_layout_plan_and_speedup(capsys):
    code, out, _ = run(capsys, "--from-verl", str(EXAMPLE), "--gpu", "h100-80gb", "--time-limit", "20")
    assert code == 0
    assert "Your verl job" in out and "rollout tp2 at gpu_memory_utilization 0.6" in out
    assert "priced by rlplan:" in out
    assert "Pools" in out and "Schedule" in out
    assert "speedup of the plan over your verl config:" in out


def test_plan_from_verl_json_has_the_users_layout_as_a_baseline(capsys, tmp_path):
    path = tmp_path / "plan.json"
    code, out, _ = run(capsys, "--from-verl", str(EXAMPLE), "--gpu", "h100-80gb", "--time-limit", "20", "--json",
                       "--out", str(path))
    assert code == 0
    plan = json.loads(out)
    assert plan["inputs"]["algo"] == "grpo"
    # 1 x 8 H100 is the h100x8 profile, so `plan simulate` finds the plan's cluster again
    assert plan["inputs"]["cluster"]["name"] == "h100x8"
    code, out, err = run(capsys, "simulate", str(path), "--iterations", "1", "--no-what-if")
    assert code == 0, err
    assert "iteration time: mean" in out
    assert plan["inputs"]["models"]["actor"] == "qwen2-7b-instruct"
    assert plan["inputs"]["cluster"]["node_groups"] == [{"gpu": "h100-80gb", "nodes": 1, "gpus_per_node": 8}]
    w = plan["inputs"]["workload"]
    assert (w["prompts"], w["samples_per_prompt"], w["prompt_len"], w["mini_batches"]) == (1024, 5, 512, 4)
    assert w["response"]["max_len"] == 1024
    mine = plan["baselines"][0]
    assert mine["name"] == USER_LAYOUT and mine["feasible"]
    assert mine["pools"] == [{"roles": ["actor", "rollout", "ref"], "num_gpus": 8}]
    assert mine["layouts"]["rollout"].startswith("tp2x4")
    assert mine["layouts"]["ref"].endswith("/offload")  # ref.fsdp_config.param_offload=True
    assert "rc-full" in mine["layouts"]["actor"]  # enable_gradient_checkpointing=True
    # The user's layout is inside the plan's search space, so the plan is never slower.
    assert mine["speedup"] >= 1 - 1e-6


def test_a_plan_on_gpus_no_profile_describes_simulates_and_exports(capsys, tmp_path):
    """3 x 8 A100 is no built-in profile: `plan simulate` and `plan export` rebuild the job's
    cluster from the plan's record of it."""
    job = tmp_path / "job.txt"
    job.write_text(EXAMPLE.read_text().replace("trainer.nnodes=1", "trainer.nnodes=3"))
    path = tmp_path / "plan.json"
    code, _, err = run(capsys, "--from-verl", str(job), "--gpu", "a100-80gb", "--time-limit", "20", "--out", str(path))
    assert code == 0, err
    plan = json.loads(path.read_text())
    assert plan["inputs"]["cluster"]["name"] == "verl 3 x 8 a100-80gb"
    code, out, err = run(capsys, "simulate", str(path), "--iterations", "1", "--no-what-if", "--json")
    assert code == 0, err
    simulation = json.loads(out)
    assert simulation["cluster"] == "verl 3 x 8 a100-80gb" and not simulation["plan_stale"]
    assert simulation["iteration_time_s"] == pytest.approx(plan["iteration_time_s"], rel=0.05)
    code, _, err = run(capsys, "export", str(path), "--to", "verl", "--out", str(tmp_path / "verl"))
    assert code == 0, err
    assert "trainer.n_gpus_per_node=8" in (tmp_path / "verl" / "verl_overrides.txt").read_text()


def test_plan_from_verl_with_a_reward_pool_keeps_it_apart(capsys, tmp_path):
    config = tmp_path / "ppo.txt"
    config.write_text("\n".join([
        "algorithm.adv_estimator=gae", "data.train_batch_size=64", "data.max_prompt_length=256",
        "data.max_response_length=256", "actor_rollout_ref.actor.ppo_mini_batch_size=16",
        "actor_rollout_ref.model.path=Qwen/Qwen2.5-0.5B", "critic.model.path=Qwen/Qwen2.5-0.5B",
        "actor_rollout_ref.rollout.n=2", "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        "reward.reward_model.enable=True", "reward.reward_model.model_path=Qwen/Qwen2.5-0.5B",
        "reward.reward_model.enable_resource_pool=True", "reward.reward_model.nnodes=1",
        "reward.reward_model.n_gpus_per_node=8", "trainer.nnodes=1", "trainer.n_gpus_per_node=8",
    ]))
    code, out, _ = run(capsys, "--from-verl", str(config), "--gpu", "a100-80gb", "--time-limit", "10", "--json")
    assert code == 0
    plan = json.loads(out)
    assert sum(g["nodes"] * g["gpus_per_node"] for g in plan["inputs"]["cluster"]["node_groups"]) == 16
    mine = plan["baselines"][0]
    assert mine["name"] == USER_LAYOUT and mine["feasible"]
    assert sorted((p["num_gpus"], tuple(p["roles"])) for p in mine["pools"]) == [
        (8, ("actor", "rollout", "ref", "critic")), (8, ("reward",))]


@pytest.mark.parametrize("extra,message", [
    ([], "add --gpu TYPE"),
    (["--gpu", "h100-80gb", "--cluster", "a100x8"], "not both"),
    (["--cluster", "a100x8", "--prompts", "100"], "give --mini-batches too"),
    (["--cluster", "missing-cluster"], "unknown cluster"),
])
def test_from_verl_errors_are_one_line(capsys, extra, message):
    code, out, err = run(capsys, "--from-verl", str(EXAMPLE), *extra)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1


def test_unknown_estimator_and_unreadable_model_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("algorithm.adv_estimator=opo\ntrainer.nnodes=1\n")
    code, _, err = run(capsys, "--from-verl", str(bad), "--gpu", "h100-80gb")
    assert code == 2 and "adv_estimator=opo" in err
    bad.write_text("algorithm.adv_estimator=grpo\nactor_rollout_ref.model.path=/nowhere/my-model\n")
    code, _, err = run(capsys, "--from-verl", str(bad), "--gpu", "h100-80gb")
    assert code == 2 and "my-model" in err and "--actor" in err
    code, _, err = run(capsys, "--algo", "grpo")
    assert code == 2 and "--cluster" in err
