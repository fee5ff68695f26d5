"""`tinyml palettize`: cluster each conv/depthwise/FC layer's int8 weights to at most 2^bits values.

The result is still an ordinary full-int8 `.tflite`: same tensors, same scales, every
weight replaced by the int8 centre of its cluster. TFLite-Micro on the host therefore
stays the ground truth for it, and `tinyml compile --weights palette4|palette2` can
store the weights as packed indices plus a table (tinyml/compiler/palette.py).

Clustering is optimal 1-D k-means (least squares) over the int8 values, solved exactly
by dynamic programming on the value histogram (at most 256 distinct values), per output
channel or per layer; each centre is the cluster's mean rounded to an int8.
The weight buffers keep their size, so the file is patched in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import TinymlError
from .tflite_graph import load_tflite

PALETTE_BITS = (2, 4)
GRANULARITIES = ("channel", "layer")
# Weighted ops, and the axis of their filter that holds the output channel.
WEIGHTED_OPS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}


@dataclass(frozen=True)
class PalettizedLayer:
    operator: int
    op: str
    tensor: str
    weights: int
    distinct_before: int          # most distinct values in one table's group (channel or layer)
    distinct_after: int
    rms_error: float              # in int8 steps, over the layer


@dataclass
class PalettizeResult:
    model: bytes                  # the clustered .tflite
    bits: int
    granularity: str
    layers: list[PalettizedLayer] = field(default_factory=list)


def cluster_int8(values: np.ndarray, clusters: int) -> np.ndarray:
    """VALUES (int8) with each replaced by the rounded mean of its cluster in the optimal
    1-D k-means partition into at most CLUSTERS contiguous value ranges."""
    flat = np.asarray(values, np.int64).reshape(-1)
    distinct, counts = np.unique(flat, return_counts=True)
    n = distinct.size
    if n <= clusters:
        return np.asarray(values, np.int8).copy()
    c = counts.astype(np.float64)
    v = distinct.astype(np.float64)
    s0 = np.concatenate([[0.0], np.cumsum(c)])
    s1 = np.concatenate([[0.0], np.cumsum(c * v)])
    s2 = np.concatenate([[0.0], np.cumsum(c * v * v)])
    # cost[j, i]: squared error of one cluster over distinct[j..i] (inf where j > i)
    j = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    w = s0[i + 1] - s0[j]
    with np.errstate(divide="ignore", invalid="ignore"):
        cost = s2[i + 1] - s2[j] - (s1[i + 1] - s1[j]) ** 2 / w
    cost = np.where(j <= i, np.maximum(cost, 0.0), np.inf)
    best = cost[0].copy()                      # best[i]: least error of values 0..i in k + 1 clusters
    starts = np.zeros((clusters, n), np.int64)  # starts[k][i]: first value of the last of k + 1 clusters
    for k in range(1, clusters):
        # candidate[j - 1, i] = best[j - 1] + cost[j, i]: clusters over 0..j-1, then one over j..i
        candidate = best[:-1, None] + cost[1:, :]
        choice = np.argmin(candidate, axis=0)
        starts[k] = choice + 1
        best = candidate[choice, np.arange(n)]
    # Walk back from the last value: each step peels one cluster off the end.
    centre = np.empty(n, np.int64)
    end, k = n - 1, clusters - 1
    while end >= 0:
        start = int(starts[k][end]) if k > 0 else 0
        mean = (s1[end + 1] - s1[start]) / (s0[end + 1] - s0[start])
        centre[start:end + 1] = int(np.clip(np.floor(mean + 0.5), -128, 127))
        end, k = start - 1, k - 1
    return centre[np.searchsorted(distinct, np.asarray(values, np.int64))].astype(np.int8)


def _clustered_filter(weights: np.ndarray, axis: int, clusters: int, granularity: str) -> np.ndarray:
    if granularity == "layer":
        return cluster_int8(weights, clusters)
    moved = np.moveaxis(weights, axis, 0)
    out = np.stack([cluster_int8(channel, clusters) for channel in moved])
    return np.moveaxis(out, 0, axis)


def _distinct_per_group(weights: np.ndarray, axis: int, granularity: str) -> int:
    if granularity == "layer":
        return int(np.unique(weights).size)
    return max(int(np.unique(channel).size) for channel in np.moveaxis(weights, axis, 0))


def _buffer_data_offsets(raw: bytes) -> dict[int, tuple[int, int]]:
    """buffer index -> (byte offset of its data in the file, length) for inline buffers."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(raw, 0)
    offsets = {}
    for b in range(model.BuffersLength()):
        buffer = model.Buffers(b)
        slot = buffer._tab.Offset(4)  # field `data`
        if slot:
            offsets[b] = (buffer._tab.Vector(slot), buffer.DataLength())
    return offsets


