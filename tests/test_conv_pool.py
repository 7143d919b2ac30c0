"""Padding, convolution and pooling (minaot/ops/conv.py, minaot/ops/pool.py) and their layers
(minaot/nn/layers_conv.py, BatchNorm2d, Dropout2d) against PyTorch: values, indices, dtypes,
shapes, gradients (float32 and float64), eager and compiled (``minaot.compile``, the numba
backend), and the errors PyTorch raises.  Without torch, the numpy references of the
registry (``op.impl``) and finite differences check the same functions.  The op-database
suites (test_ops_db, test_aot_ops, test_numba_ops, test_joint, test_tracing and the CUDA
simulator suites) run the registry samples of ``pad``, ``conv``, ``max_pool``,
``avg_pool``, ``adaptive_avg_pool`` and ``adaptive_max_pool`` on every backend as well."""

import math
import time
import warnings

import numpy as np
import pytest

import minaot
import minaot.nn as nn
import minaot.nn.functional as F
from minaot.ops.registry import get_op
from minaot.testing import assert_close, gradcheck
from runs import RUNS

RNG = np.random.default_rng(0)
DTYPES = {"float64": minaot.float64, "float32": minaot.float32}
TOL = {"float64": dict(rtol=1e-10, atol=1e-10), "float32": dict(rtol=2e-5, atol=2e-5)}


def arr(*shape):
    return RNG.standard_normal(shape)


# (run, dtype) pairs: compiled in float64, and in float32 for some convolutions only, to
# keep Numba's first compilations (one per program and dtype) few
MODES = [("eager", "float64"), ("eager", "float32"), ("compiled", "float64")]


def cases(n, compiled=None, float32=(), unbatched=False):
    """Parameters ``(i, [unbatched,] run, dtype)`` for ``n`` cases: every case eagerly in
    both dtypes, the cases ``compiled`` (all by default; never unbatched) compiled in
    float64, and those in ``float32`` compiled in float32 too."""
    out = []
    for i in range(n):
        for u in ((False, True) if unbatched else (None,)):
            for run, dtype in MODES + ([("compiled", "float32")] if i in float32 else []):
                if run == "compiled" and (u or (compiled is not None and i not in compiled)):
                    continue
                out.append((i, run, dtype) if u is None else (i, u, run, dtype))
    return out


def _torch():
    return pytest.importorskip("torch")


def _values_and_grads(fn, arrays, dtype, run="eager", seed=None):
    """``fn`` of minaot tensors made from ``arrays`` (requiring grad), its outputs and the
    gradients of ``sum(out * seed)`` (``seed`` fixed random weights)."""
    ts = [minaot.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
    out = RUNS[run](fn)(*ts)
    first = out[0] if isinstance(out, tuple) else out
    w = minaot.tensor(np.random.default_rng(1).standard_normal(first.shape), dtype=dtype)
    (first * w).sum().backward()
    return out, [t.grad for t in ts]


def _torch_values_and_grads(fn, arrays, dtype):
    torch = _torch()
    tdt = torch.float64 if dtype is minaot.float64 else torch.float32
    ts = [torch.tensor(a, dtype=tdt, requires_grad=True) for a in arrays]
    out = fn(*ts)
    first = out[0] if isinstance(out, tuple) else out
    w = torch.tensor(np.random.default_rng(1).standard_normal(tuple(first.shape)), dtype=tdt)
    (first * w).sum().backward()
    return out, [t.grad for t in ts]


def _same(got, want, tol):
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w, tol)
        return
    want = want.detach().numpy() if hasattr(want, "detach") else want
    got_np = got.detach().numpy()
    assert got_np.shape == want.shape, (got_np.shape, want.shape)
    assert got_np.dtype == want.dtype, (got_np.dtype, want.dtype)
    if want.dtype.kind == "i":
        np.testing.assert_array_equal(got_np, want)
    else:
        np.testing.assert_allclose(got_np, want, **tol)


def check_against_torch(mfn, tfn, arrays, dtype_name, run):
    """``mfn`` (minaot) and ``tfn`` (torch) on the same data: outputs and gradients."""
    dtype = DTYPES[dtype_name]
    got, ggot = _values_and_grads(mfn, arrays, dtype, run)
    want, gwant = _torch_values_and_grads(tfn, arrays, dtype)
    _same(got, want, TOL[dtype_name])
    for g, w in zip(ggot, gwant):
        assert (g is None) == (w is None)
        if w is not None:
            _same(g, w, TOL[dtype_name])


# ------------------------------------------------------------------ pad
PAD_CASES = [
    ((1, 2), "constant", None), ((1, 2), "constant", 0.5), ((-1, 2, 0, 1), "constant", -2.0),
    ((0, 0, 0, 0, 2, 1), "constant", 1.0), ((-2, -1), "constant", None),
    ((2, 1), "reflect", None), ((1, 2, 2, 1), "reflect", None), ((-1, 2), "reflect", 0),
    ((3, 1), "replicate", None), ((2, 3, 1, 0), "replicate", None), ((-2, 3), "replicate", None),
    ((2, 1), "circular", None), ((1, 2, 3, 1), "circular", None), ((-1, 1, 2, -2), "circular", None),
    ((), "constant", None),
]


