"""approximate-math: float32 ``tanh``, ``exp``, ``log``, ``erf`` as arithmetic that vectorizes.

The idea.  In a Numba kernel, ``np.exp(x)`` on one float32 is a call to the
scalar libm function: LLVM cannot turn a call into vector code (there is no
SVML here), so a fused loop that calls it runs one element at a time, slower
than numpy's own SIMD ``tanh``.  A polynomial is only multiplies and adds, and
LLVM vectorizes those.  So this pass rewrites each float32 ``math.exp``,
``math.log``, ``math.tanh`` and ``math.erf`` of a loop function into ``arith``
ops (plus ``math.round``/``math.floor``/``math.absf``/``math.copysign``, which
compile to single vector instructions), the way MLIR's
``PolynomialApproximation.cpp`` does.  ``sigmoid`` (``1 / (1 + exp(-x))``),
gelu (``tanh`` or ``erf``), softmax and log_softmax (``exp``, ``log``) are
built from these and get faster without being named here.  float64 ops keep
libm: the pass changes nothing whose type is not ``f32``.

The approximations.  Each one reduces the argument to a small interval where
a short polynomial is accurate to about 1e-9 (the coefficients are minimax
fits, in float64, of the function on that interval), then undoes the
reduction exactly:

* ``exp(x) = 2**n * exp(r)`` with ``n = round(x / ln2)`` and
  ``r = x - n*ln2`` in ``[-ln2/2, ln2/2]``; ``exp(r)`` is a degree-6
  polynomial.  ``r`` is computed with the classic two-constant (Cody-Waite)
  split, ``(x - n*LN2_HI) - n*LN2_LO``, where ``LN2_HI`` has 9 significant
  bits, so that ``n*LN2_HI`` and the first difference are exact.  The
  kernels' fast-math reassociation would undo the split, rewriting it as
  ``x - (n*LN2_HI + n*LN2_LO)`` and so rounding ``n*ln2`` (measured: 15 ulps
  inside a softmax kernel); ``min(x - n*LN2_HI, 1)``, a no-op here, is an op
  LLVM cannot look through, so the first difference is computed first.
  ``2**n`` is applied in two halves (``_ldexp``, integer ops on ``i32``): one
  is added to the exponent field of ``p``, the other is a multiply by the
  float whose bits are ``(n + 127) << 23``.  So results near overflow stay
  finite, beyond it they are inf, and results below ``2**-126`` are the
  correctly rounded denormal (or 0), as numpy gives.
* ``log(x) = k*ln2 + log1p(f)`` with ``x = 2**k * (1 + f)`` and ``1 + f`` in
  ``[sqrt(1/2), sqrt(2)]``; ``k`` is read from the float's bits (exponent
  field, rounded at ``sqrt 2``), ``1 + f = x * 2**-k`` exactly, and
  ``log1p(f) = f + f**2 * Q(f)`` with ``Q`` of degree 8.  Denormal inputs are
  first multiplied by ``2**23`` (exact), so they are handled like any other.
* ``tanh(x) = x * P(x**2) / Q(x**2)``, ``P`` and ``Q`` of degree 4 with
  positive coefficients, a minimax fit of ``tanh(x)/x`` on ``[0, 9.02]``
  (relative error 2.1e-8 before the coefficients are rounded to float32);
  ``x`` is first clamped to ``[-9.02, 9.02]`` (tanh rounds to 1 from 9.01
  on) and the result to ``[-1, 1]``.  27 ops, one divide, no ``exp``, no
  second formula to select from; once LLVM has contracted the multiply-adds
  and made each clamp one ``min``/``max``, 15 vector instructions.  NaN
  passes through every op (each clamp is
  ``c if x > c else x``, false on NaN), ``-0`` keeps its sign.  The price is
  accuracy near 1, where rounding ``P`` and ``Q`` in float32 costs a few ulps
  of the result (the table below); the earlier form,
  ``1 - 2/(exp(2|x|) + 1)`` beside an odd polynomial for small ``|x|``, was
  within 1 ulp but took 49 ops and made a fused ``gelu`` compute-bound
  (3.0 ms, against 1.3 ms for the same loop with this rational, which only
  waits for memory).
* ``erf(x)``: for ``|x| < 1``, ``x + x * P(x**2)`` (``P`` of degree 6,
  without its leading 1, so the largest term is exact); for ``|x| >= 1``,
  ``1 - E(|x| - 2.5)`` where ``E`` (degree 15) fits ``erfc`` on ``[1, 4]``,
  and exactly 1 from 3.919206 on (where erf rounds to 1); the sign is copied
  from ``x``.

Special values follow numpy: ``exp(-inf) = 0``, ``exp(inf) = inf``;
``log(0) = log(-0) = -inf``, ``log(x < 0) = NaN``, ``log(inf) = inf``;
``tanh(+-inf) = +-1``, ``erf(+-inf) = +-1``; ``tanh``/``erf`` keep the sign
of ``-0``; NaN gives NaN.  Each NaN is routed around the casts (a NaN
converted to an integer is undefined in LLVM) and restored by a last select.

Measured accuracy, over every one of the 2**32 float32 inputs, in ulps (the
number of float32 values between the result and the reference).  The
rewritten ops were compiled by Numba *without* fast-math, which gives
results bit-identical to evaluating them op by op with their numpy meaning
(``eval_scalar_ops``; checked on 2**24 inputs), so this is the IR's own
accuracy.  numpy's float32 ``exp``/``log``/``tanh`` (SIMD code) are
themselves up to 2-3 ulps off, hence the larger first column:

=====  ==========================  ==========================================
op     max error vs numpy float32  max error vs the exact result rounded to f32
=====  ==========================  ==========================================
exp    3                           1
log    4                           1
tanh   6                           6
erf    (reference: math.erf)       1
=====  ==========================  ==========================================

tests/test_approximate_math.py asserts this table on 2**22 inputs spread
over every exponent plus the special values.  In the generated kernels LLVM
also contracts multiply-adds into FMAs and reassociates, which changes the
last bit here and there: compiled with the kernels' flags, on that sample,
the largest errors vs the exact result are 1 ulp (exp, log, erf) and 5 ulps
(tanh); vs numpy 2 (exp), 3 (log) and 4 (tanh).

Cost and effect: 36 (exp), 55 (log), 27 (tanh) and 53 (erf) scalar ops,
each at most one vector instruction per 8 elements (fewer once LLVM contracts
multiply-adds into FMAs), against one libm call per element.  A fused
``gelu(x*w + b)`` (tanh form) on 2**22 float32 took 36 ms with libm's tanh,
3.0 ms with the earlier exp-based tanh (compute-bound), and as long as the
loop without any tanh with the rational one (memory-bound; numpy eager:
21-26 ms).
"""

