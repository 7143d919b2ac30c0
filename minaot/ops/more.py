"""More of PyTorch's functions, each a composition of existing ops (none is an op record
of its own, so autograd, tracing and both backends see only the parts): ``detach``,
``is_tensor``, ``is_floating_point``, ``get_default_dtype``, ``var_mean``, ``std_mean``,
``nansum``, ``nanmean``, ``count_nonzero``, ``aminmax``, ``diff``, ``dist``, ``cross``,
``atleast_1d``/``2d``/``3d``, ``column_stack``, ``dstack``, ``rot90``, ``take``,
``block_diag``, ``unflatten``, ``true_divide`` and ``scatter_add_``.
"""

from __future__ import annotations

import builtins
import math
import warnings
from collections import namedtuple

from .. import dtypes as dt
from .._errors import DTypeError, ShapeError, op_error
from .meta import wrap_dim
from . import reductions as _red

aminmax_result = namedtuple("aminmax", ["min", "max"])


# ---------------------------------------------------------------- small predicates
def detach(input):
    """``input.detach()``: a tensor sharing ``input``'s storage, cut from the autograd
    graph, as ``torch.detach``."""
    return input.detach()


def is_tensor(obj):
    """Is ``obj`` a minaot :class:`~minaot.Tensor`?  (A Python bool, as ``torch.is_tensor``.)"""
    from ..tensor import Tensor
    return isinstance(obj, Tensor)


def is_floating_point(input):
    """Is ``input``'s dtype a floating-point one (float32, float64)?  As
    ``torch.is_floating_point``."""
    return builtins.bool(input.dtype.is_floating_point)


def get_default_dtype():
    """The dtype floating-point tensors get when none is given (``minaot.float32``), as
    ``torch.get_default_dtype``."""
    return dt.default_float


def true_divide(input, other):
    """``div(input, other)``: true division (integers give a float result), as
    ``torch.true_divide``."""
    from .pointwise import div
    return div(input, other)


def scatter_add_(input, dim, index, src):
    """In-place :func:`scatter_add`; returns ``input``."""
    from .other import copy_, scatter_add
    return copy_(input, scatter_add(input, dim, index, src))


# ---------------------------------------------------------------- reductions
def _var_args(dim, unbiased):
    if isinstance(dim, builtins.bool):          # var_mean(x, unbiased)
        return None, dim
    return dim, unbiased


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """``(var(input, ...), mean(input, ...))`` over the same ``dim``, as a tuple, as
    ``torch.var_mean``: ``correction`` (or the older ``unbiased``) as for :func:`var`."""
    dim, unbiased = _var_args(dim, unbiased)
    return (_red.var(input, dim, unbiased, keepdim, correction=correction),
            _red.mean(input, dim, keepdim))


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """``(std(input, ...), mean(input, ...))`` over the same ``dim``, as a tuple, as
    ``torch.std_mean``."""
    dim, unbiased = _var_args(dim, unbiased)
    return (_red.std(input, dim, unbiased, keepdim, correction=correction),
            _red.mean(input, dim, keepdim))


def nansum(input, dim=None, keepdim=False, *, dtype=None):
    """The sum over ``dim`` with NaNs counted as zero (``sum(where(isnan(x), 0, x))``), as
    ``torch.nansum``; integers and bools sum as int64, as in :func:`sum`.  The gradient is
    PyTorch's ``grad * ~isnan(x)``, a product: 0 at a NaN for a finite ``grad`` (and NaN
    for an infinite or NaN one, which is how :func:`nanmean` of all-NaN elements gets its
    NaN gradient)."""
    from ..autograd.grad_mode import is_grad_enabled
    from ..dispatch import dispatch, tracing
    from .pointwise import isnan, logical_not, mul, where
    if dtype is not None:
        input = input.to(dt.to_dtype(dtype))
    if input.dtype.is_floating_point:
        nan = isnan(input)
        value = where(nan, 0.0, input)
        if tracing() or (is_grad_enabled() and input.requires_grad):
            # the value of the where, the gradient of input * ~isnan(input)
            value = dispatch("straight_through", value, mul(input, logical_not(nan)))
        input = value
    return _red.sum(input, dim, keepdim)


