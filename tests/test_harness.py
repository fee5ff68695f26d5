"""`run_bench` against the native-port firmware: scores, report files, the JSONL
log and resuming it, and the one-line errors for bad boards and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from firmware_fixtures import FIXTURE_SHA256, fixture_outputs, write_fixture_model_dir
from firmware_fixtures.boards import fixture_image, running_board
from tinyml.errors import TinymlError
from tinyml.host import protocol as p
from tinyml.host.harness import LOG_NAME, run_bench
from tinyml.host.transport import open_port

REQUIRED_KEYS = {"samples", "on_device_accuracy", "host_int8_accuracy", "agreement", "host_samples_per_s",
                 "wire_efficiency", "line_rate_fraction", "baud", "model_sha256", "backend", "board"}


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    with running_board(fixture_image(tmp_path_factory.getbasetemp())) as running:
        yield running


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_fixture_model_dir(tmp_path_factory.mktemp("fixture_model"), count=200)


def _log_records(path: Path) -> list[dict]:
    lines = path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line parses
    assert "run" in records[0]
    return records[1:]


def test_bench_scores_and_reports(board, model_dir, tmp_path):
    result = run_bench(board.port, model_dir, tmp_path, samples=120, progress=False)
    report = json.loads((tmp_path / "report.json").read_text())
    assert REQUIRED_KEYS <= set(report)
    assert report["samples"] == 120 and report["agreement"] == 1.0
    vectors = np.load(model_dir / "test_vectors.npz")
    expected_acc = float((fixture_outputs(vectors["inputs"][:120]).argmax(1) == vectors["labels"][:120]).mean())
    assert report["on_device_accuracy"] == report["host_int8_accuracy"] == pytest.approx(expected_acc)
    assert expected_acc < 1.0  # the fixture's labels are wrong on purpose for some samples
    lat = report["latency_nanoseconds"]
    assert report["latency_unit"] == "nanoseconds" and 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
    assert report["line_rate_fraction"] is None  # a pty has no real baud
    assert 0.9 <= report["wire_efficiency"] < 1.0
    assert report["model_sha256"] == FIXTURE_SHA256 and report["board"] == "native"
    assert report["link"]["retries"] == result.retries == 0
    for name in ("report.md", "bench_latency.png", "bench_confusion.png", "bench_accuracy.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "nanoseconds" in (tmp_path / "report.md").read_text()
    records = _log_records(tmp_path / LOG_NAME)
    assert sorted(r["index"] for r in records) == list(range(120))
    assert all(r["agree"] for r in records)


def test_resume_after_a_crash_repeats_and_skips_nothing(board, model_dir, tmp_path):
    first = tmp_path / "first"
    run_bench(board.port, model_dir, first, samples=40, progress=False)
    log = first / LOG_NAME
    lines = log.read_text().splitlines()
    # A crash after 25 samples, in the middle of writing the 26th line.
    log.write_text("\n".join(lines[:26]) + "\n" + lines[26][:17])
    result = run_bench(board.port, model_dir, tmp_path / "second", samples=100, resume=log, progress=False)
    records = _log_records(log)
    assert sorted(r["index"] for r in records) == list(range(100))
    assert result.report["samples"] == 100 and result.report["resumed_samples"] == 25
    assert result.report["agreement"] == 1.0


class _InterruptAfter:
    """A transport that dies (like Ctrl-C) after a number of bytes read."""

    def __init__(self, inner, limit):
        self.inner, self.limit = inner, limit
        self.url, self.baud = inner.url, inner.baud

    bytes_written = property(lambda self: self.inner.bytes_written)
    bytes_read = property(lambda self: self.inner.bytes_read)

    def write(self, data):
        self.inner.write(data)

    def read(self, max_bytes=65536):
        if self.inner.bytes_read > self.limit:
            raise KeyboardInterrupt
        return self.inner.read(min(max_bytes, 100))

    def discard_input(self):
        self.inner.discard_input()

    def close(self):
        self.inner.close()


def test_interrupted_run_leaves_a_clean_log_and_resumes(board, model_dir, tmp_path):
    transport = _InterruptAfter(open_port(board.port), 900)
    with pytest.raises(KeyboardInterrupt):
        run_bench(board.port, model_dir, tmp_path, samples=150, progress=False, transport=transport, batch=8)
    transport.close()
    done = _log_records(tmp_path / LOG_NAME)
    assert 0 < len(done) < 150
    result = run_bench(board.port, model_dir, tmp_path, samples=150, resume=tmp_path / LOG_NAME, progress=False)
    records = _log_records(tmp_path / LOG_NAME)
    assert sorted(r["index"] for r in records) == list(range(150))
    assert result.report["resumed_samples"] == len(done)


def test_board_with_another_model_names_both_hashes(board, tmp_path):
    other = write_fixture_model_dir(tmp_path / "other", count=10, sha256="0123" * 16)
    with pytest.raises(TinymlError) as info:
        run_bench(board.port, other, tmp_path / "out", progress=False)
    message = str(info.value)
    assert FIXTURE_SHA256 in message and "0123" * 16 in message and "\n" not in message
    assert not (tmp_path / "out" / "report.json").exists()


def test_resume_refuses_a_log_of_another_model(board, model_dir, tmp_path):
    log = tmp_path / "old.jsonl"
    log.write_text(json.dumps({"run": {"model_sha256": "ff" * 32}}) + "\n")
    with pytest.raises(TinymlError, match="recorded with model"):
        run_bench(board.port, model_dir, tmp_path, resume=log, progress=False)
    with pytest.raises(TinymlError, match="does not exist"):
        run_bench(board.port, model_dir, tmp_path, resume=tmp_path / "missing.jsonl", progress=False)


def test_bad_model_dirs_and_counts(model_dir, tmp_path):
    with pytest.raises(TinymlError, match="no manifest.json"):
        run_bench("loop://", tmp_path, tmp_path / "out", progress=False)
    with pytest.raises(TinymlError, match="--samples 999"):
        run_bench("loop://", model_dir, tmp_path / "out", samples=999, progress=False)


class _Noise:
    """A line with random bytes on it and nothing that answers."""

    url, baud, bytes_written, bytes_read = "fake://noise", 115200, 0, 0

    def __init__(self):
        self.rng = np.random.default_rng(0)

    def write(self, data):
        pass

    def read(self, max_bytes=65536):
        return self.rng.integers(0, 256, 64, dtype=np.uint8).tobytes()

    def discard_input(self):
        pass

    def close(self):
        pass


def test_garbage_on_the_line_is_no_answer(model_dir, tmp_path):
    with pytest.raises(TinymlError, match="no answer from a tinyml board on fake://noise"):
        run_bench("fake://noise", model_dir, tmp_path, transport=_Noise(), progress=False, hello_timeout_s=0.2)


def test_no_board_on_the_port(model_dir, tmp_path):
    with pytest.raises(TinymlError, match="no answer"):
        run_bench("loop://", model_dir, tmp_path, progress=False, hello_timeout_s=0.2)
    assert not (tmp_path / "report.json").exists()
    assert p.PROTOCOL_VERSION == 1


def test_the_same_run_again_resumes_and_fresh_starts_over(board, model_dir, tmp_path):
    """Issue 12.6: a killed run, rerun with the same arguments into the same out dir,
    keeps the finished samples; fresh=True discards them."""
    transport = _InterruptAfter(open_port(board.port), 900)
    with pytest.raises(KeyboardInterrupt):
        run_bench(board.port, model_dir, tmp_path, samples=120, progress=False, transport=transport, batch=8)
    transport.close()
    finished = {r["index"]: r for r in _log_records(tmp_path / LOG_NAME)}
    assert 0 < len(finished) < 120
    result = run_bench(board.port, model_dir, tmp_path, samples=120, progress=False)  # the same call again
    records = _log_records(tmp_path / LOG_NAME)
    assert sorted(r["index"] for r in records) == list(range(120))
    assert result.report["resumed_samples"] == len(finished)
    assert all(records[i] == finished[records[i]["index"]] for i in range(len(finished)))  # kept as they were
    again = run_bench(board.port, model_dir, tmp_path, samples=30, progress=False, fresh=True)
    assert again.report["resumed_samples"] == 0
    assert sorted(r["index"] for r in _log_records(tmp_path / LOG_NAME)) == list(range(30))


def test_resuming_a_log_of_another_model_needs_fresh(board, model_dir, tmp_path):
    (tmp_path / LOG_NAME).write_text(json.dumps({"run": {"model_sha256": "ee" * 32}}) + "\n"
                                     + json.dumps({"index": 0, "output": "00", "latency": 1}) + "\n")
    with pytest.raises(TinymlError, match=r"recorded with model eeee.*--fresh"):
        run_bench(board.port, model_dir, tmp_path, samples=5, progress=False)
    assert run_bench(board.port, model_dir, tmp_path, samples=5, progress=False, fresh=True).samples == 5


def test_a_port_without_a_board_leaves_no_out_folder(model_dir, tmp_path):
    with pytest.raises(TinymlError, match="no answer"):
        run_bench("loop://", model_dir, tmp_path / "out", progress=False, hello_timeout_s=0.2)
    assert not (tmp_path / "out").exists()


def test_report_has_time_memory_and_per_class_scores(board, model_dir, tmp_path):
    report = run_bench(board.port, model_dir, tmp_path, samples=60, progress=False).report
    vectors = np.load(model_dir / "test_vectors.npz")
    labels, predicted = vectors["labels"][:60], fixture_outputs(vectors["inputs"][:60]).argmax(1)
    for row, index in zip(report["per_class"], range(len(report["per_class"]))):
        support, hits = int((labels == index).sum()), int(((labels == index) & (predicted == index)).sum())
        assert row["support"] == support
        assert row["recall"] == (hits / support if support else None)
        chosen = int((predicted == index).sum())
        assert row["precision"] == (hits / chosen if chosen else None)
    # The native port times in nanoseconds: the time figures are the same numbers in microseconds.
    assert report["latency_us"]["p50"] == pytest.approx(report["latency_nanoseconds"]["p50"] / 1000)
    assert "native-port firmware" in report["latency_time_basis"]
    assert report["memory"]["arena_bytes"] == report["arena_bytes"]
    assert "throughput_sps" not in report and report["host_samples_per_s"] > 0
    text = (tmp_path / "report.md").read_text()
    assert "## Per class" in text and "host-side rate" in text and "not the board's speed" in text


def test_latency_time_basis_names_the_clock_and_what_it_assumes():
    from tinyml.host.harness import latency_time_basis

    clock, basis = latency_time_basis("instructions", 168_000_000, {"clock_hz": 160_000_000, "timer": "minstret"})
    assert clock == 160_000_000 and "160 MHz" in basis and "one instruction per cycle" in basis and "minstret" in basis
    clock, basis = latency_time_basis("cycles", 80_000_000, None)
    assert clock == 80_000_000 and "80 MHz" in basis
    assert latency_time_basis("cycles", 0, None)[0] == 0


def test_faulty_url_runs_the_bench_under_injected_faults(board, model_dir, tmp_path):
    """faulty://<port>?... wraps the real port in pyserial: faults happen, nothing is lost or misscored."""
    url = f"faulty://{board.port}?drop=0.001&flip=0.001&duplicate=0.001&seed=4"
    report = run_bench(url, model_dir, tmp_path, samples=80, progress=False, batch=4).report
    assert report["samples"] == 80 and report["agreement"] == 1.0
    faults = report["faults_injected"]
    assert faults["dropped"] > 0 and faults["flipped"] > 0 and faults["duplicated"] > 0
    assert report["link"]["retries"] > 0
    assert sorted(r["index"] for r in _log_records(tmp_path / LOG_NAME)) == list(range(80))


def test_faulty_url_errors_are_one_line(model_dir, tmp_path):
    with pytest.raises(TinymlError, match=r"unknown fault option 'dorp'"):
        run_bench("faulty://loop://?dorp=0.1", model_dir, tmp_path / "out", progress=False)
    with pytest.raises(TinymlError, match=r"drop is a probability"):
        run_bench("faulty://loop://?drop=2", model_dir, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
