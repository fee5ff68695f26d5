"""PAD and PADV2 (int8) against tflite-micro: random ranks, paddings per side and zero points."""

from __future__ import annotations

import numpy as np
import pytest

from tinyml.compiler import requant

from .kernel_harness import (EngineLib, TensorSpec, check_arm_build, convert, first_op, one_op_model, options,
                             random_int8, random_scale, run_tflm)


def check_against_tflm(model: bytes, opcode: str, rng: np.random.Generator) -> None:
    lib = EngineLib.build(["tm_pad"])
    graph, op = first_op(model, opcode)
    t_in, t_pads, t_out = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    dims, before, after = requant.pad_4d(t_in.shape, t_pads.data)
    if opcode == "PADV2":
        pad_value = int(graph.tensors[op.inputs[2]].data.reshape(-1)[0])
    else:
        pad_value = int(t_out.zero_point[0])    # TFLM pads with the output zero point (real 0)
    params = lib.params("tm_pad_params_t", input_dims=dims, pad_before=before, pad_after=after, pad_value=pad_value)
    for _ in range(2):
        x = random_int8(rng, t_in.shape)
        expected = run_tflm(model, [x])[0]
        out = np.full(t_out.shape, 99, dtype=np.int8)
        lib.call("tm_pad_s8", params, x, out)
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("opcode", ["PAD", "PADV2"])
@pytest.mark.parametrize("case", range(16))
def test_random_pad_matches_tflm(opcode, case, rng):
    rank = int(rng.integers(1, 5))
    shape = tuple(int(d) for d in rng.integers(1, 6, size=rank))
    pads = rng.integers(0, 4, size=(rank, 2)).astype(np.int32)
    if rank == 4 and case % 2:
        pads[0] = 0            # NHWC models pad H and W only; the other half pads every dim
        pads[3] = 0
    out_shape = tuple(int(d + p.sum()) for d, p in zip(shape, pads))
    scale, zero_point = random_scale(rng), int(rng.integers(-128, 128))
    # TFLM copies the input bytes even when the output's quantization differs (and pads with the
    # output zero point); converted models never do this, but the engine must agree if one does
    out_scale, out_zp = (scale, zero_point) if case % 4 else (random_scale(rng), int(rng.integers(-128, 128)))
    inputs = [TensorSpec(shape, scale, zero_point), TensorSpec(pads.shape, dtype="INT32", data=pads)]
    if opcode == "PADV2":
        inputs.append(TensorSpec((1,), out_scale, out_zp, data=np.array([rng.integers(-128, 128)], dtype=np.int8)))
    model = one_op_model(opcode, inputs, [TensorSpec(out_shape, out_scale, out_zp)],
                         options("Pad") if opcode == "PAD" else options("PadV2"))
    check_against_tflm(model, opcode, rng)


@pytest.mark.slow
def test_converted_zero_padding_matches_tflm(rng):
    import tensorflow as tf

    model = convert(lambda x: tf.pad(x, [[0, 0], [1, 2], [2, 1], [0, 0]]), [(1, 5, 4, 3)], [(-0.5, 3.0)])
    check_against_tflm(model, "PAD", rng)


def test_compiles_for_cortex_m4(tmp_path):
    check_arm_build("tm_pad", tmp_path)
