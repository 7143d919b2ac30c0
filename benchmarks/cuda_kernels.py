"""GPU benchmarks (issue 7): the CPU workloads at GPU sizes, on CUDA tensors.

    (1) gelu(x * w + b), tanh form, on 2^26 float32 values
    (2) row softmax of a (16384, 4096) float32 matrix
    (3) layer_norm over the last dim of (16384, 4096) float32, forward + backward
    (4) one training step of the MLP of benchmarks/train_step.py (784 -> 1024 -> 1024
        -> 10, GELU tanh, cross-entropy, Adam) at batch 4096

Columns: minaot (``minaot.compile`` / ``aot_function`` / ``aot_module`` on CUDA
tensors: the ``cuda`` backend, fused generated kernels; for (4) ``aot_module``
with the min-cut partitioner, as ``torch.compile`` splits its graphs, and Adam
with ``fused=True``), PyTorch eager on the GPU and ``torch.compile``; each cell is
the time per call and the speed-up over PyTorch eager.  A call is timed with
CUDA events around ``repeat`` back-to-back calls (so the Python time of a call
overlaps the GPU work of the one before, as in a training loop).  Every
column's result is checked against numpy (or, for (4), the first step's loss
against the other columns) before its time is reported.  While a column is
timed, the objects alive before it are frozen (``gc.freeze()``): torch.compile
leaves half a million objects in this process, and the collections that scan
them at every few calls made minaot's host time per call of (3) 766 us
instead of 452 us on the H100 (GPU time 530 us), so that the call, GPU-bound
in a process of its own, became host-bound here; a training loop in a process
without torch.compile does not pay it.

Then every generated kernel of (1)-(3) alone: the bytes it must move (its
inputs and outputs, each once), the time of one launch, and the fraction of
the *copy-bound* time it reaches: bytes / (device-to-device copy bandwidth,
measured in the same run by copying 1 GiB, counting bytes read and written).
The issue's targets: pointwise kernels 0.9 of copy-bound or more, row
reductions 0.85 or more.

    python benchmarks/cuda_kernels.py                # on a GPU (numba-cuda, PyTorch)
    python benchmarks/cuda_kernels.py --quick        # fewer repeats
    python benchmarks/cuda_kernels.py --no-torch-compile   # skip the torch.compile column
    python benchmarks/cuda_kernels.py --sim          # tiny sizes under Numba's simulator:
                                                     # a correctness check, no timings to keep
"""

from __future__ import annotations

import gc
import math
import sys
import time

from _cuda_common import QUICK, SIM, cuda, gpu_time, torch  # noqa: E402  (first: --sim)

import numpy as np  # noqa: E402

import minaot  # noqa: E402
import minaot.nn.functional as MF  # noqa: E402
from minaot import nn  # noqa: E402

from _common import fmt_time, table  # noqa: E402

if SIM:
    N_GELU, ROWS, COLS, BATCH, SIZES = 256, 4, 32, 4, (8, 16, 16, 4)
else:
    N_GELU, ROWS, COLS, BATCH, SIZES = 1 << 26, 16384, 4096, 4096, (784, 1024, 1024, 10)
EPS, LR = 1e-5, 1e-3
C0 = math.sqrt(2.0 / math.pi)
COLUMNS = ["minaot cuda", "torch eager", "torch.compile"]
TORCH_COMPILE = "--no-torch-compile" not in sys.argv


# --- timing (gpu_time: _cuda_common.py) ------------------------------------------------
def copy_bandwidth():
    """Bytes per second of a device-to-device copy (read + write counted)."""
    c = cuda()
    n = (1 << 28) if not SIM else (1 << 12)
    a = c.device_array(n, np.float32)
    b = c.device_array(n, np.float32)
    t = gpu_time(lambda: b.copy_to_device(a), warmup=2, repeat=10)
    return 2 * a.nbytes / t


def check_close(name, got, want, rtol, atol):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape or not np.allclose(got, want, rtol=rtol, atol=atol):
        err = np.abs(got - want).max() if got.shape == want.shape else f"shape {got.shape} vs {want.shape}"
        raise AssertionError(f"{name}: result differs from the numpy reference (max abs err {err})")


