"""The engine sources a compiled model links: each kernel's entry file and, transitively, the
file of every engine header it includes (`tm_conv_2d.c` includes `tm_conv_2d_im2col.h`, so it
needs `tm_conv_2d_im2col.c`, which needs `tm_support_dot_s8.c`, ...).

The `#include` lines of firmware/engine are the one list: a new algorithm file is linked as
soon as its dispatcher includes its header, with no table here to keep in step
(tests/engine/test_interface.py links every closure and checks no tm_* symbol is left undefined).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from ..errors import TinymlError
from ..paths import firmware_dir

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)\.h"', re.M)


def engine_dir() -> Path:
    try:
        return firmware_dir() / "engine"
    except FileNotFoundError as exc:   # the engine's sources live in the checkout, beside the package
        raise TinymlError(str(exc)) from exc


@lru_cache(maxsize=None)
def _includes(path: Path, stamp: float) -> tuple[str, ...]:
    """Stems of the quoted headers a file includes (stamp: its mtime, so an edited file is read again)."""
    del stamp
    return tuple(_INCLUDE.findall(path.read_text()))


def source_closure(entries: list[str] | set[str], directory: Path | None = None) -> list[str]:
    """Sorted .c file names in `directory` (default firmware/engine) that the entry .c files need:
    the entries, and for every engine header any of them includes (through headers too) whose
    .c exists, that .c and its own closure."""
    directory = engine_dir() if directory is None else Path(directory)
    needed: set[str] = set()
    seen_headers: set[str] = set()
    pending = [Path(name).stem for name in entries]
    for stem in pending:
        source = directory / f"{stem}.c"
        if not source.is_file():
            raise TinymlError(f"engine source {source} not found (set TINYML_HOME to the tinyml checkout)")
        needed.add(source.name)
    stack = [directory / name for name in sorted(needed)]
    while stack:
        path = stack.pop()
        for stem in _includes(path, path.stat().st_mtime):
            header = directory / f"{stem}.h"
            if stem in seen_headers or not header.is_file():
                continue
            seen_headers.add(stem)
            stack.append(header)
            source = directory / f"{stem}.c"
            if source.is_file() and source.name not in needed:
                needed.add(source.name)
                stack.append(source)
    return sorted(needed)
