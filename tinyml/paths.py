"""Where the project's non-Python trees (boards/, firmware/) live.

The package is installed editable from a checkout (`pip install -e .`), so the
trees sit beside the package. TINYML_HOME overrides the lookup.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    env = os.environ.get("TINYML_HOME")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parent
    for candidate in (here.parent, *here.parents):
        if (candidate / "boards").is_dir() and (candidate / "firmware").is_dir():
            return candidate
    raise FileNotFoundError(
        "cannot find the tinyml checkout (boards/ and firmware/): install with `pip install -e .` "
        "from the repository or set TINYML_HOME"
    )


def boards_dir() -> Path:
    return project_root() / "boards"


def firmware_dir() -> Path:
    return project_root() / "firmware"
