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
from tinyml.compiler.layers import Arg, Layer
from tinyml.compiler.planner import plan_memory
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
    # 8x8x8 + 8x8x8 activations live at once (the input is read in place, the output written in place)
    assert result.arena_bytes == 8 * 8 * 8 + 8 * 8 * 16
    assert result.engine_sources == ["tm_conv_2d.c", "tm_depthwise_conv_2d.c", "tm_fully_connected.c", "tm_mean.c"]


def test_arena_smaller_than_tflm(tiny_models, tmp_path):
    from tinyml.verify import measure_arena

    ours = compile_tflite(tiny_models["int8"], tmp_path / "c").arena_bytes
    theirs = measure_arena(Path(tiny_models["int8"]).read_bytes())
    assert ours <= 0.8 * theirs


def test_recompile_replaces_output(tiny_models, tmp_path):
    out = tmp_path / "c"
    out.mkdir()
    (out / "stale.txt").write_text("x")
    compile_tflite(tiny_models["int8"], out, target="cortex-m4")
    assert not (out / "stale.txt").exists()
    assert '#define TINYML_MODEL_TARGET            "cortex-m4"' in (out / "model.h").read_text()
    assert "l0_bias_folded" in (out / "model.c").read_text()


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
def test_engine_text_fits_15_kb(tmp_path):
    """Issue 5: all engine kernels together, Cortex-M4 at the firmware's -O2, at most 15 KB of .text."""
    total = 0
    for source in sorted(ENGINE.glob("*.c")):
        obj = tmp_path / (source.stem + ".o")
        subprocess.run([*ARM, "-ffunction-sections", f"-I{ENGINE}", str(source), "-o", str(obj)], check=True,
                       capture_output=True, text=True)
        sections = subprocess.run(["arm-none-eabi-size", "-A", str(obj)], check=True, capture_output=True,
                                  text=True).stdout
        total += sum(int(size) for size in re.findall(r"^\.text\S*\s+(\d+)", sections, re.M))
    print(f"engine .text {total} bytes")
    assert 0 < total <= 15 * 1024
