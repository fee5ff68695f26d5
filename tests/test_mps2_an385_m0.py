"""The Cortex-M0 board in CI: the whole firmware (core, protocol, engine compiled with
--target cortex-m0) built for armv6-m (-mcpu=cortex-m0 -mthumb) and booted on QEMU
mps2-an385, whose Cortex-M3 runs the Thumb-1 code; a few samples benched over its pty,
every output byte equal to host TFLite-Micro's, latency in instructions."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from tinyml.boards import load_board
from tinyml.host.session import BoardSession

from test_qemu import SAMPLES, _model_dir_for

HAVE_ARM = shutil.which("qemu-system-arm") is not None and shutil.which("arm-none-eabi-gcc") is not None


def test_profile_is_an_m0plus_with_the_rp2040s_budgets():
    board, pico = load_board("mps2_an385_m0"), load_board("rp2040_pico")
    assert board.compile_target == pico.compile_target == "cortex-m0"
    assert board.core == pico.core == "cortex-m0plus"
    assert (board.flash_bytes, board.ram_bytes, board.clock_hz) == (pico.flash_bytes, pico.ram_bytes, pico.clock_hz)
    assert (board.model_flash_budget, board.model_ram_budget) == (pico.model_flash_budget, pico.model_ram_budget)
    assert board.build == {"system": "cmake", "port": "qemu_mps2_an385", "toolchain": "arm-none-eabi-gcc"}
    assert board.emulator and board.emulator["machine"] == "mps2-an385"
    assert board.emulator["args"][:2] == ["-icount", "shift=0"] and board.latency_unit == "instructions"


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ARM, reason="needs qemu-system-arm and arm-none-eabi-gcc")
def test_m0_board_agrees_with_tflite_micro(tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYML_STATE_DIR", str(tmp_path / "state"))
    board = load_board("mps2_an385_m0")
    model_dir = _model_dir_for(tiny_models["int8"], tmp_path / "model")

    with BoardSession.build_and_boot(board, model_dir, tmp_path / "build") as session:
        image = session.image
        assert image is not None and 0 < image.flash_bytes < board.flash_bytes
        assert session.info.board == "mps2_an385_m0" and session.info.latency_unit == "instructions"
        result = session.bench(model_dir, tmp_path / "bench", progress=False)
        elf = image.path
        # RESET (SCB->AIRCR on armv6-m): QEMU reboots the image, which says hello and answers alike.
        sample = np.load(model_dir / "test_vectors.npz")["inputs"][0].tobytes()
        before = next(iter(session.link.infer([(0, sample)], batch=1)))
        assert session.link.reset().board == "mps2_an385_m0"
        after = next(iter(session.link.infer([(0, sample)], batch=1)))
        assert after.output == before.output

    # Every instruction in the image is armv6-m: the ELF's build attributes say so.
    attributes = subprocess.run(["arm-none-eabi-readelf", "-A", str(elf)], capture_output=True, text=True).stdout
    assert "Tag_CPU_arch: v6S-M" in attributes or "Tag_CPU_arch: v6-M" in attributes, attributes
    assert "Tag_THUMB_ISA_use: Thumb-1" in attributes, attributes

    report = result.report
    assert report["samples"] == SAMPLES
    assert report["agreement"] == 1.0 and report["disagreements"] == 0
    assert report["on_device_accuracy"] == report["host_int8_accuracy"]
    assert (report["board"], report["backend"]) == ("mps2_an385_m0", "engine")
    # SysTick ticks x 40: whole multiples of the timer's resolution.
    p50 = report["latency_instructions"]["p50"]
    assert report["latency_unit"] == "instructions" and p50 > 1000
    assert report["latency_us"]["p50"] == pytest.approx(p50 / 133)
    compiled = json.loads((model_dir / "compiled-cortex-m0" / "compile.json").read_text())
    assert compiled["target"] == "cortex-m0"
    assert report["memory"]["arena_bytes"] == compiled["arena_bytes"]
