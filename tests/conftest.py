"""Shared fixtures: small models built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _tiny_keras_model():
    import tensorflow as tf

    inp = tf.keras.Input((8, 8, 1), batch_size=1)
    x = tf.keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = tf.keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = tf.keras.layers.Conv2D(16, 1, activation="relu")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    x = tf.keras.layers.Dense(10)(x)
    return tf.keras.Model(inp, x)


def keras_to_tflite(model, int8: bool) -> bytes:
    """The .tflite of a Keras model on 8x8x1 inputs: full int8 (random calibration) or float."""
    import tensorflow as tf

    if int8:
        from tinyml.tf_convert import keras_to_int8

        rng = np.random.default_rng(0)
        return keras_to_int8(model, [[rng.random((1, 8, 8, 1), dtype=np.float32)] for _ in range(32)])
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """An int8 and a float .tflite of the same 8x8x1 -> 10 CNN (conv, depthwise, 1x1, mean, dense)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    model = _tiny_keras_model()
    directory = tmp_path_factory.mktemp("tiny_models")
    paths = {}
    for name, int8 in (("int8", True), ("float", False)):
        paths[name] = directory / f"tiny_{name}.tflite"
        paths[name].write_bytes(keras_to_tflite(model, int8))
    return paths
