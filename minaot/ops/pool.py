"""Pooling: max, average and adaptive pools over 1 or 2 spatial dims, as composite ops.

``max_pool`` and ``avg_pool`` pad the input (``-inf``, or zeros), take its sliding windows
(:func:`minaot.ops.conv.windows`: strided slices joined by ``cat``) as
``(*lead, k0, k1, o0, o1)``, and reduce over the window dims.  The maximum is picked by
``argmax`` over the flattened window (the first of equal maxima, in row-major order, as
PyTorch's kernels pick it), and read back through a one-hot mask, ``sum(where(j == argmax,
window, 0))``: the gradient goes to that one element only (as PyTorch's max-pool gradient
does; ``amax`` would split it between ties), and it is a pointwise ``where``, not a scatter.
The indices (``return_indices``) are positions in the flattened spatial dims of the input,
as in PyTorch.  The average divides by PyTorch's divisor: the window's size within the
padded input (``count_include_pad``), the number of input elements in it, or
``divisor_override``.

The adaptive pools cover the input with ``out`` windows ``[floor(i * n / out),
ceil((i + 1) * n / out))``.  ``adaptive_avg_pool`` sums them with a 0/1 matrix per dim
(``matmul``; a ``mean`` when the windows are all alike) and divides by their sizes;
``adaptive_max_pool`` gathers each window's positions with ``index_select`` (the last
position repeated up to the largest window) and picks the maximum as ``max_pool`` does.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .._errors import ShapeError, op_error
from ..dispatch import dispatch
from .. import dtypes as dt
from .conv import DTypeNotImplemented, _lowest, _ntuple, _size_text, constant_pad, windows
from .meta import device_of
from .registry import Meta, OpDef, SampleInput, register


# ---------------------------------------------------------------- arguments
def _pool_args(op, nd, kernel_size, stride, padding, dilation=1):
    what = "a single int, or a tuple of"
    kernel = _ntuple(op, "kernel_size", kernel_size, nd, what)
    stride = kernel if stride is None or (not isinstance(stride, int) and len(stride) == 0) \
        else _ntuple(op, "stride", stride, nd, what)
    padding = _ntuple(op, "padding", padding, nd, what)
    dilation = _ntuple(op, "dilation", dilation, nd, what)
    if any(s == 0 for s in stride):
        raise op_error(ShapeError, op, "stride should not be zero")
    if any(p < 0 for p in padding):
        raise op_error(ShapeError, op, f"pad must be non-negative, but got pad: {padding}")
    if any(k <= 0 for k in kernel):
        raise op_error(ShapeError, op, f"kernel size should be greater than zero, but got "
                       f"kernel_size: {kernel}")
    if any(s < 0 for s in stride):
        raise op_error(ShapeError, op, f"stride should be greater than zero, but got stride: "
                       f"{stride}")
    if any(d <= 0 for d in dilation):
        raise op_error(ShapeError, op, f"dilation should be greater than zero, but got "
                       f"dilation: {dilation}")
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise op_error(ShapeError, op, "pad should be at most half of kernel size, but got "
                       f"pad={padding} and kernel_size={kernel}")
    return kernel, stride, padding, dilation


def _check_input(op, nd, x, nonempty_channels=True):
    """``x`` is ``(C, *spatial)`` or ``(N, C, *spatial)``, with no empty dim but the batch."""
    if x.ndim not in (nd + 1, nd + 2) or (nonempty_channels and any(
            s == 0 for s in x.shape[x.ndim - nd - 1:])):
        raise op_error(ShapeError, op, f"Expected {nd + 1}D or {nd + 2}D (batch mode) tensor with "
                       f"optional 0 dim batch size for input, but got: {_size_text(x.shape)}")


def pool_output_size(n, k, s, p, d, ceil_mode):
    """PyTorch's ``pooling_output_shape``: in ceil mode, the last window must start inside
    the input or its left padding."""
    out = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _pool_meta_shape(op, x, kernel_size, stride, padding, dilation, ceil_mode):
    nd = len(kernel_size)
    sizes = x.shape[x.ndim - nd:]
    outs = tuple(pool_output_size(n, k, s, p, d, ceil_mode)
                 for n, k, s, p, d in zip(sizes, kernel_size, stride, padding, dilation))
    if any(o < 1 for o in outs):
        given = "x".join(map(str, x.shape[-nd - 1:]))
        calculated = "x".join(map(str, tuple(x.shape[-nd - 1:-nd]) + outs))
        raise op_error(ShapeError, op, f"Given input size: ({given}). Calculated output size: "
                       f"({calculated}). Output size is too small")
    return tuple(x.shape[:x.ndim - nd]) + outs, outs


def _padded_windows(x, kernel_size, stride, padding, dilation, outs, value):
    """``x`` padded with ``value`` (on the right as far as the last window reaches, in ceil
    mode past the padding) and cut into windows ``(*lead, k0, ..., o0, ...)``."""
    nd = len(kernel_size)
    sizes = x.shape[x.ndim - nd:]
    pads = []
    for n, k, s, p, d, o in zip(sizes, kernel_size, stride, padding, dilation, outs):
        reach = (o - 1) * s + d * (k - 1) + 1          # the padded length the windows read
        pads.append((p, max(reach - p - n, 0)))
    x = constant_pad(x, pads, value)
    return windows(x, x.ndim - nd, kernel_size, stride, dilation, outs)


def _pick_max(win, at, count, valid=None):
    """The maximum over dim ``at`` (of size ``count``) of ``win`` and a one-hot mask of where
    it is, chosen as PyTorch's kernels choose it: the first of equal maxima, but the last
    NaN if there is one, and never a padding position (``valid``, broadcast to ``win``:
    False where the window reads padding; a padding ``-inf`` ties with an input ``-inf``).
    ``argmax`` finds it; the value is read back through the mask, so its gradient reaches
    that one element."""
    from .creation import arange
    from .pointwise import eq, isnan, logical_and, where
    from .reductions import any, argmax, sum
    positions = arange(count, device=win.device).reshape((count,) + (1,) * (win.ndim - at - 1))
    zero = 0.0 if win.dtype.is_floating_point else 0
    j = argmax(win, at, keepdim=True)
    if valid is not None:           # the first input element equal to the maximum
        best = sum(where(eq(positions, j), win, zero), at, keepdim=True)
        j = argmax(logical_and(valid, eq(win, best)).long(), at, keepdim=True)
    if win.dtype.is_floating_point:     # a NaN wins, the last one (PyTorch: val > max || nan)
        nan = isnan(win)
        last = argmax(where(nan, positions, -1), at, keepdim=True)
        j = where(any(nan, at, keepdim=True), last, j)
    hot = eq(positions, j)
    return sum(where(hot, win, zero), at), hot


def _valid_positions(sizes, kernel_size, stride, padding, dilation, outs, device):
    """Which window elements read the input (not padding), as a bool tensor
    ``(k0 * k1 * ..., o0, o1, ...)``, or None when no window reads padding."""
    from .creation import arange
    from .pointwise import ge, logical_and, lt
    reads_pad = any(p > 0 or (o - 1) * s + d * (k - 1) + 1 - p > n for n, k, s, p, d, o in
                    zip(sizes, kernel_size, stride, padding, dilation, outs))
    if not reads_pad:
        return None
    nd = len(sizes)
    valid = None
    for i, (n, k, s, p, d, o) in enumerate(zip(sizes, kernel_size, stride, padding, dilation,
                                               outs)):
        q = arange(k, device=device).reshape(k, 1) * d + (arange(o, device=device) * s - p)
        ok = logical_and(ge(q, 0), lt(q, n))                       # (k_i, o_i)
        shape = [1] * (2 * nd)
        shape[i], shape[nd + i] = k, o
        ok = ok.reshape(tuple(shape))
        valid = ok if valid is None else logical_and(valid, ok)
    return valid.reshape((math.prod(kernel_size),) + tuple(outs))


def _flat_offsets(sizes, kernel_size, dilation, device):
    """For each flattened window position, its offset in the flattened input:
    ``j0 * d0 * n1 + j1 * d1`` (1-d: ``j0 * d0``), as an int64 tensor ``(k0 * k1 * ...,)``."""
    from .creation import arange
    off = None
    row = 1
    for n, k, d in reversed(list(zip(sizes, kernel_size, dilation))):
        term = arange(k, device=device) * (d * row)
        off = term if off is None else (term.reshape(k, 1) + off.reshape(1, -1)).reshape(-1)
        row *= n
    return off


def _window_starts(sizes, outs, stride, padding, device):
    """For each output position, the flattened input position of its window's first
    element (which may lie in the padding): ``(o0 * s0 - p0) * n1 + (o1 * s1 - p1)``."""
    from .creation import arange
    base = None
    row = 1
    nd = len(sizes)
    for i in reversed(range(nd)):
        term = (arange(outs[i], device=device) * stride[i] - padding[i]) * row
        term = term.reshape((outs[i],) + (1,) * (nd - 1 - i))
        base = term if base is None else term + base
        row *= sizes[i]
    return base


# ---------------------------------------------------------------- max pool
def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """The maximum over sliding windows of the last dim of ``input`` ``(N, C, L)`` or
    ``(C, L)``, as ``torch.nn.functional.max_pool1d``: ``stride`` defaults to
    ``kernel_size``, ``padding`` (at most half the kernel) pads with ``-inf``, ``dilation``
    spaces the window, ``ceil_mode`` keeps a last partial window.  With ``return_indices``
    also the positions of the maxima along ``L`` (int64).  The gradient goes to the first
    maximum of each window."""
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """The maximum over sliding ``kernel_size`` windows of ``input`` ``(N, C, H, W)`` or
    ``(C, H, W)``, as ``torch.nn.functional.max_pool2d`` (ints or pairs; ``stride`` defaults
    to ``kernel_size``; ``padding`` pads with ``-inf``; ``ceil_mode`` keeps last partial
    windows).  With ``return_indices`` also the positions of the maxima in the flattened
    ``H * W`` plane (int64), as PyTorch gives them.  The gradient goes to the first maximum
    (row-major) of each window, as in PyTorch."""
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def _max_pool(nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    op = f"max_pool{nd}d"
    kernel, stride, padding, dilation = _pool_args(op, nd, kernel_size, stride, padding,
                                                   dilation)
    _check_input(op, nd, input)
    values, indices = dispatch("max_pool", input, kernel_size=kernel, stride=stride,
                               padding=padding, dilation=dilation, ceil_mode=bool(ceil_mode))
    return (values, indices) if return_indices else values


def _max_pool_meta(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    op = f"max_pool{len(kernel_size)}d"
    if x.dtype is dt.bool_:
        raise op_error(DTypeNotImplemented, op, "not implemented for 'Bool'")
    shape, _ = _pool_meta_shape(op, x, kernel_size, stride, padding, dilation, ceil_mode)
    dev = device_of(x)
    return Meta(shape, x.dtype, dev), Meta(shape, dt.int64, dev)


def _max_pool_decomp(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    from .pointwise import where
    from .reductions import sum
    from .views import reshape
    nd = len(kernel_size)
    lead = x.ndim - nd
    sizes = tuple(x.shape[lead:])
    shape, outs = _pool_meta_shape("max_pool", x, kernel_size, stride, padding, dilation,
                                   ceil_mode)
    win = _padded_windows(x, kernel_size, stride, padding, dilation, outs, _lowest(x.dtype))
    count = math.prod(kernel_size)
    win = reshape(win, tuple(x.shape[:lead]) + (count,) + outs)
    valid = _valid_positions(sizes, kernel_size, stride, padding, dilation, outs, x.device)
    values, hot = _pick_max(win, lead, count, valid)
    offsets = _flat_offsets(sizes, kernel_size, dilation, x.device)
    offsets = offsets.reshape((count,) + (1,) * nd)
    indices = sum(where(hot, offsets, 0), lead) + _window_starts(sizes, outs, stride, padding,
                                                                 x.device)
    return values, indices


def _np_max_pool(x, *, kernel_size, stride, padding, dilation, ceil_mode):
    """The reference: a loop over output positions, PyTorch's kernel (the first maximum,
    scanning the window row by row, the last NaN)."""
    nd = len(kernel_size)
    lead, sizes = x.shape[:-nd], x.shape[-nd:]
    outs = tuple(pool_output_size(n, k, s, p, d, ceil_mode)
                 for n, k, s, p, d in zip(sizes, kernel_size, stride, padding, dilation))
    flat = x.reshape((-1,) + sizes)
    vals = np.empty((flat.shape[0],) + outs, x.dtype)
    idx = np.empty((flat.shape[0],) + outs, np.int64)
    for b in range(flat.shape[0]):
        for o in itertools.product(*(range(m) for m in outs)):
            best, at = None, None
            for j in itertools.product(*(range(k) for k in kernel_size)):
                pos = tuple(oi * s - p + ji * d for oi, s, p, ji, d in
                            zip(o, stride, padding, j, dilation))
                if any(q < 0 or q >= n for q, n in zip(pos, sizes)):
                    continue
                v = flat[(b,) + pos]
                if best is None or v > best or np.isnan(v):
                    best, at = v, int(np.ravel_multi_index(pos, sizes))
            vals[(b,) + o], idx[(b,) + o] = best, at
    return vals.reshape(lead + outs), idx.reshape(lead + outs)


def _max_pool_samples(rng):
    def s(shape, **kw):
        nd = len(kw["kernel_size"])
        attrs = {"stride": kw["kernel_size"], "padding": (0,) * nd, "dilation": (1,) * nd,
                 "ceil_mode": False}
        attrs.update(kw)
        return SampleInput((rng.permutation(math.prod(shape)).reshape(shape) * 0.1,), attrs)
    return [                    # tiny: the CUDA simulator runs every gradient check too
        s((1, 2, 7), kernel_size=(3,), stride=(2,), padding=(1,), ceil_mode=True),
        s((1, 8), kernel_size=(2,), dilation=(3,)),
        s((1, 1, 4, 5), kernel_size=(2, 3), stride=(2, 1), padding=(1, 1)),
        s((1, 5, 4), kernel_size=(3, 2), stride=(2, 2), dilation=(1, 2), ceil_mode=True),
    ]


register(OpDef("max_pool", "other", _max_pool_meta, _np_max_pool, decomp=_max_pool_decomp,
               composite=True, num_outputs=2, samples=_max_pool_samples))


# ---------------------------------------------------------------- average pool
def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """The mean over sliding windows of the last dim of ``input`` ``(N, C, L)`` or
    ``(C, L)``, as ``torch.nn.functional.avg_pool1d``: zero ``padding`` (at most half the
    kernel), counted in the divisor unless ``count_include_pad=False``; ``ceil_mode``
    keeps a last partial window (divided by its size inside the padded input)."""
    return _avg_pool(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """The mean over sliding windows of ``input`` ``(N, C, H, W)`` or ``(C, H, W)``, as
    ``torch.nn.functional.avg_pool2d``: zero ``padding``, counted in the divisor unless
    ``count_include_pad=False``; ``ceil_mode``; ``divisor_override`` divides every window
    sum by that number instead."""
    return _avg_pool(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def _avg_pool(nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    op = f"avg_pool{nd}d"
    kernel, stride, padding, _ = _pool_args(op, nd, kernel_size, stride, padding)
    if divisor_override is not None:
        if divisor_override == 0:
            raise op_error(ShapeError, op, "divisor must be not zero")
        divisor_override = int(divisor_override)
    _check_input(op, nd, input)
    return dispatch("avg_pool", input, kernel_size=kernel, stride=stride, padding=padding,
                    ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad),
                    divisor_override=divisor_override)


def _float_input(op, x):
    if not x.dtype.is_floating_point:
        raise op_error(DTypeNotImplemented, op, f"not implemented for {x.dtype.name} (a "
                       "floating point input is needed, as in PyTorch)")


def _avg_pool_meta(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad,
                   divisor_override):
    op = f"avg_pool{len(kernel_size)}d"
    if x.dtype is dt.bool_:
        raise op_error(DTypeNotImplemented, op, "not implemented for 'Bool'")
    shape, _ = _pool_meta_shape(op, x, kernel_size, stride, padding, (1,) * len(kernel_size),
                                ceil_mode)
    return Meta(shape, x.dtype, device_of(x))


def _avg_divisors(n, k, s, p, out, count_include_pad):
    """PyTorch's divisor of each window along one dim: its size clipped to the padded input,
    or (``count_include_pad=False``) to the input."""
    out_div = []
    for o in range(out):
        start = o * s - p
        end = min(start + k, n + p)
        if not count_include_pad:
            start, end = max(start, 0), min(end, n)
        out_div.append(end - start)
    return out_div


def _avg_pool_decomp(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override):
    from .creation import tensor
    from .pointwise import trunc
    from .reductions import sum
    nd = len(kernel_size)
    lead = x.ndim - nd
    sizes = tuple(x.shape[lead:])
    dilation = (1,) * nd
    _, outs = _pool_meta_shape("avg_pool", x, kernel_size, stride, padding, dilation, ceil_mode)
    integer = not x.dtype.is_floating_point
    win = _padded_windows(x, kernel_size, stride, padding, dilation, outs, 0 if integer else 0.0)
    total = sum(win, tuple(range(lead, lead + nd)))
    if integer:                 # PyTorch divides integers in C: the quotient truncated
        total = total.double()
    if divisor_override is not None:
        total = total / float(divisor_override)
    else:
        div = [1.0] * nd
        for i, (n, k, s, p, o) in enumerate(zip(sizes, kernel_size, stride, padding, outs)):
            d = _avg_divisors(n, k, s, p, o, count_include_pad)
            if len(set(d)) == 1:
                div[i] = float(d[0])
            else:
                div[i] = tensor(d, dtype=total.dtype, device=x.device).reshape(
                    (o,) + (1,) * (nd - 1 - i))
        combined = div[0]
        for d in div[1:]:
            combined = combined * d         # sizes: exact products, one division as PyTorch's
        total = total / combined
    return trunc(total).to(x.dtype) if integer else total


def _np_avg_pool(x, *, kernel_size, stride, padding, ceil_mode, count_include_pad,
                 divisor_override):
    nd = len(kernel_size)
    lead, sizes = x.shape[:-nd], x.shape[-nd:]
    outs = tuple(pool_output_size(n, k, s, p, 1, ceil_mode)
                 for n, k, s, p in zip(sizes, kernel_size, stride, padding))
    flat = x.reshape((-1,) + sizes)
    out = np.empty((flat.shape[0],) + outs, x.dtype)
    for o in itertools.product(*(range(m) for m in outs)):
        region, size_pad = [], 1
        for oi, n, k, s, p in zip(o, sizes, kernel_size, stride, padding):
            start = oi * s - p
            end = min(start + k, n + p)
            size_pad *= end - start
            region.append(slice(max(start, 0), min(end, n)))
        part = flat[(slice(None),) + tuple(region)]
        div = divisor_override or (size_pad if count_include_pad else
                                   math.prod(r.stop - r.start for r in region))
        mean = part.reshape(part.shape[0], -1).sum(1) / div
        out[(slice(None),) + o] = np.trunc(mean) if x.dtype.kind in "iu" else mean
    return out.reshape(lead + outs)


def _avg_pool_samples(rng):
    def s(shape, **kw):
        nd = len(kw["kernel_size"])
        attrs = {"stride": kw["kernel_size"], "padding": (0,) * nd, "ceil_mode": False,
                 "count_include_pad": True, "divisor_override": None}
        attrs.update(kw)
        return SampleInput((rng.standard_normal(shape),), attrs)
    return [
        s((1, 2, 7), kernel_size=(3,), stride=(2,), padding=(1,), ceil_mode=True),
        s((1, 7), kernel_size=(2,), padding=(1,), count_include_pad=False),
        s((1, 1, 5, 5), kernel_size=(2, 2), padding=(1, 1), ceil_mode=True,
          count_include_pad=False),
        s((1, 4, 5), kernel_size=(3, 2), stride=(2, 1), divisor_override=4),
    ]


register(OpDef("avg_pool", "other", _avg_pool_meta, _np_avg_pool, decomp=_avg_pool_decomp,
               composite=True, samples=_avg_pool_samples))


# ---------------------------------------------------------------- adaptive pools
def _output_size_arg(op, nd, output_size, x):
    if isinstance(output_size, int) or output_size is None:
        sizes = (output_size,) * nd
    else:
        sizes = tuple(output_size)
        if len(sizes) == 1 and nd > 1:
            sizes = sizes * nd
        if len(sizes) != nd:
            raise op_error(ShapeError, op, f"output_size must be {nd}, got {output_size!r}")
    sizes = tuple(x.shape[x.ndim - nd + i] if s is None else int(s) for i, s in enumerate(sizes))
    if any(s < 0 for s in sizes):
        raise op_error(ShapeError, op, "elements of output_size must be greater than or equal to "
                       f"0 but received {sizes}")
    return sizes


def _check_adaptive_input(op, nd, x, channels_too):
    if x.ndim not in (nd + 1, nd + 2):
        raise op_error(ShapeError, op, f"Expected {nd + 1}D or {nd + 2}D tensor, but got: "
                       f"{_size_text(x.shape)}")
    first = x.ndim - nd - (1 if channels_too else 0)
    for d in range(first, x.ndim):
        if x.shape[d] == 0:
            raise op_error(ShapeError, op, "Expected input to have non-zero size for non-batch "
                           f"dimensions, but input has sizes {_size_text(x.shape)} with dimension "
                           f"{d} being empty")


def adaptive_avg_pool1d(input, output_size):
    """The mean over ``output_size`` windows covering the last dim of ``input`` ``(N, C, L)``
    or ``(C, L)``: window ``i`` is ``[floor(i L / out), ceil((i + 1) L / out))``, as
    ``torch.nn.functional.adaptive_avg_pool1d``."""
    return _adaptive_avg_pool(1, input, output_size)


def adaptive_avg_pool2d(input, output_size):
    """The mean over an ``output_size`` grid of windows covering ``input`` ``(N, C, H, W)`` or
    ``(C, H, W)`` (an int, or a pair whose ``None`` keeps that dim's size), as
    ``torch.nn.functional.adaptive_avg_pool2d``; ``1`` is the global average pool."""
    return _adaptive_avg_pool(2, input, output_size)


def _adaptive_avg_pool(nd, input, output_size):
    op = f"adaptive_avg_pool{nd}d"
    _check_adaptive_input(op, nd, input, channels_too=False)
    sizes = _output_size_arg(op, nd, output_size, input)
    return dispatch("adaptive_avg_pool", input, output_size=sizes)


def _adaptive_meta(op, x, output_size):
    nd = len(output_size)
    return tuple(x.shape[:x.ndim - nd]) + tuple(output_size)


def _adaptive_avg_meta(x, *, output_size):
    op = f"adaptive_avg_pool{len(output_size)}d"
    _float_input(op, x)
    return Meta(_adaptive_meta(op, x, output_size), x.dtype, device_of(x))


def adaptive_bounds(n, out):
    """The windows of an adaptive pool of ``n`` elements into ``out``: ``[(start, end)]``."""
    return [((i * n) // out, -((-(i + 1) * n) // out)) for i in range(out)]


def _empty_like_result(x, shape):
    """A result with no elements that still hangs on ``x`` for autograd (its gradient is
    zeros, as PyTorch's is)."""
    from .creation import zeros
    from .views import flatten, narrow
    return zeros(shape, dtype=x.dtype, device=x.device) + narrow(flatten(x), 0, 0, 0).sum()


def _adaptive_avg_decomp(x, *, output_size):
    from .creation import arange, tensor
    from .other import matmul
    from .pointwise import ge, logical_and, lt
    from .reductions import mean
    from .views import movedim, reshape
    nd = len(output_size)
    if 0 in output_size:
        return _empty_like_result(x, _adaptive_meta("", x, output_size))
    out = x
    for i, o in enumerate(output_size):
        d = x.ndim - nd + i
        n = x.shape[d]
        if n % o == 0:                 # equal windows side by side: a reshape and a mean
            shape = tuple(out.shape[:d]) + (o, n // o) + tuple(out.shape[d + 1:])
            out = mean(reshape(out, shape), d + 1)
            continue
        bounds = adaptive_bounds(n, o)
        starts = tensor([b[0] for b in bounds], device=x.device).reshape(o, 1)
        ends = tensor([b[1] for b in bounds], device=x.device).reshape(o, 1)
        j = arange(n, device=x.device)
        member = logical_and(ge(j, starts), lt(j, ends)).to(x.dtype)       # (o, n), 0/1
        counts = tensor([float(e - s) for s, e in bounds], dtype=x.dtype, device=x.device)
        summed = matmul(movedim(out, d, -1), member.transpose(0, 1))        # (..., o)
        out = movedim(summed / counts, -1, d)
    return out


def _np_adaptive_avg(x, *, output_size):
    nd = len(output_size)
    lead, sizes = x.shape[:-nd], x.shape[-nd:]
    flat = x.reshape((-1,) + sizes)
    out = np.empty((flat.shape[0],) + tuple(output_size), x.dtype)
    for o in itertools.product(*(range(m) for m in output_size)):
        region = tuple(slice(*adaptive_bounds(n, m)[oi]) for oi, n, m in
                       zip(o, sizes, output_size))
        part = flat[(slice(None),) + region]
        out[(slice(None),) + o] = part.reshape(part.shape[0], -1).mean(1)
    return out.reshape(lead + tuple(output_size))


def _adaptive_samples(rng):
    return [
        SampleInput((rng.standard_normal((1, 2, 7)),), {"output_size": (3,)}),
        SampleInput((rng.standard_normal((1, 8)),), {"output_size": (4,)}),
        SampleInput((rng.standard_normal((1, 1, 5, 4)),), {"output_size": (3, 2)}),
        SampleInput((rng.standard_normal((1, 4, 5)),), {"output_size": (1, 2)}),
    ]


register(OpDef("adaptive_avg_pool", "other", _adaptive_avg_meta, _np_adaptive_avg,
               decomp=_adaptive_avg_decomp, composite=True, samples=_adaptive_samples))


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """The maximum over ``output_size`` windows covering the last dim of ``input``
    (the windows of :func:`adaptive_avg_pool1d`), as
    ``torch.nn.functional.adaptive_max_pool1d``; with ``return_indices`` also their
    positions along the dim."""
    return _adaptive_max_pool(1, input, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """The maximum over an ``output_size`` grid of windows covering ``input`` ``(N, C, H, W)``
    or ``(C, H, W)``, as ``torch.nn.functional.adaptive_max_pool2d``; with
    ``return_indices`` also their positions in the flattened ``H * W`` plane."""
    return _adaptive_max_pool(2, input, output_size, return_indices)


def _adaptive_max_pool(nd, input, output_size, return_indices):
    op = f"adaptive_max_pool{nd}d"
    _check_adaptive_input(op, nd, input, channels_too=True)
    sizes = _output_size_arg(op, nd, output_size, input)
    values, indices = dispatch("adaptive_max_pool", input, output_size=sizes)
    return (values, indices) if return_indices else values


def _adaptive_max_meta(x, *, output_size):
    op = f"adaptive_max_pool{len(output_size)}d"
    _float_input(op, x)
    shape = _adaptive_meta(op, x, output_size)
    return Meta(shape, x.dtype, device_of(x)), Meta(shape, dt.int64, device_of(x))


def _adaptive_max_decomp(x, *, output_size):
    from .creation import tensor, zeros
    from .pointwise import where
    from .reductions import sum
    from .views import index_select, permute, reshape
    nd = len(output_size)
    lead = x.ndim - nd
    sizes = tuple(x.shape[lead:])
    shape = tuple(x.shape[:lead]) + tuple(output_size)
    if 0 in output_size:
        return _empty_like_result(x, shape), zeros(shape, dtype=dt.int64, device=x.device)
    win, spans = x, []
    for i, (n, o) in enumerate(zip(sizes, output_size)):
        bounds = adaptive_bounds(n, o)
        k = max(e - s for s, e in bounds)
        spans.append(k)
        # window i's positions, its last one repeated up to k (a repeat never wins: argmax
        # takes the first of equal values)
        pos = [[min(s + t, e - 1) for t in range(k)] for s, e in bounds]
        d = lead + 2 * i                     # (*lead, o0, k0, ..., n_i, ...)
        flat = tensor([p for row_ in pos for p in row_], device=x.device)
        win = index_select(win, d, flat)
        win = reshape(win, tuple(win.shape[:d]) + (o, k) + tuple(win.shape[d + 1:]))
    # (*lead, o0, k0, o1, k1) -> (*lead, o0, o1, k0 * k1)
    perm = tuple(range(lead)) + tuple(lead + 2 * i for i in range(nd)) + \
        tuple(lead + 2 * i + 1 for i in range(nd))
    count = math.prod(spans)
    win = reshape(permute(win, perm), shape + (count,))
    values, hot = _pick_max(win, win.ndim - 1, count)
    # the flat input position of each (output, window element): start + offset, per dim
    index = None
    row = 1
    for i in reversed(range(nd)):
        n, o, k = sizes[i], output_size[i], spans[i]
        bounds = adaptive_bounds(n, o)
        pos = tensor([[min(s + t, e - 1) * row for t in range(k)] for s, e in bounds],
                     device=x.device)                              # (o_i, k_i)
        # broadcast to (o0, o1, k0, k1): o_i at dim i, k_i at dim nd + i
        shp = [1] * (2 * nd)
        shp[i], shp[nd + i] = o, k
        term = pos.reshape(tuple(shp))
        index = term if index is None else term + index
        row *= n
    index = reshape(index, tuple(output_size) + (count,))
    indices = sum(where(hot, index, 0), hot.ndim - 1)
    return values, indices


def _np_adaptive_max(x, *, output_size):
    nd = len(output_size)
    lead, sizes = x.shape[:-nd], x.shape[-nd:]
    flat = x.reshape((-1,) + sizes)
    vals = np.empty((flat.shape[0],) + tuple(output_size), x.dtype)
    idx = np.empty((flat.shape[0],) + tuple(output_size), np.int64)
    for b in range(flat.shape[0]):
        for o in itertools.product(*(range(m) for m in output_size)):
            ranges = [range(*adaptive_bounds(n, m)[oi]) for oi, n, m in zip(o, sizes, output_size)]
            best, at = None, None
            for pos in itertools.product(*ranges):
                v = flat[(b,) + pos]
                if best is None or v > best or np.isnan(v):
                    best, at = v, int(np.ravel_multi_index(pos, sizes))
            vals[(b,) + o], idx[(b,) + o] = best, at
    return vals.reshape(lead + tuple(output_size)), idx.reshape(lead + tuple(output_size))


def _adaptive_max_samples(rng):
    def s(shape, out):
        return SampleInput((rng.permutation(math.prod(shape)).reshape(shape) * 0.1,),
                           {"output_size": out})
    return [s((1, 2, 7), (3,)), s((1, 8), (4,)), s((1, 1, 5, 4), (3, 2)), s((1, 4, 5), (1, 2))]


register(OpDef("adaptive_max_pool", "other", _adaptive_max_meta, _np_adaptive_max,
               decomp=_adaptive_max_decomp, composite=True, num_outputs=2,
               samples=_adaptive_max_samples))
