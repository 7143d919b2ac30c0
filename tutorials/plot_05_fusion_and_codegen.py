"""
Fusion and code generation: one function down to machine code
=============================================================

The ``"numba"`` backend turns a ``prim`` graph into generated Numba kernels.
This tutorial follows one function, a dense layer with a GELU,
``gelu(x @ w + b)``, through every level: the traced ``mt`` graph, the
``prim`` graph the compiler receives, the ``kernel`` graph after ``fuse``,
the loop IR of its kernel after ``lower-to-loops``, the Python source that
``emit-numba-cpu`` prints, and finally a few lines of the LLVM IR that Numba
makes of it.  Then it runs the kernel, compares it with eager mode and reads
the counters of the kernel cache.
"""

import os
import re
import subprocess
import sys
import tempfile
import textwrap

import numba

import minaot
import minaot.nn.functional as F
from minaot.passes.lower_to_loops import lower_kernel
from minaot.testing import assert_close

minaot.manual_seed(0)


def layer(x, w, b):
    return F.gelu(x @ w + b, approximate="tanh")


x, w, b = minaot.randn(256, 64), minaot.randn(64, 512), minaot.randn(512)

# %%
# Level 1: the traced ``mt`` graph
# --------------------------------
# Tracing records the ops as the user called them: a matmul, an add that
# broadcasts ``b`` over the rows, and one high-level ``gelu``.

print(minaot.trace(layer, x, w, b))

# %%
# Level 2: the ``prim`` graph
# ---------------------------
# :func:`minaot.numba_compiler` is a graph compiler like any other
# (``compiler(graph, example_inputs) -> callable``), so it can be passed as
# ``fw_compiler`` to :func:`minaot.aot_function`;
# ``minaot.compile(layer, backend="numba")`` is the short form.  To look at
# what it built, wrap it in a compiler that keeps the program it returns.  The
# first call traces, functionalizes, decomposes, compiles and runs.

programs = []


def numba_keep(graph, example_inputs):
    program = minaot.numba_compiler(graph, example_inputs)
    programs.append(program)
    return program


compiled = minaot.aot_function(layer, fw_compiler=numba_keep)
y = compiled(x, w, b)
program = programs[0]
print(program.prim)

# %%
# ``gelu`` decomposed into its tanh formula:
# ``0.5 * h * (1 + tanh(sqrt(2/pi) * (h + 0.044715 * h**3)))``, with
# ``h**3`` already written as two multiplies.  Ten pointwise ops, each of
# which would read and write a 256x512 tensor if run one by one.

# %%
# Level 3: the ``kernel`` graph
# -----------------------------
# ``fuse`` groups the pointwise ops into one ``kernel.fused`` op.  The matmul
# stays outside as a library call (numpy's BLAS).  The kernel's attributes
# say how it iterates: ``domain`` is the iteration shape, ``reduce`` the axes
# it reduces (none here), and ``in_maps`` the index map of each input: the
# matmul result follows both domain axes (``[0, 1]``), the bias only the
# second (``[1]``): that is the broadcast.  The constants are copied into the
# region; inside it, values are never written to memory.

print(program.graph)

# %%
# Level 4: the loop IR
# --------------------
# ``lower-to-loops`` makes the kernel a function over buffers (``memref``):
# its inputs, then its outputs.  The first domain axis is an ``scf.parallel``
# loop, the second an ``scf.for``; in the body, each input is one
# ``memref.load`` (the bias is indexed by ``%8`` only), each prim op becomes
# ``arith``/``math`` scalar ops, and one ``memref.store`` writes the result.
# Constants are hoisted to the top.

kernel = program.kernels["layer_k0"]
print(lower_kernel(kernel.op, kernel.name))

# %%
# ``math.tanh`` is the one op here that is not plain arithmetic: a libm
# function, which LLVM cannot vectorize here.  The backend runs one more
# loop-level pass before code generation, ``approximate-math``, which
# rewrites float32 ``tanh``, ``exp``, ``log`` and ``erf`` into arithmetic;
# ``kernel.loop`` is the loop function after it.  The ``tanh`` became a
# clamped rational function ``x * P(x**2) / Q(x**2)``: multiplies, adds,
# one divide and four compare-and-selects (the clamps).
names = [op.name for op in kernel.loop.walk()]
print("math.tanh left:", "math.tanh" in names)
print("arith ops per element:", sum(n.startswith("arith.") and n != "arith.constant" for n in names))

# %%
# Level 5: the Numba source
# -------------------------
# ``emit-numba-cpu`` prints one Python statement per loop-level op.
# ``scf.parallel`` became ``prange`` (Numba runs its iterations on several
# threads), ``scf.for`` a ``range`` loop, loads and stores array indexing.
# The arguments are named ``in0, in1, out0`` as in the loop IR's signature,
# the loop indices ``i0, i1`` after the domain axes, the other values
# ``v5, v6, ...`` in the order the loop IR defines them.  Constants are
# typed (``np.float32(0.5)``): a bare ``0.5`` would make the arithmetic
# float64.  The first line names the kernel and the prim ops it fuses.  The
# ``tanh`` is now the arithmetic ``approximate-math`` wrote.

