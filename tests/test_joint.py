"""Joint graph, partitioners and the training path of aot_function."""

import numpy as np
import pytest

import minaot
import minaot.nn.functional as F
from minaot.dispatch import dispatch
from minaot.testing import (assert_close, gradcheck, op_samples, ops_with_samples,
                            sample_to_tensors)

pytestmark = pytest.mark.joint
MINCUT = minaot.min_cut_rematerialization_partition


def graphs_of(fn, *inputs, partition_fn):
    seen = {}

    def fw_compiler(graph, example):
        seen["fw"] = graph
        return minaot.nop(graph, example)

    def bw_compiler(graph, example):
        seen["bw"] = graph
        return minaot.nop(graph, example)

    out = minaot.aot_function(fn, fw_compiler, bw_compiler, partition_fn=partition_fn)(*inputs)
    out.sum().backward()
    return seen["fw"], seen["bw"]


def assert_default_partition_grads(fn, *inputs):
    """The inputs' ``.grad`` (from a run with another partition) equal those of the
    default partition."""
    got = [t.grad.numpy().copy() for t in inputs]
    for t in inputs:
        t.grad = None
    graphs_of(fn, *inputs, partition_fn=minaot.default_partition)
    for g, t in zip(got, inputs):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-5, atol=1e-5)


def ins_outs(g):
    return len(g.args), len(g.results)


@pytest.mark.parametrize("shape", [(3,), (10, 10)])
@pytest.mark.task_6_2
def test_partition_expectations(shape):
    def make():
        return minaot.randn(*shape, requires_grad=True)

    cos3 = lambda x: x.cos().cos().cos()            # noqa: E731
    fw, bw = graphs_of(cos3, make(), partition_fn=MINCUT)
    assert ins_outs(fw) == (1, 2) and ins_outs(bw) == (2, 1)
    fw, bw = graphs_of(cos3, make(), partition_fn=minaot.default_partition)
    assert ins_outs(fw) == (1, 4) and ins_outs(bw) == (4, 1)
    cube = lambda x: x * x * x                      # noqa: E731
    assert ins_outs(graphs_of(cube, make(), partition_fn=MINCUT)[0]) == (1, 2)
    assert ins_outs(graphs_of(cube, make(), partition_fn=minaot.default_partition)[0]) == (1, 3)


@pytest.mark.task_6_2
def test_sum_saves_nothing():
    for p in (MINCUT, minaot.default_partition):
        fw, bw = graphs_of(lambda x: x.sum(dim=1), minaot.randn(10, 10, requires_grad=True),
                           partition_fn=p)
        assert ins_outs(fw) == (1, 1) and ins_outs(bw) == (1, 1)


@pytest.mark.task_6_2
def test_min_cut_saves_an_input_rather_than_a_value_written_only_to_be_saved():
    """layer_norm: ``x - mean`` costs as many bytes as ``x``, but ``x`` is in memory anyway
    while ``x - mean`` would be written only to be saved (it is not materialized: every
    user fuses it), so the min cut saves ``x`` and the per-row mean and rstd."""
    x = minaot.randn(64, 32, requires_grad=True)
    w, b = minaot.randn(32, requires_grad=True), minaot.randn(32, requires_grad=True)
    ln = lambda x, w, b: F.layer_norm(x, (32,), w, b, 1e-5)      # noqa: E731
    fw, bw = graphs_of(ln, x, w, b, partition_fn=MINCUT)
    saved = list(fw.results)[1:]
    big = [v for v in saved if tuple(v.type.shape) == (64, 32)]
    assert len(big) == 1 and big[0] is fw.args[0]          # x itself, not x - mean
    assert sorted(tuple(v.type.shape) for v in saved if v not in big) == [(32,), (64, 1), (64, 1)]
    assert_default_partition_grads(ln, x, w, b)     # (which saves x - mean)


