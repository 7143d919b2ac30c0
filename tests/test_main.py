"""The command line: ``python -m minaot demo`` and ``python -m minaot explain``."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.codegen


def run(*args, tmp_path):
    env = dict(os.environ, MINAOT_CACHE_DIR=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-m", "minaot", *args], capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_demo_short_run(tmp_path):
    out = run("demo", "--steps", "4", "--batch", "32", "--no-subprocess", "--cache-dir",
              str(tmp_path / "cache"), tmp_path=tmp_path)
    for line in ("IR size after each stage", "kernels generated: forward / backward",
                 "default:", "min-cut:", "cold, this process", "step    4", "minaot compiled:"):
        assert line in out, out


def test_explain_prints_every_stage(tmp_path):
    src = tmp_path / "model.py"
    src.write_text("import minaot\n\ndef f(x, w):\n    return minaot.softmax(x @ w, dim=1)\n")
    out = run("explain", f"{src}:f", "4x8", "8x16", "--grad", tmp_path=tmp_path)
    for title in ("trace (mt dialect)", "functionalize + decompose", "joint forward+backward",
                  "forward: partitioned prim graph", "backward: fused (kernel dialect)",
                  "== loop level", "== Numba source", "@njit("):
        assert title in out, out