@pytest.mark.parametrize("i,run,dtype", cases(len(PAD_CASES), compiled=(1, 2, 4, 6, 9, 12, 13)))
def test_pad_matches_torch(i, run, dtype):
    torch = _torch()
    pad, mode, value = PAD_CASES[i]
    x = arr(2, 3, 4, 5)
    if mode != "constant" and len(pad) == 2:
        x = x[0]                              # (C, H, W): 1-d padding of a 3-d input
    check_against_torch(lambda t: F.pad(t, pad, mode, value),
                        lambda t: torch.nn.functional.pad(t, pad, mode, value), [x], dtype, run)


def test_pad_integer_and_bool_and_copies():
    torch = _torch()
    a = np.arange(12).reshape(3, 4)
    got = F.pad(minaot.tensor(a), (1, 2, 0, 1), value=2.7)
    want = torch.nn.functional.pad(torch.tensor(a), (1, 2, 0, 1), value=2.7)
    assert got.dtype is minaot.int64
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    b = minaot.tensor([True, False])
    np.testing.assert_array_equal(F.pad(b, (1, 1), value=True).numpy(), [True, True, False, True])
    np.testing.assert_array_equal(F.pad(minaot.tensor(a), (1, 1), mode="replicate").numpy(),
                                  np.pad(a, ((0, 0), (1, 1)), mode="edge"))
    x = minaot.tensor(arr(3, 4))
    for p in [(), (0, 0), (-1, 0)]:          # always a new tensor, as in PyTorch
        y = F.pad(x, p)
        y.fill_(7.0)
        assert float(x.abs().max()) < 7


@pytest.mark.parametrize("call", [
    lambda F_, x: F_.pad(x, (1,)),
    lambda F_, x: F_.pad(x, (1,) * 8),
    lambda F_, x: F_.pad(x, (-3, -2)),
    lambda F_, x: F_.pad(x, (1, 1), mode="reflect", value=1.0),
    lambda F_, x: F_.pad(x, (3, 0), mode="reflect"),
    lambda F_, x: F_.pad(x, (4, 0), mode="circular"),
    lambda F_, x: F_.pad(x, (-3, 0), mode="replicate"),
    lambda F_, x: F_.pad(x[0, 0], (1, 1), mode="reflect"),
    lambda F_, x: F_.pad(x, (1, 1, 1, 1, 1, 1), mode="reflect"),
    lambda F_, x: F_.pad(x[:, :0], (1, 1), mode="replicate"),
    lambda F_, x: F_.pad(x, (1, 1), mode="wrap"),
], ids=["odd", "too-long", "negative-size", "reflect-value", "reflect-too-big", "circular-twice",
        "replicate-empty", "reflect-1d", "reflect-rank",
        "replicate-empty-channels", "bad-mode"])
def test_pad_errors_like_torch(call):
    torch = _torch()
    x = arr(1, 2, 3)
    with pytest.raises(Exception) as want:
        call(torch.nn.functional, torch.tensor(x))
    with pytest.raises(type(want.value)):
        call(F, minaot.tensor(x))


def test_circular_pad_wrapping_a_cropped_dim_more_than_once_raises():
    """PyTorch copies overlapping memory there (an error, or values that depend on the
    layout); minaot refuses."""
    with pytest.raises(RuntimeError, match="more than once"):
        F.pad(minaot.tensor(arr(1, 2, 3)), (-1, 3), mode="circular")


def test_pad_without_torch_against_numpy_and_finite_differences():
    x = arr(2, 3, 4)
    for pad, mode in [((2, -1, 1, 2), "reflect"), ((3, -2), "replicate"),
                      ((2, 1, -1, 1), "circular"), ((1, -1, 2, 0, 0, 1), "constant")]:
        assert_close(F.pad(minaot.tensor(x), pad, mode),
                     get_op("pad").impl(x, pad=pad, mode=mode, value=0.0))
        gradcheck(lambda t: F.pad(t, pad, mode), [minaot.tensor(x, requires_grad=True)])
    assert_close(F.pad(minaot.tensor(x), (1, 1), mode="circular"),
                 np.concatenate([x[..., -1:], x, x[..., :1]], -1))
    assert_close(F.pad(minaot.tensor(x), (2, 1), mode="reflect"),
                 np.pad(x, ((0, 0), (0, 0), (2, 1)), mode="reflect"))


# ------------------------------------------------------------------ convolution
CONV2D = [
    dict(),
    dict(stride=2, padding=1),
    dict(stride=(2, 1), padding=(0, 2), dilation=(1, 2)),
    dict(padding="same", dilation=2),
    dict(padding="same", wshape=(4, 3, 2, 3)),             # even kernel: extra zero on the right
    dict(padding="valid", bias=False),
    dict(groups=3, wshape=(6, 1, 3, 3), padding=1),
    dict(groups=3, wshape=(3, 1, 2, 2), stride=2, dilation=(2, 1), bias=False),
    dict(wshape=(5, 3, 1, 1)),
    dict(wshape=(5, 3, 1, 1), stride=2),
    dict(unbatched=True, padding=(1, 0)),
]


def _conv_arrays(case, xshape):
    w = arr(*case.get("wshape", (4, 3, 3, 3)))
    arrays = [arr(*xshape), w]
    if case.get("bias", True):
        arrays.append(arr(w.shape[0]))
    return arrays


