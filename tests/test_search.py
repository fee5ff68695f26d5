"""`tinyml prepare`'s search under budgets (tinyml/search.py): encodings counted in the flash
figures, the Pareto front, the choice, and one small end-to-end run whose chosen encoding
flows into the firmware built for the emulated STM32F405."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinyml.boards import load_board
from tinyml.budgets import Budgets, figures_of_tflite, member_figures, untrained_tflite
from tinyml.errors import TinymlError
from tinyml.models import StudentConfig, footprint
from tinyml.search import Evaluated, accuracy_first, check_weights_option, choose, dominates, mark_front

DIGITS = (8, 8, 1)


def _architecture(label: str) -> str:
    """A student name per label (one network per label; routes to one network: test_of_two_routes_...)."""
    return f"w1.00-d1-c{4 * (1 + sum(map(ord, label)) % 50)}.4"


def _row(label: str, accuracy: float, flash: int, instructions: float, fits: bool = True) -> Evaluated:
    return Evaluated(label, "m", None, _architecture(label), "int8", "ptq", accuracy, accuracy, flash, 100, 1000, instructions,
                     "measured", 1.0, fits)


def test_front_is_exactly_the_non_dominated_rows():
    rows = [_row("a", 0.98, 4000, 200_000), _row("b", 0.97, 2000, 220_000), _row("c", 0.96, 3000, 230_000),
            _row("d", 0.98, 4000, 190_000), _row("e", 0.90, 1000, 100_000)]
    mark_front(rows)
    front = {r.label for r in rows if r.front}
    assert front == {"b", "d", "e"}      # a: d is as accurate, as small and faster; c: b beats it on all three
    for row in rows:
        assert row.front == (not any(dominates(other, row) for other in rows if other is not row))
    assert not dominates(rows[0], rows[0])


def test_choice_is_the_fewest_instructions_within_tolerance_of_the_best_fitting():
    rows = [_row("big", 0.99, 9000, 300_000, fits=False), _row("a", 0.980, 4000, 200_000),
            _row("b", 0.976, 2000, 150_000), _row("c", 0.96, 1000, 50_000)]
    picked = choose(rows, tolerance=0.005)
    assert picked.label == "b" and picked.chosen     # "big" is over a budget; "c" is 2 points below "a"
    with pytest.raises(TinymlError, match="no trained candidate meets the budgets: x breaks flash"):
        choose([Evaluated("x", "m", None, _architecture("x"), "int8", "ptq", 0.9, 0.9, 1, 1, 1, 1.0, "", None, False,
                          ["flash"])],
               0.005)


def test_with_only_a_mac_budget_the_best_on_validation_is_chosen():
    """Every fitting candidate meets --max-macs: fewer instructions buy nothing the user asked for."""
    assert accuracy_first(Budgets(max_macs=30_000))
    assert not accuracy_first(Budgets(max_macs=30_000, max_flash_bytes=8000))
    assert not accuracy_first(Budgets(max_macs=30_000, max_latency_ms=1.0))
    assert not accuracy_first(Budgets())
    rows = [_row("big", 0.99, 9000, 300_000, fits=False), _row("a", 0.980, 4000, 200_000),
            _row("b", 0.976, 2000, 150_000), _row("d", 0.980, 3000, 180_000)]
    assert choose(rows, tolerance=0.005, accuracy_first=True).label == "d"   # ties: the fewest instructions
    assert choose(rows, tolerance=0.005).label == "b"
    # A palette of a fitting int8 model does not compete, however it scores on validation.
    palette = Evaluated("d palette4/layer", "m", None, _architecture("d"), "palette4/layer", "ptq", 0.984, 0.984,
                        2000, 100, 1000, 270_000, "measured", 1.0, True)
    assert choose(rows + [palette], tolerance=0.005, accuracy_first=True).label == "d"


def test_unknown_weight_encoding_is_one_line():
    check_weights_option("auto")
    check_weights_option("palette4/layer")
    with pytest.raises(TinymlError, match=r"unknown weight encoding 'palette3' \(choose from int8, palette4/layer"):
        check_weights_option("palette3")


def test_flash_figures_count_the_encoded_weights(tmp_path):
    """compiled_size with an encoding is what compile_tflite emits with it, and a palette4 model fits a
    flash budget its int8 self does not."""
    from tinyml.compiler import compile_tflite, compiled_size
    from tinyml.palettize import palettize_tflite

    board = load_board("stm32f405")
    config = StudentConfig(2.0, 3)
    tflite = untrained_tflite(config, DIGITS, 10)
    clustered = palettize_tflite(tflite, 4, "layer").model
    (tmp_path / "p.tflite").write_bytes(clustered)
    compiled = compile_tflite(tmp_path / "p.tflite", tmp_path / "c", target="cortex-m4", weights="palette4")
    size = compiled_size(clustered, "cortex-m4", "speed", weights="palette4")
    assert (size.constants_bytes, size.arena_bytes) == (compiled.weight_bytes, compiled.arena_bytes)

    int8 = member_figures(config, DIGITS, 10, board, Budgets())
    palette = member_figures(config, DIGITS, 10, board, Budgets(), encoding="palette4/layer")
    assert palette.encoding == "palette4/layer" and palette.constants_bytes < int8.constants_bytes
    between = Budgets(max_flash_bytes=(int8.constants_bytes + palette.constants_bytes) // 2)
    assert not member_figures(config, DIGITS, 10, board, between).fits
    assert member_figures(config, DIGITS, 10, board, between, encoding="palette4/layer").fits
    # After training the same function sizes the (already clustered) model as compiled.
    after = figures_of_tflite("x", clustered, footprint(config, DIGITS, 10), board, Budgets(),
                              encoding="palette4/layer")
    assert after.constants_bytes == compiled.weight_bytes


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A flash budget below every int8 candidate (the most pruned w1.00-d3 in int8 needs about 3.5 KB of
    constants on the Cortex-M4 path) and a MAC budget: only palettized, pruned students fit."""
    from tinyml.prepare import PrepareOptions, prepare

    out = tmp_path_factory.mktemp("search") / "digits"
    return prepare(PrepareOptions(dataset="digits", board="stm32f405", out=out, epochs=1, teacher_epochs=1,
                                  progress=False, sweep=False, pruned_variants=0,
                                  budgets=Budgets(max_flash_bytes=3000, max_macs=30_000)))


