"""The GPU matmul kernels of ``kernels/matmul_cuda.py`` at the sizes of the MLP train step.

The train step of ``benchmarks/cuda_kernels.py`` (784 -> 1024 -> 1024 -> 10 at batch
4096) multiplies matrices in three layouts: the forward's ``x @ W.T`` (B is a
transposed view of the weight), the backward's ``dy @ W`` (both row-major) and
``dy.T @ x`` for the weight gradients (A is a transposed view).  Each row below is one
of those products, with its operands in the layout the train step has them in; two
more rows add a batched product and a square one at a size where the GPU is full.

Each cell is the time of one product (CUDA events around ``repeat`` back-to-back
launches into a preallocated result, so the time is the kernels', not Python's or
the allocator's), its rate in TFLOP/s (``2 M N K`` per product) and, where PyTorch
with CUDA is installed, its time as a multiple of PyTorch eager's (cuBLAS, full float32:
TF32 is switched off, as PyTorch's default is).  Every column's result is checked
against PyTorch's (or numpy's under the simulator) before its time is reported.

    python benchmarks/matmul_cuda.py            # on a GPU (numba-cuda; PyTorch if present)
    python benchmarks/matmul_cuda.py --quick    # fewer repeats
    python benchmarks/matmul_cuda.py --sim      # tiny sizes under Numba's simulator: a
                                                # correctness check, no timings to keep

Measured 2026-11-24 on an NVIDIA H100 80GB HBM3 (numba-cuda 0.30.4, torch 2.11.0+cu130):
the vectorized kernel runs the large products at 22-35 TF/s (register-blocked: 17-23;
tiled: 5.3-6.6; cuBLAS: 38-49); the 8 products of the train step take 1.36 ms
(blocked: 2.03 ms, tiled: 7.05 ms, cuBLAS: 0.90 ms).  The products with a dimension
of 10 take 34-43 us, mostly the host's time to launch kernels (split-K launches two);
cuBLAS takes 20-27 us.
"""

from __future__ import annotations

import time

from _cuda_common import QUICK, SIM, cuda, torch  # noqa: E402  (first: --sim)
from _cuda_common import gpu_time as _gpu_time  # noqa: E402

import numpy as np  # noqa: E402

import minaot  # noqa: E402
from minaot.kernels import matmul_cuda  # noqa: E402

if SIM:
    B, D, H, O = 12, 9, 8, 3                      # batch, in, hidden, out
else:
    B, D, H, O = 4096, 784, 1024, 10

#: (name, M, K, N, A transposed, B transposed, batch): C (batch, M, N) = A @ B, where a
#: transposed operand is stored as its transpose (row-major) and viewed with ``.T``
WORKLOADS = [
    ("fc1 fwd   x @ W1.T", B, D, H, False, True, ()),
    ("fc2 fwd   h1 @ W2.T", B, H, H, False, True, ()),
    ("fc3 fwd   h2 @ W3.T", B, H, O, False, True, ()),
    ("fc3 dx    dy3 @ W3", B, O, H, False, False, ()),
    ("fc3 dW    dy3.T @ h2", O, B, H, True, False, ()),
    ("fc2 dx    dy2 @ W2", B, H, H, False, False, ()),
    ("fc2 dW    dy2.T @ h1", H, B, H, True, False, ()),
    ("fc1 dW    dy1.T @ x", H, B, D, True, False, ()),
    ("batched   (16,256,256)^2", 256 if not SIM else 5, 256 if not SIM else 7,
     256 if not SIM else 6, False, False, (16,) if not SIM else (3,)),
    ("square    4096^3", 4096 if not SIM else 17, 4096 if not SIM else 13,
     4096 if not SIM else 11, False, False, ()),
]


def gpu_time(fn):
    """Seconds per product (see ``_cuda_common.gpu_time``; ``--quick``: 5 calls)."""
    return _gpu_time(fn, quick_repeat=5)


def operand(rng, batch, rows, cols, transposed):
    """A host array of shape batch + (rows, cols), stored transposed when asked."""
    if transposed:
        return np.swapaxes(rng.standard_normal(batch + (cols, rows)).astype(np.float32), -1, -2)
    return rng.standard_normal(batch + (rows, cols)).astype(np.float32)


def on_device(host):
    """A CUDA tensor with ``host``'s values and layout (a transposed view stays one)."""
    if host.ndim >= 2 and not host.flags.c_contiguous:
        return minaot.tensor(np.ascontiguousarray(np.swapaxes(host, -1, -2)),
                             device="cuda").transpose(-1, -2)
    return minaot.tensor(host, device="cuda")


def as_3d(arr, batch, rows, cols):
    from minaot.cuda_eager import view_array
    z = int(np.prod(batch, dtype=np.int64))
    return view_array(arr, "reshape", {"shape": (z, rows, cols)})[0]


