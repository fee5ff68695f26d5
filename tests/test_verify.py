import numpy as np
import pytest

from tinyml.errors import TinymlError
from tinyml.verify import io_quantization, measure_arena, quantize_input, run_tflm, verify_tflite


def test_quantize_input_rounds_and_saturates():
    from tinyml.verify import TensorQuant

    q = TensorQuant(shape=(1, 2), dtype="int8", scale=1 / 255, zero_point=-128)
    x = np.array([[0.0, 1.0], [2.0, -1.0]], dtype=np.float32)
    assert quantize_input(x, q).tolist() == [[-128, 127], [127, -128]]


def test_verify_reports_accuracy_agreement_and_measured_arena(tiny_models):
    model = tiny_models["int8"].read_bytes()
    rng = np.random.default_rng(1)
    x = rng.random((12, 8, 8, 1), dtype=np.float32)
    outputs = run_tflm(model, quantize_input(x, io_quantization(model)[0]))
    labels = outputs.argmax(axis=1)
    labels[:3] = (labels[:3] + 1) % 10  # three samples scored wrong on purpose
    result = verify_tflite(model, x, labels, float_logits=np.eye(10)[outputs.argmax(axis=1)])
    assert result.samples == 12
    assert result.int8_accuracy == pytest.approx(9 / 12)
    assert result.int8_float_agreement == 1.0
    assert np.array_equal(result.outputs, outputs)
    # The recording allocator's figure: more than the biggest activation pair, less than the default arena.
    assert 8 * 8 * 8 * 2 < result.arena_bytes == measure_arena(model) < 10 * len(model)


def test_float_model_is_refused(tiny_models):
    model = tiny_models["float"].read_bytes()
    with pytest.raises(TinymlError, match="float32/float32, expected int8"):
        verify_tflite(model, np.zeros((1, 8, 8, 1), np.float32), np.zeros(1))


def test_wrong_sample_shape_is_refused(tiny_models):
    with pytest.raises(TinymlError, match=r"shape \(4, 4, 1\) per sample, the model takes \(8, 8, 1\)"):
        run_tflm(tiny_models["int8"].read_bytes(), np.zeros((2, 4, 4, 1), np.int8))
