"""CMake configure + build of a firmware image for a board profile and a compiled model."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tinyml.boards import Board
from tinyml.errors import TinymlError
from tinyml.paths import firmware_dir
from tinyml.progress import say

NATIVE_PORT = "native"


@dataclass(frozen=True)
class FirmwareImage:
    """A linked firmware: for the native port an executable, else an ELF to flash or emulate."""

    path: Path
    board: str
    port: str
    backend: str
    model_dir: Path
    text_bytes: int
    data_bytes: int
    bss_bytes: int

    @property
    def flash_bytes(self) -> int:
        return self.text_bytes + self.data_bytes

    @property
    def ram_bytes(self) -> int:
        return self.data_bytes + self.bss_bytes


@dataclass(frozen=True)
class ModelNeeds:
    """What a model directory puts in the firmware: flash (the engine's compiled constants,
    or the .tflite for the TFLite-Micro backend) and RAM (its arena)."""

    flash_bytes: int
    ram_bytes: int
    source: str                  # the file the figures come from


def model_needs(model_dir: Path, backend: str = "engine") -> ModelNeeds | None:
    """The model's flash and arena from compile.json (engine) or manifest.json (tflm); None
    when the directory holds neither (then only the linker can tell)."""
    name, flash_key = ("compile.json", "weight_bytes") if backend == "engine" else ("manifest.json", "flash_bytes")
    path = Path(model_dir) / name
    try:
        data = json.loads(path.read_text())
        return ModelNeeds(int(data[flash_key]), int(data["arena_bytes"]), name)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_model_fits_board(board: Board, model_dir: Path, backend: str = "engine") -> None:
    """Before any build: "model needs N bytes of flash, board has M" when it cannot fit."""
    needs = model_needs(model_dir, backend)
    if needs is not None:
        board.check_model_fits(needs.flash_bytes, needs.ram_bytes)


_OVERFLOW = re.compile(r"region [`'\"]?([\w.]+)['`\"]? overflowed by (\d+) bytes")
_ASSERT_RAM = re.compile(r"RAM overflow[^\n]*")


def overflow_message(log_text: str, board_name: str, needs: ModelNeeds | None) -> str | None:
    """The linker's `region X overflowed by N bytes` as one line in the model's terms, or None."""
    match = _OVERFLOW.search(log_text)
    if match:
        region, over = match.group(1), int(match.group(2))
        kind = "flash" if re.search(r"flash|rom|text", region, re.I) else "RAM"
        if needs is not None:
            needed = needs.flash_bytes if kind == "flash" else needs.ram_bytes
            label = "flash" if kind == "flash" else "RAM (arena)"
            return (f"model needs {needed:,} bytes of {label}, board {board_name} has {max(0, needed - over):,} "
                    f"for it (the link overflowed region {region} by {over:,} bytes)")
        return f"the firmware for {board_name} does not fit: the link overflowed region {region} by {over:,} bytes"
    match = _ASSERT_RAM.search(log_text)
    if match:
        arena = f"model needs {needs.ram_bytes:,} bytes of RAM (arena); " if needs is not None else ""
        return f"{arena}the firmware for {board_name} does not fit its RAM ({match.group(0).strip()})"
    return None


def _run(cmd: list[str], log: Path, what: str, explain: Callable[[str], str | None] | None = None) -> None:
    with log.open("a") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        try:
            done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
        except FileNotFoundError as exc:
            raise TinymlError(f"{what}: {cmd[0]} is not installed") from exc
    if done.returncode != 0:
        text = log.read_text(errors="replace")
        message = explain(text) if explain is not None else None
        if message:
            raise TinymlError(f"{message}; full log in {log}")
        lines = [l for l in text.splitlines() if "error" in l.lower() or "Error" in l]
        reason = lines[0].strip() if lines else f"exit status {done.returncode}"
        raise TinymlError(f"{what} failed ({reason}); full log in {log}")


def _size_tool(cmake_dir: Path) -> str:
    """The binutils `size` of the compiler the build used (arm-none-eabi-, riscv64-unknown-elf-, host)."""
    try:
        cache = (cmake_dir / "CMakeCache.txt").read_text()
    except OSError:
        return "size"
    match = re.search(r"^CMAKE_C_COMPILER:\w+=(.*)$", cache, re.M)
    compiler = Path(match.group(1).strip()).name if match else ""
    return compiler[: -len("gcc")] + "size" if compiler.endswith("gcc") else "size"


def _sizes(size_tool: str, path: Path) -> tuple[int, int, int]:
    tool = shutil.which(size_tool) or shutil.which("size")
    if tool is None:
        return (0, 0, 0)
    out = subprocess.run([tool, str(path)], capture_output=True, text=True, check=False).stdout
    match = re.search(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s", out, re.M)
    return tuple(int(g) for g in match.groups()) if match else (0, 0, 0)  # type: ignore[return-value]


def image_of(path: Path, board: Board, backend: str = "engine") -> FirmwareImage:
    """A FirmwareImage for an ELF built earlier (e.g. the one a kept emulator runs),
    its sizes read with the board's toolchain `size` (zeros when it cannot be read)."""
    toolchain = str(board.build.get("toolchain", ""))
    size_tool = toolchain[: -len("gcc")] + "size" if toolchain.endswith("gcc") else "size"
    text, data, bss = _sizes(size_tool, Path(path)) if Path(path).is_file() else (0, 0, 0)
    return FirmwareImage(Path(path), board.name, str(board.build.get("port", "")), backend, Path(path).parent,
                         text, data, bss)


