"""ADD (int8) against tflite-micro: same shapes and broadcasts, random scales, zero points
and fused activations."""

from __future__ import annotations

import numpy as np
import pytest

from tinyml.compiler import requant

from .kernel_harness import (EngineLib, TensorSpec, check_arm_build, convert, first_op, one_op_model, options,
                             random_int8, random_scale, run_tflm)

ACTIVATIONS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]


class AddFast:
    """The compile-time data of tm_add's table path (kept alive while the params point at it)."""

    def __init__(self, q: requant.AddQuant) -> None:
        self.table1, self.table2 = requant.add_tables(q)
        self.requant = requant.requant_records(np.array([q.output_multiplier]), np.array([q.output_shift]),
                                             q.output_offset)

    def fields(self) -> dict:
        if self.requant is None:
            return dict(input1_table=None, input2_table=None, requant=None)
        return dict(input1_table=self.table1.ctypes.data, input2_table=self.table2.ctypes.data,
                    requant=self.requant.ctypes.data)


def make_params(lib: EngineLib, q: requant.AddQuant, dims, strides1, strides2, fast: bool):
    extra = AddFast(q) if fast else None
    pointers = extra.fields() if extra else dict(input1_table=None, input2_table=None, requant=None)
    params = lib.params("tm_add_params_t", **vars(q), dims=dims, input1_strides=strides1,
                        input2_strides=strides2, **pointers)
    return params, extra


def add_params(lib: EngineLib, model: bytes, fast: bool = False):
    graph, op = first_op(model, "ADD")
    t1, t2, to = (graph.tensors[i] for i in (*op.inputs, *op.outputs))
    q = requant.add_quant(float(t1.scale[0]), int(t1.zero_point[0]), float(t2.scale[0]), int(t2.zero_point[0]),
                        float(to.scale[0]), int(to.zero_point[0]), op.options["fused_activation_function"])
    dims, strides1, strides2 = requant.broadcast_4d(t1.shape, t2.shape)
    params, extra = make_params(lib, q, dims, strides1, strides2, fast)
    return params, extra, graph, op


def check_against_tflm(model: bytes, rng: np.random.Generator, runs: int = 3) -> None:
    """Both paths of tm_add_s8: the per-element formula and the table path."""
    lib = EngineLib.build(["tm_add"])
    params, _, graph, op = add_params(lib, model, fast=False)
    params_fast, extra, _, _ = add_params(lib, model, fast=True)
    assert extra.requant is not None, "the table path is not exercised"
    out_shape = graph.tensors[op.outputs[0]].shape
    for _ in range(runs):
        inputs = [random_int8(rng, graph.tensors[i].shape) for i in graph.inputs]
        expected = run_tflm(model, inputs)[0]
        by_tensor = dict(zip(graph.inputs, inputs))
        for p in (params, params_fast):
            out = np.zeros(out_shape, dtype=np.int8)
            lib.call("tm_add_s8", p, by_tensor[op.inputs[0]], by_tensor[op.inputs[1]], out)
            np.testing.assert_array_equal(out, expected)
        if expected.size >= 16:
            assert np.unique(expected).size > 1, "degenerate case: constant output"


def all_pairs_both_paths(lib: EngineLib, q: requant.AddQuant) -> tuple[np.ndarray, np.ndarray]:
    """tm_add_s8 on every (a, b) int8 pair, reference path and table path."""
    a = np.repeat(np.arange(-128, 128, dtype=np.int8), 256)
    b = np.tile(np.arange(-128, 128, dtype=np.int8), 256)
    outs = []
    for fast in (False, True):
        params, extra = make_params(lib, q, [1, 1, 1, a.size], [0, 0, 0, 1], [0, 0, 0, 1], fast)
        out = np.zeros(a.size, dtype=np.int8)
        lib.call("tm_add_s8", params, a, b, out)
        outs.append(out)
    return outs[0], outs[1]


