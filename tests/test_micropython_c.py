"""The two C forms: `--target micropython-module` and `--target micropython-natmod --arch A`,
compiled with -Werror for every architecture whose compiler Debian gives us here, against the
compile-only MicroPython declarations (firmware/micropython/compile_only: no MicroPython tree is
reachable), and the native-module constraints read off the objects with readelf."""

from __future__ import annotations

import json

import pytest

from tinyml.errors import TinymlError
from tinyml.micropython.c_module import compile_micropython_c

from tinyml.testing.natmod import COMPILERS, compile_module, compiler_present, sections, symbols


def _compile(folder, arch, natmod, name, tmp_path):
    if not compiler_present(arch):
        pytest.skip(f"{COMPILERS[arch][0]} not installed")
    return compile_module(folder, arch, natmod, name, tmp_path)


_sections, _symbols = sections, symbols


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
