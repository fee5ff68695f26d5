"""Putting a firmware on a board: port discovery by USB VID:PID, the upload tool,
and a HELLO afterwards that proves the board runs the expected model.

Real boards are flashed through PlatformIO (`pio run -e ENV -t upload`) from
firmware/, or, for a prebuilt image, through esptool, st-flash or OpenOCD.
Emulated boards (flasher tool "qemu") are "flashed" by booting the image in
QEMU (host/emulator.py); the emulator keeps running for `tinyml bench`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import serial
from serial.tools import list_ports

from tinyml.boards import Board, load_board
from tinyml.errors import TinymlError
from tinyml.paths import firmware_dir
from tinyml.progress import say

from .build import (FirmwareImage, TflmSource, build_firmware, check_model_fits_board, ensure_compiled, model_needs,
                    overflow_message)
from .emulator import EmulatedBoard, keep_dir, record_key, state_dir
from .protocol import BoardInfo
from .session import BoardSession

# What the USB IDs in boards/*.toml are, for messages.
USB_BRIDGES = {
    "10C4:EA60": "CP210x USB-UART",
    "1A86:7523": "CH340 USB-UART",
    "1A86:55D4": "CH9102 USB-UART",
    "303A:1001": "Espressif USB-Serial/JTAG (ESP32-S3/C3 native USB)",
    "0483:374B": "ST-LINK/V2-1",
    "0483:374E": "ST-LINK/V3",
    "0483:3752": "ST-LINK/V2-1 (no mass storage)",
    "0483:3753": "ST-LINK/V3",
}

STM32_FLASH_BASE = 0x08000000
# Offsets of a PlatformIO/ESP-IDF build's parts; the bootloader's depends on the chip.
ESP_BOOTLOADER_OFFSET = {"esp32": 0x1000, "esp32s3": 0x0, "esp32c3": 0x0}
ESP_PARTITIONS_OFFSET = 0x8000
ESP_APP_OFFSET = 0x10000
ESPTOOL_BAUD = 460800
TOOL_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class UsbPort:
    """A serial port the OS lists, with the USB IDs of the bridge behind it."""

    device: str
    vid: int | None
    pid: int | None
    serial_number: str | None = None
    description: str = ""

    @property
    def usb_id(self) -> str | None:
        if self.vid is None or self.pid is None:
            return None
        return f"{self.vid:04X}:{self.pid:04X}"

    def label(self) -> str:
        bridge = USB_BRIDGES.get(self.usb_id or "", self.description or "unknown device")
        serial_part = f", serial {self.serial_number}" if self.serial_number else ""
        return f"{self.device} ({bridge} {self.usb_id}{serial_part})"


@dataclass(frozen=True)
class ToolCommand:
    """One program run of an upload: argv, working directory, extra environment."""

    argv: list[str]
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    def shell(self) -> str:
        prefix = " ".join(f"{k}={v}" for k, v in self.env.items())
        cmd = " ".join(_quote(a) for a in self.argv)
        where = f"(cd {self.cwd} && " if self.cwd else ""
        return f"{where}{prefix + ' ' if prefix else ''}{cmd}{')' if self.cwd else ''}"


@dataclass
class FlashResult:
    board: str
    port: str                    # serial device (or the emulator's pty)
    tool: str                    # "platformio", "esptool", "st-flash", "openocd", "qemu"
    commands: list[ToolCommand]
    image: Path | None
    expected_sha256: str | None
    info: BoardInfo | None       # HELLO after flashing (None when verify=False)
    emulator: EmulatedBoard | None = None


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


def _normalise_usb_id(text: str) -> str:
    match = re.fullmatch(r"\s*(?:0x)?([0-9a-fA-F]{1,4})\s*:\s*(?:0x)?([0-9a-fA-F]{1,4})\s*", text)
    if not match:
        raise TinymlError(f"bad USB id '{text}' in a board profile: expected VID:PID in hex, e.g. 10C4:EA60")
    return f"{int(match.group(1), 16):04X}:{int(match.group(2), 16):04X}"


def board_usb_ids(board: Board) -> list[str]:
    """The VID:PID pairs of the bridges this board is known to sit behind."""
    return [_normalise_usb_id(text) for text in board.flasher.get("usb", [])]


def list_usb_ports() -> list[UsbPort]:
    """Every serial port pyserial lists, USB or not."""
    return [UsbPort(p.device, p.vid, p.pid, p.serial_number, p.description or "") for p in list_ports.comports()]


def find_board_ports(board: Board) -> list[UsbPort]:
    """Ports whose USB VID:PID is one of the board profile's `flasher.usb`."""
    wanted = set(board_usb_ids(board))
    return [port for port in list_usb_ports() if port.usb_id in wanted]


