"""Focused tests of the course tasks (docs/teaching.md, ``python -m minaot.course list``).

Each test is marked ``task_N_M``, calls the task's code through the path the pipeline
uses (or, for a helper that only the next task reaches, the helper itself) and compares
with an oracle that does not use it: numpy, float64 finite differences, eager mode, the
reference interpreter.  A test of task N.M needs only tasks N.M and earlier: in a student
copy stripped from a later task it passes (tests/test_course.py checks that per stage).
More task tests carry marks in test_tracing, test_ir_passes, test_functionalize and
test_joint.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import minaot
from minaot.testing import assert_close, gradcheck

R = np.random.default_rng(0)
HERE = os.path.dirname(os.path.abspath(__file__))


def leaf(*shape, low=None):
    """A float64 tensor that requires grad: standard normal, or uniform in [low, 2]."""
    a = R.standard_normal(shape) if low is None else R.uniform(low, 2.0, shape)
    return minaot.tensor(a, dtype=minaot.float64, requires_grad=True)


def f32(*shape):
    return minaot.from_numpy(R.standard_normal(shape).astype(np.float32))


def prim_graph(fn, *args):
    """The forward prim graph aot_function hands its compiler (inference: no joint)."""
    graphs = []

    def capture(g, example_inputs):
        graphs.append(g.clone())
        return minaot.nop(g, example_inputs)

    with minaot.no_grad():
        minaot.aot_function(fn, fw_compiler=capture)(*args)
    return graphs[0]


# ---------------------------------------------------------------- 1 tensor ops and VJP rules
@pytest.mark.task_1_1
@pytest.mark.parametrize("name", ["mul", "div", "pow"])
def test_task_1_1_gradients_of_mul_div_pow(name):
    fn = {"mul": lambda a, b: a * b, "div": lambda a, b: a / b, "pow": lambda a, b: a ** b}[name]
    a = leaf(3, 4, low=0.5)             # positive: pow's gradient for b takes log(a)
    b = leaf(3, 4, low=0.5)
    gradcheck(fn, (a, b))


@pytest.mark.task_1_1
def test_task_1_1_only_the_needed_gradients():
    a = leaf(5, low=0.5)
    b = minaot.tensor(R.uniform(0.5, 2.0, 5))               # needs no gradient
    v = R.standard_normal(5)
    seed = minaot.tensor(v)
    an, bn = a.detach().numpy(), b.numpy()
    for out, want in [(a * b, v * bn), (b / a, -v * bn / an ** 2), (b ** a, v * bn ** an * np.log(bn)),
                      (a ** 3, v * 3 * an ** 2)]:
        (g,) = minaot.autograd.grad(out, [a], seed)
        assert_close(g.numpy(), want)


def _sum_to_oracle(x, shape):
    """The adjoint of broadcasting ``shape`` to ``x.shape``: every element of ``x`` is added
    to the element of ``shape`` it was broadcast from."""
    index = np.arange(int(np.prod(shape, dtype=np.int64))).reshape(shape)
    src = np.broadcast_to(index, x.shape)
    return np.bincount(src.ravel(), weights=x.ravel(), minlength=index.size).reshape(shape)


@pytest.mark.task_1_2
@pytest.mark.parametrize("shape", [(3, 1), (4,), (1, 4), (2, 1, 4), (1, 1, 1), (), (2, 3, 4)])
def test_task_1_2_sum_to(shape):
    x = R.standard_normal((2, 3, 4))
    got = minaot.ops.sum_to(minaot.tensor(x), shape)
    assert got.shape == shape
    assert_close(got.numpy(), _sum_to_oracle(x, shape))


@pytest.mark.task_1_2
@pytest.mark.parametrize("sa,sb", [((3, 4), (4,)), ((2, 1, 3), (4, 1)), ((5,), ()), ((3, 1), (1, 4))])
def test_task_1_2_broadcasting_gradients(sa, sb):
    gradcheck(lambda a, b: a + b, (leaf(*sa), leaf(*sb)))
    gradcheck(lambda a, b: a - b, (leaf(*sa), leaf(*sb)))


@pytest.mark.task_1_3
@pytest.mark.parametrize("dim,keepdim", [(None, False), ((0,), False), ((1,), True), ((0, 2), False)])
def test_task_1_3_sum_and_amax(dim, keepdim):
    x = leaf(3, 4, 2)
    gradcheck(lambda x: x.sum(dim=dim, keepdim=keepdim), (x,))
    gradcheck(lambda x: x.amax(dim=dim, keepdim=keepdim), (x,))     # no ties in random data


@pytest.mark.task_1_3
def test_task_1_3_amax_splits_the_gradient_between_ties():
    x = minaot.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]], dtype=minaot.float64, requires_grad=True)
    x.amax(dim=1).backward(minaot.tensor([1.0, 4.0], dtype=minaot.float64))
    assert_close(x.grad.numpy(), np.array([[0.0, 0.5, 0.5], [2.0, 0.0, 2.0]]))


@pytest.mark.task_1_3
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_task_1_3_softmax(dim):
    gradcheck(lambda x: minaot.softmax(x, dim=dim), (leaf(3, 5),))


@pytest.mark.task_1_4
@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((2, 3, 4), (4, 2)), ((2, 1, 3, 4), (3, 4, 2)),
                                   ((4,), (4, 3)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4,))])
def test_task_1_4_matmul(sa, sb):
    gradcheck(lambda a, b: a @ b, (leaf(*sa), leaf(*sb)))


# ---------------------------------------------------------------- 2 tracing and the IR
INTERP_TEXT = """func.func @f(%0: tensor<2x3xf64>, %1: tensor<3xf64>) -> (tensor<2x3xf64>, tensor<2xf64>) {
  %2 = prim.add %0, %1 : (tensor<2x3xf64>, tensor<3xf64>) -> tensor<2x3xf64>
  %3 = prim.exp %2 : (tensor<2x3xf64>) -> tensor<2x3xf64>
  %4 = prim.sum %3 {dim = [1], keepdim = false} : (tensor<2x3xf64>) -> tensor<2xf64>
  func.return %3, %4 : tensor<2x3xf64>, tensor<2xf64>
}"""

INPLACE_TEXT = """func.func @g(%0: tensor<2x3xf32>) -> (tensor<3x2xf32>) {
  %1 = mt.constant {dtype = "float32", shape = [], value = 2.0} : () -> tensor<f32>
  %2 = mt.mul_ %0, %1 : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  %3 = mt.transpose %2 {dim0 = 0, dim1 = 1} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  func.return %3 : tensor<3x2xf32>
}"""


@pytest.mark.task_2_1
def test_task_2_1_interpret_runs_every_op_in_order():
    fn = minaot.ir.parse(INTERP_TEXT)
    x, b = R.standard_normal((2, 3)), R.standard_normal(3)
    e, s = minaot.ir.interpret(fn, minaot.tensor(x), minaot.tensor(b))
    assert isinstance(e, minaot.Tensor) and isinstance(s, minaot.Tensor)
    assert_close(e.numpy(), np.exp(x + b))
    assert_close(s.numpy(), np.exp(x + b).sum(1))
    arrays = minaot.ir.interpret(fn, x, b, wrap=False)          # numpy arrays in, arrays out
    assert isinstance(arrays, list) and all(isinstance(a, np.ndarray) for a in arrays)
    assert_close(arrays[1], np.exp(x + b).sum(1))
    with pytest.raises(TypeError, match="takes 2 arguments"):
        minaot.ir.interpret(fn, x)


@pytest.mark.task_2_1
def test_task_2_1_interpret_mt_writes_into_the_callers_array():
    fn = minaot.ir.parse(INPLACE_TEXT)
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = minaot.ir.interpret(fn, a)                 # a single result: one tensor
    assert_close(a, 2 * np.arange(6, dtype=np.float32).reshape(2, 3))      # mutated in place
    assert_close(out.numpy(), a.T)


@pytest.mark.task_2_2
def test_task_2_2_fake_results_track_views_and_gradients():
    seen = {}

    def f(x, w):
        y = x.t()
        z = (y * 2).detach()
        h = y @ w
        n = h.sum(dim=1).argmax(dim=0)
        seen.update(x=x, y=y, z=z, h=h, n=n)
        return h, z, n

    g = minaot.trace(f, minaot.randn(3, 2), minaot.randn(3, 4, requires_grad=True))
    assert [op.name for op in g.ops] == ["mt.transpose", "mt.constant", "mt.mul", "mt.detach",
                                         "mt.matmul", "mt.sum", "mt.argmax"]
    x, y, z, h, n = (seen[k] for k in "xyzhn")
    assert y._base is x and y._storage is x._storage and y.stride() == x.t().stride()
    assert z._storage is not x._storage
    assert h.requires_grad and not y.requires_grad and not z.requires_grad and not n.requires_grad
    assert n.dtype is minaot.int64 and h.shape == (2, 4)
    assert [str(r.type) for r in g.results] == ["tensor<2x4xf32>", "tensor<2x3xf32>", "tensor<i64>"]


# ---------------------------------------------------------------- 4 functionalization
VIEW_ONLY = {
    "transpose": lambda a: a.t() * 2.0,
    "slice_select": lambda a: a[1:, 0] + a[0, :2],
    "reshape_permute": lambda a: a.reshape(3, 2).permute(1, 0).exp(),
    "detach": lambda a: a.detach().t() + a.t(),
}


@pytest.mark.task_4_1
@pytest.mark.parametrize("name", sorted(VIEW_ONLY))
def test_task_4_1_reads_through_views(name):
    fn = VIEW_ONLY[name]
    a = minaot.tensor(R.standard_normal((2, 3)))
    want = fn(a)
    graph, meta = minaot.passes.functionalize.functionalize(minaot.trace(fn, a))
    assert all(op.name.startswith("prim.") for op in graph.ops), str(graph)
    assert not any(i.mutates_data or i.mutates_metadata for i in meta.inputs)
    assert_close(minaot.ir.interpret(graph, a), want)
    assert_close(minaot.aot_function(fn)(a), want)


@pytest.mark.task_4_1
def test_task_4_1_a_view_read_twice_is_replayed_once():
    def f(a):
        b = a.t()
        return b + 1.0, b * 2.0

    graph, _ = minaot.passes.functionalize.functionalize(minaot.trace(f, minaot.ones(2, 3)))
    assert [op.name for op in graph.ops].count("prim.transpose") == 1


@pytest.mark.task_4_2
def test_task_4_2_write_through_a_slice_of_a_transpose():
    def f(a):
        b = a.t()
        b[1:, :].mul_(2.0)
        return a + 1.0, b.exp()

    def make():
        return minaot.arange(6.0).reshape(2, 3).clone()

    ea, ca = make(), make()
    want = f(ea)
    got = minaot.aot_function(f)(ca)
    assert_close(got, want)
    assert_close(ca, ea)                           # the caller's tensor got the write
    graph, meta = minaot.passes.functionalize.functionalize(minaot.trace(f, make()))
    names = [op.name for op in graph.ops]
    assert "prim.slice_scatter" in names and not any(n.endswith("_") for n in names)
    assert meta.inputs[0].mutates_data


@pytest.mark.task_4_2
def test_task_4_2_write_through_select_and_reshape_of_an_intermediate():
    def f(a):
        b = a * 2.0
        b.view(3, 2)[1].add_(10.0)
        b[:, 0].zero_()
        return b, b.sum()

    a = minaot.tensor(R.standard_normal((2, 3)))
    assert_close(minaot.aot_function(f)(a), f(a))


# ---------------------------------------------------------------- 5 the joint graph
def _fx(fn, *args):
    """The functional prim graph the joint pass starts from."""
    from minaot.passes.decompose import decompose
    graph, _ = minaot.passes.functionalize.functionalize(minaot.trace(fn, *args))
    decompose(graph)
    return graph


@pytest.mark.task_5_1
def test_task_5_1_requires_grad_analysis():
    from minaot.passes.joint import _requires_grad

    def f(x, w):
        h = x @ w
        k = x * 2.0
        d = h.detach()
        return h.sum(), k, h.argmax(dim=1), d * 3.0

    g = _fx(f, minaot.randn(2, 3), minaot.randn(3, 4))
    rg = _requires_grad(g, [False, True])
    assert [rg[a] for a in g.args] == [False, True]
    assert [rg[r] for r in g.results] == [True, False, False, False]
    by_name = {op.name: rg[op.result] for op in g.ops}
    assert by_name["prim.matmul"] and not by_name["prim.argmax"]
    assert not _requires_grad(g, [False, False])[g.results[0]]


def _joint_grads(fn, args, tangents):
    """Run the exported joint graph: (forward outputs, gradients of the args requiring grad)."""
    joint = minaot.export_joint(fn, *args)
    out = minaot.ir.interpret(joint, *[a.detach() for a in args], *tangents)
    out = list(out) if isinstance(out, tuple) else [out]
    n = joint.joint_info.num_fwd_outputs
    return joint, out[:n], out[n:]


@pytest.mark.task_5_2
def test_task_5_2_joint_gradients_equal_eager():
    def f(x, w, b):
        h = (x @ w + b).tanh()
        return (h * h.sin()).sum(dim=1), h.amax()          # h is used three times

    x, w, b = leaf(4, 3), leaf(3, 5), leaf(5)
    t1, t2 = minaot.tensor(R.standard_normal(4)), minaot.tensor(R.standard_normal(()))
    joint, outs, grads = _joint_grads(f, (x, w, b), (t1, t2))
    want = f(x, w, b)
    assert_close(outs, [o.detach() for o in want])
    assert_close(grads, minaot.autograd.grad(want, [x, w, b], [t1, t2]))
    assert joint.joint_info.grad_mask == [True, True, True]


@pytest.mark.task_5_2
def test_task_5_2_unused_inputs_get_no_gradient_and_int_outputs_no_tangent():
    def f(x, y, z):
        return (x * y).exp(), x.argmax()

    x, y, z = leaf(3), minaot.tensor(R.standard_normal(3)), leaf(2)
    t = minaot.tensor(R.standard_normal(3))
    joint, outs, (gx,) = _joint_grads(f, (x, y, z), (t,))
    assert joint.joint_info.tangent_mask == [True, False]
    # z requires grad but nothing reaches it: no gradient (its .grad stays None, as in
    # PyTorch), not zeros
    assert joint.joint_info.grad_mask == [True, False, False]
    assert_close(gx, minaot.autograd.grad(f(x, y, z)[0], [x], t)[0])


# ---------------------------------------------------------------- 6 partitioning
def _partitioned(fn, *args, partition_fn=None):
    """Compile ``fn`` for training with the interpreter; returns (fw, bw, outputs, grads)."""
    seen = {}

    def compiler(name):
        def compile(graph, example):
            seen[name] = graph
            return minaot.nop(graph, example)
        return compile

    cf = minaot.aot_function(fn, compiler("fw"), compiler("bw"), partition_fn=partition_fn)
    out = cf(*args)
    grads = minaot.autograd.grad(out, list(args), minaot.ones_like(out))
    return seen["fw"], seen["bw"], out, grads


def _saved_are_read(fw, bw):
    """Every saved value is a backward argument that the backward reads."""
    saved = bw.args[:fw.num_saved]
    read = {v for op in bw.ops for v in op.operands} | set(bw.results)
    return len(fw.results) - len(saved) >= 1 and all(v in read for v in saved)


@pytest.mark.task_6_1
def test_task_6_1_default_partition_saves_what_the_backward_reads():
    x = leaf(4, 3)
    w = leaf(3, 2)
    fw, bw, out, grads = _partitioned(lambda x, w: (x @ w).relu().sum(), x, w)
    rep = fw.partition_report
    assert rep.partitioner == "default"
    assert [d for d, _, _ in rep.saved] == ["primals_1", "primals_2", "prim.relu"]
    assert rep.saved_bytes == (12 + 6 + 8) * 8 and rep.recomputed == []
    assert _saved_are_read(fw, bw)
    assert_close(grads, minaot.autograd.grad((x @ w).relu().sum(), [x, w]))


@pytest.mark.task_6_1
def test_task_6_1_default_partition_recomputes_nothing():
    x = leaf(5)
    fw, bw, out, grads = _partitioned(lambda x: x.sin().exp() * x, x)
    assert fw.partition_report.recomputed == []
    assert not ({op.name for op in bw.ops} & {"prim.sin", "prim.exp"})     # saved, not redone
    assert _saved_are_read(fw, bw)
    assert_close(grads, minaot.autograd.grad((x.sin().exp() * x).sum(), [x]))


@pytest.mark.task_6_2
def test_task_6_2_min_cut_recomputes_pointwise_and_saves_less():
    def f(x, w):
        return ((x @ w).cos().cos().cos() * 2.0).sum()

    args = leaf(6, 8), leaf(8, 16)
    fw0, _, _, want = _partitioned(f, *args)
    fw, bw, out, grads = _partitioned(f, *args, partition_fn=minaot.min_cut_rematerialization_partition)
    rep = fw.partition_report
    assert rep.partitioner == "min_cut"
    assert rep.saved_bytes < fw0.partition_report.saved_bytes
    assert rep.recomputed == ["prim.cos", "prim.cos"]               # the chain is redone from
    assert "prim.matmul" in [d for d, _, _ in rep.saved]             # the saved matmul result
    assert [op.name for op in bw.ops].count("prim.matmul") == 2       # the two gradient matmuls
    assert _saved_are_read(fw, bw)
    assert_close(grads, want)


# ---------------------------------------------------------------- 7 fusion
@pytest.mark.task_7_1
def test_task_7_1_pointwise_dims():
    from minaot.passes.fuse import pointwise_dims
    assert pointwise_dims((4, 8), (4, 8), frozenset()) == (0, 1)
    assert pointwise_dims((4, 1), (4, 8), frozenset({1})) == (0, None)
    assert pointwise_dims((4,), (4, 8), frozenset({1})) == (0,)
    assert pointwise_dims((1, 8), (4, 8), frozenset({0})) == (None, 1)
    assert pointwise_dims((8,), (4, 8), frozenset({0})) == (1,)
    assert pointwise_dims((8,), (4, 8), frozenset()) is None           # not the domain
    assert pointwise_dims((4, 1), (4, 8), frozenset()) is None
    assert pointwise_dims((2, 3, 1), (2, 3, 4), frozenset({2})) == (0, 1, None)


@pytest.mark.task_7_1
def test_task_7_1_broadcast_dims():
    from minaot.passes.fuse import _broadcast_dims
    assert _broadcast_dims((0, 1), (4, 8), (4, 8)) == (0, 1)
    assert _broadcast_dims((0, 1), (4, 8), (8,)) == (1,)
    assert _broadcast_dims((0, 1), (4, 8), (4, 1)) == (0, None)
    assert _broadcast_dims((0, 1), (4, 8), (1, 8)) == (None, 1)
    assert _broadcast_dims((0, 1), (4, 8), ()) == ()
    assert _broadcast_dims((1, 0), (8, 4), (4,)) == (0,)               # a transposed result
    assert _broadcast_dims((0, None), (4, 1), (4, 1)) == (0, None)


def _kernels(graph):
    return [op for op in graph.ops if op.name == "kernel.fused"]


def _same_after_fuse(fn, *args):
    from minaot.passes.fuse import fuse
    graph = prim_graph(fn, *args)
    want = minaot.ir.interpret(graph, *args, wrap=False)
    fused = fuse(graph.clone())
    minaot.ir.verify(fused)
    for g, w in zip(minaot.ir.interpret(fused, *args, wrap=False), want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)
    return fused


@pytest.mark.task_7_2
def test_task_7_2_joining_a_group_must_not_make_a_cycle():
    # exp(x) feeds a matmul (a library call) and the product; the product may not join
    # exp's kernel: that kernel would both feed the matmul and wait for it
    fused = _same_after_fuse(lambda x, w: x.exp() * (x.exp() @ w), f32(4, 4), f32(4, 4))
    ks = _kernels(fused)
    assert len(ks) == 2
    names = [op.name for op in fused.ops]
    assert names.index("kernel.fused") < names.index("prim.matmul") < len(names) - 1 - names[::-1].index("kernel.fused")


@pytest.mark.task_7_2
def test_task_7_2_chains_fuse_into_one_kernel():
    fused = _same_after_fuse(lambda x, b: ((x + b).tanh() * 2.0).sum(dim=1), f32(4, 8), f32(8))
    assert len(_kernels(fused)) == 1
    fused = _same_after_fuse(lambda x: minaot.softmax(x, dim=1), f32(3, 5))
    assert len(_kernels(fused)) == 1


@pytest.mark.task_7_2
def test_task_7_2_max_ops_caps_a_group():
    from minaot.passes.fuse import fuse
    graph = prim_graph(lambda x: (((x + 1.0) * 2.0) - 3.0).exp(), f32(8))
    assert len(_kernels(fuse(graph.clone(), max_ops=2))) == 2
    assert len(_kernels(fuse(graph.clone()))) == 1


# ---------------------------------------------------------------- 8 loops and Numba codegen
def _numba_equals_interpreter(fn, *args, rtol=1e-5, atol=1e-6):
    from minaot.numba_backend import NumbaProgram
    graph = prim_graph(fn, *args)
    want = minaot.ir.interpret(graph, *args, wrap=False)
    prog = NumbaProgram(graph)
    got = prog(*args)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.numpy().dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g.numpy(), w, rtol=rtol, atol=atol)
    return prog


@pytest.mark.task_8_1
def test_task_8_1_pointwise_kernels_through_numba():
    x, b, y = f32(6, 5), f32(5), f32(5, 6)
    prog = _numba_equals_interpreter(
        lambda x, b, y: (minaot.where(x > b, (x + b).sigmoid(), x * 0.5 - b) + y.t()).abs(), x, b, y)
    (k,) = prog.kernels.values()
    assert "for i0 in range(6):" in k.source and "for i1 in range(5):" in k.source
    assert "np.float32(0.5)" in k.source


@pytest.mark.task_8_1
def test_task_8_1_casts_integers_and_bools():
    a = minaot.from_numpy(np.arange(12, dtype=np.int64).reshape(3, 4))
    x = f32(3, 4)
    _numba_equals_interpreter(lambda a, x: ((a * 3 - 1) > 4).float() + a.float() * x, a, x,
                              rtol=1e-6, atol=0)


@pytest.mark.task_8_1
def test_task_8_1_unknown_ops_are_named():
    from minaot.codegen.numba_cpu import emit_numba_cpu
    text = """func.func @k(%0: memref<4xf32>, %1: memref<4xf32>) -> () {
  scf.parallel {lower = 0, upper = 4} ({
  ^bb0(%2: index):
    %3 = memref.load %0, %2 : (memref<4xf32>, index) -> f32
    %4 = arith.frobf %3, %3 : (f32, f32) -> f32
    memref.store %4, %1, %2 : (f32, memref<4xf32>, index) -> ()
    scf.yield : () -> ()
  }) : () -> ()
  func.return
}"""
    with pytest.raises(NotImplementedError, match="arith.frobf"):
        emit_numba_cpu(minaot.ir.parse(text))         # parse does not verify: no arith.frobf op


@pytest.mark.task_8_2
def test_task_8_2_reductions_through_numba():
    _numba_equals_interpreter(lambda x: (x.sum(dim=1), x.amax(dim=0), x.amin()), f32(7, 9))
    _numba_equals_interpreter(lambda x: minaot.softmax(x, dim=1), f32(5, 12))
    a = minaot.from_numpy(np.arange(-6, 6, dtype=np.int64).reshape(3, 4))
    _numba_equals_interpreter(lambda a: (a.sum(dim=1), a.amax(dim=1)), a, rtol=0, atol=0)


@pytest.mark.task_8_2
def test_task_8_2_reduction_loops_carry_an_accumulator():
    from minaot.passes.fuse import fuse
    from minaot.passes.lower_to_loops import lower_to_loops
    graph = fuse(prim_graph(lambda x: minaot.softmax(x, dim=1), f32(4, 8)))
    (loop,) = lower_to_loops(graph)
    minaot.ir.verify(loop)
    text = str(loop)
    carried = [line for line in text.splitlines() if "= scf.for %" in line]
    assert len(carried) == 2                          # the row max and the row sum
    assert "arith.maximumf" in text and "value = -inf" in text and "value = 0.0" in text


# ---------------------------------------------------------------- 9 CUDA codegen
def _loop(fn, *shapes):
    from minaot.passes.fuse import fuse
    from minaot.passes.lower_to_loops import lower_kernel
    graph = fuse(prim_graph(fn, *[f32(*s) for s in shapes]))
    (k,) = _kernels(graph)
    return lower_kernel(k, "k0")


def _loops(op):
    return [o for o in op.walk() if o.name in ("scf.for", "scf.parallel")]


def _run_lines(lines, flat):
    env = {"flat": flat}
    for line in lines:
        exec(line, {}, env)
    return env


@pytest.mark.task_9_1
@pytest.mark.parametrize("shape", [(4, 8), (2, 3, 4), (5,)])
def test_task_9_1_flat_index_to_loop_indices(shape):
    from minaot.codegen.numba_cuda import _unflatten
    loop = _loop(lambda x: x * 2.0 + 1.0, shape)
    levels = _loops(loop)
    assert [lv.attributes["upper"] for lv in levels] == list(shape)
    names = {lv.regions[0].block.args[0]: f"i{k}" for k, lv in enumerate(levels)}
    lines = _unflatten("flat", levels, names)
    assert len(lines) == len(shape)
    for flat in range(int(np.prod(shape))):
        env = _run_lines(lines, flat)
        assert tuple(env[f"i{k}"] for k in range(len(shape))) == np.unravel_index(flat, shape)
    if len(shape) == 2:
        assert lines == ["i0 = flat // 8", "i1 = flat % 8"]
    levels[-1].attributes["lower"] = 3                # a loop from 3 to 3 + trip
    levels[-1].attributes["upper"] += 3
    env = _run_lines(_unflatten("flat", levels, names), 0)
    assert env[f"i{len(shape) - 1}"] == 3


LOOP_TEXT = {
    # out[0] = x[i] for every i: each iteration writes the same element
    "same_element": """func.func @k(%0: memref<8xf32>, %1: memref<1xf32>) -> () {
  %2 = arith.constant {type = "index", value = 0} : () -> index
  scf.for {lower = 0, upper = 8} ({
  ^bb0(%3: index):
    %4 = memref.load %0, %3 : (memref<8xf32>, index) -> f32
    memref.store %4, %1, %2 : (f32, memref<1xf32>, index) -> ()
    scf.yield : () -> ()
  }) : () -> ()
  func.return
}""",
    # y[i] = y[i - 1] + x[i]: reads what the previous iteration wrote
    "running_sum": """func.func @k(%0: memref<8xf32>, %1: memref<8xf32>) -> () {
  %2 = arith.constant {type = "index", value = 1} : () -> index
  scf.for {lower = 1, upper = 8} ({
  ^bb0(%3: index):
    %4 = arith.subi %3, %2 : (index, index) -> index
    %5 = memref.load %1, %4 : (memref<8xf32>, index) -> f32
    %6 = memref.load %0, %3 : (memref<8xf32>, index) -> f32
    %7 = arith.addf %5, %6 : (f32, f32) -> f32
    memref.store %7, %1, %3 : (f32, memref<8xf32>, index) -> ()
    scf.yield : () -> ()
  }) : () -> ()
  func.return
}""",
    # y[i] = 2 * x[i]
    "own_elements": """func.func @k(%0: memref<8xf32>, %1: memref<8xf32>) -> () {
  %2 = arith.constant {type = "f32", value = 2.0} : () -> f32
  scf.for {lower = 0, upper = 8} ({
  ^bb0(%3: index):
    %4 = memref.load %0, %3 : (memref<8xf32>, index) -> f32
    %5 = arith.mulf %4, %2 : (f32, f32) -> f32
    memref.store %5, %1, %3 : (f32, memref<8xf32>, index) -> ()
    scf.yield : () -> ()
  }) : () -> ()
  func.return
}""",
}


@pytest.mark.task_9_2
@pytest.mark.parametrize("name,want", [("same_element", False), ("running_sum", False),
                                       ("own_elements", True)])
def test_task_9_2_independent_loops(name, want):
    from minaot.codegen.numba_cuda import _independent
    (loop,) = _loops(minaot.ir.parse(LOOP_TEXT[name]))
    assert _independent(loop) is want


@pytest.mark.task_9_2
def test_task_9_2_loops_of_real_kernels():
    from minaot.codegen.numba_cuda import _independent
    par, inner = _loops(_loop(lambda x: x * 2.0, (4, 8)))
    assert _independent(par) and _independent(inner)
    # a column sum: chunks x rows x columns updating partial[c, j], then a carried combine
    chunk, rows, cols, final, combine = _loops(_loop(lambda x: x.sum(dim=0), (64, 8)))
    assert not _independent(rows)          # every row updates the same partial sums
    assert _independent(cols)              # each column updates its own partial sum
    assert not _independent(combine)       # carries the sum from one iteration to the next


@pytest.mark.task_9_2
def test_task_9_2_launch_configuration_collapses_independent_loops():
    from minaot.codegen.numba_cuda import emit_numba_cuda, launch_config
    pw = _loop(lambda x: x * 2.0 + 1.0, (64, 64))
    assert launch_config(pw) == [("k0", 16, 256)]                  # 4096 work items
    src = emit_numba_cuda(_loop(lambda x, b: (x + b).relu(), (4, 8), (8,)))
    assert "for flat in range(cuda.grid(1), 32, cuda.gridsize(1)):" in src
    assert "i0 = flat // 8" in src and "i1 = flat % 8" in src


SIMULATED = {
    "pointwise": (lambda x, b: (x * b + 1.0).tanh(), [(5, 7), (7,)]),
    "softmax_rows": (lambda x: minaot.softmax(x, dim=1), [(3, 16)]),
    "column_sum": (lambda x: x.sum(dim=0) * 2.0, [(32, 5)]),
}


def run_kernels_on_cuda():
    """Run each SIMULATED kernel's generated CUDA code (GPU or simulator) against the
    interpreter; prints one line per kernel.  tests/test_course_tasks.py runs this in a
    process with ``NUMBA_ENABLE_CUDASIM=1`` (it must be set before Numba is imported)."""
    from minaot.codegen.cuda_runtime import run_loop_function_cuda
    from minaot.passes.fuse import fuse
    from minaot.passes.lower_to_loops import lower_kernel
    small = dict(max_threads=8, max_blocks=4, block_rows_min=8)
    for name, (fn, shapes) in SIMULATED.items():
        args = [f32(*s) for s in shapes]
        graph = fuse(prim_graph(fn, *args))
        env = dict(zip(graph.args, [a.numpy() for a in args]))
        for op in graph.ops:
            ins = [env[v] for v in op.operands]
            want = minaot.ir.run_op(op, ins)
            if op.name == "kernel.fused":
                got = run_loop_function_cuda(lower_kernel(op, f"{name}_k"), *ins, **small)
                for g, w in zip(got, want):
                    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
            env.update(zip(op.results, want))
        print(f"{name}: ok")


@pytest.mark.task_9_2
def test_task_9_kernels_run_under_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    code = ("import sys; sys.path.insert(0, 'tests'); "
            "from test_course_tasks import run_kernels_on_cuda; run_kernels_on_cuda()")
    proc = subprocess.run([sys.executable, "-c", code], cwd=os.path.dirname(HERE), env=env,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert all(f"{name}: ok" in out for name in SIMULATED), out