def random_shapes(rng: np.random.Generator, broadcast: bool) -> tuple[tuple[int, ...], tuple[int, ...]]:
    rank = int(rng.integers(1, 5))
    full = [int(rng.integers(1, 7)) for _ in range(rank)]
    if not broadcast:
        return tuple(full), tuple(full)
    shapes = []
    for _ in range(2):
        shape = [d if rng.random() < 0.5 else 1 for d in full]
        shape = shape[int(rng.integers(0, rank)):]       # drop leading dims sometimes
        shapes.append(tuple(shape) or (1,))
    if rng.random() < 0.5:
        shapes[0] = tuple(full)
    return shapes[0], shapes[1]


@pytest.mark.parametrize("broadcast", [False, True], ids=["same", "broadcast"])
@pytest.mark.parametrize("case", range(25))
def test_random_add_matches_tflm(broadcast, case, rng):
    shape1, shape2 = random_shapes(rng, broadcast)
    out_shape = tuple(np.broadcast_shapes(shape1, shape2))
    # input scales up to 100x apart; the output quantized over the range the sum can reach
    # (after the fused activation), as the converter would, so outputs do not all saturate
    activation = ACTIVATIONS[case % 4]
    scales = [random_scale(rng, 1e-3, 0.2), random_scale(rng, 1e-3, 0.2)]
    zps = [int(z) for z in rng.integers(-100, 101, size=2)]
    lo = sum(s * (-128 - z) for s, z in zip(scales, zps))
    hi = sum(s * (127 - z) for s, z in zip(scales, zps))
    lo, hi = {"NONE": (lo, hi), "RELU": (max(lo, 0.0), hi), "RELU6": (max(lo, 0.0), min(hi, 6.0)),
              "RELU_N1_TO_1": (max(lo, -1.0), min(hi, 1.0))}[activation]
    out_scale = float(np.float32(max(hi - lo, 0.05) / 255 * rng.uniform(0.7, 1.5)))
    scales.append(out_scale)
    zps.append(int(np.clip(round(-128 - lo / out_scale), -128, 127)))
    model = one_op_model(
        "ADD", [TensorSpec(shape1, scales[0], zps[0]), TensorSpec(shape2, scales[1], zps[1])],
        [TensorSpec(out_shape, scales[2], zps[2])],
        options("Add", fusedActivationFunction=activation))
    check_against_tflm(model, rng)


@pytest.mark.slow
@pytest.mark.parametrize("case", range(3))
def test_converted_add_matches_tflm(case, rng):
    """A residual add as the converter writes it (inputs with different ranges, ReLU fused)."""
    import tensorflow as tf

    shape = (1, int(rng.integers(2, 9)), int(rng.integers(2, 9)), int(rng.integers(1, 9)))
    shape2 = [shape, (1, 1, 1, shape[3]), (1, shape[1], shape[2], shape[3])][case]
    model = convert(lambda x, y: tf.nn.relu(x + y), [shape, shape2],
                    [(-1.0, 1.0), (-float(rng.uniform(0.1, 8)), float(rng.uniform(0.1, 8)))], seed=case)
    check_against_tflm(model, rng)


@pytest.mark.parametrize("case", range(40))
def test_table_path_equals_reference_on_all_pairs(case, rng):
    """The table path (tm_add.h) against the per-element MBQM formula on all 65,536 input pairs,
    with scales from equal to 2^20 apart (input shifts 0..-21, multipliers down to 0) and output
    scales putting the output shift from 2 to 23 (the requant record's range), every zero point
    extreme included."""
    lib = EngineLib.build(["tm_add"])
    q = extreme_add_quant(case, rng)
    reference, fast = all_pairs_both_paths(lib, q)
    np.testing.assert_array_equal(fast, reference)


@pytest.mark.parametrize("case", range(40))
def test_dsp_table_path_equals_reference_on_all_pairs(case, rng):
    """The DSP-extension table path (four elements a word, SMMLAR requantization; TM_DSP_EMULATE
    runs its data flow on the host) against the per-element formula on all 65,536 input pairs,
    same extreme scales, shifts and zero points; lengths that leave a 0..3-element tail."""
    reference_lib = EngineLib.build(["tm_add"])
    dsp_lib = EngineLib.build(["tm_add"], defines=["TM_DSP_EMULATE"])
    q = extreme_add_quant(case, rng)
    reference, _ = all_pairs_both_paths(reference_lib, q)
    n = 65536 - case % 4
    a = np.repeat(np.arange(-128, 128, dtype=np.int8), 256)[:n]
    b = np.tile(np.arange(-128, 128, dtype=np.int8), 256)[:n]
    params, extra = make_params(dsp_lib, q, [1, 1, 1, n], [0, 0, 0, 1], [0, 0, 0, 1], True)
    out = np.zeros(n, dtype=np.int8)
    dsp_lib.call("tm_add_s8", params, a, b, out)
    np.testing.assert_array_equal(out, reference[:n])


