"""Shape functions, creation, linear algebra, comparisons and indexing written as
compositions of minaot's ops (flip, roll, diagonal, repeat, tril, diag_embed, eye,
linspace, tensordot, isclose, scatter, index_add, nonzero, ...): values against numpy,
and against PyTorch when it is installed; gradients by finite differences (float64);
views sharing storage where PyTorch's do; compiled results equal to eager."""

import numpy as np
import pytest

import minaot
from minaot.testing import assert_close, check_compiled, gradcheck
from minaot._errors import DTypeError, ShapeError
from minaot.tracing import TraceError
from runs import compiled

RNG = np.random.default_rng(0)


def arr(*shape):
    return RNG.standard_normal(shape)


def T(a, requires_grad=False):
    return minaot.tensor(a, dtype=minaot.float64 if np.asarray(a).dtype.kind == "f" else None,
                         requires_grad=requires_grad)


def torch_or_skip():
    return pytest.importorskip("torch")


# ------------------------------------------------------------------ values against numpy
X = arr(2, 3, 4)


@pytest.mark.parametrize("name,fn,ref", [
    ("flip", lambda x: minaot.flip(x, (0, 2)), lambda a: np.flip(a, (0, 2))),
    ("flip-int", lambda x: x.flip(1), lambda a: np.flip(a, 1)),
    ("fliplr", lambda x: x.fliplr(), np.fliplr),
    ("flipud", lambda x: x.flipud(), np.flipud),
    ("roll", lambda x: minaot.roll(x, (1, -2), (0, 2)), lambda a: np.roll(a, (1, -2), (0, 2))),
    ("roll-flat", lambda x: x.roll(5), lambda a: np.roll(a, 5)),
    ("diagonal", lambda x: x.diagonal(1, 1, 2), lambda a: np.diagonal(a, 1, 1, 2)),
    ("diagonal-neg", lambda x: x.diagonal(-1, 2, 1), lambda a: np.diagonal(a, -1, 2, 1)),
    ("diagonal-past", lambda x: x.diagonal(7, 1, 2), lambda a: np.diagonal(a, 7, 1, 2)),
    ("swapaxes", lambda x: x.swapaxes(0, 2), lambda a: np.swapaxes(a, 0, 2)),
    ("swapdims", lambda x: minaot.swapdims(x, 1, -1), lambda a: np.swapaxes(a, 1, -1)),
    ("repeat", lambda x: x.repeat(2, 1, 1, 3), lambda a: np.tile(a, (2, 1, 1, 3))),
    ("tile", lambda x: minaot.tile(x, (2,)), lambda a: np.tile(a, (2,))),
    ("repeat_interleave", lambda x: x.repeat_interleave(3, 1), lambda a: np.repeat(a, 3, 1)),
    ("repeat_interleave-flat", lambda x: minaot.repeat_interleave(x, 2),
     lambda a: np.repeat(a, 2)),
    ("tril", lambda x: x.tril(1), lambda a: np.tril(a, 1)),
    ("triu", lambda x: minaot.triu(x, -1), lambda a: np.triu(a, -1)),
    ("diag-2d", lambda x: minaot.diag(x[0], 1), lambda a: np.diag(a[0], 1)),
    ("diag-1d", lambda x: minaot.diag(x[0, 0], -2), lambda a: np.diag(a[0, 0], -2)),
    ("trace", lambda x: x[0].trace(), lambda a: np.trace(a[0])),
    ("trace-fn", lambda x: minaot.ops.linalg.trace(x[1].t()), lambda a: np.trace(a[1].T)),
    ("hstack", lambda x: minaot.hstack([x, x[:, :1]]), lambda a: np.hstack([a, a[:, :1]])),
    ("vstack", lambda x: minaot.vstack([x[0, 0], x[1, 1]]), lambda a: np.vstack([a[0, 0], a[1, 1]])),
    ("reshape_as", lambda x: x.reshape_as(minaot.zeros(4, 6)), lambda a: a.reshape(4, 6)),
])
def test_shape_functions_match_numpy(name, fn, ref):
    out = fn(T(X))
    assert_close(out, np.asarray(ref(X)))


