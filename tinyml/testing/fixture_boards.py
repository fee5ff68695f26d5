"""Running the native-port firmware with the fixture model, for tests and benchmarks."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from tinyml.host.build import FirmwareImage, build_native_firmware
from tinyml.host.emulator import EmulatedBoard, start_native_board
from tinyml.host.link import BoardLink
from tinyml.host.transport import open_port

from .fixture_model import FIXTURE_DIR, write_fixture_firmware_dir


def fixture_image(base: Path) -> FirmwareImage:
    """Builds the fixture firmware once per test session (base = the session's basetemp)."""
    return build_native_firmware(FIXTURE_DIR, base / "fixture_fw")


def large_input_fixture_image(base: Path) -> FirmwareImage:
    """The fixture model with a 10,000-byte input (more than one frame), built once per session."""
    source = base / "fixture_large_src"
    if not (source / "model.h").exists():
        write_fixture_firmware_dir(source)
    return build_native_firmware(source, base / "fixture_large_fw")


@contextlib.contextmanager
def running_board(image: FirmwareImage) -> Iterator[EmulatedBoard]:
    board = start_native_board(image)
    try:
        yield board
    finally:
        board.stop()


@contextlib.contextmanager
def board_link(board: EmulatedBoard) -> Iterator[BoardLink]:
    """A BoardLink to a running board, after its HELLO; the port closed afterwards."""
    transport = open_port(board.port)
    try:
        session = BoardLink(transport)
        session.hello()
        yield session
    finally:
        transport.close()
