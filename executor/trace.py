"""Stage calls as a Chrome trace (the Trace Event Format that Perfetto and chrome://tracing open).

Both backends describe what ran as :class:`CallRecord`s (job, roles, pools, iteration,
start, end, arguments); :func:`build_trace` turns them into trace events laid out as a
person reads a placement:

- one *process* per GPU pool (``pid`` = pool id, named ``pool 0: 8 x a100-80gb``), plus
  one ``driver`` process for driver-side stages (rule rewards, advantages);
- one *thread* (track) per role of the pool (``tid`` = 1 + the role's index in the pool);
- one complete (``"X"``) slice per call and track, timestamps in microseconds, with the
  call's arguments; a call occupying two pools (the weight sync) shows on both;
- optional counter (``"C"``) events: memory per GPU of each pool over time.

:func:`validate_trace` checks a trace against the format (field types, phase letters,
metadata) and against this layout (every slice's process and track are named).
Format: "Trace Event Format", Google, https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

US = 1e6
"""Trace timestamps are microseconds."""
PHASES = frozenset("BEXiICMbensftPONDR()")
"""Every phase letter of the format (duration, complete, instant, counter, metadata, async,
flow, sample, object, mark, context)."""
METADATA_NAMES = frozenset({"process_name", "process_labels", "process_sort_index", "thread_name", "thread_sort_index"})
DRIVER_ROLE = "driver"


@dataclass(frozen=True)
class CallRecord:
    """One stage call as it ran (or was simulated): what both backends report."""

    job: str
    """Stage name as in the dataflow (``rollout.generate``) or ``<role>.sync_weights``."""
    kind: str
    """generate | forward | train | rule_reward | compute | sync."""
    roles: tuple[str, ...]
    """GPU roles the call occupies (empty on the driver)."""
    pools: tuple[int, ...]
    iteration: int
    start_s: float
    end_s: float
    args: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"job": self.job, "roles": list(self.roles), "kind": self.kind, "pools": list(self.pools),
                "iteration": self.iteration, "start_s": self.start_s, "end_s": self.end_s, "args": dict(self.args)}


def _pool_label(pool: dict) -> str:
    return f"pool {pool['id']}: {pool['num_gpus']} x {pool['gpu']}"


def build_trace(records: list[CallRecord], pools: list[dict], memory: dict[int, list] | None = None,
                metadata: dict | None = None) -> dict:
    """The trace of ``records`` on ``pools`` (the plan's pool list: id, gpu, num_gpus, roles).

    ``memory``: pool id -> ``[[t_s, gib], ...]``, drawn as a counter track per pool.
    """
    driver_pid = max((p["id"] for p in pools), default=-1) + 1
    events: list[dict] = []
    tid: dict[tuple[int, str], int] = {}
    for sort, pool in enumerate(pools):
        pid = pool["id"]
        events.append(_meta("process_name", pid, 0, {"name": _pool_label(pool)}))
        events.append(_meta("process_sort_index", pid, 0, {"sort_index": sort}))
        for i, role in enumerate(pool["roles"]):
            tid[(pid, role)] = i + 1
            events.append(_meta("thread_name", pid, i + 1, {"name": role}))
    events.append(_meta("process_name", driver_pid, 0, {"name": DRIVER_ROLE}))
    events.append(_meta("process_sort_index", driver_pid, 0, {"sort_index": len(pools)}))
    events.append(_meta("thread_name", driver_pid, 1, {"name": DRIVER_ROLE}))
    pool_of_role = {role: pool["id"] for pool in pools for role in pool["roles"]}
    for rec in records:
        args = {"iteration": rec.iteration, "kind": rec.kind, **rec.args}
        tracks = [(pool_of_role[r], tid[(pool_of_role[r], r)]) for r in rec.roles] or [(driver_pid, 1)]
        for pid, t in tracks:
            events.append({"name": rec.job, "cat": rec.kind, "ph": "X", "pid": pid, "tid": t,
                           "ts": rec.start_s * US, "dur": max(0.0, rec.end_s - rec.start_s) * US, "args": args})
    for pid, points in (memory or {}).items():
        for t_s, gib in points:
            events.append({"name": "memory per GPU (GiB)", "ph": "C", "pid": pid, "tid": 0, "ts": t_s * US,
                           "args": {"GiB": round(float(gib), 4)}})
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": dict(metadata or {})}


def _meta(name: str, pid: int, tid: int, args: dict) -> dict:
    return {"name": name, "ph": "M", "pid": pid, "tid": tid, "args": args}


def write_trace(trace: dict, path: str | Path) -> Path:
    """Write ``trace`` to ``path`` atomically (a temporary file renamed into place)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(trace, separators=(",", ":")))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class TraceError(ValueError):
    """A trace that breaks the Trace Event Format or rlplan's track layout."""


