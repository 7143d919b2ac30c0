"""Ops that are neither pointwise, reductions nor views: matmul, cat, gather,
scatter_add, fill, copy; the in-place ops; and ``sum_to`` (undo broadcasting).

Every in-place op ``x.op_(...)`` is registered as kind ``inplace`` with the
name of its pure twin: eagerly the twin computes the new value and the
dispatcher writes it into ``x``; functionalization replaces the in-place op by
the twin.  Metadata in-place ops (``t_``, ``transpose_``, ``unsqueeze_``,
``squeeze_``) have a view op as their twin.
"""

from __future__ import annotations

import builtins

import numpy as np

from .. import dtypes as dt
from .._errors import DTypeError, ShapeError, op_error
from ..dispatch import dispatch
from .meta import broadcast_shapes, device_of, long_index, wrap_dim
from .registry import Meta, OpDef, SampleInput, register


# ---------------------------------------------------------------- matmul
def matmul(input, other):
    """Matrix product with numpy's rules (operator ``a @ b``).

    1-d operands are a vector (two vectors give a 0-d dot product), 2-d a matrix,
    and leading axes of N-d operands are batch axes that broadcast."""
    return dispatch("matmul", input, other)


def mm(input, other):
    """The product of two matrices (2-d only); see :func:`matmul` for the general case."""
    if input.ndim != 2 or other.ndim != 2:
        raise op_error(ShapeError, "mm", f"expects 2-D tensors, got {input.shape} and {other.shape}")
    return matmul(input, other)


def bmm(input, other):
    """Batched matrix product of ``(b, n, k)`` and ``(b, k, m)`` tensors."""
    if input.ndim != 3 or other.ndim != 3:
        raise op_error(ShapeError, "bmm", f"expects 3-D tensors, got {input.shape} and {other.shape}")
    return matmul(input, other)


def _matmul_meta(a, b):
    if a.ndim == 0 or b.ndim == 0:
        raise op_error(ShapeError, "matmul",
                       f"both arguments need at least 1 dimension, got {a.shape} and {b.shape}")
    if a.dtype is not b.dtype:
        raise op_error(DTypeError, "matmul",
                       f"expected both inputs to have the same dtype, got {a.dtype.name} and {b.dtype.name}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise op_error(ShapeError, "matmul",
                       f"shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied "
                       f"({k_a} != {k_b})")
    if a.ndim == 1 and b.ndim == 1:
        shape = ()
    elif b.ndim == 1:
        shape = tuple(a.shape[:-1])
    elif a.ndim == 1:
        shape = tuple(b.shape[:-2]) + (b.shape[-1],)
    else:
        batch = broadcast_shapes("matmul", tuple(a.shape[:-2]), tuple(b.shape[:-2]))
        shape = batch + (a.shape[-2], b.shape[-1])
    return Meta(shape, a.dtype, device_of(a, b))


def _matmul_vjp(ctx, g):
    """Gradients of ``a @ b`` with numpy's matmul rules: ``g @ b^T`` and ``a^T @ g`` for
    matrices (the last two axes; leading batch axes broadcast, and autograd sums the
    gradient back to each input's batch shape); a 1-d ``a`` is a row ``(1, k)`` and a
    1-d ``b`` a column ``(k, 1)`` whose added axis is dropped from the result again,
    and two vectors give a 0-d dot product."""
    # BEGIN TASK 1.4: VJP rule of matmul (vectors, matrices and batches)
    from .views import transpose
    a, b = ctx.inputs[0], ctx.inputs[1]
    need_a, need_b = ctx.needs_input_grad
    if a.ndim == 1 and b.ndim == 1:
        return (g * b if need_a else None, g * a if need_b else None)
    ga = gb = None
    if need_a:
        if b.ndim == 1:
            ga = g.unsqueeze(-1) * b
        elif a.ndim == 1:
            ga = matmul(g.unsqueeze(-2), transpose(b, -1, -2)).squeeze(-2)
        else:
            ga = matmul(g, transpose(b, -1, -2))
    if need_b:
        if a.ndim == 1:
            gb = a.unsqueeze(-1) * g.unsqueeze(-2)
        elif b.ndim == 1:
            gb = matmul(transpose(a, -1, -2), g.unsqueeze(-1)).squeeze(-1)
        else:
            gb = matmul(transpose(a, -1, -2), g)
    return ga, gb
    # END TASK 1.4