@pytest.mark.parametrize("i,run,dtype", cases(len(CONV2D), float32=(1, 3, 6)))
def test_conv2d_matches_torch(i, dtype, run):
    torch = _torch()
    case = dict(CONV2D[i])
    xshape = (3, 7, 8) if case.pop("unbatched", False) else (2, 3, 7, 8)
    arrays = _conv_arrays(case, xshape)
    case.pop("wshape", None)
    case.pop("bias", None)
    check_against_torch(lambda *t: F.conv2d(*t, **case),
                        lambda *t: torch.nn.functional.conv2d(*t, **case), arrays, dtype, run)


CONV1D = [
    dict(),
    dict(stride=2, padding=2, dilation=2),
    dict(padding="same", wshape=(4, 3, 4)),
    dict(groups=3, wshape=(6, 1, 3), padding=(1,), stride=(3,)),
    dict(unbatched=True, bias=False),
]


@pytest.mark.parametrize("i,run,dtype", cases(len(CONV1D)))
def test_conv1d_matches_torch(i, dtype, run):
    torch = _torch()
    case = dict(CONV1D[i])
    xshape = (3, 11) if case.pop("unbatched", False) else (2, 3, 11)
    w = arr(*case.pop("wshape", (4, 3, 3)))
    arrays = [arr(*xshape), w] + ([arr(w.shape[0])] if case.pop("bias", True) else [])
    check_against_torch(lambda *t: F.conv1d(*t, **case),
                        lambda *t: torch.nn.functional.conv1d(*t, **case), arrays, dtype, run)


def test_conv_positional_arguments_and_top_level_names():
    torch = _torch()
    x, w, b = arr(2, 4, 9), arr(6, 2, 3), arr(6)
    got = minaot.conv1d(minaot.tensor(x), minaot.tensor(w), minaot.tensor(b), 2, 1, 2, 2)
    want = torch.conv1d(torch.tensor(x), torch.tensor(w), torch.tensor(b), 2, 1, 2, 2)
    assert_close(got, want.numpy())
    x, w = arr(1, 2, 5, 5), arr(3, 2, 3, 3)
    assert_close(minaot.conv2d(minaot.tensor(x), minaot.tensor(w), None, 1, 1),
                 torch.conv2d(torch.tensor(x), torch.tensor(w), None, 1, 1).numpy())
    assert minaot.conv2d is F.conv2d and minaot.max_pool2d is F.max_pool2d


def test_conv_integer_and_empty_batch():
    torch = _torch()
    x, w = np.arange(2 * 2 * 4 * 4).reshape(2, 2, 4, 4) % 5, np.arange(3 * 2 * 2 * 2).reshape(3, 2, 2, 2) % 3 - 1
    got = F.conv2d(minaot.tensor(x), minaot.tensor(w), padding=1)
    assert got.dtype is minaot.int64
    np.testing.assert_array_equal(
        got.numpy(), torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding=1).numpy())
    e = F.conv2d(minaot.zeros(0, 2, 5, 5), minaot.zeros(3, 2, 3, 3))
    assert e.shape == (0, 3, 3, 3)


@pytest.mark.parametrize("call", [
    lambda F_, x, w: F_.conv2d(x[0, 0], w),
    lambda F_, x, w: F_.conv2d(x[None], w),
    lambda F_, x, w: F_.conv2d(x, w[0]),
    lambda F_, x, w: F_.conv2d(x[:, :2], w),
    lambda F_, x, w: F_.conv2d(x, w[:5], groups=2),
    lambda F_, x, w: F_.conv2d(x, w, groups=2),
    lambda F_, x, w: F_.conv2d(x[:, :, :2], w),
    lambda F_, x, w: F_.conv2d(x, w, w[:5, 0, 0, 0]),
    lambda F_, x, w: F_.conv2d(x, w, w[:, :1, 0, 0]),
    lambda F_, x, w: F_.conv2d(x, w, padding="same", stride=2),
    lambda F_, x, w: F_.conv2d(x, w, padding="full"),
    lambda F_, x, w: F_.conv2d(x, w, padding=-1),
    lambda F_, x, w: F_.conv2d(x, w, stride=0),
    lambda F_, x, w: F_.conv2d(x, w, dilation=0),
    lambda F_, x, w: F_.conv2d(x, w, groups=0),
    lambda F_, x, w: F_.conv2d(x, w, stride=(1, 1, 1)),
    lambda F_, x, w: F_.conv2d(x.double(), w),
    lambda F_, x, w: F_.conv2d(x, w[:0]),
    lambda F_, x, w: F_.conv1d(x, w),
    lambda F_, x, w: F_.conv1d(x[0], w[:, :, 0], stride=(1, 2)),
], ids=["2d-input", "5d-input", "3d-weight", "channels", "groups-out", "groups-in", "too-small",
        "bias-size", "bias-2d", "same-strided", "bad-string", "negative-padding", "stride-0",
        "dilation-0", "groups-0", "stride-3", "dtypes", "no-out-channels", "1d-4d-input",
        "1d-stride-2"])
