"""One test per engine algorithm file (the TFLite-Micro habit of a test beside each kernel): a
one-op model whose layer the compiler gives that algorithm's data, on the build that runs it
(host gcc, plain or with the DSP data flow in C emulation, TM_DSP_EMULATE), byte for byte against
tflite-micro on random inputs; the layer's `path` in compile.json names the algorithm, and
test_interface.py proves the C dispatcher runs the algorithm of that path. A broken algorithm
file fails its case here. The Thumb-2 assembly twins are checked on QEMU (test_compiler_qemu.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from .kernel_harness import TensorSpec, one_op_model, options
from .model_harness import assert_engine_matches_tflm, work_dir

DSP = ["TM_DSP_EMULATE"]


def _ratio(taps: int) -> float:
    """A scale ratio that keeps random int8 dot products of `taps` terms mostly inside int8."""
    return 4.0 / (127.0 * 64.0 * np.sqrt(taps))


def _conv(in_shape: tuple[int, int, int], filters: int, kernel: tuple[int, int], stride: tuple[int, int] = (1, 1),
          padding: str = "SAME", activation: str = "NONE", seed: int = 0, ratio: float | None = None,
          bias_scale: int = 2000) -> bytes:
    rng = np.random.default_rng(seed)
    h, w, c = in_shape
    out_h = (h + stride[0] - 1) // stride[0] if padding == "SAME" else (h - kernel[0] + stride[0]) // stride[0]
    out_w = (w + stride[1] - 1) // stride[1] if padding == "SAME" else (w - kernel[1] + stride[1]) // stride[1]
    ratio = _ratio(kernel[0] * kernel[1] * c) if ratio is None else ratio
    in_scale, out_scale = 0.05, 0.1
    filter_scale = ratio * out_scale / in_scale
    weights = rng.integers(-127, 128, size=(filters, *kernel, c), dtype=np.int8)
    bias = rng.integers(-bias_scale, bias_scale, size=filters).astype(np.int32)
    return one_op_model(
        "CONV_2D",
        [TensorSpec((1, h, w, c), in_scale, -7), TensorSpec(weights.shape, filter_scale, 0, data=weights),
         TensorSpec((filters,), in_scale * filter_scale, 0, dtype="INT32", data=bias)],
        [TensorSpec((1, out_h, out_w, filters), out_scale, 3)],
        options("Conv2D", padding=padding, strideH=stride[0], strideW=stride[1], fusedActivationFunction=activation))


def _depthwise(in_shape: tuple[int, int, int], multiplier: int, kernel: tuple[int, int], stride: int = 1,
               activation: str = "NONE", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    h, w, c = in_shape
    out_c = c * multiplier
    ratio = _ratio(kernel[0] * kernel[1])
    in_scale, out_scale = 0.05, 0.1
    filter_scale = ratio * out_scale / in_scale
    weights = rng.integers(-127, 128, size=(1, *kernel, out_c), dtype=np.int8)
    bias = rng.integers(-2000, 2000, size=out_c).astype(np.int32)
    out_h, out_w = (h + stride - 1) // stride, (w + stride - 1) // stride
    return one_op_model(
        "DEPTHWISE_CONV_2D",
        [TensorSpec((1, h, w, c), in_scale, 5), TensorSpec(weights.shape, filter_scale, 0, data=weights),
         TensorSpec((out_c,), in_scale * filter_scale, 0, dtype="INT32", data=bias)],
        [TensorSpec((1, out_h, out_w, out_c), out_scale, -4)],
        options("DepthwiseConv2D", padding="SAME", strideH=stride, strideW=stride, depthMultiplier=multiplier,
                fusedActivationFunction=activation))


def _fully_connected(batches: int, depth: int, outputs: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    ratio = _ratio(depth)
    in_scale, out_scale = 0.05, 0.1
    filter_scale = ratio * out_scale / in_scale
    weights = rng.integers(-127, 128, size=(outputs, depth), dtype=np.int8)
    bias = rng.integers(-2000, 2000, size=outputs).astype(np.int32)
    return one_op_model(
        "FULLY_CONNECTED",
        [TensorSpec((batches, depth), in_scale, 9), TensorSpec(weights.shape, filter_scale, 0, data=weights),
         TensorSpec((outputs,), in_scale * filter_scale, 0, dtype="INT32", data=bias)],
        [TensorSpec((batches, outputs), out_scale, -2)], options("FullyConnected"))


@dataclass(frozen=True)
class Case:
    files: str          # the algorithm files the case runs (beside the op's dispatcher)
    model: bytes
    target: str
    path: str           # the compiler's name of the algorithm (compile.json `path`)
    defines: tuple[str, ...] = ()
    optimize: str = "speed"


CASES = {
    "conv_generic": Case("tm_conv_2d_generic.c", _conv((7, 9, 3), 5, (3, 3), (2, 1), activation="RELU"),
                         "generic", "generic"),
    "conv_im2col_scalar": Case("tm_conv_2d_im2col.c, tm_support_dot_s8.c (scalar)",
                               _conv((7, 9, 3), 5, (3, 3), seed=1), "rv32", "im2col scalar"),
    "conv_1x1_scalar": Case("tm_conv_2d_im2col.c (in place), tm_support_dot_s8.c (scalar)",
                            _conv((5, 6, 7), 3, (1, 1), padding="VALID", seed=2), "cortex-m0", "1x1 scalar"),
    "conv_im2col_dsp": Case("tm_conv_2d_im2col.c, tm_support_dot_s8.c (SMLAD)",
                            _conv((7, 9, 5), 7, (3, 3), activation="RELU6", seed=3), "cortex-m4", "im2col DSP",
                            tuple(DSP), "size"),
    "conv_widened_rows": Case("tm_conv_2d_widened.c (kp 8 row kernel)",
                              _conv((6, 5, 8), 6, (1, 1), padding="VALID", seed=4), "cortex-m4", "widened patch",
                              tuple(DSP)),
    "conv_widened_pairs": Case("tm_conv_2d_widened.c (2 x 2 pair block, ring of padded rows)",
                               _conv((7, 8, 3), 9, (3, 3), activation="RELU", seed=5), "cortex-m4", "widened patch",
                               tuple(DSP)),
    "conv_widened_post": Case("tm_conv_2d_widened.c (zero point after a shift above 23)",
                              _conv((6, 6, 4), 5, (3, 3), seed=6, ratio=2.0 ** -27, bias_scale=1 << 29),
                              "cortex-m4", "widened patch (zero point after the shift)", tuple(DSP)),
    "depthwise_generic": Case("tm_depthwise_conv_2d_generic.c", _depthwise((6, 7, 5), 2, (3, 3), 2), "generic",
                              "generic"),
    "depthwise_3x3": Case("tm_depthwise_conv_2d_3x3.c", _depthwise((6, 7, 6), 2, (3, 3), 1, "RELU6", seed=1),
                          "cortex-m4", "3x3 DSP", tuple(DSP)),
    "depthwise_dsp": Case("tm_depthwise_conv_2d_dsp.c", _depthwise((6, 7, 7), 1, (5, 5), seed=2), "cortex-m4",
                          "depthwise DSP", tuple(DSP)),
    "depthwise_scalar": Case("tm_depthwise_conv_2d_scalar.c", _depthwise((6, 7, 7), 1, (5, 3), seed=3), "rv32",
                             "depthwise scalar"),
    "depthwise_3x3_scalar": Case("tm_depthwise_conv_2d_3x3_scalar.c", _depthwise((6, 7, 5), 2, (3, 3), 2, seed=7),
                                 "cortex-m0", "3x3 scalar plane"),
    "fc_generic": Case("tm_fully_connected_generic.c", _fully_connected(3, 37, 11), "generic", "generic"),
    "fc_rows_scalar": Case("tm_support_dot_s8.c (one and two rows, scalar)", _fully_connected(3, 37, 11, seed=1),
                           "rv32", "scalar"),
    "fc_rows_dsp": Case("tm_support_dot_s8.c (one and two rows, SMLAD)", _fully_connected(3, 37, 11, seed=2),
                        "cortex-m4", "DSP", tuple(DSP), "size"),
    "fc_row16": Case("tm_fully_connected_row16.c", _fully_connected(2, 37, 11, seed=3), "cortex-m4", "row16",
                     tuple(DSP)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_algorithm_matches_tflm(name):
    case = CASES[name]
    path = Path(work_dir()) / f"algorithm_{name}.tflite"
    path.write_bytes(case.model)
    engine = assert_engine_matches_tflm(path, count=4, seed=len(name), target=case.target,
                                        defines=list(case.defines), optimize=case.optimize)
    (layer,) = engine.compile_info["layers"]
    assert layer["path"] == case.path, (name, case.files, layer)
