"""Quantization-aware training against post-training quantization (issue 18, item 1).

    python benchmarks/bench_qat.py                                  # digits w1.00-d3, per-tensor weights
    python benchmarks/bench_qat.py --granularity per-tensor per-channel --student w1.00-d3

A case where post-training quantization hurts: weights with one scale per tensor (BatchNorm
folded into depthwise convolutions spreads the channels' ranges, so one scale starves the small
channels). Per case: the float student (trained alone, full epochs), post-training int8
(TFLite's converter calibrated on 200 training samples), QAT int8 (tinyml.qat, learned ranges
written into the .tflite), all int8 figures on host TFLite-Micro over the whole test split; the
recovered fraction (QAT - PTQ) / (float - PTQ) and the byte / arg-max agreement between the
.tflite and the fake-quantized PyTorch net. Target (printed, never asserted): where PTQ loses
>= 1 point, QAT recovers >= 2/3 of it. Results go to benchmarks/results/qat.{json,md}.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine_facts import machine_facts  # noqa: E402


_TRAINED: dict = {}


def add_outlier_channel(student, factor: float) -> str:
    """Scale channel 0 of the first depthwise conv's output by `factor` (its BatchNorm's gamma and beta)
    and the next pointwise conv's weights from that channel by 1/factor. ReLU(k z) = k ReLU(z) for
    k > 0, so the float network computes the same function, but that activation tensor's range is
    `factor` times wider: the outlier-heavy layer that one per-tensor activation scale handles badly."""
    import torch

    convs = [m for m in student.modules() if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in student.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    index = next(i for i, conv in enumerate(convs) if conv.groups > 1)
    with torch.no_grad():
        norms[index].weight[0] *= factor
        norms[index].bias[0] *= factor
        convs[index + 1].weight[:, 0] /= factor
    return f"channel 0 of conv {index} (depthwise) x{factor:g}"


def run_case(splits, student_name: str, granularity: str, epochs: int, qat_epochs: int, seed: int,
             work: Path, outlier: float | None = None) -> dict:
    import torch

    from tinyml import distill, models, qat
    from tinyml.onnx_export import export_onnx
    from tinyml.onnx_to_tf.converter import convert_onnx
    from tinyml.quantize import quantize_int8
    from tinyml.verify import verify_tflite

    started = time.perf_counter()
    config = models.StudentConfig.parse(student_name)
    key = (student_name, epochs, seed)
    if key not in _TRAINED:   # the same float student for every case of this name
        print(f"[{student_name}] training the float student ({epochs} epochs)", flush=True)
        _TRAINED[key] = distill.train_student(models.build_student(config, splits.input_shape, splits.num_classes),
                                              splits, distill.TrainConfig(epochs=epochs, seed=seed, kd="none"),
                                              progress=False).model
    student = copy.deepcopy(_TRAINED[key])
    outlier_note = add_outlier_channel(student, outlier) if outlier else None
    float_test = distill.evaluate(student, splits.x_test, splits.y_test)
    float_val = distill.evaluate(student, splits.x_val, splits.y_val)

    print(f"[{student_name} {granularity}] post-training int8", flush=True)
    export_onnx(student, splits.input_shape, work / "ptq.onnx", sample=splits.x_val[:32])
    ptq = quantize_int8(convert_onnx(work / "ptq.onnx"), splits.x_train, work / "ptq.tflite",
                        per_channel=granularity == "per-channel")
    ptq_bytes = ptq.path.read_bytes()
    ptq_test = verify_tflite(ptq_bytes, splits.x_test, splits.y_test).int8_accuracy
    ptq_val = verify_tflite(ptq_bytes, splits.x_val, splits.y_val).int8_accuracy

    print(f"[{student_name} {granularity}] quantization-aware fine-tuning ({qat_epochs} epochs)", flush=True)
    torch.manual_seed(seed)
    result = qat.quantization_aware_finetune(student, splits, qat.QatConfig(
        epochs=qat_epochs, weight_granularity=granularity, seed=seed), progress=False)
    exported = qat.export_qat_tflite(result.model, splits.input_shape, splits.x_train, work / "qat.tflite",
                                     work / "qat.onnx")
    qat_bytes = exported.quantized.path.read_bytes()
    checked = verify_tflite(qat_bytes, splits.x_test, splits.y_test)
    qat_val = verify_tflite(qat_bytes, splits.x_val, splits.y_val).int8_accuracy
    fake = qat.fake_quant_int8_outputs(result.model, splits.x_test)
    fake_accuracy = float(np.mean(fake.argmax(1) == splits.y_test))
    drop = float_test - ptq_test
    recovered = (checked.int8_accuracy - ptq_test) / drop if drop > 0 else None
    return {
        "dataset": splits.name, "student": student_name, "weight_granularity": granularity, "seed": seed,
        "outlier": outlier_note,
        "epochs": epochs, "qat_epochs": qat_epochs, "test_samples": len(splits.x_test),
        "float_accuracy": float_test, "float_val_accuracy": float_val,
        "ptq_int8_accuracy": ptq_test, "ptq_int8_val_accuracy": ptq_val,
        "qat_int8_accuracy": checked.int8_accuracy, "qat_int8_val_accuracy": qat_val,
        "qat_fake_quant_accuracy": fake_accuracy,
        "ptq_drop_points": 100 * drop,
        "recovered_fraction": recovered,
        "tflite_vs_fake_quant": {
            "output_bytes_equal": float(np.mean(checked.outputs == fake)),
            "max_abs_output_difference": int(np.abs(checked.outputs.astype(np.int32) - fake).max()),
            "argmax_agreement": float(np.mean(checked.predictions == fake.argmax(1))),
        },
        "ranges": [r.as_dict() for r in result.ranges],
        "initial_ranges": [r.as_dict() for r in result.initial_ranges],
        "seconds": round(time.perf_counter() - started, 1),
    }


def report_line(case: dict) -> str:
    rec = case["recovered_fraction"]
    target = ("n/a (PTQ loses < 1 point)" if case["ptq_drop_points"] < 1.0
              else ("met" if rec is not None and rec >= 2 / 3 else "NOT met"))
    agreement = case["tflite_vs_fake_quant"]
    return (f"| {case['dataset']} | {case['student']} | {case['weight_granularity']} | {case.get('outlier') or '-'} | "
            f"{100 * case['float_accuracy']:.2f}% | {100 * case['ptq_int8_accuracy']:.2f}% | "
            f"{100 * case['qat_int8_accuracy']:.2f}% | {case['ptq_drop_points']:.2f} | "
            f"{'-' if rec is None else f'{rec:.2f}'} | {target} | {100 * agreement['output_bytes_equal']:.1f}% / "
            f"{agreement['max_abs_output_difference']} / {100 * agreement['argmax_agreement']:.2f}% |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--student", nargs="+", default=["w1.00-d3"])
    parser.add_argument("--granularity", nargs="+", default=["per-tensor"], choices=["per-tensor", "per-channel"])
    parser.add_argument("--epochs", type=int, default=None, help="float student epochs [dataset default]")
    parser.add_argument("--qat-epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--outlier", type=float, nargs="+", default=[0.0],
                        help="scale one channel of the first depthwise output by this factor, function-preserving "
                             "in float (0: none); several values: one case each")
    parser.add_argument("--name", default="qat", help="results file stem under benchmarks/results/")
    parser.add_argument("--keep", type=Path, default=None,
                        help="copy each case's ptq.tflite and qat.tflite into this folder (for tinyml emit/flash/bench)")
    args = parser.parse_args()

    from tinyml import data, distill

    splits = data.load_dataset(args.dataset, seed=args.seed)
    epochs = args.epochs or distill.recommended_epochs(splits.name)["student"]
    cases = []
    with tempfile.TemporaryDirectory(prefix="bench_qat_") as tmp:
        for student, granularity, outlier in itertools.product(args.student, args.granularity, args.outlier):
            work = Path(tmp) / f"{student}-{granularity}-{outlier:g}"
            work.mkdir()
            case = run_case(splits, student, granularity, epochs, args.qat_epochs, args.seed, work, outlier or None)
            cases.append(case)
            print(report_line(case), flush=True)
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                for kind in ("ptq", "qat"):
                    shutil.copyfile(work / f"{kind}.tflite", args.keep / f"{work.name}-{kind}.tflite")

    header = ["| dataset | student | weights | outlier | float | PTQ int8 | QAT int8 | PTQ drop (points) | recovered | "
              "target (>= 2/3 where PTQ loses >= 1 point) | .tflite vs fake-quant: bytes equal / max diff / arg-max |",
              "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    facts = machine_facts()
    md = ["# Quantization-aware training vs post-training quantization", "",
          "int8 accuracy on host TFLite-Micro over the whole test split; `benchmarks/bench_qat.py "
          + " ".join(sys.argv[1:]) + "`.", "", *header, *map(report_line, cases), "",
          f"Commit {facts.get('commit')} (dirty: {facts.get('dirty')}), measured {facts.get('measured_at')}.", ""]
    results = ROOT / "benchmarks" / "results"
    (results / f"{args.name}.json").write_text(json.dumps({"cases": cases, "machine": facts}, indent=2) + "\n")
    (results / f"{args.name}.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
