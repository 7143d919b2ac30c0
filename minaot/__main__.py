"""``python -m minaot demo`` trains a small MLP with a compiled train step;
``python -m minaot explain FILE.py:FUNC SHAPE...`` prints every stage's IR for a function."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def _model_and_data(batch, seed=0):
    import minaot
    from minaot import nn

    minaot.manual_seed(seed)
    d_in, hidden, classes = 64, 256, 10
    teacher = minaot.randn(d_in, classes)
    x = minaot.randn(batch * 8, d_in)
    y = (x @ teacher).argmax(dim=1)

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(approximate="tanh"),
                                     nn.LayerNorm(hidden), nn.Linear(hidden, hidden),
                                     nn.GELU(approximate="tanh"), nn.Linear(hidden, classes))

        def forward(self, x, y):
            return nn.functional.cross_entropy(self.net(x), y)

    return Classifier(), x, y


def _batches(x, y, batch):
    n = x.shape[0] // batch
    k = 0
    while True:
        i = (k % n) * batch
        yield x[i:i + batch], y[i:i + batch]
        k += 1


def _compiled(model, partition=None):
    import minaot
    return minaot.aot_module(model, fw_compiler=minaot.numba_compiler,
                             bw_compiler=minaot.numba_compiler, partition_fn=partition)


def _first_step_seconds(batch):
    """Build the model, compile it, run one step: the compile cost of this process."""
    import minaot
    model, x, y = _model_and_data(batch)
    step = _compiled(model, minaot.min_cut_rematerialization_partition)
    t0 = time.perf_counter()
    step(x[:batch], y[:batch]).backward()
    return time.perf_counter() - t0


def _bar(k, n, width=24):
    done = int(width * k / max(n, 1))
    return "#" * done + "." * (width - done)


def demo(args) -> int:
    import numpy as np

    import minaot

    if args.first_step_only:
        print(json.dumps({"seconds": _first_step_seconds(args.batch),
                          "kernels": dict(minaot.counters["kernels"])}))
        return 0
    cache = args.cache_dir or tempfile.mkdtemp(prefix="minaot-demo-cache-")
    os.environ["MINAOT_CACHE_DIR"] = cache
    print(f"minaot {minaot.__version__} demo: an MLP classifier trained with a compiled train step")
    print(f"kernel cache: {cache}{' (fresh: a cold compile)' if not args.cache_dir else ''}\n")

    model, x, y = _model_and_data(args.batch)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"model: {model.net}\n{nparams} parameters; data {tuple(x.shape)}, batch {args.batch}\n")

    # -- compile: the first step traces, functionalizes, differentiates, partitions, fuses, codegens
    step = _compiled(model, minaot.min_cut_rematerialization_partition)
    opt = minaot.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    data = _batches(x, y, args.batch)
    xb, yb = next(data)
    t0 = time.perf_counter()
    loss = step(xb, yb)
    loss.backward()
    cold = time.perf_counter() - t0
    opt.step()
    opt.zero_grad()

    entry = next(iter(step.compiled.cache.values()))
    prog = entry.runner
    fw, bw = prog.fw, prog.backward()
    print("IR size after each stage (ops):")
    rows = [("trace (mt)", len(entry.mt_graph.ops)), ("functionalize + decompose (prim)", len(entry.graph.ops)),
            ("joint forward+backward", len(prog.joint.ops)),
            ("partition: forward / backward", f"{len(prog.fw_graph.ops)} / {len(prog.bw_graph.ops)}"),
            ("fuse: forward / backward (kernels + library calls)", f"{len(fw.graph.ops)} / {len(bw.graph.ops)}"),
            ("kernels generated: forward / backward", f"{len(fw.kernels)} / {len(bw.kernels)}"),
            ("loop level: ops in all kernels", sum(len(list(k.loop.walk())) for k in
                                                   list(fw.kernels.values()) + list(bw.kernels.values())))]
    for name, n in rows:
        print(f"  {name:<52} {n}")

    joint = prog.joint
    dfw, _ = minaot.default_partition(joint, prog.info.num_fwd_outputs)
    mfw, _ = minaot.min_cut_rematerialization_partition(joint, prog.info.num_fwd_outputs)
    d, m = dfw.partition_report, mfw.partition_report
    print("\npartition report (activations saved for the backward):")
    print(f"  default: {len(d.saved):3d} values, {d.saved_bytes:>9,d} bytes")
    print(f"  min-cut: {len(m.saved):3d} values, {m.saved_bytes:>9,d} bytes, "
          f"{len(m.recomputed)} ops recomputed in the backward")

    cached = None
    if not args.no_subprocess:
        env = dict(os.environ, MINAOT_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-m", "minaot", "demo", "--first-step-only",
                              "--batch", str(args.batch)], env=env, capture_output=True, text=True)
        if out.returncode == 0:
            cached = json.loads(out.stdout.strip().splitlines()[-1])
    print("\ncompile time (first train step, forward + backward):")
    print(f"  cold, this process:            {cold:6.2f} s")
    if cached is not None:
        k = cached["kernels"]
        print(f"  cached, a new process:         {cached['seconds']:6.2f} s "
              f"({k.get('numba_cache_hits', 0)} kernels loaded, {k.get('numba_compiles', 0)} compiled)")

    print(f"\ntraining {args.steps} steps (fused Adam, lr 1e-3):")
    times = []
    for k in range(1, args.steps + 1):
        xb, yb = next(data)
        t0 = time.perf_counter()
        loss = step(xb, yb)
        loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t0)
        if k % max(1, args.steps // 10) == 0 or k == args.steps:
            print(f"\r  step {k:4d} [{_bar(k, args.steps)}] loss {loss.item():.4f}", end="", flush=True)
    print()
    with minaot.no_grad():
        acc = float((model.net(x).argmax(dim=1) == y).float().mean().item())
    print(f"  training accuracy: {acc:.3f}")

    eager_model, _, _ = _model_and_data(args.batch)
    eopt = minaot.optim.Adam(eager_model.parameters(), lr=1e-3)
    etimes = []
    for _ in range(min(args.steps, 30)):
        xb, yb = next(data)
        t0 = time.perf_counter()
        eager_model(xb, yb).backward()
        eopt.step()
        eopt.zero_grad()
        etimes.append(time.perf_counter() - t0)
    c, e = statistics.median(times[5:] or times), statistics.median(etimes[3:] or etimes)
    print("\nstep time (median, forward + backward + Adam):")
    print(f"  minaot eager:    {e * 1e3:7.2f} ms")
    print(f"  minaot compiled: {c * 1e3:7.2f} ms   ({e / c:.1f}x)")
    print(f"\ncounters: {dict(minaot.counters['kernels'])}")
    del np
    return 0


def _parse_shape(text):
    """``4x8`` or ``4x8:f64`` (any IR dtype spelling, ``i32``, ``ui8``..., or a dtype name)
    -> (shape, dtype name)."""
    from .dtypes import _BY_IR
    shape, _, dtype = text.partition(":")
    dims = tuple(int(s) for s in shape.split("x") if s) if shape not in ("", "scalar") else ()
    return dims, _BY_IR[dtype].name if dtype in _BY_IR else dtype or "float32"


def explain(args) -> int:
    """Print every stage's IR for FILE.py:FUNC at the given example shapes."""
    import importlib.util

    import minaot
    from minaot.numba_backend import NumbaProgram

    path, _, name = args.target.partition(":")
    spec = importlib.util.spec_from_file_location("_minaot_explain", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fn = getattr(mod, name)
    inputs = []
    for s in args.shapes:
        shape, dtype = _parse_shape(s)
        t = minaot.randn(*shape, dtype=getattr(minaot, dtype)) if "float" in dtype else \
            minaot.zeros(*shape, dtype=getattr(minaot, dtype))
        inputs.append(t.requires_grad_() if args.grad and t.dtype.is_floating_point else t)

    def show(title, text):
        print(f"\n===== {title} =====\n{text}")

    show("trace (mt dialect)", minaot.trace(fn, *inputs))
    captured = {}

    def capture(kind):
        def compiler(graph, example_inputs):
            captured[kind] = graph.clone()
            return NumbaProgram(graph)
        return compiler

    cf = minaot.aot_function(fn, fw_compiler=capture("forward"), bw_compiler=capture("backward"),
                             inference_compiler=capture("inference"),
                             partition_fn=minaot.min_cut_rematerialization_partition)
    out = cf(*inputs)
    entry = next(iter(cf.cache.values()))
    show("functionalize + decompose (prim dialect)", entry.graph)
    if args.grad:
        outs = out if isinstance(out, (tuple, list)) else (out,)
        sum(o.sum() for o in outs if o.requires_grad).backward()
        show("joint forward+backward", entry.runner.joint)
        print(entry.runner.report)
        programs = [("forward", entry.runner.fw), ("backward", entry.runner.backward())]
    else:
        programs = [("inference", entry.compiled)]
    for kind, prog in programs:
        show(f"{kind}: partitioned prim graph", captured[kind])
        show(f"{kind}: fused (kernel dialect) -> loops -> Numba source", prog.stage_text())
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="minaot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="train a small MLP with a compiled train step")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--cache-dir", help="kernel cache to use (default: a fresh temporary one)")
    p.add_argument("--no-subprocess", action="store_true", help="skip the cached-compile measurement")
    p.add_argument("--first-step-only", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=demo)
    e = sub.add_parser("explain", help="print every stage's IR for a function")
    e.add_argument("target", help="FILE.py:FUNC")
    e.add_argument("shapes", nargs="*", help="example input shapes, e.g. 4x8 8 4x8:f64")
    e.add_argument("--grad", action="store_true", help="inputs require grad: show joint, fw, bw")
    e.set_defaults(func=explain)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
