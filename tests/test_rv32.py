"""The ESP32-C3's RISC-V path on QEMU: core + engine + a compiled model built for
rv32imc with Debian's riscv64-unknown-elf-gcc (picolibc), booted on
qemu-system-riscv32 -M virt -bios none, benchmarked through C's board link."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinyml.testing.keras_models import small_int8_model
from tinyml.boards import load_board

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(shutil.which("riscv64-unknown-elf-gcc") is None or shutil.which("qemu-system-riscv32") is None,
                       reason="needs riscv64-unknown-elf-gcc and qemu-system-riscv32"),
]


@pytest.fixture(scope="module")
def rv32_model(tmp_path_factory) -> dict:
    from tinyml.compiler.compile import compile_tflite

    directory = tmp_path_factory.mktemp("rv32_model")
    model = small_int8_model()
    (directory / "model.tflite").write_bytes(model)
    result = compile_tflite(directory / "model.tflite", directory / "compiled", target="rv32")
    return {"dir": directory, "model": model, "compiled": directory / "compiled", "sha256": result.sha256}


@pytest.fixture()
def state_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TINYML_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def test_rv32_virt_profile_matches_the_esp32c3_isa():
    rv32, c3 = load_board("rv32_virt"), load_board("esp32c3")
    assert rv32.core == c3.core == "rv32imc"
    assert rv32.compile_target == c3.compile_target == "rv32"
    assert rv32.emulator and rv32.emulator["program"] == "qemu-system-riscv32"
    assert "-icount" in rv32.emulator["args"] and "none" in rv32.emulator["args"]


@pytest.mark.slow
def test_rv32_engine_agrees_with_tflite_micro(rv32_model, tmp_path, state_dir):
    from tinyml.host.session import BoardSession
    from tinyml.verify import run_tflm

    board = load_board("rv32_virt")
    rng = np.random.default_rng(7)
    inputs = rng.integers(-128, 128, size=(6, 8, 8, 1), dtype=np.int8)
    expected = run_tflm(rv32_model["model"], inputs)
    with BoardSession.build_and_boot(board, rv32_model["compiled"], tmp_path / "build") as session:
        image = session.image
        assert image.path.is_file() and 0 < image.flash_bytes < board.model_flash_budget
        info = session.info
        assert info.board == "rv32_virt" and info.latency_unit == "instructions"
        assert info.model_sha256 == rv32_model["sha256"]
        results = sorted(session.link.infer((i, x.tobytes()) for i, x in enumerate(inputs)), key=lambda r: r.index)
    assert not session.emulator
    assert [r.index for r in results] == list(range(len(inputs)))
    for result in results:
        assert result.output == np.asarray(expected[result.index], dtype=np.int8).tobytes()
    latencies = {r.latency for r in results}
    # Instruction counts are exact and the model has no data-dependent branches
    # beyond clamping: the spread across inputs stays tiny.
    assert min(latencies) > 1000 and max(latencies) - min(latencies) < 0.01 * max(latencies)


@pytest.mark.slow
def test_rv32_per_layer_profile(rv32_model, tmp_path, state_dir):
    """TINYML_PROFILE image: the board's layer times line up with compile.json's
    layers, sum to about the whole inference, and come out as table and PNG."""
    from tinyml.compiler.compile import compile_tflite
    from tinyml.host.profile import format_table, write_profile
    from tinyml.host.session import BoardSession

    board = load_board("rv32_virt")
    compiled = tmp_path / "compiled"
    compile_tflite(rv32_model["dir"] / "model.tflite", compiled, target="rv32", profile=True)
    sample = np.arange(64, dtype=np.int8).tobytes()
    with BoardSession.build_and_boot(board, compiled, tmp_path / "build", profile=True) as session:
        result, _ = session.profile(compiled, sample=sample)
        whole = next(iter(session.link.infer([(1, sample)], batch=1))).latency
    assert [layer.op for layer in result.layers] == ["CONV_2D", "DEPTHWISE_CONV_2D", "RESHAPE", "FULLY_CONNECTED"]
    assert result.unit == "instructions" and result.total_macs == 3520
    assert all(layer.time > 0 for layer in result.layers if layer.macs)
    assert 0.8 * whole < result.total_time <= whole
    assert "| 0 | CONV_2D | 2,304 |" in format_table(result)
    files = write_profile(tmp_path / "out", result, "rv32_virt")
    assert [f.name for f in files] == ["profile.md", "profile.json", "profile.png"]
    assert all(f.stat().st_size > 0 for f in files)
