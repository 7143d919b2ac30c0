"""Canonicalize: small local simplifications of the `prim` dialect.

Each rule is one RewritePattern class that looks at one op and its operands'
producers, and replaces the op by something simpler:

    x * 1, 1 * x, x + 0, 0 + x, x - 0     -> x   (only if the result type is x's
                                                  type: `x * ones(4, 8)` with
                                                  x: tensor<8xf32> broadcasts, so
                                                  it is not x)
    neg(neg(x))                           -> x
    reshape(reshape(x))                   -> reshape(x)
    reshape(x) to x's own type            -> x
    permute(permute(x, p1), p2)           -> permute(x, p) with p[i] = p1[p2[i]]
                                             (attribute `perm`, or `dims`)
    permute(x, identity)                  -> x
    sum/amax/amin/prod over no axis       -> x   (a 0-d input: PyTorch's
                                                  `x.sum()` of a scalar tensor;
                                                  only when the result type is
                                                  x's type)
    add/sub/mul/div/maximum/minimum/neg of constants -> a constant

`prim.constant {value = v} : tensor<...>` is a splat: every element is v. Two
splats combine into a splat of the result type, so folding works for any
shape. The folded value is computed in the result's dtype with numpy scalars
(float32 rounding for f32, integers wrapping around in their width); integer division is not
folded. (Strictly, x + 0.0 -> x is wrong for x = -0.0 under IEEE rules; like
most ML compilers we accept that.)

The greedy driver (minaot.ir.rewriter) applies the patterns until nothing
changes and removes the ops that become dead; `disabled` switches patterns
off by name.
"""

from __future__ import annotations

import numpy as np

from minaot.ir.core import Function, Operation, Value
from minaot.ir.pass_manager import Pass, register_pass
from minaot.ir.rewriter import PatternRewriter, RewritePattern, apply_patterns_greedily
from minaot.ir.types import TensorType


def producer(value: Value, name: str) -> Operation | None:
    """The op defining `value` if it is named `name`, else None."""
    op = value.defining_op
    return op if op is not None and op.name == name else None


def constant_value(value: Value):
    """The splat value of a prim.constant (a number or bool), else None."""
    op = producer(value, "prim.constant")
    v = None if op is None else op.attributes.get("value")
    return v if isinstance(v, (int, float)) else None  # bool is an int too


def _replace_by_operand_if(op: Operation, rewriter: PatternRewriter, unit, sides) -> bool:
    """Shared by x*1, x+0, x-0: if operand `c` is the constant `unit`, the op is operand `x`."""
    if len(op.operands) != 2 or len(op.results) != 1:
        return False
    for x_index, c_index in sides:
        x, c = op.operands[x_index], op.operands[c_index]
        v = constant_value(c)
        if v is not None and v == unit and x.type == op.result.type:
            rewriter.replace_op(op, [x])
            return True
    return False


class MulByOne(RewritePattern):
    name, op_name = "mul-by-one", "prim.mul"

    def match_and_rewrite(self, op, rewriter):
        return _replace_by_operand_if(op, rewriter, 1, [(0, 1), (1, 0)])


class AddZero(RewritePattern):
    name, op_name = "add-zero", "prim.add"

    def match_and_rewrite(self, op, rewriter):
        return _replace_by_operand_if(op, rewriter, 0, [(0, 1), (1, 0)])


class SubZero(RewritePattern):
    name, op_name = "sub-zero", "prim.sub"

    def match_and_rewrite(self, op, rewriter):
        return _replace_by_operand_if(op, rewriter, 0, [(0, 1)])


class DoubleNeg(RewritePattern):
    name, op_name = "double-neg", "prim.neg"

    def match_and_rewrite(self, op, rewriter):
        inner = producer(op.operands[0], "prim.neg")
        if inner is None or inner.operands[0].type != op.result.type:
            return False
        rewriter.replace_op(op, [inner.operands[0]])
        return True


class ReshapeReshape(RewritePattern):
    name, op_name = "reshape-reshape", "prim.reshape"

    def match_and_rewrite(self, op, rewriter):
        inner = producer(op.operands[0], "prim.reshape")
        if inner is None:
            return False
        new = rewriter.create("prim.reshape", [inner.operands[0]], [op.result.type], op.attributes)
        rewriter.replace_op(op, new)
        return True


