"""Ops along one axis where each result reads a whole line: ``cumsum`` (a scan) and
``argsort`` (with ``sort`` and ``topk`` built on it).

Neither pointwise nor a reduction, these ops are library calls that ``fuse``
leaves alone (kind ``other``, like ``gather``): numpy runs them in eager CPU
mode, in the interpreter and in the ``numba`` backend; on CUDA (eager and
compiled) they run the one-thread-per-line kernels of
:mod:`minaot.kernels.scan_sort_cuda`.

``cumsum`` has one attribute more than PyTorch's: ``reverse``, the sums from
the end of the line (``x.flip(dim).cumsum(dim).flip(dim)``), which is the
gradient of ``cumsum`` and so lets the VJP rule be the same op again.  As on
PyTorch's CPU, a float32 line is summed in float64 and each prefix rounded
to float32 (the CUDA kernel does the same, so both devices agree).

Sorting is one op, ``argsort`` (the positions, int64, no gradient).  ``sort``
and ``topk`` read their values at those positions with a ``gather``, the way
``max(x, dim)`` does, so the gradient of the values is the gather's:
scattered back to the positions they came from, as in PyTorch.  ``topk``
keeps the first ``k`` positions of a full sort.  The sort is always stable
(PyTorch promises an order of ties only with ``stable=True``; minaot gives
that order every time, on every device), and NaN sorts as the largest value.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from .._errors import DTypeError, op_error
from ..dispatch import dispatch
from ..layout import _order, is_dense
from .meta import device_of, wrap_dim
from .reductions import values_indices
from .registry import Meta, OpDef, SampleInput, register


# ---------------------------------------------------------------- cumsum
def cumsum(input, dim, *, dtype=None):
    """The cumulative sum along ``dim``: ``out[..., i, ...] = sum(input[..., :i + 1, ...])``.

    As ``torch.cumsum``: integer and bool inputs are summed as ``int64``;
    ``dtype`` casts the input first; a 0-d input takes ``dim`` 0 or -1 and is
    returned as is (a copy).  The gradient is the reversed cumulative sum of the
    incoming gradient."""
    if dtype is not None:
        input = input.to(dt.to_dtype(dtype))
    elif not input.dtype.is_floating_point:
        input = input.to(dt.int64)
    return dispatch("cumsum", input, dim=wrap_dim("cumsum", dim, input.ndim), reverse=False)


def cumsum_(input, dim, *, dtype=None):
    """In-place :func:`cumsum` along ``dim``; returns ``input``.  ``dtype``, if given, must
    be ``input``'s own (as in PyTorch); bool tensors are refused."""
    if dtype is not None and dt.to_dtype(dtype) is not input.dtype:
        raise op_error(DTypeError, "cumsum_", f"input tensor dtype {input.dtype.name} and output "
                       f"tensor dtype {dt.to_dtype(dtype).name} should match")
    return dispatch("cumsum_", input, dim=wrap_dim("cumsum_", dim, input.ndim), reverse=False)


def _cumsum_meta(x, *, dim, reverse):
    if x.dtype is dt.bool_:
        raise op_error(DTypeError, "cumsum", f"not implemented for bool tensors (shape "
                       f"{tuple(x.shape)}); minaot.cumsum sums them as int64")
    wrap_dim("cumsum", dim, x.ndim)
    return Meta(tuple(x.shape), x.dtype, device_of(x))


def _np_cumsum(x, dim, reverse):
    """numpy's cumsum along ``dim`` (from the end if ``reverse``); float32 is accumulated in
    float64 and rounded per prefix, as on PyTorch's CPU."""
    if x.ndim == 0:
        return x.copy()
    acc = np.float64 if x.dtype.kind == "f" else np.int64
    if reverse:
        x = np.flip(x, dim)
    out = np.cumsum(x, axis=dim, dtype=acc)
    if reverse:
        out = np.flip(out, dim)
    return np.array(out, dtype=x.dtype, order="C")    # a copy: C strides for size-1 dims too