def test_conv_errors_like_torch(call):
    torch = _torch()
    x, w = np.float32(arr(2, 4, 6, 6)), np.float32(arr(6, 4, 3, 3))
    with pytest.raises(Exception) as want:
        call(torch.nn.functional, torch.tensor(x), torch.tensor(w))
    with pytest.raises(type(want.value)) as got:
        call(F, minaot.tensor(x), minaot.tensor(w))
    assert "conv" in str(got.value)


def test_conv_without_torch_against_numpy_and_finite_differences():
    """The registry's numpy reference and gradcheck (float64)."""
    op = get_op("conv")
    x, w, b = arr(2, 4, 6, 5), arr(6, 2, 3, 2), arr(6)
    attrs = dict(stride=(2, 1), padding=(1, 2, 0, 1), dilation=(1, 2), groups=2)
    got = F.conv2d(minaot.tensor(np.pad(x, ((0, 0), (0, 0), (1, 2), (0, 1)))), minaot.tensor(w),
                   minaot.tensor(b), (2, 1), 0, (1, 2), 2)
    assert_close(got, op.impl(x, w, b, **attrs))
    assert_close(minaot.tensor(op.impl(x, w, b, **attrs)),
                 minaot.ops.conv._conv_decomp(minaot.tensor(x), minaot.tensor(w),
                                              minaot.tensor(b), **attrs))
    ts = [minaot.tensor(a, requires_grad=True) for a in (arr(1, 2, 4, 5), arr(2, 1, 2, 3), arr(2))]
    gradcheck(lambda *t: F.conv2d(*t, stride=(1, 2), padding=1, groups=2), ts)


# ------------------------------------------------------------------ pools
MAXPOOL2D = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=(2, 3), stride=(1, 2), dilation=(2, 1), padding=(1, 1)),
    dict(kernel_size=2, stride=1, ceil_mode=True),
    dict(kernel_size=(3, 2), dilation=2, ceil_mode=True),
]


@pytest.mark.parametrize("i,unbatched,run,dtype", cases(len(MAXPOOL2D), unbatched=True))
def test_max_pool2d_matches_torch(i, unbatched, run, dtype):
    torch = _torch()
    kw = MAXPOOL2D[i]
    x = arr(3, 7, 8) if unbatched else arr(2, 3, 7, 8)
    check_against_torch(lambda t: F.max_pool2d(t, **kw, return_indices=True),
                        lambda t: torch.nn.functional.max_pool2d(t, **kw, return_indices=True),
                        [x], dtype, run)


@pytest.mark.parametrize("run", sorted(RUNS))
@pytest.mark.parametrize("kw", [dict(kernel_size=3), dict(kernel_size=3, stride=2, padding=1,
                                                          dilation=2, ceil_mode=True),
                                dict(kernel_size=(2,), stride=(1,), padding=(1,))])
def test_max_pool1d_matches_torch(kw, run):
    torch = _torch()
    for x in (arr(2, 3, 11), arr(3, 11)):
        check_against_torch(lambda t: F.max_pool1d(t, **kw, return_indices=True),
                            lambda t: torch.nn.functional.max_pool1d(t, **kw, return_indices=True),
                            [x], "float64", run)


@pytest.mark.parametrize("run", sorted(RUNS))
def test_max_pool_ties_send_the_gradient_to_the_first_maximum(run):
    torch = _torch()
    a = np.zeros((1, 2, 4, 4))                 # all ties, as after a relu
    a[0, 1, 1:3, 1:3] = 1.0
    for kw in (dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1)):
        check_against_torch(lambda t: F.max_pool2d(t, **kw, return_indices=True),
                            lambda t: torch.nn.functional.max_pool2d(t, **kw, return_indices=True),
                            [a], "float64", run)


@pytest.mark.parametrize("run", sorted(RUNS))
def test_max_pool_nan_and_infinite_windows_pick_as_torch(run):
    """A NaN wins (the last one in the window); a window of ``-inf`` that reads padding
    picks its first input element, never a padding position."""
    torch = _torch()
    c = np.full((1, 2, 5, 5), -np.inf)
    c[0, 0, 2, 3] = c[0, 0, 2, 1] = np.nan
    c[0, 1] = arr(5, 5)
    c[0, 1, 0, 0] = -np.inf
    for kw in (dict(kernel_size=3, stride=1, padding=1), dict(kernel_size=2, ceil_mode=True),
               dict(kernel_size=3, stride=2, padding=1, dilation=2)):
        got = RUNS[run](lambda t: F.max_pool2d(t, return_indices=True, **kw))(minaot.tensor(c))
        want = torch.nn.functional.max_pool2d(torch.tensor(c), return_indices=True, **kw)
        _same(got, want, dict(rtol=0, atol=0, equal_nan=True))
    a = np.array([[[1.0, np.nan, 3.0, np.nan, 2.0, np.nan, 4.0]]])
    for out in (2, 3):
        got = RUNS[run](lambda t: F.adaptive_max_pool1d(t, out, True))(minaot.tensor(a))
        _same(got, torch.nn.functional.adaptive_max_pool1d(torch.tensor(a), out, True),
              dict(rtol=0, atol=0, equal_nan=True))


def test_max_pool_integers():
    torch = _torch()
    a = RNG.integers(-50, 50, (2, 3, 6, 5))
    got, gi = F.max_pool2d(minaot.tensor(a), 3, 2, 1, return_indices=True)
    want, wi = torch.nn.functional.max_pool2d(torch.tensor(a), 3, 2, 1, return_indices=True)
    assert got.dtype is minaot.int64
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    np.testing.assert_array_equal(gi.numpy(), wi.numpy())


