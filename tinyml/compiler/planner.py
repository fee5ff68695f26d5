"""Static memory plan: which arena offset each activation tensor and scratch buffer gets.

Tensors that share storage form one buffer: a RESHAPE output is its input, and
an elementwise op may write over its input when that input dies there. The
model input is read in place from the caller's buffer and the model output is
written straight into the caller's buffer, so neither takes arena space.
The rest is placed greedily, largest first, at the lowest aligned offset that
does not collide with a buffer whose lifetime overlaps (as TFLM's greedy planner).

Lagged overlap: a convolution or pooling whose (arena) input dies there may write
its output over that input, starting `lag` bytes below it, where lag is the
least aligned shift such that, in the kernels' processing order, no output byte
is written before the last read of the input byte under it (see overlap_lag).
A palettized conv run in blocks of output channels (compiler/palette.py) reads its whole input
once per block, so it never writes over it: the plan runs such a layer in blocks only where that
makes the arena smaller (its decoded block against the overlap it gives up). Such chains of buffers
are placed as one unit, each buffer at its own relative
offset; the plan keeps whichever of the overlapped and the plain layouts is smaller.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import TinymlError
from ..tflite_graph import Graph
from .layers import Layer
from . import palette

ALIGNMENT = 4


@dataclass
class Buffer:
    id: int
    size: int
    first: int                     # first layer that writes it (-1: valid before layer 0)
    last: int                      # last layer that reads it (len(layers): read after the last layer)
    tensors: list[int] = field(default_factory=list)
    storage: str = "arena"         # "arena", "input" (caller's input), "output" (caller's output)
    offset: int = 0
    scratch_of: int | None = None  # layer index for a scratch buffer
    name: str = ""
    overlaps: int | None = None    # buffer id of the dying input this one is written over (lagged overlap)
    lag: int = 0                   # bytes this buffer starts below `overlaps`


@dataclass
class MemoryPlan:
    buffers: list[Buffer]
    arena_bytes: int
    tensor_buffer: dict[int, int]  # tensor index -> buffer id
    scratch_buffer: dict[int, int]  # layer index -> buffer id

    def tensor_location(self, tensor: int) -> tuple[str, int]:
        buffer = self.buffers[self.tensor_buffer[tensor]]
        return buffer.storage, buffer.offset

    def scratch_location(self, layer: int) -> int:
        return self.buffers[self.scratch_buffer[layer]].offset


def _align(value: int) -> int:
    return (value + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


# Ops whose kernels (generic and DSP paths) walk output pixels in raster order, batch by
# batch, each pixel reading only input pixels of its window (see overlap_lag).
_LAGGED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D")
# Algorithms of those ops that do not: the 3x3 plane for cores without SIMD writes every output
# pixel of one channel before it gathers the next input channel (tm_depthwise_conv_2d_3x3_scalar.c);
# with one input channel (a first convolution) it gathers the whole input before any write.
_CHANNEL_ORDER_PATHS = ("3x3 scalar plane",)


def _first_valid(out_index: int, stride: int, pad: int, taps: int, dilation: int, size: int) -> int | None:
    """The lowest input coordinate read by output coordinate out_index (None: the window is all padding)."""
    start = out_index * stride - pad
    for k in range(taps):
        coordinate = start + k * dilation
        if 0 <= coordinate < size:
            return coordinate
    return None


def overlap_lag(graph: Graph, layer: Layer) -> int | None:
    """Smallest aligned lag (under the model below) at which the output may start `lag` bytes below the input.

    Model of every kernel path (conv generic / DSP im2col / DSP direct 1x1, depthwise
    generic / DSP / 3x3 interior-border split, pooling): output pixels are produced in
    raster order within each batch, the output bytes of pixel p written only after
    pixel p's reads began, and pixel p reads only input pixels of its window. The DSP
    convolution computes two pixels at once (im2col: reads of both, then writes of both;
    direct 1x1: reads and writes of both interleaved), so the model takes writes of a
    whole pair (p, p+1) to happen before any read of that pair: for each pair starting at s, everything it writes must lie below the
    lowest input byte read by any pixel >= s. Conservative for the one-pixel paths.
    None if the layer is not such an op or its shapes are not the plain NHWC case.
    """
    if layer.opcode not in _LAGGED_OPS or len(layer.inputs) != 1 or len(layer.outputs) != 1:
        return None
    if layer.extra.get("palette", {}).get("chunk"):   # blocks of output channels: each reads the whole input
        return None
    if layer.extra.get("path") in _CHANNEL_ORDER_PATHS and int(layer.fields.get("input_c", 0)) != 1:
        return None
    inp, out = graph.tensors[layer.inputs[0]], graph.tensors[layer.outputs[0]]
    if len(inp.shape) != 4 or len(out.shape) != 4 or inp.shape[0] != out.shape[0]:
        return None
    f = layer.fields
    batches, in_h, in_w, in_c = (int(v) for v in inp.shape)
    _, out_h, out_w, out_c = (int(v) for v in out.shape)
    channels = f.get("input_c", f.get("channels"))
    if (f.get("batches"), f.get("input_h"), f.get("input_w"), channels) != (batches, in_h, in_w, in_c):
        return None
    if "output_h" in f and (f["output_h"], f["output_w"]) != (out_h, out_w):
        return None
    in_elements, out_elements = batches * in_h * in_w * in_c, batches * out_h * out_w * out_c
    if not in_elements or not out_elements or inp.nbytes % in_elements or out.nbytes % out_elements:
        return None
    in_pixel = in_c * (inp.nbytes // in_elements)
    out_pixel = out_c * (out.nbytes // out_elements)
    rows = [_first_valid(y, f["stride_h"], f["pad_h"], f["filter_h"], f.get("dilation_h", 1), in_h)
            for y in range(out_h)]
    cols = [_first_valid(x, f["stride_w"], f["pad_w"], f["filter_w"], f.get("dilation_w", 1), in_w)
            for x in range(out_w)]
    pixels = out_h * out_w
    inf = float("inf")
    first_read: list[float] = []
    for n in range(batches):
        base = n * in_h * in_w * in_pixel
        for row in rows:
            for col in cols:
                first_read.append(inf if row is None or col is None else base + (row * in_w + col) * in_pixel)
    # suffix[q]: lowest input byte (relative to the input's start) read by pixel q or later
    suffix = first_read + [inf]
    for q in range(len(first_read) - 1, -1, -1):
        suffix[q] = min(suffix[q], suffix[q + 1])
    lag = 0
    for n in range(batches):
        for start in range(0, pixels, 2):
            s = n * pixels + start
            end = n * pixels + min(start + 2, pixels)
            if suffix[s] != inf:
                lag = max(lag, int(end * out_pixel - suffix[s]))
    return _align(lag)


def _time_overlap(a: Buffer, b: Buffer) -> bool:
    return a.first <= b.last and b.first <= a.last


# Blocks cost instructions (every further block widens each pixel's patch again): after the smallest
# arena is found, each blocked layer takes the largest block, or none, that keeps the arena within this
# fraction of it (a DS-CNN conv saving 128 of 19,520 B for 2% more instructions stays whole:
# benchmarks/results/palette.md).
BLOCK_ARENA_MARGIN = 0.02


def plan_memory(graph: Graph, layers: list[Layer], overlap: bool = True) -> MemoryPlan:
    """The plan of _plan_overlapped, with each palettized conv that may run in blocks of output
    channels in blocks where they make the arena smaller (sets the layers' choice: compiler/palette.py
    set_conv_blocks). First, largest decoded layer first, the block of the least arena (the largest on a
    tie) wherever it is smaller; then each blocked layer back to whole or to its largest block that keeps
    the arena within BLOCK_ARENA_MARGIN of that least."""
    blockable = sorted((i for i, layer in enumerate(layers) if "palette_blocks" in layer.extra),
                       key=lambda i: -layers[i].extra["palette_blocks"]["whole_scratch"])
    always = palette.CONV_BLOCKS_ALWAYS   # (tests: the largest block everywhere)
    for i in blockable:
        palette.set_conv_blocks(layers[i], next(iter(layers[i].extra["palette_blocks"]["blocks"])) if always else 0)
    plan = _plan_overlapped(graph, layers, overlap)
    if always or not blockable:
        return plan
    chosen = {i: 0 for i in blockable}
    for i in blockable:
        for chunk in layers[i].extra["palette_blocks"]["blocks"]:   # largest first: fewest blocks on a tie
            palette.set_conv_blocks(layers[i], chunk)
            trial = _plan_overlapped(graph, layers, overlap)
            if trial.arena_bytes < plan.arena_bytes:
                plan, chosen[i] = trial, chunk
        palette.set_conv_blocks(layers[i], chosen[i])
    bound = plan.arena_bytes * (1 + BLOCK_ARENA_MARGIN)
    for i in [i for i in blockable if chosen[i]]:
        for chunk in [0, *(c for c in layers[i].extra["palette_blocks"]["blocks"] if c > chosen[i])]:
            palette.set_conv_blocks(layers[i], chunk)
            trial = _plan_overlapped(graph, layers, overlap)
            if trial.arena_bytes <= bound:
                plan, chosen[i] = trial, chunk
                break
        palette.set_conv_blocks(layers[i], chosen[i])
    return _plan_overlapped(graph, layers, overlap)


def _plan_overlapped(graph: Graph, layers: list[Layer], overlap: bool = True) -> MemoryPlan:
    """Greedy plan; with overlap, lagged overlaps wherever they make the arena smaller.

    Every candidate overlap is tried, then each is dropped again in layer order when the
    arena does not grow without it (a long chain of overlaps drifts down by the sum of
    its lags, which can cost more than it saves).
    """
    lags: dict[int, int] = {}
    if overlap:
        for i, layer in enumerate(layers):
            if not layer.alias:
                lag = overlap_lag(graph, layer)
                if lag is not None:
                    lags[i] = lag
    plan = _plan_memory(graph, layers, lags)
    for i in sorted(lags):
        if plan.buffers and all(b.overlaps is None for b in plan.buffers):
            break
        trial_lags = {k: v for k, v in lags.items() if k != i}
        trial = _plan_memory(graph, layers, trial_lags)
        if trial.arena_bytes <= plan.arena_bytes:
            plan, lags = trial, trial_lags
    plain = _plan_memory(graph, layers, {})
    return plan if plan.arena_bytes < plain.arena_bytes else plain


def _plan_memory(graph: Graph, layers: list[Layer], lags: dict[int, int]) -> MemoryPlan:
    """Greedy plan with the lagged overlaps of the layers in `lags` (layer index -> lag) where allowed."""
    model_in, model_out = graph.inputs[0], graph.outputs[0]
    if model_in == model_out:
        raise TinymlError("model output is its input: nothing to compile")
    parent: dict[int, int] = {}

    def find(t: int) -> int:
        while parent.setdefault(t, t) != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    def union(a: int, b: int) -> None:
        parent[find(b)] = find(a)

    # Last reader of every tensor, to know whether an input dies at an in-place op.
    last_read: dict[int, int] = {}
    for i, layer in enumerate(layers):
        for t in layer.inputs:
            last_read[t] = i
    last_read[model_out] = len(layers)

    def role(root: int) -> set[str]:
        members = [t for t in list(parent) if find(t) == root]
        return {"input" for t in members if t == model_in} | {"output" for t in members if t == model_out}

    for i, layer in enumerate(layers):
        for t in (*layer.inputs, *layer.outputs):
            find(t)
        if layer.alias:
            src, dst = layer.inputs[0], layer.outputs[0]
            roles = role(find(src)) | role(find(dst))
            if roles == {"input", "output"}:
                raise TinymlError("model output is a reshape of its input: nothing to compile")
            union(src, dst)
        elif layer.in_place:
            src, dst = layer.inputs[0], layer.outputs[0]
            src_roles = role(find(src))
            dies_here = last_read.get(src, -1) == i and src not in layer.inputs[1:]
            if dies_here and "input" not in src_roles and not (src_roles and role(find(dst))):
                # Same storage only if no later reader of src (or of anything aliased to it).
                group = [t for t in list(parent) if find(t) == find(src)]
                if all(last_read.get(t, -1) <= i for t in group):
                    union(src, dst)

    groups: dict[int, list[int]] = {}
    for t in list(parent):
        groups.setdefault(find(t), []).append(t)
    producer: dict[int, int] = {}
    for i, layer in enumerate(layers):
        for t in layer.outputs:
            producer.setdefault(t, i)

    buffers: list[Buffer] = []
    tensor_buffer: dict[int, int] = {}
    for members in groups.values():
        members.sort()
        size = max(graph.tensors[t].nbytes for t in members)
        first = min((producer.get(t, -1) if t != model_in else -1) for t in members)
        last = max(last_read.get(t, first) for t in members)
        storage = "input" if model_in in members else "output" if model_out in members else "arena"
        if storage == "output" and size > graph.tensors[model_out].nbytes:
            storage = "arena"  # cannot happen for reshape/elementwise, kept as a guard
        buffer = Buffer(len(buffers), size, first, last, members, storage, name=graph.tensors[members[0]].name)
        buffers.append(buffer)
        for t in members:
            tensor_buffer[t] = buffer.id
    scratch_buffer: dict[int, int] = {}
    for i, layer in enumerate(layers):
        if layer.scratch_bytes:
            buffer = Buffer(len(buffers), layer.scratch_bytes, i, i, [], "arena", scratch_of=i,
                            name=f"scratch of layer {i}")
            buffers.append(buffer)
            scratch_buffer[i] = buffer.id

    # Lagged overlaps: chains of buffers placed as one unit, each at a relative offset.
    unit_of: dict[int, int] = {b.id: b.id for b in buffers}
    units: dict[int, list[tuple[Buffer, int]]] = {b.id: [(b, 0)] for b in buffers}
    for i, layer in enumerate(layers):
        if i in lags:
            src = buffers[tensor_buffer[layer.inputs[0]]]
            dst = buffers[tensor_buffer[layer.outputs[0]]]
            if src is dst or src.storage != "arena" or dst.storage != "arena":
                continue
            # The input must die here (no later reader of it or of anything sharing its storage)
            # and the output must be born here and not yet be part of a chain.
            if src.last != i or dst.first != i or len(units[unit_of[dst.id]]) != 1:
                continue
            lag = lags[i]
            root = unit_of[src.id]
            rel = dict((b.id, r) for b, r in units[root])[src.id]
            units[root].append((dst, rel - lag))
            del units[dst.id]
            unit_of[dst.id] = root
            dst.overlaps, dst.lag = src.id, lag

    placed: list[Buffer] = []
    arena_bytes = 0
    items = []
    for members in units.values():
        if members[0][0].storage != "arena":
            continue
        low = min(r for _, r in members)
        members = [(b, r - low) for b, r in members]
        extent = max(r + b.size for b, r in members)
        first = min(b.first for b, _ in members)
        items.append((extent, first, members[0][0].id, members))
    for _, _, _, members in sorted(items, key=lambda item: (-item[0], item[1], item[2])):
        candidates = {0}
        for b, r in members:
            for other in placed:
                if _time_overlap(b, other):
                    candidates.add(max(0, _align(other.offset + other.size - r)))
        for offset in sorted(candidates):
            if all(not _time_overlap(b, other) or offset + r + b.size <= other.offset
                   or other.offset + other.size <= offset + r
                   for b, r in members for other in placed):
                break
        for b, r in members:
            b.offset = offset + r
            placed.append(b)
            arena_bytes = max(arena_bytes, b.offset + b.size)
    return MemoryPlan(buffers, _align(arena_bytes), tensor_buffer, scratch_buffer)
