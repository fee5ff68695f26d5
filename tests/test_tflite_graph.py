"""tinyml.tflite_graph: the .tflite reader."""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
import pytest

from tinyml.errors import TinymlError
from tinyml.tflite_graph import load_tflite


def _repack(raw: bytes, edit) -> bytes:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(raw, 0)
    edit(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_reads_int8_model(tiny_models):
    graph = load_tflite(tiny_models["int8"])
    raw = Path(tiny_models["int8"]).read_bytes()
    assert graph.size_bytes == len(raw)
    assert len(graph.sha256) == 64
    assert graph.version == 3
    assert graph.ops == ["CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED"]
    inp = graph.tensors[graph.inputs[0]]
    out = graph.tensors[graph.outputs[0]]
    assert inp.shape == (1, 8, 8, 1) and inp.dtype == np.int8 and inp.data is None
    assert out.shape == (1, 10) and out.dtype == np.int8
    assert inp.scale.shape == (1,) and inp.zero_point.shape == (1,)
    assert inp.nbytes == 64

    conv = graph.operators[0]
    assert conv.opcode == "CONV_2D" and conv.index == 0
    assert conv.options["padding"] == "SAME"
    assert conv.options["fused_activation_function"] == "RELU"
    assert conv.options["stride_h"] == 1 and conv.options["dilation_w_factor"] == 1
    weights = graph.tensors[conv.inputs[1]]
    bias = graph.tensors[conv.inputs[2]]
    assert weights.shape == (8, 3, 3, 1) and weights.dtype == np.int8 and weights.data.shape == (8, 3, 3, 1)
    assert weights.scale.shape == (8,) and weights.quantized_dimension == 0  # per-channel
    assert np.all(weights.zero_point == 0)
    assert bias.dtype == np.int32 and bias.data.shape == (8,)
    # int8 weights of a trained conv are not all zero and fill [-127, 127]
    assert np.abs(weights.data).max() == 127

    dw = graph.operators[1]
    assert dw.opcode == "DEPTHWISE_CONV_2D" and dw.options["depth_multiplier"] == 1
    mean = next(op for op in graph.operators if op.opcode == "MEAN")
    assert mean.options["keep_dims"] is False
    assert graph.tensors[mean.inputs[1]].dtype == np.int32


def test_reads_bytes_and_float_model(tiny_models):
    raw = Path(tiny_models["float"]).read_bytes()
    graph = load_tflite(raw)
    assert graph.tensors[graph.inputs[0]].dtype == np.float32
    assert graph.tensors[graph.inputs[0]].scale.size == 0
    fc = next(op for op in graph.operators if op.opcode == "FULLY_CONNECTED")
    assert fc.options["keep_num_dims"] is False and fc.options["weights_format"] == "DEFAULT"


def test_not_tflite(tmp_path):
    path = tmp_path / "x.tflite"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(TinymlError, match="not a TFLite model"):
        load_tflite(path)
    with pytest.raises(TinymlError, match="cannot read"):
        load_tflite(tmp_path / "missing.tflite")


def test_truncated_file(tiny_models):
    raw = Path(tiny_models["int8"]).read_bytes()
    for cut in (16, len(raw) // 3, len(raw) - 40):
        with pytest.raises(TinymlError) as info:
            load_tflite(raw[:cut])
        assert "\n" not in str(info.value)


def test_custom_op_and_two_subgraphs(tiny_models):
    raw = Path(tiny_models["int8"]).read_bytes()

    def make_custom(model):
        model.operatorCodes[0].builtinCode = 32  # CUSTOM
        model.operatorCodes[0].deprecatedBuiltinCode = 32
        model.operatorCodes[0].customCode = "MyOp"

    graph = load_tflite(_repack(raw, make_custom))
    assert graph.operators[0].opcode == "CUSTOM:MyOp"

    def two_subgraphs(model):
        model.subgraphs.append(model.subgraphs[0])

    with pytest.raises(TinymlError, match="2 subgraphs"):
        load_tflite(_repack(raw, two_subgraphs))


def test_bad_tensor_reference(tiny_models):
    raw = Path(tiny_models["int8"]).read_bytes()

    def break_op(model):
        model.subgraphs[0].operators[0].inputs = [999, *list(model.subgraphs[0].operators[0].inputs)[1:]]

    with pytest.raises(TinymlError, match="missing tensor 999"):
        load_tflite(_repack(raw, break_op))
