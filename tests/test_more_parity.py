"""More of PyTorch's functions written as compositions of minaot's ops (minaot/ops/more.py):
var_mean, std_mean, nansum, nanmean, count_nonzero, aminmax, diff, dist, cross, atleast_nd,
column_stack, dstack, rot90, take, block_diag, unflatten, detach, is_tensor, ... : values
against numpy, and against PyTorch when it is installed; gradients by finite differences
(float64); compiled results equal to eager; PyTorch's errors."""

import warnings

import numpy as np
import pytest

import minaot
from minaot._errors import DTypeError, ShapeError
from minaot.testing import assert_close, check_compiled, gradcheck

RNG = np.random.default_rng(7)


def arr(*shape):
    return RNG.standard_normal(shape)


def T(a, requires_grad=False):
    a = np.asarray(a)
    return minaot.tensor(a, dtype=minaot.float64 if a.dtype.kind == "f" else None,
                         requires_grad=requires_grad)


X = arr(3, 4)
XN = X.copy()
XN[0, 1] = np.nan
XN[2, :] = np.nan
A = (np.arange(10).reshape(2, 5) ** 2).astype(np.int64)
V3 = arr(4, 3)
W3 = arr(4, 3)
ROW3, ROW6 = arr(1, 3), arr(1, 6)


def _np_cross(a, b, axis):
    return np.cross(a, b, axis=axis)


def _np_block_diag(*ms):
    ms = [np.atleast_2d(m) for m in ms]
    out = np.zeros((sum(m.shape[0] for m in ms), sum(m.shape[1] for m in ms)),
                   np.result_type(*ms))
    r = c = 0
    for m in ms:
        out[r:r + m.shape[0], c:c + m.shape[1]] = m
        r, c = r + m.shape[0], c + m.shape[1]
    return out