class ReshapeIdentity(RewritePattern):
    name, op_name = "reshape-identity", "prim.reshape"

    def match_and_rewrite(self, op, rewriter):
        if op.operands[0].type != op.result.type:
            return False
        rewriter.replace_op(op, [op.operands[0]])
        return True


class ReduceNoAxes(RewritePattern):
    """A reduction over no axis (``dim = []``) with the input's own type is the input."""
    name = "reduce-no-axes"
    REDUCTIONS = ("prim.sum", "prim.amax", "prim.amin", "prim.prod")

    def match_and_rewrite(self, op, rewriter):
        if op.name not in self.REDUCTIONS or list(op.attributes.get("dim", [None])) != [] \
                or op.operands[0].type != op.result.type:
            return False
        rewriter.replace_op(op, [op.operands[0]])
        return True


def perm_key(op: Operation) -> str:
    """The attribute holding a permute's permutation: `perm`, or `dims` as the op registry calls it."""
    return "perm" if "perm" in op.attributes else "dims"


class PermutePermute(RewritePattern):
    name, op_name = "permute-permute", "prim.permute"

    def match_and_rewrite(self, op, rewriter):
        """``permute(permute(x, p1), p2)`` -> one ``permute(x, p)``: axis i of the result
        is axis ``p2[i]`` of the inner result, which is axis ``p1[p2[i]]`` of x.  Create
        the new op with ``rewriter.create`` (same result type and attributes, the new
        permutation under ``perm_key(op)``) and ``rewriter.replace_op``; return whether
        anything changed."""
        # BEGIN TASK 3.3: fold permute(permute(x)) into one permute
        inner = producer(op.operands[0], "prim.permute")
        if inner is None:
            return False
        perm1, perm2 = inner.attributes.get(perm_key(inner)), op.attributes.get(perm_key(op))
        if perm1 is None or perm2 is None:
            return False
        composed = tuple(perm1[i] for i in perm2)  # result axis i is input axis perm1[perm2[i]]
        new = rewriter.create("prim.permute", [inner.operands[0]], [op.result.type],
                              {**op.attributes, perm_key(op): composed})
        rewriter.replace_op(op, new)
        return True
        # END TASK 3.3


class PermuteIdentity(RewritePattern):
    name, op_name = "permute-identity", "prim.permute"

    def match_and_rewrite(self, op, rewriter):
        perm = op.attributes.get(perm_key(op))
        if perm is None or perm != tuple(range(len(perm))) or op.operands[0].type != op.result.type:
            return False
        rewriter.replace_op(op, [op.operands[0]])
        return True


def _swaps(op: Operation):
    """The unordered pair of dims a prim.transpose swaps."""
    return frozenset((op.attributes["dim0"], op.attributes["dim1"]))


class TransposeTranspose(RewritePattern):
    """transpose(transpose(x)) over the same two dims is x."""
    name, op_name = "transpose-transpose", "prim.transpose"

    def match_and_rewrite(self, op, rewriter):
        inner = producer(op.operands[0], "prim.transpose")
        if inner is None or _swaps(inner) != _swaps(op) or inner.operands[0].type != op.result.type:
            return False
        rewriter.replace_op(op, [inner.operands[0]])
        return True


class TransposeOfMatmul(RewritePattern):
    """(a @ b)^T is b^T @ a^T for 2-d operands.  A backward computes weight gradients as
    ``transpose(x^T @ g)``: rewritten, BLAS writes the gradient in the parameter's own
    layout (the transposes of a and b are free views it reads natively) and nothing
    downstream copies a transposed array."""
    name, op_name = "transpose-of-matmul", "prim.transpose"

    def match_and_rewrite(self, op, rewriter):
        mm = producer(op.operands[0], "prim.matmul")
        if mm is None or op.result.type.rank != 2 or _swaps(op) != {0, 1} \
                or any(v.type.rank != 2 for v in mm.operands) or len(mm.result.users) != 1:
            return False
        a, b = mm.operands
        ta = [rewriter.create("prim.transpose", [v], [v.type.with_shape(v.type.shape[::-1])],
                              {"dim0": 0, "dim1": 1}).result for v in (b, a)]
        new = rewriter.create("prim.matmul", ta, [op.result.type], dict(mm.attributes))
        rewriter.replace_op(op, new)
        return True


