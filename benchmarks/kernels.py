"""Kernel benchmarks (issue 6, workloads 1-3): one fused computation, five ways.

    (1) gelu(x * w + b), tanh form, on 2^22 float32 values
    (2) row softmax of a (4096, 1024) float32 matrix
    (3) layer_norm over the last dim of (4096, 1024) float32, forward + backward
        (weight and bias of 1024; the backward takes a fixed upstream gradient g
        and produces the gradients of x, weight and bias)

Columns: numpy eager (the obvious numpy code; for (3) a hand-written forward
and backward), minaot eager (minaot tensors, eager autograd), minaot numba
(``minaot.compile(fn, backend="numba")``; for (3) it splits forward and backward
with the min-cut partitioner, as ``torch.compile`` does), PyTorch eager
and ``torch.compile`` on the CPU where PyTorch is installed.  Every column's
result is checked against numpy before its time is reported.

    .venv/bin/python benchmarks/kernels.py            # the table
    .venv/bin/python benchmarks/kernels.py --source   # also print every generated kernel
    .venv/bin/python benchmarks/kernels.py --per-kernel  # each kernel vs numpy on the same ops
    .venv/bin/python benchmarks/kernels.py --quick    # fewer repeats (smoke test)
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time

import _common as C  # first: sets thread counts before numpy is imported
from _common import np, torch

import minaot
import minaot.nn.functional as MF

N_GELU = 2 ** 22
ROWS, COLS = 4096, 1024
C0 = math.sqrt(2.0 / math.pi)


# --- (1) gelu(x * w + b), tanh form --------------------------------------------------

def gelu_numpy(x, w, b):
    y = x * w + b
    return 0.5 * y * (1.0 + np.tanh(np.float32(C0) * (y + np.float32(0.044715) * y * y * y)))


def gelu_minaot(x, w, b):
    return MF.gelu(x * w + b, approximate="tanh")


def gelu_torch(x, w, b):
    return torch.nn.functional.gelu(x * w + b, approximate="tanh")


# --- (2) row softmax ----------------------------------------------------------------

def softmax_numpy(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e


def softmax_minaot(x):
    return minaot.softmax(x, dim=-1)


def softmax_torch(x):
    return torch.softmax(x, dim=-1)


# --- (3) layer_norm forward + backward ----------------------------------------------

EPS = 1e-5


def layer_norm_numpy(x, w, b, g):
    """Forward and backward by hand: returns (y, dx, dw, db)."""
    mean = x.mean(axis=1, keepdims=True)
    xc = x - mean
    var = (xc * xc).mean(axis=1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + np.float32(EPS))
    xhat = xc * rstd
    y = xhat * w + b
    dxhat = g * w
    dx = rstd * (dxhat - dxhat.mean(axis=1, keepdims=True)
                 - xhat * (dxhat * xhat).mean(axis=1, keepdims=True))
    dw = (g * xhat).sum(axis=0)
    db = g.sum(axis=0)
    return y, dx, dw, db


def layer_norm_minaot(x, w, b):
    return MF.layer_norm(x, (COLS,), w, b, EPS)


def layer_norm_torch(x, w, b):
    return torch.nn.functional.layer_norm(x, (COLS,), w, b, EPS)


def fwd_bwd(fn, x, w, b, g):
    """One training-style step of the layer: forward, backward(g), the three gradients."""
    x.grad = w.grad = b.grad = None
    y = fn(x, w, b)
    y.backward(g)
    return y, x.grad, w.grad, b.grad


# --- running ------------------------------------------------------------------------

def gelu_workload(rng):
    """``(name, {column: zero-arg callable}, compiled minaot function, check(result))``."""
    x, w, b = (rng.standard_normal(N_GELU, dtype=np.float32) for _ in range(3))
    want = gelu_numpy(x, w, b)
    mx, mw, mb = (minaot.tensor(a) for a in (x, w, b))
    gelu_c = minaot.compile(gelu_minaot, backend="numba")
    fns = {"numpy eager": lambda: gelu_numpy(x, w, b),
           "minaot eager": lambda: gelu_minaot(mx, mw, mb),
           "minaot numba": lambda: gelu_c(mx, mw, mb)}
    if torch is not None:
        tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
        gelu_tc = torch.compile(gelu_torch)
        fns["torch eager"] = lambda: gelu_torch(tx, tw, tb)
        fns["torch.compile"] = lambda: gelu_tc(tx, tw, tb)
    return ("(1) gelu(x*w+b) tanh, 2^22 f32", fns, gelu_c,
            lambda r: C.check_close("gelu", _np(r), want, rtol=1e-4, atol=1e-5))


def softmax_workload(rng):
    s = rng.standard_normal((ROWS, COLS), dtype=np.float32) * 4
    want_s = softmax_numpy(s)
    ms = minaot.tensor(s)
    soft_c = minaot.compile(softmax_minaot, backend="numba")
    fns = {"numpy eager": lambda: softmax_numpy(s),
           "minaot eager": lambda: softmax_minaot(ms),
           "minaot numba": lambda: soft_c(ms)}
    if torch is not None:
        ts = torch.from_numpy(s)
        soft_tc = torch.compile(softmax_torch)
        fns["torch eager"] = lambda: softmax_torch(ts)
        fns["torch.compile"] = lambda: soft_tc(ts)
    return ("(2) softmax rows (4096, 1024) f32", fns, soft_c,
            lambda r: C.check_close("softmax", _np(r), want_s, rtol=1e-4, atol=1e-6))


def layer_norm_workload(rng):
    lx = rng.standard_normal((ROWS, COLS), dtype=np.float32) * 2 + 0.5
    lw = (1 + 0.1 * rng.standard_normal(COLS)).astype(np.float32)
    lb = (0.1 * rng.standard_normal(COLS)).astype(np.float32)
    lg = rng.standard_normal((ROWS, COLS), dtype=np.float32)
    want_l = layer_norm_numpy(lx, lw, lb, lg)
    mx, mw, mb = (minaot.tensor(a, requires_grad=True) for a in (lx, lw, lb))
    mg = minaot.tensor(lg)
    ln_c = minaot.compile(layer_norm_minaot, backend="numba")   # min-cut, as torch.compile
    fns = {"numpy eager": lambda: layer_norm_numpy(lx, lw, lb, lg),
           "minaot eager": lambda: fwd_bwd(layer_norm_minaot, mx, mw, mb, mg),
           "minaot numba": lambda: fwd_bwd(ln_c, mx, mw, mb, mg)}
    if torch is not None:
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (lx, lw, lb))
        tg = torch.from_numpy(lg)
        ln_tc = torch.compile(layer_norm_torch)
        fns["torch eager"] = lambda: fwd_bwd(layer_norm_torch, tx, tw, tb, tg)
        fns["torch.compile"] = lambda: fwd_bwd(ln_tc, tx, tw, tb, tg)

    def check_ln(r):
        for name, got, ref in zip(("y", "dx", "dw", "db"), r, want_l):
            # dw and db sum 4096 rows in float32: compare relative to their size
            C.check_close(f"layer_norm {name}", _np(got), ref, rtol=1e-3,
                          atol=1e-4 * max(1.0, float(np.abs(ref).max())))
    return ("(3) layer_norm fwd+bwd (4096, 1024) f32", fns, ln_c, check_ln)


def _np(r):
    if isinstance(r, minaot.Tensor):
        return r.detach().numpy()
    if torch is not None and isinstance(r, torch.Tensor):
        return r.detach().numpy()
    return np.asarray(r)


def main():
    os.environ.setdefault("MINAOT_CACHE_DIR", tempfile.mkdtemp(prefix="minaot-bench-"))
    rng = np.random.default_rng(0)
    rows, notes = [], []
    for make in (gelu_workload, softmax_workload, layer_norm_workload):
        name, fns, compiled, check = make(rng)
        times = []
        for col in C.COLUMNS:
            fn = fns.get(col)
            if fn is None:
                times.append(None)
                continue
            t0 = time.perf_counter()
            check(fn())                        # first call: compiles; its result is checked
            first = time.perf_counter() - t0
            times.append(C.time_it(fn, warmup=2, repeat=10))
            if col in ("minaot numba", "torch.compile"):
                notes.append(f"{name}: {col} first call (compile) {first:.2f} s")
        rows.append((name, times))
        notes.append(f"{name}: minaot kernels generated (fw + bw): {C.kernel_count(compiled)}")
        if "--source" in sys.argv:
            for prog in C.numba_programs(compiled):
                print(prog.stage_text())
        if "--per-kernel" in sys.argv:
            notes.append(f"{name}: per kernel\n" + C.kernel_report(compiled, fns["minaot numba"]))
    print(C.machine())
    print()
    print(C.table(rows, title="Kernels: median time per call (speed-up vs numpy eager)"))
    print()
    print("\n".join(notes))


if __name__ == "__main__":
    main()
