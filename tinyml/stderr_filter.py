"""Keep TensorFlow's C++ log lines off the user's stderr.

TensorFlow's C++ side (absl logging, the CPU feature guard, oneDNN) writes
straight to file descriptor 2, on some CPUs whatever TF_CPP_MIN_LOG_LEVEL says
(an AVX-512 machine prints four lines on import). The CLI promises that bad
input is one `error:` line on stderr, so while a command runs, fd 2 is a pipe:
a thread reads it, drops the lines that are such native log lines and forwards
everything else, in order, to the real stderr. Leaving the context flushes
Python's stderr, puts the real fd 2 back and waits for the thread to forward
what is left, so every forwarded line comes before anything printed after.

What is dropped (`is_native_log_line`) is deliberately narrow: absl/glog lines
at INFO, WARNING or ERROR level (`I0000 00:00:1795902832.750953  10417
cpu_feature_guard.cc:227] ...`), absl's "before InitializeLog" banner and the
CPU feature guard's continuation line. FATAL lines are kept: the process is
about to abort and that line is the only reason given.
"""

from __future__ import annotations

import fcntl
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# absl / glog line prefix: severity, MMDD (absl prints 0000), time, thread id, file:line]
_ABSL_LINE = re.compile(rb"^[IWE]\d{4} \d{2}:\d{2}:[\d.]+ +\d+ [^\s\]]+:\d+\] ")
_ABSL_BANNER = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# The second line of cpu_feature_guard.cc's message (one absl record spanning two lines).
_CPU_GUARD_CONTINUATION = re.compile(
    rb"^To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.$")
_CPU_GUARD_PREFIX = b"To enable the following instructions: "
# An unfinished line that is, as far as it goes, an absl line: "I", "I00", "I0000 00:..."
_ABSL_START_SO_FAR = re.compile(rb"^[IWE](\d{0,4}|\d{4} .*)$", re.S)
# Bytes of a pipe the thread may fall behind by before a writer blocks (Linux default is 64 KiB).
_PIPE_BYTES = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
# How long leaving the context waits for the thread after fd 2 is restored; only a
# child process still holding the pipe (started with an inherited stderr) makes it wait.
_JOIN_SECONDS = 5.0


def is_native_log_line(line: bytes) -> bool:
    """True for one line (without its line ending) that TF's C++ logging wrote."""
    line = line.rstrip(b"\r\n")
    return (bool(_ABSL_LINE.match(line)) or line == _ABSL_BANNER or bool(_CPU_GUARD_CONTINUATION.match(line)))


def _may_become_native_log_line(partial: bytes) -> bool:
    """Whether an unfinished line could still turn out to be one to drop (so it is held back)."""
    if _ABSL_BANNER.startswith(partial) or _CPU_GUARD_PREFIX.startswith(partial):
        return True   # still shorter than (or equal to) a known start
    if partial.startswith(_CPU_GUARD_PREFIX):
        return True
    return bool(_ABSL_START_SO_FAR.match(partial))


class _Forwarder:
    """Reads the pipe, splits it into lines (\\n or \\r, so progress bars pass), forwards the keepers."""

    def __init__(self, read_fd: int, out_fd: int) -> None:
        self.read_fd, self.out_fd = read_fd, out_fd
        self.pending = b""          # the start of a line not yet forwarded or dropped
        self.passing = False        # the current line's start was forwarded, so its rest is too

    def _write(self, data: bytes) -> None:
        while data:
            try:
                data = data[os.write(self.out_fd, data):]
            except OSError:
                return  # the real stderr is gone (closed pipe): nothing left to tell

    def feed(self, data: bytes) -> None:
        buffer = self.pending + data
        start = 0
        for match in re.finditer(rb"\r\n|\n|\r", buffer):
            segment = buffer[start:match.end()]
            start = match.end()
            if self.passing or not is_native_log_line(segment):
                self._write(segment)
            self.passing = False
        rest = buffer[start:]
        if rest and (self.passing or not _may_become_native_log_line(rest)):
            self._write(rest)
            self.passing, rest = True, b""
        self.pending = rest

    def finish(self) -> None:
        if self.pending and not is_native_log_line(self.pending):
            self._write(self.pending)
        self.pending = b""

    def run(self) -> None:
        try:
            while True:
                chunk = os.read(self.read_fd, 65536)
                if not chunk:
                    break
                self.feed(chunk)
            self.finish()
        finally:
            os.close(self.read_fd)


@contextmanager
def native_log_filter() -> Iterator[None]:
    """Within the context, fd 2 passes through a filter that drops TF's C++ log lines."""
    try:
        real_stderr = os.dup(2)
    except OSError:   # no fd 2 at all: nothing to protect
        yield
        return
    read_fd, write_fd = os.pipe()
    try:
        fcntl.fcntl(write_fd, _F_SETPIPE_SZ, _PIPE_BYTES)
    except OSError:
        pass  # a smaller pipe only means writers may wait for the thread sooner
    forwarder = _Forwarder(read_fd, real_stderr)
    thread = threading.Thread(target=forwarder.run, name="tinyml-stderr-filter", daemon=True)
    thread.start()
    sys.stderr.flush()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(real_stderr, 2)   # closes the pipe's last writer in this process: the thread sees EOF
        thread.join(_JOIN_SECONDS)
        if not thread.is_alive():   # else the thread still writes to it until the process ends
            os.close(real_stderr)