def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    """The mean over ``dim`` of the elements that are not NaN (:func:`nansum` divided by
    their count; NaN where every one is NaN), as ``torch.nanmean``.  Floating-point inputs
    only.  The gradient is PyTorch's: ``grad / count`` at the numbers, 0 at a NaN, and NaN
    at every element of an all-NaN line (``grad / 0`` times 0)."""
    from .pointwise import div, isnan, logical_not
    if not input.dtype.is_floating_point:
        raise op_error(DTypeError, "nanmean", "expected input to have floating point dtype "
                       f"but got {input.dtype.name}")
    count = _red.sum(logical_not(isnan(input)), dim, keepdim)
    return div(nansum(input, dim, keepdim, dtype=dtype), count)


def count_nonzero(input, dim=None):
    """The number of nonzero elements over ``dim`` (an int, a tuple, or ``None`` for all),
    an int64 tensor, as ``torch.count_nonzero`` (NaN counts as nonzero)."""
    from .pointwise import ne
    return _red.sum(ne(input, 0), dim)


def aminmax(input, *, dim=None, keepdim=False):
    """``(min, max)`` over ``dim`` (every element when ``None``) as a named tuple with
    fields ``min`` and ``max``: :func:`amin` and :func:`amax`, whose gradients split evenly
    between ties, as ``torch.aminmax``."""
    if input.numel() == 0:
        raise op_error(ShapeError, "aminmax", "cannot compute aminmax over an empty "
                       "dimension as the operation has no identity")
    return aminmax_result(_red.amin(input, dim, keepdim), _red.amax(input, dim, keepdim))


def dist(input, other, p=2):
    """``norm(input - other, p)`` (the two broadcast), a 0-d tensor, as ``torch.dist``;
    ``p`` as for :func:`norm`.  Floating-point inputs only."""
    from .pointwise import sub
    if not (input.dtype.is_floating_point and other.dtype.is_floating_point):
        raise op_error(DTypeError, "dist", "expected floating point inputs, got "
                       f"{input.dtype.name} and {other.dtype.name}")
    return _red.norm(sub(input, other), p)


# ---------------------------------------------------------------- differences and products
def diff(input, n=1, dim=-1, prepend=None, append=None):
    """The ``n``-th forward difference along ``dim`` (``out[i] = x[i + 1] - x[i]``, applied
    ``n`` times; logical xor for bools), with ``prepend`` and ``append`` (tensors of
    ``input``'s number of dims) joined to ``input`` along ``dim`` first, as
    ``torch.diff``.  Each difference shortens ``dim`` by one, down to size 0."""
    from ..tensor import Tensor
    from .other import cat
    from .pointwise import logical_xor, sub
    from .views import narrow
    if input.ndim == 0:
        raise op_error(ShapeError, "diff", "expects input to be at least one-dimensional")
    if n < 0:
        raise op_error(ValueError, "diff", f"order must be non-negative but got {n}")
    d = wrap_dim("diff", dim, input.ndim)
    parts = []
    for name, extra in (("prepend", prepend), (None, input), ("append", append)):
        if extra is None:
            continue
        if not isinstance(extra, Tensor):
            raise op_error(TypeError, "diff", f"{name} must be a Tensor, not "
                           f"{type(extra).__name__}")
        if extra.ndim != input.ndim:
            raise op_error(ShapeError, "diff", "expects prepend or append to be the same "
                           "dimension as input")
        parts.append(extra)
    x = parts[0] if len(parts) == 1 else cat(parts, d)
    step = logical_xor if x.dtype is dt.bool_ else sub
    for _ in range(n):
        size = x.shape[d]
        if size <= 1:
            return narrow(x, d, 0, 0)
        x = step(narrow(x, d, 1, size - 1), narrow(x, d, 0, size - 1))
    return x.clone() if x is input else x       # n=0: a new tensor, as PyTorch