@pytest.mark.task_6_2
def test_min_cut_saves_a_views_base_not_the_view():
    """A linear layer's weight gradient reads ``x.T``; the min cut saves ``x`` (a graph
    input, no bytes written) and remakes the transpose in the backward, rather than
    saving the transpose (same bytes, but a view of an input that a runtime giving each
    saved value its own memory would copy).  Likewise ``h.T`` of a hidden activation."""
    x = minaot.randn(16, 8, requires_grad=True)
    w1, w2 = minaot.randn(12, 8, requires_grad=True), minaot.randn(4, 12, requires_grad=True)
    mlp = lambda x, w1, w2: F.gelu(x @ w1.t(), approximate="tanh") @ w2.t()     # noqa: E731
    fw, bw = graphs_of(mlp, x, w1, w2, partition_fn=MINCUT)
    saved = list(fw.results)[1:]
    assert not [v for v in saved if not v.is_block_arg and v.owner.opname == "transpose"]
    assert any(v is fw.args[0] for v in saved)              # x itself
    assert [op.opname for op in bw.ops].count("transpose") >= 2
    assert_default_partition_grads(mlp, x, w1, w2)


@pytest.mark.task_6_2
def test_matmul_relu_backward_holds_exactly_two_gradient_matmuls():
    a = minaot.randn(10, 10, requires_grad=True)
    b = minaot.randn(10, 10, requires_grad=True)
    for p in (MINCUT, minaot.default_partition):
        fw, bw = graphs_of(lambda a, b: (a @ b).relu().sum(), a, b, partition_fn=p)
        assert [op.name for op in bw.ops].count("prim.matmul") == 2
        assert [op.name for op in fw.ops].count("prim.matmul") == 1


@pytest.mark.task_6_2
def test_user_partition_fn_and_report():
    calls = []

    def my_partition(joint, num_fwd_outputs):
        calls.append((joint.joint_info.num_primals, num_fwd_outputs))
        return minaot.default_partition(joint, num_fwd_outputs)

    x = minaot.randn(4, requires_grad=True, dtype=minaot.float64)
    cf = minaot.aot_function(lambda x: x.sin() * x, partition_fn=my_partition)
    cf(x).sum().backward()
    assert calls == [(1, 1)]
    assert_close(x.grad, (x.cos() * x + x.sin()).detach())
    fw, _ = graphs_of(lambda x: x.sin().exp(), x.detach().requires_grad_(), partition_fn=MINCUT)
    rep = fw.partition_report
    assert rep.saved_bytes == sum(n for _, _, n in rep.saved) and "saved" in str(rep)


@pytest.mark.task_6_2
def test_print_compile_shows_partition_report(capsys):
    x = minaot.randn(3, requires_grad=True)
    cf = minaot.aot_function(lambda x: x.cos().cos(), minaot.print_compile, partition_fn=MINCUT)
    cf(x).sum().backward()
    out = capsys.readouterr().out
    assert "partition (min_cut)" in out and "recomputed" in out


@pytest.mark.task_6_2
def test_memory_budget_trades_recompute_for_bytes():
    minaot.manual_seed(0)
    w1, w2 = minaot.randn(8, 16, requires_grad=True), minaot.randn(16, 4, requires_grad=True)
    x = minaot.randn(5, 8)

    def mlp(x, w1, w2):
        return (minaot.gelu(x @ w1, approximate="tanh") @ w2).sum()

    joint = minaot.export_joint(mlp, x, w1, w2)
    n = joint.joint_info.num_fwd_outputs
    points = []
    for budget in (1.0, 0.5, 0.0):
        fw, bw = MINCUT(joint, n, memory_budget=budget)
        points.append((fw.partition_report.saved_bytes, len(fw.partition_report.recomputed)))
    assert points[0][0] >= points[1][0] >= points[2][0]
    assert points[2][0] < points[0][0] and points[2][1] > points[0][1]
    default_bytes = minaot.default_partition(joint, n)[0].partition_report.saved_bytes
    assert points[0][0] <= default_bytes


