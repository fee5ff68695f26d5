"""The firmware core on the native port (a POSIX process on a pty) against the
host side of the protocol: every frame here crosses both implementations."""

from __future__ import annotations

import time

import numpy as np
import pytest

from firmware_fixtures import FIXTURE_SHA256, fixture_outputs
from firmware_fixtures.boards import board_link, fixture_image, running_board
from tinyml.errors import TinymlError
from tinyml.host import protocol as p
from tinyml.host.build import build_native_firmware
from tinyml.host.link import BoardLink
from tinyml.host.transport import open_port


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    with running_board(fixture_image(tmp_path_factory.getbasetemp())) as running:
        yield running


@pytest.fixture
def link(board):
    with board_link(board) as session:
        yield session


def _exchange(link: BoardLink, wire: bytes, timeout_s: float = 2.0) -> p.Frame:
    link.transport.write(wire)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        frames = link._events()
        if frames:
            return frames[0]
    raise AssertionError("no answer")


def test_hello_describes_board_and_model(link):
    info = link.info
    assert info.protocol_version == p.PROTOCOL_VERSION
    assert (info.board, info.backend, info.model_sha256) == ("native", "engine", FIXTURE_SHA256)
    assert info.latency_unit == "nanoseconds"
    assert (info.input_bytes, info.output_bytes) == (64, 10)
    assert info.input_shape == (1, 8, 8, 1) and info.output_shape == (1, 10)
    assert info.input_zero_point == -128 and info.output_zero_point == 5
    assert abs(info.input_scale - 0.00392157) < 1e-7
    assert info.max_batch >= 32 and info.model_ready


@pytest.mark.parametrize("batch", [1, 7, None])
def test_streamed_results_match_the_model_once_each(link, batch):
    inputs = np.random.default_rng(batch or 0).integers(-128, 128, (150, 64), dtype=np.int8)
    expected = fixture_outputs(inputs)
    results = list(link.infer(((i, inputs[i].tobytes()) for i in range(len(inputs))), batch=batch))
    assert sorted(r.index for r in results) == list(range(len(inputs)))
    for r in results:
        assert r.output == expected[r.index].tobytes()
        assert r.latency > 0
    assert link.stats.retries == 0


def test_non_consecutive_indices_are_answered_for_the_right_sample(link):
    inputs = np.random.default_rng(5).integers(-128, 128, (40, 64), dtype=np.int8)
    chosen = [0, 1, 2, 5, 9, 10, 11, 30, 39]
    results = {r.index: r.output for r in link.infer((i, inputs[i].tobytes()) for i in chosen)}
    assert sorted(results) == chosen
    assert all(results[i] == fixture_outputs(inputs[i : i + 1])[0].tobytes() for i in chosen)


def test_wrong_sample_size_is_refused_before_sending(link):
    with pytest.raises(TinymlError, match="sample 0 has 3 bytes"):
        list(link.infer([(0, b"abc")]))


@pytest.mark.parametrize("wire, code", [
    (p.encode_frame(p.MSG_INFER, 11, p.INFER_HEADER.pack(0, 2) + b"\x00" * 64), p.ERR_LENGTH),
    (p.encode_frame(p.MSG_INFER, 11, p.INFER_HEADER.pack(0, 0)), p.ERR_BATCH),
    (p.encode_frame(0x55, 11), p.ERR_UNKNOWN_TYPE),
    (p.encode_frame(p.MSG_HELLO, 11, b"\x01\x00", version=9), p.ERR_VERSION),
    (p.encode_frame(p.MSG_HELLO, 11, b""), p.ERR_LENGTH),
])
def test_board_answers_bad_requests_with_error_codes(link, wire, code):
    frame = _exchange(link, wire)
    assert frame.type == p.MSG_ERROR and frame.seq == 11
    error = p.parse_error(frame.payload)
    assert error.code == code
    if code == p.ERR_VERSION:
        assert error.detail == p.PROTOCOL_VERSION


