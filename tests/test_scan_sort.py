"""cumsum, sort, argsort and topk (minaot/ops/scan_sort.py) against numpy written out here and, where torch is
installed, against torch itself: dtypes, dims, 0-d and empty inputs, in-place, errors,
gradients (eager, compiled with the numba backend, and finite differences in float64).
The op-database tests (test_ops_db, test_aot_ops, test_numba_ops, test_joint, the CUDA
suites) run the registry samples on every backend as well."""

import numpy as np
import pytest

import minaot
from minaot.testing import assert_close, gradcheck
from runs import RUNS, compiled

T = minaot.tensor
R = np.random.default_rng(0)
pytestmark = pytest.mark.tensor


# ------------------------------------------------------------------ cumsum
@pytest.mark.parametrize("run", sorted(RUNS))
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_cumsum_matches_numpy(run, dim):
    a = R.standard_normal((3, 4, 5))
    out = RUNS[run](lambda x: x.cumsum(dim))(T(a))
    assert out.dtype is minaot.float64 and out.shape == a.shape
    assert_close(out, T(np.cumsum(a, axis=dim)))
    t = RUNS[run](lambda x: minaot.cumsum(x.transpose(0, 2), dim))(T(a))   # strided input
    assert_close(t, T(np.cumsum(a.transpose(2, 1, 0), axis=dim)))


@pytest.mark.parametrize("run", sorted(RUNS))
def test_cumsum_dtypes_like_pytorch(run):
    f = RUNS[run]
    i = f(lambda x: x.cumsum(0))(T([1, -2, 3]))
    assert i.dtype is minaot.int64 and i.tolist() == [1, -1, 2]
    b = f(lambda x: x.cumsum(0))(T([True, False, True]))
    assert b.dtype is minaot.int64 and b.tolist() == [1, 1, 2]
    d = f(lambda x: x.cumsum(0, dtype=minaot.float64))(T([1, 2]))
    assert d.dtype is minaot.float64 and d.tolist() == [1.0, 3.0]
    n = f(lambda x: minaot.cumsum(x, 0, dtype=minaot.int64))(T([1.7, 2.9]))
    assert n.dtype is minaot.int64 and n.tolist() == [1, 3]


def test_cumsum_float32_accumulates_in_float64_like_pytorchs_cpu():
    """1e8 + 1 - 1e8 in float32 loses the 1; torch's CPU cumsum keeps a float64 running sum
    and rounds each prefix: [1e8, 1e8, 1] (numpy's float32 cumsum gives 0 at the end)."""
    x = T(np.array([1e8, 1.0, -1e8], np.float32))
    for f in RUNS.values():
        out = f(lambda x: x.cumsum(0))(x)
        assert out.dtype is minaot.float32 and out.tolist() == [1e8, 1e8, 1.0]


def test_cumsum_of_0d_and_empty_tensors():
    for dim in (0, -1):
        out = T(2.5).cumsum(dim)
        assert out.shape == () and out.item() == 2.5
    assert minaot.zeros(0, 3).cumsum(0).shape == (0, 3)
    assert minaot.zeros(2, 0).cumsum(1).shape == (2, 0)
    with pytest.raises(IndexError, match=r"cumsum: dimension out of range .*\[-1, 0\].* got 1"):
        T(2.5).cumsum(1)
    with pytest.raises(IndexError, match="cumsum: dimension out of range"):
        minaot.ones(2, 3).cumsum(2)


def test_cumsum_in_place():
    x = T([1, 2, 3])
    assert x.cumsum_(0) is x and x.tolist() == [1, 3, 6] and x.dtype is minaot.int64
    y = T([[1.0, 2.0], [3.0, 4.0]])
    v = y[:, 1]
    v.cumsum_(0)                                   # through a view: the base sees it
    assert y.tolist() == [[1.0, 2.0], [3.0, 6.0]]

    def f(x):
        x.cumsum_(1)
        return x * 2
    z = T([[1.0, 2.0, 3.0]])
    assert compiled(f)(z).tolist() == [[2.0, 6.0, 12.0]] and z.tolist() == [[1.0, 3.0, 6.0]]
    with pytest.raises(minaot._errors.DTypeError, match="cumsum_: input tensor dtype float32"):
        T([1.0]).cumsum_(0, dtype=minaot.float64)
    with pytest.raises(minaot._errors.DTypeError, match="cumsum: not implemented for bool"):
        T([True]).cumsum_(0)