def test_diag_embed_and_meshgrid_match_numpy():
    v = arr(2, 3)
    out = minaot.diag_embed(T(v), 1)
    want = np.zeros((2, 4, 4))
    for b in range(2):
        want[b] = np.diag(v[b], 1)
    assert_close(out, want)
    assert_close(minaot.diag_embed(T(v), -1, 0, 2), np.moveaxis(
        np.stack([np.diag(r, -1) for r in v]), (1, 2), (0, 2)))
    a, b = np.arange(3.0), np.arange(4.0)
    for ind in ("ij", "xy"):
        for got, want in zip(minaot.meshgrid(T(a), T(b), indexing=ind),
                             np.meshgrid(a, b, indexing=ind)):
            assert_close(got, want)


def test_linalg_matches_numpy():
    a, b, m = arr(4), arr(4), arr(3, 4)
    assert_close(minaot.dot(T(a), T(b)), np.dot(a, b))
    assert_close(T(m).mv(T(a)), m @ a)
    assert_close(minaot.outer(T(a), T(b)), np.outer(a, b))
    i, x, y = arr(4), arr(3, 5), arr(5, 4)
    assert_close(minaot.addmm(T(i), T(x), T(y), beta=0.5, alpha=2), 0.5 * i + 2 * (x @ y))
    i3, x3, y3 = arr(2, 3, 1), arr(2, 3, 5), arr(2, 5, 4)
    assert_close(T(i3).baddbmm(T(x3), T(y3), beta=2), 2 * i3 + x3 @ y3)
    nan = np.full((3, 4), np.nan)
    assert_close(minaot.addmm(T(nan), T(x), T(y), beta=0), x @ y)   # beta=0 ignores input
    p, q = arr(2, 3, 4), arr(3, 4, 5)
    assert_close(minaot.tensordot(T(p), T(q)), np.tensordot(p, q, 2))
    assert_close(minaot.tensordot(T(p), T(q), 0), np.tensordot(p, q, 0))
    assert_close(minaot.tensordot(T(p), T(q.transpose(2, 0, 1)), ([1, 2], [1, 2])),
                 np.tensordot(p, q.transpose(2, 0, 1), ([1, 2], [1, 2])))
    assert_close(minaot.kron(T(a), T(b)), np.kron(a, b))
    k1, k2 = arr(2, 3), arr(4, 1, 2)
    assert_close(minaot.kron(T(k1), T(k2)), np.kron(k1, k2))
    assert minaot.ops.linalg.trace(minaot.arange(9).reshape(3, 3)).dtype is minaot.int64


def test_creation_matches_numpy():
    assert_close(minaot.eye(3), np.eye(3, dtype=np.float32))
    assert_close(minaot.eye(2, 4, dtype=minaot.int64), np.eye(2, 4, dtype=np.int64))
    assert_close(minaot.linspace(-1, 2, 7, dtype=minaot.float64), np.linspace(-1, 2, 7))
    assert_close(minaot.linspace(0, 10, 4, dtype=minaot.int64), np.array([0, 3, 6, 10]))
    assert minaot.linspace(0, 1, 1).tolist() == [0.0] and minaot.linspace(0, 1, 0).shape == (0,)
    assert_close(minaot.logspace(0, 3, 4, dtype=minaot.float64), np.logspace(0, 3, 4))
    assert_close(minaot.logspace(0, 3, 4, base=2, dtype=minaot.float64),
                 np.logspace(0, 3, 4, base=2))
    x = minaot.ones(2, dtype=minaot.float64)
    for made in (x.new_zeros(2, 3), x.new_ones((2, 3)), x.new_full((2, 3), 7), x.new_empty(2, 3),
                 x.new_tensor([[1, 2, 3], [4, 5, 6]])):
        assert made.shape == (2, 3) and made.dtype is minaot.float64
    assert x.new_full((2,), 7).tolist() == [7.0, 7.0]
    assert x.new_zeros(2, dtype=minaot.int64).dtype is minaot.int64
    assert x.type() == "minaot.DoubleTensor" and x.type(minaot.float32).dtype is minaot.float32
    assert x.type("torch.LongTensor").dtype is minaot.int64 and x.type(minaot.float64) is x
    a = minaot.arange(6.0).reshape(2, 3)
    assert minaot.numel(a) == a.nelement() == 6 and a.ndimension() == 2


