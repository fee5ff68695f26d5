"""MLPerf Tiny runner protocol, both ways, on the emulated STM32F405 with the four
MLPerf Tiny reference models under the names the runner uses (ic01, kws01,
vww01, ad01): the runner's command sequence checked line by line on a tinyml
image built with firmware/mlperf, and host/mlperf.py driving that image into a
bench report. The models are not in this repository: they are found in
$TINYML_MLPERF_TINY_MODELS or a shared/models/mlperf-tiny folder beside it
(the tests skip without them)."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import serial

from tinyml.errors import TinymlError
from tinyml.testing.mlperf_models import MODELS, bench_vectors, models_dir

SAMPLES = 3
_models_dir = models_dir
MODELS_DIR = _models_dir()
_NO_EMULATOR = shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None


def needs_emulator(test):
    """The emulated STM32F405 (and, for the reference models, the models)."""
    for mark in (pytest.mark.qemu, pytest.mark.slow,
                 pytest.mark.skipif(_NO_EMULATOR, reason="needs arm-none-eabi-gcc and qemu-system-arm")):
        test = mark(test)
    return test


needs_models = pytest.mark.skipif(MODELS_DIR is None, reason="MLPerf Tiny reference models not found")


def _vectors(directory: Path, model: Path, sha256: str, seed: int) -> dict:
    return bench_vectors(directory, model, sha256, seed, SAMPLES)


@pytest.fixture(scope="module", params=list(MODELS), ids=list(MODELS))
def mlperf_board(request, tmp_path_factory):
    """A reference model compiled for the Cortex-M4, its vectors, and the emulated
    STM32F405 running its MLPerf Tiny image (name derived from the input shape)."""
    from tinyml.boards import load_board
    from tinyml.compiler.compile import compile_tflite
    from tinyml.host.mlperf import build_mlperf_firmware
    from tinyml.host.session import BoardSession

    name = request.param
    model = MODELS_DIR / MODELS[name]
    directory = tmp_path_factory.mktemp(f"mlperf_{name}")
    compiled = compile_tflite(model, directory / "compiled", target="cortex-m4", optimize="size")
    data = _vectors(directory, model, compiled.sha256, seed=len(name))
    board = load_board("stm32f405")
    image = build_mlperf_firmware(board, directory / "compiled", directory / "build")
    mp = pytest.MonkeyPatch()
    mp.setenv("TINYML_STATE_DIR", str(directory / "state"))
    try:
        with BoardSession.boot(board, image, protocol="mlperf-tiny") as session:
            yield {"name": name, "port": session.port, "sha256": compiled.sha256, **data}
    finally:
        mp.undo()


def _exchange(handle: serial.Serial, command: bytes, timeout_s: float = 60.0) -> list[str]:
    """Sends one command as the runner does and returns the lines up to m-ready."""
    handle.write(command)
    data = b""
    deadline = time.monotonic() + timeout_s
    while not data.endswith(b"m-ready\r\n"):
        assert time.monotonic() < deadline, f"no m-ready after {command[:40]!r}: {data[-200:]!r}"
        data += handle.read(handle.in_waiting or 1)
    assert all(line.endswith(b"\r") for line in data.split(b"\n")[:-1]), "every line ends in \\r\\n"
    return data.decode("ascii").replace("\r", "").splitlines()[:-1]


def _sync(handle: serial.Serial) -> None:
    """The boot banner also ends in m-ready, and bytes sent while the board boots
    are lost: send unique unknown commands until one's e-[...] echo comes back."""
    for attempt in range(5):
        token = f"sync{attempt}"
        handle.write(token.encode() + b"%")
        data = b""
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            data += handle.read(handle.in_waiting or 1)
            if f"e-[Unknown command: {token}]\r\nm-ready\r\n".encode() in data:
                assert data.endswith(b"m-ready\r\n")
                return
    raise AssertionError("the board never echoed a sync command")


def _load(handle: serial.Serial, payload: bytes, announced: int | None = None) -> list[str]:
    announced = len(payload) if announced is None else announced
    assert _exchange(handle, f"db load {announced}%".encode()) == [f"m-[Expecting {announced} bytes]"]
    lines: list[str] = []
    for start in range(0, len(payload), 32):  # the runner's chunk: "db " + 64 hex digits
        lines += _exchange(handle, b"db " + payload[start:start + 32].hex().encode() + b"%")
    return lines


def _results(lines: list[str]) -> list[float]:
    line = next(l for l in lines if l.startswith("m-results-["))
    assert re.fullmatch(r"m-results-\[-?\d+\.\d{3}(,-?\d+\.\d{3})*\]", line), line
    return [float(v) for v in line[len("m-results-["):-1].split(",")]