def test_avg_pool_integers_truncate_as_torch():
    torch = _torch()
    a = RNG.integers(-50, 50, (2, 3, 6, 5))
    for kw in (dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                         count_include_pad=False),
               dict(kernel_size=2, divisor_override=3)):
        got = F.avg_pool2d(minaot.tensor(a), **kw)
        assert got.dtype is minaot.int64
        np.testing.assert_array_equal(got.numpy(), torch.nn.functional.avg_pool2d(
            torch.tensor(a), **kw).numpy())


AVGPOOL2D = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=(2, 3), stride=(2, 2), padding=(1, 1), ceil_mode=True, count_include_pad=False),
    dict(kernel_size=2, divisor_override=3),
    dict(kernel_size=(3, 2), padding=(1, 0), divisor_override=5, ceil_mode=True),
]


@pytest.mark.parametrize("i,unbatched,run,dtype", cases(len(AVGPOOL2D), unbatched=True))
def test_avg_pool2d_matches_torch(i, unbatched, run, dtype):
    torch = _torch()
    kw = AVGPOOL2D[i]
    x = arr(3, 7, 8) if unbatched else arr(2, 3, 7, 8)
    check_against_torch(lambda t: F.avg_pool2d(t, **kw), lambda t: torch.nn.functional.avg_pool2d(
        t, **kw), [x], dtype, run)


@pytest.mark.parametrize("run", sorted(RUNS))
@pytest.mark.parametrize("args", [(3,), (3, 2, 1), (3, 2, 1, True), (3, 2, 1, True, False),
                                  (4, 3, 2, False, False)])
def test_avg_pool1d_matches_torch(args, run):
    torch = _torch()
    for x in (arr(2, 3, 11), arr(3, 11)):
        check_against_torch(lambda t: F.avg_pool1d(t, *args),
                            lambda t: torch.nn.functional.avg_pool1d(t, *args), [x], "float64", run)


ADAPTIVE = [1, 3, (2, 4), (None, 3), (5, 7), (4, None), 8]


@pytest.mark.parametrize("i,run,dtype", cases(len(ADAPTIVE), compiled=(0, 2, 4, 5)))
def test_adaptive_pools_2d_match_torch(i, run, dtype):
    torch = _torch()
    out = ADAPTIVE[i]
    for x in (arr(2, 3, 7, 6), arr(3, 5, 7))[:1 if run == "compiled" else 2]:
        check_against_torch(lambda t: F.adaptive_avg_pool2d(t, out),
                            lambda t: torch.nn.functional.adaptive_avg_pool2d(t, out), [x], dtype,
                            run)
        check_against_torch(lambda t: F.adaptive_max_pool2d(t, out, True),
                            lambda t: torch.nn.functional.adaptive_max_pool2d(t, out, True), [x],
                            dtype, run)


@pytest.mark.parametrize("run", sorted(RUNS))
@pytest.mark.parametrize("out", [1, 3, 4, 11, 13])
def test_adaptive_pools_1d_match_torch(out, run):
    torch = _torch()
    for x in (arr(2, 3, 11), arr(3, 11))[:1 if run == "compiled" else 2]:
        check_against_torch(lambda t: F.adaptive_avg_pool1d(t, out),
                            lambda t: torch.nn.functional.adaptive_avg_pool1d(t, out), [x],
                            "float64", run)
        check_against_torch(lambda t: F.adaptive_max_pool1d(t, out, return_indices=True),
                            lambda t: torch.nn.functional.adaptive_max_pool1d(
                                t, out, return_indices=True), [x], "float64", run)


def test_adaptive_pool_to_zero_size():
    torch = _torch()
    x = minaot.tensor(arr(2, 3, 4, 4), requires_grad=True)
    y = F.adaptive_avg_pool2d(x, 0)
    assert y.shape == tuple(torch.nn.functional.adaptive_avg_pool2d(torch.zeros(2, 3, 4, 4), 0).shape)
    y.sum().backward()
    assert_close(x.grad, np.zeros((2, 3, 4, 4)))
    v, i = F.adaptive_max_pool2d(x, (0, 2), return_indices=True)
    assert v.shape == i.shape == (2, 3, 0, 2) and i.dtype is minaot.int64


