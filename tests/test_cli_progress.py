"""Long stages say what they are doing (on stderr, `[stage] ...`), --quiet drops it,
and an error after progress lines is still the last and only `error:` line."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cli_rules import assert_bad_input

from tinyml import progress
from tinyml.errors import TinymlError


def tinyml(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_progress_lines_go_to_stderr_and_quiet_drops_them(capsys):
    progress.say("build", "building the firmware")
    progress.set_quiet(True)
    try:
        progress.say("build", "not shown")
    finally:
        progress.set_quiet(False)
    out, err = capsys.readouterr()
    assert out == "" and err == "[build] building the firmware\n"
    assert progress.PROGRESS_LINE.match(err) and not progress.PROGRESS_LINE.match("error: [x] y")


def test_quiet_lasts_one_invocation_when_commands_run_in_one_process(tiny_models, tmp_path, capsys):
    # CliRunner, a notebook or a test worker runs several commands in one process: the --quiet
    # of one must silence neither the next command nor the caller's own progress lines (it once
    # did, across the test files one pytest-xdist worker ran).
    from click.testing import CliRunner

    from tinyml.cli import cli

    quiet = CliRunner().invoke(cli, ["emit", str(tiny_models["int8"]), "--out", str(tmp_path / "q"), "--quiet"])
    assert quiet.exit_code == 0, quiet.output
    assert not progress.is_quiet()
    progress.say("build", "shown again")
    assert capsys.readouterr().err == "[build] shown again\n"
    progress.set_quiet(True)       # a caller that chose quiet keeps it
    try:
        assert CliRunner().invoke(cli, ["boards"]).exit_code == 0
        assert progress.is_quiet()
    finally:
        progress.set_quiet(False)


def test_emit_says_it_runs_the_test_vectors_unless_quiet(tiny_models, tmp_path):
    loud = tinyml("emit", tiny_models["int8"], "--out", tmp_path / "loud", "--test-data", "digits")
    assert loud.returncode == 0, loud.stderr
    assert loud.stderr == "[emit] running 360 test vectors on host TFLite-Micro for their expected outputs\n"
    assert loud.stdout.startswith("wrote ")
    quiet = tinyml("emit", tiny_models["int8"], "--out", tmp_path / "quiet", "--test-data", "digits", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout.startswith("wrote ")


def test_an_error_after_progress_is_the_last_line_and_alone_when_quiet(tmp_path):
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x07garbage")
    args = ("convert", tmp_path / "broken.onnx", "--calibration", "digits", "--out", tmp_path / "m.tflite")
    loud = tinyml(*args)
    error = assert_bad_input(loud, "is not an ONNX model or is corrupt")
    progress = loud.stderr.splitlines()[:-1]
    assert progress and all(line.startswith("[convert] ") for line in progress), loud.stderr
    assert "[convert] converting broken.onnx to TensorFlow (NHWC)" in progress
    quiet = tinyml(*args, "--quiet")
    assert assert_bad_input(quiet, "is not an ONNX model or is corrupt", only_line=True) == error
    assert not (tmp_path / "m.tflite").exists()


@pytest.mark.slow
def test_prepare_names_each_stage_before_it_runs(tmp_path, monkeypatch, capsys):
    import tinyml.quantize
    from tinyml.prepare import PrepareOptions, prepare

    def stop_here(*args, **kwargs):
        raise TinymlError("stopped after the stages under test")

    import tinyml.models

    # Two small members keep the sweep short; both fit the board, so both are trained briefly.
    family = tinyml.models.student_family((8, 8, 1))[:2]
    monkeypatch.setattr(tinyml.models, "student_family", lambda input_shape: family)
    # The budget sizing quantizes untrained instances before any training (cached per config):
    # size them with the real quantizer first, so the stub below stops prepare's own export only.
    from tinyml.budgets import untrained_tflite
    for config in family:
        untrained_tflite(config, (8, 8, 1), 10)
    monkeypatch.setattr(tinyml.quantize, "quantize_int8", stop_here)
    with pytest.raises(TinymlError, match="stopped after"):
        prepare(PrepareOptions(dataset="digits", board="stm32f405", out=tmp_path / "out", epochs=1,
                               teacher_epochs=1, sweep=True, progress=True))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[prepare] ")]
    expected = ["loading torch and TensorFlow", "training the teacher (1 epochs)",
                f"family sweep 1/2: {family[0].name()} (3 epochs", f"family sweep 2/2: {family[1].name()} (3 epochs",
                "student ", "training the student", "distilling the student",
                "exporting ONNX, converting to TensorFlow and quantizing to full int8"]
    # Every stage is named, in this order, before it runs (other lines may come between).
    position = 0
    for start in expected:
        while position < len(lines) and not lines[position].startswith(f"[prepare] {start}"):
            position += 1
        assert position < len(lines), (start, lines)
        position += 1
