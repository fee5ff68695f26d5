from collections import Counter

import numpy as np
import pytest

from tinyml.data import Splits, load_dataset
from tinyml.errors import TinymlError


def _all_x(s: Splits) -> np.ndarray:
    return np.concatenate([s.x_train, s.x_val, s.x_test])


def _write_npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def _toy(n_per_class=10, classes=3, shape=(6, 5), dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    x = rng.integers(0, 256, size=(len(y), *shape)).astype(dtype)
    return x, y


def test_digits_shapes_range_and_sizes():
    s = load_dataset("digits")
    assert s.name == "digits" and s.input_shape == (8, 8, 1) and s.num_classes == 10
    assert s.labels == [str(i) for i in range(10)]
    assert len(s.x_train) + len(s.x_val) + len(s.x_test) == 1797
    assert len(s.x_test) == pytest.approx(0.2 * 1797, abs=2) and len(s.x_val) == pytest.approx(0.15 * 1797, abs=2)
    for x, y in ((s.x_train, s.y_train), (s.x_val, s.y_val), (s.x_test, s.y_test)):
        assert x.dtype == np.float32 and x.shape[1:] == (8, 8, 1) and y.dtype == np.int64 and len(x) == len(y)
    everything = _all_x(s)
    assert everything.min() == 0.0 and everything.max() == 1.0


@pytest.mark.slow
def test_mnist5k_is_bundled_and_scaled():
    s = load_dataset("mnist5k")
    assert s.input_shape == (28, 28, 1) and s.num_classes == 10
    assert len(s.x_train) + len(s.x_val) + len(s.x_test) == 5000
    assert 0.0 <= s.x_train.min() and s.x_train.max() == 1.0


def test_split_is_deterministic_disjoint_and_stratified():
    a, b, c = load_dataset("digits", seed=3), load_dataset("digits", seed=3), load_dataset("digits", seed=4)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.y_test, c.y_test) or not np.array_equal(a.x_test, c.x_test)
    # disjoint: the 1797 digit images are distinct rows, none shared between splits
    rows = [{r.tobytes() for r in x.reshape(len(x), -1)} for x in (a.x_train, a.x_val, a.x_test)]
    assert not (rows[0] & rows[1]) and not (rows[0] & rows[2]) and not (rows[1] & rows[2])
    total = Counter(np.concatenate([a.y_train, a.y_val, a.y_test]).tolist())
    for y, share in ((a.y_test, 0.2), (a.y_val, 0.15)):
        for cls, count in Counter(y.tolist()).items():
            assert abs(count - share * total[cls]) <= 1.5


def test_npz_uint8_rank3_with_labels(tmp_path):
    x, y = _toy()
    path = _write_npz(tmp_path / "toy.npz", x=x, y=y, labels=np.array(["cat", "dog", "owl"]))
    s = load_dataset(path)
    assert s.name == "toy" and s.input_shape == (6, 5, 1) and s.labels == ["cat", "dog", "owl"]
    restored = np.sort(np.round(_all_x(s) * 255).astype(np.uint8).reshape(len(x), -1), axis=0)
    assert np.array_equal(restored, np.sort(x.reshape(len(x), -1), axis=0))


def test_npz_float_rgb_and_default_labels(tmp_path):
    x, y = _toy(shape=(4, 4, 3), dtype=np.uint8)
    path = _write_npz(tmp_path / "rgb.npz", x=x.astype(np.float64) / 255.0, y=y.astype(np.int32))
    s = load_dataset(path)
    assert s.input_shape == (4, 4, 3) and s.labels == ["0", "1", "2"] and s.x_train.dtype == np.float32


@pytest.mark.parametrize("arrays, message", [
    (lambda x, y: {"y": y}, "missing array 'x'"),
    (lambda x, y: {"x": x}, "missing array 'y'"),
    (lambda x, y: {"x": x.reshape(len(x), -1), "y": y}, "must be \\(N, H, W\\)"),
    (lambda x, y: {"x": x, "y": y[:-1]}, "29 labels for 30 samples"),
    (lambda x, y: {"x": x, "y": y, "labels": np.array(["a", "b"])}, "2 class names .* class id 2"),
    (lambda x, y: {"x": x, "y": np.zeros_like(y)}, "at least 2 classes"),
    (lambda x, y: {"x": x, "y": np.where(np.arange(len(y)) < 2, 3, y)}, "class '3' has 2 sample"),
    (lambda x, y: {"x": x.astype(np.float32), "y": y}, "must be in \\[0, 1\\]"),
    (lambda x, y: {"x": x.astype(np.int32), "y": y}, "dtype int32"),
    (lambda x, y: {"x": x, "y": y - 1}, "negative class id"),
    (lambda x, y: {"x": x, "y": y + 0.5}, "integer class ids"),
])
def test_bad_npz_names_the_problem(tmp_path, arrays, message):
    x, y = _toy()
    path = _write_npz(tmp_path / "bad.npz", **arrays(x, y))
    with pytest.raises(TinymlError, match=message):
        load_dataset(path)


def test_unreadable_npz_and_missing_paths(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(TinymlError, match="cannot read as .npz"):
        load_dataset(str(junk))
    with pytest.raises(TinymlError, match="not found"):
        load_dataset(str(tmp_path / "absent.npz"))
    with pytest.raises(TinymlError, match="not found.*digits, mnist5k"):
        load_dataset("no-such-builtin")
    other = tmp_path / "data.csv"
    other.write_text("1,2\n")
    with pytest.raises(TinymlError, match="expected an .npz"):
        load_dataset(str(other))


def _image_folder(root, sizes=None, modes=None, per_class=4):
    from PIL import Image

    rng = np.random.default_rng(1)
    for c, name in enumerate(("circle", "square")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            size = (sizes or {}).get((c, i), (7, 9))
            mode = (modes or {}).get((c, i), "L")
            pixels = rng.integers(0, 256, size=(size[1], size[0], 3 if mode == "RGB" else 1), dtype=np.uint8)
            Image.fromarray(pixels if mode == "RGB" else pixels[..., 0], mode).save(root / name / f"{i}.png")
    return root


def test_image_folder_grayscale_and_rgb(tmp_path):
    s = load_dataset(str(_image_folder(tmp_path / "shapes")))
    assert s.name == "shapes" and s.labels == ["circle", "square"] and s.input_shape == (9, 7, 1)
    assert len(s.x_train) + len(s.x_val) + len(s.x_test) == 8
    rgb = load_dataset(str(_image_folder(tmp_path / "mixed", modes={(1, 2): "RGB"})))
    assert rgb.input_shape == (9, 7, 3)


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(TinymlError, match="empty folder"):
        load_dataset(str(tmp_path / "empty"))
    odd = _image_folder(tmp_path / "odd", sizes={(1, 2): (8, 8)})
    with pytest.raises(TinymlError, match="square/2.png is 8x8, the others are 7x9"):
        load_dataset(str(odd))
    hollow = _image_folder(tmp_path / "hollow")
    (hollow / "zzz").mkdir()
    with pytest.raises(TinymlError, match="'zzz' has no images"):
        load_dataset(str(hollow))
    broken = _image_folder(tmp_path / "broken")
    (broken / "circle" / "9.png").write_bytes(b"garbage")
    with pytest.raises(TinymlError, match="cannot read image .*9.png"):
        load_dataset(str(broken))


def test_bad_fractions():
    with pytest.raises(TinymlError, match="split fractions"):
        load_dataset("digits", val_fraction=0.5, test_fraction=0.6)
