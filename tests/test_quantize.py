"""Full-int8 quantization: a small CNN trained on sklearn's bundled 8x8 digits, run in the
real TFLite-Micro interpreter, compared with the float model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tinyml.errors import TinymlError
from tinyml.onnx_export import export_onnx
from tinyml.onnx_to_tf.converter import TfModel, convert_onnx
from tinyml.quantize import QuantizedModel, check_int8_model, convert_onnx_to_tflite, quantize_int8


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
            nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """(float torch model, ONNX path, x_train, x_test) for 8x8x1 digits in [0, 1], NHWC."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    x_train, y_train, x_test = x[:1400], y[:1400], x[1400:]
    torch.manual_seed(0)
    model = TinyNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    inputs = torch.from_numpy(np.ascontiguousarray(x_train.transpose(0, 3, 1, 2)))
    targets = torch.from_numpy(y_train)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # tiny batches: extra threads only spin against the other jobs on the machine
    try:
        model.train()
        for _ in range(20):
            for start in range(0, len(inputs), 128):
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(inputs[start:start + 128]), targets[start:start + 128])
                loss.backward()
                optimizer.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    path = tmp_path_factory.mktemp("digits") / "model.onnx"
    export_onnx(model, (8, 8, 1), path, sample=x_test[:16])
    return model, path, x_train, x_test


def _tflm_outputs(path: Path, x: np.ndarray, result: QuantizedModel) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_file(str(path))
    q = np.clip(np.round(x / result.input_scale) + result.input_zero_point, -128, 127).astype(np.int8)
    outputs = []
    for sample in q:
        interpreter.set_input(sample[None], 0)
        interpreter.invoke()
        outputs.append(interpreter.get_output(0).copy())
    return np.concatenate(outputs)


@pytest.mark.slow
def test_quantized_digits_model_agrees_with_float(digits_model, tmp_path) -> None:
    model, onnx_path, x_train, x_test = digits_model
    tf_model = convert_onnx(onnx_path)
    result = quantize_int8(tf_model, x_train, tmp_path / "model.tflite", num_calibration=100)
    print(f"quantized ops {result.ops}, {result.size_bytes} bytes, input scale {result.input_scale:.6g} "
          f"zp {result.input_zero_point}, output scale {result.output_scale:.6g} zp {result.output_zero_point}")

    assert result.path == tmp_path / "model.tflite"
    assert result.size_bytes == result.path.stat().st_size
    assert [p.name for p in tmp_path.iterdir()] == ["model.tflite"]
    assert not {"TRANSPOSE", "DEQUANTIZE"} & set(result.ops)
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} <= set(result.ops)
    assert result.input_shape == (1, 8, 8, 1) and result.output_shape == (1, 10)
    # Inputs in [0, 1] calibrate to the whole int8 range.
    assert result.input_zero_point == -128 and abs(result.input_scale - 1 / 255) < 1e-4

    int8_logits = _tflm_outputs(result.path, x_test, result)
    assert int8_logits.dtype == np.int8
    with torch.no_grad():
        float_logits = model(torch.from_numpy(np.ascontiguousarray(x_test.transpose(0, 3, 1, 2)))).numpy()
    agreement = float(np.mean(int8_logits.argmax(1) == float_logits.argmax(1)))
    dequantized = (int8_logits.astype(np.float32) - result.output_zero_point) * result.output_scale
    error = float(np.mean(np.abs(dequantized - float_logits)) / np.mean(np.abs(float_logits)))
    print(f"int8 vs float arg-max agreement {agreement:.4f}, mean relative logit error {error:.4f}")
    assert agreement >= 0.95
    assert error < 0.1


@pytest.mark.slow
def test_convert_onnx_to_tflite(digits_model, tmp_path) -> None:
    _, onnx_path, x_train, _ = digits_model
    result = convert_onnx_to_tflite(onnx_path, x_train[:50], tmp_path / "out" / "m.tflite")
    assert result.path.is_file()
    checked = check_int8_model(result.path.read_bytes())
    assert checked.ops == result.ops and checked.output_zero_point == result.output_zero_point


def test_bad_calibration_shape_writes_nothing(digits_model, tmp_path) -> None:
    _, onnx_path, _, _ = digits_model
    with pytest.raises(TinymlError, match=r"calibration data has shape \(4, 1, 8, 8\)"):
        convert_onnx_to_tflite(onnx_path, np.zeros((4, 1, 8, 8), np.float32), tmp_path / "m.tflite")
    with pytest.raises(TinymlError, match="NaN"):
        convert_onnx_to_tflite(onnx_path, np.full((4, 8, 8, 1), np.nan, np.float32), tmp_path / "m.tflite")
    assert not list(tmp_path.iterdir())


def test_float_tflite_is_refused(tiny_models) -> None:
    with pytest.raises(TinymlError, match="DEQUANTIZE|not int8"):
        check_int8_model(tiny_models["float"].read_bytes())
    assert check_int8_model(tiny_models["int8"].read_bytes()).ops   # the conftest int8 model passes


def test_transpose_in_graph_is_refused(tmp_path) -> None:
    """A TF model with a runtime transpose (not one our converter makes) is refused, naming the op."""
    import tensorflow as tf

    module = tf.Module()
    weights = tf.constant(np.random.default_rng(0).standard_normal((24, 4)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec((1, 2, 3, 4), tf.float32)])
    def serve(x):
        return tf.matmul(tf.reshape(tf.transpose(x, [0, 3, 1, 2]), (1, 24)), weights)

    module.serve = serve
    tf_model = TfModel(module=module, input_shape=(1, 2, 3, 4), output_names=["y"],
                       concrete_function=serve.get_concrete_function())
    calibration = np.random.default_rng(1).standard_normal((8, 2, 3, 4)).astype(np.float32)
    with pytest.raises(TinymlError, match="contains TRANSPOSE"):
        quantize_int8(tf_model, calibration, tmp_path / "t.tflite")
    assert not list(tmp_path.iterdir())