from __future__ import annotations

from ..dialects import scalar as _scalar  # noqa: F401  (registers arith and math)
from ..ir import Builder, Function, ScalarType
from ..ir.pass_manager import Pass, register_pass

LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453
LN2_HI, LN2_LO = 0.693359375, -2.12194440e-4      # LN2_HI * k is exact for |k| < 2**15

# Polynomial coefficients, lowest degree first (float32 values).
EXP_R = [1.0, 1.0, 4.9999994e-01, 1.666652e-01, 4.1668393e-02, 8.368781e-03, 1.3814467e-03]
LOG1P_Q = [-5.e-01, 3.333333e-01, -2.5000823e-01, 2.0001234e-01, -1.6623299e-01,
           1.4201552e-01, -1.3160583e-01, 1.2763333e-01, -7.635661e-02]
TANH_P = [1.0, 0.13379723, 0.00349404, 2.0583568e-05, 1.3319183e-08]
TANH_Q = [1.0, 0.4671304, 0.025871094, 0.00032831015, 7.7620666e-07]
TANH_CLAMP = 9.02          # tanh(x) rounds to 1 in float32 from 9.0109 on
ERF_P = [1.2837917e-01, -3.7612626e-01, 1.1283583e-01, -2.6853722e-02, 5.188136e-03,
         -8.008343e-04, 7.847212e-05]
ERFC_E = [4.069523e-04, -2.1782783e-03, 5.445691e-03, -8.350216e-03, 8.622586e-03,
          -6.116564e-03, 2.7976083e-03, -5.4459315e-04, -2.5880395e-04, 2.5349896e-04,
          -8.1048616e-05, -7.805813e-06, 1.5701336e-05, -3.4463303e-06, -8.877143e-07,
          3.4916823e-07]
ERF_IS_ONE = 3.919206       # the least float32 whose erf rounds to 1


