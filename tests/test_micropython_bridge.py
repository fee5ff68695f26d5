"""The MicroPython (wasm) bridge behaves like a board on a serial line: raw REPL through
mpremote, soft reset, raw-paste declined, files kept across a reset."""

from __future__ import annotations

import pytest

from tinyml.host.micropython_wasm import bridge_available, start_wasm_board

pytestmark = pytest.mark.skipif(bridge_available() is not None, reason=str(bridge_available()))


@pytest.fixture(scope="module")
def board():
    with start_wasm_board() as running:
        yield running


def test_raw_repl_runs_code_and_soft_reset_clears_the_vm(board):
    from mpremote.transport_serial import SerialTransport, TransportError

    transport = SerialTransport(board.port)
    try:
        transport.enter_raw_repl(soft_reset=True)
        assert transport.exec("import sys\nx = 21\nprint(sys.implementation.name, x * 2)") == b"micropython 42\n"
        transport.fs_writefile("kept.py", b"VALUE = 7\n")
        transport.enter_raw_repl(soft_reset=True)  # Ctrl-D: "soft reboot", a fresh VM
        with pytest.raises(TransportError, match="NameError"):
            transport.exec("print(x)")
        assert transport.exec("import kept\nprint(kept.VALUE)") == b"7\n"
    finally:
        transport.close()


def test_raw_paste_is_declined_with_the_documented_reply(board):
    import serial

    line = serial.serial_for_url(board.port, timeout=5)
    try:
        line.write(b"\r\x03\r\x01")
        assert line.read_until(b"raw REPL; CTRL-B to exit\r\n>").endswith(b">")
        line.write(b"\x05A\x01")
        assert line.read(2) == b"R\x00"
        line.write(b"print(6 * 7)\x04")  # and the plain raw REPL still answers
        assert line.read_until(b"\x04>") == b"OK42\n\x04\x04>"
    finally:
        line.close()
