"""`tinyml compile --target micropython-py`: the pure-Python module, byte-exact with
tflite-micro on CPython (every op of the engine, the digits student) and on real
MicroPython (the WebAssembly build behind the pty bridge)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from micropython_fixtures import fixture_models, load_module, prepare_digits, random_inputs
from tinyml.cli import cli
from tinyml.errors import TinymlError
from tinyml.host.micropython_wasm import bridge_available, start_wasm_board
from tinyml.micropython.py_module import compile_micropython_py


def _tflm(path, inputs):
    from engine.model_harness import tflm_outputs

    return tflm_outputs(path, inputs)


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    return prepare_digits(tmp_path_factory.mktemp("mp_prepare") / "digits")


def _assert_cpython_matches(tflite, out_dir, count):
    result = compile_micropython_py(tflite, out_dir, "model")
    module = load_module(result.module_path)
    inputs = random_inputs(module, count, seed=1)
    theirs = _tflm(tflite, inputs)
    for x, expected in zip(inputs, theirs):
        out = bytearray(module.output_bytes)
        module.invoke(x.tobytes(), out)
        assert bytes(out) == np.ascontiguousarray(expected).tobytes()
        assert module.predict(x.tobytes()) == int(np.argmax(expected.reshape(-1)))
    return module


def test_tiny_cnn_on_cpython(tiny_models, tmp_path):
    module = _assert_cpython_matches(tiny_models["int8"], tmp_path / "tiny", count=6)
    assert module.input_shape == (1, 8, 8, 1) and module.output_bytes == 10 and module.runtime == "py"


@pytest.mark.slow
def test_every_engine_op_on_cpython(tmp_path):
    for name, path in fixture_models().items():
        module = _assert_cpython_matches(path, tmp_path / name, count=4)
        if name == "every_op_float_io":
            assert module.input_dtype == module.output_dtype == "float32"


@pytest.mark.slow
def test_digits_student_on_cpython_and_the_attributes(digits_dir, tmp_path):
    import json

    module = _assert_cpython_matches(digits_dir / "model.tflite", tmp_path / "digits", count=6)
    manifest = json.loads((digits_dir / "manifest.json").read_text())
    assert module.sha256 == manifest["model_sha256"]
    vectors = np.load(digits_dir / "test_vectors.npz")
    out = bytearray(module.output_bytes)
    module.invoke(vectors["inputs"][0].tobytes(), out)
    assert bytes(out) == vectors["outputs"][0].tobytes()
    with pytest.raises(ValueError, match="input has 3 bytes"):
        module.invoke(b"abc", out)


def test_cli_and_bad_input(tiny_models, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["compile", str(tiny_models["int8"]), "--out", str(tmp_path / "m"), "--target",
                                 "micropython-py", "--module-name", "tiny_model"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m" / "tiny_model.py").is_file() and "pure Python" in result.output
    with pytest.raises(TinymlError, match="not a Python identifier"):
        compile_micropython_py(tiny_models["int8"], tmp_path / "bad", "bad-name")
    assert not (tmp_path / "bad").exists()
    with pytest.raises(TinymlError, match="float model"):
        compile_micropython_py(tiny_models["float"], tmp_path / "float", "model")


needs_wasm = pytest.mark.skipif(bridge_available() is not None, reason=str(bridge_available()))


def _run_on_micropython(module_path, inputs):
    """Copies the module to MicroPython (wasm), runs every input, returns the output bytes."""
    from mpremote.transport_serial import SerialTransport

    with start_wasm_board() as board:
        transport = SerialTransport(board.port)
        try:
            transport.enter_raw_repl(soft_reset=False)
            transport.fs_writefile("model.py", module_path.read_bytes())
            transport.exec("import model")
            outputs = []
            for x in inputs:
                text = transport.exec(f"o = bytearray(model.output_bytes)\nmodel.invoke({x.tobytes()!r}, o)\n"
                                      "print(o.hex())")
                outputs.append(bytes.fromhex(text.decode().strip()))
            implementation = transport.exec("import sys\nprint(sys.implementation.name)").decode().strip()
        finally:
            transport.close()
    assert implementation == "micropython"
    return outputs


@needs_wasm
@pytest.mark.slow
def test_every_engine_op_on_micropython(tmp_path):
    for name, path in fixture_models().items():
        result = compile_micropython_py(path, tmp_path / name, "model")
        module = load_module(result.module_path)
        inputs = random_inputs(module, 2, seed=2)
        theirs = _tflm(path, inputs)
        ours = _run_on_micropython(result.module_path, inputs)
        for got, expected in zip(ours, theirs):
            assert got == np.ascontiguousarray(expected).tobytes(), name


@needs_wasm
@pytest.mark.slow
def test_digits_student_on_micropython(digits_dir, tmp_path):
    result = compile_micropython_py(digits_dir / "model.tflite", tmp_path / "digits", "model")
    vectors = np.load(digits_dir / "test_vectors.npz")
    ours = _run_on_micropython(result.module_path, vectors["inputs"][:3])
    assert ours == [v.tobytes() for v in vectors["outputs"][:3]]
