"""Every hand-computed golden case of tests/engine/test_golden_*.py on an emulated
Cortex-M4 (QEMU mps2-an386): all cases linked into one image per engine target, so
QEMU boots twice in all, and each case's output must be its golden value."""

from __future__ import annotations

import pytest

from . import (test_golden_add, test_golden_concatenation, test_golden_conv_2d, test_golden_depthwise_conv_2d,
               test_golden_dequantize, test_golden_fully_connected, test_golden_mean, test_golden_pad,
               test_golden_pooling, test_golden_quantize, test_golden_softmax)
from .golden_harness import assert_same, cortex_m4_tools_available, run_on_cortex_m4

CASES = [case for module in (test_golden_conv_2d, test_golden_depthwise_conv_2d, test_golden_fully_connected,
                             test_golden_add, test_golden_pooling, test_golden_mean, test_golden_softmax,
                             test_golden_pad, test_golden_concatenation, test_golden_quantize,
                             test_golden_dequantize)
         for case in module.CASES]

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.slow,
    pytest.mark.skipif(not cortex_m4_tools_available(),
                       reason="needs arm-none-eabi-gcc/nm/objcopy and qemu-system-arm"),
]


@pytest.fixture(scope="module", params=["cortex-m4", "generic"])
def m4_outputs(request, tmp_path_factory):
    """One QEMU boot per engine target: {case name: output} for every golden case."""
    return request.param, run_on_cortex_m4(CASES, request.param, tmp_path_factory.mktemp(f"golden-{request.param}"))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_golden_case_on_cortex_m4(m4_outputs, case):
    target, outputs = m4_outputs
    assert_same(outputs[case.name], case.expected, f"{case.name} on the Cortex-M4 ({target} engine, QEMU)")


def test_every_golden_file_is_batched():
    """A new test_golden_*.py must join the QEMU batch above, or its cases never run on the target."""
    from pathlib import Path

    files = {p.stem for p in Path(__file__).parent.glob("test_golden_*.py")} - {Path(__file__).stem}
    batched = {m.__name__.rsplit(".", 1)[-1] for m in (test_golden_add, test_golden_concatenation,
                                                         test_golden_conv_2d, test_golden_depthwise_conv_2d,
                                                         test_golden_dequantize, test_golden_fully_connected,
                                                         test_golden_mean, test_golden_pad, test_golden_pooling,
                                                         test_golden_quantize, test_golden_softmax)}
    assert files == batched
