"""`tinyml prepare` end to end on digits with few epochs, and its failure modes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinyml.boards import load_board
from tinyml.budgets import Budgets
from tinyml.errors import TinymlError
from tinyml.prepare import PrepareOptions, check_fits_board, prepare

REPORT_KEYS = ("teacher_accuracy", "student_alone_accuracy", "student_float_accuracy", "student_int8_accuracy",
               "int8_float_agreement", "flash_bytes", "arena_bytes", "macs", "params", "wall_seconds")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepare") / "digits"
    # A MAC budget that leaves five of the seven digits students: the sweep trains those only
    # (the family sweep alone; the search over prune ratios and encodings: tests/test_search.py).
    return prepare(PrepareOptions(dataset="digits", board="stm32f405", out=out, epochs=4, teacher_epochs=3,
                                  progress=False, budgets=Budgets(max_macs=150_000), search=False))


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
    assert "(chosen)" in (out / "report.md").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model_sha256"] == report["model_sha256"] and manifest["board"] == "stm32f405"
    assert manifest["arena_bytes"] == report["arena_bytes"]


@pytest.mark.slow
def test_budgets_choose_the_smallest_student_within_tolerance_of_the_best(prepared):
    report = json.loads((prepared.out_dir / "report.json").read_text())
    family = report["family"]
    fitting = [m for m in family if m["fits"]]
    over = [m for m in family if not m["fits"]]
    assert len(fitting) == 5 and len(over) == 2
    assert all(m["macs"] <= 150_000 for m in fitting) and all(m["macs"] > 150_000 for m in over)
    assert all("MACs (--max-macs)" in "; ".join(m["over"]) for m in over)
    # Only the fitting students were trained; the choice is the smallest within 0.5 points of the best.
    assert all(m["val_accuracy"] is not None for m in fitting) and all(m["val_accuracy"] is None for m in over)
    best = max(m["val_accuracy"] for m in fitting)
    chosen = next(m for m in family if m["chosen"])
    assert chosen["val_accuracy"] >= best - 0.005
    assert all(m["val_accuracy"] < best - 0.005 for m in fitting[:fitting.index(chosen)])
    # The final check after training used the same figures.
    engine = report["engine"]
    assert engine["figures_within"]
    assert engine["constants_bytes"] <= chosen["constants_bytes"] and engine["arena_bytes"] <= chosen["arena_bytes"]
    assert report["budgets"]["max_macs"] == 150_000 and report["macs"] <= 150_000


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
    flash = board.model_flash_budget + 1000
    with pytest.raises(TinymlError, match=rf"model needs {flash:,} bytes of flash, board stm32f405 has "
                                          rf"{board.model_flash_budget:,} for it .*over by 1,000\)"):
        check_fits_board(board, flash, 100)
    with pytest.raises(TinymlError, match=r"needs .* bytes of RAM \(arena\).*over by 24"):
        check_fits_board(board, 100, board.model_ram_budget + 24)


@pytest.fixture
def no_training(monkeypatch):
    """Any training (teacher, student, sweep) fails the test: budget errors must come first."""
    import tinyml.distill

    calls: list[str] = []

    def refuse(*args, **kwargs):
        calls.append(args[5] if len(args) > 5 else "training")
        raise AssertionError("training ran before the budget check")

    monkeypatch.setattr(tinyml.distill, "_fit", refuse)
    return calls


def test_board_too_small_for_any_student_fails_before_training(tmp_path, no_training):
    tiny = tmp_path / "tiny.toml"
    tiny.write_text('name="tiny"\nmcu="X"\ncore="cortex-m0"\nclock_hz=48000000\nflash_bytes=16384\nram_bytes=2048\n'
                    'firmware_flash_bytes=12288\nfirmware_ram_bytes=1536\ncompile_target="cortex-m4"\n')
    with pytest.raises(TinymlError, match=r"no student fits tiny within the budgets: flash on tiny \(model \+ 12,288 B "
                                          r"of firmware\) is 16,384 B, the smallest reachable is (1[7-9]|[2-9]\d),\d{3} B \(w1.00-d3\)"):
        prepare(PrepareOptions(dataset="digits", board=str(tiny), out=tmp_path / "out", progress=False))
    assert no_training == []
    assert not (tmp_path / "out").exists()


def test_impossible_budget_names_the_smallest_reachable_figure_before_training(tmp_path, no_training):
    # The family sweep alone: below every member, --max-macs is met by pruning (tinyml/prune.py) down to
    # 4 channels a layer; a flash budget names the smallest member.
    with pytest.raises(TinymlError, match=r"MACs \(--max-macs\) is 1,000 MACs, the smallest reachable is 2,048 "
                                          r"MACs \(w1.00-d1-e1-f-c28.36 pruned at ratio 0.95\)"):
        prepare(PrepareOptions(dataset="digits", board="stm32f405", out=tmp_path / "out", progress=False,
                               budgets=Budgets(max_macs=1_000), search=False))
    with pytest.raises(TinymlError, match=r"model flash \(--max-flash\) is 4,096 B, the smallest reachable is "
                                          r"[5-9],\d{3} B \(w1.00-d3\)"):
        prepare(PrepareOptions(dataset="digits", board="stm32f405", out=tmp_path / "out", progress=False,
                               budgets=Budgets(max_flash_bytes=4096), search=False))
    assert no_training == []
    assert not (tmp_path / "out").exists()


def test_impossible_budget_under_the_search_names_the_smallest_candidate(tmp_path, no_training):
    # With the search (the default under budgets) the smallest reachable figure is over every member,
    # prune ratio and weight encoding: the most pruned w1.00-d1-e1-f-c28.36, palettized.
    with pytest.raises(TinymlError, match=r"^no student fits stm32f405 within the budgets: model flash \(--max-flash\) "
                                          r"is 1,024 B, the smallest reachable is \d,\d{3} B \(w1.00-d1-e1-f-c4.4 "
                                          r"\(w1.00-d1-e1-f-c28.36 pruned 0\.\d+\) palette\d/\w+\)$"):
        prepare(PrepareOptions(dataset="digits", board="stm32f405", out=tmp_path / "out", progress=False,
                               budgets=Budgets(max_flash_bytes=1024)))
    assert no_training == []
    assert not (tmp_path / "out").exists()


def test_prepare_budget_options_are_parsed_with_one_line_errors(tmp_path):
    import subprocess
    import sys

    for option, value, message in (("--max-flash", "16 parsecs", "error: --max-flash: '16 parsecs' is not a size"),
                                   ("--max-macs", "lots", "error: --max-macs: 'lots' is not a count"),
                                   ("--max-latency-ms", "-1", "error: --max-latency-ms must be positive")):
        done = subprocess.run([sys.executable, "-m", "tinyml.cli", "prepare", "--dataset", "digits", "--board",
                               "stm32f405", "--out", str(tmp_path / "o"), option, value],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode != 0
        assert done.stderr.strip().splitlines()[-1].startswith(message), done.stderr
    assert not (tmp_path / "o").exists()


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


def test_one_named_student_replaces_the_family():
    from tinyml.prepare import size_family

    options = PrepareOptions(dataset="digits", board="stm32f405", out=None, progress=False,
                             student="w1.00-d1-e1-f-c28.36")
    figures = size_family(options, load_board("stm32f405"), (8, 8, 1), 10, Budgets(max_macs=30_000))
    assert [m.student for m in figures] == ["w1.00-d1-e1-f-c28.36"]
    assert figures[0].fits and figures[0].macs == 29_952
    with pytest.raises(TinymlError, match="bad student name 'w1-wide'"):
        size_family(PrepareOptions(dataset="digits", board="stm32f405", out=None, progress=False, student="w1-wide"),
                    load_board("stm32f405"), (8, 8, 1), 10, Budgets())


