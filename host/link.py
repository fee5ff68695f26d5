"""A session with a board over a transport: hello, pipelined batched inference,
retransmission and resynchronisation (firmware/PROTOCOL.md)."""

from __future__ import annotations

import random
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from tinyml.errors import TinymlError

from . import protocol as p
from .transport import Transport

DEFAULT_MAX_BATCH = 32  # bigger frames gain little efficiency and cost more on a retransmit
# Sends of one request before the link gives up on it. Why 40 by default: on a
# working line a request almost never needs more than a few, so 40 in a row
# means the board is gone; a line that damages 1% of bytes each way needs ~31
# sends on average for one 64-byte sample (3.2% of round trips arrive whole),
# and runs there with max_retries=None (give up only when nothing is answered
# for STALL_GIVE_UP_S).
DEFAULT_MAX_RETRIES = 40
RETIRED_SEQS_KEPT = 1024  # superseded transmissions whose late answer still completes a job
STALL_GIVE_UP_S = 30.0  # no valid answer for this long (and 10 timeouts): the board is gone


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
class _Frame:
    """One request frame on the wire; the answer carries its seq."""

    seq: int
    wire: bytes
    job: _Job
    attempt: int                  # the job's transmission this frame belongs to
    final: bool                   # its answer completes the job (INFER, INFER_LOADED)
    sent_order: int = -1          # link-wide order of its transmission (each seq goes out once)
    sent_at: float = 0.0


@dataclass(eq=False)
class _Job:
    """Samples the board answers as one unit: one INFER frame of consecutive
    samples, or one sample's LOAD frames and INFER_LOADED (a chunked load).
    Whatever is lost, the job is sent again; its source says how."""

    indices: list[int]
    inputs: list[bytes]
    frames: list[_Frame] = field(default_factory=list)
    next_frame: int = 0           # frames[:next_frame] went out in this attempt
    attempt: int = 1
    load_id: int = 0              # chunked loads only