def _cumsum_vjp(ctx, g):
    """``out[i] = sum_{j <= i} x[j]``, so ``dx[j] = sum_{i >= j} g[i]``: the reversed
    cumulative sum of ``g`` (PyTorch's ``g.flip(dim).cumsum(dim).flip(dim)``)."""
    return (dispatch("cumsum", g, dim=ctx.attrs["dim"], reverse=not ctx.attrs["reverse"]),)


def _cumsum_samples(rng):
    return [SampleInput((rng.standard_normal((3, 5)),), {"dim": 1, "reverse": False}),
            SampleInput((rng.standard_normal((4, 3)),), {"dim": 0, "reverse": False}),
            SampleInput((rng.standard_normal((2, 3, 4)),), {"dim": 1, "reverse": True}),
            SampleInput((rng.standard_normal((6,)),), {"dim": 0, "reverse": False}),
            SampleInput((np.array(1.5),), {"dim": 0, "reverse": False}, name="0-d"),
            SampleInput((rng.integers(-5, 5, (3, 4)),), {"dim": 1, "reverse": False},
                        name="int64")]


register(OpDef("cumsum", "other", _cumsum_meta, _np_cumsum, vjp=_cumsum_vjp,
               samples=_cumsum_samples))
register(OpDef("cumsum_", "inplace", lambda *a, **k: None, None, pure="cumsum"))


# ---------------------------------------------------------------- cumprod
def cumprod(input, dim, *, dtype=None):
    """The cumulative product along ``dim``: ``out[..., i, ...] = prod(input[..., :i + 1, ...])``.

    As ``torch.cumprod``: integer and bool inputs are multiplied as ``int64``; ``dtype``
    casts the input first; a float32 line is multiplied in float64, each prefix rounded.
    The gradient is PyTorch's, right also where the input holds zeros: before a line's
    first zero it is the reversed cumulative sum of ``grad * out`` divided by the input;
    at the first zero, the product of the elements before it times the sum of the
    incoming gradients weighted by the products after it (up to the second zero); past
    the first zero, 0."""
    if dtype is not None:
        input = input.to(dt.to_dtype(dtype))
    elif not input.dtype.is_floating_point:
        input = input.to(dt.int64)
    return dispatch("cumprod", input, dim=wrap_dim("cumprod", dim, input.ndim))


def cumprod_(input, dim, *, dtype=None):
    """In-place :func:`cumprod` along ``dim``; returns ``input``.  ``dtype``, if given, must
    be ``input``'s own (as in PyTorch); bool tensors are refused."""
    if dtype is not None and dt.to_dtype(dtype) is not input.dtype:
        raise op_error(DTypeError, "cumprod_", f"input tensor dtype {input.dtype.name} and "
                       f"output tensor dtype {dt.to_dtype(dtype).name} should match")
    return dispatch("cumprod_", input, dim=wrap_dim("cumprod_", dim, input.ndim))


def _scan_meta(name):
    def meta(x, *, dim, **attrs):
        if x.dtype is dt.bool_:
            raise op_error(DTypeError, name, f"not implemented for bool tensors (shape "
                           f"{tuple(x.shape)}); minaot.{name} takes them as int64")
        wrap_dim(name, dim, x.ndim)
        return Meta(tuple(x.shape), x.dtype, device_of(x))
    return meta


def _np_cumprod(x, dim):
    """numpy's cumprod along ``dim``, float32 accumulated in float64 (PyTorch's CPU)."""
    if x.ndim == 0:
        return x.copy()
    acc = np.float64 if x.dtype.kind == "f" else np.int64
    with np.errstate(all="ignore"):
        return np.ascontiguousarray(np.cumprod(x, axis=dim, dtype=acc), dtype=x.dtype)


