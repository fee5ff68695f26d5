"""The three-product requantization of tm_depthwise_conv_2d_3x3_scalar.h (armv6-m, |acc| < 2^20)
against tm_common.h's tm_requant built with a 64-bit product, on random and edge sums, and the
bound check that decides which channels take it."""

from __future__ import annotations

import ctypes
import subprocess

import numpy as np
import pytest

from tinyml.compiler.requant import requant_records

from .model_harness import ENGINE_DIR, work_dir

_SHIM = r"""
#include <stdint.h>
#include "tm_depthwise_conv_2d_3x3_scalar.h"
void split_many(const int32_t *acc, const tm_requant_t *q, int32_t *out, int32_t n)
{
    tm_dw3s_split_requant_t s;
    int32_t i;
    tm_dw3s_split_requant_init(&s, q);
    for (i = 0; i < n; ++i) out[i] = tm_dw3s_split_requant(acc[i], &s);
}
int32_t split_fits(const int32_t *w, int32_t bias) { return tm_dw3s_split_requant_fits(w, bias); }
"""

BOUND = 1 << 20


@pytest.fixture(scope="module")
def shim():
    source = work_dir() / "dw3s_split_shim.c"
    source.write_text(_SHIM)
    library = work_dir() / "dw3s_split_shim.so"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-shared", "-fPIC", "-DTM_REQUANT_MUL16",
                    f"-I{ENGINE_DIR}", str(source), "-o", str(library)], check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(library))


def _ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


def _requant_exact(acc: np.ndarray, record: np.ndarray) -> np.ndarray:
    """tm_requant in Python integers: (round_hi * 2^32 +- 2^30 + acc * M) >> 32 >> shift."""
    multiplier, round_hi, shift = (int(v) for v in record)
    out = []
    for a in acc.tolist():
        total = (round_hi << 32) + ((1 << 30) if a >= 0 else -(1 << 30)) + a * multiplier
        out.append((total >> 32) >> shift)
    return np.array(out, dtype=np.int64)


@pytest.mark.parametrize("zero_point", [-128, -3, 0, 77, 127])
def test_split_requant_matches_the_record(shim, zero_point):
    rng = np.random.default_rng(1600 + zero_point)
    edges = np.array([0, 1, -1, 2, -2, 1023, -1024, 2047, -2048, BOUND - 1, -(BOUND - 1), BOUND // 2, -BOUND // 2],
                     dtype=np.int32)
    acc = np.concatenate([rng.integers(-(BOUND - 1), BOUND, 4000), edges]).astype(np.int32)
    multipliers = np.concatenate([[0, 1 << 30, (1 << 31) - 1], rng.integers(1 << 30, 1 << 31, 12)]).astype(np.int64)
    shifts = rng.integers(-23, -1, multipliers.size)
    records = requant_records(multipliers, shifts, zero_point)
    assert records is not None
    for record in records:
        q = np.ascontiguousarray(record, dtype=np.int32)
        out = np.zeros_like(acc)
        shim.split_many(_ptr(acc), _ptr(q), _ptr(out), ctypes.c_int32(acc.size))
        assert np.array_equal(out.astype(np.int64), _requant_exact(acc, q)), record


def test_split_bound_check(shim):
    def fits(w: list[int], bias: int) -> int:
        taps = np.array(w, dtype=np.int32)
        return shim.split_fits(_ptr(taps), ctypes.c_int32(bias))

    worst = [-128] * 9  # 9 * 128 * 128 = 147,456: every int8 filter fits with a small bias
    assert fits(worst, 0) == 1
    assert fits(worst, BOUND - 1 - 9 * 128 * 128) == 1
    assert fits(worst, BOUND - 9 * 128 * 128) == 0
    assert fits([0] * 9, -(BOUND - 1)) == 1
    assert fits([0] * 9, -BOUND) == 0
    assert fits([0] * 9, -(1 << 31)) == 0
    assert fits([0] * 9, (1 << 31) - 1) == 0
