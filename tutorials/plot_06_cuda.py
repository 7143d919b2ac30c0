"""
The GPU path: CUDA tensors, generated CUDA kernels, the simulator
=================================================================

minaot runs on NVIDIA GPUs through Numba's CUDA target.  A tensor moved with
``.cuda()`` lives in GPU memory; eager ops on it run as small generated
kernels; ``minaot.compile`` on CUDA tensors picks the ``"cuda"`` backend,
which fuses the graph as the CPU backend does (then, with ``mix-reductions``,
merges a row reduction and a column reduction of the same rows into one
kernel: layer norm's backward) and emits ``@cuda.jit`` kernels instead of
``@njit`` loops.

This tutorial shows the two functions of the GPU benchmarks,
``gelu(x * w + b)`` and a row softmax, as CUDA kernel source, the launch
configuration chosen for their sizes, the results checked against numpy, a
gradient computed on the device, and the benchmark table measured on an H100.

These pages are built on a machine without a GPU, so every CUDA kernel below
ran on Numba's *CUDA simulator*, which runs each CUDA thread as a Python
thread.  The concepts are on the page :doc:`/concepts/cuda`.
"""

import os
import re
import subprocess
import sys
import tempfile
import textwrap

import numpy as np

import minaot
import minaot.nn.functional as F
from minaot import ir
from minaot.codegen.cuda_runtime import CudaUnavailableError
from minaot.codegen.numba_cuda import emit_numba_cuda, launch_config
from minaot.passes.decompose import Decompose
from minaot.passes.functionalize import functionalize
from minaot.passes.lower_to_loops import lower_kernel

# the checkout (for the child processes and benchmarks/README.md): minaot is installed
# from it in editable mode, or imported from it by docs/conf.py
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(minaot.__file__)))

# %%
# Is there a GPU?
# ---------------
# ``minaot.cuda.is_available()`` answers without raising: a usable GPU, or
# the simulator.  ``import minaot`` never imports ``numba.cuda``; the first
# CUDA tensor does, and without a GPU (and without the simulator) it raises
# ``CudaUnavailableError`` saying what is missing.  On the machine that
# built these pages:

print("CUDA available:", minaot.cuda.is_available(), "| simulator:", minaot.cuda.is_simulator())
try:
    print(minaot.ones(2, 3).cuda())
except CudaUnavailableError as exc:
    print("CudaUnavailableError:", exc)

# %%
# Running under the simulator
# ---------------------------
# Numba decides whether ``numba.cuda`` is the real target or the simulator
# when Numba is first imported, from the environment variable
# ``NUMBA_ENABLE_CUDASIM``.  On a laptop, run a script as
#
# .. code-block:: bash
#
#     NUMBA_ENABLE_CUDASIM=1 python my_script.py
#
# or set ``os.environ["NUMBA_ENABLE_CUDASIM"] = "1"`` at the top of the
# script, before ``import minaot``.  The process that builds these pages
# imported Numba long ago, so each CUDA example below is a script run in a
# fresh Python process with the variable set; its output is printed under
# it.  The simulator runs one Python thread per CUDA thread, so the sizes
# are tiny, and the generated kernels use blocks of at most 32 threads there
# (256 on a GPU).
#
# Every script starts with the same few lines: ``sys.setswitchinterval``
# makes the simulator's threads take turns faster (it matters for kernels
# that wait at ``cuda.syncthreads()``), and ``keep`` is the ``cuda``
# backend's compiler, :func:`minaot.cuda_compiler`, wrapped to keep the
# programs it builds so that we can look at them.

PRELUDE = """
import sys
import numpy as np
import minaot
import minaot.nn.functional as F
sys.setswitchinterval(1e-4)
minaot.manual_seed(0)

programs = []

def keep(graph, example_inputs):
    program = minaot.cuda_compiler(graph, example_inputs)
    programs.append(program)
    return program
"""


