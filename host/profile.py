"""Per-layer profile: the board's per-layer times (PROFILE after an inference,
firmware built with TINYML_PROFILE) beside the host's per-layer MAC counts
(compile.json of `tinyml compile`), as a table and a PNG.

Engine images time each layer of the generated code; TFLite-Micro images time
each operator through MicroProfiler. Both follow the model's operator order, so
row i of the board's answer is layer i of compile.json.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from tinyml.errors import TinymlError

from .link import BoardLink


@dataclass(frozen=True)
class LayerTime:
    index: int
    op: str             # as the board names it
    macs: int           # host's count (compile.json)
    time: int           # board's latency unit
    time_per_mac: float | None


@dataclass
class ProfileResult:
    unit: str
    layers: list[LayerTime]

    @property
    def total_time(self) -> int:
        return sum(layer.time for layer in self.layers)

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)


def host_layers(compile_json: Path) -> list[dict]:
    try:
        layers = json.loads(Path(compile_json).read_text())["layers"]
    except (OSError, ValueError, KeyError) as exc:
        raise TinymlError(f"cannot read the layers of {compile_json}: {exc}") from exc
    return [{"op": str(layer["op"]), "macs": int(layer.get("macs", 0))} for layer in layers]


def combine(board_layers: list[tuple[str, int]], host: list[dict], unit: str) -> ProfileResult:
    """Pairs the board's (op, time) rows with the host's (op, MACs) rows."""
    if not board_layers or all(time == 0 for _, time in board_layers):
        raise TinymlError("the board returned no per-layer times: build the firmware with TINYML_PROFILE "
                          "(tinyml bench --profile builds it so)")
    if len(board_layers) != len(host):
        raise TinymlError(f"the board timed {len(board_layers)} layers, compile.json lists {len(host)}: "
                          "is the board running this model?")
    rows = []
    for index, ((name, time), layer) in enumerate(zip(board_layers, host)):
        if name and name.upper() != layer["op"].upper():
            raise TinymlError(f"layer {index}: the board ran {name}, compile.json says {layer['op']}")
        macs = layer["macs"]
        rows.append(LayerTime(index, name or layer["op"], macs, int(time), time / macs if macs else None))
    return ProfileResult(unit, rows)


def read_profile(link: BoardLink, sample: bytes, compile_json: Path) -> ProfileResult:
    """Runs one inference of `sample`, then asks the board for its layer times."""
    info = link.info or link.hello()
    results = list(link.infer([(0, sample)], batch=1))
    if len(results) != 1:
        raise TinymlError("the board did not answer the profiling inference")
    return combine(link.profile(), host_layers(compile_json), info.latency_unit)


def format_table(result: ProfileResult) -> str:
    """Markdown table: op, MACs, time, time per MAC, share of the total."""
    unit = result.unit
    total = result.total_time or 1
    lines = [f"| # | op | MACs | {unit} | {unit}/MAC | share |", "| ---: | --- | ---: | ---: | ---: | ---: |"]
    for layer in result.layers:
        per_mac = "" if layer.time_per_mac is None else f"{layer.time_per_mac:.2f}"
        lines.append(f"| {layer.index} | {layer.op} | {layer.macs:,} | {layer.time:,} | {per_mac} | "
                     f"{100 * layer.time / total:.1f}% |")
    per_mac_total = f"{result.total_time / result.total_macs:.2f}" if result.total_macs else ""
    lines.append(f"| | total | {result.total_macs:,} | {result.total_time:,} | {per_mac_total} | 100% |")
    return "\n".join(lines) + "\n"


def write_profile(out_dir: Path, result: ProfileResult, board: str) -> list[Path]:
    """profile.md, profile.json and profile.png (time and MACs per layer), atomically."""
    from tinyml.plots import _pyplot

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("profile.md", f"# Per-layer profile on {board}\n\n" + format_table(result)),
                       ("profile.json", json.dumps({"board": board, "unit": result.unit,
                                                     "layers": [asdict(l) for l in result.layers]}, indent=2) + "\n")):
        temp = out_dir / f".{name}.tmp"
        temp.write_text(text)
        os.replace(temp, out_dir / name)
        written.append(out_dir / name)

    plt = _pyplot()
    labels = [f"{layer.index}:{layer.op}" for layer in result.layers]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(5.0, 0.6 * len(labels) + 2), 5.5), sharex=True)
    top.bar(range(len(labels)), [layer.time for layer in result.layers], color="#4477aa")
    top.set_ylabel(result.unit)
    top.set_title(f"Per-layer time on {board}")
    bottom.bar(range(len(labels)), [layer.macs for layer in result.layers], color="#cc6677")
    bottom.set_ylabel("MACs (host)")
    bottom.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    fig.tight_layout()
    temp = out_dir / ".profile.tmp.png"
    fig.savefig(temp, dpi=110)
    plt.close(fig)
    os.replace(temp, out_dir / "profile.png")
    written.append(out_dir / "profile.png")
    return written
