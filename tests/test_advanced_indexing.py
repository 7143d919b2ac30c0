"""Advanced indexing (integer tensors, lists or boolean masks in a subscript) and
``index_select``, and assignments through them (``index_put_``): values against numpy's indexing (the same rules as PyTorch's for these
subscripts), gradients against ``np.add.at`` (repeated positions accumulate), eager
and compiled; the errors PyTorch gives; ``x[mask] = v``."""

import numpy as np
import pytest

import minaot
from minaot._errors import DTypeError, ShapeError
from minaot.testing import assert_close

T = minaot.tensor
RNG = np.random.default_rng(7)
X = RNG.standard_normal((4, 5, 3))
MASK = np.zeros((4, 5), bool)
MASK[0, 1] = MASK[2, 3] = MASK[3, 0] = True

# (name, subscript on a minaot tensor, the same subscript for numpy; masks made from X, so
# that the numpy subscript also picks the positions out of an array of positions)
CASES = [
    ("int list", lambda x: x[[1, 1, 3]], lambda a: a[[1, 1, 3]]),
    ("tensor, negative", lambda x: x[T([0, 2, -1])], lambda a: a[[0, 2, -1]]),
    ("2-d index on dim 1", lambda x: x[:, T([[0, 4], [2, 2]])], lambda a: a[:, [[0, 4], [2, 2]]]),
    # PyTorch applies an int first (a select), where numpy counts it as an advanced index
    ("after an int", lambda x: x[1, :, T([2, 0])], lambda a: a[1][:, [2, 0]]),
    ("after Ellipsis", lambda x: x[..., T([2, 0])], lambda a: a[..., [2, 0]]),
    ("after None", lambda x: x[None, T([3])], lambda a: a[None, [3]]),
    ("0-d index after a slice", lambda x: x[1:3, T(2)], lambda a: a[1:3, np.array(2)]),
    ("empty", lambda x: x[T([0])[:0]], lambda a: a[np.zeros(0, np.int64)]),
    ("full mask", lambda x: x[x > 0.5], lambda a: a[X > 0.5]),
    ("leading mask", lambda x: x[x[:, :, 0] > 0], lambda a: a[X[:, :, 0] > 0]),
    ("mask on dim 1", lambda x: x[:, x[0, :, 0] > 0], lambda a: a[:, X[0, :, 0] > 0]),
    ("bool list", lambda x: x[[True, False, True, True]], lambda a: a[[True, False, True, True]]),
    ("index_select", lambda x: x.index_select(1, T([4, 0, 0])), lambda a: a[:, [4, 0, 0]]),
    # several advanced indices: broadcast together, one element per position
    ("two lists", lambda x: x[[0, 3, 3], [1, 4, 0]], lambda a: a[[0, 3, 3], [1, 4, 0]]),
    ("two tensors broadcast", lambda x: x[T([[0], [3]]), T([1, -1])], lambda a: a[[[0], [3]], [1, -1]]),
    ("three, repeated", lambda x: x[T([0, 0, 2]), T([1, 1, 4]), T([2, 2, -3])],
     lambda a: a[[0, 0, 2], [1, 1, 4], [2, 2, -3]]),
    # apart (a slice between): the broadcast dims come first
    ("apart", lambda x: x[T([1, 2]), :, T([0, 2])], lambda a: a[[1, 2], :, [0, 2]]),
    ("apart, 2-d", lambda x: x[T([[1], [2]]), 1:4, T([0, 2])], lambda a: a[[[1], [2]], 1:4, [0, 2]]),
    # an int between two advanced indices does not keep them apart
    ("an int between", lambda x: x[T([1, 2]), 0, T([0, 2])], lambda a: a[[1, 2], 0, [0, 2]]),
    ("after a slice", lambda x: x[1:, T([0, 4]), T([2, 1])], lambda a: a[1:, [0, 4], [2, 1]]),
    ("after Ellipsis, two", lambda x: x[..., T([0, 4]), T([2, 1])], lambda a: a[..., [0, 4], [2, 1]]),
    ("None between", lambda x: x[T([0, 3]), None, T([2, 1])], lambda a: a[[0, 3], None, [2, 1]]),
    ("mask and a list", lambda x: x[T(MASK), T([2, 0, 1])], lambda a: a[MASK, [2, 0, 1]]),
]


