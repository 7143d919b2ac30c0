"""minaot's fixes to Numba's CUDA simulator (``minaot.codegen.cuda_simulator``): in place as
soon as a hand-written kernel module is imported, and shared arrays that every thread of a
block really shares.  In a fresh process: the simulator must be on before Numba is imported."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.cuda

HERE = os.path.dirname(os.path.abspath(__file__))

SCRIPT = r"""
import sys, threading
import numpy as np
import minaot.kernels.matmul_cuda           # a hand-written kernel module, imported alone
from minaot.codegen import cuda_simulator
from numba.cuda.simulator import kernelapi

assert kernelapi.FakeCUDAShared.array is cuda_simulator._shared_array, "fixes not installed"

# many threads of a block asking for the same shared array at once, switching threads as
# often as Python can: without the lock ~3% of the trials hand two threads different arrays
sys.setswitchinterval(1e-6)
THREADS, TRIALS = 32, 200
split = 0
for trial in range(TRIALS):
    shared = kernelapi.FakeCUDAShared(0)
    start = threading.Barrier(THREADS)
    got = []

    def thread():
        start.wait()
        got.append(shared.array((2, 3), np.float32))

    threads = [threading.Thread(target=thread) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    split += len({id(a) for a in got}) > 1
    assert got[0].shape == (2, 3) and got[0].dtype == np.float32

block = kernelapi.FakeCUDAShared(0)
a = block.array(4, np.float64)
b = block.array(4, np.float64)      # another source line: another array
again = [block.array(4, np.float64) for _ in range(2)]     # one line: one array
assert a is not b and again[0] is again[1] and again[0] is not a
print("split", split, "of", TRIALS)
"""


def test_shared_arrays_are_shared_under_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=os.path.dirname(HERE), env=env,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "split 0 of 200" in out, out
