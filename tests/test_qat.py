"""Quantization-aware training (tinyml/qat.py, tinyml/qat_select.py): the fake-quantized forward
against the int8 arithmetic of the real TFLite-Micro, the learned ranges read back from the .tflite,
`tinyml prepare --qat` on digits with tiny epochs, and bad QAT options."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from cli_rules import assert_bad_input
from tinyml import models, qat
from tinyml.errors import TinymlError


def _student(depth: int, seed: int = 0) -> torch.nn.Module:
    """An untrained student with BatchNorm statistics far from the identity (folding must matter)."""
    torch.manual_seed(seed)
    student = models.build_student(models.StudentConfig(1.0, depth), (8, 8, 1), 10)
    for module in student.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.2, 2.0)
            module.weight.data.uniform_(0.5, 2.0)
            module.bias.data.uniform_(-0.2, 0.3)
    return student.eval()


def _images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((count, 8, 8, 1), dtype=np.float32)


def test_activation_quantizer_is_on_the_int8_grid_and_learns_its_clipping():
    quantizer = qat.ActivationQuantizer("act", 0.0, 2.0, learn_low=False)
    x = torch.tensor([-1.0, 0.0, 0.3, 1.0, 1.99, 5.0], requires_grad=True)
    y = quantizer(x)
    scale, zero_point = quantizer.scale_and_zero_point()
    assert int(zero_point) == -128 and float(scale.detach()) == pytest.approx(2.0 / 255, rel=1e-6)
    codes = y.detach() / scale.detach() + zero_point
    assert torch.allclose(codes, torch.round(codes), atol=1e-4)               # on the grid
    assert float(y[0].detach()) == 0.0 and float(y[-1].detach()) == pytest.approx(2.0, rel=1e-5)  # saturates like int8
    y[-1].backward()
    assert quantizer.log_high.grad is not None and float(quantizer.log_high.grad) > 0  # PACT: clipping pulls the range
    assert x.grad is not None and float(x.grad[-1]) == 0.0                        # no gradient past the range


def test_weight_scales_per_channel_and_per_tensor():
    weight = torch.tensor([[1.0, -2.0], [0.5, 0.25], [-127.0, 3.0]])
    assert torch.allclose(qat.weight_scales(weight, "per-channel"), torch.tensor([2.0, 0.5, 127.0]) / 127)
    assert torch.allclose(qat.weight_scales(weight, "per-tensor"), torch.full((3,), 1.0))


def test_a_student_that_is_not_of_the_family_is_refused():
    with pytest.raises(TinymlError, match="student of the tinyml family"):
        qat.build_qat_net(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3)), _images(4, 0))
    with pytest.raises(TinymlError, match="unknown weight granularity"):
        qat.build_qat_net(_student(0), _images(4, 0), granularity="per-row")


@pytest.fixture(scope="module")
def small_export(tmp_path_factory):
    """A one-conv student (stem conv, pool, classifier) and a depthwise-separable one, with their
    ranges moved away from the min/max calibration, exported to .tflite."""
    out = tmp_path_factory.mktemp("qat")
    exports = {}
    for depth in (0, 2):
        net = qat.build_qat_net(_student(depth, seed=depth), _images(200, 1))
        calibrated = net.ranges()
        with torch.no_grad():   # as training would: clip the convs at 70% of the calibrated range, the rest at 80%
            for quantizer in net.quantizers():
                shrink = math.log(0.7 if quantizer.name.startswith("conv") else 0.8) / qat._RANGE_SPEED
                quantizer.log_high += shrink
                if quantizer.learn_low:
                    quantizer.log_neg_low += shrink
        path = out / f"d{depth}.tflite"
        qat.export_qat_tflite(net, (8, 8, 1), _images(200, 1), path, out / f"d{depth}.onnx")
        exports[depth] = (net, calibrated, path.read_bytes())
    return exports


@pytest.mark.slow
@pytest.mark.parametrize("depth", [0, 2])
def test_fake_quant_forward_is_bit_exact_with_tflite_micro_int8(small_export, depth):
    from tinyml.verify import run_tflm, quantize_input, io_quantization

    net, _, model = small_export[depth]
    x = _images(300, 7)
    in_q, out_q = io_quantization(model)
    outputs = run_tflm(model, quantize_input(x, in_q))
    fake = qat.fake_quant_int8_outputs(net, x)
    assert out_q.scale == pytest.approx(net.classifier.output.learned().scale, rel=1e-6)
    # The fake-quantized forward's values are TFLite-Micro's integer arithmetic: bit-exact.
    difference = np.abs(outputs.astype(np.int32) - fake)
    assert np.array_equal(outputs, fake), (difference.max(), np.mean(difference == 0))


@pytest.mark.slow
@pytest.mark.parametrize("depth", [0, 2])
def test_tflite_scales_are_the_learned_ones_not_a_recalibration(small_export, depth):
    from tinyml.tflite_graph import load_tflite

    net, calibrated, model = small_export[depth]
    graph = load_tflite(model)
    learned = {r.name: r for r in net.ranges()}
    ordered = list(learned.values())
    weighted = [op for op in graph.operators if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    means = [op for op in graph.operators if op.opcode == "MEAN"]
    outputs = [graph.tensors[op.outputs[0]] for op in weighted[:-1]] + \
              [graph.tensors[means[0].outputs[0]], graph.tensors[weighted[-1].outputs[0]]]
    assert len(outputs) == len(ordered) == 2 * depth + 3
    for tensor, expected, before in zip(outputs, ordered, calibrated):
        assert tensor.scale.size == 1
        assert float(tensor.scale[0]) == np.float32(expected.scale), (tensor.name, expected)
        assert int(tensor.zero_point[0]) == expected.zero_point
        # Moved away from the calibration: a re-calibration would not give these scales.
        assert abs(float(tensor.scale[0]) / before.scale - 1) > 0.1, (tensor.name, before, expected)
    # Weights and biases are the fake-quantized net's integers, biases at input scale x weight scale.
    for op, layer in zip(weighted, qat.layer_quantization(net)):
        weights, biases = graph.tensors[op.inputs[1]], graph.tensors[op.inputs[2]]
        assert np.array_equal(weights.data, layer.weights) and np.array_equal(biases.data, layer.biases)
        assert np.array_equal(weights.scale, layer.weight_scales)
        source = graph.tensors[op.inputs[0]]
        assert np.allclose(biases.scale, np.float32(source.scale[0]) * layer.weight_scales, rtol=1e-6)


@pytest.mark.slow
def test_per_tensor_weights_carry_one_scale_per_layer(tmp_path):
    from tinyml.tflite_graph import load_tflite

    net = qat.build_qat_net(_student(1), _images(50, 2), granularity="per-tensor")
    qat.export_qat_tflite(net, (8, 8, 1), _images(50, 2), tmp_path / "m.tflite", tmp_path / "m.onnx")
    graph = load_tflite(tmp_path / "m.tflite")
    for op in graph.operators:
        if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            scales = graph.tensors[op.inputs[1]].scale
            assert scales.size > 1 and np.all(scales == scales[0])


@pytest.mark.slow
def test_prepare_with_qat_reports_both_int8_accuracies(tmp_path):
    out = tmp_path / "digits"
    result = subprocess.run([sys.executable, "-m", "tinyml.cli", "prepare", "--dataset", "digits", "--board",
                             "stm32f405", "--out", str(out), "--epochs", "3", "--teacher-epochs", "2", "--no-sweep",
                             "--qat", "--qat-epochs", "2", "--quiet"], capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    q = report["quantization"]
    assert q["mode"] == "on" and q["kept"] == "qat" and q["reason"].startswith("--qat")
    assert 0 < report["ptq_int8_accuracy"] <= 1 and 0 < report["qat_int8_accuracy"] <= 1
    assert report["student_int8_accuracy"] == report["qat_int8_accuracy"]
    assert q["qat_tflite_vs_fake_quant"]["argmax_agreement"] > 0.9
    assert "quantization-aware" in result.stdout
    # The kept .tflite carries the learned ranges (its output tensor's scale is the learned logits range).
    from tinyml.tflite_graph import load_tflite

    graph = load_tflite(out / "model.tflite")
    output = graph.tensors[graph.outputs[0]]
    assert float(output.scale[0]) == np.float32(q["qat_ranges"][-1]["scale"])
    assert report["model_sha256"] == json.loads((out / "manifest.json").read_text())["model_sha256"]
    markdown = (out / "report.md").read_text()
    assert "post-training vs quantization-aware" in markdown and "Kept: **QAT**" in markdown
    assert not (out / ".qat").exists()


@pytest.mark.parametrize("args, message", [
    (("--no-qat", "--qat-epochs", "3"), "--qat-epochs applies to quantization-aware training"),
    (("--qat", "--qat-epochs", "0"), "--qat-epochs must be at least 1"),
])
def test_bad_qat_options_are_one_line_before_training(tmp_path, args, message):
    result = subprocess.run([sys.executable, "-m", "tinyml.cli", "prepare", "--dataset", "digits", "--board",
                             "stm32f405", "--out", "out", *args], capture_output=True, text=True, cwd=tmp_path,
                            timeout=300)
    assert_bad_input(result, message, only_line=True)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_graph_that_is_not_the_qat_network_is_refused(small_export):
    net_two_blocks, _, _ = small_export[2]
    _, _, one_conv_model = small_export[0]
    with pytest.raises(TinymlError, match="cannot hold the QAT values"):
        qat.write_learned_quantization(one_conv_model, net_two_blocks)


class _Checked:
    def __init__(self, accuracy: float) -> None:
        self.int8_accuracy = accuracy
        self.outputs = np.zeros((4, 10), np.int8)
        self.predictions = np.zeros(4, np.int64)


@pytest.mark.parametrize("mode, ptq_val, qat_val, kept, ran_qat", [
    ("auto", 0.950, None, "ptq", False),    # loses 0.4 points: no QAT
    ("auto", 0.900, 0.940, "qat", True),    # loses 4.4 points, QAT better on validation: kept
    ("auto", 0.900, 0.890, "ptq", True),    # QAT ran but is worse on validation: PTQ kept
    ("on", 0.954, 0.950, "qat", True),      # --qat keeps QAT
    ("off", 0.500, None, "ptq", False),     # --no-qat never runs it
])
def test_choice_between_ptq_and_qat_is_made_on_validation(tmp_path, monkeypatch, mode, ptq_val, qat_val, kept,
                                                          ran_qat):
    from types import SimpleNamespace

    import tinyml.distill
    import tinyml.verify
    from tinyml import qat_select

    (tmp_path / "model.tflite").write_bytes(b"ptq")
    (tmp_path / "model.onnx").write_bytes(b"ptq onnx")
    splits = SimpleNamespace(x_val=np.zeros((4, 8, 8, 1)), y_val=np.zeros(4), x_test=np.zeros((4, 8, 8, 1)),
                             y_test=np.zeros(4), x_train=np.zeros((4, 8, 8, 1)), input_shape=(8, 8, 1))
    monkeypatch.setattr(tinyml.distill, "evaluate", lambda model, x, y: 0.954)
    monkeypatch.setattr(tinyml.distill, "predict_logits", lambda model, x: np.zeros((len(x), 10)))

    def verify(model: bytes, x, y, float_logits=None):
        return _Checked({b"ptq": ptq_val, b"qat": qat_val}[model] if x is splits.x_val else 0.5)

    def export(net, input_shape, calibration, path, onnx_path):
        path.write_bytes(b"qat")
        onnx_path.write_bytes(b"qat onnx")
        return SimpleNamespace(quantized=SimpleNamespace(path=path))

    finetuned = SimpleNamespace(model=None, ranges=[], initial_ranges=[], val_accuracy=qat_val)
    monkeypatch.setattr(tinyml.verify, "verify_tflite", verify)
    monkeypatch.setattr(qat, "quantization_aware_finetune", lambda *args, **kwargs: finetuned)
    monkeypatch.setattr(qat, "export_qat_tflite", export)
    monkeypatch.setattr(qat, "fake_quant_int8_outputs", lambda net, x: np.zeros((len(x), 10), np.int8))
    monkeypatch.setattr(qat, "supports_student", lambda student: True)   # no student here: the choice alone
    choice = qat_select.choose_quantization(mode, None, splits, None, "none", _Checked(0.5), tmp_path, 2, 0,
                                            lambda text: None)
    assert choice.kept == kept and choice.report["kept"] == kept and choice.reason == choice.report["reason"]
    assert (choice.report["qat_int8_val_accuracy"] is not None) == ran_qat
    assert (tmp_path / "model.tflite").read_bytes() == (b"qat" if kept == "qat" else b"ptq")
    assert (tmp_path / "model.onnx").read_bytes() == (b"qat onnx" if kept == "qat" else b"ptq onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.tflite"]   # no scratch left


def test_qat_takes_pooled_students_only():
    from tinyml.models import StudentConfig, build_student
    from tinyml.qat import supports_student

    assert supports_student(build_student(StudentConfig.parse("w1.00-d1-e1"), (8, 8, 1), 10))
    # A flatten head is not modelled by QatNet: prepare's auto mode keeps post-training int8 for it.
    assert not supports_student(build_student(StudentConfig.parse("w1.00-d1-e1-f"), (8, 8, 1), 10))
