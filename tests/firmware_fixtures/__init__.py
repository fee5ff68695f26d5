"""The fixture model lives in tinyml.testing.fixture_model (the benchmarks use it
too); this folder keeps the test-only C fixtures (ctor_probe, clobber_backend)."""

from pathlib import Path

from tinyml.testing.fixture_model import (FIXTURE_DIR, FIXTURE_SHA256, INPUT_BYTES, LARGE_INPUT_BYTES, LARGE_SHA256,
                                          OUTPUT_BYTES, WEIGHTS, fixture_outputs, write_fixture_firmware_dir,
                                          write_fixture_model_dir)

TEST_FIXTURES_DIR = Path(__file__).resolve().parent

__all__ = ["FIXTURE_DIR", "FIXTURE_SHA256", "INPUT_BYTES", "LARGE_INPUT_BYTES", "LARGE_SHA256", "OUTPUT_BYTES",
           "TEST_FIXTURES_DIR", "WEIGHTS", "fixture_outputs", "write_fixture_firmware_dir", "write_fixture_model_dir"]
