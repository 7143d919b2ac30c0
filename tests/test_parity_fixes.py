"""Differences from PyTorch found by review, each reproduced against PyTorch (skipped
without it; the expected values are also written out where that is short) and fixed:
clamp with tensor bounds, repeat_interleave with tensor repeats, binary_cross_entropy's
gradient at 0 and 1, nanmean of an all-NaN line, index_put_ from a value overlapping the
destination, minaot.compile of a Module, and the strides of sort/argsort/topk."""

import math

import numpy as np
import pytest

import minaot
from minaot._errors import DTypeError, ShapeError
from minaot.testing import assert_close, check_compiled, gradcheck

nan, inf = math.nan, math.inf


def _np(t):
    return np.asarray(t.detach().tolist() if hasattr(t, "detach") else t, dtype=np.float64)


def _same(got, want, msg=""):
    """Equal values, NaN where NaN, the sign of every zero too."""
    got, want = _np(got), _np(want)
    np.testing.assert_array_equal(got, want, msg)
    zeros = want == 0
    assert (np.signbit(got[zeros]) == np.signbit(want[zeros])).all(), (msg, got, want)


# ------------------------------------------------------------------ clamp with tensor bounds
XS = [-2.0, 0.0, 0.5, 1.0, 3.0, nan, 2.0, -1.0, 0.2, 5.0, 1.0, -3.0, -0.0]
LOS = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0, -1.0, nan, 0.0, 1.0, 2.0, 0.0]
HIS = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0, 1.0, nan, 1.0, 2.0, 1.0]
# PyTorch 2.x: values and gradients of clamp(x, lo, hi) * w, w = 1, 2, ...: ties on a bound
# go to the input; min > max gives max (its gradient to max); min == max clipping gives
# nobody a gradient; NaN anywhere gives NaN (and the input no gradient)
CLAMP_WANT = {
    "value": [0.0, 0.0, 1.5, 4.0, 5.0, nan, 7.0, -8.0, nan, nan, 11.0, 24.0, -0.0],
    "x": [0, 2, 3, 4, 0, 0, 0, 8, 0, 0, 11, 0, 13],
    "lo": [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "hi": [0, 0, 0, 0, 5, 0, 7, 0, 0, 0, 0, 0, 0],
}


def _clamp_run(lib, fn, compiled=False):
    x, lo, hi = (lib.tensor(v, requires_grad=True) for v in (XS, LOS, HIS))
    w = lib.tensor([float(i + 1) for i in range(len(XS))])
    f = (lambda x, lo, hi, w: fn(x, lo, hi) * w)
    if compiled:
        f = minaot.compile(f)
    y = f(x, lo, hi, w)
    y.sum().backward()
    return y, x.grad, lo.grad, hi.grad


CLAMPS = {
    "clamp": lambda x, lo, hi: minaot.clamp(x, lo, hi),
    "clip": lambda x, lo, hi: minaot.clip(x, min=lo, max=hi),
    "method": lambda x, lo, hi: x.clamp(lo, hi),
    "clamp_": lambda x, lo, hi: (x * 1).clamp_(lo, hi),
}


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("name", sorted(CLAMPS))
def test_clamp_tensor_bounds_values_and_gradients(name, compiled):
    y, gx, glo, ghi = _clamp_run(minaot, CLAMPS[name], compiled)
    for got, key in zip((y, gx, glo, ghi), ("value", "x", "lo", "hi")):
        _same(got, CLAMP_WANT[key], key)      # clamp(-0.0, 0.0, 1.0) is -0.0, the input


def test_clamp_tensor_bounds_against_torch():
    torch = pytest.importorskip("torch")
    want = _clamp_run(torch, lambda x, lo, hi: torch.clamp(x, lo, hi))
    got = _clamp_run(minaot, CLAMPS["clamp"])
    for g, w in zip(got, want):
        _same(g, w)
    for one in ("min", "max"):
        def run(lib, compiled=False):
            x, b = lib.tensor(XS, requires_grad=True), lib.tensor(LOS, requires_grad=True)
            f = lambda x, b: lib.clamp(x, **{one: b})          # noqa: E731
            y = (minaot.compile(f) if compiled else f)(x, b)
            y.sum().backward()
            return y, x.grad, b.grad
        want = run(torch)
        for compiled in (False, True):
            for g, w in zip(run(minaot, compiled), want):
                _same(g, w)


def test_clamp_scalar_bounds_nan_and_crossed_match_torch():
    # a NaN input gets no gradient (PyTorch's mask is min <= x <= max); a NaN bound gives
    # NaN; min > max gives max everywhere with no gradient; eager and compiled agree
    cases = [(0.0, 1.0), (None, 1.0), (0.0, None), (1.0, -1.0), (nan, 1.0), (0.0, nan)]
    xs = [nan, -2.0, 0.0, 0.5, 1.0, 3.0, -0.0]
    want = {  # PyTorch 2.x: (values, gradient) per case
        (0.0, 1.0): ([nan, 0, 0, 0.5, 1, 1, -0.0], [0, 0, 1, 1, 1, 0, 1]),
        (None, 1.0): ([nan, -2, 0, 0.5, 1, 1, -0.0], [0, 1, 1, 1, 1, 0, 1]),
        (0.0, None): ([nan, 0, 0, 0.5, 1, 3, -0.0], [0, 0, 1, 1, 1, 1, 1]),
        (1.0, -1.0): ([nan, -1, -1, -1, -1, -1, -1], [0] * 7),
        (nan, 1.0): ([nan] * 7, [0] * 7),
        (0.0, nan): ([nan] * 7, [0] * 7),
    }
    for lo, hi in cases:
        for compiled in (False, True):
            x = minaot.tensor(xs, requires_grad=True)
            f = lambda x: x.clamp(lo, hi)                    # noqa: E731
            y = (minaot.compile(f) if compiled else f)(x)
            y.sum().backward()
            _same(y, want[lo, hi][0], (lo, hi))
            _same(x.grad, want[lo, hi][1], (lo, hi))


def test_clamp_scalar_against_torch():
    torch = pytest.importorskip("torch")
    xs = [nan, -2.0, 0.0, 0.5, 1.0, 3.0, -0.0, inf, -inf]
    for lo, hi in [(0.0, 1.0), (None, 1.0), (0.0, None), (1.0, -1.0), (nan, 1.0), (0.0, nan)]:
        tx = torch.tensor(xs, requires_grad=True)
        ty = tx.clamp(lo, hi)
        ty.sum().backward()
        for compiled in (False, True):
            x = minaot.tensor(xs, requires_grad=True)
            f = lambda x: x.clamp(lo, hi)                    # noqa: E731
            y = (minaot.compile(f) if compiled else f)(x)
            y.sum().backward()
            _same(y, ty)
            _same(x.grad, tx.grad)


def test_clamp_tensor_bounds_broadcast_dtypes_and_errors():
    x = minaot.tensor(np.arange(6.0).reshape(3, 2).T.copy())           # (2, 3)
    lo = minaot.tensor([[1.0], [2.0]])
    hi = minaot.tensor([2.0, 4.0, 5.0])
    assert_close(minaot.clamp(x, lo, hi), np.clip(x.numpy(), lo.numpy(), hi.numpy()))
    assert minaot.clamp(minaot.zeros(3, 1), min=minaot.zeros(4)).shape == (3, 4)
    ints = minaot.arange(3)
    assert minaot.clamp(ints, min=minaot.tensor([1, 0, 0])).dtype is minaot.int64
    assert minaot.clamp(ints, min=minaot.tensor([1, 0, 0])).tolist() == [1, 1, 2]
    half = minaot.clamp(ints, min=minaot.tensor(0.5))
    assert half.dtype is minaot.float32 and half.tolist() == [0.5, 1.0, 2.0]
    f32 = minaot.arange(3, dtype=minaot.float32)
    assert minaot.clamp(f32, min=minaot.tensor([1.0, 0, 0], dtype=minaot.float64)).dtype \
        is minaot.float64
    assert minaot.clamp(f32, min=minaot.tensor(1.0, dtype=minaot.float64)).dtype is minaot.float32
    assert minaot.clamp(minaot.ones(3), min=minaot.tensor(0.0), max=0.5).tolist() == [0.5] * 3
    with pytest.raises(TypeError, match="both be tensors or both be numbers"):
        minaot.clamp(minaot.ones(3), min=minaot.zeros(3), max=1.0)
    with pytest.raises(ShapeError, match="doesn't match the broadcast shape"):
        minaot.arange(3.0).clamp_(min=minaot.zeros(2, 3))
    with pytest.raises(DTypeError, match="can't be cast"):
        minaot.arange(3).clamp_(min=minaot.tensor([0.5, 0.0, 0.0]))
    with pytest.raises(DTypeError, match="can't be cast"):
        minaot.arange(3).clamp_(min=1.5)
    y = minaot.arange(4.0)
    assert y.clamp_(min=minaot.tensor([1.0, 0, 0, 0]), max=minaot.tensor(2.5)) is y
    assert y.tolist() == [1.0, 1.0, 2.0, 2.5]
    assert minaot.clamp_min(minaot.arange(3.0), minaot.tensor([2.0, 0, 0])).tolist() == [2, 1, 2]
    assert minaot.clamp_max(minaot.arange(3.0), minaot.tensor(1.0)).tolist() == [0, 1, 1]


def test_clamp_tensor_bounds_gradcheck_and_compiled():
    rng = np.random.default_rng(0)
    x = minaot.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    lo = minaot.tensor(rng.uniform(-1, -0.2, (4,)), requires_grad=True)
    hi = minaot.tensor(rng.uniform(0.2, 1, (3, 1)), requires_grad=True)
    gradcheck(lambda x, lo, hi: minaot.clamp(x * 2, lo, hi), [x, lo, hi])
    args = [minaot.tensor(a.detach().numpy(), dtype=minaot.float32, requires_grad=True)
            for a in (x, lo, hi)]
    check_compiled(lambda x, lo, hi: (x * 2).clamp(lo, hi).exp() + x.clamp(max=hi), *args)


# ------------------------------------------------------------------ repeat_interleave
X23 = np.arange(6.0).reshape(2, 3)


@pytest.mark.parametrize("args,kwargs,want", [
    (([1, 0, 2],), {"dim": 1}, [[0.0, 2.0, 2.0], [3.0, 5.0, 5.0]]),
    (([2, 1],), {"dim": 0}, [[0, 1, 2], [0, 1, 2], [3, 4, 5]]),
    ((2,), {"dim": None, "tensor": True}, np.repeat(np.arange(6.0), 2)),
    (([2],), {"dim": 1}, np.repeat(X23, 2, 1)),
    (([1, 2, 1],), {"dim": -1, "output_size": 4}, [[0, 1, 1, 2], [3, 4, 4, 5]]),
    (([1, 1, 0, 2, 0, 1],), {}, [0.0, 1.0, 3.0, 3.0, 5.0]),
])
def test_repeat_interleave_with_a_tensor_of_repeats(args, kwargs, want):
    kwargs = dict(kwargs)
    as_tensor = kwargs.pop("tensor", True)
    reps = minaot.tensor(args[0]) if as_tensor else args[0]
    out = minaot.repeat_interleave(minaot.tensor(X23), reps, **kwargs)
    assert_close(out, np.asarray(want, np.float32))
    assert out.is_contiguous()


def test_repeat_interleave_counts_alone_and_gradient():
    assert minaot.repeat_interleave(minaot.tensor([1, 2])).tolist() == [0, 1, 1]
    assert minaot.tensor([2, 0, 1]).repeat_interleave(output_size=3).tolist() == [0, 0, 2]
    assert minaot.repeat_interleave(minaot.tensor([], dtype=minaot.int64)).shape == (0,)
    x = minaot.tensor(X23, requires_grad=True)
    minaot.repeat_interleave(x, minaot.tensor([1, 0, 2]), dim=1).pow(2).sum().backward()
    assert_close(x.grad, np.array([[0.0, 0.0, 8.0], [6.0, 0.0, 20.0]]))
    gradcheck(lambda x: x.repeat_interleave(minaot.tensor([3, 0, 1]), 1) * 1.5,
              [minaot.tensor(X23 + 0.5, dtype=minaot.float64, requires_grad=True)])


@pytest.mark.parametrize("call,err,match", [
    (lambda x: x.repeat_interleave(minaot.tensor([1, 0, 2]), 1, output_size=4), RuntimeError,
     "allocated size does not match required size"),
    (lambda x: x.repeat_interleave(2, 1, output_size=5), RuntimeError,
     "Invalid output_size, expected 6 but got 5"),
    (lambda x: x.repeat_interleave(minaot.tensor([1, -1, 2]), 1), RuntimeError,
     "repeats can not be negative"),
    (lambda x: x.repeat_interleave(minaot.tensor([1, 2]), 1), RuntimeError,
     r"repeats must have the same size as input along dim, but got repeats.size\(0\) = 2 "
     r"and input.size\(1\) = 3"),
    (lambda x: x.repeat_interleave(minaot.tensor([[1, 2]]), 1), RuntimeError,
     "repeats must be 0-dim or 1-dim tensor"),
    (lambda x: x.repeat_interleave(minaot.tensor([1.0, 2.0, 1.0]), 1), NotImplementedError,
     "int64"),
    (lambda x: x.repeat_interleave([1, 2, 1], 1), TypeError, "int or an integer tensor"),
    (lambda x: minaot.repeat_interleave(minaot.tensor([[1, 2]])), RuntimeError,
     "only accept 1D vector"),
])
def test_repeat_interleave_errors(call, err, match):
    with pytest.raises(err, match=match):
        call(minaot.tensor(X23))


def test_repeat_interleave_tensor_repeats_compiled_needs_output_size():
    f = minaot.compile(lambda x, r: x.repeat_interleave(r, dim=1, output_size=4) * 2)
    x = minaot.tensor(X23, requires_grad=True)
    for reps in ([1, 2, 1], [0, 1, 3], [4, 0, 0]):
        r = minaot.tensor(reps)
        want = minaot.repeat_interleave(x, r, dim=1) * 2
        got = f(x, r)
        assert_close(got, want)
        got.pow(2).sum().backward()
        g = x.grad.clone()
        x.grad = None
        want.pow(2).sum().backward()
        assert_close(g, x.grad)
        x.grad = None
    assert minaot.counters["aot"]["compiles"] >= 1
    with pytest.raises(minaot.TraceError, match="output_size"):
        minaot.compile(lambda x, r: x.repeat_interleave(r, dim=1))(x, minaot.tensor([1, 2, 1]))
    # counts made inside the function are constants of the graph: no output_size needed
    h = minaot.compile(lambda x: x.repeat_interleave(minaot.tensor([2, 0, 1]), dim=1))
    assert_close(h(x.detach()), np.repeat(X23, [2, 0, 1], 1).astype(np.float32))
    h2 = minaot.compile(lambda x: x.repeat_interleave(minaot.tensor(2), dim=0))
    assert_close(h2(x.detach()), np.repeat(X23, 2, 0).astype(np.float32))
    with pytest.raises(RuntimeError, match="allocated size"):
        minaot.compile(lambda x: x.repeat_interleave(minaot.tensor([2, 0, 1]), dim=1,
                                                     output_size=4))(x.detach())
    # an int count compiles as before; a 0-d count tensor with output_size too
    g = minaot.compile(lambda x, r: x.repeat_interleave(r, output_size=12))
    assert_close(g(x.detach(), minaot.tensor(2)), np.repeat(X23.ravel(), 2).astype(np.float32))


def test_repeat_interleave_against_torch():
    torch = pytest.importorskip("torch")
    x = np.arange(24.0).reshape(2, 3, 4)
    for reps, dim in [([1, 0, 2], 1), ([3, 1], 0), ([2], 2), (3, -1), ([0, 0, 0, 5], 2),
                      (list(range(24)), None)]:
        treps = torch.tensor(reps) if isinstance(reps, list) else reps
        mreps = minaot.tensor(reps) if isinstance(reps, list) else reps
        want = torch.repeat_interleave(torch.tensor(x), treps, dim)
        got = minaot.repeat_interleave(minaot.tensor(x, dtype=minaot.float64), mreps, dim)
        _same(got, want)
        assert got.stride() == want.stride()


# ------------------------------------------------------------------ binary_cross_entropy
BCE_X = [0.0, 1.0, 0.0, 1.0, 0.3, 0.999]
BCE_T = [0.0, 1.0, 1.0, 0.0, 0.2, 1.0]


def _bce_run(lib, functional, dtype, reduction, weight, compiled=False):
    x = lib.tensor(BCE_X, dtype=dtype, requires_grad=True)
    t = lib.tensor(BCE_T, dtype=dtype, requires_grad=True)
    w = None if weight is None else lib.tensor(weight, dtype=dtype)

    def f(x, t, w):
        return functional.binary_cross_entropy(x, t, weight=w, reduction=reduction)
    loss = (minaot.compile(f) if compiled else f)(x, t, w)
    loss.sum().backward()
    return loss, x.grad, t.grad


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_bce_gradient_at_0_and_1_is_pytorchs(compiled):
    # PyTorch: grad * (x - t) / max((1 - x) * x, 1e-12), so 0 where x == t and +-1e12 where
    # they disagree; the target's gradient is -logit(x) (infinite at 0 and 1)
    F = minaot.nn.functional
    loss, gx, gt = _bce_run(minaot, F, minaot.float64, "sum", None, compiled)
    assert_close(loss, np.asarray(200.0 - 0.2 * np.log(0.3) - 0.8 * np.log(0.7) - np.log(0.999)))
    assert_close(gx, np.array([0.0, 0.0, -1e12, 1e12, 0.1 / 0.21, -0.001 / (0.999 * 0.001)]),
                 rtol=1e-9)
    assert_close(gt, np.array([inf, -inf, inf, -inf, -np.log(0.3 / 0.7),
                               -np.log(0.999 / 0.001)]), rtol=1e-9)


def test_bce_against_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    for tdt, mdt in ((torch.float32, minaot.float32), (torch.float64, minaot.float64)):
        for reduction in ("mean", "sum", "none"):
            for weight in (None, [2.0]):
                want = _bce_run(torch, tf, tdt, reduction, weight)
                for compiled in (False, True):
                    got = _bce_run(minaot, minaot.nn.functional, mdt, reduction, weight, compiled)
                    for g, w in zip(got, want):
                        np.testing.assert_allclose(_np(g), _np(w), rtol=1e-6)


def test_bce_refuses_a_target_outside_0_1():
    F = minaot.nn.functional
    with pytest.raises(RuntimeError, match="all elements of target should be between 0 and 1"):
        F.binary_cross_entropy(minaot.tensor([0.5]), minaot.tensor([1.5]))


# ------------------------------------------------------------------ nanmean of all-NaN
NANS = [[1.0, 0.5, nan], [nan, nan, nan], [2.0, -1.0, 3.0]]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_nanmean_of_an_all_nan_line_has_a_nan_gradient(compiled):
    # PyTorch: nansum(x) / count with nansum's backward grad * ~isnan(x): grad / 0 * 0 = NaN
    x = minaot.tensor(NANS, requires_grad=True)
    f = lambda x: minaot.nanmean(x, 1)                              # noqa: E731
    y = (minaot.compile(f) if compiled else f)(x)
    _same(y, [0.75, nan, np.float32(4.0 / 3.0)])
    y.sum().backward()
    _same(x.grad, [[0.5, 0.5, 0.0], [nan, nan, nan], [np.float32(1 / 3)] * 3])
    x.grad = None
    y = (minaot.compile(f) if compiled else f)(x)
    y[0].backward()                                   # grad 0 / count 0 is NaN too
    _same(x.grad, [[0.5, 0.5, 0.0], [nan, nan, nan], [0.0] * 3])
    x.grad = None
    g = lambda x: minaot.nansum(x, 1)                               # noqa: E731
    (minaot.compile(g) if compiled else g)(x).sum().backward()
    _same(x.grad, [[1.0, 1.0, 0.0], [0.0] * 3, [1.0] * 3])


def test_nanmean_against_torch():
    torch = pytest.importorskip("torch")
    for dim, pick in ((1, None), (None, None), (1, 0), (0, None), ((0, 1), None)):
        tx = torch.tensor(NANS, requires_grad=True)
        ty = torch.nanmean(tx) if dim is None else torch.nanmean(tx, dim)
        (ty if pick is None else ty[pick]).sum().backward()
        for compiled in (False, True):
            x = minaot.tensor(NANS, requires_grad=True)
            f = (lambda x: minaot.nanmean(x)) if dim is None else (lambda x: x.nanmean(dim))
            y = (minaot.compile(f) if compiled else f)(x)
            (y if pick is None else y[pick]).sum().backward()
            _same(y, ty)
            _same(x.grad, tx.grad)


# ------------------------------------------------------------------ index_put_ overlap
#: name -> (write, PyTorch refuses it?)
OVERLAP_CASES = {
    "slice value": (lambda L, x: x.__setitem__(L.tensor([0, 1]), x[2:4]), True),
    "0-d value": (lambda L, x: x.__setitem__(L.tensor([0, 1]), x[4]), True),
    "whole tensor": (lambda L, x: x.__setitem__(L.tensor([0, 1, 2, 3, 4, 5]), x), True),
    "accumulate": (lambda L, x: x.index_put_((L.tensor([0, 1]),), x[2:4], accumulate=True),
                   True),
    "one element broadcast": (lambda L, x: x.__setitem__(L.tensor([0, 1]), x[2:3]), True),
    "strided view": (lambda L, x: x.__setitem__(L.tensor([1]), x[::2][1:2]), True),
    "mask, two values": (lambda L, x: x.__setitem__(x > 3, x[0:2]), True),
    "mask, index_put_ accumulate": (lambda L, x: x.index_put_(
        (L.tensor([True, False, True, False, False, False]),), x[2:3], accumulate=True), True),
    # masked_fill_: one mask, one value, read first
    "mask, 0-d value": (lambda L, x: x.__setitem__(x > 3, x[0]), False),
    "mask, one value": (lambda L, x: x.index_put_(
        (L.tensor([True, False, True, False, False, False]),), x[2:3]), False),
    "expanded value (not dense)": (lambda L, x: x.__setitem__(L.tensor([0, 1]),
                                                              x[2:3].expand(2)), False),
    "disjoint after slicing": (lambda L, x: x[1:3].__setitem__(L.tensor([0]), x[0:1]), False),
    "clone": (lambda L, x: x.__setitem__(L.tensor([0, 1]), x[2:4].clone()), False),
}
OVERLAP_2D = {
    "row of another row": (lambda L, x: x.__setitem__((0, L.tensor([0, 1])), x[1, 1:]), False),
    "columns (not dense)": (lambda L, x: x.__setitem__((slice(None), L.tensor([0, 1])),
                                                       x[:, 1:]), False),
}


def _overlap_outcome(lib, write, x):
    try:
        write(lib, x)
    except RuntimeError as e:
        assert "refer to a single memory location" in str(e), e
        return "refused"
    return x.tolist()


@pytest.mark.parametrize("name", sorted(OVERLAP_CASES) + sorted(OVERLAP_2D))
def test_index_put_refuses_a_value_overlapping_the_destination(name):
    write, refused = {**OVERLAP_CASES, **OVERLAP_2D}[name]
    x = minaot.arange(6.0) if name in OVERLAP_CASES else minaot.arange(6.0).reshape(2, 3)
    before = x.tolist()
    got = _overlap_outcome(minaot, write, x)
    assert (got == "refused") == refused
    if refused:
        assert x.tolist() == before                 # nothing written


def test_index_put_refuses_an_index_overlapping_the_destination():
    x = minaot.arange(6)
    with pytest.raises(RuntimeError, match="single memory location"):
        x[x[:2]] = 7
    with pytest.raises(RuntimeError, match="single memory location"):
        x.index_put_((x[:2],), minaot.tensor(7))
    x[x[:2].clone()] = 7
    assert x.tolist() == [7, 7, 2, 3, 4, 5]


def test_index_put_overlap_against_torch():
    torch = pytest.importorskip("torch")
    for name, (write, _) in {**OVERLAP_CASES, **OVERLAP_2D}.items():
        shape = (6,) if name in OVERLAP_CASES else (2, 3)
        want = _overlap_outcome(torch, write, torch.arange(6.0).reshape(shape))
        got = _overlap_outcome(minaot, write, minaot.arange(6.0).reshape(shape))
        assert got == want, name


# ------------------------------------------------------------------ minaot.compile(module)
def _net(seed=0):
    nn = minaot.nn
    minaot.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def test_compile_of_a_module_is_a_module_that_trains_the_original():
    eager, model = _net(), _net()
    compiled = minaot.compile(model)
    assert isinstance(compiled, minaot.nn.Module) and compiled._orig_mod is model
    assert len(compiled) == 4 and compiled.training
    x = minaot.randn(6, 3)
    opt_e = minaot.optim.SGD(eager.parameters(), lr=0.1)
    opt_c = minaot.optim.SGD(compiled.parameters(), lr=0.1)
    assert [id(p) for p in compiled.parameters()] == [id(p) for p in model.parameters()]
    for step in range(3):
        for net, opt in ((eager, opt_e), (compiled, opt_c)):
            opt.zero_grad()
            (net(x) ** 2).sum().backward()
            opt.step()
        for pe, pc in zip(eager.parameters(), model.parameters()):
            assert_close(pc, pe, rtol=1e-5, atol=1e-6)
        assert_close(model[1].running_mean, eager[1].running_mean, rtol=1e-5, atol=1e-6)
    assert int(model[1].num_batches_tracked) == 3
    compiled.eval()                                     # eval reaches the original
    assert not model.training and not model[1].training and not compiled.training
    eager.eval()
    assert_close(compiled(x), eager(x), rtol=1e-5, atol=1e-6)
    assert int(model[1].num_batches_tracked) == 3       # eval: running stats untouched
    compiled.train()
    assert model.training and model[1].training


def test_compile_of_a_module_state_dict_and_attributes():
    model = _net()
    compiled = minaot.compile(model)
    keys = list(compiled.state_dict())
    assert keys == ["_orig_mod." + k for k in model.state_dict()]      # as in PyTorch
    assert [n for n, _ in compiled.named_parameters()] == \
        ["_orig_mod." + n for n, _ in model.named_parameters()]
    other = _net(seed=1)
    compiled.load_state_dict({"_orig_mod." + k: v for k, v in other.state_dict().items()})
    assert_close(model[0].weight, other[0].weight.detach())
    with pytest.raises(RuntimeError, match="missing keys"):
        compiled.load_state_dict(other.state_dict())
    with pytest.raises(TypeError):
        compiled[0]                             # not subscriptable, as in PyTorch
    compiled.scale = 2.5                        # attributes are the original's
    assert model.scale == 2.5 and compiled.scale == 2.5
    del compiled.scale
    assert not hasattr(model, "scale")
    assert compiled._orig_mod is model and "OptimizedModule" in repr(compiled)


def test_compile_of_a_module_with_keyword_arguments_and_a_backend():
    class Scaled(minaot.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = minaot.nn.Linear(3, 2)

        def forward(self, x, *, scale=1.0):
            return self.fc(x) * scale
    m = Scaled()
    x = minaot.randn(4, 3)
    for backend in ("auto", "numpy"):
        c = minaot.compile(m, backend=backend)
        assert_close(c(x, scale=3.0), m(x, scale=3.0), rtol=1e-5, atol=1e-6)
        assert c.fc is m.fc


def test_compile_of_a_module_against_torch_names():
    torch = pytest.importorskip("torch")
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4),
                             torch.nn.ReLU(), torch.nn.Linear(4, 2))
    assert list(torch.compile(tm).state_dict()) == list(minaot.compile(_net()).state_dict())