def _numpy_grad(np_index, w):
    """The gradient of ``sum(x[index] * w)`` for x of X's shape: ``w`` added at the picked
    positions (np.add.at accumulates repeated ones)."""
    positions = np_index(np.arange(X.size).reshape(X.shape))
    g = np.zeros(X.size)
    np.add.at(g, positions.reshape(-1), w.reshape(-1))
    return g.reshape(X.shape)


@pytest.mark.parametrize("name, index, np_index", CASES, ids=[c[0] for c in CASES])
def test_values_and_gradient_match_numpy(name, index, np_index):
    x = T(X, requires_grad=True)
    out = index(x)
    want = np_index(X)
    assert tuple(out.shape) == want.shape
    assert_close(out, T(want))
    w = RNG.standard_normal(want.shape)
    (out * T(w)).sum().backward()
    assert_close(x.grad, T(_numpy_grad(np_index, w)))


INT_CASES = [c for c in CASES if "mask" not in c[0] and "bool" not in c[0]]


@pytest.mark.parametrize("name, index, np_index", INT_CASES, ids=[c[0] for c in INT_CASES])
def test_integer_indices_compile(name, index, np_index):
    x = T(X, requires_grad=True)
    out = minaot.compile(lambda x: index(x) * 2, backend="numba")(x)
    assert_close(out, T(np_index(X) * 2))
    out.sum().backward()
    assert_close(x.grad, T(_numpy_grad(np_index, np.full(np_index(X).shape, 2.0))))


def test_an_index_tensor_is_an_input_of_the_compiled_function():
    f = minaot.compile(lambda x, i: x[i, 1:] * 2 + x[:, i.clamp(0, 3)].sum(), backend="numba")
    xs = RNG.standard_normal((6, 6))
    for i in ([0, -2, 3], [5, 5, 1]):
        x = T(xs, requires_grad=True)
        got = f(x, T(i))
        ic = np.clip(i, 0, 3)
        assert_close(got, T(xs[i, 1:] * 2 + xs[:, ic].sum()))
    assert len(f.cache) == 1


@pytest.mark.parametrize("index, error, match", [
    (lambda x: x[T([4])], IndexError, "index 4 is out of bounds for dimension 0 with size 4"),
    (lambda x: x[:, T([-6])], IndexError, "index -6 is out of bounds for dimension 1 with size 5"),
    (lambda x: x[T([0.0])], IndexError, "must be long, int or bool tensors, got float32"),
    (lambda x: x[T([True, False])], IndexError, r"shape of the mask \[2\] at index 0 does not match"),
    (lambda x: x[[0, 1], [1, 2, 3]], IndexError,
     r"shape mismatch: indexing tensors could not be broadcast together with shapes \[2\], \[3\]"),
    (lambda x: x[[0], T([5])], IndexError, "index 5 is out of bounds for dimension 1 with size 5"),
    (lambda x: x[[0], [0], [0], [0]], IndexError, "too many indices for tensor of dimension 3"),
    (lambda x: x[[0], [0.5]], IndexError, "must be long, int or bool tensors"),
    (lambda x: x.index_select(0, T([-1])), IndexError, "index -1 is out of bounds"),
    (lambda x: x.index_select(0, T([[0]])), IndexError, "1-d"),
])
def test_bad_indices_raise_naming_the_op(index, error, match):
    with pytest.raises(error, match=match):
        index(T(X))


def test_a_boolean_mask_while_tracing_raises_with_a_hint():
    with pytest.raises(minaot.TraceError, match=r"boolean mask indexing.*where"):
        minaot.compile(lambda x: x[x > 0])(T(X))


def test_assigning_through_a_mask_is_masked_fill_and_compiles():
    want = X.copy()
    want[want > 0] = 0.0
    want[:, want[0, :, 0] < -0.5] = 7.0
    x = T(X.copy())
    x[x > 0] = 0.0
    x[:, x[0, :, 0] < -0.5] = T(7.0)
    assert_close(x, T(want))

    def f(x):
        x[x > 0] = 0.0
        return x * 2
    y = T(X.copy())
    out = minaot.compile(f, backend="numba")(y)
    want = np.where(X > 0, 0.0, X)
    assert_close(y, T(want))                    # the input is changed, as in eager
    assert_close(out, T(want * 2))


