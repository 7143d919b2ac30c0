"""The ``"cuda"`` backend: a graph compiler whose program runs on the GPU, start to end.

The CUDA twin of :mod:`minaot.numba_backend`.  ``cuda_compiler(graph,
example_inputs)`` takes a ``prim`` graph through the same lower half of the
pipeline, but the last step emits CUDA::

    prim --fuse--> kernel --lower-to-loops--> loop --emit-numba-cuda--> kernels + launch()

(no ``approximate-math``: on the GPU ``math.exp`` is libdevice's, which is fast
and exact enough).  The returned :class:`CudaProgram` walks the graph's ops in
order with every value a Numba *device array*: the inputs are the CUDA
tensors' arrays, each ``kernel.fused`` op allocates its outputs on the device
and calls its generated ``launch``, and every other op is a library call that
runs on the device too:

* view ops (reshape, transpose, permute, expand, (un)squeeze, slice, select)
  make a device array over the same memory with new strides (numpy computes
  the geometry on a stand-in host array that is never read); a reshape that
  no strides can express copies first, as numpy's does;
* matmul, gather, scatter_add, argmax/argmin, cat and the two scatters run
  the hand-written kernels of :mod:`minaot.kernels.cuda_library`;
* constants and ``arange`` are made once, when the program is built, and
  stay on the device; ``rand``/``randn`` draw from minaot's generator on the
  host (so a seed gives the same numbers as on the CPU) and upload them.

Nothing is copied back to the host during a call.  Each value is dropped after
its last use.  As on the CPU, results never share memory with the inputs,
with each other or with the program's constants (a copy keeps the layout,
like numpy's ``order="K"``).  An op with no device implementation raises
``NotImplementedError`` naming it when the program is built.  Gather and
scatter_add cannot raise inside a kernel, so an index out of range sets an
error code in a one-element device array that the program reads after the
call (the only device-to-host copy, and only in programs that hold those ops).
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .codegen.cuda_runtime import cuda_module, load_launcher
from .codegen.kernel_cache import KernelCompileError
from .counters import counters
from .dtypes import from_ir
from .ir import PassManager, run_op, verify
from .ops.views import _np_select, _np_slice
from .passes.lower_to_loops import lower_kernel


# --------------------------------------------------------------------------- device arrays
def _sim():
    from numba import config
    return bool(config.ENABLE_CUDASIM)


def is_device_array(a) -> bool:
    """A Numba device array (or the simulator's stand-in for one)."""
    return bool(getattr(a, "__cuda_ndarray__", False)) and not isinstance(a, np.ndarray)


def address(a) -> int:
    """The address of element ``[0, ..., 0]``."""
    if _sim():
        return a._ary.__array_interface__["data"][0]
    return a.__cuda_array_interface__["data"][0]


def empty(shape, dtype):
    return cuda_module().device_array(tuple(shape), np.dtype(dtype))


def strided_view(a, shape, strides, offset=0):
    """A device array over ``a``'s memory: ``shape``, byte ``strides``, its first element
    ``offset`` bytes after ``a``'s.  It keeps ``a`` alive."""
    shape, strides = tuple(int(s) for s in shape), tuple(int(s) for s in strides)
    if math.prod(shape) == 0:
        return empty(shape, a.dtype)
    if _sim():
        from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
        root = a._ary
        while isinstance(root.base, np.ndarray):
            root = root.base
        start = address(a) + offset - root.__array_interface__["data"][0]
        return FakeCUDAArray(np.ndarray(shape, a.dtype, buffer=root, offset=start, strides=strides))
    desc = {"shape": shape, "strides": strides, "data": (address(a) + offset, False),
            "typestr": a.dtype.str, "version": 3}
    return cuda_module().from_cuda_array_interface(desc, owner=a, sync=False)


def view_like(a, fn):
    """``fn`` (a numpy view function: slicing, transpose, broadcast_to, ...) applied to the
    device array ``a``.  numpy computes the result's geometry on a stand-in array with
    ``a``'s shape and strides over a single element, which nothing ever reads."""
    proxy = as_strided(np.zeros(1, a.dtype), tuple(a.shape), tuple(a.strides))
    v = fn(proxy)
    if not isinstance(v, np.ndarray) or not np.may_share_memory(v, proxy):
        raise AssertionError(f"cuda backend: {fn} copied instead of making a view")
    offset = v.__array_interface__["data"][0] - proxy.__array_interface__["data"][0]
    return strided_view(a, v.shape, v.strides, offset)


def reshape(a, shape):
    """A view of ``a`` in ``shape`` if its strides allow, else a reshaped contiguous copy
    (numpy's ``reshape`` rule)."""
    try:
        return view_like(a, lambda p: np.reshape(p, shape, copy=False))
    except ValueError:
        return view_like(contiguous(a), lambda p: np.reshape(p, shape))


def flat(a):
    """``a`` as the library kernels take it: a 1-d view of the memory it spans (from its
    first element), its strides in elements and its shape (rank 0 as ``(1,)``)."""
    shape = tuple(a.shape) or (1,)
    strides = tuple(s // a.dtype.itemsize for s in a.strides) or (0,)
    if any(s < 0 for s in strides):
        raise NotImplementedError(f"cuda backend: negative strides {strides}")
    span = 1 + sum((n - 1) * s for n, s in zip(shape, strides))
    return strided_view(a, (span,), (a.dtype.itemsize,)), strides, shape


def _library():
    from .kernels import cuda_library
    return cuda_library


def copy_into(dst, src):
    """``dst[...] = src`` on the device (same shape, any strides)."""
    if math.prod(dst.shape) == 0:
        return dst
    lib = _library()
    fd, dst_st, shape = flat(dst)
    fs, src_st, _ = flat(src)
    lib.launch_1d(lib.copy_strided, math.prod(shape), fd, dst_st, fs, src_st, shape)
    return dst


def contiguous(a):
    return copy_into(empty(a.shape, a.dtype), a)


def keep_order_strides(shape, strides, itemsize):
    """The strides numpy's ``np.array(a, order="K")`` gives a copy of ``a``: C or Fortran
    order if ``a`` is so laid out (ignoring axes of length 1), else the axes ordered by
    decreasing stride."""
    n = len(shape)

    def dense(axes):
        step = itemsize
        for d in axes:
            if shape[d] != 1 and strides[d] != step:
                return False
            step *= shape[d]
        return True

    if dense(range(n - 1, -1, -1)):
        order = list(range(n))
    elif dense(range(n)):
        order = list(range(n - 1, -1, -1))
    else:
        order = sorted(range(n), key=lambda d: -abs(strides[d]))
    out, step = [0] * n, itemsize
    for d in reversed(order):
        out[d] = step
        step *= shape[d]
    return tuple(out)


def copy_keep_order(a):
    """A fresh device copy of ``a`` with ``keep_order_strides``."""
    size = math.prod(a.shape)
    if size == 0:
        return empty(a.shape, a.dtype)
    buf = empty((size,), a.dtype)
    out = strided_view(buf, a.shape, keep_order_strides(tuple(a.shape), tuple(a.strides),
                                                        a.dtype.itemsize))
    return copy_into(out, a)


def _span(a):
    if math.prod(a.shape) == 0:
        return 0, 0
    lo = address(a)
    return lo, lo + a.dtype.itemsize + sum((n - 1) * s for n, s in zip(a.shape, a.strides))


def may_share_memory(a, b) -> bool:
    """Do the byte ranges ``a`` and ``b`` span overlap (numpy's ``may_share_memory`` rule)?"""
    (a0, a1), (b0, b1) = _span(a), _span(b)
    return a0 < b1 and b0 < a1


def fresh_device_results(results, protected):
    """Results as device arrays no other result, input or program constant shares memory
    with, and with no broadcast (stride-0) axes: a copy where needed, in the same layout."""
    seen = list(protected)
    out = []
    for r in results:
        broadcast = any(n > 1 and s == 0 for n, s in zip(r.shape, r.strides))
        if broadcast or any(may_share_memory(r, s) for s in seen):
            r = copy_keep_order(r)
        seen.append(r)
        out.append(r)
    return out


# --------------------------------------------------------------------------- library ops
def _dims(op):
    return [tuple(r.type.shape) for r in op.results], [from_ir(r.type.dtype).np for r in op.results]


def _matmul(op, ctx):
    (shape,), (dtype,) = _dims(op)
    lib = _library()

    def run(ins):
        a, b = ins
        if a.ndim == 1:
            a = view_like(a, lambda p: p[None, :])
        if b.ndim == 1:
            b = view_like(b, lambda p: p[:, None])
        sa, sb = tuple(a.shape), tuple(b.shape)      # the simulator's shapes refuse index -1
        batch = tuple(np.broadcast_shapes(sa[:-2], sb[:-2]))
        m, k = sa[-2:]
        n = sb[-1]
        a = view_like(a, lambda p: np.broadcast_to(p, batch + (m, k)))
        b = view_like(b, lambda p: np.broadcast_to(p, batch + (k, n)))
        c = empty(batch + (m, n), dtype)
        if math.prod(c.shape):
            fa, ast, _ = flat(a)
            fb, bst, _ = flat(b)
            fc, cst, full = flat(c)
            lib.launch_1d(lib.matmul_simple, math.prod(full), fc, cst, fa, ast[:-1] + (0,), ast[-1],
                          fb, bst[:-2] + (0, bst[-1]), bst[-2], np.dtype(dtype).type(0), full, k)
        return [reshape(c, shape)]
    return run


def _gather(op, ctx):
    (shape,), (dtype,) = _dims(op)
    dim = op.attributes["dim"]
    lib = _library()
    code = ctx.error_code(op)

    def run(ins):
        x, index = ins
        out = empty(shape, dtype)
        if math.prod(shape):
            fx, xst, xshape = flat(x)
            fi, ist, ishape = flat(index)
            fo, ost, _ = flat(out)
            x_st = xst[:dim] + (0,) + xst[dim + 1:]
            lib.launch_1d(lib.gather_along, math.prod(ishape), fo, ost, fx, x_st, xst[dim],
                          xshape[dim], fi, ist, ishape, ctx.errors, code)
        return [out]
    return run


def _scatter_add(op, ctx):
    dim = op.attributes["dim"]
    lib = _library()
    code = ctx.error_code(op)

    def run(ins):
        x, index, src = ins
        out = contiguous(x)
        if math.prod(index.shape):
            fo, ost, oshape = flat(out)
            fi, ist, ishape = flat(index)
            fs, sst, _ = flat(src)
            o_st = ost[:dim] + (0,) + ost[dim + 1:]
            lib.launch_1d(lib.scatter_add_along, math.prod(ishape), fo, o_st, ost[dim], oshape[dim],
                          fi, ist, fs, sst, ishape, ctx.errors, code)
        return [out]
    return run


def _arg_extreme(op, ctx):
    (shape,), _ = _dims(op)
    dim = op.attributes["dim"]
    largest = op.opname == "argmax"
    lib = _library()

    def run(ins):
        (x,) = ins
        out = empty(shape, np.int64)
        fx, xst, xshape = flat(x)
        d = dim if x.ndim else 0
        keep = xshape[:d] + (1,) + xshape[d + 1:]
        fo, ost, _ = flat(reshape(out, keep))
        lib.launch_1d(lib.arg_extreme, math.prod(keep), fo, ost, fx, xst[:d] + (0,) + xst[d + 1:],
                      xst[d], xshape[d], keep, largest)
        return [out]
    return run


def _cat(op, ctx):
    (shape,), (dtype,) = _dims(op)
    dim = op.attributes["dim"]

    def run(ins):
        out = empty(shape, dtype)
        start = 0
        for x in ins:
            n = x.shape[dim]
            part = view_like(out, lambda p: p[(slice(None),) * dim + (slice(start, start + n),)])
            copy_into(part, x)
            start += n
        return [out]
    return run


def _scatter_into(region):
    def build(op, ctx):
        attrs = dict(op.attributes)

        def run(ins):
            base, src = ins
            out = contiguous(base)
            part = view_like(out, lambda p: region(p, **attrs))
            copy_into(part, view_like(src, lambda p: np.broadcast_to(p, part.shape)))
            return [out]
        return run
    return build


def _view(op, ctx):
    from .ops.registry import get_op
    impl, attrs = get_op(op.opname).impl, dict(op.attributes)
    if op.opname == "reshape":
        return lambda ins: [reshape(ins[0], attrs["shape"])]
    return lambda ins: [view_like(ins[0], lambda p: impl(p, **attrs))]


def _made_once(op, ctx):
    """Constants and ``arange``: computed on the host once, kept on the device."""
    (value,) = run_op(op, [])
    arr = cuda_module().to_device(np.array(value, order="C"))
    ctx.constants.append(arr)
    return lambda ins: [arr]


def _random(op, ctx):
    """``rand``/``randn`` from minaot's generator (the CPU's numbers for a seed), uploaded."""
    return lambda ins: [cuda_module().to_device(np.array(run_op(op, [])[0], order="C"))]


VIEWS = ("reshape", "transpose", "permute", "expand", "unsqueeze", "squeeze", "slice", "select",
         "detach")
LIBRARY = {"matmul": _matmul, "gather": _gather, "scatter_add": _scatter_add,
           "argmax": _arg_extreme, "argmin": _arg_extreme, "cat": _cat,
           "slice_scatter": _scatter_into(lambda p, dim, start, stop, step: _np_slice(p, dim, start, stop, step)),
           "select_scatter": _scatter_into(lambda p, dim, index: _np_select(p, dim, index)),
           "constant": _made_once, "arange": _made_once, "rand": _random, "randn": _random}
LIBRARY.update({name: _view for name in VIEWS})


# --------------------------------------------------------------------------- the program
class CudaKernel:
    """One generated kernel module: its loop IR, its CUDA source and its ``launch``."""

    def __init__(self, kop, graph_name, options):
        self.op = kop
        self.name = f"{graph_name}_{kop.attributes['name']}"
        self.loop = lower_kernel(kop, self.name)
        verify(self.loop)
        self.options = options
        fused = sorted({o.opname for o in kop.regions[0].block.ops[:-1]})
        self.header = f"minaot kernel {self.name} | from prim: {', '.join(fused)} (fused by `fuse`)"
        self.launch, self.source = load_launcher(self.loop, self.header, **options)
        if os.environ.get("MINAOT_PRINT_KERNELS"):
            print(self.source)
        self.out_specs = [(tuple(r.type.shape), from_ir(r.type.dtype).np) for r in kop.results]
        self.called = False

    def launch_config(self):
        """(kernel, blocks, threads) of each CUDA kernel in the module, in launch order."""
        from .codegen.numba_cuda import launch_config
        return launch_config(self.loop, **self.options)

    def __call__(self, ins):
        outs = [empty(s, d) for s, d in self.out_specs]
        try:
            self.launch(*ins, *outs)
        except Exception as exc:
            if self.called:
                raise
            raise KernelCompileError(
                f"Numba could not compile or launch CUDA kernel {self.name} for the ops at "
                f"{self.op.loc}: {type(exc).__name__}: {exc}") from exc
        self.called = True
        return outs


class CudaProgram:
    """A compiled graph on the GPU: steps to run in order, and every stage for printing.

    ``options`` go to ``emit-numba-cuda`` (``max_threads``, ``max_blocks``,
    ``block_rows_min``)."""

    def __init__(self, graph, **options):
        t0 = time.perf_counter()
        cuda = cuda_module()
        self.prim = str(graph)
        g = graph.clone()
        PassManager(["fuse"], verify_each=True).run(g)
        self.graph = g
        self.kernels = {}
        self.constants = []             # device arrays the program owns (results never alias them)
        self.checked = []               # ops that report bad indices through self.errors
        self.errors = None
        self.steps = []
        slot = {v: i for i, v in enumerate(g.args)}
        for op in g.ops:
            for r in op.results:
                slot[r] = len(slot)
        last_use = {}
        for k, op in enumerate(g.ops):
            for v in op.operands:
                last_use[v] = k
        keep = set(g.results)
        for k, op in enumerate(g.ops):
            if op.name == "kernel.fused":
                kern = CudaKernel(op, g.name, options)
                self.kernels[kern.name] = kern
                run = kern
            else:
                build = LIBRARY.get(op.opname) if op.dialect == "prim" else None
                if build is None:
                    raise NotImplementedError(
                        f"cuda backend: no device implementation of {op.name} (at {op.loc}); "
                        f"prim ops it runs outside fused kernels: {', '.join(sorted(LIBRARY))}")
                run = build(op, self)
            drop = [slot[v] for v in dict.fromkeys(op.operands) if last_use[v] == k and v not in keep]
            self.steps.append((run, [slot[v] for v in op.operands], [slot[r] for r in op.results], drop))
        if self.checked:
            self.errors = cuda.to_device(np.zeros(1, np.int32))
        self.n_slots = len(slot)
        self.arg_slots = [slot[v] for v in g.args]
        self.result_slots = [slot[v] for v in g.results]
        self.compile_time = time.perf_counter() - t0
        counters["cuda"]["graphs"] += 1
        counters["cuda"]["kernels"] += len(self.kernels)

    def error_code(self, op) -> int:
        """The code a library kernel writes to ``self.errors`` when ``op``'s indices are bad."""
        self.checked.append(op)
        return len(self.checked)

    def _check_errors(self):
        if not self.checked:
            return
        code = int(self.errors.copy_to_host()[0])
        if code:
            self.errors.copy_to_device(np.zeros(1, np.int32))
            op = self.checked[code - 1]
            shapes = ", ".join(str(tuple(v.type.shape)) for v in op.operands)
            raise IndexError(f"{op.opname}: index out of range (inputs {shapes}) at {op.loc}")

    def run_arrays(self, arrays):
        """Run the program on device arrays (the graph's inputs); returns device arrays."""
        env = [None] * self.n_slots
        for s, a in zip(self.arg_slots, arrays):
            env[s] = a
        for run, ins, outs, drop in self.steps:
            res = run([env[i] for i in ins])
            for s, r in zip(outs, res):
                env[s] = r
            for s in drop:
                env[s] = None
        self._check_errors()
        results = [env[s] for s in self.result_slots]
        return fresh_device_results(results, list(arrays) + self.constants)

    def stage_text(self) -> str:
        parts = [f"== kernel level\n{self.graph}"]
        for k in self.kernels.values():
            parts.append(f"== loop level: {k.name}\n{k.loop}")
            parts.append(f"== CUDA source: {k.name}\n{k.source}")
        return "\n\n".join(parts)
