"""Transports: pyserial URLs, bad ports, and the fault-injecting wrapper against
the native-port firmware. Under every fault the stream ends with each sample
answered exactly once and correctly, and the link says how often it retried."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_fixtures import fixture_outputs
from firmware_fixtures.boards import fixture_image, running_board
from tinyml.errors import TinymlError
from tinyml.host import protocol as p
from tinyml.host.link import BoardLink
from tinyml.host.transport import FaultPlan, FaultyTransport, open_port

SAMPLES = 160


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    with running_board(fixture_image(tmp_path_factory.getbasetemp())) as running:
        yield running


def test_loop_url_moves_and_counts_bytes():
    transport = open_port("loop://")
    transport.write(b"abc\x00")
    got = b""
    while len(got) < 4:
        got += transport.read()
    assert got == b"abc\x00" and transport.bytes_written == 4 and transport.bytes_read == 4


@pytest.mark.parametrize("url, message", [
    ("/dev/tinyml-no-such-port", "cannot open port /dev/tinyml-no-such-port"),
    ("bogus://x", "cannot open port bogus://x"),
])
def test_bad_ports_fail_in_one_line(url, message):
    with pytest.raises(TinymlError, match=message) as info:
        open_port(url)
    assert "\n" not in str(info.value)


def test_busy_port_is_named_busy(board):
    first = open_port(board.port)
    try:
        with pytest.raises(TinymlError, match="busy"):
            open_port(board.port)
    finally:
        first.close()


def test_no_answer_is_one_line_error():
    # loop:// echoes our own HELLO: a line with bytes on it, but no board.
    link = BoardLink(open_port("loop://"))
    with pytest.raises(TinymlError, match="no answer from a tinyml board on loop://"):
        link.hello(attempts=2, timeout_s=0.2)


def test_fault_wrapper_is_deterministic_and_counts():
    def damaged(seed):
        inner = open_port("loop://")
        faulty = FaultyTransport(inner, FaultPlan(drop=0.05, flip=0.05, duplicate=0.05, seed=seed))
        faulty.write(bytes(range(1, 256)) * 4)
        got = b""
        while chunk := inner.read():
            got += chunk
        return got, faulty.faults
    (a, fa), (b, fb) = damaged(3), damaged(3)
    assert a == b and fa == fb and fa.dropped and fa.flipped and fa.duplicated
    assert len(a) == 1020 - fa.dropped + fa.duplicated


PLANS = {
    "drop": FaultPlan(drop=4e-4, seed=1),
    "flip": FaultPlan(flip=4e-4, seed=2),
    "duplicate": FaultPlan(duplicate=4e-4, seed=3),
    "delay": FaultPlan(delay=0.3, delay_s=0.15, seed=4),
    "reset": FaultPlan(reset_after_bytes=3000, seed=5),
    "garbage": FaultPlan(garbage_after_bytes=2000, seed=6),
    "all": FaultPlan(drop=2e-4, flip=2e-4, duplicate=2e-4, delay=0.02, delay_s=0.1, reset_after_bytes=4000,
                     garbage_after_bytes=6000, seed=7),
}


@pytest.mark.parametrize("fault", list(PLANS))
def test_stream_survives_fault(board, fault):
    plan = PLANS[fault]
    transport = FaultyTransport(open_port(board.port), plan)
    try:
        link = BoardLink(transport, reply_timeout_s=1.0)
        link.hello(attempts=10, timeout_s=0.3)
        inputs = np.random.default_rng(11).integers(-128, 128, (SAMPLES, 64), dtype=np.int8)
        expected = fixture_outputs(inputs)
        results = list(link.infer((i, inputs[i].tobytes()) for i in range(SAMPLES)))
    finally:
        transport.close()
    assert sorted(r.index for r in results) == list(range(SAMPLES))  # none lost, none twice
    assert all(r.output == expected[r.index].tobytes() for r in results)  # none scored wrongly
    faults = transport.faults
    hit = faults.dropped + faults.flipped + faults.duplicated + faults.delayed_chunks + faults.resets_injected \
        + faults.garbage_bytes
    assert hit > 0, "the plan injected nothing: the test would prove nothing"
    if fault == "reset":
        assert link.stats.boots_seen == 1 and link.stats.retries > 0
    if fault in ("drop", "flip", "garbage"):
        assert link.stats.retries > 0 or link.stats.board_errors


def test_board_with_other_protocol_version_is_refused():
    class OldBoard:
        """Answers every frame with a version-0 frame, as an old firmware would."""

        url, baud, bytes_written, bytes_read = "fake://old", 115200, 0, 0

        def __init__(self):
            self.pending = b""

        def write(self, data):
            self.pending += p.encode_frame(p.MSG_HELLO | p.MSG_REPLY, 1, b"", version=0)

        def read(self, max_bytes=65536):
            data, self.pending = self.pending, b""
            return data

        def discard_input(self):
            pass

        def close(self):
            pass

    with pytest.raises(TinymlError, match="speaks protocol v0, this host speaks v1"):
        BoardLink(OldBoard()).hello()
