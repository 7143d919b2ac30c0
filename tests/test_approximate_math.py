"""approximate-math: the float32 approximations against numpy, over the whole float32 range.

Each approximation is checked at the IR level (one-op loop functions, rewritten
by the pass, evaluated op by op with ``eval_scalar_ops``) on 2**22 inputs
spread over every exponent, dense windows around the places where the code
switches formula, and the special values; the bound is the one the pass's
docstring states (measured there on all 2**32 inputs).  Then through Numba:
compiled functions equal numpy, and float32 kernels call no libm.
"""

import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import minaot
import minaot.dialects.loop  # noqa: F401  (registers scf and memref)
import minaot.nn.functional as F
from minaot.dialects.scalar import EVAL, eval_scalar_ops
from minaot.ir import PassManager, parse, verify
from minaot.passes import approximate_math as am

pytestmark = pytest.mark.codegen

FUNCS = ("exp", "log", "tanh", "erf")


def loop_fn(func, dtype="f32"):
    """@k(in, out): out[i] = math.<func>(in[i]) as a parallel loop."""
    return parse(f"""func.func @k(%0: memref<8x{dtype}>, %1: memref<8x{dtype}>) -> () {{
  scf.parallel {{lower = 0, upper = 8}} ({{
  ^bb0(%2: index):
    %3 = memref.load %0, %2 : (memref<8x{dtype}>, index) -> {dtype}
    %4 = math.{func} %3 : ({dtype}) -> {dtype}
    memref.store %4, %1, %2 : ({dtype}, memref<8x{dtype}>, index) -> ()
    scf.yield : () -> ()
  }}) : () -> ()
  func.return
}}""")


def approximated(func):
    """The pass applied to a one-op loop function, as a numpy function of a float32 array."""
    fn = loop_fn(func)
    am.approximate_math(fn)
    verify(fn)
    names = {op.name for op in fn.walk()}
    assert f"math.{func}" not in names
    assert names <= {"func.return", "scf.parallel", "scf.yield", "memref.load", "memref.store",
                     "math.absf", "math.floor", "math.round", "math.copysign"} | {
        n for n in EVAL if n.startswith("arith.")}, names
    load = next(op for op in fn.walk() if op.name == "memref.load")
    store = next(op for op in fn.walk() if op.name == "memref.store")
    ops = [op for op in fn.walk() if op.name in EVAL]
    return lambda x: eval_scalar_ops(ops, {load.result: x})[store.operands[0]]


def ulps(y, ref):
    """How many float32 values lie between y and ref (+0 and -0 count as one).

    NaN matches NaN only."""
    def ordinal(a):
        i = np.asarray(a, np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)
    d = np.abs(ordinal(y) - ordinal(ref))
    ny, nr = np.isnan(y), np.isnan(ref)
    return np.where(ny | nr, np.where(ny & nr, 0, 2**40), d)


def docstring_bounds():
    """{func: (max ulps vs numpy or None, max ulps vs exact)}, read from the pass docstring."""
    bounds = {}
    for line in am.__doc__.splitlines():
        words = line.split()
        if words and words[0] in FUNCS and words[-1].isdigit():
            bounds[words[0]] = (int(words[1]) if words[1].isdigit() else None, int(words[-1]))
    assert set(bounds) == set(FUNCS), bounds
    return bounds


SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 2.0**-149, -(2.0**-149),
                     2.0**-126, 3.4028235e38, -3.4028235e38, 88.72283, 88.72284, -87.33655,
                     -103.972, -103.973, 9.1, 3.92, 4.0, 0.625, 2.0**-24, -(2.0**-24)], np.float32)


