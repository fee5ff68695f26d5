"""The 32-bit TFLite-Micro arena figure derived from the 64-bit host's report."""

from __future__ import annotations

import pytest

from tinyml.errors import TinymlError
from tinyml.tflm_arena import arena_figures

# The report of host TFLite-Micro for MLPerf Tiny's KWS model (tflite-micro wheel).
KWS_REPORT = """\
[RecordingMicroAllocator] Arena allocation total 24272 bytes
[RecordingMicroAllocator] Arena allocation head 16000 bytes
[RecordingMicroAllocator] Arena allocation tail 8272 bytes
[RecordingMicroAllocator] 'TfLiteEvalTensor data' used 840 bytes with alignment overhead (requested 840 bytes for 35 allocations)
[RecordingMicroAllocator] 'Persistent TfLiteTensor data' used 128 bytes with alignment overhead (requested 128 bytes for 2 tensors)
[RecordingMicroAllocator] 'Persistent TfLiteTensor quantization data' used 64 bytes with alignment overhead (requested 64 bytes for 4 allocations)
[RecordingMicroAllocator] 'Persistent buffer data' used 5556 bytes with alignment overhead (requested 5528 bytes for 32 allocations)
[RecordingMicroAllocator] 'NodeAndRegistration struct' used 832 bytes with alignment overhead (requested 832 bytes for 13 NodeAndRegistration structs)
"""


def test_pointer_structs_shrink_and_the_head_does_not():
    figures = arena_figures(KWS_REPORT)
    assert (figures.total_64, figures.head, figures.tail_64) == (24272, 16000, 8272)
    # 35 eval tensors x 12 + 2 tensors x 32 + 2 affine quantizations x 12 + 13 nodes x 32
    assert figures.pointer_savings == 35 * 12 + 2 * 32 + 2 * 12 + 13 * 32 == 924
    assert figures.total_32 == 24272 - 924
    assert figures.total_32 > figures.head


def test_report_without_totals_is_an_error():
    with pytest.raises(TinymlError, match="did not report its arena"):
        arena_figures("[RecordingMicroAllocator] Arena allocation total 10 bytes\n")
