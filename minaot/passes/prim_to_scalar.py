"""prim -> arith/math, one element at a time: the scalar meaning of each pointwise op.

``lower-to-loops`` turns a tensor op inside a kernel into the scalar ops that
compute one element of it.  This table says how, op by op: ``prim.add`` on
``f32`` is ``arith.addf``, on ``i64`` ``arith.addi``; ``prim.sigmoid`` is
``1 / (1 + exp(-x))``; ``prim.pow`` by the constant 2 is one multiply (a
``pow`` call per element would not vectorize).  ``fuse`` asks
:func:`fusible` so that it only puts into a kernel what this table can
lower; anything else stays a library call.

The rules write through a :class:`ScalarBuilder`, a thin helper over
``Builder`` that makes typed constants and applies casts, so each rule
reads like the formula it implements.
"""

from __future__ import annotations

import math

from ..dialects import scalar as _scalar  # noqa: F401  (registers arith and math)
from ..ir import Builder, ScalarType

FLOAT = ("f32", "f64")


class ScalarBuilder:
    """Emit arith/math ops at a builder's insertion point; constants may be hoisted."""

    def __init__(self, builder: Builder, const=None, loc=None):
        self.b = builder
        self._const = const        # callable(value, type) -> Value, or None to emit here
        self.loc = loc

    def op(self, name, operands, result_type, **attrs):
        return self.b.create(name, list(operands), [ScalarType(result_type)], attrs or None,
                             loc=self.loc).result

    def const(self, value, type):
        if self._const is not None:
            return self._const(value, type)
        return self.op("arith.constant", [], type, value=value, type=type)

    def cast(self, v, type):
        have = str(v.type)
        if have == type:
            return v
        if type == "i1":                        # nonzero -> true, as numpy's astype(bool)
            pred = "une" if have in FLOAT else "ne"
            return self.op(f"arith.cmp{'f' if have in FLOAT else 'i'}",
                           [v, self.const(0, have)], "i1", predicate=pred)
        return self.op("arith.cast", [v], type, type=type)

    def cmp(self, pred_float, pred_int, a, b):
        t = str(a.type)
        if t in FLOAT:
            return self.op("arith.cmpf", [a, b], "i1", predicate=pred_float)
        return self.op("arith.cmpi", [a, b], "i1", predicate=pred_int)

    def arith(self, float_name, int_name, a, b=None):
        t = str(a.type)
        name = float_name if t in FLOAT else int_name
        if name is None:
            raise NotImplementedError(f"no scalar op for {float_name} on {t}")
        return self.op(name, [a] if b is None else [a, b], t)

    def select(self, c, a, b):
        return self.op("arith.select", [self.cast(c, "i1"), a, b], str(a.type))

    def maximum(self, a, b):
        return self.arith("arith.maximumf", "arith.maxsi", a, b)

    def minimum(self, a, b):
        return self.arith("arith.minimumf", "arith.minsi", a, b)


def _common(sb, operands, type):
    return [sb.cast(v, type) for v in operands]


def _constant_exponent(irop):
    """The Python number a prim.pow raises to, when it is a splat constant."""
    e = irop.operands[1]
    d = e.defining_op
    if d is not None and d.name == "prim.constant":
        return d.attributes["value"]
    return None


def _pow(sb, irop, a, b, t):
    e = _constant_exponent(irop)
    if e in (1, 1.0):
        return a
    if e in (2, 2.0):
        return sb.arith("arith.mulf", "arith.muli", a, a)
    if e in (3, 3.0):
        return sb.arith("arith.mulf", "arith.muli", sb.arith("arith.mulf", "arith.muli", a, a), a)
    if t in FLOAT and e in (0.5,):
        return sb.op("math.sqrt", [a], t)
    if t in FLOAT and e in (-1, -1.0):
        return sb.op("arith.divf", [sb.const(1.0, t), a], t)
    if t not in FLOAT:
        raise NotImplementedError("pow on integers")
    return sb.op("math.powf", [a, b], t)


