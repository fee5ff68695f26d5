"""Teacher and student networks, the student family, and footprint estimates.

All networks take NCHW float input and use only layers that export to ONNX as
Conv / BatchNormalization (folded into Conv at export) / Relu / Clip / MaxPool /
GlobalAveragePool / Flatten / Gemm, so the int8 `.tflite` has only builtins
the C engine implements. Students use no MaxPool (stride-2 convs downsample).

Every network has:
  forward(x) -> logits
  forward_features(x) -> (logits, [feature map per stage])   for feature distillation
  hint_channels: list[int]    channels of each of those feature maps (to build 1x1 regressors)
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

import torch
from torch import nn

from .errors import TinymlError

InputShape = tuple[int, int, int]  # (H, W, C)


def _conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class FeatureNet(nn.Module):
    """Stages of conv layers, then global average pooling and one Linear layer.

    forward_features returns the output of every stage; stages end where the
    resolution changes (or at the end), so teacher and student maps line up.
    """

    def __init__(self, stages: list[nn.Module], channels: list[int], num_classes: int, dropout: float = 0.0,
                 flatten_pixels: int | None = None) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        # flatten_pixels: the head flattens the last map (that many pixels) into the Linear layer
        # instead of averaging it: it keeps where a stroke is, for pixels x channels x classes MACs.
        self.pool = nn.AdaptiveAvgPool2d(1) if flatten_pixels is None else None
        # No Identity module when unused: it would export as an ONNX Identity node.
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.classifier = nn.Linear(channels[-1] * (flatten_pixels or 1), num_classes)
        self.hint_channels = list(channels)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return self._head(x), features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return self._head(x)

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.flatten(self.pool(x) if self.pool is not None else x, 1)
        if self.dropout is not None:
            pooled = self.dropout(pooled)
        return self.classifier(pooled)


# ---------------------------------------------------------------- teacher

TEACHER_CHANNELS = (32, 64, 128)


def build_teacher(input_shape: InputShape, num_classes: int) -> FeatureNet:
    """Three blocks of two 3x3 conv+BN+ReLU (32, 64, 128 channels), ~290 K parameters.

    2x2 max pools keep it cheap to train on 2 cores: one after the first conv while
    the map is 16+ pixels wide, and one after each of the first two blocks while it
    is 4+ pixels wide. 8x8 inputs run the blocks at 8, 4, 2 pixels; 28x28 at 28/14, 7, 3.
    """
    height, width, channels = _check_shape(input_shape, num_classes)
    stages: list[nn.Module] = []
    size, c_in = min(height, width), channels
    for index, c_out in enumerate(TEACHER_CHANNELS):
        layers: list[nn.Module] = list(_conv_bn_relu(c_in, c_out, 3))
        if index == 0 and size >= 16:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        layers += list(_conv_bn_relu(c_out, c_out, 3))
        if index < len(TEACHER_CHANNELS) - 1 and size >= 4:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        stages.append(nn.Sequential(*layers))
        c_in = c_out
    return FeatureNet(stages, list(TEACHER_CHANNELS), num_classes, dropout=0.2)


# ---------------------------------------------------------------- students


@dataclass(frozen=True)
class StudentConfig:
    width: float          # width multiplier on base_channels
    depth: int            # number of depthwise-separable blocks
    base_channels: int = 8
    # Explicit output channels of the stem and of every block (depth + 1 numbers), replacing the
    # widths the multiplier gives: what structured pruning (tinyml/prune.py) leaves of a member.
    channels: tuple[int, ...] | None = None
    # Early downsampling ("-e2"): the map is halved this many times, by the stem and the first
    # blocks, instead of the default placement. 0 = the default plan (see _student_plan). On
    # small inputs it moves the MACs from wide maps to more channels on 4x4 / 2x2 maps.
    early: int = 0
    # "-f": the head flattens the last map into the Linear layer instead of a global average pool.
    flatten: bool = False

    def name(self) -> str:
        suffix = "" if self.base_channels == 8 else f"-b{self.base_channels}"
        early = ("" if self.early == 0 else f"-e{self.early}") + ("-f" if self.flatten else "")
        kept = "" if self.channels is None else "-c" + ".".join(str(c) for c in self.channels)
        return f"w{self.width:.2f}-d{self.depth}{suffix}{early}{kept}"

    @classmethod
    def parse(cls, name: str) -> StudentConfig:
        """Inverse of name(): 'w0.50-d3', 'w1-d4-b16', an early-downsampling 'w3.00-d3-e2' or a
        pruned 'w4.00-d3-c8.8.16.16'."""
        match = re.fullmatch(r"w(\d+(?:\.\d+)?)-d(\d+)(?:-b(\d+))?(?:-e(\d+))?(-f)?(?:-c(\d+(?:\.\d+)*))?",
                             name.strip())
        if not match:
            raise TinymlError(f"bad student name '{name}' (expected like w0.50-d3, w1.00-d4-b16, w3.00-d3-e2 "
                              f"or w4.00-d3-c8.8.16.16)")
        channels = tuple(int(c) for c in match[6].split(".")) if match[6] else None
        return cls(float(match[1]), int(match[2]), int(match[3] or 8), channels, int(match[4] or 0), bool(match[5]))


def _round_channels(value: float) -> int:
    """Nearest multiple of 4, at least 4: int8 kernels run 4 channels at a time."""
    return max(4, int(round(value / 4.0)) * 4)


def _student_plan(config: StudentConfig, input_shape: InputShape) -> tuple[int, list[tuple[int, int]]]:
    """Stem stride and (stride, out_channels) of every depthwise-separable block.

    The map is halved until it is about 4-7 pixels wide: by the stem (stride 2)
    on inputs of 16+ pixels, the rest by stride-2 blocks spread over the depth,
    each doubling the channels. 8x8 -> one halving; 28x28 -> two (14, 7).
    """
    size = min(input_shape[0], input_shape[1])
    if config.early:
        return _early_plan(config, size)
    halvings = min(4, max(0, int(math.floor(math.log2(size / 4)))) if size >= 4 else 0)
    stem_stride = 2 if size >= 16 and halvings > 0 else 1
    block_halvings = min(config.depth, halvings - (1 if stem_stride == 2 else 0))
    positions = {int((j + 1) * config.depth / (block_halvings + 1)) for j in range(block_halvings)}
    channels = _round_channels(config.base_channels * config.width)
    blocks = []
    for index in range(config.depth):
        stride = 2 if index in positions else 1
        if stride == 2:
            channels *= 2
        blocks.append((stride, channels))
    if config.channels is not None:   # pruned: the same strides, the kept widths
        blocks = [(stride, kept) for (stride, _), kept in zip(blocks, config.channels[1:])]
    return stem_stride, blocks


def _early_plan(config: StudentConfig, size: int) -> tuple[int, list[tuple[int, int]]]:
    """config.early halvings at the start: the stem (stride 2), then blocks 1 .. early-1 (stride 2,
    each doubling the channels, as in the default plan); the other blocks keep the resolution."""
    if config.early > config.depth + 1:
        raise TinymlError(f"student {config.name()}: {config.early} early halvings need at least "
                          f"{config.early - 1} blocks after the stem, it has {config.depth}")
    if size >> config.early < 1:
        raise TinymlError(f"student {config.name()}: {config.early} halvings leave nothing of a {size}-pixel input")
    channels = _round_channels(config.base_channels * config.width)
    blocks = []
    for index in range(config.depth):
        stride = 2 if index < config.early - 1 else 1
        if stride == 2:
            channels *= 2
        blocks.append((stride, channels))
    if config.channels is not None:
        blocks = [(stride, kept) for (stride, _), kept in zip(blocks, config.channels[1:])]
    return 2, blocks


def stem_channels(config: StudentConfig) -> int:
    return config.channels[0] if config.channels is not None else _round_channels(config.base_channels * config.width)


class _DepthwiseSeparable(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__(
            *_conv_bn_relu(c_in, c_in, 3, stride=stride, groups=c_in),   # 3x3 depthwise
            *_conv_bn_relu(c_in, c_out, 1),                              # 1x1 pointwise
        )


def build_student(config: StudentConfig, input_shape: InputShape, num_classes: int) -> FeatureNet:
    """Stem 3x3 conv+BN+ReLU, `depth` depthwise-separable blocks, global average pool, Linear."""
    _, _, channels = _check_shape(input_shape, num_classes)
    if config.depth < 0 or config.width <= 0 or config.base_channels < 1 or config.early < 0:
        raise TinymlError(f"bad student config {config}")
    if config.channels is not None and (len(config.channels) != config.depth + 1 or min(config.channels) < 1):
        raise TinymlError(f"student {config.name()}: needs {config.depth + 1} positive channel counts "
                          f"(the stem and each block), got {len(config.channels)}")
    stem_stride, plan = _student_plan(config, input_shape)
    c_stem = stem_channels(config)
    stages: list[nn.Module] = []
    stage_channels: list[int] = []
    current: list[nn.Module] = list(_conv_bn_relu(channels, c_stem, 3, stride=stem_stride))
    c_in = c_stem
    for stride, c_out in plan:
        if stride == 2:  # a stage ends where the resolution changes
            stages.append(nn.Sequential(*current))
            stage_channels.append(c_in)
            current = []
        current.append(_DepthwiseSeparable(c_in, c_out, stride))
        c_in = c_out
    stages.append(nn.Sequential(*current))
    stage_channels.append(c_in)
    flatten_pixels = None
    if config.flatten:   # a 3x3 conv with padding 1 and stride s leaves ceil(size / s) pixels
        height, width = input_shape[0], input_shape[1]
        for stride in (stem_stride, *(s for s, _ in plan)):
            height, width = -(-height // stride), -(-width // stride)
        flatten_pixels = height * width
    return FeatureNet(stages, stage_channels, num_classes, flatten_pixels=flatten_pixels)


# Members as (width, depth), ordered small -> large. Small inputs get a capped
# family: on 8x8 the big members buy no accuracy, only training time.
_FAMILY_SMALL_INPUT = ((1.0, 3), (2.0, 3), (3.0, 3), (4.0, 3), (4.0, 4))
_FAMILY = ((1.0, 3), (2.0, 3), (3.0, 4), (4.0, 4), (6.0, 4), (8.0, 4), (8.0, 5), (10.0, 5))


# Small inputs also get members that halve the map in the stem and flatten the 4x4 map into the
# head (-e1-f): under ~30 K MACs on 8x8 they spend the MACs on 28-36 channels at 4x4 instead of
# 8 at 8x8 (benchmarks/bench_tinydigits.py measures them against pruning w4.00-d4).
_EARLY_FLATTEN_SMALL_INPUT = ("w2.00-d2-e1-f", "w1.00-d1-e1-f-c28.36")


# Wider members the budget search trains only to prune (tinyml.search.same_shape_routes): on
# digits c40.52 pruned 0.3 with distillation fine-tuning is c28.36 again, a second route to that
# shape beside training it directly (benchmarks/results/tinydigits.md compares them over seeds).
_PRUNING_SOURCES_SMALL_INPUT = ("w1.00-d1-e1-f-c40.52",)


def pruning_sources(input_shape: InputShape) -> list[StudentConfig]:
    """Members the search sizes only pruned (never as students of their own), for this input."""
    small = min(input_shape[0], input_shape[1]) < 16
    return [StudentConfig.parse(name) for name in _PRUNING_SOURCES_SMALL_INPUT] if small else []


def student_family(input_shape: InputShape) -> list[StudentConfig]:
    """The students to choose from for this input, ordered small -> large (by parameters)."""
    small = min(input_shape[0], input_shape[1]) < 16
    members = [StudentConfig(w, d) for w, d in (_FAMILY_SMALL_INPUT if small else _FAMILY)]
    if small:
        members += [StudentConfig.parse(name) for name in _EARLY_FLATTEN_SMALL_INPUT]
    return sorted(members, key=lambda c: footprint(c, input_shape, 10).params)


# ---------------------------------------------------------------- footprint


@dataclass(frozen=True)
class Footprint:
    params: int         # after folding BN into the convs (each conv gets a bias)
    macs: int           # multiply-accumulates of one inference
    weight_bytes: int   # int8 weights + int32 biases, as stored in the .tflite (~ flash for the model)
    arena_bytes: int    # rough estimate (max over layers of input + output bytes); budgets use the compiler's plan


def footprint(model_or_config: nn.Module | StudentConfig, input_shape: InputShape, num_classes: int) -> Footprint:
    """Count by running one forward pass with hooks on Conv2d, Linear and pooling layers."""
    if isinstance(model_or_config, StudentConfig):
        return _config_footprint(model_or_config, tuple(int(d) for d in input_shape), int(num_classes))
    return _count(model_or_config, input_shape)


@functools.lru_cache(maxsize=256)
def _config_footprint(config: StudentConfig, input_shape: InputShape, num_classes: int) -> Footprint:
    # Family sorting and the budget figures ask for the same members again and again.
    return _count(build_student(config, input_shape, num_classes), input_shape)


def _count(model: nn.Module, input_shape: InputShape) -> Footprint:
    height, width, channels = input_shape
    totals = {"weights": 0, "biases": 0, "macs": 0, "arena": 0}

    def on_layer(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        in_elems, out_elems = inputs[0][0].numel(), output[0].numel()   # batch of one
        totals["arena"] = max(totals["arena"], in_elems + out_elems)
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            per_output = (module.in_channels // module.groups) * kh * kw
            totals["weights"] += module.weight.numel()
            totals["biases"] += module.out_channels     # BN folding always leaves a bias
            totals["macs"] += out_elems * per_output
        elif isinstance(module, nn.Linear):
            totals["weights"] += module.weight.numel()
            totals["biases"] += module.out_features
            totals["macs"] += module.in_features * module.out_features

    watched = (nn.Conv2d, nn.Linear, nn.AdaptiveAvgPool2d, nn.MaxPool2d, nn.AvgPool2d)
    handles = [m.register_forward_hook(on_layer) for m in model.modules() if isinstance(m, watched)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, channels, height, width))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    params = totals["weights"] + totals["biases"]
    return Footprint(params=params, macs=totals["macs"], weight_bytes=totals["weights"] + 4 * totals["biases"],
                     arena_bytes=totals["arena"])


def _check_shape(input_shape: InputShape, num_classes: int) -> InputShape:
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise TinymlError(f"input shape must be (H, W, C) with positive sizes, got {tuple(input_shape)}")
    if num_classes < 2:
        raise TinymlError(f"need at least 2 classes, got {num_classes}")
    return tuple(int(d) for d in input_shape)  # type: ignore[return-value]
