"""More of ``torch.nn.functional``: activations, distances and losses, as composite ops.

Each op here is *composite* (see :mod:`minaot.ops.nn`): eagerly it runs its
decomposition into existing ops (``where``, ``exp``, ``log``, ``sigmoid``, ``clamp``,
``norm``, ``index_select`` ...), so autograd flows through the parts; a trace
records it whole and ``decompose`` expands it.  The numpy ``impl`` is an
independent reference the op-database tests compare the decomposition with.

Kinks follow PyTorch's backward formulas, which the decompositions get by choosing
the branch of each ``where``: ``leaky_relu``/``elu`` take the negative side's
slope at 0, ``hardtanh`` gives 0 on its bounds, ``hardswish`` ``x/3 + 1/2`` on
``(-3, 3)`` (0 at -3, 1 at 3), ``softplus`` 1/2 at 0.  ``softplus`` and ``logsigmoid`` are the
stable ``max(z, 0) + log(1 + exp(-|z|))`` written with two ``where`` (no ``log1p``:
for ``|z|`` beyond ~37 in float64 the tail ``log(1 + exp(-|z|))`` rounds to 0, an
absolute error below 1e-16).
"""

from __future__ import annotations

import numpy as np

from .._errors import DTypeError, ShapeError, op_error
from ..autograd.function import Function
from ..dispatch import dispatch, eager_host_values
from .meta import broadcast_shapes, device_of, wrap_dim
from .nn import _check_reduction, _np_reduce, _reduce
from .registry import Meta, OpDef, SampleInput, register

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _float_meta(op):
    def meta(x, **attrs):
        if not x.dtype.is_floating_point:
            raise op_error(DTypeError, op, f"expected a floating point input, got {x.dtype.name}")
        return Meta(x.shape, x.dtype, device_of(x))
    return meta


def _activation(name, decomp, impl, kwargs_list=({},), low=-3.0, high=3.0):
    """Register a one-input activation ``name`` whose samples are uniform in [low, high]."""
    register(OpDef(name, "other", _float_meta(name), impl, decomp=decomp, composite=True,
                   samples=lambda rng: [SampleInput((rng.uniform(low, high, (3, 4)),), dict(kw))
                                        for kw in kwargs_list]))


def _host(t):
    """``t``'s numpy values when they are free to read (eagerly, on the CPU), else None;
    unlike :func:`eager_host_values` it also reads a tensor that requires grad."""
    from ..dispatch import tracing
    if tracing():
        return None
    return eager_host_values(t.detach() if getattr(t, "requires_grad", False) else t)


def _inplace(input, out, inplace):
    """``inplace=True``: write ``out`` into ``input`` (as PyTorch's ``relu_`` and friends)."""
    if not inplace:
        return out
    input.copy_(out)
    return input


# ---------------------------------------------------------------- activations
def silu(input, inplace=False):
    """``x * sigmoid(x)`` (the swish), as ``torch.nn.functional.silu``."""
    return _inplace(input, dispatch("silu", input), inplace)


def _silu_decomp(x):
    from .pointwise import sigmoid
    return x * sigmoid(x)


_activation("silu", _silu_decomp, lambda x: x / (1 + np.exp(-x)))


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """``x`` where ``x > 0``, else ``negative_slope * x``; the gradient at 0 is
    ``negative_slope``, as in PyTorch."""
    return _inplace(input, dispatch("leaky_relu", input, negative_slope=float(negative_slope)),
                    inplace)


def _leaky_relu_decomp(x, *, negative_slope):
    from .pointwise import gt, where
    return where(gt(x, 0), x, x * negative_slope)


_activation("leaky_relu", _leaky_relu_decomp,
            lambda x, negative_slope: np.where(x > 0, x, x * negative_slope),
            [{"negative_slope": 0.01}, {"negative_slope": -0.3}])


