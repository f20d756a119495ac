"""User-facing errors.

Every problem a user can fix (unknown name, malformed file, a layout that does not fit)
is raised as :class:`PlanError` with one line that names the problem and the fix. The CLI
prints that line and exits with code 2; nothing else is printed and no file is written.
"""


class PlanError(Exception):
    """A problem in the user's input, stated in one line with its fix."""

    exit_code = 2


def require(condition: bool, message: str) -> None:
    """Raise :class:`PlanError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise PlanError(message)
