"""Boards as processes: QEMU emulating a board with `-serial pty`, or the host
port's firmware process. Each prints the pty it serves; a state file lets a
later command (`tinyml bench --board stm32f405`) find a running emulator."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tinyml.boards import Board
from tinyml.errors import TinymlError
from tinyml.progress import say

from .build import FirmwareImage

_PTY_LINE = re.compile(r"(?:char device redirected to|tinyml-host-board: pty) (/dev/pts/\d+)")


def state_dir() -> Path:
    """Where running emulators are recorded (TINYML_STATE_DIR overrides)."""
    env = os.environ.get("TINYML_STATE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_RUNTIME_DIR") or str(Path.home() / ".cache")
    return Path(base) / "tinyml" / "emulators"


@dataclass
class EmulatedBoard:
    board: str
    port: str        # the pty path: a pyserial URL
    pid: int
    image: str
    log: str
    state_file: str | None = None

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # A zombie child of ours counts as dead.
        try:
            status = Path(f"/proc/{self.pid}/stat").read_text().split(")")[-1].split()[0]
            return status != "Z"
        except OSError:
            return True

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ends the process (this pid only), forgets the state file, removes the log."""
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout_s
            while self.alive() and time.monotonic() < deadline:
                _reap(self.pid)
                time.sleep(0.02)
            if self.alive():
                os.kill(self.pid, signal.SIGKILL)
            _reap(self.pid)
        if self.state_file:
            Path(self.state_file).unlink(missing_ok=True)
        Path(self.log).unlink(missing_ok=True)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _launch(cmd: list[str], board: str, image: Path, timeout_s: float, record: bool) -> EmulatedBoard:
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    log_dir = directory if record else Path(tempfile.gettempdir())
    log_fd, log_name = tempfile.mkstemp(prefix=f"tinyml-{board}-", suffix=".log", dir=log_dir)
    try:
        # Own session and a log file instead of a pipe: the board outlives the
        # command that started it (`tinyml flash`) without dying on SIGPIPE.
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log_fd, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    except OSError as exc:
        raise TinymlError(f"cannot start {cmd[0]}: {exc}") from exc
    finally:
        os.close(log_fd)
    deadline = time.monotonic() + timeout_s
    port = None
    while time.monotonic() < deadline:
        text = Path(log_name).read_text(errors="replace")
        match = _PTY_LINE.search(text)
        if match:
            port = match.group(1)
            break
        if process.poll() is not None:
            last = text.strip().splitlines()[-1] if text.strip() else f"exit status {process.returncode}"
            Path(log_name).unlink(missing_ok=True)
            raise TinymlError(f"{Path(cmd[0]).name} exited before serving a port: {last}")
        time.sleep(0.01)
    if port is None:
        process.kill()
        process.wait()
        raise TinymlError(f"{Path(cmd[0]).name} printed no pty within {timeout_s:g} s (log {log_name})")
    emulated = EmulatedBoard(board, port, process.pid, str(image), log_name)
    # Popen would otherwise warn that the child is still running when collected.
    process.returncode = 0
    if record:
        state = directory / f"{board}.json"
        emulated.state_file = str(state)
        temp = state.with_suffix(".tmp")
        temp.write_text(json.dumps(asdict(emulated)))
        os.replace(temp, state)
    return emulated


def start_emulator(board: Board, image: FirmwareImage, timeout_s: float = 10.0) -> EmulatedBoard:
    """Boots the image in QEMU; returns once QEMU serves the board's UART on a pty.
    Stops an emulator of the same board this state directory recorded before."""
    if not board.emulator:
        raise TinymlError(f"board {board.name} has no emulator; flash it with `tinyml flash --board {board.name}`")
    program = board.emulator.get("program", "qemu-system-arm")
    if shutil.which(program) is None:
        raise TinymlError(f"{program} is not installed (Debian: apt-get install qemu-system-arm)")
    if not Path(image.path).is_file():
        raise TinymlError(f"firmware image {image.path} does not exist")
    previous = find_running_emulator(board)
    if previous is not None:
        previous.stop()
    cmd = [program, "-M", board.emulator["machine"], *board.emulator.get("args", []),
           "-serial", "pty", "-kernel", str(image.path)]
    say("qemu", f"booting {Path(image.path).name} on {program} -M {board.emulator['machine']}")
    return _launch(cmd, board.name, Path(image.path), timeout_s, record=True)


def start_host_board(image: FirmwareImage, timeout_s: float = 10.0, record: bool = False) -> EmulatedBoard:
    """Runs a host-port firmware (build_host_firmware) as a process on a pty."""
    if image.port != "host":
        raise TinymlError(f"{image.path} is a {image.port} image, not a host-port one")
    return _launch([str(image.path)], "host", Path(image.path), timeout_s, record)


def find_running_emulator(board: Board | str) -> EmulatedBoard | None:
    """The emulator recorded for this board, if its process still runs."""
    name = board if isinstance(board, str) else board.name
    state = state_dir() / f"{name}.json"
    try:
        emulated = EmulatedBoard(**json.loads(state.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if not emulated.alive() or not Path(emulated.port).exists():
        state.unlink(missing_ok=True)
        return None
    emulated.state_file = str(state)
    return emulated


def resolve_port(port: str | None, board: Board | None) -> str:
    """The pyserial URL to bench: --port if given, else the running emulator of --board."""
    if port:
        return port
    if board is None:
        raise TinymlError("give --port URL, or --board NAME of a running emulated board")
    running = find_running_emulator(board)
    if running is None:
        hint = f"start it with `tinyml flash --board {board.name}`" if board.emulator else "give --port URL"
        raise TinymlError(f"no emulated {board.name} is running: {hint}")
    return running.port
