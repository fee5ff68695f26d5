"""`tinyml flash` / `tinyml bench` on the emulated STM32F405, through the CLI:
compile on demand, boot QEMU, find it again by board name, bench, profile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tinyml.artifacts import emit_artifacts
from tinyml.verify import io_quantization, quantize_input

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                       reason="needs qemu-system-arm and arm-none-eabi-gcc"),
]


def _tinyml(env, *args):
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.fixture
def env(tmp_path):
    environment = dict(os.environ, TINYML_STATE_DIR=str(tmp_path / "state"))
    yield environment
    # Whatever the test left running on this state directory is stopped.
    from tinyml.host.emulator import stop_emulators

    old = os.environ.get("TINYML_STATE_DIR")
    os.environ["TINYML_STATE_DIR"] = environment["TINYML_STATE_DIR"]
    try:
        stop_emulators("all")
    finally:
        if old is None:
            os.environ.pop("TINYML_STATE_DIR")
        else:
            os.environ["TINYML_STATE_DIR"] = old


def _model_dir(tflite, directory, samples=6):
    x = np.random.default_rng(5).random((samples, 8, 8, 1), dtype=np.float32)
    inputs = quantize_input(x, io_quantization(tflite.read_bytes())[0])
    return emit_artifacts(tflite, directory, inputs, np.arange(samples) % 10).out_dir


def test_flash_then_bench_by_board_name_with_profile(tiny_models, tmp_path, env):
    model_dir = _model_dir(tiny_models["int8"], tmp_path / "model")
    flashed = _tinyml(env, "flash", "--board", "stm32f405", "--model-dir", model_dir, "--profile")
    assert flashed.returncode == 0, flashed.stderr
    sha = json.loads((model_dir / "manifest.json").read_text())["model_sha256"]
    assert f"runs model {sha[:16]}" in flashed.stdout
    # Each stage of a flash that takes seconds said what it was doing, in order, on stderr.
    stages = list(dict.fromkeys(line.split("]")[0] + "]" for line in flashed.stderr.splitlines()))
    assert stages == ["[compile]", "[build]", "[qemu]", "[hello]"], flashed.stderr
    assert (model_dir / "compiled-cortex-m4" / "model.c").is_file()

    bench = _tinyml(env, "bench", "--board", "stm32f405", "--model-dir", model_dir, "--profile", "--quiet")
    assert bench.returncode == 0, bench.stderr
    report = json.loads((model_dir / "bench" / "report.json").read_text())
    assert report["samples"] == 6 and report["agreement"] == 1.0 and report["latency_unit"] == "instructions"
    assert report["model_sha256"] == sha
    profile = json.loads((model_dir / "bench" / "profile.json").read_text())
    ops = [layer["op"] for layer in profile["layers"]]
    assert ops[:2] == ["CONV_2D", "DEPTHWISE_CONV_2D"] and "FULLY_CONNECTED" in ops
    # Every layer took time, and the layers add up to (almost) one whole inference.
    total = sum(layer["time"] for layer in profile["layers"])
    assert all(layer["time"] > 0 for layer in profile["layers"])
    assert 0.8 * report["latency_instructions"]["p50"] <= total <= 1.05 * report["latency_instructions"]["p50"]
    assert (model_dir / "bench" / "profile.png").is_file()
    # The bench report links the per-layer profile and gives latency as time too.
    text = (model_dir / "bench" / "report.md").read_text()
    assert "[profile.md](profile.md)" in text and report["profile"]["png"] == "profile.png"
    assert report["latency_us"]["p50"] > 0 and f"({report['latency_us']['p50']:,.1f} µs)" in bench.stdout
    # The image the flashed emulator runs is measured too (flash = text + data, RAM = data + bss).
    memory = report["memory"]
    assert 0 < memory["firmware_flash_bytes"] < 1_048_576 and memory["firmware_ram_bytes"] > memory["arena_bytes"] > 0

    # The same command again resumes the finished log; --fresh starts over.
    again = _tinyml(env, "bench", "--board", "stm32f405", "--model-dir", model_dir, "--quiet")
    assert again.returncode == 0, again.stderr
    assert json.loads((model_dir / "bench" / "report.json").read_text())["resumed_samples"] == 6
    fresh = _tinyml(env, "bench", "--board", "stm32f405", "--model-dir", model_dir, "--quiet", "--fresh")
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads((model_dir / "bench" / "report.json").read_text())["resumed_samples"] == 0

    # The emulator flash left running is listed, and stopped by board name.
    listed = _tinyml(env, "emulator", "list")
    assert "stm32f405" in listed.stdout and "kept by tinyml flash" in listed.stdout and str(model_dir) in listed.stdout
    stopped = _tinyml(env, "emulator", "stop", "stm32f405")
    assert stopped.returncode == 0 and "stopped stm32f405" in stopped.stdout
    assert _tinyml(env, "emulator", "list").stdout.strip() == "no emulator is running"


def test_bench_against_another_models_vectors_names_both_hashes(tiny_models, tmp_path, env):
    model_dir = _model_dir(tiny_models["int8"], tmp_path / "model")
    assert _tinyml(env, "flash", "--board", "stm32f405", "--model-dir", model_dir).returncode == 0
    other = tmp_path / "other"
    shutil.copytree(model_dir, other)
    manifest = json.loads((other / "manifest.json").read_text())
    flashed_sha, manifest["model_sha256"] = manifest["model_sha256"], "ab" * 32
    (other / "manifest.json").write_text(json.dumps(manifest))
    result = _tinyml(env, "bench", "--board", "stm32f405", "--model-dir", other, "--quiet")
    assert result.returncode != 0
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and flashed_sha[:12] in line and "abababab" in line


def test_bench_without_a_running_board_says_how_to_start_one(tmp_path, env, tiny_models):
    model_dir = _model_dir(tiny_models["int8"], tmp_path / "model")
    result = _tinyml(env, "bench", "--board", "stm32f405", "--model-dir", model_dir)
    assert result.returncode != 0 and "tinyml flash --board stm32f405" in result.stderr
