"""`tinyml prepare` end to end on digits with few epochs, and its failure modes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinyml.boards import load_board
from tinyml.errors import TinymlError
from tinyml.prepare import PrepareOptions, check_fits_board, prepare

REPORT_KEYS = ("teacher_accuracy", "student_alone_accuracy", "student_float_accuracy", "student_int8_accuracy",
               "int8_float_agreement", "flash_bytes", "arena_bytes", "macs", "params", "wall_seconds")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepare") / "digits"
    return prepare(PrepareOptions(dataset="digits", board="stm32f405", out=out, epochs=4, teacher_epochs=3,
                                  progress=False))


@pytest.mark.slow
def test_prepare_writes_every_artifact_and_report(prepared):
    out = prepared.out_dir
    for name in ("model.onnx", "model.tflite", "model_data.h", "model_data.cc", "model_ops.h", "model_io.h",
                 "test_vectors.npz", "test_vectors.bin", "test_vectors.h", "manifest.json", "report.json",
                 "report.md", "confusion_matrix.png", "training_curves.png", "accuracy_vs_size.png"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    for key in REPORT_KEYS:
        assert key in report, key
    # Few epochs: far from the targets, but well above chance, and int8 tracks float.
    assert report["student_int8_accuracy"] > 0.5
    assert abs(report["student_int8_accuracy"] - report["student_float_accuracy"]) < 0.05
    assert report["int8_float_agreement"] > 0.9
    assert report["flash_bytes"] == (out / "model.tflite").stat().st_size
    assert report["ops"] and "TRANSPOSE" not in report["ops"] and "DEQUANTIZE" not in report["ops"]
    chosen = [m for m in report["family"] if m["chosen"]]
    assert len(chosen) == 1 and chosen[0]["student"] == report["student"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model_sha256"] == report["model_sha256"] and manifest["board"] == "stm32f405"
    assert manifest["arena_bytes"] == report["arena_bytes"]


@pytest.mark.slow
def test_test_vectors_are_the_whole_test_split_never_seen_in_training(prepared):
    from tinyml.data import load_dataset

    splits = load_dataset("digits", seed=0)
    with np.load(prepared.out_dir / "test_vectors.npz") as vectors:
        assert len(vectors["inputs"]) == len(splits.x_test) == 360
        assert np.array_equal(vectors["labels"], splits.y_test)
    report = json.loads((prepared.out_dir / "report.json").read_text())
    assert report["samples"] == {"train": len(splits.x_train), "val": len(splits.x_val), "test": 360}
    # The accuracy in the report is the one of the vectors' outputs on the labels.
    with np.load(prepared.out_dir / "test_vectors.npz") as vectors:
        accuracy = float(np.mean(vectors["outputs"].argmax(axis=1) == vectors["labels"]))
    assert accuracy == pytest.approx(report["student_int8_accuracy"])


def test_model_too_big_for_the_board_says_by_how_much():
    board = load_board("stm32f405")
    with pytest.raises(TinymlError, match=r"too big for stm32f405: .* flash, .* available \(over by 1,000\)"):
        check_fits_board(board, board.model_flash_budget + 1000, 100)
    with pytest.raises(TinymlError, match=r"arena.*over by 24"):
        check_fits_board(board, 100, board.model_ram_budget + 24)


def test_board_too_small_for_any_student_writes_nothing(tmp_path):
    tiny = tmp_path / "tiny.toml"
    tiny.write_text('name="tiny"\nmcu="X"\ncore="cortex-m0"\nclock_hz=48000000\nflash_bytes=8192\nram_bytes=2048\n'
                    'firmware_flash_bytes=7936\nfirmware_ram_bytes=1536\n')
    with pytest.raises(TinymlError, match="over by"):
        prepare(PrepareOptions(dataset="digits", board=str(tiny), out=tmp_path / "out", progress=False))
    assert not (tmp_path / "out").exists()


def test_failure_after_training_leaves_no_output(tmp_path, monkeypatch):
    import tinyml.quantize

    def broken(*args, **kwargs):
        raise TinymlError("converter exploded")

    monkeypatch.setattr(tinyml.quantize, "quantize_int8", broken)
    with pytest.raises(TinymlError, match="converter exploded"):
        prepare(PrepareOptions(dataset="digits", board="stm32f405", out=tmp_path / "out", epochs=1,
                               teacher_epochs=1, sweep=False, progress=False))
    assert list(tmp_path.iterdir()) == []


def test_unknown_kd_and_missing_dataset(tmp_path):
    with pytest.raises(TinymlError, match="unknown distillation 'magic'"):
        prepare(PrepareOptions(dataset="digits", board="stm32f405", out=tmp_path / "o", kd="magic"))
    with pytest.raises(TinymlError, match="not found"):
        prepare(PrepareOptions(dataset=str(tmp_path / "nope.npz"), board="stm32f405", out=tmp_path / "o"))
    assert list(tmp_path.iterdir()) == []
