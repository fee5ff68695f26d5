"""The four MLPerf Tiny int8 reference models (not in this repository) and bench
vectors for them, for the MLPerf runner tests and bench_mlperf.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

# The runner's model names and the reference files (mlcommons/tiny).
MODELS = {"ic01": "pretrainedResnet_quant.tflite", "kws01": "kws_ref_model.tflite", "vww01": "vww_96_int8.tflite",
          "ad01": "ad01_int8.tflite"}


def models_dir() -> Path | None:
    """$TINYML_MLPERF_TINY_MODELS, else a shared/models/mlperf-tiny folder above this checkout; None if neither."""
    if os.environ.get("TINYML_MLPERF_TINY_MODELS"):
        return Path(os.environ["TINYML_MLPERF_TINY_MODELS"])
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "models" / "mlperf-tiny"
        if candidate.is_dir():
            return candidate
    return None


def bench_vectors(directory: Path, model: Path, sha256: str, seed: int, samples: int) -> dict:
    """Random int8 inputs, host TFLite-Micro's outputs, labels from the host's top class
    (so accuracy means agreement with the host), written as a bench model dir."""
    from tinyml.verify import io_quantization, run_tflm

    raw = model.read_bytes()
    in_q, out_q = io_quantization(raw)
    rng = np.random.default_rng(seed)
    inputs = rng.integers(-128, 128, size=(samples, *in_q.shape[1:]), dtype=np.int8)
    outputs = run_tflm(raw, inputs)
    flat = outputs.reshape(samples, -1)
    if flat.shape[1] <= 12:
        labels, names = flat.argmax(axis=1).astype(np.int64), [str(i) for i in range(flat.shape[1])]
    else:  # an autoencoder: the samples with the highest host anomaly scores are the anomalous ones
        from tinyml.host.mlperf import host_anomaly_scores

        scores = host_anomaly_scores(inputs, flat, (in_q.scale, in_q.zero_point), (out_q.scale, out_q.zero_point))
        labels, names = (scores > np.median(scores)).astype(np.int64), ["normal", "anomaly"]
    vectors = directory / "vectors"
    vectors.mkdir()
    np.savez(vectors / "test_vectors.npz", inputs=inputs, outputs=outputs, labels=labels, label_names=np.array(names))
    (vectors / "manifest.json").write_text(json.dumps({
        "model_sha256": sha256, "labels": names,
        "input": {"shape": list(in_q.shape), "scale": in_q.scale, "zero_point": in_q.zero_point},
        "output": {"shape": list(out_q.shape), "scale": out_q.scale, "zero_point": out_q.zero_point}}))
    return {"vectors": vectors, "inputs": inputs, "outputs": flat, "in_q": in_q, "out_q": out_q}