@pytest.mark.parametrize("run", sorted(RUNS))
def test_cumsum_gradient_is_the_reversed_cumsum(run):
    a = R.standard_normal((3, 4))
    w = R.standard_normal((3, 4))
    x = T(a, requires_grad=True)
    RUNS[run](lambda x, w: (x.cumsum(1) * w).sum())(x, T(w)).backward()
    assert_close(x.grad, T(np.flip(np.cumsum(np.flip(w, 1), 1), 1).copy()))
    x = T(a, requires_grad=True)
    RUNS[run](lambda x: x.cumsum(0, dtype=minaot.float32).sum())(x).backward()   # through the cast
    assert x.grad.dtype is minaot.float64 and x.grad.tolist() == [[3.0] * 4, [2.0] * 4, [1.0] * 4]


def test_cumsum_gradcheck_through_chains():
    x = T(R.standard_normal((2, 3, 2)), requires_grad=True)
    gradcheck(lambda x: x.cumsum(1), [x])
    gradcheck(lambda x: (x.cumsum(-1) ** 2).cumsum(0), [x])
    gradcheck(compiled(lambda x: (x.cumsum(2).exp()).cumsum(0)), [x])


def test_cumsum_matches_torch():
    torch = pytest.importorskip("torch")
    a = R.standard_normal((4, 6)).astype(np.float32)
    w = R.standard_normal((4, 6)).astype(np.float32)
    for dim in (0, 1, -1):
        for f in RUNS.values():
            x = T(a, requires_grad=True)
            out = f(lambda x, w: (x.cumsum(dim) * w).sum(0))(x, T(w))
            out.sum().backward()
            tx = torch.tensor(a, requires_grad=True)
            tout = (tx.cumsum(dim) * torch.tensor(w)).sum(0)
            tout.sum().backward()
            assert_close(out, T(tout.detach().numpy()), rtol=1e-5, atol=1e-5)
            assert_close(x.grad, T(tx.grad.numpy()), rtol=1e-5, atol=1e-5)
    i = R.integers(-9, 9, (3, 5))
    assert T(i).cumsum(1).tolist() == torch.tensor(i).cumsum(1).tolist()


# ------------------------------------------------------------------ sort, argsort, topk
TIES = np.array([[2.0, np.nan, 1.0, 2.0, -0.5, 1.0, np.nan, 1.0],
                 [0.0, 3.0, -1.0, 3.0, 3.0, -1.0, 0.0, 7.0]], np.float32)


def _stable_descending(a, axis):
    """Positions sorting ``a`` descending, ties by position, NaN first: written out with a
    key sort (a different route from the op's flip trick)."""
    a = np.moveaxis(a, axis, -1)
    out = np.empty(a.shape, np.int64)
    for idx in np.ndindex(a.shape[:-1]):
        line = a[idx]
        key = [(0 if np.isnan(v) else 1, 0 if np.isnan(v) else -v, i) for i, v in enumerate(line)]
        out[idx] = [i for *_, i in sorted(key)]
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("run", sorted(RUNS))
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_matches_numpy_stable_order(run, dim, descending):
    a = R.integers(0, 4, (5, 6)).astype(np.float64)          # many ties
    a[1, 2] = a[3, 0] = np.nan
    v, i = RUNS[run](lambda x: minaot.sort(x, dim, descending))(T(a))
    want = _stable_descending(a, dim) if descending else np.argsort(a, axis=dim, kind="stable")
    assert i.dtype is minaot.int64 and i.tolist() == want.tolist()
    np.testing.assert_array_equal(v.numpy(), np.take_along_axis(a, want, dim))
    idx = RUNS[run](lambda x: x.argsort(dim, descending=descending))(T(a))
    assert idx.tolist() == want.tolist()


