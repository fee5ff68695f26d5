"""Structured pruning: remove whole filters/channels, leave a genuinely smaller dense model.

The dependency graph is torch-pruning's (`torch_pruning.DependencyGraph`): it traces the
network once and knows which tensors share a channel axis, so removing output channel k of
a pointwise conv also removes channel k of the BatchNorm after it, of the depthwise conv and
its BatchNorm that follow (a depthwise conv's input and output channels are one axis), of
the next conv's input, of the Linear head's input, and, through a residual ADD, of every
branch that feeds the same sum. What this module decides itself is how many channels each
group keeps (a multiple of 4, at least 4: the engine's int8 kernels run 4 channels at a time)
and which ones (the least L2 weight magnitude over the whole group, torch-pruning's
GroupMagnitudeImportance); torch-pruning's own MetaPruner rounds differently and leaves a
layer untouched when the rounded count would reach 0, which made ratios above ~0.8 prune
nothing on our students.

For the student family (tinyml/models.py) the pruned network is then rebuilt as a plain
student of the kept widths (StudentConfig.channels) and the pruned weights are loaded into
it strictly: the exported model is the same class, with no trace of the pruning.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .errors import TinymlError

if TYPE_CHECKING:
    from torch import nn

    from .models import InputShape, StudentConfig

CHANNEL_MULTIPLE = 4          # kept channels are a multiple of this ...
MIN_CHANNELS = 4              # ... and never fewer than this
# --max-macs met by pruning: prefer the largest member that needs at most this ratio (pruning
# away most of a wide network keeps more than training the narrow one, up to a point).
MAX_AUTO_RATIO = 0.75


def check_ratio(ratio: float, option: str = "--prune") -> None:
    """A prune ratio is the share of channels removed: strictly between 0 and 1."""
    if not 0.0 < ratio < 1.0:
        raise TinymlError(f"{option} must be a ratio in (0, 1) (the share of channels removed), got {ratio:g}")


def kept_channels(count: int, ratio: float) -> int:
    """Channels a layer of `count` keeps when `ratio` of them are removed: rounded to the
    nearest multiple of CHANNEL_MULTIPLE, at least MIN_CHANNELS, never more than it has."""
    target = count * (1.0 - ratio)
    rounded = int(round(target / CHANNEL_MULTIPLE)) * CHANNEL_MULTIPLE
    return min(count, max(MIN_CHANNELS, rounded))


@dataclass
class LayerChannels:
    layer: str        # the conv / linear module (its output channels)
    before: int
    after: int


@dataclass
class PruneResult:
    model: nn.Module                    # the pruned network (a dense student of the kept widths for students)
    ratio: float
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    layers: list[LayerChannels] = field(default_factory=list)
    student: str | None = None          # the pruned student's name (StudentConfig.name()), for students

    @property
    def mac_reduction(self) -> float:
        return self.macs_before / self.macs_after

    def as_dict(self) -> dict[str, Any]:
        """The figures for report.json (everything but the model)."""
        return {"ratio": self.ratio, "student": self.student, "macs_before": self.macs_before,
                "macs_after": self.macs_after, "params_before": self.params_before, "params_after": self.params_after,
                "mac_reduction": round(self.mac_reduction, 3), "layers": [asdict(layer) for layer in self.layers]}


def prune_channels(model: nn.Module, input_shape: InputShape, ratio: float,
                   ignored: list[nn.Module] | None = None) -> PruneResult:
    """Remove `ratio` of the output channels of every conv/linear group (see kept_channels) from a
    copy of `model`, chosen by group L2 magnitude. `ignored` layers keep their outputs (the
    classifier: its outputs are the classes). Works on any traceable network: depthwise-separable
    blocks and residual ADDs are coupled by torch-pruning's dependency graph."""
    import torch
    import torch_pruning as tp

    from . import models

    check_ratio(ratio, "prune ratio")
    height, width, channels = input_shape
    before = models.footprint(model, input_shape, 0)
    pruned = copy.deepcopy(model).eval()
    example = torch.zeros(1, channels, height, width)
    names = {module: name for name, module in pruned.named_modules()}   # for the error messages
    ignored_copies = [_same_module(pruned, model, layer) for layer in (ignored or [])]
    with torch.enable_grad():   # the dependency graph is traced through autograd
        graph = tp.DependencyGraph().build_dependency(pruned, example_inputs=example)
    importance = tp.importance.GroupMagnitudeImportance(p=2)
    # The group roots first (all groups of the unpruned graph), then each pruned in turn: a group
    # is re-derived from its root after the previous ones changed the shapes.
    roots = [group[0].dep.target.module
             for group in graph.get_all_groups(ignored_layers=ignored_copies, root_module_types=(torch.nn.Conv2d,
                                                                                                 torch.nn.Linear))]
    for root in roots:
        out_fn = tp.prune_linear_out_channels if isinstance(root, torch.nn.Linear) else tp.prune_conv_out_channels
        count = graph.get_out_channels(root)
        keep = kept_channels(count, ratio)
        if keep == count:
            continue
        group = graph.get_pruning_group(root, out_fn, idxs=list(range(count)))
        scores = importance(group)
        if scores is None:
            raise TinymlError(f"cannot rank the channels of {names.get(root)} for pruning")
        weakest = torch.argsort(scores)[:count - keep].tolist()
        group = graph.get_pruning_group(root, out_fn, idxs=sorted(weakest))
        if not graph.check_pruning_group(group):
            raise TinymlError(f"pruning {names.get(root)} to {keep} channels would empty a layer")
        group.prune()
    after = models.footprint(pruned, input_shape, 0)
    layers = [LayerChannels(name, _out_channels(module), _out_channels(pruned.get_submodule(name)))
              for name, module in model.named_modules() if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear))]
    return PruneResult(model=pruned, ratio=ratio, macs_before=before.macs, macs_after=after.macs,
                       params_before=before.params, params_after=after.params, layers=layers)


