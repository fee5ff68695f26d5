"""The board link protocol (firmware/PROTOCOL.md), host side.

Mirror of firmware/core/tm_protocol.h and tm_frame.c: a frame is
COBS(header | payload | crc32) followed by 0x00, header = u8 version, u8 type,
u16 seq, all integers little-endian, crc32 = zlib.crc32 over header + payload.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

PROTOCOL_VERSION = 1
HEADER = struct.Struct("<BBH")
CRC_BYTES = 4
DELIMITER = b"\x00"
SEQ_UNKNOWN = 0xFFFF

MSG_HELLO = 0x01
MSG_INFER = 0x02
MSG_RESET = 0x03
MSG_PROFILE = 0x04
MSG_LOAD = 0x05
MSG_INFER_LOADED = 0x06
MSG_REPLY = 0x80
MSG_BOOT = 0x7E
MSG_ERROR = 0x7F

ERR_CRC = 1
ERR_FRAMING = 2
ERR_TOO_LARGE = 3
ERR_VERSION = 4
ERR_UNKNOWN_TYPE = 5
ERR_LENGTH = 6
ERR_MODEL = 7
ERR_BATCH = 8
ERR_LOAD = 9
ERR_OUTPUT = 10
ERROR_NAMES = {
    ERR_CRC: "crc",
    ERR_FRAMING: "framing",
    ERR_TOO_LARGE: "too-large",
    ERR_VERSION: "version",
    ERR_UNKNOWN_TYPE: "unknown-type",
    ERR_LENGTH: "length",
    ERR_MODEL: "model",
    ERR_BATCH: "batch",
    ERR_LOAD: "load",
    ERR_OUTPUT: "output-too-large",
}

FEATURE_LOAD = 0x1  # LOAD + INFER_LOADED: inputs larger than one frame

LATENCY_UNITS = {0: "cycles", 1: "instructions", 2: "nanoseconds"}

INFER_HEADER = struct.Struct("<IH")  # first_index, count
RESULT_HEADER = struct.Struct("<IHH")  # first_index, count, reserved
ERROR_PAYLOAD = struct.Struct("<HHI")  # code, reserved, detail
HELLO_FIXED = struct.Struct("<HHIIBBHIIIfifiBBH4i4i")
LOAD_HEADER = struct.Struct("<II")  # load_id, offset
LOAD_ANSWER = struct.Struct("<II")  # load_id, bytes loaded
INFER_LOADED_PAYLOAD = struct.Struct("<II")  # load_id, first_index


class ProtocolError(ValueError):
    """A frame or message that does not parse."""


def cobs_encode(data: bytes) -> bytes:
    out = bytearray()
    block = bytearray()
    for byte in data:
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
            continue
        block.append(byte)
        if len(block) == 254:
            out.append(0xFF)
            out += block
            block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        i += 1
        if code == 0 or i + code - 1 > n:
            raise ProtocolError("invalid COBS block")
        block = data[i : i + code - 1]
        if 0 in block:
            raise ProtocolError("zero byte inside a COBS block")
        out += block
        i += code - 1
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


@dataclass(frozen=True)
class Frame:
    version: int
    type: int
    seq: int
    payload: bytes


def encode_frame(msg_type: int, seq: int, payload: bytes = b"", version: int = PROTOCOL_VERSION) -> bytes:
    """The bytes on the wire for one frame, delimiter included."""
    body = HEADER.pack(version, msg_type, seq & 0xFFFF) + payload
    body += struct.pack("<I", zlib.crc32(body))
    return cobs_encode(body) + DELIMITER


def encoded_size(payload_len: int) -> int:
    """Worst-case wire bytes of a frame with this payload (tm_frame_encoded_max)."""
    raw = payload_len + HEADER.size + CRC_BYTES
    return raw + raw // 254 + 2


def decode_frame(encoded: bytes) -> Frame:
    """One frame from its COBS bytes (delimiter stripped)."""
    body = cobs_decode(encoded)
    if len(body) < HEADER.size + CRC_BYTES:
        raise ProtocolError(f"frame of {len(body)} bytes is shorter than header and CRC")
    (crc,) = struct.unpack_from("<I", body, len(body) - CRC_BYTES)
    if zlib.crc32(body[:-CRC_BYTES]) != crc:
        raise ProtocolError("frame CRC mismatch")
    version, msg_type, seq = HEADER.unpack_from(body)
    return Frame(version, msg_type, seq, bytes(body[HEADER.size : -CRC_BYTES]))


class FrameDecoder:
    """Splits a byte stream at delimiters; damaged frames become ProtocolErrors.

    Bytes before the first delimiter may be the tail of a frame the host joined
    halfway; feed() reports them like any damaged frame and the caller decides.
    """

    def __init__(self, max_encoded: int = 1 << 20) -> None:
        self._buffer = bytearray()
        self._max = max_encoded
        self._overflow = False

    def feed(self, data: bytes) -> list[Frame | ProtocolError]:
        events: list[Frame | ProtocolError] = []
        start = 0
        while True:
            end = data.find(0, start)
            if end < 0:
                self._append(data[start:])
                return events
            self._append(data[start:end])
            if self._overflow:
                events.append(ProtocolError("frame longer than the decoder's limit"))
            elif self._buffer:
                try:
                    events.append(decode_frame(bytes(self._buffer)))
                except ProtocolError as exc:
                    events.append(exc)
            self._buffer.clear()
            self._overflow = False
            start = end + 1

    def _append(self, chunk: bytes) -> None:
        if len(self._buffer) + len(chunk) > self._max:
            self._overflow = True
            self._buffer.clear()
        elif not self._overflow:
            self._buffer += chunk


# ---- messages -------------------------------------------------------------


def hello_payload(version: int = PROTOCOL_VERSION) -> bytes:
    return struct.pack("<H", version)


def infer_payload(first_index: int, inputs: list[bytes]) -> bytes:
    return INFER_HEADER.pack(first_index, len(inputs)) + b"".join(inputs)


def load_payload(load_id: int, offset: int, data: bytes) -> bytes:
    return LOAD_HEADER.pack(load_id, offset) + data


def infer_loaded_payload(load_id: int, first_index: int) -> bytes:
    return INFER_LOADED_PAYLOAD.pack(load_id, first_index)


def parse_load_answer(payload: bytes) -> tuple[int, int]:
    """(load_id, bytes loaded) of a LOAD answer."""
    if len(payload) != LOAD_ANSWER.size:
        raise ProtocolError(f"LOAD answer of {len(payload)} bytes, expected {LOAD_ANSWER.size}")
    load_id, loaded = LOAD_ANSWER.unpack(payload)
    return load_id, loaded


def fits_one_frame(info: "BoardInfo") -> bool:
    """Whether one sample's input fits an INFER frame (else LOAD frames carry it)."""
    return INFER_HEADER.size + info.input_bytes <= info.max_payload


