import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tinyml import distill
from tinyml.data import load_dataset
from tinyml.errors import TinymlError
from tinyml.models import StudentConfig, build_student, build_teacher

SMALL = StudentConfig(2.0, 3)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def teacher(digits):
    """A teacher trained briefly: good enough to give informative soft targets."""
    net = build_teacher(digits.input_shape, digits.num_classes)
    return distill.train_teacher(net, digits, distill.TrainConfig(epochs=4), progress=False)


def _student(digits, config=SMALL):
    return build_student(config, digits.input_shape, digits.num_classes)


def test_teacher_trains_well_above_chance(teacher, digits):
    assert teacher.val_accuracy >= 0.85
    assert len(teacher.history) == 4 and {"epoch", "train_loss", "train_acc", "val_acc"} <= set(teacher.history[0])
    assert teacher.history[-1]["train_loss"] < teacher.history[0]["train_loss"]
    assert distill.evaluate(teacher.model, digits.x_test, digits.y_test) >= 0.8


@pytest.mark.parametrize("kd", ["none", "hinton", "fitnets", "attention"])
def test_each_mode_trains_above_chance(kd, digits, teacher):
    result = distill.train_student(_student(digits), digits, distill.TrainConfig(epochs=3, kd=kd),
                                   teacher=teacher.model, progress=False)
    assert result.val_accuracy >= 0.4                     # chance is 0.1
    last = result.history[-1]
    assert ("kd_loss" in last) == (kd != "none") and ("feature_loss" in last) == (kd in ("fitnets", "attention"))
    if kd in ("fitnets", "attention"):
        assert result.history[-1]["feature_loss"] < result.history[0]["feature_loss"]


def test_best_epoch_is_chosen_on_validation(digits):
    result = distill.train_student(_student(digits), digits, distill.TrainConfig(epochs=3, kd="none"), progress=False)
    val = [row["val_acc"] for row in result.history]
    assert result.val_accuracy == max(val) and val[result.best_epoch - 1] == max(val)
    assert distill.evaluate(result.model, digits.x_val, digits.y_val) == pytest.approx(result.val_accuracy)
    assert not result.model.training
    # keep="last" (validation trained on too): the last epoch's weights, whatever validation says
    last = distill.train_student(_student(digits), digits, distill.TrainConfig(epochs=2, kd="none", keep="last"),
                                 progress=False)
    assert last.best_epoch == 2 and last.val_accuracy == last.history[-1]["val_acc"]
    assert distill.evaluate(last.model, digits.x_val, digits.y_val) == pytest.approx(last.history[-1]["val_acc"])


def test_weight_averaging_keeps_the_mean_of_the_last_epochs(digits, monkeypatch):
    # Every epoch ends with a validation pass on the model: record its weights there.
    snapshots: list[dict[str, torch.Tensor]] = []
    original = distill.evaluate

    def recording(model, x, y, threads=1):
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return original(model, x, y, threads)

    monkeypatch.setattr(distill, "evaluate", recording)
    config = distill.TrainConfig(epochs=3, kd="none", keep="last", average_share=2 / 3)
    result = distill.train_student(_student(digits), digits, config, progress=False)
    assert distill.averaged_epochs(config) == 2 and result.history[-1]["averaged_epochs"] == 2
    kept = result.model.state_dict()
    weights = [name for name, module in result.model.named_modules() if isinstance(module, (nn.Conv2d, nn.Linear))]
    assert weights
    for name in weights:
        mean = (snapshots[1][f"{name}.weight"] + snapshots[2][f"{name}.weight"]) / 2
        assert torch.allclose(kept[f"{name}.weight"], mean, atol=1e-6)
        assert not torch.allclose(kept[f"{name}.weight"], snapshots[2][f"{name}.weight"])
    # The kept figure is the averaged model's (after its BatchNorm statistics were recomputed).
    assert result.val_accuracy == result.history[-1]["averaged_val_acc"]
    assert original(result.model, digits.x_val, digits.y_val) == pytest.approx(result.val_accuracy)


