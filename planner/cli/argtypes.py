"""argparse value types shared by the commands: a bad value is one clear line."""

from __future__ import annotations

import argparse


def _number(text: str, kind, ok, rule: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {rule}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def positive_float(text: str) -> float:
    return _number(text, float, lambda v: v > 0, "positive")


def fraction(text: str) -> float:
    return _number(text, float, lambda v: 0 < v <= 1, "in (0, 1]")


def role_paths(items: list[str], what: str = "PATH") -> dict[str, str]:
    """``ROLE=PATH`` flags (``--model actor=./m``) as a dict; a malformed one is one clear line."""
    from planner.errors import require

    paths = {}
    for item in items:
        role, sep, path = item.partition("=")
        require(bool(sep) and bool(role.strip()) and bool(path.strip()),
                f"--model {item!r}: write ROLE={what}, e.g. actor=./my-model")
        paths[role.strip()] = path.strip()
    return paths
