"""Small Keras models the tests and the benchmarks compile (TensorFlow imported on call)."""

from __future__ import annotations

from typing import Any

import numpy as np


def tiny_keras_model() -> Any:
    """The 8x8x1 -> 10 CNN of the tests (conv, depthwise, 1x1, mean, dense; 17,568 MACs)."""
    import tensorflow as tf

    inp = tf.keras.Input((8, 8, 1), batch_size=1)
    x = tf.keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = tf.keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = tf.keras.layers.Conv2D(16, 1, activation="relu")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    x = tf.keras.layers.Dense(10)(x)
    return tf.keras.Model(inp, x)


def keras_to_tflite(model: Any, int8: bool) -> bytes:
    """The .tflite of a Keras model on 8x8x1 inputs: full int8 (32 random calibration
    samples, seed 0, through tinyml.tf_convert.keras_to_int8) or float."""
    import tensorflow as tf

    if int8:
        from tinyml.tf_convert import keras_to_int8

        rng = np.random.default_rng(0)
        return keras_to_int8(model, [[rng.random((1, 8, 8, 1), dtype=np.float32)] for _ in range(32)])
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def small_int8_model() -> bytes:
    """conv 3x3 -> depthwise 3x3 stride 2 -> flatten -> dense (3,520 MACs), full int8:
    ops the engine compiles for every target (the rv32, Xtensa and board tests and benches)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((8, 8, 1), batch_size=1)
    x = tf.keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = tf.keras.layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu")(x)
    x = tf.keras.layers.Flatten()(x)
    x = tf.keras.layers.Dense(10)(x)
    return keras_to_tflite(tf.keras.Model(inp, x), int8=True)
