"""fuse: golden kernel counts for the benchmark workloads, registers-only
intermediates, def-before-use order, and the fused graph computes what the
unfused one did (reference interpreter runs kernel.fused regions)."""

import numpy as np
import pytest

import minaot
import minaot.nn.functional as F
from minaot.ir import interpret, parse, verify
from minaot.passes.fuse import fuse

pytestmark = pytest.mark.codegen


def prim_graph(fn, *args, grad=False):
    """The forward prim graph aot_function hands to its compiler."""
    graphs = []

    def capture(g, example_inputs):
        graphs.append(g.clone())
        return minaot.nop(g, example_inputs)

    with minaot.set_grad_enabled(grad):
        minaot.aot_function(fn, fw_compiler=capture, bw_compiler=capture)(*args)
    return graphs[0]


def kernels(fn):
    return [op for op in fn.ops if op.name == "kernel.fused"]


def check_same(fn, *args):
    graph = prim_graph(fn, *args)
    want = interpret(graph, *args, wrap=False)
    fused = fuse(graph.clone())
    verify(fused)
    assert str(parse(str(fused))) == str(fused)
    got = interpret(fused, *args, wrap=False)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)
    return fused


def gelu_affine(x, w, b):
    return F.gelu(x * w + b, approximate="tanh")


def test_gelu_is_one_kernel_with_one_output():
    x, w, b = minaot.randn(64), minaot.randn(64), minaot.randn(64)
    fused = check_same(gelu_affine, x, w, b)
    ks = kernels(fused)
    assert len(ks) == 1 and len(fused.ops) == 1
    assert len(ks[0].results) == 1          # no intermediate is written to memory
    assert ks[0].attributes["reduce"] == ()


def test_softmax_and_layer_norm_are_one_row_kernel():
    x = minaot.randn(16, 32)
    for fn, args in [(lambda x: minaot.softmax(x, dim=1), (x,)),
                     (lambda x: minaot.log_softmax(x, dim=-1), (x,)),
                     (lambda x, w, b: F.layer_norm(x, (32,), w, b), (x, minaot.randn(32), minaot.randn(32)))]:
        fused = check_same(fn, *args)
        ks = kernels(fused)
        assert len(ks) == 1, fused
        assert ks[0].attributes["domain"] == (16, 32) and ks[0].attributes["reduce"] == (1,)
        assert len(ks[0].results) == 1


def test_layer_norm_backward_kernels():
    x = minaot.randn(16, 32, requires_grad=True)
    w, b = minaot.randn(32, requires_grad=True), minaot.randn(32, requires_grad=True)
    graphs = []

    def capture(g, ex):
        graphs.append(g)
        return minaot.nop(g, ex)

    f = minaot.aot_function(lambda x, w, b: F.layer_norm(x, (32,), w, b), fw_compiler=capture,
                            bw_compiler=capture)
    f(x, w, b).sum().backward()
    fw, bw = graphs
    want = interpret(bw, *[minaot.randn(*a.type.shape) for a in bw.args], wrap=False)
    assert want is not None
    nf, nb = len(kernels(fuse(fw))), len(kernels(fuse(bw)))
    # forward: one row kernel; backward: row kernel for dx plus column sums for dw, db
    assert nf == 1, fw
    assert nb <= 2, bw


def test_matmul_stays_a_library_call_with_fused_epilogue():
    def f(x, w, b):
        return (x @ w + b).relu()
    fused = check_same(f, minaot.randn(8, 4), minaot.randn(4, 6), minaot.randn(6))
    names = [op.name for op in fused.ops]
    assert names == ["prim.matmul", "kernel.fused"]


def test_value_read_by_library_call_is_stored_and_order_is_restored():
    def f(x, w):
        y = x.exp()
        m = y @ w           # a library call reads y before the kernel's last op
        z = y.tanh() * 2.0  # joins y's kernel
        return z + m
    fused = check_same(f, minaot.randn(4, 4), minaot.randn(4, 4))
    names = [op.name for op in fused.ops]
    assert names.count("prim.matmul") == 1
    first = kernels(fused)[0]
    assert len(first.results) == 2          # y (for the matmul) and z
    verify(fused)


def test_reduction_with_prologue_and_epilogue():
    def f(x):
        return (x * x).sum(dim=1).sqrt() + 1.0
    fused = check_same(f, minaot.randn(8, 16))
    assert len(kernels(fused)) == 1 and len(fused.ops) == 1


def test_full_reduction_and_broadcast_inputs():
    def f(x, y):
        return ((x - y) ** 2).mean()
    fused = check_same(f, minaot.randn(8, 16), minaot.randn(16))
    assert len(kernels(fused)) == 1
    assert kernels(fused)[0].attributes["reduce"] == (0, 1)


