"""
The IR and tracing
==================

minaot's compiler works on a small MLIR-style IR: SSA values with types,
operations named ``dialect.op``, blocks, regions and ``func.func``.  This
tutorial traces a function into the ``mt`` dialect, reads the IR as data,
prints it and parses it back, runs passes with a ``PassManager``, writes a
rewrite pattern of its own, and shows what tracing cannot record.
"""

import os

import minaot
from minaot import ir
from minaot.passes.canonicalize import PATTERNS
from minaot.testing import assert_close

minaot.manual_seed(0)

# %%
# Tracing
# -------
# :func:`minaot.trace` runs the function on *fake* tensors (shape, dtype,
# device and strides, no values) and records every op it calls as an ``mt``
# op, in order.  Nothing is computed.


def layer(x, w, b):
    h = x @ w + b
    return h.tanh().sum(dim=1)


x, w, b = minaot.randn(4, 3), minaot.randn(3, 5), minaot.randn(5)
fn = minaot.trace(layer, x, w, b)
print(fn)

# %%
# Every op also carries the user's source line; ``format(debuginfo=True)``
# prints it as ``loc(...)``.  Errors in any later pass point at this line.
# (The directory is cut from the file names here to keep the lines short.)

here = os.path.dirname(fn.ops[0].loc.file) + os.sep
print(fn.format(debuginfo=True).replace(here, ""))

# %%
# The IR is plain Python data
# ---------------------------
# A function has ``args`` (its block arguments), ``ops`` (the body in order)
# and ``results``.  Each value knows its type, the op that defines it and
# its uses.

print("args:   ", fn.args)
print("results:", fn.results)
for op in fn.ops:
    print(f"{op.name:10s} operands {[str(v.type) for v in op.operands]} attrs {dict(op.attributes)}")
h = fn.ops[0].result
print("the matmul result", h, "is used by", [(u.name, i) for u, i in h.uses])

# %%
# Text round trip and the reference interpreter
# ---------------------------------------------
# The printed text parses back to the same function (names ``%0, %1, ...``
# are given in order, so printing is stable), and
# :func:`minaot.ir.interpret` runs any ``mt``/``prim`` function with the
# registry's numpy implementations: the oracle every backend is compared with.

text = str(fn)
again = ir.parse(text)
print("str(parse(str(fn))) == str(fn):", str(again) == text)
print("interpreted:", ir.interpret(again, x, w, b))
print("eager:      ", layer(x, w, b))

# %%
# Passes and the PassManager
# --------------------------
# ``canonicalize``, ``cse`` and ``dce`` work on the pure ``prim`` dialect.
# Here is a ``prim`` function written as text, with things to clean up: a
# multiplication by one, two identical ``exp``, a double negation and a dead
# ``tanh``.

src = """
func.func @messy(%0: tensor<4x8xf32>, %1: tensor<8xf32>) -> (tensor<4x8xf32>, tensor<8x4xf32>) {
  %2 = prim.constant {dtype = "float32", shape = [], value = 1.0} : () -> tensor<f32>
  %3 = prim.mul %0, %2 : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %4 = prim.exp %3 : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %5 = prim.exp %3 : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %6 = prim.add %4, %5 : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %7 = prim.neg %1 : (tensor<8xf32>) -> tensor<8xf32>
  %8 = prim.neg %7 : (tensor<8xf32>) -> tensor<8xf32>
  %9 = prim.add %6, %8 : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %10 = prim.tanh %9 : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %11 = prim.permute %9 {dims = [1, 0]} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  func.return %9, %11 : tensor<4x8xf32>, tensor<8x4xf32>
}
"""
messy = ir.parse(src)
a, c = minaot.randn(4, 8), minaot.randn(8)
before = ir.interpret(messy, a, c)

# %%
# A pipeline can be written as text.  ``verify_each`` checks the IR after
# every pass; ``print_after_all`` prints it, titled by the pass.  CSE merges
# the two ``exp``, DCE drops the ``tanh``, canonicalize removes ``* 1`` and
# the double negation.

pm = ir.PassManager("cse,dce,canonicalize", verify_each=True, print_after_all=True)
pm.run(messy)

# %%
# The pass manager keeps per-pass times and statistics:

