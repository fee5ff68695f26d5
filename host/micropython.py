"""The bench over MicroPython's raw REPL: one persistent connection to a board running
stock MicroPython with a tinyml module (`tinyml compile --target micropython-*`).

Why not mpremote's SerialTransport for the bench: it reads a pyserial object directly, so
the bytes would neither be counted (wire efficiency) nor pass through the fault-injecting
transport (host/transport.py), and it prints to stdout on errors. The raw-REPL exchange
itself is small: `RawRepl` below speaks it (raw-paste with flow control where the board
offers it, plain raw REPL where it answers "R\\x00" or does not understand), on any
host Transport. `tinyml flash --runtime micropython` does use mpremote (file copy, once).

The exchange, per chunk of samples (command at most 4 KB):
  host:  _b(first, n, crc, 'base64 of n inputs')            Ctrl-D
  board: R first n base64(outputs) lat,lat,... crc         (crc over "first n b64 lats")
Latencies are time.ticks_us() around each m.invoke on the board. Nothing is recorded until
the answer's checksum, indices and sizes check out, so a damaged exchange is run again and
no sample is lost or counted twice. A soft reset (the board forgets its globals) shows as a
NameError: the helper code is sent again and the chunk retried.
"""

from __future__ import annotations

import binascii
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from tinyml.errors import TinymlError

from .link import LinkStats, SampleResult
from .transport import Transport, TransportWrapper

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
MAX_COMMAND_BYTES = 4096
CHUNK_SECONDS = 60.0          # aim for chunks the board finishes in about this time (4 KB caps them too)
MAX_CONSECUTIVE_FAILURES = 12


class ReplError(Exception):
    """One exchange failed (timeout, damaged or unexpected answer); the caller recovers."""


def checksum(data: bytes, kind: str) -> int:
    """The board's checksum: crc32 where binascii has it, else a multiplicative hash."""
    if kind == "crc32":
        return binascii.crc32(data) & 0xFFFFFFFF
    value = 0
    for byte in data:
        value = (value * 31 + byte) & 0xFFFFFFFF
    return value