def test_sort_nan_and_ties_like_pytorch():
    """torch 2.13 with ``stable=True``: NaN is the largest value, ties keep their order."""
    v, i = minaot.sort(T([3.0, np.nan, 1.0, np.nan, 1.0]), stable=True)
    assert i.tolist() == [2, 4, 0, 1, 3] and str(v.tolist()) == "[1.0, 1.0, 3.0, nan, nan]"
    v, i = T([3.0, np.nan, 1.0, np.nan, 1.0]).sort(descending=True, stable=True)
    assert i.tolist() == [1, 3, 0, 2, 4] and str(v.tolist()) == "[nan, nan, 3.0, 1.0, 1.0]"
    v, i = minaot.topk(T([3.0, np.nan, 1.0, np.nan, 1.0]), 3)
    assert i.tolist() == [1, 3, 0]
    v, i = minaot.topk(T([3.0, np.nan, 1.0, np.nan, 1.0]), 3, largest=False)
    assert i.tolist() == [2, 4, 0] and v.tolist() == [1.0, 1.0, 3.0]
    v, i = T([True, False, True]).sort()
    assert v.dtype is minaot.bool and v.tolist() == [False, True, True] and i.tolist() == [1, 0, 2]
    assert T([5, -1, 5, 0]).argsort(descending=True).tolist() == [0, 2, 3, 1]


def test_sort_results_are_named_and_shaped_like_pytorchs():
    out = minaot.sort(T([[2.0, 1.0]]))
    assert out.values.tolist() == [[1.0, 2.0]] and out.indices.tolist() == [[1, 0]]
    v, i = out
    assert v is out[0] and i is out[1]
    for fn in (lambda x: x.sort(), lambda x: x.topk(1), lambda x: x.topk(0)):
        v, i = fn(T(5.0))                                 # 0-d: itself, at position 0
        assert v.shape == i.shape == () and v.item() == 5.0 and i.item() == 0
    assert T(5.0).argsort().tolist() == 0
    v, i = minaot.zeros(0, 3).sort(1)
    assert v.shape == i.shape == (0, 3)
    v, i = minaot.ones(2, 3).topk(0, dim=1)
    assert v.shape == i.shape == (2, 0)
    with pytest.raises(RuntimeError, match=r"topk: selected index k out of range \(k = 3"):
        minaot.topk(T([1.0, 2.0]), 3)
    with pytest.raises(RuntimeError, match="topk: selected index k out of range"):
        minaot.topk(T([1.0, 2.0]), -1)
    with pytest.raises(IndexError, match="sort: dimension out of range"):
        T([1.0]).sort(1)


@pytest.mark.parametrize("run", sorted(RUNS))
@pytest.mark.parametrize("largest", [True, False])
def test_topk_matches_numpy(run, largest):
    a = R.standard_normal((4, 7))
    for dim, k in ((1, 3), (0, 2), (-1, 7), (None, 1)):
        v, i = RUNS[run](lambda x: x.topk(k, dim=dim, largest=largest))(T(a))
        d = -1 if dim is None else dim
        order = np.argsort(-a if largest else a, axis=d, kind="stable")
        want = np.take(order, range(k), axis=d)
        assert i.tolist() == want.tolist()
        assert_close(v, T(np.take_along_axis(a, want, d)))


@pytest.mark.parametrize("run", sorted(RUNS))
def test_sort_and_topk_gradients_go_back_to_their_positions(run):
    a = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
    w = np.array([[1.0, 2.0], [3.0, 4.0]])
    x = T(a, requires_grad=True)
    RUNS[run](lambda x, w: (x.topk(2)[0] * w).sum())(x, T(w)).backward()
    assert x.grad.tolist() == [[1.0, 0.0, 2.0], [0.0, 3.0, 4.0]]      # torch 2.13's
    x = T(a, requires_grad=True)
    ws = np.arange(6.0).reshape(2, 3)
    RUNS[run](lambda x, w: (x.sort(1, descending=True).values * w).sum())(x, T(ws)).backward()
    want = np.zeros_like(a)
    np.put_along_axis(want, _stable_descending(a, 1), ws, 1)
    assert x.grad.tolist() == want.tolist()
    x = T(a, requires_grad=True)                 # an index result carries no gradient
    assert not RUNS[run](lambda x: x.argsort())(x).requires_grad


