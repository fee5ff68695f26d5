"""tm_palette_decode against palette.reference_decode, layout by layout, on the host with the DSP
data flow (TM_DSP_EMULATE): every branch of the decoders (3x3 depthwise tap rows on whole index
bytes or not, filter16 channels of whole groups or padded rows tap by tap, 4 and 2 bits, one
table or one per channel, a block of channels at a time) writes exactly the words the kernels
would read from the int8 compile."""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np
import pytest

from engine.model_harness import C_FLAGS, ENGINE_DIR
from tinyml.compiler.palette import LAYOUT_DW3, LAYOUT_FILTER16, LAYOUT_S8, pack_indices, reference_decode


class PaletteStruct(ctypes.Structure):
    """tm_palette_t (tm_palette.h)."""
    _fields_ = [("count", ctypes.c_int32), ("channels", ctypes.c_int32), ("bits", ctypes.c_int32),
                ("tables", ctypes.c_int32), ("channel_minor", ctypes.c_int32), ("indices", ctypes.c_void_p),
                ("table", ctypes.c_void_p), ("layout", ctypes.c_int32), ("rows", ctypes.c_int32),
                ("width", ctypes.c_int32), ("tail", ctypes.c_void_p), ("chunk", ctypes.c_int32),
                ("fc_lookup", ctypes.c_int32)]


@pytest.fixture(scope="module")
def decoder(tmp_path_factory) -> ctypes.CDLL:
    lib = tmp_path_factory.mktemp("palette_decode") / "libpalette.so"
    subprocess.run(["gcc", *C_FLAGS, "-O2", "-shared", "-fPIC", "-DTM_DSP_EMULATE", f"-I{ENGINE_DIR}",
                    *(str(s) for s in sorted(Path(ENGINE_DIR).glob("*.c"))), "-o", str(lib)],
                   check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(lib))


def _decode(lib: ctypes.CDLL, layout: int, bits: int, tables: np.ndarray, indices: np.ndarray, channels: int,
            channel_minor: bool, rows: int, width: int, tail: np.ndarray | None, first: int, count: int,
            out_bytes: int) -> np.ndarray:
    packed = np.ascontiguousarray(pack_indices(indices, bits))
    table = np.ascontiguousarray(tables.reshape(-1), np.int8)
    tail_words = np.ascontiguousarray(tail if tail is not None else np.zeros(4, np.int32), np.int32)
    p = PaletteStruct(int(indices.size), channels, bits, int(tables.shape[0]), int(channel_minor),
                      packed.ctypes.data, table.ctypes.data, layout, rows, width, tail_words.ctypes.data, 0, 0)
    guard = 64
    dst = np.full(out_bytes + guard, 0x5A, np.uint8)
    lib.tm_palette_decode_channels(ctypes.byref(p), ctypes.c_int32(first), ctypes.c_int32(count),
                                   ctypes.c_void_p(dst.ctypes.data))
    assert (dst[out_bytes:] == 0x5A).all(), "wrote past the decoded layer"
    return dst[:out_bytes]


def _random(rng: np.random.Generator, bits: int, per_channel: bool, channels: int, count: int):
    tables = rng.integers(-128, 128, size=(channels if per_channel else 1, 1 << bits)).astype(np.int8)
    return tables, rng.integers(0, 1 << bits, size=count)


@pytest.mark.parametrize("bits", [4, 2])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("channels", [1, 2, 3, 4, 6, 8, 9, 16, 33])
def test_depthwise_3x3_layout(decoder, bits, per_channel, channels):
    rng = np.random.default_rng(channels * 10 + bits + per_channel)
    tables, indices = _random(rng, bits, per_channel, channels, 9 * channels)
    # the e word's low half is an int16 (sign-extended in the tail): both signs
    tail = np.stack([rng.integers(-(1 << 15), 1 << 15, channels), *(rng.integers(-(1 << 31), 1 << 31, channels)
                                                                   for _ in range(3))], axis=1).astype(np.int32)
    expected = reference_decode(LAYOUT_DW3, indices, tables, channels, True, 0, 0, tail)
    ours = _decode(decoder, LAYOUT_DW3, bits, tables, indices, channels, True, 0, 0, tail.reshape(-1), 0, channels,
                   expected.nbytes)
    assert np.array_equal(ours.view(np.int32), expected)