def select_port(board: Board, port: str | None = None) -> UsbPort:
    """The board's port: the one given, or the only one whose USB ID matches.
    Raises TinymlError for no board or several boards."""
    if port:
        for listed in list_usb_ports():
            if listed.device == port:
                return listed
        if "://" not in port and not Path(port).exists():
            raise TinymlError(f"port {port} does not exist (is the board plugged in?)")
        return UsbPort(port, None, None)
    wanted = board_usb_ids(board)
    if not wanted:
        raise TinymlError(f"board {board.name} lists no USB ids (flasher.usb): pass --port")
    found = find_board_ports(board)
    if not found:
        names = ", ".join(f"{USB_BRIDGES.get(u, 'USB device')} {u}" for u in wanted)
        raise TinymlError(f"no {board.name} board found: no serial port with USB id {names}; "
                          "plug it in (a data cable, not a charge-only one) or pass --port")
    if len(found) > 1:
        listing = "; ".join(p.label() for p in found)
        raise TinymlError(f"several possible {board.name} boards: {listing}; choose one with --port")
    return found[0]


def check_port_free(device: str) -> None:
    """Raises TinymlError when another program holds the serial port."""
    if "://" in device:
        return
    try:
        handle = serial.Serial(device, exclusive=True)
    except serial.SerialException as exc:
        text = str(exc)
        if exc.errno in (16, 11) or re.search(r"busy|lock|Resource temporarily", text, re.I):
            raise TinymlError(f"port {device} is busy: another program (a serial monitor, a running "
                              "`tinyml bench`) holds it; close it and retry") from exc
        if exc.errno == 13 or "Permission denied" in text:
            raise TinymlError(f"no permission to open {device}: add yourself to the dialout group "
                              "(sudo usermod -aG dialout $USER, then log in again)") from exc
        raise TinymlError(f"cannot open port {device}: {text.splitlines()[0] if text else exc}") from exc
    handle.close()