class RawRepl:
    """MicroPython's raw REPL on a host Transport (every byte counted, faults injectable)."""

    def __init__(self, transport: Transport, timeout_s: float = 5.0) -> None:
        self.transport = transport
        self.timeout_s = timeout_s
        self.raw_paste: bool | None = None  # unknown until the board answered once
        self._pending = b""

    def _read_until(self, marker: bytes, timeout_s: float) -> bytes:
        deadline = time.monotonic() + timeout_s
        data = self._pending
        while True:
            at = data.find(marker)
            if at >= 0:
                self._pending = data[at + len(marker):]
                return data[:at + len(marker)]
            if time.monotonic() > deadline:
                self._pending = b""
                raise ReplError(f"no {marker!r} within {timeout_s:.0f} s (got {data[-60:]!r})")
            data += self.transport.read()

    def _read_exact(self, count: int, timeout_s: float) -> bytes:
        deadline = time.monotonic() + timeout_s
        data = self._pending
        while len(data) < count:
            if time.monotonic() > deadline:
                self._pending = b""
                raise ReplError(f"no answer within {timeout_s:.0f} s")
            data += self.transport.read()
        self._pending = data[count:]
        return data[:count]

    def enter(self, attempts: int = 3) -> None:
        """Interrupt whatever runs, clear the input line, enter the raw REPL, wait for its prompt.

        Each attempt waits twice as long as the one before (a board that cannot be interrupted,
        like the wasm VM, answers when its code ends); banners that queued-up Ctrl-As print
        later are drained once the line has been quiet for a moment.
        """
        wait_s = self.timeout_s
        for _ in range(attempts):
            self.transport.write(b"\r\x03\x03")
            time.sleep(0.05)
            self.transport.discard_input()
            self._pending = b""
            self.transport.write(b"\r\x01")
            try:
                self._read_until(RAW_BANNER, wait_s)
            except ReplError:
                wait_s = min(2 * wait_s, 120.0)
                continue
            self._drain_quiet(0.3)
            return
        raise TinymlError(f"no MicroPython raw REPL on {self.transport.url}: the board does not answer Ctrl-C/Ctrl-A "
                          "(stuck program, wrong port or baud, or not MicroPython)")

    def _drain_quiet(self, quiet_s: float) -> None:
        """Reads until nothing arrived for quiet_s; keeps the bytes after the last raw prompt."""
        data = self._pending
        last = time.monotonic()
        while time.monotonic() - last < quiet_s:
            more = self.transport.read()
            if more:
                data += more
                last = time.monotonic()
        at = data.rfind(RAW_BANNER)
        self._pending = data[at + len(RAW_BANNER):] if at >= 0 else data

    def soft_reset(self) -> None:
        """Ctrl-D at the empty raw prompt: the board restarts its VM and comes back to the raw REPL."""
        self.transport.write(b"\x04")
        self._read_until(b"soft reboot\r\n", self.timeout_s)
        self._read_until(RAW_BANNER, self.timeout_s)

    def _send_raw_paste(self, code: bytes, timeout_s: float) -> bool:
        """Raw-paste mode; False when the board does not offer it (then the plain raw REPL is used)."""
        self.transport.write(b"\x05A\x01")
        answer = self._read_exact(2, self.timeout_s)
        if answer == b"R\x00":
            return False
        if answer != b"R\x01":
            # A board that does not know raw-paste took the bytes as input: back to a clean prompt.
            self._read_until(b"w REPL; CTRL-B to exit\r\n>", self.timeout_s)
            return False
        window = int.from_bytes(self._read_exact(2, self.timeout_s), "little")
        remain = window
        sent = 0
        deadline = time.monotonic() + timeout_s
        while sent < len(code):
            while remain == 0 or self._pending:
                byte = self._read_exact(1, max(0.0, deadline - time.monotonic()))
                if byte == b"\x01":
                    remain += window
                elif byte == b"\x04":
                    self.transport.write(b"\x04")
                    raise ReplError("the board ended the raw paste early")
                else:
                    raise ReplError(f"unexpected {byte!r} during raw paste")
            piece = code[sent:sent + remain]
            self.transport.write(piece)
            sent += len(piece)
            remain -= len(piece)
        self.transport.write(b"\x04")
        self._read_until(b"\x04", self.timeout_s)
        return True

    def exec(self, code: bytes, timeout_s: float | None = None) -> tuple[bytes, bytes]:
        """Runs code at the raw prompt; returns (stdout, stderr). The prompt is consumed after."""
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        pasted = False
        if self.raw_paste is not False:
            pasted = self._send_raw_paste(code, timeout_s)
            self.raw_paste = pasted
        if not pasted:
            self.transport.write(code + b"\x04")
            ok = self._read_until(b"OK", timeout_s)
            if ok.replace(RAW_BANNER, b"").strip(b"\r\n") != b"OK":  # stale prompts of a late board are fine
                raise ReplError(f"unexpected {ok[:40]!r} before OK")
        out = self._read_until(b"\x04", timeout_s)[:-1]
        err = self._read_until(b"\x04", self.timeout_s)[:-1]
        self._read_until(b">", self.timeout_s)
        return out, err


def board_helper(module: str) -> bytes:
    """Code run once per session (and after a soft reset): imports the module, defines _b."""
    return f"""import binascii as _ba, time as _tm, sys as _sys
try:
    import {module} as _m
except ImportError:
    _m = None
if hasattr(_ba, 'crc32'):
    _ck, _ckn = _ba.crc32, 'crc32'
else:
    def _ck(b):
        v = 0
        for x in b:
            v = (v * 31 + x) & 0xFFFFFFFF
        return v
    _ckn = 'h31'
def _b(first, n, crc, data):
    raw = _ba.a2b_base64(data)
    k = _m.input_bytes
    if len(raw) != n * k or _ck(raw) & 0xFFFFFFFF != crc:
        print('E', first, 'input')
        return
    o = bytearray(_m.output_bytes)
    res = bytearray()
    lat = []
    for i in range(n):
        x = raw[i * k:(i + 1) * k]
        t = _tm.ticks_us()
        _m.invoke(x, o)
        lat.append(_tm.ticks_diff(_tm.ticks_us(), t))
        res.extend(o)
    body = '%d %d %s %s' % (first, n, _ba.b2a_base64(res).decode().strip(), ','.join([str(v) for v in lat]))
    print('R', body, _ck(body.encode()) & 0xFFFFFFFF)
if _m is None:
    print('H- none')
else:
    print('H+', _m.sha256, _m.input_bytes, _m.output_bytes, getattr(_m, 'runtime', 'c'), _ckn,
          _sys.implementation.name, '.'.join([str(v) for v in _sys.implementation.version[:3]]),
          getattr(_m, 'arena_bytes', 0))
""".encode()


