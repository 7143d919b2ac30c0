"""Pointwise ops: one record each (meta, numpy impl, VJP, scalar expression, samples).

Binary ops broadcast like numpy; Python numbers are promoted by the
dispatcher into 0-d constants.  The ``scalar`` field is the expression the
code generators emit for one element: ``{0}``, ``{1}`` are the operands and
``math.*`` names a scalar function available to both Numba targets.
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from .. import dtypes as dt
from ..dispatch import dispatch
from .meta import pointwise as pw_meta
from .registry import OpDef, SampleInput, register

# ---------------------------------------------------------------- samples
_SHAPES_BINARY = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 3), (4, 1)), ((5,), ())]


def _normal(rng, shape):
    return rng.standard_normal(shape)


def _positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def _unary_samples(gen=_normal):
    def samples(rng):
        return [SampleInput((gen(rng, (3, 4)),)), SampleInput((gen(rng, (5,)),)),
                SampleInput((gen(rng, ()),))]
    return samples


def _binary_samples(gen_a=_normal, gen_b=_normal, scalar=1.5):
    def samples(rng):
        out = [SampleInput((gen_a(rng, sa), gen_b(rng, sb))) for sa, sb in _SHAPES_BINARY]
        out.append(SampleInput((gen_a(rng, (3, 2)), scalar), name="python scalar"))
        return out
    return samples


def _away_from_zero(rng, shape):
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.1, 0.5, x)


# ---------------------------------------------------------------- registration helpers
def _unary(name, impl, vjp, scalar, promote="float", samples=None, dtype=None):
    register(OpDef(name, "pointwise", pw_meta(name, dtype), impl, vjp=vjp, scalar=scalar,
                   promote=promote, samples=samples or _unary_samples()))


def _binary(name, impl, vjp, scalar, promote="same", samples=None, dtype=None):
    register(OpDef(name, "pointwise", pw_meta(name, dtype), impl, vjp=vjp, scalar=scalar,
                   promote=promote, samples=samples or _binary_samples()))


def _need(ctx, i):
    return ctx.needs_input_grad[i]


# ---------------------------------------------------------------- public functions
def add(input, other, *, alpha=1):
    """``input + alpha * other``, elementwise.

    Broadcasts like numpy; ``other`` may be a Python number.  Tensor method:
    ``x.add(y)``, operator ``x + y``."""
    if alpha != 1:
        other = mul(other, alpha)
    return dispatch("add", input, other)


def sub(input, other, *, alpha=1):
    """``input - alpha * other``, elementwise (operator ``x - y``)."""
    if alpha != 1:
        other = mul(other, alpha)
    return dispatch("sub", input, other)


def mul(input, other):
    """``input * other``, elementwise (operator ``x * y``); broadcasts like numpy."""
    return dispatch("mul", input, other)


def div(input, other):
    """``input / other``, elementwise true division; integer inputs give a float result."""
    return dispatch("div", input, other)


def floor(input):
    """The largest integer not above each element (its gradient is zero); an integer tensor
    is returned as a copy."""
    if not input.dtype.is_floating_point:
        return input.clone()
    return dispatch("floor", input)


def _integral(x) -> builtins.bool:
    from ..tensor import Tensor
    if isinstance(x, Tensor):
        return not x.dtype.is_floating_point and x.dtype is not dt.bool_
    return isinstance(x, (builtins.int, np.integer)) and not isinstance(x, builtins.bool)


def floor_divide(input, other):
    """``input // other``: the quotient rounded down, as Python and PyTorch do (``-5 // 2``
    is ``-3``); its gradient is zero.  Floats: ``floor(input / other)``.  Integers: an
    integer result, computed in float64 (exact while the operands stay below 2^53 in
    magnitude); dividing an integer by 0 raises eagerly on the CPU, as in PyTorch (compiled
    code cannot raise: it gives an undefined value there).

    Not PyTorch's formula for floats, which goes through ``fmod``: the same values while
    ``|input / other|`` stays below 2^24 in float32 (2^53 in float64), but ``inf // 2`` is
    ``inf`` here, ``nan`` in PyTorch."""
    if _integral(input) and _integral(other):
        _check_int_divisor("floor_divide", other)
        return _int_floor_quotient(input, other)
    return floor(div(input, other))


def _int_floor_quotient(input, other):
    """``input // other`` of integers (the divisor already checked), through float64."""
    return floor(div(_double(input), _double(other))).long()


