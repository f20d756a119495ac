"""The report's data shaping, on small hand-written inputs: Gantt rows and bars, the
window the charts open on, stage deviations, the long-tail sentences and the cap they
recommend, memory headroom, scaling efficiency and log ticks."""

from __future__ import annotations

import pytest

from executor.report import lengths, memory, scaling, stages, summary, timeline


def event(job, pools, iteration, start, end, kind="forward"):
    return {"job": job, "roles": [], "kind": kind, "pools": pools, "iteration": iteration,
            "start_s": start, "end_s": end, "args": {"samples": 4}}


def small_simulation(iterations: int = 1) -> dict:
    """Two pools: generation on pool 1, update on pool 0, a rule reward on the driver,
    a weight sync across both pools; each iteration takes 10 s."""
    events = []
    for k in range(iterations):
        t = 10.0 * k
        events += [event("rollout.generate", [1], k, t, t + 4, "generate"),
                   event("reward.rule", [], k, t + 4, t + 4.5, "rule_reward"),
                   event("actor.update", [0], k, t + 4.5, t + 9, "train"),
                   event("rollout.sync_weights", [0, 1], k, t + 9, t + 10, "sync")]
    pool = {"gpu": "a100-80gb", "num_gpus": 4, "busy_fraction": 0.5, "idle_fraction": 0.5, "capacity_gib": 80.0,
            "memory_timeline": [[0.0, 10.0], [4.0, 30.0]], "memory_peak_breakdown_gib": {"weights": 10.0}}
    return {
        "stages": {
            "actor.update": {"role": "actor", "kind": "train", "pools": [0], "mean_s": 4.5, "p95_s": 4.6, "predicted_s": 4.0},
            "rollout.generate": {"role": "rollout", "kind": "generate", "pools": [1], "mean_s": 4.0, "p95_s": 4.4,
                                 "predicted_s": 4.0},
            "reward.rule": {"role": None, "kind": "rule_reward", "pools": [], "mean_s": 0.5, "p95_s": 0.5, "predicted_s": 0.5},
            "rollout.sync_weights": {"role": "rollout", "kind": "sync", "pools": [0, 1], "mean_s": 1.0, "p95_s": 1.0,
                                     "predicted_s": 0.0},
        },
        # pool 1 listed first: rows must still come out by pool id
        "pools": [dict(pool, id=1, roles=["rollout"], peak_memory_gib=30.0),
                  dict(pool, id=0, roles=["actor"], peak_memory_gib=78.0)],
        "events": events,
        "critical_path": ["rollout.generate", "actor.update", "rollout.sync_weights"],
    }


def test_gantt_rows_are_pools_by_id_then_the_driver():
    sim = small_simulation()
    assert timeline.gantt_rows(sim) == ["pool 0 (4x a100-80gb)", "pool 1 (4x a100-80gb)", timeline.DRIVER_ROW]
    sim["events"] = [e for e in sim["events"] if e["pools"]]
    assert timeline.DRIVER_ROW not in timeline.gantt_rows(sim)


def test_gantt_bars_put_a_cross_pool_sync_in_both_rows_and_driver_calls_on_the_driver():
    bars = timeline.gantt_bars(small_simulation())
    rows = {b.job: sorted(x.row for x in bars if x.job == b.job) for b in bars}
    assert rows["rollout.sync_weights"] == ["pool 0 (4x a100-80gb)", "pool 1 (4x a100-80gb)"]
    assert rows["reward.rule"] == [timeline.DRIVER_ROW]
    assert rows["rollout.generate"] == ["pool 1 (4x a100-80gb)"]
    assert len(bars) == 5  # four events, the sync twice


def test_only_the_last_iterations_critical_path_is_outlined():
    bars = timeline.gantt_bars(small_simulation(iterations=3))
    outlined = {(b.job, b.iteration) for b in bars if b.critical}
    assert outlined == {("rollout.generate", 2), ("actor.update", 2), ("rollout.sync_weights", 2)}


def test_jobs_are_ordered_by_when_they_first_start():
    assert timeline.job_order(small_simulation()) == ["rollout.generate", "reward.rule", "actor.update",
                                                      "rollout.sync_weights"]


