"""Figures of the interpreter-free engine (issue 5), printed, never asserted.

    nice python3 benchmarks/bench_engine.py --quick          # tiny 8x8 CNN + digits student
    nice python3 benchmarks/bench_engine.py                  # + MLPerf Tiny-shaped models
    nice python3 benchmarks/bench_engine.py --models tiny,dscnn --model-dir OUT   # + a `tinyml prepare` output

Each model (Keras, random but fixed weights, int8 by TFLiteConverter on random
representative data) is compiled for `cortex-m4` (and `generic` for
comparison), built into the firmware for the emulated STM32F405
(`build_firmware`), booted in QEMU netduinoplus2 with `-icount shift=0` and
benched with `run_bench` over a few samples: instructions per inference come
from the board's SysTick (inputs larger than a frame, such as VWW's 96x96x3,
travel as LOAD frames). `--runner semihost` runs the same model.c + engine
linked with newlib's semihosting for QEMU mps2-an386 (also a Cortex-M4, also
`-icount shift=0`), inputs built in, SysTick read around each layer; `--layers`
prints that per-layer profile for every model.

The four trained MLPerf Tiny int8 reference models (`--mlperf-dir`, default
the shared models folder; see its README) run beside the synthetic ones:
`nice python3 benchmarks/bench_engine.py --models mlperf` runs only them, at
least 20 random int8 inputs each (`--real-samples`), on the semihost runner
with a per-layer table (instructions, instr/MAC and the kernel algorithm the
compiler chose, or why it fell back to the generic path).

Columns: MACs, instructions per inference (median), instructions per MAC, our
arena vs TFLite-Micro's: `tflm64` is what the pip tflite-micro (a 64-bit host
build) allocates, `tflm32` the same allocation with its pointer-holding records
at their 32-bit sizes (tflm_arena_32bit); code bytes = `.text` of the engine
objects the model uses + model.c's `.text` (weights, params and arena
excluded), agreement with host tflite-micro (byte-identical outputs).
TFLM + CMSIS-NN figures are not measured here: they are quoted (QUOTED_TFLM,
with their source and method) and printed as such.
Results go to benchmarks/results/engine.{json,md}, with the commit and machine facts.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "benchmarks" / "results"
M4_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
# As firmware/CMakeLists.txt builds the engine and model.c.
FIRMWARE_CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-ffunction-sections", "-fdata-sections"]
# The firmware protocol's largest payload (firmware/PROTOCOL.md): an answer carries 12 header bytes + outputs.
MAX_FIRMWARE_OUTPUT = 4096 - 12

# TFLite-Micro figures this project does not measure (TFLM's C++ sources are not built in CI):
# quoted from the issues that set the engine's targets, with how their authors measured them.
QUOTED_TFLM = {
    "issue 5": {
        "source": "issue 5 (the engine's brief), measured outside this project's CI",
        "method": "TFLM release build for Cortex-M4, the same emulator (QEMU, instructions counted)",
        "tflm_reference_instructions_per_mac": [7, 16],
        "tflm_cmsis_nn_instructions_per_mac": [2.2, 3.2],
        "digits_8x8_17.6k_macs": {"tflm_reference_instructions": 700_000, "tflm_cmsis_nn_instructions": 216_000,
                                  "tflm_arena_bytes": 3092},
    },
    "issue 16": {
        "source": "issue 16 (engine speed on real trained models), measured outside this project's CI",
        "method": "QEMU netduinoplus2 -icount shift=0, instructions per inference on one fixed input, TFLite-Micro "
                  "built from source for Cortex-M4F in the same session; engine at main 8d1b776 "
                  "(tinyml compile --target cortex-m4)",
        "models": {
            "mlperf-resnet8": {"macs": 12.50e6, "engine_instructions": 13.39e6, "tflm_cmsis_nn_instructions": 29.86e6,
                               "tflm_reference_instructions": 107.4e6, "tflm_cmsis_nn_arena_bytes": 54_996},
            "mlperf-dscnn": {"macs": 2.66e6, "engine_instructions": 3.70e6, "tflm_cmsis_nn_instructions": 7.70e6,
                             "tflm_reference_instructions": 43.0e6, "tflm_cmsis_nn_arena_bytes": 22_820},
            "mlperf-vww": {"macs": 7.49e6, "engine_instructions": 39.46e6, "tflm_cmsis_nn_instructions": 24.10e6,
                           "tflm_reference_instructions": 100.3e6, "tflm_cmsis_nn_arena_bytes": 100_708},
            "mlperf-ad": {"macs": 0.26e6, "engine_instructions": 0.61e6, "tflm_cmsis_nn_instructions": 0.58e6,
                          "tflm_reference_instructions": 1.95e6, "tflm_cmsis_nn_arena_bytes": 2_580},
            # The demo's digits student (0.30 M MACs), not this benchmark's 0.62 M-MAC "digits" model.
            "demo-digits-student": {"macs": 0.30e6, "engine_instructions": 0.54e6, "tflm_cmsis_nn_instructions": 1.31e6,
                       "tflm_reference_instructions": 5.55e6, "tflm_cmsis_nn_arena_bytes": 9_924},
        },
    },
}
TARGETS = {"arena_vs_tflm32": 0.7, "engine_text_bytes": 16 * 1024,
           "instructions_per_mac_m4": {"mlperf-resnet8": 1.0, "mlperf-dscnn": 1.2, "mlperf-vww": 1.3, "mlperf-ad": 1.5},
           "tiny_instructions": 50_000}

# The trained MLPerf Tiny int8 reference models (mlcommons/tiny), by file name in --mlperf-dir.
REAL_MODELS = {
    "mlperf-resnet8": "pretrainedResnet_quant.tflite",
    "mlperf-dscnn": "kws_ref_model.tflite",
    "mlperf-vww": "vww_96_int8.tflite",
    "mlperf-ad": "ad01_int8.tflite",
}


def default_mlperf_dir() -> Path:
    """$TINYML_MLPERF_DIR, else shared/models/mlperf-tiny beside the checkout (or beside its parent)."""
    if os.environ.get("TINYML_MLPERF_DIR"):
        return Path(os.environ["TINYML_MLPERF_DIR"])
    for base in (ROOT.parent, ROOT.parent.parent):
        candidate = base / "shared" / "models" / "mlperf-tiny"
        if candidate.is_dir():
            return candidate
    return ROOT.parent / "shared" / "models" / "mlperf-tiny"


# ---------------------------------------------------------------- models


def _tiny():
    from tinyml.testing.keras_models import tiny_keras_model  # the 8x8 CNN of the tests (17,568 MACs)

    return tiny_keras_model()


def _digits():
    """A fixed synthetic CNN shaped like the student family on 8x8 digits (conv, four depthwise-separable
    blocks, mean, dense: 620 K MACs, 24 K params; the family's w6.00-d4 when it was written), random
    weights: the reference whose instructions per MAC tinyml.budgets uses to estimate latency. The
    trained student itself is benched from a `tinyml prepare` output (--model-dir); building this
    one through the PyTorch -> ONNX path instead would change the reference every stored figure
    and the budgets' constants rest on."""
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input((8, 8, 1), batch_size=1)
    x = layers.Conv2D(48, 3, padding="same", activation="relu")(inp)
    for stride, channels in ((1, 48), (1, 48), (2, 96), (1, 96)):
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", activation="relu")(x)
        x = layers.Conv2D(channels, 1, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inp, layers.Dense(10)(x))


def _resnet8():
    """MLPerf Tiny image classification: ResNet-8 on 32x32x3 (BN folded away)."""
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input((32, 32, 3), batch_size=1)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(inp)
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        y = layers.Conv2D(filters, 3, strides=stride, padding="same", activation="relu")(x)
        y = layers.Conv2D(filters, 3, padding="same")(y)
        if stride != 1:
            x = layers.Conv2D(filters, 1, strides=stride)(x)
        x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.Flatten()(layers.AveragePooling2D(8)(x))
    return tf.keras.Model(inp, layers.Softmax()(layers.Dense(10)(x)))


def _dscnn():
    """MLPerf Tiny keyword spotting: DS-CNN (49x10x1 MFCC, 64 channels)."""
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input((49, 10, 1), batch_size=1)
    x = layers.Conv2D(64, (10, 4), strides=2, padding="same", activation="relu")(inp)
    for _ in range(4):
        x = layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
        x = layers.Conv2D(64, 1, activation="relu")(x)
    x = layers.Flatten()(layers.AveragePooling2D((25, 5))(x))
    return tf.keras.Model(inp, layers.Softmax()(layers.Dense(12)(x)))


def _vww():
    """MLPerf Tiny visual wake words: MobileNetV1 alpha 0.25 on 96x96x3."""
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input((96, 96, 3), batch_size=1)
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(inp)
    plan = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2)] + [(128, 1)] * 5 + [(256, 2), (256, 1)]
    for channels, stride in plan:
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", activation="relu6")(x)
        x = layers.Conv2D(channels, 1, activation="relu6")(x)
    x = layers.Flatten()(layers.AveragePooling2D(3)(x))
    # No softmax: with random weights the logits' scale is so small that TFLite's softmax
    # input multiplier falls below 1, which TFLM (and the compiler) refuse.
    return tf.keras.Model(inp, layers.Dense(2)(x))