def remainder(input, other):
    """``input % other``: the remainder with the sign of the divisor, as Python and PyTorch
    do (``-5 % 3`` is ``1``): ``input - other * (input // other)``.  Its gradient is 1 for
    ``input`` and ``-(input // other)`` for ``other``.  For floats the value is exact while
    ``|input / other|`` stays below 2^24 in float32 (2^53 in float64); beyond, PyTorch's
    ``fmod``-based remainder stays exact and this one does not."""
    if _integral(input) and _integral(other):
        _check_int_divisor("remainder", other)
        return sub(input, mul(other, _int_floor_quotient(input, other)))
    return sub(input, mul(other, floor(div(input, other))))


def _double(x):
    from ..tensor import Tensor
    return x.double() if isinstance(x, Tensor) else builtins.float(x)


def _check_int_divisor(op, other):
    from .._errors import IntegerDivisionByZero, op_error
    from ..dispatch import eager_host_values
    from ..tensor import Tensor
    values = eager_host_values(other) if isinstance(other, Tensor) else np.asarray(other)
    if values is not None and builtins.bool((values == 0).any()):
        raise op_error(IntegerDivisionByZero, op, "integer division by zero")


def pow(input, exponent):
    """``input ** exponent``, elementwise; ``exponent`` is a tensor or a Python number."""
    return dispatch("pow", input, exponent)


def maximum(input, other):
    """The elementwise maximum of two tensors (on a tie each input gets half the gradient)."""
    return dispatch("maximum", input, other)


def minimum(input, other):
    """The elementwise minimum of two tensors (on a tie each input gets half the gradient)."""
    return dispatch("minimum", input, other)


def eq(input, other):
    """``input == other``, elementwise; a ``bool`` tensor."""
    return dispatch("eq", input, other)


def ne(input, other):
    """``input != other``, elementwise; a ``bool`` tensor."""
    return dispatch("ne", input, other)


def lt(input, other):
    """``input < other``, elementwise; a ``bool`` tensor."""
    return dispatch("lt", input, other)


def le(input, other):
    """``input <= other``, elementwise; a ``bool`` tensor."""
    return dispatch("le", input, other)


def gt(input, other):
    """``input > other``, elementwise; a ``bool`` tensor."""
    return dispatch("gt", input, other)


def ge(input, other):
    """``input >= other``, elementwise; a ``bool`` tensor."""
    return dispatch("ge", input, other)


def where(condition, input, other):
    """``input`` where ``condition`` is true, else ``other`` (all three broadcast).

    The traceable replacement for ``if`` on a tensor's value."""
    return dispatch("where", condition, input, other)


def masked_fill(input, mask, value):
    """``input`` with ``value`` where the bool ``mask`` is true (``where(mask, value,
    input)``), in ``input``'s dtype, as ``torch.masked_fill``."""
    from .._errors import op_error
    from ..tensor import Tensor
    if not isinstance(mask, Tensor) or mask.dtype is not dt.bool_:
        got = mask.dtype.name if isinstance(mask, Tensor) else type(mask).__name__
        raise op_error(TypeError, "masked_fill", f"expected a bool mask, got {got}")
    if isinstance(value, Tensor) and value.ndim != 0:
        raise op_error(ValueError, "masked_fill", "the value must be a number or a 0-d tensor, "
                       f"got a tensor of shape {tuple(value.shape)}")
    out = where(mask, value, input)
    return out if out.dtype is input.dtype else out.to(input.dtype)


