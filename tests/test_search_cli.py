"""`plan --cluster C --algo A`: the plan JSON and its invariants, the human report, `--out`
and `load_plan`, the user's constraints, one-line errors, and the light import path.

Every search here is small (a 0.5B-1.5B model, tens of prompts, fixed 256-token
responses) so the file runs in well under a minute on two cores; one test runs the exact
README default (`plan --cluster a100x64 --algo grpo --json`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from planner.cli import main
from planner.errors import PlanError
from planner.plan import load_plan

REPO = Path(__file__).resolve().parents[1]
BAD_YAML = REPO / "tests" / "fixtures" / "clusters" / "bad_syntax.yaml"

SMALL = ["--prompts", "64", "--samples", "4", "--response-len", "256", "--prompt-len", "256"]
GRPO_A100X8 = ["--cluster", "a100x8", "--algo", "grpo", "--actor", "qwen2.5-1.5b", *SMALL]

ROLES = {
    "grpo": {"actor", "rollout", "ref"},  # rule reward on the driver: no reward model role
    "ppo": {"actor", "rollout", "ref", "critic", "reward"},
}
CLUSTER_GPUS = {"a100x8": (1, 8), "a100x16": (2, 8), "a100x32": (4, 8), "a100x64": (8, 8)}
"""name -> (nodes, GPUs per node) of the built-in profiles used here."""

EPS = 1e-9

_cache: dict[tuple, tuple[int, str, str]] = {}


run = run_cli


def plan_json(argv, capsys) -> dict:
    """The plan `plan ... --json` prints (one search per distinct argv in this module)."""
    key = tuple(argv)
    if key not in _cache:
        _cache[key] = run([*argv, "--json"], capsys)
    rc, out, err = _cache[key]
    assert rc == 0, err
    assert err == ""
    return json.loads(out)


def check_plan(plan: dict, cluster: str, algo: str) -> None:
    """What every plan promises, whatever the inputs."""
    nodes, per_node = CLUSTER_GPUS[cluster]
    # Top level.
    assert plan["kind"] == "rlplan.plan" and plan["version"] == 1
    assert plan["status"] in ("optimal", "feasible")
    assert isinstance(plan["gap"], (int, float)) and 0 <= plan["gap"] <= 1
    if plan["status"] == "optimal":
        assert plan["gap"] <= 1e-6
    assert plan["iteration_time_s"] > 0
    assert plan["search_time_s"] > 0
    assert plan["inputs"]["algo"] == algo
    assert plan["inputs"]["cluster"]["name"] == cluster

    # Pools: concrete, distinct GPUs of this cluster; every role in exactly one pool.
    pools = plan["pools"]
    assert isinstance(pools, list) and pools
    seen_gpus = set()
    seen_roles = []
    for pool in pools:
        assert {"gpus", "num_gpus", "roles"} <= set(pool)
        assert pool["num_gpus"] >= 1
        assert len(pool["gpus"]) == pool["num_gpus"]
        gpus = {tuple(g) for g in pool["gpus"]}
        assert len(gpus) == pool["num_gpus"], f"pool {pool['id']} names a GPU twice"
        for node, rank in gpus:
            assert 0 <= node < nodes and 0 <= rank < per_node, (node, rank)
        assert not gpus & seen_gpus, f"pool {pool['id']} shares GPUs with another pool"
        seen_gpus |= gpus
        assert sorted({n for n, _ in gpus}) == sorted(pool["nodes"])
        seen_roles += pool["roles"]
        assert pool["roles"]
        # Memory: within the GPU, and the peak is every resident's weights plus the
        # largest working set (as the report's two memory columns say).
        assert pool["peak_memory_gib"] <= pool["capacity_gib"] + EPS
        members = [plan["roles"][r] for r in pool["roles"]]
        expect = sum(m["static_memory_gib"] for m in members) + max(m["transient_memory_gib"] for m in members)
        assert pool["peak_memory_gib"] == pytest.approx(expect, abs=1e-3)
    assert sorted(seen_roles) == sorted(ROLES[algo]), "every role must be in exactly one pool"
    assert set(plan["roles"]) == ROLES[algo] == set(plan["inputs"]["models"])
    used = sum(p["num_gpus"] for p in pools)
    assert used == len(seen_gpus) == plan["gpus_used"] <= nodes * per_node

    by_id = {p["id"]: p for p in pools}
    for name, role in plan["roles"].items():
        assert name in by_id[role["pool"]]["roles"]
        layout = role["layout"]
        if role["kind"] == "generate":
            assert layout["tp"] * layout["replicas"] == by_id[role["pool"]]["num_gpus"], name
        else:
            assert layout["tp"] * layout["pp"] * layout["dp"] == by_id[role["pool"]]["num_gpus"], name

    # Schedule: one job at a time per pool; in sync mode the last job ends at the iteration time.
    jobs_per_pool: dict[int, list] = {}
    for job in plan["schedule"]:
        assert job["end_s"] >= job["start_s"] >= 0
        for p in job["pools"]:
            jobs_per_pool.setdefault(p, []).append((job["start_s"], job["end_s"], job["job"]))
    for p, jobs in jobs_per_pool.items():
        jobs.sort()
        for (_, end_a, a), (start_b, _, b) in zip(jobs, jobs[1:]):
            assert start_b >= end_a - 1e-6, f"{a} and {b} overlap on pool {p}"
    if plan["mode"] == "sync":
        assert max(j["end_s"] for j in plan["schedule"]) == pytest.approx(plan["iteration_time_s"], rel=1e-6)

    # Baselines: each is either priced (and no faster than the plan) or says why not.
    baselines = plan["baselines"]
    assert isinstance(baselines, list) and baselines
    for b in baselines:
        assert b["name"]
        if b.get("feasible") is False:
            assert isinstance(b["reason"], str) and b["reason"].strip()
        else:
            assert b["feasible"] is True
            assert b["iteration_time_s"] > 0
            assert b["iteration_time_s"] >= plan["iteration_time_s"] * (1 - 1e-9), b["name"]
            assert b["speedup"] >= 1 - 1e-9, b["name"]
            assert b["speedup"] == pytest.approx(b["iteration_time_s"] / plan["iteration_time_s"], rel=1e-9)
            assert sum(p["num_gpus"] for p in b["pools"]) <= nodes * per_node
    names = [b["name"] for b in baselines]
    assert "verl default" in names and "OpenRLHF 1:1:1" in names
    assert any(n.startswith("HybridFlow") for n in names)


# ---- 1. the plan JSON -----------------------------------------------------------------------
def test_json_is_one_plan_object_with_its_invariants(capsys):
    rc, out, err = run([*GRPO_A100X8, "--json"], capsys)
    assert rc == 0 and err == ""
    plan, end = json.JSONDecoder().raw_decode(out.lstrip())
    assert out.lstrip()[end:].strip() == "", "--json must print the plan and nothing else"
    assert isinstance(plan, dict)
    check_plan(plan, "a100x8", "grpo")
    assert plan["mode"] == "sync" and plan["objective"] == "iteration time"
    assert plan["inputs"]["workload"]["prompts"] == 64
    assert plan["inputs"]["workload"]["samples_per_prompt"] == 4
    assert plan["tokens_per_iteration"] == 64 * 4 * (256 + 256)
    assert plan["tokens_per_s"] == pytest.approx(plan["tokens_per_iteration"] / plan["iteration_time_s"])
    lb = plan["lower_bound_s"]
    assert lb is not None and 0 < lb <= plan["iteration_time_s"] * (1 + 1e-9), "the lower bound must be below the plan"


def test_readme_default_plan(capsys):
    """The README's first command, exactly as a user types it (default actor and workload)."""
    plan = plan_json(["--cluster", "a100x64", "--algo", "grpo"], capsys)
    check_plan(plan, "a100x64", "grpo")
    assert plan["inputs"]["models"]["actor"] == "qwen2.5-7b"
    assert plan["inputs"]["workload"]["prompts"] == 1024
    assert plan["search_time_s"] < 10


