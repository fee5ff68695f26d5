"""The interpreter-free compiler: an int8 `.tflite` -> C99 calling the kernels in firmware/engine/."""

from __future__ import annotations

from .compile import CompileResult, LayerInfo, compile_tflite
from .layers import TARGETS, support_summary, supported_ops

__all__ = ["CompileResult", "LayerInfo", "TARGETS", "compile_tflite", "support_summary", "supported_ops"]