@needs_emulator
@needs_models
def test_firmware_answers_the_runner_protocol(mlperf_board):
    from tinyml.host.mlperf import host_anomaly_scores, wire_input

    name, in_q, out_q = mlperf_board["name"], mlperf_board["in_q"], mlperf_board["out_q"]
    input_type = "float32" if name == "ad01" else "int8"
    with serial.serial_for_url(mlperf_board["port"], baudrate=115200, timeout=0.05) as handle:
        _sync(handle)
        assert _exchange(handle, b"name%") == ["m-name-dut-[tinyml]"]
        profile = _exchange(handle, b"profile%")
        assert f"m-model-[{name}]" in profile
        assert f"m-tinyml-sha256-[{mlperf_board['sha256']}]" in profile
        assert f"m-tinyml-input-[{input_type}]" in profile
        wanted_results = "anomaly-score" if name == "ad01" else "dequantized"  # the three others end in softmax
        assert f"m-tinyml-results-[{wanted_results}]" in profile
        sample = wire_input(mlperf_board["inputs"][1], input_type, in_q.scale, in_q.zero_point)
        assert f"m-tinyml-db-bytes-{len(sample)}" in profile  # the buffer is the model's sample, not a fixed size

        assert _load(handle, sample)[-1] == "m-load-done"
        printed = _exchange(handle, b"db print%")
        assert "".join(line.removeprefix("m-buffer-") for line in printed) == sample.hex()
        lines = _exchange(handle, b"infer 2 1%")
        assert lines[:3] == ["m-warmup-start-1", "m-warmup-done", "m-infer-start-2"]
        laps = [int(m.group(1)) for m in (re.fullmatch(r"m-lap-us-(\d+)", l) for l in lines) if m]
        ticks = [int(m.group(1)) for m in (re.fullmatch(r"m-tinyml-lap-ticks-(\d+)", l) for l in lines) if m]
        assert len(laps) == 2 and laps[1] > laps[0] and len(ticks) == 2
        assert abs((ticks[1] - ticks[0]) / 168 - (laps[1] - laps[0])) <= 1  # ticks through the 168 MHz clock
        raw = next(l for l in lines if l.startswith("m-tinyml-output-["))
        expected = mlperf_board["outputs"][1].astype(np.int64)
        assert raw == "m-tinyml-output-[" + ",".join(str(q) for q in expected) + "]"  # byte-exact with TFLM
        results = _results(lines)
        if name == "ad01":
            score = host_anomaly_scores(mlperf_board["inputs"][1:2], mlperf_board["outputs"][1:2],
                                        (in_q.scale, in_q.zero_point), (out_q.scale, out_q.zero_point))[0]
            assert len(results) == 1 and abs(results[0] - score) <= 0.0005 + 1e-4 * score
        else:
            wanted = [float(f"{(q - out_q.zero_point) * out_q.scale:.3f}") for q in expected]
            assert results == pytest.approx(wanted, abs=0.0011)
            assert abs(sum(results) - 1.0) < 0.02  # probabilities: the runner's divide-by-sum keeps the top class
        assert _results(_exchange(handle, b"results%")) == results

        # A short load infers on its first bytes (the rest as the last sample left them), as the reference.
        assert _load(handle, sample[:16], announced=16)[-1] == "m-load-done"
        short = _exchange(handle, b"infer 1 0%")
        assert "m-infer-done" in short and _results(short)
        # A longer load than the model takes keeps its first bytes: the same sample gives the same answer.
        assert _load(handle, sample + b"\x00" * 32)[-1] == "m-load-done"
        assert _results(_exchange(handle, b"infer 1 0%")) == results

        assert _exchange(handle, b"bogus%") == ["e-[Unknown command: bogus]"]
        assert _exchange(handle, b"db abc%")[0].startswith("e-[")  # odd hex digit count


@needs_emulator
@needs_models
def test_host_driver_benchmarks_the_device(mlperf_board, tmp_path):
    from tinyml.host.mlperf import run_mlperf

    result = run_mlperf(mlperf_board["port"], mlperf_board["vectors"], tmp_path / "report", runs=1, warmup=0)
    report = result.report
    assert report["samples"] == SAMPLES and report["protocol"] == "mlperf-tiny"
    assert report["agreement"] == 1.0 and report["agreement_basis"] == "int8 bytes"
    assert report["mlperf_model"] == mlperf_board["name"] and report["board"] == "stm32f405"
    assert report["latency_unit"] == "instructions" and report["latency_instructions"]["min"] > 1000
    if mlperf_board["name"] == "ad01":
        assert report["input_type"] == "float32" and report["results_kind"] == "anomaly-score"
        assert report["anomaly_scores"]["max_abs_difference"] <= 0.0005 + 1e-4 * max(report["anomaly_scores"]["host"])
        assert report["on_device_accuracy"] == report["host_int8_accuracy"] == pytest.approx(1.0)
    else:
        assert report["input_type"] == "int8"
        assert report["on_device_accuracy"] == report["host_int8_accuracy"] == 1.0  # labels are the host's classes
    for name in ("report.json", "report.md", "bench_latency.png", "mlperf_samples.jsonl"):
        assert (tmp_path / "report" / name).is_file()