def test_random_creation_uses_the_generator():
    minaot.manual_seed(3)
    r = minaot.randint(-2, 5, (1000,))
    assert r.dtype is minaot.int64 and r.shape == (1000,)
    assert set(r.tolist()) == set(range(-2, 5))
    assert minaot.randint(4, (3, 2)).shape == (3, 2)
    minaot.manual_seed(3)
    assert minaot.randint(-2, 5, (1000,)).tolist() == r.tolist()
    p = minaot.randperm(50)
    assert p.dtype is minaot.int64 and sorted(p.tolist()) == list(range(50))
    g = minaot.Generator().manual_seed(1)
    n = minaot.normal(2.0, 0.5, (20000,), generator=g, dtype=minaot.float64).numpy()
    assert abs(n.mean() - 2.0) < 0.02 and abs(n.std() - 0.5) < 0.02
    mean = minaot.zeros(3, 4, requires_grad=True)
    n2 = minaot.normal(mean, minaot.ones(4))
    assert n2.shape == (3, 4) and not n2.requires_grad
    u = minaot.zeros(20000, dtype=minaot.float64).uniform_(-1, 3).numpy()
    assert u.min() >= -1 and u.max() < 3 and abs(u.mean() - 1) < 0.05
    z = minaot.zeros(20000, dtype=minaot.float64)
    assert z.normal_(1.0, 2.0) is z and abs(z.numpy().std() - 2) < 0.05


def test_comparisons():
    a = T(np.array([1.0, np.nan, np.inf, 1.0, -np.inf]))
    b = T(np.array([1.0 + 1e-9, np.nan, np.inf, 1.1, np.inf]))
    assert minaot.isclose(a, b).tolist() == [True, False, True, False, False]
    assert a.isclose(b, equal_nan=True).tolist() == [True, True, True, False, False]
    assert minaot.isclose(a, b, rtol=0.2).tolist() == [True, False, True, True, False]
    ints = minaot.tensor([1, 5, 10])
    assert minaot.isclose(ints, minaot.tensor([1, 6, 10]), atol=0, rtol=0.1).tolist() == \
        [True, False, True]
    assert minaot.allclose(T(np.ones(3)), T(np.ones(3) + 1e-9)) is True
    assert minaot.allclose(T(np.ones(3)), T(np.ones(3) + 1e-3)) is False
    assert minaot.equal(T(np.ones(3)), T(np.ones(3))) is True
    assert minaot.equal(T(np.ones(3)), T(np.ones(4))) is False
    assert a.equal(a) is False                          # NaN != NaN
    with pytest.raises(DTypeError):
        minaot.isclose(ints, T(np.ones(3)))


def test_scatter_and_index_add_match_numpy():
    x, src = arr(3, 4), arr(2, 4)
    idx = np.array([[2, 0, 1, 2], [0, 1, 2, 0]])
    want = x.copy()
    for i in range(2):
        for j in range(4):
            want[idx[i, j], j] = src[i, j]
    assert_close(minaot.scatter(T(x), 0, T(idx), T(src)), want)
    t = T(x)
    assert t.scatter_(0, T(idx), T(src)) is t and np.allclose(t.numpy(), want)
    want_v = x.copy()
    want_v[0, 1] = want_v[1, 0] = want_v[2, 3] = 9.0
    assert_close(T(x).scatter(1, T(np.array([[1], [0], [3]])), 9.0), want_v)
    assert_close(T(x).scatter(1, T(np.array([[1], [0], [3]])), value=9.0), want_v)
    ib = minaot.zeros(2, 3, dtype=minaot.bool).scatter(1, minaot.tensor([[2], [0]]), True)
    assert ib.tolist() == [[False, False, True], [True, False, False]]
    ii = minaot.zeros(2, 3, dtype=minaot.int64).scatter(1, minaot.tensor([[2], [0]]), 5)
    assert ii.tolist() == [[0, 0, 5], [5, 0, 0]]
    s = arr(3, 5)
    index = np.array([0, 2, 0, 3, 1])
    want = x.copy()
    for k, p in enumerate(index):
        want[:, p] += 2 * s[:, k]
    assert_close(minaot.index_add(T(x), 1, T(index), T(s), alpha=2), want)
    t = T(x)
    assert t.index_add_(1, T(index), T(s), alpha=2) is t and np.allclose(t.numpy(), want)
    with pytest.raises(IndexError):
        minaot.index_add(T(x), 1, T(np.array([0, 4, 0, 0, 0])), T(s))
    assert minaot.index_add(T(np.array(1.0)), 0, minaot.tensor([0]), T(np.array(2.0)),
                            alpha=3).item() == 7.0
    with pytest.raises(ShapeError):
        minaot.index_add(T(np.array(1.0)), 0, minaot.tensor([0, 0]), T(np.ones(2)))
    with pytest.raises(NotImplementedError):
        minaot.tensor([[True, False], [True, True]]).trace()