def _tensor_buffers(raw: bytes) -> list[int]:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    subgraph = schema.Model.GetRootAs(raw, 0).Subgraphs(0)
    return [subgraph.Tensors(t).Buffer() for t in range(subgraph.TensorsLength())]


def palettize_tflite(model: str | Path | bytes, bits: int, granularity: str = "channel") -> PalettizeResult:
    """A copy of MODEL whose conv, depthwise and fully connected int8 weights take at most
    2^BITS values per output channel (granularity "channel") or per layer ("layer")."""
    if bits not in PALETTE_BITS:
        raise TinymlError(f"palette bits {bits} not supported (choose from {', '.join(map(str, PALETTE_BITS))})")
    if granularity not in GRANULARITIES:
        raise TinymlError(f"unknown palette granularity '{granularity}' (choose from {', '.join(GRANULARITIES)})")
    if isinstance(model, (bytes, bytearray)):
        raw = bytes(model)
    elif Path(model).is_file():
        raw = Path(model).read_bytes()
    else:
        raise TinymlError(f"cannot read {model}: no such file")
    graph = load_tflite(raw)
    offsets = _buffer_data_offsets(raw)
    tensor_buffers = _tensor_buffers(raw)
    patched = bytearray(raw)
    result = PalettizeResult(b"", bits, granularity)
    done: set[int] = set()
    for op in graph.operators:
        if op.opcode not in WEIGHTED_OPS or len(op.inputs) < 2 or op.inputs[1] < 0:
            continue
        tensor = graph.tensors[op.inputs[1]]
        if tensor.data is None or tensor.dtype != np.int8:
            continue  # a float or hybrid model: the compiler names it
        buffer = tensor_buffers[tensor.index]
        if buffer in done:
            continue
        if buffer not in offsets or offsets[buffer][1] != tensor.nbytes:
            raise TinymlError(f"{op.opcode} at operator {op.index}: weights not stored inline in the flatbuffer")
        done.add(buffer)
        axis = WEIGHTED_OPS[op.opcode]
        clustered = _clustered_filter(tensor.data, axis, 1 << bits, granularity)
        start, length = offsets[buffer]
        patched[start:start + length] = clustered.tobytes()
        error = clustered.astype(np.float64) - tensor.data.astype(np.float64)
        result.layers.append(PalettizedLayer(
            op.index, op.opcode, tensor.name, int(tensor.data.size),
            _distinct_per_group(tensor.data, axis, granularity), _distinct_per_group(clustered, axis, granularity),
            float(np.sqrt(np.mean(error ** 2)))))
    if not result.layers:
        raise TinymlError("model has no int8 CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED weights to palettize")
    result.model = bytes(patched)
    load_tflite(result.model)  # still a valid model
    return result


def host_accuracy(model: bytes, vectors: Path) -> tuple[float, int]:
    """(accuracy in %, sample count) of MODEL on host TFLite-Micro over a test_vectors.npz."""
    from .verify import run_tflm

    with np.load(vectors) as data:
        inputs, labels = data["inputs"], data["labels"]
    outputs = run_tflm(model, inputs)
    predicted = np.asarray(outputs).reshape(len(labels), -1).argmax(axis=1)
    return float(100.0 * np.mean(predicted == labels)), int(len(labels))


@dataclass(frozen=True)
class PalettizeReport:
    """What `tinyml palettize` wrote and measured."""

    out_path: Path
    result: PalettizeResult
    vectors: Path | None                # the test set the accuracies come from, if any
    accuracy_int8: float | None         # host TFLite-Micro, %
    accuracy_palettized: float | None
    samples: int


def _write_atomically(path: Path, data: bytes) -> None:
    """Write next to PATH, then rename: a failed run leaves no half-written model."""
    import os
    import tempfile

    from .fsutil import normal_permissions

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        normal_permissions(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def palettize_file(model: Path, out_path: Path, bits: int, granularity: str, vectors: Path | None,
                   progress=lambda text: None) -> PalettizeReport:
    """`tinyml palettize`: cluster MODEL into OUT_PATH; with a test set (VECTORS, or the
    test_vectors.npz of a `tinyml prepare` output beside MODEL), the host TFLite-Micro
    accuracy before and after."""
    if vectors is None and (Path(model).parent / "test_vectors.npz").is_file():
        vectors = Path(model).parent / "test_vectors.npz"
    progress(f"clustering weights to {1 << bits} values per {granularity}")
    result = palettize_tflite(model, bits, granularity)
    before = after = None
    samples = 0
    if vectors is not None:
        progress(f"host TFLite-Micro accuracy on {vectors}")
        before, samples = host_accuracy(Path(model).read_bytes(), vectors)
        after, _ = host_accuracy(result.model, vectors)
    _write_atomically(Path(out_path), result.model)
    return PalettizeReport(Path(out_path), result, vectors, before, after, samples)