def neg(input):
    """``-input``, elementwise."""
    return dispatch("neg", input)


def exp(input):
    """``e ** input``, elementwise."""
    return dispatch("exp", input)


def log(input):
    """The natural logarithm, elementwise (``log(0) = -inf``, negative inputs give ``nan``)."""
    return dispatch("log", input)


def sin(input):
    """The sine, elementwise (radians)."""
    return dispatch("sin", input)


def cos(input):
    """The cosine, elementwise (radians)."""
    return dispatch("cos", input)


def tanh(input):
    """The hyperbolic tangent, elementwise."""
    return dispatch("tanh", input)


def sqrt(input):
    """The square root, elementwise."""
    return dispatch("sqrt", input)


def rsqrt(input):
    """``1 / sqrt(input)``, elementwise."""
    return dispatch("rsqrt", input)


def abs(input):
    """The absolute value, elementwise."""
    return dispatch("abs", input)


def sign(input):
    """-1, 0 or 1 by the sign of each element (its gradient is zero)."""
    return dispatch("sign", input)


def sigmoid(input):
    """``1 / (1 + exp(-input))``, elementwise."""
    return dispatch("sigmoid", input)


def relu(input):
    """``max(input, 0)``, elementwise."""
    return dispatch("relu", input)


def erf(input):
    """The Gauss error function, elementwise."""
    return dispatch("erf", input)


def reciprocal(input):
    """``1 / input``, elementwise."""
    return dispatch("reciprocal", input)


def _bitwise(name, input, other):
    from .._errors import op_error
    from ..tensor import Tensor
    for x in (input, other):
        if (x.dtype.is_floating_point if isinstance(x, Tensor)
                else isinstance(x, (builtins.float, np.floating))):
            kind = x.dtype.name if isinstance(x, Tensor) else "float"
            raise op_error(TypeError, name, f"not defined for {kind} operands (only bool and "
                           "integer tensors), as in PyTorch")
    return dispatch(name, input, other)


def bitwise_and(input, other):
    """``input & other``, elementwise: logical and of bool tensors, bitwise and of integers.
    Broadcasts; ``other`` may be a Python int or bool; floats raise ``TypeError``."""
    return _bitwise("bitwise_and", input, other)


def bitwise_or(input, other):
    """``input | other``, elementwise: logical or of bool tensors, bitwise or of integers."""
    return _bitwise("bitwise_or", input, other)


def bitwise_xor(input, other):
    """``input ^ other``, elementwise: logical xor of bool tensors, bitwise xor of integers."""
    return _bitwise("bitwise_xor", input, other)


def logical_not(input):
    """Elementwise ``not``: true where ``input`` is zero (or false); a ``bool`` tensor."""
    return dispatch("logical_not", input)


def gelu(input, approximate="none"):
    """The Gaussian error linear unit, ``x * Phi(x)``, elementwise.

    ``approximate="none"`` uses ``erf``; ``approximate="tanh"`` uses PyTorch's tanh
    formula.  Decomposed into prims before compilation."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return dispatch("gelu", input, approximate=approximate)


def clamp(input, min=None, max=None):
    """Each element limited to ``[min, max]`` (either bound may be ``None``)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if not input.dtype.is_floating_point and any(isinstance(b, builtins.float)
                                                 for b in (min, max)):
        input = input.to(dt.float32)        # a float bound makes the result float (PyTorch)
    return dispatch("clamp", input, min=None if min is None else builtins.float(min),
                    max=None if max is None else builtins.float(max))