@needs_emulator
def test_cli_flashes_a_logits_model_with_uint8_input_and_bench_scores_as_the_runner(tmp_path, monkeypatch):
    """A model ending in logits (as the digits student) prints softmax probabilities,
    so the runner's divide-by-sum top-1 equals the host's; the uint8 input type is
    read from the device; `tinyml flash --protocol mlperf-tiny` builds the image."""
    import subprocess
    import sys

    from tinyml.testing.keras_models import small_int8_model

    from tinyml.compiler.compile import compile_tflite
    from tinyml.host.emulator import find_running_emulator

    (tmp_path / "model.tflite").write_bytes(small_int8_model())
    compiled = compile_tflite(tmp_path / "model.tflite", tmp_path / "compiled", target="cortex-m4")
    data = _vectors(tmp_path, tmp_path / "model.tflite", compiled.sha256, seed=7)
    monkeypatch.setenv("TINYML_STATE_DIR", str(tmp_path / "state"))

    def tinyml(*args):
        return subprocess.run([sys.executable, "-m", "tinyml.cli", *map(str, args)], capture_output=True, text=True,
                              timeout=600)

    derived = tinyml("flash", "--board", "stm32f405", "--model-dir", tmp_path / "compiled", "--protocol", "mlperf-tiny")
    assert derived.returncode != 0 and "give --mlperf-model NAME" in derived.stderr  # 8x8x1 is no MLPerf data set
    flashed = tinyml("flash", "--board", "stm32f405", "--model-dir", tmp_path / "compiled", "--protocol",
                     "mlperf-tiny", "--mlperf-model", "digits01", "--input-uint8")
    assert flashed.returncode == 0, flashed.stderr
    assert "MLPerf Tiny image (digits01, uint8 input, softmax results)" in flashed.stdout
    try:
        benched = tinyml("bench", "--board", "stm32f405", "--protocol", "mlperf-tiny", "--model-dir", data["vectors"],
                         "--out", tmp_path / "bench")
        assert benched.returncode == 0, benched.stderr
        report = json.loads((tmp_path / "bench" / "report.json").read_text())
        assert report["input_type"] == "uint8" and report["results_kind"] == "softmax"
        assert report["agreement"] == 1.0 and report["on_device_accuracy"] == report["host_int8_accuracy"] == 1.0
        samples = [json.loads(line) for line in (tmp_path / "bench" / "mlperf_samples.jsonl").read_text().splitlines()]
        for sample in samples:
            assert abs(sum(sample["results"]) - 1.0) < 0.01 and min(sample["results"]) >= 0.0
        wrong = tinyml("bench", "--board", "stm32f405", "--protocol", "mlperf-tiny", "--model-dir", data["vectors"],
                       "--out", tmp_path / "bench2", "--input-type", "int8")
        assert wrong.returncode != 0 and "takes uint8 inputs, not int8" in wrong.stderr
    finally:
        running = find_running_emulator("stm32f405")
        if running is not None:
            running.stop()
    # The image was built in the emulator's own folder, gone with it: nothing left in the state dir.
    assert not [p for p in (tmp_path / "state").iterdir() if p.is_dir() and p.name.startswith("stm32f405")]


# ---- the host side alone: what a device may answer


class ScriptedDevice:
    """A transport whose device answers each command from a table (lines before m-ready)."""

    url = "scripted://"
    baud = 115200

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.pending = b""
        self.bytes_written = self.bytes_read = 0

    def write(self, data: bytes) -> None:
        self.bytes_written += len(data)
        for command in data.decode().split("%")[:-1]:
            key = next((k for k in self.answers if command.startswith(k)), None)
            lines = self.answers[key] if key is not None else [f"e-[Unknown command: {command}]"]
            self.pending += "".join(f"{line}\r\n" for line in [*lines, "m-ready"]).encode()

    def read(self, max_bytes: int = 65536) -> bytes:
        data, self.pending = self.pending[:max_bytes], self.pending[max_bytes:]
        self.bytes_read += len(data)
        return data

    def discard_input(self) -> None:
        self.pending = b""

    def close(self) -> None:
        pass