def test_sort_and_topk_gradcheck():
    x = T(R.standard_normal((3, 5)), requires_grad=True)
    gradcheck(lambda x: x.sort(1).values, [x])
    gradcheck(lambda x: x.sort(0, descending=True)[0].exp(), [x])
    gradcheck(lambda x: x.topk(2, dim=1, largest=False).values, [x])
    gradcheck(compiled(lambda x: (x.topk(3).values * x.sort(0).values[:, :3]).sum(1)), [x])


def test_sort_argsort_topk_match_torch():
    torch = pytest.importorskip("torch")
    a = R.integers(0, 5, (4, 9)).astype(np.float32)
    a[0, 3] = a[2, 5] = a[2, 7] = np.nan
    for dim in (0, 1):
        for desc in (False, True):
            tv, ti = torch.sort(torch.tensor(a), dim=dim, descending=desc, stable=True)
            for f in RUNS.values():
                v, i = f(lambda x: x.sort(dim, descending=desc))(T(a))
                assert i.tolist() == ti.tolist()
                np.testing.assert_array_equal(v.numpy(), tv.numpy())
                assert f(lambda x: x.argsort(dim, desc))(T(a)).tolist() == \
                    torch.argsort(torch.tensor(a), dim=dim, descending=desc, stable=True).tolist()
    b = R.standard_normal((4, 9)).astype(np.float32)               # distinct: one answer
    w = R.standard_normal((4, 3)).astype(np.float32)
    for largest in (True, False):
        tx = torch.tensor(b, requires_grad=True)
        tv, ti = torch.topk(tx, 3, largest=largest)
        (tv * torch.tensor(w)).sum().backward()
        for f in RUNS.values():
            x = T(b, requires_grad=True)
            v, i = f(lambda x: x.topk(3, largest=largest))(x)
            (v * T(w)).sum().backward()
            assert i.tolist() == ti.tolist()
            np.testing.assert_array_equal(v.detach().numpy(), tv.detach().numpy())
            np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


# ------------------------------------------------------------------ cumprod
def _np_cumprod_grad(x, g):
    """dx[k] = sum_{j >= k} g[j] * prod_{i <= j, i != k} x[i] along the last axis, written
    out (the O(n^2) definition: right with zeros too)."""
    out = np.zeros_like(x)
    n = x.shape[-1]
    for idx in np.ndindex(x.shape[:-1]):
        for k in range(n):
            total = 0.0
            for j in range(k, n):
                total += g[idx + (j,)] * np.prod([x[idx + (i,)] for i in range(j + 1) if i != k])
            out[idx + (k,)] = total
    return out


ZEROS = np.array([[1.5, 2.0, 0.0, 3.0, 0.0, 4.0],       # two zeros
                  [0.0, 2.0, -1.0, 3.0, 0.5, 4.0],      # a zero first
                  [1.5, -2.0, 0.5, 3.0, 2.0, 0.0],      # a zero last
                  [1.5, -2.0, 0.5, 3.0, 2.0, -1.0],     # none
                  [0.0, 0.0, 2.0, 0.0, 1.0, 3.0]])      # zeros first


@pytest.mark.parametrize("run", sorted(RUNS))
def test_cumprod_values_and_dtypes(run):
    f = RUNS[run]
    a = R.uniform(0.5, 1.5, (3, 4, 5))
    for dim in (0, 1, -1):
        assert_close(f(lambda x: x.cumprod(dim))(T(a)), T(np.cumprod(a, axis=dim)))
    i = f(lambda x: x.cumprod(0))(T([2, -3, 4]))
    assert i.dtype is minaot.int64 and i.tolist() == [2, -6, -24]
    b = f(lambda x: minaot.cumprod(x, 0))(T([True, True, False]))
    assert b.dtype is minaot.int64 and b.tolist() == [1, 1, 0]
    d = f(lambda x: x.cumprod(0, dtype=minaot.float64))(T([2, 3]))
    assert d.dtype is minaot.float64 and d.tolist() == [2.0, 6.0]
    s = f(lambda x: x.cumprod(0))(T(np.array([3.0, 1 / 3.0, 3.0], np.float32)))
    assert s.dtype is minaot.float32          # float32 lines multiplied in float64, rounded
    assert s.tolist() == np.cumprod(np.float32([3.0, 1 / 3.0, 3.0]).astype(np.float64)) \
        .astype(np.float32).tolist()


