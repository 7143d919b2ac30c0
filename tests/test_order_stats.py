"""median, nanmedian, kthvalue, mode, quantile and nanquantile (minaot/ops/order_stats.py)
against numpy written out here and, where torch is installed, against torch itself:
values, indices, NaN, ties, keepdim, 0-d and empty inputs, errors, and gradients (eager,
compiled with the numba backend, finite differences in float64)."""

import numpy as np
import pytest

import minaot
from minaot._errors import DTypeError
from minaot.testing import assert_close, gradcheck
from runs import RUNS, compiled

T = minaot.tensor
R = np.random.default_rng(0)
nan = np.nan
pytestmark = pytest.mark.tensor


def _stable_kth(a, k, axis):
    """Values and positions of the k-th (from 0) element of each sorted line, the stable
    order of numpy's argsort (NaN last)."""
    order = np.argsort(a, axis=axis, kind="stable")
    idx = np.take(order, [k], axis=axis)
    return np.take_along_axis(a, idx, axis).squeeze(axis), idx.squeeze(axis)


# ------------------------------------------------------------------ median, nanmedian
@pytest.mark.parametrize("run", sorted(RUNS))
def test_median_along_a_dim_is_the_lower_median(run):
    a = R.integers(0, 5, (4, 7)).astype(np.float64)        # ties
    for dim, n in ((1, 7), (0, 4)):
        v, i = RUNS[run](lambda x: x.median(dim))(T(a))
        wv, wi = _stable_kth(a, (n - 1) // 2, dim)
        assert i.dtype is minaot.int64 and i.tolist() == wi.tolist()
        np.testing.assert_array_equal(v.numpy(), wv)
        np.testing.assert_array_equal(v.numpy(), np.sort(a, dim).take((n - 1) // 2, dim))
    v, i = RUNS[run](lambda x: minaot.median(x, 1, keepdim=True))(T(a))
    assert v.shape == i.shape == (4, 1)
    v = RUNS[run](lambda x: x.median())(T(a))
    assert v.shape == () and v.item() == np.sort(a, None)[(a.size - 1) // 2]
    assert RUNS[run](lambda x: x.median())(T([2, 1, 3, 4])).tolist() == 2


@pytest.mark.parametrize("run", sorted(RUNS))
def test_median_propagates_nan_nanmedian_skips_it(run):
    a = np.array([[1.0, nan, 3.0, nan, 0.0], [nan, nan, nan, nan, nan], [4.0, 1.0, 2.0, 0.0, 2.0]])
    v, i = RUNS[run](lambda x: x.median(1))(T(a))
    assert i.tolist() == [1, 0, 2] and str(v.tolist()) == "[nan, nan, 2.0]"   # the first NaN
    v, i = RUNS[run](lambda x: x.nanmedian(1))(T(a))
    assert i.tolist() == [0, 2, 2] and str(v.tolist()) == "[1.0, nan, 2.0]"   # torch 2.13's
    assert np.isnan(RUNS[run](lambda x: x.median())(T(a)).item())
    assert RUNS[run](lambda x: x.nanmedian())(T(a)).item() == 1.0
    assert RUNS[run](lambda x: minaot.nanmedian(x, 0))(T([1, 5, 3])).indices.tolist() == 2
    i = RUNS[run](lambda x: x.nanmedian(1).indices)(minaot.full((3, 9), nan))
    assert i.tolist() == [7, 7, 7]          # libstdc++'s nth_element, as on PyTorch's CPU


def test_median_0d_empty_and_errors():
    for fn in (minaot.median, minaot.nanmedian):
        v, i = fn(T(3.0), 0)
        assert v.shape == i.shape == () and v.item() == 3.0 and i.item() == 0
        assert fn(T(3.0)).item() == 3.0
        assert np.isnan(fn(minaot.zeros(0)).item())
        v, i = fn(minaot.zeros(0, 3), 1)
        assert v.shape == i.shape == (0,)
        with pytest.raises(IndexError, match="Expected reduction dim 1 to have non-zero size"):
            fn(minaot.zeros(2, 0), 1)
        with pytest.raises(DTypeError, match="not implemented for bool"):
            fn(T([True, False]))
    with pytest.raises(IndexError, match="median: dimension out of range"):
        minaot.median(T([1.0]), 1)


@pytest.mark.parametrize("run", sorted(RUNS))
def test_median_gradients(run):
    """With dim: to the position in ``indices``; without: split evenly between the elements
    equal to the median (every NaN when it is NaN), PyTorch's rule."""
    x = T([[1.0, 5.0, 2.0], [4.0, 2.0, 2.0]], requires_grad=True)
    RUNS[run](lambda x: (x.median(1).values * T([1.0, 10.0])).sum())(x).backward()
    assert x.grad.tolist() == [[0.0, 0.0, 1.0], [0.0, 0.0, 10.0]]
    for data, want in (([1.0, 2.0, 2.0, 2.0, 5.0], [0, 1 / 3, 1 / 3, 1 / 3, 0]),
                       ([1.0, nan, 2.0, nan, 5.0], [0, 0.5, 0, 0.5, 0])):
        x = T(data, requires_grad=True)
        RUNS[run](lambda x: x.median() * 3)(x).backward()
        assert_close(x.grad, T(want) * 3)
    x = T([1.0, nan, 2.0, nan, 5.0], requires_grad=True)
    RUNS[run](lambda x: x.nanmedian())(x).backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    x = T(R.standard_normal((3, 5)), requires_grad=True)
    gradcheck(lambda x: x.median(1).values, [x])
    gradcheck(lambda x: x.median(), [x])
    gradcheck(compiled(lambda x: x.nanmedian(0).values * x.median()), [x])


# ------------------------------------------------------------------ kthvalue
@pytest.mark.parametrize("run", sorted(RUNS))
def test_kthvalue(run):
    a = R.standard_normal((4, 6))
    for k in (1, 3, 6):
        v, i = RUNS[run](lambda x: x.kthvalue(k))(T(a))
        wv, wi = _stable_kth(a, k - 1, 1)
        assert i.tolist() == wi.tolist() and v.tolist() == wv.tolist()
    v, i = RUNS[run](lambda x: minaot.kthvalue(x, 2, 0, keepdim=True))(T(a))
    wv, wi = _stable_kth(a, 1, 0)
    assert v.shape == (1, 6) and i.tolist() == [wi.tolist()]
    v, i = RUNS[run](lambda x: x.kthvalue(3))(T([3.0, nan, 1.0]))      # NaN largest
    assert np.isnan(v.item()) and i.item() == 1
    x = T(a, requires_grad=True)
    RUNS[run](lambda x: x.kthvalue(2).values.sum())(x).backward()
    want = np.zeros_like(a)
    np.put_along_axis(want, _stable_kth(a, 1, 1)[1][:, None], 1.0, 1)
    assert x.grad.tolist() == want.tolist()


def test_kthvalue_edges_and_errors():
    v, i = T(4.0).kthvalue(1)
    assert v.item() == 4.0 and i.item() == 0
    assert minaot.zeros(0, 3).kthvalue(1)[0].shape == (0,)
    with pytest.raises(RuntimeError, match="kthvalue: selected number k out of range for "
                                           "dimension 0"):
        T([3.0, 1.0]).kthvalue(3)
    with pytest.raises(RuntimeError, match="k out of range"):
        T([3.0, 1.0]).kthvalue(0)
    with pytest.raises(IndexError, match="kthvalue: Expected reduction dim 1"):
        minaot.zeros(2, 0).kthvalue(1)
    with pytest.raises(DTypeError, match="kthvalue: not implemented for bool"):
        T([True]).kthvalue(1)


# ------------------------------------------------------------------ mode
def _np_mode(line):
    vals, counts = np.unique(line, return_counts=True)
    m = vals[np.argmax(counts)]                        # the smallest of the most frequent
    return m, np.flatnonzero(line == m)[-1]            # its last position


@pytest.mark.parametrize("run", sorted(RUNS))
def test_mode(run):
    a = R.integers(0, 4, (5, 9))
    v, i = RUNS[run](lambda x: x.mode())(T(a))
    want = [_np_mode(r) for r in a]
    assert v.tolist() == [m for m, _ in want] and i.tolist() == [p for _, p in want]
    v, i = RUNS[run](lambda x: minaot.mode(x.double(), 0, keepdim=True))(T(a))
    want = [_np_mode(c) for c in a.T]
    assert v.shape == (1, 9) and v.dtype is minaot.float64
    assert v.tolist() == [[m for m, _ in want]] and i.tolist() == [[p for _, p in want]]
    v, i = RUNS[run](lambda x: x.mode(0))(T([True, False, True]))
    assert v.item() is True and i.item() == 2
    x = T([[1.0, 2.0, 2.0, 1.0, 3.0]], requires_grad=True)
    RUNS[run](lambda x: x.mode(1).values.sum() * 2)(x).backward()
    assert x.grad.tolist() == [[0.0, 0.0, 0.0, 2.0, 0.0]]          # torch 2.13's


def test_mode_edges():
    v, i = T(2.0).mode()
    assert v.item() == 2.0 and i.item() == 0
    v, i = T([[7.0], [8.0]]).mode(1)
    assert v.tolist() == [7.0, 8.0] and i.tolist() == [0, 0]
    assert minaot.zeros(0, 3).mode(1)[0].shape == (0,)
    with pytest.raises(IndexError, match="mode: Expected reduction dim 1"):
        minaot.zeros(2, 0).mode(1)


# ------------------------------------------------------------------ quantile, nanquantile
@pytest.mark.parametrize("run", sorted(RUNS))
@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint", "nearest"])
def test_quantile_matches_numpy(run, interpolation):
    a = R.standard_normal((4, 7))
    q = np.array([0.0, 0.3, 0.5, 0.625, 1.0])
    np_method = interpolation
    for dim in (None, 0, 1):
        out = RUNS[run](lambda x, q: x.quantile(q, dim, interpolation=interpolation))(T(a), T(q))
        assert_close(out, T(np.quantile(a, q, axis=dim, method=np_method)))
        out = RUNS[run](lambda x: minaot.quantile(x, 0.4, dim, True,
                                                  interpolation=interpolation))(T(a))
        assert_close(out, T(np.quantile(a, 0.4, axis=dim, keepdims=True, method=np_method)))


@pytest.mark.filterwarnings("ignore:All-NaN slice")      # numpy's nanquantile, the oracle
@pytest.mark.parametrize("run", sorted(RUNS))
def test_quantile_nan_and_nanquantile(run):
    a = np.array([[1.0, 5.0, 2.0, 8.0], [4.0, nan, 2.0, 2.0], [nan, nan, nan, nan]])
    out = RUNS[run](lambda x: x.quantile(0.4, dim=1))(T(a))
    np.testing.assert_array_equal(out.numpy(), np.quantile(a, 0.4, axis=1))
    out = RUNS[run](lambda x: x.nanquantile(T([0.4, 1.0], dtype=minaot.float64), dim=1))(T(a))
    np.testing.assert_allclose(out.numpy(), np.nanquantile(a, [0.4, 1.0], axis=1), rtol=1e-12)


def test_quantile_shapes_and_errors():
    x = minaot.ones(2, 3)
    q = T([0.25, 0.5])
    assert x.quantile(q, 1, keepdim=True).shape == (2, 2, 1)
    assert x.quantile(q, 0, keepdim=True).shape == (2, 1, 3)
    assert x.quantile(q, keepdim=True).shape == (2, 1, 1)
    assert x.quantile(0.5, keepdim=True).shape == (1, 1)
    assert x.quantile(q).shape == (2,) and x.quantile(0.5).shape == ()
    assert T(3.0).quantile(q, 0).tolist() == [3.0, 3.0]
    for bad, message in (
            (lambda: T([1, 2]).quantile(0.5), "input tensor must be either float or double"),
            (lambda: x.quantile(1.5), r"q must be in the range \[0, 1\] but got 1.5"),
            (lambda: x.quantile(nan), r"q must be in the range \[0, 1\] but got nan"),
            (lambda: x.quantile(T([0.5, 2.0])), r"q values must be in the range \[0, 1\]"),
            (lambda: x.quantile(T([0.5], dtype=minaot.float64)), "q tensor must be same dtype"),
            (lambda: x.quantile(T([[0.5]])), "q must be a scalar or 1D tensor"),
            (lambda: minaot.zeros(0, 3).quantile(0.5, 1), "input tensor must be non-empty"),
            (lambda: x.quantile(0.5, interpolation="foo"), "interpolation must be one of")):
        with pytest.raises(RuntimeError, match=message):
            bad()


@pytest.mark.parametrize("run", sorted(RUNS))
def test_quantile_gradient(run):
    x = T([3.0, 1.0, 2.0, 7.0], requires_grad=True)
    RUNS[run](lambda x: x.quantile(0.4))(x).backward()
    assert_close(x.grad, T([0.2, 0.0, 0.8, 0.0]))               # torch 2.13's
    x = T(R.standard_normal((3, 5)), requires_grad=True)
    gradcheck(lambda x: x.quantile(T([0.1, 0.7], dtype=minaot.float64), dim=1), [x])
    gradcheck(compiled(lambda x: x.nanquantile(0.3, 0, interpolation="midpoint")), [x])


# ------------------------------------------------------------------ against torch
def test_order_statistics_match_torch():
    """Values, indices and gradients (a weighted sum of the values) equal torch 2.13's, on
    lines with ties and NaN and on distinct values."""
    torch = pytest.importorskip("torch")
    a = R.integers(0, 5, (4, 9)).astype(np.float32)
    a[0, 3] = a[2, 5] = a[2, 7] = nan
    distinct = R.permutation(36).reshape(4, 9).astype(np.float32)
    with_indices = {
        "median": lambda L, x: L.median(x, 1),
        "nanmedian": lambda L, x: L.nanmedian(x, 1),
        "median dim 0": lambda L, x: L.median(x, 0),
        "nanmedian keepdim": lambda L, x: L.nanmedian(x, 0, keepdim=True),
        "mode": lambda L, x: L.mode(L.nan_to_num(x[:, :7]), 1),       # short lines: torch's
        "kthvalue": lambda L, x: L.kthvalue(x, 2, 1)}                 # index is the stable one
    values_only = {
        "median()": lambda L, x: L.median(x),
        "nanmedian()": lambda L, x: L.nanmedian(x),
        "quantile": lambda L, x: L.quantile(x, 0.3, 1),
        "nanquantile": lambda L, x: L.nanquantile(x, L.tensor([0.2, 0.9]), 1),
        "nanquantile nearest": lambda L, x: L.nanquantile(x, 0.5, 0, interpolation="nearest")}
    for name, call in list(with_indices.items()) + list(values_only.items()):
        for data in (a, distinct):
            if name == "kthvalue" and data is a:
                continue                 # ties: PyTorch's quickselect picks its own index
            tx = torch.tensor(data, requires_grad=True)
            tout = call(torch, tx)
            tv = tout[0] if name in with_indices else tout
            weights = R.standard_normal(tuple(tv.shape)).astype(np.float32)
            (tv * torch.tensor(weights)).sum().backward()
            for f in RUNS.values():
                x = T(data, requires_grad=True)
                out = f(lambda x: call(minaot, x))(x)
                v = out[0] if name in with_indices else out
                (v * T(weights)).sum().backward()
                np.testing.assert_allclose(v.detach().numpy(), tv.detach().numpy(), rtol=1e-6,
                                           err_msg=name)
                if name in with_indices:
                    assert out[1].tolist() == tout[1].tolist(), name
                np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5,
                                           atol=1e-6, err_msg=name)