@pytest.mark.task_6_1
def test_lazy_backward_and_retain_graph_and_double_backward():
    compiled = []

    def bw_compiler(graph, example):
        compiled.append(graph)
        return minaot.nop(graph, example)

    x = minaot.randn(3, requires_grad=True)
    cf = minaot.aot_function(lambda x: (x.exp() * 2).sum(), bw_compiler=bw_compiler)
    y = cf(x)
    assert compiled == []                       # not before backward
    y.backward(retain_graph=True)
    assert len(compiled) == 1
    y.backward()
    assert_close(x.grad, 4 * x.exp().detach())
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()
    y2 = cf(x)
    with pytest.raises(RuntimeError, match="double backward"):
        (g,) = minaot.autograd.grad(y2, x, create_graph=True)
    with minaot.no_grad():
        assert not cf(x).requires_grad


def test_gradients_accumulate_and_mutation_epilogue_with_grads():
    w = minaot.randn(3, requires_grad=True, dtype=minaot.float64)

    def f(a, w):
        a.mul_(w)                    # a is a non-leaf that requires grad
        return (a * w).sum(), a.view(-1)

    base = minaot.randn(3, dtype=minaot.float64, requires_grad=True)
    a_eager = base * 1
    a_comp = base * 1
    loss_e, view_e = f(a_eager, w)
    loss_c, view_c = minaot.aot_function(f)(a_comp, w)
    assert_close(loss_c, loss_e)
    assert_close(a_comp, a_eager)
    assert view_c._base is a_comp._base or view_c._base is a_comp
    ge = minaot.autograd.grad(loss_e + view_e.sum(), [w, base])
    gc = minaot.autograd.grad(loss_c + view_c.sum(), [w, base])
    assert_close(gc, ge)


@pytest.mark.parametrize("backend", ["numba", "nop"])
def test_saved_inputs_are_the_callers_tensors_checked_by_version(backend):
    """A saved value that is an input (a matmul's operands) is the caller's tensor, not a copy:
    the numba backend returns it as is, and changing it in place before backward raises, as
    eager autograd and PyTorch's save_for_backward do; an untouched input gives eager's grads."""
    def f(a, b):
        return (a @ b).relu().sum()

    kw = {} if backend == "numba" else dict(fw_compiler=minaot.nop, bw_compiler=minaot.nop)
    seen = []

    def partition(joint, n):
        fw, bw = minaot.default_partition(joint, n)
        seen.append(fw)
        return fw, bw
    cf = minaot.aot_function(f, partition_fn=partition, **kw)
    a = minaot.randn(4, 5, requires_grad=True)
    b = minaot.randn(5, 3, requires_grad=True)
    ea, eb = (t.detach().clone().requires_grad_() for t in (a, b))
    out = cf(a, b)
    node = out.grad_fn
    saved = [node.saved.items[j][0] for j in range(len(node.saved))]
    fw_args = list(seen[0].args)
    n_saved_inputs = sum(1 for r in list(seen[0].results)[1:] if r in fw_args)
    assert n_saved_inputs == 2
    if backend == "numba":                  # no copy: the saved tensors share a's and b's memory
        assert sum(np.shares_memory(t.numpy(), a.detach().numpy()) or
                   np.shares_memory(t.numpy(), b.detach().numpy()) for t in saved) == 2
    out.backward()
    f(ea, eb).backward()
    assert_close(a.grad, ea.grad)
    assert_close(b.grad, eb.grad)

    out = cf(a, b)
    with minaot.no_grad():
        a.mul_(2)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation: \[float32 \[4, 5\]\]"):
        out.backward()
    eager = f(ea, eb)
    with minaot.no_grad():
        ea.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        eager.backward()


def test_a_saved_input_the_function_mutates_keeps_its_old_value():
    """An input the compiled function changes in place is saved as its old value (a copy), so
    the epilogue's write does not trip the version check and the gradient uses the old data
    (eager raises here: its MulBackward saved the tensor itself)."""
    def f(a, w):
        y = (a * w).sum()
        a.mul_(2)
        return y

    w = minaot.randn(4, requires_grad=True)
    a = minaot.randn(4)
    old = a.clone()
    minaot.aot_function(f)(a, w).backward()
    assert_close(a, old * 2)
    assert_close(w.grad, old)


