"""Board profiles: one TOML file per board in boards/."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import TinymlError
from .paths import boards_dir


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    mcu: str
    core: str
    clock_hz: int
    flash_bytes: int
    ram_bytes: int
    firmware_flash_bytes: int
    firmware_ram_bytes: int
    compile_target: str
    latency_unit: str
    uart: dict[str, Any] = field(default_factory=dict)
    build: dict[str, Any] = field(default_factory=dict)
    flasher: dict[str, Any] = field(default_factory=dict)
    emulator: dict[str, Any] | None = None
    timer: str = ""            # what the firmware's latency counter reads (reports name it)
    path: Path | None = None

    @property
    def model_flash_budget(self) -> int:
        """Bytes of flash left for the model once the firmware has its share."""
        return self.flash_bytes - self.firmware_flash_bytes

    @property
    def model_ram_budget(self) -> int:
        """Bytes of RAM left for the model's arena once the firmware has its share."""
        return self.ram_bytes - self.firmware_ram_bytes

    def check_model_fits(self, flash_bytes: int, ram_bytes: int, what: str = "model") -> None:
        """One line naming what the model needs and what the board has for it, if it does not fit.
        flash_bytes: what the model puts in flash (the engine's compiled constants, or the .tflite);
        ram_bytes: its arena."""
        if flash_bytes > self.model_flash_budget:
            raise TinymlError(
                f"{what} needs {flash_bytes:,} bytes of flash, board {self.name} has {self.model_flash_budget:,} "
                f"for it ({self.flash_bytes:,} minus {self.firmware_flash_bytes:,} of firmware; over by "
                f"{flash_bytes - self.model_flash_budget:,})")
        if ram_bytes > self.model_ram_budget:
            raise TinymlError(
                f"{what} needs {ram_bytes:,} bytes of RAM (arena), board {self.name} has {self.model_ram_budget:,} "
                f"for it ({self.ram_bytes:,} minus {self.firmware_ram_bytes:,} of firmware; over by "
                f"{ram_bytes - self.model_ram_budget:,})")

    @property
    def baud(self) -> int:
        return int(self.uart.get("baud", 115200))


_REQUIRED = ("name", "mcu", "core", "clock_hz", "flash_bytes", "ram_bytes")


def _from_toml(path: Path) -> Board:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TinymlError(f"board profile {path}: {exc}") from exc
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise TinymlError(f"board profile {path}: missing {', '.join(missing)}")
    return Board(
        name=data["name"],
        description=data.get("description", ""),
        mcu=data["mcu"],
        core=data["core"],
        clock_hz=int(data["clock_hz"]),
        flash_bytes=int(data["flash_bytes"]),
        ram_bytes=int(data["ram_bytes"]),
        firmware_flash_bytes=int(data.get("firmware_flash_bytes", 0)),
        firmware_ram_bytes=int(data.get("firmware_ram_bytes", 0)),
        compile_target=data.get("compile_target", "generic"),
        latency_unit=data.get("latency_unit", "cycles"),
        uart=data.get("uart", {}),
        build=data.get("build", {}),
        flasher=data.get("flasher", {}),
        emulator=data.get("emulator"),
        timer=str(data.get("timer", "")),
        path=path,
    )


def list_boards(directory: Path | None = None) -> list[Board]:
    directory = directory or boards_dir()
    return [_from_toml(p) for p in sorted(directory.glob("*.toml"))]


def load_board(name_or_path: str) -> Board:
    """A board by name (boards/NAME.toml) or by the path of a TOML file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" and candidate.is_file():
        return _from_toml(candidate)
    path = boards_dir() / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(b.name for b in list_boards())
        raise TinymlError(f"unknown board '{name_or_path}' (known: {known})")
    return _from_toml(path)
