"""CONV_2D with few input channels (tm_conv_2d_rgb.c: one unpadded widened patch over a column
band): random shapes that take the path, compiled for cortex-m4 and run in DSP emulation on the
host, byte for byte against tflite-micro (the Cortex-M4 itself: tests/test_compiler_qemu.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tinyml.compiler.ops_conv import conv_rgb_scratch_bytes

from .model_harness import assert_engine_matches_tflm, convert_keras, scale_channels

CASES = 16


def _case(seed: int) -> dict:
    """1..4 input channels and a filter row of k_w * c taps that is not a multiple of 4."""
    rng = np.random.default_rng(4000 + seed)
    while True:
        in_c = int(rng.integers(1, 5))
        kernel = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        if (kernel[1] * in_c) % 4 and not (in_c == 1 and kernel == (3, 3)):  # 1-channel 3x3: the depthwise ring
            break
    strides = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    padding = str(rng.choice(["same", "valid"]))
    h = int(rng.integers(kernel[0], kernel[0] + 9))
    w = int(rng.integers(kernel[1], kernel[1] + 12))
    low = float(rng.uniform(-2.0, 0.5))
    return dict(shape=(h, w, in_c), filters=int(rng.integers(1, 10)), kernel=kernel, strides=strides,
                padding=padding, activation=[None, "relu", "relu6"][seed % 3], use_bias=bool(seed % 5),
                low=low, high=low + float(rng.uniform(0.2, 3.0)), seed=seed, dead=seed % 4 == 3)


def _model(case: dict):
    import tensorflow as tf

    inp = tf.keras.Input(case["shape"], batch_size=1)
    layer = tf.keras.layers.Conv2D(case["filters"], case["kernel"], strides=case["strides"],
                                   padding=case["padding"], activation=case["activation"],
                                   use_bias=case["use_bias"])
    out = layer(inp)
    scale_channels(layer, np.random.default_rng(case["seed"]))
    if case["dead"]:
        # a near-dead channel (trained models have them): filter scale 1e-7 of the others, so its
        # right shift goes above 23 and the records add the zero point after the shift
        weights = layer.get_weights()
        weights[0][..., 0] *= 1e-7
        layer.set_weights(weights)
    return tf.keras.Model(inp, out)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(CASES))
def test_conv_2d_rgb_matches_tflm(seed):
    case = _case(seed)
    path = convert_keras(lambda: _model(case), case["shape"], seed=seed, low=case["low"], high=case["high"],
                         key=f"conv_rgb_{seed}")
    engine = assert_engine_matches_tflm(path, count=6, seed=seed, target="cortex-m4", defines=["TM_DSP_EMULATE"])
    source = (engine.out_dir / "model.c").read_text()
    assert "tm_conv_2d_rgb_s8(&l0_params" in source, case
    shifts = [int(v) for v in source.split("l0_shift[")[1].split("{")[1].split("}")[0].replace(",", " ").split()]
    assert (".filter16_post = 1" in source) == (min(shifts) < -23), (case, shifts)
    # The same model.c built without the DSP extension: tm_conv_2d_rgb_s8's reference fallback.
    assert_engine_matches_tflm(path, count=3, seed=seed, target="cortex-m4")


def test_rgb_scratch_rules():
    """The path's shape rules (tm_conv_2d_rgb.h): few channels, unpadded rows only where padding wastes."""
    assert conv_rgb_scratch_bytes(3, 3, 3, 3, 32, 1, 1, 1) == 4 * 28 + (34 * 9 + 4 + 3) // 4 * 4
    assert conv_rgb_scratch_bytes(3, 3, 4, 4, 32, 1, 1, 1) == 0      # rows of 12 taps: nothing to save
    assert conv_rgb_scratch_bytes(3, 3, 5, 5, 32, 1, 1, 1) == 0      # more than 4 channels
    assert conv_rgb_scratch_bytes(3, 3, 3, 3, 32, 1, 2, 1) == 0      # dilation
    assert conv_rgb_scratch_bytes(10, 10, 3, 3, 32, 1, 1, 1) == 0    # kp 300 > 256
    assert conv_rgb_scratch_bytes(3, 3, 1, 2, 32, 1, 1, 1) == 0      # groups