@pytest.mark.parametrize("wire, code", [
    (b"\x07garbage bytes\x00", p.ERR_FRAMING),
    (p.cobs_encode(b"\x01\x01\x05\x00\x01\x00" + b"\xde\xad\xbe\xef") + b"\x00", p.ERR_CRC),
    (b"\x01" * 5000 + b"\x00", p.ERR_TOO_LARGE),
])
def test_board_reports_damaged_frames_and_resynchronises(link, wire, code):
    frame = _exchange(link, wire)
    assert frame.type == p.MSG_ERROR and frame.seq == p.SEQ_UNKNOWN
    assert p.parse_error(frame.payload).code == code
    assert link.hello().model_sha256 == FIXTURE_SHA256  # the next frame is understood


def test_reset_reboots_and_serves_again(link):
    info = link.reset()
    assert link.stats.boots_seen == 1 and info.model_sha256 == FIXTURE_SHA256
    inputs = np.full((3, 64), 7, dtype=np.int8)
    assert [r.output for r in link.infer((i, inputs[i].tobytes()) for i in range(3))] == \
        [fixture_outputs(inputs)[0].tobytes()] * 3


def test_profile_names_layers(link):
    list(link.infer([(0, bytes(64))]))
    assert [name for name, _ in link.profile()] == ["FIXTURE_DOT"]


def test_build_refuses_a_directory_without_a_compiled_model(tmp_path):
    with pytest.raises(TinymlError, match="no compiled model"):
        build_native_firmware(tmp_path, tmp_path / "build")


def test_build_reports_a_compile_error_in_one_line(tmp_path):
    (tmp_path / "model.h").write_text("#define TINYML_MODEL_SHA256 \"x\"\n")
    (tmp_path / "model.c").write_text("int broken(void) { return }\n")
    with pytest.raises(TinymlError, match="building the firmware for native failed") as info:
        build_native_firmware(tmp_path, tmp_path / "build")
    assert "\n" not in str(info.value)


def test_state_file_finds_a_running_board_until_stopped(tmp_path, tmp_path_factory, monkeypatch, board):
    from tinyml.host.emulator import find_running_emulator, start_native_board
    from firmware_fixtures.boards import board_link, fixture_image

    monkeypatch.setenv("TINYML_STATE_DIR", str(tmp_path))
    assert find_running_emulator("native") is None
    running = start_native_board(fixture_image(tmp_path_factory.getbasetemp()), record=True)
    try:
        found = find_running_emulator("native")
        assert found is not None and (found.pid, found.port) == (running.pid, running.port)
    finally:
        running.stop()
    assert find_running_emulator("native") is None and not (tmp_path / "native.json").exists()


@pytest.mark.slow
def test_fuzz_script_smoke(tmp_path):
    """Two seconds of the sanitizer fuzz run (the real run is on demand: firmware/fuzz/run_fuzz.sh 600)."""
    import shutil
    import subprocess

    from tinyml.paths import firmware_dir

    if shutil.which("gcc") is None and shutil.which("clang") is None:
        pytest.skip("needs gcc or clang")
    done = subprocess.run(["nice", "sh", str(firmware_dir() / "fuzz" / "run_fuzz.sh"), "2", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no crash" in done.stdout or "Done" in done.stderr


def test_profile_build_times_each_layer(tmp_path_factory):
    from firmware_fixtures import FIXTURE_DIR
    from tinyml.host.emulator import start_native_board

    image = build_native_firmware(FIXTURE_DIR, tmp_path_factory.getbasetemp() / "fixture_fw_profile", profile=True)
    running = start_native_board(image)
    transport = open_port(running.port)
    try:
        link = BoardLink(transport)
        link.hello()
        list(link.infer([(0, bytes(range(64)))]))
        (name, elapsed), = link.profile()
    finally:
        transport.close()
        running.stop()
    assert name == "FIXTURE_DOT" and elapsed > 0
