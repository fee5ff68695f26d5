"""Palettized weights: `tinyml palettize` (clustering in a still-valid .tflite) and
`tinyml compile --weights palette4|palette2` (packed indices + tables, decoded by
firmware/engine/tm_palette.c), byte-identical to tflite-micro on the palettized model."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_rules import assert_bad_input
from engine.model_harness import C_FLAGS, ENGINE_DIR, convert_keras, tflm_outputs
from tinyml.compiler import compile_tflite
from tinyml.errors import TinymlError
from tinyml.palettize import cluster_int8, palettize_tflite
from tinyml.tflite_graph import load_tflite


def random_model_builder(seed: int):
    """A random stack of CONV_2D / DEPTHWISE_CONV_2D layers (kernel, stride, padding,
    channels, depth multiplier) ending in FULLY_CONNECTED: every weight layout the
    kernels have (int8 filter, widened filter16 rows with and without padding, 3x3
    depthwise packed words, row16 FC)."""
    rng = np.random.default_rng(seed)
    height, width, channels = int(rng.integers(5, 10)), int(rng.integers(5, 10)), int(rng.integers(1, 6))

    def build():
        import tensorflow as tf

        layers = tf.keras.layers
        inp = tf.keras.Input((height, width, channels), batch_size=1)
        x = inp
        for _ in range(int(rng.integers(2, 5))):
            activation = str(rng.choice(["relu", "relu6", "linear"]))
            kernel = int(rng.choice([1, 2, 3]))
            stride = int(rng.choice([1, 1, 2]))
            if rng.random() < 0.4:
                x = layers.DepthwiseConv2D(3 if rng.random() < 0.7 else kernel, strides=stride, padding="same",
                                           depth_multiplier=int(rng.choice([1, 1, 2])), activation=activation)(x)
            else:
                x = layers.Conv2D(int(rng.integers(2, 12)), kernel, strides=stride, padding="same",
                                  activation=activation)(x)
        x = layers.Flatten()(x) if rng.random() < 0.5 else layers.GlobalAveragePooling2D()(x)
        return tf.keras.Model(inp, layers.Dense(int(rng.integers(2, 11)))(x))

    return build, (height, width, channels)


def palettized_model(seed: int, bits: int, granularity: str, tmp: Path) -> Path:
    build, shape = random_model_builder(seed)
    model = convert_keras(build, shape, seed=seed, low=-1.0, high=1.5, key=f"palette_random_{seed}")
    path = tmp / f"random{seed}_p{bits}{granularity[0]}.tflite"
    path.write_bytes(palettize_tflite(model, bits, granularity).model)
    return path


def engine_outputs(model: Path, target: str, weights: str, inputs: np.ndarray, out: Path,
                   defines: tuple[str, ...] = (), optimize: str = "speed") -> np.ndarray:
    """compile_tflite --weights + gcc -shared on the host; one invoke per input."""
    import ctypes

    result = compile_tflite(model, out, target=target, weights=weights, optimize=optimize)
    lib_path = out / "libmodel.so"
    subprocess.run(["gcc", *C_FLAGS, "-O1", "-shared", "-fPIC", *[f"-D{d}" for d in defines], f"-I{ENGINE_DIR}",
                    f"-I{out}", str(out / "model.c"), *(str(ENGINE_DIR / s) for s in result.engine_sources),
                    "-o", str(lib_path)], check=True, capture_output=True, text=True)
    lib = ctypes.CDLL(str(lib_path))
    graph = load_tflite(model)
    out_shape = graph.tensors[graph.outputs[0]].shape
    outputs = []
    for x in inputs:
        x = np.ascontiguousarray(x, np.int8)
        y = np.zeros(out_shape, np.int8)
        assert lib.tinyml_model_invoke(ctypes.c_void_p(x.ctypes.data), ctypes.c_void_p(y.ctypes.data)) == 0
        outputs.append(y)
    return np.stack(outputs)


def random_inputs(model: Path, count: int, seed: int) -> np.ndarray:
    graph = load_tflite(model)
    shape = graph.tensors[graph.inputs[0]].shape
    return np.random.default_rng(seed).integers(-128, 128, size=(count, *shape), dtype=np.int8)


# ---------------------------------------------------------------- clustering


def _brute_force_error(values: np.ndarray, clusters: int) -> float:
    """Least squared error over every split of the sorted distinct values into contiguous clusters."""
    distinct = np.unique(values)
    best = np.inf
    for cuts in itertools.combinations(range(1, distinct.size), min(clusters, distinct.size) - 1):
        edges = [0, *cuts, distinct.size]
        error = 0.0
        for a, b in zip(edges, edges[1:]):
            members = values[(values >= distinct[a]) & (values <= distinct[b - 1])].astype(np.float64)
            error += float(((members - members.mean()) ** 2).sum())
        best = min(best, error)
    return best


@pytest.mark.parametrize("seed", range(40))
def test_cluster_int8_is_optimal_and_order_preserving(seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(-128, 128, size=int(rng.integers(1, 40)), dtype=np.int64)
    values = np.unique(values)[:int(rng.integers(1, 9))]
    values = rng.choice(values, size=int(rng.integers(values.size, 30))).astype(np.int8)
    clusters = int(rng.choice([2, 3, 4]))
    clustered = cluster_int8(values, clusters)
    assert clustered.dtype == np.int8 and clustered.shape == values.shape
    assert np.unique(clustered).size <= clusters
    order = np.argsort(values, kind="stable")
    assert np.all(np.diff(clustered[order].astype(int)) >= 0)  # contiguous value ranges, in order
    # Each centre is its cluster's mean rounded, so the error is at most the optimum plus the rounding.
    error = float(((clustered.astype(np.float64) - values) ** 2).sum())
    assert error <= _brute_force_error(values, clusters) + 0.25 * values.size + 1e-9


def test_cluster_int8_keeps_few_values():
    values = np.array([-7, 3, 3, 100, -7], np.int8)
    assert np.array_equal(cluster_int8(values, 4), values)


@pytest.mark.parametrize("bits,granularity", [(4, "channel"), (4, "layer"), (2, "channel"), (2, "layer")])
def test_palettize_patches_only_weights(bits, granularity):
    original = convert_keras(*random_model_builder(1), seed=1, low=-1.0, high=1.5, key="palette_random_1")
    result = palettize_tflite(original, bits, granularity)
    before, after = load_tflite(original), load_tflite(result.model)
    assert len(result.model) == len(Path(original).read_bytes())
    weighted = {before.operators[layer.operator].inputs[1]: layer for layer in result.layers}
    assert {op.opcode for op in before.operators if op.inputs[1:2] and op.inputs[1] in weighted} <= \
        {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
    for t_before, t_after in zip(before.tensors, after.tensors):
        assert t_before.shape == t_after.shape and np.array_equal(t_before.scale, t_after.scale)
        if t_before.index not in weighted:
            assert (t_before.data is None and t_after.data is None) or np.array_equal(t_before.data, t_after.data)
            continue
        axis = 3 if weighted[t_before.index].op == "DEPTHWISE_CONV_2D" else 0
        groups = [t_after.data] if granularity == "layer" else list(np.moveaxis(t_after.data, axis, 0))
        assert max(np.unique(g).size for g in groups) <= 1 << bits


# ---------------------------------------------------------------- the engine vs tflite-micro


# (seed, bits, granularity): random shapes; generic, the scalar path (rv32) and the DSP
# data flow (cortex-m4 with TM_DSP_EMULATE: filter16 and 3x3 packed layouts; with
# --optimize size the int8 filter of the im2col path) on the host.
CASES = [(2, 4, "channel"), (3, 2, "layer"), (4, 2, "channel"), (5, 4, "layer"), (6, 4, "channel"),
         (7, 2, "channel")]
TARGETS = [("generic", (), "speed"), ("rv32", (), "speed"), ("cortex-m4", ("TM_DSP_EMULATE",), "speed"),
           ("cortex-m4", ("TM_DSP_EMULATE",), "size")]


@pytest.mark.parametrize("seed,bits,granularity", CASES)
def test_palettized_engine_matches_tflm_on_host(seed, bits, granularity, tmp_path):
    model = palettized_model(seed, bits, granularity, tmp_path)
    inputs = random_inputs(model, 5, seed)
    theirs = tflm_outputs(model, inputs)
    for target, defines, optimize in TARGETS:
        out = tmp_path / f"{target}-{optimize}"
        ours = engine_outputs(model, target, f"palette{bits}", inputs, out, defines, optimize)
        assert np.array_equal(ours.reshape(theirs.shape), theirs), (target, optimize, seed)
        info = json.loads((out / "compile.json").read_text())
        encoded = [layer for layer in info["layers"] if layer["encoding"] != "int8"]
        assert encoded and all(layer["packed_bytes"] > 0 and layer["table_bytes"] > 0 for layer in encoded)
        assert info["weights"] == f"palette{bits}" and "tm_palette.c" in info["engine_sources"]


# FULLY_CONNECTED stacks (input depth, then each layer's output depth and activation): with one
# table per layer the DSP builds look the weights up in the dot product (fc_lookup) where the rows
# start on whole index bytes: depths 16 (both), 6 (4 bits: one index byte read past the row),
# 12, channel counts not a multiple of four; 7 and 10 take the block decode (odd, and 2 mod 4 at
# 2 bits). Per-channel tables: the lookup at 2 bits (a channel at a time), the block decode at 4.
FC_STACKS = {"even": (16, [(12, "relu"), (6, "relu6"), (5, "linear")]),
             "odd": (7, [(10, "relu"), (9, "linear")])}


def fc_stack_model(name: str, bits: int, granularity: str, tmp: Path) -> Path:
    depth, layers_spec = FC_STACKS[name]

    def build():
        import tensorflow as tf

        inp = tf.keras.Input((depth,), batch_size=1)
        x = inp
        for units, activation in layers_spec:
            x = tf.keras.layers.Dense(units, activation=activation)(x)
        return tf.keras.Model(inp, x)

    model = convert_keras(build, (depth,), seed=depth, low=-1.0, high=1.5, key=f"palette_fc_{name}")
    path = tmp / f"fc_{name}_p{bits}{granularity[0]}.tflite"
    path.write_bytes(palettize_tflite(model, bits, granularity).model)
    return path


def fc_lookup_flags(out: Path) -> list[int]:
    return [int(v) for v in re.findall(r"\.fc_lookup = (\d+)", (out / "model.c").read_text())]


@pytest.mark.parametrize("name,bits,granularity", [("even", 4, "layer"), ("even", 2, "layer"), ("odd", 4, "layer"),
                                                   ("odd", 2, "layer"), ("even", 2, "channel"), ("even", 4, "channel")])
def test_palettized_fully_connected_matches_tflm_on_host(name, bits, granularity, tmp_path):
    model = fc_stack_model(name, bits, granularity, tmp_path)
    inputs = random_inputs(model, 24, bits)
    theirs = tflm_outputs(model, inputs)
    for target, defines, optimize in TARGETS[:3]:
        out = tmp_path / target
        ours = engine_outputs(model, target, f"palette{bits}", inputs, out, defines, optimize)
        assert np.array_equal(ours.reshape(theirs.shape), theirs), (target, name, bits, granularity)
    flags = fc_lookup_flags(tmp_path / "cortex-m4")
    depths = [FC_STACKS[name][0]] + [units for units, _ in FC_STACKS[name][1][:-1]]
    expected = [int((granularity == "layer" or bits == 2) and d % (8 // bits) == 0) for d in depths]
    assert flags == expected, (flags, expected)


# ---------------------------------------------------------------- conv layers in blocks of output channels


def block_conv_model_builder():
    """CONV_2D layers of every widened-patch flow: a first 3x3 conv of 3 input channels (rows padded to
    four taps), a 1x1 from 8 channels with the full int8 range (the kp-8 row kernel), a 2x2 stride-2
    conv with relu6 (a clamp) of 11 channels (an odd count), a 2x2 conv of 7; then FC."""
    def build():
        import tensorflow as tf

        layers = tf.keras.layers
        inp = tf.keras.Input((9, 8, 3), batch_size=1)
        x = layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
        x = layers.Conv2D(10, 1, activation="linear")(x)
        x = layers.Conv2D(11, 2, strides=2, padding="same", activation="relu6")(x)
        x = layers.Conv2D(7, 2, padding="valid", activation="linear")(x)
        return tf.keras.Model(inp, layers.Dense(5)(layers.Flatten()(x)))

    return build, (9, 8, 3)


def block_conv_model(bits: int, granularity: str, tmp: Path) -> Path:
    model = convert_keras(*block_conv_model_builder(), seed=21, low=-1.0, high=1.5, key="palette_block_conv")
    path = tmp / f"block_conv_p{bits}{granularity[0]}.tflite"
    path.write_bytes(palettize_tflite(model, bits, granularity).model)
    return path


def conv_chunks(out: Path) -> list[tuple[int, int]]:
    """(chunk, channels) of every CONV_2D that model.c runs in blocks (tm_palette_conv_2d_s8)."""
    text = (out / "model.c").read_text()
    blocked = {int(i) for i in re.findall(r"tm_palette_conv_2d_s8\(&l(\d+)_params", text)}
    structs = re.findall(r"tm_palette_t l(\d+)_palette = \{(.*?)\};", text, re.S)
    return [(int(re.search(r"\.chunk = (\d+)", body)[1]), int(re.search(r"\.channels = (\d+)", body)[1]))
            for i, body in structs if int(i) in blocked]


# Decoded-block bounds: one channel at a time (1); blocks of a few channels with a partial last block
# in every layer (300 B: 88, 32, 96 and 112 B per channel -> blocks of 3, 6, 3 and 2 channels).
BLOCK_BOUNDS = [1, 300]


@pytest.mark.parametrize("bound", BLOCK_BOUNDS)
@pytest.mark.parametrize("bits,granularity", [(4, "layer"), (2, "channel"), (4, "channel")])
def test_palettized_conv_in_channel_blocks_matches_tflm_on_host(bits, granularity, bound, tmp_path, monkeypatch):
    """tm_palette_conv_2d_s8: each block of filter16 channels decoded, then the widened conv over that
    channel range (every output pixel's part), on the host with the DSP data flow (TM_DSP_EMULATE)."""
    from tinyml.compiler import palette

    model = block_conv_model(bits, granularity, tmp_path)
    inputs = random_inputs(model, 6, bits)
    theirs = tflm_outputs(model, inputs)
    whole = compile_tflite(model, tmp_path / "whole", target="cortex-m4", weights=f"palette{bits}")
    monkeypatch.setattr(palette, "CONV_BLOCK_BYTES", bound)
    monkeypatch.setattr(palette, "CONV_BLOCKS_ALWAYS", True)
    out = tmp_path / "blocks"
    ours = engine_outputs(model, "cortex-m4", f"palette{bits}", inputs, out, ("TM_DSP_EMULATE",))
    assert np.array_equal(ours.reshape(theirs.shape), theirs)
    chunks = conv_chunks(out)
    assert len(chunks) == 4 and all(chunk < channels for chunk, channels in chunks)
    if bound == 1:
        assert all(chunk == 1 for chunk, _ in chunks)
    else:   # several blocks of several channels, the last one partial
        assert all(1 < chunk and channels % chunk for chunk, channels in chunks), chunks
    layers = json.loads((out / "compile.json").read_text())["layers"]
    decoded = {layer["index"]: layer["decoded_bytes"] for layer in layers}
    assert all(decoded[i] < whole_decoded for i, whole_decoded in
               ((layer.index, layer.decoded_bytes) for layer in whole.layers if layer.op == "CONV_2D"))


@pytest.mark.parametrize("seed,bits,granularity", [(4, 2, "layer"), (7, 4, "channel")])
def test_palettized_random_models_in_channel_blocks_match_tflm_on_host(seed, bits, granularity, tmp_path,
                                                                        monkeypatch):
    from tinyml.compiler import palette

    model = palettized_model(seed, bits, granularity, tmp_path)
    inputs = random_inputs(model, 5, seed)
    theirs = tflm_outputs(model, inputs)
    monkeypatch.setattr(palette, "CONV_BLOCK_BYTES", 100)
    monkeypatch.setattr(palette, "CONV_BLOCKS_ALWAYS", True)
    out = tmp_path / "blocks"
    ours = engine_outputs(model, "cortex-m4", f"palette{bits}", inputs, out, ("TM_DSP_EMULATE",))
    assert np.array_equal(ours.reshape(theirs.shape), theirs)
    assert conv_chunks(out)


def _big_conv_model():
    import tensorflow as tf

    inp = tf.keras.Input((4, 4, 32), batch_size=1)   # 64 x 592 B of filter16 against 1 KB of activations
    return tf.keras.Model(inp, tf.keras.layers.Conv2D(64, 3, padding="same", activation="relu")(inp))


@pytest.mark.parametrize("seed", [4, 5, 7])
def test_plan_takes_conv_blocks_only_where_the_arena_shrinks(seed, tmp_path, monkeypatch):
    """The memory plan runs a palettized conv in blocks where that makes the arena smaller: never larger
    than decoding every layer whole; a conv whose decoded filter16 dwarfs its activations takes the
    block size of the least arena."""
    from tinyml.compiler import palette

    model = convert_keras(_big_conv_model, (4, 4, 32), seed=3, key="palette_big_conv")
    big = tmp_path / "big.tflite"
    big.write_bytes(palettize_tflite(model, 4, "layer").model)
    for path, blocked in ((big, True), (palettized_model(seed, 4, "layer", tmp_path), None)):
        monkeypatch.setattr(palette, "CONV_BLOCK_BYTES", 1 << 40)
        whole = compile_tflite(path, tmp_path / "whole", target="cortex-m4", weights="palette4")
        monkeypatch.setattr(palette, "CONV_BLOCK_BYTES", 300 if blocked is None else 16384)
        chosen = compile_tflite(path, tmp_path / "chosen", target="cortex-m4", weights="palette4")
        assert chosen.arena_bytes <= whole.arena_bytes
        assert bool(conv_chunks(tmp_path / "chosen")) == (chosen.arena_bytes < whole.arena_bytes)
        if blocked:
            # blocks under 16, 8, 4 and 2 KB: 22, 13, 6 and 3 channels of 592 B; the least arena
            assert conv_chunks(tmp_path / "chosen") == [(3, 64)]
            assert chosen.arena_bytes == whole.arena_bytes - (64 - 3) * 592


def test_conv_blocks_are_balanced_and_bounded():
    from tinyml.compiler.palette import conv_block_channels

    assert conv_block_channels(64, 1168, 1 << 20) == 64                 # fits: one block, the whole layer
    assert conv_block_channels(64, 1168, 16384) == 14                   # 5 blocks of 14 (4 x 14 + 8)
    assert conv_block_channels(11, 100, 500) == 4                       # 3 blocks: 4, 4, 3 (even: 4)
    assert conv_block_channels(10, 100, 1) == 1                         # a channel larger than the bound
    for channels in range(1, 40):
        for channel_bytes in (4, 48, 100, 1168):
            for bound in (1, 100, 333, 1000, 16384):
                chunk = conv_block_channels(channels, channel_bytes, bound)
                assert 1 <= chunk <= channels
                assert chunk == 1 or chunk * channel_bytes <= bound
                fewest = -(-channels // max(1, bound // channel_bytes))
                assert -(-channels // chunk) == min(fewest, channels) or chunk == channels


def test_non_dsp_build_of_conv_blocks_is_refused(tmp_path, monkeypatch):
    """A blocked layer's scratch holds filter16 channels, not the whole int8 filter a non-DSP build of
    the same model.c would decode: that build stops at an #error naming the layer."""
    from tinyml.compiler import palette

    model = block_conv_model(4, "layer", tmp_path)
    monkeypatch.setattr(palette, "CONV_BLOCK_BYTES", 300)
    monkeypatch.setattr(palette, "CONV_BLOCKS_ALWAYS", True)
    compile_tflite(model, tmp_path / "out", target="cortex-m4", weights="palette4")
    build = subprocess.run(["gcc", *C_FLAGS, "-c", f"-I{ENGINE_DIR}", f"-I{tmp_path / 'out'}",
                            str(tmp_path / "out" / "model.c"), "-o", str(tmp_path / "model.o")],
                           capture_output=True, text=True)
    assert build.returncode != 0 and "needs the DSP build" in build.stderr


def test_palette_flash_is_below_int8(tmp_path):
    model = palettized_model(6, 4, "layer", tmp_path)
    for target in ("generic", "cortex-m4"):
        int8 = compile_tflite(model, tmp_path / f"{target}-int8", target=target)
        for weights in ("palette4",):
            packed = compile_tflite(model, tmp_path / f"{target}-{weights}", target=target, weights=weights)
            assert packed.weight_bytes < int8.weight_bytes
            assert packed.arena_bytes >= int8.arena_bytes  # the decoded weights live in the layer's scratch
    model2 = palettized_model(6, 2, "layer", tmp_path)
    four = compile_tflite(model2, tmp_path / "p4", target="cortex-m4", weights="palette4")
    two = compile_tflite(model2, tmp_path / "p2", target="cortex-m4", weights="palette2")
    assert sum(l.packed_bytes for l in two.layers) * 2 <= sum(l.packed_bytes for l in four.layers) + 4 * len(two.layers)


# ---------------------------------------------------------------- bad input


def tinyml(*args):
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_too_many_values_for_palette2_is_one_line_and_writes_nothing(tmp_path):
    model = palettized_model(2, 4, "channel", tmp_path)
    out = tmp_path / "out"
    error = assert_bad_input(tinyml("compile", model, "--out", out, "--weights", "palette2"), "palette2 holds at most 4")
    assert "distinct weights" in error and "tinyml palettize" in error
    assert not out.exists()
    with pytest.raises(TinymlError, match="palette2 holds at most 4"):
        compile_tflite(model, out, weights="palette2")
    assert not out.exists()


def test_unsupported_target_and_encoding_are_one_line(tmp_path):
    model = palettized_model(2, 4, "layer", tmp_path)
    out = tmp_path / "out"
    assert_bad_input(tinyml("compile", model, "--out", out, "--target", "micropython-py", "--weights", "palette4"),
                     "--weights palette4 is not supported for target micropython-py", only_line=True)
    assert_bad_input(tinyml("compile", model, "--out", out, "--weights", "palette3"), "palette3", only_line=True)
    assert not out.exists()
    with pytest.raises(TinymlError, match="unknown weight encoding 'palette8'"):
        compile_tflite(model, out, weights="palette8")


def test_model_without_weights_is_refused_for_palette(tmp_path):
    def build():
        import tensorflow as tf

        inp = tf.keras.Input((4, 4, 2), batch_size=1)
        return tf.keras.Model(inp, tf.keras.layers.MaxPooling2D()(inp))

    model = convert_keras(build, (4, 4, 2), key="palette_no_weights")
    with pytest.raises(TinymlError, match="no CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED weights"):
        compile_tflite(model, tmp_path / "out", weights="palette4")
    assert_bad_input(tinyml("palettize", model, "-o", tmp_path / "p.tflite"), "no int8 CONV_2D")
    assert not (tmp_path / "p.tflite").exists() and not (tmp_path / "out").exists()


def test_palettize_cli_reports_accuracy_beside_a_prepare_output(tmp_path):
    original = convert_keras(*random_model_builder(2), seed=2, low=-1.0, high=1.5, key="palette_random_2")
    folder = tmp_path / "prepared"
    folder.mkdir()
    (folder / "model.tflite").write_bytes(Path(original).read_bytes())
    inputs = random_inputs(original, 12, 0)[:, 0]  # test_vectors.npz: (N, *input_shape[1:])
    labels = tflm_outputs(original, inputs).reshape(12, -1).argmax(axis=1)
    np.savez(folder / "test_vectors.npz", inputs=inputs, labels=labels)
    run = tinyml("palettize", folder / "model.tflite", "--bits", "4", "-o", tmp_path / "p4.tflite")
    assert run.returncode == 0, run.stderr
    assert "host TFLite-Micro accuracy 100.00% ->" in run.stdout and "12 samples)" in run.stdout
    assert load_tflite(tmp_path / "p4.tflite").sha256 != load_tflite(original).sha256
    bad = tinyml("palettize", folder / "model.tflite", "--bits", "3", "-o", tmp_path / "p3.tflite")
    assert_bad_input(bad, "--bits", only_line=True)
    assert not (tmp_path / "p3.tflite").exists()