def test_ppo_plan_with_separate_pools(capsys):
    """PPO on two nodes: several pools, so the distinct-GPU and one-pool-per-role checks bite."""
    plan = plan_json(["--cluster", "a100x16", "--algo", "ppo", "--actor", "qwen2.5-1.5b", *SMALL], capsys)
    check_plan(plan, "a100x16", "ppo")


def test_baselines_that_apply_are_priced_when_every_role_fits_on_one_gpu(capsys):
    """A 1.5B PPO job fits any layout the hand-written recipes give on 16 A100s: a baseline
    that applies to the job must be priced, not reported as not fitting in memory."""
    plan = plan_json(["--cluster", "a100x16", "--algo", "ppo", "--actor", "qwen2.5-1.5b", *SMALL], capsys)
    for b in plan["baselines"]:
        assert b["feasible"], f"{b['name']}: {b.get('reason')}"


# ---- 2. the human report --------------------------------------------------------------------
def test_human_report(capsys):
    from planner.cli.plan_report import fmt_s

    plan = plan_json(GRPO_A100X8, capsys)
    rc, out, err = run(GRPO_A100X8, capsys)
    assert rc == 0 and err == ""
    assert not out.lstrip().startswith("{"), "the report is not JSON"
    assert "Pools" in out
    for p in plan["pools"]:
        assert f"{p['num_gpus']} x {p['gpu']}" in out
        assert ", ".join(p["roles"]) in out
    assert "iteration time" in out and fmt_s(plan["iteration_time_s"]) in out
    assert "tokens/s" in out
    assert f"solver: {plan['status']}" in out
    assert "lower bound" in out
    for name in ("verl default", "OpenRLHF 1:1:1", "HybridFlow"):
        assert name in out
    assert "qwen2.5-1.5b" in out


