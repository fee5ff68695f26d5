"""A session with a board over a transport: hello, pipelined batched inference,
retransmission and resynchronisation (firmware/PROTOCOL.md)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from tinyml.errors import TinymlError

from . import protocol as p
from .transport import Transport

DEFAULT_MAX_BATCH = 32  # bigger frames gain little efficiency and cost more on a retransmit


@dataclass
class LinkStats:
    frames_sent: int = 0
    retries: int = 0              # request frames sent again
    payload_sent: int = 0         # sample input bytes, first transmission only
    payload_received: int = 0     # sample output bytes, first answer only
    damaged_frames: int = 0       # board -> host frames that failed COBS/CRC
    board_errors: dict[str, int] = field(default_factory=dict)  # ERROR frames by name
    duplicates_ignored: int = 0   # answers to requests already answered
    boots_seen: int = 0           # the board rebooted during the session


@dataclass(frozen=True)
class SampleResult:
    index: int
    output: bytes
    latency: int


@dataclass
class _Request:
    seq: int
    indices: list[int]
    inputs: list[bytes]
    wire: bytes
    first_order: int
    first_sent_at: float
    sent_at: float
    sends: int = 1


class BoardLink:
    def __init__(self, transport: Transport, reply_timeout_s: float = 10.0, max_retries: int = 40) -> None:
        self.transport = transport
        self.stats = LinkStats()
        self.info: p.BoardInfo | None = None
        # Until an answer has been timed, a generous wait: a lost frame is usually
        # noticed sooner by a later answer or an ERROR frame.
        self.reply_timeout_s = reply_timeout_s
        self.max_retries = max_retries
        self._decoder = p.FrameDecoder()
        self._seq = 0
        self._order = 0
        self._rtt: float | None = None
        self.trace: list[str] | None = None  # set to [] to record what the link did and why

    def _note(self, text: str) -> None:
        if self.trace is not None:
            self.trace.append(f"{time.monotonic():.3f} {text}")

    # -- plumbing -----------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) % 0xFFF0  # 0xFFF0.. are reserved (tests, unknown)
        return self._seq or self._next_seq()

    def _send(self, wire: bytes) -> None:
        self.transport.write(wire)
        self.stats.frames_sent += 1

    def _events(self) -> list[p.Frame]:
        frames = []
        for event in self._decoder.feed(self.transport.read()):
            if isinstance(event, p.ProtocolError):
                self.stats.damaged_frames += 1
                continue
            if event.version != p.PROTOCOL_VERSION:
                raise TinymlError(
                    f"board on {self.transport.url} speaks protocol v{event.version}, this host speaks "
                    f"v{p.PROTOCOL_VERSION}: flash a firmware built from this checkout")
            frames.append(event)
        return frames

    def _count_error(self, error: p.BoardError) -> None:
        self.stats.board_errors[error.name] = self.stats.board_errors.get(error.name, 0) + 1

    def _raise_board_error(self, error: p.BoardError) -> None:
        if error.code == p.ERR_VERSION:
            raise TinymlError(
                f"board on {self.transport.url} speaks protocol v{error.detail}, this host speaks "
                f"v{p.PROTOCOL_VERSION}: flash a firmware built from this checkout")
        raise TinymlError(f"board on {self.transport.url} rejected a request: {error.name} error "
                          f"(detail {error.detail})")

    # -- hello ----------------------------------------------------------------
    def hello(self, attempts: int = 4, timeout_s: float = 1.5) -> p.BoardInfo:
        # QEMU notices a new reader on its pty within a second: the first HELLO may go unheard.
        """Synchronises with the board and reads what it runs."""
        self.transport.discard_input()
        for _ in range(attempts):
            seq = self._next_seq()
            # A leading delimiter ends whatever half frame the board holds.
            self._send(p.DELIMITER + p.encode_frame(p.MSG_HELLO, seq, p.hello_payload()))
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                for frame in self._events():
                    if frame.seq != seq:
                        continue
                    if frame.type == p.MSG_HELLO | p.MSG_REPLY:
                        try:
                            self.info = p.parse_hello(frame.payload)
                        except p.ProtocolError as exc:
                            raise TinymlError(f"board on {self.transport.url} sent a bad HELLO answer: {exc}") from exc
                        return self.info
                    if frame.type == p.MSG_ERROR:
                        self._raise_board_error(p.parse_error(frame.payload))
            self.stats.retries += 1
        raise TinymlError(f"no answer from a tinyml board on {self.transport.url} "
                          f"({attempts} HELLO attempts, {timeout_s:g} s each): wrong port, baud or firmware?")

    def reset(self, timeout_s: float = 10.0) -> p.BoardInfo:
        """RESET command: waits for the BOOT frame, then says hello again."""
        seq = self._next_seq()
        self._send(p.DELIMITER + p.encode_frame(p.MSG_RESET, seq))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for frame in self._events():
                if frame.type == p.MSG_BOOT:
                    self.stats.boots_seen += 1
                    return self.hello()
        raise TinymlError(f"board on {self.transport.url} did not reboot within {timeout_s:g} s of RESET")

    def profile(self, timeout_s: float = 3.0) -> list[tuple[str, int]]:
        seq = self._next_seq()
        self._send(p.encode_frame(p.MSG_PROFILE, seq))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for frame in self._events():
                if frame.seq == seq and frame.type == p.MSG_PROFILE | p.MSG_REPLY:
                    return p.parse_profile(frame.payload)
                if frame.seq == seq and frame.type == p.MSG_ERROR:
                    self._raise_board_error(p.parse_error(frame.payload))
        raise TinymlError(f"board on {self.transport.url} did not answer PROFILE")

    # -- streaming ------------------------------------------------------------
    def batch_size(self, limit: int | None = None) -> int:
        """Samples per INFER frame: two frames must fit the board's receive buffer."""
        info = self._require_info()
        batch = min(info.max_batch, limit or DEFAULT_MAX_BATCH)
        while batch > 1 and p.encoded_size(p.INFER_HEADER.size + batch * info.input_bytes) > info.rx_buffer_bytes // 2:
            batch -= 1
        return max(1, batch)

    def _require_info(self) -> p.BoardInfo:
        if self.info is None:
            raise TinymlError("internal: hello() must run before streaming")
        return self.info

    def _timeout(self) -> float:
        # Answers come in order, so a reply's delay includes the frames queued
        # before it; four times the smoothed delay leaves room for jitter.
        if self._rtt is None:
            return self.reply_timeout_s
        return max(0.5, 4.0 * self._rtt)

    def infer(self, samples: Iterable[tuple[int, bytes]], batch: int | None = None) -> Iterator[SampleResult]:
        """Streams (index, input bytes) to the board, keeping as many frames in
        flight as its receive buffer holds, and yields each sample's result once,
        in completion order, whatever the line loses, damages or repeats."""
        info = self._require_info()
        batch = self.batch_size(batch)
        source = iter(samples)
        exhausted = False
        outstanding: OrderedDict[int, _Request] = OrderedDict()  # oldest first
        answered: set[int] = set()
        expected_hello: int | None = None
        last_progress = time.monotonic()
        # Frames shrink while the line damages them (a retransmit costs a whole
        # frame, and a long frame is more likely hit) and grow back while it does not.
        current_batch = batch
        backoff = 1.0

        def make_request(chunk: list[tuple[int, bytes]], order: int) -> _Request:
            seq = self._next_seq()
            wire = p.encode_frame(p.MSG_INFER, seq, p.infer_payload(chunk[0][0], [d for _, d in chunk]))
            now = time.monotonic()
            return _Request(seq, [i for i, _ in chunk], [d for _, d in chunk], wire, order, now, now)

        def retransmit(request: _Request, why: str) -> None:
            nonlocal current_batch
            current_batch = max(1, current_batch // 2)
            self.stats.retries += 1
            if request.sends >= self.max_retries:
                raise TinymlError(f"board on {self.transport.url} stopped answering: samples "
                                  f"{request.indices[0]}..{request.indices[-1]} sent {request.sends} times")
            if len(request.indices) > current_batch:
                # Resend as shorter frames in its place; a late answer to the
                # old seq is then ignored (its samples are answered by the new ones).
                del outstanding[request.seq]
                pieces = [make_request(list(zip(request.indices[i:i + current_batch],
                                                request.inputs[i:i + current_batch])), request.first_order)
                          for i in range(0, len(request.indices), current_batch)]
                for piece in reversed(pieces):
                    piece.sends = request.sends + 1
                    outstanding[piece.seq] = piece
                    outstanding.move_to_end(piece.seq, last=False)
                for piece in pieces:
                    self._note(f"send seq {piece.seq} (split of {request.seq}: {why})")
                    self._send(piece.wire)
                return
            request.sends += 1
            request.sent_at = time.monotonic()
            self._note(f"send seq {request.seq} ({why})")
            self._send(request.wire)

        def resend_oldest(why: str) -> None:
            if outstanding:
                oldest = next(iter(outstanding.values()))
                if time.monotonic() - oldest.sent_at > 0.05:  # one resend per burst of errors
                    retransmit(oldest, why)

        frame_bytes = p.encoded_size(p.INFER_HEADER.size + batch * info.input_bytes)
        held: tuple[int, bytes] | None = None
        while True:
            # Fill the window: frames of consecutive sample indices, as many as
            # the board's receive buffer holds (at least one).
            while not exhausted and (not outstanding or sum(len(r.wire) for r in outstanding.values())
                                     + frame_bytes <= info.rx_buffer_bytes):
                chunk: list[tuple[int, bytes]] = []
                while len(chunk) < current_batch:
                    if held is not None:
                        item, held = held, None
                    else:
                        item = next(source, None)
                        if item is None:
                            break
                    index, data = item
                    if chunk and index != chunk[-1][0] + 1:
                        held = item  # starts the next frame
                        break
                    if len(data) != info.input_bytes:
                        raise TinymlError(f"sample {index} has {len(data)} bytes, the board's model takes "
                                          f"{info.input_bytes}")
                    chunk.append((int(index), bytes(data)))
                if not chunk:
                    exhausted = True
                    break
                request = make_request(chunk, self._order)
                self._order += 1
                outstanding[request.seq] = request
                self._note(f"send seq {request.seq} (new)")
                self._send(request.wire)
                self.stats.payload_sent += sum(len(d) for _, d in chunk)
            if exhausted and not outstanding:
                return

            damaged_before = self.stats.damaged_frames
            frames = self._events()
            if self.stats.damaged_frames > damaged_before:
                # An answer arrived damaged; answers come in order, so most
                # likely it was the oldest unanswered request's.
                resend_oldest("damaged answer")
            for frame in frames:
                if frame.type == p.MSG_INFER | p.MSG_REPLY:
                    request = outstanding.get(frame.seq)
                    if request is None:
                        self.stats.duplicates_ignored += 1
                        continue
                    try:
                        result = p.parse_result(frame.payload, info.output_bytes)
                    except p.ProtocolError:
                        self.stats.damaged_frames += 1
                        continue
                    if result.first_index != request.indices[0] or len(result.outputs) != len(request.indices):
                        self.stats.damaged_frames += 1  # an answer that is not for this request
                        continue
                    del outstanding[frame.seq]
                    self._note(f"result seq {frame.seq}")
                    if request.sends == 1:  # a retransmitted request's delay is ambiguous
                        rtt = time.monotonic() - request.sent_at
                        self._rtt = rtt if self._rtt is None else 0.8 * self._rtt + 0.2 * rtt
                        current_batch = min(batch, current_batch + max(1, current_batch // 4))
                    backoff = 1.0
                    last_progress = time.monotonic()
                    # The board answers in order: requests first sent before this
                    # one and not sent since were lost on the way.
                    for older in list(outstanding.values()):
                        if older.first_order < request.first_order and older.sent_at < request.first_sent_at \
                                and older.seq in outstanding:
                            retransmit(older, f"gap before {request.seq}")
                    for offset, index in enumerate(request.indices):
                        if index in answered:
                            continue
                        answered.add(index)
                        self.stats.payload_received += len(result.outputs[offset])
                        yield SampleResult(index, result.outputs[offset], result.latencies[offset])
                elif frame.type == p.MSG_ERROR:
                    error = p.parse_error(frame.payload)
                    self._count_error(error)
                    if error.code in (p.ERR_CRC, p.ERR_FRAMING, p.ERR_TOO_LARGE):
                        resend_oldest(f"board {error.name} error")  # a request arrived damaged
                    elif frame.seq in outstanding or error.code == p.ERR_VERSION:
                        self._raise_board_error(error)
                elif frame.type == p.MSG_BOOT:
                    # The board rebooted: whatever it held is gone. Check it still
                    # runs the same model, then send everything unanswered again.
                    self.stats.boots_seen += 1
                    expected_hello = self._next_seq()
                    self._send(p.DELIMITER + p.encode_frame(p.MSG_HELLO, expected_hello, p.hello_payload()))
                    for request in list(outstanding.values()):
                        if request.seq in outstanding:
                            retransmit(request, "board rebooted")
                elif frame.type == p.MSG_HELLO | p.MSG_REPLY and frame.seq == expected_hello:
                    expected_hello = None
                    again = p.parse_hello(frame.payload)
                    if again.model_sha256 != info.model_sha256:
                        raise TinymlError(f"board on {self.transport.url} came back from a reset with model "
                                          f"{again.model_sha256}, the run started with {info.model_sha256}")

            now = time.monotonic()
            if outstanding:
                timeout = self._timeout() * backoff
                stale = [r for r in outstanding.values() if now - r.sent_at > timeout]
                for request in stale:
                    if request.seq in outstanding:
                        retransmit(request, f"timeout {timeout:.2f} s")
                if stale:
                    backoff = min(4.0, backoff * 1.5)  # the board may just be slower than measured
                if now - last_progress > max(30.0, 10 * timeout):
                    raise TinymlError(f"board on {self.transport.url} stopped answering "
                                      f"({len(outstanding)} requests unanswered for {now - last_progress:.0f} s)")
