"""Quantization-aware training (QAT) of a student, and its export to an int8 `.tflite`
whose quantization parameters are the learned ones.

The fake-quantized network computes what the int8 model computes:
  input      int8 with scale 1/255, zero point -128 (images in [0, 1], as tinyml.verify feeds them)
  weights    int8 symmetric in [-127, 127], scale max|w|/127 per output channel (or one scale
             for the whole tensor: `weight_granularity="per-tensor"`), BatchNorm folded first,
             so the weights trained are the weights deployed
  biases     int32 with scale input_scale * weight_scale, as TFLite stores them
  activations int8 asymmetric per tensor, after the fused ReLU; the clipping range [low, high]
             is learned (LSQ's gradient for the scale, PACT's clipping: values past the range
             saturate as int8 saturates on the device); ReLU outputs keep low = 0
  pooling    global average of the int8 map, requantized to its own learned range (TFLite's MEAN)
Each layer's forward value is TFLite-Micro's integer arithmetic (int32 accumulators, the
fixed-point multipliers and their double rounding); its gradient is the float fake-quant path's
(straight-through rounding). So the fake-quantized net's int8 outputs are the .tflite's on
TFLite-Micro, bit for bit (tests/test_qat.py checks it on the real tflite-micro).

Export (export_qat_tflite): the network goes the normal way (ONNX -> our TF converter -> TFLite's
converter) to get the graph, then every quantization parameter in it is overwritten in place with
the learned one: activation scales and zero points, int8 weights and their scales, int32 biases
(requantized with the learned input scale). Nothing is re-calibrated: the scales in the .tflite
are the trained ones (tests read them back).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import TinymlError

if TYPE_CHECKING:
    from .data import Splits
    from .distill import Teacher
    from .quantize import QuantizedModel

WEIGHT_GRANULARITIES = ("per-channel", "per-tensor")
INPUT_SCALE = 1.0 / 255.0      # images in [0, 1] -> int8 [-128, 127]
INPUT_ZERO_POINT = -128
_CALIBRATION_SAMPLES = 200     # the same count as the post-training calibration (tinyml.quantize)
# Ranges are stored as exp(_RANGE_SPEED * u): an AdamW step of lr on u then moves a range by
# about _RANGE_SPEED * lr of itself, so the ranges keep up with the weights at fine-tuning rates.
_RANGE_SPEED = 10.0


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    """round() forward, identity backward (straight-through estimator)."""
    return x + (torch.round(x) - x).detach()


def _multiply_by_quantized_multiplier(acc: torch.Tensor, multipliers: torch.Tensor,
                                      shifts: torch.Tensor) -> torch.Tensor:
    """TFLite's MultiplyByQuantizedMultiplier (SRDHM, then rounding divide by a power of two) on
    int64 tensors, per element of broadcast multipliers/shifts: the integer requantization of
    TFLite-Micro (tinyml.compiler.requant.multiply_by_quantized_multiplier, vectorized)."""
    left, right = torch.clamp(shifts, min=0), torch.clamp(-shifts, min=0)
    x = torch.bitwise_left_shift(acc, left)
    high = torch.bitwise_right_shift(x * multipliers + (1 << 30), 31)
    mask = torch.bitwise_left_shift(torch.ones_like(right), right) - 1
    remainder = torch.bitwise_and(high, mask)
    threshold = torch.bitwise_right_shift(mask, 1) + (high < 0).long()
    return torch.bitwise_right_shift(high, right) + (remainder > threshold).long()


def _multipliers(real: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    from .compiler.requant import quantize_multiplier

    pairs = [quantize_multiplier(value) for value in real]
    return (torch.tensor([m for m, _ in pairs], dtype=torch.int64),
            torch.tensor([shift for _, shift in pairs], dtype=torch.int64))


def _f32(value: float | torch.Tensor) -> float:
    """A scale as the .tflite stores it: float32, widened to double (as TFLite-Micro reads it)."""
    return float(np.float32(float(value)))


def _exact(float_path: torch.Tensor, codes: torch.Tensor, zero_point: torch.Tensor,
           scale: torch.Tensor) -> torch.Tensor:
    """The integer result's value forward, the float path's gradient backward."""
    exact = (codes.to(float_path.dtype) - zero_point) * scale
    return float_path + (exact - float_path).detach()


@dataclass
class ActivationRange:
    """One activation tensor's learned int8 quantization: real = scale * (q - zero_point)."""
    name: str
    scale: float
    zero_point: int

    @property
    def low(self) -> float:
        return self.scale * (-128 - self.zero_point)

    @property
    def high(self) -> float:
        return self.scale * (127 - self.zero_point)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "scale": self.scale, "zero_point": self.zero_point,
                "low": self.low, "high": self.high}


