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


def role_paths(items: list[str], example: str = "actor=./my-model", flag: str = "--model",
               roles: list[str] | None = None) -> dict[str, str]:
    """``ROLE=PATH`` flags (``--model actor=./m``) as a dict; a malformed one, or a role not in
    ``roles`` when given, is one clear line."""
    from planner.errors import require

    paths = {}
    for item in items:
        role, sep, path = item.partition("=")
        role = role.strip()
        require(bool(sep) and bool(role) and bool(path.strip()), f"{flag} {item!r}: use ROLE=PATH, e.g. {example}")
        require(roles is None or role in roles,
                f"{flag} {item!r}: the plan has no role {role!r}; its roles are {', '.join(roles or [])}")
        paths[role] = path.strip()
    return paths