def elu(input, alpha=1.0, inplace=False):
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)`` (gradient ``alpha`` at 0)."""
    return _inplace(input, dispatch("elu", input, alpha=float(alpha), scale=1.0, input_scale=1.0),
                    inplace)


def selu(input, inplace=False):
    """``scale * elu(x, alpha)`` with PyTorch's constants ``alpha = 1.6733``,
    ``scale = 1.0507``."""
    return _inplace(input, dispatch("elu", input, alpha=_SELU_ALPHA, scale=_SELU_SCALE,
                                    input_scale=1.0), inplace)


def celu(input, alpha=1.0, inplace=False):
    """``x`` where ``x > 0``, else ``alpha * (exp(x / alpha) - 1)`` (gradient 1 at 0)."""
    if alpha == 0:
        raise op_error(ValueError, "celu", "ZeroDivisionError: alpha cannot be 0 for CELU")
    return _inplace(input, dispatch("elu", input, alpha=float(alpha), scale=1.0,
                                    input_scale=1.0 / float(alpha)), inplace)


def _elu_decomp(x, *, alpha, scale, input_scale):
    """PyTorch's ``elu`` kernel, which also gives ``selu`` and ``celu``:
    ``scale * x`` for ``x > 0``, else ``scale * alpha * (exp(x * input_scale) - 1)``."""
    from .pointwise import exp, gt, where
    neg = (exp(x * input_scale) - 1.0) * (alpha * scale)
    return where(gt(x, 0), x * scale, neg)


def _np_elu(x, alpha, scale, input_scale):
    return np.where(x > 0, scale * x, scale * alpha * np.expm1(np.minimum(x, 0) * input_scale))


_activation("elu", _elu_decomp, _np_elu,
            [{"alpha": 1.0, "scale": 1.0, "input_scale": 1.0},
             {"alpha": _SELU_ALPHA, "scale": _SELU_SCALE, "input_scale": 1.0},
             {"alpha": 2.0, "scale": 1.0, "input_scale": 0.5}])


def _softplus_core(z):
    """``log(1 + exp(z))`` stably: ``max(z, 0) + log(1 + exp(-|z|))``, with ``max`` and
    ``-|z|`` written as ``where`` so that the gradient at 0 is exactly 1/2."""
    from .pointwise import exp, gt, log, where
    pos = gt(z, 0)
    zp = where(pos, z, 0.0)         # max(z, 0)
    zn = where(pos, 0.0, z)         # min(z, 0)
    return zp + log(exp(zn - zp) + 1.0)


def softplus(input, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta * x)) / beta``, and ``x`` itself where ``beta * x > threshold``,
    as ``torch.nn.functional.softplus``."""
    return dispatch("softplus", input, beta=float(beta), threshold=float(threshold))


def _softplus_decomp(x, *, beta, threshold):
    from .pointwise import gt, where
    z = x * beta
    return where(gt(z, threshold), x, _softplus_core(z) * (1.0 / beta))


_activation("softplus", _softplus_decomp,
            lambda x, beta, threshold: np.where(x * beta > threshold, x,
                                                np.logaddexp(0, x * beta) / beta),
            [{"beta": 1.0, "threshold": 20.0}, {"beta": 2.0, "threshold": 3.0}], -4.0, 4.0)


def logsigmoid(input):
    """``log(sigmoid(x)) = -softplus(-x)``, computed stably."""
    return dispatch("logsigmoid", input)


def _logsigmoid_decomp(x):
    return -_softplus_core(-x)


_activation("logsigmoid", _logsigmoid_decomp, lambda x: -np.logaddexp(0, -x), low=-6, high=6)


def mish(input, inplace=False):
    """``x * tanh(softplus(x))``."""
    return _inplace(input, dispatch("mish", input), inplace)


def _mish_decomp(x):
    from .pointwise import tanh
    return x * tanh(_softplus_core(x))


_activation("mish", _mish_decomp, lambda x: x * np.tanh(np.logaddexp(0, x)))


def softsign(input):
    """``x / (1 + |x|)``."""
    return dispatch("softsign", input)


def _softsign_decomp(x):
    from .pointwise import abs
    return x / (abs(x) + 1.0)


_activation("softsign", _softsign_decomp, lambda x: x / (1 + np.abs(x)))


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """``x`` limited to ``[min_val, max_val]``; the gradient is 0 on and outside the
    bounds, as PyTorch's ``hardtanh_backward``."""
    if min_val > max_val:
        raise op_error(ValueError, "hardtanh", "min_val cannot be greater than max_val")
    return _inplace(input, dispatch("hardtanh", input, min_val=float(min_val),
                                    max_val=float(max_val)), inplace)


