"""PyTorch -> ONNX export: BatchNorm folded, static NCHW `input`, `logits`, checked against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import tinyml.onnx_export as onnx_export
from tinyml.errors import TinymlError
from tinyml.onnx_export import export_onnx, fold_batchnorm


class Student(nn.Module):
    """MobileNet-style: stem, depthwise + pointwise blocks with BatchNorm, global pool, linear."""

    def __init__(self, channels: int = 1, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.dw = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False)
        self.dw_bn = nn.BatchNorm2d(8)
        self.pw = nn.Conv2d(8, 16, 1, bias=False)
        self.pw_bn = nn.BatchNorm2d(16)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(self.dw_bn(self.dw(x)))
        x = nn.functional.relu6(self.pw_bn(self.pw(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class Untraceable(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it, so folding falls back to Sequentials."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = self.body(x)
        if float(x.sum()) > -1e9:   # always true, but fx cannot know
            x = x * 1.0
        return self.fc(x.mean(dim=(2, 3)))


def _randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.rand(n, generator=generator) - 0.5)
    return model.eval()


def _batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


@pytest.mark.parametrize("model_class", [Student, Untraceable])
def test_fold_batchnorm_keeps_outputs(model_class) -> None:
    torch.manual_seed(0)
    model = _randomize_batchnorm(model_class())
    folded, count = fold_batchnorm(model)
    assert count == _batchnorms(model) and _batchnorms(folded) == 0
    assert _batchnorms(model) > 0, "the original must be left untouched"
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(x), folded(x), atol=1e-5)


def test_export_student(tmp_path) -> None:
    torch.manual_seed(0)
    model = _randomize_batchnorm(Student())
    sample = np.random.default_rng(0).random((6, 8, 8, 1), dtype=np.float32)
    result = export_onnx(model, (8, 8, 1), tmp_path / "model.onnx", sample=sample)
    print(f"export max_abs_error {result.max_abs_error:.3g} nodes {result.node_counts}")
    assert result.path == tmp_path / "model.onnx" and result.path.is_file()
    assert result.max_abs_error < 1e-4
    assert "BatchNormalization" not in result.node_counts
    assert result.node_counts["Conv"] == 3 and result.node_counts["Gemm"] == 1
    proto = onnx.load(str(result.path))
    assert result.opset == next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    (graph_input,), (graph_output,) = proto.graph.input, proto.graph.output
    assert graph_input.name == "input" and graph_output.name == "logits"
    dims = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert dims == [1, 1, 8, 8]
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]   # no temp files left


def test_export_random_inputs_without_sample(tmp_path) -> None:
    model = _randomize_batchnorm(Student(channels=3, classes=4))
    result = export_onnx(model, (10, 12, 3), tmp_path / "m.onnx")
    dims = [d.dim_value for d in onnx.load(str(result.path)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 10, 12]
    assert result.max_abs_error < 1e-4


def test_export_untraceable_model(tmp_path) -> None:
    model = _randomize_batchnorm(Untraceable())
    result = export_onnx(model, (6, 6, 1), tmp_path / "u.onnx")
    assert "BatchNormalization" not in result.node_counts


def test_bad_sample_shape(tmp_path) -> None:
    with pytest.raises(TinymlError, match=r"NHWC \(N, 8, 8, 1\)"):
        export_onnx(Student(), (8, 8, 1), tmp_path / "m.onnx", sample=np.zeros((2, 1, 8, 8), np.float32))
    with pytest.raises(TinymlError, match="input_shape"):
        export_onnx(Student(), (8, 8), tmp_path / "m.onnx")
    with pytest.raises(TinymlError, match=r"does not accept an input of shape \(1, 3, 8, 8\)"):
        export_onnx(Student(channels=1), (8, 8, 3), tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_mismatch_raises_and_writes_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(onnx_export, "RELATIVE_TOLERANCE", -1.0)   # any difference, even 0, is too much
    with pytest.raises(TinymlError, match="ONNX export differs from torch"):
        export_onnx(_randomize_batchnorm(Student()), (8, 8, 1), tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())
