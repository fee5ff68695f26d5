"""firmware/platformio.ini as the single source of truth of what each PlatformIO
environment builds (issue 13): tinyml.host.pio_envs reads it as PlatformIO does,
every STM32 environment is compiled and linked here with exactly its files and
flags (Debian's arm-none-eabi-gcc standing in for PlatformIO's), the emulated
STM32F405 environment answers HELLO on QEMU, and the CMake build agrees with
the environments it shares a port with."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tinyml.host.pio_envs import (PlatformioIniError, build_steps, link_relevant_flags, match_sources,
                                  parse_build_flags, read_platformio_ini)
from tinyml.paths import firmware_dir
from tinyml.testing.fixture_model import FIXTURE_DIR

FIRMWARE = firmware_dir()
FIXTURE_MODEL = FIXTURE_DIR  # the fixture model.h + model.c (tinyml.testing)
INI = read_platformio_ini(FIRMWARE / "platformio.ini")

# Every environment is classified, so a new one cannot go unchecked.
LINKED_HERE = {"nucleo_f446re", "nucleo_h743zi", "nucleo_f446re_mlperf", "stm32f405"}
TFLM_ENVS = {name for name in INI.env_names() if name.endswith("_tflm")}  # need a TFLite-Micro tree
ESP32_ENVS = {"esp32dev", "esp32-s3-devkitc-1", "esp32-c3-devkitm-1"}   # compiled in tests/test_xtensa.py
# Not built here: the RP2040 port needs the Arduino-Mbed core's headers (PlatformIO's registry is
# unreachable); its engine code is the cortex-m0 path, run byte-exact on mps2-an385 (test_compiler_qemu).
NOT_BUILT_HERE = {"pico"}
# The CMake configuration that builds the same image as an environment.
CMAKE_TWIN = {
    "nucleo_f446re": ["-DTINYML_PORT=stm32", "-DTINYML_BOARD=nucleo_f446re"],
    "nucleo_h743zi": ["-DTINYML_PORT=stm32", "-DTINYML_BOARD=nucleo_h743zi"],
    "nucleo_f446re_mlperf": ["-DTINYML_PORT=stm32", "-DTINYML_BOARD=nucleo_f446re", "-DTINYML_PROTOCOL=mlperf"],
    "stm32f405": ["-DTINYML_PORT=qemu_stm32f405", "-DTINYML_BOARD=stm32f405"],
}
needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")


def test_every_environment_is_checked_somewhere():
    assert set(INI.env_names()) == LINKED_HERE | TFLM_ENVS | ESP32_ENVS | NOT_BUILT_HERE


# ------------------------------------------------------------ the reader itself


def test_reader_follows_extends_interpolation_and_filters(tmp_path, monkeypatch):
    for name in ("a/x.c", "a/main.c", "a/y.cpp", "a/notes.txt", "b/deep/z.c"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    monkeypatch.setenv("TINYML_TEST_FLAG", "-DFROM_SYSENV=1")
    ini = tmp_path / "platformio.ini"
    ini.write_text(
        "[platformio]\nsrc_dir = .\n"
        "[common]\nsrc = +<a/*> -<a/main.c>\nflags =\n    -Ia -DA=1\n    -mcpu=cortex-m4 --specs=nano.specs\n"
        "[env]\ncustom_tinyml_protocol = mlperf\nbuild_flags = -DBASE\n"
        "[env:base]\nplatform = ststm32@17.6.0\nboard = nucleo_f446re\n"
        "build_src_filter = ${common.src} +<b>\nbuild_flags = ${common.flags} -DNAME=\\\"${this.__env__}\\\" "
        "${sysenv.TINYML_TEST_FLAG} -Wl,--gc-sections -std=gnu99 -Lld\n"
        "[env:child]\nextends = env:base\nbuild_src_filter = ${env:base.build_src_filter} +<a/main.c> -<b/**/z.c>\n"
    )
    project = read_platformio_ini(ini)
    base, child = project.env("base"), project.env("child")
    assert base.sources == ("a/x.c", "a/y.cpp", "b/deep/z.c")
    assert child.sources == ("a/main.c", "a/x.c", "a/y.cpp")
    assert base.protocol == "mlperf" and base.backend == "engine"  # from [env]
    assert base.flags.defines == ("A=1", 'NAME="base"', "FROM_SYSENV=1")
    assert child.flags.defines[1] == 'NAME="child"'  # ${this...} is the env asked for, not where the line is
    assert base.flags.include_dirs == ("a",) and base.flags.lib_dirs == ("ld",) and base.flags.cflags == ("-std=gnu99",)
    assert base.flags.linkflags == ("-Wl,--gc-sections", "-mcpu=cortex-m4", "--specs=nano.specs")
    with pytest.raises(PlatformioIniError, match="no environment 'missing'"):
        project.env("missing")
    ini.write_text(ini.read_text() + "[env:unflagged]\nextends = env:base\nbuild_unflags = -Os\n")
    with pytest.raises(PlatformioIniError, match="uses build_unflags"):
        read_platformio_ini(ini).env("unflagged")
    ini.write_text(ini.read_text() + "[env:orphan]\nextends = nowhere\n")
    with pytest.raises(PlatformioIniError, match="unknown section"):
        read_platformio_ini(ini).env("orphan")


def test_build_flags_sorted_like_scons():
    flags = parse_build_flags(['-Icore -D X=\\"a\\" -O2 -mfpu=fpv5-d16 -Wl,-Map=out.map -std=c++17 -lm -nostartfiles'])
    assert flags.include_dirs == ("core",) and flags.defines == ('X="a"',) and flags.libs == ("m",)
    assert flags.ccflags == ("-O2", "-mfpu=fpv5-d16", "-nostartfiles") and flags.cxxflags == ("-std=c++17",)
    assert link_relevant_flags(flags.ccflags) == ["-mfpu=fpv5-d16", "-nostartfiles"]
    with pytest.raises(PlatformioIniError, match="not a flag"):
        parse_build_flags(["stray"])


def test_src_filter_is_applied_left_to_right(tmp_path):
    (tmp_path / "core").mkdir()
    for name in ("tm_core.c", "tm_main.c"):
        (tmp_path / "core" / name).write_text("")
    assert match_sources(tmp_path, "+<core/*.c> -<core/tm_main.c>") == ["core/tm_core.c"]
    assert match_sources(tmp_path, "-<core/tm_main.c> +<core/*.c>") == ["core/tm_core.c", "core/tm_main.c"]


# ------------------------------------------------------------ the STM32 environments, built


def build_env(name: str, out: Path) -> Path:
    """Compiles and links env `name` as PlatformIO would (fixture model); returns the ELF."""
    env = INI.env(name)
    out.mkdir(parents=True, exist_ok=True)
    compiles, link = build_steps(env, FIRMWARE, FIXTURE_MODEL, out)
    for step in compiles:
        done = subprocess.run(step.argv, capture_output=True, text=True)
        assert done.returncode == 0, f"{name}: {step.source}:\n{done.stderr}"
        assert "warning" not in done.stderr, f"{name}: {step.source}:\n{done.stderr}"
    done = subprocess.run(link.argv, capture_output=True, text=True)
    assert done.returncode == 0, f"{name}: link:\n{done.stderr[-3000:]}"
    assert "warning" not in done.stderr, f"{name}: link:\n{done.stderr}"
    return out / "firmware.elf"


@needs_arm
@pytest.mark.parametrize("name", sorted(LINKED_HERE))
def test_stm32_environment_compiles_and_links(name, tmp_path):
    """The link needs -mfloat-abi/-mfpu/--specs/-nostartfiles (forwarded from build_flags)
    and a main (core/tm_main.c or mlperf/tm_mlperf_main.c): either missing fails here."""
    env = INI.env(name)
    assert "core/tm_main.c" in env.sources or "mlperf/tm_mlperf_main.c" in env.sources
    elf = build_env(name, tmp_path)
    attributes = subprocess.run(["arm-none-eabi-readelf", "-A", str(elf)], capture_output=True, text=True,
                                check=True).stdout
    assert "Tag_ABI_VFP_args: VFP registers" in attributes  # hard-float objects and libraries alike
    symbols = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    names = {line.split()[-1]: line.split()[0] for line in symbols.splitlines() if len(line.split()) == 3}
    assert "main" in names and "Reset_Handler" in names and "_start" not in names  # our startup, not crt0
    binary = tmp_path / "fw.bin"
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(binary)], check=True)
    _, reset = struct.unpack_from("<II", binary.read_bytes())
    assert reset == int(names["Reset_Handler"], 16) | 1


@needs_arm
@pytest.mark.qemu
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="needs qemu-system-arm")
def test_stm32f405_environment_answers_hello_on_qemu(tmp_path, monkeypatch):
    from tinyml.boards import load_board
    from tinyml.host.build import FirmwareImage
    from tinyml.host.emulator import start_emulator
    from tinyml.host.link import BoardLink
    from tinyml.host.transport import open_port

    monkeypatch.setenv("TINYML_STATE_DIR", str(tmp_path / "state"))
    elf = build_env("stm32f405", tmp_path / "build")
    board = load_board("stm32f405")
    image = FirmwareImage(elf, board.name, "qemu_stm32f405", "engine", FIXTURE_MODEL, 0, 0, 0)
    emulated = start_emulator(board, image)
    try:
        transport = open_port(emulated.port, board.baud)
        try:
            info = BoardLink(transport).hello()
        finally:
            transport.close()
    finally:
        emulated.stop()
    sha = next(line.split('"')[1] for line in (FIXTURE_MODEL / "model.h").read_text().splitlines()
               if "TINYML_MODEL_SHA256" in line)
    assert info.board == "stm32f405" and info.model_sha256 == sha


# ------------------------------------------------------------ CMake agrees


def cmake_build_of(extra: list[str], build: Path) -> tuple[dict[str, list[str]], list[str]]:
    """Configures firmware/ with CMake; returns {source relative to firmware/: argv} and the link line."""
    configure = ["cmake", "-S", str(FIRMWARE), "-B", str(build), f"-DTINYML_MODEL_DIR={FIXTURE_MODEL}",
                 f"-DTINYML_ENGINE_DIR={FIRMWARE / 'engine'}", "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON", *extra]
    done = subprocess.run(configure, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    commands = {}
    for entry in json.loads((build / "compile_commands.json").read_text()):
        source = Path(entry["file"]).resolve()
        key = str(source.relative_to(FIRMWARE)) if source.is_relative_to(FIRMWARE) else f"<model>/{source.name}"
        commands[key] = entry["command"].split()
    link = (build / "CMakeFiles" / "tinyml_fw.dir" / "link.txt").read_text().split()
    return commands, link


def arch_flags(argv) -> set[str]:
    return {flag for flag in argv if flag.startswith(("-mcpu=", "-mthumb", "-mfloat-abi=", "-mfpu="))}


@needs_arm
@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")
@pytest.mark.parametrize("name", sorted(CMAKE_TWIN))
def test_cmake_builds_what_the_platformio_environment_builds(name, tmp_path):
    """Same sources, same CPU/FPU flags, chip define, board name and protocol on
    both sides; the same linker script, specs and startup choice on the link line."""
    env = INI.env(name)
    compiles, link = build_steps(env, FIRMWARE, FIXTURE_MODEL, tmp_path / "pio")
    cmake_commands, cmake_link = cmake_build_of(CMAKE_TWIN[name], tmp_path / "cmake")
    assert set(cmake_commands) == {step.source for step in compiles}
    for step in compiles:
        pio_argv, cmake_argv = step.argv, cmake_commands[step.source]
        assert arch_flags(pio_argv) == arch_flags(cmake_argv), step.source
        pio_defines = {f for f in pio_argv if f.startswith("-D")}
        cmake_defines = {f.replace("\\", "") for f in cmake_argv if f.startswith("-D")}
        for define in cmake_defines:
            if define.startswith(("-DTINYML_BOARD_NAME", "-DSTM32", "-DTINYML_PROTOCOL", "-DTM_UART_BAUD")):
                assert define in pio_defines, f"{step.source}: CMake has {define}, [env:{name}] does not"
    pio_link = list(link.argv)
    assert arch_flags(pio_link) == arch_flags(cmake_link)
    for flag in ("-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs"):
        assert flag in pio_link and flag in cmake_link, flag
    pio_script = Path(pio_link[pio_link.index("-T") + 1]).resolve()
    cmake_script = Path(cmake_link[cmake_link.index("-T") + 1]).resolve()
    assert pio_script == cmake_script


# ------------------------------------------------------------ the extra script


class StandInSconsEnv(dict):
    """The part of PlatformIO's SCons environment firmware/platformio_model.py uses."""

    def __init__(self, env_name: str) -> None:
        super().__init__(PIOENV=env_name)
        self.appended: dict[str, list] = {}
        self.built: list[tuple[str, str]] = []

    def GetProjectConfig(self):  # noqa: N802 (SCons API names)
        class Config:
            @staticmethod
            def get(section: str, option: str, default: str | None = None) -> str:
                return INI.get(section, option, default=default)

        return Config()

    def subst(self, text: str) -> str:
        platform = INI.env(self["PIOENV"]).platform_name
        return text.replace("$PROJECT_DIR", str(FIRMWARE)).replace("$PIOPLATFORM", platform)

    def Append(self, **variables) -> None:  # noqa: N802
        for name, values in variables.items():
            self.appended.setdefault(name, []).extend(values)

    def BuildSources(self, variant_dir: str, src_dir: str, src_filter: str) -> None:  # noqa: N802
        self.built.append((src_dir, src_filter))

    def Exit(self, code: int) -> None:  # noqa: N802
        raise SystemExit(code)


