"""Compile-time benchmarks (issue 6, workloads 5 and 6).

(5) The train step of ``train_step.py`` (MLP 784-1024-1024-10, GELU, cross
    entropy, Adam; forward and backward compiled by ``aot_module`` with
    ``numba_compiler``):

    * cold: a new process with a fresh, empty ``MINAOT_CACHE_DIR``; compile
      time = the first step (trace, joint graph, partition, fuse, lower,
      generate, Numba compiles every kernel; the backward at the first
      ``backward()``) minus a steady step;
    * cached: a second new process with the same cache directory: the kernel
      source files are found and Numba loads their machine code (the counters
      printed beside show it compiled nothing);
    * guard overhead per call: a compiled ``x + 1`` on a 4-element tensor,
      called through ``minaot.compile`` (guard key, cache lookup, runtime
      wrapper), through the compiled program directly, and as the bare Numba
      kernel; the differences are the guard and the program's own overhead.
      Also the guard key alone for the train step's call (6 parameters).

(6) The pass pipeline on pointwise chains of 10, 100 and 1000 ops: trace,
    functionalize, decompose (+ canonicalize, cse, dce), fuse, lower-to-loops
    and source generation (no Numba compile); time per op should stay flat
    as the chain grows.

    .venv/bin/python benchmarks/compile_time.py [--quick]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import _common as C  # first: sets thread counts before numpy is imported
from _common import np

HERE = os.path.dirname(os.path.abspath(__file__))


# --- (5) cold and cached compile of the train step, each in a new process -------------

def child() -> None:
    """Run in a new process: one compiled train step from scratch; prints a JSON line."""
    t0 = time.perf_counter()
    import minaot
    import train_step as T
    t_import = time.perf_counter() - t0
    fns, compiled = T.implementations("none", with_torch_compile=False)
    step = fns["minaot numba"]
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    steady = C.time_it(step, warmup=1, repeat=3)
    progs = C.numba_programs(compiled.compiled)
    print(json.dumps({
        "import": t_import, "first": first, "steady": steady,
        "codegen": sum(p.compile_time for p in progs),
        "kernels": dict(minaot.counters["kernels"]),
        "n_kernels": C.kernel_count(compiled.compiled),
    }))


def run_child(cache_dir: str) -> dict:
    env = dict(os.environ, MINAOT_CACHE_DIR=cache_dir)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child"], env=env,
                          capture_output=True, text=True, cwd=HERE)
    if proc.returncode != 0:
        raise RuntimeError(f"compile_time child failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def per_call(fn, calls: int = 2000) -> float:
    """Median seconds per call of ``fn()``, timed in batches of ``calls``."""
    def batch():
        for _ in range(calls):
            fn()
    return C.time_it(batch, warmup=1, repeat=7) / calls


def guard_overhead() -> list:
    import minaot
    import train_step as T
    from minaot.aot import guard_key
    from minaot import pytree

    def add_one(x):
        return x + 1

    x = minaot.tensor(np.arange(4, dtype=np.float32))
    cf = minaot.compile(add_one, backend="numba")
    cf(x)
    prog = C.numba_programs(cf)[0]
    kern = next(iter(prog.kernels.values()))
    xa, out = x.numpy(), np.empty(4, np.float32)
    t_call = per_call(lambda: cf(x))
    t_prog = per_call(lambda: prog(x))
    t_kernel = per_call(lambda: kern.fn(xa, out))

    model = T.MLPWithLoss("none")
    mod = minaot.aot_module(model)
    params = tuple(model.parameters())
    args = (params, (), tuple(m.training for m in model.modules()),
            (minaot.zeros(512, 784), minaot.zeros(512, dtype=minaot.int64)), {})
    leaves, spec = pytree.flatten((args, {}))
    t_key = per_call(lambda: guard_key(leaves, spec), calls=500)
    del mod
    return [
        ("compiled x + 1, 4 elements: whole call", t_call),
        ("  compiled program called directly", t_prog),
        ("  bare Numba kernel", t_kernel),
        ("  guard + cache lookup + wrapper (call - program)", t_call - t_prog),
        ("  program overhead (program - kernel)", t_prog - t_kernel),
        ("guard key alone, train-step call (8 tensors)", t_key),
    ]


# --- (6) the pass pipeline on pointwise chains -------------------------------------------

def chain_fn(n: int):
    """A chain of ``n`` pointwise ops on (1024,) float32 that nothing folds away."""
    import minaot

    def chain(x, y):
        for i in range(n):
            k = i % 5
            if k == 0:
                x = x * y
            elif k == 1:
                x = x + y
            elif k == 2:
                x = minaot.tanh(x)
            elif k == 3:
                x = x - y
            else:
                x = minaot.sigmoid(x)
        return x
    return chain


def pipeline_times(n: int) -> dict:
    import minaot
    from minaot.codegen.numba_cpu import emit_numba_cpu
    from minaot.ir import PassManager
    from minaot.passes.decompose import Decompose
    from minaot.passes.functionalize import functionalize
    from minaot.passes.lower_to_loops import lower_kernel

    x, y = minaot.randn(1024), minaot.randn(1024)
    times = {}
    t = time.perf_counter()
    g = minaot.trace(chain_fn(n), x, y, name=f"chain{n}")
    times["trace"] = time.perf_counter() - t
    t = time.perf_counter()
    g, _ = functionalize(g)
    times["functionalize"] = time.perf_counter() - t
    t = time.perf_counter()
    PassManager([Decompose(), "canonicalize", "cse", "dce"], verify_each=False).run(g)
    times["decompose+simplify"] = time.perf_counter() - t
    t = time.perf_counter()
    PassManager(["fuse"], verify_each=False).run(g)
    times["fuse"] = time.perf_counter() - t
    kops = [op for op in g.ops if op.name == "kernel.fused"]
    t = time.perf_counter()
    loops = [lower_kernel(op, f"chain{n}_{i}") for i, op in enumerate(kops)]
    times["lower"] = time.perf_counter() - t
    t = time.perf_counter()
    for loop in loops:
        emit_numba_cpu(loop)
    times["codegen"] = time.perf_counter() - t
    times["total"] = sum(times.values())
    times["kernels"] = len(kops)
    return times


def main():
    if "--child" in sys.argv:
        child()
        return
    cache = tempfile.mkdtemp(prefix="minaot-bench-cold-")
    cold = run_child(cache)
    cached = run_child(cache)
    print(C.machine())
    print()
    print("(5) compile time of the train step (MLP 784-1024-1024-10, GELU erf, CE, Adam), "
          "each in a new process")
    rows = []
    for name, r in (("cold (empty cache dir)", cold), ("cached (same dir, new process)", cached)):
        rows.append([name, f"{r['first'] - r['steady']:.2f} s", f"{r['first']:.2f} s",
                     f"{r['steady'] * 1e3:.0f} ms", f"{r['codegen']:.2f} s",
                     f"{r['import']:.2f} s",
                     " ".join(f"{k}={v}" for k, v in sorted(r["kernels"].items()))])
    print(_plain_table(["", "compile (first - steady)", "first step", "steady step",
                        "fuse+lower+codegen+load", "import minaot", "kernel counters"], rows))
    print(f"kernels (fw + bw): {cold['n_kernels']}")
    print()
    print("(5) per-call overhead (median of batches of calls)")
    print(_plain_table(["", "per call"], [[n, C.fmt_time(t)] for n, t in guard_overhead()]))
    print()
    print("(6) pass pipeline time for pointwise chains (trace .. codegen, no Numba compile)")
    sizes = (10, 100, 1000)
    rows = []
    stages = ["trace", "functionalize", "decompose+simplify", "fuse", "lower", "codegen", "total"]
    for n in sizes:
        pipeline_times(n)                          # warm-up (imports, first-use caches)
        best = min((pipeline_times(n) for _ in range(1 if C.quick() else 3)),
                   key=lambda r: r["total"])
        rows.append([f"{n} ops ({best['kernels']} kernels)"] +
                    [f"{best[s] * 1e3:.1f} ms" for s in stages] +
                    [f"{best['total'] / n * 1e6:.0f} us"])
    print(_plain_table(["chain"] + stages + ["total per op"], rows))


def _plain_table(head, rows) -> str:
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(r) for r in rows])


if __name__ == "__main__":
    main()