# ------------------------------------------------------------------ values against numpy
@pytest.mark.parametrize("name,fn,ref", [
    ("var_mean", lambda: minaot.var_mean(T(X), 1), lambda: (X.var(1, ddof=1), X.mean(1))),
    ("var_mean-unbiased-pos", lambda: minaot.var_mean(T(X), False),
     lambda: (X.var(), X.mean())),
    ("var_mean-correction", lambda: minaot.var_mean(T(X), (0, 1), correction=2, keepdim=True),
     lambda: (X.var(keepdims=True, ddof=2), X.mean(keepdims=True))),
    ("std_mean", lambda: minaot.std_mean(T(X), 0, False, keepdim=True),
     lambda: (X.std(0, keepdims=True), X.mean(0, keepdims=True))),
    ("nansum", lambda: minaot.nansum(T(XN), 1), lambda: np.nansum(XN, 1)),
    ("nansum-all", lambda: T(XN).nansum(), lambda: np.asarray(np.nansum(XN))),
    ("nansum-int", lambda: minaot.nansum(T(A), 0), lambda: A.sum(0)),
    ("nanmean", lambda: T(XN).nanmean(0, keepdim=True),
     lambda: np.nanmean(XN, 0, keepdims=True)),
    ("count_nonzero", lambda: minaot.count_nonzero(T(np.array([[0., np.nan], [1, 0]])), 0),
     lambda: np.count_nonzero(np.array([[0., np.nan], [1, 0]]), 0).astype(np.int64)),
    ("count_nonzero-all", lambda: T(A % 3).count_nonzero(),
     lambda: np.asarray(np.count_nonzero(A % 3), np.int64)),
    ("count_nonzero-dims", lambda: minaot.count_nonzero(T(A % 3), (0, 1)),
     lambda: np.asarray(np.count_nonzero(A % 3), np.int64)),
    ("aminmax", lambda: tuple(T(X).aminmax()), lambda: (X.min(), X.max())),
    ("aminmax-dim", lambda: tuple(minaot.aminmax(T(X), dim=1, keepdim=True)),
     lambda: (X.min(1, keepdims=True), X.max(1, keepdims=True))),
    ("diff", lambda: minaot.diff(T(A)), lambda: np.diff(A)),
    ("diff-n2-dim0", lambda: T(X).diff(2, 0), lambda: np.diff(X, 2, 0)),
    ("diff-past-end", lambda: minaot.diff(T(A), 9), lambda: np.diff(A, 9)),
    ("diff-n0", lambda: minaot.diff(T(X), 0), lambda: X),
    ("diff-pre-app", lambda: minaot.diff(T(X), 1, 0, prepend=T(X[:1]), append=T(X[:2])),
     lambda: np.diff(X, 1, 0, prepend=X[:1], append=X[:2])),
    ("diff-bool", lambda: minaot.diff(T(np.array([True, False, False, True]))),
     lambda: np.diff(np.array([True, False, False, True]))),
    ("dist", lambda: minaot.dist(T(X), T(X[0])), lambda: np.asarray(np.linalg.norm(X - X[0]))),
    ("dist-p", lambda: T(X).dist(T(X[::-1].copy()), 3),
     lambda: np.asarray(np.sum(np.abs(X - X[::-1]) ** 3) ** (1 / 3))),
    ("dist-inf", lambda: minaot.dist(T(X), T(X[1]), float("inf")),
     lambda: np.asarray(np.abs(X - X[1]).max())),
    ("cross", lambda: minaot.cross(T(V3), T(W3), dim=1), lambda: _np_cross(V3, W3, 1)),
    ("cross-dim0", lambda: T(V3.T.copy()).cross(T(W3.T.copy()), 0),
     lambda: _np_cross(V3.T, W3.T, 0)),
    ("cross-broadcast", lambda: minaot.cross(T(V3[:1]), T(W3), -1),
     lambda: _np_cross(V3[:1], W3, -1)),
    ("cross-int", lambda: minaot.cross(T(np.array([1, 2, 3])), T(np.array([4, 5, 6])), 0),
     lambda: np.array([-3, 6, -3])),
    ("atleast_1d", lambda: minaot.atleast_1d(T(np.float64(2.0))), lambda: np.atleast_1d(2.0)),
    ("atleast_2d", lambda: minaot.atleast_2d(T(X[0]), T(X)),
     lambda: tuple(np.atleast_2d(X[0], X))),
    ("atleast_3d", lambda: minaot.atleast_3d([T(np.float64(1.0)), T(X[0]), T(X)]),
     lambda: tuple(np.atleast_3d(1.0, X[0], X))),
    ("column_stack", lambda: minaot.column_stack([T(X[0]), T(X.T), T(X[1])]),
     lambda: np.column_stack([X[0], X.T, X[1]])),
    ("dstack", lambda: minaot.dstack([T(X), T(2 * X)]),
     lambda: np.dstack([X, 2 * X])),
    ("dstack-1d", lambda: minaot.dstack([T(A[0]), T(A[1])]), lambda: np.dstack([A[0], A[1]])),
    ("rot90", lambda: minaot.rot90(T(A)), lambda: np.rot90(A)),
    ("rot90-k3", lambda: T(A).rot90(3, (1, 0)), lambda: np.rot90(A, 3, (1, 0))),
    ("rot90-k0", lambda: minaot.rot90(T(A), 4), lambda: A),
    ("take", lambda: minaot.take(T(A), T(np.array([[-1, 0], [3, 7]]))),
     lambda: np.take(A, [[-1, 0], [3, 7]])),
    ("take-0d", lambda: T(X).take(T(np.array(5))), lambda: np.asarray(X.ravel()[5])),
    ("block_diag", lambda: minaot.block_diag(T(np.array(1)), T(np.array([2.0, 3.0])),
                                             T(A[:, :2]), T(np.zeros((0, 2)))),
     lambda: _np_block_diag(np.array(1), np.array([2.0, 3.0]), A[:, :2], np.zeros((0, 2)))),
    ("block_diag-one", lambda: minaot.block_diag(T(X)), lambda: X),
    ("unflatten", lambda: T(ROW6).unflatten(1, (2, -1)), lambda: ROW6.reshape(1, 2, 3)),
    ("true_divide", lambda: minaot.true_divide(T(A), 3), lambda: A / 3),
    ("true_divide-method", lambda: T(A).true_divide(T(A[0] + 1)), lambda: A / (A[0] + 1)),
    ("mm", lambda: T(X).mm(T(X.T)), lambda: X @ X.T),
    ("bmm", lambda: T(np.stack([X, X])).bmm(T(np.stack([X.T, 2 * X.T]))),
     lambda: np.stack([X @ X.T, 2 * X @ X.T])),
])
def test_values_match_numpy(name, fn, ref):
    out, want = fn(), ref()
    if isinstance(want, tuple):
        assert isinstance(out, tuple) and len(out) == len(want)
        for o, w in zip(out, want):
            assert_close(o, np.asarray(w))
    else:
        assert_close(out, np.asarray(want))