def test_integer_results_are_refused_not_scored():
    from tinyml.host.mlperf import MlperfDevice

    device = MlperfDevice(ScriptedDevice({"infer": ["m-lap-us-10", "m-lap-us-20", "m-results-[-75,82,3]"]}))
    with pytest.raises(TinymlError, match=r"integers in m-results .*not the dequantized probabilities"):
        device.infer()


def test_energy_mode_is_refused_clearly():
    from tinyml.host.mlperf import MlperfDevice

    device = MlperfDevice(ScriptedDevice({"infer": ["m-infer-start-1", "m-infer-done", "m-results-[0.100,0.900]"]}))
    with pytest.raises(TinymlError, match=r"energy mode \(m-timestamp-mode-energy.*9600 baud"):
        device.infer()


def test_anomaly_scores_are_scored_as_the_runner_does():
    from tinyml.host.mlperf import runner_anomaly_accuracy

    labels = np.array([0, 0, 1, 1])
    assert runner_anomaly_accuracy(np.array([1.0, 2.0, 8.0, 9.0]), labels) == pytest.approx(1.0)
    # scores that rank one anomaly below a normal sample: the best threshold still misses something
    assert runner_anomaly_accuracy(np.array([1.0, 5.0, 4.0, 9.0]), labels) == pytest.approx(5 / 6, abs=1e-6)  # 2/3, 1


def test_scoring_is_the_runners_divide_by_sum_then_top1():
    from tinyml.host.mlperf import runner_top1

    logits = np.array([[-3.0, -1.0, -2.0], [0.1, 0.7, 0.2]])
    # negative logits sum below zero: the runner's division flips the order (as it does on a logits device)
    assert runner_top1(logits).tolist() == [0, 1]
    probabilities = np.exp(logits[:1]) / np.exp(logits[:1]).sum()
    assert runner_top1(probabilities).tolist() == [1]


def test_input_type_comes_from_the_device_or_the_user():
    from tinyml.host.mlperf import DeviceProfile, _device_input_type

    tinyml_device = DeviceProfile("dut", "ic01", {"input": "uint8"})
    assert _device_input_type(tinyml_device, None, "x") == "uint8"
    with pytest.raises(TinymlError, match="takes uint8 inputs, not int8"):
        _device_input_type(tinyml_device, "int8", "x")
    reference = DeviceProfile("dut", "ic01", {})
    with pytest.raises(TinymlError, match=r"does not say its input type .*--input-type"):
        _device_input_type(reference, None, "x")
    assert _device_input_type(reference, "uint8", "x") == "uint8"


def test_model_name_and_build_options_from_the_compiled_model(tmp_path):
    from tinyml.host.mlperf import derive_mlperf_model, mlperf_build_options

    assert [derive_mlperf_model(s) for s in ([1, 32, 32, 3], [1, 49, 10, 1], [1, 96, 96, 3], [1, 640])] == [
        "ic01", "kws01", "vww01", "ad01"]
    with pytest.raises(TinymlError, match="give --mlperf-model"):
        derive_mlperf_model([1, 8, 8, 1])
    for shape, last, expected in (([1, 640], "FULLY_CONNECTED", ("ad01", "float32", "anomaly-score")),
                                  ([1, 32, 32, 3], "SOFTMAX", ("ic01", "int8", "dequantized")),
                                  ([1, 32, 32, 3], "FULLY_CONNECTED", ("ic01", "int8", "softmax"))):
        (tmp_path / "compile.json").write_text(json.dumps({"layers": [{"op": "CONV_2D", "input_shapes": [shape]},
                                                                      {"op": last, "input_shapes": [[1, 10]]}]}))
        assert mlperf_build_options(tmp_path) == expected
    with pytest.raises(TinymlError, match="ad01 takes float32"):
        mlperf_build_options(tmp_path, "ad01", input_uint8=True)


def test_requantize_inverts_the_device_rounding():
    from tinyml.host.mlperf import requantize

    scale, zero_point = 0.0732, -3
    q = np.arange(-128, 128)
    printed = [float(f"{(v - zero_point) * scale:.3f}") for v in q]
    assert requantize(printed, scale, zero_point) == q.astype(np.int8).tobytes()


def test_driver_reports_a_silent_device(tmp_path):
    from tinyml.host.mlperf import MlperfDevice
    from tinyml.host.transport import open_port

    transport = open_port("loop://", 115200)
    try:
        device = MlperfDevice(transport, timeout_s=0.3)
        with pytest.raises(TinymlError, match="m-ready"):
            device.command("name", timeout_s=0.3)
    finally:
        transport.close()