def relu6(input, inplace=False):
    """``hardtanh(x, 0, 6)``, as PyTorch defines it (gradient 0 at 0 and at 6)."""
    return hardtanh(input, 0.0, 6.0, inplace)


def _hardtanh_decomp(x, *, min_val, max_val):
    from .pointwise import ge, le, where
    return where(le(x, min_val), min_val, where(ge(x, max_val), max_val, x))


_activation("hardtanh", _hardtanh_decomp,
            lambda x, min_val, max_val: np.clip(x, min_val, max_val),
            [{"min_val": -1.0, "max_val": 1.0}, {"min_val": 0.0, "max_val": 6.0}], -2.0, 7.0)


def hardsigmoid(input, inplace=False):
    """``relu6(x + 3) / 6``; the gradient is ``1/6`` strictly inside ``(-3, 3)``, else 0."""
    return _inplace(input, dispatch("hardsigmoid", input), inplace)


def _hardsigmoid_decomp(x):
    from .pointwise import ge, le, where
    return where(le(x, -3.0), 0.0, where(ge(x, 3.0), 1.0, x * (1.0 / 6.0) + 0.5))


_activation("hardsigmoid", _hardsigmoid_decomp, lambda x: np.clip(x + 3, 0, 6) / 6, low=-5, high=5)


def hardswish(input, inplace=False):
    """``x * relu6(x + 3) / 6``; PyTorch's gradient: 0 up to -3, ``x/3 + 1/2`` on
    ``(-3, 3)``, 1 from 3 on."""
    return _inplace(input, dispatch("hardswish", input), inplace)


def _hardswish_decomp(x):
    from .pointwise import le, lt, where
    return where(le(x, -3.0), 0.0, where(lt(x, 3.0), x * (x + 3.0) * (1.0 / 6.0), x))


_activation("hardswish", _hardswish_decomp, lambda x: x * np.clip(x + 3, 0, 6) / 6, low=-5, high=5)


def softmin(input, dim, dtype=None):
    """``softmax(-x, dim)``."""
    from .reductions import softmax
    return softmax(-input, dim, dtype)


def glu(input, dim=-1):
    """The gated linear unit: ``a * sigmoid(b)`` where ``a``, ``b`` are the two halves of
    ``input`` along ``dim`` (whose size must be even)."""
    if input.ndim == 0:
        raise op_error(ShapeError, "glu", "glu does not support scalars because halving size "
                       "must be even")
    return dispatch("glu", input, dim=wrap_dim("glu", dim, input.ndim))


def _glu_meta(x, *, dim):
    if x.shape[dim] % 2:
        raise op_error(ShapeError, "glu", f"Halving dimension must be even, but dimension {dim} "
                       f"is size {x.shape[dim]}")
    shape = list(x.shape)
    shape[dim] //= 2
    return Meta(tuple(shape), x.dtype, device_of(x))


