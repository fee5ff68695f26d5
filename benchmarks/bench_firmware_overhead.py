"""The firmware's own share of flash and RAM per board, measured on real builds
(the `firmware_flash_bytes` / `firmware_ram_bytes` of boards/*.toml come from here).

    python benchmarks/bench_firmware_overhead.py [--boards stm32f405 rv32_virt ...]

For each board with a CMake port, untrained digits students of several sizes are
compiled for the board's target (--optimize speed) and linked into the firmware:
  flash overhead = image .text + .data  -  the model's compiled constants
  RAM overhead   = image .data + .bss   -  the model's planned arena
                   + RAM of the profile the link leaves out (a stack the linker
                     script only checks for, memory no section is placed in).
The overhead still grows a little with the model (model.c's calls, the kernels a
model links): the profile takes the largest measured, rounded up to 1 KB, plus 2 KB
of margin for bigger models' call code. Prints a table; stores it under
benchmarks/results/firmware_overhead.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
RESULTS = Path(__file__).resolve().parent / "results"
# RAM in the profile that the build's size figures do not show, per board (bytes, why).
UNSEEN_RAM = {
    "stm32f405": (8192 + 65536, "8 KB stack the linker script asserts, 64 KB CCM no section uses"),
    "nucleo_f446re": (0, "the 8 KB stack is a .stack_reserve section, counted in .bss"),
    "nucleo_h743zi": (0, "the stack is in DTCM, outside the profile's 512 KB AXI SRAM"),
    "rv32_virt": (0, "the stack is a .stack section, counted in .bss"),
}
STUDENTS = ("w1.00-d3", "w4.00-d3", "w4.00-d4")
MARGIN = 2048


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", nargs="+", default=list(UNSEEN_RAM))
    args = parser.parse_args()

    from tinyml.boards import load_board
    from tinyml.budgets import untrained_tflite
    from tinyml.compiler import compile_tflite
    from tinyml.host.build import build_firmware
    from tinyml.models import StudentConfig

    work = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    rows = []
    for board_name in args.boards:
        board = load_board(board_name)
        unseen, why = UNSEEN_RAM[board_name]
        for student in STUDENTS:
            tflite = work / f"{student}.tflite"
            tflite.write_bytes(untrained_tflite(StudentConfig.parse(student), (8, 8, 1), 10))
            compiled = compile_tflite(tflite, work / f"c-{board_name}-{student}", target=board.compile_target)
            image = build_firmware(board, compiled.out_dir, work / f"b-{board_name}-{student}")
            row = {"board": board_name, "student": student, "constants_bytes": compiled.weight_bytes,
                   "arena_bytes": compiled.arena_bytes, "image_flash_bytes": image.flash_bytes,
                   "image_ram_bytes": image.ram_bytes, "unseen_ram_bytes": unseen, "unseen_ram": why,
                   "flash_overhead": image.flash_bytes - compiled.weight_bytes,
                   "ram_overhead": image.ram_bytes - compiled.arena_bytes + unseen}
            rows.append(row)
            print(f"{board_name:14} {student:9} constants {row['constants_bytes']:>7,} arena {row['arena_bytes']:>6,}"
                  f"  image flash {row['image_flash_bytes']:>7,} RAM {row['image_ram_bytes']:>7,}  ->  overhead "
                  f"flash {row['flash_overhead']:>6,} RAM {row['ram_overhead']:>6,}", flush=True)
    summary = {}
    for board_name in args.boards:
        mine = [r for r in rows if r["board"] == board_name]
        flash = max(r["flash_overhead"] for r in mine)
        ram = max(r["ram_overhead"] for r in mine)
        summary[board_name] = {"max_flash_overhead": flash, "max_ram_overhead": ram,
                               "profile_flash": -(-flash // 1024) * 1024 + MARGIN,
                               "profile_ram": -(-ram // 1024) * 1024 + MARGIN}
        print(f"{board_name}: largest overhead flash {flash:,} B, RAM {ram:,} B -> profile "
              f"firmware_flash_bytes = {summary[board_name]['profile_flash']:,}, "
              f"firmware_ram_bytes = {summary[board_name]['profile_ram']:,}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "firmware_overhead.json").write_text(json.dumps({"rows": rows, "summary": summary}, indent=2) + "\n")
    lines = ["# Firmware overhead per board", "", "`python benchmarks/bench_firmware_overhead.py`", "",
             "| board | student | constants | arena | image flash | image RAM | unseen RAM | flash overhead | "
             "RAM overhead |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['board']} | {r['student']} | {r['constants_bytes']:,} | {r['arena_bytes']:,} | "
              f"{r['image_flash_bytes']:,} | {r['image_ram_bytes']:,} | {r['unseen_ram_bytes']:,} | "
              f"{r['flash_overhead']:,} | {r['ram_overhead']:,} |" for r in rows]
    lines += ["", "| board | profile firmware_flash_bytes | profile firmware_ram_bytes |", "| --- | ---: | ---: |"]
    lines += [f"| {b} | {s['profile_flash']:,} | {s['profile_ram']:,} |" for b, s in summary.items()]
    (RESULTS / "firmware_overhead.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
