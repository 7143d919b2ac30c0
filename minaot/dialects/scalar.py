"""The scalar dialects ``arith`` and ``math`` (MLIR's names and meanings).

Inside a loop nest every value is one number: ``f32``, ``f64``, an integer
(``i64``, ``i32``, ``i16``, ``i8``, ``ui8``), ``i1`` or ``index``.  ``arith``
holds the operations a CPU does in one instruction (``addf``, ``mulf``,
``cmpf``, ``select``, casts, bit casts);
``math`` holds the functions a library computes (``exp``, ``tanh``,
``erf`` ...).  The split matters for speed: an ``arith`` op vectorizes, a
``math`` op is a libm call per element unless ``approximate-math`` rewrites
it into ``arith`` ops first.

Each op is defined here once, with its meaning as a numpy function
(``EVAL``): the loop-level interpreter and the accuracy tests of
``approximate-math`` run it, and the code generators emit one line per op.
Predicates of ``cmpf``/``cmpi`` follow MLIR: ``oeq one olt ole ogt oge``
(ordered: false on NaN, except ``une``, true on NaN) and ``eq ne slt sle sgt
sge``.  The integer ops and predicates mean what numpy does on the value's
own type: on ``ui8`` ``slt``, ``maxsi`` and ``shrsi`` compare and shift
unsigned (MLIR, whose integers are signless, would spell ``ult``,
``maxui``, ``shrui``), and every integer op wraps around in its width.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir.dialect import Dialect, OpSpec, VerifyError, register_dialect

NP_DTYPE = {"f32": np.float32, "f64": np.float64, "i64": np.int64, "i1": np.bool_,
            "i32": np.int32, "i16": np.int16, "i8": np.int8, "ui8": np.uint8, "index": np.int64}


def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(x.dtype)


def _bitcast(x, to):
    """Reinterpret the bits of ``x``: f32 <-> i32 (arith.bitcast)."""
    return np.asarray(x).view(NP_DTYPE[to])


CMP = {"oeq": np.equal, "one": lambda a, b: (a < b) | (a > b), "olt": np.less,
       "ole": np.less_equal, "ogt": np.greater, "oge": np.greater_equal,
       "une": np.not_equal, "eq": np.equal, "ne": np.not_equal, "slt": np.less,
       "sle": np.less_equal, "sgt": np.greater, "sge": np.greater_equal}

#: op name -> numpy meaning (operands are numpy scalars or arrays; attrs as keywords)
EVAL = {
    "arith.constant": lambda value, type: NP_DTYPE[type](value),
    "arith.addf": np.add, "arith.subf": np.subtract, "arith.mulf": np.multiply,
    "arith.divf": np.divide, "arith.negf": np.negative,
    "arith.maximumf": np.maximum, "arith.minimumf": np.minimum,
    "arith.addi": np.add, "arith.subi": np.subtract, "arith.muli": np.multiply,
    "arith.maxsi": np.maximum, "arith.minsi": np.minimum,
    "arith.andi": np.bitwise_and, "arith.ori": np.bitwise_or, "arith.xori": np.bitwise_xor,
    "arith.shli": np.left_shift, "arith.shrsi": np.right_shift,
    "arith.cmpf": lambda a, b, predicate: CMP[predicate](a, b),
    "arith.cmpi": lambda a, b, predicate: CMP[predicate](a, b),
    "arith.select": np.where,
    "arith.cast": lambda x, type: np.asarray(x).astype(NP_DTYPE[type]),
    "arith.bitcast": lambda x, type: _bitcast(x, type),
    "math.exp": np.exp, "math.log": np.log, "math.sin": np.sin, "math.cos": np.cos,
    "math.tanh": np.tanh, "math.sqrt": np.sqrt, "math.rsqrt": lambda x: 1 / np.sqrt(x),
    "math.absf": np.abs, "math.absi": np.abs, "math.erf": _erf, "math.powf": np.power,
    "math.floor": np.floor, "math.round": np.rint, "math.copysign": np.copysign,
    # more pointwise: inverse, hyperbolic and rounding functions, atan2, hypot, fmod
    "math.log1p": np.log1p, "math.expm1": np.expm1, "math.log2": np.log2,
    "math.log10": np.log10, "math.ceil": np.ceil, "math.trunc": np.trunc, "math.tan": np.tan,
    "math.asin": np.arcsin, "math.acos": np.arccos, "math.atan": np.arctan, "math.sinh": np.sinh,
    "math.cosh": np.cosh, "math.asinh": np.arcsinh, "math.acosh": np.arccosh,
    "math.atanh": np.arctanh, "math.atan2": np.arctan2, "math.hypot": np.hypot,
    "arith.remf": np.fmod,
}

UNARY = ("arith.negf", "math.exp", "math.log", "math.sin", "math.cos", "math.tanh", "math.sqrt",
         "math.rsqrt", "math.absf", "math.absi", "math.erf", "math.floor", "math.round",
         "math.log1p", "math.expm1", "math.log2", "math.log10", "math.ceil", "math.trunc",
         "math.tan", "math.asin", "math.acos", "math.atan", "math.sinh", "math.cosh",
         "math.asinh", "math.acosh", "math.atanh")
BINARY = ("arith.addf", "arith.subf", "arith.mulf", "arith.divf", "arith.maximumf",
          "arith.minimumf", "arith.addi", "arith.subi", "arith.muli", "arith.maxsi",
          "arith.minsi", "arith.andi", "arith.ori", "arith.xori", "arith.shli", "arith.shrsi",
          "math.powf", "math.copysign", "math.atan2", "math.hypot", "arith.remf")


def _same_types(op):
    types = {v.type for v in op.operands} | {r.type for r in op.results}
    if len(types) > 1:
        raise VerifyError(f"{op.name} needs one scalar type, got {sorted(map(str, types))}", op)


def _verify_cmp(op):
    if op.operands[0].type != op.operands[1].type or str(op.result.type) != "i1":
        raise VerifyError(f"{op.name} compares two values of one type into i1", op)
    if op.attributes.get("predicate") not in CMP:
        raise VerifyError(f"{op.name}: unknown predicate {op.attributes.get('predicate')!r}", op)


def _verify_select(op):
    c, a, b = op.operands
    if str(c.type) != "i1" or a.type != b.type or op.result.type != a.type:
        raise VerifyError("arith.select takes (i1, T, T) -> T", op)


def _verify_cast(op):
    if str(op.result.type) != op.attributes.get("type"):
        raise VerifyError(f"{op.name}: result type {op.result.type} is not the attribute "
                          f"type {op.attributes.get('type')}", op)


def _verify_constant(op):
    if str(op.result.type) != op.attributes.get("type"):
        raise VerifyError("arith.constant: result type must equal the type attribute", op)


ARITH = Dialect("arith")
MATH = Dialect("math")
for _name in UNARY + BINARY:
    _d = ARITH if _name.startswith("arith.") else MATH
    _d.add_op(OpSpec(_name, verify=_same_types, num_operands=1 if _name in UNARY else 2,
                     num_results=1))
ARITH.add_op(OpSpec("arith.constant", verify=_verify_constant, num_operands=0, num_results=1,
                    required_attrs=("value", "type")))
ARITH.add_op(OpSpec("arith.cmpf", verify=_verify_cmp, num_operands=2, num_results=1,
                    required_attrs=("predicate",)))
ARITH.add_op(OpSpec("arith.cmpi", verify=_verify_cmp, num_operands=2, num_results=1,
                    required_attrs=("predicate",)))
ARITH.add_op(OpSpec("arith.select", verify=_verify_select, num_operands=3, num_results=1))
ARITH.add_op(OpSpec("arith.cast", verify=_verify_cast, num_operands=1, num_results=1,
                    required_attrs=("type",)))
ARITH.add_op(OpSpec("arith.bitcast", verify=_verify_cast, num_operands=1, num_results=1,
                    required_attrs=("type",)))
register_dialect(ARITH)
register_dialect(MATH)


def eval_scalar_ops(ops, env: dict) -> dict:
    """Run ``arith``/``math`` ops in order with their numpy meaning (``EVAL``).

    ``env`` maps each operand Value to a numpy scalar or array (a whole array
    of inputs runs every element at once); each result is added to it, and
    ``env`` is returned.  Arithmetic is IEEE as in the generated kernels:
    overflow gives inf, 0/0 NaN, without numpy's warnings.  The accuracy
    tests of ``approximate-math`` run its op sequences through this over
    millions of float32 inputs.
    """
    with np.errstate(all="ignore"):
        for op in ops:
            if op.name not in EVAL:
                raise ValueError(f"eval_scalar_ops: {op.name} is not an arith/math op ({op.loc})")
            try:
                args = [env[v] for v in op.operands]
            except KeyError:
                raise ValueError(f"eval_scalar_ops: an operand of {op.name} ({op.loc}) has no "
                                 "value yet") from None
            env[op.result] = EVAL[op.name](*args, **op.attributes)
    return env
