"""Issue 18's combined figures: pruning x QAT x palettized weights, measured end to end.

    python benchmarks/bench_compress.py --work /tmp/bench-compress
    python benchmarks/bench_compress.py --only digits --device all

Candidates per dataset: a student (a `tinyml prepare --no-sweep` output, pruned with --prune
where the plan says, QAT in its default auto mode) x a weight encoding (int8, palette4 with
one table per layer, palette4 per channel, palette2 per channel). One prepare serves every
encoding of its student. For each candidate:

- `tinyml palettize` of the prepared model.tflite (the palette variants), then `tinyml emit
  --test-data DATASET` of that .tflite: its test vectors are host tflite-micro's outputs over
  the whole test split (checked to be the prepare's own split, input for input), so the host
  accuracy is argmax(outputs) against the labels;
- `tinyml compile --target cortex-m4 --weights ENCODING` (the stm32f405's target): compile.json
  gives the encoded weight bytes, counted like the issue's "59,216 B" (filter bytes as stored:
  int8, or packed indices + int8 tables; plus the int32 biases), and the engine constants;
- on the emulated STM32F405 (QEMU -icount shift=0), for the candidates on the host Pareto front
  of (accuracy, encoded weight bytes) and every int8 candidate (the cheapest in instructions of
  its student): that compiled dir (model.c with the packed weights, plus the emitted manifest and
  test vectors) is built into the firmware and benched over the whole test split, as
  bench_prune.py does (host.session.BoardSession.build_and_boot; ensure_compiled takes a dir
  that already holds model.c as it is, so the firmware runs the packed encoding).

The Pareto front is over (accuracy up, encoded weight bytes down, p50 instructions down) among
the candidates measured on the device (accuracy: on the device). Issue 18's targets are printed
(never asserted). A prepare output already in --work with the same command is reused (the
command and wall time are stored beside it, NAME.prepare.json). Stores
benchmarks/results/compress.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine_facts import machine_facts  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
BOARD = "stm32f405"
TARGET = "cortex-m4"                       # the stm32f405's compile target (boards/stm32f405.toml)

# (name, prepare options after --dataset/--board/--out): the students. digits: w4.00-d4 is the
# largest member --no-sweep takes (today's 98.89%, 299,136 MACs); pruned at 0.8 it is under 30K
# MACs (bench_prune: 95.56% after 20 epochs), so those points train and fine-tune 60 / 120. mnist5k: today's
# w8.00-d5 (--max-weight-kb 64, 59,216 B) pruned at 0.25 (about 0.56x the weights, so palette4 is
# under 24 KB) and 0.5.
STUDENTS: dict[str, list[tuple[str, list[str]]]] = {
    "digits": [
        ("digits-r0", ["--no-sweep"]),
        ("digits-r0.5", ["--no-sweep", "--prune", "0.5"]),
        ("digits-r0.8-e60", ["--no-sweep", "--prune", "0.8", "--epochs", "60"]),
        ("digits-r0.8-e120", ["--no-sweep", "--prune", "0.8", "--epochs", "120"]),
    ],
    "mnist5k": [
        ("mnist5k-r0.25", ["--max-weight-kb", "64", "--no-sweep", "--prune", "0.25"]),
        ("mnist5k-r0.5", ["--max-weight-kb", "64", "--no-sweep", "--prune", "0.5"]),
    ],
}
# (label, --weights, palettize bits, granularity); bits None: the prepared int8 model as is.
ENCODINGS = [("int8", "int8", None, None), ("palette4/layer", "palette4", 4, "layer"),
             ("palette4/channel", "palette4", 4, "channel"), ("palette2/channel", "palette2", 2, "channel")]
WEIGHTED_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}


@dataclass(frozen=True)
class Target:
    dataset: str
    text: str
    min_accuracy: float                    # fraction
    max_macs: int | None = None
    max_weight_bytes: int | None = None


TARGETS = [Target("digits", "digits >= 98.6% with <= 30,000 MACs", 0.986, max_macs=30_000),
           Target("digits", "digits >= 98.3% with <= 8 KB of encoded weights", 0.983, max_weight_bytes=8 * 1024),
           Target("mnist5k", "mnist5k >= 98.5% with <= 24 KB of encoded weights", 0.985, max_weight_bytes=24 * 1024)]


@dataclass
class Candidate:
    dataset: str
    student_dir: str                       # the prepare output's name in --work
    student: str
    prune_ratio: float
    qat: str                               # what auto QAT chose (report.json's quantization method)
    encoding: str                          # int8, palette4/layer, ...
    macs: int
    params: int
    host_accuracy: float                   # int8 on host tflite-micro, whole test split
    weight_bytes: int                      # encoded filter bytes + int32 biases
    filter_bytes: int                      # of which the filters (int8, or packed indices + tables)
    engine_constants_bytes: int            # every const array of the cortex-m4 compile (compile.json)
    arena_bytes: int
    samples: int
    prepare_wall_seconds: float | None
    prepare_options: str
    device: dict | None = None
    pareto: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.student} {self.encoding}"

    def accuracy(self) -> float:
        """On the device when measured there, else on the host."""
        return self.device["on_device_accuracy"] if self.device else self.host_accuracy


def cli(*args: str, timeout: float = 3600) -> None:
    subprocess.run([sys.executable, "-m", "tinyml.cli", *args], check=True, stdout=subprocess.DEVNULL,
                   timeout=timeout)


def prepare(dataset: str, name: str, extra: list[str], work: Path) -> tuple[Path, float | None]:
    """The prepare output work/name, reused when a finished one was made by the same command."""
    out, record = work / name, work / f"{name}.prepare.json"
    if (out / "report.json").is_file() and record.is_file():
        stored = json.loads(record.read_text())
        if stored.get("dataset") == dataset and stored.get("extra") == " ".join(extra) and stored.get("rc") == 0:
            print(f"[bench_compress] {name}: reusing {out} (prepare took {stored['wall_seconds']} s)", flush=True)
            return out, float(stored["wall_seconds"])
    if out.exists():
        shutil.rmtree(out)
    print(f"[bench_compress] {name}: tinyml prepare --dataset {dataset} {' '.join(extra)}", flush=True)
    started = time.perf_counter()
    cli("prepare", "--dataset", dataset, "--board", BOARD, "--out", str(out), "--quiet", *extra)
    wall = round(time.perf_counter() - started, 1)
    record.write_text(json.dumps({"dataset": dataset, "extra": " ".join(extra), "wall_seconds": wall, "rc": 0}) + "\n")
    return out, wall


def encoded_weight_bytes(compile_json: dict) -> tuple[int, int]:
    """(filters + int32 biases, filters) over the weighted layers, as the compile stores them."""
    filters = biases = 0
    for layer in compile_json["layers"]:
        if layer["op"] not in WEIGHTED_OPS:
            continue
        out_channels = int(layer["output_shape"][-1])
        filter_count = int(layer["params"]) - out_channels          # params: filter + one bias per channel
        filters += layer["packed_bytes"] + layer["table_bytes"] if layer["encoding"] != "int8" else filter_count
        biases += 4 * out_channels
    return filters + biases, filters


def model_dir_for(student_dir: Path, dataset: str, encoding: str, weights: str, bits: int | None,
                  granularity: str | None, work: Path) -> Path:
    """A compiled dir the session can flash: model.c (--weights), compile.json, manifest.json and
    test_vectors.npz of this very .tflite (its sha256 is what the firmware reports)."""
    variant = work / encoding.replace("/", "-")
    if variant.exists():
        shutil.rmtree(variant)
    variant.mkdir(parents=True)
    compiled = variant / "compiled"
    if bits is None:
        tflite = student_dir / "model.tflite"
        cli("compile", str(tflite), "--target", TARGET, "--weights", weights, "--out", str(compiled), "--quiet")
        for name in ("manifest.json", "test_vectors.npz"):
            shutil.copy2(student_dir / name, compiled / name)
        return compiled
    tflite = variant / "model.tflite"
    cli("palettize", str(student_dir / "model.tflite"), "--bits", str(bits), "--granularity", str(granularity),
        "-o", str(tflite), "--quiet")
    cli("emit", str(tflite), "--out", str(variant / "emit"), "--test-data", dataset, "--quiet")
    cli("compile", str(tflite), "--target", TARGET, "--weights", weights, "--out", str(compiled), "--quiet")
    with np.load(student_dir / "test_vectors.npz") as ours, np.load(variant / "emit" / "test_vectors.npz") as theirs:
        if not (np.array_equal(ours["inputs"], theirs["inputs"]) and np.array_equal(ours["labels"], theirs["labels"])):
            raise SystemExit(f"error: `tinyml emit --test-data {dataset}` gave another test split than the prepare "
                             f"in {student_dir}")
    for name in ("manifest.json", "test_vectors.npz"):
        shutil.copy2(variant / "emit" / name, compiled / name)
    return compiled


def host_accuracy(model_dir: Path) -> tuple[float, int]:
    with np.load(model_dir / "test_vectors.npz") as data:
        predicted = np.argmax(data["outputs"], axis=1)
        labels = np.asarray(data["labels"])
    return float(np.mean(predicted == labels)), int(len(labels))


def on_device(model_dir: Path, work: Path) -> dict:
    """Build the firmware with this compiled model, boot QEMU, bench the whole test split."""
    from tinyml.boards import load_board
    from tinyml.host.session import BoardSession

    board = load_board(BOARD)
    with BoardSession.build_and_boot(board, model_dir, work / "build", optimize="speed") as session:
        bench = session.bench(model_dir, work / "bench", samples=None, fresh=True, progress=False)
        image = session.image
    report = bench.report
    return {"samples": report["samples"], "on_device_accuracy": report["on_device_accuracy"],
            "agreement_with_host": report["agreement"],
            "instructions_p50": report["latency_instructions"]["p50"],
            "instructions_mean": report["latency_instructions"]["mean"],
            "model_flash_bytes": report["memory"]["model_flash_bytes"], "arena_bytes": report["memory"]["arena_bytes"],
            "firmware_flash_bytes": image.flash_bytes if image else None}


def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """a, b: (accuracy, -bytes, -instructions), all to maximise."""
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def front(points: list[tuple[float, ...]]) -> list[bool]:
    return [not any(dominates(other, p) for other in points if other is not p) for p in points]


def candidates_for(dataset: str, work: Path, students: set[str] | None) -> list[Candidate]:
    rows = []
    for name, extra in STUDENTS[dataset]:
        if students is not None and name not in students:
            continue
        student_dir, wall = prepare(dataset, name, extra, work)
        report = json.loads((student_dir / "report.json").read_text())
        pruning = report.get("pruning") or {}
        quant = report.get("quantization") or {}
        for encoding, weights, bits, granularity in ENCODINGS:
            model_dir = model_dir_for(student_dir, dataset, encoding, weights, bits, granularity, work / f"{name}-enc")
            compiled = json.loads((model_dir / "compile.json").read_text())
            total, filters = encoded_weight_bytes(compiled)
            accuracy, samples = host_accuracy(model_dir)
            row = Candidate(dataset, name, report["student"], float(pruning.get("ratio", 0.0)),
                            str(quant.get("kept", "ptq")), encoding,
                            report["macs"], report["params"], accuracy, total, filters,
                            compiled["weight_bytes"], compiled["arena_bytes"], samples, wall, " ".join(extra))
            if encoding == "int8" and abs(accuracy - report["student_int8_accuracy"]) > 1e-9:
                row.notes.append(f"report.json int8 accuracy {report['student_int8_accuracy']:.4f}")
            print(f"[bench_compress]   {row.label}: {row.macs:,} MACs, {row.weight_bytes:,} B encoded weights "
                  f"({row.filter_bytes:,} B filters), host {accuracy:.2%} over {samples}", flush=True)
            rows.append(row)
    return rows


ENCODING_ORDER = [label for label, *_ in ENCODINGS]


def order(student_dir: str) -> int:
    names = [name for plan in STUDENTS.values() for name, _ in plan]
    return names.index(student_dir) if student_dir in names else len(names)


def stored_rows() -> list[Candidate]:
    path = RESULTS / "compress.json"
    if not path.is_file():
        return []
    names = {f.name for f in Candidate.__dataclass_fields__.values()}
    return [Candidate(**{k: v for k, v in row.items() if k in names}) for row in json.loads(path.read_text())["rows"]]


def bench_device(rows: list[Candidate], work: Path, which: str, fresh: set[int]) -> None:
    """Runs the fresh rows that are on the host front (of all rows) or int8 on the board; then marks
    the Pareto front among every row measured there."""
    host_front = front([(r.host_accuracy, -r.weight_bytes) for r in rows])
    for row, on_front in zip(rows, host_front):
        if id(row) not in fresh or which == "none" or (which == "front" and not (on_front or row.encoding == "int8")):
            continue
        model_dir = work / f"{row.student_dir}-enc" / row.encoding.replace("/", "-") / "compiled"
        print(f"[bench_compress]   on {BOARD}: {row.label}", flush=True)
        row.device = on_device(model_dir, work / f"{row.student_dir}-enc" / f"{row.encoding.replace('/', '-')}-device")
        d = row.device
        print(f"[bench_compress]     device {d['on_device_accuracy']:.2%} ({d['samples']} samples, agreement "
              f"{d['agreement_with_host']:.3f}), p50 {d['instructions_p50']:,.0f} instructions", flush=True)
    measured = [r for r in rows if r.device]
    for row in rows:
        row.pareto = False
    for row, on_front in zip(measured, front([(r.accuracy(), -r.weight_bytes, -r.device["instructions_p50"])
                                              for r in measured])):
        row.pareto = on_front


def target_findings(rows: list[Candidate]) -> list[dict]:
    findings = []
    for target in TARGETS:
        fitting = [r for r in rows if r.dataset == target.dataset
                   and (target.max_macs is None or r.macs <= target.max_macs)
                   and (target.max_weight_bytes is None or r.weight_bytes <= target.max_weight_bytes)]
        best = max(fitting, key=lambda r: (r.accuracy(), r.device is not None, -r.weight_bytes), default=None)
        met = best is not None and best.device is not None and best.device["on_device_accuracy"] >= target.min_accuracy
        where = "on the device" if best is not None and best.device else "host only"
        text = (f"{target.text}: {'met' if met else 'not met'}; " +
                (f"best fitting {best.label} ({best.macs:,} MACs, {best.weight_bytes:,} B): {best.accuracy():.2%} "
                 f"({where})" if best else "no candidate fits the budget"))
        findings.append({"target": target.text, "met": met, "best": best.label if best else None,
                         "accuracy": best.accuracy() if best else None, "text": text})
    return findings


def markdown(rows: list[Candidate], facts: dict, command: str, findings: list[dict]) -> str:
    lines = [f"# Pruning x QAT x palettized weights ({BOARD}, emulated, -icount shift=0)", "", f"`{command}`", "",
             f"Commit {facts['commit']}{' (dirty)' if facts.get('dirty') else ''}, {facts.get('cpu', '')}; "
             f"measured {facts['measured_at']}.", "",
             "Encoded weights: filters as `tinyml compile --target cortex-m4 --weights ...` stores them (int8, or "
             "packed indices + int8 tables) plus the int32 biases, from compile.json (the issue's 59,216 B counts "
             "the same way); engine constants: every const array of that compile. Host: tflite-micro over the whole "
             "test split. Device: the same compiled model in the firmware, whole test split. ★: on the Pareto front "
             "(accuracy ↑, encoded weight bytes ↓, p50 instructions ↓) among the candidates run on the device.", "",
             "| dataset | prepare | student | prune | QAT | weights | MACs | encoded weight B | engine constants B | arena B | "
             "int8 host | int8 device | p50 instructions | front |",
             "| --- | --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |"]
    for r in rows:
        d = r.device
        lines.append(f"| {r.dataset} | {r.student_dir} | {r.student} | {r.prune_ratio:g} | {r.qat} | {r.encoding} | {r.macs:,} | "
                     f"{r.weight_bytes:,} | {r.engine_constants_bytes:,} | {r.arena_bytes:,} | "
                     f"{r.host_accuracy:.2%} ({r.samples}) | "
                     f"{format(d['on_device_accuracy'], '.2%') if d else '-'} | "
                     f"{format(d['instructions_p50'], ',.0f') if d else '-'} | {'★' if r.pareto else ''} |")
    lines += ["", "Targets (issue 18; accuracy on the device over the whole test split):", "",
              *[f"- {f['text']}" for f in findings], "", "Prepare wall time per student (this machine, shared):", ""]
    seen = set()
    for r in rows:
        if r.student_dir not in seen:
            seen.add(r.student_dir)
            lines.append(f"- {r.student_dir} (`{r.prepare_options}`): {r.student}, "
                         f"{r.prepare_wall_seconds if r.prepare_wall_seconds is not None else '?'} s")
    lines += ["", "![accuracy vs encoded weight bytes](compress.png)", ""]
    return "\n".join(lines)


def short_label(row: Candidate) -> str:
    """The prepare's name without the dataset (r0.5: pruned at 0.5, e120: 120 epochs) and the encoding."""
    short = {"int8": "int8", "palette4/layer": "p4/L", "palette4/channel": "p4/C", "palette2/channel": "p2/C"}
    return f"{row.student_dir.split('-', 1)[-1]} {short.get(row.encoding, row.encoding)}"


