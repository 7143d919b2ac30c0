"""A fix for Numba's CUDA simulator: shared arrays allocated under a lock.

The simulator runs each CUDA thread of a block as a Python thread.  Its
``cuda.shared.array`` finds a block's array by the caller's file and line in a
dict and, on a miss, allocates it - without a lock.  Two threads that miss at
once each allocate an array of their own, and the block's threads then write
and read different "shared" memory: a reduction through shared memory adds up
the wrong numbers, now and then, more often on a loaded machine.  (Measured
here: a few failures per hundred simulated op-database tests.)

:func:`install` replaces the lookup by one that holds a lock.  Every module that
``emit-numba-cuda`` generates calls it under the simulator, and so do the
hand-written library kernels; on a GPU nothing changes.
"""

from __future__ import annotations

import sys
import threading

import numpy as np

_LOCK = threading.Lock()


def _shared_array(self, shape, dtype):
    """``cuda.shared.array`` for the simulator: one array per block and source line."""
    from numba.core import types
    if isinstance(dtype, types.Type):   # numba.float32 as well as np.float32
        from numba.np import numpy_support
        dtype = numpy_support.as_dtype(dtype)
    dtype = np.dtype(dtype)
    if shape == 0:                      # dynamic shared memory: one buffer, nothing to allocate
        count = self._dynshared_size // dtype.itemsize
        return np.frombuffer(self._dynshared.data, dtype=dtype, count=count)
    caller = sys._getframe(1)
    key = (caller.f_code.co_filename, caller.f_lineno)
    with _LOCK:
        arr = self._allocations.get(key)
        if arr is None:
            arr = self._allocations[key] = np.empty(shape, dtype)
    return arr


def install() -> None:
    """Make the simulator's shared-array allocation thread-safe (once; no-op on a GPU)."""
    from numba import config
    if not config.ENABLE_CUDASIM:
        return
    from numba.cuda.simulator import kernelapi
    shared = getattr(kernelapi, "FakeCUDAShared", None)
    if shared is None or shared.array is _shared_array:
        return
    shared.array = _shared_array
