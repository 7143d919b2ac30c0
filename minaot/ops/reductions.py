"""Reductions: sum, prod, mean, amax, amin, var, argmax, argmin, softmax, log_softmax
(and, built from them: std, all, any, norm, logsumexp, max, min).

Attributes are canonical: ``dim`` is a sorted tuple of non-negative dims (all
dims when the user gave none) and ``keepdim`` a bool, so the IR prints one
spelling per meaning.  VJP rules first put the reduced dims back
(:func:`_unreduce`), then broadcast.
"""

from __future__ import annotations

import builtins
import math
from collections import namedtuple

import numpy as np

from .. import dtypes as dt
from .._errors import op_error
from ..dispatch import dispatch
from .meta import device_of, reduced_shape, reduction, wrap_dim, wrap_dims
from .registry import Meta, OpDef, SampleInput, register
from .pointwise import add, div, eq, exp, mul, sub, where

values_indices = namedtuple("values_indices", ["values", "indices"])


def _samples(rng):
    x = rng.standard_normal((3, 4, 5))
    return [SampleInput((x,), {"dim": (0, 1, 2), "keepdim": False}),
            SampleInput((x,), {"dim": (1,), "keepdim": False}),
            SampleInput((x,), {"dim": (0, 2), "keepdim": True}),
            SampleInput((rng.standard_normal((6,)),), {"dim": (0,), "keepdim": False})]


def _int_samples(rng):
    """Integer inputs: int32 (whose sum wraps around in int32, the prim's own dtype; the
    public ``sum`` sums integers as int64 first) and int8 / uint8 extremes."""
    big = rng.integers(-2**31, 2**31, (3, 5)).astype(np.int32)
    small = rng.integers(-128, 128, (4, 3)).astype(np.int8)
    small[1, 0], small[2, 2] = -128, 127
    return [SampleInput((big,), {"dim": (1,), "keepdim": False}, name="int32"),
            SampleInput((small,), {"dim": (0,), "keepdim": True}, name="int8"),
            SampleInput((small.view(np.uint8),), {"dim": (0, 1), "keepdim": False}, name="uint8")]


def _with_ints(rng):
    return _samples(rng) + _int_samples(rng)


def _prod_samples(rng):
    """Products of a few values near 1 in magnitude (so that they stay finite), and
    slices holding no zero, one zero and two zeros: the three cases of the gradient."""
    x = rng.uniform(0.5, 1.5, (3, 4, 5)) * rng.choice([-1.0, 1.0], (3, 4, 5))
    zeros = rng.uniform(0.5, 2.0, (4, 3)) * rng.choice([-1.0, 1.0], (4, 3))
    zeros[1, 0] = 0.0                           # row 1 holds one zero, row 2 two
    zeros[2, 1] = zeros[2, 2] = 0.0
    one_zero = rng.uniform(0.5, 2.0, (6,))
    one_zero[3] = 0.0
    return [SampleInput((x,), {"dim": (0, 1, 2), "keepdim": False}),
            SampleInput((x,), {"dim": (1,), "keepdim": False}),
            SampleInput((x,), {"dim": (0,), "keepdim": True}),
            SampleInput((zeros,), {"dim": (1,), "keepdim": False}, name="zeros in rows"),
            SampleInput((zeros,), {"dim": (0,), "keepdim": True}, name="zeros in columns"),
            SampleInput((zeros,), {"dim": (0, 1), "keepdim": False}, name="two zeros in all"),
            SampleInput((one_zero,), {"dim": (0,), "keepdim": False}, name="one zero in all"),
            SampleInput((rng.uniform(0.5, 2.0, ()),), {"dim": (), "keepdim": False}, name="0-d")]


def sum(input, dim=None, keepdim=False, *, dtype=None):
    """The sum over ``dim`` (an int, a tuple of ints, or ``None`` for all axes).

    ``keepdim=True`` keeps the reduced axes with size 1.  Integer and bool inputs
    are summed as ``int64``, as in PyTorch; ``dtype`` casts the input first."""
    if dtype is None and input.dtype.category < 2:
        input = input.to(dt.int64)
    elif dtype is not None:
        input = input.to(dt.to_dtype(dtype))
    return dispatch("sum", input, dim=wrap_dims("sum", dim, input.ndim), keepdim=builtins.bool(keepdim))