def cross(input, other, dim=None):
    """The cross product of 3-vectors along ``dim`` (other dims broadcast; both inputs have
    the same number of dims and dtype), as ``torch.cross``.  With ``dim=None`` it is the
    first dim of ``input`` of size 3, PyTorch's deprecated default (it warns, as PyTorch
    does; ``torch.linalg.cross`` uses ``dim=-1``)."""
    from .other import stack
    from .pointwise import mul, sub
    from .views import broadcast_tensors, unbind
    if input.ndim != other.ndim:
        raise op_error(ShapeError, "cross", "inputs must have the same number of dimensions, "
                       f"got shapes {tuple(input.shape)} and {tuple(other.shape)}")
    if input.dtype is not other.dtype:
        raise op_error(DTypeError, "cross", f"expected both inputs to have the same dtype, "
                       f"got {input.dtype.name} and {other.dtype.name}")
    if dim is None:
        warnings.warn("Using minaot.cross without specifying the dim arg is deprecated "
                      "(as in PyTorch); pass dim explicitly", UserWarning, stacklevel=2)
        sizes3 = [i for i, s in enumerate(input.shape) if s == 3]
        if not sizes3:
            raise op_error(ShapeError, "cross", "no dimension of size 3 in input")
        d = sizes3[0]
    else:
        d = wrap_dim("cross", dim, input.ndim)
    if input.shape[d] != 3 or other.shape[d] != 3:
        raise op_error(ShapeError, "cross", f"inputs dimension {d} must have length 3, got "
                       f"{input.shape[d]} and {other.shape[d]}")
    a, b = broadcast_tensors(input, other)
    a0, a1, a2 = unbind(a, d)
    b0, b1, b2 = unbind(b, d)
    return stack([sub(mul(a1, b2), mul(a2, b1)), sub(mul(a2, b0), mul(a0, b2)),
                  sub(mul(a0, b1), mul(a1, b0))], d)


# ---------------------------------------------------------------- at least n-d, stacking
def _atleast(tensors, fn):
    if len(tensors) == 1 and not isinstance(tensors[0], (list, tuple)):
        return fn(tensors[0])
    if len(tensors) == 1:
        tensors = tensors[0]
    return tuple(fn(t) for t in tensors)


def _as_1d(t):
    from .views import reshape
    return reshape(t, (1,)) if t.ndim == 0 else t


def _as_2d(t):
    from .views import reshape, unsqueeze
    if t.ndim == 0:
        return reshape(t, (1, 1))
    return unsqueeze(t, 0) if t.ndim == 1 else t


def _as_3d(t):
    from .views import reshape, unsqueeze
    if t.ndim == 0:
        return reshape(t, (1, 1, 1))
    if t.ndim == 1:
        return unsqueeze(unsqueeze(t, 0), 2)
    return unsqueeze(t, 2) if t.ndim == 2 else t


def atleast_1d(*tensors):
    """Each tensor with at least 1 dim (a 0-d one becomes ``(1,)``; others are returned as
    they are), as ``torch.atleast_1d``: one tensor gives a tensor, several (or a list) a
    tuple.  The reshaped ones are views."""
    return _atleast(tensors, _as_1d)


def atleast_2d(*tensors):
    """Each tensor with at least 2 dims: 0-d becomes ``(1, 1)``, 1-d ``(n,)`` becomes
    ``(1, n)``, as ``torch.atleast_2d`` (views; one tensor in, one out; else a tuple)."""
    return _atleast(tensors, _as_2d)


def atleast_3d(*tensors):
    """Each tensor with at least 3 dims: 0-d becomes ``(1, 1, 1)``, ``(n,)`` becomes
    ``(1, n, 1)`` and ``(m, n)`` becomes ``(m, n, 1)``, as ``torch.atleast_3d`` (views; one
    tensor in, one out; else a tuple)."""
    return _atleast(tensors, _as_3d)


def hstack(tensors):
    """The tensors joined along dim 1 (along dim 0 when they are 1-d; 0-d ones count as
    1-d), as ``torch.hstack``."""
    from .other import cat
    if not tensors:
        raise op_error(ValueError, "hstack", "expected a non-empty list of tensors")
    tensors = [_as_1d(t) for t in tensors]
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    """The tensors joined along dim 0, 0-d and 1-d ones first made rows ``(1, n)``, as
    ``torch.vstack``."""
    from .other import cat
    if not tensors:
        raise op_error(ValueError, "vstack", "expected a non-empty list of tensors")
    return cat([_as_2d(t) for t in tensors], 0)


def column_stack(tensors):
    """The tensors side by side as columns: 0-d and 1-d ones become ``(n, 1)`` columns,
    then all are joined along dim 1, as ``torch.column_stack``."""
    from .other import cat
    from .views import reshape
    if not tensors:
        raise op_error(ValueError, "column_stack", "expected a non-empty list of tensors")
    return cat([reshape(t, (t.numel(), 1)) if t.ndim <= 1 else t for t in tensors], 1)


def dstack(tensors):
    """The tensors joined along dim 2 (depth) after :func:`atleast_3d`, as
    ``torch.dstack``."""
    from .other import cat
    if not tensors:
        raise op_error(ValueError, "dstack", "expected a non-empty list of tensors")
    return cat([_as_3d(t) for t in tensors], 2)


