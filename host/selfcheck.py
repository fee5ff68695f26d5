"""Self-check images: for emulated cores whose machine has no UART to carry the
serial protocol (ports/xtensa_lx106_sim: QEMU's Xtensa `sim` machine, output by
semihosting only). The inputs are compiled into the image, the image prints
each output as hex and exits; the host compares the bytes.

  write_selfcheck_inputs(dir, inputs)  ->  dir/tm_selfcheck_inputs.h
  build_firmware(board, compiled, build, extra=[f"-DTINYML_SELFCHECK_DIR={dir}"])
  run_selfcheck(board, image)          ->  SelfcheckRun (outputs, latencies)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tinyml.boards import Board
from tinyml.errors import TinymlError

from .build import FirmwareImage

INPUTS_HEADER = "tm_selfcheck_inputs.h"
_HEADER_LINE = re.compile(r"^selfcheck board=(\S+) backend=(\S+) sha256=([0-9a-f]{64}) samples=(\d+)$")
_SAMPLE_LINE = re.compile(r"^sample (\d+) status (\d+) latency (\d+) output ([0-9a-f]*)$")


@dataclass(frozen=True)
class SelfcheckRun:
    board: str
    backend: str
    model_sha256: str
    outputs: list[bytes]   # per input, in order
    latencies: list[int]   # per input, in the port's latency unit
    exit_status: int


def write_selfcheck_inputs(directory: Path, inputs: list[bytes], output_bytes: int) -> Path:
    """The C header the self-check main runs (int8 inputs of equal size)."""
    if not inputs or len({len(sample) for sample in inputs}) != 1:
        raise TinymlError("self-check inputs must be one or more samples of the same size")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    for sample in inputs:
        values = [str(b - 256 if b > 127 else b) for b in sample]
        rows.append("    {" + ", ".join(values) + "},")
    text = "\n".join([
        "/* Written by tinyml.host.selfcheck: the inputs the self-check image runs. */",
        "#ifndef TM_SELFCHECK_INPUTS_H",
        "#define TM_SELFCHECK_INPUTS_H",
        "#include <stdint.h>",
        f"#define TM_SELFCHECK_SAMPLES {len(inputs)}u",
        f"#define TM_SELFCHECK_INPUT_BYTES {len(inputs[0])}u",
        f"#define TM_SELFCHECK_OUTPUT_BYTES {output_bytes}u",
        "static const int8_t tm_selfcheck_inputs[TM_SELFCHECK_SAMPLES][TM_SELFCHECK_INPUT_BYTES]"
        " __attribute__((aligned(8))) = {",
        *rows,
        "};",
        "#endif",
        "",
    ])
    path = directory / INPUTS_HEADER
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(text)
    os.replace(temp, path)
    return path


def parse_selfcheck(text: str, exit_status: int) -> SelfcheckRun:
    """The image's lines (see firmware/ports/xtensa_lx106_sim/tm_selfcheck_main.c)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    header = next((m for m in map(_HEADER_LINE.match, lines) if m), None)
    if header is None:
        raise TinymlError(f"self-check printed no header line (exit status {exit_status}): {text[-300:]!r}")
    samples = [m for m in map(_SAMPLE_LINE.match, lines) if m]
    expected = int(header.group(4))
    if "selfcheck end" not in lines or len(samples) != expected:
        raise TinymlError(f"self-check ended early: {len(samples)} of {expected} samples (exit status {exit_status})")
    if [int(m.group(1)) for m in samples] != list(range(expected)):
        raise TinymlError("self-check samples out of order")
    failed = [int(m.group(1)) for m in samples if m.group(2) != "0"]
    if failed or exit_status != 0:
        raise TinymlError(f"self-check: invoke failed on samples {failed} (exit status {exit_status})")
    return SelfcheckRun(header.group(1), header.group(2), header.group(3),
                        [bytes.fromhex(m.group(4)) for m in samples], [int(m.group(3)) for m in samples], exit_status)


def run_selfcheck(board: Board, image: FirmwareImage, timeout_s: float = 120.0) -> SelfcheckRun:
    """Boots the image with the board's [emulator] until it exits; parses what it printed."""
    if not board.emulator:
        raise TinymlError(f"board {board.name} has no emulator to run a self-check on")
    program = board.emulator.get("program", "")
    if shutil.which(program) is None:
        raise TinymlError(f"{program} is not installed (Debian: apt-get install qemu-system-misc)")
    cmd = [program, "-M", board.emulator["machine"], *board.emulator.get("args", []), "-kernel", str(image.path)]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as exc:
        raise TinymlError(f"self-check on {board.name} did not finish within {timeout_s:.0f} s") from exc
    return parse_selfcheck(done.stdout.decode("ascii", errors="replace"), done.returncode)