def prod(input, dim=None, keepdim=False, *, dtype=None):
    """The product of the elements over ``dim`` (an int), or of every element (a 0-d
    tensor) when ``dim`` is None, as ``torch.prod``.

    ``keepdim=True`` keeps the reduced axis with size 1.  Integer and bool inputs are
    multiplied as ``int64``, as in PyTorch; ``dtype`` casts the input first.  The
    gradient at an element is the product of the others, also where there are zeros:
    with one zero in a product only the zero gets a gradient, with two none does."""
    if dim is not None and not isinstance(dim, int):
        raise op_error(TypeError, "prod", f"dim must be an int or None (PyTorch's prod reduces "
                       f"one dimension or all of them), got {dim!r}")
    if dtype is None and input.dtype.category < 2:
        input = input.to(dt.int64)
    elif dtype is not None:
        input = input.to(dt.to_dtype(dtype))
    return dispatch("prod", input, dim=wrap_dims("prod", dim, input.ndim), keepdim=builtins.bool(keepdim))


def mean(input, dim=None, keepdim=False):
    """The mean over ``dim`` (an int, a tuple, or ``None`` for all axes)."""
    return dispatch("mean", input, dim=wrap_dims("mean", dim, input.ndim), keepdim=builtins.bool(keepdim))


def amax(input, dim=None, keepdim=False):
    """The maximum over ``dim``; on ties the gradient is split evenly between them."""
    return dispatch("amax", input, dim=wrap_dims("amax", dim, input.ndim), keepdim=builtins.bool(keepdim))


def amin(input, dim=None, keepdim=False):
    """The minimum over ``dim``; on ties the gradient is split evenly between them."""
    return dispatch("amin", input, dim=wrap_dims("amin", dim, input.ndim), keepdim=builtins.bool(keepdim))


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """The variance over ``dim``, divided by ``N - correction`` (unbiased by default).

    ``unbiased=False`` is the old spelling of ``correction=0`` (PyTorch's older overloads
    ``x.var(1, False)`` and ``x.var(False)`` work too)."""
    if isinstance(dim, builtins.bool):          # var(x, unbiased)
        dim, unbiased = None, dim
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    elif unbiased is not None:
        raise TypeError("var: give unbiased or correction, not both")
    return dispatch("var", input, dim=wrap_dims("var", dim, input.ndim),
                    correction=int(correction), keepdim=builtins.bool(keepdim))


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """The standard deviation over ``dim``: ``sqrt(var(input, dim, correction=...))``.

    Where the deviation is 0 its gradient is 0, as in PyTorch (``sqrt``'s own would be
    ``0 * inf = nan``): the square root only sees the nonzero variances."""
    from .pointwise import sqrt
    return _root_of_nonzero(var(input, dim, unbiased, keepdim, correction=correction), sqrt)


def _root_of_nonzero(s, root):
    """``root(s)`` where ``s`` is nonzero and 0 where it is 0, with a zero gradient there:
    ``root`` only sees the nonzero values (its own gradient at 0 would be ``0 * inf``)."""
    zero = eq(s, 0.0)
    return where(zero, 0.0, root(where(zero, 1.0, s)))


def all(input, dim=None, keepdim=False):
    """Is every element over ``dim`` nonzero?  A bool tensor, as ``torch.all`` (nan counts as
    nonzero): no element equal to 0.  A uint8 input gives a uint8 result (0 or 1), as
    PyTorch's does."""
    return _like_uint8(eq(sum(eq(input, 0), dim, keepdim), 0), input)


def any(input, dim=None, keepdim=False):
    """Is some element over ``dim`` nonzero?  A bool tensor (uint8 for a uint8 input), as
    ``torch.any``."""
    from .pointwise import gt, ne
    return _like_uint8(gt(sum(ne(input, 0), dim, keepdim), 0), input)