class _Emit:
    """Writes scalar ops just before ``op``; constants go once to the top of the function."""

    def __init__(self, op, consts):
        self.b = Builder.before(op, loc=op.loc)
        self.consts = consts

    def op(self, name, operands, result="f32", **attrs):
        return self.b.create(name, list(operands), [ScalarType(result)], attrs or None).result

    def c(self, value, type="f32"):
        return self.consts.get(float(value), type)

    def ci(self, value, type="i32"):
        return self.consts.get(int(value), type)

    def add(self, a, b): return self.op("arith.addf", [a, b], str(a.type))
    def sub(self, a, b): return self.op("arith.subf", [a, b], str(a.type))
    def mul(self, a, b): return self.op("arith.mulf", [a, b], str(a.type))
    def div(self, a, b): return self.op("arith.divf", [a, b])
    def neg(self, a): return self.op("arith.negf", [a])
    def min(self, a, b): return self.op("arith.minimumf", [a, b])
    def abs(self, a): return self.op("math.absf", [a])
    def floor(self, a): return self.op("math.floor", [a])
    def round(self, a): return self.op("math.round", [a])
    def copysign(self, a, b): return self.op("math.copysign", [a, b])
    def cast(self, a, type): return self.op("arith.cast", [a], type, type=type)
    def bitcast(self, a, type): return self.op("arith.bitcast", [a], type, type=type)
    def cmp(self, pred, a, b): return self.op("arith.cmpf", [a, b], "i1", predicate=pred)
    def select(self, cond, a, b): return self.op("arith.select", [cond, a, b], str(a.type))

    def isnan(self, x):
        return self.cmp("une", x, x)

    def horner(self, t, coeffs):
        """coeffs[0] + coeffs[1]*t + coeffs[2]*t**2 + ..., by Horner's rule."""
        y = self.c(coeffs[-1])
        for a in reversed(coeffs[:-1]):
            y = self.add(self.mul(y, t), self.c(a))
        return y


class _Constants:
    """arith.constant ops at the top of the function, one per (value, type)."""

    def __init__(self, fn: Function):
        self.body = fn.body
        self.last = None
        self.values = {}
        for op in fn.body.ops:
            if op.name == "arith.constant" and isinstance(op.attributes["value"], float):
                key = (repr(op.attributes["value"]), op.attributes["type"])
                self.values.setdefault(key, op.result)

    def get(self, value, type):
        key = (repr(value), type)
        if key not in self.values:
            first = self.last is None
            b = Builder.before(self.body.ops[0]) if first else Builder.after(self.last)
            self.last = b.create("arith.constant", [], [ScalarType(type)],
                                 {"value": value, "type": type})
            self.values[key] = self.last.result
        return self.values[key]


# --- building blocks -------------------------------------------------------------------

def _int(e, name, a, b):
    return e.op(name, [a, b], "i32")


def _ldexp(e, y, k):
    """y * 2**k for a normal y and an i32 k in [-252, 254], rounded once.

    Half of k (``a = k >> 1``) is added to y's exponent field as an integer
    (exact while y * 2**a stays normal, true for every use here), the other
    half is a multiply by ``2**(k - a)``, the float whose bits are
    ``(k - a + 127) << 23``: the one rounding, so denormal results are
    correctly rounded.  Two multiplies would not do: fast-math reassociation
    turns ``(y * 2**a) * 2**b`` into ``y * (2**a * 2**b)``, and ``2**128``
    overflows (measured: exp(88.5) became inf)."""
    a = _int(e, "arith.shrsi", k, e.ci(1))
    bits = _int(e, "arith.addi", e.bitcast(y, "i32"), _int(e, "arith.shli", a, e.ci(23)))
    pow2 = _int(e, "arith.shli", _int(e, "arith.addi", _int(e, "arith.subi", k, a), e.ci(127)),
                e.ci(23))
    return e.mul(e.bitcast(bits, "f32"), e.bitcast(pow2, "f32"))


# --- the four functions --------------------------------------------------------------------