register(OpDef("matmul", "other", _matmul_meta, np.matmul, vjp=_matmul_vjp,
               samples=lambda rng: [
                   SampleInput((rng.standard_normal((3, 4)), rng.standard_normal((4, 5)))),
                   SampleInput((rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 2)))),
                   SampleInput((rng.standard_normal((2, 1, 3, 4)), rng.standard_normal((3, 4, 2)))),
                   SampleInput((rng.standard_normal((4,)), rng.standard_normal((4, 3)))),
                   SampleInput((rng.standard_normal((3, 4)), rng.standard_normal((4,)))),
                   SampleInput((rng.standard_normal((4,)), rng.standard_normal((4,)))),
               ]))


# ---------------------------------------------------------------- cat / stack
def cat(tensors, dim=0):
    """The tensors joined along the existing axis ``dim`` (all other sizes must match)."""
    tensors = list(tensors)
    if not tensors:
        raise op_error(ValueError, "cat", "expected a non-empty list of tensors")
    target = dt.result_type(*tensors)
    tensors = [t if t.dtype is target else t.to(target) for t in tensors]
    return dispatch("cat", *tensors, dim=wrap_dim("cat", dim, tensors[0].ndim))


def concat(tensors, dim=0):
    """Another name of :func:`cat`."""
    return cat(tensors, dim)


def stack(tensors, dim=0):
    """The tensors joined along a new axis ``dim`` (all shapes must be equal)."""
    tensors = list(tensors)
    if not tensors:
        raise op_error(ValueError, "stack", "expected a non-empty list of tensors")
    d = wrap_dim("stack", dim, tensors[0].ndim + 1)
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            raise op_error(ShapeError, "stack",
                           f"expects each tensor to be equal size, got {tensors[0].shape} and {t.shape}")
    return cat([t.unsqueeze(d) for t in tensors], d)


def _cat_meta(*tensors, dim):
    first = tensors[0]
    size = 0
    for t in tensors:
        if t.ndim != first.ndim or any(i != dim and s != f for i, (s, f) in enumerate(zip(t.shape, first.shape))):
            raise op_error(ShapeError, "cat",
                           "sizes of tensors must match except in dimension "
                           f"{dim}: got {', '.join(str(tuple(x.shape)) for x in tensors)}")
        size += t.shape[dim]
    shape = list(first.shape)
    shape[dim] = size
    return Meta(tuple(shape), first.dtype, device_of(*tensors))


def _cat_vjp(ctx, g):
    dim = ctx.attrs["dim"]
    out, start = [], 0
    for (shape, _), need in zip(ctx.input_metas, ctx.needs_input_grad):
        n = shape[dim]
        out.append(dispatch("slice", g, dim=dim, start=start, stop=start + n, step=1) if need else None)
        start += n
    return tuple(out)


register(OpDef("cat", "other", _cat_meta, lambda *xs, dim: np.concatenate(xs, axis=dim),
               vjp=_cat_vjp,
               samples=lambda rng: [
                   SampleInput((rng.standard_normal((2, 3)), rng.standard_normal((4, 3))), {"dim": 0}),
                   SampleInput((rng.standard_normal((2, 3)), rng.standard_normal((2, 1)),
                                rng.standard_normal((2, 2))), {"dim": 1}),
               ]))


# ---------------------------------------------------------------- gather / scatter_add
def gather(input, dim, index):
    """``out[i][j] = input[i][index[i][j]]`` for ``dim=1`` (and likewise for other dims).

    ``index`` is an ``int64`` (or ``int32``) tensor with as many axes as ``input``."""
    index = long_index("gather", index)
    return dispatch("gather", input, index, dim=wrap_dim("gather", dim, input.ndim))


def scatter_add(input, dim, index, src):
    """A copy of ``input`` with ``src`` added at the positions ``index`` names along
    ``dim`` (repeated indices accumulate): the gradient of :func:`gather`.  Only the part
    of ``src`` of ``index``'s shape is used (it is sliced to it first, so its gradient is
    zero elsewhere).  ``index``: int64 or int32.  Integers narrower than 32 bits are added
    as int32 and cast back (the same values, wrapped around: a GPU's atomic adds take 32
    and 64 bits only)."""
    index = long_index("scatter_add", index)
    if src.ndim == index.ndim and tuple(src.shape) != tuple(index.shape):
        from .views import getitem
        src = getitem(src, tuple(slice(0, s) for s in index.shape))
    d = wrap_dim("scatter_add", dim, input.ndim)
    if input.dtype in (dt.int16, dt.int8, dt.uint8) and src.dtype is input.dtype:
        return dispatch("scatter_add", input.int(), index, src.int(), dim=d).to(input.dtype)
    return dispatch("scatter_add", input, index, src, dim=d)


