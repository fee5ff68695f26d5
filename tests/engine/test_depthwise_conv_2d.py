"""DEPTHWISE_CONV_2D: random shapes, depth multipliers, strides, dilations,
paddings, per-channel scales and activations, byte-exact against tflite-micro
(generic C, and the DSP paths in C emulation), plus targeted shapes for the DSP
paths: the per-pixel path (4 channels per word, interior/border pixels, 1..3
tail channels, windows that never fit inside the image, dilations at the
borders) and the 3x3 channel-planar ring (any channel count and depth
multiplier, stride 1 or 2 columns, any row stride, all-padding rows)."""

from __future__ import annotations

import numpy as np
import pytest

from .model_harness import assert_engine_matches_tflm, convert_keras, scale_channels

CASES = 10


def _case(seed: int) -> dict:
    rng = np.random.default_rng(2000 + seed)
    kernel = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    dilated = rng.random() < 0.3
    strides = (1, 1) if dilated else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    dilation = (int(rng.integers(1, 4)), int(rng.integers(1, 3))) if dilated else (1, 1)
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    h = int(rng.integers(max(eff[0], 2), max(eff[0], 2) + 10))
    w = int(rng.integers(max(eff[1], 2), max(eff[1], 2) + 10))
    low = float(rng.uniform(-2.0, 0.5))
    return dict(shape=(h, w, int(rng.integers(1, 9))), multiplier=int(rng.choice([1, 1, 2, 3])), kernel=kernel,
                strides=strides, dilation=dilation, padding=str(rng.choice(["same", "valid"])),
                activation=rng.choice([None, "relu", "relu6"]), use_bias=bool(rng.random() < 0.8),
                low=low, high=low + float(rng.uniform(0.2, 3.0)), seed=seed)


def _model(case: dict):
    import tensorflow as tf

    inp = tf.keras.Input(case["shape"], batch_size=1)
    layer = tf.keras.layers.DepthwiseConv2D(
        case["kernel"], strides=case["strides"], padding=case["padding"], depth_multiplier=case["multiplier"],
        dilation_rate=case["dilation"], activation=case["activation"], use_bias=case["use_bias"],
    )
    out = layer(inp)
    scale_channels(layer, np.random.default_rng(case["seed"]))
    return tf.keras.Model(inp, out)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(CASES))
def test_depthwise_conv_2d_matches_tflm(seed):
    case = _case(seed)
    path = convert_keras(lambda: _model(case), case["shape"], seed=seed, low=case["low"], high=case["high"],
                         key=f"dw_{seed}")
    engine = assert_engine_matches_tflm(path, count=8, seed=seed)
    assert [layer["op"] for layer in engine.compile_info["layers"]] == ["DEPTHWISE_CONV_2D"], case
    assert_engine_matches_tflm(path, count=8, seed=seed, target="cortex-m4", defines=["TM_DSP_EMULATE"])
    # No DSP (RV32IMC, Cortex-M0): the folded-bias scalar path, as the host builds it.
    assert_engine_matches_tflm(path, count=8, seed=seed, target="rv32")


# (input shape, kernel, strides, dilation, padding, depth multiplier); even indexes run without
# activation, odd ones with relu (both the full int8 range)
TARGETED = [
    ((6, 7, 4), (3, 3), (1, 1), (1, 1), "same", 1),    # ring: 4 channels
    ((5, 5, 7), (3, 3), (1, 1), (1, 1), "same", 1),    # ring: 7 channels (a word and 3 single ones)
    ((5, 6, 9), (3, 3), (2, 2), (1, 1), "same", 1),    # ring: stride 2, 9 channels
    ((4, 4, 6), (5, 5), (1, 1), (1, 1), "same", 1),    # per pixel: window larger than the image, 4 + 2 tail
    ((9, 8, 5), (3, 2), (1, 1), (2, 3), "same", 1),    # per pixel: dilation at the borders
    ((7, 7, 12), (3, 3), (1, 2), (1, 1), "valid", 1),  # ring: no padding, stride 2 columns
    ((5, 5, 3), (3, 3), (1, 1), (1, 1), "same", 2),    # ring: depth multiplier 2
    ((9, 7, 16), (3, 3), (2, 2), (1, 1), "same", 1),   # ring: stride 2, odd sizes
    ((2, 3, 8), (3, 3), (1, 1), (1, 1), "same", 1),    # ring: no window inside the image
    ((8, 8, 8), (3, 3), (1, 1), (1, 1), "same", 1),    # ring: the tiny model's layer
    ((1, 1, 4), (3, 3), (1, 1), (1, 1), "same", 1),    # ring: one pixel, all padding
    ((5, 9, 20), (3, 3), (2, 1), (1, 1), "same", 1),   # ring: stride 2 rows
    ((6, 5, 4), (3, 3), (1, 2), (1, 1), "valid", 1),   # ring: stride 2 columns, no padding
    ((3, 10, 12), (3, 3), (3, 1), (1, 1), "same", 1),  # ring: stride 3 rows skip rows of the ring
    ((6, 7, 3), (3, 3), (1, 1), (1, 1), "same", 2),    # ring: depth multiplier 2, 3 channels
    ((7, 5, 1), (3, 3), (2, 1), (1, 1), "same", 5),    # ring: one channel, multiplier 5
    ((4, 9, 5), (3, 3), (1, 2), (1, 1), "valid", 3),   # ring: stride 2 columns, multiplier 3
    ((3, 10, 12), (3, 3), (1, 3), (1, 1), "same", 1),  # per pixel: stride 3 columns
]


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(TARGETED)))
def test_depthwise_dsp_path_shapes(index):
    shape, kernel, strides, dilation, padding, multiplier = TARGETED[index]
    case = dict(shape=shape, multiplier=multiplier, kernel=kernel, strides=strides, dilation=dilation,
                padding=padding, activation="relu" if index % 2 else None, use_bias=index != 3,
                low=-0.7, high=1.3, seed=50 + index)
    path = convert_keras(lambda: _model(case), shape, seed=50 + index, low=-0.7, high=1.3, key=f"dw_dsp_{index}")
    engine = assert_engine_matches_tflm(path, count=6, seed=index, target="cortex-m4", defines=["TM_DSP_EMULATE"])
    source = (engine.out_dir / "model.c").read_text()
    assert ("l0_bias_folded" in source) == (multiplier == 1 and "l0_requant" in source)
    # None / relu: the full int8 activation range, so 3x3 windows with stride_w <= 2 take the ring
    assert ("l0_packed" in source) == (kernel == (3, 3) and dilation == (1, 1) and strides[1] <= 2), case
    assert_engine_matches_tflm(path, count=6, seed=index)
