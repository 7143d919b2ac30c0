"""Order statistics: ``median``, ``nanmedian``, ``kthvalue``, ``mode``, ``quantile`` and
``nanquantile``, built on the stable :func:`~minaot.ops.scan_sort.argsort`.

No new op: each picks positions out of a sorted line with ``gather`` (a fixed
position, or one computed per line as a tensor, so nothing depends on the
values' shape and everything traces and compiles), then reads the values at
those positions from the input with another ``gather``.  The gradient of a
value therefore goes back to the position in ``indices``, as PyTorch's
``value_selecting_reduction_backward`` sends it, and ``quantile``'s
interpolation (a ``lerp`` of two gathered values) is differentiated like any
composition.

PyTorch's rules, copied:

* NaN sorts as the largest value.  ``median`` (and ``quantile``) of a line
  holding a NaN is NaN, at the line's first NaN; ``nanmedian`` and
  ``nanquantile`` ignore NaN, and give NaN only for a line of NaN.
* ``median`` is the *lower* median: element ``(n - 1) // 2`` of the sorted line.
* ``median()`` and ``nanmedian()`` without ``dim`` (a 0-d result) split the
  gradient evenly between the elements equal to the result (all the NaN when
  it is NaN), PyTorch's ``evenly_distribute_backward``; that is a small custom
  :class:`~minaot.autograd.Function`.
* ``mode`` gives the smallest of the most frequent values.
* ``median`` along a dim breaks ties by position (PyTorch's comparator does), so
  its index is the stable sort's; ``nanmedian`` of a line of NaN gives the
  index PyTorch's ``std::nth_element`` leaves first (:func:`_nth_of_equal`).

Where PyTorch's index among equal values comes from an unstable selection
(``kthvalue``'s quickselect, ``mode``'s ``std::sort``) and so is not promised,
minaot gives the position that the stable sort puts there: for ``kthvalue``
and ``median`` the ``k``-th of the equal elements in order of position, for
``mode`` the last occurrence of the value.
"""

from __future__ import annotations

from .. import dtypes as dt
from .._errors import DTypeError, op_error
from ..autograd.function import Function
from .meta import wrap_dim
from .reductions import values_indices

_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _refuse_bool(name, x):
    if x.dtype is dt.bool_:
        raise op_error(DTypeError, name, f"not implemented for bool tensors (shape "
                       f"{tuple(x.shape)}), as in PyTorch")


def _nonempty_dim(name, x, dim):
    if x.ndim and x.shape[dim] == 0:
        raise op_error(IndexError, name, f"Expected reduction dim {dim} to have non-zero size "
                       f"(input of shape {tuple(x.shape)})")


def _pick(name, input, dim, keepdim, position):
    """``(values, indices)`` of ``input`` along ``dim`` at ``position`` of each sorted line:
    an int, or an int64 tensor of the keepdim shape (one position per line)."""
    from .other import gather
    from .scan_sort import argsort
    from .views import clone, narrow
    if input.ndim == 0:
        return values_indices(clone(input), argsort(input))
    order = argsort(input, dim)
    if isinstance(position, int):
        index = narrow(order, dim, position, 1)
    else:
        index = gather(order, dim, position)
    return _at(input, dim, keepdim, index)


def _at(input, dim, keepdim, index):
    from .other import gather
    values = gather(input, dim, index)
    if keepdim:
        return values_indices(values, index)
    return values_indices(values.squeeze(dim), index.squeeze(dim))


def _first_nan_wins(input, dim, keepdim, result):
    """``result`` with, on each line holding a NaN, the line's first NaN instead (PyTorch's
    ``median``/``quantile`` propagate NaN)."""
    from .pointwise import isnan, where
    from .reductions import any, argmax
    if not input.dtype.is_floating_point or input.ndim == 0:
        return result
    nan = isnan(input)
    has_nan = any(nan, dim, keepdim=True)
    first = argmax(nan.long(), dim, keepdim=True)
    index = result.indices if keepdim else result.indices.unsqueeze(dim)
    return _at(input, dim, keepdim, where(has_nan, first, index))


