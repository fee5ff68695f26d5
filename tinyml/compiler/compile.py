"""`tinyml compile`: an int8 .tflite -> C99 that runs the model without an interpreter."""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import TinymlError
from ..fsutil import atomic_output_dir
from ..tflite_graph import Graph, load_tflite
from .cwriter import model_header, model_source
from .engine_sources import source_closure
from .layers import TARGETS, Layer, lower_graph
from .palette import WEIGHT_ENCODINGS, PaletteStats, palettize_layer
from .planner import MemoryPlan, plan_memory
from .requant import sizing_all_fast_paths
from .plot import plot_memory_plan
from .unread import drop_unread_arrays


@dataclass
class LayerInfo:
    index: int
    op: str
    operator: int                       # operator index in the .tflite
    input_shapes: list[list[int]]       # activation inputs
    output_shape: list[int]
    macs: int
    params: int
    weight_bytes: int                   # const bytes emitted for this layer
    scratch_bytes: int
    path: str = ""                      # the kernel algorithm the target runs ("generic", "widened patch", ...)
    fallback: str | None = None         # why a DSP target runs this layer on the generic path
    encoding: str = "int8"              # weights: int8, palette4 or palette2 (--weights)
    packed_bytes: int = 0               # palettized: the packed indices
    table_bytes: int = 0                # palettized: the int8 tables
    decoded_bytes: int = 0              # palettized: scratch the weights are decoded into


@dataclass
class CompileResult:
    out_dir: Path
    arena_bytes: int
    weight_bytes: int
    macs: int
    layers: list[LayerInfo]
    target: str
    sha256: str
    engine_sources: list[str]           # kernel .c files in firmware/engine/ that model.c calls


def _layer_infos(graph: Graph, layers: list[Layer]) -> list[LayerInfo]:
    return [
        LayerInfo(
            index=i, op=layer.opcode, operator=layer.op_index,
            input_shapes=[list(graph.tensors[t].shape) for t in layer.inputs],
            output_shape=list(graph.tensors[layer.outputs[0]].shape),
            macs=int(layer.macs), params=int(layer.params),
            weight_bytes=sum(a.nbytes for a in layer.consts), scratch_bytes=int(layer.scratch_bytes),
            path=str(layer.extra.get("path", "")), fallback=layer.extra.get("fallback"),
        )
        for i, layer in enumerate(layers)
    ]


def _apply_weight_encoding(layers: list[Layer], encoding: str) -> dict[int, PaletteStats]:
    """--weights: palettize every weighted layer (compiler/palette.py); {} for int8."""
    if encoding not in WEIGHT_ENCODINGS:
        raise TinymlError(f"unknown weight encoding '{encoding}' (choose from {', '.join(WEIGHT_ENCODINGS)})")
    if encoding == "int8":
        return {}
    stats = {i: s for i, layer in enumerate(layers) if (s := palettize_layer(layer, i, encoding)) is not None}
    if not stats:
        raise TinymlError(f"--weights {encoding}: the model has no CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED "
                          "weights to encode")
    return stats


def _with_encoding(infos: list[LayerInfo], stats: dict[int, PaletteStats]) -> list[LayerInfo]:
    for info in infos:
        if info.index in stats:
            s = stats[info.index]
            info.encoding, info.packed_bytes, info.table_bytes = s.encoding, s.index_bytes, s.table_bytes
            info.decoded_bytes = s.decoded_bytes
    return infos


def _plan_json(graph: Graph, plan: MemoryPlan) -> list[dict]:
    return [
        {"name": b.name, "tensors": b.tensors, "storage": b.storage, "offset": b.offset, "bytes": b.size,
         "first_layer": b.first, "last_layer": b.last, "scratch_of": b.scratch_of,
         "overlaps": b.overlaps, "lag": b.lag}
        for b in plan.buffers
    ]


@dataclass(frozen=True)
class CompiledSize:
    """What a compiled model adds to a firmware image, without writing any file."""

    constants_bytes: int                # every const array model.c holds (flash)
    arena_bytes: int                    # the static arena the memory plan needs (RAM)
    macs: int