@pytest.mark.parametrize("bits", [4, 2])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("rows,width", [(3, 9), (3, 12), (1, 16), (1, 6), (2, 7), (1, 4), (5, 8)])
def test_filter16_layout_by_channel_blocks(decoder, bits, per_channel, rows, width):
    channels = 7
    rng = np.random.default_rng(rows * 100 + width + bits + per_channel)
    tables, indices = _random(rng, bits, per_channel, channels, channels * rows * width)
    tail = rng.integers(-(1 << 31), 1 << 31, size=(channels, 4)).astype(np.int32)
    expected = reference_decode(LAYOUT_FILTER16, indices, tables, channels, False, rows, width, tail)
    words = expected.size // channels
    for first, count in [(0, channels), (0, 4), (4, 3), (3, 1)]:
        ours = _decode(decoder, LAYOUT_FILTER16, bits, tables, indices, channels, False, rows, width,
                       tail.reshape(-1), first, count, 4 * words * count)
        assert np.array_equal(ours.view(np.int32), expected[first * words:(first + count) * words]), (first, count)


@pytest.mark.parametrize("bits", [4, 2])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("channel_minor,channels,per", [(False, 5, 9), (False, 4, 6), (True, 6, 9), (True, 5, 25)])
def test_int8_layout(decoder, bits, per_channel, channel_minor, channels, per):
    rng = np.random.default_rng(channels * per + bits + per_channel)
    tables, indices = _random(rng, bits, per_channel, channels, channels * per)
    expected = reference_decode(LAYOUT_S8, indices, tables, channels, channel_minor, 0, 0, None)
    ours = _decode(decoder, LAYOUT_S8, bits, tables, indices, channels, channel_minor, 0, 0, None, 0, channels,
                   expected.nbytes)
    assert np.array_equal(ours.view(np.int8), expected)


def test_conv_block_scratch_matches_the_c(tmp_path, monkeypatch):
    """A palettized CONV_2D run in blocks (tm_palette_conv_2d_s8): the compiler's scratch is the widened
    kernel's (tm_conv_2d_get_buffer_size) then one decoded block, tm_palette_conv_2d_block_bytes(p, chunk)."""
    from engine.kernel_harness import HOST_CFLAGS, header_structs
    from test_palette import block_conv_model

    from tinyml.compiler import palette
    from tinyml.compiler.layers import lower_graph
    from tinyml.tflite_graph import load_tflite

    probe = tmp_path / "probe.c"
    probe.write_text('#include "tm_palette.h"\n'
                     "int32_t probe_block_bytes(const tm_conv_2d_params_t *p, int32_t channels)\n"
                     "{\n    return tm_palette_conv_2d_block_bytes(p, channels);\n}\n"
                     "int32_t probe_kernel_bytes(const tm_conv_2d_params_t *p)\n"
                     "{\n    return tm_conv_2d_get_buffer_size(p);\n}\n")
    lib_path = tmp_path / "probe.so"
    subprocess.run(["gcc", *HOST_CFLAGS, "-DTM_DSP_EMULATE", f"-I{ENGINE_DIR}", str(probe), "-o", str(lib_path)],
                   check=True, capture_output=True, text=True)
    lib = ctypes.CDLL(str(lib_path))
    struct_type = header_structs(Path(ENGINE_DIR) / "tm_conv_2d.h")["tm_conv_2d_params_t"]
    monkeypatch.setattr(palette, "CONV_BLOCK_BYTES", 300)
    monkeypatch.setattr(palette, "CONV_BLOCKS_ALWAYS", True)
    blocked = 0
    for bits, granularity in [(4, "layer"), (2, "channel")]:
        layers = lower_graph(load_tflite(block_conv_model(bits, granularity, tmp_path)), "cortex-m4", "speed")
        for i, layer in enumerate(layers):
            kernel_bytes = layer.scratch_bytes
            if palette.palettize_layer(layer, i, f"palette{bits}") is None or not layer.extra["palette"]["chunk"]:
                continue
            if layer.opcode != "CONV_2D":
                continue
            params = struct_type()
            for name, ctype in params._fields_:   # integers; a non-NULL stand-in where an array is given
                value = layer.fields.get(name, 0)
                setattr(params, name, (None if value in (0, "NULL") else 16) if ctype is ctypes.c_void_p
                        else int(value))
            chunk = layer.extra["palette"]["chunk"]
            assert layer.extra["palette_offset"] == lib.probe_kernel_bytes(ctypes.byref(params)) == kernel_bytes
            assert layer.scratch_bytes - layer.extra["palette_offset"] == \
                lib.probe_block_bytes(ctypes.byref(params), ctypes.c_int32(chunk)) <= 300
            blocked += 1
    assert blocked == 8
