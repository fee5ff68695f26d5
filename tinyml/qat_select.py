"""`tinyml prepare`'s choice between post-training quantization (PTQ) and quantization-aware
training (QAT), made on the validation split (the test split only reports).

  --qat      run QAT and keep it
  --no-qat   PTQ only
  (default)  automatic: PTQ first; when it loses more than AUTO_DROP_POINTS on validation against
             the float student, run QAT and keep whichever int8 model is better on validation
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .errors import TinymlError

if TYPE_CHECKING:
    from torch import nn

    from .data import Splits
    from .distill import Teacher
    from .verify import VerifyResult

QAT_MODES = ("auto", "on", "off")
AUTO_DROP_POINTS = 0.5


def check_qat_options(mode: str, epochs: int | None) -> None:
    """Before torch and TensorFlow load: the QAT options make sense together."""
    if mode not in QAT_MODES:
        raise TinymlError(f"unknown QAT mode '{mode}' (choose {', '.join(QAT_MODES)})")
    if epochs is not None and epochs < 1:
        raise TinymlError(f"--qat-epochs must be at least 1, got {epochs}")
    if epochs is not None and mode == "off":
        raise TinymlError("--qat-epochs applies to quantization-aware training; it cannot go with --no-qat")


def default_qat_epochs(student_epochs: int) -> int:
    """Half the student's epochs (at least 2): a fine-tune from trained weights."""
    return max(2, student_epochs // 2)


@dataclass
class QuantizationChoice:
    kept: str                                  # "ptq" or "qat"
    reason: str
    checked: VerifyResult                      # the kept model on the test split (host TFLite-Micro)
    report: dict[str, Any] = field(default_factory=dict)


def choose_quantization(mode: str, student: nn.Module, splits: Splits, teacher: Teacher | None, kd: str,
                        ptq_checked: VerifyResult, out_dir: Path, qat_epochs: int, seed: int,
                        say: Callable[[str], None], progress: bool = False) -> QuantizationChoice:
    """Compare PTQ (already written to out_dir/model.tflite and checked on the test split) with QAT
    when `mode` asks for it; a kept QAT model replaces out_dir/model.tflite and model.onnx."""
    from . import distill
    from .verify import verify_tflite

    ptq_bytes = (out_dir / "model.tflite").read_bytes()
    float_val = distill.evaluate(student, splits.x_val, splits.y_val)
    ptq_val = verify_tflite(ptq_bytes, splits.x_val, splits.y_val).int8_accuracy
    drop = 100 * (float_val - ptq_val)
    report: dict[str, Any] = {"mode": mode, "float_val_accuracy": float_val, "ptq_int8_val_accuracy": ptq_val,
                              "ptq_val_drop_points": drop, "auto_threshold_points": AUTO_DROP_POINTS,
                              "ptq_int8_accuracy": ptq_checked.int8_accuracy, "qat_int8_accuracy": None,
                              "qat_int8_val_accuracy": None}
    if mode == "off":
        reason = "--no-qat: post-training quantization only"
        return QuantizationChoice("ptq", reason, ptq_checked, {**report, "kept": "ptq", "reason": reason})
    if mode == "auto" and drop <= AUTO_DROP_POINTS:
        reason = (f"post-training int8 loses {drop:.2f} points on validation (<= {AUTO_DROP_POINTS} points): "
                  "no QAT needed")
        return QuantizationChoice("ptq", reason, ptq_checked, {**report, "kept": "ptq", "reason": reason})

    from . import qat

    if mode == "auto" and not qat.supports_student(student):
        reason = (f"post-training int8 loses {drop:.2f} points on validation, but QAT takes only students with a "
                  "global-average-pool head (this one flattens): post-training quantization kept")
        return QuantizationChoice("ptq", reason, ptq_checked, {**report, "kept": "ptq", "reason": reason})
    why = "--qat" if mode == "on" else f"post-training int8 loses {drop:.2f} points on validation"
    say(f"quantization-aware training ({why}; {qat_epochs} epochs"
        f"{', distilled' if teacher is not None and kd != 'none' else ''})")
    result = qat.quantization_aware_finetune(student, splits, qat.QatConfig(epochs=qat_epochs, seed=seed, kd=kd),
                                             teacher=teacher if kd != "none" else None, progress=progress)
    scratch = out_dir / ".qat"
    scratch.mkdir()
    try:
        exported = qat.export_qat_tflite(result.model, splits.input_shape, splits.x_train, scratch / "model.tflite",
                                         scratch / "model.onnx")
        qat_bytes = exported.quantized.path.read_bytes()
        say(f"checking the QAT int8 model on host TFLite-Micro ({len(splits.x_val)} validation, "
            f"{len(splits.x_test)} test samples)")
        qat_val = verify_tflite(qat_bytes, splits.x_val, splits.y_val).int8_accuracy
        qat_checked = verify_tflite(qat_bytes, splits.x_test, splits.y_test,
                                    float_logits=distill.predict_logits(student, splits.x_test))
        fake = qat.fake_quant_int8_outputs(result.model, splits.x_test)
        report.update(
            qat_int8_accuracy=qat_checked.int8_accuracy, qat_int8_val_accuracy=qat_val, qat_epochs=qat_epochs,
            qat_fake_quant_val_accuracy=result.val_accuracy,
            qat_tflite_vs_fake_quant={
                "output_bytes_equal": float(np.mean(qat_checked.outputs == fake)),
                "max_abs_output_difference": int(np.abs(qat_checked.outputs.astype(np.int32) - fake).max()),
                "argmax_agreement": float(np.mean(qat_checked.predictions == fake.argmax(1)))},
            qat_ranges=[r.as_dict() for r in result.ranges],
            qat_initial_ranges=[r.as_dict() for r in result.initial_ranges])
        if mode == "on":
            kept, reason = "qat", "--qat: quantization-aware training asked for"
        elif qat_val > ptq_val:
            kept, reason = "qat", (f"{why}; QAT int8 is better on validation ({qat_val:.2%} vs {ptq_val:.2%})")
        else:
            kept, reason = "ptq", (f"{why}; QAT int8 is not better on validation ({qat_val:.2%} vs {ptq_val:.2%})")
        if kept == "qat":
            for name in ("model.tflite", "model.onnx"):
                (scratch / name).replace(out_dir / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report.update(kept=kept, reason=reason)
    return QuantizationChoice(kept, reason, qat_checked if kept == "qat" else ptq_checked, report)
