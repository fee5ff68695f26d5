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
from tinyml.errors import TinymlError
from tinyml.host.emulator import list_emulators, resolve_port
from tinyml.host.session import BoardSession

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
    (directory / "model.tflite").write_bytes(data)
    np.savez(directory / "test_vectors.npz", inputs=inputs, outputs=outputs, labels=labels,
             label_names=np.array([str(i) for i in range(10)]))
    (directory / "manifest.json").write_text(json.dumps({"model_sha256": hashlib.sha256(data).hexdigest(),
                                                         "labels": [str(i) for i in range(10)]}))
    return directory


def test_emulated_board_agrees_with_tflite_micro(tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYML_STATE_DIR", str(tmp_path / "state"))
    board = load_board("stm32f405")
    model_dir = _model_dir_for(tiny_models["int8"], tmp_path / "model")

    # One session: compile for the board's target, build, boot QEMU, check the hash, bench, stop.
    with BoardSession.build_and_boot(board, model_dir, tmp_path / "build") as session:
        image = session.image
        assert image is not None and image.path.suffix == ".elf" and 0 < image.flash_bytes < board.flash_bytes
        running = list_emulators(board)
        assert [e.pid for e in running] == [session.emulator.pid] and not running[0].kept
        assert resolve_port(None, board) == session.port  # what `tinyml bench --board stm32f405` would find
        result = session.bench(model_dir, tmp_path / "bench", progress=False)
    assert list_emulators(board) == []
    with pytest.raises(TinymlError, match="no emulated stm32f405 is running"):
        resolve_port(None, board)

    report = result.report
    assert report["samples"] == SAMPLES
    assert report["agreement"] == 1.0 and report["disagreements"] == 0
    assert report["on_device_accuracy"] == report["host_int8_accuracy"]
    assert (report["board"], report["backend"]) == ("stm32f405", "engine")
    assert report["latency_unit"] == "instructions" and report["latency_instructions"]["p50"] > 1000
    assert report["line_rate_fraction"] is None
    # Time on the board profile's clock, and what that assumes; flash and RAM of image, model and arena.
    assert report["latency_us"]["p50"] == pytest.approx(report["latency_instructions"]["p50"] / 168)
    assert "168 MHz" in report["latency_time_basis"] and "SysTick" in report["latency_time_basis"]
    memory = report["memory"]
    assert (memory["firmware_flash_bytes"], memory["firmware_ram_bytes"]) == (image.flash_bytes, image.ram_bytes)
    compiled = json.loads((model_dir / "compiled-cortex-m4" / "compile.json").read_text())
    assert memory["model_flash_bytes"] == compiled["weight_bytes"] and memory["arena_bytes"] == compiled["arena_bytes"]
    text = (tmp_path / "bench" / "report.md").read_text()
    assert "one instruction per cycle" in text and "firmware image" in text
