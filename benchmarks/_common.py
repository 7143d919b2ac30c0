"""What every benchmark script shares: thread settings, timing, the machine line, the ratio table.

Import this module *first*: it sets the thread counts of every library
(OpenBLAS/MKL/OpenMP for numpy, Numba's pool, PyTorch's intra-op pool) from
``BENCH_THREADS`` (default: every CPU), and the BLAS libraries read their
variables only when numpy is first imported.

A measurement is ``time_it(fn)``: a few warm-up calls (the first compiles,
allocates, fills caches), then the median of ``repeat`` calls timed one by
one with ``time.perf_counter``.  The median, not the mean or the minimum,
because this machine is shared: a run stolen by another process should move
one sample, not the result.  The load average is printed beside the machine
so a reader can tell a quiet run from a busy one.

A table has one row per workload and one column per implementation; each
cell is the median time and the speed-up over the first column (numpy
eager): ``16.2 ms (1.0x)``, ``1.4 ms (11.6x)``.  A column that cannot run
here (PyTorch not installed) shows ``n/a``.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time

THREADS = int(os.environ.get("BENCH_THREADS") or os.cpu_count() or 1)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

# minaot sets OMP_WAIT_POLICY=PASSIVE when it is imported (idle OpenMP workers sleep
# instead of spinning, so they do not steal the second core from OpenBLAS), but PyTorch
# is imported first here and its OpenMP runtime reads the variable when it loads: without
# this line, PyTorch's spinning workers halved minaot's train-step speed in the same
# process (84 ms vs 41 ms per step).  Every column runs under the same setting.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

try:
    import torch  # noqa: E402
    torch.set_num_threads(THREADS)
except ImportError:
    torch = None

def _load() -> str:
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "n/a"


LOAD_AT_START = _load()
COLUMNS = ["numpy eager", "minaot eager", "minaot numba", "torch eager", "torch.compile"]


def quick() -> bool:
    """``--quick`` (or BENCH_QUICK=1): fewer repeats, for a smoke test."""
    return "--quick" in sys.argv or bool(os.environ.get("BENCH_QUICK"))


def time_it(fn, warmup: int = 2, repeat: int = 10) -> float:
    """Median seconds of ``repeat`` calls of ``fn()`` after ``warmup`` calls."""
    if quick():
        warmup, repeat = min(warmup, 1), min(repeat, 3)
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def machine() -> str:
    """One paragraph: CPU, cores, threads, load and the versions that matter."""
    import numba

    import minaot
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = f"load average (1, 5, 15 min) {LOAD_AT_START} at start, {_load()} now"
    tv = torch.__version__ if torch is not None else "not installed"
    try:
        layer = numba.threading_layer()
    except ValueError:          # chosen at the first parallel kernel
        layer = "layer not chosen yet"
    lines = [
        f"machine: {cpu}, {os.cpu_count()} CPUs; {load}",
        f"threads: {THREADS} (numpy BLAS, numba {numba.config.NUMBA_NUM_THREADS} "
        f"[{layer}], torch {torch.get_num_threads() if torch is not None else 'n/a'}); "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}",
        f"versions: python {platform.python_version()}, numpy {np.__version__}, "
        f"numba {numba.__version__}, minaot {minaot.__version__}, torch {tv}",
    ]
    return "\n".join(lines)


def fmt_time(seconds) -> str:
    if seconds is None:
        return "n/a"
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def table(rows, columns=COLUMNS, baseline: int = 0, title: str = "") -> str:
    """``rows`` is ``[(name, [seconds or None per column])]``; cells show time and
    speed-up over column ``baseline`` (higher is faster)."""
    head = ["workload"] + list(columns)
    body = []
    for name, times in rows:
        base = times[baseline]
        cells = [name]
        for t in times:
            if t is None:
                cells.append("n/a")
            elif base is None:
                cells.append(fmt_time(t))
            else:
                cells.append(f"{fmt_time(t)} ({base / t:.1f}x)")
        body.append(cells)
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [title] if title else []
    out.append(line(head))
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out += [line(r) for r in body]
    return "\n".join(out)


def check_close(name: str, got, want, rtol=1e-4, atol=1e-4) -> None:
    """Refuse to report a time for a wrong answer."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape or not np.allclose(got, want, rtol=rtol, atol=atol):
        err = np.abs(got - want).max() if got.shape == want.shape else "shape"
        raise AssertionError(f"{name}: result differs from the numpy reference (max abs err {err})")


