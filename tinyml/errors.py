"""The one exception type a stage raises for bad input.

The CLI prints its message as one line (`error: ...`) and exits with its code;
anything else escaping a stage is a bug and keeps its traceback.
"""

from __future__ import annotations


class TinymlError(Exception):
    """Bad input or an unmet requirement, reported to the user in one line."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(" ".join(message.split()))
        if exit_code is not None:
            self.exit_code = exit_code
