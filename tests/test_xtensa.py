"""Espressif's instruction sets in CI (issue 14).

Compile-only: every source of the ESP32 PlatformIO envs (firmware/platformio.ini
read by tinyml.host.pio_envs, the env's own flags plus -Werror) is compiled for
Xtensa with Debian's LLVM (clang -> llc -mcpu=esp32 -> llvm-mc) for esp32dev and
esp32-s3-devkitc-1, and with riscv64-unknown-elf-gcc for rv32imc for
esp32-c3-devkitm-1; the objects are read back to prove their machine. The
Arduino port compiles against tests/compile_only/arduino/Arduino.h, a
declarations-only header, and its undefined symbols must be exactly that API.
Nothing here links or runs an ESP32 image.

Runs: the engine's generic C on an Xtensa core, the LX106 on
`qemu-system-xtensa -M sim` (ports/xtensa_lx106_sim), byte-exact against tflite-micro.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinyml.host.pio_envs import read_platformio_ini
from tinyml.paths import firmware_dir
from tinyml.testing.fixture_model import FIXTURE_DIR

FIRMWARE = firmware_dir()
FIXTURE_MODEL = FIXTURE_DIR  # the fixture model.h + model.c (tinyml.testing)
ARDUINO_COMPILE_ONLY = Path(__file__).parent / "compile_only" / "arduino"
# C headers for the freestanding Xtensa compile: picolibc as built for the LX106.
XTENSA_LIBC_INCLUDE = Path("/usr/lib/xtensa-lx106-elf/include")
INI = read_platformio_ini(FIRMWARE / "platformio.ini")
XTENSA_ENVS = ("esp32dev", "esp32-s3-devkitc-1")
RV32_ENV = "esp32-c3-devkitm-1"
RV32 = ["-march=rv32imc", "-misa-spec=2.2", "-mabi=ilp32", "--specs=picolibc.specs"]
# What the Arduino port may use of Arduino-ESP32 and FreeRTOS (demangled, no parameters).
ARDUINO_API = {"Serial", "ESP", "getCpuFrequencyMhz", "EspClass::getCycleCount", "EspClass::restart",
               "vPortEnterCritical", "vPortExitCritical", "vTaskDelay"}
SERIAL_METHODS = {"setRxBufferSize", "begin", "available", "read", "write", "flush"}
TINYML_API = {"tm_core_init", "tm_core_poll", "tm_model_init"}

has_llvm_xtensa = all(shutil.which(tool) for tool in ("clang-22", "clang++-22", "llc-22", "llvm-mc-22",
                                                      "llvm-readelf-22", "llvm-nm-22", "llvm-cxxfilt-22"))
needs_llvm = pytest.mark.skipif(not has_llvm_xtensa or not XTENSA_LIBC_INCLUDE.is_dir(),
                                reason="needs clang-22/llvm-22 and picolibc-xtensa-lx106-elf")


def llc_cpus() -> set[str]:
    listing = subprocess.run(["llc-22", "-mtriple=xtensa", "-mcpu=help"], capture_output=True, text=True).stderr
    listing += subprocess.run(["llc-22", "-mtriple=xtensa", "-mcpu=help"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in listing.splitlines() if " - Select the " in line}


def env_compile_flags(name: str) -> list[str]:
    """The env's own defines, includes and compiler flags, plus -Werror and the
    fixture model's directory (where TINYML_MODEL_DIR would point)."""
    env = INI.env(name)
    return [*env.flags.ccflags, "-Werror", *(f"-D{d}" for d in env.flags.defines),
            *(f"-I{FIRMWARE / d}" for d in env.flags.include_dirs), f"-I{FIXTURE_MODEL}",
            f"-I{ARDUINO_COMPILE_ONLY}"]


def env_sources(name: str) -> list[Path]:
    env = INI.env(name)
    return [FIRMWARE / s for s in env.sources] + [FIXTURE_MODEL / s for s in env.model_sources]


