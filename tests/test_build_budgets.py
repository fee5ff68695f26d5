"""A model too big for the board: said before the build where it can be computed, and the
linker's overflow turned into the same one line where it cannot."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tinyml.boards import load_board
from tinyml.errors import TinymlError
from tinyml.host.build import ModelNeeds, build_firmware, model_needs, overflow_message
from tinyml.testing.fixture_model import FIXTURE_DIR

FIXTURE_MODEL = FIXTURE_DIR  # the fixture model.h + model.c (tinyml.testing)
# What GNU ld prints when the image does not fit (arm-none-eabi-gcc 12).
LD_FLASH = ("/usr/lib/gcc/arm-none-eabi/12.2.1/../../../arm-none-eabi/bin/ld: tinyml_fw.elf section `.text' will not "
            "fit in region `FLASH'\n/usr/lib/gcc/arm-none-eabi/12.2.1/../../../arm-none-eabi/bin/ld: region `FLASH' "
            "overflowed by 439516 bytes\ncollect2: error: ld returned 1 exit status\n")
LD_RAM = "ld: region `RAM' overflowed by 2048 bytes\ncollect2: error: ld returned 1 exit status\n"


def compiled_dir(tmp_path: Path, constants: int, arena: int) -> Path:
    """The firmware fixture model with a compile.json claiming these figures."""
    out = tmp_path / "compiled"
    shutil.copytree(FIXTURE_MODEL, out, ignore=shutil.ignore_patterns("__init__.py", "boards.py", "__pycache__"))
    (out / "compile.json").write_text(json.dumps({"weight_bytes": constants, "arena_bytes": arena}))
    return out


def test_overflow_message_in_the_models_terms():
    needs = ModelNeeds(1_470_000, 6_000, "compile.json")
    assert overflow_message(LD_FLASH, "stm32f405", needs) == (
        "model needs 1,470,000 bytes of flash, board stm32f405 has 1,030,484 for it "
        "(the link overflowed region FLASH by 439,516 bytes)")
    assert overflow_message(LD_RAM, "stm32f405", needs) == (
        "model needs 6,000 bytes of RAM (arena), board stm32f405 has 3,952 for it "
        "(the link overflowed region RAM by 2,048 bytes)")
    assert overflow_message(LD_FLASH, "stm32f405", None) == (
        "the firmware for stm32f405 does not fit: the link overflowed region FLASH by 439,516 bytes")
    assertion = "ld: RAM overflow: model arena and buffers leave less than 8 KB of stack\n"
    assert overflow_message(assertion, "stm32f405", needs) == (
        "model needs 6,000 bytes of RAM (arena); the firmware for stm32f405 does not fit its RAM "
        "(RAM overflow: model arena and buffers leave less than 8 KB of stack)")
    assert overflow_message("main.c:3: error: expected ';'\n", "stm32f405", needs) is None


def test_model_needs_reads_compile_json_and_manifest(tmp_path):
    (tmp_path / "compile.json").write_text(json.dumps({"weight_bytes": 1234, "arena_bytes": 56}))
    (tmp_path / "manifest.json").write_text(json.dumps({"flash_bytes": 999, "arena_bytes": 77}))
    assert model_needs(tmp_path) == ModelNeeds(1234, 56, "compile.json")
    assert model_needs(tmp_path, "tflm") == ModelNeeds(999, 77, "manifest.json")
    assert model_needs(tmp_path / "nothing") is None


@pytest.fixture
def fake_cmake(tmp_path, monkeypatch):
    """A cmake on PATH that logs its calls and fails the build step like an overflowing link."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "cmake-calls"
    linker_output = tmp_path / "ld-output"
    linker_output.write_text(LD_FLASH)
    script = bin_dir / "cmake"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> '{calls}'\n"
                      f"if [ \"$1\" = \"--build\" ]; then cat '{linker_output}'; exit 1; fi\nexit 0\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


def test_model_too_big_is_refused_before_the_build(tmp_path, fake_cmake):
    board = load_board("stm32f405")
    big = compiled_dir(tmp_path, 1_470_000, 6_000)
    with pytest.raises(TinymlError) as error:
        build_firmware(board, big, tmp_path / "build")
    assert str(error.value).startswith(f"model needs 1,470,000 bytes of flash, board stm32f405 has "
                                       f"{board.model_flash_budget:,} for it")
    assert not fake_cmake.exists()       # cmake never ran
    hungry = compiled_dir(tmp_path / "ram", 1_000, board.model_ram_budget + 1)
    with pytest.raises(TinymlError, match=r"model needs .* bytes of RAM \(arena\).*over by 1\)"):
        build_firmware(board, hungry, tmp_path / "build")
    assert not fake_cmake.exists()


def test_linker_overflow_becomes_one_line(tmp_path, fake_cmake):
    """Figures that pass the check (a wrong firmware share, say) but a link that overflows."""
    board = load_board("stm32f405")
    model = compiled_dir(tmp_path, 500_000, 6_000)
    with pytest.raises(TinymlError) as error:
        build_firmware(board, model, tmp_path / "build")
    message = str(error.value)
    assert message.startswith("model needs 500,000 bytes of flash, board stm32f405 has 60,484 for it (the link "
                              "overflowed region FLASH by 439,516 bytes); full log in ")
    assert "\n" not in message
    assert "--build" in fake_cmake.read_text()


def test_flash_command_says_it_before_building(tmp_path, fake_cmake):
    big = compiled_dir(tmp_path, 2_000_000, 6_000)
    board = load_board("stm32f405")
    done = subprocess.run([sys.executable, "-m", "tinyml.cli", "flash", "--board", "stm32f405", "--model-dir",
                           str(big)], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: model needs 2,000,000 bytes of flash, board stm32f405 has {board.model_flash_budget:,} for it "
        f"({board.flash_bytes:,} minus {board.firmware_flash_bytes:,} of firmware; over by "
        f"{2_000_000 - board.model_flash_budget:,})")
    assert not fake_cmake.exists()