@pytest.mark.parametrize("call", [
    lambda F_, x: F_.max_pool2d(x, 2, padding=2),
    lambda F_, x: F_.max_pool2d(x, 3, padding=-1),
    lambda F_, x: F_.max_pool2d(x, 3, stride=0),
    lambda F_, x: F_.max_pool2d(x, 0),
    lambda F_, x: F_.max_pool2d(x, 2, dilation=0),
    lambda F_, x: F_.max_pool2d(x, 8),
    lambda F_, x: F_.max_pool2d(x[0, 0], 2),
    lambda F_, x: F_.max_pool2d(x[None], 2),
    lambda F_, x: F_.max_pool2d(x, (2, 2, 2)),
    lambda F_, x: F_.max_pool2d(x[:, :0], 2),
    lambda F_, x: F_.max_pool2d(x > 0, 2),
    lambda F_, x: F_.max_pool1d(x, 2),
    lambda F_, x: F_.max_pool1d(x[0], (2, 2)),
    lambda F_, x: F_.avg_pool2d(x, 2, padding=2),
    lambda F_, x: F_.avg_pool2d(x, 2, divisor_override=0),
    lambda F_, x: F_.avg_pool2d(x, 8),
    lambda F_, x: F_.avg_pool1d(x, 2),
    lambda F_, x: F_.adaptive_avg_pool2d(x, (2, 2, 2)),
    lambda F_, x: F_.adaptive_avg_pool2d(x, -1),
    lambda F_, x: F_.adaptive_avg_pool2d(x[0, 0], 2),
    lambda F_, x: F_.adaptive_avg_pool2d(x[:, :, :0], 2),
    lambda F_, x: F_.adaptive_max_pool2d(x[0, 0], 2),
    lambda F_, x: F_.adaptive_max_pool2d(x[:, :0], 2),
], ids=["pad-too-big", "pad-negative", "stride-0", "kernel-0", "dilation-0", "output-empty",
        "2d-input", "5d-input", "kernel-3", "no-channels", "bool", "1d-4d-input", "1d-kernel-2",
        "avg-pad", "avg-divisor-0", "avg-output-empty", "avg1d-4d-input", "adaptive-size-3",
        "adaptive-negative", "adaptive-2d-input", "adaptive-empty", "adaptive-max-2d-input",
        "adaptive-max-no-channels"])
def test_pool_errors_like_torch(call):
    torch = _torch()
    x = np.float32(arr(2, 3, 7, 7))
    with pytest.raises(Exception) as want:
        call(torch.nn.functional, torch.tensor(x))
    with pytest.raises(type(want.value)) as got:
        call(F, minaot.tensor(x))
    assert "pool" in str(got.value)


def test_pools_without_torch_against_numpy_and_finite_differences():
    x = RNG.permutation(2 * 3 * 6 * 7).reshape(2, 3, 6, 7) * 0.1      # no ties
    v, i = F.max_pool2d(minaot.tensor(x), 3, 2, 1, ceil_mode=True, return_indices=True)
    wv, wi = get_op("max_pool").impl(x, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1),
                                     dilation=(1, 1), ceil_mode=True)
    assert_close(v, wv)
    np.testing.assert_array_equal(i.numpy(), wi)
    assert_close(F.avg_pool2d(minaot.tensor(x), 3, 2, 1, True, False),
                 get_op("avg_pool").impl(x, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1),
                                         ceil_mode=True, count_include_pad=False,
                                         divisor_override=None))
    assert_close(F.adaptive_avg_pool2d(minaot.tensor(x), (4, 5)),
                 get_op("adaptive_avg_pool").impl(x, output_size=(4, 5)))
    t = minaot.tensor(x[:1, :2], requires_grad=True)
    gradcheck(lambda a: F.max_pool2d(a, 2, 1, 1), [t])
    gradcheck(lambda a: F.avg_pool2d(a, 3, 2, 1, True, False), [t])
    gradcheck(lambda a: F.adaptive_avg_pool2d(a, (4, 5)), [t])
    gradcheck(lambda a: F.adaptive_max_pool2d(a, (4, 5)), [t])


# ------------------------------------------------------------------ dropout2d
def test_dropout2d_zeroes_whole_channels():
    minaot.manual_seed(0)
    x = minaot.ones(8, 16, 3, 3, requires_grad=True)
    y = F.dropout2d(x, 0.5)
    planes = y.detach().numpy().reshape(8, 16, 9)
    assert set(np.unique(planes)) <= {0.0, 2.0}
    assert (planes.min(2) == planes.max(2)).all()             # each plane all kept or all dropped
    assert 0 < (planes[:, :, 0] == 0).sum() < 8 * 16
    y.sum().backward()
    assert_close(x.grad, minaot.tensor(planes.reshape(8, 16, 3, 3)))
    assert F.dropout2d(x, 0.5, training=False) is x
    with pytest.warns(UserWarning, match="3D input"):
        z = F.dropout2d(minaot.ones(4, 5, 6), 0.5).numpy()
    assert (z.reshape(4, 30).min(1) == z.reshape(4, 30).max(1)).all()    # (N, C, L): per N
    with pytest.raises(ValueError):
        F.dropout2d(x, 1.5)
    with pytest.raises(RuntimeError):
        F.dropout2d(minaot.ones(2, 3, 4, 4, dtype=minaot.int64), 0.5)
    m = nn.Dropout2d(0.3)
    assert repr(m) == "Dropout2d(p=0.3, inplace=False)"
    m.eval()
    assert m(x) is x


