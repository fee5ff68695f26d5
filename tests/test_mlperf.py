"""MLPerf Tiny runner protocol, both ways, against the emulated RISC-V board:
the runner's command sequence checked byte by byte on a tinyml image built with
firmware/mlperf, and host/mlperf.py driving that image into a bench report."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import serial

from tinyml.boards import load_board
from tinyml.errors import TinymlError

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(shutil.which("riscv64-unknown-elf-gcc") is None or shutil.which("qemu-system-riscv32") is None,
                       reason="needs riscv64-unknown-elf-gcc and qemu-system-riscv32"),
]

SAMPLES = 4


@pytest.fixture(scope="module")
def mlperf_board(tmp_path_factory):
    """A compiled model, its test vectors (host TFLite-Micro's outputs) and a
    running emulated rv32 board whose image speaks MLPerf Tiny (model name ic01)."""
    from test_rv32 import small_int8_model

    from tinyml.compiler.compile import compile_tflite
    from tinyml.host.mlperf import build_mlperf_firmware
    from tinyml.host.session import BoardSession
    from tinyml.verify import io_quantization, run_tflm

    directory = tmp_path_factory.mktemp("mlperf")
    model = small_int8_model()
    (directory / "model.tflite").write_bytes(model)
    compiled = compile_tflite(directory / "model.tflite", directory / "compiled", target="rv32")
    rng = np.random.default_rng(3)
    inputs = rng.integers(-128, 128, size=(SAMPLES, 8, 8, 1), dtype=np.int8)
    outputs = run_tflm(model, inputs)
    in_q, out_q = io_quantization(model)
    vectors = directory / "vectors"
    vectors.mkdir()
    np.savez(vectors / "test_vectors.npz", inputs=inputs, outputs=outputs,
             labels=rng.integers(0, 10, size=SAMPLES).astype(np.int64), label_names=np.array([str(i) for i in range(10)]))
    (vectors / "manifest.json").write_text(json.dumps({
        "model_sha256": compiled.sha256, "labels": [str(i) for i in range(10)],
        "input": {"shape": list(in_q.shape), "scale": in_q.scale, "zero_point": in_q.zero_point},
        "output": {"shape": list(out_q.shape), "scale": out_q.scale, "zero_point": out_q.zero_point}}))
    board = load_board("rv32_virt")
    image = build_mlperf_firmware(board, directory / "compiled", directory / "build", model_name="ic01")
    mp = pytest.MonkeyPatch()
    mp.setenv("TINYML_STATE_DIR", str(directory / "state"))
    try:
        with BoardSession.boot(board, image, protocol="mlperf-tiny") as session:
            yield {"board": board, "port": session.port, "vectors": vectors, "inputs": inputs, "outputs": outputs,
                   "out_q": out_q, "sha256": compiled.sha256}
    finally:
        mp.undo()


def _exchange(handle: serial.Serial, command: bytes, timeout_s: float = 10.0) -> list[str]:
    """Sends one command as the runner does and returns the lines up to m-ready."""
    handle.write(command)
    data = b""
    deadline = time.monotonic() + timeout_s
    while not data.endswith(b"m-ready\r\n"):
        assert time.monotonic() < deadline, f"no m-ready after {command!r}: {data!r}"
        data += handle.read(handle.in_waiting or 1)
    assert all(line.endswith(b"\r") for line in data.split(b"\n")[:-1]), "every line ends in \\r\\n"
    return data.decode("ascii").replace("\r", "").splitlines()[:-1]


def _sync(handle: serial.Serial) -> None:
    """The boot banner also ends in m-ready, and bytes sent while the board boots
    are lost: send unique unknown commands until one's e-[...] echo comes back,
    reading answer blocks in order up to it."""
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


@pytest.mark.slow
def test_firmware_answers_the_runner_protocol(mlperf_board):
    with serial.serial_for_url(mlperf_board["port"], baudrate=115200, timeout=0.05) as handle:
        _sync(handle)
        assert _exchange(handle, b"name%") == ["m-name-dut-[tinyml]"]
        profile = _exchange(handle, b"profile%")
        assert "m-model-[ic01]" in profile
        assert f"m-tinyml-sha256-[{mlperf_board['sha256']}]" in profile
        assert "m-tinyml-latency-unit-[instructions]" in profile
        assert re.fullmatch(r"m-lap-us-\d+", _exchange(handle, b"timestamp%")[0])

        sample = mlperf_board["inputs"][1].tobytes()
        assert _exchange(handle, b"db load 64%") == ["m-[Expecting 64 bytes]"]
        assert _exchange(handle, b"db " + sample[:20].hex().encode() + b"%") == []
        assert _exchange(handle, b"db " + sample[20:].hex().encode() + b"%") == ["m-load-done"]
        printed = _exchange(handle, b"db print%")
        assert "".join(line.removeprefix("m-buffer-") for line in printed) == sample.hex()

        lines = _exchange(handle, b"infer 3 1%")
        assert lines[:3] == ["m-warmup-start-1", "m-warmup-done", "m-infer-start-3"]
        laps = [int(m.group(1)) for m in (re.fullmatch(r"m-lap-us-(\d+)", l) for l in lines) if m]
        ticks = [int(m.group(1)) for m in (re.fullmatch(r"m-tinyml-lap-ticks-(\d+)", l) for l in lines) if m]
        assert len(laps) == 2 and laps[1] > laps[0] and len(ticks) == 2
        # m-lap-us is the tick count through the 160 MHz clock of the profile.
        assert abs((ticks[1] - ticks[0]) / 160 - (laps[1] - laps[0])) <= 1
        assert "m-infer-done" in lines
        results = next(l for l in lines if l.startswith("m-results-["))
        out_q = mlperf_board["out_q"]
        expected = mlperf_board["outputs"][1].reshape(-1).astype(np.int64)
        wanted = ",".join(f"{(q - out_q.zero_point) * out_q.scale:.3f}" for q in expected)
        assert results == f"m-results-[{wanted}]"
        raw = next(l for l in lines if l.startswith("m-tinyml-output-["))
        assert raw == "m-tinyml-output-[" + ",".join(str(q) for q in expected) + "]"
        assert _exchange(handle, b"results%")[0] == results

        assert _exchange(handle, b"bogus%") == ["e-[Unknown command: bogus]"]
        assert _exchange(handle, b"db load 64%") == ["m-[Expecting 64 bytes]"]
        assert _exchange(handle, b"db abc%")[0].startswith("e-[")  # odd hex digit count
        assert _exchange(handle, b"infer%")[0].startswith("e-[loaded 0 bytes")


@pytest.mark.slow
def test_host_driver_benchmarks_the_device(mlperf_board, tmp_path):
    from tinyml.host.mlperf import run_mlperf

    result = run_mlperf(mlperf_board["port"], mlperf_board["vectors"], tmp_path / "report", runs=2, warmup=1)
    report = result.report
    assert report["samples"] == SAMPLES and report["protocol"] == "mlperf-tiny"
    assert report["agreement"] == 1.0 and report["agreement_basis"] == "int8 bytes"
    assert report["on_device_accuracy"] == report["host_int8_accuracy"]
    assert report["latency_unit"] == "instructions" and report["latency_instructions"]["min"] > 1000
    assert report["board"] == "rv32_virt" and report["mlperf_model"] == "ic01"
    for name in ("report.json", "report.md", "bench_latency.png", "mlperf_samples.jsonl"):
        assert (tmp_path / "report" / name).is_file()


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