def _autoencoder():
    """MLPerf Tiny anomaly detection: FC autoencoder 640 -> 128x4 -> 8 -> 128x4 -> 640."""
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input((640,), batch_size=1)
    x = inp
    for units in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        x = layers.Dense(units, activation="relu")(x)
    return tf.keras.Model(inp, layers.Dense(640)(x))


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable
    input_shape: tuple[int, ...]
    low: float = 0.0
    high: float = 1.0


MODELS = {
    "tiny": ModelSpec("tiny", _tiny, (8, 8, 1)),
    "digits": ModelSpec("digits", _digits, (8, 8, 1)),
    "resnet8": ModelSpec("resnet8", _resnet8, (32, 32, 3)),
    "dscnn": ModelSpec("dscnn", _dscnn, (49, 10, 1), -1.0, 1.0),
    "vww": ModelSpec("vww", _vww, (96, 96, 3)),
    "autoencoder": ModelSpec("autoencoder", _autoencoder, (640,), -1.0, 1.0),
}
QUICK = ("tiny", "digits")


def convert(spec: ModelSpec, path: Path, seed: int = 0) -> Path:
    """Full-int8 .tflite of the Keras model (fixed seed: the same model every run)."""
    import tensorflow as tf

    from tinyml.tf_convert import keras_to_int8

    tf.keras.utils.set_random_seed(seed)
    model = spec.build()
    rng = np.random.default_rng(seed)
    samples = [[rng.uniform(spec.low, spec.high, size=(1, *spec.input_shape)).astype(np.float32)] for _ in range(16)]
    with contextlib.redirect_stdout(io.StringIO()):  # the converter's "Saved artifact ..." listing
        path.write_bytes(keras_to_int8(model, samples))
    return path


