"""Checkpoints of a run: trainer shards, data position, driver RNG; the latest complete one.

``<out>/checkpoints/step_<N>/`` holds one folder per trainable role (its ranks' model and
optimizer shards and RNG states, written by ``TrainerGroup.save_checkpoint``) and
``driver.json`` (steps done, the prompt stream's position, the driver's RNG seed and the
algorithm's state on the driver, such as Safe RLHF's lambda). The ``driver.json`` is
written last and atomically, so a folder without it is an interrupted save and is
ignored: a run killed while saving resumes from the checkpoint before.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

DRIVER_FILE = "driver.json"


def checkpoint_dir(out_dir: Path, steps_done: int) -> Path:
    return Path(out_dir) / "checkpoints" / f"step_{steps_done:06d}"


def save(out_dir: Path, steps_done: int, trainers: dict, driver_state: dict) -> Path:
    """Save every trainable role, then ``driver.json``; returns the checkpoint folder."""
    folder = checkpoint_dir(out_dir, steps_done)
    folder.mkdir(parents=True, exist_ok=True)
    pending = [group.save_checkpoint(str(folder / role)) for role, group in trainers.items()]
    for p in pending:
        p.result()
    tmp = folder / f".{DRIVER_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"steps_done": steps_done, **driver_state}, indent=2))
    tmp.replace(folder / DRIVER_FILE)
    return folder


def latest(out_dir: Path) -> tuple[Path, dict] | None:
    """The newest complete checkpoint and its driver state, or None."""
    root = Path(out_dir) / "checkpoints"
    if not root.is_dir():
        return None
    for folder in sorted(root.glob("step_*"), reverse=True):
        marker = folder / DRIVER_FILE
        if marker.is_file():
            return folder, json.loads(marker.read_text())
    return None


def load(folder: Path, trainers: dict) -> None:
    pending = [group.load_checkpoint(str(Path(folder) / role)) for role, group in trainers.items()]
    for p in pending:
        p.result()