class BoardLink:
    def __init__(self, transport: Transport, reply_timeout_s: float = 10.0,
                 max_retries: int | None = DEFAULT_MAX_RETRIES, min_timeout_s: float = 0.5) -> None:
        self.transport = transport
        self.stats = LinkStats()
        self.info: p.BoardInfo | None = None
        # Until an answer has been timed, a generous wait: a lost frame is usually
        # noticed sooner by a later answer or an ERROR frame.
        self.reply_timeout_s = reply_timeout_s
        self.max_retries = max_retries  # sends of one request; None: no limit, only the stall clock gives up
        # The shortest reply timeout, whatever the measured round trip: room for a
        # serial line's or an emulator's pauses. A link known to be quick (a local
        # pty under heavy injected loss) may take less.
        self.min_timeout_s = min_timeout_s
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
        return max(self.min_timeout_s, 4.0 * self._rtt)

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
        if p.fits_one_frame(info):
            jobs: _JobSource = _BatchSource(self, samples, self.batch_size(batch))
        else:
            jobs = _LoadSource(self, samples, self.load_chunk_bytes())
        yield from self._stream(jobs, info)

    def _stream(self, jobs: _JobSource, info: p.BoardInfo) -> Iterator[SampleResult]:
        """The one retransmit loop. Frames go out while the board's receive buffer
        has room; answers come back in order, so an answer shows that frames sent
        before it and still unanswered were lost. A lost, damaged, refused or
        timed-out frame, or a reboot, sends its job again (jobs.resend decides how)
        in frames with new seqs: every seq goes out once, so an answer names the
        transmission it answers (an exact round-trip time and an exact gap), and
        a late answer to a retired seq still completes its job."""
        outstanding: OrderedDict[int, _Frame] = OrderedDict()  # sent, unanswered, of a live attempt; oldest first
        retired: OrderedDict[int, _Frame] = OrderedDict()      # sent, then superseded by a resend: a late answer counts
        inflight_bytes = 0
        queue: deque[_Job] = deque()    # jobs with frames still to send; restarted ones wait behind the current
        active: dict[int, _Job] = {}    # unanswered jobs by id()
        answered: set[int] = set()
        expected_hello: int | None = None
        exhausted = False
        last_progress = time.monotonic()
        last_resend = 0.0
        backoff = 1.0

        def transmit(frame: _Frame, why: str) -> None:
            nonlocal inflight_bytes
            self._order += 1
            frame.sent_order, frame.sent_at = self._order, time.monotonic()
            outstanding[frame.seq] = frame
            inflight_bytes += len(frame.wire)
            self._note(f"send seq {frame.seq} ({why})")
            self._send(frame.wire)

        def forget(frame: _Frame, retire: bool = False) -> None:
            nonlocal inflight_bytes
            if outstanding.pop(frame.seq, None) is not None:
                inflight_bytes -= len(frame.wire)
                if retire:
                    retired[frame.seq] = frame
                    while len(retired) > RETIRED_SEQS_KEPT:
                        retired.popitem(last=False)

        def live(frame: _Frame) -> bool:
            """The frame belongs to the current attempt of an unanswered job. Any other
            frame still outstanding would hold receive-buffer room forever."""
            return active.get(id(frame.job)) is frame.job and frame.attempt == frame.job.attempt

        def resend(job: _Job, why: str, attempt: int | None = None) -> None:
            nonlocal last_resend
            if active.get(id(job)) is not job or (attempt is not None and attempt != job.attempt):
                return  # answered meanwhile, or already sent again for the same loss
            self.stats.retries += 1
            last_resend = time.monotonic()
            if self.max_retries is not None and job.attempt >= self.max_retries:
                raise TinymlError(f"board on {self.transport.url} stopped answering: samples "
                                  f"{job.indices[0]}..{job.indices[-1]} sent {job.attempt} times")
            for frame in job.frames[:job.next_frame]:
                forget(frame, retire=True)
            replacements = jobs.resend(job)
            del active[id(job)]
            for new in replacements:
                active[id(new)] = new
            if jobs.resend_at_once:
                # Repeated at once, ahead of new work.
                for new in replacements:
                    for frame in new.frames:
                        transmit(frame, why)
                    new.next_frame = len(new.frames)
            else:
                for new in replacements:
                    if new not in queue:
                        queue.append(new)
                self._note(f"restart samples {job.indices[0]}..{job.indices[-1]} ({why})")

        def complete(job: _Job) -> None:
            """The job's final answer arrived: none of its frames is waited for any more."""
            del active[id(job)]
            for frame in job.frames:
                forget(frame)
            if job in queue:
                queue.remove(job)

        def answered_frame(frame: _Frame) -> None:
            """The board answered `frame`: frames sent before it, still unanswered, were lost
            (a final answer proves its own job's earlier frames arrived)."""
            forget(frame)
            for older in list(outstanding.values()):
                if older.seq not in outstanding or older.sent_order >= frame.sent_order:
                    continue
                if not live(older) or (frame.final and older.job is frame.job):
                    forget(older)
                else:
                    resend(older.job, f"gap before {frame.seq}", older.attempt)

        def resend_oldest(why: str) -> None:
            while outstanding:
                oldest = next(iter(outstanding.values()))
                if not live(oldest):
                    forget(oldest)
                    continue
                if time.monotonic() - max(oldest.sent_at, last_resend) > 0.05:  # one resend per burst of errors
                    resend(oldest.job, why, oldest.attempt)
                return

        while True:
            # Fill the board's receive buffer (at least one frame in flight).
            while True:
                if not queue:
                    job = None if exhausted else jobs.next_job()
                    if job is None:
                        exhausted = True
                        break
                    queue.append(job)
                    active[id(job)] = job
                job = queue[0]
                frame = job.frames[job.next_frame]
                if outstanding and inflight_bytes + len(frame.wire) > info.rx_buffer_bytes:
                    break
                transmit(frame, "new" if job.attempt == 1 else "again")
                job.next_frame += 1
                if job.next_frame == len(job.frames):
                    queue.popleft()
            if exhausted and not queue and not active:
                return

            damaged_before = self.stats.damaged_frames
            for event in self._events():
                if event.type in (p.MSG_INFER | p.MSG_REPLY, p.MSG_LOAD | p.MSG_REPLY,
                                  p.MSG_INFER_LOADED | p.MSG_REPLY):
                    frame = outstanding.get(event.seq)
                    late = frame is None
                    if late:
                        frame = retired.get(event.seq)
                        if frame is None or not frame.final or active.get(id(frame.job)) is not frame.job:
                            self.stats.duplicates_ignored += 1  # answered already, or superseded by a resend
                            continue
                    job = frame.job
                    results = jobs.results(job, frame, event)
                    if results is None:
                        self.stats.damaged_frames += 1  # well formed, but not an answer to this frame
                        continue
                    if late:
                        retired.pop(event.seq, None)  # an earlier transmission's answer: the job is done
                    else:
                        answered_frame(frame)
                        # Each seq is sent once, so the delay is this frame's. Up at once,
                        # down slowly: one estimate serves frames answered at once and ones that compute.
                        delay = time.monotonic() - frame.sent_at
                        self._rtt = delay if self._rtt is None or delay > self._rtt else 0.9 * self._rtt + 0.1 * delay
                        jobs.clean_answer()
                    backoff = 1.0
                    last_progress = time.monotonic()
                    if not frame.final:
                        continue
                    complete(job)
                    self._note(f"result seq {event.seq}{' (late)' if late else ''}")
                    for index, output, latency in results:
                        if index in answered:
                            continue
                        answered.add(index)
                        self.stats.payload_received += len(output)
                        yield SampleResult(index, output, latency)
                elif event.type == p.MSG_ERROR:
                    error = p.parse_error(event.payload)
                    self._count_error(error)
                    frame = outstanding.get(event.seq) if event.seq != p.SEQ_UNKNOWN else None
                    if error.code in (p.ERR_CRC, p.ERR_FRAMING, p.ERR_TOO_LARGE):
                        resend_oldest(f"board {error.name} error")  # a request arrived damaged
                    elif error.code == p.ERR_LOAD:
                        if frame is not None:
                            answered_frame(frame)  # refused: that sample's load is incomplete
                            resend(frame.job, "board load error", frame.attempt)
                        # else: a refusal of a retired frame; its job was sent again already
                    elif frame is not None or error.code == p.ERR_VERSION:
                        self._raise_board_error(error)
                elif event.type == p.MSG_BOOT:
                    # The board rebooted: whatever it held is gone. Check it still runs
                    # the same model, then send every job it had started again.
                    expected_hello = self._hello_after_boot()
                    for job in list(active.values()):
                        if job.next_frame > 0:
                            resend(job, "board rebooted", job.attempt)
                elif event.type == p.MSG_HELLO | p.MSG_REPLY and event.seq == expected_hello:
                    expected_hello = None
                    self._check_model_after_boot(event.payload, info)
            if self.stats.damaged_frames > damaged_before:
                # An answer arrived damaged; answers come in order, so most likely
                # it was the oldest unanswered frame's.
                resend_oldest("damaged answer")

            now = time.monotonic()
            if outstanding:
                timeout = self._timeout() * backoff
                stale = [frame for frame in outstanding.values() if now - frame.sent_at > timeout]
                for frame in stale:
                    if frame.seq not in outstanding:
                        continue
                    if live(frame):
                        resend(frame.job, f"timeout {timeout:.2f} s", frame.attempt)
                    else:
                        forget(frame)
                if stale:
                    backoff = min(4.0, backoff * 1.5)  # the board may just be slower than measured
                if now - last_progress > max(STALL_GIVE_UP_S, 10 * timeout):
                    raise TinymlError(f"board on {self.transport.url} stopped answering "
                                      f"({len(outstanding)} frames unanswered for {now - last_progress:.0f} s)")
            elif active and not queue:
                raise TinymlError("internal: samples "
                                  f"{sorted(i for job in active.values() for i in job.indices)[:5]} are "
                                  "neither in flight nor waiting to be sent")


