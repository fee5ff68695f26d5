"""`tinyml compile --target micropython-*`: dispatch to the three MicroPython forms."""

from __future__ import annotations

from pathlib import Path

from ..errors import TinymlError
from .api import MODULE_TARGET, NATMOD_TARGET, PY_TARGET


def compile_micropython(model: Path, out_dir: Path, target: str, arch: str | None, name: str,
                        optimize: str = "speed", board: str | None = None) -> str:
    """Builds the form; returns the one-line summary the CLI prints."""
    if target == PY_TARGET:
        if arch is not None:
            raise TinymlError("--arch applies to micropython-module and micropython-natmod, not micropython-py")
        from .py_module import compile_micropython_py

        r = compile_micropython_py(model, out_dir, name)
        return (f"compiled {name}.py (pure Python, MicroPython and CPython): {r.macs:,} MACs, weights "
                f"{r.weight_bytes:,} B, arena {r.arena_bytes:,} B, module {r.module_bytes:,} B -> {r.out_dir}")
    if target in (MODULE_TARGET, NATMOD_TARGET):
        from .c_module import compile_micropython_c

        return compile_micropython_c(model, out_dir, target, arch, name, optimize, board)
    raise TinymlError(f"unknown MicroPython target '{target}'")
