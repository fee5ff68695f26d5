"""The fixture model (model.c here) and its Python twin, for protocol tests.

The QEMU test and the demo use real compiled models; this one only has to be
deterministic and cheap so the link, harness and fault tests run in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FIXTURE_DIR = Path(__file__).resolve().parent
FIXTURE_SHA256 = "f1" * 32
INPUT_BYTES = 64
OUTPUT_BYTES = 10

_I = np.arange(INPUT_BYTES)[:, None]
_K = np.arange(OUTPUT_BYTES)[None, :]
WEIGHTS = ((31 * _I + 17 * _K) % 7 - 3).astype(np.int64)  # (64, 10), as model.c


def fixture_outputs(inputs: np.ndarray) -> np.ndarray:
    """model.c's function: clamp(floor(x . w / 64), -128, 127) per output."""
    acc = inputs.reshape(len(inputs), -1).astype(np.int64) @ WEIGHTS
    return np.clip(np.floor_divide(acc, 64), -128, 127).astype(np.int8)


def write_fixture_model_dir(directory: Path, count: int = 200, seed: int = 0, sha256: str = FIXTURE_SHA256) -> Path:
    """manifest.json + test_vectors.npz as `tinyml prepare` writes them, for the fixture model.
    Labels are the fixture's own argmax except every 7th, so accuracy is below 1 and checkable."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    inputs = rng.integers(-128, 128, (count, 8, 8, 1), dtype=np.int8)
    outputs = fixture_outputs(inputs)
    labels = outputs.argmax(axis=1).astype(np.int64)
    labels[::7] = (labels[::7] + 1) % OUTPUT_BYTES
    np.savez(directory / "test_vectors.npz", inputs=inputs, outputs=outputs, labels=labels,
             label_names=np.array([str(i) for i in range(OUTPUT_BYTES)]))
    manifest = {
        "model_sha256": sha256,
        "input": {"name": "x", "shape": [1, 8, 8, 1], "dtype": "int8", "scale": 0.00392157, "zero_point": -128},
        "output": {"name": "y", "shape": [1, 10], "dtype": "int8", "scale": 0.1, "zero_point": 5},
        "labels": [str(i) for i in range(OUTPUT_BYTES)],
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory
