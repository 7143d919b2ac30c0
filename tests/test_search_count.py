"""searchsorted, bucketize, histc, bincount, unique and unique_consecutive
(minaot/ops/search_count.py) against numpy and, where torch is installed, against torch
itself: values, dtypes, shapes, NaN, errors; searchsorted, bucketize and histc compiled
(numba backend), the ops whose size depends on the values refusing to be traced."""

import numpy as np
import pytest

import minaot
from minaot._errors import DTypeError, ShapeError
from runs import RUNS, compiled

T = minaot.tensor
R = np.random.default_rng(0)
nan = np.nan
pytestmark = pytest.mark.tensor


# ------------------------------------------------------------------ searchsorted, bucketize
@pytest.mark.parametrize("run", sorted(RUNS))
@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_matches_numpy(run, right):
    side = "right" if right else "left"
    seq = np.sort(R.integers(0, 6, 9)).astype(np.float64)       # repeated boundaries
    values = R.integers(-1, 8, (3, 4)).astype(np.float64)
    out = RUNS[run](lambda s, v: minaot.searchsorted(s, v, right=right))(T(seq), T(values))
    assert out.dtype is minaot.int64 and out.shape == (3, 4)
    assert out.tolist() == np.searchsorted(seq, values, side=side).tolist()
    rows = np.sort(R.standard_normal((2, 3, 5)), -1)             # one row per leading index
    values = R.standard_normal((2, 3, 4))
    out = RUNS[run](lambda s, v: minaot.searchsorted(s, v, side=side))(T(rows), T(values))
    want = [[np.searchsorted(rows[i, j], values[i, j], side=side) for j in range(3)]
            for i in range(2)]
    assert out.tolist() == np.array(want).tolist()
    b = RUNS[run](lambda v, b: minaot.bucketize(v, b, right=right))(T(values), T(seq))
    assert b.tolist() == np.searchsorted(seq, values, side=side).tolist()


def test_searchsorted_nan_scalars_sorter_and_empty():
    seq = T([1.0, 3.0, 3.0, 5.0, nan])                   # PyTorch's comparisons, step by step
    assert minaot.searchsorted(seq, T([[0.0, 3.0, 4.0], [5.0, nan, 9.0]])).tolist() == \
        [[0, 1, 5], [5, 5, 5]]
    assert minaot.searchsorted(seq, T([0.0, 3.0, 4.0]), right=True).tolist() == [0, 5, 5]
    out = minaot.searchsorted(seq, 3.0)
    assert out.shape == () and out.item() == 1
    assert minaot.searchsorted(T([1, 3, 5]), 3, side="right").item() == 2
    assert minaot.searchsorted(T([1, 3, 5]), T([2.5, 3.0])).tolist() == [1, 1]   # promoted
    assert minaot.bucketize(3, T([1, 3, 5])).item() == 1
    s = T([5.0, 1.0, 3.0])
    assert minaot.searchsorted(s, T([2.0, 5.0, 6.0]), sorter=T([1, 2, 0])).tolist() == [1, 2, 3]
    assert minaot.searchsorted(T([[1, 3], [0, 1]]), T([[2], [2]]),
                               sorter=T([[0, 1], [1, 0]])).tolist() == [[1], [2]]
    assert minaot.searchsorted(T([1, 3]), T([], dtype=minaot.int64)).shape == (0,)
    assert minaot.searchsorted(T([], dtype=minaot.int64), T([1, 2])).tolist() == [0, 0]


def test_searchsorted_errors():
    seq = T([1.0, 3.0, 5.0])
    for bad, kind, message in (
            (lambda: minaot.searchsorted(seq, T([1.0]), right=True, side="left"), RuntimeError,
             "side and right can't be set to opposites"),
            (lambda: minaot.searchsorted(seq, T([1.0]), side="up"), RuntimeError,
             "side can only be 'left' or 'right' but got up"),
            (lambda: minaot.searchsorted(T([[1, 3], [2, 4]]), T([[1, 2]])), ShapeError,
             r"boundaries tensor \[2, 2\] and input value tensor \[1, 2\]"),
            (lambda: minaot.searchsorted(T([[1, 3], [2, 4]]), 3), RuntimeError,
             "input value can be a scalar only when boundaries tensor dimension is 1"),
            (lambda: minaot.searchsorted(T(3.0), T([1.0])), RuntimeError,
             "boundaries tensor should have positive dimension"),
            (lambda: minaot.searchsorted(seq, T([1.0]), sorter=T([1, 2, 3])), RuntimeError,
             "sorter index out of range"),
            (lambda: minaot.searchsorted(seq, T([1.0]), sorter=T([1, 2])), ShapeError,
             "boundary and sorter must have the same size"),
            (lambda: minaot.searchsorted(seq, T([1.0]), sorter=T([1.0, 2.0, 0.0])), DTypeError,
             "sorter must be a tensor of long dtype but got dtype float32"),
            (lambda: minaot.bucketize(T([1.0]), T([[1.0]])), RuntimeError,
             r"boundaries tensor must be 1 dimension, but got dim\(2\)")):
        with pytest.raises(kind, match=message):
            bad()


def test_out_int32_gives_int32():
    seq = T([1.0, 2.0, 4.0])
    for got in (minaot.searchsorted(seq, T([0.5, 2.0, 9.0]), out_int32=True),
                minaot.bucketize(T([0.5, 2.0, 9.0]), seq, out_int32=True)):
        assert got.dtype is minaot.int32
        np.testing.assert_array_equal(got.numpy(), [0, 1, 3])


def test_searchsorted_bucketize_match_torch():
    torch = pytest.importorskip("torch")
    seq = np.sort(R.integers(0, 9, (3, 10)), -1).astype(np.float32)
    seq[1, -2:] = nan
    values = R.integers(-1, 11, (3, 6)).astype(np.float32)
    values[0, 1] = values[2, 3] = nan
    for right in (False, True):
        want = torch.searchsorted(torch.tensor(seq), torch.tensor(values), right=right)
        flat = torch.searchsorted(torch.tensor(seq[0]), torch.tensor(values), right=right)
        buckets = torch.bucketize(torch.tensor(values), torch.tensor(seq[2]), right=right)
        for f in RUNS.values():
            assert f(lambda s, v: minaot.searchsorted(s, v, right=right))(
                T(seq), T(values)).tolist() == want.tolist()
            assert f(lambda s, v: minaot.searchsorted(s[0], v, right=right))(
                T(seq), T(values)).tolist() == flat.tolist()
            assert f(lambda s, v: minaot.bucketize(v, s[2], right=right))(
                T(seq), T(values)).tolist() == buckets.tolist()


# ------------------------------------------------------------------ histc
@pytest.mark.parametrize("run", sorted(RUNS))
def test_histc_counts_like_pytorch(run):
    x = T([1.0, 2.0, 1.0, 2.5, 7.0, -1.0, nan, 3.0, 0.0])
    h = RUNS[run](lambda x: minaot.histc(x, bins=4, min=0, max=3))(x)
    assert h.dtype is minaot.float32 and h.tolist() == [1.0, 2.0, 1.0, 2.0]   # 3.0: last bin
    h = RUNS[run](lambda x: x.histc(10, 0, 1))(T([0.1, 0.2, 0.3, 0.7]))   # float32 edges
    assert h.tolist() == [0, 1, 1, 1, 0, 0, 0, 1, 0, 0]
    a = R.uniform(-2, 2, (5, 7))
    h = RUNS[run](lambda x: x.histc(bins=6, min=-1.5, max=1.0))(T(a))
    assert h.dtype is minaot.float64
    assert h.tolist() == np.histogram(a, 6, (-1.5, 1.0))[0].astype(float).tolist()


