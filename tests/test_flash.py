"""tinyml flash: port discovery by USB VID:PID, the upload tool invocations,
the error paths (no board, several boards, busy port, missing tool) and the
HELLO check of the model hash afterwards. Real uploads cannot run here: the
tools are stand-in scripts on PATH that record their arguments, and the board
behind the port is the native-port firmware or the emulated rv32 board."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
import serial

from tinyml.boards import load_board
from tinyml.errors import TinymlError
from tinyml.host import flash
from tinyml.testing.fixture_model import FIXTURE_DIR

FIXTURE_MODEL = FIXTURE_DIR  # the fixture model.h + model.c (tinyml.testing)
FIXTURE_SHA = "f1" * 32
STLINK = (0x0483, 0x374B)
CP210X = (0x10C4, 0xEA60)


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch) -> Path:
    """Upload logs and emulator records go to the test's own state directory."""
    monkeypatch.setenv("TINYML_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def _flash_temp_dirs() -> set[str]:
    import tempfile

    return {p.name for p in Path(tempfile.gettempdir()).glob("tinyml-flash-*")}


@pytest.fixture()
def pty_device():
    """A real tty device path nobody holds (the slave side of a pty)."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    yield path
    os.close(slave)
    os.close(master)


def fake_ports(monkeypatch, *ports: tuple[str, tuple[int, int] | None, str | None]) -> None:
    listed = [SimpleNamespace(device=d, vid=ids[0] if ids else None, pid=ids[1] if ids else None, serial_number=sn,
                              description="test port") for d, ids, sn in ports]
    monkeypatch.setattr(flash.list_ports, "comports", lambda: listed)


def fake_tool(directory: Path, name: str, exit_code: int = 0) -> Path:
    """A script that appends its argv (and TINYML_MODEL_DIR) as JSON to NAME.calls."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / name
    calls = directory / f"{name}.calls"
    script.write_text(
        "#!/usr/bin/env python3\nimport json, os, sys\n"
        f"open({str(calls)!r}, 'a').write(json.dumps({{'argv': sys.argv[1:], "
        "'model_dir': os.environ.get('TINYML_MODEL_DIR'), 'cwd': os.getcwd()}) + '\\n')\n"
        f"print('fake {name} ran')\nsys.exit({exit_code})\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return calls


def calls_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture()
def tool_path(tmp_path, monkeypatch) -> Path:
    """PATH holds only the stand-in tools (plus python3 for their shebang)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(__import__("sys").executable)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setitem(__import__("sys").modules, "esptool", None)  # no `python -m esptool` fallback
    return bin_dir


def test_discovery_picks_the_one_matching_port(monkeypatch):
    board = load_board("nucleo_f446re")
    fake_ports(monkeypatch, ("/dev/ttyS0", None, None), ("/dev/ttyUSB0", CP210X, "0001"),
               ("/dev/ttyACM0", STLINK, "066DFF"))
    port = flash.select_port(board)
    assert port.device == "/dev/ttyACM0" and port.usb_id == "0483:374B" and port.serial_number == "066DFF"
    assert [p.device for p in flash.find_board_ports(load_board("esp32dev"))] == ["/dev/ttyUSB0"]


def test_no_board_names_the_usb_ids(monkeypatch):
    fake_ports(monkeypatch, ("/dev/ttyS0", None, None))
    with pytest.raises(TinymlError, match=r"no esp32s3 board found.*303A:1001"):
        flash.select_port(load_board("esp32s3"))


def test_several_boards_are_listed(monkeypatch):
    fake_ports(monkeypatch, ("/dev/ttyACM0", STLINK, "A"), ("/dev/ttyACM1", (0x0483, 0x374E), "B"))
    with pytest.raises(TinymlError, match=r"several possible nucleo_h743zi boards.*ttyACM0.*ttyACM1.*--port"):
        flash.select_port(load_board("nucleo_h743zi"))


def test_explicit_port_must_exist(monkeypatch, pty_device):
    fake_ports(monkeypatch)
    assert flash.select_port(load_board("esp32dev"), pty_device).device == pty_device
    with pytest.raises(TinymlError, match="does not exist"):
        flash.select_port(load_board("esp32dev"), "/dev/ttyNOPE9")


def test_busy_port_is_reported(pty_device):
    flash.check_port_free(pty_device)  # free: no error
    holder = serial.Serial(pty_device, exclusive=True)
    try:
        with pytest.raises(TinymlError, match="is busy"):
            flash.check_port_free(pty_device)
    finally:
        holder.close()


def test_missing_tools_are_named(monkeypatch, tool_path, tmp_path, pty_device):
    fake_ports(monkeypatch, (pty_device, STLINK, None))
    with pytest.raises(TinymlError, match=r"PlatformIO not found.*pip install platformio"):
        flash.flash_board("nucleo_f446re", model_dir=FIXTURE_MODEL, verify=False)
    image = tmp_path / "fw.bin"
    image.write_bytes(b"\0" * 64)
    with pytest.raises(TinymlError, match=r"st-flash or openocd"):
        flash.flash_board("nucleo_f446re", image=image, verify=False)
    fake_ports(monkeypatch, (pty_device, CP210X, None))
    with pytest.raises(TinymlError, match=r"esptool not found"):
        flash.flash_board("esp32dev", image=image, verify=False)


def test_platformio_upload_command(monkeypatch, tool_path, pty_device):
    calls = fake_tool(tool_path, "pio")
    fake_ports(monkeypatch, (pty_device, STLINK, "X1"))
    result = flash.flash_board("nucleo_h743zi", model_dir=FIXTURE_MODEL, verify=False)
    (call,) = calls_of(calls)
    assert call["argv"] == ["run", "-e", "nucleo_h743zi", "-t", "upload", "--upload-port", pty_device]
    assert call["model_dir"] == str(FIXTURE_MODEL.resolve())
    assert Path(call["cwd"]) == flash.firmware_dir()
    assert result.tool == "platformio" and result.expected_sha256 == FIXTURE_SHA and result.info is None
    # The tflm twin environment needs emit's artifacts, which a compiled model dir lacks.
    with pytest.raises(TinymlError, match=r"model_data.cc.*tinyml emit"):
        flash.flash_board("nucleo_h743zi", model_dir=FIXTURE_MODEL, backend="tflm", verify=False)


def test_failing_tool_reports_its_output(monkeypatch, tool_path, pty_device, state_dir):
    fake_tool(tool_path, "pio", exit_code=1)
    fake_ports(monkeypatch, (pty_device, CP210X, None))
    before = _flash_temp_dirs()
    with pytest.raises(TinymlError, match=r"pio failed \(fake pio ran\); full log in .*flash-esp32dev.log"):
        flash.flash_board("esp32dev", model_dir=FIXTURE_MODEL, verify=False)
    # The log is the one per board in the state directory; no temporary folder is left behind.
    assert "fake pio ran" in (state_dir / "logs" / "flash-esp32dev.log").read_text()
    assert _flash_temp_dirs() == before


def test_prebuilt_images_use_the_vendor_tools(monkeypatch, tool_path, tmp_path, pty_device):
    st_calls = fake_tool(tool_path, "st-flash")
    objcopy_calls = fake_tool(tool_path, "arm-none-eabi-objcopy")
    esptool_calls = fake_tool(tool_path, "esptool.py")
    elf = tmp_path / "fw.elf"
    elf.write_bytes(b"\x7fELF")
    fake_ports(monkeypatch, (pty_device, STLINK, "066D"))
    flash.flash_board("nucleo_f446re", image=elf, verify=False)
    assert calls_of(objcopy_calls)[0]["argv"] == ["-O", "binary", str(elf), str(elf.with_suffix(".bin"))]
    assert calls_of(st_calls)[0]["argv"] == ["--serial", "066D", "--reset", "write", str(elf.with_suffix(".bin")),
                                             "0x8000000"]
    # A PlatformIO ESP32-S3 build directory: bootloader, partitions and app at their offsets.
    build = tmp_path / "pio"
    build.mkdir()
    for name in ("bootloader.bin", "partitions.bin", "firmware.bin"):
        (build / name).write_bytes(b"\xe9")
    fake_ports(monkeypatch, (pty_device, (0x303A, 0x1001), None))
    result = flash.flash_board("esp32s3", image=build / "firmware.bin", verify=False)
    argv = calls_of(esptool_calls)[0]["argv"]
    assert argv[:4] == ["--chip", "esp32s3", "--port", pty_device]
    assert argv[argv.index("write_flash") + 1:] == ["0x0", str(build / "bootloader.bin"), "0x8000",
                                                     str(build / "partitions.bin"), "0x10000",
                                                     str(build / "firmware.bin")]
    assert result.tool == "esptool"


def test_openocd_when_st_flash_is_absent(monkeypatch, tool_path, tmp_path, pty_device):
    calls = fake_tool(tool_path, "openocd")
    elf = tmp_path / "fw.elf"
    elf.write_bytes(b"\x7fELF")
    fake_ports(monkeypatch, (pty_device, STLINK, "SN7"))
    flash.flash_board("nucleo_h743zi", image=elf, verify=False)
    argv = calls_of(calls)[0]["argv"]
    assert argv == ["-f", "interface/stlink.cfg", "-c", "adapter serial SN7", "-f", "target/stm32h7x.cfg",
                    "-c", f"program {elf} verify reset exit"]


@pytest.mark.slow
def test_hello_after_flashing_checks_the_model_hash(monkeypatch, tool_path, tmp_path):
    """The port behind the fake ST-LINK is the native-port firmware serving the fixture model."""
    from tinyml.host.build import build_native_firmware
    from tinyml.host.emulator import start_native_board

    system_path = os.pathsep.join(["/usr/local/bin", "/usr/bin", "/bin"])
    if shutil.which("cmake", path=system_path) is None or shutil.which("cc", path=system_path) is None:
        pytest.skip("needs cmake and a host C compiler")
    monkeypatch.setenv("PATH", f"{tool_path}{os.pathsep}{system_path}")
    image = build_native_firmware(FIXTURE_MODEL, tmp_path / "host")
    board_process = start_native_board(image)
    try:
        fake_tool(tool_path, "pio")
        fake_ports(monkeypatch, (board_process.port, STLINK, None))
        result = flash.flash_board("nucleo_f446re", model_dir=FIXTURE_MODEL)
        assert result.info is not None and result.info.model_sha256 == FIXTURE_SHA
        with pytest.raises(TinymlError, match="runs model f1f1"):
            flash.flash_board("nucleo_f446re", model_dir=FIXTURE_MODEL, expected_sha256="ab" * 32)
    finally:
        board_process.stop()


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.skipif(shutil.which("qemu-system-riscv32") is None or shutil.which("riscv64-unknown-elf-gcc") is None,
                    reason="needs qemu-system-riscv32 and riscv64-unknown-elf-gcc")
def test_flashing_an_emulated_board_boots_it(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYML_STATE_DIR", str(tmp_path / "state"))
    from tinyml.host.build import build_firmware
    from tinyml.host.emulator import find_running_emulator

    board = load_board("rv32_virt")
    image = build_firmware(board, FIXTURE_MODEL, tmp_path / "build", engine_dir=None)
    before = _flash_temp_dirs()
    result = flash.flash_board(board, image=image.path, model_dir=FIXTURE_MODEL)
    built = None
    try:
        assert result.tool == "qemu" and result.info is not None
        assert result.info.board == "rv32_virt" and result.info.model_sha256 == FIXTURE_SHA
        running = find_running_emulator(board, FIXTURE_MODEL)
        assert running is not None and running.pid == result.emulator.pid and running.kept
        # Built here, the image lives in the emulator's own folder, removed when it stops.
        built = flash.flash_board(board, model_dir=FIXTURE_MODEL, build_dir=None, image=None)
        assert built.image is not None and Path(built.emulator.work_dir) in built.image.parents
        assert not result.emulator.alive()  # the same board from the same model dir: replaced
        other = flash.flash_board(board, image=image.path, model_dir=tmp_path / "other-model-dir",
                                  expected_sha256=FIXTURE_SHA)
        assert other.emulator.alive() and built.emulator.alive()  # another model dir: both run
        other.emulator.stop()
    finally:
        result.emulator.stop()
        if built is not None:
            built.emulator.stop()
    assert not Path(built.emulator.work_dir).exists()
    assert _flash_temp_dirs() == before
