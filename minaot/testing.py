"""Testing kit for course assignments: ``assert_close``, ``gradcheck`` and the
op database's sample inputs.

``gradcheck`` compares the analytic gradient (the VJP rules through
``autograd.grad``) with central finite differences in float64, one input
element at a time, for a random output cotangent.
"""

from __future__ import annotations

import numpy as np

from . import dtypes as dt
from .ops.registry import OpDef, SampleInput, all_ops
from .tensor import Tensor


def _to_numpy(x):
    if isinstance(x, Tensor):
        return x.detach()._data
    return np.asarray(x)


def assert_close(actual, expected, rtol=None, atol=None, *, check_dtype=True, msg=""):
    """Raise ``AssertionError`` with a readable diff unless ``actual`` ≈ ``expected``.

    Default tolerances follow the dtype: float32 ``rtol=1.3e-6, atol=1e-5``,
    float64 ``rtol=1e-7, atol=1e-7``; integers and bools must be equal.
    Nested tuples/lists are compared element by element."""
    if isinstance(actual, (tuple, list)) and isinstance(expected, (tuple, list)):
        if len(actual) != len(expected):
            raise AssertionError(f"{msg}length mismatch: {len(actual)} vs {len(expected)}")
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_close(a, e, rtol, atol, check_dtype=check_dtype, msg=f"{msg}[{i}] ")
        return
    a, e = _to_numpy(actual), _to_numpy(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{msg}shape mismatch: actual {a.shape} vs expected {e.shape}")
    if check_dtype and isinstance(actual, Tensor) and isinstance(expected, Tensor) \
            and actual.dtype is not expected.dtype:
        raise AssertionError(f"{msg}dtype mismatch: actual {actual.dtype} vs expected {expected.dtype}")
    if a.dtype.kind in "biu" and e.dtype.kind in "biu":
        bad = a != e
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise AssertionError(f"{msg}{int(bad.sum())} of {a.size} elements differ; first at "
                                 f"{idx}: {a[idx]} vs {e[idx]}")
        return
    low = np.float32 in (a.dtype, e.dtype)
    rtol = rtol if rtol is not None else (1.3e-6 if low else 1e-7)
    atol = atol if atol is not None else (1e-5 if low else 1e-7)
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    close = np.isclose(a64, e64, rtol=rtol, atol=atol, equal_nan=True)
    if not close.all():
        bad = ~close
        diff = np.abs(a64 - e64)
        diff[~bad] = 0
        idx = np.unravel_index(np.nanargmax(np.where(bad, diff, -1)), a.shape) if a.ndim else ()
        raise AssertionError(
            f"{msg}tensors are not close: {int(bad.sum())} of {a.size} elements differ "
            f"(rtol={rtol}, atol={atol})\n"
            f"  greatest difference {diff[idx]:.3g} at index {tuple(int(i) for i in idx)}: "
            f"actual {a64[idx]!r} vs expected {e64[idx]!r}")


def _flat_inputs(inputs):
    return [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]


def gradcheck(fn, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, raise_exception=True):
    """Check ``fn``'s gradients against central finite differences in float64.

    ``inputs`` is a tuple; tensors that require grad are checked (they must be
    float64).  ``fn`` may return a tensor or a tuple of tensors; each floating
    point output is weighted by a fixed random cotangent."""
    from .autograd import grad as autograd_grad
    from .autograd import no_grad

    inputs = tuple(inputs)
    wrt = _flat_inputs(inputs)
    for t in wrt:
        if t.dtype is not dt.float64:
            raise ValueError("gradcheck expects float64 inputs that require grad")
    rng = np.random.default_rng(seed)

    def outputs_of(result):
        outs = result if isinstance(result, (tuple, list)) else (result,)
        return [o for o in outs if isinstance(o, Tensor) and o.dtype.is_floating_point]

    outs = outputs_of(fn(*inputs))
    weights = [rng.standard_normal(o.shape) for o in outs]

    def scalar(result):
        return sum(float(np.sum(o.detach()._data * w)) for o, w in zip(outputs_of(result), weights))

    differentiable = [o for o in outs if o.requires_grad]
    if differentiable:
        seeds = [Tensor._wrap(w.astype(o.dtype.np)) for o, w in zip(outs, weights) if o.requires_grad]
        analytic = autograd_grad(differentiable, wrt, seeds, allow_unused=True)
    else:
        analytic = [None] * len(wrt)
    for k, (t, g) in enumerate(zip(wrt, analytic)):
        numeric = np.zeros(t.shape)
        flat = t._data.reshape(-1) if t.is_contiguous() else None
        if flat is None:
            raise ValueError("gradcheck needs contiguous inputs")
        with no_grad():
            for i in range(flat.size):
                orig = flat[i]
                flat[i] = orig + eps
                plus = scalar(fn(*inputs))
                flat[i] = orig - eps
                minus = scalar(fn(*inputs))
                flat[i] = orig
                numeric.reshape(-1)[i] = (plus - minus) / (2 * eps)
        got = np.zeros(t.shape) if g is None else g.detach()._data
        if not np.allclose(got, numeric, rtol=rtol, atol=atol):
            if not raise_exception:
                return False
            err = np.abs(got - numeric)
            i = np.unravel_index(np.argmax(err), err.shape) if err.ndim else ()
            raise AssertionError(
                f"gradcheck failed for input {k} (shape {t.shape}): analytic and numerical "
                f"gradients differ by up to {err.max():.3g}\n  at index {tuple(int(j) for j in i)}: "
                f"analytic {got[i]!r} vs numerical {numeric[i]!r}")
    return True


def op_samples(op: OpDef, seed: int = 0) -> list[SampleInput]:
    """The sample inputs of ``op`` (numpy arrays in float64, ints, bools, Python numbers)."""
    if op.samples is None:
        return []
    return op.samples(np.random.default_rng(seed))


def ops_with_samples(kinds=None):
    """Every registered op that has sample inputs (optionally of some kinds)."""
    return [op for op in all_ops() if op.samples is not None and (kinds is None or op.kind in kinds)]


def sample_to_tensors(sample: SampleInput, dtype=dt.float64, requires_grad=False):
    """Tensors for a sample: float arrays become ``dtype`` (requiring grad when asked),
    integer and bool arrays keep their kind, Python numbers stay numbers."""
    out = []
    for a in sample.args:
        if isinstance(a, np.ndarray):
            if a.dtype.kind == "f":
                t = Tensor._wrap(np.array(a, dtype=dtype.np, order="C"))
                if requires_grad:
                    t.requires_grad_(True)
            elif a.dtype.kind == "b":
                t = Tensor._wrap(np.array(a, order="C"))
            else:
                t = Tensor._wrap(np.array(a, dtype=np.int64, order="C"))
            out.append(t)
        else:
            out.append(a)
    return out
