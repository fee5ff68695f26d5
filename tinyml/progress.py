"""Progress lines: what a stage that takes more than a moment is doing.

Every stage that can take over ~2 s says so before it starts, as one line on
stderr: `[stage] what it is doing`. stdout keeps the command's result, so it
can be piped; `--quiet` turns the lines off for the command (the flag is process-wide
state: the CLI group gives the caller's setting back when a command ends, tinyml/cli.py).

The rule the CLI keeps (and tests check): a progress line always starts with
`[`, never with `error: `; when a command fails on bad input its `error:` line
is the only such line and the last one on stderr, and with `--quiet` it is the
only line at all. Arguments are checked before any progress line is printed.
"""

from __future__ import annotations

import re
import sys

# A progress line as `say` writes it: "[stage] text".
PROGRESS_LINE = re.compile(r"^\[[a-z0-9_ -]+\] \S")

_quiet = False


def set_quiet(quiet: bool) -> None:
    """Turn progress lines off (the CLI's --quiet) or back on, for the whole process."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


def say(stage: str, text: str) -> None:
    """One progress line on stderr, flushed at once (it may precede minutes of silence)."""
    if not _quiet:
        print(f"[{stage}] {text}", file=sys.stderr, flush=True)
