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


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """The negative log-likelihood of the ``target`` classes (``int64``, shape ``(N,)``)
    under log-probabilities ``input`` of shape ``(N, C)`` (or ``(C,)`` with a 0-d target,
    or ``(N, C, d1, ...)`` with targets ``(N, d1, ...)``), reduced by ``reduction``, as
    ``torch.nn.functional.nll_loss``: a class ``weight`` (shape ``(C,)``) scales each
    term, and targets equal to ``ignore_index`` count for nothing (``"mean"`` divides by
    the summed weights of the other targets).  Any other target outside ``[0, C)`` raises."""
    _check_reduction("nll_loss", reduction)
    input, target, restore = _as_rows("nll_loss", input, target, reduction)
    _check_targets("nll_loss", input, target, ignore_index)
    extra = () if weight is None else (weight,)
    return restore(dispatch("nll_loss", input, target, *extra, reduction=reduction,
                            ignore_index=int(ignore_index)))


def _as_rows(op, input, target, reduction):
    """PyTorch's other layouts of the class losses, as the ``(N, C)`` rows the ops take:
    ``(C,)`` with a 0-d target (one sample), and ``(N, C, d1, ..., dk)`` with targets
    ``(N, d1, ..., dk)`` (or probabilities of the input's shape), whose every position is
    a row.  Returns the rows, their targets, and what turns the ``"none"`` result back
    into the target's shape (means and sums over all positions are those of the rows)."""
    from .views import movedim, reshape
    if target.dtype is dt.uint8:        # PyTorch takes Long or Byte class indices
        target = target.long()
    probs = target.dtype.is_floating_point
    if input.ndim == 2 or input.ndim == 0:
        return input, target, _same
    if input.ndim == 1:
        if target.ndim != (1 if probs else 0):
            raise op_error(ShapeError, op, f"an unbatched input {tuple(input.shape)} takes a "
                           f"0-d target{' (or probabilities of its shape)' if not probs else ''}"
                           f", got {tuple(target.shape)}")
        rows, tgt = input.unsqueeze(0), target.unsqueeze(0)
        return rows, tgt, (lambda r: r.squeeze(0)) if reduction == "none" else _same
    n, c, rest = input.shape[0], input.shape[1], tuple(input.shape[2:])
    want = tuple(input.shape) if probs else (n,) + rest
    if tuple(target.shape) != want:
        raise op_error(ShapeError, op, f"expected target {want} for input {tuple(input.shape)} "
                       f"(N, C, d1, ...), got {tuple(target.shape)}")
    rows = reshape(movedim(input, 1, -1), -1, c)
    tgt = reshape(movedim(target, 1, -1), -1, c) if probs else reshape(target, -1)
    if reduction != "none":
        return rows, tgt, _same
    return rows, tgt, lambda r: reshape(r, (n,) + rest)


def _same(r):
    return r


def _check_targets(op, input, target, ignore_index):
    """Eagerly, on the CPU: a class index outside ``[0, C)`` that is not ``ignore_index``
    raises here, naming the op and the user's line (the gather inside would raise too, but
    naming itself).  Compiled and CUDA code raise from the gather."""
    from ..dispatch import eager_host_values
    t = eager_host_values(target)
    if t is None or t.dtype != np.int64 or input.ndim != 2:
        return
    bad = t[(t != ignore_index) & ((t < 0) | (t >= input.shape[1]))]
    if bad.size:
        raise op_error(IndexError, op, f"target {int(bad[0])} is out of bounds for "
                       f"{input.shape[1]} classes (input {tuple(input.shape)}, ignore_index "
                       f"{ignore_index})")


def _nll_meta(logp, target, *weight, reduction, ignore_index=-100, op="nll_loss"):
    if target.dtype is not dt.int64:
        raise op_error(DTypeError, op, f"expected int64 class indices, got {target.dtype.name}")
    if logp.ndim != 2 or target.ndim != 1 or target.shape[0] != logp.shape[0]:
        raise op_error(ShapeError, op,
                       f"expected input (N, C) and target (N,), got {tuple(logp.shape)} and {tuple(target.shape)}")
    _check_weight(op, logp, weight)
    return Meta((logp.shape[0],) if reduction == "none" else (), logp.dtype,
                device_of(logp, target, *weight))


def _check_weight(op, logp, weight):
    if weight and tuple(weight[0].shape) != (logp.shape[1],):
        raise op_error(ShapeError, op, f"weight {tuple(weight[0].shape)} must have one element per "
                       f"class, {logp.shape[1]}")


