import io
import warnings

import pytest
import torch
from torch import nn

from tinyml.distill import torch_threads
from tinyml.errors import TinymlError
from tinyml.models import (Footprint, StudentConfig, build_student, build_teacher, footprint,
                           student_family)

SHAPES = [(8, 8, 1), (28, 28, 1), (9, 7, 3)]


@pytest.mark.parametrize("shape", SHAPES)
def test_teacher_and_students_give_logits_and_features(shape):
    torch.manual_seed(0)
    x = torch.rand(3, shape[2], shape[0], shape[1])
    nets = [build_teacher(shape, 4)] + [build_student(c, shape, 4) for c in student_family(shape)[::3]]
    for net in nets:
        net.eval()
        with torch_threads(1):
            logits, features = net.forward_features(x)
            assert torch.allclose(logits, net(x))
        assert logits.shape == (3, 4)
        assert [f.shape[1] for f in features] == net.hint_channels
        assert all(f.shape[0] == 3 and f.ndim == 4 for f in features)
        sizes = [f.shape[-1] for f in features]
        assert sizes == sorted(sizes, reverse=True)   # stages never grow the map


def test_teacher_size_is_in_the_teacher_range():
    for shape in ((8, 8, 1), (28, 28, 1)):
        assert 100_000 <= footprint(build_teacher(shape, 10), shape, 10).params <= 300_000


def test_footprint_of_a_hand_computed_student():
    # w0.5 x base 8 = 4 channels; 8x8 input gets one halving, in the single block (doubling to 8 channels).
    # stem 3x3 1->4 at 8x8: w 36, b 4, MACs 8*8*4*9 = 2304, act 64 + 256
    # depthwise 3x3 stride 2 on 4 ch -> 4x4x4: w 36, b 4, MACs 64*9 = 576, act 256 + 64
    # pointwise 1x1 4->8 at 4x4: w 32, b 8, MACs 128*4 = 512, act 64 + 128
    # pool 128 -> 8; linear 8->3: w 24, b 3, MACs 24
    config = StudentConfig(width=0.5, depth=1)
    expected = Footprint(params=128 + 19, macs=2304 + 576 + 512 + 24, weight_bytes=128 + 4 * 19, arena_bytes=320)
    assert footprint(config, (8, 8, 1), 3) == expected
    assert footprint(build_student(config, (8, 8, 1), 3), (8, 8, 1), 3) == expected


def test_downsampling_plan_for_28x28():
    net = build_student(StudentConfig(1.0, 4), (28, 28, 1), 10)
    _, features = net.forward_features(torch.zeros(1, 1, 28, 28))
    assert [tuple(f.shape[1:]) for f in features] == [(8, 14, 14), (16, 7, 7)]


def test_family_is_ordered_and_spans_the_targets():
    big = student_family((28, 28, 1))
    sizes = [footprint(c, (28, 28, 1), 10) for c in big]
    assert [s.params for s in sizes] == sorted(s.params for s in sizes)
    assert sizes[0].params <= 1_500 and sizes[-1].params >= 60_000
    assert any(40_000 <= s.weight_bytes <= 64 * 1024 for s in sizes)   # the mnist5k <= 64 KB member
    small = [footprint(c, (8, 8, 1), 10) for c in student_family((8, 8, 1))]
    assert small[0].params <= 1_500 and small[-1].params <= 30_000      # capped for tiny inputs


def test_student_name_round_trip():
    for config in (StudentConfig(0.5, 3), StudentConfig(1.0, 4, base_channels=16)):
        assert StudentConfig.parse(config.name()) == config
    assert StudentConfig(0.5, 3).name() == "w0.50-d3"
    with pytest.raises(TinymlError, match="bad student name"):
        StudentConfig.parse("wide-deep")


def test_bad_shapes_raise():
    with pytest.raises(TinymlError, match="input shape"):
        build_student(StudentConfig(1, 2), (8, 8), 10)
    with pytest.raises(TinymlError, match="at least 2 classes"):
        build_teacher((8, 8, 1), 1)


