"""Padding and convolution: ``pad``, ``conv1d`` and ``conv2d``, as composite ops.

minaot has no ``as_strided``, so a sliding window cannot be a view; it is built
from the view ops every pass knows (:func:`windows`).  Along one spatial dim,
window element ``j`` of every output position ``i``, ``x[i * stride + j * dilation]``,
is one strided ``slice`` of ``x``; the ``k`` slices, each unsqueezed, are joined by
one ``cat`` into a new dim of size ``k``.  Done for each spatial dim in turn, an
``(N, C, H, W)`` input becomes ``(N, C, kh, kw, out_h, out_w)``, PyTorch's im2col
("unfold") layout, from ``kh + kw`` slices and two ``cat``.  A convolution is then
one batched ``matmul``: the weight as ``(groups, out/groups, in/groups * kh * kw)``
times those columns as ``(N, groups, in/groups * kh * kw, out_h * out_w)``.  The
pools (:mod:`minaot.ops.pool`) reduce over the window dims instead.

Gradients come from the parts (the ops are composite): ``matmul``'s, then ``cat``'s
(slices of the gradient) and ``slice``'s (``slice_scatter`` into zeros), summed
where windows overlap, then ``pad``'s.  Compiled, the slices and ``cat`` fuse into
loops around the library ``matmul``; no new kernel was needed.

``pad`` follows ``torch.nn.functional.pad``: the pad tuple starts from the last dim
(``(left, right, top, bottom, ...)``); negative pads crop.  ``"constant"`` joins
blocks of ``value`` with ``cat``; ``"circular"`` joins slices of the (cropped)
input with ``cat``, as PyTorch's own code copies them; ``"reflect"`` and
``"replicate"`` pick positions with ``index_select``, computed from ``arange``
with PyTorch's formulas (``n-1 - |n-1 - |j||`` and ``clamp(j, 0, n-1)``).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .. import dtypes as dt
from .._errors import DTypeError, ShapeError, op_error
from ..dispatch import dispatch
from .meta import device_of
from .registry import Meta, OpDef, SampleInput, register


class DTypeNotImplemented(DTypeError, NotImplementedError):
    """A dtype the op has no kernel for: PyTorch raises ``NotImplementedError`` there
    (``"max_pool2d" not implemented for 'Bool'``); this is that and a ``DTypeError``."""


# ---------------------------------------------------------------- argument helpers
def _ntuple(op, name, value, n, what="a single integer value or a list of"):
    """``value`` (an int, or a sequence of 1 or ``n`` ints) as a tuple of ``n`` ints."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * n
    try:
        vals = tuple(value)
    except TypeError:
        raise op_error(TypeError, op, f"{name} must be an int or a tuple of ints, got "
                       f"{value!r}") from None
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals):
        raise op_error(TypeError, op, f"{name} must be an int or a tuple of ints, got {value!r}")
    if len(vals) == 1:
        return (int(vals[0]),) * n
    if len(vals) != n:
        raise op_error(ShapeError, op, f"expected {name} to be {what} {n} values to match the "
                       f"{n}-d {op}, but got {name}={list(vals)}")
    return tuple(int(v) for v in vals)


def _size_text(shape):
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _lowest(dtype):
    """The value that never wins a maximum: ``-inf``, or the integer dtype's smallest."""
    if dtype.is_floating_point:
        return -math.inf
    return int(np.iinfo(dtype.np).min)


# ---------------------------------------------------------------- sliding windows
def window_slice(x, dim, start, stride, count):
    """The view ``x[..., start : start + stride * (count - 1) + 1 : stride, ...]`` along
    ``dim``: ``count`` elements, ``stride`` apart."""
    stop = start + stride * (count - 1) + 1 if count > 0 else start
    return dispatch("slice", x, dim=dim, start=start, stop=stop, step=stride)