def _nll_terms(logp, target, weight, ignore_index):
    """(the per-row losses, the per-row weights): ``-weight[t] * logp[i, t]`` and
    ``weight[t]``, both 0 where ``t == ignore_index``."""
    from .other import gather
    from .pointwise import mul, ne, neg, where
    valid = ne(target, ignore_index)
    safe = where(valid, target, 0)                  # an ignored row reads class 0, then counts 0
    picked = gather(logp, 1, safe.unsqueeze(1)).squeeze(1)
    w = gather(weight[0], 0, safe) if weight else 1.0
    w = where(valid, w, 0.0)
    return neg(mul(picked, w)), w


def _nll_decomp(logp, target, *weight, reduction, ignore_index=-100):
    from .pointwise import div
    from .reductions import sum
    loss, w = _nll_terms(logp, target, weight, ignore_index)
    if reduction == "mean":
        return div(sum(loss), sum(w))
    return _reduce(loss, reduction)


def _np_nll_terms(logp, target, weight, ignore_index):
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    if safe.size and (safe.min() < 0 or safe.max() >= logp.shape[1]):
        bad = safe.min() if safe.min() < 0 else safe.max()
        raise IndexError(f"nll_loss: target {bad} is out of bounds for {logp.shape[1]} classes")
    w = (weight[0][safe] if weight else np.ones(safe.shape, logp.dtype)) * valid
    return -logp[np.arange(logp.shape[0]), safe] * w, w.astype(logp.dtype)


def _np_nll(logp, target, *weight, reduction, ignore_index=-100):
    loss, w = _np_nll_terms(logp, target, weight, ignore_index)
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(loss.sum() / w.sum(), logp.dtype)
    return _np_reduce(loss, reduction)


def _class_samples(rng):
    out = [SampleInput((rng.standard_normal((4, 3)), rng.integers(0, 3, (4,))), {"reduction": r})
           for r in _REDUCTIONS]
    # a class weight, and a target ignored (ignore_index), each reduction
    t = np.array([0, 2, 1, 2])
    out += [SampleInput((rng.standard_normal((4, 3)), t, rng.uniform(0.5, 2.0, (3,))),
                        {"reduction": r, "ignore_index": 1}) for r in _REDUCTIONS]
    return out


