"""Neural-network ops recorded whole and run through their decomposition.

``layer_norm``, ``linear``, ``mse_loss``, ``nll_loss``, ``cross_entropy`` and
``dropout`` are *composite*: eagerly they run their decomposition (so autograd
flows through the parts and they need no VJP rule of their own), while a trace
records them as one op that ``decompose`` expands later.  The numpy ``impl``
is the reference the op-database tests compare the decomposition with.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from .._errors import DTypeError, ShapeError, op_error
from ..dispatch import dispatch
from .meta import broadcast_shapes, device_of
from .registry import Meta, OpDef, SampleInput, register


# ---------------------------------------------------------------- layer_norm
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalize over the last ``len(normalized_shape)`` axes to mean 0 and variance 1
    (biased, plus ``eps``), then scale by ``weight`` and shift by ``bias`` if given."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    if bias is not None and weight is None:
        from .creation import ones
        weight = ones(normalized_shape, dtype=input.dtype)
    params = tuple(p for p in (weight, bias) if p is not None)
    return dispatch("layer_norm", input, *params, normalized_shape=normalized_shape, eps=float(eps))


def _layer_norm_meta(x, *params, normalized_shape, eps):
    n = len(normalized_shape)
    if tuple(x.shape[x.ndim - n:]) != tuple(normalized_shape) or n > x.ndim:
        raise op_error(ShapeError, "layer_norm",
                       f"input of shape {tuple(x.shape)} does not end with normalized_shape "
                       f"{tuple(normalized_shape)}")
    for p in params:
        if tuple(p.shape) != tuple(normalized_shape):
            raise op_error(ShapeError, "layer_norm",
                           f"weight/bias of shape {tuple(p.shape)} must equal normalized_shape "
                           f"{tuple(normalized_shape)}")
    if not x.dtype.is_floating_point:
        raise op_error(DTypeError, "layer_norm", f"expected a floating point input, got {x.dtype.name}")
    return Meta(x.shape, x.dtype, device_of(x, *params))


def _layer_norm_decomp(x, *params, normalized_shape, eps):
    from .pointwise import add, mul, rsqrt, sub
    from .reductions import mean
    from .views import contiguous
    dims = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    x = contiguous(x)           # PyTorch's layer_norm result is C-contiguous (minaot.layout)
    mu = mean(x, dims, keepdim=True)
    xc = sub(x, mu)
    var = mean(mul(xc, xc), dims, keepdim=True)
    y = mul(xc, rsqrt(add(var, eps)))
    if len(params) >= 1:
        y = mul(y, params[0])
    if len(params) == 2:
        y = add(y, params[1])
    return y


def _layer_norm_impl(x, *params, normalized_shape, eps):
    dims = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    mu = x.mean(axis=dims, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=dims, keepdims=True)
    y = (x - mu) / np.sqrt(var + x.dtype.type(eps))
    if len(params) >= 1:
        y = y * params[0]
    if len(params) == 2:
        y = y + params[1]
    return y


register(OpDef("layer_norm", "other", _layer_norm_meta, _layer_norm_impl,
               decomp=_layer_norm_decomp, composite=True,
               samples=lambda rng: [
                   SampleInput((rng.standard_normal((3, 5)), rng.standard_normal((5,)),
                                rng.standard_normal((5,))), {"normalized_shape": (5,), "eps": 1e-5}),
                   SampleInput((rng.standard_normal((2, 3, 4)),), {"normalized_shape": (3, 4), "eps": 1e-5}),
               ]))


# ---------------------------------------------------------------- linear
def linear(input, weight, bias=None):
    """``input @ weight.T + bias``: ``weight`` is ``(out_features, in_features)``."""
    params = (weight,) if bias is None else (weight, bias)
    return dispatch("linear", input, *params)


def _linear_meta(x, w, *b):
    if x.ndim == 0 or w.ndim != 2 or x.shape[-1] != w.shape[1]:
        raise op_error(ShapeError, "linear",
                       f"input {tuple(x.shape)} and weight {tuple(w.shape)} do not fit "
                       "(expected input[..., in] and weight[out, in])")
    shape = tuple(x.shape[:-1]) + (w.shape[0],)
    if b:
        broadcast_shapes("linear", tuple(b[0].shape), shape)
    return Meta(shape, x.dtype, device_of(x, w, *b))


def _linear_decomp(x, w, *b):
    from .other import matmul
    from .pointwise import add
    from .views import transpose
    y = matmul(x, transpose(w, 0, 1))
    return add(y, b[0]) if b else y


register(OpDef("linear", "other", _linear_meta,
               lambda x, w, *b: x @ w.T + (b[0] if b else 0), decomp=_linear_decomp, composite=True,
               samples=lambda rng: [
                   SampleInput((rng.standard_normal((4, 3)), rng.standard_normal((5, 3)),
                                rng.standard_normal((5,)))),
                   SampleInput((rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 3)))),
               ]))


# ---------------------------------------------------------------- losses
_REDUCTIONS = ("mean", "sum", "none")


def _reduce(x, reduction):
    from .reductions import mean, sum
    if reduction == "mean":
        return mean(x)
    if reduction == "sum":
        return sum(x)
    return x


def _np_reduce(x, reduction):
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    return x


def _check_reduction(op, reduction):
    if reduction not in _REDUCTIONS:
        raise op_error(ValueError, op, f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def mse_loss(input, target, reduction="mean"):
    """The mean squared error, ``(input - target) ** 2`` reduced by ``reduction``
    (``"mean"``, ``"sum"`` or ``"none"``)."""
    _check_reduction("mse_loss", reduction)
    return dispatch("mse_loss", input, target, reduction=reduction)


def _mse_meta(a, b, *, reduction):
    shape = broadcast_shapes("mse_loss", tuple(a.shape), tuple(b.shape))
    return Meta(shape if reduction == "none" else (), a.dtype, device_of(a, b))


def _mse_decomp(a, b, *, reduction):
    from .pointwise import mul, sub
    d = sub(a, b)
    return _reduce(mul(d, d), reduction)


register(OpDef("mse_loss", "other", _mse_meta,
               lambda a, b, reduction: _np_reduce((a - b) ** 2, reduction),
               decomp=_mse_decomp, composite=True,
               samples=lambda rng: [
                   SampleInput((rng.standard_normal((3, 4)), rng.standard_normal((3, 4))), {"reduction": r})
                   for r in _REDUCTIONS]))


def nll_loss(input, target, reduction="mean"):
    """The negative log-likelihood of the ``target`` classes (``int64``, shape ``(N,)``)
    under log-probabilities ``input`` of shape ``(N, C)``, reduced by ``reduction``."""
    _check_reduction("nll_loss", reduction)
    return dispatch("nll_loss", input, target, reduction=reduction)


def _nll_meta(logp, target, *, reduction):
    if target.dtype is not dt.int64:
        raise op_error(DTypeError, "nll_loss", f"expected int64 class indices, got {target.dtype.name}")
    if logp.ndim != 2 or target.ndim != 1 or target.shape[0] != logp.shape[0]:
        raise op_error(ShapeError, "nll_loss",
                       f"expected input (N, C) and target (N,), got {tuple(logp.shape)} and {tuple(target.shape)}")
    return Meta((logp.shape[0],) if reduction == "none" else (), logp.dtype, device_of(logp, target))


def _nll_decomp(logp, target, *, reduction):
    from .other import gather
    from .pointwise import neg
    picked = gather(logp, 1, target.unsqueeze(1)).squeeze(1)
    return _reduce(neg(picked), reduction)


def _np_nll(logp, target, reduction):
    return _np_reduce(-logp[np.arange(logp.shape[0]), target], reduction)


def _class_samples(rng):
    return [SampleInput((rng.standard_normal((4, 3)), rng.integers(0, 3, (4,))), {"reduction": r})
            for r in _REDUCTIONS]


register(OpDef("nll_loss", "other", _nll_meta, _np_nll, decomp=_nll_decomp, composite=True,
               samples=_class_samples))


def cross_entropy(input, target, reduction="mean"):
    """``nll_loss(log_softmax(input, 1), target)``: cross-entropy of logits ``(N, C)``
    and ``int64`` class indices ``(N,)``."""
    _check_reduction("cross_entropy", reduction)
    return dispatch("cross_entropy", input, target, reduction=reduction)


def _ce_meta(logits, target, *, reduction):
    if target.dtype.is_floating_point:
        if tuple(target.shape) != tuple(logits.shape):
            raise op_error(ShapeError, "cross_entropy",
                           f"probability targets {tuple(target.shape)} must match input {tuple(logits.shape)}")
        return Meta((logits.shape[0],) if reduction == "none" else (), logits.dtype,
                    device_of(logits, target))
    return _nll_meta(logits, target, reduction=reduction)


def _ce_decomp(logits, target, *, reduction):
    from .pointwise import mul, neg
    from .reductions import log_softmax, sum
    logp = log_softmax(logits, 1)
    if target.dtype.is_floating_point:
        return _reduce(neg(sum(mul(logp, target), (1,))), reduction)
    return nll_loss(logp, target, reduction)


def _np_ce(logits, target, reduction):
    from .reductions import _np_log_softmax
    logp = _np_log_softmax(logits, 1)
    if target.dtype.kind == "f":
        return _np_reduce(-(logp * target).sum(axis=1), reduction)
    return _np_nll(logp, target, reduction)


register(OpDef("cross_entropy", "other", _ce_meta, _np_ce, decomp=_ce_decomp, composite=True,
               samples=lambda rng: _class_samples(rng) + [
                   SampleInput((rng.standard_normal((4, 3)), rng.dirichlet(np.ones(3), 4)), {"reduction": "mean"})]))


# ---------------------------------------------------------------- dropout
def dropout(input, p=0.5, training=True):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Returns ``input`` unchanged when ``training`` is false or ``p`` is 0.  The mask
    is drawn from the default generator (:func:`minaot.manual_seed`)."""
    if not 0.0 <= p <= 1.0:
        raise op_error(ValueError, "dropout", f"probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    return dispatch("dropout", input, p=float(p))


def _dropout_decomp(x, *, p):
    from .creation import rand
    from .pointwise import mul, where
    keep = rand(x.shape, dtype=x.dtype) >= p
    return where(keep, mul(x, 1.0 / (1.0 - p)) if p < 1.0 else mul(x, 0.0), 0.0)


def _np_dropout(x, p):
    from .. import random as _random
    keep = _random._gen(None).random(x.shape, dtype=np.float64).astype(x.dtype) >= x.dtype.type(p)
    scale = x.dtype.type(1.0 / (1.0 - p)) if p < 1.0 else x.dtype.type(0.0)
    return np.where(keep, x * scale, x.dtype.type(0))


register(OpDef("dropout", "random", lambda x, *, p: Meta(x.shape, x.dtype, device_of(x)),
               _np_dropout, decomp=_dropout_decomp, composite=True,
               samples=lambda rng: [SampleInput((rng.standard_normal((4, 5)),), {"p": 0.3})]))
