"""`tinyml convert` from what TensorFlow users have (a .keras file, a SavedModel
folder, a float .tflite) and `tinyml compile` of the result: Keras' Flatten
(SHAPE / STRIDED_SLICE / PACK / RESHAPE) folds at compile time and the C is
bit-exact with tflite-micro."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tinyml.errors import TinymlError
from cli_rules import assert_bad_input

CALIBRATION = 40


def tinyml(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """One Keras CNN with Flatten (dynamic batch) as .keras, SavedModel and float .tflite, plus calibration data."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(1)
    layers = tf.keras.layers
    inp = tf.keras.Input((8, 8, 1))
    x = layers.Conv2D(4, 3, activation="relu")(inp)
    x = layers.Flatten()(x)
    model = tf.keras.Model(inp, layers.Dense(10)(layers.Dense(12, activation="relu")(x)))
    directory = tmp_path_factory.mktemp("keras_files")
    model.save(directory / "model.keras")
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        model.export(str(directory / "saved_model"))
        (directory / "float.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    np.savez(directory / "calib.npz", x=np.random.default_rng(0).random((CALIBRATION, 8, 8, 1), dtype=np.float32))
    return directory


@pytest.mark.parametrize("source", ["model.keras", "saved_model", "float.tflite"])
def test_convert_tensorflow_models_then_compile_bit_exact(keras_files, source, tmp_path):
    from engine.model_harness import assert_engine_matches_tflm

    from tinyml.data import load_calibration
    from tinyml.tf_convert import convert_model
    from tinyml.tflite_graph import load_tflite

    result = convert_model(keras_files / source, load_calibration(str(keras_files / "calib.npz")),
                           tmp_path / "int8.tflite")
    graph = load_tflite(result.path)
    assert graph.tensors[graph.inputs[0]].dtype == np.int8 and graph.tensors[graph.outputs[0]].dtype == np.int8
    assert "SHAPE" in result.ops and "DEQUANTIZE" not in result.ops
    assert result.input_shape == (1, 8, 8, 1) and result.output_shape == (1, 10)
    assert 0 < result.input_scale < 0.01  # calibrated on [0, 1): 1/255-ish
    engine = assert_engine_matches_tflm(result.path, count=8)
    assert [layer["op"] for layer in engine.compile_info["layers"]] == [
        "CONV_2D", "RESHAPE", "FULLY_CONNECTED", "FULLY_CONNECTED"]


def test_cli_converts_a_keras_file_and_compiles_it(keras_files, tmp_path):
    converted = tinyml("convert", keras_files / "model.keras", "--calibration", keras_files / "calib.npz",
                       "--out", tmp_path / "m.tflite")
    assert converted.returncode == 0, converted.stderr
    assert "error" not in converted.stderr and "SHAPE" in converted.stdout
    assert converted.stderr.startswith("[convert] keras model model.keras: full-int8 quantization calibrated on 40")
    compiled = tinyml("compile", tmp_path / "m.tflite", "--out", tmp_path / "c", "--target", "cortex-m4")
    assert compiled.returncode == 0, compiled.stderr
    assert "compiled 4 layers for cortex-m4" in compiled.stdout


def test_compile_help_lists_ops_and_options_from_the_compiler():
    from tinyml.compiler import supported_ops
    from tinyml.compiler.fold import foldable_ops

    result = tinyml("compile", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for op in supported_ops() + foldable_ops():
        assert op in text
    assert "RELU6" in text and "cortex-m7" in text and "shape arithmetic" in text


def test_float_model_is_reported_before_its_ops(keras_files, tmp_path):
    from tinyml.compiler import compile_tflite
    from tinyml.tflite_graph import load_tflite

    assert "SHAPE" in load_tflite(keras_files / "float.tflite").ops
    with pytest.raises(TinymlError, match="^float model"):
        compile_tflite(keras_files / "float.tflite", tmp_path / "out")
    result = tinyml("compile", keras_files / "float.tflite", "--out", tmp_path / "out")
    assert result.returncode != 0 and result.stderr.startswith("error: float model")
    assert result.stderr.count("\n") == 1 and not (tmp_path / "out").exists()


@pytest.mark.parametrize("make, message", [
    (lambda d, t: t / "missing.keras", "no such model file"),
    (lambda d, t: (t / "empty").mkdir() or t / "empty", "not a SavedModel"),
    (lambda d, t: d / "calib.npz", "unknown model format"),
    (lambda d, t: t / "int8.tflite", "already quantized"),
])
def test_convert_refuses_bad_models_in_one_line(keras_files, tmp_path, make, message):
    if message == "already quantized":
        from tinyml.data import load_calibration
        from tinyml.tf_convert import convert_model

        convert_model(keras_files / "float.tflite", load_calibration(str(keras_files / "calib.npz")),
                      tmp_path / "int8.tflite")
    result = tinyml("convert", make(keras_files, tmp_path), "--calibration", keras_files / "calib.npz",
                    "--out", tmp_path / "out.tflite")
    assert_bad_input(result, message)
    assert not (tmp_path / "out.tflite").exists()


def test_convert_refuses_calibration_of_another_shape(keras_files, tmp_path):
    from tinyml.tf_convert import convert_model

    with pytest.raises(TinymlError, match=r"calibration data has shape \(5, 4, 4, 1\); the model takes"):
        convert_model(keras_files / "model.keras", np.zeros((5, 4, 4, 1), np.float32), tmp_path / "x.tflite")
    assert not (tmp_path / "x.tflite").exists()
