"""What the tests and the benchmarks both build on: the fixture model and its
native-port firmware, small Keras models, the MLPerf Tiny reference models' bench
vectors, the MicroPython native-module compile. Tests and benchmarks import it;
it imports neither (tests -> tinyml.testing <- benchmarks)."""
