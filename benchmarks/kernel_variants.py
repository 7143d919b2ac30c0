"""Why slow generated kernels were slow: each one beside a hand-written variant.

``kernels.py --per-kernel`` and ``train_step.py --per-kernel`` show which
generated kernels lose to numpy.  This script takes the loop shape of such a
kernel as the code generator wrote it (``MINAOT_PRINT_KERNELS=1`` prints the
current ones) and changes one thing at a time, so the cost of each cause is a
measured number, not a guess.  Nothing here is minaot code; it is plain Numba
with the flags the generator uses (and minaot.kernels.minmax's ``maximumf``).
All five causes were found this way and have since been fixed in minaot
(approximate-math; commit 772d739; the softmax row schedule); the rows stay as
the record of what each one cost.

1. gelu(x*w+b), tanh form, 2^22 float32: ``np.tanh`` (a libm call per element,
   which LLVM cannot vectorize without SVML) vs a clamped rational tanh
   (plain arithmetic, vectorizes) - what the ``approximate-math`` pass now does.
2. row softmax (4096, 1024), as generated before the change: a max pass whose
   NaN-propagating max was a branch (``m if (m > v or m != m) else v``, which
   LLVM does not vectorize), an exp+sum pass and an exp+divide pass (two exps
   per element); then one exp pass (store exp into the output, then scale in
   place); then also the max as ``llvm.maximum`` (``maximumf``, a vector
   reduction), the loop shape lower-to-loops generates now; and the same loops
   with exp replaced by a multiply (the memory and loop floor).  The exp here
   is libm's, as in all these variants; approximate-math makes the generated
   one cheaper still.
3. GELU(tanh) backward fused with the bias gradient, (512, 1024), the train
   step's ``bw_k5`` as generated before 772d739 (parallel over columns, rows
   inner: every load is a 4 KB stride, the pointwise part computed twice) vs
   row-major (the pointwise part once, parallel over row chunks, partial
   column sums), the schedule lower-to-loops uses since.
4. A BLAS matmul right after a Numba parallel kernel, with Numba's OpenMP
   workers spinning (libgomp's default) and with ``OMP_WAIT_POLICY=PASSIVE``
   (which ``import minaot`` sets since 772d739), each in a new process that
   does not import minaot.
5. The first accumulation of a weight gradient (the autograd engine clones it
   into ``.grad``): before 772d739 the backward returned ``dW`` of a Linear
   layer as a transposed view of a matmul result (strides (4, 4096)), so that
   clone was a transposing copy; the same clone of a C-contiguous gradient.

    .venv/bin/python benchmarks/kernel_variants.py [--quick]
"""

from __future__ import annotations

import os
import subprocess
import sys

import _common as C  # first: sets thread counts before numpy is imported
from _common import np

from numba import njit, prange

if "--interleave-child" not in sys.argv:        # (4)'s child must not import minaot
    from minaot.kernels.minmax import maximumf

FM = {"contract", "reassoc", "nsz", "arcp", "afn"}
F32 = np.float32


# --- 1. gelu: libm tanh vs rational tanh ---------------------------------------------

@njit(parallel=True, fastmath=FM, error_model="numpy")
def gelu_libm(a, b, c, out):
    for i in prange(a.shape[0]):
        y = a[i] * b[i] + c[i]
        out[i] = y * F32(0.5) * (F32(1) + np.tanh(F32(0.7978845608) * (y + F32(0.044715) * y * y * y)))


@njit(inline="always", fastmath=FM)
def tanh_rational(x):
    """Clamp, then an odd 13/6 rational approximation (float32 accuracy)."""
    x = min(max(x, F32(-7.90531110763549805)), F32(7.90531110763549805))
    x2 = x * x
    p = F32(-2.76076847742355e-16)
    p = p * x2 + F32(2.00018790482477e-13)
    p = p * x2 + F32(-8.60467152213735e-11)
    p = p * x2 + F32(5.12229709037114e-08)
    p = p * x2 + F32(1.48572235717979e-05)
    p = p * x2 + F32(6.37261928875436e-04)
    p = p * x2 + F32(4.89352455891786e-03)
    q = F32(1.19825839466702e-06)
    q = q * x2 + F32(1.18534705686654e-04)
    q = q * x2 + F32(2.26843463243900e-03)
    q = q * x2 + F32(4.89352518554385e-03)
    return p * x / q


@njit(parallel=True, fastmath=FM, error_model="numpy")
def gelu_rational(a, b, c, out):
    for i in prange(a.shape[0]):
        y = a[i] * b[i] + c[i]
        out[i] = y * F32(0.5) * (F32(1) + tanh_rational(F32(0.7978845608) * (y + F32(0.044715) * y * y * y)))