def simulate(script):
    """Run ``PRELUDE + script`` in a new Python process on Numba's CUDA simulator (and a
    new kernel cache directory); print what it prints."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "on_the_simulator.py")
        with open(path, "w") as f:
            f.write(PRELUDE + textwrap.dedent(script))
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINAOT_PRINT")}
        env.update(NUMBA_ENABLE_CUDASIM="1", MINAOT_CACHE_DIR=os.path.join(tmp, "cache"),
                   PYTHONPATH=os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        child = subprocess.run([sys.executable, path], env=env, cwd=tmp, capture_output=True,
                               text=True)
        if child.returncode:
            raise RuntimeError(f"the simulated script failed:\n{child.stdout}\n{child.stderr}")
        print(child.stdout.rstrip().replace(tmp + os.sep, ""))


# %%
# CUDA tensors
# ------------
# ``.cuda()``, ``.to("cuda")`` and ``device="cuda"`` make a tensor on the
# GPU; ``.cpu()`` copies it back.  Its memory is a Numba *device array*
# (on a GPU a ``DeviceNDArray``; under the simulator a ``FakeCUDAArray``
# around a numpy array), and views are device arrays over the same memory.
# An eager op on CUDA tensors runs as a small compiled program, cached by
# the op, its attributes, and the inputs' shapes and dtypes: a second call
# with the same shapes builds nothing.  ``__cuda_array_interface__`` lets
# CuPy, PyTorch or Numba read the tensor's memory without a copy.

simulate("""
    x = minaot.randn(2, 3).cuda()
    y = minaot.ones(3, device="cuda")
    print(x.device, type(x._data).__name__, y.to("cuda") is y)
    z = (x * 2 + y).t()                  # an eager op, a view of its result
    print(z)
    print("on the host:", type(z.cpu().numpy()).__name__, z.cpu().shape)
    print({k: v for k, v in x.__cuda_array_interface__.items() if k != "data"})
    (x * 2 + y).sum()                    # mul and add again: reused; sum: a new program
    print("eager programs:", dict(minaot.counters["cuda_eager"]))
    try:
        x.numpy()
    except TypeError as exc:
        print("TypeError:", exc)
""")

# %%
# A pointwise function: ``gelu(x * w + b)``
# -----------------------------------------
# :func:`minaot.compile` (backend ``"auto"``, the default) and
# :func:`minaot.aot_function` (no compiler given) choose the compiler by the
# device of the inputs: Numba CPU kernels for CPU tensors,
# :func:`minaot.cuda_compiler` for CUDA tensors;
# ``minaot.compile(fn, backend="cuda")`` asks for it by name.  The program
# takes CUDA tensors and returns CUDA tensors; nothing goes through the host.
#
# The script below compiles the first benchmark workload at 8 x 16, prints
# the kernel graph after ``fuse`` (the same graph the CPU backend gets), the
# generated CUDA module, and the grid the module launches, and checks the
# result against numpy.  In the source: the domain's two axes are collapsed
# into one flat range of ``8 * 16 = 128`` work items (``i0 = flat // 16``,
# ``i1 = flat % 16``), walked in a *grid-stride loop*, whose index is first
# declared non-negative (``flat = nonnegative(flat)``: the compiler may then
# skip the fix-ups of Python's ``//`` and ``%`` for negative numbers and the
# indices' wraparound checks); ``x`` and the result,
# of the domain's own shape, are read and written as ``load_at(in0, flat,
# (i0, i1))``: element ``flat`` of the array's memory where the array is
# C-contiguous (no index arithmetic at all), ``in0[i0, i1]`` through its
# strides otherwise (``minaot/kernels/flat_cuda.py``); the bias and ``w``
# are indexed by ``i1`` alone (the broadcast); every constant is a typed
# ``np.float32`` (a bare ``0.5`` would make the arithmetic float64, slow on
# a GPU); ``math.tanh`` is compiled by Numba to the CUDA math library's
# ``tanhf``.  ``launch`` is a plain Python function that launches the kernel
# as ``kernel[blocks, threads](...)`` with sizes computed from the static
# shapes.  The configuration printed under the source is the simulator's,
# with its small blocks; the table further down has what a GPU gets.
#
# On a GPU a program walks its steps in Python only twice per input
# geometry: the second call is *recorded* (each allocation, each launch and
# where each of its pointers lies) and later calls *replay* the launches
# with the new addresses put in, as one CUDA graph the driver launches with a
# single call (``minaot/cuda_replay.py``, ``minaot/cuda_graph.py``;
# :doc:`/concepts/cuda`, "Replaying calls").
# Under the simulator every call takes the ordinary path.

simulate("""
    def layer(x, w, b):
        return F.gelu(x * w + b, approximate="tanh")

    x, w, b = minaot.randn(8, 16), minaot.randn(16), minaot.randn(16)
    y = minaot.compile(layer)(x.cuda(), w.cuda(), b.cuda())     # backend "auto": cuda
    print(y.device, y.shape, "| graphs compiled by the cuda backend:", minaot.counters["cuda"]["graphs"])

    y = minaot.aot_function(layer, fw_compiler=keep)(x.cuda(), w.cuda(), b.cuda())
    program = programs[0]
    print(program.graph)
    (kernel,) = program.kernels.values()
    print(kernel.source)
    print("launch configuration (kernel, blocks, threads per block):", kernel.launch_config())

    h = x.numpy() * w.numpy() + b.numpy()
    want = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h ** 3)))
    print("max |cuda - numpy|:", np.abs(y.cpu().numpy() - want).max())