def _median_along(name, input, dim, keepdim, ignore_nan):
    from .pointwise import clamp_min, eq, floor_divide, isnan, logical_not, sub, where
    from .reductions import sum
    _refuse_bool(name, input)
    dim = wrap_dim(name, dim, input.ndim)
    _nonempty_dim(name, input, dim)
    if input.ndim == 0:
        return _pick(name, input, dim, keepdim, 0)
    if ignore_nan and input.dtype.is_floating_point:
        count = sum(logical_not(isnan(input)), dim, keepdim=True)        # non-NaN per line
        result = _pick(name, input, dim, keepdim, clamp_min(floor_divide(sub(count, 1), 2), 0))
        index = result.indices if keepdim else result.indices.unsqueeze(dim)
        index = where(eq(count, 0), _nth_of_equal(input.shape[dim]), index)   # a line of NaN
        return _at(input, dim, keepdim, index)
    result = _pick(name, input, dim, keepdim, (input.shape[dim] - 1) // 2)
    return result if ignore_nan else _first_nan_wins(input, dim, keepdim, result)


def _nth_of_equal(n):
    """The position ``nanmedian`` gives for a line of ``n`` NaN: PyTorch's CPU kernel runs
    ``std::nth_element`` for position 0 with every NaN equivalent, and libstdc++'s
    introselect (move the middle element first, swap pairs from both ends until they
    meet, keep the left part) then leaves this one first.  It depends on ``n`` only."""
    order = list(range(n))
    first, last = 0, n
    while last - first > 3:
        mid = first + (last - first) // 2
        order[first], order[mid] = order[mid], order[first]
        lo, hi = first + 1, last
        while True:
            hi -= 1
            if not lo < hi:
                break
            order[lo], order[hi] = order[hi], order[lo]
            lo += 1
        last = lo
    return order[0] if n else 0


class _EvenlyDistributed(Function):
    """The lower median of all elements (NaN-ignoring with ``ignore_nan``), whose gradient
    is split evenly between the elements equal to it (PyTorch's
    ``evenly_distribute_backward``; every NaN when the median is NaN)."""

    @staticmethod
    def forward(ctx, x, name, ignore_nan):
        value = _median_along(name, x.reshape(-1), 0, False, ignore_nan).values
        ctx.save_for_backward(x, value)
        return value

    @staticmethod
    def backward(ctx, g):
        from .pointwise import div, eq, isnan, where
        from .reductions import sum
        x, value = ctx.saved_tensors
        mask = eq(x, value) | (isnan(x) & isnan(value))
        return where(mask, div(g, sum(mask)), 0.0), None, None


def _median_all(name, input, ignore_nan):
    from .reductions import sum
    _refuse_bool(name, input)
    if input.numel() == 0:
        if not input.dtype.is_floating_point:
            raise op_error(RuntimeError, name, f"the median of an empty {input.dtype.name} "
                           "tensor has no value")
        return sum(input) + float("nan")
    return _EvenlyDistributed.apply(input, name, ignore_nan)


def median(input, dim=None, keepdim=False):
    """The lower median, as ``torch.median``: without ``dim``, element ``(n - 1) // 2`` of
    all ``n`` elements sorted (a 0-d tensor; NaN if there is a NaN; its gradient split
    evenly between the elements equal to it); with ``dim``, ``(values, indices)`` of each
    line's median (a line holding a NaN gives its first NaN), the gradient going to the
    positions in ``indices``."""
    if dim is None:
        if keepdim:
            raise TypeError("median(): keepdim needs a dim")
        return _median_all("median", input, False)
    return _median_along("median", input, dim, keepdim, False)


def nanmedian(input, dim=None, keepdim=False):
    """:func:`median` ignoring NaN, as ``torch.nanmedian``: the lower median of the non-NaN
    elements (NaN only where every element is NaN)."""
    if dim is None:
        if keepdim:
            raise TypeError("nanmedian(): keepdim needs a dim")
        return _median_all("nanmedian", input, True)
    return _median_along("nanmedian", input, dim, keepdim, True)


def kthvalue(input, k, dim=-1, keepdim=False):
    """``(values, indices)`` of the ``k``-th smallest element (``k`` from 1) along ``dim``,
    as ``torch.kthvalue``; NaN counts as the largest value.  Among equal elements the index
    is the one the stable sort puts ``k``-th."""
    _refuse_bool("kthvalue", input)
    dim = wrap_dim("kthvalue", dim, input.ndim)
    _nonempty_dim("kthvalue", input, dim)
    size = input.shape[dim] if input.ndim else 1
    if not 1 <= k <= size:
        raise op_error(RuntimeError, "kthvalue", f"selected number k out of range for "
                       f"dimension {dim} (k = {k}, shape {tuple(input.shape)})")
    return _pick("kthvalue", input, dim, keepdim, k - 1)


def mode(input, dim=-1, keepdim=False):
    """``(values, indices)``: the most frequent value along ``dim`` (the smallest of them on
    a tie) and the position of its last occurrence, as ``torch.mode``.  The gradient of
    ``values`` goes to that position.

    Traceable: sort the line; a run of equal values ends where the next differs; its
    length is its end's position minus its start's (a running maximum of the starts,
    :func:`cummax`) plus 1; the first longest run wins (``argmax``)."""
    from .creation import arange
    from .other import cat, gather
    from .pointwise import add, ne, sub, where
    from .reductions import argmax
    from .scan_sort import argsort, cummax
    from .views import clone, narrow
    dim = wrap_dim("mode", dim, input.ndim)
    _nonempty_dim("mode", input, dim)
    if input.ndim == 0:
        return values_indices(clone(input), argsort(input))
    n = input.shape[dim]
    order = argsort(input, dim)
    if n == 1 or input.numel() == 0:
        return _at(input, dim, keepdim, narrow(order, dim, 0, 1))
    s = gather(input.detach(), dim, order)
    differs = ne(narrow(s, dim, 1, n - 1), narrow(s, dim, 0, n - 1))
    edge = narrow(differs, dim, 0, 1) | True
    is_start = cat([edge, differs], dim)
    is_end = cat([differs, edge], dim)
    along = [1] * input.ndim
    along[dim] = n
    pos = arange(n, device=input.device).reshape(along)
    run_start = cummax(where(is_start, pos, 0), dim).values
    length = add(sub(pos, run_start), 1)
    best = argmax(where(is_end, length, 0), dim, keepdim=True)
    return _at(input, dim, keepdim, gather(order, dim, best))


# ---------------------------------------------------------------- quantile
def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """The ``q``-th quantiles of ``input`` along ``dim`` (of all elements if ``dim`` is
    None), as ``torch.quantile``: ``q`` a number or a 1-d tensor in ``[0, 1]`` (the
    quantiles then make the first dim of the result); the rank ``q * (n - 1)`` between two
    sorted elements, which ``interpolation`` (``linear``, ``lower``, ``higher``,
    ``midpoint``, ``nearest``) turns into a value.  A line holding a NaN gives NaN.
    Float32 and float64 only; the gradient flows through the interpolation to the
    elements used."""
    return _quantile("quantile", input, q, dim, keepdim, interpolation, False)


def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """:func:`quantile` ignoring NaN, as ``torch.nanquantile``: the ranks count the non-NaN
    elements of each line (NaN only for a line of NaN)."""
    return _quantile("nanquantile", input, q, dim, keepdim, interpolation, True)


def _quantile_q(name, input, q):
    """``q`` as a 1-d tensor of ``input``'s dtype, and whether it was a scalar."""
    from ..dispatch import eager_host_values
    from ..tensor import Tensor
    from .creation import tensor
    from .pointwise import ge, le, logical_and
    from .reductions import all
    if isinstance(q, Tensor):
        if q.ndim > 1:
            raise op_error(RuntimeError, name, f"q must be a scalar or 1D tensor, got shape "
                           f"{tuple(q.shape)}")
        if q.dtype is not input.dtype:
            raise op_error(RuntimeError, name, f"q tensor must be same dtype as the input "
                           f"tensor (q is {q.dtype.name}, input {input.dtype.name})")
        values = eager_host_values(q)
        if values is not None and not bool(all(logical_and(ge(q, 0), le(q, 1)))):
            raise op_error(RuntimeError, name, "q values must be in the range [0, 1]")
        return q.reshape(-1), q.ndim == 0
    q = float(q)
    if not 0 <= q <= 1:
        raise op_error(RuntimeError, name, f"q must be in the range [0, 1] but got {q}")
    return tensor([q], dtype=input.dtype, device=input.device), True


def _quantile(name, input, q, dim, keepdim, interpolation, ignore_nan):
    from .other import gather
    from .pointwise import ceil, floor, isnan, lerp, logical_not, mul, round, sub, where
    from .reductions import any, sum
    from .scan_sort import sort
    from .views import broadcast_tensors, movedim
    if input.dtype not in (dt.float32, dt.float64):
        raise op_error(RuntimeError, name, f"input tensor must be either float or double "
                       f"dtype, got {input.dtype.name}")
    q, scalar = _quantile_q(name, input, q)
    if interpolation not in _INTERPOLATIONS:
        raise op_error(RuntimeError, name, "interpolation must be one of linear, lower, "
                       f"higher, midpoint or nearest, but got {interpolation}")
    if dim is not None:
        dim = wrap_dim(name, dim, input.ndim)
    if input.numel() == 0:
        raise op_error(RuntimeError, name, f"input tensor must be non-empty (shape "
                       f"{tuple(input.shape)})")
    if dim is None:
        lines = input.reshape(-1)
    else:
        lines = movedim(input.reshape(input.shape or (1,)), dim, -1)
    n = lines.shape[-1]
    ordered = sort(lines, -1).values                       # NaN last
    if ignore_nan:
        count = sum(logical_not(isnan(ordered)), -1, keepdim=True)
        ranks = mul(q, sub(count, 1))
        ranks = where(ranks < 0, 0.0, ranks)
    else:
        ranks, nan = broadcast_tensors(mul(q, n - 1), any(isnan(ordered), -1, keepdim=True))
        ranks = where(nan, float(n - 1), ranks)
    if interpolation == "lower":
        ranks = floor(ranks)
    elif interpolation == "higher":
        ranks = ceil(ranks)
    elif interpolation == "nearest":
        ranks = round(ranks)
    below = ranks.long()
    values = gather(ordered, -1, below)
    if interpolation in ("linear", "midpoint"):
        weights = sub(ranks, below) if interpolation == "linear" else 0.5
        values = lerp(values, gather(ordered, -1, ceil(ranks).long()), weights)
    # values: the lines' shape with the quantiles last
    if scalar:
        values = values.squeeze(-1)
    else:
        values = movedim(values, -1, 0)
    if keepdim:
        lead = () if scalar else (q.shape[0],)
        if dim is None:
            values = values.reshape(lead + (1,) * input.ndim)
        elif input.ndim:
            values = values.unsqueeze(len(lead) + dim)
    return values