def _sign(sb, x, t):
    zero, one = sb.const(0, t), sb.const(1, t)
    minus = sb.const(-1, t)
    pos = sb.cmp("ogt", "sgt", x, zero)
    neg = sb.cmp("olt", "slt", x, zero)
    return sb.select(pos, one, sb.select(neg, minus, x if t in FLOAT else zero))


def _sigmoid(sb, x, t):
    one = sb.const(1.0, t)
    e = sb.op("math.exp", [sb.op("arith.negf", [x], t)], t)
    return sb.op("arith.divf", [one, sb.op("arith.addf", [one, e], t)], t)


def _float_unary(name):
    return lambda sb, irop, x, t: sb.op(name, [x], t)


# op name -> rule(sb, irop, *operand scalars cast to the result type, result type) -> Value
RULES = {
    "add": lambda sb, o, a, b, t: (sb.op("arith.ori", [a, b], t) if t == "i1"
                                   else sb.arith("arith.addf", "arith.addi", a, b)),
    "sub": lambda sb, o, a, b, t: sb.arith("arith.subf", "arith.subi", a, b),
    "mul": lambda sb, o, a, b, t: (sb.op("arith.andi", [a, b], t) if t == "i1"
                                   else sb.arith("arith.mulf", "arith.muli", a, b)),
    "div": lambda sb, o, a, b, t: sb.op("arith.divf", [a, b], t),
    "pow": _pow,
    "maximum": lambda sb, o, a, b, t: sb.maximum(a, b),
    "minimum": lambda sb, o, a, b, t: sb.minimum(a, b),
    "neg": lambda sb, o, x, t: (sb.op("arith.negf", [x], t) if t in FLOAT
                                else sb.op("arith.subi", [sb.const(0, t), x], t)),
    "exp": _float_unary("math.exp"), "log": _float_unary("math.log"),
    "sin": _float_unary("math.sin"), "cos": _float_unary("math.cos"),
    "tanh": _float_unary("math.tanh"), "sqrt": _float_unary("math.sqrt"),
    "rsqrt": _float_unary("math.rsqrt"), "erf": _float_unary("math.erf"),
    "floor": _float_unary("math.floor"),
    "abs": lambda sb, o, x, t: sb.op("math.absf" if t in FLOAT else "math.absi", [x], t),
    "sign": lambda sb, o, x, t: _sign(sb, x, t),
    "sigmoid": lambda sb, o, x, t: _sigmoid(sb, x, t),
    "relu": lambda sb, o, x, t: sb.maximum(x, sb.const(0, t)),
    "reciprocal": lambda sb, o, x, t: sb.op("arith.divf", [sb.const(1.0, t), x], t),
    "logical_not": lambda sb, o, x, t: sb.op("arith.xori", [x, sb.const(True, "i1")], "i1"),
    "bitwise_and": lambda sb, o, a, b, t: sb.op("arith.andi", [a, b], t),
    "bitwise_or": lambda sb, o, a, b, t: sb.op("arith.ori", [a, b], t),
    "bitwise_xor": lambda sb, o, a, b, t: sb.op("arith.xori", [a, b], t),
    "to": lambda sb, o, x, t: x,
    "clone": lambda sb, o, x, t: x,
}
#: more pointwise: one math op each (floats only, see ``FLOAT_ONLY``)
RULES.update({name: _float_unary("math." + name) for name in (
    "log1p", "expm1", "log2", "log10", "ceil", "trunc", "round", "tan", "asin", "acos", "atan",
    "sinh", "cosh", "asinh", "acosh", "atanh")})
RULES.update({"atan2": lambda sb, o, a, b, t: sb.op("math.atan2", [a, b], t),
              "hypot": lambda sb, o, a, b, t: sb.op("math.hypot", [a, b], t),
              "fmod": lambda sb, o, a, b, t: sb.op("arith.remf", [a, b], t)})
