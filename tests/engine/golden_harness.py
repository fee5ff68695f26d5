"""Hand-computed golden cases for the engine's kernels (the TFLite-Micro
`*_test.cc` habit): tiny one-operator models whose inputs, weights,
quantization and expected outputs are written out in the test, with the
arithmetic in a comment.

Each case is checked three ways, so a wrong golden value cannot pass:
  - against tflite-micro (the golden value is proven, not just the engine);
  - through the engine on the host (compile_tflite + gcc, generic C and the
    Cortex-M4 DSP path in C emulation);
  - on an emulated Cortex-M4 (QEMU mps2-an386): test_golden_on_cortex_m4.py
    links every case of every golden test file into one image per target, so
    QEMU boots twice for all of them, not once per case.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .kernel_harness import TensorSpec, run_tflm
from .model_harness import build_engine, work_dir

# The engine targets a golden case runs through on the host: the generic C
# kernels, and the Cortex-M4 kernels with their DSP instructions emulated in C.
HOST_TARGETS = {"generic": (), "cortex-m4": ("TM_DSP_EMULATE",)}
M4_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-std=c99", "-Wall", "-Wextra",
            "-Werror", "-O2"]


class BiasSpec(TensorSpec):
    """An int32 bias constant with its quantization (scale s_in * s_w) written into the model:
    tflite-micro's FULLY_CONNECTED checks it (kernel_harness's TensorSpec quantizes int8 only)."""

    def __init__(self, values: Sequence[int], scale: float) -> None:
        data = np.array(values, dtype=np.int32)
        super().__init__(data.shape, scale, 0, dtype="INT32", data=data)

    @property
    def quantized(self) -> bool:
        return True


@dataclass(frozen=True)
class GoldenCase:
    """A one-op model, its single input and the output computed by hand."""

    name: str
    model: bytes
    input: np.ndarray
    expected: np.ndarray

    def path(self) -> Path:
        path = work_dir() / f"golden_{self.name}.tflite"
        if not path.exists():
            path.write_bytes(self.model)
        return path


def assert_same(ours: np.ndarray, expected: np.ndarray, what: str) -> None:
    ours = np.asarray(ours).reshape(expected.shape)
    assert ours.dtype == expected.dtype, f"{what}: dtype {ours.dtype}, expected {expected.dtype}"
    assert np.array_equal(ours.view(np.uint8), expected.view(np.uint8)), \
        f"{what}: got {ours.reshape(-1).tolist()}, expected {expected.reshape(-1).tolist()}"


def check_tflm(case: GoldenCase) -> None:
    """The hand-computed value is what tflite-micro computes."""
    assert_same(run_tflm(case.model, [case.input])[0], case.expected, f"{case.name} on tflite-micro")


def check_engine_on_host(case: GoldenCase, target: str) -> None:
    engine = build_engine(case.path(), target, HOST_TARGETS[target])
    assert_same(engine.invoke(case.input), case.expected, f"{case.name} through the engine ({target}, host)")


def check_case(case: GoldenCase) -> None:
    """tflite-micro and the engine on the host (both targets) all give the golden value."""
    check_tflm(case)
    for target in HOST_TARGETS:
        check_engine_on_host(case, target)


# ---------------------------------------------------------------- Cortex-M4 (QEMU)

_VECTORS = r"""
#include <stdint.h>
extern void _start(void);
static void reset(void)
{
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: enable the FPU before newlib runs */
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


def _c_bytes(data: bytes) -> str:
    return "{" + ", ".join(str(b) for b in data) + "}"


def _main_source(cases: Sequence[GoldenCase]) -> str:
    """Runs each case's model once and prints its output bytes (hex) on a line of its own."""
    decls, calls = [], []
    for n, case in enumerate(cases):
        decls.append(f"int g{n}_tinyml_model_invoke(const void *input, void *output);")
        decls.append(f"static const uint8_t in{n}[{case.input.nbytes}] __attribute__((aligned(8))) = "
                     f"{_c_bytes(case.input.tobytes())};")
        calls.append(f"    report({n}, g{n}_tinyml_model_invoke(in{n}, out), {case.expected.nbytes});")
    return "\n".join([
        "#include <stdint.h>",
        "#include <stdio.h>",
        *decls,
        "static uint8_t out[4096] __attribute__((aligned(8)));",
        "static void report(int n, int status, int bytes)",
        "{",
        "    int i;",
        "    printf(\"case %d status %d:\", n, status);",
        "    for (i = 0; i < bytes; ++i) {",
        "        printf(\" %02x\", (unsigned)out[i]);",
        "    }",
        "    printf(\"\\n\");",
        "}",
        "int main(void)",
        "{",
        *calls,
        "    printf(\"done\\n\");",
        "    return 0;",
        "}",
        "",
    ])


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} ... failed:\n{done.stdout}{done.stderr}")
    return done