# ---------------------------------------------------------------- measurements


@dataclass
class Row:
    model: str
    target: str
    runner: str
    macs: int
    instructions: float
    instructions_per_mac: float
    arena_bytes: int
    tflm_arena_bytes: int               # pip tflite-micro, 64-bit host build
    arena_ratio: float                  # ours / tflm_arena_bytes_32bit
    code_bytes: int
    model_text_bytes: int
    agreement: float
    samples: int
    layers: list[dict] = field(default_factory=list)
    tflm_arena_bytes_32bit: int = 0     # the same allocation with 32-bit pointer-holding records
    kind: str = "synthetic"             # "synthetic" (random weights) or "trained" (MLPerf Tiny reference, a prepare output)
    constants_bytes: int = 0            # every const array of the compile (compile.json weight_bytes): the model's flash
    image_flash_bytes: int = 0          # .text + .data of the target's board firmware with this model (0: no board built)
    image_board: str = ""               # the board IMAGE_BOARDS builds that image for


def tflm_arena_32bit(model: bytes) -> tuple[int, int, str]:
    """(TFLM arena on this 64-bit host, the same allocation on a 32-bit MCU, how): tinyml.tflm_arena,
    the pointer-holding structs counted at their sizeof() on arm-none-eabi-g++."""
    from tinyml.tflm_arena import measure_arena_figures

    figures = measure_arena_figures(model)
    return figures.total_64, figures.total_32, f"pointer-holding structs at 32-bit sizes: -{figures.pointer_savings} B"


# (compiler, size tool, core flags) per compile target, as the boards' firmware builds use them.
TOOLCHAINS = {
    "rv32": ("riscv64-unknown-elf-gcc", "riscv64-unknown-elf-size",
             ["-march=rv32imc", "-misa-spec=2.2", "-mabi=ilp32", "--specs=picolibc.specs"]),
    "cortex-m0": ("arm-none-eabi-gcc", "arm-none-eabi-size", ["-mcpu=cortex-m0", "-mthumb"]),
}
ARM_M4 = ("arm-none-eabi-gcc", "arm-none-eabi-size", M4_FLAGS)


def _text_bytes(obj: Path, size_tool: str = "arm-none-eabi-size") -> int:
    """Sum of the .text* sections of an object (code only: no .rodata, .data, .bss)."""
    out = subprocess.run([size_tool, "-A", str(obj)], capture_output=True, text=True, check=True).stdout
    return sum(int(size) for size in re.findall(r"^\.text\S*\s+(\d+)", out, re.M))


def code_bytes(compiled: Path, engine_dir: Path, work: Path, target: str = "cortex-m4") -> tuple[int, int]:
    """(.text of the engine objects model.c calls + model.c's .text, model.c's .text) at firmware flags."""
    info = json.loads((compiled / "compile.json").read_text())
    work.mkdir(parents=True, exist_ok=True)
    gcc, size_tool, core = TOOLCHAINS.get(target, ARM_M4)
    total = model_text = 0
    for source in [compiled / "model.c", *(engine_dir / s for s in info["engine_sources"])]:
        obj = work / f"{source.stem}.o"
        subprocess.run([gcc, *core, *FIRMWARE_CFLAGS, "-c", f"-I{engine_dir}", f"-I{compiled}",
                        str(source), "-o", str(obj)], check=True, capture_output=True, text=True)
        text = _text_bytes(obj, size_tool)
        total += text
        if source.name == "model.c":
            model_text = text
    return total, model_text


# Linked only by models compiled with `--weights palette*`: bounded on its own (tests/test_compiler.py),
# printed apart from the kernels' 16 KB.
OPTIONAL_SOURCES = ("tm_palette.c",)


