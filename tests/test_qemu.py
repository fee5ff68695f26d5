"""Boots a real compiled model on the emulated STM32F405 (QEMU netduinoplus2),
benches a handful of samples over its pty and checks that every output byte
equals host TFLite-Micro's."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from tinyml.boards import load_board
from tinyml.compiler import compile_tflite   # the project's own compiler: a break must fail this test, not skip it
from tinyml.host.build import build_firmware
from tinyml.errors import TinymlError
from tinyml.host.emulator import find_running_emulator, resolve_port, start_emulator
from tinyml.host.harness import run_bench

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                       reason="needs qemu-system-arm and arm-none-eabi-gcc"),
]

SAMPLES = 12


def _model_dir_for(tflite, directory):
    """manifest.json and test_vectors.npz as `tinyml prepare` writes them, outputs from tflite-micro."""
    from tflite_micro.python.tflite_micro import runtime

    data = tflite.read_bytes()
    interpreter = runtime.Interpreter.from_bytes(data)
    inputs = np.random.default_rng(3).integers(-128, 128, (SAMPLES, 8, 8, 1), dtype=np.int8)
    outputs = []
    for x in inputs:
        interpreter.set_input(x[None], 0)
        interpreter.invoke()
        outputs.append(interpreter.get_output(0).reshape(-1).copy())
    outputs = np.stack(outputs).astype(np.int8)
    labels = outputs.argmax(axis=1).astype(np.int64)
    labels[::3] = (labels[::3] + 1) % 10
    directory.mkdir()
    np.savez(directory / "test_vectors.npz", inputs=inputs, outputs=outputs, labels=labels,
             label_names=np.array([str(i) for i in range(10)]))
    (directory / "manifest.json").write_text(json.dumps({"model_sha256": hashlib.sha256(data).hexdigest(),
                                                         "labels": [str(i) for i in range(10)]}))
    return directory


def test_emulated_board_agrees_with_tflite_micro(tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYML_STATE_DIR", str(tmp_path / "state"))
    board = load_board("stm32f405")
    compile_tflite(tiny_models["int8"], tmp_path / "compiled", target=board.compile_target)
    image = build_firmware(board, tmp_path / "compiled", tmp_path / "build")
    assert image.path.suffix == ".elf" and 0 < image.flash_bytes < board.flash_bytes
    model_dir = _model_dir_for(tiny_models["int8"], tmp_path / "model")

    emulator = start_emulator(board, image)
    try:
        found = find_running_emulator(board)
        assert found is not None and (found.pid, found.port) == (emulator.pid, emulator.port)
        assert resolve_port(None, board) == emulator.port  # what `tinyml bench --board stm32f405` does
        result = run_bench(found.port, model_dir, tmp_path / "bench", progress=False)
    finally:
        emulator.stop()
    assert find_running_emulator(board) is None
    with pytest.raises(TinymlError, match="no emulated stm32f405 is running"):
        resolve_port(None, board)

    report = result.report
    assert report["samples"] == SAMPLES
    assert report["agreement"] == 1.0 and report["disagreements"] == 0
    assert report["on_device_accuracy"] == report["host_int8_accuracy"]
    assert (report["board"], report["backend"]) == ("stm32f405", "engine")
    assert report["latency_unit"] == "instructions" and report["latency_instructions"]["p50"] > 1000
    assert report["line_rate_fraction"] is None