@pytest.mark.slow
def test_search_meets_the_budgets_and_reports_the_front(searched):
    out = searched.out_dir
    report = json.loads((out / "report.json").read_text())
    search = report["search"]
    assert report["engine"]["constants_bytes"] <= 3000 and report["macs"] <= 30_000
    assert report["weight_encoding"] != "int8" and report["weights"] in ("palette4", "palette2")
    assert report["weight_encoding"] in search["chosen"]
    evaluated = search["evaluated"]
    assert len(search["trained_variants"]) == 1    # --pruned-variants 0: the chosen architecture only
    # The final fit (swa, the default): the chosen route trained again on train + validation, 3x the
    # epochs, the weights of the last third averaged (here the last of 3 epochs).
    fit = search["final_fit"]
    assert fit["mode"] == "swa" and fit["epochs"] == 3 and fit["kept_epoch"] == "average of the last 1"
    assert fit["train_images"] == report["samples"]["train"] + report["samples"]["val"]
    assert fit["encoding"] == report["weight_encoding"] and "final fit" in report["selection"]
    assert len(evaluated) >= 2                      # its fitting encodings, each measured
    assert [e["chosen"] for e in evaluated].count(True) == 1
    chosen = next(e for e in evaluated if e["chosen"])
    assert chosen["fits"] and chosen["constants_bytes"] == report["engine"]["constants_bytes"]
    # Measured on the emulated board, and the firmware's outputs are TFLite-Micro's.
    assert all(e["device_agreement"] == 1.0 and "measured" in e["instructions_source"] for e in evaluated)
    front = [e for e in evaluated if e["front"]]
    assert chosen in front or any(e["val_accuracy"] >= chosen["val_accuracy"] for e in front)

    def dominated(a, b):   # b dominates a
        return (b["val_accuracy"] >= a["val_accuracy"] and b["constants_bytes"] <= a["constants_bytes"]
                and b["instructions"] <= a["instructions"] and (b["val_accuracy"] > a["val_accuracy"]
                or b["constants_bytes"] < a["constants_bytes"] or b["instructions"] < a["instructions"]))

    for e in evaluated:
        assert e["front"] == (not any(dominated(e, other) for other in evaluated if other is not e))
    assert (out / "pareto_front.png").stat().st_size > 10_000
    text = (out / "report.md").read_text()
    assert "## Search under the budgets" in text and "![pareto_front.png](pareto_front.png)" in text


