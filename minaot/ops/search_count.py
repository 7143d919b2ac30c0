"""Searching sorted boundaries and counting values: ``searchsorted``, ``bucketize``,
``histc``, ``bincount``, ``unique`` and ``unique_consecutive``.

``searchsorted`` is one op (kind ``other``, no gradient): for each value, a
binary search in its row of boundaries with PyTorch's exact comparisons
(``not (b >= v)`` moves right, or ``not (b > v)`` with ``right``), so a NaN
value lands at the end of its row and an unsorted or NaN-holding row gives
PyTorch's answer too.  numpy runs the search on the CPU, walking every value's
``[lo, hi)`` together; on CUDA it is one thread per value
(:mod:`minaot.kernels.scan_sort_cuda`).  ``bucketize`` is ``searchsorted`` with
the arguments swapped.

``histc`` has a result of known size (``bins``), so it traces: each element's
bin is ``int((x - min) * bins / (max - min))`` in the input's dtype (PyTorch's
arithmetic, so elements on a bin edge land where PyTorch puts them), the last
bin holds ``max`` itself, and a ``scatter_add`` of ones counts them (elements
outside ``[min, max]`` and NaN go to a spare bin that is cut off).  Only
``min == max`` (the range taken from the data) reads values, so it is eager only.

``bincount`` (without a length known in advance), ``unique`` and
``unique_consecutive`` have results whose size depends on the values: like
``nonzero`` they run eagerly on the host (for CUDA tensors too, the results
going back to the device) and raise while tracing.  Their results carry no
gradient (PyTorch's backward of them raises).
"""

from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from .._errors import DTypeError, ShapeError, op_error
from ..dispatch import dispatch, eager_host_values
from .meta import device_of
from .registry import Meta, OpDef, SampleInput, register


# ---------------------------------------------------------------- searchsorted, bucketize
def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None,
                 sorter=None):
    """For each value of ``input``, the position in ``sorted_sequence`` (along its last
    dim) where inserting it keeps the order, as ``torch.searchsorted``: the first position
    whose boundary is ``>= value`` (``> value`` with ``right=True`` or ``side="right"``).
    ``sorted_sequence`` is 1-d (shared by every value) or has ``input``'s leading dims;
    ``input`` may be a number (a 0-d result); ``sorter`` holds the positions that sort an
    unsorted ``sorted_sequence``.  The result is int64, or int32 with ``out_int32``."""
    return _search("searchsorted", sorted_sequence, input, out_int32, right, side, sorter)


def bucketize(input, boundaries, *, out_int32=False, right=False):
    """The bucket of each value of ``input`` among the 1-d, sorted ``boundaries``, as
    ``torch.bucketize``: ``i`` with ``boundaries[i - 1] < v <= boundaries[i]``
    (``boundaries[i - 1] <= v < boundaries[i]`` with ``right=True``); that is
    ``searchsorted(boundaries, input, right=right)``."""
    from ..tensor import Tensor
    if isinstance(boundaries, Tensor) and boundaries.ndim != 1:
        raise op_error(RuntimeError, "bucketize", f"boundaries tensor must be 1 dimension, "
                       f"but got dim({boundaries.ndim})")
    return _search("bucketize", boundaries, input, out_int32, right, None, None)


