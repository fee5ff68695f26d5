"""PyTorch student -> ONNX (NCHW float input `input`, output `logits`).

BatchNorm is folded into the convolution before it explicitly, so the ONNX
graph (and everything downstream) never carries a BatchNormalization after a
Conv. The export is checked against onnxruntime on the given samples.
"""

from __future__ import annotations

import copy
import io
import os
import tempfile
import warnings
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import TinymlError
from .fsutil import normal_permissions

OPSET = 17
# The export fails when |torch - onnxruntime| exceeds this fraction of the logit scale.
RELATIVE_TOLERANCE = 1e-4
_RANDOM_SAMPLES = 8


@dataclass
class OnnxExport:
    path: Path
    opset: int
    max_abs_error: float          # torch vs onnxruntime over the checked inputs
    node_counts: dict[str, int]   # ONNX op_type -> number of nodes


def fold_batchnorm(model: torch.nn.Module) -> tuple[torch.nn.Module, int]:
    """A copy of `model` in eval mode with every Conv2d -> BatchNorm2d pair folded.

    Returns the copy and the number of folded pairs. Tries torch.fx first (finds
    the pairs however forward() wires them) and falls back to adjacent modules
    in nn.Sequential containers when the model cannot be traced.
    """
    model = copy.deepcopy(model).eval()
    try:
        return _fold_with_fx(model)
    except Exception:  # noqa: BLE001 - fx cannot trace every model; the fallback covers the common case
        return _fold_in_sequentials(model)


def _fused(conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d) -> torch.nn.Conv2d:
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    return fuse_conv_bn_eval(conv.eval(), bn.eval())


def _foldable(conv: torch.nn.Module, bn: torch.nn.Module) -> bool:
    return (isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d)
            and bn.track_running_stats and bn.num_features == conv.out_channels)


def _fold_with_fx(model: torch.nn.Module) -> tuple[torch.nn.Module, int]:
    import torch.fx

    traced = torch.fx.symbolic_trace(model)
    modules = dict(traced.named_modules())
    folded = 0
    for node in list(traced.graph.nodes):
        if node.op != "call_module" or not isinstance(modules.get(node.target), torch.nn.BatchNorm2d):
            continue
        source = node.args[0] if node.args else None
        if not isinstance(source, torch.fx.Node) or source.op != "call_module" or len(source.users) != 1:
            continue
        conv, bn = modules[source.target], modules[node.target]
        if not _foldable(conv, bn):
            continue
        _set_submodule(traced, source.target, _fused(conv, bn))
        modules[source.target] = traced.get_submodule(source.target)
        node.replace_all_uses_with(source)
        traced.graph.erase_node(node)
        folded += 1
    traced.graph.lint()
    traced.recompile()
    traced.delete_all_unused_submodules()   # the folded BatchNorms
    return traced.eval(), folded


def _set_submodule(root: torch.nn.Module, dotted: str, module: torch.nn.Module) -> None:
    parent_name, _, leaf = dotted.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, leaf, module)