#: ops whose scalar rule exists for f32 and f64 only
FLOAT_ONLY = ("exp", "log", "sin", "cos", "tanh", "sqrt", "rsqrt", "erf", "sigmoid",
              "reciprocal", "div", "floor",
              # more pointwise
              "log1p", "expm1", "log2", "log10", "ceil", "trunc", "round", "tan", "asin", "acos",
              "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "atan2", "hypot", "fmod")
COMPARE = {"eq": ("oeq", "eq"), "ne": ("une", "ne"), "lt": ("olt", "slt"), "le": ("ole", "sle"),
           "gt": ("ogt", "sgt"), "ge": ("oge", "sge")}
#: reduction -> (combiner, identity for float, identity for int64; the narrower integers
#: start amax / amin at their own lowest / largest value, see :func:`identity`)
REDUCE = {"sum": ("add", 0.0, 0), "prod": ("mul", 1.0, 1), "amax": ("max", -math.inf, -2**63),
          "amin": ("min", math.inf, 2**63 - 1)}
#: (lowest, largest) of each integer IR type
INT_RANGE = {"i64": (-2**63, 2**63 - 1), "i32": (-2**31, 2**31 - 1), "i16": (-2**15, 2**15 - 1),
             "i8": (-2**7, 2**7 - 1), "ui8": (0, 2**8 - 1)}


def _dtype(v):
    return v.type.dtype


def _promoted(irdtypes) -> str:
    """The IR dtype that values of ``irdtypes`` promote to (PyTorch's rules)."""
    from .. import dtypes as dt
    result = None
    for d in irdtypes:
        d = dt.from_ir(d)
        result = d if result is None else dt.promote_types(result, d)
    return result.ir


def fusible(irop) -> bool:
    """Can ``lower-to-loops`` compute this prim op one element at a time?"""
    name = irop.opname
    if name == "constant":
        return not isinstance(irop.attributes["value"], (list, tuple))
    if name in REDUCE:
        return _dtype(irop.result) != "i1"
    if name in COMPARE or name == "where":
        return True
    if name not in RULES:
        return False
    t = _dtype(irop.result)
    if name in FLOAT_ONLY:
        return t in FLOAT
    if name == "pow":
        return t in FLOAT or _constant_exponent(irop) in (1, 2, 3)
    if name in ("sub", "neg", "abs", "sign") and t == "i1":
        return False
    return True


def lower_op(sb: ScalarBuilder, irop, scalars):
    """Scalar ops for one element of the pointwise prim op ``irop``, from its operands' scalars."""
    name = irop.opname
    t = _dtype(irop.result)
    if name in COMPARE:
        common = _promoted(_dtype(v) for v in irop.operands)
        a, b = _common(sb, scalars, common)
        if common == "i1":
            a, b = sb.cast(a, "i64"), sb.cast(b, "i64")
        pf, pi = COMPARE[name]
        return sb.cmp(pf, pi, a, b)
    if name == "where":
        c, a, b = scalars
        a, b = _common(sb, (a, b), t)
        return sb.select(c, a, b)
    if name == "logical_not":
        return RULES[name](sb, irop, sb.cast(scalars[0], "i1"), "i1")
    return RULES[name](sb, irop, *_common(sb, scalars, t), t)


def combine(sb: ScalarBuilder, reduction: str, acc, v):
    """One step of ``reduction`` (``sum``/``prod``/``amax``/``amin``): the scalar op combining
    the accumulator ``acc`` with the element ``v`` (``REDUCE`` names the combiner: ``add``,
    ``mul``, ``max`` or ``min``; floats and integers use different arith ops)."""
    # BEGIN TASK 8.2
    kind = REDUCE[reduction][0]
    if kind == "add":
        return sb.arith("arith.addf", "arith.addi", acc, v)
    if kind == "mul":
        return sb.arith("arith.mulf", "arith.muli", acc, v)
    return sb.maximum(acc, v) if kind == "max" else sb.minimum(acc, v)
    # END TASK 8.2


def identity(reduction: str, type: str):
    """The value a ``reduction`` accumulator starts from in dtype ``type`` (from ``REDUCE``:
    0 for a sum; 1 for a prod; -inf / the smallest int64 for amax; +inf / the largest for amin;
    an integer type narrower than int64 starts amax / amin at its own smallest / largest
    value, ``INT_RANGE``)."""
    # BEGIN TASK 8.2
    _, f, i = REDUCE[reduction]
    if type in FLOAT:
        return f
    if type in INT_RANGE and reduction in ("amax", "amin"):
        return INT_RANGE[type][reduction == "amin"]
    return i
    # END TASK 8.2