def _cumprod_vjp(ctx, g):
    """PyTorch's ``cumprod_backward``, without a branch on the values so that it compiles:
    with ``w = grad * out`` and ``z1``, ``z2`` the first two zeros of a line,

    * before ``z1`` (every position of a line without zeros): ``revcumsum(w) / x``, the
      sums taken over ``[0, z1)`` only;
    * at ``z1``: ``out[z1 - 1] * sum_{z1 <= i < z2} grad[i] * prod(x[z1 + 1 .. i])``;
    * after ``z1``: 0 (every product there holds the zero).

    Divisions only see the input where it is nonzero."""
    from .other import gather
    from .pointwise import clamp_min, div, eq, mul, sub, where
    from .reductions import argmax, sum
    x, out = ctx.inputs[0], ctx.outputs[0]
    dim = ctx.attrs["dim"]
    if x.ndim == 0 or x.shape[dim] <= 1:
        return (g,)
    is_zero = eq(x, 0)
    zeros_so_far = cumsum(is_zero, dim)
    before = eq(zeros_so_far, 0)
    w = where(before, mul(out, g), 0.0)
    grad_before = div(dispatch("cumsum", w, dim=dim, reverse=True), where(before, x, 1.0))
    first_run = eq(zeros_so_far, 1)                       # [z1, z2)
    first = first_run & is_zero
    after = first_run & ~is_zero                          # (z1, z2)
    tail = dispatch("cumprod", where(after, x, 1.0), dim=dim)
    weighted = sum(mul(tail, where(first_run, g, 0.0)), dim, keepdim=True)
    z1 = argmax(first_run.long(), dim, keepdim=True)
    until = gather(out, dim, clamp_min(sub(z1, 1), 0))
    grad_first = mul(weighted, where(eq(z1, 0), 1.0, until))
    return (where(before, grad_before, where(first, grad_first, 0.0)),)


def _cumprod_samples(rng):
    x = rng.uniform(0.5, 1.5, (3, 5)) * rng.choice([-1.0, 1.0], (3, 5))
    zeros = rng.uniform(0.5, 2.0, (4, 6)) * rng.choice([-1.0, 1.0], (4, 6))
    zeros[1, 2] = 0.0                                   # row 1 one zero, row 2 two, row 3
    zeros[2, 1] = zeros[2, 4] = 0.0                     # a zero first
    zeros[3, 0] = 0.0
    return [SampleInput((x,), {"dim": 1}),
            SampleInput((x,), {"dim": 0}),
            SampleInput((rng.uniform(0.5, 1.5, (2, 3, 4)),), {"dim": 2}),
            SampleInput((zeros,), {"dim": 1}, name="zeros"),
            SampleInput((zeros.T.copy(),), {"dim": 0}, name="zeros in columns"),
            SampleInput((np.array(1.5),), {"dim": 0}, name="0-d"),
            SampleInput((rng.integers(-3, 4, (3, 4)),), {"dim": 1}, name="int64")]


register(OpDef("cumprod", "other", _scan_meta("cumprod"), _np_cumprod, vjp=_cumprod_vjp,
               samples=_cumprod_samples))
register(OpDef("cumprod_", "inplace", lambda *a, **k: None, None, pure="cumprod"))


# ---------------------------------------------------------------- cummax, cummin
def cummax(input, dim):
    """``(values, indices)``, a named tuple as ``torch.cummax``'s: the running maximum of
    ``input`` along ``dim`` and the position it came from.  On a tie the later position
    wins; NaN is the maximum once seen (each later NaN's position taking over), as on
    PyTorch's CPU.  The gradient of ``values`` goes back to the positions in ``indices``."""
    return _cumulative_extreme("cummax", input, dim)


def cummin(input, dim):
    """``(values, indices)``: the running minimum along ``dim`` and its positions, as
    ``torch.cummin`` (ties: the later position; NaN, once seen, stays)."""
    return _cumulative_extreme("cummin", input, dim)


