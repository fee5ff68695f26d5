"""Atomic outputs: a stage writes into a temporary sibling and renames at the end,
so a failed run leaves no half-written directory behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def normal_permissions(path: Path, directory: bool = False) -> None:
    """The mode a plain mkdir / open would have given (umask applied): mkdtemp and
    mkstemp create 0700 / 0600, which must not leak into the outputs users share."""
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


@contextmanager
def atomic_output_dir(target: Path, keep_existing: bool = True) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces `target`.

    With keep_existing, files already in `target` that the stage did not write
    are carried over (so `emit` into a `prepare` output keeps the reports).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    normal_permissions(tmp, directory=True)
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