def test_recompute_batchnorm_takes_the_mean_over_the_images():
    torch.manual_seed(0)
    conv, norm = nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3, momentum=0.1)
    model = nn.Sequential(conv, norm).eval()
    images = torch.rand(64, 1, 6, 6)
    assert distill.recompute_batchnorm(model, images, batch_size=16) == 1
    with torch.no_grad():
        expected = conv(images).mean(dim=(0, 2, 3))
    assert torch.allclose(norm.running_mean, expected, atol=1e-5)
    assert norm.momentum == 0.1 and not model.training      # the caller's settings back


def test_training_is_deterministic_for_a_seed(digits):
    config = distill.TrainConfig(epochs=1, kd="none", seed=5)
    first = distill.train_student(_student(digits), digits, config, progress=False)
    torch.manual_seed(123)   # whatever ran before must not matter
    torch.rand(10)
    second = distill.train_student(_student(digits), digits, config, progress=False)
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in first.history]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in second.history]
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    other = distill.train_student(_student(digits), digits, distill.TrainConfig(epochs=1, kd="none", seed=6),
                                  progress=False)
    assert other.history[0]["train_loss"] != first.history[0]["train_loss"]


def test_hinton_loss_matches_its_formula():
    torch.manual_seed(0)
    s, t = torch.randn(5, 4), torch.randn(5, 4)
    tau = 3.0
    p_t = F.softmax(t / tau, dim=1)
    manual = (p_t * (p_t.log() - F.log_softmax(s / tau, dim=1))).sum(dim=1).mean() * tau ** 2
    assert distill.hinton_loss(s, t, tau).item() == pytest.approx(manual.item(), rel=1e-5)
    assert distill.hinton_loss(t, t, tau).item() == pytest.approx(0.0, abs=1e-6)


def test_attention_loss_properties():
    torch.manual_seed(0)
    a = [torch.rand(2, 8, 8, 8), torch.rand(2, 16, 4, 4)]
    t = [torch.rand(2, 32, 8, 8), torch.rand(2, 64, 2, 2)]
    assert distill.attention_loss(a, a).item() == pytest.approx(0.0, abs=1e-7)
    # scale-free: attention maps are normalised
    scaled = [f * 7.0 for f in a]
    assert distill.attention_loss(scaled, t).item() == pytest.approx(distill.attention_loss(a, t).item(), rel=1e-5)
    value = distill.attention_loss(a, t).item()
    assert 0.0 < value <= 4.0   # squared distance of unit vectors


def test_bad_configs_raise(digits, teacher):
    with pytest.raises(TinymlError, match="unknown distillation 'magic'"):
        distill.train_student(_student(digits), digits, distill.TrainConfig(kd="magic"), teacher=teacher.model)
    with pytest.raises(TinymlError, match="needs a teacher"):
        distill.train_student(_student(digits), digits, distill.TrainConfig(kd="hinton"))
    with pytest.raises(TinymlError, match="keep must be 'best' or 'last'"):
        distill.train_student(_student(digits), digits, distill.TrainConfig(kd="none", keep="middle"))
    with pytest.raises(TinymlError, match="needs keep='last'"):
        distill.train_student(_student(digits), digits, distill.TrainConfig(kd="none", average_share=0.5))
    with pytest.raises(TinymlError, match="average_share must be in"):
        distill.train_student(_student(digits), digits, distill.TrainConfig(kd="none", keep="last", average_share=2))
    with pytest.raises(TinymlError, match="epochs >= 1"):
        distill.train_student(_student(digits), digits, distill.TrainConfig(epochs=0, kd="none"))
    with pytest.raises(TinymlError, match="cannot evaluate"):
        distill.evaluate(teacher.model, digits.x_val, digits.y_val[:-1])


def test_predict_logits_shape_and_agreement(digits, teacher):
    logits = distill.predict_logits(teacher.model, digits.x_val)
    assert logits.shape == (len(digits.x_val), 10) and logits.dtype == np.float32
    accuracy = float(np.mean(logits.argmax(1) == digits.y_val))
    assert accuracy == pytest.approx(distill.evaluate(teacher.model, digits.x_val, digits.y_val))


