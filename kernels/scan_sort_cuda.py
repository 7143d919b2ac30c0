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

The other scans are the same one-thread-per-line walk with another running
value: ``cumprod`` (the same kernel as ``cumsum``, multiplying), ``logcumsumexp``
(a float64 running log-sum-exp, PyTorch's ``_log_add_exp_helper`` step by step),
and ``cumargmax``/``cumargmin`` (the position of the running extreme, behind
``cummax``/``cummin``: a later equal element takes over, and NaN, once seen,
holds, each later NaN taking over, as on PyTorch's CPU).  ``searchsorted`` is one
thread per searched value, a binary search in its row of boundaries with
PyTorch's comparisons (so NaN and unsorted rows give PyTorch's answers too).
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from minaot.kernels.cuda_library import flat, launch_1d, line_start


@cuda.jit(cache=True)
def cumsum_lines(out, out_st, out_dim_st, x, x_st, x_dim_st, size, shape, reverse, product,
                 start, n):
    """For each of the ``n`` lines (coordinates over ``shape``, the input's shape with the
    scanned axis set to 1): ``out[k] = x[0] + ... + x[k]`` along the line (from the end if
    ``reverse``; ``x[0] * ... * x[k]`` if ``product``), accumulated in ``start``'s type
    from ``start`` (0 or 1)."""
    for line in range(cuda.grid(1), n, cuda.gridsize(1)):
        oo, xo = line_start(line, shape, out_st, x_st)
        acc = start
        for k in range(size):
            j = size - 1 - k if reverse else k
            if product:
                acc *= x[xo + j * x_dim_st]
            else:
                acc += x[xo + j * x_dim_st]
            out[oo + j * out_dim_st] = acc


def _lines(shape, dim):
    """The shape that numbers the lines along ``dim`` (``dim`` set to 1)."""
    return shape[:dim] + (1,) + shape[dim + 1:]


def _along_lines(kernel, x, dim, out_dtype, *extra):
    """``(out, root)``: ``kernel`` run one thread per line of device array ``x`` along
    ``dim``, writing a new C-contiguous array of ``x``'s shape and ``out_dtype``; the
    kernel's arguments are ``out`` and ``x`` (flat, with their strides), the line length,
    the lines' shape, then ``extra``."""
    from minaot.cuda import empty
    out, root = empty(tuple(x.shape), out_dtype)
    if out.size:
        fx, xst, xshape = flat(x)
        fo, ost, _ = flat(out)
        dim = dim if x.ndim else 0
        lines = _lines(xshape, dim)
        launch_1d(kernel, math.prod(lines), fo, ost, ost[dim], fx, xst, xst[dim], xshape[dim],
                  lines, *extra)
    return out, root


def _scan(x, dim, reverse, product):
    # a float line runs in float64; an integer one in its own type (wrapping around)
    start = (np.float64 if x.dtype.kind == "f" else x.dtype.type)(1 if product else 0)
    return _along_lines(cumsum_lines, x, dim, x.dtype, bool(reverse), bool(product), start)


def cumsum(x, dim, reverse):
    """``(out, root)``: the cumulative sum of device array ``x`` along ``dim`` (from the end
    of each line if ``reverse``), a new C-contiguous array of ``x``'s shape and dtype."""
    return _scan(x, dim, reverse, False)


def cumprod(x, dim):
    """``(out, root)``: the cumulative product of device array ``x`` along ``dim`` (float64
    or int64 running product), a new C-contiguous array of ``x``'s shape and dtype."""
    return _scan(x, dim, False, True)


@cuda.jit(device=True)
def _log_add_exp(x, y):
    """PyTorch's ``_log_add_exp_helper(x, y)``: ``log(exp(x) + exp(y))``, NaN if either is
    NaN, ``x`` when both are the same infinity."""
    if x != x or y != y:
        return x + y
    lo = x if x < y else y
    hi = y if x < y else x
    if lo == hi and math.isinf(lo):
        return x
    return math.log1p(math.exp(lo - hi)) + hi


@cuda.jit(cache=True)
def logcumsumexp_lines(out, out_st, out_dim_st, x, x_st, x_dim_st, size, shape, reverse, n):
    """For each line: ``out[k] = log(exp(x[0]) + ... + exp(x[k]))`` (from the end if
    ``reverse``), a float64 running value rounded to the output's type at each store."""
    for line in range(cuda.grid(1), n, cuda.gridsize(1)):
        oo, xo = line_start(line, shape, out_st, x_st)
        acc = -math.inf
        for k in range(size):
            j = size - 1 - k if reverse else k
            acc = _log_add_exp(np.float64(x[xo + j * x_dim_st]), acc)
            out[oo + j * out_dim_st] = acc


def logcumsumexp(x, dim, reverse):
    """``(out, root)``: the cumulative log-sum-exp of float device array ``x`` along ``dim``
    (from the end of each line if ``reverse``)."""
    return _along_lines(logcumsumexp_lines, x, dim, x.dtype, bool(reverse))


@cuda.jit(cache=True)
def cumarg_lines(out, out_st, out_dim_st, x, x_st, x_dim_st, size, shape, largest, n):
    """For each line: ``out[k]``, the position of the largest (``largest``) or smallest
    element of ``x[0..k]``; on a tie the later one, and NaN counts as the extreme (each
    later NaN taking over), as PyTorch's CPU ``cummax``/``cummin``."""
    for line in range(cuda.grid(1), n, cuda.gridsize(1)):
        oo, xo = line_start(line, shape, out_st, x_st)
        best = x[xo]
        at = 0
        for k in range(size):
            v = x[xo + k * x_dim_st]
            if v != v:
                best = v
                at = k
            elif best == best and ((largest and v >= best) or (not largest and v <= best)):
                best = v
                at = k
            out[oo + k * out_dim_st] = at


def _cumarg(x, dim, largest):
    return _along_lines(cumarg_lines, x, dim, np.int64, bool(largest))


def cumargmax(x, dim):
    """``(out, root)``: int64 positions of the running maximum of ``x`` along ``dim``."""
    return _cumarg(x, dim, True)


def cumargmin(x, dim):
    """``(out, root)``: int64 positions of the running minimum of ``x`` along ``dim``."""
    return _cumarg(x, dim, False)


@cuda.jit(cache=True)
def searchsorted_rows(out, out_st, seq, seq_st, values, v_st, size, cols, right, n):
    """For each of the ``n`` values ``values[r, c]`` (``cols`` per row): the first position
    ``i`` of row ``r`` of ``seq`` (``size`` long) where ``seq[r, i] >= value`` (``> value``
    if ``right``), by PyTorch's binary search."""
    for item in range(cuda.grid(1), n, cuda.gridsize(1)):
        r = item // cols
        c = item - r * cols
        v = values[r * v_st[0] + c * v_st[1]]
        lo = 0
        hi = size
        while lo < hi:
            mid = lo + ((hi - lo) >> 1)
            m = seq[r * seq_st[0] + mid * seq_st[1]]
            if right:
                go_right = not (m > v)
            else:
                go_right = not (m >= v)
            if go_right:
                lo = mid + 1
            else:
                hi = mid
        out[r * out_st[0] + c * out_st[1]] = lo


def searchsorted(seq, values, right):
    """``(out, root)``: for 2-d device arrays ``seq`` (rows of boundaries) and ``values``
    (as many rows), int64 insertion positions of each value in its row."""
    from minaot.cuda import empty
    out, root = empty(tuple(values.shape), np.int64)
    if out.size:
        fv, vst, vshape = flat(values)
        fo, ost, _ = flat(out)
        fs, sst = (flat(seq)[:2] if seq.shape[1] else (fv, vst))   # nothing to read: any array
        launch_1d(searchsorted_rows, out.size, fo, ost, fs, sst, fv, vst, seq.shape[1],
                  vshape[1], bool(right))
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