def _gather_meta(x, index, *, dim):
    if index.dtype is not dt.int64:
        raise op_error(DTypeError, "gather", f"index must be int64, got {index.dtype.name}")
    if index.ndim != x.ndim:
        raise op_error(ShapeError, "gather",
                       f"index {tuple(index.shape)} and input {tuple(x.shape)} must have the same number of dimensions")
    for i, (a, b) in enumerate(zip(index.shape, x.shape)):
        if i != dim and a > b:
            raise op_error(ShapeError, "gather",
                           f"size of index {tuple(index.shape)} does not fit input {tuple(x.shape)} at dim {i}")
    return Meta(tuple(index.shape), x.dtype, device_of(x, index))


def _check_index(op, x, index, dim):
    """Every index in ``[0, size)`` along ``dim``; a negative one is out of bounds too (it is
    not counted from the end), as in PyTorch."""
    if index.size and (index.min() < 0 or index.max() >= x.shape[dim]):
        bad = index.min() if index.min() < 0 else index.max()
        raise IndexError(f"{op}: index {bad} is out of bounds for dimension {dim} with size "
                         f"{x.shape[dim]} (negative indices are not counted from the end, as in "
                         "PyTorch)")


def _np_gather(x, index, dim):
    _check_index("gather", x, index, dim)
    sl = tuple(slice(0, s) for s in index.shape)
    sl = sl[:dim] + (slice(None),) + sl[dim + 1:]
    return np.take_along_axis(x[sl], index, axis=dim)


def _np_scatter_add(x, index, src, dim):
    _check_index("scatter_add", x, index, dim)
    out = x.copy()
    idx = list(np.indices(index.shape, sparse=True))
    idx[dim] = index
    np.add.at(out, tuple(idx), src[tuple(slice(0, s) for s in index.shape)])
    return out


def _scatter_add_meta(x, index, src, *, dim):
    _gather_meta(x, index, dim=dim)
    return Meta(tuple(x.shape), x.dtype, device_of(x, index, src))


def _gather_samples(rng):
    x = rng.standard_normal((3, 4))
    return [SampleInput((x, rng.integers(0, 4, (3, 2))), {"dim": 1}),
            SampleInput((x, rng.integers(0, 3, (2, 4))), {"dim": 0})]


register(OpDef("gather", "other", _gather_meta, _np_gather,
               vjp=lambda ctx, g: (dispatch("scatter_add", _zeros(ctx.input_metas[0], g),
                                            ctx.inputs[1], g, **ctx.attrs), None),
               samples=_gather_samples))
register(OpDef("scatter_add", "other", _scatter_add_meta, _np_scatter_add,
               vjp=lambda ctx, g: (g, None, dispatch("gather", g, ctx.inputs[1], **ctx.attrs)
                                   if ctx.needs_input_grad[2] else None),
               samples=lambda rng: [SampleInput((rng.standard_normal((3, 4)), rng.integers(0, 4, (3, 2)),
                                                 rng.standard_normal((3, 2))), {"dim": 1})]))


def _zeros(meta, like):
    from .creation import zeros
    shape, dtype = meta
    return zeros(shape, dtype=dtype, device=like.device)


# ---------------------------------------------------------------- sum_to
def sum_to(x, shape):
    """Sum ``x`` down to ``shape`` (the inverse of broadcasting ``shape`` to ``x.shape``).

    Broadcasting lines ``shape`` up with ``x.shape`` from the right, adds leading
    axes and stretches size-1 axes; each added or stretched axis is summed away,
    so ``sum_to(ones(2, 3, 4), (3, 1))`` is a (3, 1) tensor of 8s.  Autograd calls
    this on every gradient whose shape differs from its input's."""
    # BEGIN TASK 1.2: sum a broadcast gradient back to its input's shape
    from .reductions import sum
    shape = tuple(shape)
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    dims = tuple(range(lead)) + tuple(
        i + lead for i, s in enumerate(shape) if s == 1 and x.shape[i + lead] != 1)
    out = sum(x, dims, keepdim=True) if dims else x
    return out.reshape(shape) if out.shape != shape else out
    # END TASK 1.2


