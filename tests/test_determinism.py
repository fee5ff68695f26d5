"""Same seed, same model: seeds everywhere, deterministic kernels, pinned CPU code paths."""

from __future__ import annotations

import subprocess
import sys

import torch

from tinyml import distill
from tinyml.data import load_dataset
from tinyml.determinism import AVX2_PINS, cpu_flags, numerics_pins
from tinyml.models import StudentConfig, build_student


def test_pins_only_where_the_cpu_has_the_pinned_paths(tmp_path):
    assert numerics_pins("x86_64", {"avx2", "fma", "sse4_1"}) == AVX2_PINS
    assert numerics_pins("x86_64", {"avx", "sse4_1"}) == {}      # ATen would run AVX2 code it cannot execute
    assert numerics_pins("aarch64", {"avx2", "fma"}) == {}
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse4_1 avx2 fma\n")
    assert cpu_flags(cpuinfo) == {"fpu", "sse4_1", "avx2", "fma"}
    assert cpu_flags(tmp_path / "missing") == set()


def test_importing_tinyml_sets_the_pins_without_overriding_the_user():
    code = ("import os, tinyml; from tinyml.determinism import numerics_pins; "
            "pins = numerics_pins(); "
            "assert all(os.environ[k] == (v if k != 'MKL_CBWR' else 'COMPATIBLE') for k, v in pins.items()); "
            "print(len(pins))")
    env = {"PATH": "/usr/bin:/bin", "MKL_CBWR": "COMPATIBLE"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr


def test_same_seed_trains_the_same_weights_and_another_seed_does_not():
    splits = load_dataset("digits", seed=0)

    def train(seed: int) -> dict[str, torch.Tensor]:
        model = build_student(StudentConfig(1.0, 3), splits.input_shape, splits.num_classes)
        run = distill.train_student(model, splits, distill.TrainConfig(epochs=1, seed=seed, kd="none"),
                                    progress=False)
        return run.model.state_dict()

    first, again, other = train(3), train(3), train(4)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
    assert not torch.are_deterministic_algorithms_enabled()      # restored after training
