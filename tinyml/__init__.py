"""tinyml: from a PyTorch network to int8 C on a microcontroller, proven on the device."""

from .determinism import pin_cpu_numerics as _pin_cpu_numerics

__version__ = "0.1.0"

# Before anything imports torch or TensorFlow: same seed, same model across CPUs (see determinism.py).
NUMERICS_PINS = _pin_cpu_numerics()