DIFF = [(op, i, s) for op in ops_with_samples() for i, s in enumerate(op_samples(op))
        if (op.vjp is not None or op.composite) and op.kind != "random"]


@pytest.mark.parametrize("op,i,sample", DIFF, ids=[f"{op.name}-{i}" for op, i, s in DIFF])
def test_every_differentiable_op_compiled_gradients(op, i, sample):
    check_gradients(op, sample)


def check_gradients(op, sample, compiler=None):
    """aot_function(op) with inputs requiring grad: outputs and gradients equal eager, and
    gradcheck passes through the compiled path (float64)."""
    args = sample_to_tensors(sample, requires_grad=True)
    pos = [k for k, a in enumerate(args) if isinstance(a, minaot.Tensor)]

    def fn(*ts):
        full = list(args)
        for k, t in zip(pos, ts):
            full[k] = t
        out = dispatch(op.name, *full, **sample.kwargs)
        return out[0] if op.num_outputs > 1 else out    # (max_pool: values, int64 indices)

    tensors = [args[k] for k in pos]
    cf = minaot.aot_function(fn, fw_compiler=compiler, bw_compiler=compiler, partition_fn=MINCUT)
    out_c, out_e = cf(*tensors), fn(*tensors)
    assert_close(out_c, out_e)
    wrt = [t for t in tensors if t.requires_grad]
    seed = minaot.tensor(np.random.default_rng(0).standard_normal(out_e.shape))
    if out_e.requires_grad and not out_c.requires_grad:
        # the value does not depend on the inputs after decomposition (fill): zero gradients
        ge = minaot.autograd.grad(out_e, wrt, seed, allow_unused=True)
        assert all(g is None or float(g.abs().sum()) == 0 for g in ge)
    elif out_e.requires_grad:
        ge = minaot.autograd.grad(out_e, wrt, seed, allow_unused=True)
        gc = minaot.autograd.grad(out_c, wrt, seed, allow_unused=True)
        for a, b in zip(gc, ge):
            if b is None:
                assert a is None or float(a.abs().sum()) == 0
            else:
                assert_close(a, b)
    gradcheck(cf, tensors)


@pytest.mark.task_5_2
def test_export_joint_layout():
    x = minaot.randn(3, requires_grad=True)
    y = minaot.randn(3)
    joint = minaot.export_joint(lambda x, y: (x * y).sin(), x, y)
    info = joint.joint_info
    assert info.num_primals == 2 and info.tangent_mask == [True] and info.grad_mask == [True, False]
    assert [a.name_hint for a in joint.args] == ["primals_1", "primals_2", "tangents_1"]
    assert len(joint.results) == 2
    minaot.ir.verify(joint)


class Square(minaot.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 2 * x + 1          # not the true derivative: proves this backward is used


class ScaleBy(minaot.autograd.Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.k = k
        return x * k, x + 1

    @staticmethod
    def backward(ctx, g1, g2):
        return g1 * ctx.k + g2, None


def test_custom_function_traced_into_the_joint_graph():
    def f(x):
        a = Square.apply(x.sin())
        b, c = ScaleBy.apply(a, 3.0)
        return (b * c).sum()

    x = minaot.randn(4, dtype=minaot.float64, requires_grad=True)
    f(x).backward()
    want = x.grad.clone()
    x.grad = None
    traced = minaot.trace(f, x)
    assert [op.name for op in traced.ops].count("mt.custom_vjp") == 3
    minaot.aot_function(f)(x).backward()
    assert_close(x.grad, want)
    joint = minaot.export_joint(f, x)
    assert not any(op.opname == "custom_vjp" for op in joint.ops)
    with minaot.no_grad():
        assert_close(minaot.aot_function(f)(x), f(x))