def _fold_in_sequentials(model: torch.nn.Module) -> tuple[torch.nn.Module, int]:
    folded = 0
    for container in model.modules():
        if not isinstance(container, torch.nn.Sequential):
            continue
        names = list(container._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = container._modules[first], container._modules[second]
            if conv is not None and bn is not None and _foldable(conv, bn):
                container._modules[first] = _fused(conv, bn)
                container._modules[second] = torch.nn.Identity()
                folded += 1
    return model, folded


def _check_inputs(input_shape: tuple[int, int, int], sample: np.ndarray | None) -> np.ndarray:
    """NCHW float32 inputs to compare torch and onnxruntime on."""
    if len(input_shape) != 3 or any(int(d) <= 0 for d in input_shape):
        raise TinymlError(f"input_shape must be (H, W, C) with positive sizes, got {tuple(input_shape)}")
    h, w, c = (int(d) for d in input_shape)
    if sample is None:
        rng = np.random.default_rng(0)
        return rng.random((_RANDOM_SAMPLES, c, h, w), dtype=np.float32)
    sample = np.asarray(sample, dtype=np.float32)
    if sample.ndim == 3:
        sample = sample[None]
    if sample.ndim != 4 or sample.shape[1:] != (h, w, c) or len(sample) == 0:
        raise TinymlError(f"export sample must be NHWC (N, {h}, {w}, {c}), got shape {sample.shape}")
    return np.ascontiguousarray(sample.transpose(0, 3, 1, 2))


def export_onnx(model: torch.nn.Module, input_shape: tuple[int, int, int], path: Path,
                sample: np.ndarray | None = None) -> OnnxExport:
    """Export `model` (eval mode, BatchNorm folded) to ONNX at `path`, checked against onnxruntime.

    `input_shape` is (H, W, C); the ONNX input is NCHW (1, C, H, W) float named
    `input`, the output `logits`. `sample` (NHWC float) are the inputs the check
    runs on; without it, uniform random inputs in [0, 1).
    """
    import onnx

    path = Path(path)
    inputs = _check_inputs(input_shape, sample)
    original = copy.deepcopy(model).eval()
    folded_model, _ = fold_batchnorm(model)
    dummy = torch.from_numpy(inputs[:1])
    try:
        with torch.no_grad():
            folded_model(dummy)
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TinymlError(f"the model does not accept an input of shape {tuple(dummy.shape)} (NCHW): "
                          f"{first_line}") from exc

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # The legacy TorchScript exporter: the dynamo one needs onnxscript, which is not a dependency.
        with torch.no_grad(), warnings.catch_warnings(), redirect_stdout(io.StringIO()), \
                redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(folded_model, (dummy,), str(tmp), input_names=["input"],
                              output_names=["logits"], opset_version=OPSET, do_constant_folding=True,
                              dynamo=False)
        proto = onnx.load(str(tmp))
        onnx.checker.check_model(proto)
        _check_no_conv_batchnorm(proto)
        max_abs_error, logit_scale = _compare_with_onnxruntime(original, tmp, inputs)
        if max_abs_error > RELATIVE_TOLERANCE * logit_scale:
            raise TinymlError(f"ONNX export differs from torch: max abs error {max_abs_error:.3g} on logits of "
                              f"scale {logit_scale:.3g} (allowed {RELATIVE_TOLERANCE:g} relative)")
        normal_permissions(tmp)  # mkstemp made it 0600
        tmp.replace(path)
    except torch.onnx.errors.OnnxExporterError as exc:  # pragma: no cover - depends on the model
        raise TinymlError(f"ONNX export failed: {str(exc).splitlines()[0]}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    counts = Counter(node.op_type for node in proto.graph.node)
    return OnnxExport(path=path, opset=OPSET, max_abs_error=max_abs_error, node_counts=dict(sorted(counts.items())))


def _check_no_conv_batchnorm(proto) -> None:
    producers = {out: node for node in proto.graph.node for out in node.output}
    for node in proto.graph.node:
        if node.op_type == "BatchNormalization" and node.input:
            source = producers.get(node.input[0])
            if source is not None and source.op_type == "Conv":
                raise TinymlError(f"BatchNormalization '{node.name}' after Conv '{source.name}' was not folded "
                                  "(is the BatchNorm used by more than the conv's output?)")


def _compare_with_onnxruntime(model: torch.nn.Module, onnx_path: Path, inputs: np.ndarray) -> tuple[float, float]:
    """Max |torch - onnxruntime| over the inputs, and the logit scale max(1, max |torch|)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    max_error, scale = 0.0, 1.0
    with torch.no_grad():
        for x in inputs:
            batch = x[None]
            expected = model(torch.from_numpy(batch)).detach().numpy().astype(np.float64)
            got = session.run(None, {"input": batch})[0].astype(np.float64)
            if got.shape != expected.shape:
                raise TinymlError(f"ONNX output shape {got.shape} differs from torch {expected.shape}")
            max_error = max(max_error, float(np.max(np.abs(got - expected))))
            scale = max(scale, float(np.max(np.abs(expected))))
    return max_error, scale
