"""Running a generated CUDA module: device buffers in, device buffers out.

``run_loop_function_cuda(loop_fn, *inputs)`` is the whole path for one loop
function: emit its module (:mod:`emit-numba-cuda <minaot.codegen.numba_cuda>`),
write it to the kernel cache and import it (Numba keeps each kernel's
compiled code beside the file, as for the CPU kernels), copy the inputs to
the device, allocate the outputs there, call the module's ``launch`` and copy
the outputs back.  ``numba.cuda`` is imported here, on first use, never by
``import minaot``.  :class:`Launcher` is how generated modules and the library
kernels launch: Numba's launch path with its per-call work done once per
argument geometry.

Without a GPU and without the simulator there is nothing to run on, and the
error says what is missing.  ``NUMBA_ENABLE_CUDASIM=1`` must be set before
Numba is first imported in the process: the simulator then runs every CUDA
thread as a Python thread.  ``SIM_MATH`` stands in for ``math`` in the
generated modules under the simulator: numpy's functions give the GPU's IEEE
results (``log(0) = -inf``, ``exp(1000) = inf``) where Python's ``math``
raises.
"""

from __future__ import annotations

import warnings

import math
import os
import types

import numpy as np

from .. import cuda_replay as _replay
from .kernel_cache import load_kernel
from .numba_cuda import emit_numba_cuda

SIM_MATH = types.SimpleNamespace(
    exp=np.exp, log=np.log, sin=np.sin, cos=np.cos, tanh=np.tanh, sqrt=np.sqrt, floor=np.floor,
    erf=math.erf, copysign=np.copysign, pow=np.power,
    # more pointwise
    log1p=np.log1p, expm1=np.expm1, log2=np.log2, log10=np.log10, ceil=np.ceil, trunc=np.trunc,
    tan=np.tan, asin=np.arcsin, acos=np.arccos, atan=np.arctan, sinh=np.sinh, cosh=np.cosh,
    asinh=np.arcsinh, acosh=np.arccosh, atanh=np.arctanh, atan2=np.arctan2, hypot=np.hypot,
    fmod=np.fmod)


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


_NP = {"f32": np.float32, "f64": np.float64, "i64": np.int64, "i32": np.int32, "i16": np.int16,
       "i8": np.int8, "ui8": np.uint8, "i1": np.bool_}


# --------------------------------------------------------------------------- fast launches
MAX_PLANS = 256         # argument geometries a Launcher keeps plans for


class Launcher:
    """``kernel[griddim, blockdim](*args)`` with the per-call work of Numba's dispatcher done
    once per argument geometry.

    Numba's launch path costs tens of microseconds of host time per launch: it types
    every argument to pick the compiled overload, then converts every array into the
    kernel's argument words (``meminfo, parent, size, itemsize, data pointer, shape...,
    strides...``) through generic code, and builds a launch configuration.  For a device
    array of a given type, shape, strides and dtype all of those words but the data
    pointer are the same at every call.  So the first call with a new *geometry* (per
    argument: its class, shape, strides and dtype) goes through Numba (which compiles the
    overload if needed and launches), and the words it produced are kept as a template;
    later calls with that geometry only put the arrays' data pointers into the template
    (scalar arguments are converted again, by Numba's own code) and call the driver's
    launch directly with the kept configuration, kernel handle and stream.

    A geometry whose arguments are not all device arrays or plain scalars (a numpy host
    array, which Numba would copy to the device and back), a kernel compiled with
    ``debug=True``, or a Numba whose internals differ from those this relies on (the
    plan cannot be made) keeps using the ordinary call.  Under the simulator every call
    is the ordinary one.  (On the H100, numba-cuda 0.30: 34 us of host time for a launch
    of a generated 4-array kernel through Numba, 12 us through its plan.)"""

    def __init__(self, kernel, griddim, blockdim, sharedmem: int = 0):
        self.kernel = kernel
        self.config = (griddim, blockdim) if not sharedmem else (griddim, blockdim, 0, sharedmem)
        self.simulator = _simulator()
        # (the simulator's kernel[...] sets the configuration on the kernel itself and
        # returns it, so there a configured kernel cannot be kept: it is made at each call)
        self.configured = None if self.simulator else _configure(kernel, self.config)
        self.plans = {}                 # geometry -> _Plan, or None (use the ordinary call)

    def __call__(self, *args):
        if self.simulator:
            return _configure(self.kernel, self.config)(*args)
        key = tuple([_geometry(a) for a in args])
        plan = self.plans.get(key, False)
        if plan:
            return plan.launch(args)
        if _replay.ACTIVE is not None:
            _replay.ACTIVE.fail(f"a launch of {getattr(self.kernel, '__name__', 'a kernel')} "
                                "went through Numba's own call")
        with warnings.catch_warnings():     # Numba's call: compiles if needed, then launches
            warnings.filterwarnings("ignore", message=_LOW_OCCUPANCY)
            self.configured(*args)
        if plan is False:
            if len(self.plans) >= MAX_PLANS:    # shapes that keep changing: start again
                self.plans.clear()
            self.plans[key] = _make_plan(self.kernel, self.configured, args)