def window(center, n=4096):
    """n consecutive float32 values around center (and around -center)."""
    b = np.array([center], np.float32).view(np.int32)[0]
    bits = np.arange(b - n // 2, b + n // 2, dtype=np.int64).astype(np.uint32)
    x = bits.view(np.float32)
    return np.concatenate([x, -x])


def sample():
    """2**22 bit patterns spread over the whole range, windows at the formula switches, specials."""
    spread = (np.arange(2**22, dtype=np.uint64) * 1024 + 517).astype(np.uint32).view(np.float32)
    centers = [1.0, 0.5, 2.0, math.sqrt(2), math.sqrt(0.5), 0.625, 9.1, 4.0, 2.5, 88.72283,
               87.33655, 103.972, 2.0**-126, 2.0**-149 * 2048, 0.3466, 1e-4]
    return np.concatenate([spread, SPECIALS, *[window(c) for c in centers]])


X = sample()


def references(func, x):
    """(numpy's float32 result or None, the exact result rounded to float32)."""
    with np.errstate(all="ignore"):
        if func == "erf":
            exact = np.where(np.isnan(x), x, np.sign(x)).astype(np.float32)
            exact[x == 0] = x[x == 0]
            mid = np.isfinite(x) & (np.abs(x) < 6)
            exact[mid] = [math.erf(v) for v in x[mid].astype(np.float64).tolist()]
            return None, exact
        return getattr(np, func)(x), getattr(np, func)(x.astype(np.float64)).astype(np.float32)


@pytest.mark.parametrize("func", FUNCS)
def test_accuracy_over_the_float32_range(func):
    vs_numpy, vs_exact = docstring_bounds()[func]
    got = approximated(func)(X)
    assert got.dtype == np.float32
    want_numpy, want = references(func, X)
    err = ulps(got, want)
    assert err.max() <= vs_exact, (func, X[np.argmax(err)], err.max())
    if want_numpy is not None:
        err = ulps(got, want_numpy)
        assert err.max() <= vs_numpy, (func, X[np.argmax(err)], err.max())
    zeros = (got == 0) & (want == 0)         # the sign of a zero result is kept, as in numpy
    assert (np.signbit(got[zeros]) == np.signbit(want[zeros])).all()


def test_special_values_exactly():
    f = {name: approximated(name) for name in FUNCS}
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -1.0, -np.float32(2.0**-149)], np.float32)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(f["exp"](x[:5]), np.exp(x[:5]))
        np.testing.assert_array_equal(f["log"](x), np.log(x))        # -inf, -inf, inf, nan, nan ...
        np.testing.assert_array_equal(f["tanh"](x[:5]), np.tanh(x[:5]))
    np.testing.assert_array_equal(f["erf"](x[:5]), np.array([0, -0.0, 1, -1, np.nan], np.float32))
    for name in ("tanh", "erf"):
        assert np.signbit(f[name](np.float32([-0.0]))[0])
    # overflow, underflow and denormal results of exp, at the exact thresholds numpy has
    edge = np.array([88.72283, 88.722839, -87.33654, -103.27892, -103.97208, -103.97209],
                    np.float32)
    with np.errstate(over="ignore"):
        got, want = f["exp"](edge), np.exp(edge.astype(np.float64)).astype(np.float32)
    assert (np.isinf(got) == np.isinf(want)).all() and ((got == 0) == (want == 0)).all()
    assert ulps(got, want).max() <= 1
    # log of every denormal power of two is exact up to one rounding
    tiny = np.float32(2.0) ** -np.arange(127, 150, dtype=np.float32)
    assert ulps(f["log"](tiny), np.log(tiny.astype(np.float64)).astype(np.float32)).max() <= 1


def test_tanh_is_a_rational_function_bounded_by_one():
    """tanh is one rational function (no exp, no branch to pick), clamped so that it never
    leaves [-1, 1]: 1 - tanh(x)**2 (its derivative) is never negative."""
    fn = loop_fn("tanh")
    am.approximate_math(fn)
    names = [op.name for op in fn.walk()]
    assert names.count("arith.divf") == 1 and "arith.bitcast" not in names
    assert sum(n.startswith("arith.") and n != "arith.constant" for n in names) <= 27
    y = approximated("tanh")(X)
    assert np.nanmax(np.abs(y)) == 1.0
    big = np.float32([9.0109, 9.02, 20.0, 3e38])
    np.testing.assert_array_equal(approximated("tanh")(np.concatenate([big, -big])),
                                  np.float32([1] * 4 + [-1] * 4))