class ActivationQuantizer(nn.Module):
    """Per-tensor asymmetric int8 fake quantization with a learned clipping range.

    `high` (and `low` unless it is fixed at 0 after a ReLU) are parameters; the zero point is
    the integer TFLite would store for that range, the scale (high - low) / 255."""

    def __init__(self, name: str, low: float, high: float, learn_low: bool) -> None:
        super().__init__()
        self.name = name
        self.learn_low = learn_low
        self.log_high = nn.Parameter(torch.tensor(math.log(max(high, 1e-3)) / _RANGE_SPEED))
        if learn_low:
            self.log_neg_low = nn.Parameter(torch.tensor(math.log(max(-low, 1e-3)) / _RANGE_SPEED))

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        high = torch.exp(self.log_high * _RANGE_SPEED)
        low = -torch.exp(self.log_neg_low * _RANGE_SPEED) if self.learn_low else torch.zeros_like(high)
        return low, high

    def scale_and_zero_point(self) -> tuple[torch.Tensor, torch.Tensor]:
        low, high = self.bounds()
        scale = (high - low) / 255.0
        zero_point = torch.clamp(torch.round(-128.0 - low.detach() / scale.detach()), -128, 127)
        return scale, zero_point

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, zero_point = self.scale_and_zero_point()
        q = torch.clamp(_round_ste(x / scale + zero_point), -128, 127)
        return (q - zero_point) * scale

    def learned(self) -> ActivationRange:
        scale, zero_point = self.scale_and_zero_point()
        return ActivationRange(self.name, float(scale.detach().float()), int(zero_point))


def weight_scales(weight: torch.Tensor, granularity: str) -> torch.Tensor:
    """Symmetric int8 scale per output channel (dim 0), or one for all: max|w| / 127."""
    flat = weight.detach().reshape(weight.shape[0], -1).abs()
    per_channel = flat.amax(dim=1)
    if granularity == "per-tensor":
        per_channel = per_channel.max().expand_as(per_channel)
    return torch.clamp(per_channel, min=1e-12) / 127.0


