"""stderr stays clean on any CPU: TensorFlow's C++ log lines (written to fd 2 behind
Python's back, more of them on CPUs with AVX-512) never reach the user, everything
else does, in order, and bad input is still one `error:` line.

The noise here is written by the test itself, byte for byte as TensorFlow prints it,
so these tests do not depend on which CPU (or which TensorFlow build) runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tinyml.stderr_filter import _Forwarder, is_native_log_line

# What `import tensorflow` printed on an AVX-512 machine (issue 12) and on this one.
TF_NOISE = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"I0000 00:00:1795902832.750953   10417 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    b"available CPU instructions in performance-critical operations.\n",
    b"To enable the following instructions: AVX512F AVX512_VNNI AVX512_BF16 AVX512_FP16 AVX_VNNI AMX_TILE AMX_INT8 "
    b"AMX_BF16 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.\n",
    b"I0000 00:00:1732819462.123456   12345 port.cc:153] oneDNN custom operations are on. You may see slightly "
    b"different numerical results due to floating-point round-off errors from different computation orders. To turn "
    b"them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n",
    b"E0000 00:00:1732819463.000001   12345 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting to register "
    b"factory for plugin cuDNN when one has already been registered\n",
    b"W0000 00:00:1732819463.5   12345 loader.cc:80] a warning\n",
]
KEPT = [
    b"error: the bad input\n",
    b"Traceback (most recent call last):\n",
    b"F0000 00:00:1732819463.000001   12345 check.cc:10] Check failed: the reason a process aborts\n",
    b"WARNING: something a user should read\n",
    b"[prepare] training the teacher\n",
    b"I am not a log line\n",
    b"To enable this, pass --profile\n",
]


@pytest.mark.parametrize("line", TF_NOISE)
def test_tensorflow_log_lines_are_recognised(line):
    assert is_native_log_line(line)


@pytest.mark.parametrize("line", KEPT)
def test_other_lines_are_not(line):
    assert not is_native_log_line(line)


def _forwarded(chunks: list[bytes]) -> bytes:
    out_r, out_w = os.pipe()
    forwarder = _Forwarder(read_fd=-1, out_fd=out_w)
    for chunk in chunks:
        forwarder.feed(chunk)
    forwarder.finish()
    os.close(out_w)
    data = b""
    while chunk := os.read(out_r, 65536):
        data += chunk
    os.close(out_r)
    return data


def test_forwarder_drops_noise_split_anywhere_and_keeps_the_rest_in_order():
    stream = TF_NOISE[0] + KEPT[4] + TF_NOISE[1] + TF_NOISE[2] + KEPT[3] + TF_NOISE[3] + KEPT[0]
    for size in (1, 7, 64, len(stream)):
        chunks = [stream[i:i + size] for i in range(0, len(stream), size)]
        assert _forwarded(chunks) == KEPT[4] + KEPT[3] + KEPT[0], size


def test_progress_bars_pass_at_once_and_an_unfinished_last_line_is_not_lost():
    read_fd, write_fd = os.pipe()
    forwarder = _Forwarder(read_fd=-1, out_fd=write_fd)
    forwarder.feed(b"\rteacher:  10%|#")          # a tqdm update: no newline, must show now
    os.close(write_fd)
    assert os.read(read_fd, 100) == b"\rteacher:  10%|#"
    os.close(read_fd)
    assert _forwarded([b"I0000 00:00:1.5 1 a.cc:1] x\n", b"last words without a newline"]) == \
        b"last words without a newline"


def _run_noisy_command(tmp_path, body: str) -> subprocess.CompletedProcess:
    """A `noisy` command added to the real CLI, run through `tinyml.cli.main` in a fresh process."""
    script = tmp_path / "noisy.py"
    header = textwrap.dedent(f"""\
        import ctypes, os, sys, threading
        from tinyml import cli
        from tinyml.errors import TinymlError

        NOISE = {TF_NOISE!r}
        libc = ctypes.CDLL(None)

        def c_write(data):
            # as TensorFlow's C++ does: straight to fd 2, not through sys.stderr
            libc.write(2, data, len(data))

        @cli.cli.command("noisy")
        def noisy():
        """)
    script.write_text(header + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n\ncli.main()\n")
    return subprocess.run([sys.executable, str(script), "noisy"], capture_output=True, timeout=120, cwd=tmp_path)


def test_bad_input_after_tensorflow_noise_is_exactly_one_error_line(tmp_path):
    result = _run_noisy_command(tmp_path, """
        for line in NOISE:
            c_write(line)
        worker = threading.Thread(target=lambda: c_write(NOISE[1]))   # TF logs from its own threads too
        worker.start(); worker.join()
        raise TinymlError("unknown board 'nope'")
    """)
    assert result.returncode == 2
    assert result.stderr == b"error: unknown board 'nope'\n"


def test_what_is_not_noise_reaches_stderr_in_order(tmp_path):
    result = _run_noisy_command(tmp_path, """
        c_write(NOISE[0])
        print("[stage] first", file=sys.stderr, flush=True)
        c_write(NOISE[1][:20]); c_write(NOISE[1][20:])
        c_write(b"a line the C side wants seen\\n")
        sys.stderr.write("unfinished")
    """)
    assert result.returncode == 0
    assert result.stderr == b"[stage] first\na line the C side wants seen\nunfinished"


def test_a_crash_keeps_its_traceback(tmp_path):
    result = _run_noisy_command(tmp_path, """
        c_write(NOISE[1])
        raise RuntimeError("a bug, not bad input")
    """)
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert lines[0] == "Traceback (most recent call last):" and lines[-1] == "RuntimeError: a bug, not bad input"
    assert not any(is_native_log_line(line.encode()) for line in lines)