def _like_uint8(result, input):
    """PyTorch's ``all`` and ``any`` of a uint8 tensor are uint8, not bool."""
    return result.to(dt.uint8) if input.dtype is dt.uint8 else result


def norm(input, p="fro", dim=None, keepdim=False):
    """The vector ``p``-norm over ``dim`` (every element by default), as ``torch.norm`` and
    ``torch.linalg.vector_norm``: ``p`` = 2 or ``"fro"`` (the default), 1, any other
    ``p >= 1``, ``inf``, ``-inf`` or 0 (the number of nonzero elements).

    The gradient of a zero norm is 0, as in PyTorch (:func:`_root_of_nonzero`, as for
    :func:`std`)."""
    from .pointwise import abs as _abs, ne, pow, sqrt
    if not input.dtype.is_floating_point:
        raise op_error(TypeError, "norm", f"expected a floating point tensor, got {input.dtype.name}")
    if p == "fro":
        p = 2
    if isinstance(p, str) or not isinstance(p, (int, builtins.float)):
        raise op_error(ValueError, "norm", f"p must be a number or 'fro', got {p!r}")
    if p == math.inf:
        return amax(_abs(input), dim, keepdim)
    if p == -math.inf:
        return amin(_abs(input), dim, keepdim)
    if p == 0:          # a count, with a zero gradient (the zeros' own branch is input * 0)
        return sum(where(ne(input, 0), 1.0, mul(input, 0.0)), dim, keepdim)
    if p == 1:
        return sum(_abs(input), dim, keepdim)
    if p < 1:
        raise op_error(NotImplementedError, "norm", f"p = {p} (between 0 and 1) is not supported")
    if p == 2:
        return _root_of_nonzero(sum(mul(input, input), dim, keepdim), sqrt)
    return _root_of_nonzero(sum(pow(_abs(input), p), dim, keepdim), lambda s: pow(s, 1.0 / p))


def argmax(input, dim=None, keepdim=False):
    """The index of the maximum along ``dim`` (of the flattened tensor if ``dim`` is None)."""
    if dim is None:
        return dispatch("argmax", input.reshape(-1), dim=0, keepdim=False)
    return dispatch("argmax", input, dim=wrap_dim("argmax", dim, input.ndim), keepdim=builtins.bool(keepdim))


def argmin(input, dim=None, keepdim=False):
    """The index of the minimum along ``dim`` (of the flattened tensor if ``dim`` is None)."""
    if dim is None:
        return dispatch("argmin", input.reshape(-1), dim=0, keepdim=False)
    return dispatch("argmin", input, dim=wrap_dim("argmin", dim, input.ndim), keepdim=builtins.bool(keepdim))


def max(input, dim=None, keepdim=False):
    """``max(x)`` (a 0-d tensor), ``max(x, dim)`` (values and indices) or ``max(a, b)``."""
    from ..tensor import Tensor
    from .pointwise import maximum
    if isinstance(dim, Tensor):
        return maximum(input, dim)
    if dim is None:
        return amax(input)
    return _value_at_index(input, argmax, dim, keepdim)


def min(input, dim=None, keepdim=False):
    """``min(x)`` (a 0-d tensor), ``min(x, dim)`` (values and indices) or ``min(a, b)``."""
    from ..tensor import Tensor
    from .pointwise import minimum
    if isinstance(dim, Tensor):
        return minimum(input, dim)
    if dim is None:
        return amin(input)
    return _value_at_index(input, argmin, dim, keepdim)


def _value_at_index(input, arg, dim, keepdim):
    """``max(x, dim)``'s values and indices: the values are read at the indices, so the
    gradient goes to the element the index names, even on a tie (PyTorch's
    ``max``/``min`` with ``dim``; ``amax`` splits it between ties instead)."""
    from .other import gather
    dim = wrap_dim("max" if arg is argmax else "min", dim, input.ndim)
    if input.ndim == 0:
        return values_indices(amax(input) if arg is argmax else amin(input), arg(input))
    idx = arg(input, dim, keepdim=True)
    values = gather(input, dim, idx)
    if keepdim:
        return values_indices(values, idx)
    return values_indices(values.squeeze(dim), idx.squeeze(dim))


