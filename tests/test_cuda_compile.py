"""The ``cuda`` backend: its suites run under Numba's CUDA simulator in a fresh process (the
simulator must be on before Numba is imported, and this process imported it long ago), and
the parts that need no CUDA target run here."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from minaot.cuda_backend import keep_order_strides

pytestmark = pytest.mark.cuda

HERE = os.path.dirname(os.path.abspath(__file__))


def run_under_simulator(cases_file):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           os.path.join(HERE, cases_file)],
                          cwd=os.path.dirname(HERE), env=env, capture_output=True, text=True,
                          timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-20000:]
    assert re.search(r"\d+ passed", out) and "skipped" not in out and "deselected" not in out, out
    return out


def test_cuda_compile_cases_pass_under_the_simulator():
    run_under_simulator("cuda_compile_cases.py")


def test_keep_order_strides_match_numpy():
    """The layout of a result copy is numpy's ``order="K"`` (the CPU backend's copy)."""
    rng = np.random.default_rng(0)
    for _ in range(2000):
        ndim = int(rng.integers(0, 5))
        shape = tuple(int(s) for s in rng.integers(1, 4, ndim))
        a = np.zeros(shape, np.float32).transpose(rng.permutation(ndim))
        if a.ndim and rng.random() < 0.5:
            a = np.expand_dims(a, int(rng.integers(0, a.ndim)))
        if a.ndim and rng.random() < 0.5:
            d = int(rng.integers(0, a.ndim))
            if a.shape[d] == 1:
                a = np.broadcast_to(a, a.shape[:d] + (3,) + a.shape[d + 1:])
        if a.ndim and rng.random() < 0.3:
            d = int(rng.integers(0, a.ndim))
            a = a[(slice(None),) * d + (slice(None, None, 2),)]
        assert keep_order_strides(a.shape, a.strides, 4) == np.array(a, order="K").strides, \
            (a.shape, a.strides)


def _benchmark_under_the_simulator(script):
    """The output of ``benchmarks/<script> --sim`` (a new process), which must succeed."""
    proc = subprocess.run([sys.executable, os.path.join(os.path.dirname(HERE), "benchmarks",
                                                        script), "--sim"],
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    return out


def test_gpu_benchmark_runs_and_checks_its_results_under_the_simulator():
    """benchmarks/cuda_kernels.py --sim: tiny sizes, every column's result checked."""
    out = _benchmark_under_the_simulator("cuda_kernels.py")
    for workload in ("(1) gelu", "(2) softmax", "(3) layer_norm", "(4) MLP train step"):
        assert f"| {workload}" in out, out
    assert "_k0 " in out and "of copy-bound" in out, out


def test_gpu_train_step_benchmark_runs_under_the_simulator():
    """benchmarks/cuda_train_step.py --sim: the step's loss checked, every column measured."""
    out = _benchmark_under_the_simulator("cuda_train_step.py")
    assert "(4) MLP train step" in out and "| minaot cuda" in out, out
    assert "back-to-back per step" in out and "host, GPU busy" in out, out
    assert "| forward |" in out and "| of which replayed calls" in out, out
