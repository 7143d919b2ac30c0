"""The memory layout of an op's result: PyTorch's rule, kept by eager and by tracing.

A view shares its input's memory, with the strides the view op gives it.  Every
other op writes a fresh result, and PyTorch chooses that result's strides:

* a *pointwise* op (and ``clone()``) gives its result the memory order of its operands
  (TensorIterator's rule): ``x.t() * 2`` is column-major like ``x.t()``.  The order of
  the dimensions is found by comparing, for each pair of dimensions, the strides of
  the operands in turn: the first operand whose two strides differ (and are not a
  broadcast's 0) decides; if none does, the dimensions keep their order.  The result
  is then dense in that order;
* every other op (reductions, ``softmax``, ``matmul``, ``cat``, ``gather``...) gives a
  C-contiguous result.

Strides are observable: ``view`` works on a contiguous tensor and fails on another,
``reshape`` copies or not, ``is_contiguous()`` and ``stride()`` answer.  numpy's
own choices differ (a reduction keeps its input's order; mixed layouts give C
order), so :func:`conform` copies a result into the right layout when they do.
The common case, all operands C-contiguous, is checked first and costs nothing.
The tracer lays out its fake results with the same rule, so a compiled function
sees the strides eager sees (and its runtime gives its results those strides:
:func:`dense_layout`).  CUDA tensors follow the same rule for pointwise ops and
``clone()`` (:func:`result_strides` on their numpy stand-ins).
"""

from __future__ import annotations

import numpy as np

def follows_operands(op, attrs) -> bool:
    """Does ``op``'s result take its operands' memory order (else C order)?  Pointwise
    ops do, and ``clone`` with ``memory_format="preserve"`` (the public ``clone()``;
    ``contiguous()`` and a copying ``reshape`` clone into C order)."""
    return op.kind == "pointwise" or (op.name == "clone"
                                      and attrs.get("memory_format") == "preserve")


def _order(shape, operand_strides) -> list:
    """Dimensions from the fastest-varying to the slowest (TensorIterator's
    ``reorder_dimensions``): an insertion sort with the operands' strides as the key."""
    ndim = len(shape)

    def should_swap(d0, d1):
        for strides in operand_strides:
            s0, s1 = strides[d0], strides[d1]
            if s0 == 0 or s1 == 0:
                continue
            if s0 < s1:
                return -1
            if s0 > s1:
                return 1
            if shape[d0] > shape[d1]:
                return 1
        return 0

    perm = list(range(ndim - 1, -1, -1))
    for i in range(1, ndim):
        d1 = i
        for d0 in range(i - 1, -1, -1):
            c = should_swap(perm[d0], perm[d1])
            if c > 0:
                perm[d0], perm[d1] = perm[d1], perm[d0]
                d1 = d0
            elif c < 0:
                break
    return perm


def result_strides(shape, itemsize: int, operands) -> tuple | None:
    """Byte strides of a pointwise result of ``shape`` over the numpy arrays
    ``operands`` (in the op's operand order; broadcast ones included), or ``None``
    for C order."""
    shape = tuple(shape)
    arrays = [a for a in operands if isinstance(a, np.ndarray) and a.ndim > 0]
    if all(a.flags.c_contiguous and a.shape == shape for a in arrays):
        return None                 # TensorIterator's fast set-up: all contiguous
    strides = [_broadcast_strides(a, shape) for a in arrays]
    out = [0] * len(shape)
    step = itemsize
    for d in _order(shape, strides):
        out[d] = step
        step *= shape[d]
    return None if tuple(out) == _c_strides(shape, itemsize) else tuple(out)


def _broadcast_strides(a: np.ndarray, shape) -> tuple:
    """``a``'s strides seen at ``shape``: 0 where it is broadcast, its own elsewhere (a
    dimension of size 1 in both keeps its stride, unlike ``np.broadcast_to``)."""
    lead = len(shape) - a.ndim
    return (0,) * lead + tuple(0 if n == 1 and shape[lead + d] != 1 else s
                               for d, (n, s) in enumerate(zip(a.shape, a.strides)))


def _c_strides(shape, itemsize):
    out = []
    step = itemsize
    for n in reversed(shape):
        out.append(step)
        step *= n
    return tuple(reversed(out))


def same_layout(arr: np.ndarray, strides) -> bool:
    """Does ``arr`` have byte ``strides`` (C order for ``None``), ignoring dimensions of
    size 1 (whose stride is never used)?"""
    if strides is None:
        return arr.flags.c_contiguous
    return all(n == 1 or s == t for n, s, t in zip(arr.shape, arr.strides, strides))


def empty_with(shape, dtype, strides) -> np.ndarray:
    """Uninitialised memory of ``shape`` laid out with byte ``strides`` (dense)."""
    if strides is None:
        return np.empty(shape, dtype)
    n = int(np.prod(shape)) if len(shape) else 1
    return np.lib.stride_tricks.as_strided(np.empty(n, dtype), shape, strides)


def conform(arr: np.ndarray, op, attrs, operands) -> np.ndarray:
    """``arr`` (a fresh result of ``op`` with ``attrs`` over the arrays ``operands``) in
    PyTorch's layout: itself when it already is, else a copy."""
    want = (result_strides(arr.shape, arr.itemsize, operands) if follows_operands(op, attrs)
            else None)
    if same_layout(arr, want):
        return arr
    out = empty_with(arr.shape, arr.dtype, want)
    out[...] = arr
    return out


def dense_layout(arr: np.ndarray):
    """``"C"`` if ``arr`` is C-contiguous; its byte strides if it is dense (its elements
    fill a block of memory with no gaps and no overlaps) in another order, such as the
    ``(1, 4)`` strides of ``x.t() * 2`` for a ``(3, 4)`` ``x`` (eager keeps its input's
    layout); ``None`` otherwise (a view into a larger buffer).  A compiler writes its
    results in C order and ``nop`` in numpy's; the runtime gives a result the layout
    its eager version had, as ``torch.compile`` keeps eager's strides for outputs."""
    if arr.flags.c_contiguous:
        return "C"
    return tuple(arr.strides) if is_dense(arr.shape, arr.strides, arr.itemsize) else None


def is_dense(shape, strides, itemsize) -> bool:
    """Do the elements fill a block of memory with no gaps and no overlaps, in some order
    of the axes (PyTorch's "non-overlapping and dense")?  Strides in the unit of
    ``itemsize`` (bytes with the item's size, elements with 1)."""
    step = itemsize
    for st, n in sorted((st, n) for st, n in zip(strides, shape) if n != 1):
        if st != step:
            return False
        step *= n
    return True
