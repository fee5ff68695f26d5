"""Post-training vs quantization-aware int8 models on the emulated STM32F405 (issue 18, item 1).

    python benchmarks/bench_qat.py --student w2.00-d3 --granularity per-tensor --keep /tmp/qat-models
    python benchmarks/bench_qat_device.py /tmp/qat-models/*.tflite [--model-dir build/digits-qat ...]

Each `.tflite` goes through `tinyml emit --test-data digits` (the whole test split as test
vectors), `tinyml flash --board stm32f405` (the engine, QEMU) and `tinyml bench`; a `--model-dir`
(a `tinyml prepare --qat` output) through flash and bench. Prints and stores on-device accuracy,
byte agreement with host TFLite-Micro and p50 instructions in benchmarks/results/qat-device.{json,md}.
The emulators run under a private TINYML_STATE_DIR and are stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine_facts import machine_facts  # noqa: E402


def tinyml(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "tinyml.cli", *args, "--quiet"], check=True, env=env, timeout=1800,
                   stdout=subprocess.DEVNULL)


def bench_model_dir(name: str, model_dir: Path, env: dict[str, str]) -> dict:
    print(f"[{name}] flash and bench on the emulated stm32f405", flush=True)
    tinyml("flash", "--board", "stm32f405", "--model-dir", str(model_dir), env=env)
    tinyml("bench", "--board", "stm32f405", "--model-dir", str(model_dir), "--fresh", env=env)
    report = json.loads((model_dir / "bench" / "report.json").read_text())
    latency = report.get("latency_instructions") or report.get("latency_cycles") or {}
    return {"model": name, "samples": report["samples"], "on_device_accuracy": report["on_device_accuracy"],
            "host_int8_accuracy": report["host_int8_accuracy"], "agreement": report["agreement"],
            "latency_unit": report.get("latency_unit"), "latency_p50": latency.get("p50"),
            "model_sha256": report["model_sha256"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tflite", nargs="*", type=Path)
    parser.add_argument("--model-dir", nargs="*", type=Path, default=[])
    parser.add_argument("--name", default="qat-device")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_qat_device_") as tmp:
        env = {**os.environ, "TINYML_STATE_DIR": str(Path(tmp) / "state")}
        try:
            for model in args.tflite:
                out = Path(tmp) / model.stem
                tinyml("emit", str(model), "--out", str(out), "--test-data", "digits", env=env)
                rows.append(bench_model_dir(model.name, out, env))
                print(rows[-1], flush=True)
            for model_dir in args.model_dir:
                rows.append(bench_model_dir(str(model_dir), model_dir, env))
                print(rows[-1], flush=True)
        finally:
            subprocess.run([sys.executable, "-m", "tinyml.cli", "emulator", "stop", "all"], env=env,
                           capture_output=True, timeout=120)

    facts = machine_facts()
    md = ["# PTQ vs QAT int8 models on the emulated STM32F405", "",
          "`benchmarks/bench_qat_device.py " + " ".join(sys.argv[1:]) + "`: engine backend, QEMU netduinoplus2, "
          "the whole digits test split.", "",
          "| model | samples | on-device accuracy | host TFLite-Micro | byte agreement | p50 latency |",
          "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        md.append(f"| {r['model']} | {r['samples']} | {100 * r['on_device_accuracy']:.2f}% | "
                  f"{100 * r['host_int8_accuracy']:.2f}% | {100 * r['agreement']:.2f}% | "
                  f"{int(r['latency_p50']):,} {r['latency_unit']} |")
    md += ["", f"Commit {facts.get('commit')} (dirty: {facts.get('dirty')}), measured {facts.get('measured_at')}.", ""]
    results = ROOT / "benchmarks" / "results"
    (results / f"{args.name}.json").write_text(json.dumps({"models": rows, "machine": facts}, indent=2) + "\n")
    (results / f"{args.name}.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
