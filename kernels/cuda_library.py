"""Index kernels for compiled CUDA programs: gather, scatter_add, argmax, argmin.

The ``cuda`` backend (:mod:`minaot.cuda_backend`) generates a kernel for every
fused group; these ops read or write at positions that come from data (an
index tensor, the position of an extreme), which generated kernels do not
express, so each is one hand-written kernel.

One kernel serves every rank.  Each array travels as a *flat* 1-d view of the
memory it spans (starting at its element ``[0, ..., 0]``) plus its strides in
elements, as a tuple; a work item unravels its flat index over the shape (a
tuple too) and adds up ``index * stride`` per dimension.  Numba compiles one
version per tuple length, so a rank-3 call and a rank-1 call are two
specialisations of the same source; shapes and strides travel as kernel
arguments, so a call copies nothing to the device.  A rank-0 array is passed as
shape ``(1,)``.  Every loop is a grid-stride loop; :func:`launch_1d` picks the grid.

Kernels cannot raise on a GPU: gather and scatter_add write an error code into
a one-element device array that the program owns, and the program reads it
once, after its call (so a call has one device-to-host copy, not one per op).
(``minaot.kernels.index_cuda`` has the eager versions, which check after each op.)
"""

from __future__ import annotations

import math

import numpy as np
from numba import config, cuda

THREADS = 32 if config.ENABLE_CUDASIM else 256     # the simulator runs one OS thread per thread
MAX_BLOCKS = 4 if config.ENABLE_CUDASIM else 1024


_LAUNCHERS = {}         # (kernel, blocks, threads) -> its Launcher