# What each backend builds from the model directory, and the stage that writes it.
BACKEND_MODEL_FILES = {
    "engine": (("model.c", "model.h"), "compiled model", "tinyml compile"),
    "tflm": (("model_data.cc", "model_data.h", "model_ops.h", "model_io.h"), "emitted model", "tinyml emit"),
}


@dataclass(frozen=True)
class TflmSource:
    """Where the TFLite-Micro backend takes TFLite-Micro from: a tree (headers, and
    the sources when no library is given) and optionally a prebuilt static library."""

    tree: Path
    library: Path | None = None

    @classmethod
    def resolve(cls, tree: Path | str | None = None, library: Path | str | None = None) -> "TflmSource":
        """The given paths, else TINYML_TFLM_DIR / TINYML_TFLM_LIB from the environment."""
        tree = tree or os.environ.get("TINYML_TFLM_DIR") or None
        library = library or os.environ.get("TINYML_TFLM_LIB") or None
        if tree is None:
            raise TinymlError("the tflm backend needs a TFLite-Micro tree: give --tflm-dir DIR or set TINYML_TFLM_DIR")
        tree_path = Path(tree).expanduser().resolve()
        if not (tree_path / "tensorflow" / "lite" / "micro" / "micro_interpreter.h").is_file():
            raise TinymlError(f"{tree_path} is not a TFLite-Micro tree (no tensorflow/lite/micro/micro_interpreter.h)")
        lib_path = Path(library).expanduser().resolve() if library else None
        if lib_path is not None and not lib_path.is_file():
            raise TinymlError(f"TFLite-Micro library {lib_path} does not exist")
        return cls(tree_path, lib_path)

    def cmake_args(self) -> list[str]:
        return [f"-DTINYML_TFLM_DIR={self.tree}", f"-DTINYML_TFLM_LIB={self.library or ''}"]


def check_model_dir(model_dir: Path, backend: str) -> None:
    if backend not in BACKEND_MODEL_FILES:
        raise TinymlError(f"unknown backend '{backend}': {' or '.join(BACKEND_MODEL_FILES)}")
    names, what, stage = BACKEND_MODEL_FILES[backend]
    missing = [name for name in names if not (model_dir / name).is_file()]
    if missing:
        raise TinymlError(f"{model_dir} holds no {what} ({', '.join(missing)} missing) for the {backend} backend: "
                          f"run `{stage}` first")


def build_port_firmware(port: str, board_name: str, compiled_dir: Path, build_dir: Path, backend: str = "engine",
                        profile: bool = False, baud: int = 115200, engine_dir: Path | None = None,
                        protocol: str = "binary", extra: list[str] | None = None,
                        tflm: TflmSource | None = None) -> FirmwareImage:
    """CMake configure + build of firmware/ for one port directory (firmware/ports/PORT).
    compiled_dir: `tinyml compile` output (engine) or `tinyml emit` output (tflm, with `tflm`)."""
    compiled_dir = Path(compiled_dir).resolve()
    if not Path(backend).is_absolute():  # else a backend directory of a test fixture, which checks its own files
        check_model_dir(compiled_dir, backend)
    if backend == "tflm" and tflm is None:
        tflm = TflmSource.resolve()
    if shutil.which("cmake") is None:
        raise TinymlError("cmake is not installed")
    source = firmware_dir()
    if not (source / "ports" / port / "port.cmake").is_file():
        raise TinymlError(f"no firmware port '{port}' in {source / 'ports'}")
    build_dir = Path(build_dir).resolve()
    cmake_dir = build_dir / f"cmake-{port}-{Path(backend).name}-{protocol}"
    cmake_dir.mkdir(parents=True, exist_ok=True)
    log = build_dir / "build.log"
    log.write_text("")
    engine = "" if engine_dir is None else str(Path(engine_dir).resolve())
    configure = ["cmake", "-S", str(source), "-B", str(cmake_dir), f"-DTINYML_PORT={port}",
                 f"-DTINYML_BOARD={board_name}", f"-DTINYML_BACKEND={backend}",
                 f"-DTINYML_MODEL_DIR={compiled_dir}", f"-DTINYML_ENGINE_DIR={engine}",
                 f"-DTINYML_UART_BAUD={baud}", f"-DTINYML_PROFILE={'ON' if profile else 'OFF'}",
                 f"-DTINYML_PROTOCOL={protocol}", *(tflm.cmake_args() if backend == "tflm" and tflm else []),
                 "-DCMAKE_BUILD_TYPE=Release", *(extra or [])]
    _run(configure, log, f"configuring the firmware for {board_name}")
    needs = model_needs(compiled_dir, backend)
    _run(["cmake", "--build", str(cmake_dir), "-j", str(min(2, os.cpu_count() or 1))], log,
         f"building the firmware for {board_name}", explain=lambda text: overflow_message(text, board_name, needs))
    built = cmake_dir / ("tinyml_fw" if port == NATIVE_PORT else "tinyml_fw.elf")
    final = build_dir / (f"{board_name}" if port == NATIVE_PORT else f"{board_name}.elf")
    temp = final.with_name(final.name + ".tmp")
    shutil.copy2(built, temp)
    os.replace(temp, final)
    text, data, bss = _sizes(_size_tool(cmake_dir), final)
    return FirmwareImage(final, board_name, port, backend, compiled_dir, text, data, bss)