class QuantLayer(nn.Module):
    """A BatchNorm-folded Conv2d or Linear, its optional ReLU, and the output's quantizer."""

    def __init__(self, layer: nn.Conv2d | nn.Linear, relu: bool, output: ActivationQuantizer,
                 granularity: str) -> None:
        super().__init__()
        self.layer = layer
        self.relu = relu
        self.output = output
        self.granularity = granularity

    def quantized_parameters(self, input_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                        torch.Tensor]:
        """(int weights, weight scales, int32 biases, bias scales), each with the STE gradient."""
        weight = self.layer.weight
        scales = weight_scales(weight, self.granularity)
        shape = (-1,) + (1,) * (weight.dim() - 1)
        q_weight = torch.clamp(_round_ste(weight / scales.view(shape)), -127, 127)
        bias = self.layer.bias if self.layer.bias is not None else weight.new_zeros(weight.shape[0])
        bias_scales = input_scale * scales
        q_bias = torch.clamp(_round_ste(bias / bias_scales), -2 ** 31, 2 ** 31 - 1)
        return q_weight, scales, q_bias, bias_scales

    def _apply(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        if isinstance(self.layer, nn.Conv2d):
            conv = self.layer
            return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
        return F.linear(x, weight, bias)

    def forward(self, x: torch.Tensor, input_scale: torch.Tensor) -> torch.Tensor:
        """Float fake quantization for the gradient; its value replaced by TFLite-Micro's integer
        arithmetic: int32 accumulator of (input - zero point) x weights + bias, requantized per
        channel by the fixed-point multiplier of input_scale * weight_scale / output_scale."""
        q_weight, scales, q_bias, bias_scales = self.quantized_parameters(input_scale)
        shape = (-1,) + (1,) * (q_weight.dim() - 1)
        y = self._apply(x, q_weight * scales.view(shape), q_bias * bias_scales)
        y = self.output(F.relu(y) if self.relu else y)
        with torch.no_grad():
            codes = torch.round(x.double() / input_scale.double())   # the input is on its int8 grid
            acc = self._apply(codes, q_weight.double(), q_bias.double()).round().long()
            out_scale, out_zero_point = self.output.scale_and_zero_point()
            multipliers, shifts = _multipliers([_f32(input_scale) * float(s) / _f32(out_scale)
                                                for s in scales.float().tolist()])
            view = (1, -1) + (1,) * (acc.dim() - 2)
            q = _multiply_by_quantized_multiplier(acc, multipliers.view(view), shifts.view(view)) + int(out_zero_point)
            q = torch.clamp(q, int(out_zero_point) if self.relu else -128, 127)
        return _exact(y, q, out_zero_point, out_scale)


class QatNet(nn.Module):
    """Fake-quantized student: quantized input, conv layers, global average pool, classifier."""

    def __init__(self, convs: list[QuantLayer], pool: ActivationQuantizer, classifier: QuantLayer,
                 granularity: str) -> None:
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.pool = pool
        self.classifier = classifier
        self.granularity = granularity

    def layers(self) -> list[QuantLayer]:
        return [*self.convs, self.classifier]

    def quantizers(self) -> list[ActivationQuantizer]:
        """Activation quantizers in graph order (what export writes, one per int8 activation)."""
        return [*(layer.output for layer in self.convs), self.pool, self.classifier.output]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.new_tensor(INPUT_SCALE)
        # As tinyml.verify.quantize_input does it (float64, halves to even): the same input codes.
        codes = torch.clamp(torch.round(x.double() / _f32(INPUT_SCALE)) + INPUT_ZERO_POINT, -128, 127)
        x = (codes.float() - INPUT_ZERO_POINT) * scale
        for layer in self.convs:
            x = layer(x, scale)
            scale = layer.output.scale_and_zero_point()[0]
        x = self._mean(x, scale)
        return self.classifier(x, self.pool.scale_and_zero_point()[0])

    def _mean(self, x: torch.Tensor, input_scale: torch.Tensor) -> torch.Tensor:
        """Global average pool, its value TFLite-Micro's int8 MEAN (sum, one fixed-point multiply
        with 1/count folded in as TFLite folds it)."""
        from .compiler.requant import mean_multiplier

        pooled = self.pool(torch.mean(x, dim=(2, 3)))
        with torch.no_grad():
            count = x.shape[2] * x.shape[3]
            total = torch.round(x.double() / input_scale.double()).sum(dim=(2, 3)).long()
            out_scale, out_zero_point = self.pool.scale_and_zero_point()
            multiplier, shift = mean_multiplier(_f32(input_scale), _f32(out_scale), count)
            q = _multiply_by_quantized_multiplier(total, torch.tensor(multiplier), torch.tensor(shift))
            q = torch.clamp(q + int(out_zero_point), -128, 127)
        return _exact(pooled, q, out_zero_point, out_scale)

    def ranges(self) -> list[ActivationRange]:
        return [quantizer.learned() for quantizer in self.quantizers()]


# ---------------------------------------------------------------- building from a float student


def supports_student(student: nn.Module) -> bool:
    """Whether QatNet can stand in for this student (a tinyml family student with a global-average-
    pool head; a flatten head, StudentConfig.flatten, is not modelled)."""
    try:
        _student_layers(student)
    except TinymlError:
        return False
    return True


def _student_layers(student: nn.Module) -> tuple[list[tuple[nn.Conv2d, bool]], nn.Linear]:
    """(BatchNorm-folded conv, followed by ReLU) in forward order, and the classifier, of a
    student of tinyml.models (stages of Conv2d/BatchNorm2d/ReLU, average pool, Linear)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    stages, classifier = getattr(student, "stages", None), getattr(student, "classifier", None)
    if stages is None or not isinstance(classifier, nn.Linear) or not isinstance(
            getattr(student, "pool", None), nn.AdaptiveAvgPool2d):
        raise TinymlError("quantization-aware training takes a student of the tinyml family (stages of "
                          "Conv2d/BatchNorm2d/ReLU, global average pool, Linear)")
    leaves = [m for m in stages.modules() if not list(m.children())]
    convs: list[tuple[nn.Conv2d, bool]] = []
    index = 0
    while index < len(leaves):
        module = leaves[index]
        if not isinstance(module, nn.Conv2d):
            raise TinymlError(f"quantization-aware training cannot place a {type(module).__name__} "
                              "(students have Conv2d, BatchNorm2d and ReLU only)")
        conv = copy.deepcopy(module).eval()
        index += 1
        if index < len(leaves) and isinstance(leaves[index], nn.BatchNorm2d):
            conv = fuse_conv_bn_eval(conv, copy.deepcopy(leaves[index]).eval())
            index += 1
        if conv.bias is None:
            conv.bias = nn.Parameter(torch.zeros(conv.out_channels))
        relu = index < len(leaves) and isinstance(leaves[index], nn.ReLU)
        index += relu
        convs.append((conv, relu))
    return convs, copy.deepcopy(classifier)


def build_qat_net(student: nn.Module, calibration: np.ndarray, granularity: str = "per-channel") -> QatNet:
    """The fake-quantized twin of `student` (BatchNorm folded), its activation ranges started
    at the min/max over `calibration` (NHWC in [0, 1]): where post-training quantization starts."""
    if granularity not in WEIGHT_GRANULARITIES:
        raise TinymlError(f"unknown weight granularity '{granularity}' (choose {', '.join(WEIGHT_GRANULARITIES)})")
    convs, classifier = _student_layers(student)
    images = torch.from_numpy(np.ascontiguousarray(calibration[:_CALIBRATION_SAMPLES], dtype=np.float32))
    x = images.permute(0, 3, 1, 2)
    layers: list[QuantLayer] = []
    with torch.no_grad():
        for number, (conv, relu) in enumerate(convs):
            x = conv(x)
            x = F.relu(x) if relu else x
            quantizer = ActivationQuantizer(f"conv{number}", float(x.min()), float(x.max()), learn_low=not relu)
            layers.append(QuantLayer(conv, relu, quantizer, granularity))
        pooled = torch.mean(x, dim=(2, 3))
        pool = ActivationQuantizer("pool", float(pooled.min()), float(pooled.max()),
                                   learn_low=bool(pooled.min() < 0))
        logits = classifier(pooled)
        head = QuantLayer(classifier, False, ActivationQuantizer("logits", float(logits.min()), float(logits.max()),
                                                                 learn_low=True), granularity)
    return QatNet(layers, pool, head, granularity).eval()


# ---------------------------------------------------------------- training


@dataclass
class QatConfig:
    epochs: int = 8
    lr: float = 1e-3                 # peak of the one-cycle schedule: a fine-tune, ~1/10 of training's
    weight_granularity: str = "per-channel"
    seed: int = 0
    kd: str = "hinton"               # "hinton" with a teacher, else plain cross-entropy
    threads: int = 1

    def check(self) -> None:
        if self.epochs < 1:
            raise TinymlError(f"QAT needs at least 1 epoch, got {self.epochs}")
        if self.weight_granularity not in WEIGHT_GRANULARITIES:
            raise TinymlError(f"unknown weight granularity '{self.weight_granularity}' "
                              f"(choose {', '.join(WEIGHT_GRANULARITIES)})")


@dataclass
class QatResult:
    model: QatNet                         # best epoch on validation, eval mode
    ranges: list[ActivationRange]         # learned activation quantization, graph order
    initial_ranges: list[ActivationRange]  # the min/max calibration it started from
    history: list[dict] = field(default_factory=list)
    val_accuracy: float = 0.0             # of the fake-quantized network
    seconds: float = 0.0


def quantization_aware_finetune(student: nn.Module, splits: Splits, config: QatConfig,
                                teacher: Teacher | nn.Module | None = None, progress: bool = True) -> QatResult:
    """Fine-tune `student` (float, trained) with fake quantization, distilled from `teacher` when
    given (tinyml.distill's Hinton loss), the best epoch chosen on the validation split."""
    from . import distill

    config.check()
    net = build_qat_net(student, splits.x_train, config.weight_granularity)
    initial = net.ranges()
    kd = config.kd if teacher is not None else "none"
    if kd in distill.FEATURE_MODES:
        kd = "hinton"   # feature maps of a fake-quantized net are not the float student's: logits only
    recipe = distill.TrainConfig(epochs=config.epochs, lr=config.lr, seed=config.seed, kd=kd,
                                 threads=config.threads)
    trained = distill.train_student(net, splits, recipe, teacher=teacher if kd != "none" else None,
                                    progress=progress, initialize=False)
    model = trained.model
    assert isinstance(model, QatNet)
    return QatResult(model=model, ranges=model.ranges(), initial_ranges=initial, history=trained.history,
                     val_accuracy=trained.val_accuracy, seconds=trained.seconds)


# ---------------------------------------------------------------- export


def float_twin(net: QatNet) -> nn.Module:
    """A plain float network with the QAT net's folded layers (what ONNX export takes): it gives the
    converter the graph; the quantization parameters are written afterwards."""
    modules: list[nn.Module] = []
    for layer in net.convs:
        modules.append(copy.deepcopy(layer.layer))
        if layer.relu:
            modules.append(nn.ReLU())
    modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), copy.deepcopy(net.classifier.layer)]
    return nn.Sequential(*modules).eval()


