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
from typing import Any, Callable

import numpy as np

from tinyml.boards import Board
from tinyml.errors import TinymlError
from tinyml.paths import firmware_dir

from .build import FirmwareImage, build_firmware
from .harness import BenchResult, load_vectors, percentiles
from .bench_report import write_bench_report
from .transport import Transport, open_port

READY = "m-ready"
DEFAULT_CHUNK_BYTES = 32  # "db " + 64 hex digits fits the reference firmware's 80-character command buffer
TINYML_CHUNK_BYTES = 480  # "db " + 960 hex digits fits a tinyml image's 1,024-character command buffer
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
            if not laps_us:
                raise TinymlError("the device answered infer without m-lap-us times: it runs in energy mode "
                                  "(m-timestamp-mode-energy: timestamps are GPIO pulses to an energy monitor, at "
                                  "9600 baud through the IO manager), which tinyml bench does not measure; "
                                  "flash a performance-mode image")
            raise TinymlError(f"infer answer has {len(laps_us)} m-lap-us lines, expected 2: {lines}")
        results: list[float] | None = None
        output: bytes | None = None
        for line in lines:
            if (m := _RESULTS.match(line)) is not None:
                results = parse_results(m.group(1))
            elif (m := _OUTPUT.match(line)) is not None:
                output = np.array([int(v) for v in m.group(1).split(",")], dtype=np.int8).tobytes()
        if results is None:
            results = self.results()
        ticks = laps_ticks[-1] - laps_ticks[-2] if len(laps_ticks) >= 2 else None
        return InferOutcome(runs, laps_us[-1] - laps_us[-2], ticks, results, output)

    def results(self) -> list[float]:
        for line in self.command("results"):
            if (m := _RESULTS.match(line)) is not None:
                return parse_results(m.group(1))
        raise TinymlError("device answered results% without an m-results line")


def parse_results(text: str) -> list[float]:
    """The values of one m-results-[...] line. The reference prints "%0.3f" floats
    (probabilities, or one anomaly score); integers there are raw int8 outputs,
    which the runner's divide-by-sum would mis-score: refused, not guessed."""
    values = [v.strip() for v in text.split(",") if v.strip()]
    if values and all(re.fullmatch(r"[-+]?\d+", v) for v in values):
        raise TinymlError(f"the device prints integers in m-results ([{text[:40]}]): raw outputs, not the "
                          "dequantized probabilities the MLPerf Tiny runner scores; fix its th_results")
    try:
        return [float(v) for v in values]
    except ValueError as exc:
        raise TinymlError(f"m-results-[{text[:40]}] is not a list of numbers") from exc


def runner_top1(results: np.ndarray) -> np.ndarray:
    """The official runner's top class: results divided by their sum, then arg-max
    (so results that are not probabilities score as the runner scores them)."""
    sums = results.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        normalised = results / sums
    return np.nan_to_num(normalised, nan=-np.inf).argmax(axis=1)


def runner_anomaly_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """The official runner's figure for one score per sample (labels 0 normal, 1
    anomalous): over 100 thresholds evenly spaced from the lowest score up, the
    best mean of precision and recall of "score above threshold", as a fraction."""
    scores, labels = np.asarray(scores, dtype=np.float64).reshape(-1), np.asarray(labels).reshape(-1)
    best = 0.0
    for step in range(100):
        threshold = scores.min() + step / 100 * (scores.max() - scores.min())
        flagged = scores > threshold
        true_positive = np.sum(flagged & (labels == 1))
        precision = true_positive / (np.sum(flagged) + 1e-8)
        recall = true_positive / (np.sum(labels == 1) + 1e-8)
        best = max(best, float((precision + recall) / 2))
    return best


# The runner's data sets, by the input each model takes (MLPerf Tiny v1.x reference models).
MLPERF_MODELS_BY_INPUT = {(1, 32, 32, 3): "ic01", (1, 49, 10, 1): "kws01", (1, 96, 96, 3): "vww01",
                          (1, 640): "ad01"}