here = os.path.dirname(kernel.op.loc.file) + os.sep
print(kernel.source.replace(here, ""))

# %%
# The source is written to the kernel cache directory as a module of its
# own, and ``kernel.fn`` is the Numba dispatcher defined there:

print(type(kernel.fn).__name__, kernel.fn.py_func.__code__.co_filename.replace(os.path.expanduser("~"), "~"))

# %%
# Set ``MINAOT_PRINT_KERNELS=1`` in the environment to have every kernel's
# source printed as it is built.

# %%
# Run it and compare with eager mode
# ----------------------------------
# The compiled result equals the eager one within float32 tolerances.  The
# first call included tracing, the passes and Numba's compile (or the load of
# its cached machine code); later calls with the same shapes only run the
# matmul and the kernel.  (How fast that is, against numpy and PyTorch, is
# measured by the scripts in ``benchmarks/``.)

assert_close(y, layer(x, w, b), rtol=1e-5, atol=1e-5)
assert_close(compiled(x, w, b), layer(x, w, b), rtol=1e-5, atol=1e-5)
print("compiled == eager")

# %%
# Counters
# --------
# ``minaot.counters["numba"]`` counts the graphs and kernels the backend
# built; ``minaot.counters["kernels"]`` counts the kernel cache.  A
# ``source_miss`` means the kernel's file was written now, a
# ``source_hit`` that an earlier process had written it; after the first call,
# ``numba_compiles`` and ``numba_cache_hits`` say whether Numba compiled the
# kernel or loaded its machine code from its own cache beside the file.  On a
# cold cache this shows a miss and a compile; run again, hits.

print("numba:  ", dict(minaot.counters["numba"]))
print("kernels:", dict(minaot.counters["kernels"]))

# %%
# A second process compiles nothing: it finds the source file, imports it,
# and Numba loads the machine code.  To see it, write the function to a
# script and run it twice, in two fresh Python processes sharing a new cache
# directory (``MINAOT_CACHE_DIR``).  The cache key is a hash of the kernel's
# source, whose first line names the user's file and line, so the same
# function in the same place finds its kernels again.

script = textwrap.dedent("""
    import minaot
    import minaot.nn.functional as F

    def layer(x, w, b):
        return F.gelu(x @ w + b, approximate="tanh")

    x, w, b = minaot.randn(256, 64), minaot.randn(64, 512), minaot.randn(512)
    minaot.compile(layer, backend="numba")(x, w, b)
    print(dict(minaot.counters["kernels"]))
""")
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "dense.py")
    with open(path, "w") as f:
        f.write(script)
    env = dict(os.environ, MINAOT_CACHE_DIR=os.path.join(tmp, "cache"))
    for run in ("first process: ", "second process:"):
        child = subprocess.run([sys.executable, path], env=env, capture_output=True, text=True,
                               check=True)
        print(run, child.stdout.strip())
    print("cache files:", sorted(os.listdir(os.path.join(tmp, "cache"))))

# %%
# A glimpse of the LLVM IR
# ------------------------
# Numba compiles the source to LLVM IR, which LLVM optimizes and turns into
# machine code.  ``kernel.fn.inspect_llvm()`` returns it, one text per
# compiled signature, but only for code Numba compiled in this process; a
# kernel loaded from Numba's cache has no IR to show.  A fresh, uncached copy
# of the same Python function with the same options always does:

options = {k: v for k, v in kernel.fn.targetoptions.items() if k not in ("cache", "nopython")}
fresh = numba.njit(**options)(kernel.fn.py_func)
signature = kernel.fn.signatures[0]
fresh.compile(signature)
llvm = fresh.inspect_llvm(signature)
print(f"{len(llvm.splitlines())} lines of LLVM IR; the lines on vectors of floats:")
vector = re.compile(r"<\d+ x float>")
for line in llvm.splitlines():
    if vector.search(line) and ("load" in line or "store" in line or " = f" in line or "call" in line):
        print(line.strip()[:110])

# %%
# The element loop is vectorized: ``<8 x float>`` is eight float32 lanes of
# an AVX register (the width depends on the CPU), and each line is one of the
# scalar ops of the loop IR, done on eight elements at once.  The flags
# ``reassoc nsz arcp contract afn`` are the ``fastmath`` set the kernel was
# compiled with.  Without ``approximate-math``, the ``tanh`` is an LLVM
# intrinsic on a vector, ``@llvm.tanh.v8f32``, but with no vector math
# library the code generator expands it into eight scalar ``tanhf`` calls,
# one lane at a time; ``fresh.inspect_asm(signature)`` shows the machine code.
# Those calls are what ``approximate-math`` replaces with arithmetic.