@pytest.mark.parametrize("shape, config", [((8, 8, 1), None), ((28, 28, 1), None), ((8, 8, 1), "w1.00-d1-e1-f-c28.36")])
def test_student_exports_to_the_supported_onnx_ops(shape, config):
    import onnx

    torch.manual_seed(1)
    net = build_student(StudentConfig.parse(config) if config else student_family(shape)[1], shape, 10)
    for module in net.modules():   # trained-looking BN statistics (fresh ones are all equal)
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.2, 0.2)
    net.eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.zeros(1, shape[2], shape[0], shape[1]), buffer, dynamo=False, opset_version=13)
    ops = {node.op_type for node in onnx.load_from_string(buffer.getvalue()).graph.node}
    assert ops <= {"Conv", "Relu", "Clip", "GlobalAveragePool", "Flatten", "Gemm", "Add"}


def test_early_downsampling_and_flatten_names_round_trip():
    for name in ("w3.00-d2-e1", "w1.00-d1-e1-f-c28.36", "w2.00-d3-b16-e2", "w1.00-d2-f"):
        assert StudentConfig.parse(name).name() == name
    config = StudentConfig.parse("w1.00-d1-e1-f-c28.36")
    assert (config.early, config.flatten, config.channels) == (1, True, (28, 36))
    assert StudentConfig.parse("w4.00-d4") == StudentConfig(4.0, 4)    # the old names keep their meaning


def test_footprint_of_a_hand_computed_early_flatten_student():
    # c28.36, one early halving: the stem strides, the block keeps 4x4; the head flattens 4x4x36.
    # stem 3x3 1->28 stride 2 -> 4x4x28: w 252, b 28, MACs 16*28*9 = 4032, act 64 + 448
    # depthwise 3x3 on 28 at 4x4: w 252, b 28, MACs 16*28*9 = 4032, act 448 + 448
    # pointwise 1x1 28->36 at 4x4: w 1008, b 36, MACs 16*36*28 = 16128, act 448 + 576
    # flatten 576; linear 576->10: w 5760, b 10, MACs 5760
    config = StudentConfig.parse("w1.00-d1-e1-f-c28.36")
    weights, biases = 252 + 252 + 1008 + 5760, 28 + 28 + 36 + 10
    expected = Footprint(params=weights + biases, macs=4032 + 4032 + 16128 + 5760,
                         weight_bytes=weights + 4 * biases, arena_bytes=1024)
    assert footprint(config, (8, 8, 1), 10) == expected
    assert expected.macs <= 30_000


@pytest.mark.parametrize("early, sizes", [(1, [4]), (2, [4, 2]), (3, [4, 2, 1])])
def test_early_halvings_come_first(early, sizes):
    net = build_student(StudentConfig(2.0, 3, early=early), (8, 8, 1), 10).eval()
    _, features = net.forward_features(torch.zeros(1, 1, 8, 8))
    assert [f.shape[-1] for f in features] == sizes
    channels = [16 * 2 ** i for i in range(early)]           # each stride-2 block doubles the stem's 16
    assert [f.shape[1] for f in features] == channels


def test_flatten_head_on_odd_maps():
    # 9x7 -> stem stride 2 -> 5x4: the Linear layer takes 5*4*channels inputs
    net = build_student(StudentConfig.parse("w1.00-d1-e1-f"), (9, 7, 3), 4)
    assert net.classifier.in_features == 5 * 4 * 8
    assert net(torch.zeros(2, 3, 9, 7)).shape == (2, 4)


def test_too_many_early_halvings_raise():
    with pytest.raises(TinymlError, match="at least 2 blocks"):
        build_student(StudentConfig(1.0, 1, early=3), (8, 8, 1), 10)
    with pytest.raises(TinymlError, match="leave nothing"):
        build_student(StudentConfig(1.0, 4, early=4), (8, 8, 1), 10)
    with pytest.raises(TinymlError, match="bad student config"):
        build_student(StudentConfig(1.0, 4, early=-1), (8, 8, 1), 10)