# ------------------------------------------------------------------ modules
def test_conv_modules_init_like_torch():
    torch = _torch()
    minaot.manual_seed(0)
    m = nn.Conv2d(6, 8, (3, 2), stride=2, padding=1, groups=2)
    bound = 1 / math.sqrt(3 * 3 * 2)
    for p in (m.weight, m.bias):
        v = p.detach().numpy()
        assert v.dtype == np.float32 and np.abs(v).max() <= bound and np.abs(v).max() > 0.8 * bound
    assert m.weight.shape == (8, 3, 3, 2) and m.bias.shape == (8,)
    assert m.kernel_size == (3, 2) and m.stride == (2, 2) and m.padding == (1, 1)
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    for args, kw in [((3, 4, 3), dict(padding="same", dilation=2, bias=False)),
                     ((4, 8, (3, 2)), dict(padding="same", groups=2, padding_mode="reflect")),
                     ((3, 4, 1), dict(stride=(2, 1), padding=(0, 1), padding_mode="circular"))]:
        assert repr(nn.Conv2d(*args, **kw)) == repr(torch.nn.Conv2d(*args, **kw))
    assert repr(nn.Conv1d(3, 4, 5, 2, 1)) == repr(torch.nn.Conv1d(3, 4, 5, 2, 1))
    m1 = nn.Conv1d(4, 6, 3, dtype=minaot.float64)
    assert m1.weight.dtype is minaot.float64 and m1.weight.shape == (6, 4, 3)
    for kw in [dict(groups=3), dict(padding="full"), dict(stride=2, padding="same"),
               dict(padding_mode="wrap"), dict(groups=0)]:
        with pytest.raises(ValueError):
            torch.nn.Conv2d(4, 6, 3, **kw)
        with pytest.raises(ValueError):
            nn.Conv2d(4, 6, 3, **kw)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [1, "same", (2, 0)])
def test_conv2d_module_padding_modes_match_torch(mode, padding):
    torch = _torch()
    tm = torch.nn.Conv2d(4, 6, (3, 2), padding=padding, padding_mode=mode, groups=2,
                         dtype=torch.float64)
    m = nn.Conv2d(4, 6, (3, 2), padding=padding, padding_mode=mode, groups=2,
                  dtype=minaot.float64)
    m.load_state_dict({k: minaot.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = arr(2, 4, 5, 6)
    check_against_torch(lambda t: m(t), lambda t: tm(t), [x], "float64", "eager")


def test_pool_modules_match_torch():
    torch = _torch()
    x = arr(2, 3, 7, 8)
    pairs = [
        (nn.MaxPool2d(3, 2, 1), torch.nn.MaxPool2d(3, 2, 1)),
        (nn.MaxPool2d(2, return_indices=True), torch.nn.MaxPool2d(2, return_indices=True)),
        (nn.MaxPool2d((2, 3), ceil_mode=True, dilation=(1, 2)),
         torch.nn.MaxPool2d((2, 3), ceil_mode=True, dilation=(1, 2))),
        (nn.AvgPool2d(3, 2, 1, count_include_pad=False),
         torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False)),
        (nn.AvgPool2d(2, divisor_override=3), torch.nn.AvgPool2d(2, divisor_override=3)),
        (nn.AdaptiveAvgPool2d((1, 1)), torch.nn.AdaptiveAvgPool2d((1, 1))),
        (nn.AdaptiveAvgPool2d((3, None)), torch.nn.AdaptiveAvgPool2d((3, None))),
        (nn.AdaptiveMaxPool2d(3, return_indices=True), torch.nn.AdaptiveMaxPool2d(3, True)),
    ]
    for m, tm in pairs:
        assert repr(m) == repr(tm)
        _same(m(minaot.tensor(x)), tm(torch.tensor(x)), TOL["float64"])
    x1 = arr(2, 3, 9)
    for m, tm in [(nn.MaxPool1d(3, 2, 1), torch.nn.MaxPool1d(3, 2, 1)),
                  (nn.AvgPool1d(3, 2, 1, True, False), torch.nn.AvgPool1d(3, 2, 1, True, False)),
                  (nn.AdaptiveAvgPool1d(4), torch.nn.AdaptiveAvgPool1d(4)),
                  (nn.AdaptiveMaxPool1d(4), torch.nn.AdaptiveMaxPool1d(4))]:
        assert repr(m) == repr(tm)
        _same(m(minaot.tensor(x1)), tm(torch.tensor(x1)), TOL["float64"])


def test_padding_modules_match_torch():
    torch = _torch()
    x = arr(2, 3, 4, 5)
    for name, args in [("ZeroPad1d", (2,)), ("ZeroPad2d", ((1, 2, 0, 3),)),
                       ("ConstantPad1d", ((1, 0), 3.5)), ("ConstantPad2d", (1, -1.0)),
                       ("ReflectionPad1d", (2,)), ("ReflectionPad2d", ((1, 0, 2, 1),)),
                       ("ReplicationPad1d", ((3, 1),)), ("ReplicationPad2d", (2,)),
                       ("CircularPad1d", (1,)), ("CircularPad2d", ((1, 2, 3, 0),))]:
        m, tm = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
        assert repr(m) == repr(tm) and m.padding == tm.padding
        a = x[0] if name.endswith("1d") else x
        _same(m(minaot.tensor(a)), tm(torch.tensor(a)), TOL["float64"])


def _copy_params(m, tm):
    import torch
    with torch.no_grad():
        for (name, p), (tname, tp) in zip(m.named_parameters(), tm.named_parameters()):
            assert name == tname
            tp.copy_(torch.tensor(p.detach().numpy()))


def test_batchnorm2d_matches_torch_in_training_and_eval():
    torch = _torch()
    m, tm = nn.BatchNorm2d(3, dtype=minaot.float64), torch.nn.BatchNorm2d(3, dtype=torch.float64)
    assert [n for n, _ in m.named_buffers()] == ["running_mean", "running_var",
                                                 "num_batches_tracked"]
    for step in range(3):
        x = arr(4, 3, 5, 6) * (step + 1) + step
        check_against_torch(lambda t: m(t), lambda t: tm(t), [x], "float64", "eager")
    assert_close(m.running_mean, tm.running_mean.numpy())
    assert_close(m.running_var, tm.running_var.numpy())
    assert int(m.num_batches_tracked.item()) == 3
    m.eval(), tm.eval()
    check_against_torch(lambda t: m(t), lambda t: tm(t), [arr(2, 3, 4, 4)], "float64", "eager")
    for bad in (arr(3, 4, 4), arr(2, 4, 4, 4)):
        with pytest.raises(ValueError):
            m(minaot.tensor(bad))
    with pytest.raises(ValueError):
        nn.BatchNorm2d(3).train()(minaot.zeros(1, 3, 1, 1))
    m2 = nn.BatchNorm2d(3, affine=False, track_running_stats=False)
    assert m2.running_mean is None and m2.weight is None
    assert_close(m2(minaot.tensor(np.float32(arr(2, 3, 2, 2)))).mean((0, 2, 3)),
                 np.zeros(3, np.float32), atol=1e-6)


class SmallCNN(nn.Module):
    def __init__(self, dtype=None):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, dtype=dtype)
        self.bn = nn.BatchNorm2d(4, dtype=dtype)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, dtype=dtype)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 5, dtype=dtype)

    def forward(self, x):
        x = self.pool(F.relu(self.bn(self.conv1(x))))
        x = F.avg_pool2d(F.relu(self.conv2(F.pad(x, (1, 0, 0, 1), mode="reflect"))), 1)
        return self.fc(self.gap(x).flatten(1))