def host(r):
    if isinstance(r, minaot.Tensor):
        return r.detach().cpu().numpy()
    if torch is not None and isinstance(r, torch.Tensor):
        return r.detach().cpu().numpy()
    return np.asarray(r)


# --- (1)-(3): the kernels ---------------------------------------------------------------
def gelu_numpy(x, w, b):
    y = (x * w + b).astype(np.float64)
    return 0.5 * y * (1.0 + np.tanh(C0 * (y + 0.044715 * y ** 3)))


def gelu_minaot(x, w, b):
    return MF.gelu(x * w + b, approximate="tanh")


def softmax_numpy(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def layer_norm_numpy(x, w, b, g):
    x, g = x.astype(np.float64), g.astype(np.float64)
    mean = x.mean(axis=1, keepdims=True)
    xc = x - mean
    rstd = 1.0 / np.sqrt((xc * xc).mean(axis=1, keepdims=True) + EPS)
    xhat = xc * rstd
    dxhat = g * w
    dx = rstd * (dxhat - dxhat.mean(axis=1, keepdims=True)
                 - xhat * (dxhat * xhat).mean(axis=1, keepdims=True))
    return xhat * w + b, dx, (g * xhat).sum(axis=0), g.sum(axis=0)


def layer_norm_minaot(x, w, b):
    return MF.layer_norm(x, (COLS,), w, b, EPS)


def fwd_bwd(fn, x, w, b, g):
    x.grad = w.grad = b.grad = None
    y = fn(x, w, b)
    y.backward(g)
    return y, x.grad, w.grad, b.grad


def gelu_workload(rng):
    """``(name, {column: call}, minaot compiled function, check(result))``."""
    x, w, b = (rng.standard_normal(N_GELU, dtype=np.float32) for _ in range(3))
    want = gelu_numpy(x, w, b)
    mx, mw, mb = (minaot.tensor(a).cuda() for a in (x, w, b))
    gelu_c = minaot.compile(gelu_minaot)
    fns = {"minaot cuda": lambda: gelu_c(mx, mw, mb)}
    if torch is not None:
        tx, tw, tb = (torch.from_numpy(a).cuda() for a in (x, w, b))
        gelu_t = lambda x, w, b: torch.nn.functional.gelu(x * w + b, approximate="tanh")  # noqa
        fns["torch eager"] = lambda: gelu_t(tx, tw, tb)
        if TORCH_COMPILE:
            gelu_tc = torch.compile(gelu_t)
            fns["torch.compile"] = lambda: gelu_tc(tx, tw, tb)
    return (f"(1) gelu(x*w+b) tanh, {N_GELU} f32", fns, gelu_c,
            lambda r: check_close("gelu", host(r), want, 1e-4, 1e-5))


def softmax_workload(rng):
    s = rng.standard_normal((ROWS, COLS), dtype=np.float32) * 4
    want_s = softmax_numpy(s.astype(np.float64))
    ms = minaot.tensor(s).cuda()
    soft_c = minaot.compile(lambda x: minaot.softmax(x, dim=-1))
    fns = {"minaot cuda": lambda: soft_c(ms)}
    if torch is not None:
        ts = torch.from_numpy(s).cuda()
        soft_t = lambda x: torch.softmax(x, dim=-1)  # noqa: E731
        fns["torch eager"] = lambda: soft_t(ts)
        if TORCH_COMPILE:
            soft_tc = torch.compile(soft_t)
            fns["torch.compile"] = lambda: soft_tc(ts)
    return (f"(2) softmax rows ({ROWS}, {COLS}) f32", fns, soft_c,
            lambda r: check_close("softmax", host(r), want_s, 1e-4, 1e-6))


def layer_norm_workload(rng):
    lx = rng.standard_normal((ROWS, COLS), dtype=np.float32) * 2 + 0.5
    lw = (1 + 0.1 * rng.standard_normal(COLS)).astype(np.float32)
    lb = (0.1 * rng.standard_normal(COLS)).astype(np.float32)
    lg = rng.standard_normal((ROWS, COLS), dtype=np.float32)
    want_l = layer_norm_numpy(lx, lw, lb, lg)
    mx, mw, mb = (minaot.tensor(a).cuda().requires_grad_() for a in (lx, lw, lb))
    mg = minaot.tensor(lg).cuda()
    ln_c = minaot.compile(layer_norm_minaot)
    fns = {"minaot cuda": lambda: fwd_bwd(ln_c, mx, mw, mb, mg)}
    if torch is not None:
        tx, tw, tb = (torch.tensor(a, device="cuda", requires_grad=True) for a in (lx, lw, lb))
        tg = torch.from_numpy(lg).cuda()
        ln_t = lambda x, w, b: torch.nn.functional.layer_norm(x, (COLS,), w, b, EPS)  # noqa
        fns["torch eager"] = lambda: fwd_bwd(ln_t, tx, tw, tb, tg)
        if TORCH_COMPILE:
            ln_tc = torch.compile(ln_t)
            fns["torch.compile"] = lambda: fwd_bwd(ln_tc, tx, tw, tb, tg)

    def check_ln(r):
        for name, got, ref in zip(("y", "dx", "dw", "db"), r, want_l):
            check_close(f"layer_norm {name}", host(got), ref, 1e-3,
                        1e-4 * max(1.0, float(np.abs(ref).max())))
    return f"(3) layer_norm fwd+bwd ({ROWS}, {COLS}) f32", fns, ln_c, check_ln


# --- (4): the training step -------------------------------------------------------------
class MLPWithLoss(nn.Module):
    def __init__(self):
        super().__init__()
        layers = []
        for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(SIZES) - 2:
                layers.append(nn.GELU("tanh"))
        self.net = nn.Sequential(*layers)
        self.loss = nn.CrossEntropyLoss()

    def forward(self, x, y):
        return self.loss(self.net(x), y)


def train_step_workload(rng):
    minaot.manual_seed(0)
    x = rng.standard_normal((BATCH, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], BATCH)
    model = MLPWithLoss()
    weights = [p.detach().numpy().copy() for p in model.parameters()]
    model.cuda()
    # the min-cut partitioner, as torch.compile's: the forward saves each layer's input to
    # GELU, not the six values eager autograd would (tanh, its square...), and the backward
    # recomputes the rest inside its fused kernels (GPU time of a step 1663 -> 1523 us)
    compiled = minaot.aot_module(model, partition_fn=minaot.min_cut_rematerialization_partition)
    opt = minaot.optim.Adam(compiled.parameters(), lr=LR, fused=True)
    mx, my = minaot.tensor(x).cuda(), minaot.tensor(y).cuda()

    def step_minaot():
        opt.zero_grad()
        loss = compiled(mx, my)
        loss.backward()
        opt.step()
        return loss
    step_minaot.parts = (opt, compiled, mx, my)     # for cuda_train_step.py's phases
    fns = {"minaot cuda": step_minaot}
    if torch is not None:
        def torch_model():
            layers = []
            for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
                lin = torch.nn.Linear(a, b)
                with torch.no_grad():
                    lin.weight.copy_(torch.from_numpy(weights[2 * i]))
                    lin.bias.copy_(torch.from_numpy(weights[2 * i + 1]))
                layers += [lin] + ([torch.nn.GELU(approximate="tanh")] if i < len(SIZES) - 2 else [])
            return torch.nn.Sequential(*layers).cuda()
        tx, ty = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()

        def stepper(m):
            o = torch.optim.Adam(m.parameters(), lr=LR)

            def step():
                o.zero_grad()
                loss = torch.nn.functional.cross_entropy(m(tx), ty)
                loss.backward()
                o.step()
                return loss
            return step
        fns["torch eager"] = stepper(torch_model())
        if TORCH_COMPILE:
            fns["torch.compile"] = stepper(torch.compile(torch_model()))
    losses = {}

    def check(r, col):
        losses[col] = float(host(r))
        first = next(iter(losses.values()))
        if abs(losses[col] - first) > 1e-4 * max(1.0, abs(first)):
            raise AssertionError(f"train step: first loss {losses[col]} ({col}) vs {first}")
    return f"(4) MLP train step, batch {BATCH}, Adam", fns, compiled, check


# --- per-kernel report ------------------------------------------------------------------
def programs(compiled):
    """The CudaPrograms inside a compiled function or module (forward, backward, inference)."""
    from minaot.cuda_backend import CudaProgram
    aot = getattr(compiled, "compiled", compiled)           # an AOTModule holds its function
    out = []
    for entry in aot.cache.values():
        runner = getattr(entry, "runner", None)
        for p in ([runner.fw, runner._bw] if runner is not None else [entry.compiled]):
            if isinstance(p, CudaProgram):
                out.append(p)
    return out


def kernel_rows(compiled, call, bandwidth):
    """(kernel, launch config, MB moved, time, fraction of copy-bound) for each generated
    kernel that ``call()`` runs, each timed alone on the arrays it got in that call."""
    from minaot.cuda_backend import CudaKernel
    progs = programs(compiled)
    records = []
    originals = [p.run_arrays for p in progs]
    for p in progs:
        def spy(arrays, record=None, _run=p.run_arrays):
            return _run(arrays, record=records)
        p.run_arrays = spy
    try:
        call()
    finally:
        for p, orig in zip(progs, originals):
            p.run_arrays = orig
    rows = []
    for step, ins, outs in records:
        if not isinstance(step, CudaKernel):
            continue
        nbytes = sum({id(a): a.size * a.dtype.itemsize for a in ins + outs}.values())
        t = gpu_time(lambda: step.launch(*ins, *outs), warmup=2, repeat=20)
        config = ", ".join(f"{b}x{th}" for _, b, th in step.launch_config())
        rows.append((step.name, config, nbytes / 1e6, t, nbytes / bandwidth / t))
    return rows


def main():
    rng = np.random.default_rng(0)
    c = cuda()
    device = "Numba CUDA simulator" if SIM else c.get_current_device().name
    device = device.decode() if isinstance(device, bytes) else device
    bandwidth = copy_bandwidth()
    print(f"date: {time.strftime('%Y-%m-%d')}; device: {device}; minaot {minaot.__version__}; "
          f"torch {torch.__version__ if torch is not None else 'n/a'}")
    print(f"device-to-device copy: {bandwidth / 1e12:.2f} TB/s (read + write)")
    rows, kernels, notes = [], [], []
    for make in (gelu_workload, softmax_workload, layer_norm_workload, train_step_workload):
        name, fns, compiled, check = make(rng)
        times = []
        for col in COLUMNS:
            fn = fns.get(col)
            if fn is None:
                times.append(None)
                continue
            t0 = time.perf_counter()
            r = fn()
            if name.startswith("(4)"):
                check(r, col)
            else:
                check(r)
            notes.append(f"{name}: {col} first call (compiles) {time.perf_counter() - t0:.2f} s")
            gc.collect()
            gc.freeze()             # see the module docstring
            times.append(gpu_time(fn))
            gc.unfreeze()
        rows.append((name, times))
        if not name.startswith("(4)"):
            kernels += [(name,) + r for r in kernel_rows(compiled, fns["minaot cuda"], bandwidth)]
    base = 1 if torch is not None else 0
    print()
    print(table(rows, COLUMNS, baseline=base,
                title="Time per call (speed-up vs " + COLUMNS[base] + ")"))
    print()
    print("Generated kernels alone (fraction of the copy-bound time: 1.0 = copy speed)")
    head = f"| {'workload':<42} | {'kernel':<26} | {'grid x block':<20} | MB     | time      | of copy-bound |"
    print(head)
    print("|" + "|".join("-" * (len(p)) for p in head.split("|")[1:-1]) + "|")
    for name, kname, config, mb, t, frac in kernels:
        print(f"| {name:<42} | {kname:<26} | {config:<20} | {mb:6.0f} | {fmt_time(t):>9} | {frac:13.2f} |")
    print()
    print("\n".join(notes))


if __name__ == "__main__":
    main()
