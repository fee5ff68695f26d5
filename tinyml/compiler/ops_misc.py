"""Lowering of the pooling, elementwise, reduction and data-movement ops.

Kernels: firmware/engine/tm_<op>.{h,c}; each header states the arithmetic and
the params fields filled here (shapes padded to 4-D with leading 1s).
"""

from __future__ import annotations

import numpy as np

from ..tflite_graph import Operator, Tensor
from .layers import Arg, ConstArray, Layer, LoweringContext, c_name, lowering
from ..errors import TinymlError
from .requant import (activation_range, add_quant, add_tables, concatenation_layout, mean_multiplier, pad_4d,
                    padding_2d, reduce_axes_4d, requant_records, requantize_multiplier, softmax_quant)

# ADDs with at least this many output elements get tm_add's two 1 KB rescale tables in flash
# (about 80 fewer instructions per element on a Cortex-M4; smaller ADDs keep the flash).
ADD_TABLE_MIN_ELEMENTS = 256

_C_TYPE = {np.dtype(np.int8): "int8_t", np.dtype(np.float32): "float", np.dtype(np.int32): "int32_t"}


def _dims4(context: LoweringContext, op: Operator, shape: tuple[int, ...], role: str) -> list[int]:
    if len(shape) > 4:
        raise context.fail(op, f"option {role} rank {len(shape)} (engine handles up to 4)")
    return [1] * (4 - len(shape)) + [int(d) for d in shape]


def _layer(op: Operator, name: str, fields: dict, consts: list[ConstArray], inputs: list[int], outputs: list[int],
           args: list[Arg], **extra) -> Layer:
    return Layer(op.index, op.opcode, f"tm_{name}_s8", f"tm_{name}_params_t", f"tm_{name}.h", f"tm_{name}.c",
                 fields, consts, inputs, outputs, args, **extra)


def _input_arg(context: LoweringContext, tensor: Tensor, index: int, slot: int,
               consts: list[ConstArray], inputs: list[int]) -> Arg:
    """An int8 input that may be a constant in the model (emitted as a flash array)."""
    if tensor.data is not None:
        name = c_name(index, f"input{slot}")
        consts.append(ConstArray(name, "int8_t", tensor.data.reshape(-1)))
        return Arg("const", name=name)
    inputs.append(tensor.index)
    return Arg("tensor", tensor.index, const=True)


def _same_quant(context: LoweringContext, op: Operator, a: Tensor, b: Tensor) -> None:
    if context.quant1(op, a, "input") != context.quant1(op, b, "output"):
        raise context.fail(op, "option output quantization differs from input")