def test_load_teacher_state_dicts(tmp_path, digits, teacher):
    path = tmp_path / "teacher.pt"
    torch.save(teacher.model.state_dict(), path)
    loaded = distill.load_teacher(str(path), "teacher", digits)
    assert np.allclose(distill.predict_logits(loaded, digits.x_val[:20]),
                       distill.predict_logits(teacher.model, digits.x_val[:20]), atol=1e-5)
    assert loaded.has_features
    student = _student(digits, StudentConfig(1.0, 2))
    torch.save({"state_dict": student.state_dict()}, tmp_path / "student.pth")
    as_teacher = distill.load_teacher(str(tmp_path / "student.pth"), "student:w1.00-d2", digits)
    assert distill.predict_logits(as_teacher, digits.x_val[:4]).shape == (4, 10)


def test_load_teacher_errors(tmp_path, digits, teacher):
    path = tmp_path / "teacher.pt"
    torch.save(teacher.model.state_dict(), path)
    with pytest.raises(TinymlError, match="do not match architecture 'student:w1.00-d2'"):
        distill.load_teacher(str(path), "student:w1.00-d2", digits)
    with pytest.raises(TinymlError, match="unknown teacher architecture 'resnet'"):
        distill.load_teacher(str(path), "resnet", digits)
    with pytest.raises(TinymlError, match="no such file"):
        distill.load_teacher(str(tmp_path / "absent.pt"), None, digits)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(TinymlError, match="cannot read as a torch state dict"):
        distill.load_teacher(str(tmp_path / "junk.pt"), None, digits)
    (tmp_path / "model.h5").write_bytes(b"junk")
    with pytest.raises(TinymlError, match="expected a .pt/.pth state dict or an .onnx"):
        distill.load_teacher(str(tmp_path / "model.h5"), None, digits)


class _ChannelsLast(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.permute(0, 3, 1, 2))


def _export(module: nn.Module, example: torch.Tensor, path, dynamic: bool) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), example, str(path), dynamo=False, opset_version=13,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "n"}, "y": {0: "n"}} if dynamic else None)
    return str(path)


@pytest.mark.parametrize("layout, dynamic", [("nchw", True), ("nhwc", False)])
def test_onnx_teacher_matches_torch(tmp_path, digits, teacher, layout, dynamic):
    module = teacher.model if layout == "nchw" else _ChannelsLast(teacher.model)
    example = torch.zeros(1, 1, 8, 8) if layout == "nchw" else torch.zeros(1, 8, 8, 1)
    onnx_teacher = distill.load_teacher(_export(module, example, tmp_path / "t.onnx", dynamic), None, digits)
    assert onnx_teacher.channels_last == (layout == "nhwc") and not onnx_teacher.has_features
    x = digits.x_val[:37]     # not a multiple of any batch size
    assert np.allclose(distill.predict_logits(onnx_teacher, x), distill.predict_logits(teacher.model, x), atol=1e-4)


def test_onnx_teacher_gives_soft_targets_but_no_features(tmp_path, digits, teacher):
    onnx_teacher = distill.load_teacher(_export(teacher.model, torch.zeros(1, 1, 8, 8), tmp_path / "t.onnx", True),
                                        None, digits)
    result = distill.train_student(_student(digits), digits, distill.TrainConfig(epochs=3, kd="hinton"),
                                   teacher=onnx_teacher, progress=False)
    assert result.val_accuracy >= 0.3 and "kd_loss" in result.history[0]
    for kd in ("fitnets", "attention"):
        with pytest.raises(TinymlError, match=f"{kd} distillation needs feature maps.*ONNX"):
            distill.train_student(_student(digits), digits, distill.TrainConfig(epochs=1, kd=kd), teacher=onnx_teacher)