def test_cumprod_0d_empty_in_place_and_errors():
    assert T(2.5).cumprod(0).item() == 2.5 and T(2.5).cumprod(-1).shape == ()
    assert minaot.zeros(0, 3).cumprod(0).shape == (0, 3)
    x = T([1, 2, 3])
    assert x.cumprod_(0) is x and x.tolist() == [1, 2, 6]
    y = T([[1.0, 2.0], [3.0, 4.0]])
    y[:, 1].cumprod_(0)
    assert y.tolist() == [[1.0, 2.0], [3.0, 8.0]]
    with pytest.raises(minaot._errors.DTypeError, match="cumprod_: input tensor dtype float32"):
        T([1.0]).cumprod_(0, dtype=minaot.float64)
    with pytest.raises(minaot._errors.DTypeError, match="cumprod: not implemented for bool"):
        T([True]).cumprod_(0)
    with pytest.raises(IndexError, match="cumprod: dimension out of range"):
        minaot.ones(2, 3).cumprod(2)


@pytest.mark.parametrize("run", sorted(RUNS))
def test_cumprod_gradient_with_zeros(run):
    """Before the first zero, at it, and after it: the definition written out."""
    g = R.standard_normal(ZEROS.shape)
    x = T(ZEROS, requires_grad=True)
    RUNS[run](lambda x, g: (x.cumprod(1) * g).sum())(x, T(g)).backward()
    assert_close(x.grad, T(_np_cumprod_grad(ZEROS, g)))
    x = T(ZEROS.T.copy(), requires_grad=True)          # along dim 0
    RUNS[run](lambda x, g: (x.cumprod(0) * g).sum())(x, T(g.T.copy())).backward()
    assert_close(x.grad, T(_np_cumprod_grad(ZEROS, g).T.copy()))
    x = T([[0.0], [2.0]], requires_grad=True)           # lines of one element: the gradient
    RUNS[run](lambda x: (x.cumprod(1) * 3).sum())(x).backward()
    assert x.grad.tolist() == [[3.0], [3.0]]


def test_cumprod_gradcheck_with_zeros_and_double_backward():
    x = T(ZEROS, requires_grad=True)
    gradcheck(lambda x: x.cumprod(1), [x])
    gradcheck(lambda x: x.cumprod(0) * x, [x])
    gradcheck(compiled(lambda x: (x.cumprod(1) ** 2).cumprod(0)), [x])
    x = T(R.uniform(0.5, 1.5, (2, 4)), requires_grad=True)
    (g,) = minaot.autograd.grad(x.cumprod(1).sum(), [x], create_graph=True)
    (gg,) = minaot.autograd.grad(g.sum(), [x])
    a = x.detach().numpy()                              # d/dx_m sum_k dF/dx_k, written out
    want = np.zeros_like(a)
    for r in range(2):
        for m in range(4):
            for k in range(4):
                if k == m:
                    continue
                for j in range(max(k, m), 4):
                    want[r, m] += np.prod([a[r, i] for i in range(j + 1) if i not in (k, m)])
    assert_close(gg, T(want))