def compiled_size(model: str | Path | bytes, target: str = "generic", optimize: str = "speed",
                  all_fast_paths: bool = False, weights: str = "int8") -> CompiledSize:
    """The flash and arena `compile_tflite` would emit for MODEL, from the same lowering
    and memory plan (the budget checks of `tinyml prepare` and `tinyml flash` use it).

    all_fast_paths: size the model as if every layer took its fast requantization path
    (quant.sizing_all_fast_paths): the most constants any weights of this architecture
    can need, for budgets computed before training.
    weights: the encoding `compile_tflite(weights=...)` stores (palette4/palette2: packed
    indices and tables in flash, the decoded layer in the arena's scratch)."""
    if target not in TARGETS:
        raise TinymlError(f"unknown target '{target}' (choose from {', '.join(TARGETS)})")
    graph = load_tflite(model)
    with sizing_all_fast_paths() if all_fast_paths else nullcontext():
        layers = lower_graph(graph, target, optimize)
    encoded = _apply_weight_encoding(layers, weights)
    drop_unread_arrays(layers, sizing_bound=all_fast_paths)
    plan = plan_memory(graph, layers)
    infos = _with_encoding(_layer_infos(graph, layers), encoded)
    return CompiledSize(sum(info.weight_bytes for info in infos), plan.arena_bytes, sum(info.macs for info in infos))


def compile_tflite(model: str | Path, out_dir: Path, target: str = "generic", profile: bool = False,
                   optimize: str = "speed", weights: str = "int8") -> CompileResult:
    """Compile MODEL.tflite into out_dir (model.c, model.h, compile.json, memory_plan.png).

    `profile` records that the caller wants per-layer timing: the generated code
    always has the hooks, enabled by building with -DTINYML_PROFILE.
    `optimize="size"` leaves out the DSP layouts that widen weights to int16 (less
    flash, more instructions); outputs are byte-identical either way.
    `weights="palette4"|"palette2"` stores each weighted layer as packed indices and
    int8 tables (its weights must already take at most 16 / 4 values per output
    channel: `tinyml palettize`), decoded into the layer's scratch at run time.
    """
    if target not in TARGETS:
        raise TinymlError(f"unknown target '{target}' (choose from {', '.join(TARGETS)})")
    graph = load_tflite(model)
    layers = lower_graph(graph, target, optimize)
    encoded = _apply_weight_encoding(layers, weights)
    drop_unread_arrays(layers)
    plan = plan_memory(graph, layers)
    infos = _with_encoding(_layer_infos(graph, layers), encoded)
    weight_bytes = sum(info.weight_bytes for info in infos)
    # Each kernel's file and what its #includes pull in (algorithm files, shared dot loops).
    sources = source_closure({layer.source for layer in layers if not layer.alias}
                             | ({"tm_palette.c"} if encoded else set()))
    summary = {
        "model": str(model) if not isinstance(model, bytes) else "<bytes>",
        "model_sha256": graph.sha256,
        "target": target,
        "profile": profile,
        "optimize": optimize,
        "weights": weights,
        "arena_bytes": plan.arena_bytes,
        "weight_bytes": weight_bytes,
        "macs": sum(info.macs for info in infos),
        "params": sum(info.params for info in infos),
        "engine_sources": sources,
        "layers": [asdict(info) for info in infos],
        "memory_plan": _plan_json(graph, plan),
    }
    out_dir = Path(out_dir)
    with atomic_output_dir(out_dir, keep_existing=False) as tmp:
        (tmp / "model.h").write_text(model_header(graph, layers, plan, target))
        (tmp / "model.c").write_text(model_source(graph, layers, plan, target))
        (tmp / "compile.json").write_text(json.dumps(summary, indent=2) + "\n")
        plot_memory_plan(plan, len(layers), tmp / "memory_plan.png", Path(str(model)).name,
                         [info.op for info in infos])
    return CompileResult(out_dir, plan.arena_bytes, weight_bytes, summary["macs"], infos, target, graph.sha256,
                         sources)
