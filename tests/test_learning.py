"""Learning is real: the demo's GRPO run, planned and executed by rlplan, raises the reward.

A shorter run than ``benchmarks/learn.py`` (which records the whole curve in the README):
from a random tiny model, the mean reward of the last steps is clearly above that of the
first ones. The run is seeded (data order, sampling, init).
"""

from __future__ import annotations

import pytest

pytest.importorskip("vllm")
pytest.importorskip("ray")

STEPS = 80
WINDOW = 10


def test_grpo_on_the_toy_task_raises_the_reward(tmp_path):
    from executor.demo import DemoSettings, run_demo

    result = run_demo(tmp_path, STEPS, DemoSettings(), quiet=True)
    rewards = [m["reward_mean"] for m in result.metrics]
    assert len(rewards) == STEPS
    first, last = sum(rewards[:WINDOW]) / WINDOW, sum(rewards[-WINDOW:]) / WINDOW
    assert first < 0.2  # a random model answers about one sum in ten, or fewer
    assert last > first + 0.2, f"no clear rise: first {first:.2f}, last {last:.2f}"
