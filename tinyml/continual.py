"""`tinyml update`: a deployed student learns new data or new classes without
retraining on everything, and ends in the same int8 artifacts and report as
`tinyml prepare`.

What a model directory keeps for this (written by `prepare`, and again by every
update, see save_learning_state): `student.pt` (the float student and its label
names) and `replay.npz` (a small exemplar memory per class from the training
split, and a separate handful per class from the validation split that is only
used to choose between methods).

Methods (each starts from the previous student, its classifier grown by the new
classes, trained on the new data's training split; see RECIPES):
  finetune    cross-entropy on the new data only: the forgetting baseline
  replay      the new data plus the exemplar memory, repeated to balance the classes
  replay-lwf  replay, plus LwF's distillation of the previous student's old-class
              logits on every batch (new and replayed inputs), as in iCaRL/EEIL
  replay-lwf-wa  replay-lwf, then weight aligning of the new classes' classifier
              rows (Zhao et al. 2020, a bias correction like BiC without its extra
              validation-trained layer); an option, not in `auto`
  ewc         new data + lambda * sum F_i (w_i - w*_i)^2, F = diagonal Fisher of the
              previous student on the exemplar memory (Kirkpatrick et al.)
  lwf         new data + T^2 KL(previous student's old-class logits || new ones)
              on the new inputs (Li & Hoiem, Learning without Forgetting)
  joint       a fresh student on all the old and new training data: the upper bound
`auto` trains replay-lwf, replay, ewc and lwf and keeps the best on the
validation exemplars (old classes) and the new validation split: accuracy first,
then (these small splits often tie near 100%) the lower validation
cross-entropy. The test splits are only reported. The defaults (30 epochs,
learning rate 1e-2, cosine schedule) were chosen the same way, on validation:
see benchmarks/results/learning.md.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import TinymlError

if TYPE_CHECKING:
    from torch import nn

    from .data import Splits

STATE_FILE = "student.pt"
REPLAY_FILE = "replay.npz"
METHODS = ("replay-lwf", "replay", "ewc", "lwf")     # auto's candidates; on a tie the earlier one wins
OPTIONAL_METHODS = ("replay-lwf-wa",)
ALL_METHODS = ("auto", *METHODS, *OPTIONAL_METHODS)
DEFAULT_MEMORY_PER_CLASS = 20
DEFAULT_VAL_MEMORY_PER_CLASS = 10
DEFAULT_UPDATE_EPOCHS = 30
DEFAULT_UPDATE_LR = 1e-2


@dataclass
class UpdateOptions:
    from_dir: Path
    data: str                          # built-in subset (digits:7-9), .npz or image folder
    out: Path
    method: str = "auto"               # auto | one of METHODS or OPTIONAL_METHODS
    old_data: str | None = None        # the previous training data, for joint retraining; None = recorded spec
    board: str | None = None           # None = the previous model's board
    epochs: int = DEFAULT_UPDATE_EPOCHS
    joint_epochs: int | None = None    # None = the dataset's recommended student epochs
    lr: float = DEFAULT_UPDATE_LR
    ewc_lambda: float = 500.0
    lwf_alpha: float = 1.0
    lwf_temperature: float = 2.0
    memory_per_class: int = DEFAULT_MEMORY_PER_CLASS
    seed: int = 0
    progress: bool = True


@dataclass
class MethodResult:
    name: str
    old_float: float                   # test accuracy on the previous classes' test split
    new_float: float                   # test accuracy on the new data's test split
    old_int8: float | None = None
    new_int8: float | None = None
    selection_score: float | None = None   # validation accuracy only (auto's choice)
    selection_loss: float | None = None    # validation cross-entropy: auto's tie-break
    seconds: float = 0.0

    def row(self) -> dict[str, Any]:
        return {"method": self.name, "old_float": self.old_float, "new_float": self.new_float,
                "old_int8": self.old_int8, "new_int8": self.new_int8, "selection_score": self.selection_score,
                "selection_loss": self.selection_loss,
                "seconds": round(self.seconds, 2)}


@dataclass
class UpdateResult:
    out_dir: Path
    report: dict[str, Any]
    files: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- learning state


def save_learning_state(directory: Path, student: nn.Module, student_name: str, labels: list[str],
                        input_shape: tuple[int, int, int], dataset_spec: str, seed: int,
                        memory: tuple[np.ndarray, np.ndarray], val_memory: tuple[np.ndarray, np.ndarray]) -> list[str]:
    """student.pt and replay.npz: what a later `tinyml update` starts from."""
    import torch

    torch.save({"state_dict": {k: v.detach().cpu() for k, v in student.state_dict().items()},
                "student": student_name, "labels": list(labels), "input_shape": list(input_shape),
                "dataset": dataset_spec, "seed": int(seed)}, directory / STATE_FILE)
    np.savez_compressed(directory / REPLAY_FILE, x=memory[0].astype(np.float32), y=memory[1].astype(np.int64),
                        x_val=val_memory[0].astype(np.float32), y_val=val_memory[1].astype(np.int64))
    return [STATE_FILE, REPLAY_FILE]


def pick_exemplars(x: np.ndarray, y: np.ndarray, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to `per_class` random samples of every class (a fixed-size exemplar memory)."""
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(y == c))[:per_class] for c in np.unique(y)]
    index = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)
    return x[index], y[index]


