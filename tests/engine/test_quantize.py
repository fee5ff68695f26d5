"""QUANTIZE (float32 -> int8 and int8 -> int8) against tflite-micro, and the rounding variant."""

from __future__ import annotations

import numpy as np
import pytest

from tinyml.compiler import requant
from tinyml.errors import TinymlError
from tinyml.tflite_graph import load_tflite

from .kernel_harness import EngineLib, TensorSpec, check_arm_build, one_op_model, random_int8, random_scale, run_tflm


def _requantize_case(rng: np.random.Generator, ratio_range: tuple[float, float]) -> tuple[bytes, np.ndarray]:
    shape = (1, int(rng.integers(1, 5)), 256)
    in_scale = random_scale(rng, 1e-3, 1.0)
    ratio = float(np.exp(rng.uniform(np.log(ratio_range[0]), np.log(ratio_range[1]))))
    out_scale = float(np.float32(in_scale / ratio))
    model = one_op_model("QUANTIZE",
                         [TensorSpec(shape, in_scale, int(rng.integers(-128, 128)))],
                         [TensorSpec(shape, out_scale, int(rng.integers(-128, 128)))])
    x = random_int8(rng, shape)
    x[0, 0] = np.arange(-128, 128)   # every input value once
    return model, x


def _run_requantize(lib: EngineLib, model: bytes, x: np.ndarray) -> np.ndarray:
    graph = load_tflite(model)
    op = graph.operators[0]
    t_in, t_out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    multiplier, shift = requant.requantize_multiplier(float(t_in.scale[0]), float(t_out.scale[0]))
    params = lib.params("tm_quantize_params_t", size=x.size, input_zero_point=int(t_in.zero_point[0]),
                        output_zero_point=int(t_out.zero_point[0]), multiplier=multiplier, shift=shift)
    out = np.zeros_like(x)
    lib.call("tm_quantize_s8", params, x, out)
    return out


@pytest.mark.parametrize("case", range(24))
def test_requantize_matches_tflm(case, rng):
    lib = EngineLib.build(["tm_quantize"])
    ratio_range = [(1e-3, 1e3), (0.25, 4.0), (0.9, 1.1)][case % 3]
    model, x = _requantize_case(rng, ratio_range)
    expected = run_tflm(model, [x])[0]
    np.testing.assert_array_equal(_run_requantize(lib, model, x), expected)


def test_rounding_variant():
    """pip tflite-micro is built with TFLite's default double rounding: the engine's default
    matches it everywhere, and a -DTM_SINGLE_ROUNDING build does not (on rescales by 1/2..1/4,
    where the two roundings differ on about a quarter of the values)."""
    rng = np.random.default_rng(1234)
    double = EngineLib.build(["tm_quantize"])
    single = EngineLib.build(["tm_quantize"], defines=["TM_SINGLE_ROUNDING"])
    single_mismatches = 0
    for _ in range(6):
        model, x = _requantize_case(rng, (0.26, 0.49))
        expected = run_tflm(model, [x])[0]
        np.testing.assert_array_equal(_run_requantize(double, model, x), expected)
        single_mismatches += int(np.count_nonzero(_run_requantize(single, model, x) != expected))
    assert single_mismatches > 0