@pytest.mark.slow
def test_chosen_encoding_flows_into_the_compiled_firmware(searched, tmp_path):
    from tinyml.host.build import ensure_compiled, recorded_weights
    from tinyml.host.session import BoardSession

    out = searched.out_dir
    report = json.loads((out / "report.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["weights"] == report["weights"] == recorded_weights(out)
    board = load_board("stm32f405")
    compiled = ensure_compiled(out, board)
    summary = json.loads((Path(compiled) / "compile.json").read_text())
    assert summary["weights"] == report["weights"] and "tm_palette.c" in summary["engine_sources"]
    assert summary["weight_bytes"] == report["engine"]["constants_bytes"]
    # `tinyml flash`/`bench` build from the directory the same way: the board answers with its model.
    with BoardSession.build_and_boot(board, out, tmp_path / "build") as session:
        assert session.info is not None and session.info.model_sha256 == report["model_sha256"]
        results = list(session.link.infer([(0, json_free_sample(out))]))
    assert len(results) == 1
    with pytest.raises(TinymlError, match="--weights applies to a model directory holding model.tflite"):
        ensure_compiled(compiled, board, weights="int8")


def json_free_sample(model_dir: Path) -> bytes:
    import numpy as np

    with np.load(model_dir / "test_vectors.npz") as data:
        return data["inputs"][0].tobytes()


def test_a_latency_budget_is_checked_against_the_measured_instructions(monkeypatch):
    """Before training --max-latency-ms is an estimate; after training the search checks the instructions
    measured on the emulator (here: a stand-in count) at the board's clock."""
    import types

    import numpy as np

    from tinyml import search

    board = load_board("stm32f405")
    config = StudentConfig(1.0, 3)
    rng = np.random.default_rng(0)
    x, y = rng.random((8, *DIGITS), dtype=np.float32), rng.integers(0, 10, 8)
    splits = types.SimpleNamespace(x_val=x, y_val=y, x_test=x, y_test=y)
    measured = {"count": 0.0}
    monkeypatch.setattr(search, "count_instructions", lambda *a, **k: search.InstructionCount(
        measured["count"], "measured on stm32f405's emulator (stand-in)", 1.0, 4))
    budgets = Budgets(max_latency_ms=1.0)      # 168,000 instructions at 168 MHz
    arguments = (config.name(), config.name(), None, "ptq", untrained_tflite(config, DIGITS, 10), ["int8"], splits,
                 board, budgets, footprint(config, DIGITS, 10), Path("/nonexistent"), lambda text: None)
    measured["count"] = 100_000.0
    (row, _), = search.evaluate_variant(*arguments)
    assert row.fits and row.instructions == 100_000.0
    measured["count"] = 200_000.0
    (row, _), = search.evaluate_variant(*arguments)
    assert not row.fits and row.over == ["latency measured on the emulator at 168 MHz (--max-latency-ms): needs "
                                         "1.190 ms, has 1.000 ms"]


def test_a_shape_reached_by_pruning_a_wider_member_is_swept_once_and_trained_both_ways():
    """On digits under --max-macs 30K, c40.52 (a pruning source, never a student of its own) pruned
    0.3 is c28.36 again: the sweep trains that shape once (from scratch the two are one dense
    student), and the search trains the other route beside the chosen one."""
    from tinyml import models, search

    board = load_board("stm32f405")
    family = [StudentConfig.parse("w1.00-d1-e1-f-c28.36")]
    sources = models.pruning_sources(DIGITS)
    assert [c.name() for c in sources] == ["w1.00-d1-e1-f-c40.52"]
    assert models.pruning_sources((28, 28, 1)) == []
    assert not any(c.name() == "w1.00-d1-e1-f-c40.52" for c in models.student_family(DIGITS))
    sized = search.size_candidates(family, DIGITS, 10, board, Budgets(max_macs=30_000), ("int8",), None,
                                   lambda text: None, pruning_sources=sources)
    wide = [c for c in sized if c.member == "w1.00-d1-e1-f-c40.52"]
    assert wide and all(c.ratio is not None for c in wide)            # sized only pruned
    assert not next(c for c in wide if c.ratio == 0.5).figures.over
    same = [c for c in sized if c.student == "w1.00-d1-e1-f-c28.36"]
    assert {(c.member, c.ratio) for c in same} == {("w1.00-d1-e1-f-c28.36", None), ("w1.00-d1-e1-f-c40.52", 0.3)}
    assert all(c.fits and c.figures.macs == 29_952 for c in same)

    architectures = search.fitting_architectures(sized)
    assert all(a.member != "w1.00-d1-e1-f-c40.52" for a in architectures)   # c40.52 at 0.5 (c20.24) fits too
    students = [a.student for a in architectures]
    assert len(students) == len(set(students)) and "w1.00-d1-e1-f-c28.36" in students
    kept = next(a for a in architectures if a.student == "w1.00-d1-e1-f-c28.36")
    assert (kept.member, kept.ratio) == ("w1.00-d1-e1-f-c28.36", None)   # the family member, trained directly

    # Explicit channels name the network whatever the width they were pruned from.
    assert search.shape_of("w2.00-d3-c8.8.20.20") == search.shape_of("w4.00-d3-c8.8.20.20")
    assert search.shape_of("w2.00-d3") != search.shape_of("w4.00-d3")
    assert search.shape_of("w1.00-d1-e1-f-c28.36") != search.shape_of("w1.00-d1-c28.36")

    chosen = search.Route(kept.member, kept.ratio)
    assert search.same_shape_routes(sized, kept.student, chosen, 1) == [search.Route("w1.00-d1-e1-f-c40.52", 0.3)]
    assert search.same_shape_routes(sized, kept.student, chosen, 0) == []
    # And from the wide route's side, the direct one is the other route.
    assert search.same_shape_routes(sized, kept.student, search.Route("w1.00-d1-e1-f-c40.52", 0.3), 1) == [chosen]


def test_of_two_routes_to_one_shape_the_better_on_validation_competes():
    """Same architecture and encoding: the same cost on the board, whatever the few instructions the
    measurement differs by; the one with the better validation accuracy is the candidate."""
    def route(label: str, member: str, ratio: float | None, accuracy: float, instructions: float) -> Evaluated:
        return Evaluated(label, member, ratio, _architecture(label.split()[0]), "int8", "ptq", accuracy, accuracy, 4000, 100, 29_952,
                         instructions, "measured", 1.0, True)

    direct = route("s", "s", None, 0.9889, 58_857)
    wide = route("s (w pruned 0.3)", "w", 0.3, 0.9926, 58_860)
    # Both within 0.5 points: as two candidates the direct route would win on its 3 instructions.
    assert choose([direct, wide], tolerance=0.005) is wide
    smaller = route("t (s pruned 0.5)", "s", 0.5, 0.9852, 32_167)
    for row in (direct, wide):
        row.chosen = False
    # The tolerance is counted from the shape's better route: 0.9852 is within 0.5 points of the direct
    # route's 0.9889, not of the wide route's 0.9926.
    assert choose([direct, wide, smaller], tolerance=0.005) is wide
    assert choose([direct, smaller], tolerance=0.005) is smaller
