"""C99 literal syntax shared by the files tinyml writes: the firmware artifacts
(tinyml/artifacts.py) and the compiled model (tinyml/compiler/cwriter.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def c_string(text: str) -> str:
    """A C string literal: backslashes and double quotes escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def c_dims(shape: Iterable[int]) -> str:
    """A brace initializer of integers, e.g. {1, 8, 8, 1}."""
    return "{" + ", ".join(str(int(d)) for d in shape) + "}"


def c_initializer_rows(items: Sequence[str], per_line: int, indent: str = "    ") -> str:
    """The body of an array initializer: `per_line` items a line, each line indented and ending
    with a comma (C99 allows the trailing one), lines joined by newlines."""
    return "\n".join(indent + ", ".join(items[i:i + per_line]) + "," for i in range(0, len(items), per_line))