print(pm.report())

# %%
# The cleaned-up function computes the same values:

after = ir.interpret(messy, a, c)
assert_close(after, before)
print("same results after the passes")

# %%
# Writing a rewrite pattern
# -------------------------
# A pattern looks at one op and, if it matches, rewrites it through the
# ``PatternRewriter`` (which copies the op's source location to the new ops
# and erases what becomes dead).  This one turns ``x + x`` (CSE just made
# one) into ``x * 2``.


class AddSelfToMulTwo(ir.RewritePattern):
    name, op_name = "add-self-to-mul-two", "prim.add"

    def match_and_rewrite(self, op, rewriter):
        lhs, rhs = op.operands
        if lhs is not rhs or lhs.type.dtype not in ("f32", "f64"):
            return False
        dtype = {"f32": "float32", "f64": "float64"}[lhs.type.dtype]
        two = rewriter.create("prim.constant", [], [ir.TensorType((), lhs.type.dtype)],
                              {"dtype": dtype, "shape": (), "value": 2.0})
        mul = rewriter.create("prim.mul", [lhs, two.result], [op.result.type])
        rewriter.replace_op(op, mul)
        return True


# %%
# The canonicalize pass takes a list of patterns; the greedy driver applies
# them until nothing changes.  ``print_after_change`` prints only when a pass
# changed the IR.

canon = minaot.passes.Canonicalize(patterns=PATTERNS + [AddSelfToMulTwo()])
pm = ir.PassManager([canon], print_after_change=True)
pm.run(messy)
print(pm.stats)

# %%
# Writing a pass
# --------------
# A pass is an object with a ``name`` and a ``run(fn)`` that changes the
# function in place (or, like this one, only looks at it) and counts what it
# did.  Registering it lets pipelines name it.


class CountOps(ir.Pass):
    name = "count-ops"

    def run(self, fn):
        for op in fn.ops:
            self.count(op.name)


ir.register_pass(CountOps)
pm = ir.PassManager("count-ops")
pm.run(messy)
print(pm.stats)

# %%
# Printing the IR from anywhere: ``MINAOT_PRINT_IR``
# --------------------------------------------------
# Setting ``MINAOT_PRINT_IR=1`` in the environment makes every PassManager
# print the IR after each pass, including the ones the compiler runs inside
# :func:`minaot.aot_function`, without touching the code.

os.environ["MINAOT_PRINT_IR"] = "1"
try:
    ir.PassManager("dce").run(ir.parse(src))
finally:
    del os.environ["MINAOT_PRINT_IR"]

# %%
# The verifier
# ------------
# Every op is checked by its dialect.  For ``mt`` and ``prim`` ops the
# verifier runs the op registry's shape rule on the operand types and
# compares with the declared result type.  The error shows the op's line.

bad = ir.parse("""
func.func @bad(%0: tensor<4x8xf32>, %1: tensor<3xf32>) -> (tensor<4x8xf32>) {
  %2 = prim.add %0, %1 : (tensor<4x8xf32>, tensor<3xf32>) -> tensor<4x8xf32>
  func.return %2 : tensor<4x8xf32>
}
""")
try:
    ir.verify(bad)
except ir.VerifyError as e:
    print("VerifyError:", e)

# %%
# What tracing cannot record
# --------------------------
# A fake tensor has no values, so Python control flow that depends on them
# cannot be traced.  The error names what happened and points at the line.


def relu_by_hand(x):
    if x.sum() > 0:          # needs the value of x.sum()
        return x
    return -x


try:
    minaot.trace(relu_by_hand, minaot.randn(3))
except minaot.TraceError as e:
    print("TraceError:", e)

# %%
# The traceable way to write it keeps the decision inside the graph:


def relu_traceable(x):
    return minaot.where(x.sum() > 0, x, -x)


print(minaot.trace(relu_traceable, minaot.randn(3)))

# %%
# Shape errors appear at trace time with the same message as in eager mode,
# because tracing runs the same shape rule:

try:
    minaot.trace(lambda p, q: p @ q, minaot.randn(3, 4), minaot.randn(3, 4))
except Exception as e:
    print(type(e).__name__ + ":", e)
