"""Every op in the registry with sample inputs, compiled by ``aot_function`` with
grad mode off (the inference path: trace -> functionalize -> decompose ->
compile -> epilogue), equals eager: values, shapes, dtypes, and for view ops
the output is a real view of the caller's input.  In-place ops (kind
``inplace``, no samples) are covered by the program fuzzer in
tests/test_aot_properties.py."""

import numpy as np
import pytest

import minaot
from minaot.dispatch import dispatch
from minaot.testing import assert_close, op_samples, ops_with_samples, sample_to_tensors

pytestmark = pytest.mark.functionalize

CASES = [(op, i, s) for op in ops_with_samples() for i, s in enumerate(op_samples(op))]
DTYPES = [minaot.float64, minaot.float32]


def _op_fn(op, kwargs, positions, consts):
    def fn(*tensors):
        args = list(consts)
        for p, t in zip(positions, tensors):
            args[p] = t
        return dispatch(op.name, *args, **kwargs)
    fn.__name__ = op.name
    return fn


def _fresh(sample, dtype):
    args = sample_to_tensors(sample, dtype=dtype)
    positions = [k for k, a in enumerate(args) if isinstance(a, minaot.Tensor)]
    return args, positions


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _check_same(got, want, eager_inputs, comp_inputs, what):
    got, want = _as_tuple(got), _as_tuple(want)
    assert len(got) == len(want), f"{what}: {len(got)} outputs vs {len(want)} eager"
    for k, (g, w) in enumerate(zip(got, want)):
        assert isinstance(g, minaot.Tensor), f"{what}: output {k} is {type(g).__name__}"
        assert g.dtype is w.dtype, f"{what}: output {k} dtype {g.dtype} vs eager {w.dtype}"
        assert g.shape == w.shape, f"{what}: output {k} shape {g.shape} vs eager {w.shape}"
        assert_close(g, w, msg=f"{what}: output {k}: ")
        assert g.stride() == w.stride(), f"{what}: output {k} stride {g.stride()} vs eager {w.stride()}"
        assert not g.requires_grad, f"{what}: output {k} requires grad under no_grad"
        for j, (ei, ci) in enumerate(zip(eager_inputs, comp_inputs)):
            want_alias = np.shares_memory(w.numpy(), ei.numpy())
            got_alias = np.shares_memory(g.numpy(), ci.numpy())
            assert got_alias == want_alias, \
                f"{what}: output {k} shares memory with input {j}: {got_alias}, eager {want_alias}"
            if want_alias:
                assert g.stride() == w.stride() and g.storage_offset() == w.storage_offset(), \
                    f"{what}: aliasing output {k}: stride {g.stride()} vs eager {w.stride()}"
    for j, (ei, ci) in enumerate(zip(eager_inputs, comp_inputs)):
        assert ci.shape == ei.shape and ci.stride() == ei.stride(), f"{what}: input {j} changed"
        assert_close(ci, ei, msg=f"{what}: input {j} afterwards: ")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("op,i,sample", CASES, ids=[f"{op.name}-{i}" for op, i, s in CASES])
def test_aot_inference_matches_eager(op, i, sample, dtype):
    check_inference(op, i, sample, dtype)


def check_inference(op, i, sample, dtype, compiler=None):
    """aot_function(op) under no_grad equals eager, first call and cached call."""
    eager_args, positions = _fresh(sample, dtype)
    comp_args, _ = _fresh(sample, dtype)
    fn = _op_fn(op, sample.kwargs, positions, eager_args)
    eager_in = [eager_args[k] for k in positions]
    comp_in = [comp_args[k] for k in positions]
    with minaot.no_grad():
        minaot.manual_seed(1234)
        want = fn(*eager_in)
        compiled = minaot.aot_function(fn, fw_compiler=compiler)
        for call in ("first call", "cached call"):
            minaot.manual_seed(1234)
            got = compiled(*comp_in)
            _check_same(got, want, eager_in, comp_in, f"{op.name} sample {i} ({call})")
            args, _ = _fresh(sample, dtype)                 # fresh inputs: the cache is hit
            comp_in = [args[k] for k in positions]
        assert len(compiled.cache) == 1

