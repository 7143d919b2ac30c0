"""mix-reductions: a row kernel and a column kernel over the same rows become one kernel.

Oracles: the reference interpreter on the prim graph; the merged kernel lowered to loops
and run as generated Numba CPU code (the CUDA form is checked under the simulator in
tests/cuda_cases.py and its source in tests/test_cuda_codegen.py)."""

import numpy as np
import pytest

import minaot
import minaot.nn.functional as F
from minaot.ir import interpret, parse, run_op, verify
from minaot.numba_backend import Kernel
from minaot.passes.fuse import fuse
from minaot.passes.mix_reductions import mix_reductions, mixed_chunks

R = np.random.default_rng(0)


def t(*shape):
    return minaot.from_numpy(R.standard_normal(shape).astype(np.float32))


def graphs(fn, *args):
    """(prim graph, its input arrays) for the forward and the backward of ``fn``."""
    seen = []

    def capture(g, example_inputs):
        run = minaot.nop(g.clone(), example_inputs)

        def record(*a):
            seen.append((g.clone(), [x.numpy().copy() for x in a]))
            return run(*a)
        return record
    out = minaot.aot_function(fn, fw_compiler=capture, bw_compiler=capture,
                              partition_fn=minaot.min_cut_rematerialization_partition)(*args)
    out.sum().backward()
    return seen


def layer_norm(x, w, b):
    return F.layer_norm(x, (x.shape[1],), w, b)


def mixed(graph, **kw):
    g = fuse(graph.clone())
    stats = {}
    mix_reductions(g, stats, **kw)
    verify(g)
    return g, stats.get("mix-reductions.merged", 0)


def run_numba(g, arrays):
    """The graph with each kernel lowered to loops and run as generated Numba CPU code."""
    env = dict(zip(g.args, arrays))
    for op in g.ops:
        ins = [env[v] for v in op.operands]
        outs = Kernel(op, g.name)(ins) if op.name == "kernel.fused" else run_op(op, ins)
        env.update(zip(op.results, outs))
    return [env[v] for v in g.results]


def test_mixed_chunks_divide_the_rows():
    assert mixed_chunks(16384) == 512 and mixed_chunks(16384, 64) == 256
    assert mixed_chunks(96) == 3 and mixed_chunks(63) == 1 and mixed_chunks(64, 1) == 64


def test_layer_norm_backward_becomes_one_kernel():
    """The weight and bias gradients' column sums join the input gradient's row kernel:
    one kernel with both, the row kernel's results first, chunks of 32 rows."""
    (fw, _), (bw, arrays) = graphs(layer_norm, t(128, 16).requires_grad_(),
                                   t(16).requires_grad_(), t(16).requires_grad_())
    before = [op for op in fuse(bw.clone()).ops if op.name == "kernel.fused"]
    assert sorted(tuple(k.attributes["reduce"]) for k in before) == [(0,), (1,)]
    g, merged = mixed(bw)
    (k,) = [op for op in g.ops if op.name == "kernel.fused"]
    assert merged == 1
    assert k.attributes["columns"] == (0,) and k.attributes["reduce"] == (1,)
    assert k.attributes["column_chunks"] == 4
    assert [tuple(r.type.shape) for r in k.results] == [(128, 16), (1, 16), (1, 16)]
    assert str(parse(str(g))) == str(g)
    want = interpret(bw, *arrays, wrap=False)
    for got in (interpret(g, *arrays, wrap=False), run_numba(g, arrays)):
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # the forward has one row kernel and no column reduction: nothing to merge
    assert mixed(fw)[1] == 0


