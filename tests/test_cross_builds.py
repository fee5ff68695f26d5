"""Cross-compile checks of what real boards run: the core, the engine, the
MLPerf Tiny handler and each Cortex-M port build warning-free with Debian's
arm-none-eabi-gcc for Cortex-M4 (STM32F446RE) and Cortex-M7 (STM32H743ZI), the
same C for rv32imc with riscv64-unknown-elf-gcc, and firmware/platformio.ini
agrees with the board profiles. (PlatformIO itself cannot run here.)"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tinyml.boards import list_boards
from tinyml.host.pio_envs import PlatformioIni, read_platformio_ini
from tinyml.paths import firmware_dir
from tinyml.testing.fixture_model import FIXTURE_DIR

FIRMWARE = firmware_dir()
FIXTURE_MODEL = FIXTURE_DIR  # the fixture model.h + model.c (tinyml.testing)
WARNINGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]

CORTEX_M = {
    "nucleo_f446re": (["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"], "STM32F446xx",
                      0x20020000),
    "nucleo_h743zi": (["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"], "STM32H743xx",
                      0x20020000),
}
RV32 = ["-march=rv32imc", "-misa-spec=2.2", "-mabi=ilp32", "--specs=picolibc.specs"]


def common_sources() -> list[Path]:
    """Core, engine backend, engine kernels, MLPerf Tiny handler."""
    return [*sorted((FIRMWARE / "core").glob("*.c")), FIRMWARE / "backends" / "engine" / "tm_model_engine.c",
            *sorted((FIRMWARE / "engine").glob("*.c")), *sorted((FIRMWARE / "mlperf").glob("*.c"))]


def compile_each(compiler: str, flags: list[str], sources: list[Path], includes: list[Path], out: Path) -> None:
    for source in sources:
        cmd = [compiler, *flags, *WARNINGS, "-DTINYML_PROFILE", *(f"-I{d}" for d in includes), "-c", str(source),
               "-o", str(out / (source.stem + ".o"))]
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, f"{source.name}:\n{done.stderr}"
        assert "warning" not in done.stderr, done.stderr


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
@pytest.mark.parametrize("board", sorted(CORTEX_M))
def test_stm32_port_core_and_engine_compile_warning_free(board, tmp_path):
    cpu, chip, _ = CORTEX_M[board]
    sources = [*common_sources(), *sorted((FIRMWARE / "ports" / "stm32").glob("*.c"))]
    includes = [FIRMWARE / "core", FIRMWARE / "engine", FIRMWARE / "mlperf", FIRMWARE / "ports" / "stm32",
                FIXTURE_MODEL]
    compile_each("arm-none-eabi-gcc", [*cpu, f"-D{chip}"], sources, includes, tmp_path)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("cmake") is None,
                    reason="needs arm-none-eabi-gcc and cmake")
@pytest.mark.parametrize("board", sorted(CORTEX_M))
def test_stm32_image_links_with_its_vector_table(board, tmp_path):
    """C's CMake with the stm32 port: the image links, and its first two words are
    the stack top of the chip's linker script and the Thumb address of Reset_Handler."""
    _, _, stack_top = CORTEX_M[board]
    build = tmp_path / "build"
    configure = ["cmake", "-S", str(FIRMWARE), "-B", str(build), "-DTINYML_PORT=stm32", f"-DTINYML_BOARD={board}",
                 f"-DTINYML_MODEL_DIR={FIXTURE_MODEL}", "-DTINYML_ENGINE_DIR="]
    for cmd in (configure, ["cmake", "--build", str(build)]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert "warning" not in done.stderr.lower(), done.stderr
    elf = build / "tinyml_fw.elf"
    binary = tmp_path / "fw.bin"
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(binary)], check=True)
    initial_sp, reset = struct.unpack_from("<II", binary.read_bytes())
    symbols = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    reset_handler = next(int(line.split()[0], 16) for line in symbols.splitlines() if line.endswith(" Reset_Handler"))
    assert initial_sp == stack_top
    assert reset == reset_handler | 1
    # Not a size target: a flat binary spans only flash when every loadable section sits there;
    # a section left at its RAM address (0x20000000) would make it hundreds of megabytes.
    size = binary.stat().st_size
    assert 0 < size < 64 * 1024


@pytest.mark.skipif(shutil.which("riscv64-unknown-elf-gcc") is None, reason="needs riscv64-unknown-elf-gcc")
def test_rv32_port_core_and_engine_compile_warning_free(tmp_path):
    sources = [*common_sources(), *sorted((FIRMWARE / "ports" / "rv32_virt").glob("*.c"))]
    includes = [FIRMWARE / "core", FIRMWARE / "engine", FIRMWARE / "mlperf", FIXTURE_MODEL]
    compile_each("riscv64-unknown-elf-gcc", RV32, sources, includes, tmp_path)


def _platformio() -> PlatformioIni:
    return read_platformio_ini(FIRMWARE / "platformio.ini")


def _value(parser: PlatformioIni, section: str, key: str) -> str:
    """The option of a section as PlatformIO resolves it (extends, ${...}), "" when unset."""
    return parser.get(section, key, default="")


def test_platformio_has_an_engine_and_tflm_env_per_board_profile():
    parser = _platformio()
    boards = [b for b in list_boards() if b.build.get("system") == "platformio"]
    assert {b.name for b in boards} >= {"esp32dev", "esp32s3", "esp32c3", "nucleo_f446re", "nucleo_h743zi"}
    for board in boards:
        env = board.build["env"]
        for section, backend in ((f"env:{env}", "engine"), (f"env:{env}_tflm", "tflm")):
            assert section[4:] in parser.env_names(), section
            assert _value(parser, section, "custom_tinyml_backend") == backend
            platform = _value(parser, section, "platform")
            assert "@" in platform and platform.split("@")[1][0].isdigit(), f"{section}: unpinned {platform}"
            flags = _value(parser, section, "build_flags")
            assert f'-DTINYML_BOARD_NAME=\\"{board.name}\\"' in flags, section
            assert ("-DTINYML_BACKEND_TFLM" in flags) == (backend == "tflm")
            sources = _value(parser, section, "build_src_filter")
            expected = _value(parser, "tinyml", "src_tflm" if backend == "tflm" else "src_engine")
            other = _value(parser, "tinyml", "src_engine" if backend == "tflm" else "src_tflm")
            assert expected in sources and other not in sources, section


def test_platformio_sources_and_linker_scripts_exist():
    parser = _platformio()
    for key in ("src_core", "src_engine", "src_tflm", "src_mlperf"):
        for pattern in parser.get("tinyml", key).split():
            path = pattern[2:-1]  # +<dir/*.c>
            matches = list(FIRMWARE.glob(path))
            assert matches or pattern.startswith("-"), f"{key}: {pattern} matches nothing"
    for name in parser.env_names():
        ldscript = parser.env(name).ldscript
        assert ldscript is None or (FIRMWARE / ldscript).is_file(), name
    assert (FIRMWARE / "platformio_model.py").is_file()
    assert list((FIRMWARE / "ports" / "esp32").glob("*.cpp"))
