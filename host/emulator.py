"""Boards as processes: QEMU emulating a board with `-serial pty`, or the host
port's firmware process. Each prints the pty it serves; a state file lets a
later command (`tinyml bench --board stm32f405`) find a running emulator.

Records are keyed by board and model directory, so flashing another board, or
the same board from another model directory, leaves the running ones alone:

* `tinyml flash` keeps its emulator running under the key `BOARD-<hash of the
  model dir>` (just `BOARD` without a model dir); flashing the same board from
  the same directory again replaces it.
* A board session that owns its emulator (demo, tests, benchmarks) records it
  under `BOARD-pid<PID>-<n>` (so `tinyml emulator list` shows an orphan if that
  process was killed) and stops it when the session ends.
* `tinyml bench --board BOARD --model-dir DIR` takes the emulator flashed from
  DIR, else the only running emulator of BOARD; the model hash check does the rest.
"""

from __future__ import annotations

import hashlib
import itertools
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


_session_counter = itertools.count()


def record_key(board: str, model_dir: Path | str | None = None, kept: bool = True) -> str:
    """The name of a running emulator's record (see the module docstring)."""
    if not kept:
        return f"{board}-pid{os.getpid()}-{next(_session_counter)}"
    if model_dir is None:
        return board
    digest = hashlib.sha256(str(Path(model_dir).resolve()).encode()).hexdigest()[:10]
    return f"{board}-{digest}"


def keep_dir(key: str) -> Path:
    """A kept emulator's own folder (its firmware build and image); removed when it stops."""
    return state_dir() / key


@dataclass
class EmulatedBoard:
    board: str
    port: str        # the pty path: a pyserial URL
    pid: int
    image: str
    log: str
    state_file: str | None = None
    key: str = ""
    model_dir: str | None = None   # the model directory it was flashed from
    kept: bool = True              # left running by `tinyml flash`; else owned by a session
    owner_pid: int = 0             # the process that started it
    started: float = 0.0           # time.time() at start
    work_dir: str | None = None    # removed with the emulator (a kept board's build)

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
        if self.work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _launch(cmd: list[str], board: str, image: Path, timeout_s: float, record: bool, key: str | None = None,
            model_dir: Path | None = None, kept: bool = True, work_dir: Path | None = None) -> EmulatedBoard:
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
    emulated = EmulatedBoard(board, port, process.pid, str(image), log_name, key=key or board,
                             model_dir=str(Path(model_dir).resolve()) if model_dir else None, kept=kept,
                             owner_pid=os.getpid(), started=time.time(),
                             work_dir=str(work_dir) if work_dir else None)
    # Popen would otherwise warn that the child is still running when collected.
    process.returncode = 0
    if record:
        state = directory / f"{emulated.key}.json"
        emulated.state_file = str(state)
        temp = state.with_suffix(".tmp")
        temp.write_text(json.dumps(asdict(emulated)))
        os.replace(temp, state)
    return emulated


def start_emulator(board: Board, image: FirmwareImage, timeout_s: float = 10.0, model_dir: Path | None = None,
                   kept: bool = True, work_dir: Path | None = None) -> EmulatedBoard:
    """Boots the image in QEMU; returns once QEMU serves the board's UART on a pty.

    kept: recorded under the board and model_dir (`tinyml flash`), replacing the
    emulator recorded under that key before; else recorded as owned by this
    process (a session that stops it). work_dir is removed when it stops."""
    if not board.emulator:
        raise TinymlError(f"board {board.name} has no emulator; flash it with `tinyml flash --board {board.name}`")
    program = board.emulator.get("program", "qemu-system-arm")
    if shutil.which(program) is None:
        raise TinymlError(f"{program} is not installed (Debian: apt-get install qemu-system-arm)")
    if not Path(image.path).is_file():
        raise TinymlError(f"firmware image {image.path} does not exist")
    key = record_key(board.name, model_dir, kept)
    previous = _read_record(state_dir() / f"{key}.json")
    if previous is not None:
        previous.work_dir = None  # the new image may be built in the same folder
        previous.stop()
    cmd = [program, "-M", board.emulator["machine"], *board.emulator.get("args", []),
           "-serial", "pty", "-kernel", str(image.path)]
    say("qemu", f"booting {Path(image.path).name} on {program} -M {board.emulator['machine']}")
    return _launch(cmd, board.name, Path(image.path), timeout_s, record=True, key=key, model_dir=model_dir,
                   kept=kept, work_dir=work_dir)