def test_masked_select_and_nonzero():
    x = arr(3, 4)
    mask = x > 0
    assert_close(minaot.masked_select(T(x), T(mask)), x[mask])
    assert_close(T(x).masked_select(T(mask[0])), np.broadcast_to(x, (3, 4))[np.broadcast_to(mask[0], (3, 4))])
    nz = minaot.nonzero(T(mask))
    assert nz.dtype is minaot.int64
    assert_close(nz, np.argwhere(mask))
    rows, cols = T(mask).nonzero(as_tuple=True)
    assert_close(rows, np.nonzero(mask)[0]) and assert_close(cols, np.nonzero(mask)[1])
    assert_close(minaot.argwhere(T(x)), np.argwhere(x))
    with pytest.raises(TraceError, match="nonzero"):
        compiled(lambda x: minaot.nonzero(x) * 2)(T(x))
    with pytest.raises(TraceError, match="masked_select"):
        compiled(lambda x: minaot.masked_select(x, x > 0))(T(x))
    with pytest.raises(TraceError, match="randperm"):
        compiled(lambda x: x + minaot.randperm(3))(minaot.zeros(3, dtype=minaot.int64))


# ------------------------------------------------------------------ views
def test_views_share_storage_and_copies_do_not():
    x = T(arr(3, 4))
    for v in (x.diagonal(), x.diagonal(1), x.t().diagonal(-1), x.swapaxes(0, 1),
              minaot.broadcast_tensors(x, T(arr(2, 1, 1)))[0],
              minaot.meshgrid(x[0], x[1])[0]):
        assert v._storage is x._storage
    for c in (x.flip(0), x.roll(1, 0), x.repeat(1, 1), x.tile((1,)), x.repeat_interleave(1, 0),
              x.tril(), minaot.diag(x), x.fliplr()):
        assert c._storage is not x._storage
    d = x.diagonal(1)
    d.mul_(0)                                  # a write through the view reaches x
    assert x[0, 1].item() == x[1, 2].item() == x[2, 3].item() == 0
    b = T(arr(2, 3, 3))
    bd = b.diagonal(0, -2, -1)
    bd.fill_(7)
    assert (b.numpy()[:, [0, 1, 2], [0, 1, 2]] == 7).all()
    with pytest.raises(RuntimeError, match="as_strided"):
        T(arr(2, 3, 4)).diagonal(0, 0, 2)     # no view possible: raises, never copies
    with pytest.raises(RuntimeError, match="as_strided"):
        x[:, :3].diagonal()
    assert_close(minaot.diag(x[:, :3]), np.diag(x.numpy()[:, :3]))   # diag copies: any layout
    assert_close(minaot.ops.linalg.trace(x[:, :3]), np.trace(x.numpy()[:, :3]))