MLPERF_MODELS = ("ic01", "kws01", "vww01", "ad01")


def derive_mlperf_model(input_shape: tuple[int, ...] | list[int]) -> str:
    name = MLPERF_MODELS_BY_INPUT.get(tuple(int(d) for d in input_shape))
    if name is None:
        raise TinymlError(f"cannot tell the MLPerf Tiny model from input shape {list(input_shape)} (ic01 32x32x3, "
                          "kws01 49x10x1, vww01 96x96x3, ad01 640): give --mlperf-model NAME")
    return name


def requantize(values: list[float], scale: float, zero_point: int) -> bytes:
    """int8 outputs from dequantized ones: exact while scale/2 exceeds the 0.0005
    rounding of the device's three decimals."""
    q = np.round(np.asarray(values, dtype=np.float64) / scale) + zero_point
    return np.clip(q, -128, 127).astype(np.int8).tobytes()


INPUT_TYPES = ("int8", "uint8", "float32")


def wire_input(sample: np.ndarray, input_type: str, scale: float, zero_point: int) -> bytes:
    """One int8 test vector as the device takes it in `db`: as is, +128 (the runner's
    uint8 files), or dequantized to little-endian float32 (ad01's spectrogram frames)."""
    q = np.asarray(sample, dtype=np.int8).reshape(-1)
    if input_type == "uint8":
        return (q.astype(np.int16) + 128).astype(np.uint8).tobytes()
    if input_type == "float32":
        return ((q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype("<f4").tobytes()
    return q.tobytes()


def host_anomaly_scores(inputs: np.ndarray, outputs: np.ndarray, in_q: tuple[float, int],
                        out_q: tuple[float, int]) -> np.ndarray:
    """ad01's score on the host: mean squared error between the float input the
    device receives and the dequantized reconstruction host TFLite-Micro gives."""
    x = (inputs.reshape(len(inputs), -1).astype(np.float32) - np.float32(in_q[1])) * np.float32(in_q[0])
    y = (outputs.reshape(len(outputs), -1).astype(np.float32) - np.float32(out_q[1])) * np.float32(out_q[0])
    return ((x - y) ** 2).mean(axis=1)


def _device_input_type(profile: DeviceProfile, input_type: str | None, url: str) -> str:
    announced = profile.facts.get("input")
    if announced is not None and announced not in INPUT_TYPES:
        raise TinymlError(f"device on {url} announces input type '{announced}' (known: {', '.join(INPUT_TYPES)})")
    if announced and input_type and announced != input_type:
        raise TinymlError(f"device on {url} takes {announced} inputs, not {input_type}: drop the input option")
    chosen = announced or input_type
    if chosen is None:
        raise TinymlError(f"device on {url} does not say its input type (no m-tinyml-input line, as a reference "
                          "submission): give --input-type int8|uint8|float32 (reference ic01 and vww01 take uint8)")
    return chosen


def run_mlperf(port: str, model_dir: Path, out_dir: Path, baud: int = 115200, samples: int | None = None,
               runs: int = 1, warmup: int = 0, chunk_bytes: int | None = None, input_uint8: bool = False,
               transport: Transport | None = None, board_name: str | None = None,
               input_type: str | None = None) -> BenchResult:
    """Benchmarks a device over the MLPerf Tiny protocol against model_dir's test
    vectors (tinyml prepare/emit output) and writes report.json/.md and plots.

    The input type (int8, uint8 = int8 + 128 as the runner's raw files, float32 =
    dequantized as ad01's) is read from the device (m-tinyml-input); a device that
    does not say it (a reference submission) needs `input_type` (or input_uint8).
    Classes are scored as the official runner scores them: m-results divided by
    their sum, then the top one. A device answering one result per sample (ad01)
    is scored by its anomaly score against the host's.
    """
    if input_uint8:
        input_type = input_type or "uint8"
    if input_type is not None and input_type not in INPUT_TYPES:
        raise TinymlError(f"unknown input type '{input_type}' (choose from {', '.join(INPUT_TYPES)})")
    vectors = load_vectors(model_dir)
    total = len(vectors.inputs) if samples is None else int(samples)
    if total <= 0 or total > len(vectors.inputs):
        raise TinymlError(f"--samples {samples}: the model dir has {len(vectors.inputs)} test vectors")
    in_meta, out_meta = vectors.manifest.get("input", {}), vectors.manifest.get("output", {})
    in_q = (float(in_meta.get("scale", 0.0)), int(in_meta.get("zero_point", 0)))
    scale, zero_point = float(out_meta.get("scale", 0.0)), int(out_meta.get("zero_point", 0))
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
        chosen_input = _device_input_type(profile, input_type, transport.url)
        if chosen_input == "float32" and in_q[0] <= 0:
            raise TinymlError(f"{model_dir}/manifest.json has no input scale to send float32 inputs with")
        if chunk_bytes is None:  # a tinyml image (it says its db size) takes longer db lines than the reference
            chunk_bytes = TINYML_CHUNK_BYTES if "db-bytes" in profile.facts else DEFAULT_CHUNK_BYTES
        bytes_before = transport.bytes_written + transport.bytes_read
        outcomes: list[InferOutcome] = []
        for index in range(total):
            device.load(wire_input(vectors.inputs[index], chosen_input, *in_q), chunk_bytes)
            outcomes.append(device.infer(runs, warmup))
        wire_bytes = transport.bytes_written + transport.bytes_read - bytes_before
    finally:
        if own:
            transport.close()
    elapsed = time.monotonic() - started

    labels = vectors.labels[:total]
    host_out = vectors.outputs[:total].reshape(total, -1)
    anomaly = profile.facts.get("results") == "anomaly-score" or (
        all(len(o.results) == 1 for o in outcomes) and host_out.shape[1] > 1)
    exact = all(o.output is not None for o in outcomes)
    results = np.array([o.results for o in outcomes], dtype=np.float64)
    extra: dict[str, Any] = {}
    if exact:
        device_out = np.stack([np.frombuffer(o.output or b"", dtype=np.int8) for o in outcomes])
        if device_out.shape[1] != host_out.shape[1]:
            raise TinymlError(f"device returned {device_out.shape[1]} outputs, the model has {host_out.shape[1]}")
        agree = np.all(device_out == host_out, axis=1)
        basis = "int8 bytes"
    elif anomaly:
        device_out = None
        agree = np.zeros(total, dtype=bool)  # set from the scores below
        basis = "anomaly score to 3 decimals"
    elif scale > 0 and profile.facts.get("results") in (None, "dequantized"):
        if results.shape[1] != host_out.shape[1]:
            raise TinymlError(f"device returned {results.shape[1]} results, the model has {host_out.shape[1]}")
        device_out = np.stack([np.frombuffer(requantize(list(r), scale, zero_point), dtype=np.int8) for r in results])
        agree = np.all(device_out == host_out, axis=1)
        basis = "results requantized from 3 decimals"
    else:
        raise TinymlError(f"cannot compare the device's results with {model_dir}: no int8 outputs "
                          "(m-tinyml-output) and no output scale")
    if anomaly:
        if results.shape[1] != 1:
            raise TinymlError(f"an anomaly-score device answers one result per sample, not {results.shape[1]}")
        host_scores = host_anomaly_scores(vectors.inputs[:total], host_out, in_q, (scale, zero_point))
        close = np.abs(results[:, 0] - host_scores) <= 0.0005 + 1e-4 * np.abs(host_scores)  # 3 decimals, float32 sums
        agree = agree & close if exact else close
        # A score, not a class: "accuracy" is the runner's (precision + recall) / 2 at its best threshold.
        device_pred = (results[:, 0] > np.median(results[:, 0])).astype(np.int64)
        on_device_accuracy = runner_anomaly_accuracy(results[:, 0], labels)
        host_accuracy = runner_anomaly_accuracy(host_scores, labels)
        extra["scoring"] = "best (precision + recall) / 2 over the runner's 100 score thresholds"
        extra["anomaly_scores"] = {"device": results[:, 0].tolist(), "host": host_scores.tolist(),
                                   "max_abs_difference": float(np.max(np.abs(results[:, 0] - host_scores)))}
    else:
        if results.shape[1] != host_out.shape[1]:
            raise TinymlError(f"device returned {results.shape[1]} results, the model has {host_out.shape[1]}")
        device_pred = runner_top1(results)
        on_device_accuracy = float((device_pred == labels).mean())
        host_accuracy = float((host_out.argmax(axis=1) == labels).mean())
        extra["scoring"] = "m-results / sum, top 1 (the MLPerf Tiny runner's way)"
    ticks_known = profile.latency_unit is not None and all(o.elapsed_ticks is not None for o in outcomes)
    unit = profile.latency_unit if ticks_known else "microseconds"
    per_run = np.array([((o.elapsed_ticks if ticks_known else o.elapsed_us) or 0) / o.runs for o in outcomes])
    latencies = np.rint(per_run).astype(np.int64)
    answer_bytes = total * (host_out.shape[1] if device_out is not None else 1)
    report: dict[str, Any] = {
        "samples": int(total),
        "on_device_accuracy": on_device_accuracy,
        "host_int8_accuracy": host_accuracy,
        "agreement": float(agree.mean()),
        "agreement_basis": basis,
        "disagreements": int((~agree).sum()),
        "latency_unit": unit,
        f"latency_{unit}": percentiles(latencies),
        "latency_us_mean": float(np.mean([o.elapsed_us / o.runs for o in outcomes])),
        "throughput_sps": total / elapsed if elapsed > 0 else 0.0,
        "wire_efficiency": (device.bytes_payload + answer_bytes) / wire_bytes if wire_bytes else 0.0,
        "wire_bytes": int(wire_bytes),
        "payload_bytes": int(device.bytes_payload + answer_bytes),
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
        "input_type": chosen_input,
        "results_kind": profile.facts.get("results", "unknown"),
        "clock_hz": int(profile.facts.get("clock-hz", 0)),
        "runs_per_sample": runs,
        "warmup_per_sample": warmup,
        "elapsed_s": elapsed,
        "resumed_samples": 0,
        "link": {"retries": 0, "frames_sent": 0, "damaged_frames": 0, "board_errors": {}, "duplicates_ignored": 0,
                 "boots_seen": 0},
        **extra,
    }
    out_dir = Path(out_dir)
    files = write_bench_report(out_dir, report, labels, device_pred, latencies, vectors.label_names)
    log = out_dir / "mlperf_samples.jsonl"
    temp = log.with_name(f".{log.name}.tmp")
    temp.write_text("".join(json.dumps({"index": i, "results": o.results,
                                        "output": o.output.hex() if o.output is not None else None,
                                        "elapsed_us": o.elapsed_us, "elapsed_ticks": o.elapsed_ticks,
                                        "runs": o.runs, "label": int(labels[i])}) + "\n"
                            for i, o in enumerate(outcomes)))
    temp.replace(log)
    return BenchResult(out_dir, log, report, files)


def mlperf_build_options(compiled_dir: Path, model_name: str | None = None,
                         input_uint8: bool = False) -> tuple[str, str, str]:
    """(model name, db input type, results kind) for a compiled model: the name from
    the input shape unless given; ad01 takes float32 and answers one anomaly score;
    a model that does not end in SOFTMAX prints the softmax of its outputs, so the
    runner's divide-by-sum scores it as it scores the reference models."""
    info_path = Path(compiled_dir) / "compile.json"
    try:
        info = json.loads(info_path.read_text())
        layers = info["layers"]
        input_shape = layers[0]["input_shapes"][0]
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise TinymlError(f"{info_path}: cannot read the compiled model's layers (run tinyml compile)") from exc
    name = model_name or derive_mlperf_model(input_shape)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise TinymlError(f"MLPerf model name '{name}' must be letters, digits, '_', '.', '-'")
    if name == "ad01":
        if input_uint8:
            raise TinymlError("ad01 takes float32 inputs from the runner, not uint8")
        return name, "float32", "anomaly-score"
    results = "dequantized" if layers[-1]["op"] == "SOFTMAX" else "softmax"
    return name, "uint8" if input_uint8 else "int8", results


def build_mlperf_firmware(board: Board, compiled_dir: Path, build_dir: Path, model_name: str | None = None,
                          input_uint8: bool = False, engine_dir: Path | None = None) -> FirmwareImage:
    """An image of a CMake-built board (emulated or host) that speaks the MLPerf
    Tiny protocol instead of the binary one (options: mlperf_build_options)."""
    name, input_type, results = mlperf_build_options(compiled_dir, model_name, input_uint8)
    extra = [f"-DTM_MLPERF_MODEL={name}", f"-DTM_MLPERF_INPUT={input_type}", f"-DTM_MLPERF_RESULTS={results}",
             "-DTM_MLPERF_INPUT_UINT8=OFF"]
    return build_firmware(board, compiled_dir, build_dir, engine_dir=engine_dir, protocol="mlperf", extra=extra)


def verify_mlperf_device(port: str, baud: int, expected_sha256: str | None) -> DeviceProfile:
    """After flashing: the device answers the runner protocol and runs the expected model."""
    transport = open_port(port, baud)
    try:
        device = MlperfDevice(transport)
        device.sync()
        profile = device.profile()
    finally:
        transport.close()
    sha = profile.facts.get("sha256")
    if expected_sha256 and sha and sha.lower() != expected_sha256.lower():
        raise TinymlError(f"device on {port} runs model {sha[:16]}…, expected {expected_sha256[:16]}…")
    return profile


def flash_mlperf(board: Board, compiled_dir: Path, model_name: str | None = None, input_uint8: bool = False,
                 progress: Callable[[str], None] | None = None) -> tuple[Any, DeviceProfile]:
    """`tinyml flash --protocol mlperf-tiny`: build the MLPerf Tiny image with CMake,
    put it on the (emulated) board, check its profile. Boards built with PlatformIO
    have no MLPerf Tiny environment: refused."""
    from .emulator import keep_dir, record_key
    from .flash import flash_board

    if board.build.get("system") != "cmake":
        raise TinymlError(f"--protocol mlperf-tiny builds with CMake; {board.name} builds with "
                          f"{board.build.get('system')} (use stm32f405, rv32_virt or mps2_an385_m0, or the CMake option "
                          "-DTINYML_PROTOCOL=mlperf for your own port)")
    say = progress or (lambda text: None)
    name, input_type, results = mlperf_build_options(compiled_dir, model_name, input_uint8)
    say(f"building the MLPerf Tiny image for {board.name}: model {name}, {input_type} input, {results} results")
    # Built in the kept emulator's own folder, which goes when that emulator is stopped.
    work = keep_dir(record_key(board.name, compiled_dir)) / "mlperf-build"
    work.mkdir(parents=True, exist_ok=True)
    image = build_mlperf_firmware(board, compiled_dir, work, model_name, input_uint8)
    say(f"image {image.flash_bytes:,} B flash, {image.ram_bytes:,} B RAM; starting it on {board.name}")
    result = flash_board(board, image=image.path, model_dir=compiled_dir, verify=False, build_dir=work)
    try:
        profile = verify_mlperf_device(result.port, board.baud, result.expected_sha256)
    except TinymlError:
        if getattr(result, "emulator", None) is not None:
            result.emulator.stop()
        raise
    return result, profile