def start_native_board(image: FirmwareImage, timeout_s: float = 10.0, record: bool = False,
                     model_dir: Path | None = None, kept: bool = True) -> EmulatedBoard:
    """Runs a native-port firmware (build_native_firmware) as a process on a pty;
    recorded (record=True) under the same keys as an emulator."""
    if image.port != "native":
        raise TinymlError(f"{image.path} is a {image.port} image, not a native-port one")
    key = record_key("native", model_dir, kept) if record else None
    return _launch([str(image.path)], "native", Path(image.path), timeout_s, record, key=key, model_dir=model_dir,
                   kept=kept)


def _read_record(state: Path) -> EmulatedBoard | None:
    """The record in a state file if its process still runs; a stale file is removed."""
    try:
        emulated = EmulatedBoard(**json.loads(state.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if not emulated.alive() or not Path(emulated.port).exists():
        state.unlink(missing_ok=True)
        if emulated.work_dir:
            shutil.rmtree(emulated.work_dir, ignore_errors=True)
        return None
    emulated.state_file = str(state)
    return emulated


def list_emulators(board: Board | str | None = None) -> list[EmulatedBoard]:
    """Every running emulator this state directory records (of one board if given), oldest first."""
    name = board if board is None or isinstance(board, str) else board.name
    directory = state_dir()
    found = [e for e in (_read_record(path) for path in sorted(directory.glob("*.json"))) if e is not None]
    return sorted((e for e in found if name is None or e.board == name), key=lambda e: e.started)


def find_running_emulator(board: Board | str, model_dir: Path | None = None) -> EmulatedBoard | None:
    """The emulator flashed for this board from model_dir; without model_dir, or
    when none was flashed from it, the board's only running emulator (None if several)."""
    name = board if isinstance(board, str) else board.name
    if model_dir is not None:
        exact = _read_record(state_dir() / f"{record_key(name, model_dir)}.json")
        if exact is not None:
            return exact
    plain = _read_record(state_dir() / f"{name}.json")
    if plain is not None:
        return plain
    running = list_emulators(name)
    return running[0] if len(running) == 1 else None


def resolve_port(port: str | None, board: Board | None, model_dir: Path | None = None) -> str:
    """The pyserial URL to bench: --port if given, else the running emulator of --board
    (the one flashed from model_dir when several run)."""
    if port:
        return port
    if board is None:
        raise TinymlError("give --port URL, or --board NAME of a running emulated board")
    running = find_running_emulator(board, model_dir)
    if running is None:
        several = list_emulators(board)
        if several:
            listing = "; ".join(f"{e.port} (model dir {e.model_dir or '?'})" for e in several)
            raise TinymlError(f"several emulated {board.name} boards run and none was flashed from {model_dir}: "
                              f"{listing}; give --port")
        hint = f"start it with `tinyml flash --board {board.name}`" if board.emulator else "give --port URL"
        raise TinymlError(f"no emulated {board.name} is running: {hint}")
    return running.port


def stop_emulators(which: str, model_dir: Path | None = None) -> list[EmulatedBoard]:
    """Stops the running emulators of board `which` (only the one flashed from model_dir
    when given), or every one for "all"; returns those stopped. "all" also removes the
    folders of builds whose emulator never started (a failed flash)."""
    if which == "all":
        targets = list_emulators()
    else:
        targets = list_emulators(which)
        if model_dir is not None:
            key = record_key(which, model_dir)
            targets = [e for e in targets if e.key == key]
    for emulated in targets:
        emulated.stop()
    if which == "all" and state_dir().is_dir():
        for folder in state_dir().iterdir():
            if folder.is_dir() and folder.name != "logs" and not (state_dir() / f"{folder.name}.json").exists():
                shutil.rmtree(folder, ignore_errors=True)
    return targets