def test_tril_triu_in_place():
    a = arr(3, 4)
    x = T(a)
    assert x.tril_(-1) is x and np.allclose(x.numpy(), np.tril(a, -1))
    y = T(a)
    assert minaot.triu_(y, 1) is y and np.allclose(y.numpy(), np.triu(a, 1))


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize("name,fn,shapes", [
    ("flip", lambda x: x.flip((0, 1)), [(3, 4)]),
    ("roll", lambda x: x.roll((1, 2), (0, 1)), [(3, 4)]),
    ("diagonal", lambda x: x.diagonal(1, 2, 1), [(3, 2, 4)]),
    ("diagonal-t", lambda x: x.t().diagonal(-1), [(3, 4)]),
    ("repeat", lambda x: x.repeat(2, 1, 2), [(3, 4)]),
    ("repeat_interleave", lambda x: x.repeat_interleave(2, 0), [(3, 4)]),
    ("tril", lambda x: x.tril(1), [(2, 3, 4)]),
    ("diag_embed", lambda x: minaot.diag_embed(x, -1, 0, 2), [(2, 3)]),
    ("diag", lambda x: minaot.diag(x[:, :3], 1), [(3, 4)]),
    ("trace", lambda x: x.trace(), [(3, 4)]),
    ("hstack", lambda x, y: minaot.hstack([x, y]), [(3, 2), (3, 1)]),
    ("dot", minaot.dot, [(4,), (4,)]),
    ("mv", minaot.mv, [(3, 4), (4,)]),
    ("outer", minaot.outer, [(3,), (4,)]),
    ("addmm", lambda i, a, b: minaot.addmm(i, a, b, beta=0.5, alpha=2), [(4,), (3, 2), (2, 4)]),
    ("baddbmm", lambda i, a, b: minaot.baddbmm(i, a, b, alpha=3), [(2, 3, 4), (2, 3, 2), (2, 2, 4)]),
    ("tensordot", lambda a, b: minaot.tensordot(a, b, ([0, 2], [1, 0])), [(2, 3, 4), (4, 2, 5)]),
    ("kron", minaot.kron, [(2, 3), (2, 2)]),
    ("scatter", lambda x, s: minaot.scatter(x, 1, minaot.tensor([[2, 0], [1, 3]]), s),
     [(2, 4), (2, 3)]),
    ("index_add", lambda x, s: x.index_add(0, minaot.tensor([1, 0, 1]), s, alpha=2),
     [(2, 3), (3, 3)]),
    ("masked_select", lambda x: x.masked_select(minaot.tensor([True, False, True])), [(2, 3)]),
])
def test_gradients(name, fn, shapes):
    inputs = [T(arr(*s), requires_grad=True) for s in shapes]
    gradcheck(fn, inputs)


# ------------------------------------------------------------------ compiled
@pytest.mark.parametrize("name,fn,shapes", [
    ("shapes", lambda x: x.flip(1).roll(1, 0).repeat(2, 1).tril(1) + minaot.eye(6, 3), [(3, 3)]),
    ("diagonal-view", lambda x: x.diagonal(1, 0, 1), [(3, 4)]),
    ("diag", lambda x: minaot.diag(x.sum(0)) @ x.t() + x.trace(), [(3, 3)]),
    ("linalg", lambda a, b: minaot.addmm(b.sum(0), a, b) + minaot.outer(b[1], a[:, 0]),
     [(3, 2), (2, 3)]),
    ("tensordot", lambda a, b: minaot.tensordot(a, b, 1) * 2 + minaot.kron(a, a)[:3, :2].sum(),
     [(3, 2), (2, 3)]),
    ("indexing", lambda x, s: minaot.scatter(x, 0, minaot.tensor([[1, 0, 2]]), s).index_add(
        1, minaot.tensor([0, 0]), s.t().repeat(1, 2)[:, :2]), [(3, 3), (1, 3)]),
    ("creation", lambda x: x * minaot.linspace(0, 1, 4) + x.new_ones(4) + minaot.diag_embed(x)[1, 0],
     [(2, 4)]),
    ("meshgrid", lambda x, y: sum(minaot.meshgrid(x, y, indexing="xy")) + x.isclose(x)[0],
     [(3,), (3,)]),
])
def test_compiled_matches_eager(name, fn, shapes):
    inputs = [minaot.tensor(arr(*s), dtype=minaot.float32, requires_grad=True) for s in shapes]
    check_compiled(fn, *inputs)


def test_compiled_in_place_through_diagonal():
    def f(x):
        x.diagonal().mul_(2)
        return x.tril_()
    check_compiled(f, minaot.tensor(arr(3, 3), dtype=minaot.float32), grad=None)


