"""Run every benchmark of issue 6, one new process each, and print their tables.

    .venv/bin/python benchmarks/run_all.py [--quick] [--no-torch-compile] [--per-kernel]
    /tmp/benchvenv/bin/python benchmarks/run_all.py      # with PyTorch columns

Each script runs in its own process (so thread pools, kernel caches and
PyTorch's compile caches start the same way as when it is run alone) with
the same interpreter and the same options.  The output is what
``benchmarks/README.md`` pastes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = ["kernels.py", "train_step.py", "compile_time.py", "kernel_variants.py"]


def main() -> int:
    failed = []
    for name in SCRIPTS:
        print(f"==== benchmarks/{name} {' '.join(sys.argv[1:])}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, os.path.join(HERE, name), *sys.argv[1:]])
        print(f"==== {name}: {time.perf_counter() - t0:.0f} s, exit {proc.returncode}\n",
              flush=True)
        if proc.returncode != 0:
            failed.append(name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
