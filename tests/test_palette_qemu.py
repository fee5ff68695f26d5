"""Palettized weights on the emulated Cortex-M4 (QEMU mps2-an386, semihosting): the real
DSP build decodes the filter16 / 3x3 packed layouts (with PKHBT and unaligned index loads)
and its outputs are byte-identical to tflite-micro on the palettized .tflite."""

from __future__ import annotations

import numpy as np
import pytest

from engine.model_harness import convert_keras, tflm_outputs
from test_compiler_qemu import _register_paths_model, run_compiled_on_m4
from test_compiler_qemu import pytestmark as qemu_marks
from test_palette import (BLOCK_BOUNDS, block_conv_model, conv_chunks, fc_lookup_flags, fc_stack_model,
                          palettized_model, random_inputs)
from tinyml.palettize import palettize_tflite

pytestmark = qemu_marks


def run_palettized_on_m4(model, target: str, weights: str, inputs: np.ndarray, out, optimize: str = "speed"):
    return run_compiled_on_m4(model, target, inputs, out, optimize, weights)


@pytest.mark.parametrize("seed,bits,granularity", [(3, 2, "layer"), (5, 4, "layer"), (6, 4, "channel"),
                                                   (7, 2, "channel")])
def test_palettized_random_models_on_cortex_m4_match_tflm(seed, bits, granularity, tmp_path):
    model = palettized_model(seed, bits, granularity, tmp_path)
    inputs = random_inputs(model, 4, seed)[:, None]
    ours, result = run_palettized_on_m4(model, "cortex-m4", f"palette{bits}", inputs, tmp_path / "m4")
    assert np.array_equal(ours, tflm_outputs(model, inputs).reshape(ours.shape))
    assert any(layer.encoding == f"palette{bits}" and layer.path in ("widened patch", "3x3 DSP", "row16")
               for layer in result.layers)


@pytest.mark.parametrize("target,optimize", [("cortex-m4", "speed"), ("cortex-m4", "size"), ("cortex-m0", "speed")])
def test_palettized_register_kernels_match_tflm(target, optimize, tmp_path):
    """The assembly row kernels (3x3 ring with depth multipliers, kp 4 / kp 8 loops) reading decoded
    weights; --optimize size (the int8 filter on the im2col path) and the Cortex-M0 scalar path."""
    original = convert_keras(_register_paths_model, (9, 7, 1), seed=13, low=-1.0, high=1.5,
                             key="qemu_register_paths")
    model = tmp_path / "p4.tflite"
    model.write_bytes(palettize_tflite(original, 4, "channel").model)
    inputs = np.random.default_rng(2).integers(-128, 128, size=(5, 1, 9, 7, 1), dtype=np.int8)
    ours, _ = run_palettized_on_m4(model, target, "palette4", inputs, tmp_path / "out", optimize)
    assert np.array_equal(ours, tflm_outputs(model, inputs).reshape(ours.shape))


@pytest.mark.parametrize("name,bits,granularity", [("even", 4, "layer"), ("even", 2, "layer"), ("odd", 4, "layer"),
                                                   ("even", 2, "channel"), ("even", 4, "channel")])
def test_palettized_fully_connected_on_cortex_m4_match_tflm(name, bits, granularity, tmp_path):
    """The Thumb-2 lookup loops (4 and 2 bits, fc_lookup), the per-channel 2-bit loop and the block decode."""
    model = fc_stack_model(name, bits, granularity, tmp_path)
    inputs = random_inputs(model, 16, bits)[:, None]
    ours, _ = run_palettized_on_m4(model, "cortex-m4", f"palette{bits}", inputs, tmp_path / "m4")
    assert np.array_equal(ours, tflm_outputs(model, inputs).reshape(ours.shape))
    # (odd at 4 bits: its depth-10 layer; 4 bits per channel: the block decode)
    assert any(fc_lookup_flags(tmp_path / "m4")) == (granularity == "layer" or bits == 2)


@pytest.mark.parametrize("bound", BLOCK_BOUNDS)
@pytest.mark.parametrize("bits,granularity", [(4, "layer"), (2, "channel")])
def test_palettized_conv_in_channel_blocks_on_cortex_m4_match_tflm(bits, granularity, bound, tmp_path, monkeypatch):
    """tm_palette_conv_2d_s8 with the Thumb-2 kernels over a channel range (the kp-8 row kernel a pixel at
    a time, the pair kernels with and without a clamp, an odd last channel), partial last blocks."""
    from tinyml.compiler import palette

    model = block_conv_model(bits, granularity, tmp_path)
    inputs = random_inputs(model, 4, bits)[:, None]
    monkeypatch.setattr(palette, "CONV_BLOCK_BYTES", bound)
    monkeypatch.setattr(palette, "CONV_BLOCKS_ALWAYS", True)
    ours, _ = run_palettized_on_m4(model, "cortex-m4", f"palette{bits}", inputs, tmp_path / "m4")
    assert np.array_equal(ours, tflm_outputs(model, inputs).reshape(ours.shape))
    chunks = conv_chunks(tmp_path / "m4")
    assert len(chunks) == 4 and all(chunk < channels for chunk, channels in chunks)
