"""Palettized weights (issue 18 item 3): weight flash, Cortex-M4 instructions, RAM and
accuracy of `tinyml palettize` + `tinyml compile --weights palette4|palette2`.

For the digits student (a `tinyml prepare` output: --digits-dir, default build/digits,
made with `tinyml prepare --dataset digits --board stm32f405` when missing) and the
trained MLPerf Tiny models (bench_engine's lookup), each palettized variant is compiled
for the Cortex-M4 twice, with int8 weights and packed, and run on QEMU mps2-an386
(-icount shift=0, semihosting: bench_engine.run_semihost), whose outputs are compared
byte for byte with host tflite-micro on the same palettized .tflite. Accuracy is host
tflite-micro over the whole digits test split.

Prints the table and stores benchmarks/results/palette.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_engine import REAL_MODELS, default_mlperf_dir, run_semihost  # noqa: E402
from machine_facts import machine_facts  # noqa: E402

# (name, bits, granularity) of the variants compiled and run; for digits also the accuracy of
# ACCURACY_ONLY.
VARIANTS = [("palette4", 4, "layer"), ("palette2", 2, "layer"), ("palette2", 2, "channel")]
ACCURACY_ONLY = [("palette4", 4, "channel")]
TARGETS = {"palette4": (0.55, 1.15), "palette2": (0.30, 1.15)}   # weight flash ratio, instructions ratio
FC_CHUNK_NOTE = "at most 2 KB, tm_palette_fully_connected_s8"


@dataclass
class VariantRow:
    model: str
    variant: str                      # "int8" (the original) or palette4 / palette2
    granularity: str
    weights: int                      # weight count of the encoded layers
    int8_weight_bytes: int            # those weights as int8 (1 byte each)
    encoded_weight_bytes: int         # packed indices + tables (palette) or int8_weight_bytes
    weight_ratio: float
    constants_int8_m4: int            # every const array of the Cortex-M4 compile with int8 storage
    constants_m4: int                 # ... with this variant's storage
    arena_int8: int
    arena: int
    instructions_int8: float          # the same (palettized) model, int8 storage, median per inference
    instructions: float
    instructions_ratio: float
    agreement: float                  # engine vs host tflite-micro on the same .tflite, on the emulated M4
    samples: int
    accuracy: float | None = None     # host tflite-micro, whole test split (digits)
    layers: list[dict] = field(default_factory=list)


def _weight_bytes(model: Path, encoding: str) -> tuple[int, int, int]:
    """(weights, int8 bytes, encoded bytes: indices + tables) over the layers --weights encodes."""
    from tinyml.compiler.layers import lower_graph
    from tinyml.compiler.palette import palettize_layer
    from tinyml.tflite_graph import load_tflite

    layers = lower_graph(load_tflite(model), "cortex-m4", "speed")
    count = encoded = 0
    for i, layer in enumerate(layers):
        filt = next((a for a in layer.consts if a.name == f"l{i}_filter"), None)
        if filt is None:
            continue
        stats = palettize_layer(layer, i, encoding) if encoding != "int8" else None
        count += int(filt.values.size)
        encoded += int(filt.values.size) if stats is None else stats.index_bytes + stats.table_bytes
    return count, count, encoded


def _run(model: Path, weights: str, inputs: np.ndarray, expected: np.ndarray, work: Path):
    from tinyml.compiler import compile_tflite
    from tinyml.paths import firmware_dir

    compiled = work / "compiled"
    result = compile_tflite(model, compiled, target="cortex-m4", weights=weights)
    totals, agreement, layers = run_semihost(compiled, inputs, expected, work / "semi", firmware_dir() / "engine")
    return result, float(np.median(totals)), agreement, (np.median(np.array(layers), axis=0) if layers else [])


def measure_model(name: str, tflite: Path, work: Path, inputs: np.ndarray, vectors: Path | None) -> list[VariantRow]:
    from tinyml.palettize import host_accuracy, palettize_tflite
    from tinyml.verify import run_tflm

    rows = []
    accuracy_int8 = host_accuracy(tflite.read_bytes(), vectors)[0] if vectors else None
    count, int8_bytes, _ = _weight_bytes(tflite, "int8")
    expected = run_tflm(tflite.read_bytes(), inputs)
    base, base_instr, base_agree, _ = _run(tflite, "int8", inputs, expected, work / "int8")
    print(f"{name}: int8 {base_instr:,.0f} instructions, agreement {base_agree:.3f}, accuracy {accuracy_int8}",
          flush=True)
    rows.append(VariantRow(name, "int8", "-", count, int8_bytes, int8_bytes, 1.0, base.weight_bytes,
                           base.weight_bytes, base.arena_bytes, base.arena_bytes, base_instr, base_instr, 1.0,
                           base_agree, len(inputs), accuracy_int8))
    for variant, bits, granularity in ACCURACY_ONLY if vectors else []:
        acc = host_accuracy(palettize_tflite(tflite, bits, granularity).model, vectors)[0]
        print(f"{name}: {variant} per {granularity}: accuracy {acc:.2f}% (not compiled)", flush=True)
        rows.append(VariantRow(name, variant, granularity, count, int8_bytes, 0, 0.0, 0, 0, 0, 0, 0.0, 0.0, 0.0,
                               0.0, 0, acc))
    for variant, bits, granularity in VARIANTS:
        path = work / f"{variant}-{granularity}.tflite"
        path.write_bytes(palettize_tflite(tflite, bits, granularity).model)
        accuracy = host_accuracy(path.read_bytes(), vectors)[0] if vectors else None
        expected = run_tflm(path.read_bytes(), inputs)
        plain, plain_instr, _, plain_layers = _run(path, "int8", inputs, expected, work / f"{path.stem}-int8")
        packed, instr, agree, packed_layers = _run(path, variant, inputs, expected, work / path.stem)
        _, _, encoded = _weight_bytes(path, variant)
        layer_rows = [{"op": info.op, "path": info.path, "encoding": info.encoding, "packed_bytes": info.packed_bytes,
                       "table_bytes": info.table_bytes, "decoded_bytes": info.decoded_bytes,
                       "instructions_int8": float(a), "instructions": float(b)}
                      for info, a, b in zip(packed.layers, plain_layers, packed_layers)]
        row = VariantRow(name, variant, granularity, count, int8_bytes, encoded, encoded / int8_bytes,
                         plain.weight_bytes, packed.weight_bytes, plain.arena_bytes, packed.arena_bytes, plain_instr,
                         instr, instr / plain_instr, agree, len(inputs), accuracy, layer_rows)
        print(f"{name}: {variant} per {granularity}: weights {encoded:,} / {int8_bytes:,} B = {row.weight_ratio:.3f}, "
              f"instructions {instr:,.0f} / {plain_instr:,.0f} = {row.instructions_ratio:.3f}, agreement {agree:.3f}, "
              f"accuracy {accuracy}", flush=True)
        rows.append(row)
    return rows


@dataclass
class BlockRow:
    """One decoded-block bound (compiler/palette.py CONV_BLOCK_BYTES) on one palettized model."""
    model: str
    variant: str
    granularity: str
    bound: int                        # bytes; 0: every conv layer decoded whole (no blocks)
    arena_int8: int                   # the same model with int8 storage
    arena: int
    instructions_int8: float
    instructions: float
    instructions_ratio: float
    agreement: float
    blocks: list[list[int]] = field(default_factory=list)   # [layer, chunk, channels] of the blocked layers


def _bound_now() -> int:
    from tinyml.compiler.palette import CONV_BLOCK_BYTES

    return CONV_BLOCK_BYTES


def measure_block_sweep(name: str, tflite: Path, work: Path, inputs: np.ndarray, bounds: list[int],
                        variant: tuple[str, int, str] = ("palette4", 4, "layer")) -> list[BlockRow]:
    """Arena and Cortex-M4 instructions of one palettized variant per CONV_BLOCK_BYTES bound (0: none)."""
    import re

    from tinyml.compiler import palette
    from tinyml.palettize import palettize_tflite
    from tinyml.verify import run_tflm

    encoding, bits, granularity = variant
    path = work / f"{encoding}-{granularity}.tflite"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(palettize_tflite(tflite, bits, granularity).model)
    expected = run_tflm(path.read_bytes(), inputs)
    plain, plain_instr, _, _ = _run(path, "int8", inputs, expected, work / "sweep-int8")
    rows = []
    default = palette.CONV_BLOCK_BYTES
    try:
        for bound in bounds:
            palette.CONV_BLOCK_BYTES = bound or 1 << 40
            result, instr, agree, _ = _run(path, encoding, inputs, expected, work / f"sweep-{bound}")
            text = (work / f"sweep-{bound}" / "compiled" / "model.c").read_text()
            blocked = {int(i) for i in re.findall(r"tm_palette_conv_2d_s8\(&l(\d+)_params", text)}
            blocks = [[int(i), int(re.search(r"\.chunk = (\d+)", body)[1]),
                       int(re.search(r"\.channels = (\d+)", body)[1])]
                      for i, body in re.findall(r"tm_palette_t l(\d+)_palette = \{(.*?)\};", text, re.S)
                      if int(i) in blocked]
            row = BlockRow(name, encoding, granularity, bound, plain.arena_bytes, result.arena_bytes, plain_instr,
                           instr, instr / plain_instr, agree, blocks)
            print(f"{name}: {encoding} per {granularity}, block bound {bound or 'none'}: arena "
                  f"{plain.arena_bytes:,} -> {result.arena_bytes:,} B, instructions {plain_instr:,.0f} -> "
                  f"{instr:,.0f} ({row.instructions_ratio:.3f}), agreement {agree:.3f}, blocks {blocks}", flush=True)
            rows.append(row)
    finally:
        palette.CONV_BLOCK_BYTES = default
    return rows


def _digits(digits_dir: Path) -> Path:
    if not (digits_dir / "model.tflite").is_file():
        print(f"no digits student in {digits_dir}: running tinyml prepare", flush=True)
        subprocess.run([sys.executable, "-m", "tinyml.cli", "prepare", "--dataset", "digits", "--board", "stm32f405",
                        "--out", str(digits_dir)], check=True)
    return digits_dir


def _arena_text(rows: list[VariantRow], sweep: list[BlockRow]) -> str:
    """The Arena paragraph, its figures from the rows and the block sweep."""
    def swept(model: str, bound: int) -> BlockRow | None:
        return next((b for b in sweep if b.model == model and b.bound == bound), None)

    text = ("Arena: a conv layer's decoded filter16 was whole in the arena while it ran, so the largest one set the "
            "palettized arena (mlperf-resnet8: its last 3x3 conv, 64 channels x 1,168 B = 74,752 B). Now a "
            "widened-patch conv may run a block of output channels at a time (`tm_palette_conv_2d_s8`: the block's "
            "filter16 channels decoded, then `tm_conv_2d_widened_channels_s8` over that channel range of every "
            "pixel, block after block): its decoded weights take one block, but each further block widens every "
            "output pixel's input patch again (widen_rows_s8: 4.25 instructions per 4 taps) and refills the padded "
            "rows, and a blocked layer reads its whole input once per block, so it cannot write its output over "
            "that input (the plan's lagged overlap, which the int8 plans use). So the memory plan chooses "
            "(planner.plan_memory) among blocks under `CONV_BLOCK_BYTES` and its half, quarter and eighth: first, "
            "largest decoded layer first, the block of the least arena wherever the arena gets smaller, then each "
            "blocked layer back to whole or to its largest block that keeps the arena within 2% of that least "
            "(fewer blocks, fewer instructions).")
    bound = _bound_now()
    parts = []
    for model in dict.fromkeys(b.model for b in sweep):
        whole, chosen = swept(model, 0), swept(model, bound)
        if whole is None or chosen is None:
            continue
        blocks = ", ".join(f"layer {layer} in blocks of {chunk} of {channels} channels"
                           for layer, chunk, channels in chosen.blocks) or "no layer in blocks"
        parts.append(f"{model}: arena {whole.arena:,} -> {chosen.arena:,} B (int8 {chosen.arena_int8:,} B), "
                     f"instructions {whole.instructions_ratio:.3f} -> {chosen.instructions_ratio:.3f}x the int8 "
                     f"storage ({blocks})")
    if parts:
        text += (f" With the bound at {bound:,} B, against every layer whole (sweep below, palette4 per layer): "
                 + "; ".join(parts) + ".")
    text += (" The mlperf-resnet8 arena stays above int8 at its first stage: layer 2 (16 channels, 4,864 B "
             "decoded) writes its 16 KB output over its input with the overlap, which blocks would give up. "
             "DS-CNN's convs (9,216 B decoded each) write their 8 KB outputs over their inputs too, so blocks win "
             "little there. The fully connected layers are unchanged (`fc_lookup`, or blocks of "
             f"{FC_CHUNK_NOTE}).")
    return text


def format_markdown(rows: list[VariantRow], facts: dict, sweep: list[BlockRow] | None = None,
                    sweep_facts: dict | None = None) -> str:
    lines = [
        "# Palettized weights (issue 18 item 3)",
        "",
        f"Commit `{facts.get('commit')}`{' (with uncommitted changes)' if facts.get('dirty') else ''}, "
        f"{facts.get('measured_at')}; {facts.get('cpu', facts.get('machine'))}.",
        "",
        "Cortex-M4 build (`--target cortex-m4`, -O2) on QEMU mps2-an386 `-icount shift=0` (semihosting), median "
        "instructions per inference; *int8 storage* is the same palettized model compiled with `--weights int8`. "
        "Weight bytes: the encoded layers' weights as int8 vs packed indices + tables (the per-channel bias and "
        "requantization words the DSP layouts interleave are counted in the constants, not here). Constants: every "
        "const array of the compile (the int8 build's fast layers store only their int16-widened filter with the bias and requantization words, about 2x the int8 weights; palettized layers store packed indices, tables and the per-channel words, and decode into the arena). "
        "Accuracy: host tflite-micro on the whole digits test split. Agreement: engine outputs vs tflite-micro on "
        "the same .tflite, byte for byte.",
        "",
        "| model | weights | tables | accuracy | weight bytes (ratio) | constants int8 → packed | arena int8 → packed "
        "| instructions int8 storage → packed (ratio) | agreement |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        acc = f"{r.accuracy:.2f}%" if r.accuracy is not None else "-"
        if r.variant != "int8" and not r.samples:
            lines.append(f"| {r.model} | {r.variant} | per {r.granularity} | {acc} | (accuracy only) | | | | |")
            continue
        lines.append(
            f"| {r.model} | {r.variant} | {r.granularity if r.variant == 'int8' else 'per ' + r.granularity} | {acc} "
            f"| {r.encoded_weight_bytes:,} / {r.int8_weight_bytes:,} ({r.weight_ratio:.3f}) "
            f"| {r.constants_int8_m4:,} → {r.constants_m4:,} | {r.arena_int8:,} → {r.arena:,} "
            f"| {r.instructions_int8:,.0f} → {r.instructions:,.0f} ({r.instructions_ratio:.3f}) "
            f"| {r.agreement:.3f} ({r.samples}) |")
    lines += ["", "Targets (issue 18): weight flash ≤ 0.55× int8 (palette4), ≤ 0.30× (palette2); instructions ≤ "
              "1.15× the same model with int8 weights; byte-identical.", ""]
    for r in rows:
        if r.variant == "int8" or not r.samples:
            continue
        flash_target, instr_target = TARGETS[r.variant]
        lines.append(f"- {r.model} {r.variant} (tables per {r.granularity}): weight ratio {r.weight_ratio:.3f} "
                     f"({'meets' if r.weight_ratio <= flash_target else 'misses'} ≤ {flash_target}), instructions "
                     f"{r.instructions_ratio:.3f} ({'meets' if r.instructions_ratio <= instr_target else 'misses'} "
                     f"≤ {instr_target}), agreement {r.agreement:.3f}")
    lines += ["", "Where the cost goes: conv and depthwise layers are decoded once per inference into their arena "
              "scratch, whole or (a widened-patch conv, where the memory plan takes it: Arena below) a block of "
              "output channels at a time (the fast paths loop over output channels inside each pixel, so a "
              "per-channel decode would repeat per pixel pair): a few instructions per weight, small against "
              "layers that use each weight at many pixels, and RAM of the decoded weights (the arena column). A "
              "fully connected "
              "layer uses each weight once, so on the Cortex-M4 it is not decoded (`fc_lookup`, tm_palette.h): "
              "per index byte a table of int16 pairs built once per inference gives what SMLAD consumes, against "
              "the input row widened once. Its loops (Thumb-2, four output channels, per 16 MACs): 27 instructions "
              "at 4 bits (per channel and index byte LDRB, LDR, SMLAD), 23 at 2 bits (LDRB, ADD, LDRD, 2 SMLAD), "
              "10 per 4 MACs with a table per channel at 2 bits (one channel at a time through its 16 nibble "
              "pairs), against the int8 row16 path's 17 per 16 MACs (its weights stored already widened: one LDRD "
              "per 4 weights). At least one instruction to fetch an index byte and one load per table word, on top "
              "of the SMLAD, keep an all-FC model (mlperf-ad) above 1.15x: 1.5 instructions per MAC at 4 bits "
              "and 1.25 at 2 bits before any loop overhead, against 1.06. Other builds, and 4-bit per-channel "
              "tables, decode a block of output channels at a time (`tm_palette_fully_connected_s8`).",
              "",
              "Decode loops on the Cortex-M4 (arm-none-eabi-gcc -O2, objdump): the 3x3 depthwise layout holds each tap "
              "in three rotations, so it is decoded tap-major (a tap's indices of successive channels are successive "
              "index bytes): per weight its index, LDRSB and three STRH, 8.5 instructions at 4 bits and 7 at 2 bits "
              "with the loop, plus 13 per channel for its bias and requantization words (before: ~150 per channel, "
              "nine taps gathered on the stack then packed). Widened filter16 channels of whole groups, a layer's "
              "block in one call: 28 instructions per 8 weights at 4 bits (LDR of 4 index bytes, per weight UBFX + "
              "LDRSB, PKHBT + STR per pair), 10 per 4 weights at 2 bits (LDRB, two AND + LDR of the table's 16 pair "
              "words, two STR), ~20 per channel (tail words, loop), and with a table per channel at 2 bits its pair "
              "words (~48).",
              "",
              _arena_text(rows, sweep or [])]
    if sweep:
        lines += ["", f"Decoded-block bound (compiler/palette.py `CONV_BLOCK_BYTES`, now {_bound_now():,} B, with "
                  "its half, quarter and eighth as the smaller block sizes), swept on palette4 per layer "
                  f"(commit `{(sweep_facts or {}).get('commit')}`"
                  f"{' with uncommitted changes' if (sweep_facts or {}).get('dirty') else ''}, "
                  f"{(sweep_facts or {}).get('measured_at')}): a widened-patch conv whose decoded filter16 exceeds it "
                  "may run in blocks of output channels (`tm_palette_conv_2d_s8`) where the memory plan takes "
                  "them; whole: every layer decoded whole (the build before blocks). Instructions: median per "
                  "inference on the emulated Cortex-M4, against the "
                  "same model with int8 storage.", "",
                  "| model | bound | blocked layers (layer: channels per block / channels) | arena int8 → packed "
                  "| instructions int8 storage → packed (ratio) | agreement |",
                  "| --- | ---: | --- | ---: | ---: | ---: |"]
        for b in sweep:
            blocks = ", ".join(f"{layer}: {chunk}/{channels}" for layer, chunk, channels in b.blocks) or "-"
            lines.append(f"| {b.model} | {f'{b.bound:,}' if b.bound else 'whole'} | {blocks} "
                         f"| {b.arena_int8:,} → {b.arena:,} | {b.instructions_int8:,.0f} → {b.instructions:,.0f} "
                         f"({b.instructions_ratio:.3f}) | {b.agreement:.3f} |")
    for r in rows:
        if not r.layers:
            continue
        lines += ["", f"```\n{r.model} {r.variant} (tables per {r.granularity}), layer by layer: instructions int8 "
                      "storage -> packed, decode included"]
        for i, layer in enumerate(r.layers):
            lines.append(f"  {i:2d} {layer['op']:<18} {layer['path']:<14} {layer['encoding']:<8} "
                         f"idx {layer['packed_bytes']:>6} B table {layer['table_bytes']:>5} B "
                         f"scratch {layer['decoded_bytes']:>6} B  {layer['instructions_int8']:>12,.0f} -> "
                         f"{layer['instructions']:>12,.0f}")
        lines.append("```")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits-dir", type=Path, default=ROOT / "build" / "digits")
    parser.add_argument("--mlperf-dir", type=Path, default=None)
    parser.add_argument("--models", default="mlperf-resnet8,mlperf-dscnn,mlperf-ad",
                        help="MLPerf models (bench_engine names), comma-separated; empty: digits only")
    parser.add_argument("--samples", type=int, default=10, help="inputs run on the emulated M4 (digits)")
    parser.add_argument("--mlperf-samples", type=int, default=3)
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "bench_palette")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "palette")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite OUT.md from the stored OUT.json without measuring")
    parser.add_argument("--block-bounds", default="0,2048,4096,8192,12288,16384,24576",
                        help="decoded-block bounds (bytes, 0: whole layers) swept on palette4 per layer; empty: none")
    parser.add_argument("--sweep-models", default="digits,mlperf-resnet8,mlperf-dscnn",
                        help="models of the block sweep (digits and bench_engine names)")
    parser.add_argument("--sweep-only", action="store_true",
                        help="measure only the block sweep; keep OUT.json's other rows")
    args = parser.parse_args()

    if args.report_only:
        stored = json.loads(args.out.with_suffix(".json").read_text())
        text = format_markdown([VariantRow(**row) for row in stored["rows"]], stored["facts"],
                               [BlockRow(**row) for row in stored.get("block_sweep", [])],
                               stored.get("sweep_facts"))
        args.out.with_suffix(".md").write_text(text)
        print(text)
        return
    rows: list[VariantRow] = []
    sweep_models = [m for m in args.sweep_models.split(",") if m]
    inputs = np.zeros(0)
    if not args.sweep_only or "digits" in sweep_models:
        digits = _digits(args.digits_dir)
        vectors = digits / "test_vectors.npz"
        with np.load(vectors) as data:
            inputs = data["inputs"][:args.samples]
    mlperf_dir = args.mlperf_dir or default_mlperf_dir()

    def mlperf_case(name: str) -> tuple[Path, np.ndarray] | None:
        from tinyml.tflite_graph import load_tflite

        tflite = mlperf_dir / REAL_MODELS[name]
        if not tflite.is_file():
            print(f"{name}: {tflite} missing, skipped", flush=True)
            return None
        shape = load_tflite(tflite).tensors[load_tflite(tflite).inputs[0]].shape
        return tflite, np.random.default_rng(1).integers(-128, 128, size=(args.mlperf_samples, *shape[1:]),
                                                         dtype=np.int8)

    stored = json.loads(args.out.with_suffix(".json").read_text()) if args.sweep_only else None
    facts = machine_facts()
    if stored is None:
        rows += measure_model("digits", digits / "model.tflite", args.work / "digits", inputs, vectors)
        for name in [m for m in args.models.split(",") if m]:
            case = mlperf_case(name)
            if case is not None:
                rows += measure_model(name, case[0], args.work / name, case[1], None)
    else:
        rows, facts = [VariantRow(**row) for row in stored["rows"]], stored["facts"]
    bounds = [int(b) for b in args.block_bounds.split(",") if b]
    sweep: list[BlockRow] = []
    for name in sweep_models if bounds else []:
        case = (digits / "model.tflite", inputs) if name == "digits" else mlperf_case(name)
        if case is not None:
            sweep += measure_block_sweep(name, case[0], args.work / "sweep" / name, case[1], bounds)
    sweep_facts = machine_facts()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(
        {"facts": facts, "rows": [asdict(r) for r in rows], "sweep_facts": sweep_facts,
         "block_sweep": [asdict(r) for r in sweep]}, indent=2) + "\n")
    text = format_markdown(rows, facts, sweep, sweep_facts)
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