def _out_channels(layer: nn.Module) -> int:
    return int(getattr(layer, "out_channels", getattr(layer, "out_features", 0)))


def _same_module(copied: nn.Module, original: nn.Module, layer: nn.Module) -> nn.Module:
    """The module of the deep copy at the path `layer` has in the original."""
    for name, module in original.named_modules():
        if module is layer:
            return copied.get_submodule(name)
    raise TinymlError("internal: an ignored layer is not part of the model")


def student_widths(model: nn.Module) -> tuple[int, ...]:
    """Output channels of a student's stem and of each block's pointwise conv (StudentConfig.channels)."""
    from torch import nn as torch_nn

    from .models import _DepthwiseSeparable

    stem = next(m for m in model.stages[0].modules() if isinstance(m, torch_nn.Conv2d))
    blocks = [m for m in model.modules() if isinstance(m, _DepthwiseSeparable)]
    return (stem.out_channels, *(next(c for c in block if isinstance(c, torch_nn.Conv2d) and c.groups == 1).out_channels
                                 for block in blocks))


def pruned_config(config: StudentConfig, widths: tuple[int, ...]) -> StudentConfig:
    return replace(config, channels=tuple(int(w) for w in widths))


def prune_student(model: nn.Module, config: StudentConfig, input_shape: InputShape, num_classes: int,
                  ratio: float) -> PruneResult:
    """prune_channels on a family student, then the same weights in a fresh dense student of the
    kept widths (loaded strictly: every tensor must match in name and shape)."""
    from . import models

    result = prune_channels(model, input_shape, ratio, ignored=[model.classifier])
    smaller = pruned_config(replace(config, channels=None),
                            student_widths(result.model))
    dense = models.build_student(smaller, input_shape, num_classes)
    dense.load_state_dict(result.model.state_dict(), strict=True)
    dense.eval()
    return replace(result, model=dense, student=smaller.name())


# ---------------------------------------------------------------- MAC budgets


def config_at_ratio(config: StudentConfig, input_shape: InputShape, num_classes: int, ratio: float) -> StudentConfig:
    """The student prune_student leaves of `config` at `ratio` (the widths follow from the ratio
    alone: every group keeps kept_channels of its own)."""
    from . import models

    # A member's own widths (a family member may name its channels, -c28.36)
    stem = models.stem_channels(config)
    blocks = [c for _, c in models._student_plan(config, input_shape)[1]]
    return pruned_config(config, tuple(kept_channels(c, ratio) for c in (stem, *blocks)))


def macs_at_ratio(config: StudentConfig, input_shape: InputShape, num_classes: int, ratio: float) -> int:
    from . import models

    return models.footprint(config_at_ratio(config, input_shape, num_classes, ratio), input_shape, num_classes).macs


_RATIO_GRID = tuple(round(0.05 * step, 2) for step in range(1, 20))     # 0.05 .. 0.95


def ratio_for_macs(config: StudentConfig, input_shape: InputShape, num_classes: int, max_macs: int) -> float | None:
    """The smallest ratio on a 0.05 grid whose pruned student has at most max_macs MACs (None if none)."""
    for ratio in _RATIO_GRID:
        if macs_at_ratio(config, input_shape, num_classes, ratio) <= max_macs:
            return ratio
    return None


@dataclass
class PrunePlan:
    student: str        # the family member to train, then prune
    ratio: float
    macs_after: int


def plan_for_macs(candidates: list[str], input_shape: InputShape, num_classes: int, max_macs: int) -> PrunePlan:
    """Meet --max-macs by pruning one of `candidates` (family members, small -> large, that meet
    every other budget): the largest that gets there with a ratio up to MAX_AUTO_RATIO, else the
    one needing the smallest ratio. None gets there: one line naming the smallest reachable MACs."""
    from .models import StudentConfig

    if not candidates:
        raise TinymlError("internal: no member to prune for --max-macs")
    reachable = []
    for name in candidates:
        config = StudentConfig.parse(name)
        ratio = ratio_for_macs(config, input_shape, num_classes, max_macs)
        if ratio is not None:
            reachable.append(PrunePlan(name, ratio, macs_at_ratio(config, input_shape, num_classes, ratio)))
    if not reachable:
        smallest = min(((name, macs_at_ratio(StudentConfig.parse(name), input_shape, num_classes, _RATIO_GRID[-1]))
                        for name in candidates), key=lambda pair: pair[1])
        raise TinymlError(f"MACs (--max-macs) is {max_macs:,} MACs, the smallest reachable is {smallest[1]:,} MACs "
                          f"({smallest[0]} pruned at ratio {_RATIO_GRID[-1]:g})")
    gentle = [plan for plan in reachable if plan.ratio <= MAX_AUTO_RATIO]
    return gentle[-1] if gentle else min(reachable, key=lambda plan: plan.ratio)
