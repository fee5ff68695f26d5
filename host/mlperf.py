"""The MLPerf Tiny / EEMBC runner protocol, host side: drives any device that
speaks it (a tinyml image built with firmware/mlperf, or a reference MLPerf Tiny
submission in performance mode) over a pyserial URL and writes the same bench
report as host/harness.py.

Per sample: `db load N%`, `db HEX%` in chunks, `infer RUNS WARMUP%`; the
device answers m-lap-us lines around the timed runs and m-results-[...].
tinyml images add m-tinyml-* lines (exact int8 outputs, timer ticks, model
hash) that this driver uses when present; a reference device needs none of them.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyml.boards import Board
from tinyml.errors import TinymlError
from tinyml.paths import firmware_dir

from .build import FirmwareImage, build_firmware
from .harness import BenchResult, load_vectors, percentiles
from .report import write_bench_report
from .transport import Transport, open_port

READY = "m-ready"
DEFAULT_CHUNK_BYTES = 32  # "db " + 64 hex digits fits the reference firmware's 80-character command buffer
_LAP_US = re.compile(r"^m-lap-us-(\d+)$")
_LAP_TICKS = re.compile(r"^m-tinyml-lap-ticks-(\d+)$")
_RESULTS = re.compile(r"^m-results-\[(.*)\]$")
_OUTPUT = re.compile(r"^m-tinyml-output-\[(.*)\]$")
_BRACKET = re.compile(r"^m-([a-z0-9-]+?)-\[(.*)\]$")
_NUMBER = re.compile(r"^m-tinyml-([a-z-]+)-(\d+)$")


@dataclass
class InferOutcome:
    """One `infer` command: times of the timed runs and the last run's results."""

    runs: int
    elapsed_us: int
    elapsed_ticks: int | None   # tinyml images: the port's timer, in the profile's latency unit
    results: list[float]        # m-results, dequantized by the device
    output: bytes | None        # m-tinyml-output: the int8 bytes, tinyml images only


@dataclass
class DeviceProfile:
    name: str
    model: str
    facts: dict[str, str] = field(default_factory=dict)  # m-tinyml-* lines (board, sha256, latency-unit, ...)

    @property
    def latency_unit(self) -> str | None:
        return self.facts.get("latency-unit")


