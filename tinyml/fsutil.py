"""Atomic outputs: a stage writes into a temporary sibling and renames at the end,
so a failed run leaves no half-written directory behind."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_output_dir(target: Path, keep_existing: bool = True) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces `target`.

    With keep_existing, files already in `target` that the stage did not write
    are carried over (so `emit` into a `prepare` output keeps the reports).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            if keep_existing and target.is_dir():
                for item in target.iterdir():
                    if not (tmp / item.name).exists():
                        shutil.move(str(item), tmp / item.name)
            old = target.with_name(f".{target.name}.old")
            if old.exists():
                shutil.rmtree(old)
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
