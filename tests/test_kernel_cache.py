"""The kernel cache: a second process reuses every kernel (no Numba compile), a corrupted
entry is detected and rebuilt, and two processes compiling at once both succeed."""

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.codegen

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import minaot
    import minaot.nn.functional as F

    def f(x, w, b):
        return minaot.softmax(F.gelu(x * w + b, approximate="tanh"), dim=1)

    rng = np.random.default_rng(0)
    x, w, b = (minaot.from_numpy(rng.standard_normal((64, 32)).astype(np.float32)) for _ in range(3))
    with minaot.no_grad():
        got = minaot.compile(f, backend="numba")(x, w, b).numpy()
        want = f(x, w, b).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    print(json.dumps(dict(minaot.counters["kernels"])))
""")


def run(cache, timeout=300):
    env = dict(os.environ, MINAOT_CACHE_DIR=str(cache))
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_reuses_every_kernel(tmp_path):
    cache = tmp_path / "cache"
    first = run(cache)
    assert first["source_misses"] >= 1 and first.get("source_hits", 0) == 0
    assert first["numba_compiles"] >= 1
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    second = run(cache)
    assert second.get("source_misses", 0) == 0
    assert second["source_hits"] == first["source_misses"]
    assert second.get("numba_compiles", 0) == 0
    assert second["numba_cache_hits"] == first["numba_compiles"]


def test_corrupted_entry_is_rebuilt_not_executed(tmp_path):
    cache = tmp_path / "cache"
    first = run(cache)
    files = sorted(p for p in cache.glob("minaot_k_*.py"))
    assert len(files) == first["source_misses"]
    victim = files[0]
    text = victim.read_text()
    victim.write_text(text[: len(text) // 2])                 # truncated
    if len(files) > 1:
        files[1].write_text(files[1].read_text().replace("np.float32", "np.float64", 1) + "\n")
    again = run(cache)
    assert again["corrupt_rebuilt"] == min(2, len(files))
    assert again["source_misses"] == again["corrupt_rebuilt"]
    assert victim.read_text() == text                          # rewritten, whole


def test_two_processes_compiling_at_once_both_succeed(tmp_path):
    cache = tmp_path / "cache"
    env = dict(os.environ, MINAOT_CACHE_DIR=str(cache))
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert not list(cache.glob(".tmp-*"))
    third = run(cache)
    assert third.get("source_misses", 0) == 0 and third.get("numba_compiles", 0) == 0
