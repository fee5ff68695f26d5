"""README's "Measured here" table is what benchmarks/readme_figures.py makes of
the stored results: a figure edited by hand, or a result stored without
regenerating the table, fails here."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "readme_figures.py"


def _figures_module():
    spec = importlib.util.spec_from_file_location("readme_figures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("readme_figures", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_readme_table_is_generated_from_the_stored_results():
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_figure_edited_by_hand_is_caught():
    figures = _figures_module()
    readme = (ROOT / "README.md").read_text()
    table = readme.split(figures.BEGIN, 1)[1].split(figures.END, 1)[0]
    row = next(line for line in table.splitlines() if "`tinyml demo`" in line)
    edited = readme.replace(row, row.replace("98.89%", "99.99%", 1))
    assert edited != readme
    assert figures.render(edited) == readme  # the generated table puts the stored figure back


def test_every_row_names_its_stored_result():
    figures = _figures_module()
    for make in figures.ROWS:
        row = make()
        assert "benchmarks/results/" in row.script, make.__name__