def softmax(input, dim, dtype=None):
    """``exp(x) / sum(exp(x))`` along ``dim``, computed stably (the max is subtracted first)."""
    if dtype is not None:
        input = input.to(dt.to_dtype(dtype))
    return dispatch("softmax", input, dim=wrap_dim("softmax", dim, input.ndim))


def log_softmax(input, dim, dtype=None):
    """``x - logsumexp(x, dim)``: the log of :func:`softmax`, computed stably."""
    if dtype is not None:
        input = input.to(dt.to_dtype(dtype))
    return dispatch("log_softmax", input, dim=wrap_dim("log_softmax", dim, input.ndim))


def logsumexp(input, dim, keepdim=False):
    """``log(sum(exp(x), dim))``, computed stably (the max is subtracted first)."""
    from .pointwise import log
    dims = wrap_dims("logsumexp", dim, input.ndim)
    m = amax(input, dims, keepdim=True).detach()
    # an infinite max is not subtracted (inf - inf is nan): a row of -inf gives -inf and a
    # row holding +inf gives +inf, as in PyTorch
    from .pointwise import abs as _abs
    m = where(eq(_abs(m), math.inf), 0.0, m)
    out = add(log(sum(exp(sub(input, m)), dims, keepdim=True)), m)
    return out if keepdim else out.reshape(reduced_shape(input.shape, dims, False))


def _unreduce(g, shape, dim, keepdim):
    """Give a reduced gradient its size-1 dims back so it broadcasts against the input."""
    if keepdim or not dim:
        return g
    return g.reshape(reduced_shape(shape, dim, True))


def _count(shape, dim):
    n = 1
    for d in dim:
        n *= shape[d]
    return n


def _sum_vjp(ctx, g):
    """Every input element contributes once to its sum: the gradient is ``g`` copied
    along the reduced axes (``ctx.attrs``: ``dim``, a tuple of axes, and ``keepdim``;
    ``_unreduce`` puts reduced axes back as size 1)."""
    # BEGIN TASK 1.3: VJP rules of sum, amax and softmax
    x_shape = ctx.input_metas[0][0]
    return (_unreduce(g, x_shape, ctx.attrs["dim"], ctx.attrs["keepdim"]).expand(x_shape),)
    # END TASK 1.3


def _prod_vjp(ctx, g):
    """The gradient at ``x[i]`` is ``g`` times the product of the other elements of its
    slice, computed without a branch on the values so that it also compiles:

    * no zero in the slice: ``prod / x[i]`` (PyTorch's ``result / input``);
    * one zero: the product of the nonzero elements at the zero, 0 elsewhere;
    * two or more zeros: 0 everywhere.

    ``nonzero_prod`` (the zeros replaced by 1) serves all three; the division only ever
    sees nonzero values, so no ``0 / 0`` reaches a ``where``'s unused branch."""
    x = ctx.inputs[0]
    dim, keepdim = ctx.attrs["dim"], ctx.attrs["keepdim"]
    is_zero = eq(x, 0)
    zeros = sum(is_zero, dim, keepdim=True)
    nonzero = where(is_zero, 1.0, x)
    nonzero_prod = dispatch("prod", nonzero, dim=dim, keepdim=True)
    others = where(eq(zeros, 0), div(nonzero_prod, nonzero),
                   where(is_zero & eq(zeros, 1), nonzero_prod, 0.0))
    return (mul(others, _unreduce(g, x.shape, dim, keepdim)),)


def _mean_vjp(ctx, g):
    x_shape = ctx.input_metas[0][0]
    n = _count(x_shape, ctx.attrs["dim"])
    return (div(_unreduce(g, x_shape, ctx.attrs["dim"], ctx.attrs["keepdim"]), n).expand(x_shape),)