""")

# %%
# A row reduction: softmax
# ------------------------
# ``softmax(x, dim=1)`` fuses into one kernel that reduces axis 1 twice (the
# row's max, then the sum of ``exp(x - max)``) and then writes the row.  A row
# of 64 is long enough (``block_rows_min`` = 32) to give each row a *block*
# of threads: the grid has a block per row and a block's row is its number
# (``flat = cuda.blockIdx.x``; a grid with fewer blocks than rows would
# stride over them in a loop), and inside
# a row the threads split each reduction loop (``range(tid, 64, 32)``), each
# keeping its own partial max or sum in a register.  The partial values are
# then combined by *warp shuffles*: ``cuda.shfl_xor_sync(mask, v, 16)`` hands
# each thread the value of the lane 16 away, and after the steps 16, 8, 4, 2,
# 1 every lane of a warp holds the warp's max.  A block of several warps
# (256 threads on a GPU) then meets once in shared memory
# (``cuda.shared.array``, one value per warp, one ``cuda.syncthreads()``), so
# the row's max is an ordinary value in every thread afterwards, as in the
# CPU kernel.  Here the block has 32 threads, one warp, and needs no shared
# memory for it.  The last loop, the normalized row, is split over the
# threads too.  The three walks read the same elements in each thread, so
# the row comes from global memory once: each thread keeps its two elements
# in ``row_in0 = cuda.local.array(2, np.float32)``, indexed by the walk's
# count ``k`` (registers on a GPU).  The max is ``maximumf``, NaN-propagating
# like numpy's, one PTX instruction (``max.NaN.f32``) on recent GPUs.  The
# kernel carries ``@cuda.jit(max_registers=48)``: on a
# GPU, a register budget that lets five blocks share a multiprocessor (see
# :doc:`/concepts/cuda`); the simulator ignores it.

simulate("""
    def softmax(x):
        return F.softmax(x, dim=1)

    x = minaot.randn(4, 64)
    y = minaot.aot_function(softmax, fw_compiler=keep)(x.cuda())
    (kernel,) = programs[0].kernels.values()
    print(kernel.source)
    print("launch configuration:", kernel.launch_config())

    e = np.exp(x.numpy() - x.numpy().max(axis=1, keepdims=True))
    print("max |cuda - numpy|:", np.abs(y.cpu().numpy() - e / e.sum(axis=1, keepdims=True)).max())