def test_cumprod_matches_torch():
    torch = pytest.importorskip("torch")
    data = np.concatenate([ZEROS, [[1.5, np.inf, 0.0, 3.0, 0.0, 4.0]]]).astype(np.float32)
    g = R.standard_normal(data.shape).astype(np.float32)
    for f in RUNS.values():
        for dim, a, w in ((1, data, g), (0, data.T.copy(), g.T.copy())):
            x = T(a, requires_grad=True)
            out = f(lambda x, w: x.cumprod(dim) * w)(x, T(w))
            out.sum().backward()
            tx = torch.tensor(a, requires_grad=True)
            (tx.cumprod(dim) * torch.tensor(w)).sum().backward()
            np.testing.assert_allclose(out.detach().numpy(), (tx.cumprod(dim) * torch.tensor(w))
                                       .detach().numpy(), rtol=1e-6)
            np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)
    i = R.integers(-3, 4, (3, 5))
    assert T(i).cumprod(1).tolist() == torch.tensor(i).cumprod(1).tolist()


# ------------------------------------------------------------------ cummax, cummin
CUM = np.array([[1.0, 3.0, 3.0, 2.0, np.nan, 5.0, np.nan, 1.0],
                [2.0, 2.0, -1.0, -1.0, 0.0, -1.0, 4.0, 4.0],
                [np.nan, 1.0, 2.0, np.nan, -3.0, 0.0, 0.0, 9.0]])


def _np_cumext(a, largest):
    """Running extreme and its position along the last axis, written out: a later equal
    element takes over; NaN, once seen, stays (each later NaN's position taking over)."""
    vals, idx = np.empty_like(a), np.zeros(a.shape, np.int64)
    for r in range(a.shape[0]):
        best, at = a[r, 0], 0
        for k, v in enumerate(a[r]):
            if np.isnan(v) or (not np.isnan(best) and (v >= best if largest else v <= best)):
                best, at = v, k
            vals[r, k], idx[r, k] = best, at
    return vals, idx


@pytest.mark.parametrize("run", sorted(RUNS))
@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_cummin_ties_and_nan(run, name):
    v, i = RUNS[run](lambda x: getattr(minaot, name)(x, 1))(T(CUM))
    wv, wi = _np_cumext(CUM, name == "cummax")
    assert i.dtype is minaot.int64 and i.tolist() == wi.tolist()
    np.testing.assert_array_equal(v.numpy(), wv)
    v, i = RUNS[run](lambda x: getattr(x, name)(0))(T(CUM.T.copy()))      # along dim 0
    assert i.tolist() == wi.T.tolist()
    ints = R.integers(0, 3, (3, 8))
    v, i = RUNS[run](lambda x: getattr(x, name)(-1))(T(ints))
    wv, wi = _np_cumext(ints.astype(np.float64), name == "cummax")
    assert v.dtype is minaot.int64 and v.tolist() == wv.astype(np.int64).tolist()
    assert i.tolist() == wi.tolist()


def test_cummax_cummin_shapes_and_names():
    out = minaot.cummax(T([[2.0, 1.0, 3.0]]), 1)
    assert out.values.tolist() == [[2.0, 2.0, 3.0]] and out.indices.tolist() == [[0, 0, 2]]
    v, i = minaot.cummin(T(5.0), -1)
    assert v.shape == i.shape == () and v.item() == 5.0 and i.item() == 0
    v, i = T([True, False, True]).cummax(0)
    assert v.dtype is minaot.bool and v.tolist() == [True] * 3 and i.tolist() == [0, 0, 2]
    v, i = minaot.zeros(0, 2).cummax(0)
    assert v.shape == i.shape == (0, 2)
    with pytest.raises(IndexError, match="cummax: dimension out of range"):
        minaot.cummax(T(1.0), 1)


@pytest.mark.parametrize("run", sorted(RUNS))
def test_cummax_gradient_goes_to_the_positions(run):
    x = T([[1.0, 3.0, 3.0, 2.0], [4.0, 1.0, 0.0, 5.0]], requires_grad=True)
    w = T([[1.0, 2.0, 3.0, 4.0], [1.0, 10.0, 100.0, 1000.0]])
    RUNS[run](lambda x, w: (minaot.cummax(x, 1).values * w).sum())(x, w).backward()
    assert x.grad.tolist() == [[1.0, 2.0, 7.0, 0.0], [111.0, 0.0, 0.0, 1000.0]]   # torch 2.13's
    x = T(R.standard_normal((3, 4)), requires_grad=True)
    gradcheck(lambda x: minaot.cummin(x, 0).values, [x])
    gradcheck(compiled(lambda x: x.cummax(1).values.exp()), [x])