def _amax_vjp(ctx, g):
    """The gradient goes to the elements equal to the maximum, split evenly between
    ties (as PyTorch's ``amax``); the other elements get zero."""
    # BEGIN TASK 1.3
    x = ctx.inputs[0]
    dim, keepdim = ctx.attrs["dim"], ctx.attrs["keepdim"]
    y = _unreduce(ctx.outputs[0], x.shape, dim, keepdim)
    mask = eq(x, y).to(g.dtype)
    count = sum(mask, dim, keepdim=True)
    return (mul(div(mask, count), _unreduce(g, x.shape, dim, keepdim)),)
    # END TASK 1.3


def _var_vjp(ctx, g):
    x = ctx.inputs[0]
    dim, keepdim = ctx.attrs["dim"], ctx.attrs["keepdim"]
    n = _count(x.shape, dim)
    centered = sub(x, mean(x, dim, keepdim=True))
    dof = n - ctx.attrs["correction"]
    scale = 2.0 / dof if dof > 0 else builtins.float("nan")
    return (mul(mul(centered, scale), _unreduce(g, x.shape, dim, keepdim)),)


def _softmax_vjp(ctx, g):
    """With ``y = softmax(x)`` along ``dim``: ``dx = y * (g - sum(g * y, dim))``."""
    # BEGIN TASK 1.3
    y = ctx.outputs[0]
    d = ctx.attrs["dim"]
    gy = mul(g, y)
    return (sub(gy, mul(y, sum(gy, d, keepdim=True))),)
    # END TASK 1.3


def _log_softmax_vjp(ctx, g):
    y = ctx.outputs[0]
    d = ctx.attrs["dim"]
    return (sub(g, mul(exp(y), sum(g, d, keepdim=True))),)


# ---------------------------------------------------------------- decompositions
def _mean_decomp(x, *, dim, keepdim):
    return div(sum(x, dim, keepdim), _count(x.shape, dim))


def _var_decomp(x, *, dim, correction, keepdim):
    centered = sub(x, div(sum(x, dim, True), _count(x.shape, dim)))
    dof = _count(x.shape, dim) - correction
    return div(sum(mul(centered, centered), dim, keepdim), dof if dof > 0 else builtins.float("nan"))


def _softmax_decomp(x, *, dim):
    e = exp(sub(x, amax(x, (dim,), True)))
    return div(e, sum(e, (dim,), True))


def _log_softmax_decomp(x, *, dim):
    from .pointwise import log
    shifted = sub(x, amax(x, (dim,), True))
    return sub(shifted, log(sum(exp(shifted), (dim,), True)))


def _np_softmax(x, dim):
    m = np.max(x, axis=dim, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=dim, keepdims=True)


def _np_log_softmax(x, dim):
    m = np.max(x, axis=dim, keepdims=True)
    s = x - m
    return s - np.log(np.sum(np.exp(s), axis=dim, keepdims=True))


def _np_var(x, dim, correction, keepdim):
    n = _count(x.shape, dim)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.var(x, axis=dim, keepdims=keepdim, ddof=0) * (n / (n - correction)) \
            if n - correction > 0 else np.full(reduced_shape(x.shape, dim, keepdim), np.nan, x.dtype)


def _np_arg(fn):
    def impl(x, dim, keepdim):
        out = fn(x, axis=dim)
        return np.expand_dims(out, dim) if keepdim else out
    return impl


def _nonempty_meta(name, base):
    def meta(x, **attrs):
        for d in attrs["dim"]:
            if x.shape and x.shape[d] == 0:
                raise op_error(IndexError, name, f"cannot reduce over an empty dimension {d} of shape {x.shape}")
        return base(x, **attrs)
    return meta


def _arg_meta(name):
    def meta(x, *, dim, keepdim):
        if x.ndim and x.shape[dim] == 0:
            raise op_error(IndexError, name, f"cannot take {name} of an empty dimension (shape {x.shape})")
        return Meta(reduced_shape(x.shape, (dim,), keepdim), dt.int64, device_of(x))
    return meta