def engine_text_bytes(engine_dir: Path, work: Path, target: str = "cortex-m4", optional: bool = False) -> dict[str, int]:
    """.text of every engine kernel object for a target's core at the firmware's flags
    (optional: of the OPTIONAL_SOURCES instead)."""
    sizes = {}
    work.mkdir(parents=True, exist_ok=True)
    gcc, size_tool, core = TOOLCHAINS.get(target, ARM_M4)
    for source in sorted(engine_dir.glob("*.c")):
        if (source.name in OPTIONAL_SOURCES) != optional:
            continue
        obj = work / f"{source.stem}.o"
        subprocess.run([gcc, *core, *FIRMWARE_CFLAGS, "-c", f"-I{engine_dir}", str(source),
                        "-o", str(obj)], check=True, capture_output=True, text=True)
        sizes[source.name] = _text_bytes(obj, size_tool)
    return sizes


# The emulated board each target's firmware runs on (instructions counted by QEMU -icount).
FIRMWARE_BOARDS = {"rv32": "rv32_virt"}


# The board whose firmware image measures a target's flash (the protocol firmware `tinyml flash` builds).
IMAGE_BOARDS = {"cortex-m4": "stm32f405", "rv32": "rv32_virt", "cortex-m0": "mps2_an385_m0"}


def image_flash(compiled: Path, work: Path, engine_dir: Path, target: str) -> tuple[int, str]:
    """(.text + .data of the firmware image for the target's board with this compiled model, the board);
    (0, "") for a target without one."""
    from tinyml.boards import load_board
    from tinyml.host.build import build_firmware

    board_name = IMAGE_BOARDS.get(target)
    if board_name is None:
        return 0, ""
    from tinyml.errors import TinymlError

    try:
        image = build_firmware(load_board(board_name), compiled, work / "image", engine_dir=engine_dir)
    except TinymlError as exc:  # e.g. a model larger than the board's flash: the row still has its other figures
        print(f"no {board_name} image: {exc}", flush=True)
        return 0, ""
    return image.flash_bytes, board_name


def run_firmware(compiled: Path, model_dir: Path, work: Path, samples: int, engine_dir: Path,
                 board_name: str = "stm32f405") -> tuple[list[float], float]:
    """Instructions per inference and agreement on an emulated board (the firmware, run_bench)."""
    from tinyml.boards import load_board
    from tinyml.host.build import build_firmware
    from tinyml.host.session import BoardSession

    board = load_board(board_name)
    image = build_firmware(board, compiled, work / "build", engine_dir=engine_dir)
    with BoardSession.boot(board, image) as session:
        result = session.bench(model_dir, work / "bench", samples=samples, progress=False)
    log = [json.loads(line) for line in result.log.read_text().splitlines()[1:]]
    return [float(r["latency"]) for r in log], float(result.report["agreement"])


_VECTORS = r"""
#include <stdint.h>
extern void _start(void);
volatile uint32_t tm_bench_wraps;
static void reset(void)
{
#if !defined(__ARM_ARCH_6M__)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: FPU on before newlib runs */
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
static void systick(void) { tm_bench_wraps++; }
__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))0x20010000u, reset, fault, fault, fault, fault, fault, 0, 0, 0, 0, fault, fault, 0, fault, systick,
};
"""

_MAIN = r"""
#include <stdint.h>
#include <stdio.h>
#include "model.h"
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define ICSR (*(volatile uint32_t *)0xE000ED04u)
#define RELOAD 0x00FFFFFFu
extern volatile uint32_t tm_bench_wraps;
static const int8_t inputs[COUNT][TINYML_MODEL_INPUT_BYTES] = { INPUTS };
static int8_t output[TINYML_MODEL_OUTPUT_BYTES];
static uint64_t layer_ticks[TINYML_MODEL_NUM_LAYERS + 1], layer_start;

static uint64_t now(void)
{
    uint32_t wraps, value, pending;
    do {
        wraps = tm_bench_wraps;
        value = SYST_CVR;
        pending = ICSR & (1u << 26);
    } while (wraps != tm_bench_wraps);
    if (pending && value > RELOAD / 2u) {
        wraps++;
    }
    return (uint64_t)wraps * (RELOAD + 1u) + (RELOAD - value);
}
void tinyml_profile_layer_begin(int layer) { (void)layer; layer_start = now(); }
void tinyml_profile_layer_end(int layer) { layer_ticks[layer] = now() - layer_start; }

/* 2 instructions per iteration: calibrates SysTick ticks against instructions. */
#if defined(__ARM_ARCH_6M__) /* gcc writes Thumb-1 in divided syntax: SUB Rd, #imm sets the flags */
static void spin(uint32_t n) { __asm__ volatile("1: sub %0, #1\n bne 1b" : "+l"(n) : : "cc"); }
#else
static void spin(uint32_t n) { __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n) : : "cc"); }
#endif

int main(void)
{
    uint64_t t0;
    int n, i;
    SYST_RVR = RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 7u;
    spin(100u); /* the first ticks reload the counter */
    t0 = now();
    spin(1000000u);
    printf("calibrate %llu\n", (unsigned long long)(now() - t0));
    for (n = 0; n < COUNT; ++n) {
        uint64_t start = now(), total;
        if (tinyml_model_invoke(inputs[n], output) != 0) {
            printf("invoke failed\n");
            return 1;
        }
        total = now() - start;
        printf("out %llu", (unsigned long long)total);
        for (i = 0; i < TINYML_MODEL_OUTPUT_BYTES; ++i) {
            printf(" %d", (int)output[i]);
        }
        printf("\nlayers");
        for (i = 0; i < TINYML_MODEL_NUM_LAYERS; ++i) {
            printf(" %llu", (unsigned long long)layer_ticks[i]);
        }
        printf("\n");
    }
    return 0;
}
"""