def windows(x, first, kernel_size, stride, dilation, out_size):
    """The sliding windows over the spatial dims ``first, first + 1, ...`` of ``x``:
    ``x`` of shape ``(*lead, n0, n1, ...)`` becomes ``(*lead, k0, k1, ..., o0, o1, ...)``
    with ``[..., j0, j1, ..., i0, i1, ...] = x[..., i0 * s0 + j0 * d0, i1 * s1 + j1 * d1, ...]``.
    Each dim takes ``k`` strided slices, unsqueezed and joined by one ``cat`` (a fresh,
    contiguous tensor; a single slice when ``k`` is 1 stays a view).  ``x`` must hold
    every window (pad it first)."""
    from .other import cat
    for i, (k, s, d, o) in enumerate(zip(kernel_size, stride, dilation, out_size)):
        dim = first + 2 * i          # where this spatial dim is now (after i k-dims, i o-dims)
        at = first + i               # where its window dim goes
        pieces = [dispatch("unsqueeze", window_slice(x, dim, j * d, s, o), dim=at)
                  for j in range(k)]
        x = pieces[0] if k == 1 else cat(pieces, at)
    return x


# ---------------------------------------------------------------- pad
PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(input, pad, mode="constant", value=None):
    """``input`` padded as ``torch.nn.functional.pad``: ``pad`` is ``(left, right)`` for the
    last dim, then ``(left, right)`` for the one before, ... (at most ``2 * input.ndim``
    numbers); negative pads crop.  ``mode``:

    * ``"constant"`` (any number of dims): ``value`` (0 by default) outside the input;
    * ``"reflect"``: the input mirrored at its edges, the edge not repeated (pads must be
      smaller than the dim);
    * ``"replicate"``: the edge values repeated;
    * ``"circular"``: the input wrapped around (pads at most the dim).

    The last three pad the last 1, 2 or 3 dims (``len(pad)`` 2, 4 or 6) of an input with
    one or two more dims, as in PyTorch, and take no ``value``.  Always a new tensor;
    differentiable in ``input``."""
    pad = _int_list("pad", pad)
    if len(pad) % 2:
        raise op_error(ShapeError, "pad", "Padding length must be divisible by 2")
    if len(pad) > 2 * input.ndim:
        raise op_error(ShapeError, "pad", "Padding length should be less than or equal to two "
                       f"times the input dimension but got padding length {len(pad)} and input "
                       f"of dimension {input.ndim}")
    if mode not in PAD_MODES:
        raise op_error(NotImplementedError, "pad", f"Unrecognised padding mode {mode}")
    if mode == "constant":
        value = _fill_value(0 if value is None else value, input.dtype)
    else:
        if value is not None and value != 0:
            raise op_error(ShapeError, "pad", f'Padding mode "{mode}" doesn\'t take in value '
                           "argument")
        k = len(pad) // 2
        if k not in (1, 2, 3) or input.ndim not in (k + 1, k + 2):
            raise op_error(NotImplementedError, "pad", f"Padding size {len(pad)} is not "
                           f"supported for {input.ndim}D input tensor.")
        value = 0
    return dispatch("pad", input, pad=pad, mode=mode, value=value)


def _int_list(op, values):
    try:
        vals = tuple(values)
    except TypeError:
        raise op_error(TypeError, op, f"pad must be a sequence of ints, got {values!r}") from None
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise op_error(TypeError, op, f"pad must be a sequence of ints, got {values!r}")
    return tuple(int(v) for v in vals)


def _fill_value(value, dtype):
    if dtype.is_floating_point:
        return float(value)
    if dtype is dt.bool_:
        return bool(value)
    return int(value)