def _cumulative_extreme(name, input, dim):
    from .other import gather
    from .views import clone
    dim = wrap_dim(name, dim, input.ndim)
    indices = dispatch("cumargmax" if name == "cummax" else "cumargmin", input, dim=dim)
    if input.ndim == 0:
        return values_indices(clone(input), indices)
    return values_indices(gather(input, dim, indices), indices)


def _cumarg_meta(x, *, dim):
    wrap_dim("cummax", dim, x.ndim)
    return Meta(tuple(x.shape), dt.int64, device_of(x))


def _np_cumarg(largest):
    def impl(x, dim):
        """Walks the lines along ``dim`` together, keeping each line's extreme so far."""
        if x.ndim == 0:
            return np.zeros((), np.int64)
        lines = np.moveaxis(x, dim, -1)
        out = np.zeros(lines.shape, np.int64)
        if lines.size:
            best = lines[..., 0].copy()
            at = np.zeros(best.shape, np.int64)
            for k in range(lines.shape[-1]):
                v = lines[..., k]
                better = v >= best if largest else v <= best
                if x.dtype.kind == "f":
                    better = np.isnan(v) | (~np.isnan(best) & better)
                best = np.where(better, v, best)
                at = np.where(better, k, at)
                out[..., k] = at
        return np.ascontiguousarray(np.moveaxis(out, -1, dim))
    return impl


def _cumarg_samples(rng):
    ties = np.array([[1.0, 3.0, 3.0, 2.0, np.nan, 5.0, np.nan, 1.0],
                     [2.0, 2.0, -1.0, -1.0, 0.0, -1.0, 4.0, 4.0]])
    return [SampleInput((rng.standard_normal((3, 5)),), {"dim": 1}),
            SampleInput((rng.standard_normal((4, 3)),), {"dim": 0}),
            SampleInput((ties,), {"dim": 1}, name="ties and nan"),
            SampleInput((rng.integers(0, 3, (2, 7)),), {"dim": 1}, name="int64 ties"),
            SampleInput((np.array(1.5),), {"dim": 0}, name="0-d")]


register(OpDef("cumargmax", "other", _cumarg_meta, _np_cumarg(True), samples=_cumarg_samples))
register(OpDef("cumargmin", "other", _cumarg_meta, _np_cumarg(False), samples=_cumarg_samples))


# ---------------------------------------------------------------- logcumsumexp
def logcumsumexp(input, dim):
    """``log(cumsum(exp(input), dim))`` computed stably, as ``torch.logcumsumexp``: a float64
    running value (float32 lines too), each step PyTorch's ``log1p(exp(min - max)) + max``
    (NaN propagates; ``-inf`` is the empty sum).  Floating-point inputs only."""
    return dispatch("logcumsumexp", input, dim=wrap_dim("logcumsumexp", dim, input.ndim),
                    reverse=False)


def _logcumsumexp_meta(x, *, dim, reverse):
    if not x.dtype.is_floating_point:
        raise op_error(DTypeError, "logcumsumexp", f"not implemented for {x.dtype.name} "
                       f"tensors (shape {tuple(x.shape)}); it takes float32 or float64")
    wrap_dim("logcumsumexp", dim, x.ndim)
    return Meta(tuple(x.shape), x.dtype, device_of(x))


def _np_logcumsumexp(x, dim, reverse):
    if x.ndim == 0:
        return x.copy()
    lines = np.moveaxis(x, dim, -1)
    out = np.empty(lines.shape, x.dtype)
    acc = np.full(lines.shape[:-1], -np.inf)
    n = lines.shape[-1]
    with np.errstate(all="ignore"):
        for k in range(n):
            j = n - 1 - k if reverse else k
            v = lines[..., j].astype(np.float64)
            lo, hi = np.minimum(v, acc), np.maximum(v, acc)        # NaN if either is
            same_infinity = (lo == hi) & np.isinf(lo)
            acc = np.where(same_infinity, v, np.log1p(np.exp(lo - hi)) + hi)
            out[..., j] = acc
    return np.ascontiguousarray(np.moveaxis(out, -1, dim))


