"""Workload and response-length distributions: determinism, bounds, parsing, validation."""

import json

import numpy as np
import pytest

from planner.errors import PlanError
from planner.workload import DEFAULT_RESPONSE, LengthDistribution, Workload

DISTRIBUTIONS = [
    LengthDistribution("fixed", 700, max_len=1024),
    LengthDistribution("normal", 600, 200, max_len=1024),
    LengthDistribution("lognormal", 400, 300, max_len=1024, min_len=16),
    LengthDistribution("empirical", 0, max_len=900, values=(10, 50, 50, 300, 1200, 2000)),
    DEFAULT_RESPONSE,
]


@pytest.mark.parametrize("dist", DISTRIBUTIONS, ids=lambda d: d.kind)
def test_planning_lengths_are_deterministic_bounded_and_centred(dist):
    first, again = dist.planning_lengths(4000), dist.planning_lengths(4000)
    assert np.array_equal(first, again)
    assert first.dtype.kind == "i" and len(first) == 4000
    assert first.min() >= dist.min_len and first.max() <= dist.max_len
    assert np.all(np.diff(first) >= 0)  # quantiles come out ascending
    assert first.mean() == pytest.approx(dist.expected, rel=0.01)


@pytest.mark.parametrize("dist", DISTRIBUTIONS, ids=lambda d: d.kind)
def test_sample_is_seeded_bounded_and_centred(dist):
    a = dist.sample(20000, np.random.default_rng(7))
    b = dist.sample(20000, np.random.default_rng(7))
    assert np.array_equal(a, b)
    assert a.min() >= dist.min_len and a.max() <= dist.max_len
    assert a.mean() == pytest.approx(dist.expected, rel=0.03)


def test_clipping_lowers_the_mean_and_piles_up_at_the_cap():
    dist = LengthDistribution("lognormal", 400, 300, max_len=512)
    assert dist.expected < 400
    lengths = dist.planning_lengths(1000)
    assert np.mean(lengths == 512) == pytest.approx(dist.truncated_fraction, abs=0.002)


def test_default_response_is_long_tailed_under_1024():
    lengths = DEFAULT_RESPONSE.planning_lengths(1000)
    assert DEFAULT_RESPONSE.max_len == 1024
    assert np.percentile(lengths, 99) > 2.5 * np.median(lengths)  # a long right tail
    assert 0.005 < DEFAULT_RESPONSE.truncated_fraction < 0.05


def test_empirical_quantiles_come_from_the_observations():
    dist = LengthDistribution("empirical", 0, max_len=100, values=(30, 10, 20, 500))
    assert dist.planning_lengths(4).tolist() == [10, 20, 30, 100]  # 500 is cut at max_len
    assert dist.mean == pytest.approx(140) and dist.expected == pytest.approx(40)


@pytest.mark.parametrize("spec, kind, mean, std, max_len", [
    ("fixed:1024", "fixed", 1024, 0, 1024),
    ("normal:600,200,max=1000", "normal", 600, 200, 1000),
    ("lognormal:400,300, max=2048", "lognormal", 400, 300, 2048),
    ("LogNormal: 400 , 300", "lognormal", 400, 300, None),
])
def test_parse_spec_forms(spec, kind, mean, std, max_len):
    dist = LengthDistribution.parse(spec)
    assert (dist.kind, dist.mean, dist.std) == (kind, mean, std)
    if max_len is not None:
        assert dist.max_len == max_len
    else:  # no cap given: the 99.9th percentile, so about 1 in 1000 is truncated
        assert dist.truncated_fraction == pytest.approx(0.001, abs=2e-4)


def test_parse_takes_max_len_argument_and_min_option():
    dist = LengthDistribution.parse("normal:600,200,min=64", max_len=900)
    assert (dist.max_len, dist.min_len) == (900, 64)
    assert dist.planning_lengths(100).min() >= 64