def test_fused_adam_update_is_one_kernel():
    """Adam's new second moment is returned by the graph and read by the parameter update:
    the group that computes it moves into the update's kernel, which also stores it
    (before, two kernels, and the denominator went through memory)."""
    from minaot.optim.adam import _adam_step
    p, g, m, v = (minaot.randn(16, 8) for _ in range(4))
    s = minaot.tensor([1e-3, 1.0])
    fused = check_same(lambda p, g, m, v, s: _adam_step(p, g, m, v, s, 0.9, 0.999, 1e-8),
                       p, g, m, v, s)
    (k,) = kernels(fused)
    assert len(k.results) == 3                  # new p, m, v: the denominator stays in registers
    assert {r for r in fused.results} == set(k.results)


def test_step_counters_stay_out_of_the_parameter_kernels():
    """Adam on the device counts each parameter's step in a 0-d tensor.  In a parameter's
    kernel the new count would be a broadcast store that cannot overwrite the counter in
    place (other threads still read it), so the counters' group stays out of the
    parameter kernels, and the independent one-element groups become one kernel: it
    returns both new counts, and the parameter kernels read its bias corrections."""
    from minaot.optim.adam import _adam_steps_on_device
    ps = [minaot.randn(16, 8), minaot.randn(8)]
    args = [t for p in ps for t in (p, minaot.randn(*p.shape), minaot.randn(*p.shape),
                                    minaot.rand(*p.shape))]
    steps = [minaot.tensor(0.0, dtype=minaot.float64), minaot.tensor(4.0, dtype=minaot.float64)]

    def fn(p, g, m, v, q, h, mq, vq, t, tq):
        _adam_steps_on_device([p, q], [g, h], [m, mq], [v, vq], [t, tq], 1e-3, 0.9, 0.999,
                              1e-8, 0.0, False)
    graph = prim_graph(fn, *args, *steps)
    assert len(graph.reinplace) == 8
    fused = check_same(fn, *args, *steps)
    small, *big = kernels(fused)
    assert list(small.attributes["domain"]) == [] and len(big) == 2
    counters = [fused.results[r] for r, a in fused.reinplace.items() if a in (8, 9)]
    assert len(counters) == 2                   # the new counts of arguments t and tq
    assert all(c in small.results for c in counters)
    assert all(c not in k.results for k in big for c in counters)


def test_group_read_by_a_library_call_does_not_move():
    # y feeds a matmul and a later kernel: moving y's group into that kernel would put the
    # matmul's input after the matmul
    def f(x, w):
        y = x.exp() * 2.0
        return y @ w, (y + 1.0).tanh()
    fused = check_same(f, minaot.randn(4, 4), minaot.randn(4, 4))
    assert [op.name for op in fused.ops].count("prim.matmul") == 1
    verify(fused)


def test_a_cheap_value_two_kernels_read_is_computed_in_each():
    """recompute_cheap_inputs: ``x * s`` (one op over inputs, one of them as large as the
    result) read by a column sum and a row sum, two kernels, is computed in both: neither
    writes it.  ``exp(x) * s`` (two ops) is still computed once and stored."""
    x, s = minaot.randn(16, 8), minaot.randn(16, 1)
    fused = check_same(lambda x, s: ((x * s).sum(dim=0), (x * s).sum(dim=1)), x, s)
    ks = kernels(fused)
    assert len(ks) == 2 and all(len(k.results) == 1 for k in ks)
    assert all(fused.args[0] in k.operands and fused.args[1] in k.operands for k in ks)
    stats = {}
    fused = fuse(prim_graph(lambda x, s: ((x.exp() * s).sum(dim=0), (x.exp() * s).sum(dim=1)),
                            x, s), stats)
    assert "fuse.recomputed" not in stats
    assert any(tuple(r.type.shape) == (16, 8) for k in kernels(fused) for r in k.results)


def test_layer_norm_backward_writes_only_gradients():
    """The min-cut backward of layer_norm: two kernels (the weight and bias gradients' column
    reduction, the input gradient's row kernel), each computing ``x - mean`` itself."""
    from test_joint import graphs_of
    x = minaot.randn(64, 32, requires_grad=True)
    w, b = minaot.randn(32, requires_grad=True), minaot.randn(32, requires_grad=True)
    fw, bw = graphs_of(lambda x, w, b: F.layer_norm(x, (32,), w, b, 1e-5), x, w, b,
                       partition_fn=minaot.min_cut_rematerialization_partition)
    (k,) = kernels(fuse(fw.clone()))
    assert sorted(tuple(r.type.shape) for r in k.results) == [(64, 1), (64, 1), (64, 32)]
    fused = fuse(bw.clone())
    ks = kernels(fused)
    assert len(ks) == 2
    assert sorted(tuple(r.type.shape) for k in ks for r in k.results) == [(1, 32), (1, 32), (64, 32)]
