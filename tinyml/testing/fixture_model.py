"""The fixture model (fixture_firmware/model.c) and its Python twin, for the
protocol tests and the link benchmarks.

The QEMU test and the demo use real compiled models; this one only has to be
deterministic and cheap so the link, harness and fault tests run in seconds.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np

FIXTURE_DIR = Path(__file__).resolve().parent / "fixture_firmware"  # model.h + model.c
FIXTURE_SHA256 = "f1" * 32
INPUT_BYTES = 64
OUTPUT_BYTES = 10
LARGE_INPUT_BYTES = 10_000  # more than one frame (max_payload 4096): travels as LOAD frames
LARGE_SHA256 = "1a" * 32


def _weights(input_bytes: int) -> np.ndarray:
    i = np.arange(input_bytes)[:, None]
    k = np.arange(OUTPUT_BYTES)[None, :]
    return ((31 * i + 17 * k) % 7 - 3).astype(np.int64)  # (input_bytes, 10), as model.c


WEIGHTS = _weights(INPUT_BYTES)


def fixture_outputs(inputs: np.ndarray) -> np.ndarray:
    """model.c's function: clamp(floor(x . w / 64), -128, 127) per output, for any input size."""
    flat = inputs.reshape(len(inputs), -1).astype(np.int64)
    acc = flat @ _weights(flat.shape[1])
    return np.clip(np.floor_divide(acc, 64), -128, 127).astype(np.int8)


def _image_shape(input_bytes: int) -> tuple[int, int, int, int]:
    side = math.isqrt(input_bytes)
    if side * side != input_bytes:
        raise ValueError(f"fixture inputs are square images: {input_bytes} is not a square")
    return (1, side, side, 1)


def write_fixture_firmware_dir(directory: Path, input_bytes: int = LARGE_INPUT_BYTES,
                               sha256: str = LARGE_SHA256) -> Path:
    """model.h + model.c of the fixture model with another input size (a square
    image), for `build_native_firmware`: the same function, so fixture_outputs is its twin."""
    directory.mkdir(parents=True, exist_ok=True)
    shape = _image_shape(input_bytes)
    header = (FIXTURE_DIR / "model.h").read_text()
    header = header.replace(f'"{FIXTURE_SHA256}"', f'"{sha256}"')
    header = header.replace("#define TINYML_MODEL_INPUT_BYTES 64", f"#define TINYML_MODEL_INPUT_BYTES {input_bytes}")
    header = header.replace("#define TINYML_MODEL_INPUT_DIMS {1, 8, 8, 1}",
                            "#define TINYML_MODEL_INPUT_DIMS {" + ", ".join(map(str, shape)) + "}")
    if str(input_bytes) not in header or sha256 not in header:
        raise AssertionError("fixtures/model.h no longer has the lines write_fixture_firmware_dir rewrites")
    (directory / "model.h").write_text(header)
    shutil.copyfile(FIXTURE_DIR / "model.c", directory / "model.c")
    return directory


def write_fixture_model_dir(directory: Path, count: int = 200, seed: int = 0, sha256: str = FIXTURE_SHA256,
                            input_bytes: int = INPUT_BYTES) -> Path:
    """manifest.json + test_vectors.npz as `tinyml prepare` writes them, for the fixture model.
    Labels are the fixture's own argmax except every 7th, so accuracy is below 1 and checkable."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = _image_shape(input_bytes)
    inputs = rng.integers(-128, 128, (count, *shape[1:]), dtype=np.int8)
    outputs = fixture_outputs(inputs)
    labels = outputs.argmax(axis=1).astype(np.int64)
    labels[::7] = (labels[::7] + 1) % OUTPUT_BYTES
    np.savez(directory / "test_vectors.npz", inputs=inputs, outputs=outputs, labels=labels,
             label_names=np.array([str(i) for i in range(OUTPUT_BYTES)]))
    manifest = {
        "model_sha256": sha256,
        "input": {"name": "x", "shape": list(shape), "dtype": "int8", "scale": 0.00392157, "zero_point": -128},
        "output": {"name": "y", "shape": [1, 10], "dtype": "int8", "scale": 0.1, "zero_point": 5},
        "labels": [str(i) for i in range(OUTPUT_BYTES)],
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory
