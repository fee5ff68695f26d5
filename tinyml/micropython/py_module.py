"""`tinyml compile --target micropython-py`: the model as one self-contained .py module.

The lowering and the memory plan are the compiler's own (generic target: no DSP layouts);
each layer becomes a call of the matching kernel in py_kernels.py, copied into the module
with its helpers. Weights are `bytes` literals (int8 filters, turned into array('b') at
import: MicroPython indexes bytes as unsigned), int32 data small tuples. Activations live in
one array('b') arena planned at compile time, without lagged overlaps (those rely on the C
kernels' exact read/write order; the Python kernels are only known to follow the generic one).
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TinymlError
from ..fsutil import atomic_output_dir
from ..tflite_graph import Graph, load_tflite
from ..compiler.layers import ConstArray, Layer, lower_graph
from ..compiler.planner import MemoryPlan, plan_memory
from . import py_kernels
from .api import DEFAULT_MODULE_NAME, PY_TARGET, ModelInterface, check_module_name

# kernel C function -> (py_kernels function, its helpers)
_KERNELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "tm_conv_2d_s8": ("conv_2d", ("_srdhm", "_rdbp", "_wrap32", "_mbqm")),
    "tm_depthwise_conv_2d_s8": ("depthwise_conv_2d", ("_srdhm", "_rdbp", "_wrap32", "_mbqm")),
    "tm_fully_connected_s8": ("fully_connected", ("_srdhm", "_rdbp", "_wrap32", "_mbqm")),
    "tm_add_s8": ("add", ("_srdhm", "_rdbp", "_wrap32", "_mbqm")),
    "tm_max_pool_2d_s8": ("max_pool_2d", ("_pool_window",)),
    "tm_average_pool_2d_s8": ("average_pool_2d", ("_pool_window",)),
    "tm_mean_s8": ("mean", ("_srdhm", "_rdbp", "_wrap32", "_mbqm")),
    "tm_pad_s8": ("pad", ()),
    "tm_concatenation_s8": ("concatenation", ()),
    "tm_quantize_s8": ("quantize", ("_srdhm", "_rdbp", "_wrap32", "_mbqm")),
    "tm_quantize_f32_s8": ("quantize_f32", ("_f32",)),
    "tm_dequantize_s8_f32": ("dequantize", ("_f32",)),
    "tm_softmax_s8": ("softmax", ("_srdhm", "_rdbp", "_wrap32", "_mbqm", "_sat_shift_left", "_exp_quarter",
                                  "_EXP_MINUS_POW2", "_exp_negative", "_one_over_one_plus")),
}
_HELPER_ORDER = ("_srdhm", "_rdbp", "_wrap32", "_mbqm", "_sat_shift_left", "_pool_window", "_f32", "_exp_quarter",
                 "_EXP_MINUS_POW2", "_exp_negative", "_one_over_one_plus")


@dataclass
class PyModuleResult:
    out_dir: Path
    module_path: Path
    module_name: str
    sha256: str
    arena_bytes: int
    weight_bytes: int
    module_bytes: int
    macs: int


def _helper_source(name: str) -> str:
    value = getattr(py_kernels, name)
    if callable(value):
        return inspect.getsource(value)
    return f"{name} = {value!r}\n"


def _literal(array: ConstArray) -> str:
    values = np.asarray(array.values).reshape(-1)
    if array.ctype == "int8_t":
        return f"_array('b', {values.astype(np.int8).tobytes()!r})"
    if array.ctype == "int32_t":
        return repr(tuple(int(v) for v in values))
    if array.ctype == "float":
        return repr(tuple(float(v) for v in values))
    raise TinymlError(f"internal: no Python form for a {array.ctype} constant ({array.name})")


def _field_value(value, consts: dict[str, str]):
    """A params field as Python source: ints and lists as they are, C names as the constant's Python name."""
    if isinstance(value, str):
        if value == "NULL":
            return "None"
        if value in consts:
            return consts[value]
        raise TinymlError(f"internal: params field refers to unknown constant {value}")
    if isinstance(value, (list, tuple, np.ndarray)):
        return "(" + ", ".join(_field_value(v, consts) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(np.float32(value)))
    raise TinymlError(f"internal: params field of type {type(value).__name__}")


def _tensor_expr(plan: MemoryPlan, tensor: int) -> str:
    storage, offset = plan.tensor_location(tensor)
    return {"input": "_IN", "output": "_OUT", "arena": "_A"}[storage] + f", {offset}"


def _layer_call(i: int, layer: Layer, plan: MemoryPlan, consts: dict[str, str]) -> str:
    function = _KERNELS[layer.kernel][0]
    args = []
    for arg in layer.args:
        if arg.kind in ("null", "scratch"):
            continue
        if arg.kind == "const":
            args.append(f"{consts[arg.name]}, 0")
        elif arg.kind == "array":
            items = ", ".join(f"({consts[item.name]}, 0)" if item.kind == "const"
                              else "(" + _tensor_expr(plan, item.tensor) + ")" for item in arg.items)
            args.append(f"({items},)")
        else:
            args.append(_tensor_expr(plan, arg.tensor))
    return f"    {function}(_P{i}, {', '.join(args)})  # layer {i}: {layer.opcode}\n"


