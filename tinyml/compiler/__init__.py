"""The interpreter-free compiler: an int8 `.tflite` -> C99 calling the kernels in firmware/engine/."""

from __future__ import annotations

from .compile import CompiledSize, CompileResult, LayerInfo, compile_tflite, compiled_size
from .layers import TARGETS, support_summary, supported_ops

__all__ = ["CompiledSize", "CompileResult", "LayerInfo", "TARGETS", "compile_tflite", "compiled_size",
           "support_summary", "supported_ops"]
