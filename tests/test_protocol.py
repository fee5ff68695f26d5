"""Framing and messages of the board link, host side (the C side is exercised
against it in test_firmware_native.py)."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyml.host import protocol as p


def test_crc_is_zlib_crc32_with_its_check_value():
    assert zlib.crc32(b"123456789") == 0xCBF43926
    frame = p.encode_frame(p.MSG_HELLO, 7, b"\x01\x00")
    body = p.cobs_decode(frame[:-1])
    assert struct.unpack("<I", body[-4:])[0] == zlib.crc32(body[:-4])


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00", b"\x01" * 253, b"\x01" * 254, b"\x01" * 255,
                                  b"\x01" * 254 + b"\x00", bytes(range(256)) * 3])
def test_cobs_edge_cases_round_trip(data):
    encoded = p.cobs_encode(data)
    assert 0 not in encoded
    assert p.cobs_decode(encoded) == data
    assert len(encoded) <= len(data) + len(data) // 254 + 1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1200))
def test_cobs_round_trip(data):
    encoded = p.cobs_encode(data)
    assert 0 not in encoded
    assert p.cobs_decode(encoded) == data


def test_cobs_rejects_bad_blocks():
    with pytest.raises(p.ProtocolError):
        p.cobs_decode(b"\x05ab")  # block longer than the data
    with pytest.raises(p.ProtocolError):
        p.cobs_decode(b"\x03a\x00")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=600)), min_size=1,
                max_size=6), st.integers(1, 97))
def test_decoder_reassembles_frames_split_anywhere(frames, chunk):
    wire = b"".join(p.encode_frame(t, s, d) for t, s, d in frames)
    assert len(wire) <= sum(p.encoded_size(len(d)) for _, _, d in frames)
    decoder = p.FrameDecoder()
    out = []
    for i in range(0, len(wire), chunk):
        out += decoder.feed(wire[i : i + chunk])
    assert [(f.type, f.seq, f.payload) for f in out] == frames
    assert all(f.version == p.PROTOCOL_VERSION for f in out)


def test_decoder_resynchronises_after_garbage_and_damage():
    good = p.encode_frame(p.MSG_INFER | p.MSG_REPLY, 3, b"payload")
    damaged = bytearray(p.encode_frame(p.MSG_INFER | p.MSG_REPLY, 4, b"payload"))
    damaged[3] ^= 0x10
    events = p.FrameDecoder().feed(b"\x13\x37garbage\x00" + bytes(damaged) + good)
    assert [type(e) for e in events] == [p.ProtocolError, p.ProtocolError, p.Frame]
    assert events[-1].seq == 3 and events[-1].payload == b"payload"


def test_decoder_bounds_its_buffer():
    decoder = p.FrameDecoder(max_encoded=100)
    events = decoder.feed(b"\x01" * 500 + b"\x00" + p.encode_frame(1, 1, b"x"))
    assert isinstance(events[0], p.ProtocolError) and isinstance(events[1], p.Frame)


def _hello_payload(**over) -> bytes:
    fields = dict(version=1, max_payload=4096, rx=8191, clock=168_000_000, unit=1, not_ready=0, max_batch=63,
                  inb=64, outb=10, arena=1536, in_scale=0.5, in_zp=-128, out_scale=0.25, out_zp=5, in_rank=4,
                  out_rank=2, layers=5)
    fields.update(over)
    fixed = p.HELLO_FIXED.pack(*fields.values(), 1, 8, 8, 1, 1, 10, 0, 0)
    strings = b"".join(bytes([len(s)]) + s for s in (b"0.1.0", b"stm32f405", b"engine", b"ab" * 32))
    return fixed + strings


def test_hello_answer_parses():
    info = p.parse_hello(_hello_payload())
    assert info.latency_unit == "instructions" and info.model_ready
    assert info.input_shape == (1, 8, 8, 1) and info.output_shape == (1, 10)
    assert (info.board, info.backend, info.model_sha256) == ("stm32f405", "engine", "ab" * 32)
    assert info.input_zero_point == -128 and info.output_scale == 0.25
    with pytest.raises(p.ProtocolError):
        p.parse_hello(_hello_payload()[:-10])
    with pytest.raises(p.ProtocolError):
        p.parse_hello(_hello_payload(in_rank=9))


def test_result_and_error_payloads():
    payload = p.RESULT_HEADER.pack(40, 2, 0) + struct.pack("<I", 99) + b"A" * 10 + struct.pack("<I", 7) + b"B" * 10
    result = p.parse_result(payload, 10)
    assert result.first_index == 40 and result.latencies == [99, 7] and result.outputs == [b"A" * 10, b"B" * 10]
    with pytest.raises(p.ProtocolError):
        p.parse_result(payload[:-1], 10)
    error = p.parse_error(p.ERROR_PAYLOAD.pack(p.ERR_LENGTH, 0, 12))
    assert error.name == "length" and error.detail == 12
    assert p.infer_payload(5, [b"\x01\x02", b"\x03\x04"]) == struct.pack("<IH", 5, 2) + b"\x01\x02\x03\x04"
