"""Running a generated CUDA module: device buffers in, device buffers out.

``run_loop_function_cuda(loop_fn, *inputs)`` is the whole path for one loop
function: emit its module (:mod:`emit-numba-cuda <minaot.codegen.numba_cuda>`),
write it to the kernel cache and import it (Numba keeps each kernel's
compiled code beside the file, as for the CPU kernels), copy the inputs to
the device, allocate the outputs there, call the module's ``launch`` and copy
the outputs back.  ``numba.cuda`` is imported here, on first use, never by
``import minaot``.

Without a GPU and without the simulator there is nothing to run on, and the
error says what is missing.  ``NUMBA_ENABLE_CUDASIM=1`` must be set before
Numba is first imported in the process: the simulator then runs every CUDA
thread as a Python thread.  ``SIM_MATH`` stands in for ``math`` in the
generated modules under the simulator: numpy's functions give the GPU's IEEE
results (``log(0) = -inf``, ``exp(1000) = inf``) where Python's ``math``
raises.
"""

from __future__ import annotations

import math
import os
import types

import numpy as np

from .kernel_cache import load_kernel
from .numba_cuda import emit_numba_cuda

SIM_MATH = types.SimpleNamespace(
    exp=np.exp, log=np.log, sin=np.sin, cos=np.cos, tanh=np.tanh, sqrt=np.sqrt, floor=np.floor,
    erf=math.erf, copysign=np.copysign, pow=np.power)


class CudaUnavailableError(RuntimeError):
    """Neither a CUDA GPU nor Numba's CUDA simulator can run the kernels."""


def cuda_module():
    """``numba.cuda``, checked to be able to run kernels (a GPU, or the simulator)."""
    try:
        from numba import config, cuda
    except ImportError as exc:          # a Numba built without the CUDA target
        raise CudaUnavailableError(f"numba.cuda cannot be imported ({exc}); install the "
                                   "'cuda' extra (numba-cuda)") from exc
    if config.ENABLE_CUDASIM:
        return cuda
    if not cuda.is_available():
        raise CudaUnavailableError(
            "no CUDA GPU is usable (numba.cuda.is_available() is False: no GPU, driver or "
            "numba-cuda); to run on Numba's CUDA simulator set NUMBA_ENABLE_CUDASIM=1 before "
            "numba is imported" + ("" if "NUMBA_ENABLE_CUDASIM" not in os.environ else
                                   " (it is set, but numba was imported before it was)"))
    return cuda


def load_launcher(loop_fn, header: str = "", **options):
    """The ``launch`` function of ``loop_fn``'s generated module (through the kernel cache)
    and the module's source."""
    source = emit_numba_cuda(loop_fn, header, **options)
    return load_kernel(source, "launch", f"CUDA kernel {loop_fn.name}"), source


def run_loop_function_cuda(loop_fn, *inputs, header: str = "", **options) -> list[np.ndarray]:
    """Run ``loop_fn`` (buffers: inputs then outputs) on the GPU or the simulator; returns
    its outputs as numpy arrays.  ``options`` go to ``emit_numba_cuda``."""
    cuda = cuda_module()
    n_in = len(inputs)
    if n_in > len(loop_fn.args):
        raise TypeError(f"@{loop_fn.name} takes {len(loop_fn.args)} buffers, got {n_in} inputs")
    launch, _ = load_launcher(loop_fn, header, **options)
    dev_in = []
    for a, v in zip(inputs, loop_fn.args):
        want = (tuple(v.type.shape), np.dtype(_NP[v.type.dtype]))
        a = np.asarray(a)
        if (a.shape, a.dtype) != want:
            raise TypeError(f"@{loop_fn.name}: input {len(dev_in)} is {a.dtype}{list(a.shape)}, "
                            f"the kernel takes {want[1]}{list(want[0])}")
        dev_in.append(cuda.to_device(np.ascontiguousarray(a).reshape(a.shape or (1,))))
    outs = [(tuple(v.type.shape), np.dtype(_NP[v.type.dtype])) for v in loop_fn.args[n_in:]]
    dev_out = [cuda.device_array(shape or (1,), dtype) for shape, dtype in outs]
    launch(*dev_in, *dev_out)
    return [d.copy_to_host().reshape(shape) for d, (shape, _) in zip(dev_out, outs)]


_NP = {"f32": np.float32, "f64": np.float64, "i64": np.int64, "i32": np.int32, "i1": np.bool_}