def run_on_cortex_m4(cases: Sequence[GoldenCase], target: str, work: Path) -> dict[str, np.ndarray]:
    """Every case's compiled model in one image for QEMU's mps2-an386; one boot; outputs by case name.

    The generated model.c files all define tinyml_model_invoke (and the other
    model symbols), so each one's global symbols get a g<N>_ prefix with
    objcopy before they are linked together with one copy of the engine.
    """
    from tinyml.compiler import compile_tflite

    from .model_harness import ENGINE_DIR

    work.mkdir(parents=True, exist_ok=True)
    objects: list[Path] = []
    engine_sources: set[str] = set()
    for n, case in enumerate(cases):
        out = work / f"case{n}"
        result = compile_tflite(case.path(), out, target=target)
        engine_sources.update(result.engine_sources)
        obj = out / "model.o"
        _run(["arm-none-eabi-gcc", *M4_FLAGS, f"-I{ENGINE_DIR}", f"-I{out}", "-c", str(out / "model.c"),
              "-o", str(obj)])
        symbols = _run(["arm-none-eabi-nm", "--defined-only", "-g", "-P", str(obj)]).stdout.split("\n")
        renames = [f"--redefine-sym={line.split()[0]}=g{n}_{line.split()[0]}" for line in symbols if line.strip()]
        _run(["arm-none-eabi-objcopy", *renames, str(obj)])
        objects.append(obj)
    (work / "main.c").write_text(_main_source(cases))
    (work / "vectors.c").write_text(_VECTORS)
    elf = work / "golden.elf"
    _run(["arm-none-eabi-gcc", *M4_FLAGS, "--specs=rdimon.specs", f"-I{ENGINE_DIR}",
          str(work / "main.c"), str(work / "vectors.c"), *map(str, objects),
          *(str(ENGINE_DIR / s) for s in sorted(engine_sources)), "-Wl,--section-start=.vectors=0x0",
          "-o", str(elf)])
    run = subprocess.run(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial", "none",
                          "-semihosting", "-kernel", str(elf)], capture_output=True, text=True, timeout=300)
    outputs: dict[str, np.ndarray] = {}
    for match in re.finditer(r"^case (\d+) status (-?\d+):([0-9a-f ]*)$", run.stdout, re.M):
        case = cases[int(match[1])]
        assert int(match[2]) == 0, f"{case.name}: tinyml_model_invoke returned {match[2]} on the Cortex-M4"
        raw = bytes.fromhex(match[3].replace(" ", ""))
        outputs[case.name] = np.frombuffer(raw, dtype=case.expected.dtype).reshape(case.expected.shape)
    assert "done" in run.stdout and len(outputs) == len(cases), run.stdout[-2000:] + run.stderr[-2000:]
    return outputs


def cortex_m4_tools_available() -> bool:
    return all(shutil.which(tool) for tool in ("arm-none-eabi-gcc", "arm-none-eabi-nm", "arm-none-eabi-objcopy",
                                               "qemu-system-arm"))
