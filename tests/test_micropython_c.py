"""The two C forms: `--target micropython-module` and `--target micropython-natmod --arch A`,
compiled with -Werror for every architecture whose compiler Debian gives us here, against the
compile-only MicroPython declarations (firmware/micropython/compile_only: no MicroPython tree is
reachable), and the native-module constraints read off the objects with readelf."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tinyml.errors import TinymlError
from tinyml.micropython.c_module import compile_micropython_c
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


def _compile(folder, arch, natmod, name, tmp_path):
    compiler, flags = COMPILERS[arch]
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} not installed")
    extra = ["-fpic", "-fno-tree-loop-distribute-patterns", "-DMICROPY_ENABLE_DYNRUNTIME"] if natmod else []
    objects = []
    for source in sorted(folder.glob("*.c")):
        obj = tmp_path / f"{arch}_{natmod}_{source.stem}.o"
        subprocess.run([compiler, *COMMON, *flags, *extra, f"-DMP_QSTR_{name}=MP_QSTR_TINYML_MODULE_NAME",
                        f"-I{folder}", f"-I{COMPILE_ONLY}", "-c", str(source), "-o", str(obj)],
                       check=True, capture_output=True, text=True)
        objects.append(obj)
    linked = tmp_path / f"{arch}_{natmod}_all.o"
    link_flags = [f for f in flags if not f.startswith("--specs")]
    subprocess.run([compiler, *link_flags, "-r", "-nostdlib", *map(str, objects), "-o", str(linked)], check=True)
    return linked


def _readelf(option, obj):
    readelf = "riscv64-unknown-elf-readelf" if "rv32" in obj.name else "readelf"
    if "arm" in obj.name:
        readelf = "arm-none-eabi-readelf"
    return subprocess.run([readelf, option, "-W", str(obj)], check=True, capture_output=True, text=True).stdout


def _sections(obj) -> dict[str, tuple[int, int]]:
    """name -> (index, size)"""
    found = {}
    for line in _readelf("-S", obj).splitlines():
        m = re.match(r"\s*\[\s*(\d+)\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)", line)
        if m:
            found[m.group(2)] = (int(m.group(1)), int(m.group(3), 16))
    return found


def _symbols(obj) -> list[list[str]]:
    rows = []
    for line in _readelf("-s", obj).splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[0].endswith(":"):
            rows.append(fields)
    return rows


@pytest.mark.parametrize("arch", sorted(COMPILERS))
def test_natmod_compiles_and_meets_the_loader_constraints(tiny_models, tmp_path, arch):
    folder = tmp_path / "natmod"
    compile_micropython_c(tiny_models["int8"], folder, "micropython-natmod", arch, "tiny_model")
    assert {"Makefile", "natmod_tiny_model.c", "model.c", "model.h", "micropython.json"} <= \
        {p.name for p in folder.iterdir()}
    makefile = (folder / "Makefile").read_text()
    assert "py/dynruntime.mk" in makefile and "LINK_RUNTIME = 1" in makefile and f"ARCH ?= {arch}" in makefile
    linked = _compile(folder, arch, True, "tiny_model", tmp_path)
    sections = _sections(linked)
    data = {n: s for n, (_, s) in sections.items() if n.startswith(".data") and not n.startswith(".data.rel.ro")}
    assert all(size == 0 for size in data.values()), f".data non-empty: {data}"
    bss_index = {str(i) for n, (i, _) in sections.items() if n.startswith(".bss") or n.startswith(".sbss")}
    symbols = _symbols(linked)
    static_bss = [s[7] for s in symbols if s[3] == "OBJECT" and s[4] == "LOCAL" and (s[6] in bss_index or
                                                                                   s[6] == "COM")]
    assert not static_bss, f"static bss: {static_bss}"
    undefined = {s[7] for s in symbols if s[6] == "UND" and len(s) > 7}
    # what mpy_ld resolves: the runtime's function table and type objects, the GOT of -fpic code,
    # and libgcc helpers (LINK_RUNTIME=1); nothing else (no C library)
    allowed = {"mp_fun_table", "_GLOBAL_OFFSET_TABLE_"}
    unexpected = {u for u in undefined if u not in allowed and not u.startswith("__") and not u.startswith("mp_type_")}
    assert not unexpected, unexpected
    assert "memcpy" not in undefined and "memset" not in undefined
    arena = [s for s in symbols if s[7] == "tiny_model_arena"]
    assert arena and arena[0][4] == "GLOBAL"


@pytest.mark.parametrize("arch", ["armv7emsp", "armv6m", "rv32imc", "x64"])
def test_user_c_module_compiles_and_names_its_files(tiny_models, tmp_path, arch):
    folder = tmp_path / "module"
    compile_micropython_c(tiny_models["int8"], folder, "micropython-module", arch, "tiny_model")
    mk = (folder / "micropython.mk").read_text()
    cmake = (folder / "micropython.cmake").read_text()
    summary = json.loads((folder / "micropython.json").read_text())
    for source in ["mod_tiny_model.c", "model.c", *summary["engine_sources"]]:
        assert (folder / source).is_file() and source in mk and source in cmake
    assert "USERMOD_DIR" in mk and "target_link_libraries(usermod INTERFACE usermod_tiny_model)" in cmake
    binding = (folder / "mod_tiny_model.c").read_text()
    assert "MP_REGISTER_MODULE(MP_QSTR_tiny_model" in binding and "static const tm_" not in binding
    assert "static const" in (folder / "model.c").read_text()  # weights stay const: flash
    _compile(folder, arch, False, "tiny_model", tmp_path)


def test_bad_arch_and_a_model_too_big_for_the_heap(tiny_models, tmp_path):
    with pytest.raises(TinymlError, match="needs --arch"):
        compile_micropython_c(tiny_models["int8"], tmp_path / "a", "micropython-natmod", None, "m")
    with pytest.raises(TinymlError, match="unknown MicroPython architecture 'z80'"):
        compile_micropython_c(tiny_models["int8"], tmp_path / "a", "micropython-natmod", "z80", "m")
    board = tmp_path / "tiny_board.toml"
    board.write_text('name = "tiny_board"\nmcu = "x"\ncore = "rv32imc"\nclock_hz = 1\nflash_bytes = 65536\n'
                     'ram_bytes = 4096\nfirmware_ram_bytes = 2048\n')
    with pytest.raises(TinymlError, match="needs at least .* of heap"):
        compile_micropython_c(tiny_models["int8"], tmp_path / "a", "micropython-natmod", "rv32imc", "m",
                              board=str(board))
    assert not (tmp_path / "a").exists()
