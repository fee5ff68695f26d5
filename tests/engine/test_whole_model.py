"""Whole models through tinyml compile, byte-exact against tflite-micro: the
shared tiny CNN, a MobileNet-style CNN with a residual ADD, and a model that
uses every op the engine has (float I/O, so QUANTIZE/DEQUANTIZE bracket it)."""

from __future__ import annotations

import numpy as np
import pytest

from .model_harness import assert_engine_matches_tflm, convert_keras, scale_channels, tflm_outputs


def _mobilenet_like():
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input((16, 16, 3), batch_size=1)
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(inp)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = layers.Conv2D(12, 1, activation="relu6")(x)
    y = layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    y = layers.Conv2D(12, 1)(y)
    x = layers.Add()([x, y])
    x = layers.DepthwiseConv2D(3, strides=2, padding="valid", activation="relu")(x)
    x = layers.Conv2D(16, 1, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(10)(x)
    return tf.keras.Model(inp, layers.Softmax()(x))


def _every_op():
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input((12, 12, 2), batch_size=1)
    x = layers.ZeroPadding2D(((1, 0), (2, 1)))(inp)                       # PAD
    x = layers.Conv2D(6, 3, activation="relu")(x)                          # CONV_2D
    a = layers.MaxPooling2D(2, padding="same")(x)                          # MAX_POOL_2D
    b = layers.AveragePooling2D(2, padding="same")(x)                      # AVERAGE_POOL_2D
    c = layers.Concatenate()([a, b])                                       # CONCATENATION
    d = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(c)   # DEPTHWISE_CONV_2D
    e = layers.Conv2D(24, 1)(c)
    x = layers.Add()([d, e])                                               # ADD
    m = layers.GlobalAveragePooling2D()(x)                                 # MEAN
    f = layers.Flatten()(layers.AveragePooling2D(3)(x))                    # RESHAPE
    x = layers.Concatenate()([m, f])
    x = layers.Dense(16, activation="relu")(x)                             # FULLY_CONNECTED
    x = layers.Dense(5)(x)
    return tf.keras.Model(inp, layers.Softmax()(x))                        # SOFTMAX


def _convert_float_io(build, shape, seed):
    """Full-int8 body with float32 input and output (QUANTIZE ... DEQUANTIZE)."""
    import tensorflow as tf

    from . import model_harness

    # convert_keras asks for int8 I/O; this conversion leaves the I/O float.
    tf.keras.utils.set_random_seed(seed)
    model = build()
    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(24):
            yield [rng.uniform(0, 1, size=(1, *shape)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    path = model_harness.work_dir() / f"float_io_{seed}.tflite"
    path.write_bytes(converter.convert())
    return path


@pytest.mark.slow
def test_tiny_cnn(tiny_models):
    engine = assert_engine_matches_tflm(tiny_models["int8"], count=16)
    ops = [layer["op"] for layer in engine.compile_info["layers"]]
    assert ops == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED"]
    assert_engine_matches_tflm(tiny_models["int8"], count=16, target="cortex-m4", defines=["TM_DSP_EMULATE"])


@pytest.mark.slow
def test_mobilenet_like():
    path = convert_keras(_mobilenet_like, (16, 16, 3), seed=3, low=0.0, high=1.0, key="mobilenet_like")
    engine = assert_engine_matches_tflm(path, count=8)
    ops = {layer["op"] for layer in engine.compile_info["layers"]}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "SOFTMAX"} <= ops
    assert_engine_matches_tflm(path, count=8, target="cortex-m4", defines=["TM_DSP_EMULATE"])


@pytest.mark.slow
def test_every_op_float_io():
    path = _convert_float_io(_every_op, (12, 12, 2), seed=5)
    engine = assert_engine_matches_tflm(path, count=8)
    ops = {layer["op"] for layer in engine.compile_info["layers"]}
    expected = {"QUANTIZE", "PAD", "CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D", "CONCATENATION",
                "DEPTHWISE_CONV_2D", "ADD", "MEAN", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX", "DEQUANTIZE"}
    assert expected <= ops, expected - ops
    assert engine.input_dtype == np.float32 and engine.output_dtype == np.float32
    x = np.random.default_rng(1).uniform(0, 1, size=(3, *engine.input_shape)).astype(np.float32)
    ours = engine.run(x)
    assert np.array_equal(ours, tflm_outputs(path, x).reshape(ours.shape))
