"""Per-layer summary of a model: op, shapes, MACs, params, quantization.

Used by `tinyml inspect` for `.tflite` (read with tinyml.tflite_graph) and
`.onnx` (shapes from ONNX shape inference).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import TinymlError


@dataclass
class LayerSummary:
    index: int
    op: str
    inputs: list[tuple[int, ...]]
    outputs: list[tuple[int, ...]]
    macs: int
    params: int
    quantization: str = ""


@dataclass
class ModelSummary:
    path: Path
    format: str
    layers: list[LayerSummary]
    ops: list[str]
    params: int
    macs: int
    size_bytes: int
    arena_bytes: int | None = None
    notes: list[str] = field(default_factory=list)


def _prod(shape) -> int:
    return int(np.prod(shape)) if len(shape) else 1


def conv_macs(op: str, weight_shape: tuple[int, ...], output_shape: tuple[int, ...], channels_last: bool) -> int:
    """MACs of one inference of a convolution or dense layer.

    CONV (TFLite weights OHWI / ONNX OIHW with groups folded into I): every
    output element needs kh*kw*in_per_group MACs. Depthwise TFLite weights are
    1HWC: kh*kw per output element. Dense: one MAC per weight.
    """
    out_elems = _prod(output_shape)
    if op == "FULLY_CONNECTED":  # weights (units, features); output (batch..., units)
        return _prod(weight_shape) * (out_elems // weight_shape[0])
    if op == "DEPTHWISE_CONV_2D":
        return out_elems * weight_shape[1] * weight_shape[2]
    if channels_last:  # CONV_2D: (O, KH, KW, I)
        return out_elems * weight_shape[1] * weight_shape[2] * weight_shape[3]
    return out_elems * _prod(weight_shape[1:])  # ONNX Conv: (O, I/groups, KH, KW)


def _fmt_quant(scale: np.ndarray, zero_point: np.ndarray) -> str:
    if scale.size == 0:
        return ""
    if scale.size == 1:
        return f"s={float(scale[0]):.3g} zp={int(zero_point[0])}"
    return f"per-channel x{scale.size}"


_WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def summarize_tflite(path: Path, measure_arena: bool = True) -> ModelSummary:
    from .tflite_graph import load_tflite

    graph = load_tflite(path)
    layers = []
    for op in graph.operators:
        ins = [graph.tensors[i] for i in op.inputs if i >= 0]
        outs = [graph.tensors[i] for i in op.outputs]
        # Axes and shapes are int32 constants too; only weights and biases are parameters.
        params = sum(t.data.size for k, t in enumerate(ins) if t.data is not None
                     and (t.dtype != np.int32 or (op.opcode in _WEIGHT_OPS and k == 2)))
        macs = 0
        if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and len(ins) > 1:
            macs = conv_macs(op.opcode, ins[1].shape, outs[0].shape, channels_last=True)
        quant = "; ".join(
            q for q in (_fmt_quant(t.scale, t.zero_point) for t in (*ins[:1], *outs[:1], *ins[1:2])) if q
        )
        layers.append(LayerSummary(op.index, op.opcode, [t.shape for t in ins if t.data is None],
                                   [t.shape for t in outs], int(macs), int(params), quant))
    arena = None
    if measure_arena:
        from .verify import measure_arena as tflm_arena

        try:
            arena = tflm_arena(path.read_bytes())
        except TinymlError:
            arena = None
    return ModelSummary(path, "tflite", layers, graph.ops, sum(l.params for l in layers),
                        sum(l.macs for l in layers), graph.size_bytes, arena)


def summarize_onnx(path: Path) -> ModelSummary:
    import onnx
    from onnx import numpy_helper, shape_inference

    try:
        model = onnx.load(str(path))
        model = shape_inference.infer_shapes(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ...
        raise TinymlError(f"{path} is not a readable ONNX model: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    graph = model.graph
    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    shapes: dict[str, tuple[int, ...]] = {}
    for value in (*graph.input, *graph.value_info, *graph.output):
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = tuple(d.dim_value if d.dim_value > 0 else 1 for d in dims)
    for name, array in consts.items():
        shapes[name] = tuple(array.shape)
    layers = []
    for index, node in enumerate(graph.node):
        params = sum(consts[n].size for n in node.input if n in consts)
        out_shape = shapes.get(node.output[0], ())
        macs = 0
        if node.op_type == "Conv" and len(node.input) > 1:
            macs = conv_macs("Conv", shapes[node.input[1]], out_shape, channels_last=False)
        elif node.op_type in ("Gemm", "MatMul") and len(node.input) > 1 and node.input[1] in consts:
            macs = consts[node.input[1]].size
        layers.append(LayerSummary(index, node.op_type, [shapes.get(n, ()) for n in node.input if n and n not in consts],
                                   [out_shape], int(macs), int(params)))
    ops = list(dict.fromkeys(node.op_type for node in graph.node))
    return ModelSummary(path, "onnx", layers, ops, sum(l.params for l in layers), sum(l.macs for l in layers),
                        path.stat().st_size)


def summarize(path: str | Path) -> ModelSummary:
    path = Path(path)
    if not path.is_file():
        raise TinymlError(f"no such model file: {path}")
    if path.suffix == ".onnx":
        return summarize_onnx(path)
    if path.suffix == ".tflite":
        return summarize_tflite(path)
    raise TinymlError(f"{path}: unknown model format (expected .tflite or .onnx)")


def format_table(summary: ModelSummary) -> str:
    rows = [("#", "op", "input", "output", "MACs", "params", "quantization")]
    for l in summary.layers:
        rows.append((str(l.index), l.op, " ".join("x".join(map(str, s)) for s in l.inputs),
                     " ".join("x".join(map(str, s)) for s in l.outputs), f"{l.macs:,}", f"{l.params:,}", l.quantization))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(f"{summary.format} model {summary.path.name}: {len(summary.layers)} layers, "
                 f"{summary.params:,} params, {summary.macs:,} MACs, {summary.size_bytes:,} bytes")
    lines.append("ops: " + ", ".join(summary.ops))
    if summary.arena_bytes is not None:
        lines.append(f"arena (TFLite-Micro, measured on host): {summary.arena_bytes:,} bytes")
    return "\n".join(lines)