def test_small_cnn_eager_compiled_and_torch_agree_in_training():
    """aot_module of a CNN with BatchNorm2d in training (a buffer mutated in the forward):
    outputs, gradients and running statistics equal eager's and PyTorch's."""
    torch = _torch()
    minaot.manual_seed(0)
    eager, comp = SmallCNN(minaot.float64), SmallCNN(minaot.float64)
    comp.load_state_dict(eager.state_dict())
    compiled_model = minaot.aot_module(comp, fw_compiler=minaot.numba_compiler,
                                       bw_compiler=minaot.numba_compiler)

    class TorchCNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(4)
            self.pool = torch.nn.MaxPool2d(2)
            self.conv2 = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
            self.gap = torch.nn.AdaptiveAvgPool2d(1)
            self.fc = torch.nn.Linear(6, 5)

        def forward(self, x):
            f = torch.nn.functional
            x = self.pool(f.relu(self.bn(self.conv1(x))))
            x = f.avg_pool2d(f.relu(self.conv2(f.pad(x, (1, 0, 0, 1), mode="reflect"))), 1)
            return self.fc(self.gap(x).flatten(1))

    tm = TorchCNN().double()
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in eager.state_dict().items()})
    for step in range(2):
        x = arr(2, 3, 8, 8)
        outs = []
        for model in (eager, compiled_model):
            model.zero_grad()
            y = model(minaot.tensor(x))
            (y * y).sum().backward()
            outs.append((y, [p.grad for p in model.parameters()]))
        tm.zero_grad()
        ty = tm(torch.tensor(x))
        (ty * ty).sum().backward()
        for y, grads in outs:
            assert_close(y, ty.detach().numpy(), rtol=1e-9, atol=1e-9)
            for g, tp in zip(grads, tm.parameters()):
                assert_close(g, tp.grad.numpy(), rtol=1e-8, atol=1e-9)
    for model in (eager, comp):
        assert_close(model.bn.running_mean, tm.bn.running_mean.numpy(), rtol=1e-10, atol=1e-12)
        assert_close(model.bn.running_var, tm.bn.running_var.numpy(), rtol=1e-10, atol=1e-12)


def test_conv2d_compiles_in_seconds_with_a_small_program():
    """A conv2d on (2, 3, 8, 8) compiles to few ops and kernels (kh + kw slices and two
    cat per window dim, one matmul), forward and backward."""
    x = minaot.randn(2, 3, 8, 8, requires_grad=True)
    w = minaot.randn(4, 3, 3, 3, requires_grad=True)
    b = minaot.randn(4, requires_grad=True)
    graphs = {}

    def keep(graph, example_inputs):
        graphs[len(graphs)] = graph
        return minaot.numba_compiler(graph, example_inputs)

    start = time.perf_counter()
    f = minaot.aot_function(lambda x, w, b: F.conv2d(x, w, b, padding=1, stride=1),
                            fw_compiler=keep, bw_compiler=keep)
    y = f(x, w, b)
    y.sum().backward()
    took = time.perf_counter() - start
    fw, bw = graphs[0], graphs[1]
    assert len(fw.ops) < 40 and len(bw.ops) < 80, (len(fw.ops), len(bw.ops))
    assert took < 120, took          # seconds, with Numba compiling every kernel afresh
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = get_op("conv").impl(x.detach().numpy(), w.detach().numpy(), b.detach().numpy(),
                                  stride=(1, 1), padding=(1, 1, 1, 1), dilation=(1, 1), groups=1)
    assert_close(y, ref, rtol=1e-4, atol=1e-4)