def find_tool(names: list[str], what: str, hint: str) -> str:
    """Path of the first program of `names` on PATH; else a TinymlError naming the install."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise TinymlError(f"{what} not found ({' or '.join(names)} not on PATH): {hint}")


def model_sha256_of(model_dir: Path) -> str | None:
    """The model hash a build from this directory will report: manifest.json
    (tinyml prepare/emit) or the TINYML_MODEL_SHA256 macro of model.h / model_io.h."""
    model_dir = Path(model_dir)
    manifest = model_dir / "manifest.json"
    if manifest.is_file():
        try:
            sha = json.loads(manifest.read_text()).get("model_sha256")
        except ValueError as exc:
            raise TinymlError(f"{manifest} is not valid JSON: {exc}") from exc
        if sha:
            return str(sha).lower()
    for header in ("model.h", "model_io.h"):
        path = model_dir / header
        if path.is_file():
            match = re.search(r'#define\s+TINYML_MODEL_SHA256\s+"([0-9a-fA-F]{64})"', path.read_text())
            if match:
                return match.group(1).lower()
    return None


def _esp_chip(board: Board) -> str:
    chip = board.mcu.lower().replace("-", "")
    if chip not in ESP_BOOTLOADER_OFFSET:
        raise TinymlError(f"board {board.name}: esptool chip for MCU {board.mcu} unknown")
    return chip


def _openocd_target(board: Board) -> str:
    mcu = board.mcu.upper()
    for prefix, cfg in (("STM32F4", "stm32f4x"), ("STM32H7", "stm32h7x"), ("STM32F7", "stm32f7x"),
                        ("STM32L4", "stm32l4x")):
        if mcu.startswith(prefix):
            return f"target/{cfg}.cfg"
    raise TinymlError(f"board {board.name}: no OpenOCD target known for MCU {board.mcu}")


def platformio_env(board: Board, backend: str) -> str:
    env = board.build.get("env")
    if board.build.get("system") != "platformio" or not env:
        raise TinymlError(f"board {board.name} is not built with PlatformIO (no build.env in its profile)")
    if backend not in ("engine", "tflm"):
        raise TinymlError(f"unknown backend '{backend}': engine or tflm")
    return env if backend == "engine" else f"{env}_tflm"


def plan_platformio_upload(board: Board, port: str, model_dir: Path, backend: str = "engine",
                           profile: bool = False) -> ToolCommand:
    """`pio run -e ENV -t upload` from firmware/; the model directory reaches the
    build through TINYML_MODEL_DIR (read by firmware/platformio_model.py)."""
    pio = find_tool(["pio", "platformio"], "PlatformIO",
                    "pip install platformio (or pip install -e '.[boards]'), or pass --image with a prebuilt image")
    model_dir = Path(model_dir).resolve()
    needed = ("model.c", "model.h") if backend == "engine" else ("model_data.cc", "model_ops.h", "model_io.h")
    missing = [name for name in needed if not (model_dir / name).is_file()]
    if missing:
        step = "tinyml compile MODEL.tflite --out DIR" if backend == "engine" else "tinyml emit MODEL.tflite --out DIR"
        raise TinymlError(f"{model_dir} lacks {', '.join(missing)} for the {backend} backend: run `{step}`")
    env = platformio_env(board, backend)
    return ToolCommand([pio, "run", "-e", env, "-t", "upload", "--upload-port", port], cwd=firmware_dir(),
                       env={"TINYML_MODEL_DIR": str(model_dir), **({"TINYML_PROFILE": "1"} if profile else {})})


def plan_image_upload(board: Board, port: UsbPort, image: Path, address: int | None = None) -> list[ToolCommand]:
    """Tool commands that write a prebuilt image: esptool for ESP32 boards,
    st-flash (else OpenOCD) for STM32 boards."""
    image = Path(image).resolve()
    if not image.is_file():
        raise TinymlError(f"image {image} does not exist")
    tool = board.flasher.get("tool", "")
    if tool == "esptool":
        return [_plan_esptool(board, port, image, address)]
    if tool in ("st-flash", "openocd"):
        return _plan_stlink(board, port, image, address, prefer=tool)
    raise TinymlError(f"board {board.name}: cannot flash an image with flasher '{tool or 'none'}'")


def _esptool_argv() -> list[str]:
    for name in ("esptool.py", "esptool"):
        path = shutil.which(name)
        if path:
            return [path]
    try:
        import esptool  # noqa: F401
    except ImportError:
        raise TinymlError("esptool not found (esptool.py or esptool not on PATH): pip install esptool") from None
    return [sys.executable, "-m", "esptool"]


def _plan_esptool(board: Board, port: UsbPort, image: Path, address: int | None) -> ToolCommand:
    chip = _esp_chip(board)
    argv = [*_esptool_argv(), "--chip", chip, "--port", port.device, "--baud", str(ESPTOOL_BAUD), "write_flash"]
    siblings = (image.parent / "bootloader.bin", image.parent / "partitions.bin")
    if address is None and image.suffix == ".bin" and all(p.is_file() for p in siblings):
        # A PlatformIO build directory: bootloader, partition table and app at their offsets.
        argv += [hex(ESP_BOOTLOADER_OFFSET[chip]), str(siblings[0]), hex(ESP_PARTITIONS_OFFSET), str(siblings[1]),
                 hex(ESP_APP_OFFSET), str(image)]
    else:
        if image.suffix != ".bin":
            raise TinymlError(f"esptool writes .bin images, not {image.name}: merge a build with "
                              "`esptool.py merge_bin` or pass PlatformIO's firmware.bin")
        argv += [hex(0 if address is None else address), str(image)]  # a merged image starts at 0
    return ToolCommand(argv)


def _plan_stlink(board: Board, port: UsbPort, image: Path, address: int | None, prefer: str) -> list[ToolCommand]:
    base = STM32_FLASH_BASE if address is None else address
    order = ["st-flash", "openocd"] if prefer == "st-flash" else ["openocd", "st-flash"]
    for tool in order:
        path = shutil.which(tool)
        if path is None:
            continue
        if tool == "openocd":
            program = f"program {image} {'' if image.suffix in ('.elf', '.hex') else hex(base) + ' '}verify reset exit"
            argv = [path, "-f", "interface/stlink.cfg"]
            if port.serial_number:
                argv += ["-c", f"adapter serial {port.serial_number}"]
            argv += ["-f", _openocd_target(board), "-c", program.replace("  ", " ")]
            return [ToolCommand(argv)]
        serial_args = ["--serial", port.serial_number] if port.serial_number else []
        if image.suffix == ".hex":
            return [ToolCommand([path, *serial_args, "--reset", "--format", "ihex", "write", str(image)])]
        commands: list[ToolCommand] = []
        binary = image
        if image.suffix == ".elf":
            objcopy = find_tool(["arm-none-eabi-objcopy"], "arm-none-eabi-objcopy",
                                "apt-get install binutils-arm-none-eabi, or pass a .bin")
            binary = image.with_suffix(".bin")
            commands.append(ToolCommand([objcopy, "-O", "binary", str(image), str(binary)]))
        commands.append(ToolCommand([path, *serial_args, "--reset", "write", str(binary), hex(base)]))
        return commands
    raise TinymlError("no ST-LINK flashing tool found (st-flash or openocd not on PATH): "
                      "apt-get install stlink-tools (or openocd)")


def run_tool(command: ToolCommand, log: Path) -> None:
    """Runs one upload step, its output appended to log; TinymlError on failure."""
    env = {**os.environ, **command.env}
    with log.open("a") as out:
        out.write(f"$ {command.shell()}\n")
        out.flush()
        try:
            done = subprocess.run(command.argv, cwd=command.cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=TOOL_TIMEOUT_S, check=False)
        except FileNotFoundError as exc:
            raise TinymlError(f"{command.argv[0]} is not installed") from exc
        except subprocess.TimeoutExpired as exc:
            raise TinymlError(f"{Path(command.argv[0]).name} did not finish in {TOOL_TIMEOUT_S:g} s; log {log}") from exc
    if done.returncode != 0:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()
                 if line.strip() and not line.startswith("$ ")]
        errors = [line for line in lines if re.search(r"error|fail|could not|cannot", line, re.I)]
        reason = (errors or lines or [f"exit status {done.returncode}"])[-1]
        raise TinymlError(f"{Path(command.argv[0]).name} failed ({reason}); full log in {log}")


def verify_board(port: str, baud: int, expected_sha256: str | None, boot_wait_s: float = 2.0,
                 attempts: int = 6) -> BoardInfo:
    """HELLO over the board link; TinymlError unless the board runs expected_sha256."""
    say("flash", f"asking the board on {port} which model it runs (HELLO)")
    session = BoardSession(None, port, baud, expected_sha256, expected_from="the flashed build",
                           mismatch_hint="the upload did not take (or flashed another build)",
                           open_retry_s=boot_wait_s, hello_attempts=attempts)
    with session:
        assert session.info is not None
        return session.info


def flash_log_path(board: Board) -> Path:
    """Where an upload's tool output goes: one log per board in the state directory,
    overwritten by the next flash (no temporary folders to leave behind)."""
    directory = state_dir() / "logs"
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / f"flash-{board.name}.log"
    log.write_text("")
    return log


def flash_board(board: Board | str, port: str | None = None, image: Path | None = None,
                model_dir: Path | None = None, backend: str = "engine", address: int | None = None,
                expected_sha256: str | None = None, verify: bool = True, build_dir: Path | None = None,
                log: Path | None = None, profile: bool = False, optimize: str = "speed",
                progress: bool = False, tflm: TflmSource | None = None, weights: str | None = None) -> FlashResult:
    """Builds (PlatformIO) or takes a prebuilt image, uploads it, then checks with
    HELLO that the board runs the expected model.

    model_dir: a `tinyml compile` output, or a prepare/emit output that is compiled
    here for the board's target (engine backend, no image; optimize as `tinyml compile`;
    weights: the encoding, by default the one `tinyml prepare` recorded in model_dir).
    Emulated boards boot `image` (an ELF) or an image built with this project's
    CMake into the emulator's own folder; the emulator keeps running afterwards.
    """
    board = load_board(board) if isinstance(board, str) else board
    if expected_sha256 is None and model_dir is not None:
        expected_sha256 = model_sha256_of(model_dir)
    source = model_dir
    if image is None and backend == "engine" and model_dir is not None:
        source = ensure_compiled(Path(model_dir), board, profile=profile, optimize=optimize, weights=weights)
    elif weights is not None:
        raise TinymlError("--weights chooses how the engine backend compiles a model directory: it cannot go with "
                          "--image or --backend tflm")

    if board.flasher.get("tool") == "selfcheck":
        raise TinymlError(f"board {board.name} runs a self-check image, not the serial protocol: "
                          "build and run it with tinyml.host.selfcheck (see docs/boards/esp32.md)")
    if board.flasher.get("tool") == "qemu":
        return _flash_emulated(board, image, model_dir, source, backend, expected_sha256, verify, build_dir,
                               profile, progress, tflm)

    log = log or flash_log_path(board)
    selected = select_port(board, port)
    check_port_free(selected.device)
    if image is not None:
        commands = plan_image_upload(board, selected, Path(image), address)
        tool = Path(commands[-1].argv[0]).name.removesuffix(".py")
        if tool == Path(sys.executable).name:
            tool = "esptool"
    else:
        if source is None:
            raise TinymlError("nothing to flash: give a model directory (tinyml compile/emit output) or --image")
        check_model_fits_board(board, Path(source), backend)
        commands = [plan_platformio_upload(board, selected.device, Path(source), backend, profile)]
        if backend == "tflm" and tflm is not None:
            commands[0].env["TINYML_TFLM_DIR"] = str(tflm.tree)
        tool = "platformio"
    for command in commands:
        say("flash", f"uploading to {selected.device}: {command.shell()}")
        try:
            run_tool(command, log)
        except TinymlError:
            # A link that overflows the board's memory says so in the model's terms.
            needs = model_needs(Path(source), backend) if source is not None else None
            message = overflow_message(log.read_text(errors="replace"), board.name, needs) if log.is_file() else None
            if message:
                raise TinymlError(f"{message}; full log in {log}") from None
            raise
    info = verify_board(selected.device, board.baud, expected_sha256) if verify else None
    return FlashResult(board.name, selected.device, tool, commands, Path(image) if image else None,
                       expected_sha256, info)


def _flash_emulated(board: Board, image: Path | None, model_dir: Path | None, source: Path | None, backend: str,
                    expected_sha256: str | None, verify: bool, build_dir: Path | None, profile: bool,
                    progress: bool, tflm: TflmSource | None = None) -> FlashResult:
    """Boots the emulator and leaves it running, recorded under the board and model_dir;
    a firmware built here goes into the emulator's own folder, removed when it stops."""
    work = keep_dir(record_key(board.name, model_dir))
    if image is None:
        if source is None:
            raise TinymlError(f"nothing to boot on the emulated {board.name}: give a compiled model directory "
                              "or --image")
        firmware = build_firmware(board, Path(source), build_dir or work / "build", backend=backend, profile=profile,
                                  tflm=tflm)
    else:
        path = Path(image)
        if not path.is_file():
            raise TinymlError(f"image {path} does not exist")
        firmware = FirmwareImage(path, board.name, str(board.build.get("port", "")), backend,
                                 Path(source) if source else path.parent, 0, 0, 0)
    session = BoardSession.boot(board, firmware, expected_sha256=expected_sha256, model_dir=model_dir,
                                keep_running=True, work_dir=work if work.is_dir() else None, progress=progress)
    session.expected_from, session.check_hello = "the flashed build", verify
    session.mismatch_hint = "the image was built from another model"
    with session:
        info = session.info
        emulated = session.emulator
    command = ToolCommand([str(board.emulator.get("program", "qemu")) if board.emulator else "qemu",
                           "-kernel", str(firmware.path)])
    return FlashResult(board.name, emulated.port if emulated else "", "qemu", [command], Path(firmware.path),
                       expected_sha256, info, emulated)
