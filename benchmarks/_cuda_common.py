"""What the GPU benchmarks (``cuda_kernels.py``, ``matmul_cuda.py``) share: their flags,
PyTorch on the GPU when it is there, and timing with CUDA events.

Import it before numpy or Numba: ``--sim`` switches Numba's CUDA simulator on, which only
works before Numba is imported.

    --sim     tiny sizes under the simulator: a correctness check, no timings to keep
    --quick   fewer repeats
"""

from __future__ import annotations

import os
import statistics
import sys
import time

SIM = "--sim" in sys.argv
if SIM:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"      # before numba is imported
    sys.setswitchinterval(1e-4)                   # the simulator's threads hand over faster
QUICK = SIM or "--quick" in sys.argv

try:
    import torch
    if SIM or not torch.cuda.is_available():
        torch = None
    else:
        torch.backends.cuda.matmul.allow_tf32 = False     # full float32, PyTorch's default
except ImportError:
    torch = None


def cuda():
    """``numba.cuda`` (imported on first use)."""
    from numba import cuda as numba_cuda
    return numba_cuda


def gpu_time(fn, warmup=3, repeat=20, quick_repeat=3):
    """Seconds per call of ``fn()``: CUDA events around ``repeat`` back-to-back calls (so the
    Python time of a call overlaps the GPU work of the one before); under the simulator the
    median wall clock of single calls.  ``--quick``: one warm-up and ``quick_repeat`` calls."""
    if QUICK:
        warmup, repeat = (0, 1) if SIM else (1, quick_repeat)
    for _ in range(warmup):
        fn()
    if SIM:
        samples = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples)
    c = cuda()
    c.synchronize()
    if torch is not None:
        torch.cuda.synchronize()
    start, end = c.event(), c.event()
    start.record()
    for _ in range(repeat):
        fn()
    if torch is not None:
        torch.cuda.synchronize()            # PyTorch's work may sit on its own stream
    end.record()
    end.synchronize()
    return c.event_elapsed_time(start, end) / 1e3 / repeat
