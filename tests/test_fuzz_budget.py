"""firmware/fuzz/run_fuzz.sh's budgets: an execution budget stops the run at exactly that
many executions, and a malformed budget is refused with one error line."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tinyml.paths import firmware_dir

RUN_FUZZ = firmware_dir() / "fuzz" / "run_fuzz.sh"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_execution_budget_stops_the_run(tmp_path):
    done = subprocess.run(["nice", "sh", str(RUN_FUZZ), "--runs", "3000", "--seconds", "120", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    if "mini_fuzzer" in done.stdout:
        runs, edges = map(int, re.search(r"mini_fuzzer: (\d+) runs, (\d+) edges", done.stdout).groups())
        assert runs == 3000 and edges > 50
    else:  # libFuzzer
        assert "Done 3000 runs" in done.stderr


@pytest.mark.parametrize("args, message", [
    (["--runs", "ten"], "--runs wants a whole number, got 'ten'"),
    (["--seconds"], "--seconds needs a value"),
    (["--budget", "3"], "unknown option --budget"),
    (["5", "/tmp/x", "extra"], "too many arguments"),
])
def test_bad_budget_is_one_error_line(args, message):
    done = subprocess.run(["sh", str(RUN_FUZZ), *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"error: {message}")
