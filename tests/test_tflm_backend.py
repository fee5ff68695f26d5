"""The TFLite-Micro backend's build, without TFLite-Micro itself (its sources are
not available here; the whole path was checked by hand against a real tree, see
benchmarks/results/tflm.md):

* every port's startup runs C++ static constructors (.init_array), checked by
  running a C++ fixture on the native port, the emulated STM32F405 and rv32_virt;
* CMake picks the tflm backend's files, and only them, from a TFLM tree laid
  out like the real one (a fake tree: configured, never compiled);
* the firmware build and the CLI ask for what the tflm backend needs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_fixtures import FIXTURE_DIR, TEST_FIXTURES_DIR
from tinyml.boards import load_board
from tinyml.errors import TinymlError
from tinyml.host.build import TflmSource, build_port_firmware, check_model_dir
from tinyml.paths import firmware_dir

CTOR_PROBE_DIR = TEST_FIXTURES_DIR / "ctor_probe"
# ctor_probe.cc's three constructors, in declaration order: 0x21 0x21 . . ->
# 0x21 0x21 0x35 0x35 -> 0x21 (0x21*2+1) (0x35*2+1) 0x35.
CTOR_STAMPS = bytes([0x21, 0x43, 0x6B, 0x35])

PORTS = {
    "native": ("native", ["gcc", "g++"], None),
    "qemu_stm32f405": ("stm32f405", ["arm-none-eabi-gcc", "arm-none-eabi-g++", "qemu-system-arm"], "stm32f405"),
    "rv32_virt": ("rv32_virt", ["riscv64-unknown-elf-gcc", "riscv64-unknown-elf-g++", "qemu-system-riscv32"],
                  "rv32_virt"),
}


@pytest.fixture()
def state_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TINYML_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.mark.parametrize("port", list(PORTS))
def test_cpp_static_constructors_run_before_main(port, tmp_path, state_dir):
    from tinyml.host.emulator import start_emulator, start_native_board
    from tinyml.host.link import BoardLink
    from tinyml.host.transport import open_port

    board_name, tools, profile = PORTS[port]
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    image = build_port_firmware(port, board_name, CTOR_PROBE_DIR, tmp_path / "build", engine_dir=None,
                                extra=[f"-DTINYML_EXTRA_SOURCES={CTOR_PROBE_DIR / 'ctor_probe.cc'}"])
    if port != "native":
        symbols = subprocess.run([shutil.which("nm") or "nm", str(image.path)], capture_output=True, text=True).stdout
        assert "__init_array_start" in symbols
    board = start_native_board(image) if profile is None else start_emulator(load_board(profile), image)
    try:
        transport = open_port(board.port)
        try:
            link = BoardLink(transport)
            info = link.hello()
            assert info.model_sha256 == "c7" * 32 and info.model_ready
            results = list(link.infer([(0, bytes(4)), (1, bytes([1, 2, 3, 4]))]))
        finally:
            transport.close()
    finally:
        board.stop()
    outputs = {r.index: r.output for r in results}
    # Zero input: the output is the stamps, so every constructor ran once, in order.
    assert outputs[0] == CTOR_STAMPS
    assert outputs[1] == bytes((s + d) & 0xFF for s, d in zip(CTOR_STAMPS, [1, 2, 3, 4]))


def _touch(root: Path, *paths: str) -> None:
    for relative in paths:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("/* fake: configured, never compiled */\n")


@pytest.fixture()
def fake_tree(tmp_path) -> Path:
    """A tree shaped like create_tflm_tree.py output for two targets, with CMSIS-NN."""
    tree = tmp_path / "tflm"
    _touch(tree,
           "tensorflow/lite/micro/micro_interpreter.h",
           "tensorflow/lite/micro/micro_interpreter.cc",
           "tensorflow/lite/micro/micro_allocator.cc",
           "tensorflow/lite/micro/micro_time.cc",
           "tensorflow/lite/micro/debug_log.cc",
           "tensorflow/lite/micro/cortex_m_generic/micro_time.cc",
           "tensorflow/lite/micro/cortex_m_generic/debug_log.cc",
           "tensorflow/lite/micro/riscv32_generic/debug_log.cc",
           "tensorflow/lite/micro/kernels/conv.cc",
           "tensorflow/lite/micro/kernels/conv_common.cc",
           "tensorflow/lite/micro/kernels/add.cc",
           "tensorflow/lite/micro/kernels/conv_test.cc",
           "tensorflow/lite/micro/kernels/cmsis_nn/conv.cc",
           "tensorflow/lite/micro/examples/hello_world/main.cc",
           "tensorflow/lite/micro/test_helpers.cc",
           "tensorflow/lite/kernels/internal/common.cc",
           "third_party/flatbuffers/include/flatbuffers/flatbuffers.h",
           "third_party/cmsis_nn/Include/arm_nnfunctions.h",
           "third_party/cmsis_nn/Source/ConvolutionFunctions/arm_convolve_s8.c",
           "third_party/cmsis_nn/Source/SoftmaxFunctions/arm_softmax_f32.c")
    return tree


@pytest.fixture()
def emitted_dir(tmp_path) -> Path:
    directory = tmp_path / "emitted"
    _touch(directory, "model_data.cc", "model_data.h", "model_ops.h", "model_io.h")
    return directory


def _env_without_tflm() -> dict[str, str]:
    """The environment minus a user's TINYML_TFLM_* (the tests name their own tree)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TINYML_TFLM_")}


