"""Scans and sorts along one axis on the GPU: ``cumsum`` and ``argsort``.

The idea.  A cumulative sum makes each output depend on every earlier element
of its line, which the generated kernels (pointwise maps and reductions) do not
express, so it is a hand-written kernel, one for every rank and layout, used by
eager CUDA ops (:mod:`minaot.cuda_eager`) and by compiled CUDA programs
(:mod:`minaot.cuda_backend`) alike.  It is the straightforward version: *one
thread per line*.  The tensor's shape with the scanned axis set to 1 numbers
the lines; a thread unravels its line number into coordinates (last axis
first, as in :mod:`minaot.kernels.cuda_library`), turns them into the offsets
of the line's first element in the input and in the output (each array
travels as its flat memory plus its strides in elements), then walks the line
keeping a running sum.  Work is spread only across lines: a single long line
runs on one thread (correct, but slow; a parallel scan would split it).

The running sum of a float32 line is a float64, each prefix rounded to float32
when it is stored: what PyTorch's CPU kernel does and what minaot's numpy
implementation does, so a CUDA result equals the CPU's.  Integers are summed
as int64.  ``reverse`` walks the line from its end (the gradient of
``cumsum``).

``argsort`` (behind ``sort`` and ``topk``, which read the values with a
``gather``) is the same one-thread-per-line scheme with a *bottom-up merge
sort* of the line's indices: runs of width 1, 2, 4, ... are merged pairwise,
back and forth between the output and a scratch array of the same shape, so
each line takes ``size * ceil(log2(size))`` steps and no per-thread memory.
The host knows how many passes a line of that size takes, so it starts in
whichever array makes the last pass land in the output.  A merge takes the
right run's element only when it comes strictly before the left one's, so
the sort is *stable*: equal elements keep their order, the order numpy's
``kind="stable"`` gives on the CPU.  NaN sorts as the largest value, as in
PyTorch (first when descending).
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from minaot.kernels.cuda_library import flat, launch_1d, line_start


@cuda.jit(cache=True)
def cumsum_lines(out, out_st, out_dim_st, x, x_st, x_dim_st, size, shape, reverse, zero, n):
    """For each of the ``n`` lines (coordinates over ``shape``, the input's shape with the
    scanned axis set to 1): ``out[k] = x[0] + ... + x[k]`` along the line (from the end if
    ``reverse``), accumulated in ``zero``'s type."""
    for line in range(cuda.grid(1), n, cuda.gridsize(1)):
        oo, xo = line_start(line, shape, out_st, x_st)
        acc = zero
        for k in range(size):
            j = size - 1 - k if reverse else k
            acc += x[xo + j * x_dim_st]
            out[oo + j * out_dim_st] = acc


def _lines(shape, dim):
    """The shape that numbers the lines along ``dim`` (``dim`` set to 1)."""
    return shape[:dim] + (1,) + shape[dim + 1:]


def cumsum(x, dim, reverse):
    """``(out, root)``: the cumulative sum of device array ``x`` along ``dim`` (from the end
    of each line if ``reverse``), a new C-contiguous array of ``x``'s shape and dtype."""
    from minaot.cuda import empty
    out, root = empty(tuple(x.shape), x.dtype)
    if out.size:
        fx, xst, xshape = flat(x)
        fo, ost, _ = flat(out)
        dim = dim if x.ndim else 0
        lines = _lines(xshape, dim)
        zero = np.float64(0) if x.dtype.kind == "f" else x.dtype.type(0)   # ints wrap around
        launch_1d(cumsum_lines, math.prod(lines), fo, ost, ost[dim], fx, xst, xst[dim],
                  xshape[dim], lines, bool(reverse), zero)
    return out, root


@cuda.jit(device=True)
def _before(a, b, descending):
    """Does ``a`` come strictly before ``b``?  NaN is the largest value."""
    if descending:
        return a > b or (a != a and b == b)
    return a < b or (b != b and a == a)


@cuda.jit(device=True)
def _merge_pass(src, dst, bo, b_st, x, xo, x_st, size, width, descending):
    """One pass of the merge sort of the line at ``bo`` (indices into the line of ``x`` at
    ``xo``): each pair of neighbouring runs of ``width`` in ``src`` merged into ``dst``."""
    lo = 0
    while lo < size:
        mid = lo + width if lo + width < size else size
        hi = lo + 2 * width if lo + 2 * width < size else size
        i = lo
        j = mid
        for k in range(lo, hi):
            left = i < mid
            if left and j < hi:
                left = not _before(x[xo + src[bo + j * b_st] * x_st],
                                   x[xo + src[bo + i * b_st] * x_st], descending)
            if left:
                dst[bo + k * b_st] = src[bo + i * b_st]
                i += 1
            else:
                dst[bo + k * b_st] = src[bo + j * b_st]
                j += 1
        lo += 2 * width


@cuda.jit(cache=True)
def argsort_lines(first, second, b_st, b_dim_st, x, x_st, x_dim_st, size, shape, descending, n):
    """For each of the ``n`` lines: the positions that sort the line of ``x`` (stable),
    merge-sorted back and forth between ``first`` and ``second`` (same layout, strides
    ``b_st``), starting in ``first``."""
    for line in range(cuda.grid(1), n, cuda.gridsize(1)):
        bo, xo = line_start(line, shape, b_st, x_st)
        for k in range(size):
            first[bo + k * b_dim_st] = k
        width = 1
        into_second = True
        while width < size:
            if into_second:
                _merge_pass(first, second, bo, b_dim_st, x, xo, x_dim_st, size, width, descending)
            else:
                _merge_pass(second, first, bo, b_dim_st, x, xo, x_dim_st, size, width, descending)
            into_second = not into_second
            width *= 2


def argsort(x, dim, descending):
    """``(out, root)``: int64 positions that sort device array ``x`` along ``dim`` (stable;
    NaN largest), a new C-contiguous array of ``x``'s shape."""
    from minaot.cuda import empty
    out, root = empty(tuple(x.shape), np.int64)
    if out.size == 0:
        return out, root
    fx, xst, xshape = flat(x)
    dim = dim if x.ndim else 0
    size = xshape[dim]
    passes, width = 0, 1
    while width < size:
        passes, width = passes + 1, width * 2
    scratch = empty(tuple(x.shape), np.int64)[0] if passes else out
    fo, ost, _ = flat(out)
    fs, _, _ = flat(scratch)
    first, second = (fo, fs) if passes % 2 == 0 else (fs, fo)    # the last pass ends in out
    lines = _lines(xshape, dim)
    launch_1d(argsort_lines, math.prod(lines), first, second, ost, ost[dim], fx, xst, xst[dim],
              size, lines, bool(descending))
    return out, root