# (name, assignment on a minaot tensor, the same on a numpy array): positions without repeats,
# where numpy's and PyTorch's assignments agree
PUTS = [
    ("int list, number", lambda x, t: x.__setitem__([0, 2], 0.5)),
    ("two tensors, number", lambda x, t: x.__setitem__((t([0, 3]), t([1, -1])), 7.0)),
    ("apart, a value per position", lambda x, t: x.__setitem__((t([1, 2]), slice(None), t([0, 2])),
                                                               t(np.arange(10.0).reshape(2, 5)))),
    ("broadcast value", lambda x, t: x.__setitem__((t([[0], [3]]), t([1, 4]), 2), t(np.array([1.0, 2.0])))),
    ("on dim 1", lambda x, t: x.__setitem__((slice(None), t([4, 0])), t(np.ones((4, 2, 3))))),
    ("mask, a value per element", lambda x, t: x.__setitem__(t(MASK), t(np.arange(9.0).reshape(3, 3)))),
    ("through a view", lambda x, t: x[1].__setitem__(t([0, 3]), -2.0)),
]


@pytest.mark.parametrize("name, put", PUTS, ids=[p[0] for p in PUTS])
def test_assigning_through_integer_indices_matches_numpy_eager_and_compiled(name, put):
    want = X.copy()
    put(want, np.asarray)
    x = T(X.copy())
    put(x, T)
    assert_close(x, T(want))

    def f(x):
        put(x, T)
        return x * 2
    y = T(X.copy())
    out = minaot.compile(f, backend="numba")(y) if "mask" not in name else f(y)
    assert_close(y, T(want))                    # the input is changed, as in eager
    assert_close(out, T(want * 2))


def test_assigned_positions_take_no_gradient_and_the_values_take_theirs():
    x = T(X, requires_grad=True)
    v = T(np.arange(10.0).reshape(2, 5), requires_grad=True)
    y = x * 1
    y[T([1, 2]), :, T([0, 2])] = v * 2
    (y * y).sum().backward()
    gx = 2 * X.copy()
    gx[[1, 2], :, [0, 2]] = 0.0
    assert_close(x.grad, T(gx))
    assert_close(v.grad, T(8 * np.arange(10.0).reshape(2, 5)))


def test_index_put_and_accumulate():
    x = T(X.copy())
    out = x.index_put((T([0, 2, 0]), T([1, 3, 1])), T(np.array([[1.0], [2.0], [3.0]])), accumulate=True)
    want = X.copy()
    np.add.at(want, ([0, 2, 0], [1, 3, 1]), np.array([[1.0], [2.0], [3.0]]))
    assert_close(out, T(want))
    assert_close(x, T(X))                       # index_put does not change its input
    assert x.index_put_((T([3]),), T(np.float64(0.0))) is x
    want = X.copy()
    want[3] = 0.0
    assert_close(x, T(want))
    b = minaot.zeros(5, dtype=minaot.bool)
    b[T([1, 3])] = True
    assert b.numpy().tolist() == [False, True, False, True, False]


def test_bad_assignments_raise():
    x = T(X.copy())
    with pytest.raises(ShapeError, match=r"value tensor of shape \[2\] cannot be broadcast"):
        x[T([0, 2, 1])] = T(np.array([1.0, 2.0]))
    with pytest.raises(IndexError, match="index 9 is out of bounds for dimension 0 with size 4"):
        x[T([0, 9])] = 1.0
    with pytest.raises(DTypeError, match="dtypes to match, got float64 for the destination and "
                       "float32 for the source"):
        x[T([0, 1])] = T([1.0, 2.0], dtype=minaot.float32).reshape(2, 1, 1)


def test_against_torch():
    torch = pytest.importorskip("torch")
    subs = [lambda x, t: x[t([0, 2, -1])], lambda x, t: x[:, t([[0, 4], [2, 2]])],
            lambda x, t: x[1, :, t([2, 0])], lambda x, t: x[x > 0.5],
            lambda x, t: x[:, x[0, :, 0] > 0], lambda x, t: x[t([[0], [3]]), t([1, -1])],
            lambda x, t: x[t([1, 2]), :, t([0, 2])], lambda x, t: x[t([1, 2]), 0, t([0, 2])],
            lambda x, t: x[t([0, 3]), None, t([2, 1])], lambda x, t: x[t([0, 0]), 1:, t([1, 1])],
            lambda x, t: x[t(True), t([0, 1])], lambda x, t: x[t([1]), t(X[0] > 0)]]
    for sub in subs:
        tx = torch.tensor(X, requires_grad=True)
        mx = T(X, requires_grad=True)
        tr, mr = sub(tx, torch.tensor), sub(mx, T)
        np.testing.assert_allclose(mr.detach().numpy(), tr.detach().numpy())
        (tr ** 2).sum().backward()
        (mr ** 2).sum().backward()
        np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy())