def _pad_meta(x, *, pad, mode, value):
    k = len(pad) // 2
    shape = list(x.shape)
    outs = []
    for i in range(k):
        d = x.ndim - 1 - i
        n, left, right = shape[d], pad[2 * i], pad[2 * i + 1]
        out = n + left + right
        if mode == "reflect" and (left >= n or right >= n):
            raise op_error(ShapeError, "pad", "Padding size should be less than the "
                           f"corresponding input dimension, but got: padding ({left}, {right}) "
                           f"at dimension {d} of input {_size_text(x.shape)}")
        if mode == "circular" and (left > n or right > n):
            raise op_error(ShapeError, "pad", "Padding value causes wrapping around more than "
                           f"once (padding ({left}, {right}) at dimension {d} of input "
                           f"{_size_text(x.shape)})")
        if out < 0:
            raise op_error(ShapeError, "pad", f"The input size {n}, plus negative padding "
                           f"{left} and {right} resulted in a negative output size, which is "
                           f"invalid. Check dimension {d} of your input.")
        if mode == "circular" and out > 0:
            core = n - max(-left, 0) - max(-right, 0)
            if left > core or right > core:
                raise op_error(ShapeError, "pad", f"padding ({left}, {right}) at dimension {d} "
                               f"of input {_size_text(x.shape)} wraps around the {core} "
                               "elements left after cropping more than once")
        shape[d] = out
        outs.append(out)
    if mode in ("reflect", "replicate"):
        if any(s == 0 for s in x.shape[1 if x.ndim == k + 2 else 0:]):
            raise op_error(ShapeError, "pad", f"Expected {k + 1}D or {k + 2}D (batch mode) tensor "
                           "with possibly 0 batch size and other non-zero dimensions for input, "
                           f"but got: {_size_text(x.shape)}")
        if all(o < 1 for o in outs):
            raise op_error(ShapeError, "pad", f"input {_size_text(x.shape)} is too small: "
                           f"padding {list(pad)} gives output size {tuple(outs[::-1])}")
    return Meta(tuple(shape), x.dtype, device_of(x))