# numpy versions of the ops we fold, and the numpy scalar type of each dtype
_BINARY = {"prim.add": np.add, "prim.sub": np.subtract, "prim.mul": np.multiply,
           "prim.div": np.divide, "prim.maximum": np.maximum, "prim.minimum": np.minimum}
_UNARY = {"prim.neg": np.negative}
_SCALAR = {"f32": np.float32, "f64": np.float64, "i64": np.int64, "i32": np.int32,
           "i16": np.int16, "i8": np.int8, "ui8": np.uint8}


def fold_constants(op: Operation):
    """The folded splat value of op (a Python number), or None if it cannot fold.

    It folds when op is one of `_BINARY` / `_UNARY`, with one tensor result whose dtype
    is in `_SCALAR` (not an integer division), every operand a splat constant
    (`constant_value`) of that same dtype. The value is computed with the numpy
    scalar type of the dtype (float32 rounding for f32, wrapping around for int8),
    with numpy's warnings off, and returned as a Python int (integer dtypes) or float."""
    # BEGIN TASK 3.2: fold an arithmetic op on splat constants into one constant
    fn = _BINARY.get(op.name) or _UNARY.get(op.name)
    if fn is None or len(op.results) != 1 or not isinstance(op.result.type, TensorType):
        return None
    dtype = op.result.type.dtype
    if dtype not in _SCALAR or (dtype[0] != "f" and op.name == "prim.div"):
        return None
    if any(not isinstance(v.type, TensorType) or v.type.dtype != dtype for v in op.operands):
        return None
    values = [constant_value(v) for v in op.operands]
    if len(values) != (2 if op.name in _BINARY else 1) or any(v is None for v in values):
        return None
    with np.errstate(all="ignore"):  # 1/0 -> inf and int overflow wrap, like the runtime
        result = fn(*[_SCALAR[dtype](v) for v in values])
    return float(result) if dtype[0] == "f" else int(result)
    # END TASK 3.2


class FoldConstants(RewritePattern):
    name = "fold-constants"

    def match_and_rewrite(self, op, rewriter):
        value = fold_constants(op)
        if value is None:
            return False
        # keep the input constant's other attributes (the op registry's constant also
        # has `shape` and `dtype`), with the new value and the result's shape
        attrs = {**op.operands[0].defining_op.attributes, "value": value}
        if "shape" in attrs:
            attrs["shape"] = op.result.type.shape
        new = rewriter.create("prim.constant", [], [op.result.type], attrs)
        rewriter.replace_op(op, new)
        return True


PATTERNS = [MulByOne(), AddZero(), SubZero(), DoubleNeg(), ReshapeReshape(), ReshapeIdentity(),
            ReduceNoAxes(),
            PermutePermute(), PermuteIdentity(), TransposeTranspose(), TransposeOfMatmul(),
            FoldConstants()]


class Canonicalize(Pass):
    """The ``canonicalize`` pass: the greedy driver with ``PATTERNS`` (see the module docstring).

    ``patterns`` replaces the list, ``disabled`` switches patterns off by name,
    ``max_iterations`` caps the sweeps."""

    name = "canonicalize"

    def __init__(self, patterns=None, disabled=(), max_iterations: int = 10):
        super().__init__()
        self.patterns = list(PATTERNS if patterns is None else patterns)
        self.disabled = disabled.split() if isinstance(disabled, str) else tuple(disabled)
        self.max_iterations = max_iterations

    def run(self, fn: Function) -> None:
        counts = {}
        n = apply_patterns_greedily(fn, self.patterns, self.max_iterations, self.disabled, counts)
        self.count("rewrites", n)
        for key, value in counts.items():
            if value:
                self.count(key, value)


register_pass(Canonicalize)
