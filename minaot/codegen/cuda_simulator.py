"""Two fixes for Numba's CUDA simulator: shared arrays allocated under a lock, warp shuffles.

The simulator runs each CUDA thread of a block as a Python thread.  Its
``cuda.shared.array`` finds a block's array by the caller's file and line in a
dict and, on a miss, allocates it - without a lock.  Two threads that miss at
once each allocate an array of their own, and the block's threads then write
and read different "shared" memory: a reduction through shared memory adds up
the wrong numbers, now and then, more often on a loaded machine.  (Measured
here: a few failures per hundred simulated op-database tests.)

The simulator's ``cuda.jit`` takes no ``max_registers`` (a register budget
means nothing to Python threads): it is dropped there.  The simulator also
has no ``cuda.shfl_xor_sync``, which ``emit-numba-cuda``'s
block reductions use (each warp combines its 32 values in registers).  Here it
is a block-wide exchange: every thread puts its value in a slot, waits at the
block's barrier, reads the slot of lane ``lane ^ lane_mask`` of its warp, and
waits again before the slots are reused.  That is the GPU's result whenever
all the block's threads make the call together, which is how the generated
kernels call it (a reduction is run by every thread of the block).

:func:`install` puts both in place.  Every module that ``emit-numba-cuda``
generates calls it under the simulator, and so does the package of hand-written
kernels, ``minaot.kernels``, when it is imported.  (It used to be only
``cuda_library``, so the blocked matmul's tests, which import ``matmul_cuda``
alone, ran without the lock and failed now and then: one thread of a block
computed with an A tile of its own.)  On a GPU nothing changes.
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


def _shfl_xor_sync(self, mask, value, lane_mask):
    """``cuda.shfl_xor_sync`` for the simulator: the value of lane ``laneid ^ lane_mask``."""
    me = threading.current_thread()
    slots = me._manager.__dict__.setdefault("_minaot_shuffle_slots", {})
    slots[me.thread_id] = value
    me.syncthreads()
    source = (me.thread_id & ~31) | ((me.thread_id & 31) ^ lane_mask)
    if not (mask >> (source & 31)) & 1 or source not in slots:
        raise RuntimeError(f"shfl_xor_sync: thread {me.thread_id} reads lane {source & 31}, "
                           f"which is not in the mask {mask:#x} or not in the block")
    other = slots[source]
    me.syncthreads()
    return other


def install() -> None:
    """Make the simulator's shared-array allocation thread-safe, give it warp shuffles and
    let its ``cuda.jit`` take (and ignore) ``max_registers`` (once; no-op on a GPU)."""
    from numba import config
    if not config.ENABLE_CUDASIM:
        return
    from numba import cuda
    if not getattr(cuda.jit, "minaot_registers", False):
        simulator_jit = cuda.jit

        def jit(*args, max_registers=None, **kwargs):
            return simulator_jit(*args, **kwargs)
        jit.minaot_registers = True
        cuda.jit = jit
    from numba.cuda.simulator import kernelapi
    kernelapi.FakeCUDAModule.shfl_xor_sync = _shfl_xor_sync
    shared = getattr(kernelapi, "FakeCUDAShared", None)
    if shared is None or shared.array is _shared_array:
        return
    shared.array = _shared_array