def test_weight_syncs_are_grey_and_other_jobs_have_distinct_colours():
    colours = timeline.stage_colours(small_simulation())
    assert colours["rollout.sync_weights"] == "#555555"
    others = [c for job, c in colours.items() if job != "rollout.sync_weights"]
    assert len(set(others)) == len(others)


def test_charts_open_on_the_last_two_iterations_of_a_long_run():
    assert timeline.shown_window(small_simulation(iterations=2)) is None  # short runs: show everything
    start, end = timeline.shown_window(small_simulation(iterations=5))
    assert start == pytest.approx(30 - 0.2) and end == pytest.approx(50 + 0.2)  # iterations 3 and 4, 1% margins


def test_stage_rows_give_the_deviation_from_the_prediction():
    rows = {r["job"]: r for r in stages.stage_rows(small_simulation())}
    assert rows["actor.update"]["deviation"] == pytest.approx(0.125)
    assert rows["rollout.generate"]["deviation"] == 0
    assert rows["rollout.sync_weights"]["deviation"] is None  # predicted 0: no ratio
    assert rows["actor.update"]["critical"] and not rows["reward.rule"]["critical"]


LONG_TAIL = {
    "generation_time_s": 60.0, "tail_wait_s": 15.0, "tail_fraction": 0.25,
    "what_if_caps": [
        {"cap_tokens": 512, "generation_time_s": 40.0, "iteration_time_s": 80.0, "speedup": 1.25,
         "samples_truncated_fraction": 0.20},
        {"cap_tokens": 768, "generation_time_s": 48.0, "iteration_time_s": 88.0, "speedup": 1.136,
         "samples_truncated_fraction": 0.04},
        {"cap_tokens": 896, "generation_time_s": 55.0, "iteration_time_s": 95.0, "speedup": 1.05,
         "samples_truncated_fraction": 0.01},
    ],
}


LENGTHS = {"bin_edges": [0, 512, 1024], "counts": [90, 10], "mean": 400.0, "p50": 350.0, "p95": 900.0, "max": 1024}


def test_long_tail_sentence_states_the_share_and_the_seconds():
    text = lengths.long_tail_summary(LONG_TAIL)
    assert text.startswith("25.0% of generation time (15.00 s of 60.00 s)")
    no_tail = dict(LONG_TAIL, tail_wait_s=0.0, tail_fraction=0.0)
    assert lengths.long_tail_summary(no_tail).startswith("No generation time is spent waiting on a long tail")


def test_recommended_cap_is_the_fastest_that_truncates_at_most_five_percent():
    assert lengths.best_cap(LONG_TAIL)["cap_tokens"] == 768  # 512 is faster but cuts 20%
    text = lengths.what_if_summary(LONG_TAIL, 100.0, LENGTHS)
    assert "768 tokens" in text and "from 100 s to 88.00 s (1.14x)" in text and "4.0% of the samples" in text


def test_no_cap_is_recommended_when_every_cap_truncates_too_much():
    harsh = dict(LONG_TAIL, what_if_caps=[dict(c, samples_truncated_fraction=0.3) for c in LONG_TAIL["what_if_caps"]])
    assert lengths.best_cap(harsh) is None
    assert lengths.what_if_summary(harsh, 100.0, LENGTHS).startswith("No cap pays off")


def test_without_caps_the_sentence_says_why():
    none = dict(LONG_TAIL, what_if_caps=[])
    assert "--no-what-if" in lengths.what_if_summary(none, 100.0, LENGTHS)
    fixed = dict(LENGTHS, p50=1024.0, p95=1024.0)  # e.g. fixed lengths: every response is the longest
    assert "as long as the longest (1,024 tokens)" in lengths.what_if_summary(none, 100.0, fixed)


def test_caps_are_compared_with_the_uncapped_rerun_the_simulator_made():
    """The simulator's speedups are relative to the first few iterations re-run uncapped:
    the no-cap row and the sentence use that time when it is given."""
    rerun = dict(LONG_TAIL, what_if_baseline_iteration_time_s=110.0)
    assert "from 110 s to 88.00 s" in lengths.what_if_summary(rerun, 100.0, LENGTHS)
    assert "<td class=\"num\">110 s</td>" in lengths.what_if_table(rerun, 100.0)