def test_rot90_matches_numpy_for_every_k():
    x = arr(2, 3, 4)
    for k in range(-5, 6):
        for dims in [(0, 1), (2, 0), (-1, 1)]:
            assert_close(minaot.rot90(T(x), k, dims), np.rot90(x, k, dims).copy())


def test_dtypes_and_shapes():
    assert minaot.nansum(T(A)).dtype is minaot.int64
    assert minaot.nansum(T(np.array([True, True]))).item() == 2
    f32 = minaot.tensor(XN, dtype=minaot.float32)
    assert minaot.nansum(f32).dtype is minaot.float32
    assert minaot.nanmean(f32, 1).dtype is minaot.float32
    assert minaot.nansum(f32, dtype=minaot.float64).dtype is minaot.float64
    assert np.isnan(minaot.nanmean(T(XN), 1).numpy()[2])        # every element NaN
    assert minaot.count_nonzero(T(X), 1).dtype is minaot.int64
    assert minaot.true_divide(T(A), 2).dtype is minaot.float32
    assert minaot.block_diag().shape == (1, 0)
    assert minaot.block_diag().dtype is minaot.float32
    assert minaot.block_diag(T(A), T(X)).dtype is minaot.float64
    assert minaot.block_diag(T(A[0]), T(A)).dtype is minaot.int64
    assert minaot.cross(minaot.ones(2, 3), minaot.ones(2, 3), dim=1).dtype is minaot.float32
    x = T(arr(2, 12))
    assert x.unflatten(1, (2, -1, 3)).shape == (2, 2, 2, 3)
    assert minaot.unflatten(x, -1, [12]).shape == (2, 12)
    assert minaot.unflatten(minaot.zeros(2, 0), 1, (3, 0)).shape == (2, 3, 0)
    r = minaot.aminmax(T(X), dim=0)
    assert type(r).__name__ == "aminmax" and r._fields == ("min", "max") and r.min.shape == (4,)
    assert minaot.aminmax(T(X), keepdim=True).max.shape == (1, 1)
    assert tuple(minaot.aminmax(T(np.array([True, False])))) == (False, True)
    assert minaot.aminmax(T(np.float64(2.0)), dim=0).min.item() == 2.0
    assert minaot.var_mean(T(X), 1, keepdim=True)[0].shape == (3, 1)
    assert isinstance(minaot.var_mean(T(X)), tuple)
    assert minaot.diff(T(X), 5, 0).shape == (0, 4)


def test_predicates_and_default_dtype():
    x = T(X, requires_grad=True)
    assert minaot.is_tensor(x) and not minaot.is_tensor(X) and not minaot.is_tensor(1.0)
    assert minaot.is_floating_point(x) and x.is_floating_point()
    assert not T(A).is_floating_point() and not minaot.is_floating_point(T(np.array([True])))
    assert minaot.get_default_dtype() is minaot.float32
    assert minaot.zeros(1).dtype is minaot.get_default_dtype()
    d = minaot.detach(x)
    assert not d.requires_grad and d.grad_fn is None
    d[0, 0] = 5.0                               # shares storage, as torch.detach
    assert x[0, 0].item() == 5.0


def test_views_share_storage():
    x = T(arr(2, 6))
    u = x.unflatten(1, (3, 2))
    u[1, 2, 1] = 9.0
    assert x[1, 5].item() == 9.0
    s = minaot.tensor(3.0)
    assert minaot.atleast_1d(x) is x and minaot.atleast_2d(x) is x
    a = minaot.atleast_2d(s)
    a[0, 0] = 4.0
    assert s.item() == 4.0
    r = minaot.rot90(x, 0)                      # k = 0 copies, as PyTorch
    r[0, 0] = -1.0
    assert x[0, 0].item() != -1.0


