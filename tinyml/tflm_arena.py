"""The TFLite-Micro arena a 32-bit MCU needs, from the 64-bit host's figures.

Host TFLite-Micro (the `tflite-micro` wheel) runs with 8-byte pointers, so the
structs TFLM keeps in the arena's tail (one TfLiteEvalTensor per tensor, one
NodeAndRegistration per operator, the persistent TfLiteTensors of the inputs
and outputs and their TfLiteAffineQuantization) are about twice the size they
have on a Cortex-M or RV32 core. The head (the planned activation buffers) is
the same on both. The RecordingMicroAllocator report gives the count of each
struct, so the 32-bit figure is the host total minus count x (64-bit size -
32-bit size) per struct. The sizes below are sizeof() of those structs at
TFLite-Micro 90b983c with TF_LITE_STATIC_MEMORY, as compiled by g++ for x86-64
and arm-none-eabi-g++ for Cortex-M4 (ILP32; rv32 has the same layout).

What stays at its 64-bit size (so the figure remains an upper bound for the
reference kernels): kernel op data ("Persistent buffer data") and the
allocator's own objects, which hold some pointers too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import TinymlError

# category in the report -> bytes per struct on a 64-bit host, on a 32-bit MCU
_STRUCT_SIZES: dict[str, tuple[int, int]] = {
    "TfLiteEvalTensor data": (24, 12),
    "Persistent TfLiteTensor data": (64, 32),
    "NodeAndRegistration struct": (64, 32),
}
# Each quantized persistent tensor records two allocations: its
# TfLiteAffineQuantization (24 / 12 bytes) and a zero-point TfLiteIntArray (same size on both).
_AFFINE_QUANTIZATION = (24, 12)
_QUANTIZATION_CATEGORY = "Persistent TfLiteTensor quantization data"

_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")
_HEAD = re.compile(r"Arena allocation head (\d+) bytes")
_TAIL = re.compile(r"Arena allocation tail (\d+) bytes")
_CATEGORY = re.compile(r"'([^']+)' used (\d+) bytes with alignment overhead \(requested (\d+) bytes for (\d+) ")


@dataclass(frozen=True)
class ArenaFigures:
    """One model's arena on the 64-bit host and the 32-bit estimate derived from it."""

    total_64: int
    head: int
    tail_64: int
    pointer_savings: int  # bytes the counted structs shrink by on a 32-bit core

    @property
    def total_32(self) -> int:
        return self.total_64 - self.pointer_savings


def arena_figures(report: str) -> ArenaFigures:
    """Parses the RecordingMicroAllocator report (tinyml.verify.allocation_report)."""
    found = [pattern.search(report) for pattern in (_TOTAL, _HEAD, _TAIL)]
    if not all(found):
        raise TinymlError("TFLite-Micro did not report its arena allocation (head, tail, total)")
    total, head, tail = (int(m.group(1)) for m in found if m)
    savings = 0
    for name, _used, _requested, count in _CATEGORY.findall(report):
        if name in _STRUCT_SIZES:
            size_64, size_32 = _STRUCT_SIZES[name]
            savings += int(count) * (size_64 - size_32)
        elif name == _QUANTIZATION_CATEGORY:
            size_64, size_32 = _AFFINE_QUANTIZATION
            savings += int(count) // 2 * (size_64 - size_32)
    return ArenaFigures(total_64=total, head=head, tail_64=tail, pointer_savings=savings)


def measure_arena_figures(model: bytes) -> ArenaFigures:
    from .verify import allocation_report

    return arena_figures(allocation_report(model))