@dataclass
class MicroPythonInfo:
    """The board's answer to the helper code, in the fields the bench report reads (host/harness.py)."""

    model_sha256: str
    input_bytes: int
    output_bytes: int
    runtime: str
    checksum: str
    board: str
    firmware_version: str
    arena_bytes: int
    backend: str = field(init=False)
    model_ready: bool = True
    latency_unit: str = "us"
    protocol_version: int = 0       # the raw REPL, not the binary protocol
    clock_hz: int = 0

    def __post_init__(self) -> None:
        self.backend = f"micropython-{self.runtime}"


class MicroPythonLink:
    """BoardLink's interface (hello, infer, stats, batch_size) over the raw REPL."""

    def __init__(self, transport: Transport, module: str = "model", chunk_seconds: float = CHUNK_SECONDS,
                 timeout_s: float = 5.0) -> None:
        self.transport = transport
        self.module = module
        self.repl = RawRepl(transport, timeout_s)
        self.stats = LinkStats()
        self.info: MicroPythonInfo | None = None
        self.chunk_seconds = chunk_seconds
        self._seconds_per_sample: float | None = None
        self._chunk: int | None = None
        # Samples per chunk after failures: halved on each failed exchange, doubled on success
        # (a noisy line gets short commands that get through, a clean one keeps 4 KB ones).
        self._failure_limit: int | None = None

    def _setup(self) -> MicroPythonInfo:
        out, err = self.repl.exec(board_helper(self.module), timeout_s=60.0)
        if err:
            raise ReplError(f"helper failed: {err.decode(errors='replace').strip().splitlines()[-1:]}")
        line = out.decode(errors="replace").strip()
        if line == "H- none":
            raise TinymlError(f"board on {self.transport.url} has no module '{self.module}': copy it with "
                              f"`tinyml flash --runtime micropython`")
        fields = line.split()
        if len(fields) != 9 or fields[0] != "H+":
            raise ReplError(f"unexpected helper answer {line[:60]!r}")
        return MicroPythonInfo(fields[1], int(fields[2]), int(fields[3]), fields[4], fields[5],
                               f"{fields[6]} {fields[7]}", fields[7], int(fields[8]))

    def hello(self, attempts: int = 3, timeout_s: float = 1.5) -> MicroPythonInfo:
        """Enters the raw REPL and imports the module; one line when the board or module is wrong."""
        self.repl.timeout_s = max(self.repl.timeout_s, timeout_s)
        self.repl.enter()
        for _ in range(max(1, attempts)):
            try:
                self.info = self._setup()
                return self.info
            except ReplError:
                self.stats.retries += 1
                self.repl.enter()
        raise TinymlError(f"board on {self.transport.url} does not answer the raw REPL consistently")

    def batch_size(self, limit: int | None = None) -> int:
        return self._chunk or (limit or 1)

    def _samples_per_chunk(self, limit: int | None) -> int:
        per_sample = len(binascii.b2a_base64(bytes(self.info.input_bytes))) + 2
        by_size = max(1, (MAX_COMMAND_BYTES - 64) * 3 // 4 // self.info.input_bytes)
        while by_size > 1 and 64 + len(binascii.b2a_base64(bytes(by_size * self.info.input_bytes))) > \
                MAX_COMMAND_BYTES:
            by_size -= 1
        count = by_size
        if self._seconds_per_sample:
            count = min(count, max(1, int(self.chunk_seconds / self._seconds_per_sample)))
        else:
            count = 1  # first chunk: one sample, to learn how fast the board is
        del per_sample
        if self._failure_limit is not None:
            count = min(count, self._failure_limit)
        return max(1, min(count, limit or count))

    def _run_chunk(self, chunk: list[tuple[int, bytes]]) -> list[SampleResult]:
        info = self.info
        first, n = chunk[0][0], len(chunk)
        raw = b"".join(x for _, x in chunk)
        data = binascii.b2a_base64(raw, newline=False).decode()
        command = f"_b({first},{n},{checksum(raw, info.checksum)},b'{data}')".encode()
        assert len(command) <= MAX_COMMAND_BYTES
        # generous: a board shared with other work (or a VM on a loaded host) may slow down
        timeout = 30.0 + 10.0 * n * (self._seconds_per_sample or 30.0)
        started = time.monotonic()
        out, err = self.repl.exec(command, timeout_s=timeout)
        if err:
            text = err.decode(errors="replace")
            if "NameError" in text:  # a soft reset wiped the helper: set it up again
                self.stats.boots_seen += 1
                again = self._setup()
                if again.model_sha256 != info.model_sha256:
                    raise TinymlError(f"board on {self.transport.url} came back with model {again.model_sha256}")
            self.stats.board_errors["exception"] = self.stats.board_errors.get("exception", 0) + 1
            raise ReplError(f"board error: {text.strip().splitlines()[-1:] if text.strip() else ''}")
        line = out.decode(errors="replace").strip()
        fields = line.split(" ")
        if len(fields) != 6 or fields[0] != "R":
            if line.startswith("E "):
                self.stats.board_errors["input"] = self.stats.board_errors.get("input", 0) + 1
            raise ReplError(f"unexpected answer {line[:60]!r}")
        body = " ".join(fields[1:5])
        try:
            if int(fields[5]) != checksum(body.encode(), info.checksum):
                raise ValueError("checksum")
            if int(fields[1]) != first or int(fields[2]) != n:
                raise ValueError("indices")
            outputs = binascii.a2b_base64(fields[3])
            latencies = [int(v) for v in fields[4].split(",")]
        except (ValueError, binascii.Error) as exc:
            self.stats.damaged_frames += 1
            raise ReplError(f"damaged answer ({exc})") from exc
        if len(outputs) != n * info.output_bytes or len(latencies) != n:
            self.stats.damaged_frames += 1
            raise ReplError("answer of the wrong size")
        elapsed = time.monotonic() - started
        self._seconds_per_sample = max(elapsed / n, 1e-3)
        k = info.output_bytes
        return [SampleResult(index, outputs[i * k:(i + 1) * k], latencies[i]) for i, (index, _) in enumerate(chunk)]

    def infer(self, samples: Iterable[tuple[int, bytes]], batch: int | None = None) -> Iterator[SampleResult]:
        """Runs the samples in chunks of consecutive indices; each result is yielded once."""
        if self.info is None:
            raise TinymlError("internal: hello() first")
        queue = list(samples)
        position = 0
        failures = 0
        while position < len(queue):
            count = self._samples_per_chunk(batch)
            chunk = [queue[position]]
            # consecutive indices only: the board numbers a chunk's samples from its first
            while len(chunk) < count and position + len(chunk) < len(queue) and \
                    queue[position + len(chunk)][0] == chunk[-1][0] + 1:
                chunk.append(queue[position + len(chunk)])
            self._chunk = max(self._chunk or 0, len(chunk))
            try:
                results = self._run_chunk(chunk)
            except ReplError as exc:
                failures += 1
                self.stats.retries += 1
                self._failure_limit = max(1, len(chunk) // 2)
                if failures >= MAX_CONSECUTIVE_FAILURES:
                    raise TinymlError(f"board on {self.transport.url} failed {failures} exchanges in a row: {exc}")
                self.repl.enter(attempts=6)
                continue
            failures = 0
            if self._failure_limit is not None:
                self._failure_limit *= 2
            self.stats.frames_sent += 1
            self.stats.payload_sent += sum(len(x) for _, x in chunk)
            self.stats.payload_received += sum(len(r.output) for r in results)
            position += len(chunk)
            yield from results


class SoftResetTransport(TransportWrapper):
    """Fault injection for the raw-REPL bench: after `after_bytes` written, Ctrl-C Ctrl-D go to
    the board once (interrupt, then a soft reset at the empty raw prompt), as a watchdog or a
    user pressing Ctrl-D would. Counts and url/baud pass through, so it wraps any Transport."""

    def __init__(self, inner: Transport, after_bytes: int) -> None:
        super().__init__(inner)
        self.after_bytes = after_bytes
        self.resets_injected = 0
        self._written = 0

    def write(self, data: bytes) -> None:
        self.inner.write(data)
        self._written += len(data)
        if self.resets_injected == 0 and self._written >= self.after_bytes:
            self.resets_injected += 1
            time.sleep(0.3)
            self.inner.write(b"\x03\x03\x04")


def run_micropython_bench(port: str, model_dir, out_dir, module: str = "model", baud: int = 115200,
                          samples: int | None = None, fresh: bool = False, progress: bool = True,
                          transport: Transport | None = None, chunk_seconds: float = CHUNK_SECONDS,
                          repl_timeout_s: float = 5.0):
    """`tinyml bench --runtime micropython`: the same JSONL log, resume and reports as the binary protocol.

    repl_timeout_s: how long the raw REPL's answers are waited for; entering it tries three times,
    each waiting twice as long as the one before."""
    from .harness import run_bench

    return run_bench(port, model_dir, out_dir, baud=baud, samples=samples, fresh=fresh, progress=progress,
                     transport=transport, hello_timeout_s=repl_timeout_s,
                     extra={"runtime": "micropython", "module": module},
                     link_factory=lambda t: MicroPythonLink(t, module, chunk_seconds, repl_timeout_s))


def flash_micropython(port: str, module_dir, module: str = "model", baud: int = 115200,
                      progress: bool = True) -> dict:
    """`tinyml flash --runtime micropython`: copies <module>.py or <module>.mpy from module_dir to the
    board's filesystem with mpremote's raw-REPL file operations, then imports it and reads its hash.

    The micropython-module form is built into the firmware and has nothing to copy: it is only checked.
    """
    import json
    from pathlib import Path

    from mpremote.transport import TransportError, TransportExecError
    from mpremote.transport_serial import SerialTransport as MpremoteSerial

    module_dir = Path(module_dir)
    summary_path = module_dir / "micropython.json"
    if not summary_path.is_file():
        raise TinymlError(f"{module_dir} has no micropython.json: run `tinyml compile --target micropython-py` "
                          "(or -natmod) first")
    summary = json.loads(summary_path.read_text())
    module = summary.get("module", module)
    candidates = [module_dir / f"{module}.mpy", module_dir / f"{module}.py"]
    files = [path for path in candidates if path.is_file()]
    if summary.get("target") == "micropython-module":
        files = []
    elif not files:
        raise TinymlError(f"{module_dir} has neither {module}.mpy nor {module}.py (build the natmod with make first)")
    try:
        board = MpremoteSerial(port, baudrate=baud)
    except TransportError as exc:
        raise TinymlError(f"cannot open port {port}: {str(exc).splitlines()[0] if str(exc) else exc}") from exc
    try:
        try:
            board.enter_raw_repl(soft_reset=False)
        except TransportError as exc:
            raise TinymlError(f"no MicroPython raw REPL on {port}: {exc}") from exc
        for path in files:
            if progress:
                print(f"[flash] copying {path.name} ({path.stat().st_size:,} B) to {port}", flush=True)
            other = path.with_suffix(".py" if path.suffix == ".mpy" else ".mpy").name
            try:
                board.exec(f"import os\ntry:\n    os.remove({other!r})\nexcept OSError:\n    pass")
                board.fs_writefile(path.name, path.read_bytes())
            except (TransportError, TransportExecError, OSError) as exc:  # mpremote maps board errors to OSError
                detail = getattr(exc, "error_output", "") or str(exc)
                raise TinymlError(f"cannot write {path.name} on the board on {port} (no writable filesystem?): "
                                  f"{detail.strip().splitlines()[-1] if detail.strip() else type(exc).__name__}") from exc
        # A fresh VM, so the import below reads the new file and not a module cached in sys.modules.
        board.enter_raw_repl(soft_reset=True)
        try:
            answer = board.exec(f"import gc\ngc.collect()\nf = gc.mem_free()\nimport {module} as m\n"
                                f"gc.collect()\nprint(m.sha256, f - gc.mem_free(), gc.mem_free())").decode().split()
        except TransportExecError as exc:
            raise TinymlError(f"board on {port} cannot import {module}: "
                              f"{exc.error_output.strip().splitlines()[-1]}") from exc
    finally:
        board.close()
    sha256, heap_used, heap_free = answer[0], int(answer[1]), int(answer[2])
    if sha256 != summary["model_sha256"]:
        raise TinymlError(f"board on {port} imports a {module} with model {sha256}, {module_dir} holds "
                          f"{summary['model_sha256']}")
    return {"module": module, "files": [p.name for p in files], "model_sha256": sha256,
            "import_heap_bytes": heap_used, "heap_free_bytes": heap_free}
