"""cumsum (minaot/ops/scan_sort.py) against numpy written out here and, where torch is
installed, against torch itself: dtypes, dims, 0-d and empty inputs, in-place, errors,
gradients (eager, compiled with the numba backend, and finite differences in float64).
The op-database tests (test_ops_db, test_aot_ops, test_numba_ops, test_joint, the CUDA
suites) run the registry samples on every backend as well."""

import numpy as np
import pytest

import minaot
from minaot.testing import assert_close, gradcheck

T = minaot.tensor
R = np.random.default_rng(0)
pytestmark = pytest.mark.tensor


def compiled(fn):
    return minaot.compile(fn, backend="numba")


RUNS = {"eager": lambda fn: fn, "compiled": compiled}


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
