"""Long-tail analysis: how much of generation waits on the slowest samples, and a what-if cap.

A decode step serves every unfinished sequence, so once most responses are done a few
long ones keep a small batch decoding: the stage's *tail*. Its length is the cost model's
``tail_s`` (the time the slowest engine runs below half its peak batch), averaged over
the run's generations. The what-if re-simulates the first ``WHAT_IF_ITERATIONS``
iterations with the same seed (so the same samples) with every response cut at a cap,
as vLLM's ``max_tokens`` would (DAPO's overlong filtering; verl's max_response_length),
and compares with the same iterations uncapped. It changes nothing in the plan.
"""

from __future__ import annotations

import numpy as np

WHAT_IF_ITERATIONS = 5
CAP_QUANTILES = (0.99, 0.95, 0.90)
"""Caps tried: these quantiles of the lengths the run sampled."""


def long_tail(run, what_if: bool = True) -> dict:
    """``{"generation_time_s", "tail_wait_s", "tail_fraction", "what_if_caps": [...]}`` of a run
    (``what_if=False``: no caps tried, ``what_if_caps`` is empty)."""
    from executor.sim.run import run_simulation

    generations = run.main_generations()
    generation_s = float(np.mean([g.time_s for g in generations]))
    tail_s = float(np.mean([g.info["tail_s"] for g in generations]))
    lengths = run.backend.sampler.main_lengths()
    caps = sorted({int(np.quantile(lengths, q)) for q in CAP_QUANTILES if int(np.quantile(lengths, q)) < lengths.max()},
                  reverse=True)
    out = {"generation_time_s": generation_s, "tail_wait_s": tail_s,
           "tail_fraction": tail_s / generation_s if generation_s > 0 else 0.0, "what_if_caps": []}
    if not caps or not what_if:
        return out
    n = min(run.iterations, WHAT_IF_ITERATIONS)

    def trial(cap):
        return run_simulation(run.replayed, n, run.seed, cap, run.generation_after)

    base = trial(None)
    base_iteration = float(base.steady_iteration_times.mean())
    sampled = base.backend.sampler.main_lengths()
    for cap in caps:
        capped = trial(cap)
        iteration = float(capped.steady_iteration_times.mean())
        out["what_if_caps"].append({
            "cap_tokens": cap,
            "generation_time_s": float(np.mean([g.time_s for g in capped.main_generations()])),
            "iteration_time_s": iteration,
            "speedup": base_iteration / iteration,
            "samples_truncated_fraction": float(np.mean(sampled > cap)),
        })
    out["what_if_iterations"] = n
    out["what_if_baseline_iteration_time_s"] = base_iteration
    return out
