"""Helpers shared by the tests."""

import pytest

from planner.errors import PlanError


def one_line_error(call, *args) -> str:
    """The message of the PlanError ``call(*args)`` raises, checked to be one line."""
    with pytest.raises(PlanError) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


def run_cli(argv, capsys) -> tuple[int, str, str]:
    """``plan`` in process: (exit code, stdout, stderr); argparse errors exit via
    SystemExit, as they do from the console script."""
    from planner.cli import main

    try:
        rc = main(list(argv))
    except SystemExit as exit_:
        rc = exit_.code
    out = capsys.readouterr()
    return rc, out.out, out.err
