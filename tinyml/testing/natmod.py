"""Compiling the MicroPython C forms per architecture as py/dynruntime.mk would,
against the compile-only declarations, and reading the objects back with readelf:
for the C-form tests and bench_micropython.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tinyml.paths import firmware_dir

COMPILE_ONLY = firmware_dir() / "micropython" / "compile_only"
# arch -> (compiler, its flags as py/dynruntime.mk sets them). xtensawin needs the ESP32's windowed-ABI
# xtensa-esp32-elf-gcc, which Debian does not package (xtensa-lx106-elf-gcc is the ESP8266's call0 ABI).
COMPILERS = {
    "armv6m": ("arm-none-eabi-gcc", ["-mthumb", "-mcpu=cortex-m0"]),
    "armv7m": ("arm-none-eabi-gcc", ["-mthumb", "-mcpu=cortex-m3"]),
    "armv7emsp": ("arm-none-eabi-gcc", ["-mthumb", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]),
    "rv32imc": ("riscv64-unknown-elf-gcc", ["-march=rv32imc", "-mabi=ilp32", "--specs=picolibc.specs"]),
    "x64": ("gcc", ["-fno-stack-protector"]),
}
COMMON = ["-std=c99", "-Os", "-Wall", "-Wextra", "-Werror", "-fno-common", "-DNDEBUG"]


def compiler_present(arch: str) -> bool:
    return shutil.which(COMPILERS[arch][0]) is not None


def compile_module(folder: Path, arch: str, natmod: bool, name: str, work: Path) -> Path:
    """Every .c of folder compiled for arch (a native module with -fpic when natmod) and
    linked relocatable into one object; the caller checks compiler_present first."""
    compiler, flags = COMPILERS[arch]
    extra = ["-fpic", "-fno-tree-loop-distribute-patterns", "-DMICROPY_ENABLE_DYNRUNTIME"] if natmod else []
    objects = []
    for source in sorted(folder.glob("*.c")):
        obj = work / f"{arch}_{natmod}_{source.stem}.o"
        subprocess.run([compiler, *COMMON, *flags, *extra, f"-DMP_QSTR_{name}=MP_QSTR_TINYML_MODULE_NAME",
                        f"-I{folder}", f"-I{COMPILE_ONLY}", "-c", str(source), "-o", str(obj)],
                       check=True, capture_output=True, text=True)
        objects.append(obj)
    linked = work / f"{arch}_{natmod}_all.o"
    link_flags = [f for f in flags if not f.startswith("--specs")]
    subprocess.run([compiler, *link_flags, "-r", "-nostdlib", *map(str, objects), "-o", str(linked)], check=True)
    return linked


def readelf(option: str, obj: Path) -> str:
    tool = "riscv64-unknown-elf-readelf" if "rv32" in obj.name else "readelf"
    if "arm" in obj.name:
        tool = "arm-none-eabi-readelf"
    return subprocess.run([tool, option, "-W", str(obj)], check=True, capture_output=True, text=True).stdout


def sections(obj: Path) -> dict[str, tuple[int, int]]:
    """name -> (index, size)"""
    found = {}
    for line in readelf("-S", obj).splitlines():
        m = re.match(r"\s*\[\s*(\d+)\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)", line)
        if m:
            found[m.group(2)] = (int(m.group(1)), int(m.group(3), 16))
    return found


def symbols(obj: Path) -> list[list[str]]:
    rows = []
    for line in readelf("-s", obj).splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[0].endswith(":"):
            rows.append(fields)
    return rows
