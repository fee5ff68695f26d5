"""Same seed, same model, on every machine where that can be had.

Training is seeded everywhere (initial weights, dropout, batch order, augmentation:
tinyml.distill; the split: tinyml.data) and runs on one torch thread. What remains
is float summation order, which the CPU libraries pick by instruction set: on the
same seed a machine with AVX-512 trains other weights than one with AVX2 only
(measured: each of ATen's kernel dispatch, oneDNN's ISA and MKL's code path changes
the trained weights on its own). So before torch or TensorFlow load, the x86-64
machines that have AVX2 and FMA pin all three to their AVX2 code paths, which then
give bit-identical float results from one such CPU to the next. Machines without
AVX2 (or not x86-64, e.g. ARM) keep their own paths: there the figures differ in the
last bits, and so may the trained model. Pinning lower (to SSE4.1 for every x86-64)
made training 1.7x slower, so it is not the default.

A variable the user sets already is left alone.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

# ATen's vectorised kernels, oneDNN (torch's convolutions, TensorFlow's oneDNN ops), MKL (BLAS).
AVX2_PINS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "DNNL_MAX_CPU_ISA": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "AVX2",
    # TensorFlow's oneDNN graph rewrites pick kernels by ISA too; Eigen's are fixed when the wheel is built.
    "TF_ENABLE_ONEDNN_OPTS": "0",
}


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (Linux); empty where they cannot be read."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def numerics_pins(machine: str | None = None, flags: set[str] | None = None) -> dict[str, str]:
    """The environment that pins the float code paths on this CPU ({} where nothing can be pinned:
    ATen trusts ATEN_CPU_CAPABILITY=avx2 blindly and would crash on a CPU without AVX2)."""
    machine = (machine or platform.machine()).lower()
    if machine not in ("x86_64", "amd64"):
        return {}
    flags = cpu_flags() if flags is None else flags
    return dict(AVX2_PINS) if {"avx2", "fma"} <= flags else {}


def pin_cpu_numerics() -> dict[str, str]:
    """Set the pins (without overriding the user's) before torch or TensorFlow is imported;
    returns the settings in force."""
    applied = {}
    for name, value in numerics_pins().items():
        applied[name] = os.environ.setdefault(name, value)
    return applied
