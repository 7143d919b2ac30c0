"""Index ops on the GPU: ``gather``, ``scatter_add``, ``argmax``, ``argmin``.

These ops read or write at positions that come from data (an index tensor, the
position of a maximum), which the generated kernels do not express, so each
is one hand-written kernel.  The kernels work for any rank and any strides:
each array is passed as its flat memory (a 1-d view from its first element)
with its strides in elements, and each thread turns its flat output position
into one coordinate per axis (``c = rem % shape[ax]; rem //= shape[ax]``,
last axis first) and the coordinates into memory offsets (``sum c * stride``).
Shapes and strides travel as small int64 device arrays; threads stride over
the work (``for flat in range(cuda.grid(1), n, cuda.gridsize(1))``).

``scatter_add`` adds with ``cuda.atomic.add``: two index entries may name the
same element.  An index out of range cannot raise inside a kernel; the
kernel sets a flag instead, which the launcher reads back and raises
``IndexError`` (numpy's and the CPU op's error).
"""

from __future__ import annotations

import numpy as np
from numba import cuda

THREADS = 128
MAX_BLOCKS = 1024


@cuda.jit(cache=True)
def gather_kernel(x, xs, idx, ids, out, shape, dim, size, err):
    """out[c] = x[c with axis ``dim`` replaced by idx[c]] for each coordinate c of ``shape``
    (``out`` C-contiguous; ``x``, ``idx`` flat memory with element strides ``xs``, ``ids``)."""
    for flat in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        rem = flat
        xo = 0
        io = 0
        for ax in range(shape.size - 1, -1, -1):
            c = rem % shape[ax]
            rem //= shape[ax]
            io += c * ids[ax]
            if ax != dim:
                xo += c * xs[ax]
        i = idx[io]
        if i < 0 or i >= size:
            err[0] = 1
        else:
            out[flat] = x[xo + i * xs[dim]]


@cuda.jit(cache=True)
def scatter_add_kernel(out, os, idx, ids, src, ss, shape, dim, size, err):
    """out[c with axis ``dim`` replaced by idx[c]] += src[c] for each coordinate c of
    ``shape`` (the index's shape), atomically."""
    n = 1
    for ax in range(shape.size):
        n *= shape[ax]
    for flat in range(cuda.grid(1), n, cuda.gridsize(1)):
        rem = flat
        oo = 0
        io = 0
        so = 0
        for ax in range(shape.size - 1, -1, -1):
            c = rem % shape[ax]
            rem //= shape[ax]
            io += c * ids[ax]
            so += c * ss[ax]
            if ax != dim:
                oo += c * os[ax]
        i = idx[io]
        if i < 0 or i >= size:
            err[0] = 1
        else:
            cuda.atomic.add(out, oo + i * os[dim], src[so])


@cuda.jit(cache=True)
def arg_kernel(x, xs, out, shape, dim, size, want_max):
    """out[c] = the first position along ``dim`` of the maximum (or minimum) of x at the
    other coordinates c (``shape``: x's shape without ``dim``); a NaN wins, as in numpy."""
    for flat in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        rem = flat
        xo = 0
        k = shape.size - 1
        for ax in range(xs.size - 1, -1, -1):
            if ax == dim:
                continue
            c = rem % shape[k]
            rem //= shape[k]
            k -= 1
            xo += c * xs[ax]
        best = x[xo]
        at = 0
        for r in range(1, size):
            if best != best:                # a NaN: numpy returns the first one
                break
            v = x[xo + r * xs[dim]]
            if (v > best if want_max else v < best) or v != v:
                best = v
                at = r
        out[flat] = at


# ---------------------------------------------------------------- launchers
def _grid(n):
    return max(1, min(-(-n // THREADS), MAX_BLOCKS)), THREADS


def _flat(arr):
    """(flat memory of ``arr`` from its first element, its strides in elements)."""
    from minaot.cuda import strided
    item = arr.dtype.itemsize
    strides = tuple(s // item for s in arr.strides)
    span = 1 + sum((n - 1) * s for n, s in zip(arr.shape, strides)) if arr.size else 0
    return strided(arr, 0, (span,), (item,)), strides


def _ints(values):
    from minaot.cuda import to_device
    return to_device(np.array(list(values) or [0], dtype=np.int64))


def _check(err, op):
    if err.copy_to_host()[0]:
        raise IndexError(f"{op}: index out of range (on the GPU)")


def _region(arr, shape, dim):
    """``arr`` cut to ``shape`` on every axis but ``dim`` (numpy's x[:a, :, :b])."""
    from minaot.cuda_eager import view_array
    for ax, n in enumerate(shape):
        if ax != dim and arr.shape[ax] != n:
            arr = view_array(arr, "slice", dict(dim=ax, start=0, stop=n, step=1))[0]
    return arr


def gather(x, index, dim):
    """``(out, root)``: ``take_along_axis(x[region of index], index, dim)`` on device arrays."""
    from minaot.cuda_eager import empty
    out, root = empty(index.shape, x.dtype)
    if out.size == 0:
        return out, root
    xf, xs = _flat(_region(x, index.shape, dim))
    idf, ids = _flat(index)
    of, _ = _flat(out)
    err = _ints([0])
    gather_kernel[_grid(out.size)](xf, _ints(xs), idf, _ints(ids), of, _ints(index.shape), dim,
                                   x.shape[dim], err)
    _check(err, "gather")
    return out, root


def scatter_add(x, index, src, dim):
    """``(out, root)``: a copy of ``x`` with ``src[c]`` added at ``index[c]`` along ``dim``."""
    from minaot.cuda_eager import contiguous_copy_root
    out, root = contiguous_copy_root(x)
    n = int(np.prod(index.shape, dtype=np.int64))
    if n == 0:
        return out, root
    of, os_ = _flat(out)
    idf, ids = _flat(index)
    sf, ss = _flat(_region(src, index.shape, dim))
    err = _ints([0])
    scatter_add_kernel[_grid(n)](of, _ints(os_), idf, _ints(ids), sf, _ints(ss),
                                 _ints(index.shape), dim, x.shape[dim], err)
    _check(err, "scatter_add")
    return out, root


def _arg(x, dim, keepdim, want_max):
    from minaot.cuda_eager import empty, view_array
    if x.ndim == 0:
        x = view_array(x, "reshape", dict(shape=(1,)))[0]
    rest = tuple(n for ax, n in enumerate(x.shape) if ax != dim)
    out, root = empty(rest, np.int64)
    if out.size:
        xf, xs = _flat(x)
        of, _ = _flat(out)
        arg_kernel[_grid(out.size)](xf, _ints(xs), of, _ints(rest), dim, x.shape[dim], want_max)
    if keepdim:
        out = view_array(out, "unsqueeze", dict(dim=dim))[0]
    return out, root


def argmax(x, dim, keepdim):
    return _arg(x, dim, keepdim, True)


def argmin(x, dim, keepdim):
    return _arg(x, dim, keepdim, False)