""")

# %%
# Launch configurations at GPU sizes
# ----------------------------------
# Grid and block sizes are computed from the static shapes when the source
# is generated, so they can be printed without a GPU:
# ``minaot.codegen.numba_cuda.launch_config(loop_fn)`` gives (kernel,
# blocks, threads per block) for each kernel of a loop function, with the
# GPU defaults (256 threads a block, at most 65,535 blocks).  To get the
# loop functions at the benchmark sizes without allocating gigabytes, trace
# on numpy arrays that are never written (``np.empty`` commits no memory),
# then run the compiler's passes by hand: functionalize, decompose,
# ``fuse``, ``lower-to-loops``.


def loop_functions(fn, *shapes):
    """The loop functions of ``fn``'s kernels for float32 inputs of ``shapes``."""
    examples = [minaot.from_numpy(np.empty(s, np.float32)) for s in shapes]
    graph, _ = functionalize(minaot.trace(fn, *examples))
    ir.PassManager([Decompose(), "canonicalize", "cse", "dce", "fuse"], verify_each=True).run(graph)
    return [lower_kernel(op, f"{graph.name}_{op.attributes['name']}")
            for op in graph.ops if op.name == "kernel.fused"]


def gelu_layer(x, w, b):
    return F.gelu(x * w + b, approximate="tanh")


def softmax(x):
    return F.softmax(x, dim=1)


def sum_of_squares(x):
    return (x * x).sum()


cases = [("gelu(x*w+b), (16384, 4096)", gelu_layer, [(16384, 4096), (4096,), (4096,)]),
         ("gelu(x*w+b), (8, 16)", gelu_layer, [(8, 16), (16,), (16,)]),
         ("softmax rows, (16384, 4096)", softmax, [(16384, 4096)]),
         ("softmax rows, (16384, 16)", softmax, [(16384, 16)]),
         ("(x * x).sum(), 2^20", sum_of_squares, [(1 << 20,)]),
         ("(x * x).sum(), 1000", sum_of_squares, [(1000,)])]
print(f"{'function, size':30} {'kernel':16} {'blocks':>7} {'threads':>8}")
for title, fn, shapes in cases:
    for loop_fn in loop_functions(fn, *shapes):
        for name, blocks, threads in launch_config(loop_fn):
            print(f"{title:30} {name:16} {blocks:7} {threads:8}")
            title = ""

# %%
# Read the table from the top:
#
# * **Pointwise** (``gelu``): one thread per element; the grid is capped at
#   2,048 blocks of 256 threads (``POINTWISE_MAX_BLOCKS``), and the
#   grid-stride loop lets those 524,288 threads cover the 67 million
#   elements, 128 each.  At
#   8 x 16, one block of 128 threads is enough.
# * **Row reductions** (``softmax``): one block per row, 16,384 blocks of
#   256 threads for rows of 4,096 (16 elements per thread per loop).  Rows
#   of 16 are shorter than ``block_rows_min``: a block would leave most of
#   its threads idle, so each thread takes a whole row, serially, as on the
#   CPU.
# * **Full reductions** (``sum``): 2^20 elements is at least
#   ``grid_reduce_min`` (2^16), so it runs in two kernels: the first over a
#   grid of 1,024 blocks, each reducing its share to one partial sum; the
#   second, one block, adds the 1,024 partial sums.  (No block can wait for
#   another inside one kernel: the kernel boundary is the grid-wide barrier.)
#   A short sum runs in one block.
#
# * **Row and column reductions together** (not in the table: it needs the
#   backward graph): layer norm's backward sums over each row for the input
#   gradient and over the rows for the weight and bias gradients.  The
#   ``cuda`` backend runs ``mix-reductions`` after ``fuse`` and makes one
#   kernel of both: at (16384, 4096), 512 blocks each walk 32 rows, keeping
#   each thread's partial column sums in registers, then two small kernels
#   combine the 512 partial rows (launches ``512x256, 2048x256, 16x256`` in
#   the benchmark table below).  See :doc:`/concepts/fusion` and
#   :doc:`/concepts/cuda`.
#
# The two kernels of the two-pass sum, as generated for a GPU:

