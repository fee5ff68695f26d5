"""Shared by tests/test_micropython*.py: a digits student (`tinyml prepare`, few epochs: the
byte checks do not need a good model), the fixture models of the engine tests, loading a
generated .py module under CPython, and running code on MicroPython (wasm)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np


def prepare_digits(out: Path) -> Path:
    from tinyml.prepare import PrepareOptions, prepare

    return prepare(PrepareOptions(dataset="digits", board="stm32f405", out=out, epochs=3, teacher_epochs=2,
                                  sweep=False, progress=False)).out_dir


def load_module(path: Path) -> ModuleType:
    """The generated module imported by CPython (a fresh copy each call)."""
    spec = importlib.util.spec_from_file_location(f"_mp_{path.stem}_{id(path)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fixture_models() -> dict[str, Path]:
    """The engine tests' whole-model fixtures: together they use every op the engine has."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from engine import test_whole_model as whole
    from engine.model_harness import convert_keras

    return {
        "mobilenet_like": convert_keras(whole._mobilenet_like, (16, 16, 3), seed=3, low=0.0, high=1.0,
                                        key="mobilenet_like"),
        "every_op_float_io": whole._convert_float_io(whole._every_op, (12, 12, 2), seed=5),
    }


def random_inputs(module: ModuleType, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (count, *module.input_shape)
    if module.input_dtype == "float32":
        return rng.uniform(0, 1, size=shape).astype(np.float32)
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


def write_model_dir(tflite: Path, directory: Path, count: int, seed: int = 3) -> Path:
    """manifest.json and test_vectors.npz as `tinyml prepare` writes them, outputs from tflite-micro
    (labels deliberately wrong for every third sample, so accuracy and agreement differ)."""
    import hashlib
    import json

    from tflite_micro.python.tflite_micro import runtime

    data = Path(tflite).read_bytes()
    interpreter = runtime.Interpreter.from_bytes(data)
    shape = interpreter.get_input_details(0)["shape"]
    inputs = np.random.default_rng(seed).integers(-128, 128, (count, *shape[1:]), dtype=np.int8)
    outputs = []
    for x in inputs:
        interpreter.set_input(x[None], 0)
        interpreter.invoke()
        outputs.append(interpreter.get_output(0).reshape(-1).copy())
    outputs = np.stack(outputs).astype(np.int8)
    labels = outputs.argmax(axis=1).astype(np.int64)
    labels[::3] = (labels[::3] + 1) % outputs.shape[1]
    directory.mkdir(parents=True)
    np.savez(directory / "test_vectors.npz", inputs=inputs, outputs=outputs, labels=labels,
             label_names=np.array([str(i) for i in range(outputs.shape[1])]))
    (directory / "manifest.json").write_text(json.dumps({"model_sha256": hashlib.sha256(data).hexdigest(),
                                                         "labels": [str(i) for i in range(outputs.shape[1])]}))
    return directory