def run_extra_script(env_name: str) -> StandInSconsEnv:
    stand_in = StandInSconsEnv(env_name)
    script = FIRMWARE / "platformio_model.py"
    exec(compile(script.read_text(), str(script), "exec"),  # noqa: S102 (the project's own script)
         {"Import": lambda name: None, "env": stand_in, "__name__": "platformio_model"})
    return stand_in


@pytest.mark.parametrize("name", ["nucleo_f446re", "nucleo_h743zi", "stm32f405"])
def test_extra_script_hands_the_linker_the_abi_flags_and_adds_the_model(name, monkeypatch):
    monkeypatch.setenv("TINYML_MODEL_DIR", str(FIXTURE_MODEL))
    stand_in = run_extra_script(name)
    env = INI.env(name)
    forwarded = stand_in.appended["LINKFLAGS"]
    assert forwarded == link_relevant_flags(env.flags.ccflags)
    assert {"-nostartfiles", "--specs=nano.specs", "-mfloat-abi=hard", "-mthumb"} <= set(forwarded)
    assert any(f.startswith("-mfpu=") for f in forwarded) and any(f.startswith("-mcpu=") for f in forwarded)
    assert stand_in.built == [(str(FIXTURE_MODEL), "+<model.c>")]
    assert str(FIXTURE_MODEL) in stand_in.appended["CPPPATH"]


def test_extra_script_refuses_a_model_dir_without_the_backends_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYML_MODEL_DIR", str(tmp_path))
    with pytest.raises(SystemExit):
        run_extra_script("nucleo_f446re")
    assert "lacks model.c, model.h for the engine backend" in capsys.readouterr().err
