"""tm_common.h's fast requantization against TFLite's double-rounding MBQM.

`tm_srdhm` (SMULL + shift instead of a 64-bit division) is checked against a
Python model of gemmlowp's nudged truncating division, and `tm_requant` (the
record tinyml.compiler.requant.requant_records folds at compile time) against
`tm_multiply_by_quantized_multiplier` + zero point, on random and edge values.
"""

from __future__ import annotations

import ctypes
import subprocess

import numpy as np
import pytest

from tinyml.compiler.requant import requant_records

from .model_harness import ENGINE_DIR, work_dir

_SHIM = r"""
#include <stdint.h>
#include "tm_common.h"
void srdhm_many(const int32_t *a, const int32_t *b, int32_t *out, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) out[i] = tm_srdhm(a[i], b[i]);
}
void requant_many(const int32_t *acc, const int32_t *m, const int32_t *s, int32_t zp, const tm_requant_t *q,
                  int32_t *slow, int32_t *fast, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        slow[i] = tm_multiply_by_quantized_multiplier(acc[i], m[i], s[i]) + zp;
        fast[i] = tm_requant(acc[i], &q[i]);
    }
}
"""


@pytest.fixture(scope="module", params=["mul64", "mul16"])
def shim(request):
    """The requantization as most cores build it (one 64-bit product) and as armv6-m does (TM_REQUANT_MUL16)."""
    source = work_dir() / "requant_shim.c"
    source.write_text(_SHIM)
    library = work_dir() / f"requant_shim_{request.param}.so"
    defines = ["-DTM_REQUANT_MUL16"] if request.param == "mul16" else []
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-shared", "-fPIC", *defines,
                    f"-I{ENGINE_DIR}", str(source), "-o", str(library)], check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(library))


def _ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


def _srdhm_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = []
    for x, y in zip(a.tolist(), b.tolist()):
        if x == y == -(1 << 31):
            out.append((1 << 31) - 1)
            continue
        ab = x * y
        nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
        q = abs(ab + nudge) // (1 << 31)          # C's / truncates toward zero
        out.append(q if ab + nudge >= 0 else -q)
    return np.array(out, dtype=np.int64)


def test_srdhm_matches_gemmlowp(shim):
    rng = np.random.default_rng(0)
    edges = np.array([0, 1, -1, 2, -2, (1 << 30), -(1 << 30), (1 << 31) - 1, -(1 << 31), 12345, -12345],
                     dtype=np.int64)
    a = np.concatenate([rng.integers(-(1 << 31), 1 << 31, 20000), np.repeat(edges, edges.size)]).astype(np.int32)
    b = np.concatenate([rng.integers(-(1 << 31), 1 << 31, 20000), np.tile(edges, edges.size)]).astype(np.int32)
    out = np.zeros_like(a)
    shim.srdhm_many(_ptr(a), _ptr(b), _ptr(out), ctypes.c_int32(a.size))
    assert np.array_equal(out.astype(np.int64), _srdhm_reference(a, b))


@pytest.mark.parametrize("any_multiplier", [False, True])
@pytest.mark.parametrize("zero_point", [-128, -5, 0, 77, 127])
def test_requant_record_matches_mbqm(shim, zero_point, any_multiplier):
    rng = np.random.default_rng(zero_point + 200 + any_multiplier)
    n = 40000
    shifts = -rng.integers(2, 24, n)
    multipliers = rng.integers(0 if any_multiplier else 1 << 30, 1 << 31, n)  # MEAN's fold: any below 2^31
    multipliers[::89] = rng.integers(1, 16, multipliers[::89].size) if any_multiplier else multipliers[::89]
    multipliers[::97] = 1 << 30                       # the power-of-two edge (acc = -1 case)
    multipliers[::101] = 0
    magnitude = rng.integers(0, 31, n)
    acc = (rng.integers(-(1 << 30), 1 << 30, n) >> (30 - magnitude)).astype(np.int64)
    acc[::7] = rng.integers(-(1 << 31), 1 << 31, acc[::7].size)
    acc[::11] = -1
    # exact ties of the rounding shift: acc * M / 2^31 = k + 1/2 ulp of 2^e
    ties = np.arange(0, n, 13)
    acc[ties] = (((rng.integers(-4000, 4000, ties.size) * 2 + 1) << (-shifts[ties] - 1)))
    multipliers[ties] = 1 << 30
    acc[ties] *= 2
    acc = np.clip(acc, -(1 << 31), (1 << 31) - 1)
    records = requant_records(multipliers, shifts, zero_point, any_multiplier=any_multiplier)
    assert records is not None and records.shape == (n, 3)
    q = np.ascontiguousarray(records, dtype=np.int32)
    a, m, s = (np.ascontiguousarray(v, dtype=np.int32) for v in (acc, multipliers, shifts))
    slow, fast = np.zeros(n, np.int32), np.zeros(n, np.int32)
    shim.requant_many(_ptr(a), _ptr(m), _ptr(s), ctypes.c_int32(zero_point), _ptr(q), _ptr(slow), _ptr(fast),
                      ctypes.c_int32(n))
    bad = np.flatnonzero(slow != fast)
    assert bad.size == 0, (f"{bad.size} differ, first acc {a[bad[0]]} M {m[bad[0]]} shift {s[bad[0]]}: "
                           f"{slow[bad[0]]} vs {fast[bad[0]]}")