def _row_meta(name):
    def meta(x, *, dim):
        if not x.dtype.is_floating_point:
            raise op_error(TypeError, name, f"expected a floating point input, got {x.dtype.name}")
        return Meta(x.shape, x.dtype, device_of(x))
    return meta


def _row_samples(rng):
    return [SampleInput((rng.standard_normal((3, 5)),), {"dim": 1}),
            SampleInput((rng.standard_normal((3, 5)),), {"dim": 0}),
            SampleInput((rng.standard_normal((2, 3, 4)),), {"dim": 2})]


def _own_int(x):
    """numpy sums and multiplies integers narrower than int64 as int64; the prims keep
    their input's dtype (wrapping around, as PyTorch's ``sum(dtype=torch.int8)``)."""
    return x.dtype if x.dtype.kind in "iu" else None


register(OpDef("sum", "reduction", reduction("sum"),
               lambda x, dim, keepdim: np.sum(x, axis=dim, keepdims=keepdim, dtype=_own_int(x)),
               vjp=_sum_vjp, scalar="add", samples=_with_ints))
register(OpDef("prod", "reduction", reduction("prod"),
               lambda x, dim, keepdim: np.prod(x, axis=dim, keepdims=keepdim, dtype=_own_int(x)),
               vjp=_prod_vjp, scalar="mul", samples=_prod_samples))
register(OpDef("mean", "reduction", reduction("mean", float_only=True),
               lambda x, dim, keepdim: np.mean(x, axis=dim, keepdims=keepdim),
               vjp=_mean_vjp, decomp=_mean_decomp, samples=_samples))
register(OpDef("amax", "reduction", _nonempty_meta("amax", reduction("amax")),
               lambda x, dim, keepdim: np.max(x, axis=dim, keepdims=keepdim),
               vjp=_amax_vjp, scalar="max", samples=_with_ints))
register(OpDef("amin", "reduction", _nonempty_meta("amin", reduction("amin")),
               lambda x, dim, keepdim: np.min(x, axis=dim, keepdims=keepdim),
               vjp=_amax_vjp, scalar="min", samples=_with_ints))
register(OpDef("var", "reduction", reduction("var", float_only=True), _np_var, vjp=_var_vjp, decomp=_var_decomp,
               samples=lambda rng: [
                   SampleInput((rng.standard_normal((3, 4)),), {"dim": (0, 1), "correction": 1, "keepdim": False}),
                   SampleInput((rng.standard_normal((3, 4)),), {"dim": (1,), "correction": 0, "keepdim": True}),
                   # over leading axes: the sum of squares needs the mean of the same columns
                   SampleInput((rng.standard_normal((4, 3)),), {"dim": (0,), "correction": 1, "keepdim": False}),
                   SampleInput((rng.standard_normal((4, 3, 2)),), {"dim": (0, 1), "correction": 1,
                                                                   "keepdim": True}),
               ]))
register(OpDef("argmax", "reduction", _arg_meta("argmax"), _np_arg(np.argmax),
               samples=lambda rng: [SampleInput((rng.standard_normal((3, 4)),), {"dim": 1, "keepdim": False}),
                                    SampleInput((rng.standard_normal((3, 4)),), {"dim": 0, "keepdim": True}),
                                    SampleInput((rng.integers(0, 4, (3, 4)).astype(np.uint8),),
                                                {"dim": 1, "keepdim": False}, name="uint8 ties")]))
register(OpDef("argmin", "reduction", _arg_meta("argmin"), _np_arg(np.argmin),
               samples=lambda rng: [SampleInput((rng.standard_normal((3, 4)),), {"dim": 1, "keepdim": False})]))
register(OpDef("softmax", "reduction", _row_meta("softmax"), _np_softmax, vjp=_softmax_vjp,
               decomp=_softmax_decomp,
               samples=_row_samples))
register(OpDef("log_softmax", "reduction", _row_meta("log_softmax"), _np_log_softmax,
               vjp=_log_softmax_vjp, decomp=_log_softmax_decomp, samples=_row_samples))
