"""The instruction mix of the matmul kernels' tile loop, without a GPU.

Compiles a kernel of ``kernels/matmul_cuda.py`` for sm_90 (the H100) the way
the device would: Numba-CUDA's ``compile_ptx`` (libnvvm) to PTX, ``ptxas`` to
a cubin, ``nvdisasm`` to SASS; then finds the loops of the SASS (backward
branches) and prints, for each loop with multiply-adds in it, how many
instructions it issues per ``FFMA`` and which.  That count is what the
vectorized kernel's tuning was about (docs/concepts/cuda.md, "The matmul
kernels": 641 -> 589 instructions per 512 multiply-adds), and this script
found it on a laptop.  The device's own compiler (the driver's) allocates
registers a little differently: check spills and timings on the GPU
(``ptxas -v``'s report is printed here as a hint only).

It needs a toolchain that minaot does not depend on, in a venv of its own::

    python3 -m venv /tmp/cv
    /tmp/cv/bin/pip install numba-cuda==0.30.4 "numpy<2.5" networkx nvidia-cuda-nvcc-cu12 \\
        nvidia-cuda-nvrtc-cu12 nvidia-cuda-runtime-cu12 nvidia-cuda-nvdisasm
    /tmp/cv/bin/pip install --no-deps -e .
    /tmp/cv/bin/python benchmarks/matmul_sass.py                     # the wide blocking
    /tmp/cv/bin/python benchmarks/matmul_sass.py --bk 8 --layout tn  # others

No GPU is needed: the kernel's device functions are compiled for compute
capability 9.0 without asking a driver.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import subprocess
import sys
import tempfile

INSTRUCTION = re.compile(r"/\*([0-9a-f]{4,})\*/\s+((?:@!?U?P\w+\s+)?)([A-Z][A-Z0-9_.]+)([^;]*);")
LABEL = re.compile(r"^\s*(\.L_x_\d+):")


def instructions(sass: str):
    """``[(address, opcode, operands)]`` of a SASS listing, and ``{label: address}``."""
    out, labels, pending = [], {}, []
    for line in sass.splitlines():
        m = LABEL.match(line)
        if m:
            pending.append(m.group(1))
            continue
        m = INSTRUCTION.search(line)
        if m:
            address = int(m.group(1), 16)
            for name in pending:
                labels[name] = address
            pending = []
            out.append((address, m.group(3), m.group(4).strip()))
    return out, labels


def loops(sass: str):
    """``[(start, end, Counter of opcodes)]``: the body of every backward branch."""
    ins, labels = instructions(sass)
    found = []
    for address, op, operands in ins:
        if not op.startswith("BRA"):
            continue
        m = re.search(r"(\.L_x_\d+)", operands)
        if m and labels.get(m.group(1), address) < address:
            start = labels[m.group(1)]
            body = collections.Counter(o.split(".")[0] for a, o, _ in ins if start <= a <= address)
            found.append((start, address, body))
    return found


def report(sass: str) -> str:
    lines = []
    for start, end, body in loops(sass):
        ffma = body["FFMA"]
        if not ffma:
            continue
        total = sum(body.values())
        lines.append(f"loop {start:#06x}-{end:#06x}: {total} instructions, {ffma} FFMA, "
                     f"{total / ffma:.3f} per FFMA")
        lines.append("    " + ", ".join(f"{op} {n}" for op, n in body.most_common(16)))
    return "\n".join(lines) or "no loop with FFMA found"


def _tool(pattern: str) -> str:
    import nvidia
    for root in nvidia.__path__:
        hits = sorted(glob.glob(os.path.join(root, pattern)))
        if hits:
            return hits[0]
    raise SystemExit(f"{pattern} not found: install the packages this script's text names")


def compile_sass(kernel, sig, regs: int) -> tuple[str, str]:
    """``(ptxas report, SASS)`` of ``kernel`` (a ``cuda.jit`` dispatcher) for sm_90."""
    from numba import cuda
    import numba.cuda.dispatcher as dispatcher

    class _SM90:                        # device functions ask for the current device's
        compute_capability = (9, 0)     # capability: answer without a driver
    dispatcher.get_current_device = lambda: _SM90()
    ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(9, 0))
    with tempfile.TemporaryDirectory() as tmp:
        src, cubin = os.path.join(tmp, "k.ptx"), os.path.join(tmp, "k.cubin")
        with open(src, "w") as f:
            f.write(ptx)
        opts = [f"--maxrregcount={regs}"] if regs else []
        done = subprocess.run([_tool("cuda_nvcc/bin/ptxas"), "-arch=sm_90", "-O3", "-v", *opts,
                               src, "-o", cubin], capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"ptxas failed:\n{done.stderr}")
        sass = subprocess.run([_tool("*/bin/nvdisasm"), "-c", cubin], capture_output=True,
                              text=True, check=True).stdout
    info = [ln for ln in done.stderr.splitlines() if "registers" in ln]
    return "\n".join(info), sass


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bk", type=int, default=None, help="K step (default: the wide blocking's)")
    p.add_argument("--layout", default="nn", choices=["nn", "nt", "tn", "tt"],
                   help="A and B as stored (n) or transposed views (t)")
    p.add_argument("--blocking", default=None,
                   help="bm,bn,bk,tm,tn,pad[,regs] instead of the wide blocking (groups of 4)")
    p.add_argument("--blocked", action="store_true", help="the blocked kernel, not vectorized")
    p.add_argument("--masked", action="store_true", help="K not a multiple of the K step")
    p.add_argument("--no-async", action="store_true",
                   help="the vectorized kernel without its asynchronous copies (cp.async)")
    args = p.parse_args(argv)
    from dataclasses import replace
    from numba import types
    from minaot.kernels import matmul_cuda as mc
    blocking = mc.BLOCKINGS_F32[0]
    if args.blocking:
        spec = [int(v) for v in args.blocking.split(",")] + [0]
        blocking = mc.Blocking(*spec[:6], vec=4, regs=spec[6])
    if args.blocked:
        blocking = blocking.blocked()
    if args.bk:
        blocking = replace(blocking, bk=args.bk, fallback=None)
    a_k_fast, b_n_fast = args.layout[0] == "n", args.layout[1] == "n"
    f32, i64 = types.float32, types.int64
    out = types.Array(f32, 3, "C")
    if args.blocked:
        kernel = mc.blocked_kernel(mc.np.float32, blocking, a_k_fast, b_n_fast, True)
        sig = (types.Array(f32, 3, "A"), types.Array(f32, 3, "A"), out, f32, i64, i64)
    else:
        kernel = mc.vectorized_kernel(blocking, a_k_fast, b_n_fast, not args.masked, True,
                                      not args.no_async)
        flat = types.Array(f32, 1, "C")
        sig = (flat, i64, i64, i64, flat, i64, i64, i64, out, i64, i64, i64, f32, i64, i64)
    info, sass = compile_sass(kernel, sig, blocking.regs)
    print(f"{'blocked' if args.blocked else 'vectorized'} kernel, {blocking}, layout "
          f"{args.layout}{', K masked' if args.masked else ''}"
          f"{', no cp.async' if args.no_async else ''}; ptxas (sm_90): {info.strip()}")
    print(report(sass))


if __name__ == "__main__":
    sys.exit(main())
