"""Benchmarks build on the package, never on the tests: the shared fixtures
and model builders live in tinyml.testing (tests -> tinyml.testing <- benchmarks),
so a test can change without breaking a benchmark it never runs."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))
# Every module name the tests folder provides: its .py files and its packages.
TEST_MODULES = {p.stem for p in (ROOT / "tests").glob("*.py")} | {
    p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and (p / "__init__.py").exists()} | {"tests"}


def _problems(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"imports {a.name}" for a in node.names if a.name.split(".")[0] in TEST_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in TEST_MODULES:
                found.append(f"imports from {node.module}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                "insert", "append", "extend") and ast.unparse(node.func.value) == "sys.path":
            if "tests" in ast.unparse(node):
                found.append(f"puts tests/ on sys.path: {ast.unparse(node)}")
    return found


def test_no_benchmark_imports_a_test_module_or_puts_tests_on_sys_path():
    assert BENCHMARKS
    problems = {p.name: _problems(p.read_text()) for p in BENCHMARKS}
    assert {name: found for name, found in problems.items() if found} == {}


def test_the_check_sees_what_it_forbids():
    assert _problems('import sys\nsys.path.insert(0, str(ROOT / "tests"))\n')
    assert _problems("from firmware_fixtures.boards import running_board\n")
    assert _problems("from conftest import _tiny_keras_model\n")
    assert _problems("import test_mlperf\n")
    assert not _problems("from tinyml.testing.fixture_model import fixture_outputs\n")