def as_vector(arr):
    """A rank-0 device array as an array of shape (1,), the way generated kernels take rank
    0: a view made by :func:`minaot.cuda.strided` (Numba's ``reshape`` takes its generic
    path, several times the host time; a training step's copy-backs of 0-d step counters
    make a dozen of these)."""
    if _simulator():
        return arr.reshape(1)
    from ..cuda import strided
    return strided(arr, 0, (1,), (arr.dtype.itemsize,))


def _geometry(a):
    """What the plan of an argument depends on: an array's class, shape, strides and dtype; a
    tuple's element classes; a scalar's class (its value is converted at every call)."""
    if hasattr(a, "strides"):
        return a.__class__, a.shape, a.strides, a.dtype
    if a.__class__ is tuple:
        return tuple([_geometry(x) for x in a])
    return a.__class__


def _simulator() -> bool:
    from numba import config
    return bool(config.ENABLE_CUDASIM)


#: Numba's low-occupancy warning ("Grid size 1 will likely result in GPU under-utilization")
_LOW_OCCUPANCY = r".*[Gg]rid size .* under-utilization"


def _configure(kernel, config):
    """``kernel[config]`` without Numba's low-occupancy warning, which Numba gives when the
    configuration is made (numba 0.68's CUDA target) or when it is called (numba-cuda 0.30;
    :meth:`Launcher.__call__` silences that call too): an eager op on a small tensor, or a
    small program, launches a small grid by nature, and the warning would name our launch,
    not the user's.  Only these launches are quiet; the filter is restored at once, so the
    user's own kernels still warn."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_LOW_OCCUPANCY)
        return kernel[config]


class _Plan:
    """The kept launch of one overload for one argument geometry (see :class:`Launcher`)."""

    def __init__(self, launch, stream, config, handle, words, pointers, scalars, prepare):
        self.driver_launch, self.stream, self.config, self.handle = launch, stream, config, handle
        self.words = words              # the argument words of the first call
        self.pointers = pointers        # (word index, argument index) of each data pointer
        self.scalars = scalars          # (first word, end word, argument index, numba type)
        self.prepare = prepare          # Numba's conversion of one argument to words

    def launch(self, args):
        words = self.words.copy()
        for w, i in self.pointers:
            a = args[i]         # the address minaot.cuda's arrays note, else Numba's
            words[w] = a.__dict__.get("_minaot_addr") or a.device_ctypes_pointer.value or 0
        for start, end, i, ty in self.scalars:
            part = []
            self.prepare(ty, args[i], self.stream, [], part)
            words[start:end] = part
        self.driver_launch(self.stream, self.config, self.handle, *words)
        rec = _replay.ACTIVE
        if rec is not None:
            rec.launched(self, words)


def _make_plan(kernel, configured, args):
    """A :class:`_Plan` for ``args``' geometry, or None where only the ordinary call is safe."""
    try:
        from numba import types as nt
        from numba.cuda import dispatcher as nd
        from numba.cuda.cudadrv.devicearray import DeviceNDArrayBase
        if (not isinstance(kernel, nd.CUDADispatcher) or kernel.specialized
                or kernel._select_launch_config_dispatcher(configured) is not kernel):
            return None
        sig = tuple(kernel.typeof_pyval(a) for a in args)
        overload = kernel.overloads.get(sig)
        if (overload is None or overload.debug or overload.cooperative or overload.extensions
                or getattr(configured, "pre_launch_callbacks", None)):
            return None
        words, pointers, scalars = [], [], []
        for i, (ty, a) in enumerate(zip(overload.argument_types, args)):
            start = len(words)
            if isinstance(ty, nt.Array):
                if not isinstance(a, DeviceNDArrayBase):
                    return None         # a host array: Numba copies it, every call
                overload._prepare_args(ty, a, configured.stream, [], words)
                if words[start + 4] != (a.device_ctypes_pointer.value or 0):
                    return None         # not the layout this plan assumes
                pointers.append((start + 4, i))
            elif isinstance(ty, (nt.Integer, nt.Float, nt.Boolean, nt.BaseTuple)):
                overload._prepare_args(ty, a, configured.stream, [], words)
                if isinstance(ty, nt.BaseTuple) and any(isinstance(t, nt.Array) for t in ty):
                    return None
                scalars.append((start, len(words), i, ty))
            else:
                return None
        cufunc = overload._codelibrary.get_cufunc()
        if getattr(nd, "CUDA_CORE_GE_1_0", True):
            config = nd.LaunchConfig(grid=configured.griddim, block=configured.blockdim,
                                     shmem_size=configured.sharedmem, is_cooperative=False)
        else:
            config = nd.LaunchConfig(grid=configured.griddim, block=configured.blockdim,
                                     shmem_size=configured.sharedmem, cooperative_launch=False)
        plan = _Plan(nd.launch, configured.stream, config, cufunc.kernel, words, pointers,
                     scalars, overload._prepare_args)
        plan.name = getattr(getattr(kernel, "py_func", None), "__name__", "a kernel")
        # grid, block and dynamic shared memory, for a CUDA graph's node (minaot.cuda_graph)
        plan.dims = (configured.griddim, configured.blockdim, configured.sharedmem)
        return plan
    except Exception:                   # Numba's internals differ: the ordinary call it is
        return None