def _search(name, seq, values, out_int32, right, side, sorter):
    from ..tensor import Tensor
    from .creation import tensor
    from .other import gather
    from .views import reshape
    if side is not None:
        if side not in ("left", "right"):
            raise op_error(RuntimeError, name, f"side can only be 'left' or 'right' but got "
                           f"{side}")
        if right and side == "left":
            raise op_error(RuntimeError, name, "side and right can't be set to opposites, got "
                           "side of left while right was True")
        right = side == "right"
    if not isinstance(seq, Tensor):
        raise op_error(TypeError, name, f"boundaries must be a tensor, got {type(seq).__name__}")
    if seq.ndim == 0:
        raise op_error(RuntimeError, name, "boundaries tensor should have positive dimension, "
                       "but got 0 dimension")
    if not isinstance(values, Tensor):
        if seq.ndim != 1:
            raise op_error(RuntimeError, name, "input value can be a scalar only when "
                           f"boundaries tensor dimension is 1, but we got boundaries tensor "
                           f"dim({seq.ndim})")
        common = dt.result_type(seq, values)
        values = tensor(values, dtype=common, device=seq.device)
    if seq.ndim > 1 and tuple(seq.shape[:-1]) != tuple(values.shape[:-1]) \
            or seq.ndim > 1 and values.ndim != seq.ndim:
        raise op_error(ShapeError, name, "boundaries tensor should be 1 dimension or the first "
                       "N-1 dimensions of boundaries tensor and input value tensor must match, "
                       f"but we got boundaries tensor {list(seq.shape)} and input value tensor "
                       f"{list(values.shape)}")
    for t in (seq, values):
        if t.dtype is dt.bool_:
            raise op_error(DTypeError, name, "not implemented for bool boundaries or values, "
                           "as in PyTorch")
    if sorter is not None:
        if not isinstance(sorter, Tensor) or sorter.dtype is not dt.int64:
            got = sorter.dtype.name if isinstance(sorter, Tensor) else type(sorter).__name__
            raise op_error(DTypeError, name, f"sorter must be a tensor of long dtype but got "
                           f"dtype {got}")
        if tuple(sorter.shape) != tuple(seq.shape):
            raise op_error(ShapeError, name, "boundary and sorter must have the same size, but "
                           f"got boundary tensor {list(seq.shape)} and got sorter tensor "
                           f"{list(sorter.shape)}")
        host = eager_host_values(sorter)
        if host is not None and host.size and (host.min() < 0 or host.max() >= seq.shape[-1]):
            raise op_error(RuntimeError, name, "sorter index out of range")
        seq = gather(seq, -1, sorter)
    common = dt.result_type(seq, values)
    seq, values = seq.to(common), values.to(common)
    n = seq.shape[-1]
    if seq.ndim == 1:
        rows_seq, rows_val = reshape(seq, (1, n)), reshape(values, (1, -1))
    else:
        rows = int(np.prod(seq.shape[:-1]))
        rows_seq = reshape(seq, (rows, n))
        rows_val = reshape(values, (rows, values.shape[-1]))
    out = reshape(dispatch("searchsorted", rows_seq, rows_val, right=bool(right)),
                  tuple(values.shape))
    return out.to(dt.int32) if out_int32 else out


def _searchsorted_meta(seq, values, *, right):
    if seq.ndim != 2 or values.ndim != 2 or seq.shape[0] != values.shape[0]:
        raise op_error(ShapeError, "searchsorted", f"expected rows of boundaries and as many "
                       f"rows of values, got shapes {tuple(seq.shape)} and "
                       f"{tuple(values.shape)}")
    return Meta(tuple(values.shape), dt.int64, device_of(seq))


def _np_searchsorted(seq, values, right):
    """Every value's binary search at once: ``[lo, hi)`` arrays halved until empty."""
    rows, n = seq.shape
    lo = np.zeros(values.shape, np.int64)
    hi = np.full(values.shape, n, np.int64)
    r = np.arange(rows)[:, None]
    with np.errstate(invalid="ignore"):
        while True:
            active = lo < hi
            if not active.any():
                return lo
            mid = lo + ((hi - lo) >> 1)
            m = seq[r, np.minimum(mid, n - 1)]
            go_right = ~(m > values) if right else ~(m >= values)
            lo = np.where(active & go_right, mid + 1, lo)
            hi = np.where(active & ~go_right, mid, hi)


def _searchsorted_samples(rng):
    seq = np.sort(rng.standard_normal((3, 6)), axis=1)
    nan_row = np.array([[1.0, 3.0, 3.0, 5.0, np.nan]])
    return [SampleInput((seq, rng.standard_normal((3, 4))), {"right": False}),
            SampleInput((seq, seq[:, ::2].copy()), {"right": True}, name="on the boundaries"),
            SampleInput((seq[:1], rng.standard_normal((1, 9))), {"right": False}),
            SampleInput((nan_row, np.array([[0.0, 3.0, 4.0, np.nan, 9.0, 5.0]])),
                        {"right": False}, name="nan"),
            SampleInput((nan_row, np.array([[0.0, 3.0, 4.0, np.nan, 9.0, 5.0]])),
                        {"right": True}, name="nan, right"),
            SampleInput((np.array([[1, 3, 3, 7]]), np.array([[0, 3, 5, 9, 7]])),
                        {"right": True}, name="int64")]