# --- 2. softmax: two exps vs one exp vs no exp ---------------------------------------

@njit(parallel=True, fastmath=FM, error_model="numpy")
def softmax_as_generated(x, out):
    for i in prange(x.shape[0]):
        m = F32(-np.inf)
        for j in range(x.shape[1]):
            v = x[i, j]
            m = m if (m > v or m != m) else v
        s = F32(0)
        for j in range(x.shape[1]):
            s += np.exp(x[i, j] - m)
        for j in range(x.shape[1]):
            out[i, j] = np.exp(x[i, j] - m) / s


@njit(parallel=True, fastmath=FM, error_model="numpy")
def softmax_one_exp(x, out):
    for i in prange(x.shape[0]):
        m = F32(-np.inf)
        for j in range(x.shape[1]):
            v = x[i, j]
            m = m if (m > v or m != m) else v
        s = F32(0)
        for j in range(x.shape[1]):
            e = np.exp(x[i, j] - m)
            out[i, j] = e
            s += e
        r = F32(1) / s
        for j in range(x.shape[1]):
            out[i, j] *= r


@njit(parallel=True, fastmath=FM, error_model="numpy")
def softmax_one_exp_vector_max(x, out):
    for i in prange(x.shape[0]):
        m = F32(-np.inf)
        for j in range(x.shape[1]):
            m = maximumf(m, x[i, j])
        s = F32(0)
        for j in range(x.shape[1]):
            e = np.exp(x[i, j] - m)
            out[i, j] = e
            s += e
        for j in range(x.shape[1]):
            out[i, j] = out[i, j] / s


@njit(parallel=True, fastmath=FM, error_model="numpy")
def softmax_no_exp(x, out):
    for i in prange(x.shape[0]):
        m = F32(-np.inf)
        for j in range(x.shape[1]):
            m = maximumf(m, x[i, j])
        s = F32(0)
        for j in range(x.shape[1]):
            e = (x[i, j] - m) * F32(0.5)
            out[i, j] = e
            s += e
        r = F32(1) / s
        for j in range(x.shape[1]):
            out[i, j] *= r


# --- 3. pointwise output + column sum: column walk vs row-major ----------------------

@njit(inline="always", fastmath=FM)
def _gelu_tanh_bwd(a0, a1, a2, a3, s4, s5, s6, a7, a8):
    """The scalar body of the train step's bw_k5, as generated."""
    v28 = a0 * a1 * s4 + a0 * a2 * (F32(1.0) - a3 * a3) * s5
    v29 = a0 * a2 * (F32(1.0) - a3 * a3) * s5 * s6
    v36 = v28 + v29 * a8 + v29 * a7 * a7
    return v36 + v29 * a7 * a7


@njit(parallel=True, fastmath=FM, error_model="numpy")
def colsum_as_generated(in0, in1, in2, in3, in4, in5, in6, in7, in8, out0, out1):
    s4, s5, s6 = in4[()], in5[()], in6[()]
    for j in prange(in0.shape[1]):
        acc = F32(0.0)
        for i in range(in0.shape[0]):
            acc += _gelu_tanh_bwd(in0[i, j], in1[i, j], in2[i, j], in3[i, j], s4, s5, s6,
                                  in7[i, j], in8[i, j])
        out1[0, j] = acc
        for i in range(in0.shape[0]):
            out0[i, j] = _gelu_tanh_bwd(in0[i, j], in1[i, j], in2[i, j], in3[i, j], s4, s5, s6,
                                        in7[i, j], in8[i, j])