# ---------------------------------------------------------------- fill / copy (pure twins of fill_ and copy_)
def _fill_meta(x, *, value):
    return Meta(x.shape, x.dtype, device_of(x))


def _copy_meta(x, src):
    broadcast_shapes("copy_", tuple(src.shape), tuple(x.shape))
    if tuple(broadcast_shapes("copy_", tuple(src.shape), tuple(x.shape))) != tuple(x.shape):
        raise op_error(ShapeError, "copy_",
                       f"source of shape {tuple(src.shape)} cannot be broadcast to {tuple(x.shape)}")
    return Meta(x.shape, x.dtype, device_of(x, src))


def _fill_decomp(x, *, value):
    return dispatch("constant", value=value, shape=tuple(x.shape), dtype=x.dtype.name)


def _copy_decomp(x, src):
    from .views import expand
    if src.dtype is not x.dtype:
        src = src.to(x.dtype)
    return expand(src, x.shape) if tuple(src.shape) != tuple(x.shape) else dispatch("clone", src)


register(OpDef("fill", "pointwise", _fill_meta, decomp=_fill_decomp, impl=
               lambda x, value: np.full(x.shape, value, dtype=x.dtype),
               vjp=lambda ctx, g: (_zeros(ctx.input_metas[0], g),), scalar="{value}",
               samples=lambda rng: [SampleInput((rng.standard_normal((3, 4)),), {"value": 1.5})]))
register(OpDef("copy", "pointwise", _copy_meta, decomp=_copy_decomp, impl=
               lambda x, src: np.broadcast_to(src, x.shape).astype(x.dtype),
               vjp=lambda ctx, g: (None, g), scalar="{1}",
               samples=lambda rng: [SampleInput((rng.standard_normal((3, 4)), rng.standard_normal((4,))))]))


# ---------------------------------------------------------------- in-place ops
def _inplace(name, pure):
    register(OpDef(name, "inplace", lambda *a, **k: None, None, pure=pure))


for _name in ("add", "sub", "mul", "div", "clamp", "clamp_tensor", "relu", "neg", "exp", "pow",
              "fill", "copy"):
    _inplace(_name + "_", _name)
_inplace("t_", "transpose")
_inplace("transpose_", "transpose")
_inplace("unsqueeze_", "unsqueeze")
_inplace("squeeze_", "squeeze")


def add_(input, other, *, alpha=1):
    """In-place ``input += alpha * other``; returns ``input``."""
    from .pointwise import mul
    if alpha != 1:
        other = mul(other, alpha)
    return dispatch("add_", input, other)


def sub_(input, other, *, alpha=1):
    """In-place ``input -= alpha * other``; returns ``input``."""
    from .pointwise import mul
    if alpha != 1:
        other = mul(other, alpha)
    return dispatch("sub_", input, other)


def mul_(input, other):
    """In-place ``input *= other``; returns ``input``."""
    return dispatch("mul_", input, other)


def div_(input, other):
    """In-place ``input /= other``; returns ``input``."""
    return dispatch("div_", input, other)


def pow_(input, exponent):
    """In-place ``input **= exponent``; returns ``input``."""
    return dispatch("pow_", input, exponent)


def neg_(input):
    """In-place ``input = -input``; returns ``input``."""
    return dispatch("neg_", input)


def exp_(input):
    """In-place ``input = exp(input)``; returns ``input``."""
    return dispatch("exp_", input)


def relu_(input):
    """In-place ``input = relu(input)``; returns ``input``."""
    return dispatch("relu_", input)


