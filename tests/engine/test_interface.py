"""The engine's interface has one owner, the C: the compiler's algorithm choice, scratch sizes
and limits for CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED are held to the C functions of the
kernels' headers (tm_conv_2d_choose, tm_conv_2d_*_get_buffer_size, ...), compiled for the host,
over a grid of shapes, quantizations and targets; on the arrays the compiler emits (only those its
chosen algorithm reads, compiler/unread.py) the C's choice finds every array it reads
(tm_*_has_data); and every kernel's source closure (compile.json's engine_sources, derived from
the #includes) links without an undefined tm_* symbol."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tinyml.compiler import ops_conv
from tinyml.compiler.engine_sources import source_closure
from tinyml.compiler.layers import lower_graph
from tinyml.compiler.unread import drop_unread_arrays
from tinyml.tflite_graph import load_tflite

from .kernel_harness import ENGINE_DIR, HOST_CFLAGS, TensorSpec, header_structs, one_op_model, options

PROBE = Path(__file__).with_name("interface_probe.c")

# The compiler's `path` of a layer (compile.json) -> the C enum value of the algorithm it runs.
CONV_ALGORITHM = {"generic": 0, "im2col DSP": 1, "1x1 DSP": 1, "im2col scalar": 1, "1x1 scalar": 1,
                  "widened patch": 2, "widened patch (zero point after the shift)": 2}
DEPTHWISE_ALGORITHM = {"generic": 0, "3x3 DSP": 1, "depthwise DSP": 2, "depthwise scalar": 3,
                       "3x3 scalar plane": 4}
FULLY_CONNECTED_ALGORITHM = {"generic": 0, "DSP": 1, "scalar": 1, "row16": 2, "row16 (zero point after the shift)": 2}
# The build each target's model runs on: the DSP path (emulated on the host) or a core without it.
BUILDS = {"cortex-m4": "dsp", "cortex-m7": "dsp", "rv32": "plain", "cortex-m0": "plain", "generic": "plain"}


class Probe:
    """interface_probe.c compiled for the host in one build ("dsp": TM_DSP_EMULATE, or "plain")."""

    _built: dict[str, "Probe"] = {}
    _dir: Path | None = None

    def __init__(self, build: str) -> None:
        if Probe._dir is None:
            Probe._dir = Path(tempfile.mkdtemp(prefix="tinyml-probe-"))
        library = Probe._dir / f"probe-{build}.so"
        defines = ["-DTM_DSP_EMULATE"] if build == "dsp" else []
        subprocess.run(["gcc", *HOST_CFLAGS, f"-I{ENGINE_DIR}", *defines, str(PROBE), "-o", str(library)],
                       check=True, capture_output=True, text=True)
        self.lib = ctypes.CDLL(str(library))
        self.structs = {**header_structs(ENGINE_DIR / "tm_conv_2d.h"),
                        **header_structs(ENGINE_DIR / "tm_depthwise_conv_2d.h"),
                        **header_structs(ENGINE_DIR / "tm_fully_connected.h")}

    @classmethod
    def get(cls, build: str) -> "Probe":
        if build not in cls._built:
            cls._built[build] = cls(build)
        return cls._built[build]

    def params(self, type_name: str, fields: dict) -> ctypes.Structure:
        """The params struct of a lowered layer: its integers, and for each array a non-NULL
        stand-in pointer where the compiler emits one (the choice reads only which are given)."""
        struct = self.structs[type_name]()
        for name, ctype in struct._fields_:
            value = fields.get(name, 0)
            if ctype is ctypes.c_void_p:
                setattr(struct, name, None if value in (0, "NULL") else 16)
            else:
                setattr(struct, name, int(value))
        return struct

    def call(self, function: str, *args) -> int:
        fn = getattr(self.lib, function)
        fn.restype = ctypes.c_int32
        return int(fn(*(ctypes.byref(a) if isinstance(a, ctypes.Structure) else a for a in args)))


def _out_size(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    effective = (kernel - 1) * dilation + 1
    return (size + stride - 1) // stride if padding == "SAME" else (size + stride - effective) // stride


def _conv_model(rng: np.random.Generator, depthwise: bool) -> bytes | None:
    """A one-op CONV_2D or DEPTHWISE_CONV_2D of random shape, window and quantization (None if
    the drawn shape has no output)."""
    k_h, k_w = [(1, 1), (3, 3), (3, 3), (1, 3), (5, 5), (2, 2), (17, 1)][int(rng.integers(7))]
    in_c = int(rng.choice([1, 2, 3, 4, 8, 13, 40, 41, 64]))
    stride_h, stride_w = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    dil_h, dil_w = (1, 1) if rng.random() < 0.7 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    padding = str(rng.choice(["SAME", "VALID"]))
    in_h = int(rng.integers((k_h - 1) * dil_h + 1, (k_h - 1) * dil_h + 12))
    in_w = int(rng.integers((k_w - 1) * dil_w + 1, (k_w - 1) * dil_w + 40))
    out_h = _out_size(in_h, k_h, stride_h, dil_h, padding)
    out_w = _out_size(in_w, k_w, stride_w, dil_w, padding)
    if out_h < 1 or out_w < 1:
        return None
    # The scale ratio picks the requantization: a usual right shift, one above 23 (trained models'
    # near-dead channels), or none at all (ratio >= 0.5).
    ratio = float(rng.choice([2.0 ** -7, 2.0 ** -7, 2.0 ** -27, 0.7]))
    in_scale, out_scale = 0.05, 0.1
    filter_scale = ratio * out_scale / in_scale
    multiplier = int(rng.integers(1, 3)) if depthwise else 1
    out_c = in_c * multiplier if depthwise else int(rng.integers(1, 20))
    filter_shape = (1, k_h, k_w, out_c) if depthwise else (out_c, k_h, k_w, in_c)
    weights = rng.integers(-127, 128, size=filter_shape, dtype=np.int8)
    bias = rng.integers(-2000, 2000, size=out_c, dtype=np.int32)
    activation = str(rng.choice(["NONE", "RELU", "RELU6"]))
    inputs = [TensorSpec((1, in_h, in_w, in_c), in_scale, int(rng.integers(-20, 20))),
              TensorSpec(filter_shape, filter_scale, 0, data=weights),
              TensorSpec((out_c,), in_scale * filter_scale, 0, dtype="INT32", data=bias)]
    outputs = [TensorSpec((1, out_h, out_w, out_c), out_scale, int(rng.integers(-20, 20)))]
    window = dict(padding=padding, strideW=stride_w, strideH=stride_h, dilationWFactor=dil_w,
                  dilationHFactor=dil_h, fusedActivationFunction=activation)
    if depthwise:
        return one_op_model("DEPTHWISE_CONV_2D", inputs, outputs,
                            options("DepthwiseConv2D", depthMultiplier=multiplier, **window))
    return one_op_model("CONV_2D", inputs, outputs, options("Conv2D", **window))


def _check_layer(layer, target: str) -> str:
    """The C's choice and scratch for a lowered layer equal the compiler's, and on the arrays the
    compiler emits (after compiler/unread.py) the chosen algorithm finds all it reads; returns the path."""
    probe = Probe.get(BUILDS[target])
    path = layer.extra["path"]
    has_scratch = int(layer.scratch_bytes > 0)
    drop_unread_arrays([layer])
    emitted = {array.name for array in layer.consts}
    assert all(value in emitted for value in layer.fields.values() if isinstance(value, str) and value != "NULL")
    if layer.kernel == "tm_conv_2d_s8":
        p = probe.params("tm_conv_2d_params_t", layer.fields)
        chosen = probe.call("probe_conv_2d_choose", p, has_scratch)
        assert chosen == CONV_ALGORITHM[path], (target, path, layer.fields)
        assert probe.call("probe_conv_2d_get_buffer_size", p) == layer.scratch_bytes, (target, path, layer.fields)
        assert probe.call("probe_conv_2d_has_data", p, has_scratch) == 1, (target, path, layer.fields)
    elif layer.kernel == "tm_fully_connected_s8":
        p = probe.params("tm_fully_connected_params_t", layer.fields)
        assert probe.call("probe_fully_connected_choose", p) == FULLY_CONNECTED_ALGORITHM[path], (target, path)
        assert probe.call("probe_fully_connected_has_data", p) == 1, (target, path, layer.fields)
    else:
        assert layer.kernel == "tm_depthwise_conv_2d_s8"
        p = probe.params("tm_depthwise_conv_2d_params_t", layer.fields)
        chosen = probe.call("probe_depthwise_conv_2d_choose", p, has_scratch)
        assert chosen == DEPTHWISE_ALGORITHM[path], (target, path, layer.fields)
        assert probe.call("probe_depthwise_conv_2d_get_buffer_size", p) == layer.scratch_bytes, (target, path)
        assert probe.call("probe_depthwise_conv_2d_has_data", p, has_scratch) == 1, (target, path, layer.fields)
    if path.startswith(("widened patch", "row16", "3x3 DSP")):
        # The DSP layout alone: no int8 filter, bias, multipliers or records beside it in flash.
        assert [name for name, value in layer.fields.items() if value in emitted] == \
            ["packed" if path == "3x3 DSP" else "filter16"], (target, path, layer.fields)
    return path


@pytest.mark.parametrize("depthwise", [False, True], ids=["conv_2d", "depthwise_conv_2d"])
def test_compiler_choice_and_scratch_match_the_c(depthwise):
    """Random layers lowered for every target and both --optimize trades: the algorithm the C
    dispatcher runs on the compiler's data is the compiler's `path`, and the scratch the C asks
    for is what the compiler planned. Every algorithm turns up."""
    rng = np.random.default_rng(15 + depthwise)
    seen: set[tuple[str, str]] = set()
    models = 0
    while models < 120:
        model = _conv_model(rng, depthwise)
        if model is None:
            continue
        models += 1
        graph = load_tflite(model)
        for target, optimize in [("cortex-m4", "speed"), ("cortex-m4", "size"), ("rv32", "speed"),
                                 ("cortex-m0", "speed"), ("generic", "speed")]:
            (layer,) = lower_graph(graph, target, optimize)
            seen.add((layer.kernel, _check_layer(layer, target)))
    # (A one-channel 3x3 conv may run as a depthwise layer; the conv grid must still meet every conv path.)
    kernel, paths = ("tm_depthwise_conv_2d_s8", DEPTHWISE_ALGORITHM) if depthwise else ("tm_conv_2d_s8", CONV_ALGORITHM)
    expected = {(kernel, path) for path in paths}
    assert expected <= seen, sorted(expected - seen)


def _fully_connected_model(rng: np.random.Generator) -> bytes:
    """A one-op FULLY_CONNECTED of random depth, batches and (per-tensor) quantization; a filter
    zero point now and then, which the DSP paths do not take."""
    depth, out_c, batches = int(rng.integers(1, 70)), int(rng.integers(1, 20)), int(rng.integers(1, 4))
    ratio = float(rng.choice([2.0 ** -7, 2.0 ** -27, 0.7]))
    in_scale, out_scale = 0.05, 0.1
    filter_scale = ratio * out_scale / in_scale
    filter_zp = int(rng.integers(-3, 4)) if rng.random() < 0.2 else 0
    weights = rng.integers(-127, 128, size=(out_c, depth), dtype=np.int8)
    inputs = [TensorSpec((batches, depth), in_scale, int(rng.integers(-20, 20))),
              TensorSpec((out_c, depth), filter_scale, filter_zp, data=weights),
              TensorSpec((out_c,), in_scale * filter_scale, 0, dtype="INT32",
                         data=rng.integers(-2000, 2000, size=out_c, dtype=np.int32))]
    outputs = [TensorSpec((batches, out_c), out_scale, int(rng.integers(-20, 20)))]
    activation = str(rng.choice(["NONE", "RELU", "RELU6"]))
    return one_op_model("FULLY_CONNECTED", inputs, outputs,
                        options("FullyConnected", fusedActivationFunction=activation))


def test_fully_connected_choice_matches_the_c():
    """Random fully connected layers for every target and trade: the C runs the compiler's `path`
    and, on the arrays the compiler emits, finds every array that path reads."""
    rng = np.random.default_rng(17)
    seen: set[str] = set()
    for _ in range(60):
        graph = load_tflite(_fully_connected_model(rng))
        for target, optimize in [("cortex-m4", "speed"), ("cortex-m4", "size"), ("rv32", "speed"),
                                 ("cortex-m0", "speed"), ("generic", "speed")]:
            (layer,) = lower_graph(graph, target, optimize)
            seen.add(_check_layer(layer, target))
    assert {"generic", "DSP", "scalar", "row16"} <= seen, sorted(seen)


def test_scratch_functions_match_the_c_over_a_grid():
    """ops_conv's scratch figures (what the planner reserves) equal the C's, shape by shape:
    kernel, channels, padding, stride, dilation and output width."""
    probe = Probe.get("dsp")
    for k_h in (1, 2, 3, 5, 16, 17):
        for k_w in (1, 3, 4):
            for filter_c in (1, 3, 4, 8, 40, 85, 86, 257):
                for pad_h, pad_w in ((0, 0), (1, 1), (0, 1)):
                    for stride_w in (1, 2, 3):
                        for dil_h, dil_w in ((1, 1), (2, 1), (1, 2)):
                            for out_w in (1, 6, 49):
                                fields = dict(batches=1, input_h=8, input_w=8, input_c=filter_c, output_h=4,
                                              output_w=out_w, output_c=4, filter_h=k_h, filter_w=k_w,
                                              filter_c=filter_c, stride_h=1, stride_w=stride_w, dilation_h=dil_h,
                                              dilation_w=dil_w, pad_h=pad_h, pad_w=pad_w)
                                p = probe.params("tm_conv_2d_params_t", fields)
                                shape = (k_h, k_w, filter_c, pad_h, pad_w, stride_w, out_w, dil_h, dil_w)
                                assert ops_conv.conv_k16_scratch_bytes(*shape) == probe.call(
                                    "probe_conv_2d_widened_get_buffer_size", p), shape
                                assert ops_conv.conv_dsp_scratch_bytes(k_h, k_w, filter_c, pad_h, pad_w) == \
                                    probe.call("probe_conv_2d_im2col_get_buffer_size", p), shape
                                fields.update(filter_w=k_w, output_c=filter_c, depth_multiplier=1)
                                d = probe.params("tm_depthwise_conv_2d_params_t", fields)
                                assert ops_conv.depthwise_dsp_scratch_bytes(
                                    k_h, k_w, dil_h, dil_w, filter_c, out_w, stride_w) == \
                                    probe.call("probe_depthwise_conv_2d_3x3_get_buffer_size", d), shape


def test_limits_have_one_definition():
    """The widened-patch bounds and the 3x3 depthwise record width are the C header's."""
    probe = Probe.get("dsp")
    assert probe.call("probe_dsp_available") == 1 and Probe.get("plain").call("probe_dsp_available") == 0
    assert ops_conv.CONV_K16_MAX == probe.call("probe_conv_2d_k16_max")
    assert ops_conv.CONV_K16_MAX_ROWS == probe.call("probe_conv_2d_k16_max_rows")
    words = ops_conv.depthwise_packed(np.ones((1, 3, 3, 5), np.int8), np.zeros(5, np.int32),
                                      np.zeros((5, 3), np.int32))
    assert words.size == 5 * probe.call("probe_dw3_packed_channel")