def test_histc_range_from_data_and_errors():
    assert minaot.histc(T([1.0, 2.0, 1.0]), bins=4).tolist() == [2.0, 0.0, 0.0, 1.0]
    assert minaot.histc(T([2.0, 2.0]), bins=4).tolist() == [0.0, 0.0, 2.0, 0.0]   # [1, 3]
    assert minaot.histc(T([], dtype=minaot.float32), bins=3).tolist() == [0.0, 0.0, 0.0]
    assert minaot.histc(T(1.5), bins=3, min=0, max=3).tolist() == [0.0, 1.0, 0.0]
    x = T([1.0, 2.0], requires_grad=True)
    assert not minaot.histc(x, bins=3).requires_grad
    for bad, kind, message in (
            (lambda: minaot.histc(T([1.0, nan]), bins=4), RuntimeError,
             r"range of \[nan, nan\] is not finite"),
            (lambda: minaot.histc(T([1.0]), min=1, max=float("inf")), RuntimeError,
             "is not finite"),
            (lambda: minaot.histc(T([1.0]), min=3, max=1), RuntimeError,
             "max must be larger than min"),
            (lambda: minaot.histc(T([1.0]), bins=0), RuntimeError, "bins must be > 0"),
            (lambda: minaot.histc(T([1, 2])), DTypeError, "histc: not implemented for int64")):
        with pytest.raises(kind, match=message):
            bad()
    with pytest.raises(minaot.TraceError, match="histc while tracing.*pass min and max"):
        compiled(lambda x: x.histc(bins=3))(T([1.0, 2.0]))


def test_histc_matches_torch():
    torch = pytest.importorskip("torch")
    for trial in range(20):
        bins = int(R.integers(1, 30))
        lo, hi = float(R.uniform(-3, 0)), float(R.uniform(0.1, 3))
        x = (R.integers(-40, 40, 200) / R.integers(1, 13)).astype(np.float32)   # on edges
        want = torch.histc(torch.tensor(x), bins=bins, min=lo, max=hi)
        for f in RUNS.values():
            assert f(lambda x: x.histc(bins, lo, hi))(T(x)).tolist() == want.tolist()
        assert minaot.histc(T(x), bins).tolist() == torch.histc(torch.tensor(x), bins).tolist()


# ------------------------------------------------------------------ eager only
def test_bincount():
    assert minaot.bincount(T([0, 2, 2, 5])).tolist() == [1, 0, 2, 0, 0, 1]
    assert minaot.bincount(T([0, 2, 2]), minlength=5).tolist() == [1, 0, 2, 0, 0]
    out = minaot.bincount(T([0, 2, 2]), weights=T([0.5, 1.0, 2.0]))
    assert out.dtype is minaot.float32 and out.tolist() == [0.5, 0.0, 3.0]
    assert minaot.bincount(T([0, 2]), T([1, 2])).dtype is minaot.float64
    assert T([1, 1]).bincount(T([0.25, 0.5], dtype=minaot.float64)).tolist() == [0.0, 0.75]
    assert minaot.bincount(T([], dtype=minaot.int64), minlength=3).tolist() == [0, 0, 0]
    assert minaot.bincount(T([], dtype=minaot.int64)).shape == (0,)
    for bad, kind, message in (
            (lambda: minaot.bincount(T([-1, 2])), RuntimeError, "1-d non-negative integral"),
            (lambda: minaot.bincount(T([[1, 2]])), RuntimeError, "1-d non-negative integral"),
            (lambda: minaot.bincount(T([1.0])), DTypeError, "not implemented for float32"),
            (lambda: minaot.bincount(T([True])), DTypeError, "not implemented for bool"),
            (lambda: minaot.bincount(T([1, 2]), T([1.0])), RuntimeError,
             "weights should be 1-d and have the same length as input"),
            (lambda: minaot.bincount(T([1, 2]), minlength=-1), RuntimeError,
             "minlength should be >= 0")):
        with pytest.raises(kind, match=message):
            bad()