def to(input, dtype=None, *args, **kwargs):
    """``t.to(dtype)`` casts; ``t.to("cpu")`` / ``t.to("cuda")`` moves; ``t.to(other)``
    takes ``other``'s dtype and device, as in PyTorch."""
    from ..tensor import device as _device, Tensor
    target_dtype = None
    target_device = kwargs.pop("device", None)
    for a in (dtype,) + args:
        if a is None:
            continue
        if isinstance(a, (str, _device)) and str(a).split(":")[0] in ("cpu", "cuda"):
            target_device = a
        elif isinstance(a, Tensor):          # t.to(other): other's dtype and device
            target_dtype = a.dtype
            target_device = a.device
        else:
            target_dtype = dt.to_dtype(a)
    if "dtype" in kwargs:
        target_dtype = dt.to_dtype(kwargs.pop("dtype"))
    out = input
    if target_device is not None and _device(target_device) != input.device:
        from ..devices import move
        out = move(out, _device(target_device))
    if target_dtype is not None and target_dtype is not out.dtype:
        out = dispatch("to", out, dtype=target_dtype.name)
    return out


def float(input):
    """``input.to(minaot.float32)``."""
    return to(input, dt.float32)


def double(input):
    """``input.to(minaot.float64)``."""
    return to(input, dt.float64)


def long(input):
    """``input.to(minaot.int64)``."""
    return to(input, dt.int64)


def bool(input):
    """``input.to(minaot.bool)``."""
    return to(input, dt.bool_)


def type_as(input, other):
    """``input`` cast to ``other``'s dtype."""
    return to(input, other.dtype)


# ---------------------------------------------------------------- VJP rules
def _add_vjp(ctx, g):
    return g, g


def _sub_vjp(ctx, g):
    return g, (neg(g) if _need(ctx, 1) else None)


def _mul_vjp(ctx, g):
    """Gradients of ``a * b`` for the incoming gradient ``g``: ``(g * b, g * a)``.

    A VJP rule reads the op's tensors from ``ctx.inputs`` / ``ctx.outputs`` and
    returns one gradient per input, ``None`` where ``ctx.needs_input_grad`` is
    False.  Write it with minaot's ops (``mul``, ``div``, ...), not numpy, so the
    same rule runs eagerly and records IR in the joint pass.  Gradients may keep
    the broadcast shape: the caller sums them down to each input's shape."""
    # BEGIN TASK 1.1: VJP rules of mul, div and pow
    return (mul(g, ctx.inputs[1]) if _need(ctx, 0) else None,
            mul(g, ctx.inputs[0]) if _need(ctx, 1) else None)
    # END TASK 1.1


def _div_vjp(ctx, g):
    """Gradients of ``out = a / b``: ``g / b`` and ``-g * a / b**2``.  From the inputs, not
    the output, as PyTorch's ``DivBackward0``: the caller may change ``out`` in place."""
    # BEGIN TASK 1.1
    b = ctx.inputs[1]
    ga = div(g, b) if _need(ctx, 0) else None
    gb = neg(div(div(mul(g, ctx.inputs[0]), b), b)) if _need(ctx, 1) else None
    return ga, gb
    # END TASK 1.1


def _pow_vjp(ctx, g):
    """Gradients of ``out = a ** b``: ``g * b * a ** (b - 1)`` and ``g * out * log(a)``,
    with PyTorch's zeros where those are ``0 * inf``: ``a`` gets 0 where ``b == 0``
    (``x ** 0`` at 0), ``b`` gets 0 where ``a == 0`` and ``b >= 0`` (``0 ** x``)."""
    # BEGIN TASK 1.1
    a, b = ctx.inputs[0], ctx.inputs[1]
    ga = gb = None
    if _need(ctx, 0):
        ga = mul(mul(g, b), pow(a, sub(b, 1)))
        if _known_scalar(b) in (None, 0):       # x ** 2: no mask in the graph
            ga = where(eq(b, 0), 0.0, ga)
    if _need(ctx, 1):
        gb = mul(mul(g, ctx.outputs[0]), log(a))
        if _known_scalar(a) in (None, 0):
            gb = where(eq(a, 0), where(ge(b, 0), 0.0, gb), gb)
    return ga, gb
    # END TASK 1.1


