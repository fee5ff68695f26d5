"""Palettized weights (`tinyml compile --weights palette4|palette2`).

A lowered conv/depthwise/FC layer carries its weights as the int8 `filter` and, on the
DSP paths, as the int16-widened `filter16` (widened-patch conv, row16 FC) or the 3x3
depthwise `packed` words. Palettizing replaces all of them by one stream of packed
2- or 4-bit indices (in the int8 filter's order), an int8 table per layer or per output
channel, and for the DSP layouts the per-channel words that are not weights (bias_folded
and requantization records). At run time tm_palette_decode (firmware/engine/tm_palette.c)
rebuilds, once per invocation, exactly the array the kernel path of the build reads into
the layer's scratch; the kernels are unchanged. `reference_decode` is the same decoder
in numpy: the compiler checks that it reproduces the lowering's arrays byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import TinymlError
from .layers import ConstArray, Layer, c_name

WEIGHT_ENCODINGS = ("int8", "palette4", "palette2")
PALETTE_BITS = {"palette4": 4, "palette2": 2}
PALETTE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
# tm_palette.h layouts
LAYOUT_S8, LAYOUT_FILTER16, LAYOUT_DW3 = 0, 1, 2
DW3_WORDS = 18              # per channel, tm_depthwise_conv_2d.h
SCRATCH_PLACEHOLDER = "@palette_scratch"   # cwriter: the decoded weights' address in the arena
FC_CHUNK_BYTES = 2048       # a fully connected layer's decoded block (at least 4 channels)
# A widened-patch conv layer whose decoded filter16 is above this may run a block of output channels at
# a time (tm_palette_conv_2d_s8), blocks under this bound or its half, quarter or eighth: the memory
# plan takes, layer by layer, the largest block that makes the arena smallest (planner.plan_memory):
# a blocked layer cannot write its output over its input, and every further block widens each pixel's
# patch again (benchmarks/results/palette.md: the bound chosen from a sweep).
CONV_BLOCK_BYTES = 16384
CONV_BLOCK_DIVISORS = (1, 2, 4, 8)
# Tests: every layer that may run in blocks does, whatever the arena (the kernels' block paths).
CONV_BLOCKS_ALWAYS = False


@dataclass(frozen=True)
class PaletteStats:
    encoding: str
    tables: int              # 1 (per layer) or the output channel count
    index_bytes: int
    table_bytes: int
    tail_bytes: int          # per-channel non-weight words of the DSP layouts
    replaced_bytes: int      # the int8/int16 weight arrays it replaces
    layer: Layer = field(repr=False, compare=False)

    @property
    def decoded_bytes(self) -> int:
        """Scratch the decoded array takes (a block of channels where the memory plan chose blocks)."""
        return int(self.layer.scratch_bytes) - int(self.layer.extra["palette_offset"])


def set_conv_blocks(layer: Layer, chunk: int) -> None:
    """Run a palettized conv that may take blocks (extra["palette_blocks"]: its whole scratch and, per
    block size it offers, channels -> scratch) CHUNK output channels at a time, or whole (0)."""
    option = layer.extra["palette_blocks"]
    layer.extra["palette"]["chunk"] = chunk
    layer.scratch_bytes = option["blocks"][chunk] if chunk else option["whole_scratch"]


def _align4(n: int) -> int:
    return (n + 3) // 4 * 4


def pack_indices(indices: np.ndarray, bits: int) -> np.ndarray:
    """Indices (< 2^bits) packed little end first: index i in byte i*bits/8, bit (i*bits) % 8."""
    per = 8 // bits
    flat = np.asarray(indices, np.uint8).reshape(-1)
    padded = np.zeros(_align4((flat.size + per - 1) // per) * per, np.uint8)
    padded[:flat.size] = flat
    groups = padded.reshape(-1, per).astype(np.uint16)
    shifts = (np.arange(per) * bits).astype(np.uint16)
    return (groups << shifts).sum(axis=1).astype(np.uint8)


def _unpack(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    per = 8 // bits
    shifts = np.arange(per) * bits
    return ((packed[:, None].astype(np.int64) >> shifts) & ((1 << bits) - 1)).reshape(-1)[:count]


@dataclass
class _Encoded:
    indices: np.ndarray      # per weight, into its channel's (or the layer's) table
    tables: np.ndarray       # [tables][2^bits] int8


def _encode(filter_values: np.ndarray, channel_of: np.ndarray, channels: int, bits: int, where: str) -> _Encoded:
    size = 1 << bits
    layer_values = np.unique(filter_values)
    if layer_values.size <= size:
        table = np.zeros((1, size), np.int8)
        table[0, :layer_values.size] = layer_values
        return _Encoded(np.searchsorted(layer_values, filter_values), table)
    tables = np.zeros((channels, size), np.int8)
    indices = np.zeros(filter_values.size, np.int64)
    for c in range(channels):
        mask = channel_of == c
        values = np.unique(filter_values[mask])
        if values.size > size:
            raise TinymlError(
                f"{where}: output channel {c} has {values.size} distinct weights, palette{bits} holds at most "
                f"{size} (run `tinyml palettize MODEL --bits {bits}` first)")
        tables[c, :values.size] = values
        indices[mask] = np.searchsorted(values, filter_values[mask])
    return _Encoded(indices, tables)


def _channel_of(count: int, channels: int, channel_minor: bool) -> np.ndarray:
    i = np.arange(count)
    return i % channels if channel_minor else i // (count // channels)


def reference_decode(layout: int, indices: np.ndarray, tables: np.ndarray, channels: int, channel_minor: bool,
                     rows: int, width: int, tail: np.ndarray | None) -> np.ndarray:
    """What tm_palette_decode writes: int8 values (LAYOUT_S8) or int32 words (the DSP layouts)."""
    count = indices.size
    channel = _channel_of(count, channels, channel_minor) if tables.shape[0] > 1 else np.zeros(count, np.int64)
    values = tables[channel, indices].astype(np.int64)
    if layout == LAYOUT_S8:
        return values.astype(np.int8)
    if layout == LAYOUT_FILTER16:
        rw = _align4(width)
        w16 = np.zeros((channels, rows, rw), np.int64)
        w16[:, :, :width] = values.reshape(channels, rows, width)
        w16 = w16.reshape(channels, rows, rw // 4, 4)[..., [0, 2, 1, 3]].reshape(channels, -1) & 0xFFFF
        words = w16[:, 0::2] | (w16[:, 1::2] << 16)
        out = np.concatenate([words, np.asarray(tail, np.int64).reshape(channels, 4) & 0xFFFFFFFF], axis=1)
        return (out & 0xFFFFFFFF).astype(np.uint32).view(np.int32).reshape(-1)
    taps = values.reshape(3, 3, channels)   # [ky][kx][c]
    tl = np.asarray(tail, np.int64).reshape(channels, 4)  # e word, multiplier2, bias_folded + round, round
    out = np.zeros((channels, DW3_WORDS), np.int64)
    for q in range(3):
        seq = np.stack([taps[(s - q) % 3, kx] for kx in range(3) for s in range(3)], axis=1) & 0xFFFF
        out[:, 5 * q:5 * q + 4] = seq[:, 0:8:2] | (seq[:, 1:8:2] << 16)
        out[:, 5 * q + 4] = (seq[:, 8] << 16) | (tl[:, 0] & 0xFFFF)
    out[:, 15:18] = tl[:, 1:4]
    return (out & 0xFFFFFFFF).astype(np.uint32).view(np.int32).reshape(-1)


def fc_lookup_applies(widened: bool, tables: int, bits: int, depth: int) -> bool:
    """tm_palette.h fc_lookup: a row16 FC (filter16) whose rows start on whole index bytes, with one table
    (4 or 2 bits) or, at 2 bits, a table per channel."""
    return widened and (tables == 1 or bits == 2) and depth % (8 // bits) == 0


def fc_lookup_scratch_bytes(bits: int, depth: int, tables: int) -> int:
    """The input row as int16 pairs (to a multiple of four inputs), then for one table the 256 (4 bits)
    or 512 (2 bits) pair words (a table per channel: 16 nibble pairs on the stack)."""
    return _align4(depth) * 2 + (0 if tables > 1 else (256 if bits == 4 else 512) * 4)


def conv_block_channels(channels: int, channel_bytes: int, bound: int) -> int:
    """Output channels per decoded block of a conv layer (channels: the whole layer in one): the fewest
    blocks under BOUND bytes, balanced, of an even count (the widened kernel's channel pairs) where
    that still fits; at least one channel."""
    if channels * channel_bytes <= bound:
        return channels
    fit = max(1, bound // channel_bytes)
    blocks = -(-channels // fit)
    chunk = -(-channels // blocks)
    if chunk % 2 and (chunk + 1) * channel_bytes <= bound:
        chunk += 1
    return chunk


def _const(layer: Layer, name: str) -> ConstArray | None:
    return next((a for a in layer.consts if a.name == name), None)


def palettize_layer(layer: Layer, index: int, encoding: str) -> PaletteStats | None:
    """Replace LAYER's weight arrays by indices + tables + a decode step (in place).
    None when the layer holds no weights."""
    if layer.opcode not in PALETTE_OPS:
        return None
    bits = PALETTE_BITS[encoding]
    where = f"layer {index} ({layer.opcode}, operator {layer.op_index})"
    filt = _const(layer, c_name(index, "filter"))
    assert filt is not None, "a weighted layer always carries its int8 filter"
    f = layer.fields
    depthwise = layer.params_type == "tm_depthwise_conv_2d_params_t"   # every depthwise algorithm: channel-minor taps
    channels = int(f["output_c"] if "output_c" in f else f["output_depth"])
    values = np.asarray(filt.values, np.int64).reshape(-1)
    channel_of = _channel_of(values.size, channels, depthwise)
    encoded = _encode(values, channel_of, channels, bits, where)
    layout, rows, width, tail = LAYOUT_S8, 0, 0, None
    replaced = [filt]
    dsp_array = None
    if "filter16" in f:
        dsp_array = _const(layer, f["filter16"])
        layout = LAYOUT_FILTER16
        if layer.opcode == "FULLY_CONNECTED":
            rows, width = 1, int(f["input_depth"])
        else:
            rows, width = int(f["filter_h"]), int(f["filter_w"]) * int(f["filter_c"])
        words = np.asarray(dsp_array.values, np.int64).reshape(channels, -1)
        tail = words[:, -4:]
    elif "packed" in f:
        dsp_array = _const(layer, f["packed"])
        layout = LAYOUT_DW3
        words = np.asarray(dsp_array.values, np.int64).reshape(channels, DW3_WORDS)
        tail = np.stack([words[:, 4] & 0xFFFF, words[:, 15], words[:, 16], words[:, 17]], axis=1)
        tail[:, 0] = np.where(tail[:, 0] >= 1 << 15, tail[:, 0] - (1 << 16), tail[:, 0])
    decoded_bytes = filt.nbytes
    chunk = fc_lookup = lookup_bytes = 0
    if layer.opcode == "FULLY_CONNECTED" and int(f["batches"]) == 1:
        # Each weight is used once: DSP builds look the weights up inside the dot product when the
        # rows start on whole index bytes under one table (fc_lookup); other builds, and the DSP
        # build otherwise, decode a block of output channels at a time (tm_palette.h).
        depth = int(f["input_depth"])
        fc_lookup = int(fc_lookup_applies(dsp_array is not None, int(encoded.tables.shape[0]), bits, depth))
        lookup_bytes = fc_lookup_scratch_bytes(bits, depth, int(encoded.tables.shape[0])) if fc_lookup else 0
        wide = dsp_array is not None and not fc_lookup
        channel_bytes = max(depth, (_align4(depth) // 2 + 4) * 4 if wide else 0)
        chunk = min(channels, max(4, FC_CHUNK_BYTES // channel_bytes // 4 * 4))
    # The decoder must give back exactly the arrays the lowering made; a layout it cannot
    # rebuild (e.g. an FC channel whose zero multiplier zeroes its widened weights) stays int8.
    if not np.array_equal(reference_decode(LAYOUT_S8, encoded.indices, encoded.tables, channels, depthwise, 0, 0,
                                           None), values.astype(np.int8)):
        raise AssertionError(f"{where}: palette decode does not rebuild the int8 filter")
    if dsp_array is not None:
        rebuilt = reference_decode(layout, encoded.indices, encoded.tables, channels, depthwise, rows, width, tail)
        if not np.array_equal(rebuilt, np.asarray(dsp_array.values).astype(np.int32)):
            layer.extra["encoding_note"] = "kept int8: its widened layout is not the filter's values"
            return None
        replaced.append(dsp_array)
        decoded_bytes = max(decoded_bytes, dsp_array.nbytes)
    if chunk:
        decoded_bytes = max(chunk * channel_bytes, lookup_bytes)
    blocks: list[int] = []
    if layer.opcode == "CONV_2D" and layout == LAYOUT_FILTER16:
        # Blocks of output channels (tm_palette_conv_2d_s8; DSP builds only: the int8 filter other
        # builds would decode is not bounded by the block, so model.c refuses them), if the plan takes them.
        sizes = {conv_block_channels(channels, dsp_array.nbytes // channels, CONV_BLOCK_BYTES // d)
                 for d in CONV_BLOCK_DIVISORS}
        blocks = sorted((b for b in sizes if b < channels), reverse=True)
    packed = pack_indices(encoded.indices, bits)
    if fc_lookup and bits == 4 and depth % 4 == 2:
        packed = np.concatenate([packed, np.zeros(4, np.uint8)])   # the last row's read of one byte past it
    for array in replaced:
        layer.consts.remove(array)
    consts = [ConstArray(c_name(index, "palette_indices"), "uint8_t", packed),
              ConstArray(c_name(index, "palette_table"), "int8_t", encoded.tables.reshape(-1))]
    if tail is not None:
        consts.append(ConstArray(c_name(index, "palette_tail"), "int32_t",
                                 (np.asarray(tail, np.int64).reshape(-1) & 0xFFFFFFFF).astype(np.uint32)
                                 .view(np.int32)))
    layer.consts.extend(consts)
    # The kernel reads the decoded array where it read the constant one.
    for key in ("filter", "filter16", "packed"):
        if key in f and f[key] != "NULL":
            f[key] = SCRATCH_PLACEHOLDER
    layer.extra["palette"] = dict(
        count=int(values.size), channels=channels, bits=bits, tables=int(encoded.tables.shape[0]),
        channel_minor=int(depthwise), indices=consts[0].name, table=consts[1].name, layout=layout,
        rows=rows, width=width, tail=consts[2].name if tail is not None else "NULL", chunk=chunk,
        fc_lookup=fc_lookup,
    )
    kernel_scratch = _align4(layer.scratch_bytes)
    layer.extra["palette_offset"] = kernel_scratch
    layer.scratch_bytes = kernel_scratch + _align4(decoded_bytes)
    if blocks:
        layer.extra["palette_blocks"] = dict(
            whole_scratch=layer.scratch_bytes,
            blocks={b: kernel_scratch + b * dsp_array.nbytes // channels for b in blocks})   # largest first
        set_conv_blocks(layer, blocks[0] if CONV_BLOCKS_ALWAYS else 0)
    return PaletteStats(encoding, int(encoded.tables.shape[0]), consts[0].nbytes, consts[1].nbytes,
                        consts[2].nbytes if tail is not None else 0, sum(a.nbytes for a in replaced), layer)