(loop_fn,) = loop_functions(sum_of_squares, (1 << 20,))
print(emit_numba_cuda(loop_fn, "(x * x).sum() on 2^20 float32, GPU launch options"))

# %%
# A training step on the device
# -----------------------------
# Gradients work as on the CPU: the forward and the backward graph are each
# compiled by the ``cuda`` backend, and ``w.grad`` lands on the GPU.  The
# matmuls are not fused: they run the register-blocked kernel of
# ``kernels/matmul_cuda.py`` (with 16-byte loads where the operands allow
# it, and on GPUs of compute capability 8.0 or later asynchronous
# ``cp.async`` copies of the tiles whose groups lie along shared rows), a
# library call between the generated kernels.
# The gradients are checked against the same computation in CPU eager mode.

simulate("""
    def loss_fn(x, w, b):
        return F.gelu(x @ w + b, approximate="tanh").sum()

    x, w, b = minaot.randn(8, 16), minaot.randn(16, 8), minaot.randn(8)
    wc = w.cuda().detach().requires_grad_()
    bc = b.cuda().detach().requires_grad_()
    loss = minaot.compile(loss_fn)(x.cuda(), wc, bc)
    loss.backward()
    print("loss on", loss.device, "| w.grad on", wc.grad.device)

    w.requires_grad_(); b.requires_grad_()
    loss_fn(x, w, b).backward()                  # CPU eager: the oracle
    for name, dev, cpu in (("w", wc, w), ("b", bc, b)):
        print(f"max |grad {name} cuda - cpu|:", np.abs(dev.grad.cpu().numpy() - cpu.grad.numpy()).max())
    print("cuda backend built", minaot.counters["cuda"]["graphs"], "graphs,",
          minaot.counters["cuda"]["kernels"], "kernels")
""")

# %%
# On a real GPU
# -------------
# Install the ``cuda`` extra (``pip install -e ".[cuda]"``, which brings
# ``numba-cuda``; see :doc:`/install` for the toolkit) and run the same
# scripts without ``NUMBA_ENABLE_CUDASIM``: the kernels above are compiled to
# PTX by Numba at their first launch, with 256 threads a block, and cached on
# disk beside their source (``MINAOT_CACHE_DIR``), as the CPU kernels are.
# Set ``MINAOT_PRINT_KERNELS=1`` to have every generated CUDA module printed
# as it is built.  Kernels are launched on the default stream and return at
# once, so time with ``minaot.cuda.synchronize()`` (or CUDA events, as the
# benchmark does) around the calls.  The test suites of the GPU path run on
# the simulator in CI and, as they are, on a GPU:
#
# .. code-block:: bash
#
#     python -m pytest -q -n 16 tests/test_cuda_tensor.py tests/cuda_cases.py tests/cuda_compile_cases.py
#     python benchmarks/cuda_kernels.py          # the table below
#     python benchmarks/cuda_kernels.py --sim    # tiny sizes on the simulator: a check, not a timing
#
# The benchmark table
# -------------------
# ``benchmarks/cuda_kernels.py`` times the GPU workloads (gelu, softmax,
# layer_norm forward and backward, an MLP training step) against PyTorch
# eager and ``torch.compile``, then every generated kernel alone as a
# fraction of the *copy-bound* time (the bytes it must move divided by the
# device's measured copy bandwidth: 1.0 is as fast as a kernel that reads
# and writes those bytes can be).  The last run, read from
# ``benchmarks/README.md`` when these pages were built:

with open(os.path.join(ROOT, "benchmarks", "README.md")) as f:
    readme = f.read()
table = re.search(r"<!-- gpu-table-start -->\n(.*?)<!-- gpu-table-end -->", readme, re.S)
print(table.group(1).replace("```\n", "").strip() if table else
      "benchmarks/README.md has no GPU table (between <!-- gpu-table-start/end --> markers)")
