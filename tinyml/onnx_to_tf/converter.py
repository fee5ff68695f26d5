"""ONNX model -> TensorFlow tf.Module with an NHWC `serve` function.

Only the tiny-CNN op subset in ops.OPS is supported; anything else is refused up
front with the op and node named. The ONNX NCHW input becomes an NHWC TF input,
weights are rearranged at conversion time, and no TRANSPOSE is emitted, so the
`.tflite` TFLite makes of `concrete_function` holds only the compute ops.

Outputs come back in ONNX order, except 4-D outputs which stay NHWC like the input
(other permuted outputs get a transpose, which quantize_int8 then refuses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TinymlError
from .ops import OPS, SUPPORTED_OPS, tf
from .values import NHWC, Node, Value, activation, constant

__all__ = ["TfModel", "convert_onnx", "SUPPORTED_OPS"]


@dataclass
class TfModel:
    module: Any                       # tf.Module; module(x) / module.serve(x) take NHWC float32 (1, H, W, C)
    input_shape: tuple[int, ...]      # NHWC including batch (or the ONNX shape for non-4-D inputs)
    output_names: list[str]
    concrete_function: Any            # for tf.lite.TFLiteConverter.from_concrete_functions([...], module)
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)
    input_name: str = "input"
    onnx_input_shape: tuple[int, ...] = ()   # NCHW as in the ONNX file

    def __call__(self, x: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        """Run on an NHWC batch (any N, one sample at a time); numpy in, numpy out."""
        x = np.asarray(x, dtype=np.float32)
        if x.shape == self.input_shape[1:]:
            x = x[None]
        per_sample = [self.concrete_function(tf.constant(x[i:i + 1])) for i in range(len(x))]
        if len(self.output_names) == 1:
            return np.concatenate([r.numpy() for r in per_sample])
        return tuple(np.concatenate([r[k].numpy() for r in per_sample]) for k in range(len(self.output_names)))


@dataclass
class _Graph:
    nodes: list[Any]
    opset: int
    input_name: str
    onnx_input_shape: tuple[int, ...]
    output_names: list[str]
    initializers: dict[str, np.ndarray]
    used: set[str]


def _load(model: str | Path | Any):
    import onnx
    from google.protobuf.message import DecodeError

    if isinstance(model, onnx.ModelProto):
        return model
    path = Path(model)
    if not path.is_file():
        raise TinymlError(f"ONNX model {path} does not exist")
    try:
        proto = onnx.load(str(path))
    except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError) as exc:
        raise TinymlError(f"{path} is not an ONNX model or is corrupt ({type(exc).__name__})") from exc
    if not proto.graph.node:
        raise TinymlError(f"{path} is not an ONNX model or is corrupt (no graph nodes)")
    return proto


def _attributes(node) -> dict[str, Any]:
    import onnx
    from onnx import numpy_helper

    attrs: dict[str, Any] = {}
    for attribute in node.attribute:
        value = onnx.helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, onnx.TensorProto):
            value = numpy_helper.to_array(value)
        attrs[attribute.name] = value
    return attrs


def _analyse(proto) -> _Graph:
    import onnx
    from onnx import numpy_helper

    graph = proto.graph
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    if not opset:
        raise TinymlError("ONNX model has no default-domain opset import")
    initializers = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise TinymlError(f"the ONNX model must have exactly one input, it has {len(inputs)} "
                          f"({', '.join(i.name for i in inputs) or 'none'})")
    graph_input = inputs[0]
    tensor_type = graph_input.type.tensor_type
    if not graph_input.type.HasField("tensor_type"):
        raise TinymlError(f"ONNX input '{graph_input.name}' is not a tensor")
    if tensor_type.elem_type != onnx.TensorProto.FLOAT:
        type_name = onnx.TensorProto.DataType.Name(tensor_type.elem_type)
        raise TinymlError(f"ONNX input '{graph_input.name}' is {type_name}; a float32 input is required")
    dims = list(tensor_type.shape.dim)
    if not dims:
        raise TinymlError(f"ONNX input '{graph_input.name}' has no static shape")
    shape = []
    for axis, dim in enumerate(dims):
        if dim.HasField("dim_value") and dim.dim_value > 0:
            shape.append(int(dim.dim_value))
        elif axis == 0:
            shape.append(1)    # a dynamic batch runs one sample at a time
        else:
            raise TinymlError(f"ONNX input '{graph_input.name}' has a dynamic dimension "
                              f"'{dim.dim_param or '?'}' at axis {axis}; spatial and channel sizes must be static")
    if shape[0] != 1:
        raise TinymlError(f"ONNX input '{graph_input.name}' has batch {shape[0]}; batch 1 is required")

    for index, node in enumerate(graph.node):
        name = node.name or f"{node.op_type}_{index}"
        if node.domain not in ("", "ai.onnx") or node.op_type not in OPS:
            op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
            raise TinymlError(f"unsupported ONNX op '{op}' at node '{name}' "
                              f"(supported: {', '.join(sorted(SUPPORTED_OPS))})")
    used = {name for node in graph.node for name in node.input if name}
    used |= {output.name for output in graph.output}
    return _Graph(nodes=list(graph.node), opset=opset, input_name=graph_input.name,
                  onnx_input_shape=tuple(shape), output_names=[o.name for o in graph.output],
                  initializers=initializers, used=used)


def _run_graph(graph: _Graph, x: Any) -> list[Any]:
    """Emit the TF ops for the whole graph on the NHWC input tensor `x` (called while tracing)."""
    rank = len(graph.onnx_input_shape)
    env: dict[str, Value] = {name: constant(array) for name, array in graph.initializers.items()}
    env[graph.input_name] = activation(x, NHWC if rank == 4 else None)
    for index, proto in enumerate(graph.nodes):
        name = proto.name or f"{proto.op_type}_{index}"
        inputs: list[Value | None] = []
        for input_name in proto.input:
            if not input_name:
                inputs.append(None)
            elif input_name in env:
                inputs.append(env[input_name])
            else:
                raise TinymlError(f"ONNX node '{name}' reads '{input_name}', which no earlier node produces")
        node = Node(name=name, op_type=proto.op_type, attrs=_attributes(proto), inputs=inputs,
                    num_outputs=len(proto.output), opset=graph.opset,
                    used_outputs=[bool(o) and o in graph.used for o in proto.output])
        outputs = OPS[proto.op_type](node)
        for output_name, value in zip(proto.output, outputs):
            if output_name:
                env[output_name] = value
    return [_graph_output(env, name) for name in graph.output_names]


def _graph_output(env: dict[str, Value], name: str) -> Any:
    if name not in env:
        raise TinymlError(f"ONNX output '{name}' is not produced by any node")
    value = env[name]
    if value.is_const:
        raise TinymlError(f"ONNX output '{name}' is a constant; the model does not depend on its input")
    if value.perm == NHWC and value.order is None:
        return value.data      # 4-D outputs stay NHWC, like the input
    if value.perm != tuple(range(value.rank)):
        # Correct but costly: quantize_int8 refuses the TRANSPOSE this becomes, naming it.
        return tf.transpose(value.data, [value.perm.index(axis) for axis in range(value.rank)])
    if value.order is not None:
        # A flattened feature map as output: put its elements back in ONNX order (one GATHER).
        return tf.gather(value.data, np.argsort(value.order).astype(np.int32), axis=-1)
    return value.data


class _OnnxModule(tf.Module):
    """Holds the traced `serve` function; calling the module calls it."""

    def __call__(self, x):
        return self.serve(x)


def _tf_name(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "_." else "_" for ch in name)
    return cleaned if cleaned and cleaned[0].isalpha() else f"x_{cleaned}"


def convert_onnx(model: str | Path | Any) -> TfModel:
    """Convert an ONNX file (or ModelProto) with the tiny-CNN op subset to a TF module.

    Raises TinymlError for a missing/corrupt file, unsupported ops (naming op and
    node), more than one input, a non-float input or dynamic spatial sizes.
    """
    proto = _load(model)
    graph = _analyse(proto)
    shape = graph.onnx_input_shape
    tf_shape = (shape[0], shape[2], shape[3], shape[1]) if len(shape) == 4 else shape
    input_name = _tf_name(graph.input_name)

    module = _OnnxModule(name="onnx_model")

    def serve(x):
        outputs = _run_graph(graph, x)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    module.serve = tf.function(serve, input_signature=[tf.TensorSpec(tf_shape, tf.float32, name=input_name)],
                               autograph=False)
    try:
        concrete = module.serve.get_concrete_function()
    except TinymlError:
        raise
    except (ValueError, TypeError, tf.errors.InvalidArgumentError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TinymlError(f"cannot build the TF graph for the ONNX model: {message}") from exc
    outputs = concrete.structured_outputs
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    return TfModel(module=module, input_shape=tuple(tf_shape), output_names=list(graph.output_names),
                   concrete_function=concrete, output_shapes=[tuple(int(d) for d in o.shape) for o in outputs],
                   input_name=input_name, onnx_input_shape=shape)