# ---------------------------------------------------------------- rot90, take, block_diag, unflatten
def rot90(input, k=1, dims=(0, 1)):
    """``input`` rotated by ``k`` quarter turns in the plane of ``dims``, from the first
    towards the second, as ``torch.rot90``: ``flip`` and ``transpose`` (``k = 0`` gives a
    copy)."""
    from .views import clone, flip, transpose
    dims = tuple(dims)
    if len(dims) != 2:
        raise op_error(ShapeError, "rot90", f"expected total rotation dims == 2, but got "
                       f"dims = {len(dims)}")
    if input.ndim < 2:
        raise op_error(ShapeError, "rot90", f"expected total dims >= 2, but got total dims "
                       f"= {input.ndim}")
    d0, d1 = (wrap_dim("rot90", d, input.ndim) for d in dims)
    if d0 == d1:
        raise op_error(ValueError, "rot90", f"expected rotation dims to be different, but "
                       f"got dim0 = {dims[0]} and dim1 = {dims[1]}")
    k %= 4
    if k == 1:
        return transpose(flip(input, (d1,)), d0, d1)
    if k == 2:
        return flip(input, (d0, d1))
    if k == 3:
        return transpose(flip(input, (d0,)), d0, d1)
    return clone(input)


def take(input, index):
    """The elements of ``input`` (read as 1-d, row-major) at the int64 ``index`` (negative
    ones count from the end), in ``index``'s shape, as ``torch.take``."""
    from .views import getitem, reshape
    if index.dtype is not dt.int64:
        raise op_error(DTypeError, "take", f"expected an int64 index, got {index.dtype.name}")
    return getitem(reshape(input, (-1,)), index)


def block_diag(*tensors):
    """The tensors as blocks along the diagonal of one matrix, zeros elsewhere, as
    ``torch.block_diag``: 0-d ones are ``(1, 1)`` blocks, 1-d ``(n,)`` ones ``(1, n)``;
    the dtype is their promoted one.  No tensors give a ``(1, 0)`` matrix, as PyTorch."""
    from .creation import zeros
    from .other import cat
    from .views import reshape
    for i, t in enumerate(tensors):
        if t.ndim > 2:
            raise op_error(ShapeError, "block_diag", "input tensors must have 2 or fewer "
                           f"dimensions; input {i} has {t.ndim}")
    if not tensors:
        return zeros((1, 0))
    dtype, device = dt.result_type(*tensors), tensors[0].device
    blocks = [reshape(t, (1, 1)) if t.ndim == 0 else reshape(t, (1, t.shape[0])) if t.ndim == 1
              else t for t in tensors]
    cols = builtins.sum(b.shape[1] for b in blocks)
    rows, left = [], 0
    for b in blocks:
        r, c = b.shape
        parts = [zeros((r, left), dtype=dtype, device=device)] if left else []
        parts.append(b if b.dtype is dtype else b.to(dtype))
        if cols - left - c:
            parts.append(zeros((r, cols - left - c), dtype=dtype, device=device))
        rows.append(parts[0] if len(parts) == 1 else cat(parts, 1))
        left += c
    return rows[0] if len(rows) == 1 else cat(rows, 0)


def unflatten(input, dim, sizes):
    """``dim`` split into ``sizes`` (their product is its size; one of them may be -1), a
    view, as ``torch.unflatten``."""
    from .views import view
    d = wrap_dim("unflatten", dim, input.ndim)
    sizes = [int(s) for s in sizes]
    if not sizes:
        raise op_error(ShapeError, "unflatten", "sizes must be non-empty")
    n = input.shape[d]
    if sizes.count(-1) > 1:
        raise op_error(ShapeError, "unflatten", "only one dimension can be inferred")
    if builtins.any(s < -1 for s in sizes):
        raise op_error(ShapeError, "unflatten", f"invalid size in {sizes}")
    if -1 in sizes:
        known = math.prod(s for s in sizes if s != -1)
        if known == 0 or n % known:
            raise op_error(ShapeError, "unflatten", f"cannot infer the -1 in {sizes} for a "
                           f"dimension of size {n}")
        sizes[sizes.index(-1)] = n // known
    if math.prod(sizes) != n:
        raise op_error(ShapeError, "unflatten", f"provided sizes {sizes} don't multiply up "
                       f"to the size of dim {d} ({n}) in the input tensor")
    return view(input, tuple(input.shape[:d]) + tuple(sizes) + tuple(input.shape[d + 1:]))