# ------------------------------------------------------------------ sort/argsort/topk strides
# (view of a contiguous (3, 4, 5) tensor, PyTorch's strides of sort/argsort results): the
# input's own when it is dense, else dense in the order of its strides; topk: C order
LAYOUTS = {
    "transpose": (lambda a: a.transpose(0, 2), (1, 5, 20)),
    "permute": (lambda a: a.permute(1, 2, 0), (5, 1, 20)),
    "t": (lambda a: a[0].t(), (1, 5)),
    "unsqueezed": (lambda a: a[0].t().unsqueeze(0), (5, 1, 5)),
    "slice": (lambda a: a[:, ::2], (10, 5, 1)),
    "permuted slice (not dense)": (lambda a: a[:, :1].permute(2, 1, 0), (1, 5, 5)),
    "expand": (lambda a: a[:, :1, 0].expand(3, 4), (4, 1)),
    "contiguous": (lambda a: a, (20, 5, 1)),
}
SORT_X = np.random.default_rng(3).standard_normal((3, 4, 5))


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_sort_and_argsort_results_are_laid_out_as_the_input(name):
    view, want = LAYOUTS[name]
    x = view(minaot.tensor(SORT_X, dtype=minaot.float64))
    ref = np.array(x.numpy())
    for dim in range(x.ndim):
        s = minaot.sort(x, dim, descending=dim == 1)
        a = x.argsort(dim, descending=dim == 1)
        assert s.values.stride() == s.indices.stride() == a.stride() == want, (dim, a.stride())
        order = np.argsort(ref, axis=dim, kind="stable")
        if dim != 1:
            assert_close(a, order)
            assert_close(s.values, np.take_along_axis(ref, order, dim))
        k = min(2, x.shape[dim])
        t = minaot.topk(x, k, dim)
        assert t.values.is_contiguous() and t.indices.is_contiguous()
        shape = list(x.shape)
        shape[dim] = k
        c = np.empty(shape).strides
        assert t.values.stride() == t.indices.stride() == tuple(s // 8 for s in c)


def test_sort_of_a_transposed_input_gradient_and_compiled():
    x = minaot.tensor(SORT_X[0], dtype=minaot.float64, requires_grad=True)
    w = minaot.arange(20.0, dtype=minaot.float64).reshape(5, 4)
    gradcheck(lambda x: minaot.sort(x.t(), 0).values * w, [x])
    xs = minaot.tensor(SORT_X[0], requires_grad=True)
    check_compiled(lambda x: (minaot.sort(x.t(), 1).values * 2, x.t().argsort(0)), xs)
    out = minaot.compile(lambda x: minaot.sort(x.t(), 1))(xs)
    assert out.values.stride() == out.indices.stride() == xs.t().stride() == (1, 5)


def test_sort_strides_against_torch():
    torch = pytest.importorskip("torch")
    for name, (view, _) in LAYOUTS.items():
        tx, mx = view(torch.tensor(SORT_X)), view(minaot.tensor(SORT_X, dtype=minaot.float64))
        for dim in range(tx.ndim):
            ts, ms = torch.sort(tx, dim), minaot.sort(mx, dim)
            assert ms.values.stride() == ts.values.stride(), (name, dim)
            assert mx.argsort(dim).stride() == tx.argsort(dim).stride(), (name, dim)
            _same(ms.values, ts.values)
            tt, mt = torch.topk(tx, 1, dim), minaot.topk(mx, 1, dim)
            assert mt.values.stride() == tt.values.stride() == mt.indices.stride(), (name, dim)


# ------------------------------------------------------------------ CUDA (Numba's simulator)
SIMULATED = r"""
import math, numpy as np, minaot
from minaot.testing import assert_close
nan = math.nan
def both(f, *arrays, grad=True):
    # f on the CPU and on CUDA (eager and compiled): values and gradients agree
    outs = []
    for dev, comp in (("cpu", False), ("cuda", False), ("cuda", True)):
        xs = [minaot.tensor(a, device=dev, requires_grad=grad and a.dtype.kind == "f")
              for a in arrays]
        g = minaot.compile(f, backend="cuda") if comp else f
        y = g(*xs)
        if grad:
            y.sum().backward()
        outs.append([y.detach().cpu()] + [x.grad.cpu() for x in xs if x.grad is not None])
    for o in outs[1:]:
        for a, b in zip(o, outs[0]):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, equal_nan=True)
x = np.array([-2.0, 0.0, 0.5, 1.0, 3.0, nan, 2.0, -1.0], np.float32)
lo = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0, -1.0], np.float32)
hi = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0], np.float32)
both(lambda x, lo, hi: minaot.clamp(x, lo, hi) * 2, x, lo, hi); print("clamp ok")
both(lambda x, lo: x.clamp(min=lo) + x.clamp(max=lo), x, lo); print("clamp one-sided ok")
both(lambda x: x.clamp(0.0, 1.0), x); print("clamp scalar ok")
xs = np.array([[0.0, 1.0, 0.3], [1.0, 0.0, 0.999]], np.float32)
ts = np.array([[0.0, 0.0, 0.2], [1.0, 1.0, 1.0]], np.float32)
both(lambda x, t: minaot.nn.functional.binary_cross_entropy(x, t, reduction="none"), xs, ts)
print("bce ok")
n = np.array([[1.0, nan, 2.0], [nan, nan, nan]], np.float32)
both(lambda x: minaot.nanmean(x, 1), n); print("nanmean ok")
a = np.arange(6.0, dtype=np.float32).reshape(2, 3)
r = np.array([1, 0, 2])
y = minaot.repeat_interleave(minaot.tensor(a, device="cuda"), minaot.tensor(r, device="cuda"),
                             dim=1)
assert y.device == "cuda"
assert_close(y.cpu(), np.repeat(a, r, 1))
both(lambda x, r: x.repeat_interleave(r, dim=1, output_size=3) * 2, a, r)
print("repeat_interleave ok")
s = minaot.tensor(np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32),
                  device="cuda")
v, i = minaot.sort(s.t(), 0)
assert v.device == "cuda" and v.is_contiguous()
assert_close(v.cpu(), np.sort(s.cpu().numpy().T, 0))
print("sort ok")
m = minaot.nn.Sequential(minaot.nn.Linear(3, 2)).cuda()
c = minaot.compile(m)
c(minaot.ones(4, 3, device="cuda")).sum().backward()
assert m[0].weight.grad.device == "cuda"
print("module ok")
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
    proc = subprocess.run([sys.executable, "-W", "ignore::RuntimeWarning", "-c", SIMULATED],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "all ok" in proc.stdout, proc.stdout + proc.stderr
