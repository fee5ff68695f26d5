"""Structured pruning (tinyml/prune.py): consistent shapes through depthwise blocks and residual
ADDs, a dense model of the smaller widths, the MAC count, the MAC-budget plan, and `--prune`
through `tinyml prepare` and the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from tinyml import models
from tinyml.budgets import Budgets
from tinyml.errors import TinymlError
from tinyml.prune import (kept_channels, macs_at_ratio, plan_for_macs, prune_channels, prune_student,
                          ratio_for_macs)

DIGITS = (8, 8, 1)
MNIST = (28, 28, 1)


def _student(name: str, shape=DIGITS, seed: int = 0) -> tuple[models.StudentConfig, nn.Module]:
    torch.manual_seed(seed)
    config = models.StudentConfig.parse(name)
    model = models.build_student(config, shape, 10)
    # Random BatchNorm statistics and scales, so a wrongly matched channel changes the output.
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return config, model.eval()


def test_kept_channels_are_multiples_of_four_and_at_least_four():
    assert kept_channels(32, 0.5) == 16
    assert kept_channels(64, 0.7) == 20        # 19.2 rounds to 20
    assert kept_channels(8, 0.9) == 4          # never below 4
    assert kept_channels(4, 0.5) == 4          # nothing to take from a 4-channel layer
    assert kept_channels(3, 0.5) == 3          # never more than the layer has
    for count in (8, 12, 16, 32, 64):
        for ratio in (0.1, 0.25, 0.5, 0.75, 0.9):
            kept = kept_channels(count, ratio)
            assert kept % 4 == 0 and 4 <= kept <= count


@pytest.mark.parametrize("name, shape", [("w4.00-d4", DIGITS), ("w2.00-d3", MNIST)])
@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.7])
def test_pruned_student_is_a_dense_student_of_the_smaller_widths(name, shape, ratio):
    config, model = _student(name, shape)
    result = prune_student(model, config, shape, 10, ratio)
    smaller = models.StudentConfig.parse(result.student)
    assert smaller.channels is not None and len(smaller.channels) == config.depth + 1
    # A fresh dense student of those widths with the pruned weights computes the same function ...
    dense = models.build_student(smaller, shape, 10).eval()
    dense.load_state_dict(result.model.state_dict(), strict=True)
    x = torch.rand(5, shape[2], shape[0], shape[1])
    with torch.no_grad():
        assert torch.equal(dense(x), result.model(x))
        # ... and so does the pruned graph itself (torch-pruning's in-place result).
        traced = prune_channels(model, shape, ratio, ignored=[model.classifier]).model
        assert torch.allclose(traced(x), dense(x), atol=1e-6)
    # Every depthwise conv kept exactly the channels of the layer that feeds it.
    for block in (m for m in result.model.modules() if isinstance(m, models._DepthwiseSeparable)):
        depthwise, bn, pointwise = block[0], block[1], block[3]
        assert depthwise.groups == depthwise.in_channels == depthwise.out_channels == bn.num_features
        assert pointwise.in_channels == depthwise.out_channels
    # The original is untouched (pruning works on a copy).
    assert models.footprint(model, shape, 10).macs == models.footprint(config, shape, 10).macs


def test_the_kept_channels_are_those_of_the_largest_group_magnitude():
    config, model = _student("w1.00-d3")
    stem = model.stages[0][0]
    with torch.no_grad():   # make stem channels 1, 3, 5, 7 (of 8) far stronger than the rest
        stem.weight.mul_(0.01)
        stem.weight[[1, 3, 5, 7]] *= 1000.0
    result = prune_student(model, config, DIGITS, 10, 0.5)
    kept = result.model.stages[0][0].weight
    assert kept.shape[0] == 4
    assert torch.equal(kept, stem.weight[[1, 3, 5, 7]])


def test_macs_fall_by_the_expected_factor():
    # w4.00-d4 on 8x8: stem and blocks 32, 32, 32, 64, 64 channels. At 0.5 every width halves, so
    # the pointwise MACs (in x out) fall 4x and the depthwise, stem and head MACs 2x.
    config, model = _student("w4.00-d4")
    result = prune_student(model, config, DIGITS, 10, 0.5)
    assert result.student == "w4.00-d4-c16.16.16.32.32"
    assert result.macs_before == 299_136
    widths_before, widths_after = (32, 32, 32, 64, 64), (16, 16, 16, 32, 32)

    def macs(widths):   # stem 3x3 conv on 8x8 (stride 1), then blocks: 8x8, 8x8, 4x4 (stride 2), 4x4
        sizes = (64, 64, 16, 16)
        total = 64 * widths[0] * 9
        for c_in, c_out, pixels in zip(widths[:-1], widths[1:], sizes):
            total += pixels * c_in * 9 + pixels * c_in * c_out
        return total + widths[-1] * 10

    assert macs(widths_before) == result.macs_before
    assert result.macs_after == macs(widths_after) == 92_224
    assert 3.0 < result.mac_reduction < 4.0
    assert result.params_after < result.params_before / 3
    assert macs_at_ratio(config, DIGITS, 10, 0.5) == result.macs_after
    assert [layer.after for layer in result.layers if layer.layer == "classifier"] == [10]


class _ResidualNet(nn.Module):
    """Two residual blocks (a depthwise-separable branch added to its input) on a shared trunk."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.Conv2d(16, 16, 1, bias=False), nn.BatchNorm2d(16)) for _ in range(2))
        self.widen = nn.Conv2d(16, 32, 1)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = torch.relu(x + block(x))     # residual ADD: both operands must keep the same channels
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(self.widen(x), 1), 1))


