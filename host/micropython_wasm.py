"""MicroPython in WebAssembly as a board on a pty: `node bridge.mjs` runs the official
MicroPython wasm build (npm `@micropython/micropython-webassembly-pyscript`) with a pty's
master as its stdin/stdout; the pty's slave path is the serial port the host opens.

It is a real MicroPython VM and REPL (raw REPL, soft reset); what differs from a board is
listed in firmware/micropython/wasm_bridge/bridge.mjs (no raw-paste, no filesystem writes
persisting across a soft reset beyond the VM's in-memory one, no ticks_cpu).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import termios
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path

from tinyml.errors import TinymlError
from tinyml.paths import firmware_dir


def bridge_dir() -> Path:
    return firmware_dir() / "micropython" / "wasm_bridge"


def bridge_available() -> str | None:
    """None when node and the npm package are installed, else what is missing (one line)."""
    if shutil.which("node") is None:
        return "node is not installed (scripts/setup.sh installs it)"
    package = bridge_dir() / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
    if not (package / "micropython.mjs").is_file():
        return f"the MicroPython wasm package is not installed (npm ci in {bridge_dir()})"
    return None


@dataclass
class WasmBoard:
    """A running bridge: `port` is the pty slave's path (a pyserial URL)."""

    port: str
    process: subprocess.Popen
    _master: int
    _slave: int
    _closed: bool = field(default=False)

    def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "WasmBoard":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_wasm_board(heap_bytes: int = 256 * 1024, boot_timeout_s: float = 30.0) -> WasmBoard:
    """Starts MicroPython (wasm) behind a fresh pty and waits for its first prompt."""
    missing = bridge_available()
    if missing:
        raise TinymlError(missing)
    master, slave = os.openpty()
    # Raw line discipline on the slave: no echo, no CR/LF translation, every byte passes.
    tty.setraw(slave, termios.TCSANOW)
    process = subprocess.Popen(
        ["node", str(bridge_dir() / "bridge.mjs"), "--heap", str(heap_bytes)],
        stdin=master, stdout=master, stderr=subprocess.PIPE, cwd=bridge_dir(), close_fds=True,
    )
    board = WasmBoard(os.ttyname(slave), process, master, slave)
    # The banner ends in the friendly prompt; read it off so the host starts on a quiet line.
    deadline = time.monotonic() + boot_timeout_s
    seen = b""
    while not seen.endswith(b">>> "):
        if process.poll() is not None or time.monotonic() > deadline:
            err = process.stderr.read().decode(errors="replace").strip().splitlines() if process.poll() is not None else []
            board.stop()
            raise TinymlError("MicroPython (wasm) did not start" + (f": {err[-1]}" if err else ""))
        import select
        ready, _, _ = select.select([slave], [], [], 0.2)
        if ready:
            seen += os.read(slave, 4096)
    return board