def test_unique():
    out = minaot.unique(T([3, 1, 2, 3, 1]))
    assert out.dtype is minaot.int64 and out.tolist() == [1, 2, 3]
    u, inv, counts = T([[3.0, 1.0], [2.0, 3.0]]).unique(return_inverse=True, return_counts=True)
    assert u.tolist() == [1.0, 2.0, 3.0] and inv.tolist() == [[2, 0], [1, 2]]
    assert counts.tolist() == [1, 1, 2]
    u, counts = minaot.unique(T([nan, 1.0, nan]), return_counts=True)     # NaN all distinct
    assert str(u.tolist()) == "[1.0, nan, nan]" and counts.tolist() == [1, 1, 1]
    u, inv = minaot.unique(T([[1, 2], [1, 2], [0, 5]]), dim=0, return_inverse=True)
    assert u.tolist() == [[0, 5], [1, 2]] and inv.tolist() == [1, 1, 0]
    assert minaot.unique(T([[2, 1, 2], [0, 1, 0]]), dim=1).tolist() == [[1, 2], [1, 0]]
    u, inv, counts = minaot.unique(T(3.0), return_inverse=True, return_counts=True)
    assert u.shape == (1,) and inv.shape == () and counts.tolist() == [1]
    assert minaot.unique(T([True, False, True])).tolist() == [False, True]
    x = T([1.0, 2.0, 1.0], requires_grad=True)
    assert not minaot.unique(x).requires_grad
    u, c = minaot.unique(minaot.zeros(0), return_counts=True)
    assert u.shape == c.shape == (0,)


def test_unique_consecutive():
    u, inv, counts = minaot.unique_consecutive(T([1, 1, 2, 2, 3, 1, 1, 2]), return_inverse=True,
                                               return_counts=True)
    assert u.tolist() == [1, 2, 3, 1, 2] and inv.tolist() == [0, 0, 1, 1, 2, 3, 3, 4]
    assert counts.tolist() == [2, 2, 1, 2, 1]
    u, counts = T([[1, 1], [1, 1], [2, 0]]).unique_consecutive(dim=0, return_counts=True)
    assert u.tolist() == [[1, 1], [2, 0]] and counts.tolist() == [2, 1]
    assert str(minaot.unique_consecutive(T([nan, nan, 1.0])).tolist()) == "[nan, nan, 1.0]"
    assert minaot.unique_consecutive(T([[5, 5], [5, 6]])).tolist() == [5, 6]


@pytest.mark.parametrize("fn", [lambda x: minaot.unique(x), lambda x: x.unique_consecutive(),
                                lambda x: minaot.bincount(x.long())],
                         ids=["unique", "unique_consecutive", "bincount"])
def test_value_dependent_sizes_refuse_to_trace(fn):
    with pytest.raises(minaot.TraceError, match="while tracing.*depends on the"):
        compiled(fn)(T([1.0, 2.0, 2.0]))


def test_unique_bincount_match_torch():
    torch = pytest.importorskip("torch")
    a = R.integers(0, 4, (3, 5))
    f = R.integers(0, 3, (4, 3)).astype(np.float32)
    f[1, 1] = f[2, 0] = nan
    for data in (a, f):
        for kw in ({}, {"return_inverse": True}, {"return_counts": True},
                   {"return_inverse": True, "return_counts": True}):
            for dim in (None, 0, 1):
                if dim is not None and data is f:
                    continue                   # NaN in slices: PyTorch's order is its own
                want = torch.unique(torch.tensor(data), dim=dim, **kw)
                got = minaot.unique(T(data), dim=dim, **kw)
                want, got = (want, got) if kw else ((want,), (got,))
                for g, w in zip(got, want):
                    assert g.shape == tuple(w.shape)
                    np.testing.assert_array_equal(g.numpy(), w.numpy())
                want = torch.unique_consecutive(torch.tensor(data), dim=dim, **kw)
                got = minaot.unique_consecutive(T(data), dim=dim, **kw)
                want, got = (want, got) if kw else ((want,), (got,))
                for g, w in zip(got, want):
                    np.testing.assert_array_equal(g.numpy(), w.numpy())
    x = R.integers(0, 7, 20)
    w = R.standard_normal(20).astype(np.float32)
    for kw in ({}, {"minlength": 10}):
        want = torch.bincount(torch.tensor(x), **kw)
        assert minaot.bincount(T(x), **kw).tolist() == want.tolist()
        got = minaot.bincount(T(x), T(w), **kw)
        want = torch.bincount(torch.tensor(x), torch.tensor(w), **kw)
        assert got.dtype is minaot.float32
        np.testing.assert_array_equal(got.numpy(), want.numpy())