class MlperfDevice:
    """A session with a device speaking the MLPerf Tiny runner protocol."""

    def __init__(self, transport: Transport, timeout_s: float = 10.0) -> None:
        self.transport = transport
        self.timeout_s = timeout_s
        self._pending = bytearray()
        self.bytes_payload = 0

    def _lines_until_ready(self, timeout_s: float) -> list[str]:
        lines: list[str] = []
        deadline = time.monotonic() + timeout_s
        while True:
            while b"\n" in self._pending:
                raw, _, rest = self._pending.partition(b"\n")
                self._pending = bytearray(rest)
                line = raw.decode("ascii", errors="replace").strip()
                if not line:
                    continue
                if line == READY:
                    return lines
                lines.append(line)
            if time.monotonic() > deadline:
                raise TinymlError(f"device on {self.transport.url} sent no m-ready within {timeout_s:g} s "
                                  f"(last lines: {lines[-3:]}): not an MLPerf Tiny firmware, or wrong baud?")
            self._pending += self.transport.read()

    def command(self, text: str, timeout_s: float | None = None) -> list[str]:
        """Sends `text%`; returns the lines before m-ready. e-[...] lines raise TinymlError."""
        self.transport.write(text.encode("ascii") + b"%")
        lines = self._lines_until_ready(self.timeout_s if timeout_s is None else timeout_s)
        errors = [line for line in lines if line.startswith("e-")]
        if errors:
            raise TinymlError(f"device rejected '{text[:40]}': {errors[0]}")
        return lines

    def sync(self, attempts: int = 5) -> None:
        """Waits out a boot banner (it ends in m-ready too) and synchronises on the
        answer to a unique unknown command, which runner firmwares echo in their
        e-[...] line. Answers arrive in order, so reading up to the answer of the
        latest token also consumes any earlier ones."""
        self.transport.discard_input()
        self._pending.clear()
        base = int(time.monotonic() * 1000) % 100000
        for attempt in range(attempts):
            token = f"sync{base}x{attempt}"
            self.transport.write(token.encode("ascii") + b"%")
            deadline = time.monotonic() + 2.0
            try:
                while time.monotonic() < deadline:
                    lines = self._lines_until_ready(max(0.1, deadline - time.monotonic()))
                    if any(line.startswith("e-") and token in line for line in lines):
                        return
            except TinymlError:
                continue
        raise TinymlError(f"no MLPerf Tiny device answers on {self.transport.url} (no m-ready after sync commands)")

    def profile(self) -> DeviceProfile:
        name = model = ""
        for line in self.command("name"):
            if line.startswith("m-name-"):
                name = line[len("m-name-"):]
        facts: dict[str, str] = {}
        for line in self.command("profile"):
            bracket = _BRACKET.match(line)
            number = _NUMBER.match(line)
            if bracket and bracket.group(1) == "model":
                model = bracket.group(2)
            elif bracket and bracket.group(1).startswith("tinyml-"):
                facts[bracket.group(1)[len("tinyml-"):]] = bracket.group(2)
            elif number:
                facts[number.group(1)] = number.group(2)
        return DeviceProfile(name, model, facts)

    def load(self, data: bytes, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
        lines = self.command(f"db load {len(data)}")
        if not any(f"{len(data)}" in line for line in lines):
            raise TinymlError(f"device did not acknowledge db load {len(data)}: {lines}")
        done = False
        for start in range(0, len(data), chunk_bytes):
            lines = self.command("db " + data[start : start + chunk_bytes].hex())
            done = done or any(line == "m-load-done" for line in lines)
        if not done:
            raise TinymlError(f"device never said m-load-done after {len(data)} bytes")
        self.bytes_payload += len(data)

    def infer(self, runs: int = 1, warmup: int = 0) -> InferOutcome:
        if runs < 1 or warmup < 0:
            raise TinymlError(f"infer needs runs >= 1 and warmup >= 0, not {runs} and {warmup}")
        lines = self.command(f"infer {runs} {warmup}", timeout_s=self.timeout_s + 60.0)
        laps_us = [int(m.group(1)) for m in map(_LAP_US.match, lines) if m]
        laps_ticks = [int(m.group(1)) for m in map(_LAP_TICKS.match, lines) if m]
        if len(laps_us) < 2:
            raise TinymlError(f"infer answer has {len(laps_us)} m-lap-us lines, expected 2: {lines}")
        results: list[float] | None = None
        output: bytes | None = None
        for line in lines:
            if (m := _RESULTS.match(line)) is not None:
                results = [float(v) for v in m.group(1).split(",") if v.strip()]
            elif (m := _OUTPUT.match(line)) is not None:
                output = np.array([int(v) for v in m.group(1).split(",")], dtype=np.int8).tobytes()
        if results is None:
            results = self.results()
        ticks = laps_ticks[-1] - laps_ticks[-2] if len(laps_ticks) >= 2 else None
        return InferOutcome(runs, laps_us[-1] - laps_us[-2], ticks, results, output)

    def results(self) -> list[float]:
        for line in self.command("results"):
            if (m := _RESULTS.match(line)) is not None:
                return [float(v) for v in m.group(1).split(",") if v.strip()]
        raise TinymlError("device answered results% without an m-results line")


def requantize(values: list[float], scale: float, zero_point: int) -> bytes:
    """int8 outputs from dequantized ones: exact while scale/2 exceeds the 0.0005
    rounding of the device's three decimals."""
    q = np.round(np.asarray(values, dtype=np.float64) / scale) + zero_point
    return np.clip(q, -128, 127).astype(np.int8).tobytes()


def run_mlperf(port: str, model_dir: Path, out_dir: Path, baud: int = 115200, samples: int | None = None,
               runs: int = 1, warmup: int = 0, chunk_bytes: int = DEFAULT_CHUNK_BYTES, input_uint8: bool = False,
               transport: Transport | None = None, board_name: str | None = None) -> BenchResult:
    """Benchmarks a device over the MLPerf Tiny protocol against model_dir's test
    vectors (tinyml prepare/emit output) and writes report.json/.md and plots.

    input_uint8: send each int8 input byte + 128, for devices that take the
    runner's raw uint8 files (a reference image-classification submission).
    """
    vectors = load_vectors(model_dir)
    total = len(vectors.inputs) if samples is None else int(samples)
    if total <= 0 or total > len(vectors.inputs):
        raise TinymlError(f"--samples {samples}: the model dir has {len(vectors.inputs)} test vectors")
    out_q = vectors.manifest.get("output", {})
    scale, zero_point = float(out_q.get("scale", 0.0)), int(out_q.get("zero_point", 0))
    sha256 = vectors.manifest["model_sha256"]

    own = transport is None
    transport = transport or open_port(port, baud)
    started = time.monotonic()
    try:
        device = MlperfDevice(transport)
        device.sync()
        profile = device.profile()
        device_sha = profile.facts.get("sha256")
        if device_sha and device_sha != sha256:
            raise TinymlError(f"device on {transport.url} runs model {device_sha}, but {model_dir} holds {sha256}")
        bytes_before = transport.bytes_written + transport.bytes_read
        outcomes: list[InferOutcome] = []
        for index in range(total):
            data = vectors.inputs[index].tobytes()
            if input_uint8:
                data = (np.frombuffer(data, dtype=np.int8).astype(np.int16) + 128).astype(np.uint8).tobytes()
            device.load(data, chunk_bytes)
            outcomes.append(device.infer(runs, warmup))
        wire_bytes = transport.bytes_written + transport.bytes_read - bytes_before
    finally:
        if own:
            transport.close()
    elapsed = time.monotonic() - started

    exact = all(o.output is not None for o in outcomes)
    if exact:
        device_out = np.stack([np.frombuffer(o.output or b"", dtype=np.int8) for o in outcomes])
    elif scale > 0:
        device_out = np.stack([np.frombuffer(requantize(o.results, scale, zero_point), dtype=np.int8)
                               for o in outcomes])
    else:
        raise TinymlError(f"{model_dir}/manifest.json has no output scale to compare the device's results with")
    if device_out.shape[1] != vectors.outputs.shape[1]:
        raise TinymlError(f"device returned {device_out.shape[1]} results, the model has {vectors.outputs.shape[1]}")
    ticks_known = profile.latency_unit is not None and all(o.elapsed_ticks is not None for o in outcomes)
    unit = profile.latency_unit if ticks_known else "microseconds"
    per_run = np.array([((o.elapsed_ticks if ticks_known else o.elapsed_us) or 0) / o.runs for o in outcomes])
    latencies = np.rint(per_run).astype(np.int64)
    labels = vectors.labels[:total]
    host_out = vectors.outputs[:total]
    device_pred = device_out.argmax(axis=1)
    agree = np.all(device_out == host_out, axis=1)
    report: dict[str, Any] = {
        "samples": int(total),
        "on_device_accuracy": float((device_pred == labels).mean()),
        "host_int8_accuracy": float((host_out.argmax(axis=1) == labels).mean()),
        "agreement": float(agree.mean()),
        "agreement_basis": "int8 bytes" if exact else "results requantized from 3 decimals",
        "disagreements": int((~agree).sum()),
        "latency_unit": unit,
        f"latency_{unit}": percentiles(latencies),
        "latency_us_mean": float(np.mean([o.elapsed_us / o.runs for o in outcomes])),
        "throughput_sps": total / elapsed if elapsed > 0 else 0.0,
        "wire_efficiency": (device.bytes_payload + total * host_out.shape[1]) / wire_bytes if wire_bytes else 0.0,
        "wire_bytes": int(wire_bytes),
        "payload_bytes": int(device.bytes_payload + total * host_out.shape[1]),
        "line_rate_fraction": None,
        "baud": int(baud),
        "port": transport.url,
        "model_sha256": device_sha or sha256,
        "backend": profile.facts.get("backend", "unknown"),
        "board": board_name or profile.facts.get("board") or profile.name,
        "firmware_version": profile.model or "mlperf-tiny",
        "protocol_version": "mlperf-tiny",
        "protocol": "mlperf-tiny",
        "device_name": profile.name,
        "mlperf_model": profile.model,
        "clock_hz": int(profile.facts.get("clock-hz", 0)),
        "runs_per_sample": runs,
        "warmup_per_sample": warmup,
        "elapsed_s": elapsed,
        "resumed_samples": 0,
        "link": {"retries": 0, "frames_sent": 0, "damaged_frames": 0, "board_errors": {}, "duplicates_ignored": 0,
                 "boots_seen": 0},
    }
    out_dir = Path(out_dir)
    files = write_bench_report(out_dir, report, labels, device_pred, latencies, vectors.label_names)
    log = out_dir / "mlperf_samples.jsonl"
    temp = log.with_name(f".{log.name}.tmp")
    temp.write_text("".join(json.dumps({"index": i, "output": device_out[i].tobytes().hex(),
                                        "elapsed_us": o.elapsed_us, "elapsed_ticks": o.elapsed_ticks,
                                        "runs": o.runs, "label": int(labels[i])}) + "\n"
                            for i, o in enumerate(outcomes)))
    temp.replace(log)
    return BenchResult(out_dir, log, report, files)


def build_mlperf_firmware(board: Board, compiled_dir: Path, build_dir: Path, model_name: str = "tinyml",
                          input_uint8: bool = False, engine_dir: Path | None = None) -> FirmwareImage:
    """An image of a CMake-built board (emulated or host) that speaks the MLPerf
    Tiny protocol instead of the binary one."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", model_name):
        raise TinymlError(f"MLPerf model name '{model_name}' must be letters, digits, '_', '.', '-'")
    extra = [f"-DTM_MLPERF_MODEL={model_name}", f"-DTM_MLPERF_INPUT_UINT8={'ON' if input_uint8 else 'OFF'}"]
    return build_firmware(board, compiled_dir, build_dir, engine_dir=engine_dir, protocol="mlperf", extra=extra)
