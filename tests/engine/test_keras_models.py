"""Keras models as users write them (dynamic batch): Flatten becomes SHAPE ->
STRIDED_SLICE -> PACK -> RESHAPE in the .tflite; the compiler folds that shape
arithmetic and the compiled C stays bit-exact with tflite-micro."""

from __future__ import annotations

import numpy as np
import pytest

from .model_harness import assert_engine_matches_tflm, convert_keras


def _flatten_cnn():
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input((8, 8, 1))  # batch None, as Keras models are usually built
    x = layers.Conv2D(6, 3, activation="relu")(inp)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    return tf.keras.Model(inp, layers.Dense(10)(x))


def _flatten_reshape_flatten():
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input((6, 6, 2))
    x = layers.Flatten()(inp)
    x = layers.Dense(12, activation="relu")(x)
    x = layers.Reshape((3, 4))(x)
    x = layers.Flatten()(x)
    return tf.keras.Model(inp, layers.Dense(3)(x))


def _dense_on_3d():
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input((6, 6, 2))
    x = layers.Reshape((-1, 4))(inp)
    x = layers.Dense(5, activation="relu")(x)  # the converter sizes this one at run time
    x = layers.Flatten()(x)
    return tf.keras.Model(inp, layers.Dense(3)(x))


@pytest.mark.parametrize("build, shape", [(_flatten_cnn, (8, 8, 1)), (_flatten_reshape_flatten, (6, 6, 2))],
                         ids=["flatten_cnn", "flatten_reshape_flatten"])
@pytest.mark.parametrize("target", ["generic", "cortex-m4"])
def test_keras_flatten_model_is_bit_exact(build, shape, target):
    from tinyml.compiler import compile_tflite
    from tinyml.tflite_graph import load_tflite

    model = convert_keras(build, shape, key=f"keras_{build.__name__}")
    ops = load_tflite(model).ops
    assert "SHAPE" in ops and "RESHAPE" in ops, ops  # the dynamic-batch pattern is really there
    # A cortex-m4 model.c holds only the DSP layouts of its widened layers: it builds with the DSP path.
    defines = ["TM_DSP_EMULATE"] if target == "cortex-m4" else []
    engine = assert_engine_matches_tflm(model, count=8, target=target, defines=defines)
    lowered = [layer["op"] for layer in engine.compile_info["layers"]]
    assert not {"SHAPE", "STRIDED_SLICE", "PACK"} & set(lowered), lowered


def test_folded_reshape_is_an_alias(tmp_path):
    from tinyml.compiler import compile_tflite

    model = convert_keras(_flatten_cnn, (8, 8, 1), key="keras__flatten_cnn")
    result = compile_tflite(model, tmp_path / "out")
    ops = [layer.op for layer in result.layers]
    assert ops == ["CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "FULLY_CONNECTED"]
    # the RESHAPE keeps the operator index of the .tflite (errors name it), after the three folded ops
    assert result.layers[2].operator == 5
    assert np.prod(result.layers[2].output_shape) == 3 * 3 * 6


def test_run_time_shapes_are_refused_with_the_way_out(tmp_path):
    from tinyml.compiler import compile_tflite
    from tinyml.errors import TinymlError

    model = convert_keras(_dense_on_3d, (6, 6, 2), key="keras__dense_on_3d")
    with pytest.raises(TinymlError, match=r"^RESHAPE at operator \d+: the model sizes tensors at run time .*"
                                          r"batch_size=1\)\)$"):
        compile_tflite(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()
