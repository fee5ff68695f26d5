"""Shared fixtures: small models built once per test session."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tinyml.testing.keras_models import keras_to_tflite, tiny_keras_model

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Emulators kept running by `tinyml flash` are recorded under TINYML_STATE_DIR, keyed by board: each
# test process (pytest-xdist runs several) gets its own, so parallel workers never meet each other's
# records, and the user's own ~/.cache/tinyml is never touched by the tests.
if "TINYML_STATE_DIR" not in os.environ:
    _state_dir = tempfile.mkdtemp(prefix="tinyml-test-state-")
    os.environ["TINYML_STATE_DIR"] = _state_dir
    atexit.register(shutil.rmtree, _state_dir, True)


# The models live in tinyml.testing.keras_models (the benchmarks build them too).
_tiny_keras_model = tiny_keras_model


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