def test_cummax_cummin_match_torch():
    torch = pytest.importorskip("torch")
    a = R.integers(0, 4, (5, 9)).astype(np.float32)
    a[1, 3] = a[3, 0] = a[3, 5] = np.nan
    w = R.standard_normal((5, 9)).astype(np.float32)
    for name in ("cummax", "cummin"):
        for dim in (0, 1):
            tx = torch.tensor(a, requires_grad=True)
            tv, ti = getattr(torch, name)(tx, dim)
            (tv * torch.tensor(w)).sum().backward()
            for f in RUNS.values():
                x = T(a, requires_grad=True)
                v, i = f(lambda x: getattr(minaot, name)(x, dim))(x)
                (v * T(w)).sum().backward()
                assert i.tolist() == ti.tolist()
                np.testing.assert_array_equal(v.detach().numpy(), tv.detach().numpy())
                np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


# ------------------------------------------------------------------ logcumsumexp
@pytest.mark.parametrize("run", sorted(RUNS))
def test_logcumsumexp_values(run):
    a = R.standard_normal((3, 4, 5)) * 20
    for dim in (0, 1, -1):
        out = RUNS[run](lambda x: x.logcumsumexp(dim))(T(a))
        assert_close(out, T(np.logaddexp.accumulate(a, axis=dim)))
    special = np.array([[0.5, np.inf, -np.inf, 1.0], [-np.inf, -np.inf, 2.0, np.nan],
                        [np.inf, np.inf, -np.inf, 0.0]])
    out = RUNS[run](lambda x: minaot.logcumsumexp(x, 1))(T(special))
    want = [[0.5, np.inf, np.inf, np.inf], [-np.inf, -np.inf, 2.0, np.nan],
            [np.inf, np.inf, np.inf, np.inf]]
    np.testing.assert_array_equal(out.numpy(), np.array(want, np.float32))
    assert T(2.0).logcumsumexp(0).item() == 2.0
    assert minaot.zeros(0, 3).logcumsumexp(0).shape == (0, 3)
    with pytest.raises(minaot._errors.DTypeError, match="logcumsumexp: not implemented for int64"):
        T([1, 2]).logcumsumexp(0)


@pytest.mark.parametrize("run", sorted(RUNS))
def test_logcumsumexp_gradient(run):
    a = R.standard_normal((3, 5))
    g = R.standard_normal((3, 5))
    g[0, 2] = 0.0
    x = T(a, requires_grad=True)
    RUNS[run](lambda x, g: (x.logcumsumexp(1) * g).sum())(x, T(g)).backward()
    out = np.logaddexp.accumulate(a, axis=1)          # dx[j] = sum_{i >= j} g[i] e^(x[j]-out[i])
    want = np.array([[sum(g[r, i] * np.exp(a[r, j] - out[r, i]) for i in range(j, 5))
                      for j in range(5)] for r in range(3)])
    assert_close(x.grad, T(want))
    gradcheck(lambda x: x.logcumsumexp(0), [x])
    gradcheck(compiled(lambda x: x.logcumsumexp(1).logcumsumexp(0)), [x])


@pytest.mark.filterwarnings("ignore:invalid value encountered")   # inf - inf in the gradient
def test_logcumsumexp_matches_torch():
    torch = pytest.importorskip("torch")
    a = (R.standard_normal((4, 6)) * 10).astype(np.float32)
    a[1, 2], a[2, 0], a[3, 1] = np.inf, -np.inf, np.nan
    w = R.standard_normal((4, 6)).astype(np.float32)
    for dim in (0, 1):
        tx = torch.tensor(a, requires_grad=True)
        tout = tx.logcumsumexp(dim)
        (tout * torch.tensor(w)).sum().backward()
        for f in RUNS.values():
            x = T(a, requires_grad=True)
            out = f(lambda x: x.logcumsumexp(dim))(x)
            (out * T(w)).sum().backward()
            np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-6)
            np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)
