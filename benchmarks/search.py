"""Search time of rlplan's CP-SAT planner vs HybridFlow's Algorithm 1, same inputs.

    python benchmarks/search.py [--sizes 8,64,128,512,1024,4096] [--algos ppo,grpo] [--repeats 3] [--json out.json]

For every (algorithm, GPU count) on H100 nodes of 8: the search's wall time (pricing
candidates, the hand-written baselines that are its first incumbent, CP-SAT) and the
CP-SAT solve alone, each the median of ``--repeats`` runs (this machine's speed varies by
up to 2x from one run to the next); what ``plan`` takes, which also runs HybridFlow's
enumeration as a baseline over the candidates already priced; the status and the plan's
iteration time; and HybridFlow's enumeration on its own (pricing its candidates, its wall
time, and its mapping re-priced by rlplan's evaluator). Prints a markdown table (the
README's).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from algos import build_dataflow
from planner.hardware import gpu_by_name, single_node_group_cluster
from planner.model_loading import load_model
from planner.search.candidates import CandidateBuilder
from planner.search.hybridflow import hybridflow_search
from planner.search.inputs import SearchInputs, SearchOptions
from planner.search.pricing import Pricer
from planner.search.run import run_search
from planner.workload import Workload

ACTOR = {8: "qwen2.5-7b", 64: "qwen2.5-7b", 128: "qwen2.5-32b", 512: "qwen2.5-72b", 1024: "qwen2.5-72b",
         4096: "qwen2.5-72b"}
"""Model scale grows with the cluster, as in HybridFlow's Fig. 16 (runtime vs scale)."""


def one(algo: str, gpus: int, time_limit: float, hybridflow_limit: float, repeats: int) -> dict:
    cluster = single_node_group_cluster(gpu_by_name("h100-80gb"), gpus, name=f"h100x{gpus}")
    workload = Workload(prompts=max(1024, gpus * 2), samples_per_prompt=5)
    dataflow = build_dataflow(algo, workload)
    actor = load_model(ACTOR[gpus])
    inputs = SearchInputs(cluster, algo, dataflow, {r: actor for r in dataflow.roles}, workload,
                          SearchOptions(time_limit_s=time_limit))
    totals, solves = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = run_search(inputs, hybridflow=False)
        totals.append(time.perf_counter() - t0)
        solves.append(result.solver_time_s)
    t0 = time.perf_counter()
    run_search(inputs, hybridflow=True)
    as_plan = time.perf_counter() - t0
    hf_builder, hf_pricer = CandidateBuilder(inputs), Pricer(inputs)
    hf = hybridflow_search(inputs, hf_builder, hf_pricer, time_limit_s=hybridflow_limit)
    hf_eval = hf_pricer.evaluate(hf.assignment) if hf.assignment else None
    return {
        "algo": algo, "gpus": gpus, "actor": ACTOR[gpus],
        "search_s": statistics.median(totals), "search_runs_s": totals, "cpsat_s": statistics.median(solves),
        "plan_s": as_plan, "status": result.status, "gap": result.gap,
        "iteration_s": result.evaluation.objective_s, "candidates": result.num_candidates,
        "hybridflow_s": hf.search_time_s, "hybridflow_timed_out": hf.timed_out,
        "hybridflow_iteration_s": hf_eval.objective_s if hf_eval else None,
        "hybridflow_allocations": hf.allocations,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="8,64,128,512,1024,4096")
    ap.add_argument("--algos", default="ppo,grpo")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--hybridflow-limit", type=float, default=600.0)
    ap.add_argument("--repeats", type=int, default=3, help="searches per case; the median is reported")
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = []
    print("| algo | GPUs | actor | search (s) | CP-SAT (s) | `plan` (s) | status | iteration (s) | HybridFlow (s) "
          "| HF / rlplan time | HF iteration (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for algo in args.algos.split(","):
        for gpus in (int(x) for x in args.sizes.split(",")):
            r = one(algo, gpus, args.time_limit, args.hybridflow_limit, args.repeats)
            rows.append(r)
            hf_iter = f"{r['hybridflow_iteration_s']:.1f}" if r["hybridflow_iteration_s"] else "-"
            hf_time = f"{r['hybridflow_s']:.2f}" + (" (limit)" if r["hybridflow_timed_out"] else "")
            print(f"| {algo} | {gpus} | {r['actor']} | {r['search_s']:.2f} | {r['cpsat_s']:.2f} | {r['plan_s']:.2f} | "
                  f"{r['status']} | "
                  f"{r['iteration_s']:.1f} | {hf_time} | {r['hybridflow_s'] / r['search_s']:.1f}x | {hf_iter} |",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
