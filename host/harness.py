"""`tinyml bench`: stream the test vectors to a board, log every sample as one
JSON line, score on-device against host TFLite-Micro, write the report.

The JSONL log is the run's memory: each line is written whole and flushed.
Running the same bench into the same out_dir again resumes it (after checking
the log was recorded with the same model): it drops a line cut by a crash and
skips every index already logged. fresh=True starts the log over.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyml.errors import TinymlError

from .link import DEFAULT_MAX_RETRIES, BoardLink
from .protocol import PROTOCOL_VERSION
from .bench_report import per_class_scores, write_bench_report
from .transport import Transport, open_port

LOG_NAME = "bench_samples.jsonl"
FSYNC_EVERY = 64


@dataclass
class BenchResult:
    out_dir: Path
    log: Path
    report: dict[str, Any]
    files: list[Path] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return int(self.report["samples"])

    @property
    def retries(self) -> int:
        return int(self.report["link"]["retries"])


@dataclass
class _Vectors:
    inputs: np.ndarray
    outputs: np.ndarray
    labels: np.ndarray
    label_names: list[str]
    manifest: dict[str, Any]


def load_vectors(model_dir: Path) -> _Vectors:
    model_dir = Path(model_dir)
    manifest_path, vectors_path = model_dir / "manifest.json", model_dir / "test_vectors.npz"
    for path in (manifest_path, vectors_path):
        if not path.is_file():
            raise TinymlError(f"{model_dir} has no {path.name}: run `tinyml prepare` (or `tinyml emit`) first")
    try:
        manifest = json.loads(manifest_path.read_text())
        with np.load(vectors_path, allow_pickle=False) as data:
            inputs, outputs, labels = data["inputs"], data["outputs"], data["labels"]
            names = [str(n) for n in data["label_names"]] if "label_names" in data else None
    except (ValueError, KeyError, OSError) as exc:
        raise TinymlError(f"cannot read the test vectors in {model_dir}: {exc}") from exc
    if "model_sha256" not in manifest:
        raise TinymlError(f"{manifest_path} has no model_sha256")
    if not (len(inputs) == len(outputs) == len(labels)) or len(inputs) == 0:
        raise TinymlError(f"{vectors_path}: inputs, outputs and labels differ in length or are empty")
    if inputs.dtype != np.int8 or outputs.dtype != np.int8:
        raise TinymlError(f"{vectors_path}: inputs and outputs must be int8")
    names = names or [str(n) for n in manifest.get("labels", [])] or [str(i) for i in range(outputs[0].size)]
    return _Vectors(inputs.reshape(len(inputs), -1), outputs.reshape(len(outputs), -1), labels.astype(np.int64),
                    names, manifest)


def _read_log(path: Path, sha256: str) -> dict[int, dict[str, Any]]:
    """Sample records of an earlier run; rewrites the file without a torn last line."""
    if not path.is_file():
        raise TinymlError(f"cannot resume: {path} does not exist")
    saw_run = False
    done: dict[int, dict[str, Any]] = {}
    good_lines: list[str] = []
    torn = False
    for number, line in enumerate(path.read_text().split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            torn = True  # cut by a crash; the sample is run again
            continue
        if "run" in record:
            saw_run = True
            if record["run"].get("model_sha256") != sha256:
                raise TinymlError(f"cannot resume {path}: it was recorded with model "
                                  f"{record['run'].get('model_sha256')}, the model dir holds {sha256} "
                                  "(--fresh starts over)")
        elif "index" not in record or "output" not in record:
            torn = True
            continue
        else:
            done[int(record["index"])] = record
        good_lines.append(line)
    if done and not saw_run:
        raise TinymlError(f"cannot resume {path}: it has no run header naming its model (--fresh starts over)")
    if torn:
        temp = path.with_name(f".{path.name}.tmp")
        temp.write_text("".join(l + "\n" for l in good_lines))
        os.replace(temp, path)
    return done


def percentiles(values: np.ndarray) -> dict[str, float]:
    return {
        "p50": float(np.percentile(values, 50)),
        "p90": float(np.percentile(values, 90)),
        "p99": float(np.percentile(values, 99)),
        "mean": float(values.mean()),
        "min": values.min().item(),
        "max": values.max().item(),
    }


def latency_time_basis(unit: str, hello_clock_hz: int, board_profile: dict[str, Any] | None) -> tuple[int, str]:
    """The clock that turns the board's latency unit into time, and what that assumes.
    The board profile's clock wins over the firmware's (HELLO); 0 means no clock is needed."""
    profile = board_profile or {}
    clock_hz = int(profile.get("clock_hz") or hello_clock_hz or 0)
    timer = profile.get("timer") or ""
    if unit == "nanoseconds":
        return 0, "nanoseconds measured by the native-port firmware's clock"
    if unit == "us":
        return 0, "microseconds measured on the board (MicroPython's time.ticks_us)"
    if not clock_hz:
        return 0, f"no clock known: latency stays in {unit}"
    mhz = f"{clock_hz / 1e6:g} MHz"
    source = f"; timer: {timer}" if timer else ""
    if unit == "instructions":
        return clock_hz, (f"emulated instruction counts read as cycles at the board profile's {mhz}, which assumes "
                          "one instruction per cycle: real silicon, with flash wait states, pipeline stalls and "
                          f"multi-cycle instructions, takes longer{source}")
    return clock_hz, f"cycles at the board profile's {mhz}{source}"


def memory_figures(model_dir: Path, backend: str, arena_bytes: int, manifest: dict[str, Any],
                   image: dict[str, Any] | None) -> dict[str, Any]:
    """Flash and RAM: the whole image (when the session built it), the model's
    constants (the compiled C's for the engine, the .tflite for TFLite-Micro) and the arena."""
    model_flash, source = manifest.get("flash_bytes"), "model.tflite (manifest.json)"
    if backend == "engine":
        for path in (model_dir / "compile.json", *sorted(model_dir.glob("compiled-*/compile.json"))):
            try:
                model_flash = int(json.loads(path.read_text())["weight_bytes"])
                source = f"constants in {path.parent.name}/model.c"
                break
            except (OSError, ValueError, KeyError):
                continue
    return {
        "firmware_flash_bytes": image.get("flash_bytes") if image else None,
        "firmware_ram_bytes": image.get("ram_bytes") if image else None,
        "model_flash_bytes": model_flash,
        "model_flash_source": source,
        "arena_bytes": int(arena_bytes),
    }


def _real_baud(url: str) -> bool:
    """Whether bytes really cross a UART at the configured baud: not a pty
    (QEMU applies no baud delay), not a socket or loop URL."""
    return "://" not in url and not url.startswith("/dev/pts/")


def run_bench(port: str, model_dir: Path, out_dir: Path, baud: int = 115200, samples: int | None = None,
              resume: Path | None = None, progress: bool = True, transport: Transport | None = None,
              batch: int | None = None, hello_timeout_s: float = 1.5,
              extra: dict[str, Any] | None = None, fresh: bool = False, hello_attempts: int = 4,
              link_factory: Any = None, max_retries: int | None = DEFAULT_MAX_RETRIES,
              min_timeout_s: float = 0.5) -> BenchResult:
    """Benchmarks the model the board runs against model_dir's test vectors.

    port: a pyserial URL (ignored when a transport is given: a session's, or a fault-injecting one).
    samples: the first N test vectors (default all). The log is out_dir/bench_samples.jsonl
    (or resume, a log elsewhere, which must exist); when it exists the run resumes it
    (same model hash required), unless fresh, which starts it over.
    extra: more keys for report.json (a session's image sizes and board profile).
    out_dir is created only once the board has answered.
    link_factory: transport -> a link with BoardLink's hello/infer/stats/batch_size (default BoardLink;
    host/micropython.py's MicroPythonLink benches over the raw REPL).
    max_retries: sends of one request before BoardLink gives up (None: no limit; the run then
    ends only when the board answers nothing for a while); min_timeout_s: BoardLink's shortest
    reply timeout. Both ignored with a link_factory.
    """
    vectors = load_vectors(model_dir)
    total = len(vectors.inputs) if samples is None else int(samples)
    if total <= 0 or total > len(vectors.inputs):
        raise TinymlError(f"--samples {samples}: the model dir has {len(vectors.inputs)} test vectors")
    sha256 = vectors.manifest["model_sha256"]
    out_dir = Path(out_dir)
    log_path = Path(resume) if resume is not None else out_dir / LOG_NAME
    if resume is not None and fresh:
        raise TinymlError("give either a log to resume or fresh, not both")
    resuming = resume is not None or (not fresh and log_path.is_file())
    done = _read_log(log_path, sha256) if resuming else {}

    own_transport = transport is None
    transport = transport or open_port(port, baud)
    try:
        link = link_factory(transport) if link_factory else BoardLink(transport, max_retries=max_retries,
                                                                              min_timeout_s=min_timeout_s)
        info = link.hello(attempts=hello_attempts, timeout_s=hello_timeout_s)
        if not info.model_ready:
            raise TinymlError(f"board on {transport.url} failed to initialise its model ({info.backend} backend)")
        if info.model_sha256 != sha256:
            raise TinymlError(f"board on {transport.url} runs model {info.model_sha256}, but {model_dir} holds "
                              f"model {sha256}: flash the board with this model")
        if info.input_bytes != vectors.inputs.shape[1] or info.output_bytes != vectors.outputs.shape[1]:
            raise TinymlError(f"board's model takes {info.input_bytes} and gives {info.output_bytes} bytes, the "
                              f"test vectors have {vectors.inputs.shape[1]} and {vectors.outputs.shape[1]}")
        out_dir.mkdir(parents=True, exist_ok=True)  # only now: a wrong port leaves no empty folder
        todo = [i for i in range(total) if i not in done]
        bytes_before = transport.bytes_written + transport.bytes_read
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=total - len(todo), unit="sample", desc=f"bench {info.board}")
        mode = "a" if resuming else "w"
        started = time.monotonic()
        with log_path.open(mode) as log:
            if mode == "w" or log_path.stat().st_size == 0:
                log.write(json.dumps({"run": {"model_sha256": sha256, "board": info.board, "backend": info.backend,
                                              "latency_unit": info.latency_unit,
                                              "protocol_version": PROTOCOL_VERSION}}) + "\n")
            written = 0
            for result in link.infer(((i, vectors.inputs[i].tobytes()) for i in todo), batch=batch):
                if result.index in done or result.index >= total:
                    continue  # the link yields each sample once; this guards the log anyway
                output = np.frombuffer(result.output, dtype=np.int8)
                record = {
                    "index": result.index,
                    "output": result.output.hex(),
                    "latency": result.latency,
                    "label": int(vectors.labels[result.index]),
                    "pred": int(output.argmax()),
                    "agree": result.output == vectors.outputs[result.index].tobytes(),
                }
                log.write(json.dumps(record) + "\n")  # one write per line: never interleaved
                log.flush()
                written += 1
                if written % FSYNC_EVERY == 0:
                    os.fsync(log.fileno())
                done[result.index] = record
                if bar is not None:
                    bar.update(1)
            log.flush()
            os.fsync(log.fileno())
        elapsed = time.monotonic() - started
        if bar is not None:
            bar.close()
        missing = [i for i in range(total) if i not in done]
        if missing:
            raise TinymlError(f"internal: samples {missing[:5]} got no result")
        wire_bytes = transport.bytes_written + transport.bytes_read - bytes_before
    finally:
        if own_transport:
            transport.close()

    indices = np.arange(total)
    device_out = np.stack([np.frombuffer(bytes.fromhex(done[i]["output"]), dtype=np.int8) for i in indices])
    latencies = np.array([done[i]["latency"] for i in indices], dtype=np.int64)
    labels = vectors.labels[:total]
    host_out = vectors.outputs[:total]
    device_pred = device_out.argmax(axis=1)
    agree = np.all(device_out == host_out, axis=1)
    stats = link.stats
    payload = stats.payload_sent + stats.payload_received
    unit = info.latency_unit
    line_rate = None
    if _real_baud(transport.url) and elapsed > 0:
        # 10 bits per byte (start, 8 data, stop); the busier direction of the full-duplex line.
        line_rate = max(transport.bytes_written, transport.bytes_read) * 10 / (transport.baud * elapsed)
    extra = dict(extra or {})
    clock_hz, time_basis = latency_time_basis(unit, info.clock_hz, extra.get("board_profile"))
    if unit == "us":   # the board times itself in microseconds (MicroPython's ticks_us)
        latency_us = latencies.astype(np.float64)
    elif clock_hz:
        latency_us = latencies * (1e6 / clock_hz)
    else:
        latency_us = latencies / 1000.0 if unit == "nanoseconds" else None
    report: dict[str, Any] = {
        "samples": int(total),
        "on_device_accuracy": float((device_pred == labels).mean()),
        "host_int8_accuracy": float((host_out.argmax(axis=1) == labels).mean()),
        "agreement": float(agree.mean()),
        "disagreements": int((~agree).sum()),
        "per_class": per_class_scores(labels, device_pred, vectors.label_names),
        "latency_unit": unit,
        f"latency_{unit}": percentiles(latencies),
        "latency_us": percentiles(latency_us) if latency_us is not None else None,
        "latency_time_basis": time_basis,
        "board_inferences_per_s": (1e6 / float(latency_us.mean())) if latency_us is not None and latency_us.mean() > 0
        else None,
        # Samples per second through the whole chain as the host saw it (link, pty, and on an
        # emulator the host CPU's emulation speed): a property of this set-up, not of the board.
        "host_samples_per_s": (len(todo) / elapsed) if elapsed > 0 and todo else 0.0,
        "wire_efficiency": payload / wire_bytes if wire_bytes else 0.0,
        "wire_bytes": int(wire_bytes),
        "payload_bytes": int(payload),
        "line_rate_fraction": line_rate,
        "baud": int(transport.baud),
        "port": transport.url,
        "model_sha256": sha256,
        "backend": info.backend,
        "board": info.board,
        "firmware_version": info.firmware_version,
        "protocol_version": info.protocol_version,
        "clock_hz": info.clock_hz,
        "arena_bytes": info.arena_bytes,
        "memory": memory_figures(Path(model_dir), info.backend, info.arena_bytes, vectors.manifest, extra.get("image")),
        "batch": link.batch_size(batch),
        "elapsed_s": elapsed,
        "resumed_samples": int(total - len(todo)),
        "link": {
            "retries": stats.retries,
            "frames_sent": stats.frames_sent,
            "damaged_frames": stats.damaged_frames,
            "board_errors": stats.board_errors,
            "duplicates_ignored": stats.duplicates_ignored,
            "boots_seen": stats.boots_seen,
        },
        "log": str(log_path),
    }
    report.update(extra)
    faults = getattr(transport, "faults", None)
    if faults is not None:
        report["faults_injected"] = {k: v for k, v in vars(faults).items() if k != "log"}
    files = write_bench_report(out_dir, report, labels, device_pred, latencies, vectors.label_names)
    return BenchResult(out_dir, log_path, report, files)