def default_engine_dir() -> Path:
    return firmware_dir() / "engine"


def build_firmware(board: Board, compiled_dir: Path, build_dir: Path, backend: str = "engine",
                   profile: bool = False, engine_dir: Path | None = None, protocol: str = "binary",
                   extra: list[str] | None = None, tflm: TflmSource | None = None) -> FirmwareImage:
    """Builds the image for a board with this project's CMake: [build] port for CMake
    boards, [build] cmake_port for PlatformIO boards that also have a CMake port."""
    port = board.build.get("port") if board.build.get("system") == "cmake" else board.build.get("cmake_port")
    if not port:
        raise TinymlError(f"board {board.name} is built with {board.build.get('system', 'an unknown system')} "
                          f"only: use `tinyml flash --board {board.name}` (PlatformIO)")
    check_model_fits_board(board, compiled_dir, backend)
    say("build", f"building the {backend} firmware for {board.name} ({board.build.get('toolchain', 'cmake')}, "
                 f"about 10-30 s)")
    image = build_port_firmware(port, board.name, compiled_dir, build_dir, backend, profile, board.baud,
                                engine_dir if engine_dir is not None else default_engine_dir(), protocol, extra,
                                tflm)
    if image.flash_bytes and image.flash_bytes > board.flash_bytes:
        raise TinymlError(f"firmware for {board.name} needs {image.flash_bytes} bytes of flash, the board has "
                          f"{board.flash_bytes}")
    return image


def build_native_firmware(compiled_dir: Path, build_dir: Path, backend: str = "engine", profile: bool = False,
                        engine_dir: Path | None = None, sanitize: bool = False) -> FirmwareImage:
    """The firmware as a POSIX process on a pty (tests, fuzzing). engine_dir=None: the
    model calls no engine kernels (test fixture); pass default_engine_dir() for compiled models."""
    extra = ["-DTINYML_SANITIZE=ON"] if sanitize else []
    return build_port_firmware(NATIVE_PORT, "native", compiled_dir, build_dir, backend, profile, 115200, engine_dir,
                               extra=extra)


def compiled_dir_for(model_dir: Path, board: Board) -> Path:
    """Where the compiled C of a prepare/emit directory goes for a board's target."""
    return Path(model_dir) / f"compiled-{board.compile_target}"


def recorded_weights(model_dir: Path) -> str:
    """The weight encoding `tinyml prepare` chose for this directory (manifest.json "weights"),
    int8 when none is recorded (emit, older prepare outputs)."""
    manifest = Path(model_dir) / "manifest.json"
    if not manifest.is_file():
        return "int8"
    try:
        return str(json.loads(manifest.read_text()).get("weights") or "int8")
    except ValueError as exc:
        raise TinymlError(f"{manifest} is not valid JSON: {exc}") from exc


def ensure_compiled(model_dir: Path, board: Board, profile: bool = False, optimize: str = "speed",
                    weights: str | None = None) -> Path:
    """The compiled model for the board: model_dir itself when it holds model.c,
    else model_dir/model.tflite compiled for the board's target (optimize: the
    compiler's speed / size trade, `tinyml compile --optimize`; weights: the
    encoding, by default the one prepare recorded in the directory)."""
    from tinyml.compiler import compile_tflite

    model_dir = Path(model_dir)
    if (model_dir / "model.c").is_file():
        if weights is not None:
            raise TinymlError(f"--weights applies to a model directory holding model.tflite; {model_dir} holds "
                              "compiled C (choose the encoding with `tinyml compile --weights`)")
        return model_dir
    tflite = model_dir / "model.tflite"
    if not tflite.is_file():
        raise TinymlError(f"{model_dir} holds neither model.c (tinyml compile) nor model.tflite (tinyml prepare/emit)")
    weights = weights or recorded_weights(model_dir)
    out = compiled_dir_for(model_dir, board)
    say("compile", f"compiling {tflite} to C for {board.compile_target} (--optimize {optimize}, --weights {weights})")
    compile_tflite(tflite, out, target=board.compile_target, profile=profile, optimize=optimize, weights=weights)
    return out