@dataclass(frozen=True)
class BoardInfo:
    """What a board says in its HELLO answer."""

    protocol_version: int
    max_payload: int
    rx_buffer_bytes: int
    clock_hz: int
    latency_unit: str
    model_ready: bool
    max_batch: int
    input_bytes: int
    output_bytes: int
    arena_bytes: int
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    num_layers: int
    firmware_version: str
    board: str
    backend: str
    model_sha256: str
    features: int = 0  # FEATURE_* bits; boards from before LOAD send none

    @property
    def supports_load(self) -> bool:
        return bool(self.features & FEATURE_LOAD)


def _strings(payload: bytes, offset: int, count: int) -> list[str]:
    out = []
    for _ in range(count):
        if offset >= len(payload):
            raise ProtocolError("HELLO answer cut short")
        n = payload[offset]
        text = payload[offset + 1 : offset + 1 + n]
        if len(text) != n:
            raise ProtocolError("HELLO answer cut short")
        out.append(text.decode("utf-8", "replace"))
        offset += 1 + n
    return out


def parse_hello(payload: bytes) -> BoardInfo:
    if len(payload) < HELLO_FIXED.size:
        raise ProtocolError(f"HELLO answer of {len(payload)} bytes, expected at least {HELLO_FIXED.size}")
    v = HELLO_FIXED.unpack_from(payload)
    (version, max_payload, rx_buffer, clock, unit, not_ready, max_batch, in_bytes, out_bytes, arena,
     in_scale, in_zp, out_scale, out_zp, in_rank, out_rank, layers) = v[:17]
    in_dims, out_dims = v[17:21], v[21:25]
    if in_rank > 4 or out_rank > 4:
        raise ProtocolError("HELLO answer with a tensor rank above 4")
    firmware, board, backend, sha = _strings(payload, HELLO_FIXED.size, 4)
    end = HELLO_FIXED.size
    for _ in range(4):  # the raw lengths: a replaced undecodable byte may change a string's size
        end += 1 + payload[end]
    features = struct.unpack_from("<I", payload, end)[0] if len(payload) >= end + 4 else 0
    return BoardInfo(
        protocol_version=version, max_payload=max_payload, rx_buffer_bytes=rx_buffer, clock_hz=clock,
        latency_unit=LATENCY_UNITS.get(unit, f"unit{unit}"), model_ready=not_ready == 0,
        max_batch=max_batch, input_bytes=in_bytes, output_bytes=out_bytes, arena_bytes=arena,
        input_scale=in_scale, input_zero_point=in_zp, output_scale=out_scale, output_zero_point=out_zp,
        input_shape=tuple(in_dims[:in_rank]), output_shape=tuple(out_dims[:out_rank]), num_layers=layers,
        firmware_version=firmware, board=board, backend=backend, model_sha256=sha, features=features,
    )