@pytest.mark.parametrize("rows, rows_per_chunk", [(64, 32), (96, 32), (64, 1), (128, 2)])
def test_mixed_kernel_lowered_to_loops_runs_like_the_interpreter(rows, rows_per_chunk):
    """Few chunks are combined per column directly; 64 or more (64 and 128 rows here, in
    chunks of one and two rows) by a chunked column reduction of their partial sums."""
    (_, _), (bw, arrays) = graphs(layer_norm, t(rows, 24).requires_grad_(),
                                  t(24).requires_grad_(), t(24).requires_grad_())
    g, merged = mixed(bw, rows_per_chunk=rows_per_chunk)
    assert merged == 1
    want = interpret(bw, *arrays, wrap=False)
    for a, b in zip(run_numba(g, arrays), want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_several_column_and_row_reductions_with_an_epilogue():
    """Sums and maxima both ways over two shared inputs, the column results scaled after
    the reduction (an epilogue stored with them)."""
    def f(x, y):
        cols = (x * y).sum(dim=0) * 0.5, (x - y).amax(dim=0)
        rows = minaot.softmax(x + y, dim=1)
        return cols, rows
    x, y = t(64, 8), t(64, 8)
    g = fuse(fn_graph(f, x, y))
    stats = {}
    mix_reductions(g, stats)
    assert stats.get("mix-reductions.merged") == 1
    got = run_numba(g, [x.numpy(), y.numpy()])
    (c0, c1), r = f(x, y)
    for a, b in zip(got, [c0, c1, r]):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-5, atol=1e-5)


def fn_graph(fn, *args):
    seen = []

    def capture(g, example_inputs):
        seen.append(g.clone())
        return minaot.nop(g, example_inputs)
    minaot.aot_function(fn, fw_compiler=capture)(*args)
    return seen[0]


@pytest.mark.parametrize("rows, rows_per_chunk, chunks", [(64, 1, 64), (96, 4, 24), (64, 32, None)])
def test_plain_column_kernels_take_the_gpu_chunking(rows, rows_per_chunk, chunks):
    """A column reduction that mixes with no row kernel (here a GELU backward's bias
    gradient, which also writes the full-size input gradient) gets the GPU's chunking
    when it makes more than lower-to-loops' 16 chunks; 64 or more are combined in two
    steps.  Lowered to loops and run as Numba CPU code, it computes what the interpreter
    does."""
    def f(x, w, b):
        return F.gelu(x * w + b, approximate="tanh")
    (_, _), (bw, arrays) = graphs(f, t(rows, 8).requires_grad_(), t(8).requires_grad_(),
                                  t(8).requires_grad_())
    g = fuse(bw.clone())
    stats = {}
    mix_reductions(g, stats, rows_per_chunk=rows_per_chunk)
    verify(g)
    got = [k.attributes.get("column_chunks") for k in g.ops if k.name == "kernel.fused"
           and tuple(k.attributes["reduce"]) == (0,)]
    assert got and all(c == chunks for c in got), got
    assert stats.get("mix-reductions.chunked", 0) == (len(got) if chunks else 0)
    want = interpret(bw, *arrays, wrap=False)
    for a, b in zip(run_numba(g, arrays), want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_kernels_that_must_stay_apart():
    x, y = t(64, 8), t(64, 8)
    cases = {
        # the row kernel reads the column sums: it cannot run in the same pass
        "dependent": lambda x, y: (x * x.sum(dim=0, keepdim=True)).sum(dim=1),
        # no input in common: nothing read twice
        "apart": lambda x, y: (x.sum(dim=0), y.sum(dim=1)),
        # the column kernel also writes a full-size tensor (streamed as the rows go by)
        "streams": lambda x, y: ((x * 2).sum(dim=0), x * 2, (x * y).sum(dim=1)),
    }
    for name, f in cases.items():
        g = fuse(fn_graph(f, x, y))
        stats = {}
        mix_reductions(g, stats)
        assert "mix-reductions.merged" not in stats, name
    # too few rows for two chunks of 32
    g = fuse(fn_graph(lambda x, y: ((x * y).sum(dim=0), (x + y).sum(dim=1)), t(63, 8), t(63, 8)))
    stats = {}
    mix_reductions(g, stats)
    assert "mix-reductions.merged" not in stats