def test_what_if_table_lists_no_cap_first_then_mildest_to_harshest():
    html = lengths.what_if_table(LONG_TAIL, 100.0)
    order = [html.index(label) for label in ("no cap (the plan)", "cap 896", "cap 768", "cap 512")]
    assert order == sorted(order)


def test_memory_headroom_names_the_tightest_pool_and_a_pool_over_capacity():
    sim = small_simulation()
    assert "pool 0" in memory.memory_headroom(sim) and "less than 5% free" in memory.memory_headroom(sim)
    sim["pools"][0]["peak_memory_gib"] = 90.0
    assert "pool 1" in memory.memory_headroom(sim) and "run out of memory" in memory.memory_headroom(sim)


def test_memory_parts_keep_a_fixed_order_and_append_unknown_ones():
    sim = small_simulation()
    sim["pools"][0]["memory_peak_breakdown_gib"] = {"kv_cache": 1.0, "offloaded": 2.0, "weights": 3.0}
    assert memory.memory_parts(sim) == ["weights", "kv_cache", "offloaded"]


SWEEP = {"cluster_base": "h100", "points": [
    {"gpus": 64, "iteration_time_s": 30.0, "tokens_per_s": 3000.0, "tokens_per_s_per_gpu": 3000 / 64,
     "placement": "actor+ref: 32 | rollout: 32", "status": "optimal"},
    {"gpus": 16, "iteration_time_s": 100.0, "tokens_per_s": 1000.0, "tokens_per_s_per_gpu": 1000 / 16,
     "placement": "actor+rollout+ref: 16", "status": "optimal"},
    {"gpus": 8, "iteration_time_s": None, "tokens_per_s": None, "tokens_per_s_per_gpu": None,
     "placement": "", "status": "infeasible"},
]}


def test_scaling_efficiency_is_per_gpu_throughput_against_the_smallest_planned_size():
    assert [p["gpus"] for p in scaling.planned_points(SWEEP)] == [16, 64]
    assert scaling.scaling_efficiency(SWEEP) == {16: 1.0, 64: pytest.approx(0.75)}
    html = scaling.scaling_table(SWEEP)
    assert "infeasible" in html and "75.0%" in html


def test_log_ticks_are_one_two_five_steps_or_every_digit_on_a_narrow_range():
    assert scaling.log_ticks(30_000, 300_000) == [50_000, 100_000, 200_000]
    assert scaling.log_ticks(20_000, 60_000) == [20_000, 30_000, 40_000, 50_000, 60_000]  # 1-2-5: only 20k and 50k


def test_placement_label_puts_one_pool_per_line_and_escapes():
    assert scaling.placement_label("actor+ref: 32 | rollout: 32") == "actor+ref: 32<br>rollout: 32"
    assert scaling.placement_label("<x>") == "&lt;x&gt;"


def test_header_cards_say_what_the_mean_is_over_and_the_gpus_per_type():
    sim = small_simulation()
    sim.update(iterations=5, iteration_time_s=10.5, iteration_time_p95_s=11.0, iteration_times_s=[10.0] * 5,
               predicted_iteration_time_s=10.0, tokens_per_s=1000.0, tokens_per_s_per_gpu=125.0, cluster="lab")
    sim["pools"][0]["gpu"] = "h100-80gb"
    plan = {"status": "optimal", "gap": 0.0, "search_time_s": 1.5}
    cards = {label: (value, detail) for label, value, detail in summary.headline_cards(sim, plan)}
    assert cards["iteration time (simulated)"] == ("10.50 s", "mean of 5 iterations; p95 11.00 s")
    assert cards["predicted by the plan"] == ("10.00 s", "simulated mean is +5.0% off")
    assert cards["GPUs"] == ("4 x a100-80gb + 4 x h100-80gb", "2 pools on lab")
    assert cards["solver"] == ("optimal", "gap 0.00%, search 1.50 s")
    sim["iteration_time_steady_s"] = [10.0] * 3  # one-step-off: fill and drain left out
    assert summary.headline_cards(sim, plan)[0][2].startswith("mean of 3 steady iterations of 5")
