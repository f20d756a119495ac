"""What the search's speed-ups rest on: pricing over forked processes gives the candidates
pricing in one process gives, and a rollout's memory levels stop exactly where more KV
cache stops changing anything."""

from __future__ import annotations

import pytest

from planner.cost_model.generation import generate
from planner.errors import PlanError
from planner.parallel import GenerationConfig
from planner.search.candidates import ROLLOUT_UTILS, CandidateBuilder, _arrival_order, pool_sizes
from planner.search.space import PARALLEL_MIN_PAIRS, price_in_parallel
from planner.workload import LengthDistribution
from test_search import make_inputs


def _pairs(inputs):
    return [(role, 0, n) for n in pool_sizes(inputs.cluster, 0, inputs.cluster.num_gpus) for role in inputs.roles]


def _table(builder, pairs):
    return {p: [(c.key, c.stage_times, c.static_bytes, c.transient_bytes) for c in builder.candidates(*p)]
            for p in pairs}


def test_parallel_pricing_equals_pricing_in_one_process():
    inputs = make_inputs("a100x64", "ppo", actor="qwen2.5-7b", prompts=256, samples=4,
                         response=LengthDistribution("lognormal", mean=300, std=200, max_len=1024))
    pairs = _pairs(inputs)
    assert len(pairs) >= PARALLEL_MIN_PAIRS, "too few pairs: the parallel path would not run"
    parallel = CandidateBuilder(inputs)
    price_in_parallel(parallel, pairs, processes=2)
    assert all(parallel.is_priced(*p) for p in pairs)
    serial = CandidateBuilder(inputs)
    assert _table(parallel, pairs) == _table(serial, pairs)


class _FailsOnOnePool(CandidateBuilder):
    def candidates(self, role, group, num_gpus):
        if role == "critic" and num_gpus == 8:
            raise PlanError("critic cannot be priced on 8 GPUs")
        return super().candidates(role, group, num_gpus)


def test_an_error_in_a_pricing_process_reaches_the_caller():
    inputs = make_inputs("a100x64", "ppo", actor="qwen2.5-1.5b")
    with pytest.raises(PlanError, match="critic cannot be priced on 8 GPUs"):
        price_in_parallel(_FailsOnOnePool(inputs), _pairs(inputs), processes=2)


@pytest.mark.parametrize("actor,num_gpus,tp", [("qwen2.5-14b", 2, 1), ("qwen2.5-32b", 8, 4), ("qwen2.5-32b", 16, 2)])
def test_once_no_engine_is_kv_bound_more_memory_changes_no_time(actor, num_gpus, tp):
    """The rollout's memory levels stop at the first where the KV cache holds back no
    engine: every higher level must price the same (so it would be dominated)."""
    inputs = make_inputs("a100x64", "grpo", actor=actor, prompts=512, samples=5,
                         response=LengthDistribution("lognormal", mean=400, std=250, max_len=1024))
    model = inputs.models["rollout"]
    gpus = inputs.cluster.gpu_set(num_gpus, 0)
    stage = next(s for s in inputs.dataflow.stages_of("rollout") if s.kind.value == "generate")
    lengths = _arrival_order(stage.response.planning_lengths(stage.num_seqs))
    priced = []
    for util in ROLLOUT_UTILS:
        try:
            cost = generate(model, GenerationConfig(tp=tp, replicas=num_gpus // tp, gpu_memory_utilization=util),
                            gpus, lengths, stage.prompt_len)
        except PlanError:
            continue
        priced.append((util, cost.time_s, cost.info["kv_bound_engines"]))
    free = [i for i, (_, _, bound) in enumerate(priced) if bound == 0]
    assert free, "no memory level frees every engine: pick a case that reaches one"
    first = free[0]
    assert first > 0, "the cache binds at no level: pick a case where it does at the lowest"
    assert all(t == pytest.approx(priced[first][1], rel=1e-12) for _, t, _ in priced[first:])
    assert all(bound == 0 for _, _, bound in priced[first:])
    # below it the cache binds and costs time, so those levels are real choices
    assert all(t >= priced[first][1] for _, t, _ in priced[:first])