def test_requant_records_refuse_what_the_formula_does_not_cover():
    ok = np.array([1 << 30, (1 << 31) - 1]), np.array([-2, -23])
    assert requant_records(*ok, 0) is not None
    assert requant_records(np.array([1 << 30]), np.array([-1]), 0) is None      # e = 1
    assert requant_records(np.array([1 << 30]), np.array([0]), 0) is None       # no right shift
    assert requant_records(np.array([1 << 30]), np.array([3]), 0) is None       # left shift
    assert requant_records(np.array([1 << 30]), np.array([-24]), 0) is None     # high word could overflow
    assert requant_records(np.array([12345]), np.array([-5]), 0) is None        # not a normalised multiplier
    assert requant_records(np.array([12345]), np.array([-5]), 0, any_multiplier=True) is not None  # MEAN's


_REC_SHIM = r"""
#include <stdint.h>
#include "tm_common.h"
#include "tm_dsp.h"
void requant_rec_many(const int32_t *acc, const int32_t *m, const int32_t *s, int32_t zp, const int32_t *rec,
                      int32_t *slow, int32_t *fast, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        slow[i] = tm_clamp_s8(tm_multiply_by_quantized_multiplier(acc[i], m[i], s[i]) + zp);
        fast[i] = tm_requant_rec(acc[i], rec[3 * i], rec[3 * i + 1], rec[3 * i + 2]);
    }
}
"""


@pytest.fixture(scope="module")
def rec_shim():
    source = work_dir() / "requant_rec_shim.c"
    source.write_text(_REC_SHIM)
    library = work_dir() / "requant_rec_shim.so"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-shared", "-fPIC", "-DTM_DSP_EMULATE",
                    f"-I{ENGINE_DIR}", str(source), "-o", str(library)], check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(library))


@pytest.mark.parametrize("zero_point", [-128, -5, 0, 77, 127])
def test_packed_record_matches_mbqm(rec_shim, zero_point):
    """tm_requant_rec (tm_dsp.h, SMMLAR form of the packed conv/depthwise records, emulated) against
    clamp(MBQM + zero point), including ties, acc = -1 with M = 2^30 and the extreme accumulators
    packed_records allows."""
    from tinyml.compiler.ops_conv import packed_records

    rng = np.random.default_rng(zero_point + 300)
    n = 40000
    shifts = -rng.integers(2, 24, n)
    multipliers = rng.integers(1 << 30, 1 << 31, n)
    multipliers[::97] = 1 << 30
    multipliers[::89] = (1 << 31) - 1
    magnitude = rng.integers(0, 31, n)
    acc = (rng.integers(-(1 << 30), 1 << 30, n) >> (30 - magnitude)).astype(np.int64)
    acc[::7] = rng.integers(-(1 << 31), 1 << 31, acc[::7].size)
    acc[::11] = -1
    acc[::17] = -(1 << 31)
    acc[::19] = (1 << 31) - 1
    ties = np.arange(0, n, 13)
    acc[ties] = (((rng.integers(-4000, 4000, ties.size) * 2 + 1) << (-shifts[ties] - 1)))
    multipliers[ties] = 1 << 30
    acc[ties] *= 2
    round_ = 2 * requant_records(multipliers, shifts, zero_point)[:, 1].astype(np.int64)
    limit = (1 << 31) - 3 - np.abs(round_)                 # the bound packed_records guarantees
    acc = np.clip(acc, -limit, limit)
    acc[::23] = limit[::23]
    acc[::29] = -limit[::29]
    records = packed_records(requant_records(multipliers, shifts, zero_point), np.abs(acc))
    assert records is not None
    rec = np.ascontiguousarray(records, dtype=np.int32)
    a, m, s = (np.ascontiguousarray(v, dtype=np.int32) for v in (acc, multipliers, shifts))
    slow, fast = np.zeros(n, np.int32), np.zeros(n, np.int32)
    rec_shim.requant_rec_many(_ptr(a), _ptr(m), _ptr(s), ctypes.c_int32(zero_point), _ptr(rec), _ptr(slow),
                              _ptr(fast), ctypes.c_int32(n))
    bad = np.flatnonzero(slow != fast)
    assert bad.size == 0, (f"{bad.size} differ, first acc {a[bad[0]]} M {m[bad[0]]} shift {s[bad[0]]}: "
                           f"{slow[bad[0]]} vs {fast[bad[0]]}")
    assert packed_records(requant_records(np.array([0, 1 << 30]), np.array([-5, -5]), 0), 0) is None
    assert packed_records(requant_records(np.array([1 << 30]), np.array([-23]), -128), (1 << 30) + (1 << 23)) is None


