"""tinyml: from a PyTorch network to int8 C on a microcontroller, proven on the device."""

__version__ = "0.1.0"