@dataclass(frozen=True)
class InferResult:
    first_index: int
    latencies: list[int]
    outputs: list[bytes]


def parse_result(payload: bytes, output_bytes: int) -> InferResult:
    if len(payload) < RESULT_HEADER.size:
        raise ProtocolError("INFER answer shorter than its header")
    first, count, _ = RESULT_HEADER.unpack_from(payload)
    record = 4 + output_bytes
    if len(payload) != RESULT_HEADER.size + count * record:
        raise ProtocolError(f"INFER answer of {len(payload)} bytes does not hold {count} results")
    latencies, outputs = [], []
    for i in range(count):
        at = RESULT_HEADER.size + i * record
        latencies.append(struct.unpack_from("<I", payload, at)[0])
        outputs.append(bytes(payload[at + 4 : at + record]))
    return InferResult(first, latencies, outputs)


@dataclass(frozen=True)
class BoardError:
    code: int
    detail: int

    @property
    def name(self) -> str:
        return ERROR_NAMES.get(self.code, f"code {self.code}")


def parse_error(payload: bytes) -> BoardError:
    if len(payload) != ERROR_PAYLOAD.size:
        raise ProtocolError("ERROR frame of the wrong length")
    code, _, detail = ERROR_PAYLOAD.unpack(payload)
    return BoardError(code, detail)


def parse_profile(payload: bytes) -> list[tuple[str, int]]:
    """(op name, time in the board's latency unit) per layer of the last inference."""
    if len(payload) < 4:
        raise ProtocolError("PROFILE answer shorter than its header")
    (count,) = struct.unpack_from("<H", payload)
    offset, layers = 4, []
    for _ in range(count):
        if offset + 9 > len(payload):
            raise ProtocolError("PROFILE answer cut short")
        (time,) = struct.unpack_from("<Q", payload, offset)
        (name,) = _strings(payload, offset + 8, 1)
        offset += 9 + len(name.encode())
        layers.append((name, time))
    return layers