def _logcumsumexp_vjp(ctx, g):
    """PyTorch's ``logcumsumexp_backward``: ``dx[j] = sum_{i >= j} g[i] exp(x[j] - out[i])``,
    the positive and negative parts of ``g`` each summed in log space (a reversed
    logcumsumexp), so that nothing overflows."""
    from .pointwise import abs, eq, exp, gt, log, lt, sub, where
    x, out = ctx.inputs[0], ctx.outputs[0]
    if x.ndim == 0 or x.numel() == 0:
        return (g,)
    dim = ctx.attrs["dim"]
    lowest = float(np.finfo(x.dtype.np).min)
    log_abs = log(where(eq(g, 0), 1.0, abs(g)))          # (a zero is masked out below)

    def part(mask):
        logs = sub(where(mask, log_abs, lowest), out)
        return exp(dispatch("logcumsumexp", logs, dim=dim, reverse=not ctx.attrs["reverse"]) + x)
    return (sub(part(gt(g, 0)), part(lt(g, 0))),)


def _logcumsumexp_samples(rng):
    return [SampleInput((rng.standard_normal((3, 5)),), {"dim": 1, "reverse": False}),
            SampleInput((rng.standard_normal((4, 3)) * 30,), {"dim": 0, "reverse": False}),
            SampleInput((rng.standard_normal((2, 3, 4)),), {"dim": 1, "reverse": True}),
            SampleInput((np.array(1.5),), {"dim": 0, "reverse": False}, name="0-d")]


register(OpDef("logcumsumexp", "other", _logcumsumexp_meta, _np_logcumsumexp,
               vjp=_logcumsumexp_vjp, samples=_logcumsumexp_samples))


# ---------------------------------------------------------------- argsort, sort, topk
def argsort(input, dim=-1, descending=False, *, stable=False):
    """The int64 positions that sort ``input`` along ``dim`` (ascending, or ``descending``):
    ``torch.argsort``.  The sort is always stable, so ``stable`` changes nothing: equal
    elements keep their order.  NaN sorts as the largest value.  The result is laid out
    as the input, as in PyTorch: with its strides when its elements are dense (``x.t()``,
    a ``permute``), else dense in the order of its strides (C order for a slice of a
    contiguous tensor); on CUDA always C-contiguous."""
    dim = wrap_dim("argsort", dim, input.ndim)
    order = _memory_order(input)
    if order is not None:
        from .views import permute
        moved = _argsort(permute(input, *order), order.index(dim), descending)
        return permute(moved, *_inverse(order))
    return _argsort(input, dim, descending)


def _argsort(input, dim, descending):
    return dispatch("argsort", input, dim=dim, descending=bool(descending))


def _memory_order(input):
    """For a CPU tensor not in C order (``x.t()``, a ``permute``): its dims from the
    outermost in memory to the innermost, else None.  ``sort`` and ``argsort`` run on
    ``input.permute(order)`` and permute their C-contiguous results back, which lays the
    results out as PyTorch allocates them (``empty_like`` the input), at no cost: with the
    input's strides when its elements are dense (a dim of size 1 inside the others of its
    stride, where C order puts it), else dense in the order of the input's strides."""
    if input.ndim < 2 or input.is_cuda or input.is_contiguous():
        return None
    strides = input.stride()
    if is_dense(input.shape, strides, 1):
        order = sorted(range(input.ndim), key=lambda d: (-strides[d], input.shape[d] == 1, d))
    else:           # PyTorch's infer_dense_strides: TensorIterator's order of the dims
        order = _order(tuple(input.shape), [strides])[::-1]
    return None if order == list(range(input.ndim)) else order


def _inverse(order):
    return tuple(order.index(d) for d in range(len(order)))


