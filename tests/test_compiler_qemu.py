"""The Cortex-M4 DSP path (SXTB16/SMLAD) bit-exact on an emulated Cortex-M4.

The generated model plus engine is linked with newlib's semihosting runtime
(rdimon) and a minimal vector table, run on QEMU's mps2-an386 (Cortex-M4F)
board, and its printed outputs are compared with tflite-micro's.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from engine.model_harness import assert_engine_matches_tflm, convert_keras, narrow_activations, tflm_outputs
from tinyml.compiler import compile_tflite
from tinyml.paths import firmware_dir

ENGINE = firmware_dir() / "engine"
FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-std=c99", "-Wall", "-Wextra",
         "-Werror", "-O2"]

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                       reason="needs arm-none-eabi-gcc and qemu-system-arm"),
]

_VECTORS = r"""
#include <stdint.h>
extern void _start(void);
static void reset(void)
{
#if !defined(__ARM_ARCH_6M__)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: enable the FPU before newlib runs */
#endif
    _start();
    for (;;) {
    }
}
static void fault(void)
{
    for (;;) {
    }
}
__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))0x20010000u, reset, fault, fault, fault, fault, fault, 0, 0, 0, 0, fault, fault, 0, fault, fault,
};
"""


def _odd_shapes_model():
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input((9, 9, 5), batch_size=1)
    x = layers.Conv2D(7, 3, strides=2, padding="same", activation="relu")(inp)   # im2col, K = 45, 25 pixels
    x = layers.Conv2D(5, 1)(x)                                                   # direct 1x1, odd channels
    x = layers.Conv2D(6, 2, dilation_rate=2, padding="valid")(x)                 # dilation, valid
    x = layers.Reshape((9, 6))(x)
    return tf.keras.Model(inp, layers.Dense(3)(x))                               # FC with 9 batches


def _depthwise_model():
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input((7, 6, 7), batch_size=1)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu")(inp)       # 4 + 3 tail channels, borders
    x = layers.DepthwiseConv2D(3, strides=2, padding="same")(x)                  # stride 2
    x = layers.Conv2D(8, 1, activation="relu6")(x)
    x = layers.DepthwiseConv2D(2, dilation_rate=2, padding="valid")(x)          # 8 channels, dilation
    x = layers.GlobalAveragePooling2D()(x)                                       # MEAN over H, W
    return tf.keras.Model(inp, layers.Dense(4)(x))


def _register_paths_model():
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input((9, 7, 1), batch_size=1)
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(inp)              # 1 channel: 3x3 ring, multiplier 4
    x = layers.Conv2D(8, 1)(x)                                                    # 1x1, kp 4
    x = layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2)(x)  # ring, stride 2, multiplier 2
    x = layers.Conv2D(5, 1, activation="relu")(layers.Conv2D(8, 1)(x))            # 1x1, kp 16 (2x2 block), kp 8
    x = layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inp, layers.Dense(3)(x))


def _clamped_model():
    """ReLU6 everywhere (narrow_activations then narrows the ranges)."""
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input((8, 9, 1), batch_size=1)
    x = layers.Conv2D(4, 3, padding="same", activation="relu6")(inp)                  # ring, multiplier 4, clamp
    x = layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu6")(x)   # ring, stride 2, clamp
    x = layers.Conv2D(16, 1, activation="relu6")(x)                                   # kp 4 block, clamp
    x = layers.Conv2D(6, 1, activation="relu6")(x)                                    # kp 16 block, clamp
    x = layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inp, layers.Dense(3)(x))


def _odd_tap_groups_model():
    """Widened-patch layers whose patch loops see every group count mod 8 (the assembly enters its
    eight-group loop by TBB on that residue): 3x3 over 3 channels (rows of 12 taps, kp 36: 9
    groups), 1x1 over 12, 20, 24, 28 and 32 (3, 5, 6, 7 and 8 groups, read in place), 3x3 over 8
    (rows of 24, kp 72: 18 groups; 4 groups: the register-kernel model's kp 16); rows of 5 pixels
    (pairs across rows, the 35th alone)."""
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input((7, 5, 3), batch_size=1)
    x = layers.Conv2D(12, 3, padding="same")(inp)
    for filters in (20, 24, 28, 32, 8):
        x = layers.Conv2D(filters, 1, activation="relu")(x)
    x = layers.Conv2D(6, 3, padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inp, layers.Dense(3)(x))


def _residual_model():
    """Two residual ADDs of 9x7x8 = 504 elements (the table path): one with ReLU, one whose
    output is clamped by ReLU6 (narrower than int8), and a plain one; tails of 504 % 4 = 0 and
    a 9x7x5 = 315-element ADD whose last 3 elements run the scalar tail."""
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input((9, 7, 8), batch_size=1)
    y = layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = layers.ReLU()(layers.Add()([inp, y]))
    y = layers.Conv2D(8, 1)(x)
    x = layers.ReLU(6.0)(layers.Add()([x, y]))
    x = layers.Add()([x, layers.Conv2D(8, 1)(x)])
    x = layers.Conv2D(5, 1)(x)
    x = layers.Add()([x, layers.Conv2D(5, 1)(x)])
    x = layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inp, layers.Dense(3)(x))


def _main_source(inputs: np.ndarray, output_bytes: int) -> str:
    rows = ",\n".join("    {" + ", ".join(str(int(v)) for v in x.reshape(-1)) + "}" for x in inputs)
    return f"""#include <stdint.h>
#include <stdio.h>
#include "model.h"

static const int8_t inputs[{len(inputs)}][TINYML_MODEL_INPUT_BYTES] = {{
{rows}
}};

int main(void)
{{
    static int8_t output[TINYML_MODEL_OUTPUT_BYTES];
    int n, i;
    for (n = 0; n < {len(inputs)}; ++n) {{
        if (tinyml_model_invoke(inputs[n], output) != 0) {{
            printf("invoke failed\\n");
            return 1;
        }}
        printf("out");
        for (i = 0; i < {output_bytes}; ++i) {{
            printf(" %d", (int)output[i]);
        }}
        printf("\\n");
    }}
    return 0;
}}
"""


# Cortex-M0 (armv6-m Thumb-1) code runs on mps2-an385's Cortex-M3, instruction for instruction.
M0_FLAGS = ["-mcpu=cortex-m0", "-mthumb", *FLAGS[4:]]


def run_compiled_on_m4(model, target: str, inputs: np.ndarray, out, optimize: str = "speed", weights: str = "int8"):
    """Compiles the model for target (cortex-m0: Thumb-1 code on mps2-an385's Cortex-M3, else the
    Cortex-M4F of mps2-an386), links model.c + its engine sources with a semihosting main that
    prints each input's output bytes, runs it in QEMU; returns those outputs and the compile result."""
    flags, machine = (M0_FLAGS, "mps2-an385") if target == "cortex-m0" else (FLAGS, "mps2-an386")
    result = compile_tflite(model, out, target=target, optimize=optimize, weights=weights)
    output_bytes = int(np.prod(tflm_outputs(model, inputs[:1]).shape[1:]))
    (out / "main.c").write_text(_main_source(inputs, output_bytes))
    (out / "vectors.c").write_text(_VECTORS)
    elf = out / "test.elf"
    sources = [out / "main.c", out / "vectors.c", out / "model.c", *(ENGINE / s for s in result.engine_sources)]
    subprocess.run(["arm-none-eabi-gcc", *flags, "--specs=rdimon.specs", f"-I{ENGINE}", f"-I{out}",
                    *map(str, sources), "-Wl,--section-start=.vectors=0x0", "-o", str(elf)],
                   check=True, capture_output=True, text=True)
    run = subprocess.run(["qemu-system-arm", "-M", machine, "-nographic", "-monitor", "none", "-serial", "none",
                          "-semihosting", "-kernel", str(elf)], capture_output=True, text=True, timeout=120)
    lines = [line.split()[1:] for line in run.stdout.splitlines() if line.startswith("out")]
    assert len(lines) == len(inputs), run.stdout + run.stderr
    return np.array(lines, dtype=np.int64).astype(np.int8), result


def _run_on_m4(model, target: str, inputs: np.ndarray, work, optimize: str = "speed") -> np.ndarray:
    return run_compiled_on_m4(model, target, inputs, work / f"{target}-{optimize}", optimize)[0]


@pytest.mark.parametrize("target", ["cortex-m4", "generic", "cortex-m0"])
def test_engine_on_cortex_m4_matches_tflm(target, tmp_path):
    model = convert_keras(_odd_shapes_model, (9, 9, 5), seed=7, low=-1.0, high=2.0, key="qemu_odd_shapes")
    inputs = np.random.default_rng(0).integers(-128, 128, size=(6, 1, 9, 9, 5), dtype=np.int8)
    ours = _run_on_m4(model, target, inputs, tmp_path)
    theirs = tflm_outputs(model, inputs).reshape(ours.shape)
    assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("target", ["cortex-m4", "generic", "cortex-m0"])
def test_depthwise_and_mean_on_cortex_m4_match_tflm(target, tmp_path):
    model = convert_keras(_depthwise_model, (7, 6, 7), seed=11, low=-1.5, high=1.0, key="qemu_depthwise")
    inputs = np.random.default_rng(1).integers(-128, 128, size=(6, 1, 7, 6, 7), dtype=np.int8)
    ours = _run_on_m4(model, target, inputs, tmp_path)
    theirs = tflm_outputs(model, inputs).reshape(ours.shape)
    assert np.array_equal(ours, theirs)
    if target == "cortex-m4":
        source = (tmp_path / f"{target}-speed" / "model.c").read_text()
        layers = json.loads((tmp_path / f"{target}-speed" / "compile.json").read_text())["layers"]
        assert layers[0]["path"] == "3x3 DSP", layers[0]   # the DSP depthwise path ran, on its packed words alone
        assert "l0_packed[" in source and "l0_filter[" not in source and "l0_bias_folded[" not in source
    if target == "cortex-m0":  # the 3x3 layers (stride 1 and 2) on the int32 plane, in Thumb-1
        layers = json.loads((tmp_path / f"{target}-speed" / "compile.json").read_text())["layers"]
        assert [layer["path"] for layer in layers[:2]] == ["3x3 scalar plane"] * 2, layers[:2]


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0"])
def test_residual_add_on_cortex_m4_matches_tflm(target, tmp_path):
    """tm_add's table path: four elements a word with SMMLAR on the Cortex-M4, the scalar
    record elsewhere; byte-exact with tflite-micro."""
    model = convert_keras(_residual_model, (9, 7, 8), seed=19, low=-1.0, high=1.0, key="qemu_residual")
    inputs = np.random.default_rng(5).integers(-128, 128, size=(6, 1, 9, 7, 8), dtype=np.int8)
    ours = _run_on_m4(model, target, inputs, tmp_path)
    assert np.array_equal(ours, tflm_outputs(model, inputs).reshape(ours.shape))
    source = (tmp_path / f"{target}-speed" / "model.c").read_text()
    assert source.count("_table1[256]") == 4, "every ADD takes the table path"


def test_odd_tap_groups_on_cortex_m4_match_tflm(tmp_path):
    """The widened-patch pair block and row widening in Thumb-2 for every group count mod 8 and
    odd and even row widths, and pixel pairs that span two output rows."""
    model = convert_keras(_odd_tap_groups_model, (7, 5, 3), seed=23, low=-1.0, high=1.0, key="qemu_group_residues")
    inputs = np.random.default_rng(6).integers(-128, 128, size=(6, 1, 7, 5, 3), dtype=np.int8)
    ours = _run_on_m4(model, "cortex-m4", inputs, tmp_path)
    assert np.array_equal(ours, tflm_outputs(model, inputs).reshape(ours.shape))
    layers = json.loads((tmp_path / "cortex-m4-speed" / "compile.json").read_text())["layers"]
    assert [layer["path"] for layer in layers[:7]] == ["widened patch"] * 7, layers[:7]


def test_register_kernels_on_cortex_m4_match_tflm(tmp_path):
    """The assembly row kernels: 3x3 ring (stride 1 and 2, depth multipliers, a one-channel
    convolution run as a depthwise one) and the kp 4 / kp 8 pixel loops."""
    model = convert_keras(_register_paths_model, (9, 7, 1), seed=13, low=-1.0, high=1.5, key="qemu_register_paths")
    inputs = np.random.default_rng(2).integers(-128, 128, size=(6, 1, 9, 7, 1), dtype=np.int8)
    ours = _run_on_m4(model, "cortex-m4", inputs, tmp_path)
    assert np.array_equal(ours, tflm_outputs(model, inputs).reshape(ours.shape))
    source = (tmp_path / "cortex-m4-speed" / "model.c").read_text()
    assert "tm_depthwise_conv_2d_s8(&l0_params" in source and "l0_packed" in source
    assert "l1_filter16" in source and "l2_packed" in source and "l4_filter16" in source


@pytest.mark.parametrize("target", ["host-dsp", "cortex-m4"])
def test_clamped_activations_match_tflm(target, tmp_path):
    """Fused ReLU6 narrower than int8 on the 3x3 ring and the widened-patch block (the assembly
    clamp kernels on the Cortex-M4, their C twins in DSP emulation on the host)."""
    model = narrow_activations(convert_keras(_clamped_model, (8, 9, 1), seed=17, low=-2.0, high=2.0,
                                             key="qemu_clamped"))
    inputs = np.random.default_rng(4).integers(-128, 128, size=(6, 1, 8, 9, 1), dtype=np.int8)
    if target == "host-dsp":
        engine = assert_engine_matches_tflm(model, count=6, seed=4, target="cortex-m4", defines=["TM_DSP_EMULATE"])
        source = (engine.out_dir / "model.c").read_text()
    else:
        ours = _run_on_m4(model, "cortex-m4", inputs, tmp_path)
        assert np.array_equal(ours, tflm_outputs(model, inputs).reshape(ours.shape))
        source = (tmp_path / "cortex-m4-speed" / "model.c").read_text()
    for layer in range(4):
        params = source.split(f"l{layer}_params = {{")[1].split("};")[0]
        assert ".act_min = -100," in params and ".act_max = 0," in params, layer
    assert "l0_packed" in source and "l1_packed" in source and "l2_filter16" in source and "l3_filter16" in source


def test_clamped_plane_on_cortex_m0_matches_tflm(tmp_path):
    """The same narrowed ReLU6 on the Cortex-M0's 3x3 plane (its Thumb-1 assembly clamps in
    tm_depthwise_conv_2d_3x3_scalar.c): a one-channel conv with multiplier 4 and a stride-2 depthwise."""
    model = narrow_activations(convert_keras(_clamped_model, (8, 9, 1), seed=17, low=-2.0, high=2.0,
                                             key="qemu_clamped"))
    inputs = np.random.default_rng(4).integers(-128, 128, size=(6, 1, 8, 9, 1), dtype=np.int8)
    ours = _run_on_m4(model, "cortex-m0", inputs, tmp_path)
    assert np.array_equal(ours, tflm_outputs(model, inputs).reshape(ours.shape))
    source = (tmp_path / "cortex-m0-speed" / "model.c").read_text()
    layers = json.loads((tmp_path / "cortex-m0-speed" / "compile.json").read_text())["layers"]
    assert [layer["path"] for layer in layers[:2]] == ["3x3 scalar plane"] * 2, layers[:2]
    for layer in range(2):
        params = source.split(f"l{layer}_params = {{")[1].split("};")[0]
        assert ".act_min = -100," in params and ".act_max = 0," in params, layer


def _plane_strides_model():
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input((9, 8, 3), batch_size=1)
    x = layers.DepthwiseConv2D(3, strides=(1, 2), padding="valid", depth_multiplier=2, activation="relu")(inp)
    x = layers.DepthwiseConv2D(3, strides=(2, 1), padding="same")(x)
    return tf.keras.Model(inp, x)


def test_plane_strides_on_cortex_m0_match_tflm(tmp_path):
    """The Cortex-M0's 3x3 plane assembly with unequal strides (its row and window steps), valid and
    same padding (the border written once a layer, the image part per channel), multiplier 2."""
    model = convert_keras(_plane_strides_model, (9, 8, 3), seed=23, low=-1.0, high=1.5, key="qemu_plane_strides")
    inputs = np.random.default_rng(6).integers(-128, 128, size=(4, 1, 9, 8, 3), dtype=np.int8)
    ours = _run_on_m4(model, "cortex-m0", inputs, tmp_path)
    assert np.array_equal(ours, tflm_outputs(model, inputs).reshape(ours.shape))
    layers = json.loads((tmp_path / "cortex-m0-speed" / "compile.json").read_text())["layers"]
    assert [layer["path"] for layer in layers] == ["3x3 scalar plane"] * 2, layers


def test_size_optimization_drops_widened_weights_and_stays_exact(tiny_models, tmp_path):
    """--optimize size: no int16-widened layouts (less flash), same bytes out on the Cortex-M4."""
    model = tiny_models["int8"]
    speed = compile_tflite(model, tmp_path / "speed", target="cortex-m4")
    size = compile_tflite(model, tmp_path / "size", target="cortex-m4", optimize="size")
    assert "filter16" in (tmp_path / "speed" / "model.c").read_text()
    assert "filter16" not in (tmp_path / "size" / "model.c").read_text()
    assert size.weight_bytes < speed.weight_bytes
    inputs = np.random.default_rng(3).integers(-128, 128, size=(4, 1, 8, 8, 1), dtype=np.int8)
    ours = _run_on_m4(model, "cortex-m4", inputs, tmp_path, optimize="size")
    assert np.array_equal(ours, tflm_outputs(model, inputs).reshape(ours.shape))
