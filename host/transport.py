"""Byte transports to a board: pyserial URLs, and a fault-injecting wrapper for tests.

A transport moves raw bytes and counts them; framing lives in protocol.py.
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


class FaultyTransport:
    """Wraps a transport and damages the byte stream as a bad cable or a board
    reset would; the counts say what it did. Deterministic for a seed."""

    def __init__(self, inner: Transport, plan: FaultPlan) -> None:
        self.inner = inner
        self.plan = plan
        self.faults = FaultCounts()
        self.url = inner.url
        self.baud = inner.baud
        self._rng = random.Random(plan.seed)
        self._written = 0
        self._reset_at = plan.reset_after_bytes  # one-shot events; the plan itself stays as given
        self._garbage_at = plan.garbage_after_bytes
        self._held_out: deque[tuple[float, bytes]] = deque()
        self._held_in: deque[tuple[float, bytes]] = deque()

    @property
    def bytes_written(self) -> int:
        return self.inner.bytes_written

    @property
    def bytes_read(self) -> int:
        return self.inner.bytes_read

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

    def write(self, data: bytes) -> None:
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
        out = self._release(self._held_out) + out
        if out:
            self.inner.write(out)

    def read(self, max_bytes: int = 65536) -> bytes:
        released = self._release(self._held_out)
        if released:
            self.inner.write(released)
        data = self._damage(self.inner.read(max_bytes))
        data = self._maybe_hold(self._held_in, data)
        return self._release(self._held_in) + data

    def discard_input(self) -> None:
        self.inner.discard_input()

    def close(self) -> None:
        self.inner.close()