def _pad_decomp(x, *, pad, mode, value):
    from .views import clone
    out = x
    for i in range(len(pad) // 2):
        d, left, right = x.ndim - 1 - i, pad[2 * i], pad[2 * i + 1]
        if mode == "constant":
            out = _constant_pad_dim(out, d, left, right, value)
        elif mode == "circular":
            out = _circular_pad_dim(out, d, left, right)
        elif left or right:
            out = _index_pad_dim(out, d, left, right, mode)
    copied = any(pad) if mode in ("reflect", "replicate") else any(p > 0 for p in pad)
    return out if copied else clone(out)      # only cropped (a view): a copy, as in PyTorch


def _constant_pad_dim(x, d, left, right, value):
    """``x`` cropped by the negative pads along ``d``, then joined with blocks of ``value``."""
    from .creation import full
    from .other import cat
    n = x.shape[d]
    if left < 0 or right < 0:
        start = max(-left, 0)
        x = dispatch("slice", x, dim=d, start=start, stop=max(start, n - max(-right, 0)), step=1)
    parts = []
    for p in (left, right):
        if p > 0:
            shape = list(x.shape)
            shape[d] = p
            parts.append(full(tuple(shape), value, dtype=x.dtype, device=x.device))
        else:
            parts.append(None)
    if parts[0] is None and parts[1] is None:
        return x
    return cat([t for t in (parts[0], x, parts[1]) if t is not None], d)


def constant_pad(x, pads, value):
    """``x`` padded with ``value``: ``pads[i] = (left, right)`` for spatial dim ``i`` of the
    last ``len(pads)`` dims, in order (not reversed as ``pad``'s tuple is)."""
    first = x.ndim - len(pads)
    for i, (left, right) in enumerate(pads):
        if left or right:
            x = _constant_pad_dim(x, first + i, left, right, value)
    return x


def _circular_pad_dim(x, d, left, right):
    """PyTorch's circular padding: the input cropped by the negative pads (the core),
    then its last ``left`` elements before it and its first ``right`` after it."""
    from .other import cat
    n = x.shape[d]
    start = max(-left, 0)
    core = dispatch("slice", x, dim=d, start=start, stop=max(start, n - max(-right, 0)), step=1)
    m = core.shape[d]
    parts = []
    if left > 0:
        parts.append(dispatch("slice", core, dim=d, start=m - left, stop=m, step=1))
    parts.append(core)
    if right > 0:
        parts.append(dispatch("slice", core, dim=d, start=0, stop=right, step=1))
    return cat(parts, d) if len(parts) > 1 else core


def _index_pad_dim(x, d, left, right, mode):
    """Reflect or replicate along ``d``: output position ``i`` reads ``x`` at ``j = i - left``
    mapped into ``[0, n)`` (PyTorch's decomposition of these pads)."""
    from .creation import arange
    from .pointwise import abs, clamp
    from .views import index_select
    n = x.shape[d]
    j = arange(-left, n + right, device=x.device)
    if mode == "reflect":
        idx = (n - 1) - abs((n - 1) - abs(j))
    else:
        idx = clamp(j, 0, n - 1)
    return index_select(x, d, idx)


def _np_pad(x, *, pad, mode, value):
    """The reference: each dim cropped by its negative pads (reflect and replicate read the
    positions of PyTorch's formulas instead), then ``np.pad``."""
    k = len(pad) // 2
    for i in range(k):
        d, left, right = x.ndim - 1 - i, pad[2 * i], pad[2 * i + 1]
        n = x.shape[d]
        if mode in ("reflect", "replicate"):
            j = np.arange(-left, n + right)
            idx = ((n - 1) - np.abs((n - 1) - np.abs(j)) if mode == "reflect"
                   else np.clip(j, 0, n - 1))
            x = np.take(x, idx, axis=d)
            continue
        lo, hi = max(-left, 0), n - max(-right, 0)
        x = np.take(x, np.arange(lo, max(lo, hi)), axis=d)
        widths = [(0, 0)] * x.ndim
        widths[d] = (max(left, 0), max(right, 0))
        if mode == "constant":
            x = np.pad(x, widths, constant_values=value)
        else:
            x = np.pad(x, widths, mode="wrap")
    return x


def _pad_samples(rng):
    x = rng.standard_normal((1, 2, 3))
    return [
        SampleInput((x,), {"pad": (1, 2), "mode": "constant", "value": 0.5}),
        SampleInput((x,), {"pad": (-1, 2, 0, 1, 1, 0), "mode": "constant", "value": 0.0}),
        SampleInput((x,), {"pad": (2, -1, 1, 1), "mode": "reflect", "value": 0}),
        SampleInput((x,), {"pad": (3, 1), "mode": "replicate", "value": 0}),
        SampleInput((x,), {"pad": (2, 1, -1, 1), "mode": "circular", "value": 0}),
    ]


register(OpDef("pad", "other", _pad_meta, _np_pad, decomp=_pad_decomp, composite=True,
               samples=_pad_samples))


# ---------------------------------------------------------------- convolution
def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """The 1-d convolution (cross-correlation) of ``input`` ``(N, C_in, L)`` or ``(C_in, L)``
    with ``weight`` ``(C_out, C_in / groups, k)``, plus ``bias`` ``(C_out,)``, as
    ``torch.nn.functional.conv1d``: ``stride``, ``padding`` (an int, a 1-tuple, ``"valid"``
    (none) or ``"same"`` (output as long as the input; stride 1 only, the extra element of an
    odd total on the right)), ``dilation`` and ``groups``."""
    return _conv(1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """The 2-d convolution (cross-correlation) of ``input`` ``(N, C_in, H, W)`` or
    ``(C_in, H, W)`` with ``weight`` ``(C_out, C_in / groups, kh, kw)``, plus ``bias``
    ``(C_out,)``, as ``torch.nn.functional.conv2d``.  ``stride``, ``padding`` (zeros) and
    ``dilation`` are ints or pairs; ``padding`` may also be ``"valid"`` or ``"same"``
    (stride 1).  ``groups`` splits the channels: output channel group ``g`` sees input
    channel group ``g`` only.  Built from slices, ``cat`` and one batched ``matmul``
    (:mod:`minaot.ops.conv`)."""
    return _conv(2, input, weight, bias, stride, padding, dilation, groups)


def _conv(nd, input, weight, bias, stride, padding, dilation, groups):
    op = f"conv{nd}d"
    if weight.ndim != nd + 2:
        raise op_error(ShapeError, op, f"expected a {nd + 2}-d weight (out_channels, "
                       f"in_channels / groups, {'kernel' if nd == 1 else 'kh, kw'}), got weight "
                       f"of size {_size_text(weight.shape)}")
    if input.ndim not in (nd + 1, nd + 2):
        raise op_error(ShapeError, op, f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) "
                       f"input to {op}, but got input of size: {_size_text(input.shape)}")
    stride = _ntuple(op, "stride", stride, nd)
    dilation = _ntuple(op, "dilation", dilation, nd)
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
        raise op_error(TypeError, op, f"groups must be an int, got {groups!r}")
    groups = int(groups)
    kernel = tuple(weight.shape[2:])
    if isinstance(padding, str):
        if padding == "valid":
            pads = ((0, 0),) * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise op_error(ShapeError, op, "padding='same' is not supported for strided "
                               "convolutions")
            total = [d * (k - 1) for d, k in zip(dilation, kernel)]
            pads = tuple((t // 2, t - t // 2) for t in total)
        else:
            raise op_error(ShapeError, op, f"Invalid padding string: {padding!r}")
    else:
        pads = tuple((p, p) for p in _ntuple(op, "padding", padding, nd))
    if any(p < 0 for lr in pads for p in lr):
        raise op_error(ShapeError, op, "negative padding is not supported")
    if any(s <= 0 for s in stride):
        raise op_error(ShapeError, op, "non-positive stride is not supported")
    if any(d <= 0 for d in dilation):
        raise op_error(ShapeError, op, "non-positive dilation is not supported")
    if groups <= 0:
        raise op_error(ShapeError, op, "non-positive groups is not supported")
    batched = input.ndim == nd + 2
    x = input if batched else input.unsqueeze(0)
    extra = () if bias is None else (bias,)
    out = dispatch("conv", x, weight, *extra, stride=stride,
                   padding=tuple(p for lr in pads for p in lr), dilation=dilation, groups=groups)
    return out if batched else out.squeeze(0)


def conv_output_size(n, k, s, d, left, right):
    return (n + left + right - d * (k - 1) - 1) // s + 1


def _conv_meta(x, w, *b, stride, padding, dilation, groups):
    nd = w.ndim - 2
    op = f"conv{nd}d"
    if x.ndim != nd + 2:
        raise op_error(ShapeError, op, f"expected a {nd + 2}-d input for a {nd + 2}-d weight, got "
                       f"{_size_text(x.shape)}")
    o, cg = w.shape[0], w.shape[1]
    if o < 1:
        raise op_error(ShapeError, op, f"Given groups={groups}, expected weight to be at least 1 "
                       f"at dimension 0, but got weight of size {_size_text(w.shape)} instead")
    if o % groups:
        raise op_error(ShapeError, op, f"Given groups={groups}, expected weight to be divisible by "
                       f"{groups} at dimension 0, but got weight of size {_size_text(w.shape)} "
                       "instead")
    if x.shape[1] != cg * groups:
        raise op_error(ShapeError, op, f"Given groups={groups}, weight of size "
                       f"{_size_text(w.shape)}, expected input{_size_text(x.shape)} to have "
                       f"{cg * groups} channels, but got {x.shape[1]} channels instead")
    if b and (b[0].ndim != 1 or b[0].shape[0] != o):
        raise op_error(ShapeError, op, f"Given weight of size {_size_text(w.shape)}, expected bias "
                       f"to be 1-dimensional with {o} elements, but got bias of size "
                       f"{_size_text(b[0].shape)} instead")
    for t in (w,) + b:
        if t.dtype is not x.dtype:
            raise op_error(DTypeError, op, f"expected input, weight and bias of one dtype, got "
                           f"input {x.dtype.name} and {'weight' if t is w else 'bias'} "
                           f"{t.dtype.name}")
    if x.dtype is dt.bool_:
        raise op_error(DTypeNotImplemented, op, "not implemented for 'Bool'")
    padded = tuple(n + padding[2 * i] + padding[2 * i + 1] for i, n in enumerate(x.shape[2:]))
    eff = tuple(d * (k - 1) + 1 for d, k in zip(dilation, w.shape[2:]))
    if any(e > p for e, p in zip(eff, padded)):
        raise op_error(ShapeError, op, "Calculated padded input size per channel: "
                       f"({' x '.join(map(str, padded))}). Kernel size: "
                       f"({' x '.join(map(str, eff))}). Kernel size can't be greater than actual "
                       "input size")
    outs = tuple(conv_output_size(n, k, s, d, padding[2 * i], padding[2 * i + 1])
                 for i, (n, k, s, d) in enumerate(zip(x.shape[2:], w.shape[2:], stride, dilation)))
    return Meta((x.shape[0], o) + outs, x.dtype, device_of(x, w, *b))


def _conv_decomp(x, w, *b, stride, padding, dilation, groups):
    from .other import matmul
    from .views import reshape
    nd = w.ndim - 2
    n, c, o = x.shape[0], x.shape[1], w.shape[0]
    kernel = tuple(w.shape[2:])
    outs = _conv_meta(x, w, *b, stride=stride, padding=padding, dilation=dilation,
                      groups=groups).shape[2:]
    pads = tuple((padding[2 * i], padding[2 * i + 1]) for i in range(nd))
    x = constant_pad(x, pads, _fill_value(0, x.dtype))
    cols = windows(x, 2, kernel, stride, dilation, outs)            # (N, C, k..., out...)
    ck = c // groups * math.prod(kernel)
    cols = reshape(cols, (n, groups, ck, math.prod(outs)))
    y = matmul(reshape(w, (groups, o // groups, ck)), cols)          # (N, G, O/G, L)
    y = reshape(y, (n, o) + tuple(outs))
    if b:
        y = y + reshape(b[0], (o,) + (1,) * nd)
    return y


def _np_conv(x, w, *b, stride, padding, dilation, groups):
    nd = w.ndim - 2
    widths = [(0, 0), (0, 0)] + [(padding[2 * i], padding[2 * i + 1]) for i in range(nd)]
    xp = np.pad(x, widths)
    outs = tuple(conv_output_size(n, k, s, d, padding[2 * i], padding[2 * i + 1])
                 for i, (n, k, s, d) in enumerate(zip(x.shape[2:], w.shape[2:], stride, dilation)))
    o, cg = w.shape[0], w.shape[1]
    og = o // groups
    y = np.zeros((x.shape[0], o) + outs, dtype=np.result_type(x, w))
    for ks in itertools.product(*(range(k) for k in w.shape[2:])):
        sl = tuple(slice(j * d, j * d + s * (m - 1) + 1, s)
                   for j, d, s, m in zip(ks, dilation, stride, outs))
        patch = xp[(slice(None), slice(None)) + sl]
        for g in range(groups):
            part = patch[:, g * cg:(g + 1) * cg]
            wk = w[(slice(g * og, (g + 1) * og), slice(None)) + ks]
            y[:, g * og:(g + 1) * og] += np.tensordot(part, wk, axes=([1], [1])).transpose(
                (0, nd + 1) + tuple(range(1, nd + 1)))
    if b:
        y = y + b[0].reshape((o,) + (1,) * nd)
    return y


def _conv_samples(rng):
    def conv(xs, ws, bias=True, **kw):
        attrs = {"stride": (1,) * (len(ws) - 2), "padding": (0,) * (2 * (len(ws) - 2)),
                 "dilation": (1,) * (len(ws) - 2), "groups": 1}
        attrs.update(kw)
        args = (rng.standard_normal(xs), rng.standard_normal(ws))
        if bias:
            args += (rng.standard_normal((ws[0],)),)
        return SampleInput(args, attrs)
    return [                    # tiny: the CUDA simulator runs every gradient check too
        conv((1, 1, 5), (2, 1, 3)),
        conv((1, 2, 5), (2, 1, 2), bias=False, stride=(2,), padding=(1, 2), dilation=(2,),
             groups=2),
        conv((1, 1, 3, 4), (2, 1, 2, 2), padding=(1, 0, 0, 1)),
        conv((1, 2, 3, 3), (2, 1, 2, 2), bias=False, stride=(2, 1), padding=(1, 1, 1, 0),
             dilation=(1, 2), groups=2),
    ]


register(OpDef("conv", "other", _conv_meta, _np_conv, decomp=_conv_decomp, composite=True,
               samples=_conv_samples))
