"""pyproject.toml lists its packages by hand (host/ installs as tinyml.host): every package
directory must be in the list, or a non-editable install silently lacks it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_directory_is_installed():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    found = set()
    for name, folder in setuptools["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            if "__pycache__" not in relative.parts:
                found.add(".".join([name, *relative.parts]))
    assert listed == found, f"listed but missing: {sorted(listed - found)}; not listed: {sorted(found - listed)}"
