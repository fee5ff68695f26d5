"""Outputs get the permissions a plain mkdir / open gives (the umask), not the
0700 / 0600 of the temporary directories and files they are written through."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from tinyml.fsutil import atomic_output_dir, normal_permissions


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_output_dir_has_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_output_dir(tmp_path / "out") as tmp:
            (tmp / "model.tflite").write_bytes(b"x")
        assert _mode(tmp_path / "out") == 0o755
        assert _mode(tmp_path / "out" / "model.tflite") == 0o644
        os.umask(0o027)
        with atomic_output_dir(tmp_path / "group") as tmp:
            pass
        assert _mode(tmp_path / "group") == 0o750
    finally:
        os.umask(old)


def test_a_file_written_through_mkstemp_gets_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        fd, name = tempfile.mkstemp(dir=tmp_path)
        os.close(fd)
        assert _mode(Path(name)) == 0o600
        normal_permissions(Path(name))
        assert _mode(Path(name)) == 0o644
    finally:
        os.umask(old)
