import json
import re
import struct

import numpy as np
import pytest

from tinyml.artifacts import (TFLM_INT8_REGISTRATIONS, TFLM_RESOLVER_METHODS, emit_artifacts, model_ops_header,
                         read_test_vectors)
from tinyml.errors import TinymlError
from tinyml.verify import io_quantization, quantize_input, run_tflm


def _array_bytes(source: str) -> bytes:
    body = source[source.index("{") + 1 : source.rindex("}")]
    return bytes(int(tok, 16) for tok in re.findall(r"0x[0-9a-f]{2}", body))


@pytest.fixture(scope="module")
def emitted(tiny_models, tmp_path_factory):
    model = tiny_models["int8"]
    rng = np.random.default_rng(3)
    inputs = quantize_input(rng.random((11, 8, 8, 1), dtype=np.float32), io_quantization(model.read_bytes())[0])
    labels = rng.integers(0, 10, 11)
    out = tmp_path_factory.mktemp("emit") / "artifacts"
    return emit_artifacts(model, out, inputs, labels, [f"c{i}" for i in range(10)]), inputs, labels


def test_model_array_is_byte_identical_and_aligned(emitted, tiny_models):
    result, _, _ = emitted
    source = (result.out_dir / "model_data.cc").read_text()
    assert "alignas(16) const unsigned char g_model_data[" in source
    assert _array_bytes(source) == tiny_models["int8"].read_bytes()
    assert (result.out_dir / "model.tflite").read_bytes() == tiny_models["int8"].read_bytes()


def test_resolver_registers_exactly_the_models_ops(emitted):
    result, _, _ = emitted
    header = (result.out_dir / "model_ops.h").read_text()
    assert "MicroMutableOpResolver<kModelOpCount>" in header
    registered = re.findall(r"resolver\.(Add\w+)\(([^)]*\)?)\)", header)
    ops = result.manifest["ops"]
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED"} <= set(ops)
    assert [method for method, _ in registered] == [TFLM_RESOLVER_METHODS[op] for op in ops]
    # The all-int8 model: int8-only kernels where TFLM has one (smaller runtime),
    # the generic call elsewhere (MEAN has no int8 variant).
    for op, (_, registration) in zip(ops, registered):
        expected = f"tflite::Register_{op}_INT8()" if op in TFLM_INT8_REGISTRATIONS else ""
        assert registration == expected, op
    assert '#include "tensorflow/lite/micro/kernels/conv.h"' in header
    assert f"kModelOpCount = {len(ops)};" in header


def test_io_header_and_manifest_agree_with_the_model(emitted, tiny_models):
    result, _, _ = emitted
    inp, out = io_quantization(tiny_models["int8"].read_bytes())
    header = (result.out_dir / "model_io.h").read_text()
    assert "#define TINYML_INPUT_DIMS {1, 8, 8, 1}" in header
    assert "#define TINYML_INPUT_BYTES 64" in header and "#define TINYML_OUTPUT_BYTES 10" in header
    assert f"#define TINYML_INPUT_ZERO_POINT ({inp.zero_point})" in header
    assert '"c0", "c1"' in header
    manifest = json.loads((result.out_dir / "manifest.json").read_text())
    assert manifest["input"]["scale"] == pytest.approx(inp.scale) and manifest["output"]["zero_point"] == out.zero_point
    assert manifest["flash_bytes"] == tiny_models["int8"].stat().st_size
    assert manifest["arena_bytes"] > 0 and f"#define TINYML_ARENA_BYTES {manifest['arena_bytes']}\n" in header
    # The 32-bit figure: smaller than the 64-bit host's, by the pointer-holding structs only.
    assert 0.8 * manifest["arena_bytes"] < manifest["arena_bytes_32bit"] < manifest["arena_bytes"]
    assert f"#define TINYML_ARENA_BYTES_32BIT {manifest['arena_bytes_32bit']}\n" in header
    assert len(manifest["model_sha256"]) == 64 and manifest["model_sha256"] in header


def test_test_vectors_hold_host_tflm_outputs_in_all_three_forms(emitted, tiny_models):
    result, inputs, labels = emitted
    expected = run_tflm(tiny_models["int8"].read_bytes(), inputs)
    vectors = read_test_vectors(result.out_dir / "test_vectors.npz")
    assert np.array_equal(vectors.inputs, inputs) and np.array_equal(vectors.outputs, expected)
    assert vectors.labels.tolist() == labels.tolist() and vectors.label_names[3] == "c3"
    raw = (result.out_dir / "test_vectors.bin").read_bytes()
    magic, (version, _, count, in_bytes, out_bytes) = raw[:4], struct.unpack("<HHIII", raw[4:20])
    assert (magic, version, count, in_bytes, out_bytes) == (b"TMTV", 1, 11, 64, 10)
    record = 64 + 10 + 4
    assert len(raw) == 20 + 11 * record
    last = raw[20 + 10 * record : 20 + 11 * record]
    assert np.frombuffer(last[64:74], np.int8).tolist() == expected[10].tolist()
    assert struct.unpack("<i", last[74:])[0] == labels[10]
    header = (result.out_dir / "test_vectors.h").read_text()
    assert "#define TINYML_TEST_VECTOR_COUNT 8" in header


def test_float_model_is_refused_and_nothing_is_written(tiny_models, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(TinymlError, match="is float32, not int8"):
        emit_artifacts(tiny_models["float"], out)
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_model_is_refused_and_nothing_is_written(tiny_models, tmp_path, damage):
    data = tiny_models["int8"].read_bytes()
    bad = {"truncate": data[: len(data) // 3], "garbage": b"\x00" * 8 + b"XXXX" + data[12:200], "empty": b""}[damage]
    model = tmp_path / "bad.tflite"
    model.write_bytes(bad)
    with pytest.raises(TinymlError):
        emit_artifacts(model, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tflite"]


def test_op_without_tflm_kernel_is_named():
    with pytest.raises(TinymlError, match="op CUSTOM:Foo has no TFLite-Micro kernel"):
        model_ops_header(["CONV_2D", "CUSTOM:Foo"])


def test_mixed_type_op_keeps_the_generic_kernel():
    """An op that also sees int16 tensors somewhere in the model cannot use the int8-only kernel."""
    header = model_ops_header(["CONV_2D", "ADD", "SOFTMAX"], int8_ops=["CONV_2D", "SOFTMAX"])
    assert "resolver.AddConv2D(tflite::Register_CONV_2D_INT8())" in header
    assert "resolver.AddAdd()" in header
    assert "resolver.AddSoftmax(tflite::Register_SOFTMAX_INT8())" in header
    assert '#include "tensorflow/lite/micro/kernels/add.h"' not in header
