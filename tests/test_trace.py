"""trace.json: the Chrome Trace Event Format Perfetto opens, one process per pool and one
track per role; the validator accepts what we write and names what breaks the format."""

from __future__ import annotations

import copy
import json

import pytest

from executor.trace import CallRecord, TraceError, build_trace, trace_problems, validate_trace, write_trace

POOLS = [{"id": 0, "gpu": "a100-80gb", "num_gpus": 4, "roles": ["actor", "ref"]},
         {"id": 1, "gpu": "a100-80gb", "num_gpus": 4, "roles": ["rollout"]}]
RECORDS = [
    CallRecord("rollout.generate", "generate", ("rollout",), (1,), 0, 0.0, 2.5, {"num_seqs": 256}),
    CallRecord("ref.log_prob", "forward", ("ref",), (0,), 0, 2.5, 3.0, {"num_seqs": 256}),
    CallRecord("advantages", "compute", (), (), 0, 3.0, 3.001),
    CallRecord("actor.update", "train", ("actor",), (0,), 0, 3.001, 5.0),
    CallRecord("rollout.sync_weights", "sync", ("actor", "rollout"), (0, 1), 0, 5.0, 5.25),
]


def trace() -> dict:
    return build_trace(RECORDS, POOLS, memory={0: [[0.0, 10.0], [3.0, 40.5]], 1: [[0.0, 0.0]]}, metadata={"seed": 0})


def test_layout_one_process_per_pool_one_track_per_role():
    events = trace()["traceEvents"]
    validate_trace(trace())
    processes = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert processes == {0: "pool 0: 4 x a100-80gb", 1: "pool 1: 4 x a100-80gb", 2: "driver"}
    threads = {(e["pid"], e["args"]["name"]) for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert threads == {(0, "actor"), (0, "ref"), (1, "rollout"), (2, "driver")}
    slices = [e for e in events if e["ph"] == "X"]
    # the weight sync occupies both pools: one slice on each end's track
    assert sorted(e["name"] for e in slices) == sorted(
        ["rollout.generate", "ref.log_prob", "advantages", "actor.update", "rollout.sync_weights", "rollout.sync_weights"])
    gen = next(e for e in slices if e["name"] == "rollout.generate")
    assert (gen["ts"], gen["dur"], gen["pid"], gen["cat"]) == (0.0, 2.5e6, 1, "generate")
    assert gen["args"] == {"iteration": 0, "kind": "generate", "num_seqs": 256}
    assert next(e for e in slices if e["name"] == "advantages")["pid"] == 2
    counters = [e for e in events if e["ph"] == "C"]
    assert [(c["pid"], c["ts"], c["args"]["GiB"]) for c in counters] == [(0, 0.0, 10.0), (0, 3e6, 40.5), (1, 0.0, 0.0)]


def test_written_trace_is_json_that_validates(tmp_path):
    path = write_trace(trace(), tmp_path / "trace.json")
    data = json.loads(path.read_text())
    validate_trace(data)
    assert data["displayTimeUnit"] == "ms" and data["otherData"] == {"seed": 0}
    assert [p.name for p in tmp_path.iterdir()] == ["trace.json"]  # no temporary left behind


def broken(change) -> dict:
    data = copy.deepcopy(trace())
    change(data["traceEvents"])
    return data


def first_slice(events) -> dict:
    return next(e for e in events if e["ph"] == "X")


@pytest.mark.parametrize("change,problem", [
    (lambda ev: first_slice(ev).update(ph="Z"), "unknown phase"),
    (lambda ev: first_slice(ev).pop("dur"), "dur"),
    (lambda ev: first_slice(ev).update(ts=-1), "ts must be"),
    (lambda ev: first_slice(ev).update(pid="0"), "pid must be an integer"),
    (lambda ev: first_slice(ev).update(name=3), "name must be a string"),
    (lambda ev: first_slice(ev).update(args=[1]), "args must be an object"),
    (lambda ev: first_slice(ev).update(tid=9), "no thread_name"),
    (lambda ev: first_slice(ev).update(pid=7), "no process_name"),
    (lambda ev: ev.append({"name": "x", "ph": "M", "pid": 0, "tid": 0, "args": {}}), "unknown metadata"),
    (lambda ev: ev.append({"name": "thread_name", "ph": "M", "pid": 0, "tid": 5, "args": {}}), "args.name"),
    (lambda ev: ev.append({"name": "mem", "ph": "C", "pid": 0, "ts": 1, "args": {"GiB": "a lot"}}), "numeric args"),
    (lambda ev: ev.append({"name": "open", "ph": "B", "pid": 0, "tid": 1, "ts": 1}), "without an E"),
    (lambda ev: ev.append({"name": "close", "ph": "E", "pid": 0, "tid": 1, "ts": 1}), "no B before"),
    (lambda ev: ev.append("not an event"), "not an object"),
])
def test_validator_names_what_breaks_the_format(change, problem):
    data = broken(change)
    with pytest.raises(TraceError, match=problem):
        validate_trace(data)


def test_validator_needs_the_events_list():
    assert trace_problems({"events": []}) == ["the JSON object format needs a 'traceEvents' list"]
    assert trace_problems("trace") == ["a trace is a JSON object or array, got str"]
    assert trace_problems([{"name": "a", "ph": "i", "pid": 0, "ts": 0, "s": "g"}]) == []