@dataclass
class LayerQuantization:
    """What export writes for one conv / fully-connected layer, in TFLite's layouts."""
    weights: np.ndarray         # int8
    weight_scales: np.ndarray   # float32 per output channel
    biases: np.ndarray          # int32
    bias_scales: np.ndarray     # float32
    output: ActivationRange


def layer_quantization(net: QatNet) -> list[LayerQuantization]:
    """Per layer, graph order: the integers and scales the fake-quantized forward uses."""
    result = []
    with torch.no_grad():
        scale = torch.tensor(INPUT_SCALE)
        for number, layer in enumerate(net.layers()):
            if layer is net.classifier:
                scale = net.pool.scale_and_zero_point()[0]
            q_weight, scales, q_bias, bias_scales = layer.quantized_parameters(scale)
            weights = q_weight.numpy().astype(np.int8)
            if isinstance(layer.layer, nn.Conv2d):
                # torch (O, I, H, W) -> TFLite CONV_2D (O, H, W, I); depthwise (C, 1, H, W) -> (1, H, W, C)
                depthwise = layer.layer.groups > 1
                weights = weights.transpose(1, 2, 3, 0) if depthwise else weights.transpose(0, 2, 3, 1)
            result.append(LayerQuantization(np.ascontiguousarray(weights), scales.numpy().astype(np.float32),
                                            q_bias.numpy().astype(np.int64).astype(np.int32),
                                            bias_scales.numpy().astype(np.float32), layer.output.learned()))
            if layer is not net.classifier:
                scale = layer.output.scale_and_zero_point()[0]
    return result


_WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
_SAME_SCALE_OPS = ("PAD", "RESHAPE")   # int8 output must carry the input's scale and zero point


def write_learned_quantization(flatbuffer: bytes, net: QatNet) -> bytes:
    """The converted model with every quantization parameter replaced, in place, by the QAT net's.

    The graph must be the converter's form of float_twin(net): conv layers, PAD before stride-2
    depthwise convs, MEAN, FULLY_CONNECTED; anything else is a TinymlError (a QAT network the
    writer does not know how to carry)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    from .tflite_graph import load_tflite

    graph = load_tflite(flatbuffer)
    raw = bytearray(flatbuffer)
    model = schema.Model.GetRootAs(raw, 0)
    subgraph = model.Subgraphs(0)
    layers = layer_quantization(net)
    pool_range = net.pool.learned()

    def set_quant(tensor_index: int, scales: np.ndarray, zero_points: np.ndarray) -> None:
        quant = subgraph.Tensors(tensor_index).Quantization()
        scale_view, zp_view = quant.ScaleAsNumpy(), quant.ZeroPointAsNumpy()
        if isinstance(scale_view, int) or scale_view.size != scales.size or zp_view.size != zero_points.size:
            raise TinymlError(f"tensor {graph.tensors[tensor_index].name!r} has no room for {scales.size} scales")
        scale_view[:] = scales.astype(np.float32)
        zp_view[:] = zero_points.astype(np.int64)

    def set_data(tensor_index: int, values: np.ndarray) -> None:
        buffer = model.Buffers(subgraph.Tensors(tensor_index).Buffer())
        data = buffer.DataAsNumpy()
        expected = graph.tensors[tensor_index]
        if isinstance(data, int) or data.size != values.nbytes or tuple(expected.shape) != values.shape:
            raise TinymlError(f"tensor {expected.name!r} {expected.shape} cannot hold the QAT values {values.shape}")
        data[:] = np.frombuffer(values.astype(values.dtype.newbyteorder("<")).tobytes(), np.uint8)

    (input_index,) = graph.inputs
    set_quant(input_index, np.array([INPUT_SCALE], np.float32), np.array([INPUT_ZERO_POINT]))
    activation = {input_index: ActivationRange("input", float(np.float32(INPUT_SCALE)), INPUT_ZERO_POINT)}
    pending = list(layers)
    pools = 0
    for op in graph.operators:
        source = activation.get(op.inputs[0])
        if source is None:
            raise TinymlError(f"{op.opcode} reads a tensor the QAT export has not quantized yet")
        if op.opcode in _WEIGHTED_OPS:
            if not pending:
                raise TinymlError("the converted model has more weighted layers than the QAT network")
            layer = pending.pop(0)
            set_data(op.inputs[1], layer.weights)
            set_quant(op.inputs[1], layer.weight_scales, np.zeros(layer.weight_scales.size, np.int64))
            if len(op.inputs) < 3 or op.inputs[2] < 0:
                raise TinymlError(f"{op.opcode} has no bias tensor to carry the QAT biases")
            set_data(op.inputs[2], layer.biases)
            set_quant(op.inputs[2], layer.bias_scales, np.zeros(layer.bias_scales.size, np.int64))
            output = layer.output
        elif op.opcode == "MEAN":
            pools += 1
            output = pool_range
        elif op.opcode in _SAME_SCALE_OPS:
            output = source
        else:
            raise TinymlError(f"the QAT export cannot carry learned ranges through {op.opcode}")
        set_quant(op.outputs[0], np.array([output.scale], np.float32), np.array([output.zero_point]))
        activation[op.outputs[0]] = output
    if pending or pools != 1:
        raise TinymlError(f"the converted model does not have the QAT network's layers ({len(pending)} left over, "
                          f"{pools} pooling ops)")
    return bytes(raw)


@dataclass
class QatExport:
    quantized: QuantizedModel
    onnx_max_abs_error: float


def export_qat_tflite(net: QatNet, input_shape: tuple[int, int, int], calibration: np.ndarray, path: Path,
                      onnx_path: Path) -> QatExport:
    """The QAT net -> ONNX (at `onnx_path`) -> our TF converter -> TFLite's int8 graph -> the learned
    quantization written over it -> checked full-int8 `.tflite` at `path` (atomically)."""
    from .onnx_export import export_onnx
    from .onnx_to_tf.converter import convert_onnx
    from .quantize import _calibration_samples, check_int8_model, int8_flatbuffer, write_atomic

    import tensorflow as tf

    twin = float_twin(net)
    exported = export_onnx(twin, input_shape, onnx_path, sample=calibration[:32])
    tf_model = convert_onnx(onnx_path)
    samples = _calibration_samples(calibration, tf_model.input_shape, _CALIBRATION_SAMPLES)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([tf_model.concrete_function], tf_model.module)
    # Per-channel containers always: per-tensor weights are written as one scale repeated.
    converted = int8_flatbuffer(converter, [[sample[None]] for sample in samples])
    flatbuffer = write_learned_quantization(converted, net)
    result = check_int8_model(flatbuffer)
    write_atomic(path, flatbuffer)
    result.path = Path(path)
    return QatExport(quantized=result, onnx_max_abs_error=exported.max_abs_error)


def fake_quant_int8_outputs(net: QatNet, x: np.ndarray, output: ActivationRange | None = None) -> np.ndarray:
    """The QAT net's logits as the int8 codes the .tflite's output would hold (NHWC input in [0, 1])."""
    from .distill import predict_logits

    output = output or net.classifier.output.learned()
    logits = predict_logits(net, x).astype(np.float64)
    return np.clip(np.round(logits / output.scale) + output.zero_point, -128, 127).astype(np.int8)


__all__ = ["ActivationRange", "QatConfig", "QatResult", "QatNet", "build_qat_net", "quantization_aware_finetune",
           "export_qat_tflite", "write_learned_quantization", "layer_quantization", "fake_quant_int8_outputs",
           "WEIGHT_GRANULARITIES"]
