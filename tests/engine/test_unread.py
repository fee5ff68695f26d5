"""compiler/unread.py: a layer whose kernel reads only its DSP layout carries nothing else in flash,
its model.c refuses a build without the DSP path, and the budget bound before training still
covers the fallback a trained layer may take."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from tinyml.compiler import compile_tflite, compiled_size

from .kernel_harness import ENGINE_DIR, HOST_CFLAGS, TensorSpec, one_op_model, options


def _conv(in_c: int, out_c: int, kernel: int, seed: int = 3) -> bytes:
    rng = np.random.default_rng(seed)
    in_scale, out_scale, filter_scale = 0.05, 0.1, 2.0 ** -7 * 0.1 / 0.05
    weights = rng.integers(-127, 128, size=(out_c, kernel, kernel, in_c), dtype=np.int8)
    inputs = [TensorSpec((1, 6, 6, in_c), in_scale, 3),
              TensorSpec((out_c, kernel, kernel, in_c), filter_scale, 0, data=weights),
              TensorSpec((out_c,), in_scale * filter_scale, 0, dtype="INT32",
                         data=rng.integers(-2000, 2000, size=out_c, dtype=np.int32))]
    outputs = [TensorSpec((1, 6, 6, out_c), out_scale, -2)]
    return one_op_model("CONV_2D", inputs, outputs, options("Conv2D", padding="SAME", strideW=1, strideH=1,
                                                           fusedActivationFunction="RELU"))


def _fully_connected(depth: int, out_c: int, seed: int = 5) -> bytes:
    rng = np.random.default_rng(seed)
    weights = rng.integers(-127, 128, size=(out_c, depth), dtype=np.int8)
    inputs = [TensorSpec((1, depth), 0.05, 1), TensorSpec((out_c, depth), 0.01, 0, data=weights),
              TensorSpec((out_c,), 0.0005, 0, dtype="INT32", data=rng.integers(-500, 500, size=out_c, dtype=np.int32))]
    return one_op_model("FULLY_CONNECTED", inputs, [TensorSpec((1, out_c), 0.2, 0)],
                        options("FullyConnected", fusedActivationFunction="NONE"))


@pytest.mark.parametrize("model, path", [(_conv(8, 16, 3), "widened patch"), (_fully_connected(40, 10), "row16")],
                         ids=["conv", "fully_connected"])
def test_dsp_layout_alone_in_flash_and_no_plain_build(model, path, tmp_path):
    (tmp_path / "model.tflite").write_bytes(model)
    result = compile_tflite(tmp_path / "model.tflite", tmp_path / "out", target="cortex-m4")
    assert result.layers[0].path == path
    source = (tmp_path / "out" / "model.c").read_text()
    arrays = sorted(line.split()[3].split("[")[0] for line in source.splitlines() if line.startswith("static const")
                    and "[" in line.split()[3])
    assert arrays == ["l0_filter16"], arrays   # no l0_filter, l0_bias, l0_multiplier, l0_shift, l0_requant
    assert result.weight_bytes == compiled_size(tmp_path / "model.tflite", "cortex-m4").constants_bytes
    command = ["gcc", *HOST_CFLAGS, f"-I{ENGINE_DIR}", f"-I{tmp_path / 'out'}", "-c",
               str(tmp_path / "out" / "model.c"), "-o", str(tmp_path / "model.o")]
    command = [c for c in command if c != "-shared"]
    plain = subprocess.run(command, capture_output=True, text=True)
    assert plain.returncode != 0 and "holds only the DSP layouts" in plain.stderr
    subprocess.run([*command, "-DTM_DSP_EMULATE"], check=True, capture_output=True, text=True)
    # The size trade keeps the int8 filter (its im2col / dot-row path reads it) and builds anywhere.
    compile_tflite(tmp_path / "model.tflite", tmp_path / "size", target="cortex-m4", optimize="size")
    assert "#error" not in (tmp_path / "size" / "model.c").read_text()


@pytest.mark.parametrize("in_c, kernel", [(4, 1), (8, 1), (3, 3), (16, 3)])
def test_bound_before_training_covers_the_fallback(in_c, kernel):
    """A small layer's fallback arrays (int8 filter, bias, multipliers, shifts, records, folded bias:
    what --optimize size stores) can outweigh its widened layout: the all-fast-paths bound is the
    larger of the two, exactly."""
    model = _conv(in_c, 12, kernel)
    speed = compiled_size(model, "cortex-m4").constants_bytes
    fallback = compiled_size(model, "cortex-m4", optimize="size").constants_bytes
    bound = compiled_size(model, "cortex-m4", all_fast_paths=True).constants_bytes
    assert bound == max(speed, fallback), (speed, fallback, bound)
    if kernel == 1 and in_c == 4:
        assert fallback > speed   # the case the margin exists for
