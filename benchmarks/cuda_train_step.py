"""The GPU training step (issue 7's workload (4)) in a process of its own: where its time goes.

``cuda_kernels.py`` times the step inside a process that has also run (1)-(3) and, with
its ``torch.compile`` column, holds half a million of PyTorch's objects; this script runs
only the step (the MLP 784 -> 1024 -> 1024 -> 10 at batch 4096, Adam with ``fused=True``:
``cuda_kernels.train_step_workload``) and splits its time in two:

* **back-to-back**: 20 steps in a row, then a wait; the time per step is what a training
  loop gets, the larger of the host's time per step and the GPU's;
* **host behind a busy GPU**: the GPU is first given about 8 ms of products, then one
  step is timed on the host alone: its Python and launch time, with no wait for the GPU
  (a step that waited for the GPU would show it here);
* **GPU**: CUDA events around one step queued behind the busy GPU: the GPU's time alone.

Each is the median of several samples (``--quick``: fewer), for minaot and PyTorch eager.
A second table splits minaot's host time by phase of the step (``zero_grad``, the
compiled forward, ``backward``, the fused Adam step), each the median over 20 steps in a
row, and says how much of it the replayed compiled calls take (``cuda_replay``'s
replay: the pool's bookkeeping, one CUDA graph launch, the result arrays).

    python benchmarks/cuda_train_step.py            # on a GPU (numba-cuda, PyTorch)
    python benchmarks/cuda_train_step.py --sim      # tiny, under Numba's simulator: runs, no timings
"""

from __future__ import annotations

import gc
import statistics
import sys
import time

from _cuda_common import QUICK, SIM, cuda, torch  # noqa: E402  (first: --sim)

import cuda_kernels  # noqa: E402
import numpy as np  # noqa: E402

import minaot  # noqa: E402


def busy_gpu():
    """A function that queues about 8 ms of GPU work (three 4096^3 products)."""
    from minaot.kernels.matmul_cuda import matmul
    n = 64 if SIM else 4096
    big = minaot.randn(n, n, device="cuda")._data

    def spin():
        for _ in range(1 if SIM else 3):
            matmul(big, big)
    return spin


def measure(step, spin, samples):
    """(back-to-back ms per step, host ms behind a busy GPU, GPU ms of one step): medians."""
    c = cuda()
    for _ in range(2 if SIM else 6):
        step()
    c.synchronize()
    if torch is not None:
        torch.cuda.synchronize()
    gc.collect()
    rows = 2 if SIM else 20
    b2b, host, gpu = [], [], []
    for _ in range(samples):
        c.synchronize()
        t0 = time.perf_counter()
        for _ in range(rows):
            step()
        if torch is not None:
            torch.cuda.synchronize()
        c.synchronize()
        b2b.append((time.perf_counter() - t0) / rows)
    for _ in range(samples):
        c.synchronize()
        spin()
        start, end = c.event(), c.event()
        start.record()
        t0 = time.perf_counter()
        step()
        host.append(time.perf_counter() - t0)
        if torch is not None:
            torch.cuda.synchronize()
        end.record()
        end.synchronize()
        # (the simulator's events measure nothing)
        gpu.append(0.0 if SIM else c.event_elapsed_time(start, end) / 1e3)
    return [1e3 * statistics.median(x) for x in (b2b, host, gpu)]


def host_phases(parts, steps):
    """``({phase: host us}, replay us)`` for minaot's step, medians over ``steps`` steps in a
    row (the GPU is not waited for; the launch queue holds more than ``steps`` steps)."""
    from minaot import cuda_replay
    opt, compiled, x, y = parts
    launches = [0.0]
    replay = cuda_replay.Recording.replay

    def timed_replay(self, *args):
        t = time.perf_counter()
        try:
            return replay(self, *args)
        finally:
            launches[0] += time.perf_counter() - t
    cuda().synchronize()
    phases = {"zero_grad": [], "forward": [], "backward": [], "opt.step": []}
    cuda_replay.Recording.replay = timed_replay
    try:
        for _ in range(steps):
            t0 = time.perf_counter()
            opt.zero_grad()
            t1 = time.perf_counter()
            loss = compiled(x, y)
            t2 = time.perf_counter()
            loss.backward()
            t3 = time.perf_counter()
            opt.step()
            t4 = time.perf_counter()
            for k, dt in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                phases[k].append(dt)
    finally:
        cuda_replay.Recording.replay = replay
    cuda().synchronize()
    return {k: 1e6 * statistics.median(v) for k, v in phases.items()}, 1e6 * launches[0] / steps


def main():
    name, fns, _, check = cuda_kernels.train_step_workload(np.random.default_rng(0))
    spin = busy_gpu()
    spin()
    samples = 3 if QUICK else 7
    rows = []
    for col in ("minaot cuda", "torch eager"):
        if col not in fns:
            continue
        check(fns[col](), col)
        b2b, host, gpu = measure(fns[col], spin, samples)
        rows.append([col, f"{b2b:.3f} ms", f"{host:.3f} ms", f"{gpu:.3f} ms"])
    dev = "simulator" if SIM else cuda().get_current_device().name
    dev = dev.decode() if isinstance(dev, bytes) else dev
    print(f"{name}; device: {dev}; medians of {samples}")
    head = ["", "back-to-back per step", "host, GPU busy", "GPU, one step"]
    widths = [max(len(str(r[k])) for r in rows + [head]) for k in range(len(head))]
    for k, r in enumerate([head, ["-" * w for w in widths]] + rows):
        print("| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths)) + " |")
    phases, launches = host_phases(fns["minaot cuda"].parts, 2 if SIM else 20)
    print(f"\nminaot's host time by phase (medians of {2 if SIM else 20} steps in a row)")
    print("| phase | host us |\n| --- | --- |")
    for k, v in phases.items():
        print(f"| {k} | {v:.1f} |")
    print(f"| all | {sum(phases.values()):.1f} |")
    print(f"| of which replayed calls (bookkeeping, graph launch, results) | {launches:.1f} |")
    if SIM:
        print("(simulator: the numbers are no timings)")


if __name__ == "__main__":
    sys.exit(main())
