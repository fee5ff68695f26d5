"""Checks of a command's arguments that need no heavy library.

Loading torch and TensorFlow takes 10-20 s, so every command checks what it
can (board names, files that must exist, output folders that must be writable,
dataset names and option combinations) before it imports them: a typo is
answered at once, not after the imports or after training. This module imports
only the standard library and the project's light modules (boards, data: numpy).
"""

from __future__ import annotations

import os
from pathlib import Path

from .boards import Board, load_board
from .data import BUILTIN_DATASETS
from .errors import TinymlError

# The libraries whose import takes many seconds; no argument check may need them.
HEAVY_MODULES = ("torch", "tensorflow", "keras", "onnxruntime")


def board(name_or_path: str) -> Board:
    """The board profile, or the one-line error naming the known boards."""
    return load_board(name_or_path)


def dataset(spec: str, option: str = "--dataset") -> None:
    """A built-in dataset name, an existing .npz file or an existing folder."""
    if spec in BUILTIN_DATASETS:
        return
    if spec.partition(":")[0] in BUILTIN_DATASETS and ":" in spec:
        from .data import parse_class_subset

        parse_class_subset(spec)   # some classes of a built-in one (digits:0-6): the ids are checked
        return
    path = Path(spec)
    if not path.exists():
        raise TinymlError(f"{option} '{spec}' not found: not a built-in ({', '.join(BUILTIN_DATASETS)}) and no such "
                          "file or folder")
    if path.is_file() and path.suffix.lower() != ".npz":
        raise TinymlError(f"{option} {path}: expected an .npz file or a folder of class subfolders")


def input_file(path: Path, what: str, suffixes: tuple[str, ...] | None = None) -> Path:
    """An existing, readable file whose name ends in one of `suffixes` (any name if None)."""
    path = Path(path)
    if not path.exists():
        raise TinymlError(f"no such {what} file: {path}")
    if path.is_dir():
        raise TinymlError(f"{what} {path} is a folder, not a file")
    if not path.is_file():
        raise TinymlError(f"{what} {path} is not a regular file")
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise TinymlError(f"{path}: unknown {what} format (expected {' or '.join(suffixes)})")
    if not os.access(path, os.R_OK):
        raise TinymlError(f"cannot read {path}: permission denied")
    return path


def input_dir(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise TinymlError(f"no such {what} folder: {path}")
    return path


def output_path(path: Path, option: str = "--out", directory: bool = True) -> None:
    """`path` can be written: not a file where a folder goes (or the reverse), and its
    nearest existing ancestor is a folder this user may write into."""
    path = Path(path)
    if path.exists() and directory and not path.is_dir():
        raise TinymlError(f"{option} {path} is a file, not a folder")
    if path.exists() and not directory and path.is_dir():
        raise TinymlError(f"{option} {path} is a folder, not a file")
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise TinymlError(f"{option} {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise TinymlError(f"{option} {path}: cannot write into {ancestor} (permission denied)")


def positive(value: float | None, option: str) -> None:
    if value is not None and value <= 0:
        raise TinymlError(f"{option} must be positive, got {value:g}")


def prepare_options(dataset_spec: str, board_name: str, out: Path, teacher_path: str | None,
                    teacher_arch: str | None, kd: str, epochs: int | None, teacher_epochs: int | None,
                    max_weight_bytes: int | None, prune_ratio: float | None = None) -> Board:
    """Everything `tinyml prepare` can check before torch and TensorFlow load; returns the board."""
    if prune_ratio is not None:
        from .prune import check_ratio   # the standard library only, until pruning runs

        check_ratio(prune_ratio)
    if kd not in ("none", "hinton", "fitnets", "attention"):
        raise TinymlError(f"unknown distillation '{kd}' (choose hinton, fitnets, attention or none)")
    profile = board(board_name)
    dataset(dataset_spec)
    output_path(out)
    positive(epochs, "--epochs")
    positive(teacher_epochs, "--teacher-epochs")
    positive(max_weight_bytes, "--max-weight-kb")
    teacher(teacher_path, teacher_arch, kd, teacher_epochs)
    return profile


def teacher(path: str | None, arch: str | None, kd: str, teacher_epochs: int | None) -> None:
    """The teacher options make sense together (the file itself is read after the imports)."""
    if path is None:
        if arch is not None:
            raise TinymlError("--teacher-arch describes a --teacher file; give --teacher PATH as well")
        return
    if teacher_epochs is not None:
        raise TinymlError("--teacher-epochs applies only when the tool trains the teacher, not with --teacher")
    file = input_file(Path(path), "teacher", (".pt", ".pth", ".onnx"))
    if file.suffix.lower() == ".onnx":
        if arch is not None:
            raise TinymlError("--teacher-arch applies to a .pt/.pth teacher; an .onnx teacher carries its own")
        if kd in ("fitnets", "attention"):
            raise TinymlError(f"--kd {kd} needs the teacher's intermediate features; an ONNX teacher only "
                              "gives logits: use --kd hinton, or a .pt teacher")
    elif arch is not None and arch != "teacher" and not arch.startswith("student:"):
        raise TinymlError(f"unknown teacher architecture '{arch}' (use 'teacher' or 'student:w1.00-d4')")


KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


def model_kind(path: Path) -> str:
    """'onnx', 'keras', 'saved_model' or 'tflite' from the path; TinymlError otherwise."""
    path = Path(path)
    if path.is_dir():
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "saved_model"
        raise TinymlError(f"{path} is a folder without saved_model.pb: not a SavedModel")
    if not path.exists():
        raise TinymlError(f"no such model file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix in KERAS_SUFFIXES:
        return "keras"
    if suffix == ".tflite":
        return "tflite"
    raise TinymlError(f"unknown model format '{path.suffix or path.name}': give an .onnx, .keras/.h5, "
                      "a SavedModel folder or a float .tflite")
