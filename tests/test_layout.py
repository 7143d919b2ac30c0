"""Result layouts (minaot.layout): PyTorch's strides in eager, in the trace and from
compiled functions.  The expected strides are PyTorch 2's, written out; with torch
installed, a randomized check compares the rule with TensorIterator itself."""

import random

import numpy as np
import pytest

import minaot
import minaot.nn.functional as F
from minaot.layout import result_strides
from minaot.testing import assert_close


def strided(shape, strides):
    """A float32 numpy array of ``shape`` with element ``strides`` (memory never read)."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape, [4 * s for s in strides])


def elements(strides, shape):
    if strides is None:                                 # C order
        strides, step = [], 4
        for n in reversed(shape):
            strides.insert(0, step)
            step *= n
    return tuple(s // 4 for s in strides)


# (shape, operands as (shape, element strides), PyTorch's result strides)
CASES = [
    ((3, 4), [((3, 4), (4, 1))], (4, 1)),
    ((4, 3), [((4, 3), (1, 4))], (1, 4)),                       # x.t() * 2
    ((4, 3), [((4, 3), (1, 4)), ((4, 3), (3, 1))], (1, 4)),     # the first operand decides
    ((4, 3), [((4, 3), (3, 1)), ((4, 3), (1, 4))], (3, 1)),
    ((4, 3), [((3,), (1,)), ((4, 3), (1, 4))], (1, 4)),         # a broadcast one has no say
    ((4, 3), [((4, 1), (1, 1)), ((1, 3), (3, 1))], (3, 1)),
    ((5, 5, 3, 1), [((5, 5, 3, 1), (1, 0, 5, 150))], (1, 15, 5, 75)),   # an expanded dim
    ((2, 3, 4), [((2, 3, 4), (1, 8, 2))], (1, 8, 2)),           # permute(2, 0, 1)-like
    ((2, 3), [((2, 3), (6, 2))], (3, 1)),                       # a sliced input: dense copy
]


@pytest.mark.parametrize("shape,operands,want", CASES)
def test_result_strides_follow_tensoriterator(shape, operands, want):
    got = elements(result_strides(shape, 4, [strided(s, st) for s, st in operands]), shape)
    assert all(n == 1 or g == w for n, g, w in zip(shape, got, want)), (got, want)


def test_eager_results_have_pytorchs_strides():
    x = minaot.randn(3, 4)
    assert (x.t() * 2).stride() == (1, 4)
    assert (x.t() + x.t().contiguous()).stride() == (1, 4)
    assert (x.t().contiguous() + x.t()).stride() == (3, 1)
    assert x.t().clone().stride() == (1, 4)                # clone keeps the layout
    assert x.t()[::2].clone().stride() == (1, 2)           # ... made dense
    assert x.t().contiguous().stride() == (3, 1)
    assert x.t().softmax(-1).stride() == (3, 1)            # not pointwise: C order
    assert x.t().log_softmax(0).stride() == (3, 1)
    assert x.t().unsqueeze(0).sum(0).stride() == (3, 1)
    assert F.layer_norm(x.t(), (3,)).stride() == (3, 1)
    assert x.t().double().stride() == (1, 4)
    x.t().softmax(-1).view(12)                             # contiguous, as in PyTorch
    with pytest.raises(RuntimeError, match="view"):
        (x.t() * 2).view(12)                               # PyTorch raises here too
    assert_close(x.t().clone(), minaot.tensor(x.numpy().T.copy()))


def same_strides(a, b):
    """Equal strides, but for dimensions of size 1 (whose stride is never used)."""
    return a.shape == b.shape and all(n == 1 or s == t for n, s, t in
                                      zip(a.shape, a.stride(), b.stride()))


FNS = {
    "mul": lambda x: x.t() * 2,
    "exp_permuted": lambda x: x.unsqueeze(0).permute(2, 0, 1).exp(),
    "clone": lambda x: x.t().clone(),
    "softmax": lambda x: x.t().softmax(-1),
    "layer_norm": lambda x: F.layer_norm(x.t(), (3,)),
    "two": lambda x: (x.t().relu(), x.sum(0)),
    "reshape": lambda x: (x.t() * 2).reshape(12),
}


@pytest.mark.parametrize("backend", ["numba", "nop"])
@pytest.mark.parametrize("name", sorted(FNS))
def test_compiled_outputs_have_eager_strides(name, backend):
    fn = FNS[name]
    x = minaot.randn(3, 4)
    want = fn(x)
    got = (minaot.compile(fn, backend=backend) if backend == "numba"
           else minaot.aot_function(fn, fw_compiler=minaot.nop))(x)
    want, got = (want, got) if isinstance(want, tuple) else ((want,), (got,))
    for g, w in zip(got, want):
        assert same_strides(g, w), (g.stride(), w.stride())
        assert_close(g, w)


def test_training_outputs_keep_their_grad_fn_when_restrided():
    x = minaot.randn(3, 4, requires_grad=True)
    f = minaot.compile(lambda x: (x.t() * 2).exp())
    y = f(x)
    assert y.stride() == (1, 4) and y.grad_fn is not None
    y.sum().backward()
    assert_close(x.grad, minaot.tensor(2 * np.exp(2 * x.detach().numpy())))


def test_result_strides_against_torch_randomized():
    torch = pytest.importorskip("torch")
    rng = random.Random(0)

    def operand(shape):
        nd = len(shape)
        perm = list(range(nd))
        rng.shuffle(perm)
        step = [rng.choice([1, 1, 2]) for _ in perm]
        t = torch.zeros(*[shape[p] * s for p, s in zip(perm, step)])
        t = t[tuple(slice(None, None, s) for s in step)].permute(*[perm.index(i) for i in range(nd)])
        if rng.random() < 0.3:
            d = rng.randrange(nd)
            t = t.narrow(d, 0, 1)
            if rng.random() < 0.5:
                t = t.expand(*shape)
        if rng.random() < 0.2 and t.dim() > 1:
            t = t[0]
        return t

    for _ in range(2000):
        shape = [rng.choice([1, 2, 3, 4, 5]) for _ in range(rng.randint(1, 4))]
        ts = [operand(shape) for _ in range(rng.randint(1, 3))]
        if len(ts) == 3:
            ts[0] = ts[0] > 0
            out = torch.where(*ts)
        else:
            out = ts[0] + ts[1] if len(ts) == 2 else ts[0] * 2
        ops = [strided(tuple(t.shape), t.stride()) for t in ts]
        got = elements(result_strides(tuple(out.shape), 4, ops), tuple(out.shape))
        assert all(n == 1 or g == w for n, g, w in zip(out.shape, got, out.stride())), \
            ([t.stride() for t in ts], got, out.stride())