def exp_f32(e, x):
    lo, hi = e.c(-104.0), e.c(89.0)     # exp(-104) rounds to 0; exp(89) overflows to inf
    xc = e.select(e.cmp("ogt", x, lo), x, lo)       # -inf -> -104, NaN -> -104 (restored below)
    xc = e.select(e.cmp("olt", xc, hi), xc, hi)
    n = e.round(e.mul(xc, e.c(LOG2E)))
    k = e.cast(n, "i32")
    # r = x - n*ln2 in two steps (Cody-Waite): n*LN2_HI and the first difference are exact.
    # Fast-math reassociation would rewrite (x - n*HI) - n*LO as x - (n*HI + n*LO), rounding
    # n*ln2 (measured: 15 ulps inside a softmax kernel); min(r1, 1), a no-op here (|r1| < 0.4),
    # is an op LLVM must keep, so the first difference is computed first
    r1 = e.min(e.sub(xc, e.mul(n, e.c(LN2_HI))), e.c(1.0))
    r = e.sub(r1, e.mul(n, e.c(LN2_LO)))
    return e.select(e.isnan(x), x, _ldexp(e, e.horner(r, EXP_R), k))


def log_f32(e, x):
    a = e.abs(x)                        # x < 0 gives NaN at the end; |x| keeps the casts in range
    tiny = e.cmp("olt", a, e.c(2.0 ** -126))
    s = e.select(tiny, e.mul(a, e.c(2.0 ** 23)), a)  # denormals scaled up exactly
    # the bits of s, read as a number, are about 2**23 * (log2(s) + 127): round the exponent up
    # where the mantissa passes sqrt(2), so that m = s * 2**-k lies in [sqrt(1/2), sqrt(2)]
    bits = e.cast(e.bitcast(s, "i32"), "f32")
    kb = e.floor(e.sub(e.mul(bits, e.c(2.0 ** -23)), e.c(126.41421356)))
    f = e.sub(_ldexp(e, s, e.cast(e.neg(kb), "i32")), e.c(1.0))
    log1p = e.add(f, e.mul(e.mul(f, f), e.horner(f, LOG1P_Q)))
    k = e.sub(kb, e.select(tiny, e.c(23.0), e.c(0.0)))
    y = e.add(e.mul(k, e.c(LN2_HI)), e.add(e.mul(k, e.c(LN2_LO)), log1p))
    y = e.select(e.cmp("oeq", x, e.c(0.0)), e.c(float("-inf")), y)
    y = e.select(e.cmp("olt", x, e.c(0.0)), e.c(float("nan")), y)
    y = e.select(e.cmp("oeq", x, e.c(float("inf"))), x, y)
    return e.select(e.isnan(x), x, y)


def tanh_f32(e, x):
    c, one = e.c(TANH_CLAMP), e.c(1.0)
    a = e.select(e.cmp("ogt", x, c), c, x)             # NaN: ogt is false, x passes on
    a = e.select(e.cmp("olt", a, e.c(-TANH_CLAMP)), e.c(-TANH_CLAMP), a)
    u = e.mul(a, a)
    y = e.div(e.mul(a, e.horner(u, TANH_P)), e.horner(u, TANH_Q))
    y = e.select(e.cmp("ogt", y, one), one, y)         # rounding may pass 1 by an ulp or two
    return e.select(e.cmp("olt", y, e.c(-1.0)), e.c(-1.0), y)


def erf_f32(e, x):
    a = e.abs(x)
    small = e.add(a, e.mul(a, e.horner(e.mul(a, a), ERF_P)))
    big = e.sub(e.c(1.0), e.horner(e.sub(a, e.c(2.5)), ERFC_E))
    big = e.select(e.cmp("oge", a, e.c(ERF_IS_ONE)), e.c(1.0), big)   # NaN stays NaN
    return e.copysign(e.select(e.cmp("olt", a, e.c(1.0)), small, big), x)


APPROXIMATIONS = {"math.exp": exp_f32, "math.log": log_f32, "math.tanh": tanh_f32,
                  "math.erf": erf_f32}


def approximate_math(fn: Function) -> dict:
    """Rewrite every f32 math.exp/log/tanh/erf of ``fn`` in place; returns counts by op name."""
    consts = _Constants(fn)
    counts = {}
    for op in list(fn.walk()):
        rule = APPROXIMATIONS.get(op.name)
        if rule is None or str(op.result.type) != "f32":
            continue
        new = rule(_Emit(op, consts), op.operands[0])
        op.result.replace_all_uses_with(new)
        op.erase()
        counts[op.name] = counts.get(op.name, 0) + 1
    return counts


class ApproximateMath(Pass):
    name = "approximate-math"

    def run(self, fn: Function) -> None:
        for name, n in approximate_math(fn).items():
            self.count(name.split(".")[1], n)


register_pass(ApproximateMath)
