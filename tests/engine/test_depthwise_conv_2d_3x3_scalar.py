"""DEPTHWISE_CONV_2D 3x3 on cores without SIMD (tm_depthwise_conv_2d_3x3_scalar.c: one channel at a
time over a zero-point-padded int32 plane): random shapes that take the path, compiled for rv32
and cortex-m0 and run on the host (which builds without the DSP extension, as those cores do),
byte for byte against tflite-micro. The Cortex-M0 itself: tests/test_compiler_qemu.py."""

from __future__ import annotations

import numpy as np
import pytest

from tinyml.compiler.ops_conv import depthwise_scalar3_scratch_bytes

from .model_harness import assert_engine_matches_tflm, convert_keras, scale_channels

CASES = 12
# TM_REQUANT_MUL16 builds armv6-m's requantization on the host: there the plane's channels take the
# three-product split of tm_depthwise_conv_2d_3x3_scalar.h (in C; the Cortex-M0 runs it in Thumb-1).
TARGETS = (("rv32", ()), ("cortex-m0", ()), ("cortex-m0", ("TM_REQUANT_MUL16",)))


def _case(seed: int) -> dict:
    rng = np.random.default_rng(5000 + seed)
    h, w = int(rng.integers(3, 14)), int(rng.integers(3, 14))
    low = float(rng.uniform(-2.0, 0.5))
    return dict(shape=(h, w, int(rng.integers(1, 10))), strides=(int(rng.integers(1, 4)), int(rng.integers(1, 4))),
                multiplier=int(rng.choice([1, 1, 2, 3])),
                padding=str(rng.choice(["same", "valid"])), activation=[None, "relu", "relu6"][seed % 3],
                use_bias=bool(seed % 4), low=low, high=low + float(rng.uniform(0.2, 3.0)), seed=seed)


def _model(case: dict):
    import tensorflow as tf

    inp = tf.keras.Input(case["shape"], batch_size=1)
    if case.get("conv"):  # one input channel: lowered to a depthwise layer with multiplier `filters`
        layer = tf.keras.layers.Conv2D(case["filters"], 3, strides=case["strides"], padding=case["padding"],
                                       activation=case["activation"], use_bias=case["use_bias"])
    else:
        layer = tf.keras.layers.DepthwiseConv2D(3, strides=case["strides"], padding=case["padding"],
                                                depth_multiplier=case["multiplier"], activation=case["activation"],
                                                use_bias=case["use_bias"])
    out = layer(inp)
    scale_channels(layer, np.random.default_rng(case["seed"]))
    return tf.keras.Model(inp, out)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(CASES))
def test_depthwise_3x3_scalar_matches_tflm(seed):
    case = _case(seed)
    path = convert_keras(lambda: _model(case), case["shape"], seed=seed, low=case["low"], high=case["high"],
                         key=f"dw3s_{seed}")
    taken: set[str] = set()
    for target, defines in TARGETS:
        engine = assert_engine_matches_tflm(path, count=6, seed=seed, target=target, defines=defines)
        layer = engine.compile_info["layers"][0]
        if (layer["fallback"] or "").startswith("folded requantization"):
            continue  # a channel's shift outside the records' range: the generic C, said so
        assert layer["path"] == "3x3 scalar plane", (target, case, layer)
        taken.add(target)
    # seed 8 (stride 3, ReLU6) has a channel whose shift the records cannot hold: reported, generic C
    assert taken or seed == 8, "the path never ran"


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_one_channel_conv_runs_on_the_plane(seed):
    """A 3x3 CONV_2D on one input channel (the digits model's first layer) for rv32 / cortex-m0:
    the same sums as a depthwise layer with multiplier output_c, on the plane."""
    case = _case(100 + seed)
    case.update(shape=(case["shape"][0], case["shape"][1], 1), filters=int(3 + 5 * seed), conv=True,
                activation=[None, "relu"][seed % 2])
    path = convert_keras(lambda: _model(case), case["shape"], seed=seed, low=case["low"], high=case["high"],
                         key=f"dw3s_conv_{seed}")
    for target, defines in TARGETS:
        engine = assert_engine_matches_tflm(path, count=6, seed=seed, target=target, defines=defines)
        layer = engine.compile_info["layers"][0]
        assert layer["op"] == "CONV_2D" and layer["path"] == "3x3 scalar plane", (target, case, layer)


def test_scalar3_scratch_rules():
    """The path's shape rules (tm_depthwise_conv_2d_3x3_scalar.h): 3x3, dilation 1, a plane of at most 4 KB."""
    assert depthwise_scalar3_scratch_bytes(3, 3, 1, 1, 8, 8, 1, 1) == 4 * 10 * 10
    assert depthwise_scalar3_scratch_bytes(3, 3, 1, 1, 4, 4, 2, 2) == 4 * 9 * 9
    assert depthwise_scalar3_scratch_bytes(3, 3, 1, 1, 30, 30, 1, 1) == 4 * 32 * 32
    assert depthwise_scalar3_scratch_bytes(3, 3, 1, 1, 31, 30, 1, 1) == 0   # plane over 4 KB
    assert depthwise_scalar3_scratch_bytes(3, 3, 2, 1, 8, 8, 1, 1) == 0     # dilation
    assert depthwise_scalar3_scratch_bytes(5, 5, 1, 1, 8, 8, 1, 1) == 0     # not 3x3


def _plane_between_layers():
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input((9, 7, 1), batch_size=1)
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = layers.Conv2D(8, 1)(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2)(x)
    return tf.keras.Model(inp, layers.Conv2D(8, 1)(x))


def test_plane_output_never_overlaps_its_input():
    """The plane writes every pixel of one channel before it gathers the next input channel, so
    its output must not be planned over its dying input (the lagged overlap raster-order kernels
    allow): with it, this model's third layer overwrote input rows it still had to read."""
    path = convert_keras(_plane_between_layers, (9, 7, 1), seed=13, low=-1.0, high=1.5, key="dw3s_between")
    for target in ("rv32", "cortex-m0"):
        engine = assert_engine_matches_tflm(path, count=4, seed=2, target=target)
        assert engine.compile_info["layers"][2]["path"] == "3x3 scalar plane", target
