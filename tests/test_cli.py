"""The command line: thin, one-line errors, non-zero exits, nothing written on failure."""

import json
import subprocess
import sys

import pytest
from cli_rules import assert_bad_input


def tinyml(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_help_reads_like_a_manual():
    result = tinyml("--help")
    assert result.returncode == 0
    for command in ("prepare", "convert", "inspect", "emit", "boards"):
        assert command in result.stdout


def test_boards_lists_every_profile():
    result = tinyml("boards")
    assert result.returncode == 0
    assert "stm32f405" in result.stdout and "nucleo_h743zi" in result.stdout
    profiles = json.loads(tinyml("boards", "--json").stdout)
    assert {p["name"] for p in profiles} >= {"stm32f405", "esp32dev", "esp32s3", "nucleo_f446re"}


def test_inspect_tflite_prints_layers_totals_and_arena(tiny_models):
    result = tinyml("inspect", tiny_models["int8"])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "CONV_2D" in out and "DEPTHWISE_CONV_2D" in out and "FULLY_CONNECTED" in out
    # conv 8x8x8 outputs x 3x3x1, depthwise 8x8x8 x 3x3, 1x1 conv 8x8x16 x 8, dense 16x10
    assert f"{8 * 8 * 8 * 9 + 8 * 8 * 8 * 9 + 8 * 8 * 16 * 8 + 16 * 10:,} MACs" in out
    assert "arena (TFLite-Micro, measured on host)" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (("inspect", "missing.tflite"), "no such model file"),
        (("inspect", "model.bin"), "unknown model format"),
        (("emit", "missing.tflite", "--out", "out"), "no such model file"),
        (("prepare", "--dataset", "digits", "--board", "nope", "--out", "out"), "unknown board 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(tmp_path, args, message):
    (tmp_path / "model.bin").write_bytes(b"\0" * 16)
    result = tinyml(*args, cwd=tmp_path)
    assert_bad_input(result, message, only_line=True)   # wrong arguments: before any progress line
    assert not (tmp_path / "out").exists()


def test_emit_float_model_is_refused(tiny_models, tmp_path):
    result = tinyml("emit", tiny_models["float"], "--out", tmp_path / "out")
    assert result.returncode == 2 and "not int8" in result.stderr
    assert not (tmp_path / "out").exists()


def test_emit_with_builtin_test_data_writes_the_whole_test_split(tiny_models, tmp_path):
    result = tinyml("emit", tiny_models["int8"], "--out", tmp_path / "out", "--test-data", "digits")
    assert result.returncode == 0, result.stderr
    import numpy as np

    with np.load(tmp_path / "out" / "test_vectors.npz") as vectors:
        assert vectors["inputs"].shape == (360, 8, 8, 1) and vectors["outputs"].shape == (360, 10)
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["test_vectors"] == 360


def test_convert_own_onnx_model_to_int8(tmp_path):
    import numpy as np
    import torch

    from tinyml.onnx_export import export_onnx
    from tinyml.tflite_graph import load_tflite

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 10))
    export_onnx(model, (8, 8, 1), tmp_path / "own.onnx")
    inspected = tinyml("inspect", tmp_path / "own.onnx")
    assert inspected.returncode == 0, inspected.stderr
    # conv 8x8x4 outputs x 3x3x1 + linear 4x10; params 4*9+4 + 4*10+10
    assert f"{8 * 8 * 4 * 9 + 40:,} MACs" in inspected.stdout and "90 params" in inspected.stdout
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).random((40, 8, 8), dtype=np.float32))
    result = tinyml("convert", tmp_path / "own.onnx", "--calibration", tmp_path / "calib.npz",
                    "--out", tmp_path / "own.tflite")
    assert result.returncode == 0, result.stderr
    graph = load_tflite(tmp_path / "own.tflite")
    assert graph.tensors[graph.inputs[0]].dtype == np.int8 and graph.tensors[graph.outputs[0]].dtype == np.int8
    assert "TRANSPOSE" not in graph.ops and "DEQUANTIZE" not in graph.ops
    bad = tinyml("convert", tmp_path / "calib.npz", "--calibration", "digits", "--out", tmp_path / "x.tflite")
    assert_bad_input(bad, "unknown model format", only_line=True)
    assert not (tmp_path / "x.tflite").exists()


def test_compile_writes_c_for_each_optimization_and_refuses_float(tiny_models, tmp_path):
    weights = {}
    for optimize in ("speed", "size"):
        out = tmp_path / optimize
        result = tinyml("compile", tiny_models["int8"], "--out", out, "--target", "cortex-m4", "--optimize", optimize)
        assert result.returncode == 0, result.stderr
        assert "compiled 5 layers for cortex-m4" in result.stdout
        assert {"model.c", "model.h", "compile.json", "memory_plan.png"} <= {p.name for p in out.iterdir()}
        info = json.loads((out / "compile.json").read_text())
        assert info["optimize"] == optimize
        weights[optimize] = info["weight_bytes"]
    assert weights["size"] < weights["speed"]
    refused = tinyml("compile", tiny_models["float"], "--out", tmp_path / "float")
    assert_bad_input(refused, "float model", only_line=True)
    assert not (tmp_path / "float").exists()