def test_compiled_randint_draws_like_eager():
    f = minaot.compile(lambda x: x + minaot.randint(0, 5, (4,)), backend="numba")
    x = minaot.zeros(4, dtype=minaot.int64)
    minaot.manual_seed(11)
    got = f(x).tolist()
    minaot.manual_seed(11)
    assert got == minaot.randint(0, 5, (4,)).tolist()


# ------------------------------------------------------------------ against PyTorch
def test_against_torch():
    torch = torch_or_skip()
    a = arr(3, 4, 5)
    ta, ma = torch.tensor(a), T(a)

    def same(t, m):
        assert tuple(t.shape) == m.shape
        np.testing.assert_allclose(m.detach().numpy(), t.detach().numpy(), rtol=1e-6, atol=1e-7)

    same(torch.flip(ta, (0, 2)), minaot.flip(ma, (0, 2)))
    same(torch.roll(ta, (2, -1), (1, 2)), minaot.roll(ma, (2, -1), (1, 2)))
    same(torch.roll(ta, 7), minaot.roll(ma, 7))
    for off in (-3, -1, 0, 2, 6):
        for d1, d2 in ((1, 2), (2, 1), (0, 1)):
            same(torch.diagonal(ta, off, d1, d2), minaot.diagonal(ma, off, d1, d2))
        same(torch.diag_embed(ta, off, 0, 3), minaot.diag_embed(ma, off, 0, 3))
        same(torch.diag_embed(ta, off, 3, 1), minaot.diag_embed(ma, off, 3, 1))
        same(torch.tril(ta, off), minaot.tril(ma, off))
        same(torch.triu(ta, off), minaot.triu(ma, off))
        same(torch.diag(ta[0], off), minaot.diag(ma[0], off))
        same(torch.diag(ta[0, 0], off), minaot.diag(ma[0, 0], off))
    same(ta.repeat(2, 1, 1, 2), ma.repeat(2, 1, 1, 2))
    same(torch.tile(ta, (2, 2)), minaot.tile(ma, (2, 2)))
    same(torch.repeat_interleave(ta, 2, -1), minaot.repeat_interleave(ma, 2, -1))
    same(torch.hstack([ta[0, 0], ta[1, 1]]), minaot.hstack([ma[0, 0], ma[1, 1]]))
    same(torch.vstack([ta[0], ta[1, :2]]), minaot.vstack([ma[0], ma[1, :2]]))
    for ind in ("ij", "xy"):
        for t, m in zip(torch.meshgrid(ta[0, 0], ta[0, 1, :3], ta[1, 1, :2], indexing=ind),
                        minaot.meshgrid(ma[0, 0], ma[0, 1, :3], ma[1, 1, :2], indexing=ind)):
            same(t, m)
    same(torch.eye(3, 5), minaot.eye(3, 5))
    for s, e, n in ((0, 1, 7), (-3.5, 2, 10), (2, -1, 5), (0, 10, 4)):
        same(torch.linspace(s, e, n), minaot.linspace(s, e, n))
        same(torch.logspace(s, e, n, base=2), minaot.logspace(s, e, n, base=2))
    assert torch.linspace(0, 10, 4, dtype=torch.int64).tolist() == \
        minaot.linspace(0, 10, 4, dtype=minaot.int64).tolist()
    same(torch.tensordot(ta, ta[0], ([1, 2], [0, 1])), minaot.tensordot(ma, ma[0], ([1, 2], [0, 1])))
    same(torch.kron(ta[0], ta[1, :2]), minaot.kron(ma[0], ma[1, :2]))
    same(torch.trace(ta[0]), minaot.ops.linalg.trace(ma[0]))
    idx = np.array([[0, 2, 1, 0, 1]])
    same(torch.scatter(ta[0], 0, torch.tensor(idx), ta[1]),
         minaot.scatter(ma[0], 0, minaot.tensor(idx), ma[1]))
    same(torch.scatter(ta[0], 1, torch.tensor(idx[:, :2]), 3.5),
         minaot.scatter(ma[0], 1, minaot.tensor(idx[:, :2]), 3.5))
    same(torch.index_add(ta[0], 0, torch.tensor([1, 1, 3]), ta[1, :3], alpha=-2),
         minaot.index_add(ma[0], 0, minaot.tensor([1, 1, 3]), ma[1, :3], alpha=-2))
    same(torch.masked_select(ta, ta[0] > 0), minaot.masked_select(ma, ma[0] > 0))
    same(torch.nonzero(ta > 0), minaot.nonzero(ma > 0))
    b = a.copy()
    b[0, 0, 0] = np.nan
    for kw in ({}, {"equal_nan": True}, {"rtol": 0.5, "atol": 0.1}):
        assert torch.isclose(torch.tensor(b), ta + 0.2, **kw).tolist() == \
            minaot.isclose(T(b), ma + 0.2, **kw).tolist()
    assert torch.equal(ta, ta) == minaot.equal(ma, ma)
    # the gradients agree too, not only the values
    tx = ta.clone().requires_grad_()
    mx = T(a, requires_grad=True)
    w = arr(5, 5)
    (torch.diagonal(tx, 1, 1, 2).sum() + torch.tril(tx).pow(2).sum() + torch.roll(tx, 1, 0)[0].sum()
     + (torch.tensordot(tx, torch.tensor(w), 1) ** 2).sum() + torch.diag(tx[0]).sum()).backward()
    (minaot.diagonal(mx, 1, 1, 2).sum() + minaot.tril(mx).pow(2).sum() + minaot.roll(mx, 1, 0)[0].sum()
     + (minaot.tensordot(mx, T(w), 1) ** 2).sum() + minaot.diag(mx[0]).sum()).backward()
    same(tx.grad, mx.grad)
    # views where PyTorch's are views
    assert torch.diagonal(ta)._base is ta and minaot.diagonal(ma)._storage is ma._storage


