"""Training: the teacher, the student alone, and the student distilled from a teacher.

Distillation modes (TrainConfig.kd):
  none       loss = CE(s, y)
  hinton     loss = (1-a)*CE(s, y) + a*T^2 * KL(softmax(t/T) || softmax(s/T))
  fitnets    hinton + w * MSE(R(f_s), f_t)      R = 1x1 conv regressor trained with the student and
                                                 dropped after; f_s, f_t = last feature maps
                                                 (f_s resized to f_t's size)
  attention  hinton + w * sum over aligned stages of || q_s/|q_s| - q_t/|q_t| ||^2
                                                 q = mean over channels of f^2 (Zagoruyko & Komodakis),
                                                 maps resized to the smaller of the two
Stages are aligned from the end (last with last). Model choice (the best epoch)
uses the validation split only; the test split is never touched here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import TinymlError

if TYPE_CHECKING:
    from .data import Splits

KD_MODES = ("none", "hinton", "fitnets", "attention")
FEATURE_MODES = ("fitnets", "attention")
# Weights that put the feature term at about the size of the CE term early in training.
DEFAULT_FEATURE_WEIGHT = {"fitnets": 1.0, "attention": 4.0}
# Epochs that reach the accuracy targets on 2 CPU cores, per built-in dataset.
RECOMMENDED_EPOCHS = {"digits": {"teacher": 10, "student": 20}, "mnist5k": {"teacher": 8, "student": 12}}
_EVAL_BATCH = 512


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-2                 # peak of the one-cycle schedule (AdamW)
    weight_decay: float = 1e-4
    seed: int = 0
    kd: str = "hinton"               # "none" | "hinton" | "fitnets" | "attention"
    temperature: float = 4.0
    alpha: float = 0.7               # share of the KD term against CE
    feature_weight: float | None = None   # fitnets / attention term; None = DEFAULT_FEATURE_WEIGHT[kd]
    augment: bool = True             # random shifts of up to 1 pixel per 14 (zero padded)
    # Random rotations of up to this many degrees either way (bilinear, zero filled), before the
    # shift; 0 = none. Only with augment.
    rotate_degrees: float = 0.0
    # Torch intra-op threads while training (at most 2: the machine has 2 cores shared by
    # everyone). 1 by default: these models are small, and on a loaded machine 2 threads
    # spin against each other and ran 13x slower than 1 in our measurements.
    threads: int = 1
    # Which epoch's weights are kept: "best" on the validation split, or "last" (the end of the
    # one-cycle schedule) when the validation images are trained on too (prepare's final fit).
    keep: str = "best"
    # Weight averaging (SWA): the share of the last epochs whose end-of-epoch weights are averaged
    # into the kept model (0 = none; only with keep="last", where no validation picks an epoch).
    # The BatchNorm statistics are recomputed on the training images after averaging: an average
    # of weights does not match the average of the running statistics, and export folds them.
    average_share: float = 0.0

    def check(self) -> None:
        if self.kd not in KD_MODES:
            raise TinymlError(f"unknown distillation '{self.kd}' (choose {', '.join(KD_MODES)})")
        if not 1 <= self.threads <= 2:
            raise TinymlError(f"threads must be 1 or 2, got {self.threads}")
        if self.epochs < 1 or self.batch_size < 2:
            raise TinymlError(f"need epochs >= 1 and batch_size >= 2, got {self.epochs} and {self.batch_size}")
        if self.keep not in ("best", "last"):
            raise TinymlError(f"keep must be 'best' or 'last', got '{self.keep}'")
        if not 0.0 <= self.average_share <= 1.0:
            raise TinymlError(f"average_share must be in [0, 1], got {self.average_share:g}")
        if self.average_share > 0 and self.keep != "last":
            raise TinymlError("weight averaging (average_share > 0) needs keep='last'")
        if not 0.0 <= self.rotate_degrees <= 45.0:
            raise TinymlError(f"rotate_degrees must be in [0, 45], got {self.rotate_degrees:g}")
        if not (0.0 <= self.alpha <= 1.0) or self.temperature <= 0 or self.lr <= 0:
            raise TinymlError(f"bad distillation settings: alpha {self.alpha}, temperature {self.temperature}, lr {self.lr}")


@dataclass
class TrainResult:
    model: nn.Module               # best epoch's weights, in eval mode
    history: list[dict]            # per epoch: epoch, train_loss, train_acc, val_acc, lr, seconds, loss terms
    val_accuracy: float
    best_epoch: int                # 1-based
    seconds: float


# ---------------------------------------------------------------- teachers


class Teacher:
    """Something that gives soft targets: a torch module (also feature maps) or an ONNX model."""

    name: str = "teacher"
    has_features: bool = False

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """x: NCHW float32 -> logits (N, classes), no gradient."""
        raise NotImplementedError

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        raise TinymlError(f"{self.name} cannot give feature maps (only logits)")


class TorchTeacher(Teacher):
    def __init__(self, module: nn.Module, name: str = "teacher") -> None:
        self.module = module.eval()
        self.name = name
        self.has_features = hasattr(module, "forward_features")

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        self.module.eval()
        with torch.no_grad():
            return self.module(x)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if not self.has_features:
            return super().features(x)
        self.module.eval()
        with torch.no_grad():
            return self.module.forward_features(x)


class OnnxTeacher(Teacher):
    """An ONNX classifier run by onnxruntime; its input may be NCHW or NHWC, batch fixed or free."""

    def __init__(self, path: Path, input_shape: tuple[int, int, int], num_classes: int) -> None:
        import onnxruntime as ort

        try:
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1   # see TrainConfig.threads
            options.inter_op_num_threads = 1
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise TinymlError(f"teacher {path}: cannot load ONNX model ({type(exc).__name__}: {exc})") from exc
        self.name = f"teacher {path.name}"
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1:
            raise TinymlError(f"teacher {path}: expected one input, found {len(inputs)}")
        tensor = inputs[0]
        if tensor.type != "tensor(float)":
            raise TinymlError(f"teacher {path}: input '{tensor.name}' is {tensor.type}, expected tensor(float)")
        shape = list(tensor.shape)
        height, width, channels = input_shape

        def fits(expected: tuple[int, int, int]) -> bool:
            return all(not isinstance(d, int) or d == e for d, e in zip(shape[1:], expected))

        if len(shape) != 4 or not (fits((channels, height, width)) or fits((height, width, channels))):
            raise TinymlError(f"teacher {path}: input shape {shape} does not take {height}x{width}x{channels} images")
        self.channels_last = not fits((channels, height, width))
        self.batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        self.input_name = tensor.name
        self.output_name = outputs[0].name
        self.num_classes = num_classes
        probe = self._run(np.zeros((1, channels, height, width), np.float32))
        if probe.shape != (1, num_classes):
            raise TinymlError(f"teacher {path}: output shape {list(probe.shape)} for one image, expected [1, {num_classes}]")

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self.channels_last:
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        if self.batch is None:
            result = self.session.run([self.output_name], {self.input_name: x})[0]
            return np.asarray(result, np.float32).reshape(len(x), -1)
        chunks = []
        for start in range(0, len(x), self.batch):
            chunk = x[start:start + self.batch]
            real = len(chunk)
            if real < self.batch:  # the model takes a fixed batch: pad, then drop the padding
                chunk = np.concatenate([chunk, np.zeros((self.batch - real, *chunk.shape[1:]), np.float32)])
            out = self.session.run([self.output_name], {self.input_name: chunk})[0]
            chunks.append(np.asarray(out, np.float32).reshape(self.batch, -1)[:real])
        return np.concatenate(chunks)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._run(x.detach().cpu().numpy().astype(np.float32)))


def as_teacher(model_or_teacher: nn.Module | Teacher) -> Teacher:
    return model_or_teacher if isinstance(model_or_teacher, Teacher) else TorchTeacher(model_or_teacher)


def load_teacher(path: str, arch: str | None, splits: Splits) -> Teacher:
    """A teacher the user brings: a `.pt`/`.pth` state dict of `arch` ('teacher' for
    build_teacher, the default; or 'student:w1.00-d4'), or an `.onnx` classifier."""
    from . import models

    file = Path(path)
    if not file.is_file():
        raise TinymlError(f"teacher {path}: no such file")
    if file.suffix.lower() == ".onnx":
        return OnnxTeacher(file, splits.input_shape, splits.num_classes)
    if file.suffix.lower() not in (".pt", ".pth"):
        raise TinymlError(f"teacher {path}: expected a .pt/.pth state dict or an .onnx model")
    arch = arch or "teacher"
    if arch == "teacher":
        module = models.build_teacher(splits.input_shape, splits.num_classes)
    elif arch.startswith("student:"):
        module = models.build_student(models.StudentConfig.parse(arch.split(":", 1)[1]), splits.input_shape,
                                      splits.num_classes)
    else:
        raise TinymlError(f"unknown teacher architecture '{arch}' (use 'teacher' or 'student:w1.00-d4')")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TinymlError(f"teacher {path}: cannot read as a torch state dict ({type(exc).__name__}: {exc})") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TinymlError(f"teacher {path}: not a state dict (a mapping of names to tensors)")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise TinymlError(f"teacher {path}: weights do not match architecture '{arch}' "
                          f"for {splits.input_shape} -> {splits.num_classes} classes: {detail[:240]}") from exc
    return TorchTeacher(module, name=f"teacher {file.name} ({arch})")


# ---------------------------------------------------------------- inference


def _nchw(x: np.ndarray) -> torch.Tensor:
    if x.ndim != 4:
        raise TinymlError(f"expected NHWC images, got shape {x.shape}")
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).permute(0, 3, 1, 2).contiguous()


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run torch with `count` intra-op threads, then restore the caller's setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def predict_logits(model_or_teacher: nn.Module | Teacher, x: np.ndarray, threads: int = 1) -> np.ndarray:
    """Float logits (N, classes) for NHWC images in [0, 1]."""
    teacher = as_teacher(model_or_teacher)
    images = _nchw(x)
    with torch_threads(threads):
        outputs = [teacher.logits(images[i:i + _EVAL_BATCH]) for i in range(0, len(images), _EVAL_BATCH)]
    return torch.cat(outputs).numpy().astype(np.float32) if outputs else np.zeros((0, 0), np.float32)


def evaluate(model_or_teacher: nn.Module | Teacher, x: np.ndarray, y: np.ndarray, threads: int = 1) -> float:
    """Top-1 accuracy on NHWC images x with labels y."""
    if len(x) == 0 or len(x) != len(y):
        raise TinymlError(f"cannot evaluate on {len(x)} images with {len(y)} labels")
    return float(np.mean(predict_logits(model_or_teacher, x, threads).argmax(axis=1) == np.asarray(y)))


# ---------------------------------------------------------------- training


def train_teacher(teacher: nn.Module, splits: Splits, config: TrainConfig, progress: bool = True,
                  initialize: bool = True) -> TrainResult:
    """Train a network on labels alone (config.kd is ignored)."""
    return _fit(teacher, splits, replace(config, kd="none"), None, progress, "teacher", initialize)


def train_student(student: nn.Module, splits: Splits, config: TrainConfig,
                  teacher: Teacher | nn.Module | None = None, progress: bool = True,
                  initialize: bool = True) -> TrainResult:
    """Train the student alone (kd='none') or distilled from `teacher`.

    initialize=True redraws the initial weights from config.seed, so the result
    depends on the seed only and not on what ran before.
    """
    config.check()
    source = None
    if config.kd != "none":
        if teacher is None:
            raise TinymlError(f"distillation '{config.kd}' needs a teacher")
        source = as_teacher(teacher)
        if config.kd in FEATURE_MODES and not source.has_features:
            raise TinymlError(f"{config.kd} distillation needs feature maps, which {source.name} cannot give "
                              f"(an ONNX teacher only gives logits: use --kd hinton)")
        if config.kd in FEATURE_MODES and not hasattr(student, "forward_features"):
            raise TinymlError(f"{config.kd} distillation needs a student with forward_features")
    label = "student" if config.kd == "none" else f"student+{config.kd}"
    return _fit(student, splits, config, source, progress, label, initialize)


def _reset_parameters(model: nn.Module, seed: int) -> None:
    torch.manual_seed(seed)
    for module in model.modules():
        if module is not model and hasattr(module, "reset_parameters"):
            module.reset_parameters()


def _random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by up to max_shift pixels in x and y, filling with zeros."""
    n, _, height, width = x.shape
    padded = F.pad(x, (max_shift,) * 4).permute(0, 2, 3, 1)          # N, H+2s, W+2s, C
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(height))[:, :, None]
    cols = (dx[:, None] + torch.arange(width))[:, None, :]
    return padded[torch.arange(n)[:, None, None], rows, cols].permute(0, 3, 1, 2).contiguous()


