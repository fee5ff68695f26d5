"""Figures of `tinyml update` and `tinyml federate` against issue 19's targets
(printed, never asserted), stored in benchmarks/results/learning.{json,md}.

    python benchmarks/bench_learning.py                    # continual digits 0-6 -> 7-9, federated iid + dirichlet:0.5
    python benchmarks/bench_learning.py --only continual   # keeps the stored federated figures (and vice versa)
    python benchmarks/bench_learning.py --board-bench      # + the int8 models on the emulated STM32F405 (QEMU)

Targets: continual: old-class int8 accuracy after the update within 2 points of
joint retraining, new classes >= 95%, plain fine-tuning's forgetting beside it.
Federated digits, 8 clients: Dirichlet 0.5 within 1.5 points of centralized
training, IID within 0.5. Without --board-bench the int8 figures are host
TFLite-Micro's (the firmware is byte-exact with it; --board-bench measures it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine_facts import machine_facts  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def mark(ok: bool) -> str:
    return "met" if ok else "NOT met"


def tinyml(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tinyml.cli", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def board_bench(model_dir: Path) -> dict:
    """Whole test split on the emulated STM32F405 (firmware with the compiled model, QEMU, serial bench)."""
    from tinyml.boards import load_board
    from tinyml.demo import ensure_compiled
    from tinyml.host.build import build_firmware
    from tinyml.host.emulator import start_emulator
    from tinyml.host.harness import run_bench

    board = load_board("stm32f405")
    image = build_firmware(board, ensure_compiled(model_dir, board), model_dir / "build")
    emulated = start_emulator(board, image)
    try:
        return run_bench(emulated.port, model_dir, model_dir / "bench", baud=board.baud, progress=False).report
    finally:
        emulated.stop()


def board_accuracy(model_dir: Path) -> float:
    return board_bench(model_dir)["on_device_accuracy"]


def accuracy_of_classes(per_class: list[dict], names: list[str]) -> float:
    """On-device accuracy over the test samples of the classes `names` (from the bench's per-class recall)."""
    rows = [r for r in per_class if r["class"] in names and r["support"]]
    correct = sum(round(r["recall"] * r["support"]) for r in rows)
    return correct / sum(r["support"] for r in rows)


def continual(work: Path, on_board: bool) -> dict:
    wall_prepare = tinyml("prepare", "--dataset", "digits:0-6", "--board", "stm32f405", "--out", str(work / "d06"),
                          "--no-sweep", "--quiet")
    wall_update = tinyml("update", "--from", str(work / "d06"), "--data", "digits:7-9", "--out", str(work / "d2"),
                         "--quiet")
    r = json.loads((work / "d2" / "report.json").read_text())
    rows = {m["method"]: m for m in r["models"]}
    chosen, joint, finetune = rows[r["method"]], rows.get("joint"), rows["finetune"]
    print(f"continual digits 0-6 -> 7-9: prepare {wall_prepare:.0f} s, update {wall_update:.0f} s; chosen "
          f"{r['method']}; memory {r['memory']['exemplars']} exemplars ({r['memory']['bytes_int8']:,} B int8)")
    for name, m in rows.items():
        old = m["old_int8"] if m["old_int8"] is not None else m["old_float"]
        new = m["new_int8"] if m["new_int8"] is not None else m["new_float"]
        kind = "int8" if m["old_int8"] is not None else "float"
        print(f"  {name:>9}: old classes {old:.2%}  new classes {new:.2%}  ({kind})")
    result = {"report": r, "prepare_seconds": round(wall_prepare, 1), "update_seconds": round(wall_update, 1)}
    if joint:
        gap = 100 * (joint["old_int8"] - chosen["old_int8"])
        print(f"  old classes within 2 points of joint ({gap:+.2f}): {mark(gap <= 2.0)}; new >= 95%: "
              f"{mark(chosen['new_int8'] >= 0.95)}; fine-tuning forgets "
              f"{100 * (rows['previous']['old_int8'] - finetune['old_int8']):.2f} points of the old classes")
        result["gap_to_joint_points"] = round(gap, 2)
    if on_board:
        bench = board_bench(work / "d2")
        old_names = r["previous"]["labels"]
        result["on_device_accuracy"] = bench["on_device_accuracy"]
        result["on_device_old_classes"] = accuracy_of_classes(bench["per_class"], old_names)
        result["on_device_new_classes"] = accuracy_of_classes(bench["per_class"], r["new_classes"])
        result["on_device_agreement"] = bench.get("agreement")
        print(f"  on the emulated STM32F405, whole test split: {result['on_device_accuracy']:.2%} (host int8 "
              f"{r['int8_accuracy']:.2%}); old classes {result['on_device_old_classes']:.2%}, new classes "
              f"{result['on_device_new_classes']:.2%}; agreement with host int8 {result['on_device_agreement']}")
    return result


def federated(work: Path, partition: str, on_board: bool, rounds: int) -> dict:
    out = work / f"fed-{partition.replace(':', '')}"
    wall = tinyml("federate", "--clients", "8", "--rounds", str(rounds), "--partition", partition, "--strategy",
                  "fedavg", "--out", str(out), "--quiet")
    r = json.loads((out / "report.json").read_text())
    limit = 0.5 if partition == "iid" else 1.5
    print(f"federated digits, 8 clients, {partition}, {rounds} rounds: {wall:.0f} s; federated int8 "
          f"{r['federated_int8_accuracy']:.2%}, centralized int8 {r['centralized_int8_accuracy']:.2%}, gap "
          f"{r['gap_points']:+.2f} points (<= {limit}: {mark(r['gap_points'] <= limit)}); "
          f"{r['bytes_exchanged']:,} B exchanged; dropped {len(r['dropped'])}")
    result = {"report": r, "seconds": round(wall, 1)}
    if on_board:
        result["on_device_accuracy"] = board_accuracy(out)
        print(f"  on the emulated STM32F405: {result['on_device_accuracy']:.2%}")
    return result


def facts_line(facts: dict | None) -> str:
    if not facts:
        return "measured at commit 99b43ae, before machine facts were stored beside the figures"
    return (f"commit {facts['commit'][:12]}{' (dirty)' if facts['dirty'] else ''}, {facts['measured_at']}, "
            f"{facts['cpu']} ({facts['cores']} cores, load {facts['load_average_1m']} at the start), "
            f"Python {facts['python']}")


def store(figures: dict) -> None:
    """learning.{json,md} from every section measured so far (each with its own commit and machine facts)."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "learning.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    lines = ["# bench_learning", ""]
    if "continual" in figures:
        c = figures["continual"]
        r = c["report"]
        lines += [f"Continual digits 0-6 -> 7-9 ({facts_line(c.get('facts'))}): chosen **{r['method']}** "
                  f"(`--method auto`, on validation data only: accuracy, then cross-entropy), {r['epochs']} epochs, "
                  f"lr {r.get('lr')}, memory {r['memory']['exemplars']} exemplars ({r['memory']['bytes_int8']:,} B "
                  f"int8). Test splits: {r['test_samples']['old']} old-class, {r['test_samples']['new']} new-class "
                  f"samples. Prepare {c['prepare_seconds']:.0f} s, update {c['update_seconds']:.0f} s.", "",
                  "| model | old classes int8 | new classes int8 | old float | new float | validation | "
                  "validation cross-entropy |", "| --- | --- | --- | --- | --- | --- | --- |"]

        def pct(v):
            return "n/a" if v is None else f"{v:.2%}"

        for m in r["models"]:
            loss = m.get("selection_loss")
            lines.append(f"| {m['method']}{' (chosen)' if m['method'] == r['method'] else ''} | {pct(m['old_int8'])} | "
                         f"{pct(m['new_int8'])} | {pct(m['old_float'])} | {pct(m['new_float'])} | "
                         f"{pct(m['selection_score'])} | {'n/a' if loss is None else f'{loss:.4f}'} |")
        lines.append("")
        if "gap_to_joint_points" in c:
            chosen = next(m for m in r["models"] if m["method"] == r["method"])
            lines.append(f"- old classes {c['gap_to_joint_points']:+.2f} points from joint (target <= 2: "
                         f"{mark(c['gap_to_joint_points'] <= 2.0)}); new classes {chosen['new_int8']:.2%} "
                         f"(target >= 95%: {mark(chosen['new_int8'] >= 0.95)})")
        if "on_device_accuracy" in c:
            lines.append(f"- chosen model on the emulated STM32F405, whole test split: {c['on_device_accuracy']:.2%} "
                         f"(old classes {c['on_device_old_classes']:.2%}, new classes {c['on_device_new_classes']:.2%};"
                         f" host int8 {r['int8_accuracy']:.2%}, agreement {c['on_device_agreement']})")
        lines.append("")
    for key, value in figures.items():
        if key.startswith("federated"):
            r = value["report"]
            lines.append(f"- {key} ({facts_line(value.get('facts'))}): federated int8 {r['federated_int8_accuracy']:.2%}, centralized int8 "
                         f"{r['centralized_int8_accuracy']:.2%}, gap {r['gap_points']:+.2f} points, "
                         f"{r['bytes_exchanged']:,} B exchanged, {value['seconds']:.0f} s"
                         + (f"; on the emulated STM32F405 {value['on_device_accuracy']:.2%}" if "on_device_accuracy" in value
                            else ""))
    (RESULTS / "learning.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["continual", "federated"], default=None,
                        help="Run one part; the other part's stored figures are kept as they are.")
    parser.add_argument("--board-bench", action="store_true", help="Also bench the models on the emulated board.")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    stored = RESULTS / "learning.json"
    figures: dict = json.loads(stored.read_text()) if args.only and stored.is_file() else {}
    figures.pop("facts", None)
    with tempfile.TemporaryDirectory(prefix="bench_learning_") as tmp:
        work = Path(tmp)
        if args.only in (None, "continual"):
            facts = machine_facts()   # before the run: the commit and tree that are measured
            figures["continual"] = {"facts": facts, **continual(work, args.board_bench)}
            store(figures)
        if args.only in (None, "federated"):
            for partition in ("iid", "dirichlet:0.5"):
                facts = machine_facts()
                figures[f"federated_{partition}"] = {"facts": facts,
                                                     **federated(work, partition, args.board_bench, args.rounds)}
                store(figures)
    print(f"-> {RESULTS / 'learning.json'}, {RESULTS / 'learning.md'}")


if __name__ == "__main__":
    main()