# ------------------------------------------------------------------ CUDA (Numba's simulator)
SIMULATED = """
import numpy as np, minaot
from minaot.testing import assert_close
rng = np.random.default_rng(0)
a = rng.standard_normal((3, 4)); b = rng.standard_normal((4, 3))
fns = {
 "flip": lambda x, y: x.flip(1).roll(1, 0),
 "diagonal": lambda x, y: x.diagonal(1) * 2,
 "repeat": lambda x, y: x.repeat(2, 1).tril(1) + x.repeat_interleave(2, 0),
 "diag": lambda x, y: minaot.diag(x[:, 0]) + minaot.diag_embed(x)[0, :3, :3] + x.trace(),
 "linalg": lambda x, y: minaot.addmm(y.sum(0), x, y) + minaot.outer(x[:, 0], y[0]) + minaot.tensordot(x, y, 1),
 "eye": lambda x, y: x[:, :3] * minaot.eye(3, device=x.device) + minaot.kron(x[:1, :1], y[:3, :3]),
 "scatter": lambda x, y: minaot.scatter(x, 0, minaot.tensor([[1, 0, 2, 0]], device=x.device), y.t()[:1]).index_add(1, minaot.tensor([0, 0], device=x.device), x[:, :2]),
 "isclose": lambda x, y: minaot.isclose(x, x + 1e-9).float() + minaot.hstack([x, y.t()])[:, :4],
}
for name, f in fns.items():
    cpu = f(minaot.tensor(a), minaot.tensor(b))
    gx, gy = minaot.tensor(a, device="cuda"), minaot.tensor(b, device="cuda")
    out = f(gx, gy)
    assert out.device == "cuda", name
    assert_close(out.cpu(), cpu, rtol=1e-5, atol=1e-5)
    comp = minaot.compile(f, backend="cuda")(gx, gy)
    assert_close(comp.cpu(), cpu, rtol=1e-5, atol=1e-5)
    print(name, "ok")
x = minaot.tensor(a, device="cuda")
assert minaot.nonzero(x > 0).device == "cuda"
assert_close(minaot.nonzero(x > 0).cpu(), np.argwhere(a > 0))
assert_close(minaot.masked_select(x, x > 0).cpu(), a[a > 0].astype(np.float32))
print("all ok")
"""


@pytest.mark.cuda
def test_cuda_eager_and_compiled_under_the_simulator():
    # a fresh process: the simulator must be on before Numba is imported
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=root)
    proc = subprocess.run([sys.executable, "-c", SIMULATED], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "all ok" in proc.stdout, proc.stdout + proc.stderr
