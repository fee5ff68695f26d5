"""`tinyml federate` on Flower: client processes over loopback gRPC, one killed
mid-round and one sending a NaN update; the run completes, the report names
both drops, and bad input is refused before any training. Small on purpose
(3 clients, 3 rounds, 1 local epoch): bench_learning.py measures the figures."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tinyml.errors import TinymlError
from tinyml.federated import FederateOptions, Partition, check_update, federate, partition_indices

pytest.importorskip("flwr")


def tinyml(*args):
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_partitions_cover_the_training_split_once():
    y = np.repeat(np.arange(10), 30)
    for partition in (Partition.parse("iid"), Partition.parse("dirichlet:0.5")):
        shares = partition_indices(y, 8, partition, seed=0)
        joined = np.sort(np.concatenate(shares))
        assert np.array_equal(joined, np.arange(len(y))) and min(len(s) for s in shares) >= 2
    iid = partition_indices(y, 3, Partition.parse("iid"), seed=0)
    assert all(len(np.unique(y[s])) == 10 for s in iid)


def test_update_checks():
    reference = [np.zeros((3, 2), np.float32), np.zeros(2, np.float32)]
    assert check_update([np.ones((3, 2), np.float32), np.ones(2, np.float32)], reference) is None
    assert "NaN" in check_update([np.full((3, 2), np.nan, np.float32), np.ones(2, np.float32)], reference)
    assert "shape" in check_update([np.ones((3, 1), np.float32), np.ones(2, np.float32)], reference)
    assert "arrays" in check_update([np.ones((3, 2), np.float32)], reference)


@pytest.mark.slow
def test_killed_client_and_nan_update_neither_stop_nor_poison_the_run(tmp_path):
    result = federate(FederateOptions(
        out=tmp_path / "fed", clients=3, rounds=3, local_epochs=1, lr=1e-2, address="127.0.0.1:0",
        kill_client_in_round={1: 2}, poison_client={2: (2, "nan")}, progress=False))
    report = result.report
    drops = {(d["round"], d["client"]): d["reason"] for d in report["dropped"]}
    assert (2, 1) in drops and "mid-round" in drops[(2, 1)]
    assert (2, 2) in drops and "NaN" in drops[(2, 2)]
    assert report["accepted_updates"] == {"1": 3, "2": 1, "3": 2}
    assert report["client_exit_codes"]["1"] != 0 and report["client_exit_codes"]["0"] == 0
    assert all(np.isfinite(h["val_accuracy"]) for h in report["rounds_history"])
    assert report["federated_int8_accuracy"] > 0.2   # trained, not poisoned (chance is 0.1)
    assert report["bytes_received"] > 0 and report["bytes_exchanged"] > report["bytes_sent"]
    saved = json.loads((tmp_path / "fed" / "report.json").read_text())
    assert saved["dropped"] == report["dropped"]
    for name in ("model.tflite", "manifest.json", "test_vectors.npz", "round_accuracy.png", "report.md"):
        assert (tmp_path / "fed" / name).is_file()
    assert "| 2 | 1 |" in (tmp_path / "fed" / "report.md").read_text()


@pytest.mark.parametrize("args, expected", [
    (["--strategy", "fedsgd"], "unknown strategy 'fedsgd'"),
    (["--clients", "500"], "at most"),
    (["--partition", "dirichlet:-1"], "alpha must be a positive number"),
    (["--partition", "shards"], "unknown partition 'shards'"),
    (["--address", "localhost"], "bad address"),
])
def test_bad_federate_input_is_one_line_before_training(tmp_path, args, expected):
    result = tinyml("federate", "--out", tmp_path / "out", "--rounds", "1", *args)
    assert result.returncode != 0 and result.stderr.startswith("error: ") and expected in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "out").exists()


def test_validation_imports_no_torch(tmp_path):
    code = ("import sys; from pathlib import Path; from tinyml.federated import FederateOptions, validate_federate\n"
            "try:\n    validate_federate(FederateOptions(out=Path('x'), clients=10000))\n"
            "except Exception as e: print(type(e).__name__)\nprint('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["TinymlError", "False"], result.stderr


def test_more_clients_than_samples_per_class(tmp_path):
    with pytest.raises(TinymlError, match="clients but class"):
        federate(FederateOptions(out=tmp_path / "o", clients=1000, rounds=1, progress=False))
