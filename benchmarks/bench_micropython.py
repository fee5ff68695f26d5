"""Figures of the MicroPython runtime (printed and stored, never asserted).

    python benchmarks/bench_micropython.py --model-dir build/digits [--samples N]

Compiles the model dir's model.tflite with `--target micropython-py`, starts MicroPython
(WebAssembly, the npm build, behind the pty bridge), copies the module over the raw REPL,
benches N test vectors and prints: byte agreement with host tflite-micro (target 100%),
the raw REPL's wire efficiency (target >= 0.6; payload bytes / bytes on the wire, both
directions), latency on the VM (ticks_us; a wasm VM on this shared machine, not a board),
the module's size and the heap its import took; then, per architecture with a compiler here, the
native module's sections (the .mpy's code and constants, copied to the heap on import, plus the
arena). Stored in benchmarks/results/micropython.json.

    python benchmarks/bench_micropython.py --model-dir build/digits --no-wasm   # the natmod sizes only
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True, help="a `tinyml prepare` output")
    parser.add_argument("--samples", type=int, default=None, help="first N test vectors [default: all]")
    parser.add_argument("--no-wasm", action="store_true", help="only the native-module sizes")
    args = parser.parse_args()
    figures = {"natmod": natmod_figures(args.model_dir / "model.tflite")}
    if not args.no_wasm:
        figures.update(wasm_figures(args))
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    name = "micropython-natmod.json" if args.no_wasm else "micropython.json"
    (results / name).write_text(json.dumps(figures, indent=2) + "\n")
    print(f"-> {results / name}")


def natmod_figures(tflite: Path) -> dict:
    """Compiles the natmod form per architecture as the tests do; the sections a .mpy carries."""
    import shutil
    import subprocess

    from tinyml.micropython.c_module import compile_micropython_c
    from tinyml.testing.natmod import COMPILERS, compile_module, sections

    sizes = {}
    with tempfile.TemporaryDirectory(prefix="bench-natmod-") as tmp:
        for arch, (compiler, _) in COMPILERS.items():
            if shutil.which(compiler) is None:
                print(f"[natmod] {arch}: {compiler} not installed")
                continue
            folder = Path(tmp) / arch
            compile_micropython_c(tflite, folder, "micropython-natmod", arch, "model")
            try:
                linked = compile_module(folder, arch, True, "model", Path(tmp))
            except subprocess.CalledProcessError as exc:
                print(f"[natmod] {arch}: compile failed: {exc.stderr}")
                continue
            found = sections(linked)
            code = sum(size for name, (_, size) in found.items() if name.startswith(".text"))
            const = sum(size for name, (_, size) in found.items()
                        if name.startswith(".rodata") or name.startswith(".data.rel.ro") or name.startswith(".srodata"))
            bss = sum(size for name, (_, size) in found.items() if name.startswith(".bss") or name.startswith(".sbss"))
            sizes[arch] = {"text": code, "const": const, "bss": bss, "heap_on_import": code + const + bss}
            print(f"[natmod] {arch}: .text {code:,} B, constants {const:,} B, arena/bss {bss:,} B -> about "
                  f"{code + const + bss:,} B of heap on import (.mpy code+constants, then the arena)")
    return sizes


def wasm_figures(args) -> dict:
    from tinyml.host.micropython import flash_micropython, run_micropython_bench
    from tinyml.host.micropython_wasm import start_wasm_board
    from tinyml.micropython.py_module import compile_micropython_py

    with tempfile.TemporaryDirectory(prefix="bench-micropython-") as tmp:
        work = Path(tmp)
        started = time.monotonic()
        compiled = compile_micropython_py(args.model_dir / "model.tflite", work / "module", "model")
        print(f"[compile] {compiled.module_bytes:,} B module, {compiled.weight_bytes:,} B weights, "
              f"{compiled.macs:,} MACs ({time.monotonic() - started:.1f} s)", flush=True)
        with start_wasm_board(heap_bytes=1024 * 1024) as board:
            started = time.monotonic()
            flashed = flash_micropython(board.port, work / "module", progress=False)
            copy_s = time.monotonic() - started
            print(f"[flash] copied and imported in {copy_s:.1f} s; import took {flashed['import_heap_bytes']:,} B "
                  "of heap", flush=True)
            result = run_micropython_bench(board.port, args.model_dir, work / "bench", samples=args.samples)
    r = result.report
    figures = {
        "model_dir": str(args.model_dir), "model_sha256": r["model_sha256"], "board": r["board"],
        "backend": r["backend"], "samples": r["samples"], "agreement": r["agreement"],
        "on_device_accuracy": r["on_device_accuracy"], "host_int8_accuracy": r["host_int8_accuracy"],
        "wire_efficiency": r["wire_efficiency"], "wire_bytes": r["wire_bytes"], "payload_bytes": r["payload_bytes"],
        "samples_per_chunk": r["batch"], "latency_us": r["latency_us"], "host_samples_per_s": r["host_samples_per_s"],
        "retries": r["link"]["retries"], "module_bytes": compiled.module_bytes, "weight_bytes": compiled.weight_bytes,
        "macs": compiled.macs, "import_heap_bytes": flashed["import_heap_bytes"], "copy_seconds": copy_s,
    }
    print(f"agreement {r['agreement']:.2%} (target 100%) over {r['samples']} samples; on-device accuracy "
          f"{r['on_device_accuracy']:.2%} (host int8 {r['host_int8_accuracy']:.2%})")
    print(f"wire efficiency {r['wire_efficiency']:.3f} (target >= 0.6): {r['payload_bytes']:,} payload B of "
          f"{r['wire_bytes']:,} wire B, {r['batch']} samples per chunk, {r['link']['retries']} retries")
    print(f"latency p50 {r['latency_us']['p50'] / 1e3:,.0f} ms per inference on the wasm VM "
          f"({compiled.macs / max(r['latency_us']['p50'], 1):.2f} MAC/us), {r['host_samples_per_s']:.2f} samples/s on the host side")
    return figures


if __name__ == "__main__":
    sys.exit(main())