def test_residual_adds_keep_their_operands_channels_consistent():
    torch.manual_seed(0)
    model = _ResidualNet().eval()
    result = prune_channels(model, DIGITS, 0.5, ignored=[model.head])
    pruned = result.model
    widths = {layer.layer: layer.after for layer in result.layers}
    # Stem and both block outputs feed the same sums: one coupled group, pruned together.
    assert widths["stem.0"] == widths["blocks.0.3"] == widths["blocks.1.3"] == 8
    assert widths["blocks.0.0"] == widths["blocks.1.0"] == 8         # depthwise follows its input
    assert widths["widen"] == 16 and widths["head"] == 10
    assert pruned.widen.in_channels == 8 and pruned.head.in_features == 16
    out = pruned(torch.rand(3, 1, 8, 8))
    assert out.shape == (3, 10) and torch.isfinite(out).all()
    assert result.macs_after < result.macs_before / 3


def test_mac_budget_plan_picks_a_member_and_ratio_or_names_the_smallest_reachable():
    family = [c.name() for c in models.student_family(DIGITS)]
    plan = plan_for_macs(family, DIGITS, 10, 30_000)
    assert plan.macs_after <= 30_000 and plan.ratio <= 0.75
    config = models.StudentConfig.parse(plan.student)
    assert ratio_for_macs(config, DIGITS, 10, 30_000) == plan.ratio
    # The largest member that gets there gently: every larger one needs more than 0.75.
    for name in family[family.index(plan.student) + 1:]:
        needed = ratio_for_macs(models.StudentConfig.parse(name), DIGITS, 10, 30_000)
        assert needed is None or needed > 0.75
    with pytest.raises(TinymlError, match=r"MACs \(--max-macs\) is 1,000 MACs, the smallest reachable is 2,048 MACs "
                                          r"\(w1.00-d1-e1-f-c28.36 pruned at ratio 0.95\)"):
        plan_for_macs(family, DIGITS, 10, 1_000)


def test_pruned_student_names_round_trip():
    config = models.StudentConfig.parse("w4.00-d3-c8.8.16.16")
    assert config.channels == (8, 8, 16, 16) and config.name() == "w4.00-d3-c8.8.16.16"
    assert models.footprint(config, DIGITS, 10) == models.footprint(models.StudentConfig.parse("w1.00-d3"), DIGITS, 10)
    with pytest.raises(TinymlError, match="needs 4 positive channel counts"):
        models.build_student(models.StudentConfig.parse("w4.00-d3-c8.8"), DIGITS, 10)


@pytest.fixture(scope="module")
def pruned_prepare(tmp_path_factory):
    from tinyml.prepare import PrepareOptions, prepare

    out = tmp_path_factory.mktemp("prune") / "digits"
    return prepare(PrepareOptions(dataset="digits", board="stm32f405", out=out, epochs=3, teacher_epochs=3,
                                  sweep=False, progress=False, prune=0.5))


@pytest.mark.slow
def test_prepare_with_prune_exports_the_smaller_model_and_reports_before_and_after(pruned_prepare):
    out = pruned_prepare.out_dir
    report = json.loads((out / "report.json").read_text())
    pruning = report["pruning"]
    assert pruning["source"] == "--prune" and pruning["ratio"] == 0.5
    assert pruning["student_before"] == "w4.00-d4"            # the largest student (no sweep)
    assert report["student"] == pruning["student"] == "w4.00-d4-c16.16.16.32.32"
    assert pruning["macs_before"] == 299_136 and report["macs"] == pruning["macs_after"] == 92_224
    assert pruning["params_after"] == report["params"] < pruning["params_before"]
    for key in ("float_accuracy_before", "float_accuracy_pruned_not_tuned", "float_accuracy_after",
                "int8_accuracy_after"):
        assert 0.0 <= pruning[key] <= 1.0, key
    assert pruning["int8_accuracy_after"] == report["student_int8_accuracy"]
    assert pruning["float_accuracy_after"] > 0.3        # fine-tuned: well above chance (0.1) even with 3 epochs
    assert "## Structured pruning (--prune 0.5)" in (out / "report.md").read_text()
    # The .tflite is the smaller model: its compiled figures are those of the pruned student.
    assert report["engine"]["figures_within"] and not report["engine"]["figures_match"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["student"] == report["student"] and manifest["macs"] == 92_224
    # `tinyml update` starts from the pruned student: its name rebuilds the architecture.
    from tinyml.continual import _load_previous

    previous = _load_previous(out)
    assert previous.student == report["student"]
    assert models.footprint(previous.model, DIGITS, 10).macs == 92_224


@pytest.mark.slow
def test_max_macs_below_every_member_is_met_by_pruning(tmp_path):
    from tinyml.prepare import PrepareOptions, prepare

    result = prepare(PrepareOptions(dataset="digits", board="stm32f405", out=tmp_path / "out", epochs=1,
                                    teacher_epochs=1, sweep=False, progress=False, budgets=Budgets(max_macs=15_000),
                                    search=False))
    report = result.report   # 15,000: below every member (the smallest, w2.00-d2-e1-f, has 17,664)
    assert report["pruning"]["source"] == "--max-macs"
    assert report["macs"] <= 15_000 and report["budgets"]["max_macs"] == 15_000
    assert report["selection"].startswith("the student --max-macs is met with by pruning")