def run(argv: list[str], what: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.returncode == 0, f"{what}:\n{done.stderr[-3000:]}"
    assert "warning" not in done.stderr, f"{what}:\n{done.stderr}"
    return done.stdout


def compile_xtensa(source: Path, flags: list[str], cpu: str, out: Path) -> Path:
    """clang -> LLVM IR -> llc (Xtensa asm for cpu) -> llvm-mc (object)."""
    cxx = source.suffix in (".cpp", ".cc")
    front = ["clang++-22", "-std=gnu++11", "-fno-exceptions", "-fno-rtti"] if cxx else ["clang-22", "-std=gnu99"]
    ir, asm, obj = (out / f"{source.name}.{ext}" for ext in ("ll", "s", "o"))
    run([*front, "--target=xtensa", "-ffreestanding", "-nostdlibinc", "-isystem", str(XTENSA_LIBC_INCLUDE),
         *flags, "-S", "-emit-llvm", str(source), "-o", str(ir)], f"clang {source.name}")
    llc = ["llc-22", "-mtriple=xtensa", f"-mcpu={cpu}", str(ir), "-o", str(asm)]
    # LLVM 22's Xtensa backend itself crashes ("Cannot scavenge register without an emergency
    # spill slot") on the engine's unrolled dot loops: an llc bug, not an error in the source (the
    # clang step above checked that, with -Werror). Then the same IR with the basic register
    # allocator, else without llc's optimizations; any other failure fails the test.
    for fallback in ([], ["-regalloc=basic"], ["-O0"]):
        done = subprocess.run([*llc[:3], *fallback, *llc[3:]], capture_output=True, text=True)
        if not (done.returncode < 0 and "emergency spill slot" in done.stderr):
            break
    run([*llc[:3], *fallback, *llc[3:]], f"llc {source.name}")
    run(["llvm-mc-22", "-triple=xtensa", f"-mcpu={cpu}", "-filetype=obj", str(asm), "-o", str(obj)],
        f"llvm-mc {source.name}")
    return obj


def undefined_symbols(obj: Path, nm: list[str], demangle: list[str]) -> set[str]:
    names = run([*nm, "-u", str(obj)], "nm").split()
    names = [n for n in names if n != "U"]
    demangled = run([*demangle, *names], "c++filt").split("\n") if names else []
    return {line.split("(")[0] for line in demangled if line}


def check_arduino_api(undefined: set[str], serial_class: str) -> None:
    allowed = ARDUINO_API | TINYML_API | {f"{serial_class}::{m}" for m in SERIAL_METHODS}
    assert undefined == allowed, f"unexpected {sorted(undefined - allowed)}, unused {sorted(allowed - undefined)}"


@needs_llvm
@pytest.mark.parametrize("name", XTENSA_ENVS)
def test_esp32_env_sources_compile_for_xtensa(name, tmp_path):
    """Every source of the env, its flags with -Werror, Xtensa objects out. The S3's
    LX7 is compiled for esp32s3 when LLVM knows that CPU, else for the ESP32's LX6
    (LLVM 22 knows esp32 and esp8266 only: the S3's own instructions go unchecked)."""
    cpu = "esp32s3" if name.startswith("esp32-s3") and "esp32s3" in llc_cpus() else "esp32"
    sources = env_sources(name)
    assert any(s.name == "tm_port_esp32.cpp" for s in sources) and any(s.name == "model.c" for s in sources)
    for source in sources:
        obj = compile_xtensa(source, env_compile_flags(name), cpu, tmp_path)
        header = run(["llvm-readelf-22", "-h", str(obj)], "readelf")
        assert "Tensilica Xtensa Processor" in header and "ELF32" in header, source.name
        if source.name == "tm_port_esp32.cpp":
            defined = run(["llvm-nm-22", "--defined-only", str(obj)], "nm")
            assert all(f" {s}" in defined for s in ("tm_port_init", "tm_port_uart_write", "_Z5setupv", "_Z4loopv"))
            serial_class = "HWCDC" if "ARDUINO_USB_CDC_ON_BOOT=1" in INI.env(name).flags.defines else "HardwareSerial"
            check_arduino_api(undefined_symbols(obj, ["llvm-nm-22"], ["llvm-cxxfilt-22"]), serial_class)


@pytest.mark.skipif(shutil.which("riscv64-unknown-elf-g++") is None, reason="needs riscv64-unknown-elf-gcc/g++")
def test_esp32c3_env_sources_compile_for_rv32imc(tmp_path):
    for source in env_sources(RV32_ENV):
        compiler = "riscv64-unknown-elf-g++" if source.suffix == ".cpp" else "riscv64-unknown-elf-gcc"
        language = ["-std=gnu++11", "-fno-exceptions", "-fno-rtti"] if source.suffix == ".cpp" else ["-std=gnu99"]
        obj = tmp_path / f"{source.name}.o"
        run([compiler, *RV32, *language, *env_compile_flags(RV32_ENV), "-c", str(source), "-o", str(obj)],
            source.name)
        header = run(["riscv64-unknown-elf-readelf", "-h", str(obj)], "readelf")
        assert "RISC-V" in header and "ELF32" in header, source.name
        if source.name == "tm_port_esp32.cpp":
            check_arduino_api(undefined_symbols(obj, ["riscv64-unknown-elf-nm"], ["riscv64-unknown-elf-c++filt"]),
                              "HWCDC")


@needs_llvm
def test_compile_only_arduino_header_declares_and_defines_nothing_else(tmp_path):
    """The stand-in header compiles to an empty object: declarations only."""
    probe = tmp_path / "probe.cpp"
    probe.write_text("#include <Arduino.h>\n")
    obj = compile_xtensa(probe, [f"-I{ARDUINO_COMPILE_ONLY}", "-Wall", "-Wextra", "-Werror"], "esp32", tmp_path)
    symbols = run(["llvm-nm-22", str(obj)], "nm").split()
    assert symbols == []


# ------------------------------------------------------------ the LX106, running


needs_lx106 = pytest.mark.skipif(
    shutil.which("xtensa-lx106-elf-gcc") is None or shutil.which("qemu-system-xtensa") is None
    or not Path("/usr/lib/xtensa-lx106-elf/picolibc.specs").is_file(),
    reason="needs xtensa-lx106-elf-gcc, picolibc-xtensa-lx106-elf and qemu-system-xtensa")


def test_lx106_profile_is_an_xtensa_selfcheck_board():
    from tinyml.boards import load_board

    board = load_board("xtensa_lx106_sim")
    assert board.core == "xtensa-lx106" and board.compile_target == "generic"
    assert board.build == {"system": "cmake", "port": "xtensa_lx106_sim", "toolchain": "xtensa-lx106-elf-gcc"}
    assert board.emulator["program"] == "qemu-system-xtensa" and board.emulator["machine"] == "sim"
    assert {"-semihosting", "lx106", "-icount"} <= set(board.emulator["args"])


@needs_lx106
@pytest.mark.qemu
@pytest.mark.slow
def test_lx106_engine_agrees_with_tflite_micro(tmp_path):
    """The small CNN of test_rv32 (conv, depthwise stride 2, dense), compiled for the
    generic C path, built with xtensa-lx106-elf-gcc, run on QEMU's Xtensa sim:
    every output byte equals host tflite-micro's."""
    from tinyml.testing.keras_models import small_int8_model

    from tinyml.boards import load_board
    from tinyml.compiler.compile import compile_tflite
    from tinyml.host.build import build_firmware
    from tinyml.host.selfcheck import run_selfcheck, write_selfcheck_inputs
    from tinyml.verify import run_tflm

    model = small_int8_model()
    (tmp_path / "model.tflite").write_bytes(model)
    compiled = compile_tflite(tmp_path / "model.tflite", tmp_path / "compiled", target="generic")
    rng = np.random.default_rng(11)
    inputs = rng.integers(-128, 128, size=(8, 8, 8, 1), dtype=np.int8)
    inputs[0] = -128  # the extremes: saturation paths of every kernel
    inputs[1] = 127
    write_selfcheck_inputs(tmp_path / "selfcheck", [x.tobytes() for x in inputs], 10)
    board = load_board("xtensa_lx106_sim")
    image = build_firmware(board, tmp_path / "compiled", tmp_path / "build",
                           extra=[f"-DTINYML_SELFCHECK_DIR={tmp_path / 'selfcheck'}"])
    header = subprocess.run(["xtensa-lx106-elf-readelf", "-h", str(image.path)], capture_output=True, text=True,
                            check=True).stdout
    assert "Tensilica Xtensa Processor" in header and "0x50000000" in header  # entry at the reset vector
    result = run_selfcheck(board, image)
    expected = run_tflm(model, inputs)
    assert result.board == "xtensa_lx106_sim" and result.backend == "engine"
    assert result.model_sha256 == compiled.sha256
    assert result.outputs == [np.asarray(e, dtype=np.int8).tobytes() for e in expected]
    # Instruction counts to 25 (CCOUNT at QEMU's 40 MHz, 1 ns per instruction); no
    # data-dependent branches beyond clamping, so the inputs cost about the same.
    assert min(result.latencies) > 1000 and max(result.latencies) - min(result.latencies) < 0.01 * max(result.latencies)


@needs_lx106
def test_lx106_build_needs_its_selfcheck_inputs(tmp_path):
    from tinyml.boards import load_board
    from tinyml.errors import TinymlError
    from tinyml.host.build import build_firmware

    with pytest.raises(TinymlError, match="configuring the firmware for xtensa_lx106_sim failed"):
        build_firmware(load_board("xtensa_lx106_sim"), FIXTURE_MODEL, tmp_path / "build", engine_dir=None)
    log = (tmp_path / "build" / "build.log").read_text()
    assert "no tm_selfcheck_inputs.h" in log


def test_selfcheck_output_is_parsed_strictly():
    from tinyml.errors import TinymlError
    from tinyml.host.selfcheck import parse_selfcheck

    sha = "ab" * 32
    good = (f"selfcheck board=b backend=engine sha256={sha} samples=2\n"
            "sample 0 status 0 latency 5 output 00ff\nsample 1 status 0 latency 6 output 7f80\nselfcheck end\n")
    run = parse_selfcheck(good, 0)
    assert run.outputs == [b"\x00\xff", b"\x7f\x80"] and run.latencies == [5, 6]
    with pytest.raises(TinymlError, match="ended early"):
        parse_selfcheck(good.replace("selfcheck end\n", ""), 0)
    with pytest.raises(TinymlError, match="invoke failed on samples \\[1\\]"):
        parse_selfcheck(good.replace("sample 1 status 0", "sample 1 status 3"), 1)
    with pytest.raises(TinymlError, match="no header"):
        parse_selfcheck("garbage", 0)


def test_lx106_board_is_refused_by_flash_with_a_reason(tmp_path):
    from tinyml.errors import TinymlError
    from tinyml.host.flash import flash_board

    with pytest.raises(TinymlError, match="runs a self-check image, not the serial protocol"):
        flash_board("xtensa_lx106_sim", model_dir=FIXTURE_MODEL, build_dir=tmp_path)


LX106_PORT = FIRMWARE / "ports" / "xtensa_lx106_sim"
HELPER_CASES_32 = [(0, 1), (7, 2), (0xFFFFFFFF, 1), (0xFFFFFFFF, 0xFFFFFFFF), (0x80000000, 3), (12345678, 1000),
                   (1, 0xFFFFFFFF), (0x7FFFFFFF, 0x10000), (100, 7), (0xDEADBEEF, 0x1234)]
HELPER_CASES_64 = [(0, 5), (-1, -1), (0x7FFFFFFF, 0x7FFFFFFF), (-0x80000000, 0x12345), (0x123456789, 0x987654321),
                   (-0x123456789ABC, 0x5678), (1 << 40, 1 << 30), (-(1 << 63), 1), (0xFFFFFFFF, 0xFFFFFFFF)]


@needs_lx106
def test_lx106_runtime_helpers_match_c_semantics(tmp_path):
    """The port's __udivsi3/__umodsi3/__divsi3/__muldi3 (Debian's lx106 libgcc lacks
    them) against C's definitions, computed in Python, on edge values, run on the LX106."""
    def s32(v: int) -> int:
        return v - (1 << 32) if v & 0x80000000 else v

    # Print in hex with shifts and masks only, so the check itself needs no helper.
    lines = ["#include <stdint.h>", '#include "tm_lx106_simcall.h"',
             "static void put_hex64(uint64_t v) { char b[17]; for (int i = 15; i >= 0; i--) { "
             "b[i] = \"0123456789abcdef\"[v & 15u]; v >>= 4; } b[16] = '\\n';",
             "  (void)tm_lx106_simcall(TM_SIMCALL_WRITE, 1, (int32_t)(uintptr_t)b, 17); }",
             "int main(void) {"]
    expected = []
    for a, b in HELPER_CASES_32:
        lines.append(f"  {{ volatile uint32_t a = {a}u, b = {b}u; put_hex64(a / b); put_hex64(a % b); }}")
        expected += [a // b, a % b]
        sa, sb = s32(a), s32(b)
        quotient = abs(sa) // abs(sb) * (1 if (sa < 0) == (sb < 0) else -1)
        if not (sa == -(1 << 31) and sb == -1):
            lines.append(f"  {{ volatile int32_t a = {sa}, b = {sb}; put_hex64((uint64_t)(int64_t)(a / b)); }}")
            expected.append(quotient & 0xFFFFFFFFFFFFFFFF)
    for a, b in HELPER_CASES_64:
        lines.append(f"  {{ volatile int64_t a = {a}LL, b = {b}LL; put_hex64((uint64_t)(a * b)); }}"
                     if a != -(1 << 63) else
                     f"  {{ volatile int64_t a = INT64_MIN, b = {b}LL; put_hex64((uint64_t)(a * b)); }}")
        expected.append((a * b) & 0xFFFFFFFFFFFFFFFF)
    lines += ["  return 0;", "}"]
    source = tmp_path / "helpers.c"
    source.write_text("\n".join(lines) + "\n")
    elf = tmp_path / "helpers.elf"
    run(["xtensa-lx106-elf-gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-mlongcalls", "-mtext-section-literals",
         "--specs=/usr/lib/xtensa-lx106-elf/picolibc.specs", "-nostartfiles", f"-I{LX106_PORT}",
         "-T", str(LX106_PORT / "xtensa_lx106_sim.ld"), "-Wl,--gc-sections", str(source),
         str(LX106_PORT / "start.c"), str(LX106_PORT / "tm_lx106_libgcc.c"), "-o", str(elf)], "helpers build")
    symbols = run(["xtensa-lx106-elf-nm", str(elf)], "nm")
    assert all(f" T {name}" in symbols for name in ("__udivsi3", "__umodsi3", "__divsi3", "__muldi3"))
    done = subprocess.run(["qemu-system-xtensa", "-M", "sim", "-cpu", "lx106", "-semihosting", "-nographic",
                           "-monitor", "none", "-kernel", str(elf)], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert [int(line, 16) for line in done.stdout.split()] == expected
