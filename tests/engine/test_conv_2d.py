"""CONV_2D: one-op Keras models with random shapes, strides, paddings, dilations,
groups, per-channel scales and fused activations, compiled with tinyml and
compared byte for byte with tflite-micro (generic C, the DSP path in C emulation and the
no-SIMD scalar path of rv32/cortex-m0)."""

from __future__ import annotations

import numpy as np
import pytest

from .model_harness import assert_engine_matches_tflm, convert_keras, scale_channels

CASES = 12


def _case(seed: int) -> dict:
    rng = np.random.default_rng(1000 + seed)
    kernel = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    dilated = rng.random() < 0.3
    strides = (1, 1) if dilated else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    dilation = (int(rng.integers(1, 4)), int(rng.integers(1, 3))) if dilated else (1, 1)
    padding = str(rng.choice(["same", "valid"]))
    groups = int(rng.choice([1, 1, 1, 2]))
    in_c = int(rng.integers(1, 9)) * groups
    out_c = int(rng.integers(1, 7)) * groups
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    h = int(rng.integers(max(eff[0], 2), max(eff[0], 2) + 10))
    w = int(rng.integers(max(eff[1], 2), max(eff[1], 2) + 10))
    low = float(rng.uniform(-2.0, 0.5))
    high = low + float(rng.uniform(0.2, 3.0))
    return dict(shape=(h, w, in_c), filters=out_c, kernel=kernel, strides=strides, dilation=dilation,
                padding=padding, groups=groups, activation=rng.choice([None, "relu", "relu6"]),
                use_bias=bool(rng.random() < 0.8), low=low, high=high, seed=seed)


def _model(case: dict):
    import tensorflow as tf

    inp = tf.keras.Input(case["shape"], batch_size=1)
    layer = tf.keras.layers.Conv2D(
        case["filters"], case["kernel"], strides=case["strides"], padding=case["padding"],
        dilation_rate=case["dilation"], groups=case["groups"], activation=case["activation"],
        use_bias=case["use_bias"],
    )
    out = layer(inp)
    scale_channels(layer, np.random.default_rng(case["seed"]))
    return tf.keras.Model(inp, out)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(CASES))
def test_conv_2d_matches_tflm(seed):
    case = _case(seed)
    path = convert_keras(lambda: _model(case), case["shape"], seed=seed, low=case["low"], high=case["high"],
                         key=f"conv_{seed}")
    engine = assert_engine_matches_tflm(path, count=8, seed=seed)
    layers = engine.compile_info["layers"]
    assert [layer["op"] for layer in layers] == ["CONV_2D"], case
    assert_engine_matches_tflm(path, count=8, seed=seed, target="cortex-m4", defines=["TM_DSP_EMULATE"])
    # No DSP (RV32IMC, Cortex-M0): the folded-bias scalar path, as the host builds it.
    assert_engine_matches_tflm(path, count=8, seed=seed, target="rv32")


# Few input channels (the im2col row copies), 1x1 with odd depths, strides and dilation.
# (input shape, filters, kernel, strides, dilation, padding)
FEW_CHANNELS = [
    ((8, 8, 1), 8, (3, 3), (1, 1), (1, 1), "same"),
    ((7, 9, 2), 5, (3, 3), (2, 1), (1, 1), "same"),
    ((9, 7, 3), 6, (3, 3), (2, 2), (1, 1), "same"),
    ((10, 6, 1), 4, (5, 3), (1, 1), (2, 1), "same"),
    ((6, 6, 7), 9, (1, 1), (1, 1), (1, 1), "valid"),
    ((5, 11, 3), 3, (2, 4), (1, 3), (1, 1), "valid"),
]


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(FEW_CHANNELS)))
def test_conv_2d_few_input_channels(index):
    shape, filters, kernel, strides, dilation, padding = FEW_CHANNELS[index]
    case = dict(shape=shape, filters=filters, kernel=kernel, strides=strides, dilation=dilation, padding=padding,
                groups=1, activation="relu6" if index % 2 else None, use_bias=True, low=-1.0, high=1.5,
                seed=70 + index)
    path = convert_keras(lambda: _model(case), shape, seed=70 + index, low=-1.0, high=1.5, key=f"conv_few_{index}")
    assert_engine_matches_tflm(path, count=6, seed=index, target="cortex-m4", defines=["TM_DSP_EMULATE"])
    assert_engine_matches_tflm(path, count=6, seed=index)


# The widened-patch path (filter16, kp <= 1024, <= 16 filter rows): patch rows padded to words and
# widened once, the KP = 4/8 register kernels (one output row at a time; full int8 activation
# range) and the 2 x 2 int16 block (any kp, clamped to a narrower activation range),
# the zero-point ring of padded input rows, 1x1 read in place, odd channel counts. A 3x3 filter
# on one input channel (full int8 activation range, stride_w <= 2) is a depthwise layer instead.
# (input shape, filters, kernel, strides, padding, expected path: "row", "block", "depthwise" or None)
SHORT_PATCH = [
    ((8, 8, 1), 8, (3, 3), (1, 1), "same", "depthwise"),  # the tiny model's first layer: multiplier 8
    ((8, 8, 8), 16, (1, 1), (1, 1), "valid", "row"),   # 1x1, k = 8, read in place
    ((7, 5, 4), 7, (1, 1), (2, 1), "valid", "row"),    # 1x1, k = 4, stride, odd channels
    ((6, 9, 3), 5, (1, 1), (1, 1), "valid", "row"),    # 1x1, k = 3: padded to 4, through the ring
    ((9, 7, 2), 6, (3, 2), (2, 2), "same", "block"),   # rows of 4 bytes, kp 12, stride 2
    ((5, 6, 1), 3, (2, 2), (1, 2), "same", "row"),     # kp 8 from two rows
    ((7, 8, 3), 9, (3, 3), (1, 1), "same", "block"),   # kp 36, odd channels
    ((6, 6, 4), 4, (2, 2), (1, 1), "valid", "block"),  # kp 16
    ((5, 7, 5), 6, (2, 3), (2, 1), "same", "block"),   # rows of 16 bytes, kp 32
    ((4, 4, 2), 2, (5, 5), (1, 1), "same", "block"),   # kp 40, 5 rows
    ((1, 1, 3), 4, (3, 3), (1, 1), "same", "block"),   # one pixel, all padding around it
    ((8, 8, 1), 8, (3, 3), (1, 3), "same", "block"),   # one channel, stride 3 columns: kp 12
    ((20, 3, 1), 3, (17, 1), (1, 1), "same", None),    # 17 filter rows: the im2col path
]


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(SHORT_PATCH)))
def test_conv_2d_short_patch_path(index):
    shape, filters, kernel, strides, padding, expected = SHORT_PATCH[index]
    case = dict(shape=shape, filters=filters, kernel=kernel, strides=strides, dilation=(1, 1), padding=padding,
                groups=1, activation=[None, "relu", "relu6"][index % 3], use_bias=index != 4, low=-1.2, high=0.9,
                seed=90 + index)
    path = convert_keras(lambda: _model(case), shape, seed=90 + index, low=-1.2, high=0.9, key=f"conv_short_{index}")
    engine = assert_engine_matches_tflm(path, count=6, seed=index, target="cortex-m4", defines=["TM_DSP_EMULATE"])
    source = (engine.out_dir / "model.c").read_text()
    assert ("l0_filter16" in source) == (expected in ("row", "block")), case
    assert ("tm_depthwise_conv_2d_s8(&l0_params" in source) == (expected == "depthwise"), case
    assert_engine_matches_tflm(path, count=6, seed=index)