@njit(parallel=True, fastmath=FM, error_model="numpy")
def colsum_row_major(in0, in1, in2, in3, in4, in5, in6, in7, in8, out0, out1):
    s4, s5, s6 = in4[()], in5[()], in6[()]
    n, m = in0.shape
    chunks = 16
    part = np.zeros((chunks, m), np.float32)
    for c in prange(chunks):
        for i in range(c * (n // chunks), (c + 1) * (n // chunks)):
            for j in range(m):
                v = _gelu_tanh_bwd(in0[i, j], in1[i, j], in2[i, j], in3[i, j], s4, s5, s6,
                                   in7[i, j], in8[i, j])
                out0[i, j] = v
                part[c, j] += v
    for j in prange(m):
        acc = F32(0.0)
        for c in range(chunks):
            acc += part[c, j]
        out1[0, j] = acc


# --- 4. a matmul after a parallel kernel (run in a child process per setting) ------------

@njit(parallel=True, fastmath=FM)
def scale(a, out):
    for i in prange(a.shape[0]):
        out[i] = a[i] * F32(2.0)


def interleave_child():
    a = np.random.rand(1 << 20).astype(np.float32)
    o = np.empty_like(a)
    x = np.random.rand(512, 1024).astype(np.float32)
    w = np.random.rand(1024, 1024).astype(np.float32)
    scale(a, o)
    k = C.time_it(lambda: scale(a, o), repeat=21)
    mm = C.time_it(lambda: x @ w, repeat=21)
    both = C.time_it(lambda: (scale(a, o), x @ w), repeat=21)
    print(f"{k} {mm} {both}")


def interleave(policy):
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--interleave-child"],
                         env=env, capture_output=True, text=True, check=True).stdout
    return [float(t) for t in out.split()]


def main():
    if "--interleave-child" in sys.argv:
        interleave_child()
        return
    rng = np.random.default_rng(0)
    rows = []

    def measure(name, variants, check=None):
        base = None
        for label, fn, res in variants:
            t = C.time_it(fn, warmup=2, repeat=10)
            base = base or t
            rows.append([name if base == t else "", label, C.fmt_time(t), f"{base / t:.1f}x"])
            if check is not None and res is not None:
                check(res())

    a, b, c = (rng.standard_normal(1 << 22, dtype=np.float32) for _ in range(3))
    o1, o2 = np.empty_like(a), np.empty_like(a)
    measure("(1) gelu tanh, 2^22", [
        ("np.tanh (libm), before approximate-math", lambda: gelu_libm(a, b, c, o1), None),
        ("rational tanh (plain arithmetic)", lambda: gelu_rational(a, b, c, o2), None)])
    C.check_close("gelu rational vs libm", o2, o1, rtol=1e-5, atol=1e-5)

    x = rng.standard_normal((4096, 1024), dtype=np.float32) * 4
    s1, s2, s3, s4 = (np.empty_like(x) for _ in range(4))
    measure("(2) softmax (4096, 1024)", [
        ("branchy max, exp in 2 passes (generated before)", lambda: softmax_as_generated(x, s1),
         None),
        ("branchy max, 1 exp pass (store, then scale)", lambda: softmax_one_exp(x, s2), None),
        ("vector max, 1 exp pass (the loops generated now)",
         lambda: softmax_one_exp_vector_max(x, s3), None),
        ("floor: vector max, exp -> multiply", lambda: softmax_no_exp(x, s4), None)])
    C.check_close("softmax one exp", s2, s1, rtol=1e-5, atol=1e-7)
    C.check_close("softmax vector max", s3, s1, rtol=1e-5, atol=1e-7)

    arrs = [rng.standard_normal((512, 1024), dtype=np.float32) for _ in range(6)]
    scal = [np.array(v, np.float32) for v in (0.5, 0.7978845608, 0.044715 * 3)]
    ins = arrs[:4] + scal + arrs[4:]
    g1, g2 = np.empty((512, 1024), np.float32), np.empty((512, 1024), np.float32)
    b1, b2 = np.empty((1, 1024), np.float32), np.empty((1, 1024), np.float32)
    measure("(3) gelu bwd + bias grad (512, 1024)", [
        ("column walk (generated before 772d739)", lambda: colsum_as_generated(*ins, g1, b1), None),
        ("row-major + chunked column sum", lambda: colsum_row_major(*ins, g2, b2), None)])
    C.check_close("column kernel grad", g2, g1)
    C.check_close("column kernel bias grad", b2, b1, rtol=1e-3, atol=1e-2)

    for policy in (None, "PASSIVE"):
        k, mm, both = interleave(policy)
        rows.append(["(4) kernel then matmul" if policy is None else "",
                     f"OMP_WAIT_POLICY={policy or 'unset'}: kernel {C.fmt_time(k)}, "
                     f"matmul {C.fmt_time(mm)}, kernel+matmul", C.fmt_time(both),
                     f"{(k + mm) / both:.2f} of ideal"])
    base = rng.standard_normal((1024, 1024), dtype=np.float32)
    grad_t, grad_c = base.T, np.ascontiguousarray(base.T)
    measure("(5) clone of a (1024, 1024) grad", [
        ("transposed view (returned before 772d739)",
         lambda: np.array(grad_t, copy=True, order="C"), None),
        ("C-contiguous", lambda: np.array(grad_c, copy=True, order="C"), None)])
    print(C.machine())
    print()
    head = ["kernel", "variant", "median", "speed-up"]
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(4)]
    line = lambda cells: "| " + " | ".join(s.ljust(w) for s, w in zip(cells, widths)) + " |"  # noqa: E731
    print("\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                    + [line(r) for r in rows]))


if __name__ == "__main__":
    main()
