"""lower-to-loops, emit-numba-cpu and the numba backend: every kernel's result equals the
reference interpreter; the loop IR prints, parses and verifies; the source is readable."""

import os
import numpy as np
import pytest

import minaot
import minaot.nn.functional as F
from minaot.ir import interpret, parse, verify
from minaot.ir.core import walk
from minaot.numba_backend import NumbaProgram
from minaot.passes.fuse import fuse
from minaot.passes.lower_to_loops import lower_to_loops

from test_fuse import prim_graph

pytestmark = pytest.mark.codegen


def run_both(fn, *args, rtol=1e-5, atol=1e-6):
    graph = prim_graph(fn, *args)
    want = interpret(graph, *args, wrap=False)
    prog = NumbaProgram(graph)
    got = prog(*args)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.numpy().dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g.numpy(), w, rtol=rtol, atol=atol)
    return prog


R = np.random.default_rng(0)


def t(*shape, dtype=np.float32):
    return minaot.from_numpy(R.standard_normal(shape).astype(dtype))


CASES = {
    "gelu_tanh": (lambda x, w, b: F.gelu(x * w + b, approximate="tanh"), (t(1000), t(1000), t(1000))),
    "gelu_erf": (lambda x: F.gelu(x), (t(257),)),
    "softmax": (lambda x: minaot.softmax(x, dim=1), (t(7, 33),)),
    "softmax_dim0": (lambda x: minaot.softmax(x, dim=0), (t(7, 33),)),
    "log_softmax": (lambda x: minaot.log_softmax(x, dim=-1), (t(5, 9),)),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (16,), w, b), (t(6, 16), t(16), t(16))),
    "mse": (lambda x, y: ((x - y) ** 2).mean(), (t(8, 16), t(16))),
    "matmul_epilogue": (lambda x, w, b: (x @ w + b).relu().sum(dim=0), (t(8, 4), t(4, 6), t(6))),
    "transposed_view": (lambda x, y: x.t() * y + 1.0, (t(5, 3), t(3, 5))),
    "3d_middle_reduce": (lambda x: x.amax(dim=1, keepdim=True) - x.sum(dim=1, keepdim=True),
                         (t(3, 4, 5),)),
    "float64": (lambda x, y: (x.exp() * y).sum(dim=1).sqrt(), (t(4, 6, dtype=np.float64).abs(),
                                                             t(4, 6, dtype=np.float64).abs())),
    "compare_where": (lambda x, y: minaot.where(x > y, x, y * 2.0), (t(10), t(10))),
    "sigmoid_tanh_abs_sign": (lambda x: x.sigmoid() + x.tanh() * x.abs() - x.sign(), (t(40),)),
    "clamp_min_max": (lambda x: x.clamp(-0.5, 0.5) + minaot.maximum(x, x * 0.5), (t(40),)),
    "scalar_output": (lambda x: x.sum() * 2.0, (t(3, 3),)),
    "cast": (lambda x: (x > 0).float() + x.to(minaot.float64).float(), (t(12),)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_numba_backend_equals_interpreter(name):
    fn, args = CASES[name]
    prog = run_both(fn, *args)
    for k in prog.kernels.values():
        verify(k.loop)
        assert str(parse(str(k.loop))) == str(k.loop)
        assert f"def {k.name}(" in k.source and "@njit(" in k.source


def test_int64_and_bool_kernels():
    a = minaot.from_numpy(np.arange(12, dtype=np.int64).reshape(3, 4))
    b = minaot.from_numpy(np.array([1, -2, 3, -4], dtype=np.int64))
    run_both(lambda a, b: (a * b - a).amax(dim=1) + (a > b).sum(dim=1), a, b, rtol=0, atol=0)


def test_nan_and_inf_follow_numpy():
    x = minaot.from_numpy(np.array([[1.0, np.nan, 3.0], [-np.inf, 2.0, 0.0]], dtype=np.float32))
    run_both(lambda x: (x.amax(dim=1), x / 0.0, minaot.maximum(x, x * 0.0)), x)


def test_loop_ir_of_softmax_is_one_row_kernel_with_three_inner_loops():
    graph = fuse(prim_graph(lambda x: minaot.softmax(x, dim=1), t(4, 8)))
    (k,) = lower_to_loops(graph, recompute_costly=False)       # as the CPU backend lowers
    text = str(k)
    assert text.count("scf.parallel") == 1
    assert text.count("scf.for") == 3          # max, sum, normalize
    assert text.count("math.exp") == 1         # one exp per element: the sum loop's
    assert str(lower_to_loops(graph)[0]).count("math.exp") == 2      # the default recomputes
    # the sum loop stores exp(x - max) into the output, the last loop divides it in place
    (par,) = [op for op in k.walk() if op.name == "scf.parallel"]
    loops = [op for op in par.regions[0].block.ops if op.name == "scf.for"]
    out = k.args[1]
    names = [[o.name for o in walk(loop)] for loop in loops]
    assert "math.exp" in names[1] and "math.exp" not in names[2]
    stores = [[o for o in walk(loop) if o.name == "memref.store"] for loop in loops]
    assert [len(x) for x in stores] == [0, 1, 1] and all(x[0].operands[1] is out for x in stores[1:])
    loads = [o for o in walk(loops[2]) if o.name == "memref.load"]
    assert [o.operands[0] for o in loads] == [out]


def test_cheap_inner_values_are_recomputed_not_stored():
    # layer norm's x - mean and log_softmax's x - max cost a subtract: computed again
    for fn, x in [(lambda x: F.layer_norm(x, (16,)), t(6, 16)),
                  (lambda x: minaot.log_softmax(x, dim=1), t(6, 16))]:
        (k,) = lower_to_loops(fuse(prim_graph(fn, x)), recompute_costly=False)
        outs = set(k.args[1:])
        assert not any(op.name == "memref.load" and op.operands[0] in outs for op in k.walk())


NAN_ROWS = np.array([[np.nan] + [1.0] * 99, [1.0] * 50 + [np.nan] + [2.0] * 49,
                     [3.0] * 99 + [np.nan], [-np.inf] * 100, [np.inf] * 99 + [np.nan],
                     list(np.linspace(-5, 5, 100)), [np.nan] * 100, [-0.0] * 100], np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_min_with_nan_and_inf_equal_numpy_in_vectorized_kernels(dtype):
    """NaN anywhere in a row or a column (first, middle, last lane of a vector) gives NaN,
    as numpy's does; +-inf are ordinary values.  Rows of 100: vector loops and tails."""
    x = np.tile(NAN_ROWS, (64, 1)).astype(dtype)          # (512, 100): parallel kernels
    y = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    y[::7, ::3] = np.nan
    fn = lambda x, y: (x.amax(dim=1), x.amin(dim=1), x.amax(dim=0), y.amin(dim=0),  # noqa: E731
                       minaot.maximum(x, y), minaot.minimum(y, x), x.clamp(-1.0, 1.0))
    got = NumbaProgram(prim_graph(fn, minaot.from_numpy(x), minaot.from_numpy(y)))(
        minaot.from_numpy(x), minaot.from_numpy(y))
    want = [x.max(1), x.min(1), x.max(0), y.min(0), np.maximum(x, y), np.minimum(y, x),
            np.clip(x, -1, 1)]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w.astype(dtype))


def test_max_reduction_is_vector_code():
    """arith.maximumf is LLVM's llvm.maximum: the row max vectorizes as a reduction."""
    import numba
    prog = run_both(lambda x: x.amax(dim=1), t(256, 512))
    (k,) = prog.kernels.values()
    assert "maximumf(" in k.source
    opts = {a: b for a, b in k.fn.targetoptions.items() if a not in ("cache", "nopython")}
    fresh = numba.njit(**opts)(k.fn.py_func)       # a cached kernel has no LLVM IR to show
    sig = k.fn.signatures[0]
    fresh.compile(sig)
    assert "llvm.vector.reduce.fmaximum" in fresh.inspect_llvm(sig)


def test_print_kernels(monkeypatch, capsys):
    monkeypatch.setenv("MINAOT_PRINT_KERNELS", "1")
    run_both(lambda x: x.exp() + 1.0, t(5))
    out = capsys.readouterr().out
    assert "@njit(parallel=False" in out and "for i0 in range(5):" in out


def test_large_kernels_run_the_outer_loop_in_parallel():
    prog = run_both(lambda x: x * 2.0 + 1.0, t(256, 256))
    (k,) = prog.kernels.values()
    assert "@njit(parallel=True" in k.source and "for i0 in prange(256):" in k.source


def test_compile_backend_numba_inference_and_training():
    x = minaot.randn(8, 5, requires_grad=True)
    w = minaot.randn(5, 3, requires_grad=True)

    def f(x, w):
        return F.gelu(x @ w).sum(dim=1).mean()

    cf = minaot.compile(f, backend="numba")
    y = cf(x, w)
    y.backward()
    gx, gw = x.grad.numpy().copy(), w.grad.numpy().copy()
    x.grad = w.grad = None
    f(x, w).backward()
    np.testing.assert_allclose(y.detach().numpy(), f(x, w).detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(gx, x.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gw, w.grad.numpy(), rtol=1e-4, atol=1e-5)
    with minaot.no_grad():
        np.testing.assert_allclose(cf(x, w).numpy(), f(x, w).numpy(), rtol=1e-5)


def test_column_reduction_reads_rows_in_chunks():
    x, y = t(64, 48), t(48)
    prog = run_both(lambda x, y: ((x * y).sum(dim=0) * 2.0, x.amax(dim=0)), x, y, rtol=1e-4, atol=1e-4)
    (k,) = prog.kernels.values()
    text = str(k.loop)
    assert text.count("memref.alloc") == 2       # one partial buffer per reduction
    assert "in0[v" in k.source and "in0[i0" not in k.source   # rows indexed by chunk + row


def test_loop_invariant_values_are_computed_outside_inner_loops():
    # the row scale (N, 1) and the column vector (M,) are loaded where their indices are known
    prog = run_both(lambda x, s, b: (x * s + b).sum(dim=1), t(40, 50), t(40, 1), t(50))
    (k,) = prog.kernels.values()
    lines = k.source.splitlines()
    outer = next(i for i, l in enumerate(lines) if "for i0 in range(40)" in l)
    inner = next(i for i, l in enumerate(lines) if "in range(50)" in l)
    load_s = next(i for i, l in enumerate(lines) if "in1[" in l)
    assert outer < load_s < inner


def test_column_reduction_with_a_full_domain_output_streams_rows():
    # a GELU backward with its bias gradient: the gradient is stored, its column sum reduced
    def f(g, h):
        d = g * (h.tanh() + 1.0)
        return d, d.sum(dim=0)
    prog = run_both(f, t(64, 48), t(64, 48), rtol=1e-4, atol=1e-4)
    (k,) = prog.kernels.values()
    assert "memref.alloc" in str(k.loop)
    assert k.source.count("np.tanh(") + k.source.count("tanh") >= 1
    assert "in0[i0" not in k.source           # rows come from the chunk loop, not a column walk


def test_weight_gradient_comes_back_in_the_parameters_layout():
    x = minaot.randn(16, 8)
    w = minaot.randn(4, 8, requires_grad=True)        # nn.Linear's layout: (out, in)
    graphs = []

    def capture(g, ex):
        graphs.append(g)
        return minaot.numba_compiler(g, ex)

    f = minaot.aot_function(lambda x, w: (x @ w.t()).tanh().sum(), fw_compiler=capture,
                            bw_compiler=capture)
    f(x, w).backward()
    bw = graphs[1]
    for op in bw.ops:       # transpose(a @ b) was rewritten to b^T @ a^T
        if op.name == "prim.transpose":
            assert op.operands[0].defining_op is None or op.operands[0].defining_op.name != "prim.matmul"
    assert w.grad.is_contiguous()
    want = (1 - np.tanh(x.numpy() @ w.detach().numpy().T) ** 2).T @ x.numpy()
    np.testing.assert_allclose(w.grad.numpy(), want, rtol=1e-4, atol=1e-4)


def test_kernels_run_as_plain_python_with_numba_jit_disabled(tmp_path):
    """NUMBA_DISABLE_JIT=1 (to step through a kernel in a debugger) runs the generated
    source as Python: the approximate-math bit casts and the NaN-propagating max have
    pure-Python stand-ins, and the results equal eager."""
    import subprocess
    import sys
    code = (
        "import minaot, numpy as np\n"
        "fn = lambda x: (x * 2).tanh().exp().softmax(-1) + x.amax(-1, keepdim=True)\n"
        "x = minaot.randn(4, 8)\n"
        "got = minaot.compile(fn, backend='numba')(x).numpy()\n"
        "want = fn(x).numpy()\n"
        "assert np.allclose(got, want, rtol=1e-5, atol=1e-6), (got, want)\n"
        "x[0, 3] = float('nan')\n"
        "got = minaot.compile(fn, backend='numba')(x).numpy()\n"
        "assert np.isnan(got[0]).all() and not np.isnan(got[1:]).any()\n"
        "print('ok')\n")
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", MINAOT_CACHE_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