@lowering("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
def lower_reshape(context: LoweringContext, op: Operator, index: int) -> Layer:
    # Row-major bytes are unchanged: the output is the input's storage, no code.
    inp = context.tensor(op, 0)
    out = context.tensor(op, 0, "output")
    context.require_activation(op, inp, "input")
    if inp.nbytes != out.nbytes or inp.dtype != out.dtype:
        raise context.fail(op, f"option shape {list(inp.shape)} -> {list(out.shape)}")
    if inp.scale.size and out.scale.size and (inp.scale[0] != out.scale[0] or inp.zero_point[0] != out.zero_point[0]):
        raise context.fail(op, "option output quantization differs from input")
    return _layer(op, "reshape", {"size": inp.nbytes}, [], [inp.index], [out.index],
                  [Arg("tensor", inp.index, const=True), Arg("tensor", out.index)], alias=True)


@lowering("ADD")
def lower_add(context: LoweringContext, op: Operator, index: int) -> Layer:
    a, b = context.tensor(op, 0), context.tensor(op, 1)
    out = context.tensor(op, 0, "output")
    for tensor, role in ((a, "input"), (b, "input"), (out, "output")):
        context.require_dtype(op, tensor, role, np.int8)
    sa, za = context.quant1(op, a, "input")
    sb, zb = context.quant1(op, b, "input")
    so, zo = context.quant1(op, out, "output")
    q = add_quant(sa, za, sb, zb, so, zo, context.activation(op))
    dims = _dims4(context, op, out.shape, "output")

    def strides(tensor: Tensor) -> list[int]:
        shape = _dims4(context, op, tensor.shape, "input")
        result, step = [0, 0, 0, 0], 1
        for j in range(3, -1, -1):
            if shape[j] != dims[j] and shape[j] != 1:
                raise context.fail(op, f"option broadcast {list(tensor.shape)} to {list(out.shape)}")
            result[j] = step if shape[j] != 1 else 0
            step *= shape[j]
        return result

    strides1, strides2 = strides(a), strides(b)
    if tuple(a.shape) == tuple(b.shape) == tuple(out.shape):
        # same shapes: one contiguous row
        dims, strides1, strides2 = [1, 1, 1, int(np.prod(dims))], [0, 0, 0, 1], [0, 0, 0, 1]
    fields = dict(
        input1_offset=q.input1_offset, input2_offset=q.input2_offset,
        input1_multiplier=q.input1_multiplier, input1_shift=q.input1_shift,
        input2_multiplier=q.input2_multiplier, input2_shift=q.input2_shift,
        output_multiplier=q.output_multiplier, output_shift=q.output_shift, output_offset=q.output_offset,
        left_shift=q.left_shift, activation_min=q.activation_min, activation_max=q.activation_max,
        dims=dims, input1_strides=strides1, input2_strides=strides2,
        input1_table="NULL", input2_table="NULL", requant="NULL",
    )
    consts: list[ConstArray] = []
    records = requant_records(np.array([q.output_multiplier]), np.array([q.output_shift]), q.output_offset)
    if records is not None and int(np.prod(dims)) >= ADD_TABLE_MIN_ELEMENTS:
        table1, table2 = add_tables(q)
        consts.append(ConstArray(c_name(index, "table1"), "int32_t", table1))
        consts.append(ConstArray(c_name(index, "table2"), "int32_t", table2))
        consts.append(ConstArray(c_name(index, "requant"), "tm_requant_t", records))
        fields.update(input1_table=c_name(index, "table1"), input2_table=c_name(index, "table2"),
                      requant=c_name(index, "requant"))
    inputs: list[int] = []
    args = [_input_arg(context, a, index, 1, consts, inputs), _input_arg(context, b, index, 2, consts, inputs),
            Arg("tensor", out.index)]
    # Element i of the output depends on element i of input 1 only when it is not broadcast.
    in_place = a.data is None and a.nbytes == out.nbytes and inputs and inputs[0] == a.index
    return _layer(op, "add", fields, consts, inputs, [out.index], args, in_place=bool(in_place))


def _pool(context: LoweringContext, op: Operator, index: int, name: str) -> Layer:
    inp, out = context.int8_io(op)
    if len(inp.shape) != 4 or len(out.shape) != 4:
        raise context.fail(op, "option rank (needs 4-D input and output)")
    _same_quant(context, op, inp, out)
    scale, zero_point = context.quant1(op, out, "output")
    opts = op.options
    k_h, k_w = int(opts.get("filter_height", 1)), int(opts.get("filter_width", 1))
    s_h, s_w = int(opts.get("stride_h", 1)), int(opts.get("stride_w", 1))
    padding = str(opts.get("padding", "VALID"))
    if padding not in ("SAME", "VALID"):
        raise context.fail(op, f"option padding {padding}")
    out_h, pad_h = padding_2d(inp.shape[1], k_h, s_h, padding)
    out_w, pad_w = padding_2d(inp.shape[2], k_w, s_w, padding)
    if (out_h, out_w) != tuple(out.shape[1:3]) or out.shape[3] != inp.shape[3]:
        raise context.fail(op, f"option output shape {list(out.shape)} (expected {[out_h, out_w, inp.shape[3]]})")
    act_min, act_max = activation_range(context.activation(op), scale, zero_point)
    fields = dict(batches=inp.shape[0], input_h=inp.shape[1], input_w=inp.shape[2], channels=inp.shape[3],
                  output_h=out_h, output_w=out_w, filter_h=k_h, filter_w=k_w, stride_h=s_h, stride_w=s_w,
                  pad_h=pad_h, pad_w=pad_w, activation_min=act_min, activation_max=act_max)
    return _layer(op, name, fields, [], [inp.index], [out.index],
                  [Arg("tensor", inp.index, const=True), Arg("tensor", out.index)])


@lowering("MAX_POOL_2D")
def lower_max_pool_2d(context: LoweringContext, op: Operator, index: int) -> Layer:
    return _pool(context, op, index, "max_pool_2d")


@lowering("AVERAGE_POOL_2D")
def lower_average_pool_2d(context: LoweringContext, op: Operator, index: int) -> Layer:
    return _pool(context, op, index, "average_pool_2d")


@lowering("MEAN")
def lower_mean(context: LoweringContext, op: Operator, index: int) -> Layer:
    inp, out = context.int8_io(op)
    axes_tensor = context.tensor(op, 1)
    axes = context.require_constant(op, axes_tensor, "axis").reshape(-1).astype(int).tolist()
    try:
        dims, reduce, count = reduce_axes_4d(inp.shape, axes)
    except TinymlError as exc:
        raise context.fail(op, f"option axis {axes} for shape {list(inp.shape)} ({exc})") from None
    kept = int(np.prod([d for d, r in zip(dims, reduce) if not r]))
    if int(np.prod(out.shape)) != kept:
        raise context.fail(op, f"option output shape {list(out.shape)}")
    in_scale, in_zp = context.quant1(op, inp, "input")
    out_scale, out_zp = context.quant1(op, out, "output")
    multiplier, shift = mean_multiplier(in_scale, out_scale, count)
    fields = dict(dims=dims, reduce=reduce, count=count, input_zero_point=in_zp, output_zero_point=out_zp,
                  multiplier=multiplier, shift=shift, requant="NULL")
    consts: list[ConstArray] = []
    records = requant_records(np.array([multiplier]), np.array([shift]), out_zp, any_multiplier=True)
    if records is not None:
        consts.append(ConstArray(c_name(index, "requant"), "tm_requant_t", records))
        fields["requant"] = c_name(index, "requant")
    return _layer(op, "mean", fields, consts, [inp.index], [out.index],
                  [Arg("tensor", inp.index, const=True), Arg("tensor", out.index)])


@lowering("SOFTMAX")
def lower_softmax(context: LoweringContext, op: Operator, index: int) -> Layer:
    inp, out = context.int8_io(op)
    in_scale, _ = context.quant1(op, inp, "input")
    out_scale, out_zp = context.quant1(op, out, "output")
    if out_zp != -128 or abs(out_scale - 1.0 / 256.0) > 1e-3 * (1.0 / 256.0):
        raise context.fail(op, f"option output quantization scale {out_scale} zero point {out_zp} "
                               "(TFLite needs 1/256, -128)")
    if not inp.shape:
        raise context.fail(op, "option scalar input")
    depth = int(inp.shape[-1])
    q = softmax_quant(float(op.options.get("beta", 1.0)), in_scale)
    fields = dict(rows=int(np.prod(inp.shape[:-1])), depth=depth, input_multiplier=q.input_multiplier,
                  input_left_shift=q.input_left_shift, diff_min=q.diff_min)
    return _layer(op, "softmax", fields, [], [inp.index], [out.index],
                  [Arg("tensor", inp.index, const=True), Arg("tensor", out.index)])


@lowering("PAD", "PADV2")
def lower_pad(context: LoweringContext, op: Operator, index: int) -> Layer:
    inp, out = context.int8_io(op)
    paddings = context.require_constant(op, context.tensor(op, 1), "paddings").astype(np.int64)
    try:
        dims, before, after = pad_4d(inp.shape, paddings)
    except TinymlError:
        raise context.fail(op, f"option paddings {paddings.tolist()}") from None
    # TFLM copies the input bytes as they are and pads with the output zero point, even
    # when the output's quantization differs from the input's (converted models never do).
    context.quant1(op, inp, "input")
    if [b + d + a for b, d, a in zip(before, dims, after)] != _dims4(context, op, out.shape, "output"):
        raise context.fail(op, f"option output shape {list(out.shape)}")
    pad_value = context.quant1(op, out, "output")[1]
    if op.opcode == "PADV2":
        value = context.optional(op, 2)
        if value is not None:
            context.require_dtype(op, value, "constant_values", np.int8)
            pad_value = int(context.require_constant(op, value, "constant_values").reshape(-1)[0])
    fields = dict(input_dims=dims, pad_before=before, pad_after=after, pad_value=pad_value)
    return _layer(op, "pad", fields, [], [inp.index], [out.index],
                  [Arg("tensor", inp.index, const=True), Arg("tensor", out.index)])


@lowering("CONCATENATION")
def lower_concatenation(context: LoweringContext, op: Operator, index: int) -> Layer:
    out = context.tensor(op, 0, "output")
    context.require_dtype(op, out, "output", np.int8)
    if op.options.get("fused_activation_function", "NONE") != "NONE":
        raise context.fail(op, f"option fused_activation_function {op.options['fused_activation_function']}")
    tensors = [context.tensor(op, k) for k in range(len(op.inputs))]
    if not 1 <= len(tensors) <= 10:
        raise context.fail(op, f"option {len(tensors)} inputs (engine handles 1 to 10)")
    rank = len(out.shape)
    axis = int(op.options.get("axis", 0))
    if not -rank <= axis < rank:
        raise context.fail(op, f"option axis {axis} for rank {rank}")
    out_quant = context.quant1(op, out, "output")
    consts: list[ConstArray] = []
    inputs: list[int] = []
    items = []
    for k, tensor in enumerate(tensors):
        context.require_dtype(op, tensor, "input", np.int8)
        # TFLM's int8 CONCATENATION copies bytes and refuses (at Prepare) inputs quantized
        # differently from the output.
        if context.quant1(op, tensor, "input") != out_quant:
            raise context.fail(op, f"option input {k} quantization differs from the output's")
        items.append(_input_arg(context, tensor, index, k, consts, inputs))
    try:
        outer, inner = concatenation_layout([t.shape for t in tensors], axis)
    except TinymlError:
        raise context.fail(op, f"option input shapes {[list(t.shape) for t in tensors]} along axis {axis}") from None
    first = tensors[0].shape
    if (sum(inner) * outer != int(np.prod(out.shape)) or len(out.shape) != len(first)
            or any(out.shape[j] != first[j] for j in range(rank) if j != axis % rank)):
        raise context.fail(op, f"option output shape {list(out.shape)}")
    fields = dict(num_inputs=len(tensors), outer=outer, inner=inner + [0] * (10 - len(inner)))
    return _layer(op, "concatenation", fields, consts, inputs, [out.index],
                  [Arg("array", ctype="int8_t", name="inputs", items=items), Arg("tensor", out.index)])


@lowering("QUANTIZE")
def lower_quantize(context: LoweringContext, op: Operator, index: int) -> Layer:
    inp = context.tensor(op, 0)
    out = context.tensor(op, 0, "output")
    context.require_activation(op, inp, "input")
    context.require_dtype(op, out, "output", np.int8)
    out_scale, out_zp = context.quant1(op, out, "output")
    size = int(np.prod(out.shape))
    if inp.dtype == np.float32:
        return Layer(op.index, op.opcode, "tm_quantize_f32_s8", "tm_quantize_f32_params_t", "tm_quantize.h",
                     "tm_quantize.c", dict(size=size, scale=float(np.float32(out_scale)), zero_point=out_zp), [],
                     [inp.index], [out.index],
                     [Arg("tensor", inp.index, ctype="float", const=True), Arg("tensor", out.index)])
    context.require_dtype(op, inp, "input", np.int8, np.float32)
    in_scale, in_zp = context.quant1(op, inp, "input")
    multiplier, shift = requantize_multiplier(in_scale, out_scale)
    fields = dict(size=size, input_zero_point=in_zp, output_zero_point=out_zp, multiplier=multiplier, shift=shift)
    return _layer(op, "quantize", fields, [], [inp.index], [out.index],
                  [Arg("tensor", inp.index, const=True), Arg("tensor", out.index)], in_place=True)


@lowering("DEQUANTIZE")
def lower_dequantize(context: LoweringContext, op: Operator, index: int) -> Layer:
    inp = context.tensor(op, 0)
    out = context.tensor(op, 0, "output")
    context.require_activation(op, inp, "input")
    context.require_dtype(op, inp, "input", np.int8)
    context.require_dtype(op, out, "output", np.float32)
    scale, zero_point = context.quant1(op, inp, "input")
    return Layer(op.index, op.opcode, "tm_dequantize_s8_f32", "tm_dequantize_params_t", "tm_dequantize.h",
                 "tm_dequantize.c", dict(size=int(np.prod(inp.shape)), scale=float(np.float32(scale)),
                                         zero_point=zero_point), [], [inp.index], [out.index],
                 [Arg("tensor", inp.index, const=True), Arg("tensor", out.index, ctype="float")])
