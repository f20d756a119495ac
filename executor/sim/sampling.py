"""Response lengths of simulated generations: seeded, reproducible, optionally capped.

Each generation stage of each iteration draws from its own random stream, seeded by
``(seed, iteration, stage index)``: the same seed gives the same lengths whatever else
changes (more iterations, a length cap for a what-if), another seed gives other lengths.
The distribution is the workload's (``planner.workload.LengthDistribution``: fixed,
normal, lognormal, or an empirical histogram read from a file of lengths).
"""

from __future__ import annotations

import numpy as np

HISTOGRAM_BINS = 20


class LengthSampler:
    """Draws each generation's response lengths; remembers what it drew."""

    def __init__(self, dataflow, seed: int, cap: int | None = None) -> None:
        self.seed = int(seed)
        self.cap = cap
        generate_stages = [name for name in dataflow.order() if dataflow.stages[name].kind.value == "generate"]
        self.stream = {name: i for i, name in enumerate(generate_stages)}
        self.main_stage = generate_stages[0]
        """The algorithm's sampled generation (``rollout.generate``); the others are auxiliary (greedy)."""
        self.drawn: dict[tuple[int, str], np.ndarray] = {}
        """(iteration, stage) -> the lengths drawn (after the cap)."""

    def uncapped(self, stage, iteration: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, iteration, self.stream[stage.name]])
        return stage.response.sample(stage.num_seqs, rng)

    def lengths(self, stage, iteration: int) -> np.ndarray:
        lengths = self.uncapped(stage, iteration)
        if self.cap is not None:
            lengths = np.minimum(lengths, self.cap)
        self.drawn[(iteration, stage.name)] = lengths
        return lengths

    @staticmethod
    def expected_batch(stage) -> np.ndarray:
        """A stand-in batch for a stage that reads no generation (its expected length)."""
        return np.array([stage.response.expected])

    def main_lengths(self) -> np.ndarray:
        """Every length the main generation drew, over all iterations."""
        drawn = [v for (_, name), v in sorted(self.drawn.items()) if name == self.main_stage]
        return np.concatenate(drawn) if drawn else np.zeros(0, dtype=np.int64)


def length_histogram(lengths: np.ndarray, max_len: int, bins: int = HISTOGRAM_BINS) -> dict:
    """``{"bin_edges", "counts", "mean", "p50", "p95", "max"}`` of response lengths (integer edges up to ``max_len``)."""
    lengths = np.asarray(lengths)
    top = max(int(max_len), int(lengths.max()) if lengths.size else 1)
    edges = np.unique(np.linspace(0, top, bins + 1).round().astype(np.int64))
    counts, _ = np.histogram(lengths, bins=edges)
    if not lengths.size:
        return {"bin_edges": edges.tolist(), "counts": counts.tolist(), "mean": 0.0, "p50": 0.0, "p95": 0.0, "max": 0}
    return {"bin_edges": edges.tolist(), "counts": counts.tolist(), "mean": float(lengths.mean()),
            "p50": float(np.percentile(lengths, 50)), "p95": float(np.percentile(lengths, 95)),
            "max": int(lengths.max())}
