"""A session with a board over a transport: hello, pipelined batched inference,
retransmission and resynchronisation (firmware/PROTOCOL.md)."""

from __future__ import annotations

import random
import time
from collections import OrderedDict, deque
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


@dataclass
class _LoadFrame:
    seq: int
    wire: bytes
    attempt: int
    final: bool                   # the INFER_LOADED that ends the sample
    sent_order: int = -1
    sent_at: float = 0.0


@dataclass
class _Load:
    """One sample whose input travels as LOAD frames, then INFER_LOADED; on any
    loss the whole sequence is sent again (offset 0 starts the load over)."""

    index: int
    data: bytes
    load_id: int
    frames: list[_LoadFrame] = field(default_factory=list)
    next_frame: int = 0
    attempt: int = 0


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
        # A load id per sample, from a random start so a board still holding an
        # earlier session's input never matches.
        self._load_id = random.getrandbits(32)
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

    def _hello_after_boot(self) -> int:
        """After BOOT: counts it and asks HELLO again; returns that request's seq."""
        self.stats.boots_seen += 1
        seq = self._next_seq()
        self._send(p.DELIMITER + p.encode_frame(p.MSG_HELLO, seq, p.hello_payload()))
        return seq

    def _check_model_after_boot(self, hello_payload: bytes, info: p.BoardInfo) -> None:
        again = p.parse_hello(hello_payload)
        if again.model_sha256 != info.model_sha256:
            raise TinymlError(f"board on {self.transport.url} came back from a reset with model "
                              f"{again.model_sha256}, the run started with {info.model_sha256}")

    def _check_sizes(self, info: p.BoardInfo) -> None:
        if p.RESULT_HEADER.size + 4 + info.output_bytes > info.max_payload:
            raise TinymlError(f"the board's model gives {info.output_bytes} output bytes, more than one answer "
                              f"frame holds (max_payload {info.max_payload}); chunked outputs are not implemented")
        if not p.fits_one_frame(info) and not info.supports_load:
            raise TinymlError(f"the board's model takes {info.input_bytes} input bytes, more than one frame holds "
                              f"(max_payload {info.max_payload}), and its firmware has no LOAD: flash a firmware "
                              f"built from this checkout")

    def load_chunk_bytes(self) -> int:
        """Input bytes per LOAD frame: within max_payload, and two frames fit the
        board's receive buffer so the next one streams while one is handled."""
        info = self._require_info()
        chunk = info.max_payload - p.LOAD_HEADER.size
        while chunk > 64 and p.encoded_size(p.LOAD_HEADER.size + chunk) > info.rx_buffer_bytes // 2:
            chunk -= 1 + chunk // 64
        return max(1, chunk)

    def infer(self, samples: Iterable[tuple[int, bytes]], batch: int | None = None) -> Iterator[SampleResult]:
        """Streams (index, input bytes) to the board, keeping as many frames in
        flight as its receive buffer holds, and yields each sample's result once,
        in completion order, whatever the line loses, damages or repeats.
        Inputs larger than one frame go as LOAD frames plus INFER_LOADED."""
        info = self._require_info()
        self._check_sizes(info)
        if not p.fits_one_frame(info):
            yield from self._infer_loaded(samples)
            return
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
                    expected_hello = self._hello_after_boot()
                    for request in list(outstanding.values()):
                        if request.seq in outstanding:
                            retransmit(request, "board rebooted")
                elif frame.type == p.MSG_HELLO | p.MSG_REPLY and frame.seq == expected_hello:
                    expected_hello = None
                    self._check_model_after_boot(frame.payload, info)

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

    def _infer_loaded(self, samples: Iterable[tuple[int, bytes]]) -> Iterator[SampleResult]:
        """infer() for inputs larger than a frame: per sample, LOAD frames fill
        the board's input buffer and INFER_LOADED runs it. The board handles
        frames in order, so the next sample's LOAD frames wait in its receive
        buffer while one computes; anything lost, damaged or refused restarts
        that sample's whole sequence (the board only runs a complete load of
        the id named, so a partial or stale buffer is never scored)."""
        info = self._require_info()
        chunk_bytes = self.load_chunk_bytes()
        source = iter(samples)
        exhausted = False
        outstanding: OrderedDict[int, tuple[_Load, _LoadFrame]] = OrderedDict()  # by send order
        inflight_bytes = 0
        current: _Load | None = None   # the sample whose frames are being sent
        waiting: deque[_Load] = deque()  # restarted samples, sent before new ones
        active: dict[int, _Load] = {}
        answered: set[int] = set()
        expected_hello: int | None = None
        last_progress = time.monotonic()
        last_resend = 0.0
        backoff = 1.0

        def build(load: _Load) -> None:
            load.attempt += 1
            if load.attempt > self.max_retries:
                raise TinymlError(f"board on {self.transport.url} stopped answering: sample {load.index} "
                                  f"sent {load.attempt - 1} times")
            frames = []
            for offset in range(0, len(load.data), chunk_bytes):
                payload = p.load_payload(load.load_id, offset, load.data[offset:offset + chunk_bytes])
                seq = self._next_seq()
                frames.append(_LoadFrame(seq, p.encode_frame(p.MSG_LOAD, seq, payload), load.attempt, False))
            seq = self._next_seq()
            wire = p.encode_frame(p.MSG_INFER_LOADED, seq, p.infer_loaded_payload(load.load_id, load.index))
            frames.append(_LoadFrame(seq, wire, load.attempt, True))
            load.frames, load.next_frame = frames, 0

        def restart(load: _Load, attempt: int, why: str) -> None:
            nonlocal inflight_bytes, last_resend
            if load.index not in active or load.attempt != attempt:
                return  # already done, or already restarted for the same loss
            for frame in load.frames[:load.next_frame]:
                if outstanding.pop(frame.seq, None) is not None:
                    inflight_bytes -= len(frame.wire)
            self.stats.retries += 1
            last_resend = time.monotonic()
            self._note(f"restart sample {load.index} ({why})")
            build(load)
            if load is not current and load not in waiting:
                waiting.append(load)

        def oldest() -> tuple[_Load, _LoadFrame] | None:
            return next(iter(outstanding.values()), None)

        while True:
            # Send while the board's receive buffer has room (at least one frame in flight).
            while True:
                if current is None:
                    if waiting:
                        current = waiting.popleft()
                    elif not exhausted:
                        item = next(source, None)
                        if item is None:
                            exhausted = True
                            break
                        index, data = item
                        if len(data) != info.input_bytes:
                            raise TinymlError(f"sample {index} has {len(data)} bytes, the board's model takes "
                                              f"{info.input_bytes}")
                        self._load_id = (self._load_id + 1) & 0xFFFFFFFF
                        current = _Load(int(index), bytes(data), self._load_id)
                        active[current.index] = current
                        build(current)
                        self.stats.payload_sent += len(data)
                    else:
                        break
                frame = current.frames[current.next_frame]
                if outstanding and inflight_bytes + len(frame.wire) > info.rx_buffer_bytes:
                    break
                self._order += 1
                frame.sent_order, frame.sent_at = self._order, time.monotonic()
                outstanding[frame.seq] = (current, frame)
                inflight_bytes += len(frame.wire)
                self._send(frame.wire)
                current.next_frame += 1
                if current.next_frame == len(current.frames):
                    current = None
            if exhausted and current is None and not waiting and not active:
                return

            damaged_before = self.stats.damaged_frames
            frames = self._events()
            if self.stats.damaged_frames > damaged_before and outstanding \
                    and time.monotonic() - last_resend > 0.05:
                load, frame = oldest()  # answers come in order: most likely the oldest's
                restart(load, frame.attempt, "damaged answer")
            for event in frames:
                entry = outstanding.get(event.seq) if event.seq != p.SEQ_UNKNOWN else None
                if entry is not None and event.type in (p.MSG_LOAD | p.MSG_REPLY, p.MSG_INFER_LOADED | p.MSG_REPLY,
                                                        p.MSG_ERROR):
                    load, frame = entry
                    del outstanding[event.seq]
                    inflight_bytes -= len(frame.wire)
                    # In-order answers: frames sent before this one and unanswered were lost.
                    for older_load, older in list(outstanding.values()):
                        if older.sent_order < frame.sent_order:
                            restart(older_load, older.attempt, f"gap before seq {event.seq}")
                    if event.type == p.MSG_ERROR:
                        error = p.parse_error(event.payload)
                        self._count_error(error)
                        if error.code != p.ERR_LOAD:
                            self._raise_board_error(error)
                        restart(load, frame.attempt, "board load error")
                        continue
                    if frame.attempt == 1 and load.attempt == 1:
                        sample = time.monotonic() - frame.sent_at
                        # Up at once, down slowly: a LOAD answered at once and an
                        # INFER_LOADED that computes share one estimate.
                        self._rtt = sample if self._rtt is None or sample > self._rtt \
                            else 0.9 * self._rtt + 0.1 * sample
                    backoff = 1.0
                    last_progress = time.monotonic()
                    if event.type == p.MSG_LOAD | p.MSG_REPLY:
                        try:
                            load_id, _ = p.parse_load_answer(event.payload)
                        except p.ProtocolError:
                            load_id = -1
                        if load_id != load.load_id:
                            self.stats.damaged_frames += 1
                            restart(load, frame.attempt, "LOAD answer for another load")
                        continue
                    try:
                        result = p.parse_result(event.payload, info.output_bytes)
                    except p.ProtocolError:
                        result = None
                    if result is None or result.first_index != load.index or len(result.outputs) != 1:
                        self.stats.damaged_frames += 1
                        restart(load, frame.attempt, "INFER_LOADED answer for another sample")
                        continue
                    if load.attempt != frame.attempt:
                        continue
                    del active[load.index]
                    self._note(f"result sample {load.index}")
                    if load.index not in answered:
                        answered.add(load.index)
                        self.stats.payload_received += len(result.outputs[0])
                        yield SampleResult(load.index, result.outputs[0], result.latencies[0])
                elif event.type in (p.MSG_LOAD | p.MSG_REPLY, p.MSG_INFER_LOADED | p.MSG_REPLY):
                    self.stats.duplicates_ignored += 1  # an answer to a frame already answered or superseded
                elif event.type == p.MSG_ERROR:
                    error = p.parse_error(event.payload)
                    self._count_error(error)
                    if error.code in (p.ERR_CRC, p.ERR_FRAMING, p.ERR_TOO_LARGE):
                        if outstanding and time.monotonic() - last_resend > 0.05:
                            load, frame = oldest()  # a request arrived damaged
                            restart(load, frame.attempt, f"board {error.name} error")
                    elif error.code == p.ERR_VERSION:
                        self._raise_board_error(error)
                elif event.type == p.MSG_BOOT:
                    # The board rebooted: its input buffer and receive buffer are gone.
                    expected_hello = self._hello_after_boot()
                    for load in list(active.values()):
                        if load.next_frame > 0:
                            restart(load, load.attempt, "board rebooted")
                elif event.type == p.MSG_HELLO | p.MSG_REPLY and event.seq == expected_hello:
                    expected_hello = None
                    self._check_model_after_boot(event.payload, info)

            now = time.monotonic()
            if outstanding:
                timeout = self._timeout() * backoff
                load, frame = oldest()
                if now - frame.sent_at > timeout:
                    restart(load, frame.attempt, f"timeout {timeout:.2f} s")
                    backoff = min(4.0, backoff * 1.5)  # the board may just be slower than measured
                if now - last_progress > max(30.0, 10 * timeout):
                    raise TinymlError(f"board on {self.transport.url} stopped answering "
                                      f"({len(outstanding)} frames unanswered for {now - last_progress:.0f} s)")