@pytest.mark.parametrize("case", range(16))
def test_quantize_f32_matches_tflm(case, rng):
    lib = EngineLib.build(["tm_quantize"])
    shape = (1, int(rng.integers(1, 9)), int(rng.integers(1, 65)))
    # every fourth case a power-of-two scale, so x / scale hits exact .5 ties
    scale = 2.0 ** -int(rng.integers(0, 9)) if case % 4 == 0 else random_scale(rng, 1e-3, 1.0)
    zero_point = int(rng.integers(-128, 128))
    model = one_op_model("QUANTIZE", [TensorSpec(shape, dtype="FLOAT32")], [TensorSpec(shape, scale, zero_point)])
    halves = (rng.integers(-300, 300, size=shape) + 0.5) * scale       # ties and near-ties
    spread = rng.uniform(-300, 300, size=shape) * scale                # inside and far outside int8
    x = np.where(rng.random(shape) < 0.5, halves, spread).astype(np.float32)
    x.flat[:4] = [0.0, -0.0, np.float32(scale) * 0.5, -np.float32(scale) * 0.5][: x.size]
    expected = run_tflm(model, [x])[0]

    graph = load_tflite(model)
    t_out = graph.tensors[graph.operators[0].outputs[0]]
    params = lib.params("tm_quantize_f32_params_t", size=x.size, scale=float(t_out.scale[0]),
                        zero_point=int(t_out.zero_point[0]))
    out = np.zeros(shape, dtype=np.int8)
    lib.call("tm_quantize_f32_s8", params, x, out)
    np.testing.assert_array_equal(out, expected)


def test_quantize_multiplier_edge_cases():
    assert requant.quantize_multiplier(0.0) == (0, 0)
    assert requant.quantize_multiplier(0.5) == (1 << 30, 0)
    assert requant.quantize_multiplier(1.0) == (1 << 30, 1)
    assert requant.quantize_multiplier(3.0) == (3 << 29, 2)
    # a fraction that rounds up to 2^31 becomes 2^30 with one more shift
    assert requant.quantize_multiplier(1.0 - 2.0**-40) == (1 << 30, 1)
    # halves round away from zero: 0.5 + 2^-32 is 2^30 + 0.5 in Q31 -> 2^30 + 1
    assert requant.quantize_multiplier(0.5 + 2.0**-32) == ((1 << 30) + 1, 0)
    assert requant.quantize_multiplier(-0.5 - 2.0**-32) == (-(1 << 30) - 1, 0)
    # below 2^-32 every product rounds to zero: TFLite stores (0, 0)
    assert requant.quantize_multiplier(2.0**-40) == (0, 0)
    m, s = requant.quantize_multiplier(0.0123)
    assert (1 << 30) <= m < (1 << 31) and abs(m * 2.0 ** (s - 31) - 0.0123) < 1e-11
    with pytest.raises(TinymlError, match="not finite"):
        requant.quantize_multiplier(float("inf"))


def test_activation_range():
    assert requant.activation_range("NONE", 0.1, 3) == (-128, 127)
    assert requant.activation_range("RELU", 0.1, 3) == (3, 127)
    assert requant.activation_range("RELU6", 6.0 / 255, -128) == (-128, 127)
    assert requant.activation_range("RELU6", 0.1, -10) == (-10, 50)
    assert requant.activation_range("RELU_N1_TO_1", 0.01, 0) == (-100, 100)
    assert requant.activation_range("RELU", 0.1, -200) == (-128, 127)
    # f / scale is a float32 division, then rounded half away from zero: 6 / 0.8 = 7.5 -> 8
    assert requant.activation_range("RELU6", 0.8, 0) == (0, 8)
    with pytest.raises(TinymlError, match="TANH"):
        requant.activation_range("TANH", 0.1, 0)
    with pytest.raises(TinymlError, match="positive"):
        requant.activation_range("RELU", 0.0, 0)


def test_padding_2d():
    assert requant.padding_2d(7, 3, 2, "SAME") == (4, 1)
    assert requant.padding_2d(8, 3, 2, "SAME") == (4, 0)     # total padding 1: all of it after
    assert requant.padding_2d(8, 2, 2, "SAME") == (4, 0)
    assert requant.padding_2d(7, 3, 2, "VALID") == (3, 0)
    assert requant.padding_2d(5, 3, 1, "SAME", dilation=2) == (5, 2)
    with pytest.raises(TinymlError, match="larger than the input"):
        requant.padding_2d(2, 3, 1, "VALID")
    with pytest.raises(TinymlError, match="EXPLICIT"):
        requant.padding_2d(4, 3, 1, "EXPLICIT")


def test_compiles_for_cortex_m4(tmp_path):
    check_arm_build("tm_quantize", tmp_path)