def _known_scalar(t):
    """The value of a 0-d tensor known without running anything: a constant while
    tracing (``x ** 2``'s exponent), the tensor's item in eager; else None."""
    if t.ndim != 0:
        return None
    if getattr(t, "_is_fake", False):
        op = t._value.defining_op
        return op.attributes.get("value") if op is not None and op.opname == "constant" else None
    return t.item() if not t.is_cuda else None


def _minmax_vjp(pick):
    def vjp(ctx, g):
        a, b = ctx.inputs[0], ctx.inputs[1]
        wa = add(pick(a, b).to(g.dtype), mul(eq(a, b).to(g.dtype), 0.5))
        ga = mul(g, wa) if _need(ctx, 0) else None
        gb = mul(g, sub(1, wa)) if _need(ctx, 1) else None
        return ga, gb
    return vjp


def _where_vjp(ctx, g):
    c = ctx.inputs[0]
    return (None,
            where(c, g, 0.0) if _need(ctx, 1) else None,
            where(c, 0.0, g) if _need(ctx, 2) else None)


def _clamp_vjp(ctx, g):
    x = ctx.inputs[0]
    lo, hi = ctx.attrs["min"], ctx.attrs["max"]
    out = g
    if lo is not None:
        out = where(lt(x, lo), 0.0, out)
    if hi is not None:
        out = where(gt(x, hi), 0.0, out)
    return (out,)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _gelu_vjp(ctx, g):
    x = ctx.inputs[0]
    if ctx.attrs["approximate"] == "tanh":
        x2 = mul(x, x)
        inner = mul(mul(add(mul(x2, 0.044715), 1.0), x), _SQRT_2_OVER_PI)
        t = tanh(inner)
        dinner = mul(add(mul(x2, 3 * 0.044715), 1.0), _SQRT_2_OVER_PI)
        d = add(mul(add(t, 1.0), 0.5), mul(mul(mul(x, 0.5), sub(1.0, mul(t, t))), dinner))
    else:
        cdf = mul(add(erf(mul(x, _INV_SQRT_2)), 1.0), 0.5)
        pdf = mul(exp(mul(mul(x, x), -0.5)), _INV_SQRT_2PI)
        d = add(cdf, mul(x, pdf))
    return (mul(g, d),)


# ---------------------------------------------------------------- numpy implementations
_erf_np = np.vectorize(math.erf, otypes=[np.float64])


def _erf_impl(x):
    return _erf_np(x).astype(x.dtype, copy=False)


def _gelu_impl(x, approximate):
    if approximate == "tanh":
        c = x.dtype.type(_SQRT_2_OVER_PI)
        return x * x.dtype.type(0.5) * (1 + np.tanh(c * (x + x.dtype.type(0.044715) * x * x * x)))
    return x * x.dtype.type(0.5) * (1 + _erf_impl(x * x.dtype.type(_INV_SQRT_2)))


def _clamp_impl(x, min, max):
    out = x
    if min is not None:
        out = np.maximum(out, x.dtype.type(min))
    if max is not None:
        out = np.minimum(out, x.dtype.type(max))
    return out


def _pow_impl(a, b):
    if a.dtype.kind in "iu" and np.any(b < 0):
        raise ValueError("pow: integers to negative integer powers are not allowed")
    return np.power(a, b)


