"""``--format table|json|yaml`` for every command with structured output.

``--json`` stays as the short form of ``--format json``. A command prints its tables for
``table`` and hands its data to :func:`emit` otherwise, so JSON and YAML carry the same
fields.
"""

from __future__ import annotations

import json
import sys

FORMATS = ("table", "json", "yaml")


def add_format_arguments(parser, json_alias: bool = True, default: str = "table") -> None:
    """Add ``--format`` (and ``--json`` as its alias) writing ``args.format``."""
    parser.add_argument("--format", choices=FORMATS, default=default,
                        help=f"output: a table for people, or json / yaml for programs (default {default})")
    if json_alias:
        parser.add_argument("--json", dest="format", action="store_const", const="json",
                            help="same as --format json")


def output_format(args) -> str | None:
    """``json`` or ``yaml`` when the user asked for structured output (``--json`` or
    ``--format``), else None (tables)."""
    if getattr(args, "json", False):
        return "json"
    fmt = getattr(args, "format", "table")
    return None if fmt == "table" else fmt


def emit(data, fmt: str, stream=None) -> None:
    """Print ``data`` (plain dicts, lists, numbers, strings) as JSON or YAML."""
    stream = stream or sys.stdout
    if fmt == "yaml":
        import yaml

        yaml.dump(_plain(data), stream, Dumper=_block_dumper(), sort_keys=False, allow_unicode=True)
    else:
        stream.write(json.dumps(data, indent=2) + "\n")


def _block_dumper():
    """A safe YAML dumper that writes multi-line strings (commands) as ``|`` blocks."""
    import yaml

    class BlockDumper(yaml.SafeDumper):
        pass

    def text(dumper, value):
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    BlockDumper.add_representer(str, text)
    return BlockDumper


def _plain(data):
    """Tuples as lists and numpy scalars as Python numbers, which ``yaml.safe_dump`` needs."""
    if isinstance(data, dict):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_plain(v) for v in data]
    if hasattr(data, "item") and callable(data.item):
        return data.item()
    return data


__all__ = ["FORMATS", "add_format_arguments", "output_format", "emit"]