def launch_1d(kernel, n, *args):
    """Run ``kernel`` over ``n`` work items (grid-stride: any grid covers them all), through
    a kept :class:`~minaot.codegen.cuda_runtime.Launcher` (Numba's argument typing once per
    argument geometry, not at every call)."""
    if n == 0:
        return
    threads = min(THREADS, n)
    blocks = min(MAX_BLOCKS, -(-n // threads))
    run = _LAUNCHERS.get((kernel, blocks, threads))
    if run is None:
        from minaot.codegen.cuda_runtime import Launcher
        if len(_LAUNCHERS) > 1024:
            _LAUNCHERS.clear()
        run = _LAUNCHERS[(kernel, blocks, threads)] = Launcher(kernel, blocks, threads)
    run(*args, n)


@cuda.jit(cache=True)
def gather_along(out, out_st, x, x_st, x_dim_st, size, index, idx_st, shape, err, code, n):
    """``out[i] = x[i with i[dim] = index[i]]``; ``x_st`` is 0 on ``dim``.  An index outside
    ``[-size, size)`` writes ``code`` to ``err[0]``."""
    for flat in range(cuda.grid(1), n, cuda.gridsize(1)):
        rem = flat
        oo = 0
        xo = 0
        io = 0
        for d in range(len(shape) - 1, -1, -1):
            i = rem % shape[d]
            rem //= shape[d]
            oo += i * out_st[d]
            xo += i * x_st[d]
            io += i * idx_st[d]
        j = index[io]
        if j < 0 or j >= size:
            err[0] = code
        else:
            out[oo] = x[xo + j * x_dim_st]


@cuda.jit(cache=True)
def scatter_add_along(out, out_st, out_dim_st, size, index, idx_st, src, src_st, shape, err, code, n):
    """``out[i with i[dim] = index[i]] += src[i]`` (atomic adds); ``out_st`` is 0 on ``dim``."""
    for flat in range(cuda.grid(1), n, cuda.gridsize(1)):
        rem = flat
        oo = 0
        io = 0
        so = 0
        for d in range(len(shape) - 1, -1, -1):
            i = rem % shape[d]
            rem //= shape[d]
            oo += i * out_st[d]
            io += i * idx_st[d]
            so += i * src_st[d]
        j = index[io]
        if j < 0 or j >= size:
            err[0] = code
        else:
            cuda.atomic.add(out, oo + j * out_dim_st, src[so])


@cuda.jit(device=True)
def line_start(line, shape, a_st, b_st):
    """The offsets in two arrays (strides ``a_st``, ``b_st``) of the first element of line
    number ``line``, its coordinates unravelled over ``shape`` (the arrays' shape with the
    line's axis set to 1): the one loop of every kernel here that works line by line."""
    rem = line
    a = 0
    b = 0
    for d in range(len(shape) - 1, -1, -1):
        i = rem % shape[d]
        rem //= shape[d]
        a += i * a_st[d]
        b += i * b_st[d]
    return a, b


@cuda.jit(cache=True)
def arg_extreme(out, out_st, x, x_st, x_dim_st, size, shape, largest, n):
    """Index of the first largest (``largest``) or smallest element along one axis; a NaN
    counts as the extreme, as in numpy.  ``shape`` is ``x``'s with that axis set to 1."""
    for flat in range(cuda.grid(1), n, cuda.gridsize(1)):
        oo, xo = line_start(flat, shape, out_st, x_st)
        best = x[xo]
        at = 0
        for k in range(1, size):
            if best != best:
                break
            v = x[xo + k * x_dim_st]
            if v != v or (largest and v > best) or (not largest and v < best):
                best = v
                at = k
        out[oo] = at


# ---------------------------------------------------------------- launchers
def flat(arr):
    """``arr`` as the kernels take it: a 1-d view of the memory it spans (from its first
    element), its strides in elements and its shape (rank 0 as ``(1,)``)."""
    from minaot.cuda import strided
    item = arr.dtype.itemsize
    shape = tuple(arr.shape) or (1,)
    strides = tuple(s // item for s in arr.strides) or (0,)
    span = 1 + sum((n - 1) * s for n, s in zip(shape, strides))
    return strided(arr, 0, (span,), (item,)), strides, shape


def _without(strides, dim):
    return strides[:dim] + (0,) + strides[dim + 1:]


def gather(x, index, dim, errors, code):
    """``(out, root)``: ``out[i] = x[i with i[dim] = index[i]]`` (numpy's take_along_axis on
    the region of ``x`` that ``index`` covers); bad indices write ``code`` to ``errors``."""
    from minaot.cuda import empty
    out, root = empty(tuple(index.shape), x.dtype)
    if out.size:
        fx, xst, xshape = flat(x)
        fi, ist, ishape = flat(index)
        fo, ost, _ = flat(out)
        launch_1d(gather_along, out.size, fo, ost, fx, _without(xst, dim), xst[dim], xshape[dim],
                  fi, ist, ishape, errors, code)
    return out, root


def scatter_add(x, index, src, dim, errors, code):
    """``(out, root)``: a copy of ``x`` with ``src[i]`` added at ``i with i[dim] = index[i]``."""
    from minaot.cuda_eager import contiguous_copy_root
    out, root = contiguous_copy_root(x)
    if index.size:
        fo, ost, oshape = flat(out)
        fi, ist, ishape = flat(index)
        fs, sst, _ = flat(src)
        launch_1d(scatter_add_along, index.size, fo, _without(ost, dim), ost[dim], oshape[dim],
                  fi, ist, fs, sst, ishape, errors, code)
    return out, root


def _arg(x, dim, keepdim, largest):
    from minaot.cuda import empty
    fx, xst, xshape = flat(x)
    dim = dim if x.ndim else 0
    keep = xshape[:dim] + (1,) + xshape[dim + 1:]
    shape = keep if keepdim else tuple(n for d, n in enumerate(tuple(x.shape)) if d != dim)
    out, root = empty(shape, np.int64)
    fo, _, _ = flat(out)
    ost = tuple(s // out.dtype.itemsize for s in out.strides)
    if len(ost) < len(keep):                # the reduced axis is gone: stride 0 on it
        ost = ost[:dim] + (0,) + ost[dim:]
    launch_1d(arg_extreme, math.prod(keep), fo, ost, fx, _without(xst, dim), xst[dim],
              xshape[dim], keep, largest)
    return out, root


def argmax(x, dim, keepdim):
    return _arg(x, dim, keepdim, True)


def argmin(x, dim, keepdim):
    return _arg(x, dim, keepdim, False)