def numba_programs(compiled) -> list:
    """The NumbaPrograms inside an ``aot_function``/``compile`` result (forward, and the
    backward once a backward has run), for kernel counts and ``stage_text()``."""
    progs = []
    for entry in compiled.cache.values():
        runner = getattr(entry, "runner", None)
        if runner is not None:
            progs += [p for p in (runner.fw, runner._bw) if p is not None]
        elif getattr(entry, "compiled", None) is not None:
            progs.append(entry.compiled)
    return progs


def kernel_count(compiled) -> str:
    """``fw 1 + bw 2`` style count of generated kernels."""
    counts = [str(len(getattr(p, "kernels", {}))) for p in numba_programs(compiled)]
    return " + ".join(counts) if counts else "?"


def kernel_report(compiled, call, repeat: int = 5) -> str:
    """Where the time of ``call()`` goes inside the compiled programs of ``compiled``.

    Every step of every program is timed during ``repeat`` calls (median per
    step); each generated kernel is then timed again on its captured inputs
    against the reference interpreter running the same fused region op by op
    in numpy (``run_op``), which is what numpy eager would do for those ops.
    Library steps (matmul, gather, views) are summed per op name."""
    from minaot.ir import run_op
    from minaot.numba_backend import Kernel

    progs = numba_programs(compiled)
    samples, captured, saved = {}, {}, []
    for p, prog in enumerate(progs):
        saved.append(prog.steps)
        steps = []
        for k, (run, ins, outs, drop) in enumerate(prog.steps):
            def timed(args, run=run, key=(p, k)):
                if isinstance(run, Kernel) and key not in captured:
                    captured[key] = (run, [np.array(a) for a in args])
                t0 = time.perf_counter()
                res = run(args)
                samples.setdefault(key, []).append(time.perf_counter() - t0)
                return res
            steps.append((timed, ins, outs, drop))
        prog.steps = steps
    try:
        for _ in range(repeat):
            call()
    finally:
        for prog, steps in zip(progs, saved):
            prog.steps = steps
    lib, kern_total = {}, 0.0
    for (p, k), ts in samples.items():
        op = progs[p].graph.ops[k]
        if op.name == "kernel.fused":
            kern_total += statistics.median(ts)
        else:
            lib[op.name] = lib.get(op.name, 0.0) + statistics.median(ts)
    rows = []
    for (p, k), (kern, ins) in sorted(captured.items()):
        shape = "x".join(map(str, kern.op.attributes["domain"]))
        ops = sorted({o.opname for o in kern.op.regions[0].block.ops[:-1]} - {"constant"})
        t_gen = statistics.median(samples[(p, k)])
        t_np = time_it(lambda: run_op(kern.op, ins), warmup=1, repeat=3)
        rows.append((kern.name, [t_np, t_gen], f"{shape}; {len(kern.out_specs)} out; "
                     + ",".join(ops)))
    head = ["kernel", "numpy (same ops)", "generated", "domain; outputs; ops"]
    body = [[n, fmt_time(a), f"{fmt_time(b)} ({a / b:.1f}x)", d] for n, (a, b), d in rows]
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    line = lambda c: "| " + " | ".join(x.ljust(w) for x, w in zip(c, widths)) + " |"  # noqa: E731
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in body]
    out.append(f"per call: generated kernels {fmt_time(kern_total)}; library ops "
               + ", ".join(f"{n} {fmt_time(t)}" for n, t in sorted(lib.items(), key=lambda x: -x[1])
                           if t >= 1e-4))
    return "\n".join(out)
