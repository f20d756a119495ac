"""Dry-run speed: simulate K iterations of a plan and time it.

Default: PPO on h100x1024 with 1024 prompts x 8 samples (8192 responses per iteration,
lognormal lengths), 100 iterations; the target is <= 10 s on this project's 2-core
machine. The plan is made first (not timed); then three figures are timed separately:
re-pricing the plan from its JSON (``replay_plan``), the simulation of K iterations, and
the whole ``simulate`` (simulation + long-tail what-ifs + summary), which is what
``plan simulate plan.json --iterations K`` spends after loading.

    python benchmarks/simulate.py [--cluster h100x1024] [--algo ppo] [--iterations 100] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path


def make_plan(cluster: str, algo: str, prompts: int, samples: int) -> dict:
    from planner.cli.search_cmd import add_arguments, build_inputs
    from planner.plan import plan_to_dict
    from planner.search import run_search

    parser = argparse.ArgumentParser()
    add_arguments(parser, "search")
    args = parser.parse_args(["--cluster", cluster, "--algo", algo, "--prompts", str(prompts),
                              "--samples", str(samples), "--time-limit", "60"])
    return plan_to_dict(run_search(build_inputs(args)))


def measure(plan: dict, iterations: int, seed: int = 0) -> dict:
    from executor.sim import simulate
    from executor.sim.one_step_off import best_generation_slot
    from executor.sim.run import run_simulation
    from planner.replay import replay_plan

    t0 = time.perf_counter()
    replayed = replay_plan(json.loads(json.dumps(plan)))
    t1 = time.perf_counter()
    run = run_simulation(replayed, iterations, seed, generation_after=best_generation_slot(replayed))
    t2 = time.perf_counter()
    result = simulate(replayed, iterations, seed).to_dict()
    t3 = time.perf_counter()
    return {"replay_s": t1 - t0, "simulation_s": t2 - t1, "simulate_total_s": t3 - t2,
            "iterations": iterations, "calls": len(run.records),
            "iteration_time_s": result["iteration_time_s"], "predicted_iteration_time_s": plan["iteration_time_s"],
            "p95_s": result["iteration_time_p95_s"],
            "pools": [f"{'+'.join(p['roles'])}: {p['num_gpus']}" for p in plan["pools"]],
            "rollout": plan["roles"]["rollout"]["layout_str"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cluster", default="h100x1024")
    parser.add_argument("--algo", default="ppo")
    parser.add_argument("--prompts", type=int, default=1024)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    t0 = time.perf_counter()
    plan = make_plan(args.cluster, args.algo, args.prompts, args.samples)
    plan_s = time.perf_counter() - t0
    figures = {"cluster": args.cluster, "algo": args.algo, "responses_per_iteration": args.prompts * args.samples,
               "plan_s": plan_s, "machine": f"{platform.machine()}, {platform.python_version()}",
               **measure(plan, args.iterations)}
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