@pytest.mark.parametrize("zero_point", [-128, -3, 0, 101, 127])
@pytest.mark.parametrize("max_shift", [23, 31])
def test_conv_records_cover_every_shift(rec_shim, zero_point, max_shift):
    """conv_packed_records (the widened-patch conv's records) for every right shift 1..max_shift and
    accumulators up to the bound it accepts: with a shift above 23 the zero point goes after the shift
    (trained models' near-dead channels: shifts up to 31 with |bias| near 2^30); multipliers of 0 give
    the zero point from an accumulator of 0. Emulated tm_requant_rec against clamp(MBQM + zero point)."""
    from tinyml.compiler.ops_conv import conv_packed_records

    rng = np.random.default_rng(zero_point + 7 * max_shift)
    n = 40000
    shifts = -rng.integers(1, max_shift + 1, n)
    shifts[:max_shift] = -np.arange(1, max_shift + 1)
    multipliers = rng.integers(1 << 30, 1 << 31, n)
    multipliers[::97] = 1 << 30
    multipliers[::89] = (1 << 31) - 1
    acc = (rng.integers(-(1 << 31), 1 << 31, n) >> rng.integers(0, 31, n)).astype(np.int64)
    acc[::11] = -1
    ties = np.arange(0, n, 13)
    acc[ties] = ((rng.integers(-400, 400, ties.size) * 2 + 1) << (-shifts[ties] - 1)) * 2
    multipliers[ties] = 1 << 30
    dead = np.arange(5, n, 31)
    multipliers[dead] = 0
    shifts[dead] = 0
    # Clip each accumulator to what the records allow: |SRDHM(acc, M)| + |round| < 2^31 - 2.
    e = np.maximum(-shifts, 1)
    round_ = (1 << (e - 1)) + (0 if max_shift > 23 else zero_point * (1 << e))
    limit = (((1 << 31) - 4 - np.abs(round_)) << 31) // np.maximum(multipliers, 1 << 30)
    acc = np.clip(acc, -limit, limit)
    acc[::23] = limit[::23]
    acc[::29] = -limit[::29]
    acc = np.clip(acc, -(1 << 31) + 1, (1 << 31) - 1)
    acc[dead] = 0
    packed = conv_packed_records(multipliers, shifts, zero_point, np.abs(acc))
    assert packed.records is not None, packed.reason
    assert packed.post == (max_shift > 23)
    rec = np.ascontiguousarray(packed.records, dtype=np.int32)
    a, m, s = (np.ascontiguousarray(v, dtype=np.int32) for v in (acc, multipliers, shifts))
    slow, fast = np.zeros(n, np.int32), np.zeros(n, np.int32)
    rec_shim.requant_rec_many(_ptr(a), _ptr(m), _ptr(s), ctypes.c_int32(zero_point), _ptr(rec), _ptr(slow),
                              _ptr(fast), ctypes.c_int32(n))
    bad = np.flatnonzero(slow != fast)
    assert bad.size == 0, (f"{bad.size} differ, first acc {a[bad[0]]} M {m[bad[0]]} shift {s[bad[0]]}: "
                           f"{slow[bad[0]]} vs {fast[bad[0]]}")


def test_conv_records_say_why_not():
    from tinyml.compiler.ops_conv import conv_packed_records

    assert "without a right shift" in conv_packed_records(np.array([1 << 30]), np.array([0]), 0, 10).reason
    assert "without a right shift" in conv_packed_records(np.array([1 << 30]), np.array([2]), 0, 10).reason
    assert "multiplier" in conv_packed_records(np.array([12345]), np.array([-5]), 0, 10).reason
    assert "bound" in conv_packed_records(np.array([(1 << 31) - 1]), np.array([-31]), 0, 1 << 31).reason
    assert conv_packed_records(np.array([(1 << 31) - 1]), np.array([-31]), 0, (1 << 30) + 5).records is None
    assert conv_packed_records(np.array([1 << 30]), np.array([-31]), 0, (1 << 30) + 5).records is not None