# Semihost machines per target: (QEMU machine, core flags). Cortex-M0 code (armv6-m Thumb-1) runs on
# mps2-an385's Cortex-M3, which executes it instruction for instruction (-icount counts the same).
SEMIHOST_MACHINES = {"cortex-m0": ("mps2-an385", ["-mcpu=cortex-m0", "-mthumb"])}


def run_semihost(compiled: Path, inputs: np.ndarray, expected: np.ndarray, work: Path,
                 engine_dir: Path, target: str = "cortex-m4") -> tuple[list[float], float, list[list[float]]]:
    """Instructions per inference (and per layer) and agreement on QEMU mps2-an386 (Cortex-M4), or the
    target's SEMIHOST_MACHINES entry."""
    machine, core = SEMIHOST_MACHINES.get(target, ("mps2-an386", M4_FLAGS))
    work.mkdir(parents=True, exist_ok=True)
    rows = ",\n".join("{" + ", ".join(str(int(v)) for v in x.reshape(-1)) + "}" for x in inputs)
    (work / "main.c").write_text(_MAIN.replace("COUNT", str(len(inputs))).replace("INPUTS", rows))
    (work / "vectors.c").write_text(_VECTORS)
    info = json.loads((compiled / "compile.json").read_text())
    elf = work / "bench.elf"
    sources = [work / "main.c", work / "vectors.c", compiled / "model.c", *(engine_dir / s for s in info["engine_sources"])]
    # No --gc-sections: the default linker script does not KEEP the vector table.
    subprocess.run(["arm-none-eabi-gcc", *core, *FIRMWARE_CFLAGS, "-DTINYML_PROFILE", "--specs=rdimon.specs",
                    f"-I{engine_dir}", f"-I{compiled}", *map(str, sources), "-Wl,--section-start=.vectors=0x0",
                    "-o", str(elf)], check=True, capture_output=True, text=True)
    run = subprocess.run(["qemu-system-arm", "-M", machine, "-icount", "shift=0", "-nographic", "-monitor", "none",
                          "-serial", "none", "-semihosting", "-kernel", str(elf)],
                         capture_output=True, text=True, timeout=1800)
    lines = run.stdout.splitlines()
    calibration = [int(line.split()[1]) for line in lines if line.startswith("calibrate")]
    outs = [line.split()[1:] for line in lines if line.startswith("out ")]
    layer_lines = [line.split()[1:] for line in lines if line.startswith("layers")]
    if not calibration or len(outs) != len(inputs):
        raise RuntimeError(f"semihost run failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    per_tick = 2_000_000 / calibration[0]
    totals = [int(o[0]) * per_tick for o in outs]
    got = np.array([o[1:] for o in outs], dtype=np.int64).astype(np.int8)
    agree = float(np.mean(np.all(got.reshape(len(inputs), -1) == expected.reshape(len(inputs), -1), axis=1)))
    layers = [[int(v) * per_tick for v in line] for line in layer_lines]
    return totals, agree, layers


def measure(name: str, tflite: Path, target: str, runner: str, work: Path, samples: int,
            engine_dir: Path, model_dir: Path | None, profile: bool, optimize: str = "speed") -> Row:
    from tinyml.compiler import compile_tflite
    from tinyml.artifacts import emit_artifacts
    from tinyml.verify import run_tflm

    compiled = work / f"{name}-{target}" / "compiled"
    result = compile_tflite(tflite, compiled, target=target, optimize=optimize)
    code, model_text = code_bytes(compiled, engine_dir, work / f"{name}-{target}" / "obj", target)
    flash, flash_board = image_flash(compiled, work / f"{name}-{target}", engine_dir, target)
    tflm_arena, tflm_arena32, _ = tflm_arena_32bit(tflite.read_bytes())
    if model_dir is None:
        model_dir = work / name / "model_dir"
    if not (model_dir / "test_vectors.npz").is_file():
        from tinyml.tflite_graph import load_tflite

        graph = load_tflite(tflite)
        shape = graph.tensors[graph.inputs[0]].shape
        rng = np.random.default_rng(1)
        inputs = rng.integers(-128, 128, size=(samples, *shape[1:]), dtype=np.int8)
        emit_artifacts(tflite, model_dir, test_inputs=inputs, test_labels=np.zeros(samples, np.int64))
    vectors = np.load(model_dir / "test_vectors.npz")
    samples = min(samples, len(vectors["inputs"]))
    layers: list[list[float]] = []
    if target in FIRMWARE_BOARDS:
        runner = "firmware"
    if target in SEMIHOST_MACHINES:
        runner = "semihost"
    if runner == "firmware":
        latencies, agreement = run_firmware(compiled, model_dir, work / f"{name}-{target}", samples, engine_dir,
                                            FIRMWARE_BOARDS.get(target, "stm32f405"))
    else:
        inputs = vectors["inputs"][:samples]
        expected = run_tflm(tflite.read_bytes(), inputs) if "outputs" not in vectors else vectors["outputs"][:samples]
        latencies, agreement, layers = run_semihost(compiled, inputs, expected, work / f"{name}-{target}" / "semi",
                                                    engine_dir, target)
    if profile and runner == "firmware" and target not in FIRMWARE_BOARDS:
        inputs = vectors["inputs"][:1]
        _, _, layers = run_semihost(compiled, inputs, vectors["outputs"][:1], work / f"{name}-{target}" / "semi",
                                    engine_dir)
    instructions = float(np.median(latencies))
    layer_rows = []
    if layers:
        per_layer = np.median(np.array(layers), axis=0)
        for info, count in zip(result.layers, per_layer):
            layer_rows.append({"op": info.op, "macs": info.macs, "instructions": float(count),
                               "output_shape": info.output_shape, "path": getattr(info, "path", ""),
                               "fallback": getattr(info, "fallback", None)})
    return Row(name, target, runner, result.macs, instructions, instructions / max(result.macs, 1),
               result.arena_bytes, tflm_arena, result.arena_bytes / tflm_arena32, code, model_text, agreement,
               samples, layer_rows, tflm_arena32, "trained" if name in REAL_MODELS or name == "prepared" else "synthetic",
               result.weight_bytes, flash, flash_board)


# ---------------------------------------------------------------- report


def format_table(rows: list[Row]) -> str:
    head = ("| model | weights | target | runner | inputs | MACs | instructions | instr/MAC | arena ours / TFLM 32-bit "
            "(64-bit host) | ratio | code bytes | constants | image flash | byte-exact |\n"
            "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
    body = "".join(
        f"| {r.model} | {r.kind} | {r.target} | {r.runner} | {r.samples} | {r.macs:,} | {r.instructions / 1e6:.3f} M | "
        f"{r.instructions_per_mac:.2f} | {r.arena_bytes:,} / {r.tflm_arena_bytes_32bit:,} ({r.tflm_arena_bytes:,}) | "
        f"{r.arena_ratio:.2f} | {r.code_bytes:,} | {r.constants_bytes:,} | "
        f"{f'{r.image_flash_bytes:,} ({r.image_board})' if r.image_flash_bytes else '–'} | {r.agreement:.3f} |\n"
        for r in rows)
    return head + body


def format_layers(row: Row) -> str:
    lines = [f"{row.model} ({row.target}) per layer:",
             f"  {'#':>2} {'op':<20} {'output':<18} {'MACs':>10}      {'instructions':>12}       {'instr/MAC':>9}  path"]
    for i, layer in enumerate(row.layers):
        per_mac = f"{layer['instructions'] / layer['macs']:.2f}" if layer["macs"] else ""
        path = layer.get("path") or ""
        if layer.get("fallback"):
            path += f" ({layer['fallback']})"
        lines.append(f"  {i:2d} {layer['op']:<20} {str(layer['output_shape']):<18} {layer['macs']:>10,} MACs "
                     f"{layer['instructions']:>12,.0f} instr {per_mac:>9}  {path}")
    return "\n".join(lines)


def format_quoted(rows: list[Row]) -> str:
    """The issue-16 TFLM figures (quoted, not measured here) beside ours, per model both ran."""
    quoted = QUOTED_TFLM["issue 16"]
    lines = ["| model | MACs | engine before (quoted, 8d1b776) | engine now (measured here) | "
             "TFLM + CMSIS-NN (quoted) | TFLM reference (quoted) | now vs CMSIS-NN | arena ours / TFLM+CMSIS-NN (quoted) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        q = quoted["models"].get(r.model)
        if q is None or r.target != "cortex-m4":
            continue
        lines.append(f"| {r.model} | {r.macs / 1e6:.2f} M | {q['engine_instructions'] / 1e6:.2f} M "
                     f"({q['engine_instructions'] / r.macs:.2f}/MAC) | {r.instructions / 1e6:.2f} M "
                     f"({r.instructions_per_mac:.2f}/MAC) | {q['tflm_cmsis_nn_instructions'] / 1e6:.2f} M "
                     f"({q['tflm_cmsis_nn_instructions'] / r.macs:.2f}/MAC) | {q['tflm_reference_instructions'] / 1e6:.1f} M | "
                     f"{q['tflm_cmsis_nn_instructions'] / r.instructions:.2f}x fewer | "
                     f"{r.arena_bytes:,} / {q['tflm_cmsis_nn_arena_bytes']:,} |")
    return ("\n".join(lines) + f"\n\nQuoted figures: {quoted['source']}; method: {quoted['method']}.\n")


def machine_facts(engine_dir: Path) -> dict:
    """The commit and the machine a result comes from."""
    import platform

    def run(command: list[str]) -> str:
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=ROOT)
            return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else ""
        except (OSError, subprocess.TimeoutExpired):
            return ""

    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    import tinyml

    return {"commit": run(["git", "rev-parse", "HEAD"]), "tinyml_package": str(Path(tinyml.__file__).parent),
            "worktree_dirty": bool(run(["git", "status", "--porcelain", "--untracked-files=no"])),
            "engine_dir": str(engine_dir), "machine": platform.machine(), "system": platform.platform(),
            "cpu": cpu, "cpus": os.cpu_count(), "python": platform.python_version(),
            "qemu": run(["qemu-system-arm", "--version"]), "arm_gcc": run(["arm-none-eabi-gcc", "--version"]),
            "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the tiny CNN and the digits student only")
    parser.add_argument("--models", help=f"comma-separated subset of {','.join([*MODELS, *REAL_MODELS])}; "
                                         "'synthetic' and 'mlperf' name the two groups")
    parser.add_argument("--model-dir", type=Path, help="also bench a `tinyml prepare` output (model.tflite, test vectors)")
    parser.add_argument("--mlperf-dir", type=Path, help="the MLPerf Tiny reference models (default: shared models)")
    parser.add_argument("--targets", default="cortex-m4,generic")
    parser.add_argument("--samples", type=int, default=3, help="inputs per synthetic model")
    parser.add_argument("--real-samples", type=int, default=20, help="inputs per trained MLPerf Tiny model")
    parser.add_argument("--runner", choices=["auto", "firmware", "semihost"], default="auto",
                        help="auto: the firmware unless the output exceeds one answer frame; trained models: semihost")
    parser.add_argument("--layers", action="store_true", help="also measure and print per-layer instructions")
    parser.add_argument("--engine-dir", type=Path, help="kernel sources (default firmware/engine)")
    parser.add_argument("--optimize", choices=["speed", "size"], default="speed",
                        help="the compiler's trade: size leaves out int16-widened weight layouts")
    parser.add_argument("--tag", default="", help="suffix of the result files (engine<tag>.json/.md)")
    args = parser.parse_args()

    from tinyml.errors import TinymlError
    from tinyml.host.build import default_engine_dir
    from tinyml.tflite_graph import load_tflite

    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        raise SystemExit("needs arm-none-eabi-gcc and qemu-system-arm")
    names = list(QUICK) if args.quick else [*MODELS, *REAL_MODELS]
    if args.models:
        names = []
        for item in (n.strip() for n in args.models.split(",") if n.strip()):
            names += list(MODELS) if item == "synthetic" else list(REAL_MODELS) if item == "mlperf" else [item]
        unknown = [n for n in names if n not in MODELS and n not in REAL_MODELS]
        if unknown:
            raise SystemExit(f"unknown models {unknown} (choose from {', '.join([*MODELS, *REAL_MODELS])})")
    mlperf_dir = (args.mlperf_dir or default_mlperf_dir()).resolve()
    engine_dir = (args.engine_dir or default_engine_dir()).resolve()
    work = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    os.environ.setdefault("TINYML_STATE_DIR", str(work / "state"))
    models: list[tuple[str, Path, Path | None]] = []
    for name in names:
        if name in REAL_MODELS:
            path = mlperf_dir / REAL_MODELS[name]
            if not path.is_file():
                raise SystemExit(f"{path} not found: pass --mlperf-dir (the MLPerf Tiny reference models)")
            models.append((name, path, None))
            continue
        started = time.monotonic()
        models.append((name, convert(MODELS[name], work / f"{name}.tflite"), None))
        print(f"converted {name} in {time.monotonic() - started:.1f} s", flush=True)
    if args.model_dir:
        models.append(("prepared", args.model_dir / "model.tflite", args.model_dir))

    rows: list[Row] = []
    for name, tflite, model_dir in models:
        graph = load_tflite(tflite)
        output_bytes = graph.tensors[graph.outputs[0]].nbytes
        real = name in REAL_MODELS
        runner = "semihost" if real and args.runner == "auto" else args.runner
        if runner == "auto":
            runner = "firmware" if output_bytes <= MAX_FIRMWARE_OUTPUT else "semihost"
        for target in [t.strip() for t in args.targets.split(",") if t.strip()]:
            started = time.monotonic()
            try:
                row = measure(name, tflite, target, runner, work, args.real_samples if real else args.samples,
                              engine_dir, model_dir, args.layers or real, args.optimize)
            except (TinymlError, RuntimeError, subprocess.CalledProcessError) as exc:
                detail = getattr(exc, "stderr", "") or ""
                print(f"{name} {target}: FAILED {exc} {detail[-800:]}", flush=True)
                continue
            rows.append(row)
            print(f"{name:<14} {target:<10} {row.runner:<9} {row.samples:>3} in {row.macs:>11,} MACs "
                  f"{row.instructions:>14,.0f} instr {row.instructions_per_mac:6.2f}/MAC  arena "
                  f"{row.arena_bytes:,}/{row.tflm_arena_bytes_32bit:,} ({row.arena_ratio:.2f})  code "
                  f"{row.code_bytes:,} B  constants {row.constants_bytes:,} B  image "
                  f"{row.image_flash_bytes:,} B  byte-exact {row.agreement:.3f}  [{time.monotonic() - started:.0f} s]",
                  flush=True)
            if row.layers:
                print(format_layers(row), flush=True)

    engine_text = engine_text_bytes(engine_dir, work / "engine_objects")
    optional_text = engine_text_bytes(engine_dir, work / "engine_objects_optional", optional=True)
    engine_text_per_target = {target: sum(engine_text_bytes(engine_dir, work / f"engine_objects_{target}",
                                                               target).values())
                              for target in ("cortex-m4", *TOOLCHAINS) if shutil.which(TOOLCHAINS.get(target, ARM_M4)[0])}
    table = format_table(rows)
    quoted = format_quoted(rows)
    facts = machine_facts(engine_dir)
    i5 = QUOTED_TFLM["issue 5"]
    quoted_i5 = (f"Quoted, not measured here ({i5['source']}; {i5['method']}): TFLM reference kernels 7-16 "
                 "instr/MAC, CMSIS-NN 2.2-3.2; 8x8 digits student of 17.6 K MACs: 0.70 M (reference), "
                 "0.216 M (CMSIS-NN), arena 3,092 B.")
    print("\n" + table)
    print(quoted)
    print(f"engine .text, all kernels, cortex-m4 -O2: {sum(engine_text.values()):,} bytes "
          f"(target <= {TARGETS['engine_text_bytes']:,})")
    print("  " + ", ".join(f"{k} {v}" for k, v in engine_text.items()))
    print("engine .text, all kernels, per target: " + ", ".join(f"{k} {v:,} B" for k, v in engine_text_per_target.items()))
    print("  and, linked only by palettized models: " + ", ".join(f"{k} {v:,} B" for k, v in optional_text.items()))
    print(quoted_i5)
    print("targets (issue 16): byte-exact; arena <= 0.7x TFLM 32-bit; engine code <= 16 KB; cortex-m4 instr/MAC "
          + ", ".join(f"{k} <= {v}" for k, v in TARGETS["instructions_per_mac_m4"].items()))
    print(f"commit {facts['commit']}{' (with uncommitted changes)' if facts['worktree_dirty'] else ''}, "
          f"{facts['cpu']} x{facts['cpus']}, {facts['qemu']}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = f"engine{args.tag}"
    payload = {"rows": [asdict(r) for r in rows], "engine_text_bytes": engine_text,
               "engine_text_total": sum(engine_text.values()), "engine_text_per_target": engine_text_per_target,
               "engine_text_optional": optional_text,
               "quoted_tflm": QUOTED_TFLM, "targets": TARGETS,
               "facts": facts}
    facts_md = (f"Commit `{facts['commit']}`{' (with uncommitted changes)' if facts['worktree_dirty'] else ''} "
                f"(compiler {facts['tinyml_package']}, kernels {facts['engine_dir']}), "
                f"{facts['date_utc']} UTC; {facts['cpu']} x{facts['cpus']}, {facts['system']}; {facts['qemu']}; "
                f"{facts['arm_gcc']}.\n\n")
    for path, text in ((RESULTS / f"{stem}.json", json.dumps(payload, indent=2) + "\n"),
                       (RESULTS / f"{stem}.md", "# Engine benchmark\n\n" + facts_md + table + "\n"
                        + "TFLM 32-bit: the pip tflite-micro allocation (64-bit host, in brackets) with its "
                          "pointer-holding records at their 32-bit sizes (bench_engine.tflm_arena_32bit).\n\n"
                        + (quoted + "\n" if "| mlperf" in quoted else "")
                        + f"Engine `.text` (all kernels, cortex-m4, -O2): {sum(engine_text.values()):,} bytes; "
                        + "per target: " + ", ".join(f"{k} {v:,} B" for k, v in engine_text_per_target.items())
                        + "; linked only by palettized models: "
                        + ", ".join(f"{k} {v:,} B" for k, v in optional_text.items())
                        + ".\n\n"
                        + "".join("```\n" + format_layers(r) + "\n```\n\n" for r in rows if r.layers)
                        + quoted_i5 + "\n")):
        temp = path.with_name(path.name + ".tmp")
        temp.write_text(text)
        os.replace(temp, path)
    print(f"wrote {RESULTS / stem}.json and .md")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