def clamp_(input, min=None, max=None):
    """In-place :func:`clamp` (number or tensor bounds); returns ``input``.  As in PyTorch,
    a float bound (or a tensor bound whose dtype wins the promotion) cannot be written
    into an integer tensor, and tensor bounds must broadcast to ``input``'s shape."""
    from ..tensor import Tensor
    from .pointwise import _clamp_tensor_bounds, _int_bound
    if min is None and max is None:
        raise ValueError("clamp_: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        bounds, which = _clamp_tensor_bounds("clamp_", min, max)
        return dispatch("clamp_tensor_", input, *bounds, bounds=which)
    if not input.dtype.is_floating_point and any(isinstance(b, float) for b in (min, max)):
        raise op_error(DTypeError, "clamp_", f"result type float32 can't be cast to the desired "
                       f"output type {input.dtype.name} (a float bound), as in PyTorch")
    if input.dtype.category == 1:           # integer bounds: checked and wrapped, as in clamp
        min, max = (b if b is None else _int_bound(b, input.dtype) for b in (min, max))
    return dispatch("clamp_", input, min=None if min is None else float(min),
                    max=None if max is None else float(max))


def copy_(input, src):
    """Copy ``src`` (broadcast, cast to ``input``'s dtype) into ``input``; returns ``input``."""
    from ..tensor import Tensor
    if not isinstance(src, Tensor):
        return fill_(input, src)
    return dispatch("copy_", input, src)


def masked_fill_(input, mask, value):
    """In place: ``input[mask] = value`` (``mask`` broadcast to ``input``); returns ``input``."""
    from .pointwise import masked_fill
    return copy_(input, masked_fill(input, mask, value).expand(input.shape))


def fill_(input, value):
    """Set every element of ``input`` to ``value``; returns ``input``."""
    from ..tensor import Tensor
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise op_error(ShapeError, "fill_", f"expects a 0-d value tensor, got shape {value.shape}")
        if value._storage is input._storage:    # x.fill_(x[0, 0]): one value, read first
            value = value.clone()
        return copy_(input, value)
    if input.dtype.category == 1:           # 1000 into int8 raises; -1 into uint8 is 255
        dt.check_fits(value, input.dtype, "fill_")
        return dispatch("fill_", input, value=dt.wrap_int(int(value), input.dtype))
    cast = float if input.dtype.category == 2 else bool
    return dispatch("fill_", input, value=cast(value))


def zero_(input):
    """Set every element of ``input`` to zero; returns ``input``."""
    return fill_(input, 0)


def t_(input):
    """Transpose ``input`` in place: its shape and strides change, its memory does not."""
    if input.ndim > 2:
        raise op_error(ShapeError, "t_", f"expects a tensor with <= 2 dimensions, got shape {input.shape}")
    if input.ndim < 2:
        return input
    return dispatch("t_", input, dim0=0, dim1=1)


def transpose_(input, dim0, dim1):
    """Swap axes ``dim0`` and ``dim1`` of ``input`` in place (shape and strides only)."""
    return dispatch("transpose_", input, dim0=wrap_dim("transpose_", dim0, input.ndim),
                    dim1=wrap_dim("transpose_", dim1, input.ndim))


def unsqueeze_(input, dim):
    """Insert a size-1 axis into ``input`` in place (shape and strides only)."""
    return dispatch("unsqueeze_", input, dim=wrap_dim("unsqueeze_", dim, input.ndim + 1))


def squeeze_(input, dim=None):
    """Remove size-1 axes from ``input`` in place (shape and strides only)."""
    if dim is None:
        dims = tuple(i for i, s in enumerate(input.shape) if s == 1)
    else:
        d = wrap_dim("squeeze_", dim, input.ndim)
        dims = (d,) if input.shape[d] == 1 else ()
    return dispatch("squeeze_", input, dims=dims)


# ---------------------------------------------------------------- straight_through
# ``straight_through(new, old)``: the value of ``new``, the gradient of ``old``.
# Functionalization emits it for an in-place write autograd does not see (under
# ``no_grad``, or through ``x.detach()``): eager keeps the written tensor's
# history, so its gradient passes straight to the value before the write, and
# nothing reaches what was written.  Like ``detach`` it only steers the joint
# pass and is removed afterwards (:mod:`minaot.passes.strip_autograd`).
register(OpDef("straight_through", "other",
               lambda new, old: Meta(new.shape, new.dtype, device_of(new)),
               lambda new, old: new, vjp=lambda ctx, g: (None, g),
               doc="the value of its first operand, the gradient of its second"))


# ---------------------------------------------------------------- more in-place ops
# The in-place twins of more pointwise ops (PyTorch has each as a Tensor method).
for _name in ("sigmoid", "tanh", "sqrt", "abs", "log", "reciprocal", "log1p", "expm1", "exp2",
              "log2", "log10", "ceil", "trunc", "round", "frac", "tan", "asin", "acos", "atan",
              "sinh", "cosh", "asinh", "acosh", "atanh", "nan_to_num", "atan2", "hypot", "fmod",
              "lerp", "addcmul", "addcdiv", "logical_and", "logical_or", "logical_xor"):
    _inplace(_name + "_", _name)


def _unary_inplace(name):
    def fn(input):
        return dispatch(name + "_", input)
    fn.__name__ = fn.__qualname__ = name + "_"
    fn.__doc__ = f"In-place :func:`{name}`; returns ``input``."
    return fn


sigmoid_, tanh_, sqrt_, abs_, log_, reciprocal_ = (_unary_inplace(n) for n in (
    "sigmoid", "tanh", "sqrt", "abs", "log", "reciprocal"))
log1p_, expm1_, exp2_, log2_, log10_, tan_, asin_, acos_, atan_ = (_unary_inplace(n) for n in (
    "log1p", "expm1", "exp2", "log2", "log10", "tan", "asin", "acos", "atan"))
sinh_, cosh_, asinh_, acosh_, atanh_ = (_unary_inplace(n) for n in (
    "sinh", "cosh", "asinh", "acosh", "atanh"))


def _float_target(name, input):
    if not input.dtype.is_floating_point:
        raise op_error(DTypeError, name, f"the result is not {input.dtype.name}: it cannot be "
                       "written into the input, as in PyTorch")


def ceil_(input):
    """In-place :func:`ceil`; returns ``input`` (an integer tensor is left as it is)."""
    return input if input.dtype.category == 1 else dispatch("ceil_", input)


def trunc_(input):
    """In-place :func:`trunc`; returns ``input`` (an integer tensor is left as it is)."""
    return input if input.dtype.category == 1 else dispatch("trunc_", input)


def round_(input, *, decimals=0):
    """In-place :func:`round`; returns ``input`` (an integer tensor is left as it is)."""
    from .pointwise import round
    if input.dtype.category == 1:
        return input
    if decimals != 0:
        return copy_(input, round(input, decimals=decimals))
    return dispatch("round_", input)


def frac_(input):
    """In-place :func:`frac`; returns ``input``."""
    _float_target("frac_", input)
    return dispatch("frac_", input)


def nan_to_num_(input, nan=0.0, posinf=None, neginf=None):
    """In-place :func:`nan_to_num`; returns ``input`` (an integer tensor is left as it is)."""
    from .pointwise import _nan_to_num_values
    if not input.dtype.is_floating_point:
        return input
    return dispatch("nan_to_num_", input, **_nan_to_num_values(input, nan, posinf, neginf))


def clamp_min_(input, min):
    """In-place :func:`clamp_min`; returns ``input``."""
    return clamp_(input, min=min)


def clamp_max_(input, max):
    """In-place :func:`clamp_max`; returns ``input``."""
    return clamp_(input, max=max)


def clip_(input, min=None, max=None):
    """Another name of :func:`clamp_`."""
    return clamp_(input, min, max)


def atan2_(input, other):
    """In-place :func:`atan2`; returns ``input``."""
    _float_target("atan2_", input)
    return dispatch("atan2_", input, other)


def arctan2_(input, other):
    """Another name of :func:`atan2_`."""
    return atan2_(input, other)


def hypot_(input, other):
    """In-place :func:`hypot`; returns ``input``."""
    from .pointwise import _float_only
    _float_only("hypot_", input, other)
    return dispatch("hypot_", input, other)


def fmod_(input, other):
    """In-place :func:`fmod`; returns ``input``."""
    from .pointwise import _integral, fmod
    if _integral(input) and _integral(other):
        return copy_(input, fmod(input, other))
    return dispatch("fmod_", input, other)


def lerp_(input, end, weight):
    """In-place :func:`lerp`; returns ``input``."""
    from .pointwise import _check_lerp
    _check_lerp("lerp_", input, end, weight)
    return dispatch("lerp_", input, end, weight)


def addcmul_(input, tensor1, tensor2, *, value=1):
    """In-place :func:`addcmul`; returns ``input``."""
    from .pointwise import _addc
    return _addc("addcmul_", input, tensor1, tensor2, value)


def addcdiv_(input, tensor1, tensor2, *, value=1):
    """In-place :func:`addcdiv`; returns ``input``."""
    from .pointwise import _addc
    return _addc("addcdiv_", input, tensor1, tensor2, value)


def logical_and_(input, other):
    """In-place :func:`logical_and` (the result cast to ``input``'s dtype); returns ``input``."""
    return dispatch("logical_and_", input, other)


def logical_or_(input, other):
    """In-place :func:`logical_or` (the result cast to ``input``'s dtype); returns ``input``."""
    return dispatch("logical_or_", input, other)


def logical_xor_(input, other):
    """In-place :func:`logical_xor` (the result cast to ``input``'s dtype); returns ``input``."""
    return dispatch("logical_xor_", input, other)


# ---------------------------------------------------------------- isclose / allclose / equal
def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Elementwise ``|input - other| <= atol + rtol * |other|`` (or equal: infinities of the
    same sign; NaNs too with ``equal_nan``), a bool tensor of the broadcast shape, as
    ``torch.isclose``.  Both inputs must have the same dtype; integer and bool ones are
    compared in float64."""
    from .pointwise import abs, add, bitwise_and, bitwise_or, eq, le, ne, sub
    if input.dtype is not other.dtype:
        raise op_error(DTypeError, "isclose", f"expected both self and other to have the same "
                       f"dtype, but got {input.dtype.name} and {other.dtype.name}")
    if rtol < 0 or atol < 0:
        raise op_error(ValueError, "isclose", f"rtol and atol must be non-negative, got "
                       f"rtol={rtol}, atol={atol}")
    close = eq(input, other)
    if not input.dtype.is_floating_point:
        input, other = input.double(), other.double()
    if equal_nan:
        close = bitwise_or(close, bitwise_and(ne(input, input), ne(other, other)))
    if rtol == 0 and atol == 0:
        return close
    err = abs(sub(input, other))
    finite = bitwise_and(eq(err, err), ne(err, float("inf")))
    return bitwise_or(close, bitwise_and(finite, le(err, add(abs(other) * rtol, atol))))


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """``isclose(...).all()`` as a Python bool, as ``torch.allclose`` (eager only: a bool
    needs values)."""
    return builtins.bool(isclose(input, other, rtol, atol, equal_nan).all())


def equal(input, other):
    """True when both tensors have the same shape and equal elements (a Python bool; NaNs
    are never equal), as ``torch.equal`` (eager only)."""
    from .pointwise import eq
    if tuple(input.shape) != tuple(other.shape):
        return False
    return builtins.bool(eq(input, other).all())



# ---------------------------------------------------------------- scatter / index_add
def scatter(input, dim, index, src=None, *, value=None):
    """A copy of ``input`` with ``src[i][j]`` written to position ``index[i][j]`` along
    ``dim`` (``dim=0``: ``out[index[i][j]][j] = src[i][j]``); ``src`` may be a number (or
    use ``value=``), as ``torch.scatter``.  ``index`` (int64 or int32) has ``input``'s number of dims
    and is no larger than ``src`` in every dim, and than ``input`` outside ``dim``.

    Written with ``scatter_add``: the values and a count of writes are added into zeros,
    and where a position was written the sum divided by the count replaces the old element.
    PyTorch leaves which value wins undefined when ``index`` repeats a position; here it is
    their mean (their floor mean for integers), so equal values written twice agree.  The
    gradient: zero at the written positions for ``input``, ``gather`` of the incoming one
    (over the count) for ``src``."""
    from ..tensor import Tensor
    from .creation import full, ones_like, zeros_like
    from .pointwise import div, floor_divide, gt, where
    if src is None:
        if value is None:
            raise op_error(TypeError, "scatter", "expects src (a tensor or a number) or value=")
        src = value
    d = wrap_dim("scatter", dim, input.ndim)
    index = long_index("scatter", index)
    if not isinstance(src, Tensor):
        src = full(tuple(index.shape), src, dtype=input.dtype, device=input.device)
    elif src.dtype is not input.dtype:
        raise op_error(DTypeError, "scatter", f"expected self.dtype to be equal to src.dtype, "
                       f"got {input.dtype.name} and {src.dtype.name}")
    if src.ndim != index.ndim or any(i > s for i, s in zip(index.shape, src.shape)):
        raise op_error(ShapeError, "scatter", f"index {tuple(index.shape)} must be no larger "
                       f"than src {tuple(src.shape)} in every dimension")
    work = input.long() if input.dtype is dt.bool_ else input
    vals = src.long() if src.dtype is dt.bool_ else src
    summed = scatter_add(zeros_like(work), d, index, vals)
    count = scatter_add(zeros_like(work), d, index, ones_like(vals))
    hit = gt(count, 0)
    safe = where(hit, count, ones_like(count))
    mean = div(summed, safe) if work.dtype.is_floating_point else floor_divide(summed, safe)
    out = where(hit, mean, work)
    return out.bool() if input.dtype is dt.bool_ else out


def scatter_(input, dim, index, src=None, *, value=None):
    """In-place :func:`scatter`; returns ``input``."""
    return copy_(input, scatter(input, dim, index, src, value=value))


def index_add(input, dim, index, source, *, alpha=1):
    """A copy of ``input`` with ``alpha * source`` added to the slices at positions
    ``index`` (1-d, int64 or int32) along ``dim`` (repeated positions add up), as
    ``torch.index_add``: ``source`` has ``input``'s shape with ``len(index)`` along
    ``dim``.  A ``scatter_add`` with ``index`` broadcast over the other dims."""
    from .pointwise import mul
    from .views import _in_range, expand, reshape
    d = wrap_dim("index_add", dim, input.ndim)
    if index.ndim > 1 or index.dtype not in (dt.int64, dt.int32):
        raise op_error(IndexError, "index_add", "index must be a 1-d (or 0-d) int64 or int32 "
                       f"tensor, got shape {tuple(index.shape)} and dtype {index.dtype.name}")
    index = long_index("index_add", index)
    index = reshape(index, (-1,))
    if input.ndim == 0:                 # PyTorch: a 0-d source and a single index
        if source.ndim != 0 or index.shape[0] != 1:
            raise op_error(ShapeError, "index_add", "a 0-d input takes a 0-d source and one "
                           f"index, got source {tuple(source.shape)} and {index.shape[0]} indices")
    want = tuple(input.shape[:d]) + (index.shape[0],) + tuple(input.shape[d + 1:])
    if input.ndim and tuple(source.shape) != want:
        raise op_error(ShapeError, "index_add", f"source of shape {tuple(source.shape)} "
                       f"does not match {want}: the input's shape with index's length in "
                       f"dim {d}")
    if source.dtype is not input.dtype:
        raise op_error(DTypeError, "index_add", f"source dtype {source.dtype.name} does not "
                       f"match the input's {input.dtype.name}")
    index = _in_range(index, input.shape[d] if input.ndim else 1, d, "index_add", wrap=False)
    if alpha != 1:
        source = mul(source, alpha)
    if input.ndim == 0:
        return input + source
    along = [1] * input.ndim
    along[d] = index.shape[0]
    where_to = expand(reshape(index, tuple(along)), want)
    return scatter_add(input, d, where_to, source)


def index_add_(input, dim, index, source, *, alpha=1):
    """In-place :func:`index_add`; returns ``input``."""
    return copy_(input, index_add(input, dim, index, source, alpha=alpha))


# ---------------------------------------------------------------- masked_select / nonzero
def _refuse_tracing(what, hint):
    from .. import dispatch as _dispatch
    if _dispatch._tracer is not None:
        from ..tracing import _trace_error
        raise _trace_error(what, hint)


def masked_select(input, mask):
    """The elements of ``input`` where the bool ``mask`` is true (both broadcast), in
    order, as a 1-d tensor, as ``torch.masked_select``; differentiable in ``input``.  Its
    size depends on the mask's values, so it is eager only: while tracing it raises."""
    from .views import broadcast_tensors, getitem
    _refuse_tracing("masked_select", "its result's size depends on the mask's values; use "
                    "minaot.where(mask, x, 0)")
    if mask.dtype is not dt.bool_:
        raise op_error(DTypeError, "masked_select", f"expected a bool mask, got "
                       f"{mask.dtype.name}")
    x, m = broadcast_tensors(input, mask)
    return getitem(x, m)


def nonzero(input, *, as_tuple=False):
    """The indices of the nonzero elements of ``input``: an int64 tensor ``(count,
    input.ndim)`` in row-major order, or with ``as_tuple`` one 1-d tensor per dim, as
    ``torch.nonzero``.  Its size depends on the values, so it is eager only: while tracing
    it raises."""
    from .creation import tensor
    _refuse_tracing("nonzero", "its result's size depends on the values; use "
                    "minaot.where or masks of the input's shape")
    values = input.detach()._host()
    found = np.argwhere(values).astype(np.int64) if values.ndim else \
        np.zeros((int(values != 0), 0), dtype=np.int64)
    if as_tuple:
        if values.ndim == 0:
            return (tensor(np.zeros(int(values != 0), np.int64), device=input.device),)
        return tuple(tensor(np.ascontiguousarray(found[:, i]), device=input.device)
                     for i in range(values.ndim))
    return tensor(found, device=input.device)


def argwhere(input):
    """``nonzero(input)``: the ``(count, ndim)`` indices of the nonzero elements, as
    ``torch.argwhere`` (eager only)."""
    return nonzero(input)
