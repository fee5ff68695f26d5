"""Budgets before training: exact figures from the compile path, options, the choice, the errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tinyml.boards import load_board
from tinyml.budgets import (Budgets, MemberFigures, budget_violations, choose_smallest_within_tolerance,
                            estimated_latency_ms, figures_of_tflite, member_figures, nothing_fits_message,
                            parse_bytes, parse_count, untrained_tflite)
from tinyml.errors import TinymlError
from tinyml.models import StudentConfig, footprint

SHAPE = (8, 8, 1)
SMALL = StudentConfig(1.0, 3)


def figures(name: str, constants: int, arena: int, macs: int, board, budgets: Budgets) -> MemberFigures:
    member = MemberFigures(name, 100, macs, 100, 100, constants, arena, constants + board.firmware_flash_bytes,
                           arena + board.firmware_ram_bytes, estimated_latency_ms(macs, board, budgets.optimize))
    member.over = budget_violations(member, board, budgets)
    return member


@pytest.mark.parametrize("text, expected", [("16KB", 16384), ("16K", 16384), ("16 KiB", 16384), ("1.5MB", 1572864),
                                            ("2048", 2048), ("100b", 100)])
def test_parse_bytes(text, expected):
    assert parse_bytes(text, "--max-flash") == expected


@pytest.mark.parametrize("text, expected", [("100K", 100_000), ("2M", 2_000_000), ("30000", 30000), ("1.5k", 1500),
                                            ("30,000", 30000)])
def test_parse_count(text, expected):
    assert parse_count(text, "--max-macs") == expected


@pytest.mark.parametrize("text", ["", "KB", "16 parsecs", "-5K", "1e3"])
def test_bad_sizes_and_counts_name_the_option(text):
    with pytest.raises(TinymlError, match="--max-flash: .* is not a size"):
        parse_bytes(text, "--max-flash")
    with pytest.raises(TinymlError, match="--max-macs: .* is not a count"):
        parse_count(text + "Q", "--max-macs")


def test_budget_values_are_checked():
    with pytest.raises(TinymlError, match="--max-latency-ms must be positive"):
        Budgets(max_latency_ms=0).check()
    with pytest.raises(TinymlError, match="--max-flash must be positive"):
        Budgets(max_flash_bytes=-1).check()
    with pytest.raises(TinymlError, match="accuracy-tolerance"):
        Budgets(accuracy_tolerance=1.5).check()
    with pytest.raises(TinymlError, match="unknown optimization 'tiny'"):
        Budgets(optimize="tiny").check()


def test_figures_before_training_are_those_of_the_trained_compile(tmp_path):
    """The untrained instance's figures (every fast-path array counted) bound the compile of
    other weights of the same architecture, and equal it when each layer takes its fast path."""
    import torch

    from tinyml.compiler import compile_tflite
    from tinyml.onnx_export import export_onnx
    from tinyml.onnx_to_tf.converter import convert_onnx
    from tinyml.quantize import quantize_int8

    board = load_board("stm32f405")
    for optimize in ("speed", "size"):
        before = member_figures(SMALL, SHAPE, 10, board, Budgets(optimize=optimize))
        # Other weights: a differently seeded instance with trained-like BatchNorm statistics.
        torch.manual_seed(7)
        from tinyml.models import build_student

        other = build_student(SMALL, SHAPE, 10)
        for module in other.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
        other.eval()
        calibration = np.random.default_rng(3).random((16, *SHAPE), dtype=np.float32)
        export_onnx(other, SHAPE, tmp_path / f"{optimize}.onnx", sample=calibration[:4])
        quantized = quantize_int8(convert_onnx(tmp_path / f"{optimize}.onnx"), calibration,
                                  tmp_path / f"{optimize}.tflite")
        compiled = compile_tflite(quantized.path, tmp_path / f"compiled-{optimize}", target=board.compile_target,
                                  optimize=optimize)
        assert compiled.weight_bytes <= before.constants_bytes
        assert compiled.arena_bytes <= before.arena_bytes
        after = figures_of_tflite(SMALL.name(), quantized.path.read_bytes(), footprint(SMALL, SHAPE, 10), board,
                                  Budgets(optimize=optimize))
        assert (after.constants_bytes, after.arena_bytes) == (compiled.weight_bytes, compiled.arena_bytes)
        assert before.flash_needed == before.constants_bytes + board.firmware_flash_bytes
    speed = member_figures(SMALL, SHAPE, 10, board, Budgets(optimize="speed"))
    size = member_figures(SMALL, SHAPE, 10, board, Budgets(optimize="size"))
    assert size.constants_bytes < speed.constants_bytes    # size drops the int16-widened layouts


def test_untrained_figures_equal_the_compile_of_the_same_model(tmp_path):
    from tinyml.compiler import compile_tflite

    board = load_board("stm32f405")
    member = member_figures(StudentConfig(2.0, 3), SHAPE, 10, board, Budgets())
    path = tmp_path / "m.tflite"
    path.write_bytes(untrained_tflite(StudentConfig(2.0, 3), SHAPE, 10))
    compiled = compile_tflite(path, tmp_path / "c", target=board.compile_target)
    # This instance takes every fast path: the bound is its exact compile.
    assert (member.constants_bytes, member.arena_bytes) == (compiled.weight_bytes, compiled.arena_bytes)
    assert member.macs == compiled.macs


def test_every_budget_is_checked_and_named():
    board = load_board("stm32f405")
    budgets = Budgets(max_flash_bytes=1000, max_ram_bytes=500, max_macs=10_000, max_latency_ms=0.01)
    member = figures("w1.00-d3", 7_884, 1_224, 23_072, board, budgets)
    text = "; ".join(member.over)
    for phrase in ("model flash (--max-flash): needs 7,884 B, has 1,000 B", "model RAM (--max-ram): needs 1,224 B",
                   "MACs (--max-macs): needs 23,072 MACs, has 10,000 MACs", "--max-latency-ms"):
        assert phrase in text
    assert not member.fits
    roomy = figures("w1.00-d3", 7_884, 1_224, 23_072, board, Budgets())
    assert roomy.fits


def test_board_memory_counts_the_firmware_share():
    board = dataclasses.replace(load_board("stm32f405"), flash_bytes=100_000, firmware_flash_bytes=60_000)
    assert figures("a", 40_000, 10, 10, board, Budgets()).fits
    over = figures("a", 40_001, 10, 10, board, Budgets())
    assert over.over == [f"flash on {board.name} (model + 60,000 B of firmware): needs 100,001 B, has 100,000 B"]


def test_nothing_fits_names_the_smallest_reachable_figure():
    board = load_board("stm32f405")
    budgets = Budgets(max_macs=20_000, max_flash_bytes=50_000)
    family = [figures("w1.00-d3", 7_884, 1_224, 23_072, board, budgets),
              figures("w2.00-d3", 18_164, 2_448, 66_624, board, budgets)]
    message = nothing_fits_message(family, board, budgets)
    assert message == ("no student fits stm32f405 within the budgets: MACs (--max-macs) is 20,000 MACs, the smallest "
                       "reachable is 23,072 MACs (w1.00-d3)")
    # Each budget met by some member, never all by one.
    budgets = Budgets(max_macs=30_000, max_ram_bytes=1_000)
    family = [figures("a", 100, 2_000, 20_000, board, budgets), figures("b", 100, 900, 40_000, board, budgets)]
    assert "none meets all" in nothing_fits_message(family, board, budgets)


def test_choose_smallest_within_tolerance():
    board = load_board("stm32f405")
    members = [figures(name, 1000 * (i + 1), 100, 1000, board, Budgets()) for i, name in enumerate("abcd")]
    scored = list(zip(members, [0.90, 0.975, 0.98, 0.979]))
    chosen, best = choose_smallest_within_tolerance(scored, 0.005)
    assert (chosen.student, best) == ("b", 0.98)
    assert choose_smallest_within_tolerance(scored, 0.0)[0].student == "c"
    assert choose_smallest_within_tolerance(scored, 0.5)[0].student == "a"
    with pytest.raises(TinymlError):
        choose_smallest_within_tolerance([], 0.005)


def test_latency_estimate_uses_the_board_clock_and_the_targets_instructions_per_mac():
    board = load_board("stm32f405")
    assert estimated_latency_ms(168_000, board, "speed") == pytest.approx(1.27)
    assert estimated_latency_ms(168_000, board, "size") == pytest.approx(3.02)
    rv32 = load_board("rv32_virt")
    assert estimated_latency_ms(160_000, rv32, "speed") == pytest.approx(4.94)


def test_instructions_per_mac_are_the_stored_measurements():
    """The latency estimate's figures are the engine benchmark's digits CNN, as last stored."""
    import json
    from pathlib import Path

    from tinyml.budgets import INSTRUCTIONS_PER_MAC

    results = Path(__file__).resolve().parents[1] / "benchmarks" / "results"

    def measured(name: str, target: str) -> float:
        rows = json.loads((results / name).read_text())["rows"]
        row = next(r for r in rows if r["model"] == "digits" and r["target"] == target)
        return round(row["instructions_per_mac"], 2)

    assert INSTRUCTIONS_PER_MAC[("cortex-m4", "speed")] == measured("engine-quick.json", "cortex-m4")
    assert INSTRUCTIONS_PER_MAC[("generic", "speed")] == measured("engine-quick.json", "generic")
    assert INSTRUCTIONS_PER_MAC[("cortex-m4", "size")] == measured("engine-size.json", "cortex-m4")
    assert INSTRUCTIONS_PER_MAC[("rv32", "speed")] == measured("engine-nosimd.json", "rv32")
    assert INSTRUCTIONS_PER_MAC[("cortex-m0", "speed")] == measured("engine-nosimd.json", "cortex-m0")