def plot(rows: list[Candidate], path: Path) -> None:
    from tinyml.plots import _pyplot, place_labels

    plt = _pyplot()
    datasets = sorted({r.dataset for r in rows})
    fig, axes = plt.subplots(1, len(datasets), figsize=(6.0 * len(datasets), 4.4), squeeze=False)
    measured = [r.device["instructions_p50"] for r in rows if r.device]
    low, high = (min(measured), max(measured)) if measured else (1.0, 2.0)
    norm = plt.matplotlib.colors.LogNorm(vmin=low, vmax=max(high, low * 1.01))
    scatter = None
    labels: list[tuple] = []
    for ax, dataset in zip(axes[0], datasets):
        ours = [r for r in rows if r.dataset == dataset]
        host_only = [r for r in ours if not r.device]
        ax.scatter([r.weight_bytes for r in host_only], [100 * r.host_accuracy for r in host_only], s=30,
                   facecolors="none", edgecolors="#999999", label="host only (not on the device)")
        on_device = [r for r in ours if r.device]
        if on_device:
            instr = np.array([r.device["instructions_p50"] for r in on_device])
            sizes = 30 + 220 * (np.log(instr) - np.log(low)) / max(np.log(high) - np.log(low), 1e-9)
            scatter = ax.scatter([r.weight_bytes for r in on_device], [100 * r.accuracy() for r in on_device],
                                 s=sizes, c=instr, cmap="viridis", norm=norm, edgecolors="black",
                                 linewidths=[1.6 if r.pareto else 0.3 for r in on_device], zorder=3,
                                 label="on the device (thick edge: Pareto front)")
        labels.append((ax, [(r.weight_bytes, 100 * r.accuracy(), short_label(r)) for r in ours]))
        for target in TARGETS:
            if target.dataset == dataset and target.max_weight_bytes:
                ax.axvline(target.max_weight_bytes, color="#cc3311", linestyle="--", linewidth=0.8)
                ax.axhline(100 * target.min_accuracy, color="#cc3311", linestyle=":", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("encoded weight bytes (filters + biases, log)")
        ax.set_ylabel("int8 test accuracy (%)")
        ax.set_ylim(min(100 * r.accuracy() for r in ours) - 1, 100.2)
        ax.set_title(f"{dataset}: accuracy vs encoded weights (red: the issue's target)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower right")
    fig.suptitle("labels: r = prune ratio, e = epochs; p4/p2 = palette4/palette2, L/C = one table per "
                 "layer/channel", fontsize=8, y=0.995)
    if scatter is not None:
        fig.colorbar(scatter, ax=axes[0].tolist(), label="p50 instructions per inference (size too)")
    fig.canvas.draw()
    for ax, points in labels:                # once the layout is final
        place_labels(ax, points, fontsize=6)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def store(rows: list[Candidate], facts: dict, command: str, final: bool) -> list[dict]:
    findings = target_findings(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"what": "issue 18 combined: students (pruned, QAT auto) x weight encodings; host tflite-micro accuracy "
                       "over the whole test split, encoded weight bytes from compile.json (cortex-m4), on-device "
                       "accuracy and p50 instructions on the emulated STM32F405 for the front and the int8 models",
               "command": command, "complete": final, **facts,
               "rows": [{**asdict(r), "label": r.label} for r in rows], "targets": findings}
    (RESULTS / "compress.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / "compress.md").write_text(markdown(rows, facts, command, findings))
    plot(rows, RESULTS / "compress.png")
    return findings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(STUDENTS), default=None, help="One dataset.")
    parser.add_argument("--device", choices=["front", "all", "none"], default="front",
                        help="Which candidates run on the emulated board: the host front plus every int8 one "
                             "(default), all, none.")
    parser.add_argument("--students", nargs="+", default=None,
                        help="Measure only these students (names in STUDENTS); the stored rows of the others are kept.")
    parser.add_argument("--work", type=Path, default=None, help="Work dir (prepare outputs are reused from it).")
    args = parser.parse_args()
    known = {name for plan in STUDENTS.values() for name, _ in plan}
    if args.students and not set(args.students) <= known:
        raise SystemExit(f"error: --students: unknown {sorted(set(args.students) - known)} (known: {sorted(known)})")

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-compress-"))
    work.mkdir(parents=True, exist_ok=True)
    facts = machine_facts()     # before the runs: the commit that was measured
    command = "python benchmarks/bench_compress.py " + " ".join(sys.argv[1:])
    datasets = [args.only] if args.only else list(STUDENTS)
    measuring = {name for d in datasets for name, _ in STUDENTS[d] if not args.students or name in args.students}
    rows = [row for row in stored_rows() if row.student_dir in known - measuring]   # kept from an earlier run
    for number, dataset in enumerate(datasets, 1):
        print(f"[bench_compress] {dataset}: {len(STUDENTS[dataset])} students x {len(ENCODINGS)} encodings", flush=True)
        ours = candidates_for(dataset, work, set(args.students) if args.students else None)
        rows += ours
        # the front is over a dataset's candidates, the ones kept from an earlier run included
        bench_device([r for r in rows if r.dataset == dataset], work, args.device, fresh={id(r) for r in ours})
        rows.sort(key=lambda r: ([*STUDENTS].index(r.dataset), order(r.student_dir), ENCODING_ORDER.index(r.encoding)))
        findings = store(rows, facts, command, final=number == len(datasets))   # a stopped run keeps what it has
    for finding in findings:
        print(f"[bench_compress] {finding['text']}")
    print(f"[bench_compress] stored {RESULTS / 'compress.json'}, compress.md, compress.png (work in {work})")


if __name__ == "__main__":
    main()