@pytest.mark.parametrize("op,i,sample", CASES, ids=[f"{op.name}-{i}" for op, i, s in CASES])
def test_aot_inference_with_requires_grad_inputs_under_no_grad(op, i, sample):
    """Inputs that require grad, grad mode off: still the inference graph, same values."""
    eager_args = sample_to_tensors(sample, requires_grad=True)
    comp_args = sample_to_tensors(sample, requires_grad=True)
    positions = [k for k, a in enumerate(eager_args) if isinstance(a, minaot.Tensor)]
    fn = _op_fn(op, sample.kwargs, positions, eager_args)
    with minaot.no_grad():
        minaot.manual_seed(7)
        want = _as_tuple(fn(*[eager_args[k] for k in positions]))
        minaot.manual_seed(7)
        got = _as_tuple(minaot.aot_function(fn)(*[comp_args[k] for k in positions]))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype is w.dtype
        assert_close(g.detach(), w.detach())
        assert not g.requires_grad


def test_reduction_of_a_scalar_tensor_folds_away_and_compiles():
    """`x.sum()` of a 0-d tensor reduces over no axis: canonicalize replaces it by x
    (before, lowering such a reduction to loops failed), and the compiled values and
    gradients equal eager."""
    import numpy as np
    import minaot
    from minaot.passes.canonicalize import Canonicalize

    fn = minaot.ir.parse("""func.func @f(%0: tensor<f32>) -> (tensor<f32>) {
  %1 = prim.sum %0 {dim = [], keepdim = false} : (tensor<f32>) -> tensor<f32>
  %2 = prim.amax %1 {dim = [], keepdim = false} : (tensor<f32>) -> tensor<f32>
  func.return %2 : tensor<f32>
}""")
    Canonicalize().run(fn)
    assert not fn.ops and fn.results[0] is fn.args[0]

    def f(a):
        return a.sum(), a.amax(), a.mean(), (a * 3).amin()

    x = minaot.tensor(2.0, requires_grad=True)
    out = minaot.compile(f, backend="numba")(x)
    np.testing.assert_allclose([o.item() for o in out], [2.0, 2.0, 2.0, 6.0])
    assert out[0] is not x
    sum(out).backward()
    assert x.grad.item() == 6.0


def test_an_op_registered_after_import_traces_compiles_and_differentiates():
    """A user op registered after ``import minaot`` joins the ``mt`` and ``prim`` dialects:
    it traces, verifies, compiles (interpreter and fused Numba kernel) and differentiates."""
    from minaot.ops.meta import pointwise as pw_meta
    from minaot.dialects import MT, PRIM, PRIM_OPS
    from minaot.ops.registry import OPS, OpDef, register

    name = "test_softsign"
    register(OpDef(
        name, "pointwise", pw_meta(name), lambda x: x / (1 + np.abs(x)),
        vjp=lambda ctx, g: (g / ((1 + ctx.inputs[0].abs()) ** 2),),
        scalar="({0} / (1.0 + abs({0})))", promote="float"))
    try:
        assert name in MT.ops and name in PRIM.ops
        _run_registered_op(name)
    finally:                    # the other tests see the registry as it was
        del OPS[name], MT.ops[name], PRIM.ops[name]
        PRIM_OPS.discard(name)


def _run_registered_op(name):
    def fn(x):
        return dispatch(name, x * 2) + 1

    x = minaot.randn(3, 5, requires_grad=True)
    want = fn(x)
    want.sum().backward()
    want_grad = x.grad.numpy().copy()
    assert f"mt.{name}" in str(minaot.trace(fn, x))
    for backend in ("numpy", "numba"):
        x.grad = None
        got = minaot.compile(fn, backend=backend)(x)
        got.sum().backward()
        assert_close(got, want)
        np.testing.assert_allclose(x.grad.numpy(), want_grad, rtol=1e-5)
