"""DAPO's dynamic sampling in the executor: which generated rows a step trains on."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from executor.real.stages import MAIN_GENERATION, Rollout, RunSettings, StageRunner  # noqa: E402


def _rollout(scores_per_group):
    rows = [(g, s) for g, scores in enumerate(scores_per_group) for s in scores]
    batch = {"prompt_index": torch.tensor([g for g, _ in rows]),
             "responses": torch.arange(len(rows)).reshape(-1, 1),
             "response_mask": torch.ones(len(rows), 1)}
    return Rollout(batch, [f"prompt {g}" for g, _ in rows]), torch.tensor([s for _, s in rows], dtype=torch.float32)


def _filter(kept_prompts, scores_per_group):
    settings = RunSettings(samples=2, max_tokens=2, mini_batches=1, epochs=1, kept_prompts=kept_prompts)
    runner = StageRunner("dapo", {}, None, lambda step: [], settings)
    rollout, scores = _rollout(scores_per_group)
    return runner._filter({"scores": scores}, {MAIN_GENERATION: rollout})


def test_informative_groups_are_kept_first():
    # groups 0 and 3 have mixed rewards; 1 (all wrong) and 2 (all right) carry no gradient
    kept, args = _filter(2, [[1, 0], [0, 0], [1, 1], [0, 1]])
    assert kept.batch["prompt_index"].tolist() == [0, 0, 3, 3]
    assert kept.scores.tolist() == [1, 0, 0, 1]
    assert kept.examples == ["prompt 0", "prompt 0", "prompt 3", "prompt 3"]
    assert kept.batch["responses"].flatten().tolist() == [0, 1, 6, 7]
    assert (args["dapo/generated_groups"], args["dapo/informative_groups"], args["dapo/kept_informative_groups"]) \
        == (4, 2, 2)


def test_too_few_informative_groups_are_topped_up_to_the_planned_batch():
    kept, args = _filter(3, [[1, 0], [0, 0], [1, 1], [0, 0]])
    assert sorted(set(kept.batch["prompt_index"].tolist())) == [0, 1, 2]
    assert kept.rows == 6 and args["dapo/informative_groups"] == 1


def test_more_informative_groups_than_planned_keep_the_planned_count():
    kept, args = _filter(1, [[1, 0], [0, 1], [1, 1]])
    assert kept.batch["prompt_index"].tolist() == [0, 0] and args["dapo/kept_informative_groups"] == 1