def _glu_decomp(x, *, dim):
    from .pointwise import sigmoid
    from .views import split
    a, b = split(x, x.shape[dim] // 2, dim)
    return a * sigmoid(b)


def _np_glu(x, dim):
    a, b = np.split(x, 2, axis=dim)
    return a / (1 + np.exp(-b))


register(OpDef("glu", "other", _glu_meta, _np_glu, decomp=_glu_decomp, composite=True,
               samples=lambda rng: [SampleInput((rng.standard_normal((3, 4)),), {"dim": 1}),
                                    SampleInput((rng.standard_normal((4, 3, 2)),), {"dim": 0})]))


# ---------------------------------------------------------------- distances
def normalize(input, p=2.0, dim=1, eps=1e-12):
    """``input / max(norm_p(input, dim), eps)``, as ``torch.nn.functional.normalize``."""
    return dispatch("normalize", input, p=float(p), dim=wrap_dim("normalize", dim, input.ndim),
                    eps=float(eps))


def _normalize_decomp(x, *, p, dim, eps):
    from .pointwise import clamp
    from .reductions import norm
    return x / clamp(norm(x, p, dim, keepdim=True), min=eps)


def _np_normalize(x, p, dim, eps):
    n = (np.abs(x) ** p).sum(axis=dim, keepdims=True) ** (1 / p)
    return x / np.maximum(n, eps)


register(OpDef("normalize", "other", lambda x, *, p, dim, eps: _float_meta("normalize")(x),
               _np_normalize, decomp=_normalize_decomp, composite=True,
               samples=lambda rng: [
                   SampleInput((rng.standard_normal((3, 4)),), {"p": 2.0, "dim": 1, "eps": 1e-12}),
                   SampleInput((rng.standard_normal((3, 4)),), {"p": 1.0, "dim": 0, "eps": 1e-12}),
                   SampleInput((rng.standard_normal((2, 3)),), {"p": 3.0, "dim": 1, "eps": 1e-12})]))


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """``sum(x1 / max(|x1|, eps) * x2 / max(|x2|, eps), dim)`` (inputs broadcast), as
    PyTorch computes it: each norm is clamped at ``eps`` outside autograd, so the
    gradient flows through the norm as if it were not clamped."""
    shape = broadcast_shapes("cosine_similarity", tuple(x1.shape), tuple(x2.shape))
    return dispatch("cosine_similarity", x1, x2, dim=wrap_dim("cosine_similarity", dim, len(shape)),
                    eps=float(eps))


def _cos_meta(a, b, *, dim, eps):
    shape = broadcast_shapes("cosine_similarity", tuple(a.shape), tuple(b.shape))
    return Meta(shape[:dim] + shape[dim + 1:], a.dtype, device_of(a, b))


def _cos_decomp(a, b, *, dim, eps):
    from .pointwise import clamp
    from .reductions import norm, sum

    def unit(x):
        n = norm(x, 2, dim, keepdim=True)
        return x / (n + (clamp(n, min=eps) - n).detach())     # clamp_min_ under no_grad
    shape = broadcast_shapes("cosine_similarity", tuple(a.shape), tuple(b.shape))
    return sum(unit(a.expand(shape)) * unit(b.expand(shape)), dim)


def _np_cos(a, b, dim, eps):
    a, b = np.broadcast_arrays(a, b)
    na = np.maximum(np.sqrt((a * a).sum(dim, keepdims=True)), eps)
    nb = np.maximum(np.sqrt((b * b).sum(dim, keepdims=True)), eps)
    return (a / na * b / nb).sum(dim)


register(OpDef("cosine_similarity", "other", _cos_meta, _np_cos, decomp=_cos_decomp,
               composite=True,
               samples=lambda rng: [
                   SampleInput((rng.standard_normal((3, 4)), rng.standard_normal((3, 4))),
                               {"dim": 1, "eps": 1e-8}),
                   SampleInput((rng.standard_normal((3, 4)), rng.standard_normal((4,))),
                               {"dim": 1, "eps": 1e-8}),
                   SampleInput((rng.standard_normal((3, 4)), rng.standard_normal((3, 1))),
                               {"dim": 0, "eps": 1e-8})]))


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """``norm_p(x1 - x2 + eps)`` over the last dimension, as
    ``torch.nn.functional.pairwise_distance``."""
    return dispatch("pairwise_distance", x1, x2, p=float(p), eps=float(eps), keepdim=bool(keepdim))


def _pd_meta(a, b, *, p, eps, keepdim):
    shape = broadcast_shapes("pairwise_distance", tuple(a.shape), tuple(b.shape))
    if not shape:
        return Meta((), a.dtype, device_of(a, b))
    return Meta(shape[:-1] + ((1,) if keepdim else ()), a.dtype, device_of(a, b))


def _pd_decomp(a, b, *, p, eps, keepdim):
    from .reductions import norm
    d = a - b + eps
    return norm(d, p, -1 if d.ndim else None, keepdim=keepdim and d.ndim > 0)


def _np_pd(a, b, p, eps, keepdim):
    d = np.abs(a - b + eps)
    if d.ndim == 0:
        return d
    return (d ** p).sum(-1, keepdims=keepdim) ** (1 / p)


register(OpDef("pairwise_distance", "other", _pd_meta, _np_pd, decomp=_pd_decomp, composite=True,
               samples=lambda rng: [
                   SampleInput((rng.standard_normal((3, 4)), rng.standard_normal((3, 4))),
                               {"p": 2.0, "eps": 1e-6, "keepdim": False}),
                   SampleInput((rng.standard_normal((3, 4)), rng.standard_normal((4,))),
                               {"p": 1.5, "eps": 1e-6, "keepdim": True})]))


# ---------------------------------------------------------------- losses
def _pair_meta(op):
    def meta(a, b, *weight, reduction, **attrs):
        shape = broadcast_shapes(op, tuple(a.shape), tuple(b.shape))
        if not a.dtype.is_floating_point:
            raise op_error(DTypeError, op, f"expected a floating point input, got {a.dtype.name}")
        for w in weight:
            shape = broadcast_shapes(op, tuple(w.shape), shape)
        return Meta(shape if reduction == "none" else (), a.dtype, device_of(a, b, *weight))
    return meta


def _pair_samples(**kw):
    def samples(rng):
        return [SampleInput((rng.standard_normal((3, 4)), rng.standard_normal((3, 4))),
                            dict(kw, reduction=r)) for r in ("mean", "sum", "none")]
    return samples


def l1_loss(input, target, reduction="mean"):
    """``|input - target|`` reduced by ``reduction`` (gradient 0 where they are equal)."""
    _check_reduction("l1_loss", reduction)
    return dispatch("l1_loss", input, target, reduction=reduction)


def _l1_decomp(a, b, *, reduction):
    from .pointwise import abs
    return _reduce(abs(a - b), reduction)


register(OpDef("l1_loss", "other", _pair_meta("l1_loss"),
               lambda a, b, reduction: _np_reduce(np.abs(a - b), reduction),
               decomp=_l1_decomp, composite=True, samples=_pair_samples()))


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """``0.5 * d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 * beta`` (``d = input -
    target``), reduced; ``beta = 0`` is ``l1_loss``, as in PyTorch."""
    _check_reduction("smooth_l1_loss", reduction)
    if beta < 0:
        raise op_error(ValueError, "smooth_l1_loss", "smooth_l1_loss does not support negative "
                       "values for beta.")
    if beta == 0:
        return l1_loss(input, target, reduction)
    return dispatch("smooth_l1_loss", input, target, reduction=reduction, beta=float(beta))


def _smooth_l1_decomp(a, b, *, reduction, beta):
    from .pointwise import abs, lt, where
    d = a - b
    ad = abs(d)
    return _reduce(where(lt(ad, beta), d * d * (0.5 / beta), ad - 0.5 * beta), reduction)


def _np_smooth_l1(a, b, reduction, beta):
    d = np.abs(a - b)
    return _np_reduce(np.where(d < beta, 0.5 * d ** 2 / beta, d - 0.5 * beta), reduction)


register(OpDef("smooth_l1_loss", "other", _pair_meta("smooth_l1_loss"), _np_smooth_l1,
               decomp=_smooth_l1_decomp, composite=True, samples=_pair_samples(beta=0.7)))


def huber_loss(input, target, reduction="mean", delta=1.0):
    """``0.5 * d**2`` where ``|d| < delta``, else ``delta * (|d| - 0.5 * delta)``, reduced."""
    _check_reduction("huber_loss", reduction)
    if delta <= 0:
        raise op_error(ValueError, "huber_loss", "huber_loss does not support non-positive "
                       "values for delta.")
    return dispatch("huber_loss", input, target, reduction=reduction, delta=float(delta))


def _huber_decomp(a, b, *, reduction, delta):
    from .pointwise import abs, lt, where
    d = a - b
    ad = abs(d)
    return _reduce(where(lt(ad, delta), d * d * 0.5, (ad - 0.5 * delta) * delta), reduction)


def _np_huber(a, b, reduction, delta):
    d = np.abs(a - b)
    return _np_reduce(np.where(d < delta, 0.5 * d ** 2, delta * (d - 0.5 * delta)), reduction)


register(OpDef("huber_loss", "other", _pair_meta("huber_loss"), _np_huber,
               decomp=_huber_decomp, composite=True, samples=_pair_samples(delta=0.8)))


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """``-weight * (t * log(x) + (1 - t) * log(1 - x))`` for probabilities ``x`` in
    ``[0, 1]``, each log clamped at -100 as in PyTorch, reduced.  ``target`` must have
    ``input``'s shape; ``weight`` broadcasts to it.  Eagerly on the CPU an input or a target
    outside ``[0, 1]`` raises, as in PyTorch.  The gradients are PyTorch's backward
    formulas, not those of the clamped logs: ``g * (x - t) / max((1 - x) x, 1e-12)`` for
    the input (so ``±1e12`` at an input of exactly 0 or 1 that disagrees with its target),
    ``-g * logit(x)`` for the target (infinite at 0 and 1)."""
    _check_reduction("binary_cross_entropy", reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise op_error(ValueError, "binary_cross_entropy",
                       f"Using a target size ({tuple(target.shape)}) that is different to the "
                       f"input size ({tuple(input.shape)}) is deprecated. Please ensure they have "
                       "the same size.")
    for name, t in (("input", input), ("target", target)):
        v = _host(t)
        if v is not None and v.size and not ((v >= 0) & (v <= 1)).all():
            raise op_error(RuntimeError, "binary_cross_entropy",
                           f"all elements of {name} should be between 0 and 1")
    extra = () if weight is None else (weight,)
    return dispatch("binary_cross_entropy", input, target, *extra, reduction=reduction)


def _clamped_log(log_fn, arg, ok, neutral):
    """``max(log_fn(arg), -100)`` where ``ok``, else -100, never taking the log of 0 (-inf,
    or worse in the float32 approximation of compiled code)."""
    from .pointwise import clamp, where
    return clamp(where(ok, log_fn(where(ok, arg, neutral)), -100.0), min=-100.0)


class _BinaryCrossEntropy(Function):
    """The unreduced loss, with PyTorch's backward (``binary_cross_entropy_backward`` and
    ``binary_cross_entropy_target_backward``): differentiating the clamped logs instead
    would give 0 at an input of exactly 0 or 1.  A Function runs so eagerly, and inside the
    decomposition it is traced into the graph with its backward."""

    @staticmethod
    def forward(ctx, x, t):
        from .pointwise import log, log1p
        ctx.save_for_backward(x, t)
        # PyTorch's: (t - 1) * max(log1p(-x), -100) - t * max(log(x), -100)
        return (t - 1.0) * _clamped_log(log1p, -x, x < 1, 0.0) \
            - t * _clamped_log(log, x, x > 0, 1.0)

    @staticmethod
    def backward(ctx, g):
        from .pointwise import clamp, log
        x, t = ctx.saved_tensors
        gx = g * (x - t) / clamp((1.0 - x) * x, min=1e-12)
        gt = -log(x / (1.0 - x)) * g            # -logit(x)
        return gx, gt


def _bce_decomp(x, t, *weight, reduction):
    loss = _BinaryCrossEntropy.apply(x, t)
    if weight:
        loss = loss * weight[0]
    return _reduce(loss, reduction)


def _np_bce(x, t, *weight, reduction):
    with np.errstate(divide="ignore"):
        loss = (t - 1) * np.maximum(np.log1p(-x), -100) - t * np.maximum(np.log(x), -100)
    return _np_reduce(loss * (weight[0] if weight else 1), reduction)


def _bce_samples(rng):
    out = [SampleInput((rng.uniform(0.05, 0.95, (3, 4)), rng.uniform(0, 1, (3, 4))),
                       {"reduction": r}) for r in ("mean", "sum", "none")]
    out.append(SampleInput((rng.uniform(0.05, 0.95, (3, 4)), rng.integers(0, 2, (3, 4)) * 1.0,
                            rng.uniform(0.5, 2, (4,))), {"reduction": "mean"}))
    return out


register(OpDef("binary_cross_entropy", "other", _pair_meta("binary_cross_entropy"), _np_bce,
               decomp=_bce_decomp, composite=True, samples=_bce_samples))


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean",
                                     pos_weight=None):
    """``binary_cross_entropy(sigmoid(input), target)`` computed stably from the logits,
    PyTorch's formula ``(1 - t) * x - lw * logsigmoid(x)`` with ``lw = (pos_weight - 1) * t
    + 1`` (1 without ``pos_weight``), times ``weight``, reduced.  ``pos_weight`` (one per
    class, the last axis) and ``weight`` broadcast."""
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise op_error(ValueError, "binary_cross_entropy_with_logits",
                       f"Target size ({tuple(target.shape)}) must be the same as input size "
                       f"({tuple(input.shape)})")
    extra = tuple(a for a in (weight, pos_weight) if a is not None)
    return dispatch("binary_cross_entropy_with_logits", input, target, *extra,
                    reduction=reduction, has_weight=weight is not None,
                    has_pos_weight=pos_weight is not None)


def _bcel_decomp(x, t, *extra, reduction, has_weight=False, has_pos_weight=False):
    weight = extra[0] if has_weight else None
    pos_weight = extra[-1] if has_pos_weight else None
    lsig = -_softplus_core(-x)
    if pos_weight is not None:
        lsig = lsig * ((pos_weight - 1.0) * t + 1.0)
    loss = (1.0 - t) * x - lsig
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _np_bcel(x, t, *extra, reduction, has_weight=False, has_pos_weight=False):
    weight = extra[0] if has_weight else 1
    pw = extra[-1] if has_pos_weight else 1
    p = 1 / (1 + np.exp(-x))
    loss = -(pw * t * np.log(p) + (1 - t) * np.log(1 - p)) * weight
    return _np_reduce(loss, reduction)


def _bcel_samples(rng):
    out = [SampleInput((rng.standard_normal((3, 4)), rng.uniform(0, 1, (3, 4))),
                       {"reduction": r}) for r in ("mean", "sum", "none")]
    out.append(SampleInput((rng.standard_normal((3, 4)), rng.integers(0, 2, (3, 4)) * 1.0,
                            rng.uniform(0.5, 2, (3, 1)), rng.uniform(0.5, 3, (4,))),
                           {"reduction": "mean", "has_weight": True, "has_pos_weight": True}))
    out.append(SampleInput((rng.standard_normal((3, 4)), rng.uniform(0, 1, (3, 4)),
                            rng.uniform(0.5, 3, (4,))),
                           {"reduction": "none", "has_pos_weight": True}))
    return out


register(OpDef("binary_cross_entropy_with_logits", "other",
               _pair_meta("binary_cross_entropy_with_logits"), _np_bcel, decomp=_bcel_decomp,
               composite=True, samples=_bcel_samples))


_KL_REDUCTIONS = ("none", "batchmean", "sum", "mean")


def kl_div(input, target, reduction="mean", log_target=False):
    """The pointwise KL divergence of log-probabilities ``input`` from ``target``:
    ``target * (log(target) - input)`` (0 where ``target`` is 0), or with ``log_target``
    ``exp(target) * (target - input)``; reduced by ``"mean"`` (over every element, as
    PyTorch does), ``"batchmean"`` (the sum over the batch size ``input.shape[0]``, the
    true KL divergence), ``"sum"`` or ``"none"``."""
    if reduction not in _KL_REDUCTIONS:
        raise op_error(ValueError, "kl_div", f"reduction must be one of {_KL_REDUCTIONS}, "
                       f"got {reduction!r}")
    return dispatch("kl_div", input, target, reduction=reduction, log_target=bool(log_target))


def _kl_decomp(x, t, *, reduction, log_target):
    from .pointwise import eq, exp, log, where
    from .reductions import sum
    if log_target:
        loss = exp(t) * (t - x)
    else:
        zero = eq(t, 0.0)
        loss = where(zero, 0.0, t * log(where(zero, 1.0, t))) - t * x    # xlogy(t, t) - t x
    if reduction == "batchmean":
        s = sum(loss)
        return s / x.shape[0] if x.ndim else s
    return _reduce(loss, reduction)


def _np_kl(x, t, reduction, log_target):
    if log_target:
        loss = np.exp(t) * (t - x)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            loss = np.where(t == 0, 0.0, t * np.log(np.where(t == 0, 1, t))) - t * x
    if reduction == "batchmean":
        return loss.sum() / (x.shape[0] if x.ndim else 1)
    return _np_reduce(loss, reduction)


def _kl_samples(rng):
    x = np.log(rng.dirichlet(np.ones(4), 3))
    t = rng.dirichlet(np.ones(4), 3)    # positive: t log t has no derivative at 0, so the
                                        # zero-target case is tested on its own (test_nn_extra)
    out = [SampleInput((x, t), {"reduction": r, "log_target": False}) for r in _KL_REDUCTIONS]
    out.append(SampleInput((x, np.log(rng.dirichlet(np.ones(4), 3))),
                           {"reduction": "batchmean", "log_target": True}))
    return out


register(OpDef("kl_div", "other", _pair_meta("kl_div"), _np_kl, decomp=_kl_decomp,
               composite=True, samples=_kl_samples))


# ---------------------------------------------------------------- embedding, one_hot
def embedding(input, weight, padding_idx=None):
    """Rows of ``weight`` (``(num_embeddings, dim)``) at the int64 or int32 indices ``input``
    (any shape): the result has shape ``input.shape + (dim,)``.  Rows looked up at
    ``padding_idx`` (negative counts from the end) get no gradient, as in PyTorch."""
    if weight.ndim != 2:
        raise op_error(ShapeError, "embedding", f"weight must be 2-D, got {tuple(weight.shape)}")
    if padding_idx is not None:
        n = weight.shape[0]
        if not -n <= padding_idx < n:
            raise op_error(ValueError, "embedding", f"padding_idx {padding_idx} must be within "
                           f"num_embeddings {n}")
        padding_idx = int(padding_idx) % n
    idx = _host(input)
    if idx is not None and idx.size and (idx.min() < 0 or idx.max() >= weight.shape[0]):
        raise op_error(IndexError, "embedding", f"index out of range in self (indices in "
                       f"[{idx.min()}, {idx.max()}], {weight.shape[0]} embeddings)")
    return dispatch("embedding", input, weight, padding_idx=padding_idx)


def _embedding_meta(idx, w, *, padding_idx=None):
    if idx.dtype.name not in ("int64", "int32"):     # PyTorch: Long or Int
        raise op_error(DTypeError, "embedding", f"expected int64 or int32 indices, got "
                       f"{idx.dtype.name}")
    return Meta(tuple(idx.shape) + (w.shape[1],), w.dtype, device_of(idx, w))


def _embedding_decomp(idx, w, *, padding_idx=None):
    from .pointwise import eq, where
    from .views import index_select, reshape
    flat = reshape(idx, (-1,))
    rows = index_select(w, 0, flat)
    if padding_idx is not None:
        rows = where(eq(flat, padding_idx).unsqueeze(1), rows.detach(), rows)
    return reshape(rows, tuple(idx.shape) + (w.shape[1],))


register(OpDef("embedding", "other", _embedding_meta,
               lambda idx, w, padding_idx=None: w[idx], decomp=_embedding_decomp, composite=True,
               samples=lambda rng: [
                   SampleInput((rng.integers(0, 5, (2, 3)), rng.standard_normal((5, 4)))),
                   # padding_idx 3 not looked up: the padding rows' gradient is 0 by
                   # definition, which finite differences cannot check (test_nn_extra does)
                   SampleInput((np.array([0, 2, 2, 4, 1]), rng.standard_normal((5, 3))),
                               {"padding_idx": 3})]))


def one_hot(tensor, num_classes=-1):
    """``int64`` indices of shape ``S`` -> ``int64`` one-hot vectors of shape ``S + (C,)``.

    ``num_classes=-1`` takes ``C = tensor.max() + 1``, which needs the values: eager only
    (while tracing it raises; pass ``num_classes``).  Eagerly on the CPU a negative class
    or one ``>= num_classes`` raises, as in PyTorch."""
    from ..dispatch import tracing
    from .. import dtypes as dt
    from .creation import arange
    from .pointwise import eq
    if tensor.dtype is not dt.int64:
        raise op_error(RuntimeError, "one_hot", "one_hot is only applicable to index tensor of "
                       f"type int64, got {tensor.dtype.name}")
    if num_classes == -1:
        if tracing():
            raise op_error(RuntimeError, "one_hot", "num_classes=-1 needs the largest index's "
                           "value, which a trace does not have: pass num_classes")
        if tensor.numel() == 0:
            raise op_error(RuntimeError, "one_hot", "Can not infer total number of classes "
                           "from empty tensor.")
        num_classes = int(tensor.max().item()) + 1
    elif num_classes < 1 and tensor.numel():
        raise op_error(RuntimeError, "one_hot", f"num_classes must be positive, got {num_classes}")
    v = _host(tensor)
    if v is not None and v.size:
        if v.min() < 0:
            raise op_error(RuntimeError, "one_hot", "Class values must be non-negative.")
        if v.max() >= num_classes:
            raise op_error(RuntimeError, "one_hot", "Class values must be smaller than "
                           "num_classes.")
    classes = arange(num_classes, dtype=dt.int64, device=tensor.device)
    return eq(tensor.unsqueeze(-1), classes).long()