def test_float64_and_other_ops_are_left_alone():
    for func in FUNCS:
        fn = loop_fn(func, "f64")
        text = str(fn)
        assert am.approximate_math(fn) == {}
        assert str(fn) == text
    fn = loop_fn("sin")
    am.approximate_math(fn)
    assert "math.sin" in str(fn)


def test_registered_pass_counts_and_prints_parseable_ir():
    fn = loop_fn("tanh")
    pm = PassManager(["approximate-math"], verify_each=True)
    pm.run(fn)
    assert pm.stats == {"approximate-math.tanh": 1}
    text = str(fn)
    assert "math.tanh" not in text and "arith.divf" in text
    assert str(parse(text)) == text
    fn = loop_fn("exp")                     # integer (i32) ops and constants print and parse too
    am.approximate_math(fn)
    assert "arith.shli" in str(fn) and str(parse(str(fn))) == str(fn)
    # constants are hoisted to the top of the function, one per value
    consts = [op for op in fn.walk() if op.name == "arith.constant"]
    assert all(op.parent is fn.body for op in consts)
    keys = [(repr(op.attributes["value"]), op.attributes["type"]) for op in consts]
    assert len(keys) == len(set(keys))


# --- through Numba -------------------------------------------------------------------------

R = np.random.default_rng(0)


def compiled(fn, *arrays):
    """Run fn through backend "numba"; the result and the kernels' sources."""
    f = minaot.compile(fn, backend="numba")
    out = f(*[minaot.from_numpy(a) for a in arrays])
    prog = list(f.cache.values())[0].compiled
    return out.numpy(), [k.source for k in prog.kernels.values()]


LIBM = re.compile(r"np\.(tanh|exp|log)\(|math\.erf\(")


@pytest.mark.parametrize("func", FUNCS)
def test_numba_kernels_equal_numpy_over_the_range(func):
    """The compiled kernel (FMA contraction, fast-math) stays within one ulp of the IR's bound."""
    x = X[::4]
    got, sources = compiled(getattr(minaot, func), x)
    assert not any(LIBM.search(s) for s in sources), sources
    want_numpy, want = references(func, x)
    bound_numpy, bound = docstring_bounds()[func]
    assert ulps(got, want).max() <= bound + 1
    if want_numpy is not None:
        assert ulps(got, want_numpy).max() <= bound_numpy + 1


f32 = np.float32


def erf32(x):
    return np.array([math.erf(v) for v in x.astype(np.float64).tolist()], np.float32)