# ---------------------------------------------------------------- the link

COMPILERS = {
    "host": ["gcc"],
    "host-dsp": ["gcc", "-DTM_DSP_EMULATE"],
    "cortex-m4": ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
    "cortex-m0": ["arm-none-eabi-gcc", "-mcpu=cortex-m0", "-mthumb"],
    "rv32": ["riscv64-unknown-elf-gcc", "-march=rv32imc", "-misa-spec=2.2", "-mabi=ilp32", "--specs=picolibc.specs"],
}


def _symbols(nm: str, obj: Path) -> tuple[set[str], set[str]]:
    """(defined, undefined) symbols of an object file."""
    lines = subprocess.run([nm, str(obj)], check=True, capture_output=True, text=True).stdout.splitlines()
    defined = {line.split()[-1] for line in lines if len(line.split()) == 3 and line.split()[1] in "TtDdBbRr"}
    undefined = {line.split()[-1] for line in lines if line.split()[0] == "U"}
    return defined, undefined


@pytest.mark.parametrize("build", list(COMPILERS))
def test_source_closures_link(build, tmp_path):
    """Each kernel's engine_sources closure (derived from the #includes) defines every tm_* symbol
    its objects call, on every core the engine builds for; no file outside it is needed."""
    command = COMPILERS[build]
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} not installed")
    nm = shutil.which(command[0].replace("gcc", "nm")) or "nm"
    objects: dict[str, tuple[set[str], set[str]]] = {}
    for source in sorted(ENGINE_DIR.glob("tm_*.c")):
        obj = tmp_path / f"{source.stem}.o"
        subprocess.run([*command, "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", f"-I{ENGINE_DIR}", "-c",
                        str(source), "-o", str(obj)], check=True, capture_output=True, text=True)
        objects[source.name] = _symbols(nm, obj)
    for entry in sorted(objects):
        closure = source_closure([entry])
        defined = set().union(*(objects[name][0] for name in closure))
        needed = {s for name in closure for s in objects[name][1] if s.startswith("tm_")}
        assert needed <= defined, (build, entry, closure, sorted(needed - defined))


def test_closure_follows_the_includes(tmp_path):
    """engine_sources comes from the #includes: a FULLY_CONNECTED model links its own algorithms
    and the shared dot rows, not the convolutions; a file that is not there is a one-line error."""
    from tinyml.errors import TinymlError

    assert source_closure(["tm_fully_connected.c"]) == [
        "tm_fully_connected.c", "tm_fully_connected_generic.c", "tm_fully_connected_row16.c", "tm_support_dot_s8.c"]
    (tmp_path / "tm_a.c").write_text('#include "tm_a.h"\n#include "tm_common.h"\n')
    (tmp_path / "tm_a.h").write_text('#include "tm_b.h"\n')
    (tmp_path / "tm_b.h").write_text("")
    (tmp_path / "tm_b.c").write_text('#include "tm_b.h"\n')
    assert source_closure(["tm_a.c"], tmp_path) == ["tm_a.c", "tm_b.c"]
    with pytest.raises(TinymlError, match="tm_missing.c not found"):
        source_closure(["tm_missing.c"], tmp_path)
