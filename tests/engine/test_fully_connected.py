"""FULLY_CONNECTED: random depths, batches (keep_num_dims), activations, with and
without bias, per-tensor weights (the converter's default) and per-channel
weights, byte-exact against tflite-micro (generic C and DSP path in C emulation)."""

from __future__ import annotations

import numpy as np
import pytest

from .model_harness import assert_engine_matches_tflm, convert_keras, scale_channels
from tinyml.tflite_graph import load_tflite

CASES = 8


def _case(seed: int) -> dict:
    rng = np.random.default_rng(3000 + seed)
    rows = int(rng.choice([1, 1, 2, 3]))
    low = float(rng.uniform(-2.0, 0.5))
    return dict(shape=(rows, int(rng.integers(1, 40))) if rows > 1 else (int(rng.integers(1, 40)),),
                units=int(rng.integers(1, 20)), activation=rng.choice([None, "relu", "relu6"]),
                use_bias=bool(rng.random() < 0.8), per_channel=bool(seed % 2),
                low=low, high=low + float(rng.uniform(0.2, 3.0)), seed=seed)


def _model(case: dict):
    import tensorflow as tf

    inp = tf.keras.Input(case["shape"], batch_size=1)
    layer = tf.keras.layers.Dense(case["units"], activation=case["activation"], use_bias=case["use_bias"])
    out = layer(inp)
    scale_channels(layer, np.random.default_rng(case["seed"]))
    return tf.keras.Model(inp, out)


def _convert(case: dict, seed: int):
    import tensorflow as tf

    if not case["per_channel"]:
        return convert_keras(lambda: _model(case), case["shape"], seed=seed, low=case["low"], high=case["high"],
                             key=f"fc_{seed}")
    # Per-channel dense weights: the converter's switch for it.
    original = tf.lite.TFLiteConverter.from_keras_model

    def per_channel_converter(model):
        converter = original(model)
        converter._experimental_disable_per_channel_quantization_for_dense_layers = False
        return converter

    tf.lite.TFLiteConverter.from_keras_model = per_channel_converter
    try:
        return convert_keras(lambda: _model(case), case["shape"], seed=seed, low=case["low"], high=case["high"],
                             key=f"fc_{seed}")
    finally:
        tf.lite.TFLiteConverter.from_keras_model = original


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(CASES))
def test_fully_connected_matches_tflm(seed):
    case = _case(seed)
    path = _convert(case, seed)
    graph = load_tflite(path)
    fc = [op for op in graph.operators if op.opcode == "FULLY_CONNECTED"]
    assert len(fc) == 1
    scales = graph.tensors[fc[0].inputs[1]].scale.size
    engine = assert_engine_matches_tflm(path, count=8, seed=seed)
    assert "FULLY_CONNECTED" in [layer["op"] for layer in engine.compile_info["layers"]]
    assert_engine_matches_tflm(path, count=8, seed=seed, target="cortex-m4", defines=["TM_DSP_EMULATE"])
    # No DSP (RV32IMC, Cortex-M0): the folded-bias scalar path, as the host builds it.
    assert_engine_matches_tflm(path, count=8, seed=seed, target="rv32")
    if case["per_channel"]:
        assert scales == case["units"] or case["units"] == 1
