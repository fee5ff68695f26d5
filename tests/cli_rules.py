"""The stderr rule of the CLI, as the tests check it (see tinyml/progress.py):

on bad input the exit code is non-zero, the last line on stderr is the one and only
`error: ...` line, and every line before it is a progress line (`[stage] ...`). An
error in the arguments comes before any progress, so it is the only line; so is any
error under `--quiet`."""

from __future__ import annotations

import subprocess

from tinyml.progress import PROGRESS_LINE


def assert_bad_input(result: subprocess.CompletedProcess, message: str, only_line: bool = False) -> str:
    """Checks the rule and returns the error line; only_line: nothing else may be on stderr."""
    assert result.returncode != 0, result
    lines = result.stderr.splitlines()
    assert lines, "nothing on stderr"
    error = lines[-1]
    assert error.startswith("error: ") and message in error, result.stderr
    assert not any(line.startswith("error:") for line in lines[:-1]), result.stderr
    if only_line:
        assert len(lines) == 1, result.stderr
    else:
        assert all(PROGRESS_LINE.match(line) for line in lines[:-1]), result.stderr
    return error
