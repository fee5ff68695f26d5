"""One board session: find or build the image, boot the emulator or connect to
a port, check with HELLO that the board runs the expected model, use it (bench,
profile, raw inferences), and always clean up.

    with BoardSession.build_and_boot(board, model_dir, work / "build") as session:
        result = session.bench(model_dir, out_dir)

    with BoardSession.connect(port=None, board=board, model_dir=model_dir) as session:
        ...                                  # a board `tinyml flash` left running, or a real one

The session holds the one open port for its whole life (benches and profiles
share it). An emulator the session started is stopped at the end unless it was
asked to keep running (`tinyml flash`), and then only when the session failed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tinyml.boards import Board
from tinyml.errors import TinymlError
from tinyml.progress import say

from .build import FirmwareImage, TflmSource, build_firmware, ensure_compiled, image_of
from .emulator import EmulatedBoard, find_running_emulator, resolve_port, start_emulator, start_native_board
from .link import DEFAULT_MAX_RETRIES, BoardLink
from .protocol import BoardInfo
from .transport import Transport, open_port

PROTOCOLS = ("tinyml", "mlperf-tiny")
FAULTY_HELLO_ATTEMPTS = 20


@dataclass
class BoardSession:
    """A board for the length of a `with` block. Build it with connect, boot or build_and_boot."""

    board: Board | None
    port: str | None                      # pyserial URL; None until an emulator serves one
    baud: int
    expected_sha256: str | None = None    # None: any model
    expected_from: str = "the model dir"  # for messages: where the expected hash comes from
    mismatch_hint: str = "flash the board with this model"
    check_hello: bool = True              # False: boot or connect only (a flash without verify)
    protocol: str = "tinyml"              # mlperf-tiny: no HELLO, the port is left to run_mlperf
    keep_running: bool = False            # an emulator this session boots outlives a successful session
    model_dir: Path | None = None         # the model directory the emulator record names
    work_dir: Path | None = None          # removed with a kept emulator
    progress: bool = False
    open_retry_s: float = 0.0             # a real board's port may vanish while it re-enumerates after reset
    hello_attempts: int = 6
    hello_timeout_s: float = 1.5
    image: FirmwareImage | None = None
    emulator: EmulatedBoard | None = None
    info: BoardInfo | None = None
    _make_image: Callable[[], FirmwareImage] | None = None
    _transport: Transport | None = None
    _link: BoardLink | None = None
    _owns_emulator: bool = False
    stage_seconds: dict[str, float] = field(default_factory=dict)

    # -- ways to get a board ----------------------------------------------------------
    @classmethod
    def connect(cls, port: str | None = None, board: Board | None = None, model_dir: Path | None = None,
                baud: int | None = None, expected_sha256: str | None = None, protocol: str = "tinyml",
                open_retry_s: float = 0.0, hello_attempts: int = 4, progress: bool = False) -> BoardSession:
        """A board that already runs: --port, or the emulator `tinyml flash --board` left
        running (the one flashed from model_dir when several run). The expected hash is
        model_dir's unless given."""
        from .flash import model_sha256_of

        _check_protocol(protocol)
        url = resolve_port(port, board, model_dir)
        if expected_sha256 is None and model_dir is not None:
            expected_sha256 = model_sha256_of(model_dir)
        if url.lower().startswith("faulty://"):
            # Every HELLO answer (about 160 bytes) crosses the injected faults too.
            hello_attempts = max(hello_attempts, FAULTY_HELLO_ATTEMPTS)
        session = cls(board, url, baud or (board.baud if board else 115200), expected_sha256,
                      expected_from=str(model_dir) if model_dir else "the model dir", protocol=protocol,
                      open_retry_s=open_retry_s, hello_attempts=hello_attempts, progress=progress)
        if port is None and board is not None:
            # An emulator `tinyml flash` left running: its image's sizes go into the report.
            running = find_running_emulator(board, model_dir)
            if running is not None and running.port == url and Path(running.image).suffix == ".elf":
                session.image = image_of(Path(running.image), board)
        return session

    @classmethod
    def boot(cls, board: Board | None, image: FirmwareImage, expected_sha256: str | None = None,
             model_dir: Path | None = None, keep_running: bool = False, work_dir: Path | None = None,
             protocol: str = "tinyml", progress: bool = False) -> BoardSession:
        """Boots a built image: QEMU for an emulated board, a process for a native-port image (board None)."""
        _check_protocol(protocol)
        session = cls(board, None, board.baud if board else 115200, expected_sha256, protocol=protocol,
                      keep_running=keep_running, model_dir=model_dir, work_dir=work_dir, progress=progress)
        session.image = image
        return session

    @classmethod
    def build_and_boot(cls, board: Board, model_dir: Path, build_dir: Path, profile: bool = False,
                       optimize: str = "speed", backend: str = "engine", keep_running: bool = False,
                       work_dir: Path | None = None, progress: bool = False,
                       tflm: TflmSource | None = None) -> BoardSession:
        """Compiles model_dir for the board's target if it is a prepare/emit output
        (engine backend; the tflm backend builds the emitted model with `tflm`'s
        TFLite-Micro), builds the firmware into build_dir and boots it; the expected
        hash is model_dir's."""
        from .flash import model_sha256_of

        session = cls(board, None, board.baud, model_sha256_of(model_dir), expected_from=str(model_dir),
                      keep_running=keep_running, model_dir=model_dir, work_dir=work_dir, progress=progress)

        def make_image() -> FirmwareImage:
            if backend == "tflm":
                return build_firmware(board, model_dir, build_dir, backend=backend, profile=profile, tflm=tflm)
            compiled = ensure_compiled(model_dir, board, profile=profile, optimize=optimize)
            return build_firmware(board, compiled, build_dir, backend=backend, profile=profile)

        session._make_image = make_image
        return session

    # -- life -----------------------------------------------------------------------------
    def __enter__(self) -> BoardSession:
        try:
            self.open()
        except BaseException:
            self.close(failed=True)
            raise
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close(failed=exc_type is not None)

    def _say(self, stage: str, text: str) -> None:
        if self.progress:
            say(stage, text)

    def _timed(self, stage: str, started: float) -> None:
        self.stage_seconds[stage] = round(time.monotonic() - started, 2)

    def open(self) -> None:
        """Builds, boots or connects, then checks the model (tinyml protocol)."""
        if self._make_image is not None and self.image is None:
            self._say("build", "compiling the model and building the firmware")
            started = time.monotonic()
            self.image = self._make_image()
            self._timed("build", started)
            self._say("build", f"firmware {self.image.path.name}: flash {self.image.flash_bytes:,} B, "
                      f"RAM {self.image.ram_bytes:,} B")
        if self.port is None:
            self._boot()
        if self.protocol == "tinyml" and self.check_hello:
            self.check_model()

    def _boot(self) -> None:
        if self.image is None or (self.board is None and self.image.port != "native"):
            raise TinymlError("internal: a session without a port needs a board and an image to boot")
        started = time.monotonic()
        if self.image.port == "native":
            self.emulator = start_native_board(self.image)
        else:
            assert self.board is not None
            self.emulator = start_emulator(self.board, self.image, model_dir=self.model_dir,
                                           kept=self.keep_running, work_dir=self.work_dir)
        self._owns_emulator = True
        self.port = self.emulator.port
        self._timed("boot", started)
        what = "QEMU" if self.image.port != "native" else "the native-port firmware"
        self._say("qemu", f"emulated by {what} on {self.port}")

    def close(self, failed: bool = False) -> None:
        """Closes the port; stops an emulator this session started unless it is kept
        (a kept one is stopped too when the session failed)."""
        if self._transport is not None:
            try:
                self._transport.close()
            finally:
                self._transport = None
                self._link = None
        if self.emulator is not None and self._owns_emulator and (failed or not self.keep_running):
            self.emulator.stop()
            self.emulator = None

    # -- the open port ---------------------------------------------------------------------
    @property
    def transport(self) -> Transport:
        if self._transport is None:
            if self.port is None:
                raise TinymlError("internal: the session is not open")
            deadline = time.monotonic() + self.open_retry_s
            while True:
                try:
                    self._transport = open_port(self.port, self.baud)
                    break
                except TinymlError:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.2)
        return self._transport

    @property
    def link(self) -> BoardLink:
        """The board link on the session's port (after the HELLO of check_model)."""
        if self._link is None:
            self._link = BoardLink(self.transport)
        return self._link

    def check_model(self) -> BoardInfo:
        """HELLO; TinymlError unless the board's model initialised and is the expected one."""
        started = time.monotonic()
        info = self.link.hello(attempts=self.hello_attempts, timeout_s=self.hello_timeout_s)
        self._timed("hello", started)
        if not info.model_ready:
            raise TinymlError(f"board on {self.port} failed to initialise its model ({info.backend} backend)")
        if self.expected_sha256 and info.model_sha256.lower() != self.expected_sha256.lower():
            raise TinymlError(f"board on {self.port} runs model {info.model_sha256}, but {self.expected_from} "
                              f"holds model {self.expected_sha256}: {self.mismatch_hint}")
        self.info = info
        self._say("hello", f"board runs model {info.model_sha256[:16]}… on the {info.backend} backend")
        return info

    # -- what a session is for ----------------------------------------------------------------
    def facts(self) -> dict[str, Any]:
        """What the session knows beyond the board's HELLO, for reports: the image's
        sizes and the board profile's clock."""
        facts: dict[str, Any] = {}
        if self.image is not None and self.image.text_bytes:
            facts["image"] = {"path": str(self.image.path), "text_bytes": self.image.text_bytes,
                              "data_bytes": self.image.data_bytes, "bss_bytes": self.image.bss_bytes,
                              "flash_bytes": self.image.flash_bytes, "ram_bytes": self.image.ram_bytes}
        if self.board is not None:
            facts["board_profile"] = {"name": self.board.name, "clock_hz": self.board.clock_hz,
                                      "core": self.board.core, "emulated": bool(self.board.emulator),
                                      "timer": self.board.timer}
        return facts

    def bench(self, model_dir: Path, out_dir: Path, samples: int | None = None, fresh: bool = False,
              progress: bool = True, batch: int | None = None, resume: Path | None = None,
              max_retries: int | None = DEFAULT_MAX_RETRIES):
        """`tinyml bench` on this board (see host/harness.run_bench)."""
        from .harness import run_bench

        if self.protocol != "tinyml":
            raise TinymlError("internal: bench() speaks the tinyml protocol; use run_mlperf for mlperf-tiny")
        started = time.monotonic()
        result = run_bench(self.port or "", model_dir, out_dir, baud=self.baud, samples=samples, fresh=fresh,
                           resume=resume, progress=progress, transport=self.transport, batch=batch,
                           extra=self.facts(), hello_attempts=self.hello_attempts, max_retries=max_retries)
        self._timed("bench", started)
        return result

    def profile(self, model_dir: Path, out_dir: Path | None = None, sample: bytes | None = None):
        """One inference, then the board's per-layer times beside compile.json's MACs;
        written as profile.md/.json/.png into out_dir when given."""
        from .profile import read_profile, write_profile

        compile_json = profile_compile_json(Path(model_dir), self.board)
        if sample is None:
            from .harness import load_vectors

            sample = load_vectors(model_dir).inputs[0].tobytes()
        result = read_profile(self.link, sample, compile_json)
        files = write_profile(out_dir, result, self.info.board if self.info else "board") if out_dir else []
        return result, files


def profile_compile_json(model_dir: Path, board: Board | None = None) -> Path:
    """compile.json of a compiled model dir, or of its compiled-TARGET folder (a prepare/emit
    dir; the board's target first)."""
    model_dir = Path(model_dir)
    if (model_dir / "compile.json").is_file():
        return model_dir / "compile.json"
    if board is not None and (model_dir / f"compiled-{board.compile_target}" / "compile.json").is_file():
        return model_dir / f"compiled-{board.compile_target}" / "compile.json"
    found = sorted(model_dir.glob("compiled-*/compile.json"))
    if not found:
        raise TinymlError(f"{model_dir} holds no compile.json: flash it with `tinyml flash --profile` first")
    return found[0]


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise TinymlError(f"unknown protocol '{protocol}': {' or '.join(PROTOCOLS)}")