def test_onnx_teacher_with_wrong_shapes(tmp_path, digits):
    wrong_input = _export(build_teacher((10, 10, 1), 10), torch.zeros(1, 1, 10, 10), tmp_path / "a.onnx", True)
    with pytest.raises(TinymlError, match="does not take 8x8x1 images"):
        distill.load_teacher(wrong_input, None, digits)
    wrong_output = _export(build_teacher((8, 8, 1), 7), torch.zeros(1, 1, 8, 8), tmp_path / "b.onnx", True)
    with pytest.raises(TinymlError, match="expected \\[1, 10\\]"):
        distill.load_teacher(wrong_output, None, digits)
    (tmp_path / "c.onnx").write_bytes(b"junk")
    with pytest.raises(TinymlError, match="cannot load ONNX model"):
        distill.load_teacher(str(tmp_path / "c.onnx"), None, digits)


def _kl_from_teacher(teacher_logits: np.ndarray, student_logits: np.ndarray, temperature: float) -> float:
    """Mean KL(teacher || student) of the temperature-softened class distributions."""
    def log_softmax(z):
        z = z / temperature
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    log_p, log_q = log_softmax(teacher_logits), log_softmax(student_logits)
    return float((np.exp(log_p) * (log_p - log_q)).sum(axis=1).mean())


@pytest.mark.slow
def test_hinton_distillation_moves_the_student_toward_the_teacher(digits, teacher):
    """What Hinton KD must do, checked where it can fail: the distilled student's softened outputs
    are clearly closer to the teacher's than those of the same student trained alone (same seed,
    same epochs). Accuracy cannot show it on digits: both land at 97-99 %, so an accuracy margin
    either never fails or fails on noise. Measured here: KL 0.055 distilled vs 0.088 alone at T=4
    (ratio 0.62); a KD term that does nothing gives a ratio near 1."""
    recipe = distill.TrainConfig(epochs=12, kd="hinton")
    alone = distill.train_student(_student(digits), digits, distill.TrainConfig(epochs=12, kd="none"),
                                  progress=False)
    taught = distill.train_student(_student(digits), digits, recipe, teacher=teacher.model, progress=False)
    teacher_logits = distill.predict_logits(teacher.model, digits.x_val)
    kl_alone = _kl_from_teacher(teacher_logits, distill.predict_logits(alone.model, digits.x_val), recipe.temperature)
    kl_taught = _kl_from_teacher(teacher_logits, distill.predict_logits(taught.model, digits.x_val),
                                 recipe.temperature)
    print(f"KL from the teacher at T={recipe.temperature:g}: alone {kl_alone:.4f}, hinton {kl_taught:.4f}; "
          f"val accuracy alone {alone.val_accuracy:.4f}, hinton {taught.val_accuracy:.4f}")
    assert kl_taught < 0.8 * kl_alone


def test_random_rotation_turns_images_by_at_most_the_angle():
    # A horizontal bar through the centre: a small turn keeps it near the middle row, a wider one spreads it.
    image = torch.zeros(64, 1, 9, 9)
    image[:, :, 4, :] = 1.0
    still = distill._random_rotate(image, 0.0, torch.Generator().manual_seed(0))
    assert torch.allclose(still, image, atol=1e-5)
    small = distill._random_rotate(image, 5.0, torch.Generator().manual_seed(0))
    wide = distill._random_rotate(image, 40.0, torch.Generator().manual_seed(0))
    off_centre = lambda x: float(x[:, :, [0, 1, 7, 8], :].sum())   # mass in the rows far from the bar
    assert off_centre(small) < 1e-3 < off_centre(wide)
    assert small.shape == image.shape and float(wide.max()) <= 1.0 + 1e-6
    again = distill._random_rotate(image, 40.0, torch.Generator().manual_seed(0))
    assert torch.equal(wide, again)                                # the generator decides the angles


def test_rotation_augmented_training(digits):
    config = distill.TrainConfig(epochs=2, kd="none", rotate_degrees=10.0)
    result = distill.train_student(_student(digits), digits, config, progress=False)
    plain = distill.train_student(_student(digits), digits, distill.TrainConfig(epochs=2, kd="none"), progress=False)
    assert result.val_accuracy >= 0.4
    assert result.history[0]["train_loss"] != plain.history[0]["train_loss"]   # the option reaches the batches
    with pytest.raises(TinymlError, match="rotate_degrees"):
        distill.train_student(_student(digits), digits, distill.TrainConfig(rotate_degrees=90.0, kd="none"))