# ---- 3. --out and load_plan -------------------------------------------------------------------
def test_out_writes_the_same_plan_as_json(tmp_path, capsys):
    path = tmp_path / "plan.json"
    rc, out, err = run([*GRPO_A100X8, "--json", "--out", str(path)], capsys)
    assert rc == 0 and err == ""
    printed = json.loads(out)
    written = json.loads(path.read_text())
    assert written == printed
    assert load_plan(path) == printed
    assert load_plan(str(path)) == printed
    assert sorted(os.listdir(tmp_path)) == ["plan.json"], "no temporary file may be left behind"


def test_out_with_human_report(tmp_path, capsys):
    path = tmp_path / "plan.json"
    rc, out, err = run([*GRPO_A100X8, "--out", str(path)], capsys)
    assert rc == 0 and err == ""
    assert f"plan written to {path}" in out
    written = load_plan(path)
    reference = plan_json(GRPO_A100X8, capsys)
    assert set(written) == set(reference)
    assert set(written["pools"][0]) == set(reference["pools"][0])
    assert written["iteration_time_s"] == pytest.approx(reference["iteration_time_s"], rel=1e-9)
    assert written["inputs"]["digest"] == reference["inputs"]["digest"]
    check_plan(written, "a100x8", "grpo")


def test_load_plan_refuses_what_is_not_a_plan(tmp_path, capsys):
    plan = plan_json(GRPO_A100X8, capsys)
    cases = {
        "other.json": json.dumps({"name": "a100x8", "pools": []}),
        "list.json": json.dumps([plan]),
        "malformed.json": '{"kind": "rlplan.plan", "version": 1,',
        "empty.json": "",
        "v2.json": json.dumps({**plan, "version": 2}),
        "noversion.json": json.dumps({k: v for k, v in plan.items() if k != "version"}),
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(PlanError) as info:
            load_plan(tmp_path / name)
        message = str(info.value)
        assert "\n" not in message and name in message, message
    with pytest.raises(PlanError, match="not found"):
        load_plan(tmp_path / "missing.json")
    with pytest.raises(PlanError, match="version"):
        load_plan(tmp_path / "v2.json")


# ---- 4. constraints ---------------------------------------------------------------------------
def _pool_of(plan: dict, role: str) -> int:
    return plan["roles"][role]["pool"]


def test_colocate_puts_roles_in_one_pool(capsys):
    base = ["--cluster", "a100x16", "--algo", "ppo", "--actor", "qwen2.5-1.5b", *SMALL]
    plan = plan_json([*base, "--colocate", "actor,ref"], capsys)
    check_plan(plan, "a100x16", "ppo")
    assert _pool_of(plan, "actor") == _pool_of(plan, "ref")
    assert plan["inputs"]["options"]["colocate"] == [["actor", "ref"]]
    free = plan_json(base, capsys)
    assert plan["iteration_time_s"] >= free["iteration_time_s"] * (1 - 1e-9), "a constraint cannot make it faster"


def test_max_gpus(capsys):
    plan = plan_json([*GRPO_A100X8, "--max-gpus", "4"], capsys)
    check_plan(plan, "a100x8", "grpo")
    assert plan["gpus_used"] <= 4
    assert sum(p["num_gpus"] for p in plan["pools"]) <= 4
    for b in plan["baselines"]:
        if b["feasible"]:
            assert sum(p["num_gpus"] for p in b["pools"]) <= 4, b["name"]
    assert plan["inputs"]["options"]["max_gpus"] == 4
    assert plan["iteration_time_s"] >= plan_json(GRPO_A100X8, capsys)["iteration_time_s"] * (1 - 1e-9)


def test_rollout_tp(capsys):
    # With 32 prompts the unconstrained plan prefers another rollout TP, so this asks something.
    base = ["--cluster", "a100x8", "--algo", "grpo", "--actor", "qwen2.5-1.5b", "--prompts", "32", "--samples", "4",
            "--response-len", "256", "--prompt-len", "256"]
    plan = plan_json([*base, "--rollout-tp", "2"], capsys)
    check_plan(plan, "a100x8", "grpo")
    rollout = plan["roles"]["rollout"]
    assert rollout["kind"] == "generate"
    assert rollout["layout"]["tp"] == 2
    assert rollout["layout_str"].startswith("tp2x")


def test_one_step_off(capsys):
    # --time-limit bounds the baselines' constrained solves too (min(limit, 20 s)).
    base = [*GRPO_A100X8, "--time-limit", "3"]
    plan = plan_json([*base, "--mode", "one-step-off"], capsys)
    check_plan(plan, "a100x8", "grpo")
    assert plan["mode"] == "one-step-off"
    assert plan["objective"] == "steady-state period"
    assert plan["inputs"]["options"]["mode"] == "one-step-off"
    sync = plan_json(base, capsys)
    assert plan["objective"] != sync["objective"]
    # Overlapping generation with the previous training never makes a period longer than
    # a synchronous iteration of the same job.
    assert plan["iteration_time_s"] <= sync["iteration_time_s"] * (1 + 1e-6)


def test_executor_only_has_no_pipeline_parallelism(capsys):
    # A 70B actor on 32 A100s: without the flag the search pipelines the actor.
    argv = ["--cluster", "a100x32", "--algo", "grpo", "--actor", "llama-2-70b", "--prompts", "32", "--samples", "4",
            "--response-len", "256", "--prompt-len", "256", "--executor-only"]
    plan = plan_json(argv, capsys)
    check_plan(plan, "a100x32", "grpo")
    assert plan["inputs"]["options"]["executor_only"] is True
    for name, role in plan["roles"].items():
        assert role["layout"].get("pp", 1) == 1, (name, role["layout_str"])
        assert "/pp" not in role["layout_str"] or "/pp1/" in role["layout_str"], (name, role["layout_str"])
    for b in plan["baselines"]:
        for role, text in b.get("layouts", {}).items():
            assert not re.search(r"/pp(?!1/)\d", text), (b["name"], role, text)


def test_ppo_critic_model(capsys):
    argv = ["--cluster", "a100x8", "--algo", "ppo", "--actor", "qwen2.5-1.5b", "--critic", "qwen2.5-0.5b", *SMALL]
    plan = plan_json(argv, capsys)
    check_plan(plan, "a100x8", "ppo")
    assert plan["roles"]["critic"]["model"] == "qwen2.5-0.5b"
    assert plan["inputs"]["models"]["critic"] == "qwen2.5-0.5b"
    for role in ("actor", "rollout", "ref"):
        assert plan["roles"][role]["model"] == "qwen2.5-1.5b", role
    # The reward model defaults to the critic's.
    assert plan["roles"]["reward"]["model"] == "qwen2.5-0.5b"


# ---- 5. bad input -------------------------------------------------------------------------------
@pytest.fixture
def rtx4090_cluster(tmp_path) -> Path:
    path = tmp_path / "rtx4090x8.yaml"
    path.write_text("node_groups:\n  - {gpu: rtx4090-24gb, nodes: 1, gpus_per_node: 8}\n")
    return path


def _bad(argv_tail):
    return ["--prompts", "32", "--samples", "4", "--response-len", "256", "--prompt-len", "256", *argv_tail]


BAD_INPUTS = {
    # id: (argv, words the error line must contain)
    "unknown-cluster": (["--cluster", "a100x7-nope", "--algo", "grpo"], ["a100x7-nope"]),
    "unknown-algo": (["--cluster", "a100x8", "--algo", "grpoo"], ["grpoo"]),
    "unknown-model": (["--cluster", "a100x8", "--algo", "grpo", "--actor", "qwen9-nope"], ["qwen9-nope"]),
    "colocate-unknown-role": (["--cluster", "a100x8", "--algo", "grpo", "--colocate", "actor,nope"], ["nope"]),
    "max-gpus-0": (["--cluster", "a100x8", "--algo", "grpo", "--max-gpus", "0"], ["--max-gpus"]),
    "max-gpus-too-many": (["--cluster", "a100x8", "--algo", "grpo", "--max-gpus", "9"], ["--max-gpus", "9", "8"]),
    "prompts-negative": (["--cluster", "a100x8", "--algo", "grpo", "--actor", "qwen2.5-0.5b", "--prompts", "-1"],
                         ["prompts", "-1"]),
    "malformed-cluster-yaml": (["--cluster", str(BAD_YAML), "--algo", "grpo"], ["bad_syntax.yaml", "line"]),
    "missing-cluster-yaml": (["--cluster", "no/such/cluster.yaml", "--algo", "grpo"], ["no/such/cluster.yaml"]),
}


def _check_one_line_error(rc, out, err, out_file: Path, words):
    assert rc == 2, (rc, err)
    assert out == "", f"nothing may be printed on stdout, got {out!r}"
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    line = lines[0]
    assert line.startswith("plan: error: ")
    for word in words:
        assert word in line, (word, line)
    assert not out_file.exists(), "--out must not be written on an error"
    assert not out_file.with_name(out_file.name + ".tmp").exists()
    return line


@pytest.mark.parametrize("json_flag", [False, True], ids=["report", "json"])
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2(case, json_flag, tmp_path, capsys):
    argv, words = BAD_INPUTS[case]
    out_file = tmp_path / "plan.json"
    full = [*_bad([]), *argv, "--out", str(out_file)] + (["--json"] if json_flag else [])
    rc, out, err = run(full, capsys)
    _check_one_line_error(rc, out, err, out_file, words)


@pytest.mark.parametrize("json_flag", [False, True], ids=["report", "json"])
def test_infeasible_ask_names_the_minimum_cluster(json_flag, rtx4090_cluster, tmp_path, capsys):
    out_file = tmp_path / "plan.json"
    argv = ["--cluster", str(rtx4090_cluster), "--algo", "grpo", "--actor", "llama-2-70b",
            "--out", str(out_file)] + (["--json"] if json_flag else [])
    rc, out, err = run(argv, capsys)
    line = _check_one_line_error(rc, out, err, out_file, ["llama-2-70b", "rtx4090-24gb"])
    found = re.search(r"at least (\d+)", line)
    assert found, line
    assert int(found.group(1)) > 8, "the hint must ask for more than the 8 GPUs the user has"


def test_minimum_cluster_hint_is_the_minimum(rtx4090_cluster, tmp_path, capsys):
    """The GPU count the error names fits the actor on its own, and the next smaller pool does not."""
    from planner.cli import ArgumentParser, search_cmd
    from planner.search.candidates import CandidateBuilder, pool_sizes

    rc, _, err = run(["--cluster", str(rtx4090_cluster), "--algo", "grpo", "--actor", "llama-2-70b", "--json"], capsys)
    assert rc == 2
    needed = int(re.search(r"at least (\d+)", err).group(1))
    nodes = -(-needed // 8)
    big = tmp_path / "big.yaml"
    big.write_text(f"node_groups:\n  - {{gpu: rtx4090-24gb, nodes: {nodes}, gpus_per_node: 8}}\n")
    parser = ArgumentParser(prog="plan")
    search_cmd.add_arguments(parser, "search")
    inputs = search_cmd.build_inputs(parser.parse_args(["--cluster", str(big), "--algo", "grpo",
                                                        "--actor", "llama-2-70b"]))
    builder = CandidateBuilder(inputs)
    sizes = pool_sizes(inputs.cluster, 0, inputs.cluster.num_gpus)
    assert needed in sizes
    assert builder.candidates("actor", 0, needed), f"actor does not fit on the {needed} GPUs the hint names"
    smaller = [s for s in sizes if s < needed]
    assert smaller and not builder.candidates("actor", 0, max(smaller))


def test_impossible_rollout_tp_is_named(tmp_path, capsys):
    """A rollout TP no model can use (3 divides neither the heads nor a node) is the user's
    flag to fix: the error must say so, not advise a bigger cluster."""
    out_file = tmp_path / "plan.json"
    rc, out, err = run([*_bad(["--cluster", "a100x8", "--algo", "grpo", "--actor", "qwen2.5-0.5b"]),
                        "--rollout-tp", "3", "--json", "--out", str(out_file)], capsys)
    _check_one_line_error(rc, out, err, out_file, ["--rollout-tp"])


def test_unwritable_out_is_one_line_error(tmp_path, capsys):
    """`--out` into a folder that does not exist: one line, exit 2, no traceback."""
    out_file = tmp_path / "no" / "such" / "dir" / "plan.json"
    rc, out, err = run([*GRPO_A100X8, "--json", "--out", str(out_file)], capsys)
    assert rc == 2, (rc, err[-500:])
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith("plan: error: ")
    assert not out_file.exists()


def test_out_onto_a_directory_leaves_no_temporary_file(tmp_path, capsys):
    """`--out` naming an existing folder fails, and leaves no half-written `<name>.tmp` behind."""
    target = tmp_path / "plans"
    target.mkdir()
    rc, out, err = run([*GRPO_A100X8, "--json", "--out", str(target)], capsys)
    assert rc == 2, (rc, err[-500:])
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert sorted(os.listdir(tmp_path)) == ["plans"] and not os.listdir(target)


# ---- the console script and the light import path ---------------------------------------------
def test_console_script(tmp_path):
    exe = shutil.which("plan")
    assert exe, "the `plan` console script is not installed (pip install -e .)"
    ok = subprocess.run([exe, "--cluster", "a100x8", "--algo", "grpo", "--actor", "qwen2.5-0.5b", "--prompts", "32",
                         "--json"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr == ""
    plan = json.loads(ok.stdout)
    assert plan["status"] in ("optimal", "feasible") and plan["iteration_time_s"] > 0
    bad = subprocess.run([exe, "--cluster", "a100x8", "--algo", "nope"], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "nope" in bad.stderr and "Traceback" not in bad.stderr


IMPORT_CHECK = """
import sys
HEAVY = ('torch', 'ray', 'vllm')
tried = []

class Watch:
    # Records any attempt to import a heavy package, installed or not.
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in HEAVY:
            tried.append(name)
        return None

sys.meta_path.insert(0, Watch())
from planner.cli import main
rc = main(['--cluster','a100x8','--algo','grpo','--actor','qwen2.5-0.5b','--prompts','32','--json'])
assert rc == 0, rc
assert not any(m in sys.modules for m in HEAVY), [m for m in HEAVY if m in sys.modules]
assert not tried, f'the planning path tried to import {sorted(set(tried))}'
"""


def test_planning_imports_no_torch_ray_vllm():
    proc = subprocess.run([sys.executable, "-c", IMPORT_CHECK], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["status"] in ("optimal", "feasible")
