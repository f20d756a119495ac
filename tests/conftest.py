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
