"""Scans along one axis on the GPU: ``cumsum`` (forward, or from the end of the line).

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
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from minaot.kernels.cuda_library import flat, launch_1d


@cuda.jit(cache=True)
def cumsum_lines(out, out_st, out_dim_st, x, x_st, x_dim_st, size, shape, reverse, zero, n):
    """For each of the ``n`` lines (coordinates over ``shape``, the input's shape with the
    scanned axis set to 1): ``out[k] = x[0] + ... + x[k]`` along the line (from the end if
    ``reverse``), accumulated in ``zero``'s type."""
    for line in range(cuda.grid(1), n, cuda.gridsize(1)):
        rem = line
        oo = 0
        xo = 0
        for d in range(len(shape) - 1, -1, -1):
            i = rem % shape[d]
            rem //= shape[d]
            oo += i * out_st[d]
            xo += i * x_st[d]
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
        zero = np.float64(0) if x.dtype.kind == "f" else np.int64(0)
        launch_1d(cumsum_lines, math.prod(lines), fo, ost, ost[dim], fx, xst, xst[dim],
                  xshape[dim], lines, bool(reverse), zero)
    return out, root