def test_parse_file_plain_and_jsonl(tmp_path):
    plain = tmp_path / "lengths.txt"
    plain.write_text("120\n\n340\n90\n")
    dist = LengthDistribution.parse(f"file:{plain}")
    assert dist.kind == "empirical" and dist.values == (120, 340, 90) and dist.max_len == 340
    jsonl = tmp_path / "rollouts.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in [{"response_length": 200}, {"length": 800, "x": 1}]))
    dist = LengthDistribution.parse(f"file:{jsonl}", max_len=512)
    assert dist.values == (200, 800) and dist.planning_lengths(2).tolist() == [200, 512]


@pytest.mark.parametrize("spec", [
    "1024", "uniform:1,2", "fixed:", "fixed:10,20", "normal:600", "normal:600,0", "lognormal:-5,3",
    "normal:a,b", "fixed:1024,max=512", "normal:600,200,max=0", "normal:600,200,min=900,max=800",
    "fixed:100.5", "file:/no/such/file.txt",
])
def test_parse_rejects_bad_specs_in_one_line(spec):
    with pytest.raises(PlanError) as err:
        LengthDistribution.parse(spec)
    assert "\n" not in str(err.value) and str(err.value)


def test_parse_rejects_conflicting_caps():
    with pytest.raises(PlanError, match="given twice"):
        LengthDistribution.parse("normal:600,200,max=1000", max_len=2000)


@pytest.mark.parametrize("content", ["12\nabc\n", '{"tokens": 5}\n', "0\n", "", '{"length": 2.5}\n'])
def test_parse_rejects_bad_files(tmp_path, content):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(PlanError):
        LengthDistribution.parse(f"file:{path}")


def test_length_distribution_round_trips():
    for dist in DISTRIBUTIONS:
        assert LengthDistribution.from_dict(json.loads(json.dumps(dist.to_dict()))) == dist
    with pytest.raises(PlanError, match="unknown response length field"):
        LengthDistribution.from_dict({"kind": "fixed", "mean": 5, "colour": "red"})


def test_workload_defaults_follow_verl_grpo_example():
    w = Workload()
    assert (w.prompts, w.samples_per_prompt, w.prompt_len, w.mini_batches) == (1024, 5, 512, 4)
    assert w.num_samples == 5120 and w.num_generated == 5120
    assert w.max_seq_len == 512 + 1024


def test_workload_oversample_rounds_up_to_whole_prompts():
    w = Workload(prompts=100, mini_batches=4, oversample=1.255)
    assert w.generated_prompts == 126 and w.num_generated == 126 * 5
    assert Workload(oversample=3).num_generated == 3 * Workload().num_samples


@pytest.mark.parametrize("kwargs, words", [
    ({"prompts": 0}, "prompts"),
    ({"samples_per_prompt": -1}, "samples_per_prompt"),
    ({"prompt_len": 1.5}, "prompt_len"),
    ({"ppo_epochs": 0}, "ppo_epochs"),
    ({"mini_batches": 3}, "does not divide prompts=1024"),
    ({"oversample": 0.5}, "oversample"),
    ({"oversample": float("nan")}, "oversample"),
    ({"response": "fixed:100"}, "LengthDistribution"),
])
def test_workload_validation_names_the_problem(kwargs, words):
    with pytest.raises(PlanError, match=words) as err:
        Workload(**kwargs)
    assert "\n" not in str(err.value)


def test_length_distribution_validation():
    with pytest.raises(PlanError, match="below min_len"):
        LengthDistribution("normal", 600, 100, max_len=10, min_len=20)
    with pytest.raises(PlanError, match="unknown length distribution"):
        LengthDistribution("zipf", 600)
    with pytest.raises(PlanError, match="at least one"):
        LengthDistribution("empirical", 0)


def test_workload_round_trips_and_rejects_unknown_keys():
    w = Workload(prompts=256, samples_per_prompt=8, response=LengthDistribution.parse("normal:900,300,max=2048"),
                 ppo_epochs=2, mini_batches=2, oversample=2.0)
    assert Workload.from_dict(json.loads(json.dumps(w.to_dict()))) == w
    with pytest.raises(PlanError, match="unknown workload field"):
        Workload.from_dict({"prompts": 8, "batch": 3})
