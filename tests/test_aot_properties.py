"""Property-based tests of ``aot_function``: random programs, compiled == eager.

The programs come from :mod:`program_gen` (hypothesis strategies that write
small minaot functions as Python source; a failing example prints as a
program one can paste and run).  The properties:

1. Pure differentiable programs (pointwise ops, reductions, views,
   broadcasting, matmul) over float64 and float32 inputs of small shapes, some
   requiring grad: compiled outputs equal eager outputs, and the gradients of a
   random weighted sum of the outputs equal eager gradients, for both
   partitioners; a ``no_grad`` call (the inference graph) agrees too.
2. Min-cut rematerialization never saves more bytes than the default
   partitioner, never recomputes a matmul or a reduction, and the saved bytes
   its report claims are the bytes of the forward graph's extra outputs.
3. Programs with in-place ops and views (mutations of inputs, of
   intermediates, through named and temporary views, metadata mutations)
   under ``no_grad`` or with nothing requiring grad: compiled outputs and the
   caller's inputs afterwards (values, shapes, strides, offsets, and the
   memory around non-contiguous inputs) equal eager; an output that shares
   memory with an input or another output in eager does so compiled, with the
   same shape, strides and offset, and one that does not, does not; an
   input's version counter moves iff it moves in eager (the runtime promises a
   bump per mutated input, not one per eager in-place op).

Compilers are a parameter: add a backend to ``COMPILERS`` and every property
runs through it.

Restrictions of the generator (program_gen), each avoiding a framework bug or
limitation that has its own minimal reproduction at the end of this file
(strict xfail: when one is fixed, its test fails, and the restriction can go):

1. No two values that canonicalize + CSE turn into one graph value (no line
   computes an expression already computed, no no-op views, no ``-(-v)``).
2. (Lifted: the tracer now lays out a pointwise result as numpy does, so
   ``reshape`` of ``x.t() * 2`` copies in the trace as in eager.)
3. In-place ops never target a view whose chain holds an ``expand``
   (``x.expand(3, 4)[0].add_(1)`` is legal in eager; functionalize raises
   ``FunctionalizeError``: a documented limitation, not tested here).

Lifted: in-place programs used to either permute dims or reshape them, never
both (the interpreter's ``prim.reshape`` demanded a view-compatible layout);
fixed, and ``test_write_through_reshape_then_transpose`` keeps it fixed.
Restriction 1's two bugs are fixed too (``test_outputs_merged_by_cse_*``,
``test_gradients_of_outputs_merged_by_cse``); the generator still avoids
merged values, and lifting that is future work.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minaot
from minaot.ops.registry import get_op
from minaot.testing import assert_close
from program_gen import inplace_programs, pure_programs

pytestmark = pytest.mark.functionalize

COMPILERS = {"nop": minaot.nop, "numba": minaot.numba_compiler}
# Every numba example compiles fresh kernels (a few tenths of a second each), so the
# numba variants of the properties below run fewer examples (the same derandomized
# stream: the first NUMBA_EXAMPLES of it).
NUMBA_EXAMPLES = int(os.environ.get("MINAOT_NUMBA_EXAMPLES", 10))
PARTITIONERS = {"default": minaot.default_partition,
                "min_cut": minaot.min_cut_rematerialization_partition}
DTYPES = {"float64": minaot.float64, "float32": minaot.float32}

# max_examples comes from the "minaot" profile (tests/conftest.py: 60, or
# $MINAOT_HYPOTHESIS_EXAMPLES); each example takes a few milliseconds.
PROPERTY = settings(deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _close(got, want, what):
    assert got.shape == want.shape, f"{what}: shape {got.shape} vs eager {want.shape}"
    assert got.dtype is want.dtype, f"{what}: dtype {got.dtype} vs eager {want.dtype}"
    assert_close(got, want, msg=f"{what}: ")


def _weighted_sum(outputs, weights):
    total = None
    for o, w in zip(outputs, weights):
        term = (o * w).sum()
        total = term if total is None else total + term
    return total


# ---------------------------------------------------------------- 1. pure programs
def check_pure(prog, compiler, partition_fn, dtype):
    fn = prog.function()
    eager_in, _ = prog.make_inputs(dtype)
    comp_in, _ = prog.make_inputs(dtype)
    want = fn(*eager_in)
    cf = minaot.aot_function(fn, fw_compiler=compiler, bw_compiler=compiler,
                             partition_fn=partition_fn)
    got = cf(*comp_in)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        _close(g, w, f"output {i}")
        assert g.requires_grad == w.requires_grad, f"output {i}: requires_grad differs"

    rng = np.random.default_rng(prog.seed + 1)
    weights = [minaot.tensor(rng.standard_normal(w.shape), dtype=dtype) for w in want]
    loss_e, loss_c = _weighted_sum(want, weights), _weighted_sum(got, weights)
    assert loss_c.requires_grad == loss_e.requires_grad
    wrt_e = [t for t in eager_in if t.requires_grad]
    wrt_c = [t for t in comp_in if t.requires_grad]
    if loss_e.requires_grad:
        ge = minaot.autograd.grad(loss_e, wrt_e, allow_unused=True)
        gc = minaot.autograd.grad(loss_c, wrt_c, allow_unused=True)
        for k, (a, b, x) in enumerate(zip(gc, ge, wrt_e)):
            a = minaot.zeros(x.shape, dtype=dtype) if a is None else a
            b = minaot.zeros(x.shape, dtype=dtype) if b is None else b
            _close(a, b, f"gradient of input {k}")

    with minaot.no_grad():                          # the inference graph of the same function
        want = fn(*prog.make_inputs(dtype)[0])
        got = cf(*prog.make_inputs(dtype)[0])
    for i, (g, w) in enumerate(zip(got, want)):
        _close(g, w, f"no_grad output {i}")
        assert g.requires_grad == w.requires_grad, f"no_grad output {i}: requires_grad differs"


@pytest.mark.joint
@pytest.mark.parametrize("partition", sorted(PARTITIONERS))
@PROPERTY
@given(prog=pure_programs())
def test_pure_programs_outputs_and_gradients_match_eager(partition, prog):
    check_pure(prog, minaot.nop, PARTITIONERS[partition], minaot.float64)


@pytest.mark.joint
@pytest.mark.codegen
@pytest.mark.parametrize("partition", sorted(PARTITIONERS))
@settings(PROPERTY, max_examples=NUMBA_EXAMPLES)
@given(prog=pure_programs())
def test_pure_programs_through_numba(partition, prog):
    check_pure(prog, minaot.numba_compiler, PARTITIONERS[partition], minaot.float64)


@pytest.mark.joint
@PROPERTY
@given(prog=pure_programs(max_ops=6))
def test_pure_programs_float32(prog):
    check_pure(prog, minaot.nop, minaot.min_cut_rematerialization_partition, minaot.float32)


@pytest.mark.joint
@pytest.mark.codegen
@settings(PROPERTY, max_examples=NUMBA_EXAMPLES)
@given(prog=pure_programs(max_ops=6))
def test_pure_programs_float32_through_numba(prog):
    check_pure(prog, minaot.numba_compiler, minaot.min_cut_rematerialization_partition,
               minaot.float32)


# ---------------------------------------------------------------- 2. partition bytes
NEVER_RECOMPUTED = ("reduction", "random")


def saved_bytes(fw, num_fwd_outputs):
    """Bytes of the values the forward graph hands to the backward (its extra outputs)."""
    return sum(v.type.nbytes for v in list(fw.results)[num_fwd_outputs:])


@pytest.mark.joint
@PROPERTY
@given(prog=pure_programs())
def test_min_cut_saves_no_more_bytes_than_default(prog):
    inputs, _ = prog.make_inputs(minaot.float64)
    joint = minaot.export_joint(prog.function(), *inputs)
    n = joint.joint_info.num_fwd_outputs
    fw_d, bw_d = minaot.default_partition(joint, n)
    fw_m, bw_m = minaot.min_cut_rematerialization_partition(joint, n)
    for fw, bw in ((fw_d, bw_d), (fw_m, bw_m)):
        rep = fw.partition_report
        assert rep.saved_bytes == saved_bytes(fw, n), str(rep)
        assert len(bw.args) == len(list(fw.results)) - n + sum(joint.joint_info.tangent_mask)
    assert saved_bytes(fw_m, n) <= saved_bytes(fw_d, n), \
        f"{fw_m.partition_report}\n{fw_d.partition_report}"
    for name in fw_m.partition_report.recomputed:
        op = get_op(name.split(".", 1)[1])
        assert op.kind not in NEVER_RECOMPUTED and op.name != "matmul", \
            f"min-cut recomputes {name}\n{fw_m.partition_report}"


# ---------------------------------------------------------------- 3. in-place programs
def _shares(a, b):
    return np.shares_memory(a.detach().numpy(), b.detach().numpy())


def _geometry(t):
    return t.shape, t.stride(), t.storage_offset()


def check_inplace(prog, compiler, dtype, grad_mode):
    fn = prog.function()
    ctx = minaot.enable_grad if grad_mode else minaot.no_grad
    eager_in, eager_bases = prog.make_inputs(dtype)
    before = [t._version for t in eager_in]
    with ctx():
        want = fn(*eager_in)
    eager_bumped = [t._version != v for t, v in zip(eager_in, before)]
    cf = minaot.aot_function(fn, fw_compiler=compiler)
    for call in ("first call", "cache hit"):
        comp_in, comp_bases = prog.make_inputs(dtype)
        before = [t._version for t in comp_in]
        with ctx():
            got = cf(*comp_in)
        assert len(got) == len(want)
        for i, (g, w) in enumerate(zip(got, want)):
            _close(g, w, f"{call}: output {i}")
            assert g.requires_grad == w.requires_grad
        for j, (c, e) in enumerate(zip(comp_in, eager_in)):
            assert _geometry(c) == _geometry(e), f"{call}: input {j} metadata after the call"
            _close(c, e, f"{call}: input {j} after the call")
            assert (c._version != before[j]) == eager_bumped[j], \
                f"{call}: input {j} version counter {before[j]} -> {c._version}, " \
                f"eager {'bumped' if eager_bumped[j] else 'unchanged'}"
        for j, (c, e) in enumerate(zip(comp_bases, eager_bases)):
            _close(c, e, f"{call}: memory around input {j}")
        for i, (g, w) in enumerate(zip(got, want)):
            for j, (c, e) in enumerate(zip(comp_in, eager_in)):
                assert (g is c) == (w is e), f"{call}: output {i} is input {j}: {w is e} in eager"
                assert _shares(g, c) == _shares(w, e), \
                    f"{call}: output {i} shares memory with input {j}: {_shares(w, e)} in eager"
                if _shares(w, e):
                    assert _geometry(g) == _geometry(w), \
                        f"{call}: output {i} (a view of input {j}) geometry"
            for k in range(i):
                assert _shares(g, got[k]) == _shares(w, want[k]), \
                    f"{call}: outputs {k} and {i} share memory: {_shares(w, want[k])} in eager"
                if w is want[k]:                # the same tensor twice: at least the same view
                    assert _geometry(g) == _geometry(got[k])


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@PROPERTY
@given(prog=inplace_programs(), grad_mode=st.booleans())
def test_inplace_programs_match_eager_including_inputs_and_aliasing(dtype, prog, grad_mode):
    check_inplace(prog, minaot.nop, DTYPES[dtype], grad_mode)


@pytest.mark.codegen
@pytest.mark.parametrize("dtype", sorted(DTYPES))
@settings(PROPERTY, max_examples=NUMBA_EXAMPLES)
@given(prog=inplace_programs(), grad_mode=st.booleans())
def test_inplace_programs_through_numba(dtype, prog, grad_mode):
    check_inplace(prog, minaot.numba_compiler, DTYPES[dtype], grad_mode)


# ---------------------------------------------------------------- known bugs (see the notes above)
def _arange(*shape):
    return minaot.arange(float(np.prod(shape))).reshape(*shape).clone()


@pytest.mark.parametrize("compiler", sorted(COMPILERS))
def test_outputs_merged_by_cse_do_not_share_memory(compiler):
    a, b = minaot.aot_function(lambda x: (-x, -x), fw_compiler=COMPILERS[compiler])(_arange(3))
    assert not np.shares_memory(a.numpy(), b.numpy())


@pytest.mark.joint
def test_gradients_of_outputs_merged_by_cse():
    def f(x):
        return x * 2, x * 2

    x = minaot.tensor([1.0, 2.0], requires_grad=True, dtype=minaot.float64)
    a, b = minaot.aot_function(f)(x)
    (a.sum() + 3 * b.sum()).backward()
    assert_close(x.grad, minaot.tensor([8.0, 8.0], dtype=minaot.float64))


@pytest.mark.parametrize("compiler", sorted(COMPILERS))
def test_reshape_of_permuted_pointwise_result(compiler):
    def f(x):
        a = x.t() * 2
        b = a.reshape(-1)          # eager: a copy, since a has x.t()'s strides
        b.add_(100)
        return a

    want = f(_arange(2, 3))
    assert_close(minaot.aot_function(f, fw_compiler=COMPILERS[compiler])(_arange(2, 3)), want)


@pytest.mark.parametrize("compiler", sorted(COMPILERS))
def test_write_through_reshape_then_transpose(compiler):
    def f(x):
        x.view(2, 2).t()[0].fill_(1.5)
        return x + 1

    x_e, x_c = _arange(4), _arange(4)
    want = f(x_e)
    assert_close(minaot.aot_function(f, fw_compiler=COMPILERS[compiler])(x_c), want)
    assert_close(x_c, x_e)


@pytest.mark.parametrize("compiler", sorted(COMPILERS))
def test_reshape_of_an_expanded_value(compiler):
    def f(x):
        return (-(-x.expand(2, 3))).reshape(-1)

    x = minaot.arange(3.0)
    assert_close(minaot.aot_function(f, fw_compiler=COMPILERS[compiler])(x), f(x))