def save_prepare_state(directory: Path, student: nn.Module, student_name: str, splits: Splits, dataset_spec: str,
                       seed: int) -> list[str]:
    """The hook `tinyml prepare` calls: the learning state of a freshly prepared student."""
    memory = pick_exemplars(splits.x_train, splits.y_train, DEFAULT_MEMORY_PER_CLASS, seed)
    val_memory = pick_exemplars(splits.x_val, splits.y_val, DEFAULT_VAL_MEMORY_PER_CLASS, seed)
    return save_learning_state(directory, student, student_name, list(splits.labels), splits.input_shape,
                               dataset_spec, seed, memory, val_memory)


# ---------------------------------------------------------------- validation (no torch)


def validate_update(options: UpdateOptions) -> dict[str, Any]:
    """Every check that needs no training, before torch is imported. Returns the old manifest."""
    from .boards import load_board
    from .data import BUILTIN_DATASETS, parse_class_subset

    if options.method not in ALL_METHODS:
        raise TinymlError(f"unknown update method '{options.method}' (choose {', '.join(ALL_METHODS)})")
    if options.epochs < 1 or options.memory_per_class < 1 or (options.joint_epochs is not None and options.joint_epochs < 1):
        raise TinymlError("epochs, joint epochs and memory size must be at least 1")
    source = Path(options.from_dir)
    if not source.is_dir():
        raise TinymlError(f"--from {source}: no such folder")
    manifest_path = source / "manifest.json"
    missing = [name for name in ("manifest.json", "model.tflite", "test_vectors.npz", STATE_FILE, REPLAY_FILE)
               if not (source / name).is_file()]
    if missing:
        raise TinymlError(f"--from {source} is not a tinyml model folder (`tinyml prepare` or `tinyml update` "
                          f"output): missing {', '.join(missing)}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise TinymlError(f"--from {source}: manifest.json is not readable JSON ({exc})") from exc
    if not isinstance(manifest, dict) or "model_sha256" not in manifest or "labels" not in manifest:
        raise TinymlError(f"--from {source}: manifest.json has no model_sha256/labels")
    load_board(options.board or manifest.get("board") or "stm32f405")
    for spec, flag in ((options.data, "--data"), (options.old_data, "--old-data")):
        if spec is None:
            continue
        if ":" in spec and spec.split(":", 1)[0] in BUILTIN_DATASETS:
            parse_class_subset(spec)
        elif spec not in BUILTIN_DATASETS and not Path(spec).exists():
            raise TinymlError(f"{flag} '{spec}': not a built-in dataset or subset (digits:7-9) and no such file or folder")
    if Path(options.out).resolve() == source.resolve():
        raise TinymlError("--out must differ from --from (the previous model stays as it is)")
    return manifest


# ---------------------------------------------------------------- training


@dataclass
class _Previous:
    model: nn.Module
    student: str
    labels: list[str]
    input_shape: tuple[int, int, int]
    dataset: str
    seed: int


def _load_previous(source: Path) -> _Previous:
    import torch

    from . import models

    try:
        state = torch.load(source / STATE_FILE, map_location="cpu", weights_only=True)
        labels, shape = list(state["labels"]), tuple(int(d) for d in state["input_shape"])
        model = models.build_student(models.StudentConfig.parse(state["student"]), shape, len(labels))
        model.load_state_dict(state["state_dict"])
    except TinymlError:
        raise
    except Exception as exc:
        raise TinymlError(f"--from {source}: {STATE_FILE} is not a tinyml student ({type(exc).__name__}: {exc})") from exc
    return _Previous(model.eval(), state["student"], labels, shape, str(state.get("dataset", "")), int(state.get("seed", 0)))


def _grown(previous: nn.Module, student: str, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """A copy of the previous student with a classifier for num_classes (old rows kept)."""
    import torch

    from . import models

    torch.manual_seed(0)   # the new classifier rows' initial values: the same whatever ran before
    model = models.build_student(models.StudentConfig.parse(student), input_shape, num_classes)
    old_state = previous.state_dict()
    new_state = model.state_dict()
    for name, value in old_state.items():
        if name.startswith("classifier."):
            new_state[name][: value.shape[0]] = value
        else:
            new_state[name] = value.clone()
    model.load_state_dict(new_state)
    return model


def _nchw(x: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(x, np.float32)).permute(0, 3, 1, 2).contiguous()


def _fisher(model: nn.Module, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Diagonal empirical Fisher: the mean over samples of squared log-likelihood gradients."""
    import torch
    import torch.nn.functional as F

    model.eval()
    fisher = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    images, labels = _nchw(x), torch.from_numpy(y.astype(np.int64))
    for i in range(len(images)):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(images[i:i + 1]), labels[i:i + 1]).backward()
        for n, p in model.named_parameters():
            if p.grad is not None:
                fisher[n] += p.grad.detach() ** 2
    return {n: f / max(1, len(images)) for n, f in fisher.items()}


@dataclass(frozen=True)
class Recipe:
    """What one update method adds to cross-entropy on the new data."""
    replay: bool = False        # mix in the exemplar memory, repeated until old classes weigh like new ones
    distill: bool = False       # LwF: T^2 KL(previous student's logits || the new old-class logits) on every batch
    ewc: bool = False           # lambda * sum F_i (w_i - w*_i)^2
    align_weights: bool = False  # weight aligning after training (Zhao et al. 2020): new rows' norms = old rows'


RECIPES = {
    "finetune": Recipe(),
    "replay": Recipe(replay=True),
    "replay-lwf": Recipe(replay=True, distill=True),
    "replay-lwf-wa": Recipe(replay=True, distill=True, align_weights=True),
    "ewc": Recipe(ewc=True),
    "lwf": Recipe(distill=True),
}


def align_new_class_weights(model: nn.Module, old_classes: int) -> None:
    """Weight aligning: scale the new classes' classifier rows (and biases) so their mean norm equals the old
    rows' mean norm, which removes the bias towards whichever side trained on more samples."""
    import torch

    weight = model.classifier.weight
    if weight.shape[0] <= old_classes or old_classes == 0:
        return
    with torch.no_grad():
        norms = weight.norm(dim=1)
        gamma = norms[:old_classes].mean() / norms[old_classes:].mean().clamp_min(1e-12)
        weight[old_classes:] *= gamma
        if model.classifier.bias is not None:
            model.classifier.bias[old_classes:] *= gamma


def _train_update(method: str, previous: _Previous, num_classes: int, x: np.ndarray, y: np.ndarray,
                  memory: tuple[np.ndarray, np.ndarray], options: UpdateOptions) -> nn.Module:
    """One update method from the previous student on the new training data (+ its own extra terms)."""
    import torch
    import torch.nn.functional as F

    from .distill import _batches, _random_shift, hinton_loss, torch_threads

    recipe = RECIPES[method]
    model = _grown(previous.model, previous.student, previous.input_shape, num_classes)
    old_classes = len(previous.labels)
    if recipe.replay:
        per_new_class = len(y) / max(1, len(np.unique(y)))
        per_old_class = len(memory[1]) / max(1, len(np.unique(memory[1])))
        repeat = max(1, int(round(per_new_class / max(1.0, per_old_class))))
        x = np.concatenate([x, np.repeat(memory[0], repeat, axis=0)])
        y = np.concatenate([y, np.repeat(memory[1], repeat)])
    anchors: dict[str, Any] = {}
    fisher: dict[str, Any] = {}
    if recipe.ewc:
        fisher = _fisher(previous.model, *memory)
        anchors = {n: p.detach().clone() for n, p in previous.model.named_parameters()}
    teacher = previous.model.eval() if recipe.distill else None

    images, labels = _nchw(x), torch.from_numpy(y.astype(np.int64))
    generator = torch.Generator().manual_seed(options.seed)
    torch.manual_seed(options.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=1e-4)
    steps = options.epochs * len(_batches(len(images), 64, torch.Generator().manual_seed(0)))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps))
    height, width = previous.input_shape[:2]
    max_shift = max(1, round(min(height, width) / 14))
    with torch_threads(1):
        for _ in range(options.epochs):
            model.train()
            for index in _batches(len(images), 64, generator):
                xb = _random_shift(images[index], max_shift, generator)
                logits = model(xb)
                loss = F.cross_entropy(logits, labels[index])
                if teacher is not None:
                    with torch.no_grad():
                        old_logits = teacher(xb)
                    loss = loss + options.lwf_alpha * hinton_loss(logits[:, :old_classes], old_logits,
                                                                  options.lwf_temperature)
                if fisher:
                    penalty = logits.new_zeros(())
                    for name, param in model.named_parameters():
                        anchor = anchors[name]
                        part = param[: anchor.shape[0]] if param.shape != anchor.shape else param
                        penalty = penalty + (fisher[name] * (part - anchor) ** 2).sum()
                    loss = loss + options.ewc_lambda * penalty
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
    model.eval()
    if recipe.align_weights:
        align_new_class_weights(model, old_classes)
    return model


def choose_method(results: dict[str, MethodResult], candidates: list[str]) -> str:
    """The candidate with the best validation accuracy; on a tie the lower validation cross-entropy, then the
    earlier candidate."""
    return max(candidates, key=lambda m: (results[m].selection_score, -results[m].selection_loss,
                                          -candidates.index(m)))


def validation_scores(model: nn.Module, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of model on (x, y)."""
    from .distill import predict_logits

    logits = predict_logits(model, x).astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    labels = np.asarray(y, np.int64)
    return float(np.mean(logits.argmax(axis=1) == labels)), float(-log_probs[np.arange(len(labels)), labels].mean())


def _remap(y: np.ndarray, names: list[str], union: list[str]) -> np.ndarray:
    lookup = np.array([union.index(n) for n in names], np.int64)
    return lookup[y]


def _say(options: UpdateOptions, text: str) -> None:
    if options.progress:
        print(f"[update] {text}", flush=True)


def update(options: UpdateOptions) -> UpdateResult:
    """Learn options.data on top of the model in options.from_dir; write options.out."""
    old_manifest = validate_update(options)
    from dataclasses import replace as dc_replace

    from . import data, distill, models
    from .boards import load_board
    from .deploy import deploy_student, int8_accuracy, quantize_student
    from .artifacts import read_test_vectors
    from .fsutil import atomic_output_dir

    started = time.perf_counter()
    source = Path(options.from_dir)
    board = load_board(options.board or old_manifest.get("board") or "stm32f405")
    previous = _load_previous(source)
    new = data.load_dataset(options.data, seed=options.seed)
    if tuple(new.input_shape) != tuple(previous.input_shape):
        raise TinymlError(f"--data {options.data}: images are {new.input_shape}, the model takes {previous.input_shape}")
    union = previous.labels + [name for name in new.labels if name not in previous.labels]
    added = union[len(previous.labels):]
    y_new = {k: _remap(getattr(new, f"y_{k}"), new.labels, union) for k in ("train", "val", "test")}

    vectors = read_test_vectors(source / "test_vectors.npz")
    scale = float(old_manifest["input"]["scale"])
    zero_point = int(old_manifest["input"]["zero_point"])
    x_old_test = ((vectors.inputs.astype(np.float32) - zero_point) * scale).reshape((-1, *previous.input_shape))
    x_old_test = np.clip(x_old_test, 0.0, 1.0)
    y_old_test = np.asarray(vectors.labels, np.int64)
    with np.load(source / REPLAY_FILE) as replay:
        memory = (replay["x"], replay["y"])
        val_memory = (replay["x_val"], replay["y_val"])
    _say(options, f"previous {previous.student} ({old_manifest['model_sha256'][:12]}…): classes "
                  f"{', '.join(previous.labels)}; new data {new.name}: {len(new.x_train)}/{len(new.x_val)}/"
                  f"{len(new.x_test)} train/val/test, classes {', '.join(new.labels)} ({len(added)} new); "
                  f"memory {len(memory[1])} exemplars")

    def scores(model: nn.Module, name: str, seconds: float) -> MethodResult:
        return MethodResult(name, distill.evaluate(model, x_old_test, y_old_test),
                            distill.evaluate(model, new.x_test, y_new["test"]), seconds=seconds)

    def selection(model: nn.Module) -> tuple[float, float]:
        """Mean validation accuracy and cross-entropy of the old-class exemplars and the new validation split."""
        parts = [validation_scores(model, *val_memory), validation_scores(model, new.x_val, y_new["val"])]
        return 0.5 * (parts[0][0] + parts[1][0]), 0.5 * (parts[0][1] + parts[1][1])

    results: dict[str, MethodResult] = {}
    models_by_name: dict[str, nn.Module] = {}
    previous_result = scores(previous.model, "previous", 0.0)
    previous_bytes = (source / "model.tflite").read_bytes()
    previous_result.old_int8 = int8_accuracy(previous_bytes, x_old_test, y_old_test)
    previous_result.new_int8 = int8_accuracy(previous_bytes, new.x_test, y_new["test"])
    _say(options, f"previous model: old classes {previous_result.old_float:.2%}, new data {previous_result.new_float:.2%}")

    candidates = list(METHODS) if options.method == "auto" else [options.method]
    for method in ["finetune", *[m for m in candidates if m != "finetune"]]:
        t = time.perf_counter()
        model = _train_update(method, previous, len(union), new.x_train, y_new["train"], memory, options)
        results[method] = scores(model, method, time.perf_counter() - t)
        results[method].selection_score, results[method].selection_loss = selection(model)
        models_by_name[method] = model
        _say(options, f"{method}: old classes {results[method].old_float:.2%}, new {results[method].new_float:.2%} "
                      f"(validation {results[method].selection_score:.2%}, cross-entropy {results[method].selection_loss:.4f}, "
                      f"{results[method].seconds:.1f} s)")
    chosen = choose_method(results, candidates)

    joint_note = None
    old_spec = options.old_data or previous.dataset
    try:
        old_splits = data.load_dataset(old_spec, seed=previous.seed) if old_spec else None
    except TinymlError as exc:
        old_splits, joint_note = None, f"old training data '{old_spec}' not available ({exc})"
    if old_splits is not None and list(old_splits.labels) != previous.labels:
        old_splits, joint_note = None, f"old training data '{old_spec}' has other classes than the model"
    if old_splits is None:
        joint_note = joint_note or "old training data not recorded: give --old-data"
        _say(options, f"joint retraining skipped: {joint_note}")
    else:
        t = time.perf_counter()
        joint_splits = dc_replace(
            new, name=f"{old_splits.name}+{new.name}", labels=union,
            x_train=np.concatenate([old_splits.x_train, new.x_train]),
            y_train=np.concatenate([_remap(old_splits.y_train, old_splits.labels, union), y_new["train"]]),
            x_val=np.concatenate([old_splits.x_val, new.x_val]),
            y_val=np.concatenate([_remap(old_splits.y_val, old_splits.labels, union), y_new["val"]]),
        )
        joint_epochs = options.joint_epochs or distill.recommended_epochs(old_splits.name.split("-")[0])["student"]
        joint = distill.train_student(
            models.build_student(models.StudentConfig.parse(previous.student), previous.input_shape, len(union)),
            joint_splits, distill.TrainConfig(epochs=joint_epochs, seed=options.seed, kd="none"), progress=False)
        results["joint"] = scores(joint.model, "joint", time.perf_counter() - t)
        models_by_name["joint"] = joint.model
        _say(options, f"joint retraining (upper bound): old {results['joint'].old_float:.2%}, "
                      f"new {results['joint'].new_float:.2%} ({results['joint'].seconds:.1f} s)")

    calibration = np.concatenate([new.x_train, memory[0]])
    x_test = np.concatenate([x_old_test, new.x_test])
    y_test = np.concatenate([y_old_test, y_new["test"]])
    with atomic_output_dir(Path(options.out), keep_existing=False) as tmp:
        for name in [n for n in models_by_name if n != chosen]:   # int8 of every method, not only the chosen
            scratch = tmp / f".int8-{name}"
            scratch.mkdir()
            model_bytes = quantize_student(models_by_name[name], previous.input_shape, calibration, scratch)
            results[name].old_int8 = int8_accuracy(model_bytes, x_old_test, y_old_test)
            results[name].new_int8 = int8_accuracy(model_bytes, new.x_test, y_new["test"])
            shutil.rmtree(scratch)
        deployed = deploy_student(models_by_name[chosen], previous.input_shape, union, calibration, x_test, y_test,
                                  board, tmp, {"dataset": f"{previous.dataset}+{options.data}",
                                               "student": previous.student,
                                               "updated_from": old_manifest["model_sha256"]})
        results[chosen].old_int8 = int8_accuracy((tmp / "model.tflite").read_bytes(), x_old_test, y_old_test)
        results[chosen].new_int8 = int8_accuracy((tmp / "model.tflite").read_bytes(), new.x_test, y_new["test"])
        new_memory = pick_exemplars(new.x_train, y_new["train"], options.memory_per_class, options.seed)
        new_val_memory = pick_exemplars(new.x_val, y_new["val"], DEFAULT_VAL_MEMORY_PER_CLASS, options.seed)
        files = deployed.files + save_learning_state(
            tmp, models_by_name[chosen], previous.student, union, previous.input_shape,
            "", options.seed,   # old+new data is no single dataset spec: the next update's joint needs --old-data
            (np.concatenate([memory[0], new_memory[0]]), np.concatenate([memory[1], new_memory[1]])),
            (np.concatenate([val_memory[0], new_val_memory[0]]), np.concatenate([val_memory[1], new_val_memory[1]])))
        report: dict[str, Any] = {
            "previous": {"dir": str(source), "model_sha256": old_manifest["model_sha256"], "labels": previous.labels},
            "data": options.data, "new_classes": added, "labels": union, "student": previous.student,
            "board": board.name, "method": chosen, "requested_method": options.method,
            "memory": {"exemplars": int(len(memory[1])), "per_class": int(np.bincount(memory[1]).max()),
                       "bytes_float32": int(memory[0].nbytes), "bytes_int8": int(memory[0].size)},
            "epochs": options.epochs, "lr": options.lr, "ewc_lambda": options.ewc_lambda, "lwf_alpha": options.lwf_alpha,
            "test_samples": {"old": int(len(y_old_test)), "new": int(len(new.y_test))},
            "models": [previous_result.row()] + [results[n].row() for n in ("finetune", *METHODS, *OPTIONAL_METHODS,
                                                                            "joint") if n in results],
            "joint_note": joint_note,
            "model_sha256": deployed.sha256, "int8_accuracy": deployed.int8_accuracy,
            "int8_float_agreement": deployed.int8_float_agreement,
            "flash_bytes": deployed.flash_bytes, "arena_bytes": deployed.arena_bytes,
            "params": deployed.params, "macs": deployed.macs, "ops": deployed.ops,
        }
        report["wall_seconds"] = round(time.perf_counter() - started, 2)
        files += write_update_report(tmp, report)
    _say(options, f"chose {chosen}; new model {deployed.sha256[:12]}… (was {old_manifest['model_sha256'][:12]}…), "
                  f"{report['wall_seconds']:.1f} s -> {options.out}")
    return UpdateResult(Path(options.out), report, files)


# ---------------------------------------------------------------- report


def _pct(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{100 * value:.2f}%"


def write_update_report(directory: Path, report: dict[str, Any]) -> list[str]:
    from .plots import _pyplot

    rows = report["models"]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 3.6))
    names = [r["method"] + (" (chosen)" if r["method"] == report["method"] else "") for r in rows]
    positions = np.arange(len(rows))
    for offset, key, label, color in ((-0.2, "old", "previous classes", "#4477aa"), (0.2, "new", "new data", "#ee6677")):
        values = [r[f"{key}_int8"] if r[f"{key}_int8"] is not None else r[f"{key}_float"] for r in rows]
        ax.bar(positions + offset, values, width=0.4, label=label, color=color)
    ax.set_xticks(positions, names, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test accuracy (int8 where measured)")
    ax.set_title("continual update: previous and new test splits")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(directory / "update_accuracy.png", dpi=110)
    plt.close(fig)

    memory = report["memory"]
    lines = [
        f"# tinyml update: {report['data']} on top of {report['previous']['model_sha256'][:12]}…",
        "",
        f"Student `{report['student']}` for {report['board']}; new classes: {', '.join(report['new_classes']) or 'none'}. "
        f"Chosen method: **{report['method']}** (requested `{report['requested_method']}`, chosen on validation data "
        f"only). Replay memory: {memory['exemplars']} exemplars, up to {memory['per_class']} per class "
        f"({memory['bytes_int8']:,} B as int8 images).",
        "",
        f"Test samples: {report['test_samples']['old']} of the previous classes, {report['test_samples']['new']} "
        "of the new data.",
        "",
        "| model | previous classes float | previous classes int8 | new data float | new data int8 | validation | validation cross-entropy |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['method']} | {_pct(r['old_float'])} | {_pct(r['old_int8'])} | {_pct(r['new_float'])} | "
                     f"{_pct(r['new_int8'])} | {_pct(r['selection_score'])} | "
                     f"{'n/a' if r.get('selection_loss') is None else format(r['selection_loss'], '.4f')} |")
    if report.get("joint_note"):
        lines += ["", f"Joint retraining not run: {report['joint_note']}."]
    lines += ["", f"New model {report['model_sha256']} (previous {report['previous']['model_sha256']}): int8 on "
                  f"TFLite-Micro {_pct(report['int8_accuracy'])} on both test splits, {report['flash_bytes']:,} B "
                  f".tflite, {report['arena_bytes']:,} B arena. {report['wall_seconds']:.1f} s.",
              "", "![update_accuracy.png](update_accuracy.png)", ""]
    (directory / "report.json").write_text(json.dumps({**report, "plots": ["update_accuracy.png"]}, indent=2) + "\n")
    (directory / "report.md").write_text("\n".join(lines))
    return ["report.json", "report.md", "update_accuracy.png"]
