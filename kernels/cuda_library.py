"""Hand-written CUDA kernels for the library ops of a compiled CUDA program.

The ``cuda`` backend (:mod:`minaot.cuda_backend`) generates a kernel for every
fused group; the ops that ``fuse`` leaves outside any group (a strided copy,
gather, scatter_add, argmax/argmin, and a simple matmul until the tiled one
from ``kernels/matmul_cuda.py`` is wired in) run these kernels instead.

One kernel serves every rank.  Each array travels as a *flat* 1-d view of the
memory it spans (starting at its element ``[0, ..., 0]``) plus its strides in
elements, as a tuple; a work item unravels its flat index over the shape (a
tuple too) and adds up ``index * stride`` per dimension.  Numba compiles one
version per tuple length, so a rank-3 call and a rank-1 call are two
specialisations of the same source.  A rank-0 array is passed as shape
``(1,)``.  Every loop is a grid-stride loop; :func:`launch_1d` picks the grid.

Kernels cannot raise on a GPU: gather and scatter_add write an error code into
a one-element device array instead, which the program reads after its call.
"""

from __future__ import annotations

from numba import config, cuda

if config.ENABLE_CUDASIM:
    from minaot.codegen.cuda_simulator import install
    install()                           # shared arrays allocated under a lock

THREADS = 32 if config.ENABLE_CUDASIM else 256     # the simulator runs one OS thread per thread
MAX_BLOCKS = 4 if config.ENABLE_CUDASIM else 1024


def launch_1d(kernel, n, *args):
    """Run ``kernel`` over ``n`` work items (grid-stride: any grid covers them all)."""
    if n == 0:
        return
    threads = min(THREADS, n)
    blocks = min(MAX_BLOCKS, -(-n // threads))
    kernel[blocks, threads](*args, n)


@cuda.jit(cache=True)
def copy_strided(dst, dst_st, src, src_st, shape, n):
    """``dst[i] = src[i]`` for every index ``i`` of ``shape`` (any strides on both sides)."""
    for flat in range(cuda.grid(1), n, cuda.gridsize(1)):
        rem = flat
        d = 0
        s = 0
        for k in range(len(shape) - 1, -1, -1):
            i = rem % shape[k]
            rem //= shape[k]
            d += i * dst_st[k]
            s += i * src_st[k]
        dst[d] = src[s]


@cuda.jit(cache=True)
def matmul_simple(c, c_st, a, a_st, a_k, b, b_st, b_k, zero, shape, kdim, n):
    """``c[..., i, j] = sum_k a[..., i, k] * b[..., k, j]``, one thread per element of ``c``.

    ``a_st`` is 0 on the ``j`` axis, ``b_st`` on the ``i`` axis (and on broadcast batch
    axes); ``a_k``/``b_k`` are the strides along ``k``.  ``zero`` gives the sum's type."""
    for flat in range(cuda.grid(1), n, cuda.gridsize(1)):
        rem = flat
        co = 0
        ao = 0
        bo = 0
        for d in range(len(shape) - 1, -1, -1):
            i = rem % shape[d]
            rem //= shape[d]
            co += i * c_st[d]
            ao += i * a_st[d]
            bo += i * b_st[d]
        acc = zero
        for k in range(kdim):
            acc += a[ao + k * a_k] * b[bo + k * b_k]
        c[co] = acc


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
        if j < 0:
            j += size
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
        if j < 0:
            j += size
        if j < 0 or j >= size:
            err[0] = code
        else:
            cuda.atomic.add(out, oo + j * out_dim_st, src[so])


@cuda.jit(cache=True)
def arg_extreme(out, out_st, x, x_st, x_dim_st, size, shape, largest, n):
    """Index of the first largest (``largest``) or smallest element along one axis; a NaN
    counts as the extreme, as in numpy.  ``shape`` is ``x``'s with that axis set to 1."""
    for flat in range(cuda.grid(1), n, cuda.gridsize(1)):
        rem = flat
        oo = 0
        xo = 0
        for d in range(len(shape) - 1, -1, -1):
            i = rem % shape[d]
            rem //= shape[d]
            oo += i * out_st[d]
            xo += i * x_st[d]
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
