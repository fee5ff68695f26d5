"""tinyml.compiler: outputs per docs/ARTIFACTS.md, bad input, memory plan, and
the generated C building warning-free for the host and for Cortex-M4."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import flatbuffers
import numpy as np
import pytest

from tinyml.compiler import compile_tflite, supported_ops
from tinyml.compiler.layers import Arg, Layer, lower_graph
from tinyml.compiler.planner import _LAGGED_OPS, _plan_memory, overlap_lag, plan_memory
from tinyml.errors import TinymlError
from tinyml.paths import firmware_dir
from tinyml.tflite_graph import Graph, Tensor, load_tflite

ENGINE = firmware_dir() / "engine"
ARM = ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16",
       "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-c"]


def _repack(raw: bytes, edit) -> bytes:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(raw, 0)
    edit(model, schema)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_outputs_follow_the_contract(tiny_models, tmp_path):
    out = tmp_path / "compiled"
    result = compile_tflite(tiny_models["int8"], out)
    assert sorted(p.name for p in out.iterdir()) == ["compile.json", "memory_plan.png", "model.c", "model.h"]
    assert (out / "memory_plan.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header = (out / "model.h").read_text()
    graph = load_tflite(tiny_models["int8"])
    for macro, value in [("SHA256", f'"{graph.sha256}"'), ("INPUT_BYTES", "64"), ("OUTPUT_BYTES", "10"),
                         ("INPUT_RANK", "4"), ("INPUT_DIMS", "{1, 8, 8, 1}"), ("OUTPUT_RANK", "2"),
                         ("OUTPUT_DIMS", "{1, 10}"), ("ARENA_BYTES", str(result.arena_bytes)),
                         ("NUM_LAYERS", "5")]:
        assert re.search(rf"#define TINYML_MODEL_{macro}\s+{re.escape(value)}\n", header), macro
    zp = int(graph.tensors[graph.inputs[0]].zero_point[0])
    assert re.search(rf"#define TINYML_MODEL_INPUT_ZERO_POINT\s+\(?{zp}\)?\n", header)
    assert "int tinyml_model_invoke(const int8_t *input, int8_t *output);" in header
    info = json.loads((out / "compile.json").read_text())
    assert info["arena_bytes"] == result.arena_bytes and info["target"] == "generic"
    assert [layer["op"] for layer in info["layers"]] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "MEAN",
                                                         "FULLY_CONNECTED"]
    assert info["macs"] == result.macs == 8 * 8 * 8 * 9 + 8 * 8 * 8 * 9 + 8 * 8 * 16 * 8 + 16 * 10
    weights = sum(t.data.nbytes for t in graph.tensors if t.data is not None and t.dtype != np.int32) \
        + sum(t.data.nbytes for t in graph.tensors if t.data is not None and t.dtype == np.int32 and t.shape != (2,))
    assert result.weight_bytes >= weights  # plus multipliers and shifts
    # An invariant of the planner, not a size target: 8x8x8 + 8x8x16 activations live at once (the
    # input is read in place, the output written in place), so only the lagged overlap of the last
    # conv's output with its dying input can bring the plan below their sum; this fails if it is lost.
    assert result.arena_bytes < 8 * 8 * 8 + 8 * 8 * 16
    # Each kernel's dispatcher and the algorithm files its #includes pull in.
    assert result.engine_sources == ["tm_conv_2d.c", "tm_conv_2d_generic.c", "tm_conv_2d_im2col.c",
                                     "tm_conv_2d_widened.c", "tm_depthwise_conv_2d.c", "tm_depthwise_conv_2d_3x3.c",
                                     "tm_depthwise_conv_2d_3x3_scalar.c", "tm_depthwise_conv_2d_dsp.c", "tm_depthwise_conv_2d_generic.c",
                                     "tm_depthwise_conv_2d_scalar.c", "tm_fully_connected.c",
                                     "tm_fully_connected_generic.c", "tm_fully_connected_row16.c", "tm_mean.c",
                                     "tm_support_dot_s8.c"]


def test_recompile_replaces_output(tiny_models, tmp_path):
    out = tmp_path / "c"
    out.mkdir()
    (out / "stale.txt").write_text("x")
    compile_tflite(tiny_models["int8"], out, target="cortex-m4")
    assert not (out / "stale.txt").exists()
    assert '#define TINYML_MODEL_TARGET            "cortex-m4"' in (out / "model.h").read_text()
    assert "l0_packed" in (out / "model.c").read_text()  # DSP data: the 3x3 ring's packed taps


@pytest.mark.parametrize("case", ["float", "corrupt", "not_tflite", "target"])
def test_bad_input_is_one_line_and_writes_nothing(case, tiny_models, tmp_path):
    model = {"float": tiny_models["float"], "target": tiny_models["int8"]}.get(case)
    if case == "corrupt":
        model = tmp_path / "corrupt.tflite"
        model.write_bytes(Path(tiny_models["int8"]).read_bytes()[:200])
    if case == "not_tflite":
        model = tmp_path / "x.tflite"
        model.write_bytes(b"\x00" * 300)
    out = tmp_path / "out"
    with pytest.raises(TinymlError) as info:
        compile_tflite(model, out, target="z80" if case == "target" else "generic")
    message = str(info.value)
    assert "\n" not in message
    assert {"float": "float model", "corrupt": "corrupt", "not_tflite": "not a TFLite model",
            "target": "unknown target 'z80'"}[case] in message
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_unsupported_op_names_op_and_index(tiny_models, tmp_path):
    def to_tanh(model, schema):
        code = model.operatorCodes[model.subgraphs[0].operators[3].opcodeIndex]
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.TANH

    path = tmp_path / "tanh.tflite"
    path.write_bytes(_repack(Path(tiny_models["int8"]).read_bytes(), to_tanh))
    with pytest.raises(TinymlError, match=r"^unsupported op 'TANH' at operator 3$"):
        compile_tflite(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option, value, message", [
    ("fusedActivationFunction", 4, "unsupported CONV_2D option fused_activation_function TANH at operator 0"),
    ("strideH", 2, "unsupported CONV_2D option output height 8 (padding SAME gives 4) at operator 0"),
])
def test_unsupported_option_names_op_and_option(option, value, message, tiny_models, tmp_path):
    def edit(model, schema):
        setattr(model.subgraphs[0].operators[0].builtinOptions, option, value)

    path = tmp_path / "bad.tflite"
    path.write_bytes(_repack(Path(tiny_models["int8"]).read_bytes(), edit))
    with pytest.raises(TinymlError) as info:
        compile_tflite(path, tmp_path / "out")
    assert str(info.value) == message


def test_supported_ops():
    assert set(supported_ops()) >= {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MAX_POOL_2D",
                                    "AVERAGE_POOL_2D", "MEAN", "RESHAPE", "SOFTMAX", "PAD", "CONCATENATION",
                                    "QUANTIZE", "DEQUANTIZE"}


def _tensor(index: int, nbytes: int) -> Tensor:
    return Tensor(index, f"t{index}", (1, nbytes), np.dtype(np.int8), np.ones(1, np.float32),
                  np.zeros(1, np.int64), 0)


def _layer(inputs, outputs, **kw) -> Layer:
    return Layer(0, "X", "k", "t", "h", "s", {}, [], inputs, outputs,
                 [Arg("tensor", t) for t in (*inputs, *outputs)], **kw)


def test_planner_reuses_dead_buffers_and_aliases():
    # t0 (input) -> A -> t1 (100) -> B -> t2 (50) -> reshape -> t3 -> C(t1 dead? no: t1 read by D) ...
    sizes = [16, 100, 50, 50, 100, 30]
    graph = Graph([_tensor(i, n) for i, n in enumerate(sizes)], [], [0], [5], "", 0, 3, "")
    layers = [
        _layer([0], [1]),                 # 0: t1 = f(input)
        _layer([1], [2], scratch_bytes=8),  # 1: t2 = g(t1), with scratch
        _layer([2], [3], alias=True),     # 2: t3 is t2 (reshape)
        _layer([3], [4]),                 # 3: t4 = h(t3); t1 is dead: t4 may take its place
        _layer([4, 3], [5]),              # 4: output = k(t4, t3)
    ]
    plan = plan_memory(graph, layers)
    assert plan.tensor_location(0) == ("input", 0)
    assert plan.tensor_location(5) == ("output", 0)
    assert plan.tensor_buffer[2] == plan.tensor_buffer[3]
    t1, t4 = plan.tensor_location(1)[1], plan.tensor_location(4)[1]
    t2 = plan.tensor_location(2)[1]
    assert t1 == t4  # same size, disjoint lifetimes: greedy puts both at offset 0
    assert t2 >= 100 and t2 % 4 == 0
    scratch = plan.scratch_location(1)
    assert not (scratch < t2 + 50 and t2 < scratch + 8) and not (scratch < t1 + 100 and t1 < scratch + 8)
    assert plan.arena_bytes == 100 + 52 + 8
    # in place: an elementwise op writes over its dying input
    layers_in_place = [_layer([0], [1]), _layer([1], [4], in_place=True), _layer([4], [5])]
    plan = plan_memory(graph, layers_in_place)
    assert plan.tensor_buffer[1] == plan.tensor_buffer[4]
    assert plan.arena_bytes == 100


def _compile_all(out: Path, flags: list[str]) -> list[Path]:
    info = json.loads((out / "compile.json").read_text())
    objects = []
    for source in [out / "model.c", *(ENGINE / name for name in info["engine_sources"])]:
        obj = out / (source.stem + ".o")
        subprocess.run([*flags, f"-I{ENGINE}", f"-I{out}", str(source), "-o", str(obj)], check=True,
                       capture_output=True, text=True)
        objects.append(obj)
    return objects


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("target", ["generic", "cortex-m4"])
def test_generated_code_builds_for_cortex_m4(target, tiny_models, tmp_path):
    out = tmp_path / target
    compile_tflite(tiny_models["int8"], out, target=target)
    objects = _compile_all(out, ARM)
    _compile_all(out, [*ARM, "-DTINYML_PROFILE"])
    size = subprocess.run(["arm-none-eabi-size", *map(str, objects)], check=True, capture_output=True, text=True)
    assert "model.o" in size.stdout


def test_profile_hooks_and_layer_names(tiny_models, tmp_path):
    import ctypes

    out = tmp_path / "p"
    compile_tflite(tiny_models["int8"], out, profile=True)
    info = json.loads((out / "compile.json").read_text())
    (out / "hooks.c").write_text(
        "int tm_test_events[64]; int tm_test_count;\n"
        "void tinyml_profile_layer_begin(int layer) { tm_test_events[tm_test_count++ & 63] = layer; }\n"
        "void tinyml_profile_layer_end(int layer) { tm_test_events[tm_test_count++ & 63] = 100 + layer; }\n")
    lib = out / "lib.so"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-shared", "-fPIC", "-DTINYML_PROFILE",
                    f"-I{ENGINE}", f"-I{out}", str(out / "model.c"), str(out / "hooks.c"),
                    *(str(ENGINE / s) for s in info["engine_sources"]), "-o", str(lib)], check=True)
    so = ctypes.CDLL(str(lib))
    so.tinyml_model_layer_name.restype = ctypes.c_char_p
    names = [so.tinyml_model_layer_name(i).decode() for i in range(-1, 6)]
    assert names == ["", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED", ""]
    x = np.zeros(64, np.int8)
    y = np.zeros(10, np.int8)
    assert so.tinyml_model_invoke(x.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p)) == 0
    count = ctypes.c_int.in_dll(so, "tm_test_count").value
    events = list((ctypes.c_int * 64).in_dll(so, "tm_test_events"))[:count]
    assert events == [e for i in range(5) for e in (i, 100 + i)]


def _one_op_engine_matches_tflm(model: bytes, tmp_path: Path, rng: np.random.Generator) -> None:
    """Compile a one-op model, run it on the host through ctypes and compare with tflite-micro."""
    import ctypes

    from engine.kernel_harness import run_tflm

    path = tmp_path / "op.tflite"
    path.write_bytes(model)
    out = tmp_path / "c"
    result = compile_tflite(path, out)
    lib = out / "lib.so"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-shared", "-fPIC", f"-I{ENGINE}",
                    f"-I{out}", str(out / "model.c"), *(str(ENGINE / s) for s in result.engine_sources),
                    "-o", str(lib)], check=True, capture_output=True, text=True)
    so = ctypes.CDLL(str(lib))
    graph = load_tflite(path)
    t_in, t_out = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    for _ in range(3):
        x = rng.integers(-128, 128, size=t_in.shape, dtype=np.int8)
        y = np.zeros(t_out.shape, np.int8)
        assert so.tinyml_model_invoke(x.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p)) == 0
        np.testing.assert_array_equal(y, run_tflm(model, [x])[0])


def test_pad_with_other_output_quantization_compiles_and_matches_tflm(tmp_path):
    from engine.kernel_harness import TensorSpec, one_op_model, options

    pads = np.array([[0, 0], [1, 2], [0, 1], [0, 0]], dtype=np.int32)
    model = one_op_model("PAD", [TensorSpec((1, 3, 4, 2), 0.05, -7), TensorSpec((4, 2), dtype="INT32", data=pads)],
                         [TensorSpec((1, 6, 5, 2), 0.11, 12)], options("Pad"))
    _one_op_engine_matches_tflm(model, tmp_path, np.random.default_rng(3))


def test_concatenation_with_other_input_quantization_is_refused(tmp_path):
    from engine.kernel_harness import TensorSpec, one_op_model, options

    # The engine takes one model input: the second operand is a constant.
    const = np.arange(8, dtype=np.int8).reshape(1, 2, 4)
    model = one_op_model("CONCATENATION", [TensorSpec((1, 2, 3), 0.1, 0), TensorSpec((1, 2, 4), 0.2, 0, data=const)],
                         [TensorSpec((1, 2, 7), 0.1, 0)], options("Concatenation", axis=2))
    path = tmp_path / "concat.tflite"
    path.write_bytes(model)
    with pytest.raises(TinymlError, match=r"^unsupported CONCATENATION option input 1 quantization differs "
                                          r"from the output's at operator 0$"):
        compile_tflite(path, tmp_path / "out")
    same = one_op_model("CONCATENATION", [TensorSpec((1, 2, 3), 0.1, 4), TensorSpec((1, 2, 4), 0.1, 4, data=const)],
                        [TensorSpec((1, 2, 7), 0.1, 4)], options("Concatenation", axis=-1))
    _one_op_engine_matches_tflm(same, tmp_path, np.random.default_rng(4))


def test_mean_axes_through_quant_helper(tmp_path):
    from engine.kernel_harness import TensorSpec, one_op_model, options

    axes = np.array([1, -2], dtype=np.int32)
    model = one_op_model("MEAN", [TensorSpec((1, 5, 3, 6), 0.07, -3), TensorSpec((2,), dtype="INT32", data=axes)],
                         [TensorSpec((1, 1, 1, 6), 0.05, 2)], options("Reducer", keepDims=True))
    _one_op_engine_matches_tflm(model, tmp_path, np.random.default_rng(5))
    bad = one_op_model("MEAN", [TensorSpec((1, 5, 3, 6), 0.07, -3),
                                TensorSpec((1,), dtype="INT32", data=np.array([7], np.int32))],
                       [TensorSpec((1, 6), 0.05, 2)], options("Reducer", keepDims=False))
    path = tmp_path / "bad_mean.tflite"
    path.write_bytes(bad)
    with pytest.raises(TinymlError, match=r"^unsupported MEAN option axis \[7\]"):
        compile_tflite(path, tmp_path / "out2")


@pytest.mark.skipif(shutil.which("arm-none-eabi-size") is None, reason="arm-none-eabi-gcc not installed")
def test_engine_text_fits_16_kb(tmp_path):
    """Issue 16: all engine kernels together, Cortex-M4 at the firmware's -O2, at most 16 KB of .text
    (an invariant of the engine, as its flash budget on the smallest boards; bench_engine.py prints
    the figure per target)."""
    total = 0
    # linked only by `--weights palette*` models, bounded on its own: 2,514 B before its conv block loop
    # (tm_palette_conv_2d_s8, 82 B: the arena of a decoded conv bounded by a block), 2,596 B with it
    optional = {"tm_palette.c": 2624}
    for source in sorted(ENGINE.glob("*.c")):
        obj = tmp_path / (source.stem + ".o")
        subprocess.run([*ARM, "-ffunction-sections", f"-I{ENGINE}", str(source), "-o", str(obj)], check=True,
                       capture_output=True, text=True)
        sections = subprocess.run(["arm-none-eabi-size", "-A", str(obj)], check=True, capture_output=True,
                                  text=True).stdout
        text = sum(int(size) for size in re.findall(r"^\.text\S*\s+(\d+)", sections, re.M))
        if text == 0:   # an algorithm for cores without DSP (tm_depthwise_conv_2d_scalar.c) must have code there
            m0 = [arg.replace("cortex-m4", "cortex-m0") for arg in ARM if "float" not in arg and "fpu" not in arg]
            subprocess.run([*m0, f"-I{ENGINE}", str(source), "-o", str(obj)], check=True, capture_output=True)
            sections = subprocess.run(["arm-none-eabi-size", "-A", str(obj)], check=True, capture_output=True,
                                      text=True).stdout
            assert re.search(r"^\.text\S*\s+[1-9]", sections, re.M), f"{source.name} compiled to no code"
        if source.name in optional:
            assert text <= optional[source.name], source.name
            continue
        total += text
    print(f"engine .text {total} bytes")
    assert 0 < total <= 16 * 1024


def _grouped_conv_model():
    import tensorflow as tf

    inp = tf.keras.Input((6, 6, 4), batch_size=1)
    x = tf.keras.layers.Conv2D(8, 3, groups=2, padding="same", activation="relu")(inp)
    x = tf.keras.layers.Conv2D(8, 1)(x)
    return tf.keras.Model(inp, x)


def test_compile_names_each_layers_path_and_why_it_runs_generic(tmp_path):
    """No layer falls to the generic C silently: compile.json's path/fallback per layer, and one
    line per fallback in `tinyml compile` (a grouped conv has no DSP path; the 1x1 after it has)."""
    from click.testing import CliRunner

    from engine.model_harness import convert_keras
    from tinyml.cli import cli

    model = convert_keras(_grouped_conv_model, (6, 6, 4), seed=3, key="grouped_conv_paths")
    out = tmp_path / "compiled"
    result = CliRunner().invoke(cli, ["compile", str(model), "--out", str(out), "--target", "cortex-m4"])
    assert result.exit_code == 0, result.output
    layers = json.loads((out / "compile.json").read_text())["layers"]
    assert layers[0]["path"] == "generic" and "grouped convolution (2 groups)" in layers[0]["fallback"]
    assert layers[1]["path"].startswith("widened patch") and layers[1]["fallback"] is None
    assert "layer 0 CONV_2D: generic path (grouped convolution (2 groups))" in result.output
    assert "layer 1" not in result.output
    generic = compile_tflite(model, tmp_path / "generic", target="generic")
    assert all(layer.fallback is None for layer in generic.layers)  # the reference target falls back from nothing


# ---------------------------------------------------------------- lagged overlap (planner)

def _resnet_block_model():
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input((12, 12, 3), batch_size=1)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(inp)
    y = layers.Conv2D(16, 3, padding="same", activation="relu")(x)          # reads x, which lives on
    y = layers.Conv2D(16, 3, padding="same")(y)                             # its input dies here
    x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inp, layers.Dense(5)(x))


def _lag_shapes_model():
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input((17, 15, 3), batch_size=1)
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = layers.Conv2D(8, 2, dilation_rate=2, padding="valid")(x)                # dilation, valid
    x = layers.Conv2D(12, 3, strides=2, padding="same", activation="relu")(x)   # stride 2, same, 8 -> 12
    x = layers.DepthwiseConv2D(3, padding="valid", activation="relu")(x)        # valid
    x = layers.Conv2D(16, 1, activation="relu")(x)                              # direct 1x1, widening
    x = layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2)(x)  # generic depthwise
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)         # 3x3 interior/border
    x = layers.MaxPooling2D(2, strides=1, padding="same")(x)
    x = layers.AveragePooling2D(2, strides=1, padding="valid")(x)
    x = layers.Flatten()(x)
    return tf.keras.Model(inp, layers.Dense(6)(x))


def _models():
    from engine.model_harness import convert_keras

    return {
        "resnet_block": convert_keras(_resnet_block_model, (12, 12, 3), seed=3, key="planner_resnet_block"),
        "lag_shapes": convert_keras(_lag_shapes_model, (17, 15, 3), seed=5, key="planner_lag_shapes"),
    }


def _inputs(model, count: int) -> np.ndarray:
    graph = load_tflite(model)
    shape = graph.tensors[graph.inputs[0]].shape
    return np.random.default_rng(3).integers(-128, 128, size=(count, *shape), dtype=np.int8)


def _all_lags(graph, layers) -> dict[int, int]:
    lags = {i: overlap_lag(graph, layer) for i, layer in enumerate(layers) if not layer.alias}
    return {i: lag for i, lag in lags.items() if lag is not None}


def _check_overlaps(graph, layers, plan) -> int:
    """Every overlap is legal: arena buffers only, input dead after the layer, never the model I/O."""
    count = 0
    for buffer in plan.buffers:
        if buffer.overlaps is None:
            continue
        count += 1
        src = plan.buffers[buffer.overlaps]
        layer = layers[buffer.first]
        assert layer.opcode in _LAGGED_OPS
        assert plan.tensor_buffer[layer.inputs[0]] == src.id and plan.tensor_buffer[layer.outputs[0]] == buffer.id
        assert src.storage == buffer.storage == "arena" and src.last == buffer.first
        assert buffer.offset == src.offset - buffer.lag and buffer.lag % 4 == 0 and buffer.offset % 4 == 0
        # no later layer reads any tensor stored in src
        assert all(t not in later.inputs for later in layers[buffer.first + 1:] for t in src.tensors)
    # nothing else collides with any buffer while both are live
    arena = [b for b in plan.buffers if b.storage == "arena"]
    for a in arena:
        for b in arena:
            if a.id < b.id and a.first <= b.last and b.first <= a.last and b.overlaps != a.id and a.overlaps != b.id:
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (a, b)
    return count


@pytest.mark.parametrize("target", ["generic", "cortex-m4"])
def test_resnet_block_overlaps_and_matches_tflm(target, tmp_path):
    from engine.model_harness import assert_engine_matches_tflm

    model = _models()["resnet_block"]
    graph = load_tflite(model)
    layers = lower_graph(graph, target)
    plain = plan_memory(graph, layers, overlap=False)
    plan = plan_memory(graph, layers)
    assert plan.arena_bytes < plain.arena_bytes
    assert _check_overlaps(graph, layers, plan) >= 1
    # x (the skip) is read by conv1 and by the ADD: conv1's output never overlaps it
    conv1 = layers[1]
    assert plan.buffers[plan.tensor_buffer[conv1.outputs[0]]].overlaps is None
    # conv2 (input dies there) writes over conv1's output
    conv2 = layers[2]
    assert plan.buffers[plan.tensor_buffer[conv2.outputs[0]]].overlaps == plan.tensor_buffer[conv2.inputs[0]]
    defines = ["TM_DSP_EMULATE"] if target == "cortex-m4" else []
    engine = assert_engine_matches_tflm(model, count=8, seed=1, target=target, defines=defines)
    assert engine.compile_info["arena_bytes"] == plan.arena_bytes
    assert any(b["overlaps"] is not None for b in engine.compile_info["memory_plan"])


def _compile_forced(monkeypatch):
    """compile_tflite with every legal lagged overlap applied (not only the ones that pay off)."""
    import tinyml.compiler.compile as compile_module

    monkeypatch.setattr(compile_module, "plan_memory", lambda g, ls: _plan_memory(g, ls, _all_lags(g, ls)))


@pytest.mark.parametrize("name", ["resnet_block", "lag_shapes"])
@pytest.mark.parametrize("target", ["generic", "cortex-m4"])
def test_forced_overlaps_match_tflm(name, target, monkeypatch):
    from engine.model_harness import assert_engine_matches_tflm, tflm_outputs

    model = _models()[name]
    graph = load_tflite(model)
    layers = lower_graph(graph, target)
    plan = _plan_memory(graph, layers, _all_lags(graph, layers))
    count = _check_overlaps(graph, layers, plan)
    overlapped = {layers[b.first].opcode for b in plan.buffers if b.overlaps is not None}
    if name == "lag_shapes":
        assert count >= 8 and overlapped == set(_LAGGED_OPS)
    assert np.unique(tflm_outputs(model, _inputs(model, 4))).size > 8  # outputs depend on every layer
    _compile_forced(monkeypatch)
    defines = ["TM_TEST_FORCED_OVERLAP"] + (["TM_DSP_EMULATE"] if target == "cortex-m4" else [])
    engine = assert_engine_matches_tflm(model, count=8, seed=2, target=target, defines=defines)
    assert engine.compile_info["arena_bytes"] == plan.arena_bytes


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("name", ["resnet_block", "lag_shapes"])
@pytest.mark.parametrize("forced", [False, True])
def test_overlaps_on_cortex_m4_match_tflm(name, forced, monkeypatch, tmp_path):
    from engine.model_harness import tflm_outputs
    from test_compiler_qemu import _run_on_m4

    model = _models()[name]
    if forced:
        _compile_forced(monkeypatch)
    inputs = _inputs(model, 4)
    ours = _run_on_m4(model, "cortex-m4", inputs, tmp_path)
    info = json.loads((tmp_path / "cortex-m4-speed" / "compile.json").read_text())
    assert any(b["overlaps"] is not None for b in info["memory_plan"])
    theirs = tflm_outputs(model, inputs).reshape(ours.shape)
    assert np.array_equal(ours, theirs)


def test_overlap_lag_follows_the_kernel_order():
    # 1x1 conv 8 -> 16 channels on 4x4: pair (p, p+1) writes up to 16 (p + 2) while pixel p reads from 8 p
    graph = Graph([Tensor(0, "a", (1, 4, 4, 8), np.dtype(np.int8), np.ones(1, np.float32), np.zeros(1, np.int64), 0),
                   Tensor(1, "b", (1, 4, 4, 16), np.dtype(np.int8), np.ones(1, np.float32), np.zeros(1, np.int64), 0)],
                  [], [0], [1], "", 0, 3, "")
    fields = dict(batches=1, input_h=4, input_w=4, input_c=8, filter_h=1, filter_w=1, stride_h=1, stride_w=1,
                  dilation_h=1, dilation_w=1, pad_h=0, pad_w=0)
    layer = Layer(0, "CONV_2D", "k", "t", "h", "s", fields, [], [0], [1], [])
    assert overlap_lag(graph, layer) == max(16 * (p + 2) - 8 * p for p in range(0, 16, 2))
    # narrowing 1x1 (16 -> 8 would be) and identity-width: a pair needs 2 pixels of slack
    fields.update(input_c=16)
    graph.tensors[0] = Tensor(0, "a", (1, 4, 4, 16), np.dtype(np.int8), np.ones(1, np.float32),
                              np.zeros(1, np.int64), 0)
    assert overlap_lag(graph, layer) == 32
    # 3x3 'same': pixel p's window starts one row and one column before it
    fields.update(filter_h=3, filter_w=3, pad_h=1, pad_w=1)
    assert overlap_lag(graph, layer) == 32 + (4 + 1) * 16
    # not a windowed op: no overlap
    assert overlap_lag(graph, Layer(0, "ADD", "k", "t", "h", "s", fields, [], [0], [1], [])) is None


def test_tensor_read_later_is_never_overlapped():
    # t1 = conv(input); t2 = conv(t1); t3 = conv(t2); out = add(t3, t1): t1 lives on, so t2 must not overlap it,
    # while t3 may overlap t2 (t2 dies at its conv)
    shape = (1, 6, 6, 8)
    tensors = [Tensor(i, f"t{i}", shape, np.dtype(np.int8), np.ones(1, np.float32), np.zeros(1, np.int64), 0)
               for i in range(5)]
    graph = Graph(tensors, [], [0], [4], "", 0, 3, "")
    fields = dict(batches=1, input_h=6, input_w=6, input_c=8, filter_h=3, filter_w=3, stride_h=1, stride_w=1,
                  dilation_h=1, dilation_w=1, pad_h=1, pad_w=1)

    def conv(src, dst):
        return Layer(0, "CONV_2D", "k", "t", "h", "s", dict(fields), [], [src], [dst],
                     [Arg("tensor", src), Arg("tensor", dst)])

    layers = [conv(0, 1), conv(1, 2), conv(2, 3), _layer([3, 1], [4])]
    plan = plan_memory(graph, layers)
    buf = {t: plan.buffers[plan.tensor_buffer[t]] for t in range(5)}
    assert buf[2].overlaps is None
    assert buf[3].overlaps == buf[2].id
    assert plan.arena_bytes < plan_memory(graph, layers, overlap=False).arena_bytes
    t1 = buf[1]
    for b in (buf[2], buf[3]):
        assert t1.offset + t1.size <= b.offset or b.offset + b.size <= t1.offset
    # the model input and output are never overlapped
    assert buf[1].overlaps is None and buf[4].storage == "output" and buf[4].overlaps is None
    assert _check_overlaps(graph, layers, plan) == 1


@pytest.mark.parametrize("optimize", ["speed", "size"])
def test_flash_and_demo_compile_with_the_chosen_trade(optimize, tiny_models, tmp_path):
    """`tinyml flash/demo --optimize`: a prepare output is compiled for the board's target with it."""
    from tinyml.boards import load_board
    from tinyml.demo import ensure_compiled

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copy(tiny_models["int8"], model_dir / "model.tflite")
    compiled = ensure_compiled(model_dir, load_board("stm32f405"), optimize=optimize)
    source = (compiled / "model.c").read_text()
    assert '"cortex-m4"' in (compiled / "model.h").read_text()
    assert ("filter16" in source) == (optimize == "speed")