def test_scatter_add_in_place():
    z = minaot.zeros(2, 3, dtype=minaot.float64)
    idx = minaot.tensor([[0, 1, 0], [1, 1, 1]])
    out = z.scatter_add_(0, idx, minaot.ones(2, 3, dtype=minaot.float64))
    assert out is z
    assert_close(z, np.array([[1.0, 0.0, 1.0], [1.0, 2.0, 1.0]]))
    y = minaot.zeros(5, dtype=minaot.float64)
    minaot.scatter_add_(y, 0, minaot.tensor([4, 4]), minaot.tensor([1.5, 2.0], dtype=minaot.float64))
    assert_close(y, np.array([0, 0, 0, 0, 3.5]))
    # autograd through the in-place write: d(sum(w * base))/d(src) gathers w
    src = T(arr(3), requires_grad=True)
    base = minaot.zeros(4, dtype=minaot.float64)
    base.scatter_add_(0, minaot.tensor([3, 0, 3]), src)
    w = minaot.tensor([1.0, 2.0, 3.0, 4.0], dtype=minaot.float64)
    (base * w).sum().backward()
    assert_close(src.grad, np.array([4.0, 1.0, 4.0]))


def test_cross_without_dim_warns_and_takes_first_size_3_dim():
    a, b = arr(3, 4), arr(3, 4)
    with pytest.warns(UserWarning, match="deprecated"):
        out = minaot.cross(T(a), T(b))
    assert_close(out, np.cross(a, b, axis=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        minaot.cross(T(a), T(b), dim=0)         # an explicit dim does not warn


@pytest.mark.parametrize("call,err,match", [
    (lambda: minaot.nanmean(T(A)), DTypeError, "floating point"),
    (lambda: minaot.dist(T(A), T(A)), DTypeError, "floating point"),
    (lambda: minaot.diff(T(np.float64(1.0))), ShapeError, "one-dimensional"),
    (lambda: minaot.diff(T(X), -1), ValueError, "non-negative"),
    (lambda: minaot.diff(T(X), prepend=2.0), TypeError, "must be a Tensor"),
    (lambda: minaot.diff(T(X), prepend=T(X[0, 0])), ShapeError, "same dimension"),
    (lambda: minaot.cross(T(V3), minaot.tensor(W3, dtype=minaot.float32), 1), DTypeError, "same dtype"),
    (lambda: minaot.cross(T(V3[0]), T(W3), 1), ShapeError, "number of dimensions"),
    (lambda: minaot.cross(T(arr(2, 4)), T(arr(2, 4)), 1), ShapeError, "length 3"),
    (lambda: minaot.cross(T(arr(3, 1)), T(arr(1, 3)), 0), ShapeError, "length 3"),
    (lambda: minaot.rot90(T(X), 1, (0,)), ShapeError, "rotation dims == 2"),
    (lambda: minaot.rot90(T(X[0])), ShapeError, "total dims >= 2"),
    (lambda: minaot.rot90(T(X), 1, (0, -2)), ValueError, "different"),
    (lambda: minaot.rot90(T(X), 1, (0, 2)), IndexError, "out of range"),
    (lambda: minaot.take(T(A), T(np.array([10]))), IndexError, "out of bounds"),
    (lambda: minaot.take(T(A), T(np.array([1.0]))), DTypeError, "int64"),
    (lambda: minaot.block_diag(T(arr(1, 1, 1))), ShapeError, "2 or fewer"),
    (lambda: T(arr(2, 6)).unflatten(1, (4, -1)), ShapeError, "infer"),
    (lambda: T(arr(2, 6)).unflatten(1, (4, 2)), ShapeError, "multiply up"),
    (lambda: T(arr(2, 6)).unflatten(1, (-1, -1)), ShapeError, "only one"),
    (lambda: T(arr(2, 6)).unflatten(1, ()), ShapeError, "non-empty"),
    (lambda: minaot.zeros(2, 0).unflatten(1, (-1, 0)), ShapeError, "infer"),
    (lambda: minaot.aminmax(minaot.zeros(0, 3)), ShapeError, "empty"),
    (lambda: minaot.var_mean(T(X), 1, True, correction=1), TypeError, "not both"),
])
def test_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()


# ------------------------------------------------------------------ against PyTorch
def test_against_torch():
    torch = pytest.importorskip("torch")

    def same(out, want):
        if isinstance(want, (tuple, list)):
            assert len(out) == len(want)
            for o, w in zip(out, want):
                same(o, w)
            return
        want = want.numpy()
        got = out.numpy()
        assert got.shape == want.shape and str(got.dtype) == str(want.dtype), (got, want)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)

    m, t = T, torch.tensor
    x, xn, a = X, XN, A
    same(minaot.var_mean(m(x), 1, False), torch.var_mean(t(x), 1, False))
    same(minaot.std_mean(m(x), (0,), correction=0, keepdim=True),
         torch.std_mean(t(x), (0,), correction=0, keepdim=True))
    same(minaot.nansum(m(xn), 0), torch.nansum(t(xn), 0))
    same(minaot.nansum(m(a)), torch.nansum(t(a)))
    same(minaot.nanmean(m(xn), 1), torch.nanmean(t(xn), 1))
    same(minaot.count_nonzero(m(a % 2), 1), torch.count_nonzero(t(a % 2), 1))
    same(tuple(minaot.aminmax(m(x), dim=-1)), tuple(torch.aminmax(t(x), dim=-1)))
    same(minaot.diff(m(a), 2, prepend=m(a[:, :1]), append=m(a)),
         torch.diff(t(a), 2, prepend=t(a[:, :1]), append=t(a)))
    same(minaot.diff(m(np.array([True, False, False]))), torch.diff(t([True, False, False])))
    same(minaot.diff(m(a), 7), torch.diff(t(a), 7))
    same(minaot.dist(m(x), m(x[2]), 0), torch.dist(t(x), t(x[2]), 0))
    same(minaot.dist(m(x), m(x[2]), 1.5), torch.dist(t(x), t(x[2]), 1.5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same(minaot.cross(m(V3.T.copy()), m(W3.T.copy())),
             torch.cross(t(V3.T.copy()), t(W3.T.copy())))
        same(minaot.cross(m(ROW3), m(W3[:3])), torch.cross(t(ROW3), t(W3[:3])))
    same(minaot.cross(m(V3), m(W3), -1), torch.linalg.cross(t(V3), t(W3)))
    same(minaot.atleast_3d(m(a[0]), m(x)), torch.atleast_3d(t(a[0]), t(x)))
    same(minaot.column_stack([m(a[0]), m(a.T)]), torch.column_stack([t(a[0]), t(a.T)]))
    same(minaot.dstack([m(np.float64(1.0)), m(np.float64(2.0))]),
         torch.dstack([t(1.0, dtype=torch.float64), t(2.0, dtype=torch.float64)]))
    y = arr(2, 3, 4)
    for k in (-3, -1, 0, 1, 2, 5):
        same(minaot.rot90(m(y), k, (2, 1)), torch.rot90(t(y), k, (2, 1)))
    same(minaot.take(m(a), m(np.array([[-2, 3], [0, 9]]))),
         torch.take(t(a), t([[-2, 3], [0, 9]])))
    same(minaot.block_diag(m(np.array(1)), m(np.array([2.0, 3.0])), m(a[:, :2]),
                           m(np.zeros((0, 2))), m(np.zeros(0))),
         torch.block_diag(t(1), t([2.0, 3.0], dtype=torch.float64), t(a[:, :2]),
                          torch.zeros(0, 2, dtype=torch.float64), torch.zeros(0, dtype=torch.float64)))
    same(minaot.block_diag(), torch.block_diag())
    same(m(ROW6).unflatten(1, (3, -1)).contiguous(), t(ROW6).unflatten(1, (3, -1)))
    same(minaot.true_divide(m(a), 4), torch.true_divide(t(a), 4))
    assert minaot.get_default_dtype() is minaot.float32 and \
        torch.get_default_dtype() is torch.float32


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize("name,fn,shapes", [
    ("var_mean", lambda x: minaot.var_mean(x, 1), [(3, 4)]),
    ("std_mean", lambda x: minaot.std_mean(x, 0, keepdim=True, correction=0), [(3, 4)]),
    ("nansum", lambda x: minaot.nansum(minaot.where(x > 0.5, float("nan"), x), 1), [(3, 4)]),
    ("nanmean", lambda x: minaot.nanmean(minaot.where(x > 0.5, float("nan"), x), 0), [(5, 4)]),
    ("aminmax", lambda x: tuple(minaot.aminmax(x, dim=1)), [(3, 4)]),
    ("aminmax-all", lambda x: tuple(x.aminmax()), [(3, 4)]),
    ("diff", lambda x, p: minaot.diff(x, 2, 0, prepend=p), [(4, 3), (1, 3)]),
    ("dist", lambda x, y: minaot.dist(x, y), [(3, 4), (4,)]),
    ("dist-p3", lambda x, y: x.dist(y, 3), [(3, 4), (3, 4)]),
    ("cross", lambda x, y: minaot.cross(x, y, dim=-1), [(4, 3), (1, 3)]),
    ("column_stack", lambda x, y: minaot.column_stack([x, y]), [(3,), (3, 2)]),
    ("dstack", lambda x, y: minaot.dstack([x, y]), [(2, 3), (2, 3)]),
    ("rot90", lambda x: minaot.rot90(x, 3, (0, 2)), [(2, 3, 4)]),
    ("take", lambda x: minaot.take(x, minaot.tensor([[0, 5, 5], [-1, 2, 0]])), [(2, 3)]),
    ("block_diag", lambda x, y, z: minaot.block_diag(x, y, z), [(2, 3), (), (4,)]),
    ("unflatten", lambda x: x.unflatten(0, (2, -1)) * 2, [(6, 2)]),
    ("true_divide", lambda x, y: x.true_divide(y), [(3,), (3,)]),
    ("scatter_add_", lambda x, s: x.clone().scatter_add_(1, minaot.tensor([[0, 0], [2, 1]]), s),
     [(2, 3), (2, 2)]),
])
def test_gradients(name, fn, shapes):
    inputs = [T(arr(*s), requires_grad=True) for s in shapes]
    gradcheck(fn, inputs)


def test_nan_gradients_are_zero():
    x = T(XN, requires_grad=True)
    minaot.nansum(x).backward()
    assert_close(x.grad, np.where(np.isnan(XN), 0.0, 1.0))
    x = T(XN[:2], requires_grad=True)
    minaot.nanmean(x, 1).sum().backward()
    want = np.where(np.isnan(XN[:2]), 0.0, 1.0)
    assert_close(x.grad, want / want.sum(1, keepdims=True))


# ------------------------------------------------------------------ compiled
@pytest.mark.parametrize("name,fn,shapes", [
    ("reductions", lambda x: minaot.var_mean(x, 1)[0] + minaot.nanmean(x, 1)
     + minaot.aminmax(x, dim=1).max + minaot.count_nonzero(x, 1), [(3, 4)]),
    ("diff-dist-cross", lambda x, y: minaot.diff(x, 1, 0).sum() * minaot.dist(x, y)
     + minaot.cross(x, y, dim=1), [(2, 3), (2, 3)]),
    ("shapes", lambda x: minaot.rot90(minaot.dstack([x, x])[..., 1], 1) @ minaot.column_stack(
        [x[0], x[1]]).t() + minaot.block_diag(x[0, :1], x[1, :1]).sum() + minaot.take(
        x, minaot.tensor([5, 0])).sum() + x.unflatten(1, (3, 1))[:, 0, 0].sum(), [(2, 3)]),
])
def test_compiled_matches_eager(name, fn, shapes):
    inputs = [minaot.tensor(arr(*s), dtype=minaot.float32, requires_grad=True) for s in shapes]
    check_compiled(fn, *inputs)
