"""Stages that run on the driver's CPUs, not on a GPU pool: rule rewards, advantage
estimation, dynamic-sampling filters. They are cheap next to GPU stages but not free."""

from __future__ import annotations

RULE_REWARD_S_PER_SAMPLE = 2e-4
"""Parsing one response and comparing its answer (regex + numeric compare; math-verify's
symbolic path is slower, but verl and OpenRLHF score in parallel worker processes)."""
ADVANTAGE_S_PER_TOKEN = 2e-9
"""Vectorised advantage estimation (GAE's reverse scan or group statistics) in numpy/torch
on the driver: a few elementwise passes over the token matrix."""


def driver_stage_time(kind: str, num_seqs: int, tokens_per_seq: float) -> float:
    """Seconds a driver-side stage takes for ``num_seqs`` sequences."""
    if kind == "rule_reward":
        return RULE_REWARD_S_PER_SAMPLE * num_seqs
    return ADVANTAGE_S_PER_TOKEN * num_seqs * tokens_per_seq
