"""Fixtures for the engine kernel tests (see kernel_harness.py)."""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A generator seeded from the test's id, so every case is reproducible on its own."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