def _random_rotate(x: torch.Tensor, max_degrees: float, generator: torch.Generator) -> torch.Tensor:
    """Rotate each image about its centre by a uniform angle in [-max_degrees, max_degrees]
    (bilinear, zero outside the image)."""
    n = x.shape[0]
    angles = (torch.rand(n, generator=generator) * 2.0 - 1.0) * (max_degrees * torch.pi / 180.0)
    cos, sin = torch.cos(angles), torch.sin(angles)
    zeros = torch.zeros_like(angles)
    theta = torch.stack([torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _resize(feature: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(feature.shape[-2:]) == tuple(size):
        return feature
    if feature.shape[-2] >= size[0] and feature.shape[-1] >= size[1]:
        return F.adaptive_avg_pool2d(feature, size)
    return F.interpolate(feature, size=size, mode="bilinear", align_corners=False)


def _attention_map(feature: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    energy = _resize(feature.pow(2).mean(dim=1, keepdim=True), size)
    return F.normalize(energy.flatten(1), dim=1)


def attention_loss(student_features: list[torch.Tensor], teacher_features: list[torch.Tensor]) -> torch.Tensor:
    """Mean over aligned stages (from the end) of the squared L2 distance between unit attention maps."""
    pairs = list(zip(reversed(student_features), reversed(teacher_features)))
    total = student_features[-1].new_zeros(())
    for s, t in pairs:
        size = (min(s.shape[-2], t.shape[-2]), min(s.shape[-1], t.shape[-1]))
        total = total + (_attention_map(s, size) - _attention_map(t, size)).pow(2).sum(dim=1).mean()
    return total / len(pairs)


def hinton_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(t/T) || softmax(s/T)), averaged over the batch."""
    return F.kl_div(F.log_softmax(student_logits / temperature, dim=1),
                    F.log_softmax(teacher_logits / temperature, dim=1),
                    reduction="batchmean", log_target=True) * temperature ** 2


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=generator)
    chunks = list(order.split(batch_size))
    if len(chunks) > 1 and len(chunks[-1]) < 2:   # BatchNorm cannot train on a batch of one
        chunks[-2] = torch.cat(chunks[-2:])
        chunks.pop()
    return chunks


def averaged_epochs(config: TrainConfig) -> int:
    """How many of the last epochs are averaged (at least one when averaging is on)."""
    return 0 if config.average_share <= 0 else max(1, round(config.average_share * config.epochs))


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, x: torch.Tensor, batch_size: int) -> int:
    """Running mean/variance of every BatchNorm recomputed as the plain average over the images x
    (NCHW, not augmented: the statistics the test images will meet), in training-mode forward
    passes without gradients. Returns the number of BatchNorm layers reset."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None            # cumulative average over the batches
    was_training = model.training
    model.train()
    batches = _batches(len(x), batch_size, torch.Generator().manual_seed(0))
    for index in batches:
        model(x[index])
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.train(was_training)
    return len(norms)


def _fit(model: nn.Module, splits: Splits, config: TrainConfig, teacher: Teacher | None, progress: bool,
         label: str, initialize: bool) -> TrainResult:
    config.check()
    if len(splits.x_train) < 2 or len(splits.x_val) < 1:
        raise TinymlError(f"dataset {splits.name}: too few samples to train ({len(splits.x_train)} train, "
                          f"{len(splits.x_val)} val)")
    with torch_threads(config.threads), deterministic_algorithms():
        return _fit_loop(model, splits, config, teacher, progress, label, initialize)


@contextmanager
def deterministic_algorithms() -> Iterator[None]:
    """torch's deterministic kernels while training (an op without one raises instead of
    varying from run to run), then the caller's setting. See tinyml/determinism.py for
    what differs between machines."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def _fit_loop(model: nn.Module, splits: Splits, config: TrainConfig, teacher: Teacher | None, progress: bool,
              label: str, initialize: bool) -> TrainResult:
    from tqdm.auto import tqdm

    started = time.perf_counter()
    if initialize:
        _reset_parameters(model, config.seed)
    torch.manual_seed(config.seed)                  # dropout
    generator = torch.Generator().manual_seed(config.seed)
    x_train, y_train = _nchw(splits.x_train), torch.from_numpy(splits.y_train.astype(np.int64))
    height, width = splits.input_shape[:2]
    max_shift = max(1, round(min(height, width) / 14)) if config.augment and min(height, width) >= 4 else 0

    kd = config.kd if teacher is not None else "none"
    feature_weight = config.feature_weight if config.feature_weight is not None else DEFAULT_FEATURE_WEIGHT.get(kd, 0.0)
    regressor: nn.Module | None = None
    if kd == "fitnets":
        with torch.no_grad():
            probe = x_train[:2]
            model.eval()
            s_channels = model.forward_features(probe)[1][-1].shape[1]
            t_channels = teacher.features(probe)[1][-1].shape[1]
        regressor = nn.Conv2d(s_channels, t_channels, 1)
    trainable = list(model.parameters()) + (list(regressor.parameters()) if regressor is not None else [])
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = len(_batches(len(x_train), config.batch_size, torch.Generator().manual_seed(0)))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch,
                                                   pct_start=0.2, anneal_strategy="cos")

    history: list[dict[str, Any]] = []
    averaging_from = config.epochs - averaged_epochs(config) + 1 if config.average_share > 0 else None
    averaged: dict[str, torch.Tensor] = {}
    averaged_count = 0
    best_state: dict[str, torch.Tensor] | None = None
    best_accuracy, best_epoch = -1.0, 0
    bar = tqdm(range(1, config.epochs + 1), desc=label, unit="epoch", disable=not progress, leave=True)
    for epoch in bar:
        epoch_started = time.perf_counter()
        model.train()
        if regressor is not None:
            regressor.train()
        sums = {"loss": 0.0, "ce": 0.0, "kd": 0.0, "feature": 0.0, "correct": 0, "seen": 0}
        for index in _batches(len(x_train), config.batch_size, generator):
            xb, yb = x_train[index], y_train[index]
            if max_shift and config.rotate_degrees > 0:
                xb = _random_rotate(xb, config.rotate_degrees, generator)
            if max_shift:
                xb = _random_shift(xb, max_shift, generator)
            if kd in FEATURE_MODES:
                logits, s_features = model.forward_features(xb)
                t_logits, t_features = teacher.features(xb)
            else:
                logits = model(xb)
                t_logits = teacher.logits(xb) if kd == "hinton" else None
            ce = F.cross_entropy(logits, yb)
            loss = ce
            if t_logits is not None:
                soft = hinton_loss(logits, t_logits, config.temperature)
                loss = (1.0 - config.alpha) * ce + config.alpha * soft
                sums["kd"] += soft.item() * len(index)
            if kd == "fitnets":
                target = t_features[-1]
                hint = F.mse_loss(_resize(regressor(s_features[-1]), tuple(target.shape[-2:])), target)
                loss = loss + feature_weight * hint
                sums["feature"] += hint.item() * len(index)
            elif kd == "attention":
                transfer = attention_loss(s_features, t_features)
                loss = loss + feature_weight * transfer
                sums["feature"] += transfer.item() * len(index)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            sums["loss"] += loss.item() * len(index)
            sums["ce"] += ce.item() * len(index)
            sums["correct"] += int((logits.argmax(1) == yb).sum())
            sums["seen"] += len(index)
        val_accuracy = evaluate(model, splits.x_val, splits.y_val, threads=config.threads)
        seen = sums["seen"]
        row: dict[str, Any] = {"epoch": epoch, "train_loss": sums["loss"] / seen, "train_acc": sums["correct"] / seen,
                               "val_acc": val_accuracy, "ce_loss": sums["ce"] / seen,
                               "lr": optimizer.param_groups[0]["lr"],
                               "seconds": round(time.perf_counter() - epoch_started, 3)}
        if kd != "none":
            row["kd_loss"] = sums["kd"] / seen
        if kd in FEATURE_MODES:
            row["feature_loss"] = sums["feature"] / seen
        history.append(row)
        # >= : among equal validation scores keep the later, lower-learning-rate weights
        if val_accuracy >= best_accuracy or config.keep == "last":
            best_accuracy, best_epoch = val_accuracy, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if averaging_from is not None and epoch >= averaging_from:
            averaged_count += 1
            for name, value in model.state_dict().items():
                if value.is_floating_point():       # BN running stats too; recomputed below anyway
                    previous = averaged.get(name)
                    averaged[name] = value.detach().clone() if previous is None else \
                        previous + (value.detach() - previous) / averaged_count
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val=f"{val_accuracy:.4f}", best=f"{best_accuracy:.4f}")
    bar.close()
    assert best_state is not None
    if averaged:
        best_state = {**best_state, **averaged}
    model.load_state_dict(best_state)
    if averaged:
        recompute_batchnorm(model, x_train, config.batch_size)
        best_accuracy = evaluate(model, splits.x_val, splits.y_val, threads=config.threads)
        history[-1]["averaged_epochs"] = averaged_count
        history[-1]["averaged_val_acc"] = best_accuracy
    model.eval()
    return TrainResult(model=model, history=history, val_accuracy=best_accuracy, best_epoch=best_epoch,
                       seconds=round(time.perf_counter() - started, 3))


def recommended_epochs(dataset: str) -> dict[str, int]:
    """Teacher and student epochs that reach the project's targets for a built-in dataset."""
    return dict(RECOMMENDED_EPOCHS.get(dataset, {"teacher": 20, "student": 30}))


__all__ = [
    "TrainConfig", "TrainResult", "Teacher", "TorchTeacher", "OnnxTeacher", "train_teacher", "train_student",
    "evaluate", "predict_logits", "load_teacher", "hinton_loss", "attention_loss", "recommended_epochs",
    "recompute_batchnorm", "averaged_epochs",
]