register(OpDef("nll_loss", "other", _nll_meta, _np_nll, decomp=_nll_decomp, composite=True,
               samples=_class_samples))


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Cross-entropy of logits ``(N, C)`` against ``int64`` class indices ``(N,)`` or class
    probabilities ``(N, C)``, as ``torch.nn.functional.cross_entropy`` (which also takes
    ``(C,)`` logits with a 0-d target, and ``(N, C, d1, ...)`` with targets
    ``(N, d1, ...)`` or probabilities of the logits' shape):
    ``nll_loss(log_softmax(input, 1), target, weight, ignore_index)`` for indices, and
    ``label_smoothing`` mixes in the uniform distribution over the classes."""
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise op_error(ValueError, "cross_entropy",
                       f"label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    input, target, restore = _as_rows("cross_entropy", input, target, reduction)
    _check_targets("cross_entropy", input, target, ignore_index)
    extra = () if weight is None else (weight,)
    return restore(dispatch("cross_entropy", input, target, *extra, reduction=reduction,
                            ignore_index=int(ignore_index),
                            label_smoothing=float(label_smoothing)))


def _ce_meta(logits, target, *weight, reduction, ignore_index=-100, label_smoothing=0.0):
    if target.dtype.is_floating_point:
        if tuple(target.shape) != tuple(logits.shape):
            raise op_error(ShapeError, "cross_entropy",
                           f"probability targets {tuple(target.shape)} must match input {tuple(logits.shape)}")
        _check_weight("cross_entropy", logits, weight)
        return Meta((logits.shape[0],) if reduction == "none" else (), logits.dtype,
                    device_of(logits, target, *weight))
    return _nll_meta(logits, target, *weight, reduction=reduction, op="cross_entropy")


def _ce_decomp(logits, target, *weight, reduction, ignore_index=-100, label_smoothing=0.0):
    """PyTorch's formula: with smoothing ``e`` over ``C`` classes, index targets give
    ``(1 - e) * nll + e / C * smooth``, ``smooth`` the (weighted) sum of ``-logp`` over
    the classes (0 on ignored rows, normalised as the nll part is); probability targets
    are mixed with the uniform distribution, ``target * (1 - e) + e / C``."""
    from .pointwise import add, div, mul, ne, neg, where
    from .reductions import log_softmax, sum
    logp = log_softmax(logits, 1)
    e, classes = label_smoothing, logits.shape[1]
    if target.dtype.is_floating_point:
        if e:
            target = add(mul(target, 1.0 - e), e / classes)
        terms = mul(logp, target)
        if weight:
            terms = mul(terms, weight[0])
        return _reduce(neg(sum(terms, (1,))), reduction)
    loss, w = _nll_terms(logp, target, weight, ignore_index)
    if e:
        smooth = neg(sum(mul(logp, weight[0]) if weight else logp, (1,)))
        smooth = where(ne(target, ignore_index), smooth, 0.0)
        loss = add(mul(loss, 1.0 - e), mul(smooth, e / classes))
    if reduction == "mean":
        return div(sum(loss), sum(w))
    return _reduce(loss, reduction)


def _np_ce(logits, target, *weight, reduction, ignore_index=-100, label_smoothing=0.0):
    from .reductions import _np_log_softmax
    logp = _np_log_softmax(logits, 1)
    e, classes = label_smoothing, logits.shape[1]
    if target.dtype.kind == "f":
        target = target * (1 - e) + e / classes
        terms = logp * target * (weight[0] if weight else 1)
        return _np_reduce(-terms.sum(axis=1), reduction)
    loss, w = _np_nll_terms(logp, target, weight, ignore_index)
    if e:
        smooth = -(logp * (weight[0] if weight else 1)).sum(axis=1) * (target != ignore_index)
        loss = (1 - e) * loss + e / classes * smooth
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(loss.sum() / w.sum(), logits.dtype)
    return _np_reduce(loss, reduction)


def _ce_samples(rng):
    t = np.array([0, 2, 1, 2])
    return _class_samples(rng) + [
        SampleInput((rng.standard_normal((4, 3)), rng.dirichlet(np.ones(3), 4)), {"reduction": "mean"}),
        SampleInput((rng.standard_normal((4, 3)), t), {"reduction": "mean", "label_smoothing": 0.2}),
        SampleInput((rng.standard_normal((4, 3)), t, rng.uniform(0.5, 2.0, (3,))),
                    {"reduction": "sum", "ignore_index": 2, "label_smoothing": 0.1}),
        SampleInput((rng.standard_normal((4, 3)), rng.dirichlet(np.ones(3), 4),
                     rng.uniform(0.5, 2.0, (3,))), {"reduction": "none", "label_smoothing": 0.3})]


register(OpDef("cross_entropy", "other", _ce_meta, _np_ce, decomp=_ce_decomp, composite=True,
               samples=_ce_samples))


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


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels: each ``(n, c)`` plane of an ``(N, C, H, W)`` input with
    probability ``p``, the rest scaled by ``1 / (1 - p)``, as
    ``torch.nn.functional.dropout2d``.  Like PyTorch, a 3-d input is taken as ``(N, C, L)``
    (each ``input[n]`` dropped whole) with a warning, and other ranks warn too (each
    ``input[i]`` dropped whole).  The mask comes from the default generator;
    ``training=False`` or ``p=0`` return ``input``."""
    import warnings

    from .creation import rand
    from .pointwise import mul, where
    if not 0.0 <= p <= 1.0:
        raise op_error(ValueError, "dropout2d", f"dropout probability has to be between 0 and 1, "
                       f"but got {p}")
    if input.ndim not in (3, 4):
        warnings.warn(f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is "
                      "deprecated and will result in an error in a future release. To retain "
                      "the behavior and silence this warning, please use dropout instead. Note "
                      "that dropout2d exists to provide channel-wise dropout on inputs with 2 "
                      "spatial dimensions, a channel dimension, and an optional batch dimension "
                      "(i.e. 3D or 4D inputs).", stacklevel=2)
    elif input.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
                      "1D dropout behavior is desired - input is interpreted as shape (N, C, L), "
                      "where C is the channel dim. This behavior will change in a future release "
                      "to interpret the input as one without a batch dimension, i.e. shape (C, H, "
                      "W). To maintain the 1D channel-wise dropout behavior, please switch to "
                      "using dropout1d instead.", stacklevel=2)
    if not training or p == 0.0:
        return input
    if not input.dtype.is_floating_point:
        raise op_error(DTypeError, "dropout2d", f"result type Float can't be cast to the "
                       f"desired output type {input.dtype.name}")
    # PyTorch's feature dropout on input (4-d) or input.unsqueeze(0): one draw per plane
    shape = tuple(input.shape[:2]) if input.ndim == 4 else tuple(input.shape[:1])
    mask_shape = shape + (1,) * (input.ndim - len(shape))
    keep = rand(mask_shape, dtype=input.dtype, device=input.device) >= p
    out = where(keep, mul(input, 1.0 / (1.0 - p)) if p < 1.0 else mul(input, 0.0), 0.0)
    if inplace:
        input.copy_(out)
        return input
    return out