def softmax32(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def log_softmax32(x):
    s = x - x.max(axis=1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def gelu_tanh32(x, w, b):
    z = x * w + b
    inner = f32(math.sqrt(2 / math.pi)) * (z + f32(0.044715) * z**3)
    return f32(0.5) * z * (f32(1) + np.tanh(inner))


# name: (minaot function, numpy float32 eager, the magnitude the rounding errors scale with, inputs)
CASES = {
    "gelu_tanh": (lambda x, w, b: F.gelu(x * w + b, approximate="tanh"), gelu_tanh32,
                  lambda x, w, b: np.abs(x * w) + np.abs(b),       # x*w + b may cancel
                  [R.standard_normal(4096) * 3, R.standard_normal(4096), R.standard_normal(4096)]),
    "gelu_erf": (lambda x: F.gelu(x),
                 lambda x: f32(0.5) * x * (f32(1) + erf32(x / f32(math.sqrt(2)))),
                 np.abs, [R.standard_normal(4096) * 3]),
    "softmax": (lambda x: minaot.softmax(x, dim=1), softmax32, lambda x: softmax32(x),
                [R.standard_normal((64, 100)) * 5]),
    "log_softmax": (lambda x: minaot.log_softmax(x, dim=1), log_softmax32,
                    lambda x: np.abs(x - x.max(axis=1, keepdims=True)) + 1,
                    [R.standard_normal((64, 100)) * 5]),
    "sigmoid": (lambda x: minaot.sigmoid(x), lambda x: f32(1) / (f32(1) + np.exp(-x)),
                lambda x: f32(1) / (f32(1) + np.exp(-x)), [R.standard_normal(4096) * 20]),
    "exp": (lambda x: minaot.exp(x), np.exp, np.exp, [R.standard_normal(4096) * 20]),
    "log": (lambda x: minaot.log(x), np.log, lambda x: np.abs(np.log(x)),
            [np.exp(R.standard_normal(4096) * 20)]),
}


# a few float32 ulps; softmax and log_softmax: each exp may differ by 3 ulps from numpy's, and
# the kernel adds a row in another order than numpy's pairwise sum
ULPS = {"softmax": 16, "log_softmax": 16}


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_float32_functions_equal_numpy(name):
    fn, ref32, scale, arrays = CASES[name]
    arrays = [a.astype(np.float32) for a in arrays]
    got, sources = compiled(fn, *arrays)
    assert got.dtype == np.float32
    assert sources and not any(LIBM.search(s) for s in sources), sources
    with np.errstate(over="ignore", invalid="ignore"):
        want, tol = ref32(*arrays), ULPS.get(name, 8) * 2.0**-24 * scale(*arrays)
        ok = (got == want) | (np.abs(got.astype(np.float64) - want) <= tol)
    assert ok.all(), (name, arrays[0][~ok][:4], got[~ok][:4], want[~ok][:4])


def test_float64_kernels_keep_libm():
    x = R.standard_normal(64)
    got, sources = compiled(lambda x: minaot.tanh(x).exp(), x)
    assert any("np.tanh(" in s and "np.exp(" in s for s in sources), sources
    np.testing.assert_allclose(got, np.exp(np.tanh(x)), rtol=1e-15)


CACHE_SCRIPT = """
import numpy as np, minaot
f = minaot.compile(lambda x: minaot.exp(x) + minaot.log(x), backend="numba")
x = np.linspace(0.5, 2, 1000, dtype=np.float32)
assert np.allclose(f(minaot.from_numpy(x)).numpy(), np.exp(x) + np.log(x), rtol=1e-6)
k = minaot.counters["kernels"]
print(k["numba_compiles"], k["numba_cache_hits"])
"""


def test_kernels_with_bitcasts_load_from_cache_in_a_new_process(tmp_path):
    env = dict(os.environ, MINAOT_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", CACHE_SCRIPT], env=env, capture_output=True,
                           text=True, timeout=120) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    (compiles1, hits1), (compiles2, hits2) = [map(int, r.stdout.split()) for r in runs]
    assert compiles1 >= 1 and hits1 == 0
    assert compiles2 == 0 and hits2 == compiles1
    sources = [p.read_text() for p in tmp_path.glob("*.py")]
    assert any("from minaot.kernels.bits import" in s for s in sources)


def test_exp_keeps_its_accuracy_inside_a_reduction_loop():
    """exp(x - max) computed in a row-sum loop (softmax's), where LLVM has the most freedom
    to reassociate: within 2 ulps of the exact exp of the float32 x - max, down to the
    denormal results.  Guards the Cody-Waite reduction against fast-math reassociation."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((256, 512)) * 30).astype(np.float32)
    x[:, 0] = 10.0                                   # every row's max is 10: x - 10 in [-150, 0]
    f = minaot.compile(lambda x: (lambda e: (e, e.sum(dim=1)))(
        minaot.exp(x - x.amax(dim=1, keepdim=True))), backend="numba")
    e, _ = f(minaot.from_numpy(x))
    d = x - x.max(axis=1, keepdims=True)
    want = np.exp(d.astype(np.float64)).astype(np.float32)
    err = ulps(e.numpy(), want)
    assert err.max() <= 2, (d[err == err.max()][:3], err.max())