class _JobSource(Protocol):
    """Makes the jobs of one kind of request and says how a job is sent again."""

    resend_at_once: bool   # True: repeat a lost job at once; False: queue it behind the current one

    def next_job(self) -> _Job | None: ...

    def resend(self, job: _Job) -> list[_Job]:
        """The job (or the jobs replacing it) to send again; counts a retransmission."""

    def results(self, job: _Job, frame: _Frame, event: p.Frame) -> list[tuple[int, bytes, int]] | None:
        """(index, output, latency) of a valid answer to frame ([] for an intermediate
        one), None when the answer is not for this frame."""

    def clean_answer(self) -> None: ...


class _BatchSource:
    """INFER frames of consecutive samples. Frames shrink while the line damages
    them (a retransmit costs a whole frame, and a long frame is more likely hit)
    and grow back while it does not."""

    resend_at_once = True

    def __init__(self, link: BoardLink, samples: Iterable[tuple[int, bytes]], batch: int) -> None:
        self.link, self.source, self.batch, self.current = link, iter(samples), batch, batch
        self.held: tuple[int, bytes] | None = None
        self.info = link._require_info()

    def _job(self, indices: list[int], inputs: list[bytes], attempt: int) -> _Job:
        job = _Job(indices, inputs, attempt=attempt)
        self._build(job)
        return job

    def _build(self, job: _Job) -> None:
        """The job's INFER frame under a fresh seq (each transmission has its own)."""
        seq = self.link._next_seq()
        wire = p.encode_frame(p.MSG_INFER, seq, p.infer_payload(job.indices[0], job.inputs))
        job.frames, job.next_frame = [_Frame(seq, wire, job, job.attempt, True)], 0

    def next_job(self) -> _Job | None:
        chunk: list[tuple[int, bytes]] = []
        while len(chunk) < self.current:
            if self.held is not None:
                item, self.held = self.held, None
            else:
                item = next(self.source, None)
                if item is None:
                    break
            index, data = item
            if chunk and index != chunk[-1][0] + 1:
                self.held = item  # starts the next frame
                break
            if len(data) != self.info.input_bytes:
                raise TinymlError(f"sample {index} has {len(data)} bytes, the board's model takes "
                                  f"{self.info.input_bytes}")
            chunk.append((int(index), bytes(data)))
        if not chunk:
            return None
        self.link.stats.payload_sent += sum(len(d) for _, d in chunk)
        return self._job([i for i, _ in chunk], [d for _, d in chunk], 1)

    def resend(self, job: _Job) -> list[_Job]:
        self.current = max(1, self.current // 2)
        if len(job.indices) <= self.current:
            job.attempt += 1
            self._build(job)
            return [job]
        # Shorter frames in its place; a late answer to the old seq is then ignored
        # (its samples are answered by the new ones).
        step = self.current
        return [self._job(job.indices[i:i + step], job.inputs[i:i + step], job.attempt + 1)
                for i in range(0, len(job.indices), step)]

    def results(self, job: _Job, frame: _Frame, event: p.Frame) -> list[tuple[int, bytes, int]] | None:
        if event.type != p.MSG_INFER | p.MSG_REPLY:
            return None
        try:
            result = p.parse_result(event.payload, self.info.output_bytes)
        except p.ProtocolError:
            return None
        if result.first_index != job.indices[0] or len(result.outputs) != len(job.indices):
            return None
        return list(zip(job.indices, result.outputs, result.latencies))

    def clean_answer(self) -> None:
        self.current = min(self.batch, self.current + max(1, self.current // 4))


class _LoadSource:
    """A chunked load per sample: LOAD frames fill the board's input buffer and
    INFER_LOADED runs it, under a fresh load id. The board handles frames in
    order, so the next sample's LOAD frames wait in its receive buffer while one
    computes; anything lost, damaged or refused sends the whole sequence again
    (offset 0 starts the load over; the board only runs a complete load of the
    id named, so a partial or stale buffer is never scored)."""

    resend_at_once = False

    def __init__(self, link: BoardLink, samples: Iterable[tuple[int, bytes]], chunk_bytes: int) -> None:
        self.link, self.source, self.chunk_bytes = link, iter(samples), chunk_bytes
        self.info = link._require_info()

    def _build(self, job: _Job) -> None:
        frames = []
        data = job.inputs[0]
        for offset in range(0, len(data), self.chunk_bytes):
            seq = self.link._next_seq()
            payload = p.load_payload(job.load_id, offset, data[offset:offset + self.chunk_bytes])
            frames.append(_Frame(seq, p.encode_frame(p.MSG_LOAD, seq, payload), job, job.attempt, False))
        seq = self.link._next_seq()
        wire = p.encode_frame(p.MSG_INFER_LOADED, seq, p.infer_loaded_payload(job.load_id, job.indices[0]))
        frames.append(_Frame(seq, wire, job, job.attempt, True))
        job.frames, job.next_frame = frames, 0

    def next_job(self) -> _Job | None:
        item = next(self.source, None)
        if item is None:
            return None
        index, data = item
        if len(data) != self.info.input_bytes:
            raise TinymlError(f"sample {index} has {len(data)} bytes, the board's model takes "
                              f"{self.info.input_bytes}")
        self.link._load_id = (self.link._load_id + 1) & 0xFFFFFFFF
        job = _Job([int(index)], [bytes(data)], load_id=self.link._load_id)
        self._build(job)
        self.link.stats.payload_sent += len(data)
        return job

    def resend(self, job: _Job) -> list[_Job]:
        job.attempt += 1
        self._build(job)
        return [job]

    def results(self, job: _Job, frame: _Frame, event: p.Frame) -> list[tuple[int, bytes, int]] | None:
        if not frame.final:
            if event.type != p.MSG_LOAD | p.MSG_REPLY:
                return None
            try:
                load_id, _ = p.parse_load_answer(event.payload)
            except p.ProtocolError:
                return None
            return [] if load_id == job.load_id else None
        if event.type != p.MSG_INFER_LOADED | p.MSG_REPLY:
            return None
        try:
            result = p.parse_result(event.payload, self.info.output_bytes)
        except p.ProtocolError:
            return None
        if result.first_index != job.indices[0] or len(result.outputs) != 1:
            return None
        return [(job.indices[0], result.outputs[0], result.latencies[0])]

    def clean_answer(self) -> None:
        pass