def _configure(tmp_path: Path, model_dir: Path, *defines: str, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess:
    if shutil.which("cmake") is None:
        pytest.skip("needs cmake")
    build = tmp_path / "cmake"
    return subprocess.run(["cmake", "-S", str(firmware_dir()), "-B", str(build), "-DTINYML_PORT=native",
                           "-DTINYML_BACKEND=tflm", f"-DTINYML_MODEL_DIR={model_dir}",
                           "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON", *defines],
                          capture_output=True, text=True, env={**_env_without_tflm(), **(env or {})})


def _compiled_files(tmp_path: Path) -> dict[str, str]:
    commands = json.loads((tmp_path / "cmake" / "compile_commands.json").read_text())
    return {str(Path(c["file"]).resolve()): c["command"] for c in commands}


def test_cmake_builds_the_tree_sources_the_tflm_backend_needs(tmp_path, fake_tree, emitted_dir):
    done = _configure(tmp_path, emitted_dir, f"-DTINYML_TFLM_DIR={fake_tree}")
    assert done.returncode == 0, done.stderr
    assert f"tinyml: tflm backend, 7 TFLite-Micro sources from {fake_tree}" in done.stdout
    files = _compiled_files(tmp_path)
    tree = {str(Path(f).relative_to(fake_tree)) for f in files if f.startswith(str(fake_tree))}
    assert tree == {
        "tensorflow/lite/micro/micro_interpreter.cc",
        "tensorflow/lite/micro/micro_allocator.cc",
        "tensorflow/lite/micro/kernels/cmsis_nn/conv.cc",   # the vendor kernel, not kernels/conv.cc
        "tensorflow/lite/micro/kernels/conv_common.cc",
        "tensorflow/lite/micro/kernels/add.cc",
        "tensorflow/lite/kernels/internal/common.cc",
        "third_party/cmsis_nn/Source/ConvolutionFunctions/arm_convolve_s8.c",
    }
    ours = {Path(f).name for f in files if not f.startswith(str(fake_tree))}
    # No engine file and no model.c: the tflm backend builds the emitted model.
    assert ours == {"tm_core.c", "tm_frame.c", "tm_main.c", "tm_port_native.c", "tm_model_tflm.cc",
                    "tm_tflm_platform.cc", "model_data.cc"}
    backend = next(command for f, command in files.items() if f.endswith("tm_model_tflm.cc"))
    assert "-DCMSIS_NN" in backend and "-DTF_LITE_STATIC_MEMORY" in backend
    assert f"-isystem {fake_tree}/third_party/flatbuffers/include" in backend


def test_cmake_links_a_prebuilt_library_instead_of_the_sources(tmp_path, fake_tree, emitted_dir):
    library = tmp_path / "libtensorflow-microlite.a"
    library.write_bytes(b"!<arch>\n")
    done = _configure(tmp_path, emitted_dir, f"-DTINYML_TFLM_DIR={fake_tree}", f"-DTINYML_TFLM_LIB={library}")
    assert done.returncode == 0, done.stderr
    files = _compiled_files(tmp_path)
    assert not [f for f in files if f.startswith(str(fake_tree))]
    assert {Path(f).name for f in files} >= {"tm_model_tflm.cc", "model_data.cc"}
    assert "tm_tflm_platform.cc" not in {Path(f).name for f in files}  # the library brings its own
    link = (tmp_path / "cmake" / "CMakeFiles" / "tinyml_fw.dir" / "link.txt").read_text()
    assert str(library) in link


def test_cmake_takes_the_library_build_defines_from_the_environment(tmp_path, fake_tree, emitted_dir):
    """A BUILD_TYPE=release library has no MicroPrintf: the backend must see TF_LITE_STRIP_ERROR_STRINGS too."""
    release = "TF_LITE_STATIC_MEMORY;TF_LITE_STRIP_ERROR_STRINGS;NDEBUG"
    done = _configure(tmp_path, emitted_dir, f"-DTINYML_TFLM_DIR={fake_tree}", env={"TINYML_TFLM_DEFINES": release})
    assert done.returncode == 0, done.stderr
    backend = next(command for f, command in _compiled_files(tmp_path).items() if f.endswith("tm_model_tflm.cc"))
    assert all(f"-D{define}" in backend for define in release.split(";"))


@pytest.mark.parametrize("problem, message", [
    ("no-tree", "is not a TFLite-Micro tree"),
    ("no-emit", "holds no model_data.cc for the tflm backend (run tinyml emit)"),
    ("no-flatbuffers", "no flatbuffers headers"),
])
def test_cmake_names_what_the_tflm_backend_misses(tmp_path, fake_tree, emitted_dir, problem, message):
    if problem == "no-emit":
        (emitted_dir / "model_data.cc").unlink()
    if problem == "no-flatbuffers":
        shutil.rmtree(fake_tree / "third_party" / "flatbuffers")
    tree = tmp_path / "nowhere" if problem == "no-tree" else fake_tree
    done = _configure(tmp_path, emitted_dir, f"-DTINYML_TFLM_DIR={tree}")
    assert done.returncode != 0
    assert message in done.stderr.replace("\n", " ").replace("  ", " ")


def test_engine_files_are_not_asked_of_the_tflm_backend(tmp_path, emitted_dir, fake_tree):
    check_model_dir(emitted_dir, "tflm")
    with pytest.raises(TinymlError, match=r"holds no compiled model \(model.c, model.h missing\).*tinyml compile"):
        check_model_dir(emitted_dir, "engine")
    with pytest.raises(TinymlError, match=r"holds no emitted model \(model_data.cc, model_data.h, model_ops.h, "
                                          r"model_io.h missing\).*tinyml emit"):
        check_model_dir(FIXTURE_DIR, "tflm")


def test_tflm_tree_comes_from_the_option_or_the_environment(fake_tree, monkeypatch, tmp_path):
    for name in ("TINYML_TFLM_DIR", "TINYML_TFLM_LIB", "TINYML_TFLM_DEFINES"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(TinymlError, match="give --tflm-dir DIR or set TINYML_TFLM_DIR"):
        TflmSource.resolve()
    assert TflmSource.resolve(fake_tree).tree == fake_tree.resolve()
    monkeypatch.setenv("TINYML_TFLM_DIR", str(fake_tree))
    assert TflmSource.resolve().cmake_args() == [f"-DTINYML_TFLM_DIR={fake_tree.resolve()}", "-DTINYML_TFLM_LIB="]
    with pytest.raises(TinymlError, match="is not a TFLite-Micro tree"):
        TflmSource.resolve(tmp_path)
    with pytest.raises(TinymlError, match="does not exist"):
        TflmSource.resolve(fake_tree, tmp_path / "missing.a")


def test_flash_with_tflm_and_no_tree_is_one_line_error(tmp_path, emitted_dir, state_dir):
    env = {**_env_without_tflm(), "TINYML_STATE_DIR": str(state_dir)}
    done = subprocess.run([sys.executable, "-m", "tinyml.cli", "flash", "--board", "stm32f405", "--model-dir",
                           str(emitted_dir), "--backend", "tflm"], capture_output=True, text=True, env=env)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "error: the tflm backend needs a TFLite-Micro tree: give --tflm-dir DIR or set TINYML_TFLM_DIR"]


def test_core_forgets_a_load_the_inference_overwrote(tmp_path, state_dir):
    """The tflm backend loads into the input tensor, which an inference may reuse:
    a backend that says so (invoke_clobbers_load) gets each loaded sample right,
    and a repeated INFER_LOADED is refused (`load`) instead of running garbage."""
    import time

    import numpy as np

    from firmware_fixtures import fixture_outputs, write_fixture_firmware_dir
    from firmware_fixtures.boards import board_link, running_board
    from tinyml.host import protocol as p

    model = write_fixture_firmware_dir(tmp_path / "model", input_bytes=6084)  # 78 x 78: more than one frame
    image = build_port_firmware("native", "native", model, tmp_path / "build",
                                backend=str(TEST_FIXTURES_DIR / "clobber_backend"), engine_dir=None)
    inputs = np.random.default_rng(3).integers(-128, 128, (5, 6084), dtype=np.int8)
    expected = fixture_outputs(inputs)

    def request(link, msg_type: int, payload: bytes) -> p.Frame:
        seq = link._next_seq()
        link.transport.write(p.encode_frame(msg_type, seq, payload))
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            for frame in link._events():
                if frame.seq == seq:
                    return frame
        raise AssertionError("no answer")

    with running_board(image) as board, board_link(board) as link:
        assert link.info.backend == "clobber" and link.info.features & 1
        results = list(link.infer((i, inputs[i].tobytes()) for i in range(len(inputs))))
        assert sorted(r.index for r in results) == list(range(len(inputs)))
        assert all(r.output == expected[r.index].tobytes() for r in results)
        data = inputs[0].tobytes()
        for offset in range(0, len(data), 3000):
            request(link, p.MSG_LOAD, p.load_payload(41, offset, data[offset:offset + 3000]))
        first = request(link, p.MSG_INFER_LOADED, p.infer_loaded_payload(41, 0))
        assert p.parse_result(first.payload, 10).outputs[0] == expected[0].tobytes()
        again = request(link, p.MSG_INFER_LOADED, p.infer_loaded_payload(41, 0))
        assert again.type == p.MSG_ERROR
        error = p.parse_error(again.payload)
        assert (error.code, error.detail) == (p.ERR_LOAD, 0)
