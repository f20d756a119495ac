"""The simulation's summary: ``SimulationResult`` and ``summarise(run)``.

``SimulationResult.to_dict()`` is the schema the CLI prints with ``--json`` and the report
reads (keys may be added, never removed or renamed)::

    {
     "kind": "rlplan.simulation", "version": 1,
     "cluster": str, "algo": str, "mode": "sync"|"one-step-off", "seed": int,
     "iterations": int,
     "iteration_time_s": float (mean), "iteration_time_p95_s": float, "iteration_times_s": [float],
     "predicted_iteration_time_s": float (the plan's objective),
     "tokens_per_s": float, "tokens_per_s_per_gpu": float,
     "stages": {job_name: {"role": str|None, "kind": str, "pools": [int], "mean_s": float,
                           "p95_s": float, "predicted_s": float}},
     "pools": [{"id": int, "gpu": str, "num_gpus": int, "roles": [str], "busy_fraction": float,
                "idle_fraction": float, "peak_memory_gib": float, "capacity_gib": float,
                "memory_timeline": [[t_s, gib], ...],
                "memory_peak_breakdown_gib": {"weights": x, "optimizer": x, "activations": x, "kv_cache": x, ...}}],
     "critical_path": [job names of the last iteration's critical path],
     "events": [{"job": str, "roles": [str], "kind": str, "pools": [int], "iteration": int,
                 "start_s": float, "end_s": float, "args": {...}}],
     "response_lengths": {"bin_edges": [int], "counts": [int], "mean": float, "p50": float,
                          "p95": float, "max": int},
     "long_tail": {"generation_time_s": float, "tail_wait_s": float, "tail_fraction": float,
                   "what_if_caps": [{"cap_tokens": int, "generation_time_s": float,
                                     "iteration_time_s": float, "speedup": float,
                                     "samples_truncated_fraction": float}]},
     "baselines": the plan's baselines list (copied)
    }

Added keys: ``iteration_time_steady_s`` (the iterations the mean and p95 are over: all in
sync mode; one-step-off leaves out the pipeline's fill and drain), ``total_time_s``,
``generation_after`` (one-step-off submission slot), ``plan_stale`` (the cost model
re-prices the plan differently from when it was made), ``gpus_used``; per stage
``count``; per pool ``busy_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from executor.sim.critical_path import critical_path
from executor.sim.sampling import length_histogram
from planner.hardware import GiB

KIND = "rlplan.simulation"
VERSION = 1


@dataclass(frozen=True)
class SimulationResult:
    """A dry run's figures; ``data`` follows the module docstring's schema."""

    data: dict

    def to_dict(self) -> dict:
        return self.data

    @property
    def iteration_time_s(self) -> float:
        return self.data["iteration_time_s"]


def _p95(values) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), 95)) if len(values) else 0.0


def summarise(run, long_tail: dict) -> SimulationResult:
    plan, replayed = run.replayed.plan, run.replayed
    records = run.records
    steady = run.steady_iteration_times
    mean_s = float(steady.mean())
    tokens = _tokens_per_iteration(run)
    gpus = int(plan.get("gpus_used") or sum(p["num_gpus"] for p in plan["pools"]))
    data = {
        "kind": KIND, "version": VERSION,
        "cluster": replayed.inputs.cluster.name, "algo": replayed.inputs.algo, "mode": plan["mode"],
        "seed": run.seed, "iterations": run.iterations,
        "iteration_time_s": mean_s, "iteration_time_p95_s": _p95(steady),
        "iteration_times_s": run.iteration_times.tolist(), "iteration_time_steady_s": steady.tolist(),
        "predicted_iteration_time_s": float(plan["iteration_time_s"]),
        "tokens_per_s": tokens / mean_s, "tokens_per_s_per_gpu": tokens / mean_s / gpus, "gpus_used": gpus,
        "total_time_s": float(run.ends.max()),
        "generation_after": run.generation_after, "plan_stale": replayed.stale,
        "stages": _stages(records, plan),
        "pools": _pools(records, plan, run.backend.memory, float(run.ends.max())),
        "critical_path": critical_path(run.backend.state, run.iterations - 1),
        "events": [r.to_dict() for r in records],
        "response_lengths": length_histogram(run.backend.sampler.main_lengths(),
                                             replayed.inputs.workload.response.max_len),
        "long_tail": long_tail,
        "baselines": list(plan.get("baselines", [])),
    }
    return SimulationResult(data)


def _tokens_per_iteration(run) -> float:
    """Prompt + response tokens trained on per iteration (the plan's definition, on sampled lengths)."""
    w = run.replayed.inputs.workload
    lengths = run.backend.sampler.main_lengths()
    mean_len = float(lengths.mean()) if lengths.size else w.response.expected
    return w.num_samples * (w.prompt_len + mean_len)


def _stages(records, plan: dict) -> dict:
    predicted = {j["job"]: j["time_s"] for j in plan["schedule"]}
    out: dict[str, dict] = {}
    durations: dict[str, list[float]] = {}
    for rec in records:
        durations.setdefault(rec.job, []).append(rec.end_s - rec.start_s)
        out.setdefault(rec.job, {"role": rec.job.split(".", 1)[0] if rec.roles else None, "kind": rec.kind,
                                 "pools": list(rec.pools)})
    for job, entry in out.items():
        entry.update(mean_s=float(np.mean(durations[job])), p95_s=_p95(durations[job]),
                     predicted_s=float(predicted.get(job, float("nan"))), count=len(durations[job]))
    order = [j["job"] for j in plan["schedule"]]
    return {job: out[job] for job in order if job in out}


def _pools(records, plan: dict, memory, total_s: float) -> list[dict]:
    busy: dict[int, float] = {}
    for rec in records:
        for p in rec.pools:
            busy[p] = busy.get(p, 0.0) + (rec.end_s - rec.start_s)
    pools = []
    for pool in plan["pools"]:
        p = pool["id"]
        fraction = busy.get(p, 0.0) / total_s if total_s > 0 else 0.0
        pools.append({
            "id": p, "gpu": pool["gpu"], "num_gpus": pool["num_gpus"], "roles": list(pool["roles"]),
            "busy_s": busy.get(p, 0.0), "busy_fraction": fraction, "idle_fraction": 1.0 - fraction,
            "peak_memory_gib": memory.peak[p] / GiB, "capacity_gib": pool["capacity_gib"],
            "memory_timeline": memory.timeline[p],
            "memory_peak_breakdown_gib": memory.breakdown_gib(p),
        })
    return pools