def _div_impl(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.true_divide(a, b)


def _log_impl(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(x)


def _sqrt_impl(x):
    with np.errstate(invalid="ignore"):
        return np.sqrt(x)


def _rsqrt_impl(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 / np.sqrt(x)


def _sigmoid_impl(x):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def _reciprocal_impl(x):
    with np.errstate(divide="ignore"):
        return 1 / x


# ---------------------------------------------------------------- records
_binary("add", np.add, _add_vjp, "({0} + {1})")
_binary("sub", np.subtract, _sub_vjp, "({0} - {1})")
_binary("mul", np.multiply, _mul_vjp, "({0} * {1})")
_binary("div", _div_impl, _div_vjp, "({0} / {1})", promote="float",
        samples=_binary_samples(_normal, _away_from_zero))
_binary("pow", _pow_impl, _pow_vjp, "({0} ** {1})",
        samples=_binary_samples(_positive, _normal, 2.0))
_binary("maximum", np.maximum, _minmax_vjp(gt), "max({0}, {1})")
_binary("minimum", np.minimum, _minmax_vjp(lt), "min({0}, {1})")


def _bits_samples(rng):
    bools = [SampleInput((rng.standard_normal(sa) > 0, rng.standard_normal(sb) > 0))
             for sa, sb in _SHAPES_BINARY]
    ints = [SampleInput((rng.integers(-20, 20, sa), rng.integers(-20, 20, sb)))
            for sa, sb in _SHAPES_BINARY[:2]]
    return bools + ints + [SampleInput((rng.integers(-20, 20, (3, 2)), 6), name="python scalar"),
                           SampleInput((rng.standard_normal((4,)) > 0, True), name="python bool")]


for _name, _np, _sym in [("bitwise_and", np.bitwise_and, "&"), ("bitwise_or", np.bitwise_or, "|"),
                         ("bitwise_xor", np.bitwise_xor, "^")]:
    _binary(_name, _np, None, "({0} %s {1})" % _sym, samples=_bits_samples)
for _name, _np, _sym in [("eq", np.equal, "=="), ("ne", np.not_equal, "!="), ("lt", np.less, "<"),
                         ("le", np.less_equal, "<="), ("gt", np.greater, ">"),
                         ("ge", np.greater_equal, ">=")]:
    _binary(_name, _np, None, "({0} %s {1})" % _sym, dtype=dt.bool_)

register(OpDef(
    "where", "pointwise", pw_meta("where"), np.where, vjp=_where_vjp,
    scalar="({1} if {0} else {2})", promote="where",
    samples=lambda rng: [
        SampleInput((rng.standard_normal((3, 4)) > 0, rng.standard_normal((3, 4)),
                     rng.standard_normal((4,)))),
        SampleInput((rng.standard_normal((3, 1)) > 0, rng.standard_normal((3, 4)), 0.0)),
    ]))

_unary("neg", np.negative, lambda ctx, g: (neg(g),), "(-{0})", promote="same")
_unary("exp", np.exp, lambda ctx, g: (mul(g, ctx.outputs[0]),), "math.exp({0})")
_unary("log", _log_impl, lambda ctx, g: (div(g, ctx.inputs[0]),), "math.log({0})",
       samples=_unary_samples(_positive))
_unary("sin", np.sin, lambda ctx, g: (mul(g, cos(ctx.inputs[0])),), "math.sin({0})")
_unary("cos", np.cos, lambda ctx, g: (neg(mul(g, sin(ctx.inputs[0]))),), "math.cos({0})")
_unary("tanh", np.tanh,
       lambda ctx, g: (mul(g, sub(1.0, mul(ctx.outputs[0], ctx.outputs[0]))),), "math.tanh({0})")
_unary("sqrt", _sqrt_impl, lambda ctx, g: (div(g, mul(ctx.outputs[0], 2.0)),),
       "math.sqrt({0})", samples=_unary_samples(_positive))
_unary("rsqrt", _rsqrt_impl,
       lambda ctx, g: (mul(mul(g, -0.5), pow(ctx.outputs[0], 3.0)),),
       "(1.0 / math.sqrt({0}))", samples=_unary_samples(_positive))
_unary("reciprocal", _reciprocal_impl,
       lambda ctx, g: (neg(mul(g, mul(ctx.outputs[0], ctx.outputs[0]))),), "(1.0 / {0})",
       samples=_unary_samples(_away_from_zero))
_unary("abs", np.abs, lambda ctx, g: (mul(g, sign(ctx.inputs[0])),), "abs({0})",
       promote="same", samples=_unary_samples(_away_from_zero))
_unary("floor", np.floor, lambda ctx, g: (mul(g, 0.0),), "math.floor({0})", promote="same",
       samples=_unary_samples(lambda rng, shape: np.asarray(rng.standard_normal(shape) * 3 + 0.25)))
_unary("sign", np.sign, lambda ctx, g: (mul(g, 0.0),), "(({0} > 0) - ({0} < 0))",
       promote="same", samples=_unary_samples(_away_from_zero))
_unary("sigmoid", _sigmoid_impl,
       lambda ctx, g: (mul(g, mul(ctx.outputs[0], sub(1.0, ctx.outputs[0]))),),
       "(1.0 / (1.0 + math.exp(-{0})))")
_unary("relu", lambda x: np.maximum(x, x.dtype.type(0)),
       lambda ctx, g: (where(gt(ctx.outputs[0], 0), g, 0.0),), "max({0}, 0)",
       promote="same", samples=_unary_samples(_away_from_zero))
_unary("erf", _erf_impl,
       lambda ctx, g: (mul(g, mul(exp(neg(mul(ctx.inputs[0], ctx.inputs[0]))),
                                  2.0 / math.sqrt(math.pi))),), "math.erf({0})")
_unary("logical_not", np.logical_not, None, "(not {0})", promote=None, dtype=dt.bool_,
       samples=lambda rng: [SampleInput((rng.standard_normal((3, 4)) > 0,))])
def _gelu_decomp(x, *, approximate):
    if approximate == "tanh":
        inner = mul(add(x, mul(mul(mul(x, x), x), 0.044715)), _SQRT_2_OVER_PI)
        return mul(mul(x, 0.5), add(tanh(inner), 1.0))
    return mul(mul(x, 0.5), add(erf(mul(x, _INV_SQRT_2)), 1.0))


def _clamp_decomp(x, *, min, max):
    # where, not maximum/minimum: a value on a bound keeps its whole gradient (PyTorch's
    # clamp backward), where maximum's VJP would split it between the two sides of a tie;
    # NaN stays NaN (both comparisons are false)
    out = x
    if not x.dtype.is_floating_point:       # integral bounds (clamp made a float bound's
        min = None if min is None else builtins.int(min)    # input float): stay integral
        max = None if max is None else builtins.int(max)
    if min is not None:
        out = where(lt(out, min), min, out)
    if max is not None:
        out = where(gt(out, max), max, out)
    return out


register(OpDef(
    "gelu", "pointwise", pw_meta("gelu"), _gelu_impl, vjp=_gelu_vjp, promote="float",
    decomp=_gelu_decomp,
    samples=lambda rng: [SampleInput((rng.standard_normal((3, 4)),), {"approximate": "none"}),
                         SampleInput((rng.standard_normal((6,)),), {"approximate": "tanh"})]))
register(OpDef(
    "clamp", "pointwise", pw_meta("clamp"), _clamp_impl, vjp=_clamp_vjp, promote="same",
    decomp=_clamp_decomp,
    samples=lambda rng: [SampleInput((_away_from_zero(rng, (3, 4)),), {"min": -0.3, "max": 0.7}),
                         SampleInput((_away_from_zero(rng, (5,)),), {"min": 0.2, "max": None})]))


def _to_meta(x, *, dtype):
    from .registry import Meta
    return Meta(x.shape, dt.from_name(dtype), str(x.device))


register(OpDef(
    "to", "pointwise", _to_meta, lambda x, dtype: x.astype(dt.from_name(dtype).np),
    vjp=lambda ctx, g: (g,), scalar="{0}",
    samples=lambda rng: [SampleInput((rng.standard_normal((3, 4)),), {"dtype": "float64"}),
                         SampleInput((rng.standard_normal((3,)),), {"dtype": "int64"})]))