#: minaot's columns: name -> keyword arguments of ``matmul_cuda.matmul_3d``: the tiled
#: kernel (the teaching step, the one used before the register-blocked kernel), the
#: register-blocked one with the blocking and K split chosen from the shapes, and the
#: same with 16-byte global loads where the operands allow it (the one used)
KERNELS = {"minaot tiled": {"tile": matmul_cuda.default_tile()},
           "minaot blocked": {"vectorized": False}, "minaot vectorized": {}}


def plan(m, k, n, z):
    """The matmul kernels' choice for this product: ``"128x128x8, K/4"``."""
    bl, splits, _ = matmul_cuda.plan(np.float32, z, m, k, n)
    return f"{bl.bm}x{bl.bn}x{bl.bk}" + (f", K/{splits}" if splits > 1 else "")


def run_workload(rng, name, m, k, n, a_t, b_t, batch):
    a_host, b_host = operand(rng, batch, m, k, a_t), operand(rng, batch, k, n, b_t)
    ta, tb = on_device(a_host), on_device(b_host)
    assert (ta._data.strides[-1] > ta._data.strides[-2]) == a_t, ta._data.strides
    a3, b3 = as_3d(ta._data, batch, m, k), as_3d(tb._data, batch, k, n)
    c3 = cuda().device_array((a3.shape[0], m, n), np.float32)
    if torch is not None:
        xa = torch.from_numpy(np.ascontiguousarray(np.swapaxes(a_host, -1, -2)) if a_t
                              else a_host).cuda()
        xb = torch.from_numpy(np.ascontiguousarray(np.swapaxes(b_host, -1, -2)) if b_t
                              else b_host).cuda()
        xa, xb = (xa.transpose(-1, -2) if a_t else xa), (xb.transpose(-1, -2) if b_t else xb)
        want = torch.matmul(xa, xb).cpu().numpy().reshape(c3.shape)
    else:
        want = np.matmul(a_host.astype(np.float64), b_host.astype(np.float64)).reshape(c3.shape)
    tol = 1e-4 * max(1.0, np.sqrt(k)) * 4
    times = []
    for col, kwargs in KERNELS.items():
        def call():
            matmul_cuda.matmul_3d(a3, b3, c3, **kwargs)
        call()
        got = c3.copy_to_host()
        err = float(np.abs(got - want).max()) if got.size else 0.0
        if not np.allclose(got, want, rtol=tol, atol=tol):
            raise AssertionError(f"{name}: {col} differs from the reference (max abs err {err})")
        times.append(gpu_time(call))
    if torch is not None:
        out = torch.empty(batch + (m, n), device="cuda")
        times.append(gpu_time(lambda: torch.matmul(xa, xb, out=out)))
    else:
        times.append(None)
    flop = 2.0 * m * n * k * max(1, int(np.prod(batch, dtype=np.int64)))
    return flop, times


def fmt(seconds, flop, ref):
    if seconds is None:
        return "n/a"
    t = f"{seconds * 1e6:.0f} us" if seconds < 1e-2 else f"{seconds * 1e3:.2f} ms"
    cell = f"{t}, {flop / seconds / 1e12:.2f} TF/s"
    if ref is not None:
        cell += f" ({seconds / ref:.1f}x)"
    return cell


def main():
    rng = np.random.default_rng(0)
    c = cuda()
    device = "Numba CUDA simulator" if SIM else c.get_current_device().name
    device = device.decode() if isinstance(device, bytes) else device
    print(f"date: {time.strftime('%Y-%m-%d')}; device: {device}; minaot {minaot.__version__}; "
          f"torch {torch.__version__ if torch is not None else 'n/a'} (TF32 off)")
    columns = list(KERNELS) + ["torch eager (cuBLAS)"]
    rows, total = [], [0.0] * len(columns)
    flop_total = 0.0
    for name, m, k, n, a_t, b_t, batch in WORKLOADS:
        flop, times = run_workload(rng, name, m, k, n, a_t, b_t, batch)
        shape = f"{batch + (m, k)} @ {batch + (k, n)}"
        rows.append((name, shape, plan(m, k, n, max(1, int(np.prod(batch)))), flop, times))
        if not name.startswith(("batched", "square")):
            flop_total += flop
            total = [None if s is None or t is None else s + t for s, t in zip(total, times)]
    rows.append(("train step: the 8 products", "", "", flop_total, total))
    head = ["product", "shapes", "blocking"] + columns
    body = [[name, shape, how] + [fmt(t, flop, times[-1]) for t in times]
            for name, shape, how, flop, times in rows]
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]

    def line(cells):
        return "| " + " | ".join(x.ljust(w) for x, w in zip(cells, widths)) + " |"
    print()
    print("Time per product, TFLOP/s (2MNK/time) and time as a multiple of PyTorch's")
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in body:
        print(line(r))
    print("\nall results checked against " + ("PyTorch" if torch is not None else "numpy"))


if __name__ == "__main__":
    main()
