"""`tinyml bench --runtime micropython` and `tinyml flash --runtime micropython` against real
MicroPython (the WebAssembly build behind the pty bridge): byte agreement with tflite-micro,
the JSONL resume, faults on the line and a soft reset mid-run, and the one-line errors."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from micropython_fixtures import prepare_digits, write_model_dir
from tinyml.cli import cli
from tinyml.errors import TinymlError
from tinyml.host.micropython import MicroPythonLink, SoftResetTransport, flash_micropython, run_micropython_bench
from tinyml.host.micropython_wasm import bridge_available, start_wasm_board
from tinyml.host.transport import FaultPlan, FaultyTransport, open_port
from tinyml.micropython.py_module import compile_micropython_py

pytestmark = pytest.mark.skipif(bridge_available() is not None, reason=str(bridge_available()))


@pytest.fixture(scope="module")
def tiny(tiny_models, tmp_path_factory):
    base = tmp_path_factory.mktemp("mp_bench")
    compile_micropython_py(tiny_models["int8"], base / "module", "model")
    return {"module": base / "module", "model_dir": write_model_dir(tiny_models["int8"], base / "model", 60)}


@pytest.fixture(scope="module")
def board(tiny):
    with start_wasm_board() as running:
        flash_micropython(running.port, tiny["module"], progress=False)
        yield running


def _log_indices(path):
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [r["index"] for r in lines if "index" in r]


def test_bench_agrees_byte_for_byte_and_resumes(board, tiny, tmp_path):
    first = run_micropython_bench(board.port, tiny["model_dir"], tmp_path / "a", samples=12, progress=False)
    report = first.report
    assert report["samples"] == 12 and report["agreement"] == 1.0
    assert report["backend"] == "micropython-py" and report["latency_unit"] == "us"
    assert report["latency_us"]["min"] > 0
    assert 0.0 < report["on_device_accuracy"] < 1.0  # labels are wrong for every third sample
    for name in ("report.json", "report.md"):
        assert (tmp_path / "a" / name).is_file()
    # The same call into the same folder resumes (the log's model hash checked).
    resumed = run_micropython_bench(board.port, tiny["model_dir"], tmp_path / "a", samples=30, progress=False)
    assert resumed.report["resumed_samples"] == 12 and resumed.report["agreement"] == 1.0
    assert sorted(_log_indices(first.log)) == list(range(30))


def test_flipped_and_dropped_bytes_lose_and_double_count_nothing(board, tiny, tmp_path):
    faulty = FaultyTransport(open_port(board.port), FaultPlan(drop=3e-4, flip=3e-4, duplicate=3e-4, seed=4))
    try:
        result = run_micropython_bench(board.port, tiny["model_dir"], tmp_path, samples=60, progress=False,
                                       transport=faulty, chunk_seconds=0.5)
    finally:
        faulty.close()
    assert faulty.faults.dropped + faulty.faults.flipped + faulty.faults.duplicated > 0
    assert result.report["agreement"] == 1.0 and result.retries > 0
    assert sorted(_log_indices(result.log)) == list(range(60))


def test_soft_reset_mid_run_loses_and_double_counts_nothing(board, tiny, tmp_path):
    resetting = SoftResetTransport(open_port(board.port), after_bytes=1500)
    try:
        result = run_micropython_bench(board.port, tiny["model_dir"], tmp_path, samples=40, progress=False,
                                       transport=resetting, chunk_seconds=0.5)
    finally:
        resetting.close()
    assert resetting.resets_injected == 1 and result.report["link"]["boots_seen"] >= 1
    assert result.report["agreement"] == 1.0
    assert sorted(_log_indices(result.log)) == list(range(40))


def test_board_without_the_module_or_with_another_model(board, tiny, tiny_models, tmp_path):
    with pytest.raises(TinymlError, match="has no module 'absent'"):
        run_micropython_bench(board.port, tiny["model_dir"], tmp_path / "a", module="absent", progress=False)
    other = write_model_dir(tiny_models["int8"], tmp_path / "other", 4)
    manifest = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**manifest, "model_sha256": "0123" * 16}))
    with pytest.raises(TinymlError, match="runs model .* but .* holds"):
        run_micropython_bench(board.port, other, tmp_path / "b", progress=False)


def test_stuck_repl_is_one_line(tiny, tmp_path):
    master, slave = os.openpty()  # a port nobody answers on
    try:
        with pytest.raises(TinymlError, match="no MicroPython raw REPL"):
            # 0.5 + 1 + 2 s of waiting for the raw REPL instead of 5 + 10 + 20: the same refusal.
            run_micropython_bench(os.ttyname(slave), tiny["model_dir"], tmp_path, progress=False,
                                  repl_timeout_s=0.5)
    finally:
        os.close(master)
        os.close(slave)


def test_cli_flash_and_bench(board, tiny, tmp_path):
    runner = CliRunner()
    flashed = runner.invoke(cli, ["flash", "--runtime", "micropython", "--port", board.port, "--model-dir",
                                  str(tiny["module"])])
    assert flashed.exit_code == 0, flashed.output
    assert "imports model" in flashed.output
    benched = runner.invoke(cli, ["bench", "--runtime", "micropython", "--port", board.port, "--model-dir",
                                  str(tiny["model_dir"]), "--samples", "5", "--out", str(tmp_path), "--quiet"])
    assert benched.exit_code == 0, benched.output
    assert "byte agreement 100.00%" in benched.output


@pytest.mark.slow
def test_digits_student_agrees_over_the_raw_repl(tmp_path):
    digits = prepare_digits(tmp_path / "digits")
    compile_micropython_py(digits / "model.tflite", tmp_path / "module", "model")
    with start_wasm_board() as running:
        flash_micropython(running.port, tmp_path / "module", progress=False)
        result = run_micropython_bench(running.port, digits, tmp_path / "bench", samples=8, progress=False)
    assert result.report["agreement"] == 1.0 and result.report["samples"] == 8


def test_flash_that_cannot_write_the_module_is_one_line(tiny):
    from mpremote.transport_serial import SerialTransport

    with start_wasm_board() as running:
        transport = SerialTransport(running.port)
        transport.enter_raw_repl(soft_reset=False)
        # a directory where the module file should go: the copy fails as on a board without a filesystem
        transport.exec("import os\nos.mkdir('/home/ro')\nos.chdir('/home/ro')\nos.mkdir('model.py')")
        transport.close()
        with pytest.raises(TinymlError, match="cannot write model.py on the board"):
            flash_micropython(running.port, tiny["module"], progress=False)
