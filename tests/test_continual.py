"""`tinyml update`: a prepared student learns digits 7-9 on top of 0-6, the report
compares it with fine-tuning and joint retraining, the new model has a new hash
that a board running the old one refuses in one line, and bad input is refused
before any training. Few epochs: this checks the plumbing, bench_learning.py
measures the figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyml.continual import (REPLAY_FILE, STATE_FILE, MethodResult, UpdateOptions, align_new_class_weights,
                              choose_method, update)
from tinyml.errors import TinymlError
from tinyml.prepare import PrepareOptions, prepare

pytestmark = pytest.mark.slow


def tinyml(*args):
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def previous(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("continual") / "digits-0-6"
    prepare(PrepareOptions(dataset="digits:0-6", board="stm32f405", out=out, epochs=3, teacher_epochs=1, sweep=False,
                           progress=False))
    return out


@pytest.fixture(scope="module")
def updated(previous, tmp_path_factory):
    out = tmp_path_factory.mktemp("continual_v2") / "digits-v2"
    return update(UpdateOptions(from_dir=previous, data="digits:7-9", out=out, method="replay-lwf", epochs=6,
                                joint_epochs=2, progress=False))


def test_prepare_keeps_what_an_update_starts_from(previous):
    assert (previous / STATE_FILE).is_file()
    with np.load(previous / REPLAY_FILE) as replay:
        assert sorted(set(replay["y"].tolist())) == list(range(7))
        assert np.bincount(replay["y"]).max() <= 20
        assert len(replay["y_val"]) > 0


def test_update_learns_new_classes_and_reports_every_baseline(previous, updated):
    out, report = updated.out_dir, updated.report
    manifest = json.loads((out / "manifest.json").read_text())
    old_manifest = json.loads((previous / "manifest.json").read_text())
    assert manifest["labels"] == [str(i) for i in range(10)]
    assert manifest["model_sha256"] != old_manifest["model_sha256"]
    assert manifest["updated_from"] == old_manifest["model_sha256"] == report["previous"]["model_sha256"]
    assert report["new_classes"] == ["7", "8", "9"] and report["method"] == "replay-lwf"
    rows = {r["method"]: r for r in report["models"]}
    assert set(rows) == {"previous", "finetune", "replay-lwf", "joint"}
    assert all(r["old_int8"] is not None and r["new_int8"] is not None for r in rows.values())
    # The previous model cannot name classes it never had; the chosen method keeps the old ones better
    # than plain fine-tuning, which forgets.
    assert rows["previous"]["new_int8"] == 0.0
    assert rows["replay-lwf"]["old_int8"] > rows["finetune"]["old_int8"]
    assert rows["replay-lwf"]["new_int8"] > 0.5
    assert rows["replay-lwf"]["selection_loss"] > 0
    assert report["memory"]["exemplars"] == 140
    for name in ("model.tflite", "model_data.cc", "test_vectors.npz", "report.md", "update_accuracy.png",
                 STATE_FILE, REPLAY_FILE):
        assert (out / name).is_file(), name
    vectors = np.load(out / "test_vectors.npz")
    assert len(vectors["labels"]) == report["test_samples"]["old"] + report["test_samples"]["new"]
    assert "| finetune |" in (out / "report.md").read_text()


def test_board_running_the_old_model_refuses_the_update_in_one_line(previous, updated, tmp_path):
    from tinyml.compiler import compile_tflite
    from tinyml.host.build import build_native_firmware, default_engine_dir
    from tinyml.host.emulator import start_native_board
    from tinyml.host.harness import run_bench

    compile_tflite(previous / "model.tflite", tmp_path / "compiled", target="generic")
    image = build_native_firmware(tmp_path / "compiled", tmp_path / "fw", engine_dir=default_engine_dir())
    board = start_native_board(image)
    try:
        with pytest.raises(TinymlError) as info:
            run_bench(board.port, updated.out_dir, tmp_path / "bench_new", progress=False)
        message = str(info.value)
        assert updated.report["model_sha256"] in message and updated.report["previous"]["model_sha256"] in message
        assert "\n" not in message
        ok = run_bench(board.port, previous, tmp_path / "bench_old", samples=4, progress=False)
        assert ok.report["agreement"] == 1.0
    finally:
        board.stop()


def test_an_update_can_follow_an_update(updated, tmp_path):
    # The updated folder is itself a model to update (no recorded old dataset: joint needs --old-data).
    result = update(UpdateOptions(from_dir=updated.out_dir, data="digits:8-9", out=tmp_path / "v3", method="lwf",
                                  epochs=1, progress=False))
    assert result.report["new_classes"] == [] and result.report["joint_note"]
    # Every method is measured in int8 too, not only the chosen one (here lwf and the fine-tuning baseline).
    rows = {r["method"]: r for r in result.report["models"]}
    assert set(rows) == {"previous", "finetune", "lwf"}
    assert all(0.0 <= r[k] <= 1.0 for r in rows.values() for k in ("old_int8", "new_int8"))
    assert json.loads((tmp_path / "v3" / "manifest.json").read_text())["labels"] == [str(i) for i in range(10)]


@pytest.mark.parametrize("args, expected", [
    (["--method", "sgd"], "unknown update method 'sgd'"),
    (["--data", "digits:4-12"], "class ids must be distinct and within 0-9"),
    (["--data", "nowhere.npz"], "no such file or folder"),
])
def test_bad_update_input_is_one_line_before_training(previous, tmp_path, args, expected):
    base = {"--from": previous, "--data": "digits:7-9", "--out": tmp_path / "out"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    result = tinyml("update", *[item for pair in base.items() for item in pair])
    assert result.returncode != 0 and result.stderr.startswith("error: ") and expected in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "out").exists()


def test_from_folder_that_is_not_a_tinyml_model(tmp_path):
    (tmp_path / "notamodel").mkdir()
    (tmp_path / "notamodel" / "manifest.json").write_text("{}")
    result = tinyml("update", "--from", tmp_path / "notamodel", "--data", "digits:7-9", "--out", tmp_path / "out")
    assert result.returncode != 0 and "is not a tinyml model folder" in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "out").exists()


def test_validation_runs_before_torch_is_imported(tmp_path):
    code = ("import sys; from pathlib import Path; from tinyml.continual import UpdateOptions, validate_update\n"
            "try:\n    validate_update(UpdateOptions(from_dir=Path(sys.argv[1]), data='digits:7-9', out=Path('x')))\n"
            "except Exception as e: print(type(e).__name__)\nprint('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["TinymlError", "False"], result.stderr


def test_update_refuses_images_of_another_size(previous, tmp_path):
    data = tmp_path / "big.npz"
    np.savez(data, x=np.zeros((60, 16, 16), np.uint8), y=np.arange(60) % 3)
    with pytest.raises(TinymlError, match="images are"):
        update(UpdateOptions(from_dir=previous, data=str(data), out=tmp_path / "o", epochs=1, progress=False))
    assert not (tmp_path / "o").exists()


def _result(name: str, accuracy: float, loss: float) -> MethodResult:
    return MethodResult(name, 0.0, 0.0, selection_score=accuracy, selection_loss=loss)


def test_auto_choice_breaks_accuracy_ties_by_validation_cross_entropy():
    candidates = ["replay-lwf", "replay", "ewc"]
    results = {"replay-lwf": _result("replay-lwf", 1.0, 0.05), "replay": _result("replay", 1.0, 0.01),
               "ewc": _result("ewc", 0.9, 0.001)}
    assert choose_method(results, candidates) == "replay"
    results["replay"].selection_loss = 0.05
    assert choose_method(results, candidates) == "replay-lwf"   # a full tie: the earlier candidate


def test_weight_aligning_gives_new_rows_the_old_rows_mean_norm():
    import torch

    from tinyml import models

    model = models.build_student(models.StudentConfig.parse("w4.00-d4"), (8, 8, 1), 10)
    with torch.no_grad():
        model.classifier.weight[7:] *= 5.0
    old_rows = model.classifier.weight[:7].clone()
    align_new_class_weights(model, 7)
    norms = model.classifier.weight.norm(dim=1)
    assert torch.allclose(norms[7:].mean(), norms[:7].mean(), rtol=1e-5)
    assert torch.equal(model.classifier.weight[:7], old_rows)