def sort(input, dim=-1, descending=False, stable=False):
    """``(values, indices)``, a named tuple as ``torch.sort``'s: ``input`` sorted along
    ``dim`` and the positions the values came from (:func:`argsort`; stable, NaN largest).
    The gradient of ``values`` goes back to the positions in ``indices``.  Both are laid
    out as the input, as :func:`argsort`'s result."""
    from .views import clone, permute
    dim = wrap_dim("sort", dim, input.ndim)
    order = _memory_order(input)
    if order is not None:
        values, indices = sort(permute(input, *order), order.index(dim), descending)
        back = _inverse(order)
        return values_indices(permute(values, *back), permute(indices, *back))
    indices = _argsort(input, dim, descending)
    if input.ndim == 0:
        return values_indices(clone(input), indices)
    from .other import gather
    return values_indices(gather(input, dim, indices), indices)


def topk(input, k, dim=None, largest=True, sorted=True):
    """``(values, indices)`` of the ``k`` largest (``largest=False``: smallest) elements
    along ``dim`` (the last by default), as ``torch.topk``: the first ``k`` of a stable
    sort, so they come in sorted order whatever ``sorted`` says, ties in the order of
    their positions, NaN as the largest value.  The gradient of ``values`` goes back to
    the positions in ``indices``; the other elements get zero.  Both results are
    C-contiguous, whatever the input's layout, as in PyTorch."""
    dim = wrap_dim("topk", -1 if dim is None else dim, input.ndim)
    size = input.shape[dim] if input.ndim else 1
    if not 0 <= k <= size:
        raise op_error(RuntimeError, "topk", f"selected index k out of range (k = {k}, dimension "
                       f"{dim} of shape {tuple(input.shape)} has size {size})")
    if input.ndim == 0:
        return sort(input)
    from .other import gather
    from .views import narrow
    indices = _argsort(input, dim, largest)
    if k < size:        # a copy (C strides, size-1 dims too), not the narrowed view's
        indices = dispatch("clone", narrow(indices, dim, 0, k))
    return values_indices(gather(input, dim, indices), indices)


def _argsort_meta(x, *, dim, descending):
    wrap_dim("argsort", dim, x.ndim)
    return Meta(tuple(x.shape), dt.int64, device_of(x))


def _np_argsort(x, dim, descending):
    """numpy's stable argsort along ``dim`` (NaN last); descending keeps equal elements in
    their order too: a stable ascending sort of the reversed line, read backwards."""
    if x.ndim == 0:
        return np.zeros((), np.int64)
    if not descending:
        return np.argsort(x, axis=dim, kind="stable")
    backwards = np.argsort(np.flip(x, dim), axis=dim, kind="stable")
    return np.array(np.flip(x.shape[dim] - 1 - backwards, dim), order="C")


def _argsort_samples(rng):
    ties = np.array([[2.0, np.nan, 1.0, 2.0, -0.5, 1.0, np.nan],
                     [0.0, -0.0, 3.0, 3.0, 3.0, -1.0, 0.0]])
    return [SampleInput((rng.standard_normal((3, 5)),), {"dim": 1, "descending": False}),
            SampleInput((rng.standard_normal((4, 3)),), {"dim": 0, "descending": True}),
            SampleInput((rng.standard_normal((2, 9, 3)),), {"dim": 1, "descending": False}),
            SampleInput((ties,), {"dim": 1, "descending": False}, name="ties and nan"),
            SampleInput((ties,), {"dim": 1, "descending": True}, name="ties and nan, descending"),
            SampleInput((rng.integers(0, 3, (2, 6)),), {"dim": 1, "descending": True},
                        name="int64 ties"),
            SampleInput((np.array(1.5),), {"dim": 0, "descending": False}, name="0-d")]


register(OpDef("argsort", "other", _argsort_meta, _np_argsort, samples=_argsort_samples))