def extreme_add_quant(case: int, rng: np.random.Generator) -> requant.AddQuant:
    """ADD quantization from equal input scales to 2^20 apart and output shifts 2..23, by case."""
    s1 = float(np.float32(2.0 ** rng.uniform(-12, 0)))
    ratio = [1.0, 2.0 ** -rng.uniform(0, 21), 2.0 ** -40, 1.0 - 2.0 ** -23][case % 4]
    s2 = float(np.float32(s1 * ratio))
    if case % 8 >= 4:
        s1, s2 = s2, s1
    # output shift = 20 + log2(so / (2 max)) rounded: choose it in [-23, -2]
    target_shift = int(rng.integers(2, 24)) if case >= 4 else [2, 23, 2, 23][case]
    so = float(np.float32(2 * max(s1, s2) / 2.0 ** 20 * 2.0 ** target_shift * rng.uniform(1.001, 1.999)))
    zps = [[-128, 127, -128], [127, -128, 127], [0, 0, 0]][case % 3] if case < 12 else \
        [int(z) for z in rng.integers(-128, 128, size=3)]
    activation = ACTIVATIONS[case % 4]
    q = requant.add_quant(s1, zps[0], s2, zps[1], so, zps[2], activation)
    assert requant.requant_records(np.array([q.output_multiplier]), np.array([q.output_shift]),
                                 q.output_offset) is not None, q
    return q


def test_table_matches_mbqm_formula():
    """requant.multiply_by_quantized_multiplier against TFLite's definition on extreme values."""
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.integers(-(1 << 31), 1 << 31, size=2000), [-(1 << 31), (1 << 31) - 1, 0, -1, 1]])
    for multiplier, shift in [(1 << 30, 0), ((1 << 31) - 1, -31), (1 << 30, -1), ((1 << 31) - 1, 0),
                              (1518500250, -7), (0, 0), (-(1 << 31), 0), (1 << 30, 3)]:
        got = requant.multiply_by_quantized_multiplier(x, multiplier, shift)
        for xi, gi in zip(x.tolist(), got.tolist()):
            assert gi == _mbqm_scalar(xi, multiplier, shift), (xi, multiplier, shift)


def _mbqm_scalar(x: int, m: int, shift: int) -> int:
    """gemmlowp's SRDHM and RDBP written out with Python integers (truncating division)."""
    left, right = max(shift, 0), max(-shift, 0)
    x = ((x << left) + (1 << 31)) % (1 << 32) - (1 << 31)
    if x == m == -(1 << 31):
        srdhm = (1 << 31) - 1
    else:
        ab = x * m
        nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
        srdhm = _trunc_div(ab + nudge, 1 << 31)
    mask = (1 << right) - 1
    remainder = srdhm & mask
    threshold = (mask >> 1) + (1 if srdhm < 0 else 0)
    return (srdhm >> right) + (1 if remainder > threshold else 0)


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def test_broadcast_4d():
    assert requant.broadcast_4d((2, 3), (2, 3)) == ([1, 1, 1, 6], [0, 0, 0, 1], [0, 0, 0, 1])
    assert requant.broadcast_4d((1, 4, 4, 3), (3,)) == ([1, 4, 4, 3], [0, 12, 3, 1], [0, 0, 0, 1])
    assert requant.broadcast_4d((4, 1), (1, 5)) == ([1, 1, 4, 5], [0, 0, 1, 0], [0, 0, 0, 1])
    from tinyml.errors import TinymlError
    with pytest.raises(TinymlError, match="do not broadcast"):
        requant.broadcast_4d((2, 3), (4, 3))


def test_compiles_for_cortex_m4(tmp_path):
    check_arm_build("tm_add", tmp_path)
