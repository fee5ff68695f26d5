"""Byte transports to a board: pyserial URLs, and fault injection.

A transport moves raw bytes and counts them; framing lives in protocol.py.
Faults come two ways, both driven by one FaultInjector: FaultyTransport wraps a
transport in Python (tests), and the pyserial URL scheme
`faulty://<inner-url>?drop=0.01&flip=0.01&...` (host/protocol_faulty.py) wraps
any port pyserial opens, so `tinyml bench --port faulty://...` runs a real
board under injected faults.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import serial

from tinyml.errors import TinymlError

from . import protocol

# pyserial finds `faulty://` as the module protocol_faulty of this package.
if "tinyml.host" not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append("tinyml.host")


class Transport(Protocol):
    url: str
    baud: int
    bytes_written: int
    bytes_read: int

    def write(self, data: bytes) -> None: ...

    def read(self, max_bytes: int = 65536) -> bytes:
        """What has arrived, waiting up to the transport's poll interval for the first byte."""

    def discard_input(self) -> None: ...

    def close(self) -> None: ...


class SerialTransport:
    """A pyserial port opened by URL: a device path, socket://, rfc2217://, loop://."""

    def __init__(self, url: str, baud: int = 115200, poll_s: float = 0.02) -> None:
        self.url = url
        self.baud = baud
        self.bytes_written = 0
        self.bytes_read = 0
        try:
            # exclusive: a second harness on the same device fails instead of
            # stealing half the bytes (ignored by URL handlers without locks).
            self._port = serial.serial_for_url(url, baudrate=baud, timeout=poll_s, write_timeout=10.0,
                                               exclusive=True)
        except (serial.SerialException, ValueError, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "lock" in reason.lower() or "busy" in reason.lower() or "Resource temporarily" in reason:
                raise TinymlError(f"port {url} is busy (another program holds it): {reason}") from exc
            raise TinymlError(f"cannot open port {url}: {reason}") from exc

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise TinymlError(f"writing to port {self.url} failed: {exc}") from exc
        self.bytes_written += len(data)

    def read(self, max_bytes: int = 65536) -> bytes:
        try:
            waiting = self._port.in_waiting
            data = self._port.read(min(max_bytes, max(1, waiting)))
        except (serial.SerialException, OSError) as exc:
            raise TinymlError(f"reading from port {self.url} failed: {exc}") from exc
        self.bytes_read += len(data)
        return bytes(data)

    def discard_input(self) -> None:
        try:
            self._port.reset_input_buffer()
        except (serial.SerialException, OSError):
            pass

    def close(self) -> None:
        self._port.close()

    @property
    def faults(self) -> FaultCounts | None:
        """What a faulty:// port injected (None for an ordinary port)."""
        return getattr(self._port, "faults", None)


def open_port(url: str, baud: int = 115200) -> SerialTransport:
    return SerialTransport(url, baud)


@dataclass
class FaultPlan:
    """Per-byte fault probabilities, applied to both directions, and an optional board reset."""

    drop: float = 0.0
    flip: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0            # probability that a chunk is held back
    delay_s: float = 0.3          # how long a held-back chunk waits
    reset_after_bytes: int | None = None  # inject a RESET frame once this many bytes were written
    garbage_after_bytes: int | None = None  # inject random non-frame bytes once, board-bound
    seed: int = 0


@dataclass
class FaultCounts:
    dropped: int = 0
    flipped: int = 0
    duplicated: int = 0
    delayed_chunks: int = 0
    resets_injected: int = 0
    garbage_bytes: int = 0
    log: list[str] = field(default_factory=list)


class FaultInjector:
    """Damages a byte stream in both directions as a bad cable or a board reset
    would; the counts say what it did. Deterministic for a seed. Whoever owns
    the port calls outbound() before writing, inbound() after reading, and
    writes release_outbound() whenever it reads (held-back bytes fall due)."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.faults = FaultCounts()
        self._rng = random.Random(plan.seed)
        self._written = 0
        self._reset_at = plan.reset_after_bytes  # one-shot events; the plan itself stays as given
        self._garbage_at = plan.garbage_after_bytes
        self._held_out: deque[tuple[float, bytes]] = deque()
        self._held_in: deque[tuple[float, bytes]] = deque()

    def _damage(self, data: bytes) -> bytes:
        plan, rng, out = self.plan, self._rng, bytearray()
        for byte in data:
            if plan.drop and rng.random() < plan.drop:
                self.faults.dropped += 1
                continue
            if plan.flip and rng.random() < plan.flip:
                byte ^= 1 << rng.randrange(8)
                self.faults.flipped += 1
            out.append(byte)
            if plan.duplicate and rng.random() < plan.duplicate:
                out.append(byte)
                self.faults.duplicated += 1
        return bytes(out)

    def _maybe_hold(self, queue: deque[tuple[float, bytes]], data: bytes) -> bytes:
        if data and self.plan.delay and self._rng.random() < self.plan.delay:
            queue.append((time.monotonic() + self.plan.delay_s, data))
            self.faults.delayed_chunks += 1
            return b""
        if queue:  # keep order: later bytes wait behind held ones
            queue.append((0.0, data))
            return b""
        return data

    @staticmethod
    def _release(queue: deque[tuple[float, bytes]]) -> bytes:
        out = bytearray()
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            out += queue.popleft()[1]
        return bytes(out)

    def outbound(self, data: bytes) -> bytes:
        """The bytes to put on the wire for `data` written by the host (maybe none yet)."""
        prefix = b""
        if self._reset_at is not None and self._written >= self._reset_at:
            self._reset_at = None
            # A RESET frame the harness never asked for: the board reboots mid-run.
            prefix += protocol.DELIMITER + protocol.encode_frame(protocol.MSG_RESET, 0xFFFE)
            self.faults.resets_injected += 1
        if self._garbage_at is not None and self._written >= self._garbage_at:
            self._garbage_at = None
            garbage = bytes(self._rng.randrange(1, 256) for _ in range(300)) + b"\x00"
            prefix += garbage
            self.faults.garbage_bytes += len(garbage)
        self._written += len(data)
        out = prefix + self._damage(data)
        # Held-back bytes keep their order: _maybe_hold queues new bytes behind them.
        out = self._maybe_hold(self._held_out, out)
        return self._release(self._held_out) + out

    def release_outbound(self) -> bytes:
        """Host-bound bytes held back earlier whose delay has passed."""
        return self._release(self._held_out)

    def inbound(self, data: bytes) -> bytes:
        """What the host reads of `data` that came off the wire."""
        data = self._maybe_hold(self._held_in, self._damage(data))
        return self._release(self._held_in) + data


FAULT_OPTIONS = {"drop": float, "flip": float, "duplicate": float, "delay": float, "delay_s": float,
                 "reset_after_bytes": int, "garbage_after_bytes": int, "seed": int}


def parse_fault_url(url: str) -> tuple[str, FaultPlan]:
    """`faulty://<inner-url>?drop=0.01&flip=0.01&...` -> (inner URL, plan). The fault
    options are the query after the last `?`; every key must be a FaultPlan field."""
    from urllib.parse import parse_qsl

    scheme = "faulty://"
    if not url.lower().startswith(scheme):
        raise ValueError(f"not a faulty:// URL: {url}")
    inner, _, query = url[len(scheme):].rpartition("?") if "?" in url else (url[len(scheme):], "", "")
    if not inner:
        raise ValueError(f"no port inside faulty:// (e.g. faulty:///dev/ttyUSB0?drop=0.01)")
    options: dict[str, object] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in FAULT_OPTIONS:
            raise ValueError(f"unknown fault option '{key}' (known: {', '.join(FAULT_OPTIONS)})")
        try:
            options[key] = FAULT_OPTIONS[key](value)
        except ValueError:
            raise ValueError(f"fault option {key}={value!r} is not a number") from None
    for key in ("drop", "flip", "duplicate", "delay"):
        if not 0.0 <= float(options.get(key, 0.0)) <= 1.0:  # type: ignore[arg-type]
            raise ValueError(f"{key} is a probability, between 0 and 1")
    return inner, FaultPlan(**options)  # type: ignore[arg-type]


class TransportWrapper:
    """A transport around another one, passing everything through: url, baud, the byte counts,
    reads, writes, discard and close. Fault injectors subclass it and override what they damage."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.url = inner.url
        self.baud = inner.baud

    @property
    def bytes_written(self) -> int:
        return self.inner.bytes_written

    @property
    def bytes_read(self) -> int:
        return self.inner.bytes_read

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    def read(self, max_bytes: int = 65536) -> bytes:
        return self.inner.read(max_bytes)

    def discard_input(self) -> None:
        self.inner.discard_input()

    def close(self) -> None:
        self.inner.close()


class FaultyTransport(TransportWrapper):
    """Wraps a transport and damages the byte stream (FaultInjector)."""

    def __init__(self, inner: Transport, plan: FaultPlan) -> None:
        super().__init__(inner)
        self.plan = plan
        self._injector = FaultInjector(plan)
        self.faults = self._injector.faults

    def write(self, data: bytes) -> None:
        out = self._injector.outbound(data)
        if out:
            self.inner.write(out)

    def read(self, max_bytes: int = 65536) -> bytes:
        released = self._injector.release_outbound()
        if released:
            self.inner.write(released)
        return self._injector.inbound(self.inner.read(max_bytes))
