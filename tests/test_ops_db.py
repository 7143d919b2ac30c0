"""Op database: every registered op, every sample input, against its oracle.

* eager result == the op's numpy implementation (float64), for composite ops
  this compares the decomposition eager runs with the numpy reference;
* every differentiable op passes gradcheck (central differences, float64);
* a float32 run matches the float64 result within float32 tolerance.
"""

import numpy as np
import pytest

import minaot
from minaot.dispatch import _promote, dispatch
from minaot.testing import assert_close, gradcheck, op_samples, ops_with_samples, sample_to_tensors

pytestmark = pytest.mark.tensor

CASES = [(op, i, s) for op in ops_with_samples() for i, s in enumerate(op_samples(op))]
IDS = [f"{op.name}-{i}" for op, i, s in CASES]


def _numpy_args(sample):
    return [a for a in sample.args]


def _run(op, tensors, kwargs):
    return dispatch(op.name, *tensors, **kwargs)


@pytest.mark.parametrize("op,i,sample", CASES, ids=IDS)
def test_eager_matches_numpy(op, i, sample):
    if op.kind == "random":
        minaot.manual_seed(7)
        out = _run(op, sample_to_tensors(sample), sample.kwargs)
        minaot.manual_seed(7)
        args = [a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
                for a in sample.args]
        ref = op.impl(*args, **sample.kwargs)
    else:
        out = _run(op, sample_to_tensors(sample), sample.kwargs)
        args = []
        for a in sample.args:
            if isinstance(a, np.ndarray) and a.dtype.kind == "f":
                a = a.astype(np.float64)
            elif isinstance(a, np.ndarray) and a.dtype.kind in "iu":      # int8 stays int8
                a = a.astype(minaot.dtypes.from_numpy_dtype(a.dtype).np)
            elif isinstance(a, float):
                a = np.float64(a)
            args.append(a)
        ref = op.impl(*args, **sample.kwargs)
    assert_close(out, np.asarray(ref), check_dtype=False)
    tensors = sample_to_tensors(sample)
    if all(isinstance(t, minaot.Tensor) for t in tensors):
        metas = op.meta(*_promote(op, tensors), **sample.kwargs)    # uint8 with int8: int16
        outs, metas = (out, metas) if op.num_outputs > 1 else ((out,), (metas,))
        for o, meta in zip(outs, metas):
            assert o.shape == tuple(meta.shape)
            assert o.dtype is meta.dtype


DIFF = [(op, i, s) for op, i, s in CASES if (op.vjp is not None or op.composite) and op.kind != "random"]


@pytest.mark.parametrize("op,i,sample", DIFF, ids=[f"{op.name}-{i}" for op, i, s in DIFF])
def test_gradcheck(op, i, sample):
    tensors = sample_to_tensors(sample, requires_grad=True)
    gradcheck(lambda *xs: _run(op, xs, sample.kwargs), tensors)


@pytest.mark.parametrize("op,i,sample", CASES, ids=IDS)
def test_float32_matches_float64(op, i, sample):
    if op.kind in ("random", "creation") or "dtype" in sample.kwargs:
        pytest.skip("no floating point inputs, or the dtype is fixed by an attribute")
    out64 = _run(op, sample_to_tensors(sample, minaot.float64), sample.kwargs)
    out32 = _run(op, sample_to_tensors(sample, minaot.float32), sample.kwargs)
    if op.num_outputs == 1:
        out64, out32 = (out64,), (out32,)
    for o64, o32 in zip(out64, out32):
        if o64.dtype is minaot.float64:
            assert o32.dtype is minaot.float32, f"{op.name} did not keep float32"
            assert_close(o32.double(), o64, rtol=1e-4, atol=1e-5)
        else:
            assert_close(o32, o64, check_dtype=False)


def test_every_op_has_a_record_and_samples():
    names = {op.name for op in minaot.ops.all_ops()}
    for needed in ["add", "sub", "mul", "div", "pow", "neg", "exp", "log", "sin", "cos", "tanh",
                   "sqrt", "rsqrt", "abs", "sigmoid", "relu", "gelu", "maximum", "minimum",
                   "clamp", "where", "eq", "lt", "sum", "mean", "amax", "amin", "var", "argmax",
                   "matmul", "softmax", "log_softmax", "cat", "gather", "to", "reshape",
                   "transpose", "permute", "expand", "unsqueeze", "squeeze", "slice", "select",
                   "add_", "mul_", "copy_", "t_", "layer_norm", "linear", "mse_loss",
                   "cross_entropy", "nll_loss", "dropout"]:
        assert needed in names, needed
    for op in minaot.ops.all_ops():
        if op.name in ("custom_vjp", "straight_through"):   # steer autograd only: tested
            continue                     # in test_joint.py and test_detach.py
        if op.kind != "inplace":
            assert op.samples is not None, f"{op.name} has no sample inputs"
        else:
            assert op.pure in names


def test_pointwise_ops_have_scalar_expressions_or_decompositions():
    for op in minaot.ops.all_ops():
        if op.kind == "pointwise":
            assert op.scalar or op.decomp, op.name


def test_independent_oracles():
    # a few results checked against numpy written out here, not the registry
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 5))
    b = rng.standard_normal((5,))
    ta, tb = minaot.tensor(a, dtype=minaot.float64), minaot.tensor(b, dtype=minaot.float64)
    assert_close((ta * tb + 1).numpy(), a * b + 1)
    assert_close(ta.softmax(1).numpy(), np.exp(a) / np.exp(a).sum(1, keepdims=True))
    assert_close(ta.var(1).numpy(), a.var(1, ddof=1))
    assert_close(ta.var(1, correction=0).numpy(), a.var(1))
    assert_close(minaot.gelu(ta).numpy(),
                 0.5 * a * (1 + np.vectorize(__import__("math").erf)(a / np.sqrt(2))))
    assert_close(minaot.gelu(ta, approximate="tanh").numpy(),
                 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a ** 3))))
    x = rng.standard_normal((2, 3, 4))
    assert_close(minaot.tensor(x, dtype=minaot.float64).sum((0, 2), keepdim=True).numpy(),
                 x.sum((0, 2), keepdims=True))


DECOMP = [(op, i, s) for op, i, s in CASES if op.decomp is not None and op.kind != "random"]


@pytest.mark.parametrize("op,i,sample", DECOMP, ids=[f"{op.name}-{i}" for op, i, s in DECOMP])
def test_decomposition_matches_impl(op, i, sample):
    tensors = sample_to_tensors(sample)
    got = op.decomp(*tensors, **sample.kwargs)
    ref = op.impl(*[a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
                    for a in sample.args], **sample.kwargs)
    assert_close(got, np.asarray(ref), check_dtype=False)
