"""The board session (host/session.py) and the emulator records behind
`tinyml emulator list|stop`, on the native-port firmware with the fixture model:
boot, model hash check, bench, and the clean-up on every path."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from firmware_fixtures import FIXTURE_SHA256, write_fixture_model_dir
from firmware_fixtures.boards import fixture_image
from tinyml.errors import TinymlError
from tinyml.host.emulator import find_running_emulator, list_emulators, resolve_port, start_native_board, stop_emulators
from tinyml.host.session import BoardSession


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return fixture_image(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_fixture_model_dir(tmp_path_factory.mktemp("session_model"), count=40)


@pytest.fixture()
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYML_STATE_DIR", str(tmp_path / "state"))
    yield tmp_path / "state"
    stop_emulators("all")


def test_session_boots_checks_benches_and_stops(image, model_dir, tmp_path, state):
    with BoardSession.boot(None, image, expected_sha256=FIXTURE_SHA256) as session:
        assert session.info is not None and session.info.model_sha256 == FIXTURE_SHA256
        process = session.emulator
        assert process is not None and process.alive()
        result = session.bench(model_dir, tmp_path / "bench", progress=False)
        # The session's one port served the bench too; the profile asks the same link.
        assert result.report["samples"] == 40 and result.report["agreement"] == 1.0
    assert not process.alive()
    assert list_emulators() == []


def test_session_stops_the_board_when_the_block_fails(image, state):
    with pytest.raises(RuntimeError):
        with BoardSession.boot(None, image) as session:
            process = session.emulator
            raise RuntimeError("the caller's own failure")
    assert not process.alive()


def test_session_refuses_another_model_and_cleans_up(image, state, monkeypatch):
    started = []
    real_start = start_native_board

    def spy(*args, **kwargs):
        started.append(real_start(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr("tinyml.host.session.start_native_board", spy)
    with pytest.raises(TinymlError, match=f"runs model {FIXTURE_SHA256}, but the model dir holds model {'ab' * 32}"):
        with BoardSession.boot(None, image, expected_sha256="ab" * 32):
            pass
    assert len(started) == 1 and not started[0].alive()


def test_connect_to_a_port_without_a_board_is_one_line(tmp_path, state):
    with pytest.raises(TinymlError, match="no answer from a tinyml board on loop://") as info:
        with BoardSession.connect("loop://", hello_attempts=1):
            pass
    assert "\n" not in str(info.value)


def test_records_are_keyed_by_board_and_model_dir(image, tmp_path, state):
    """Two boards flashed from two model dirs both run; each is found and stopped alone."""
    first = start_native_board(image, record=True, model_dir=tmp_path / "a")
    second = start_native_board(image, record=True, model_dir=tmp_path / "b")
    assert first.key != second.key and first.alive() and second.alive()
    assert {e.pid for e in list_emulators("native")} == {first.pid, second.pid}
    assert find_running_emulator("native", tmp_path / "a").pid == first.pid
    assert resolve_port(None, _HostBoard(), tmp_path / "b") == second.port
    # Not told which of two: no guess.
    assert find_running_emulator("native") is None
    with pytest.raises(TinymlError, match="several emulated native boards run"):
        resolve_port(None, _HostBoard(), tmp_path / "c")
    stopped = stop_emulators("native", tmp_path / "a")
    assert [e.pid for e in stopped] == [first.pid] and not first.alive() and second.alive()
    assert find_running_emulator("native").pid == second.pid  # the only one left
    stop_emulators("all")
    assert not second.alive() and list_emulators() == [] and list(state.glob("*.json")) == []


class _HostBoard:
    """resolve_port needs only a name and whether the board is emulated."""

    name = "native"
    emulator = {"program": "tinyml_fw"}


def _tinyml(*args, env):
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120)


def test_emulator_list_and_stop_commands(image, tmp_path, state):
    env = dict(os.environ, TINYML_STATE_DIR=str(state))
    assert _tinyml("emulator", "list", env=env).stdout.strip() == "no emulator is running"
    running = start_native_board(image, record=True, model_dir=tmp_path / "m")
    listed = _tinyml("emulator", "list", env=env)
    assert listed.returncode == 0 and running.port in listed.stdout and str(tmp_path / "m") in listed.stdout
    stopped = _tinyml("emulator", "stop", "native", env=env)
    assert stopped.returncode == 0 and f"pid {running.pid}" in stopped.stdout and not running.alive()
    bad = _tinyml("emulator", "stop", "nope", env=env)
    assert bad.returncode != 0 and bad.stderr.strip().startswith("error: unknown board 'nope'")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_bench_with_a_bad_port_is_one_line_and_leaves_no_out_folder(model_dir, tmp_path, state):
    env = dict(os.environ, TINYML_STATE_DIR=str(state))
    for port, message in (("/dev/ttyNOPE7", "cannot open port /dev/ttyNOPE7"),
                          ("faulty://loop://?dorp=0.1", "unknown fault option 'dorp'"),
                          ("loop://", "no answer from a tinyml board on loop://")):
        result = _tinyml("bench", "--port", port, "--model-dir", model_dir, "--out", tmp_path / "out", "--quiet",
                         env=env)
        assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("error: ") and message in result.stderr
        assert not (tmp_path / "out").exists()


def test_connect_through_a_faulty_url_benches_under_faults(image, model_dir, tmp_path, state):
    """`tinyml bench --port faulty://...`: the session retries HELLO enough for the faults to pass."""
    process = start_native_board(image)
    try:
        url = f"faulty://{process.port}?drop=0.001&flip=0.001&seed=6"
        with BoardSession.connect(url, expected_sha256=FIXTURE_SHA256) as session:
            assert session.hello_attempts >= 20
            report = session.bench(model_dir, tmp_path / "bench", samples=20, progress=False, batch=4).report
    finally:
        process.stop()
    assert report["agreement"] == 1.0 and report["samples"] == 20
    assert report["faults_injected"]["dropped"] + report["faults_injected"]["flipped"] > 0