def module_source(graph: Graph, layers: list[Layer], plan: MemoryPlan, name: str) -> str:
    api = ModelInterface.of(graph)
    consts: dict[str, str] = {}
    const_lines: list[str] = []
    kernels: list[str] = []
    helpers: set[str] = set()
    for layer in layers:
        if layer.alias:
            continue
        if layer.kernel not in _KERNELS:
            raise TinymlError(f"the MicroPython runtime has no kernel for {layer.opcode}")
        kernel, needs = _KERNELS[layer.kernel]
        if kernel not in kernels:
            kernels.append(kernel)
        helpers.update(needs)
        for array in layer.consts:
            if array.ctype == "tm_requant_t":
                continue  # the Python kernels requantize from the multiplier/shift pairs
            py_name = "_" + array.name.upper()
            consts[array.name] = py_name
            const_lines.append(f"{py_name} = {_literal(array)}\n")
    params = []
    for i, layer in enumerate(layers):
        if layer.alias:
            continue
        fields = {k: v for k, v in layer.fields.items() if k not in ("requant", "bias_folded", "filter16", "packed",
                                                                    "input1_table", "input2_table")}
        body = ", ".join(f"{k!r}: {_field_value(v, consts)}" for k, v in fields.items())
        params.append(f"_P{i} = {{{body}}}\n")
    calls = "".join(_layer_call(i, layer, plan, consts) for i, layer in enumerate(layers) if not layer.alias)
    in_count = int(np.prod(api.input_shape))
    out_count = int(np.prod(api.output_shape))
    if api.input_dtype == "float32":
        in_buffer = f"_IN = [0.0] * {in_count}\n"
        load = f"    v = _unpack('<{in_count}f', inp)\n    for i in range({in_count}):\n        _IN[i] = v[i]\n"
    else:
        in_buffer = f"_IN = _array('b', bytes({in_count}))\n"
        load = "    _IN[:] = _array('b', inp)\n"
    if api.output_dtype == "float32":
        out_buffer = f"_OUT = [0.0] * {out_count}\n"
        store = f"    out[:] = _pack('<{out_count}f', *_OUT)\n"
    else:
        out_buffer = f"_OUT = _array('b', bytes({out_count}))\n"
        store = "    out[:] = bytes(_OUT)\n"
    helper_src = "".join(_helper_source(h) + "\n\n" for h in _HELPER_ORDER if h in helpers)
    kernel_src = "".join(inspect.getsource(getattr(py_kernels, k)) + "\n\n" for k in kernels)
    return f'''"""{name}: an int8 model compiled by `tinyml compile --target micropython-py`. Do not edit.

Pure Python: runs on MicroPython and CPython alike, byte-exact with TFLite-Micro, slow.
    import {name} as m
    m.invoke(inp, out)   # inp: {api.input_bytes} bytes ({api.input_dtype}), out: bytearray({api.output_bytes})
    m.predict(inp)       # index of the largest output
"""
from array import array as _array
from struct import pack as _pack, unpack as _unpack

sha256 = {api.sha256!r}
runtime = 'py'
input_shape = {api.input_shape!r}
output_shape = {api.output_shape!r}
input_dtype = {api.input_dtype!r}
output_dtype = {api.output_dtype!r}
input_bytes = {api.input_bytes}
output_bytes = {api.output_bytes}
input_scale = {api.input_scale!r}
input_zero_point = {api.input_zero_point}
output_scale = {api.output_scale!r}
output_zero_point = {api.output_zero_point}
arena_bytes = {plan.arena_bytes}


{helper_src}{kernel_src}{"".join(const_lines)}
{"".join(params)}
_A = _array('b', bytes({max(1, plan.arena_bytes)}))
{in_buffer}{out_buffer}

def invoke(inp, out):
    if len(inp) != {api.input_bytes}:
        raise ValueError('input has %d bytes, the model takes {api.input_bytes}' % len(inp))
    if len(out) != {api.output_bytes}:
        raise ValueError('output has %d bytes, the model gives {api.output_bytes}' % len(out))
{load}{calls}{store}

def predict(inp):
    out = bytearray({api.output_bytes})
    invoke(inp, out)
    values = {"_unpack('<%df' % " + str(out_count) + ", out)" if api.output_dtype == "float32" else "_array('b', out)"}
    best = 0
    for i in range(1, len(values)):
        if values[i] > values[best]:
            best = i
    return best
'''


def compile_micropython_py(model: str | Path, out_dir: Path, name: str = DEFAULT_MODULE_NAME) -> PyModuleResult:
    """Writes out_dir/<name>.py and out_dir/micropython.json."""
    name = check_module_name(name)
    graph = load_tflite(model)
    layers = lower_graph(graph, "generic", "size")
    plan = plan_memory(graph, layers, overlap=False)
    source = module_source(graph, layers, plan, name)
    weight_bytes = sum(a.nbytes for layer in layers for a in layer.consts if a.ctype != "tm_requant_t")
    macs = sum(int(layer.macs) for layer in layers)
    out_dir = Path(out_dir)
    with atomic_output_dir(out_dir, keep_existing=False) as tmp:
        (tmp / f"{name}.py").write_text(source)
        summary = {"target": PY_TARGET, "module": name, "model_sha256": graph.sha256,
                   "arena_bytes": plan.arena_bytes, "weight_bytes": weight_bytes,
                   "module_bytes": len(source.encode()), "macs": macs,
                   "layers": [layer.opcode for layer in layers]}
        (tmp / "micropython.json").write_text(json.dumps(summary, indent=2) + "\n")
    return PyModuleResult(out_dir, out_dir / f"{name}.py", name, graph.sha256, plan.arena_bytes, weight_bytes,
                          len(source.encode()), macs)