def validate_trace(data) -> None:
    """Raise :class:`TraceError` naming the first problems of ``data`` (a parsed trace)."""
    problems = trace_problems(data)
    if problems:
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        raise TraceError("; ".join(problems[:5]) + more)


def trace_problems(data) -> list[str]:
    """Every problem found, as text (empty when the trace is valid)."""
    if isinstance(data, dict):
        events = data.get("traceEvents")
        if not isinstance(events, list):
            return ["the JSON object format needs a 'traceEvents' list"]
        if "displayTimeUnit" in data and data["displayTimeUnit"] not in ("ms", "ns"):
            return [f"displayTimeUnit must be 'ms' or 'ns', got {data['displayTimeUnit']!r}"]
    elif isinstance(data, list):
        events = data
    else:
        return [f"a trace is a JSON object or array, got {type(data).__name__}"]
    problems: list[str] = []
    for i, ev in enumerate(events):
        problems.extend(f"event {i}: {p}" for p in _event_problems(ev))
    if not problems:
        problems.extend(_layout_problems(events))
    return problems


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _event_problems(ev) -> list[str]:
    if not isinstance(ev, dict):
        return [f"not an object ({type(ev).__name__})"]
    ph = ev.get("ph")
    if not isinstance(ph, str) or ph not in PHASES:
        return [f"unknown phase {ph!r}"]
    out = []
    if not isinstance(ev.get("name"), str) and ph != "E":
        out.append("name must be a string")
    for key in ("pid", "tid"):
        if key in ev and not _is_int(ev[key]):
            out.append(f"{key} must be an integer")
    if ph in "BEXiIM" and not _is_int(ev.get("pid")):
        out.append(f"phase {ph} needs an integer pid")
    if ph in "BEX" and not _is_int(ev.get("tid")):
        out.append(f"phase {ph} needs an integer tid")
    if ph != "M" and not (_is_number(ev.get("ts")) and ev["ts"] >= 0):
        out.append("ts must be a non-negative number of microseconds")
    if ph == "X" and not (_is_number(ev.get("dur")) and ev["dur"] >= 0):
        out.append("a complete event needs a non-negative dur")
    if "args" in ev and not isinstance(ev["args"], dict):
        out.append("args must be an object")
    if ph == "C" and not (isinstance(ev.get("args"), dict) and ev["args"]
                          and all(_is_number(v) for v in ev["args"].values())):
        out.append("a counter needs numeric args")
    if ph == "M":
        out.extend(_metadata_problems(ev))
    if ph in "iI" and ev.get("s", "t") not in ("g", "p", "t"):
        out.append("an instant event's scope s must be g, p or t")
    return out


def _metadata_problems(ev: dict) -> list[str]:
    name, args = ev.get("name"), ev.get("args")
    if name not in METADATA_NAMES:
        return [f"unknown metadata event {name!r}"]
    if not isinstance(args, dict):
        return ["metadata needs args"]
    if name.endswith("_name") and not isinstance(args.get("name"), str):
        return [f"{name} needs args.name (a string)"]
    if name.endswith("_sort_index") and not _is_int(args.get("sort_index")):
        return [f"{name} needs an integer args.sort_index"]
    if name == "thread_name" and not _is_int(ev.get("tid")):
        return ["thread_name needs an integer tid"]
    return []


def _layout_problems(events: list[dict]) -> list[str]:
    """rlplan's layout: every slice's process and track carry a name; B/E pairs balance."""
    processes = {e["pid"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    threads = {(e["pid"], e["tid"]) for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    out = []
    depth: dict[tuple, int] = {}
    for e in events:
        if e["ph"] in "BEX":
            if e["pid"] not in processes:
                out.append(f"slice {e.get('name')!r} is in process {e['pid']}, which has no process_name")
            if (e["pid"], e["tid"]) not in threads:
                out.append(f"slice {e.get('name')!r} is on track {e['tid']} of process {e['pid']}, which has no thread_name")
        if e["ph"] in "BE":
            key = (e["pid"], e["tid"])
            depth[key] = depth.get(key, 0) + (1 if e["ph"] == "B" else -1)
            if depth[key] < 0:
                out.append(f"an E event on track {key} has no B before it")
    out.extend(f"track {k} has {v} B events without an E" for k, v in depth.items() if v > 0)
    return out
