"""pyserial URL handler `faulty://<inner-url>?drop=0.01&flip=0.01&...`: any port
pyserial can open (a device path, socket://, rfc2217://, loop://, a pty), with
bytes dropped, flipped, duplicated or delayed and, once, a board reset or a
garbage burst injected (host/transport.FaultInjector; options = FaultPlan's fields).

pyserial looks handlers up as `<package>.protocol_<scheme>` in
serial.protocol_handler_packages; host/transport.py adds this package, so
`serial.serial_for_url("faulty://...")` and `tinyml bench --port faulty://...`
both work. The port counts what it did in `.faults`.
"""

from __future__ import annotations

import time

import serial
from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from .transport import FaultInjector, parse_fault_url


class Serial(SerialBase):
    """A serial port that wraps another one (opened with the same settings) and damages its bytes."""

    def __init__(self, *args, **kwargs) -> None:
        self._inner: serial.SerialBase | None = None
        self._injector: FaultInjector | None = None
        self._pending = bytearray()  # damaged bytes already read from the inner port, not yet returned
        super().__init__(*args, **kwargs)

    @property
    def faults(self):
        return self._injector.faults if self._injector is not None else None

    def open(self) -> None:
        if self._port is None:
            raise SerialException("port must be configured before it can be used")
        if self.is_open:
            raise SerialException("port already open")
        try:
            inner_url, plan = parse_fault_url(str(self._port))
        except ValueError as exc:
            raise SerialException(str(exc)) from exc
        self._inner = serial.serial_for_url(inner_url, baudrate=self._baudrate, timeout=self._timeout,
                                            write_timeout=self._write_timeout, exclusive=self._exclusive)
        self._injector = FaultInjector(plan)
        self._pending.clear()
        self.is_open = True

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None
        self.is_open = False

    def _reconfigure_port(self) -> None:
        if self._inner is not None:
            self._inner.baudrate = self._baudrate
            self._inner.timeout = self._timeout
            self._inner.write_timeout = self._write_timeout

    def _require_open(self) -> serial.SerialBase:
        if not self.is_open or self._inner is None or self._injector is None:
            raise PortNotOpenError()
        return self._inner

    def _pull(self, wait_s: float | None) -> None:
        """Moves what the inner port has (waiting up to its timeout for a first byte) through the injector."""
        inner = self._require_open()
        released = self._injector.release_outbound()  # type: ignore[union-attr]
        if released:
            inner.write(released)
        inner.timeout = wait_s
        data = inner.read(max(1, inner.in_waiting))
        self._pending += self._injector.inbound(bytes(data))  # type: ignore[union-attr]

    def read(self, size: int = 1) -> bytes:
        self._require_open()
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while len(self._pending) < size:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            # Short waits: bytes the injector holds back fall due between them.
            self._pull(0.01 if remaining is None else min(remaining, 0.01))
            if deadline is not None and time.monotonic() >= deadline:
                break
        data = bytes(self._pending[:size])
        del self._pending[:size]
        return data

    def write(self, data: bytes) -> int:
        inner = self._require_open()
        data = bytes(data)
        out = self._injector.outbound(data)  # type: ignore[union-attr]
        if out:
            inner.write(out)
        return len(data)

    @property
    def in_waiting(self) -> int:
        inner = self._require_open()
        if inner.in_waiting:
            self._pull(0)
        return len(self._pending)

    def flush(self) -> None:
        self._require_open().flush()

    def reset_input_buffer(self) -> None:
        self._pending.clear()
        self._require_open().reset_input_buffer()

    def reset_output_buffer(self) -> None:
        self._require_open().reset_output_buffer()

    def _update_break_state(self) -> None:
        self._require_open().break_condition = self._break_state

    def _update_rts_state(self) -> None:
        self._require_open().rts = self._rts_state

    def _update_dtr_state(self) -> None:
        self._require_open().dtr = self._dtr_state

    @property
    def cts(self) -> bool:
        return self._require_open().cts

    @property
    def dsr(self) -> bool:
        return self._require_open().dsr

    @property
    def ri(self) -> bool:
        return self._require_open().ri

    @property
    def cd(self) -> bool:
        return self._require_open().cd
