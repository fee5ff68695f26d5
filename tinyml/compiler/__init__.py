"""The interpreter-free compiler: an int8 `.tflite` -> C99 calling the kernels in firmware/engine/."""

from __future__ import annotations

from .compile import CompiledSize, CompileResult, LayerInfo, compile_tflite, compiled_size
from .layers import TARGETS, supported_ops

__all__ = ["CompiledSize", "CompileResult", "LayerInfo", "TARGETS", "compile_tflite", "compiled_size", "supported_ops"]
