"""Bad input through the CLI: answered before torch/TensorFlow load, one `error:` line,
the same words for the same problem whichever command meets it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from cli_rules import assert_bad_input
from tinyml.preflight import HEAVY_MODULES

# Runs the real CLI, then (at exit, after its sys.exit) prints which heavy modules were imported.
_PROBE = (
    "import atexit, sys\n"
    "from tinyml import cli\n"
    f"atexit.register(lambda: print('HEAVY', sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)))\n"
    "sys.argv = ['tinyml', *sys.argv[1:]]\n"
    "cli.main()\n"
)


def tinyml(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def assert_one_error_line(result, message: str) -> None:
    """Bad arguments: answered before any progress line, so the error is the only line."""
    assert_bad_input(result, message, only_line=True)


@pytest.fixture
def files(tmp_path):
    np.savez(tmp_path / "no_y.npz", x=np.zeros((10, 8, 8), np.float32))
    (tmp_path / "teacher.onnx").write_bytes(b"not read before the imports")
    (tmp_path / "a_file").write_text("")
    (tmp_path / "model.onnx").write_bytes(b"")
    return tmp_path


@pytest.mark.parametrize("args, message", [
    (("prepare", "--dataset", "digits", "--board", "nope", "--out", "out"), "unknown board 'nope'"),
    (("prepare", "--dataset", "nope.npz", "--board", "stm32f405", "--out", "out"), "--dataset 'nope.npz' not found"),
    (("prepare", "--dataset", "no_y.npz", "--board", "stm32f405", "--out", "out"), "missing array 'y'"),
    (("prepare", "--dataset", "digits", "--board", "stm32f405", "--out", "a_file"), "is a file, not a folder"),
    (("prepare", "--dataset", "digits", "--board", "stm32f405", "--out", "a_file/out"), "is a file, not a folder"),
    (("prepare", "--dataset", "digits", "--board", "stm32f405", "--out", "out", "--epochs", "0"),
     "--epochs must be positive"),
    (("prepare", "--dataset", "digits", "--board", "stm32f405", "--out", "out", "--teacher", "missing.pt"),
     "no such teacher file: missing.pt"),
    (("prepare", "--dataset", "digits", "--board", "stm32f405", "--out", "out", "--teacher-arch", "teacher"),
     "give --teacher PATH as well"),
    (("prepare", "--dataset", "digits", "--board", "stm32f405", "--out", "out", "--teacher", "teacher.onnx",
      "--kd", "fitnets"), "an ONNX teacher only gives logits"),
    (("prepare", "--dataset", "digits", "--board", "stm32f405", "--out", "out", "--teacher", "teacher.onnx",
      "--teacher-epochs", "3"), "--teacher-epochs applies only when the tool trains the teacher"),
    (("prepare", "--dataset", "digits"), "Missing option '--board'"),
    (("convert", "missing.onnx", "--calibration", "digits", "--out", "m.tflite"), "no such model file"),
    (("convert", "no_y.npz", "--calibration", "digits", "--out", "m.tflite"), "unknown model format"),
    (("convert", "model.onnx", "--calibration", "nope", "--out", "m.tflite"), "--calibration 'nope' not found"),
    (("convert", "model.onnx", "--calibration", "digits", "--out", "."), "is a folder, not a file"),
    (("compile", "missing.tflite", "--out", "out"), "no such model file: missing.tflite"),
    (("emit", "missing.tflite", "--out", "out"), "no such model file: missing.tflite"),
    (("demo", "--out", "a_file"), "is a file, not a folder"),
    (("bench", "--model-dir", ".", "--max-retries", "-1"), "--max-retries -1: give a count of sends, or 0 for no limit"),
    *[(("prepare", "--dataset", "digits", "--board", "stm32f405", "--out", "out", "--prune", ratio),
       "--prune must be a ratio in (0, 1)") for ratio in ("0", "1", "1.5", "-0.2")],
    *[(("prepare", "--dataset", "digits", "--board", "stm32f405", "--out", "out", "--rotate-degrees", degrees),
       "--rotate-degrees must be in [0, 45]") for degrees in ("-1", "90")],
    (("prepare", "--dataset", "digits", "--board", "stm32f405", "--out", "out", "--weights", "palette3"),
     "unknown weight encoding 'palette3' (choose from int8, palette4/layer, palette4/channel, palette2/channel)"),
    (("prepare", "--dataset", "digits", "--board", "stm32f405", "--out", "out", "--pruned-variants", "-1"),
     "--pruned-variants must be 0 or more, got -1"),
    (("prepare", "--dataset", "digits", "--board", "stm32f405", "--out", "out", "--final-fit", "hot"),
     "unknown --final-fit 'hot' (choose scratch, warm, swa, off)"),
    (("flash", "--board", "stm32f405", "--model-dir", ".", "--weights", "palette4", "--backend", "tflm"),
     "--weights chooses how the engine backend compiles MODEL_DIR: it cannot go with --image or --backend tflm"),
    (("flash", "--runtime", "micropython", "--port", "loop://", "--model-dir", ".", "--weights", "palette4"),
     "--weights is not supported with --runtime micropython"),
])
def test_bad_arguments_are_answered_before_torch_and_tensorflow_load(files, args, message):
    result = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, cwd=files,
                            timeout=300)
    assert_one_error_line(result, message)
    assert result.stdout.strip().splitlines()[-1] == "HEAVY []", result.stdout
    assert not (files / "out").exists()


@pytest.fixture(scope="module")
def truncated(tiny_models, tmp_path_factory):
    path = tmp_path_factory.mktemp("truncated") / "cut.tflite"
    data = tiny_models["int8"].read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


@pytest.mark.parametrize("command", [
    ("inspect",), ("compile", "--out", "out"), ("emit", "--out", "out"), ("emit", "--out", "out", "--test-data", "digits"),
])
def test_a_truncated_model_gets_the_same_error_from_every_command(truncated, tmp_path, command):
    result = tinyml(command[0], truncated, *command[1:], cwd=tmp_path)
    assert_one_error_line(result, f"error: {truncated}: corrupt or truncated TFLite file")
    assert not (tmp_path / "out").exists()


def test_flash_address_reads_like_an_address(tmp_path):
    help_text = tinyml("flash", "--help").stdout
    assert "--address ADDRESS" in help_text and "LAMBDA" not in help_text.upper()
    (tmp_path / "fw.bin").write_bytes(b"\0")
    bad = tinyml("flash", "--board", "stm32f405", "--model-dir", tmp_path, "--image", tmp_path / "fw.bin",
                 "--address", "0xZZ")
    assert_one_error_line(bad, "'0xZZ' is not an address")