register(OpDef("searchsorted", "other", _searchsorted_meta, _np_searchsorted,
               samples=_searchsorted_samples))


# ---------------------------------------------------------------- histc
def histc(input, bins=100, min=0, max=0):
    """The histogram of ``input``'s elements in ``bins`` equal bins over ``[min, max]``, as
    ``torch.histc``: a 1-d tensor of ``input``'s (float) dtype holding the counts;
    elements outside the range and NaN are not counted, ``max`` falls in the last bin.
    ``min == max`` takes the range from the data (widened by 1 on each side if it is a
    single value), which needs the values: eager only.  No gradient."""
    from ..dispatch import tracing
    from .creation import ones, zeros
    from .other import scatter_add
    from .pointwise import eq, ge, le, where
    from .views import narrow
    if not input.dtype.is_floating_point:
        raise op_error(DTypeError, "histc", f"not implemented for {input.dtype.name} tensors, "
                       "as in PyTorch (it takes float32 or float64)")
    if bins <= 0:
        raise op_error(RuntimeError, "histc", f"bins must be > 0, but got {bins}")
    lo, hi = float(min), float(max)
    if lo == hi and input.numel():
        if tracing():
            from ..tracing import _trace_error
            raise _trace_error("histc", "min == max takes the range from the data's values; "
                               "pass min and max (min < max)")
        data = input.detach()._host()
        lo, hi = float(data.min()), float(data.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise op_error(RuntimeError, "histc", f"range of [{lo}, {hi}] is not finite")
    if not lo < hi:
        raise op_error(RuntimeError, "histc", "max must be larger than min")
    x = input.detach().reshape(-1)
    npt = np.dtype(input.dtype.np).type
    lo, hi = npt(lo), npt(hi)                      # the edges in the input's dtype
    width = float(hi - lo)
    inside = ge(x, float(lo)) & le(x, float(hi))   # not NaN
    pos = (((where(inside, x, float(lo)) - float(lo)) * bins) / width).long()
    pos = where(eq(pos, bins), bins - 1, pos)
    pos = where(inside, pos, bins)                 # outside, NaN: the spare bin
    counts = scatter_add(zeros(bins + 1, dtype=input.dtype, device=input.device), 0, pos,
                         ones(x.shape[0], dtype=input.dtype, device=input.device))
    return narrow(counts, 0, 0, bins)


# ---------------------------------------------------------------- eager only
def _eager_only(name, hint):
    from .other import _refuse_tracing
    _refuse_tracing(name, hint)


def bincount(input, weights=None, minlength=0):
    """How many times each value ``0, 1, ..., max(input)`` occurs in the 1-d, non-negative
    int64 ``input`` (at least ``minlength`` counts), as ``torch.bincount``; with ``weights``
    (1-d, as long as ``input``) their sums instead: float32 weights give float32 sums,
    others float64.  The length depends on the values: eager only."""
    from .creation import tensor
    _eager_only("bincount", "its length depends on the largest value; use scatter_add into "
                "a tensor of known length")
    if input.dtype is not dt.int64:
        raise op_error(DTypeError, "bincount", f"not implemented for {input.dtype.name} "
                       "tensors, as in PyTorch (it takes 1-d non-negative integers)")
    if minlength < 0:
        raise op_error(RuntimeError, "bincount", "minlength should be >= 0")
    values = input.detach()._host()
    if values.ndim != 1 or (values.size and values.min() < 0):
        raise op_error(RuntimeError, "bincount", "bincount only supports 1-d non-negative "
                       f"integral inputs (got shape {tuple(input.shape)})")
    length = int(np.max(values, initial=-1)) + 1
    length = length if length > minlength else int(minlength)
    if weights is None:
        return tensor(np.bincount(values, minlength=length).astype(np.int64),
                      device=input.device)
    if weights.ndim != 1 or weights.shape[0] != values.shape[0]:
        raise op_error(RuntimeError, "bincount", "weights should be 1-d and have the same "
                       f"length as input (got {tuple(weights.shape)} for "
                       f"{tuple(input.shape)})")
    kind = np.float32 if weights.dtype is dt.float32 else np.float64
    out = np.zeros(length, kind)
    np.add.at(out, values, weights.detach()._host().astype(kind))     # in order, as PyTorch
    return tensor(out, device=input.device)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The distinct elements of ``input`` (flattened), sorted, as ``torch.unique``; with
    ``dim``, the distinct slices along ``dim`` (sorted lexicographically).  With
    ``return_inverse``, also where each element (slice) of ``input`` went (``input``'s
    shape; ``(size,)`` with ``dim``); with ``return_counts``, how many of each.  NaN are
    all distinct, as in PyTorch.  The result is always sorted (PyTorch makes no promise
    of an order for ``sorted=False``).  Its size depends on the values: eager only; no
    gradient."""
    from .creation import tensor
    from .meta import wrap_dim
    _eager_only("unique", "its size depends on the values")
    values = input.detach()._host()
    if dim is None:
        flat = values.reshape(-1)
        out, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True,
                                         equal_nan=False)
        inverse = inverse.reshape(values.shape)
    else:
        d = wrap_dim("unique", dim, values.ndim)
        if values.ndim == 0:
            raise op_error(IndexError, "unique", "dim given for a 0-d tensor")
        if values.shape[d] == 0:
            out = values.copy()
            inverse = np.zeros(0, np.int64)
            counts = np.zeros(0, np.int64)
        else:
            out, inverse, counts = _unique_slices(values, d, consecutive=False)
    return _results(input, out, inverse, counts, return_inverse, return_counts, tensor)


def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
    """The first element of each run of equal consecutive elements (of the flattened
    ``input``, or slices along ``dim``), as ``torch.unique_consecutive``; ``return_inverse``
    and ``return_counts`` as for :func:`unique`.  Eager only; no gradient."""
    from .creation import tensor
    from .meta import wrap_dim
    _eager_only("unique_consecutive", "its size depends on the values")
    values = input.detach()._host()
    if dim is None:
        flat = values.reshape(-1)
        starts = np.ones(flat.shape[0], bool)
        starts[1:] = flat[1:] != flat[:-1]              # NaN != NaN: each NaN its own run
        out = flat[starts]
        run = np.cumsum(starts) - 1
        inverse = run.reshape(values.shape)
        counts = np.bincount(run, minlength=out.shape[0]) if flat.size else np.zeros(0, np.int64)
    else:
        d = wrap_dim("unique_consecutive", dim, values.ndim)
        out, inverse, counts = _unique_slices(values, d, consecutive=True)
    return _results(input, out, inverse, counts, return_inverse, return_counts, tensor)


def _unique_slices(values, d, consecutive):
    """Distinct slices of ``values`` along ``d``: ``(slices, inverse, counts)``."""
    lines = np.moveaxis(values, d, 0).reshape(values.shape[d], -1)
    n = lines.shape[0]
    if consecutive:
        starts = np.ones(n, bool)
        if n > 1:
            starts[1:] = np.any(lines[1:] != lines[:-1], axis=1)
        keep = np.flatnonzero(starts)
        inverse = np.cumsum(starts) - 1
    else:
        order = np.lexsort(lines.T[::-1]) if lines.shape[1] else np.arange(n)
        ordered = lines[order]
        starts = np.ones(n, bool)
        if n > 1:
            starts[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
        run = np.cumsum(starts) - 1
        inverse = np.empty(n, np.int64)
        inverse[order] = run
        keep = order[starts]
    counts = np.bincount(inverse, minlength=keep.shape[0]) if n else np.zeros(0, np.int64)
    out = np.take(values, keep, axis=d)
    return out, inverse.astype(np.int64), counts.astype(np.int64)


def _results(input, out, inverse, counts, return_inverse, return_counts, tensor):
    res = tensor(np.ascontiguousarray(out), dtype=input.dtype, device=input.device)
    if not (return_inverse or return_counts):
        return res
    extra = []
    if return_inverse:
        extra.append(tensor(np.asarray(inverse, np.int64), device=input.device))
    if return_counts:
        extra.append(tensor(np.asarray(counts, np.int64), device=input.device))
    return (res, *extra)
