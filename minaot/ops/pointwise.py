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
    is ``-3``); its gradient is zero.  Integers: an integer result, computed in float64
    (exact while the operands stay below 2^53 in magnitude); dividing an integer by 0
    raises eagerly on the CPU, as in PyTorch (compiled code cannot raise: it gives an
    undefined value there).

    Floats: PyTorch's (and numpy's and Python's) formula through :func:`fmod`, not
    ``floor(input / other)``, whose division rounds first: ``1.0 // 0.1`` is ``9.0``
    (``0.1`` is a little above one tenth), ``floor(1.0 / 0.1)`` is ``10.0``.  With ``mod =
    fmod(input, other)``, ``(input - mod) / other`` is a whole number up to rounding,
    lowered by one where ``mod`` and ``other`` differ in sign, then rounded to the nearest
    whole number; a zero quotient takes the sign of ``input / other``; ``x // 0`` is
    ``x / 0`` (``inf``, ``-inf`` or ``nan``) and ``inf // y`` is ``nan``.  Every value
    goes through ``floor``, whose gradient is zero."""
    if _integral(input) and _integral(other):
        input, other = _wrapped_ints(input, other)
        _check_int_divisor("floor_divide", other)
        return _int_floor_quotient(input, other)
    mod = fmod(input, other)
    quotient = div(sub(input, mod), other)
    borrow = logical_and(ne(mod, 0), ne(lt(other, 0), lt(mod, 0)))
    quotient = where(borrow, sub(quotient, 1), quotient)
    whole = floor(quotient)
    whole = where(gt(sub(quotient, whole), 0.5), add(whole, 1), whole)
    plain = floor(div(input, other))                # x // 0, and the sign of a zero quotient
    whole = where(eq(quotient, 0), mul(plain, 0), whole)
    return where(eq(other, 0), plain, whole)


def _wrapped_ints(input, other):
    """A Python int operand wrapped into the dtype the two promote to, as PyTorch's
    arithmetic takes it (``uint8_tensor // -3`` divides by 253)."""
    target = dt.result_type(input, other)
    return tuple(x if not isinstance(x, (builtins.int, np.integer)) else dt.wrap_int(x, target)
                 for x in (input, other))


def _int_floor_quotient(input, other):
    """``input // other`` of integers (the divisor already checked), through float64, in the
    operands' promoted integer dtype (``int8(-128) // -1`` wraps around to -128, as in
    PyTorch)."""
    return _int_result(floor(div(_double(input), _double(other))), input, other)


def _int_result(quotient, input, other):
    """A float64 tensor of whole numbers as the integer dtype ``input`` and ``other``
    promote to (through int64, so a quotient out of a narrow range wraps around)."""
    target = dt.result_type(input, other)
    out = quotient.long()
    return out if target is dt.int64 else out.to(target)


def remainder(input, other):
    """``input % other``: the remainder with the sign of the divisor, as Python and PyTorch
    do (``-5 % 3`` is ``1``).  Floats: PyTorch's formula, ``mod = fmod(input, other)``
    plus ``other`` where ``mod`` is not zero and its sign differs from ``other``'s (exact:
    ``1.0 % 0.1`` is ``0.09999999999999995``, not the ``0.0`` of ``1.0 - 0.1 * (1.0 //
    0.1)`` rounded); ``x % 0`` is ``nan``.  Its gradient is 1 for ``input`` and ``-(input
    // other)`` for ``other``, through :func:`fmod`'s (``-trunc(input / other)``, plus one
    where ``other`` was added): where ``input / other`` rounds onto a whole number that
    the exact quotient does not reach (``1.0 / 0.1``) it is one off PyTorch's.  Integers:
    ``input - other * (input // other)``."""
    if _integral(input) and _integral(other):
        input, other = _wrapped_ints(input, other)
        _check_int_divisor("remainder", other)
        return sub(input, mul(other, _int_floor_quotient(input, other)))
    mod = fmod(input, other)
    wrap = logical_and(ne(mod, 0), ne(lt(other, 0), lt(mod, 0)))
    return where(wrap, add(mod, other), mod)


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
    """``input ** exponent``, elementwise; ``exponent`` is a tensor or a Python number.
    Integers to negative integer powers raise, as in PyTorch (checked before a number is
    wrapped into the tensor's dtype: ``uint8_tensor ** -1`` raises too)."""
    if _integral(input) and _integral(exponent) and not hasattr(exponent, "dtype") and exponent < 0:
        from .._errors import op_error
        raise op_error(ValueError, "pow", "integers to negative integer powers are not allowed")
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
    from .._errors import DTypeError, op_error
    from ..tensor import Tensor
    for x in (input, other):
        if (x.dtype.is_floating_point if isinstance(x, Tensor)
                else isinstance(x, (builtins.float, np.floating))):
            kind = x.dtype.name if isinstance(x, Tensor) else "float"
            raise op_error(DTypeError, name, f"not defined for {kind} operands (only bool and "
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
    """Each element limited to ``[min, max]`` (either bound may be ``None``), as
    ``torch.clamp``: ``minimum(maximum(input, min), max)``, so where ``min > max`` every
    element is ``max``; NaN in the input or in a bound gives NaN.

    The bounds are numbers or tensors (both of one kind, as in PyTorch; a 0-d tensor that
    does not require grad may stand for a number).  Tensor bounds broadcast with ``input``
    and take part in the dtype promotion; their gradients are PyTorch's: the input gets
    the gradient where ``min <= input <= max`` (a value on a bound keeps it), ``min`` where
    the input was raised to it (``input < min`` and ``min < max``), ``max`` where the result
    is ``max`` by clipping (``input > max`` or ``max < min``); where ``min == max`` clips,
    nobody gets it."""
    from ..tensor import Tensor
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        bounds, which = _clamp_tensor_bounds("clamp", min, max)
        return dispatch("clamp_tensor", input, *bounds, bounds=which)
    if not input.dtype.is_floating_point and any(isinstance(b, builtins.float)
                                                 for b in (min, max)):
        input = input.to(dt.float32)        # a float bound makes the result float (PyTorch)
    if input.dtype.category == 1:           # a bound beyond the dtype raises; -5 for uint8 wraps
        min, max = (None if b is None else _int_bound(b, input.dtype) for b in (min, max))
    return dispatch("clamp", input, min=None if min is None else builtins.float(min),
                    max=None if max is None else builtins.float(max))


def _int_bound(b, dtype):
    dt.check_fits(b, dtype, "clamp")
    return dt.wrap_int(b, dtype)


def _clamp_tensor_bounds(name, min, max):
    """``(operands, bounds)`` of ``clamp_tensor`` for the bounds ``min``, ``max`` (at least
    one a tensor): ``((lo, hi), "both")``, ``((lo,), "min")`` or ``((hi,), "max")``.  A
    number beside a tensor is refused as PyTorch's argument parser does, unless the tensor
    is 0-d and needs no gradient (PyTorch then takes both as numbers, which gives the same
    values)."""
    from .._errors import op_error
    from ..tensor import Tensor
    if min is not None and max is not None and isinstance(min, Tensor) != isinstance(max, Tensor):
        t = min if isinstance(min, Tensor) else max
        if t.ndim != 0 or t.requires_grad:
            raise op_error(TypeError, name, "min and max must both be tensors or both be "
                           f"numbers, got {type(min).__name__} and {type(max).__name__} (a "
                           f"tensor of shape {tuple(t.shape)}), as in PyTorch")
    if min is not None and max is not None:
        return (min, max), "both"
    return ((min,), "min") if min is not None else ((max,), "max")


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
    """PyTorch's: the gradient passes where ``min <= x <= max`` (a value on a bound keeps
    it; NaN, and every element when ``min > max``, gets zero)."""
    x = ctx.inputs[0]
    lo, hi = ctx.attrs["min"], ctx.attrs["max"]
    inside = ge(x, lo) if lo is not None else None
    if hi is not None:
        inside = le(x, hi) if inside is None else bitwise_and(inside, le(x, hi))
    return (where(inside, g, 0.0),)


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
    return _clamp_np(x, None if min is None else x.dtype.type(min),
                     None if max is None else x.dtype.type(max))


def _clamp_np(x, lo, hi):
    """``min(max(x, lo), hi)`` as PyTorch computes it: ``x`` itself on a tie (``-0.0``
    stays), NaN in ``x`` or in a bound gives NaN."""
    out = x
    with np.errstate(invalid="ignore"):
        if lo is not None:
            out = np.where(out < lo, lo, out)
        if hi is not None:
            out = np.where(out > hi, hi, out)
        if x.dtype.kind == "f":
            for b in (lo, hi):
                if b is not None:
                    out = np.where(np.isnan(b), b, out)
    return out


def _pow_impl(a, b):
    if a.dtype.kind in "iu" and np.any(b < 0):
        raise ValueError("pow: integers to negative integer powers are not allowed")
    return np.power(a, b)


def _mul_impl(a, b):
    with np.errstate(invalid="ignore"):     # inf * 0 is NaN without a warning, as in PyTorch
        return np.multiply(a, b)


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
def _ints(rng, dtype, shape):
    """Integers over ``dtype``'s whole range (sums and products of them wrap around)."""
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def _int_samples(*dtypes):
    """Samples of a binary op on the narrow integer dtypes: each with itself (wrapping
    around), and uint8 with int8 (promoted to int16), as PyTorch computes them."""
    def samples(rng):
        out = [SampleInput((_ints(rng, d, (3, 4)), _ints(rng, d, (4,))), grad=(), name=d)
               for d in dtypes]
        out.append(SampleInput((_ints(rng, "uint8", (5,)), _ints(rng, "int8", (5,))), grad=(),
                               name="uint8 with int8"))
        return out
    return samples


def _with(*sample_fns):
    return lambda rng: [s for f in sample_fns for s in f(rng)]


_NARROW = ("int32", "int16", "int8", "uint8")
_binary("add", np.add, _add_vjp, "({0} + {1})",
        samples=_with(_binary_samples(), _int_samples(*_NARROW)))
_binary("sub", np.subtract, _sub_vjp, "({0} - {1})",
        samples=_with(_binary_samples(), _int_samples("int8", "uint8")))
_binary("mul", _mul_impl, _mul_vjp, "({0} * {1})",
        samples=_with(_binary_samples(), _int_samples("int32", "int16", "int8")))
_binary("div", _div_impl, _div_vjp, "({0} / {1})", promote="float",
        samples=_binary_samples(_normal, _away_from_zero))
_binary("pow", _pow_impl, _pow_vjp, "({0} ** {1})",
        samples=_binary_samples(_positive, _normal, 2.0))
_binary("maximum", np.maximum, _minmax_vjp(gt), "max({0}, {1})",
        samples=_with(_binary_samples(), _int_samples("uint8")))
_binary("minimum", np.minimum, _minmax_vjp(lt), "min({0}, {1})",
        samples=_with(_binary_samples(), _int_samples("int8")))


def _bits_samples(rng):
    bools = [SampleInput((rng.standard_normal(sa) > 0, rng.standard_normal(sb) > 0))
             for sa, sb in _SHAPES_BINARY]
    ints = [SampleInput((rng.integers(-20, 20, sa), rng.integers(-20, 20, sb)))
            for sa, sb in _SHAPES_BINARY[:2]]
    return bools + ints + [SampleInput((rng.integers(-20, 20, (3, 2)), 6), name="python scalar"),
                           SampleInput((rng.standard_normal((4,)) > 0, True), name="python bool"),
                           *_int_samples("int32", "uint8")(rng)]


for _name, _np, _sym in [("bitwise_and", np.bitwise_and, "&"), ("bitwise_or", np.bitwise_or, "|"),
                         ("bitwise_xor", np.bitwise_xor, "^")]:
    _binary(_name, _np, None, "({0} %s {1})" % _sym, samples=_bits_samples)
for _name, _np, _sym in [("eq", np.equal, "=="), ("ne", np.not_equal, "!="), ("lt", np.less, "<"),
                         ("le", np.less_equal, "<="), ("gt", np.greater, ">"),
                         ("ge", np.greater_equal, ">=")]:
    _binary(_name, _np, None, "({0} %s {1})" % _sym, dtype=dt.bool_,
            samples=_with(_binary_samples(), _int_samples("int16")))

register(OpDef(
    "where", "pointwise", pw_meta("where"), np.where, vjp=_where_vjp,
    scalar="({1} if {0} else {2})", promote="where",
    samples=lambda rng: [
        SampleInput((rng.standard_normal((3, 4)) > 0, rng.standard_normal((3, 4)),
                     rng.standard_normal((4,)))),
        SampleInput((rng.standard_normal((3, 1)) > 0, rng.standard_normal((3, 4)), 0.0)),
    ]))

_unary("neg", np.negative, lambda ctx, g: (neg(g),), "(-{0})", promote="same",
       samples=lambda rng: _unary_samples()(rng) + [
           SampleInput((_ints(rng, d, (6,)),), grad=(), name=d) for d in ("int8", "uint8")])
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
    # clamp backward), where maximum's VJP would split it between the two sides of a tie
    if not x.dtype.is_floating_point:       # integral bounds (clamp made a float bound's
        out = x                             # input float): stay integral; no NaN
        if min is not None:
            out = where(lt(out, builtins.int(min)), builtins.int(min), out)
        if max is not None:
            out = where(gt(out, builtins.int(max)), builtins.int(max), out)
        return out
    if any(b is not None and math.isnan(b) for b in (min, max)):
        return add(mul(x, 0.0), math.nan)   # all NaN, a zero gradient (PyTorch's)
    # the input only where min <= x <= max, so NaN (no branch taken) gets no gradient
    below = min if max is None or min is None or min <= max else max    # min > max: max
    inside = ge(x, min) if min is not None else None
    if max is not None:
        inside = le(x, max) if inside is None else bitwise_and(inside, le(x, max))
    out = where(inside, x, math.nan)
    if max is not None:
        out = where(gt(x, max), max, out)
    if min is not None:
        out = where(lt(x, min), below, out)
    return out


def _clamp_tensor_impl(x, *b, bounds):
    return _clamp_np(x, b[0] if bounds != "max" else None, b[-1] if bounds != "min" else None)


def _clamp_tensor_decomp(x, *b, bounds):
    """``clamp`` with tensor bounds as ``where``s whose VJPs are PyTorch's clamp backward:
    the input's branch is taken where ``lo <= x <= hi``, ``lo``'s where ``x < lo < hi``,
    ``hi``'s where ``x > hi`` or ``hi < lo``; the rest (``lo == hi`` clipping, or a NaN
    somewhere) gets no gradient.  A NaN anywhere makes the value NaN."""
    from ..tensor import Tensor
    lo = b[0] if bounds != "max" else None
    hi = b[-1] if bounds != "min" else None
    floating = x.dtype.is_floating_point
    if hi is None or lo is None:
        bound, take = (lo, ge) if hi is None else (hi, le)
        if not floating:
            return where(take(x, bound), x, bound)
        clipped = lt(x, bound) if hi is None else gt(x, bound)
        return where(take(x, bound), x, where(clipped, bound, math.nan))
    inside = bitwise_and(ge(x, lo), le(x, hi))
    raised = bitwise_and(lt(x, lo), lt(lo, hi))
    lowered = bitwise_or(gt(x, hi), lt(hi, lo))
    equal = lo.detach() if isinstance(lo, Tensor) else lo       # min == max clipping
    out = where(inside, x, where(raised, lo, where(lowered, hi, equal)))
    if not floating:
        return out
    some_nan = ne(x, x)
    for b in (lo, hi):
        if isinstance(b, Tensor) or math.isnan(b):
            some_nan = bitwise_or(some_nan, ne(b, b))
    return where(some_nan, add(out, math.nan), out)    # add: hi keeps its gradient there


def _clamp_tensor_samples(rng):
    def x(*shape):
        return _away_from_zero(rng, shape)
    lo, hi = rng.uniform(-1.0, -0.2, (4,)), rng.uniform(0.2, 1.0, (3, 1))
    crossed = rng.uniform(-0.5, 0.5, (3, 4))
    return [SampleInput((x(3, 4), lo, hi), {"bounds": "both"}),
            SampleInput((x(3, 4), crossed + 0.3, crossed - 0.3), {"bounds": "both"},
                        name="min > max"),
            SampleInput((x(2, 3, 4), lo), {"bounds": "min"}),
            SampleInput((x(4,), hi), {"bounds": "max"}, name="broadcast to the bound"),
            SampleInput((x(3, 4), -0.5, hi), {"bounds": "both"}, name="a number bound"),
            SampleInput((rng.integers(-5, 5, (3, 4)), rng.integers(-3, 0, (4,)),
                         rng.integers(0, 3, (3, 1))), {"bounds": "both"}, name="int64")]


register(OpDef(
    "gelu", "pointwise", pw_meta("gelu"), _gelu_impl, vjp=_gelu_vjp, promote="float",
    decomp=_gelu_decomp,
    samples=lambda rng: [SampleInput((rng.standard_normal((3, 4)),), {"approximate": "none"}),
                         SampleInput((rng.standard_normal((6,)),), {"approximate": "tanh"})]))
register(OpDef(
    "clamp", "pointwise", pw_meta("clamp"), _clamp_impl, vjp=_clamp_vjp, promote="same",
    decomp=_clamp_decomp,
    samples=lambda rng: [SampleInput((_away_from_zero(rng, (3, 4)),), {"min": -0.3, "max": 0.7}),
                         SampleInput((_away_from_zero(rng, (5,)),), {"min": 0.2, "max": None}),
                         SampleInput((_away_from_zero(rng, (5,)),), {"min": 0.4, "max": -0.2},
                                     name="min > max")]))
register(OpDef(
    "clamp_tensor", "pointwise", pw_meta("clamp_tensor"), _clamp_tensor_impl,
    decomp=_clamp_tensor_decomp, composite=True, promote="same",
    samples=_clamp_tensor_samples,
    doc="clamp with tensor bounds (attribute bounds: 'both', 'min' or 'max')"))


def _to_meta(x, *, dtype):
    from .registry import Meta
    return Meta(x.shape, dt.from_name(dtype), str(x.device))


def _to_impl(x, dtype):
    """numpy's cast, which is PyTorch's: floats truncate toward zero and integers wrap around
    (a float beyond the target's range is undefined; quietly)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return x.astype(dt.from_name(dtype).np)


register(OpDef(
    "to", "pointwise", _to_meta, _to_impl,
    vjp=lambda ctx, g: (g,), scalar="{0}",
    samples=lambda rng: [SampleInput((rng.standard_normal((3, 4)),), {"dtype": "float64"}),
                         SampleInput((rng.standard_normal((3,)),), {"dtype": "int64"}),
                         # floats to the narrow integers: toward zero, then around (-1.7 as
                         # uint8 is 255, 300.5 as int8 44), as numpy's and PyTorch's casts
                         SampleInput((rng.standard_normal((4,)) * 200,), {"dtype": "int32"}),
                         SampleInput((rng.standard_normal((4,)) * 200,), {"dtype": "int8"}),
                         SampleInput((rng.standard_normal((4,)) * 200,), {"dtype": "uint8"}),
                         SampleInput((_ints(rng, "int16", (5,)),), {"dtype": "int8"}, grad=(),
                                     name="int16 to int8"),
                         SampleInput((_ints(rng, "uint8", (5,)),), {"dtype": "float32"}, grad=(),
                                     name="uint8 to float32")]))


# ================================================================ more pointwise
# PyTorch's other pointwise ops.  A function of the math library is a prim (one record with
# a scalar expression: ``prim_to_scalar`` lowers it to a ``math.*`` op that both Numba
# targets call); the rest are composites of prims, exact as PyTorch computes them.
def _float_only(name, *xs):
    """Raise as PyTorch does for an op that has no integer kernel (``hypot``, ``logaddexp``)."""
    from .._errors import DTypeError, op_error
    from ..tensor import Tensor
    from .. import dtypes as _dt
    tensors = [x for x in xs if isinstance(x, Tensor)]
    if tensors and not _dt.result_type(*xs).is_floating_point:
        raise op_error(DTypeError, name, "not implemented for "
                       + ", ".join(x.dtype.name for x in tensors)
                       + " tensors (only floating point), as in PyTorch")


def _rounding(name, input, **attrs):
    """Rounding ops: an integer tensor comes back as a copy, a bool one raises (PyTorch)."""
    from .._errors import DTypeError, op_error
    if input.dtype is dt.bool_:         # a RuntimeError in PyTorch; DTypeError is one
        raise op_error(DTypeError, name, "not implemented for bool tensors, as in PyTorch")
    if not input.dtype.is_floating_point:
        return input.clone()
    return dispatch(name, input, **attrs)


def log1p(input):
    """``log(1 + input)``, elementwise, accurate for small ``input`` (``log1p(-1) = -inf``,
    below -1 ``nan``); integer inputs give float32."""
    return dispatch("log1p", input)


def expm1(input):
    """``exp(input) - 1``, elementwise, accurate for small ``input``; integer inputs give
    float32."""
    return dispatch("expm1", input)


def exp2(input):
    """``2 ** input``, elementwise; integer inputs give float32."""
    return dispatch("exp2", input)


def log2(input):
    """The base-2 logarithm, elementwise (``log2(0) = -inf``, negative inputs ``nan``)."""
    return dispatch("log2", input)


def log10(input):
    """The base-10 logarithm, elementwise (``log10(0) = -inf``, negative inputs ``nan``)."""
    return dispatch("log10", input)


def ceil(input):
    """The smallest integer not below each element (gradient zero); an integer tensor is
    returned as a copy."""
    return _rounding("ceil", input)


def trunc(input):
    """Each element rounded toward zero (gradient zero); an integer tensor is returned as a
    copy."""
    return _rounding("trunc", input)


def fix(input):
    """Another name of :func:`trunc`."""
    return trunc(input)


def round(input, *, decimals=0):
    """Each element rounded to the nearest integer, halves to the even one (``round(2.5)``
    is 2, ``round(-0.5)`` is -0), as ``torch.round``; the gradient is zero.  With
    ``decimals=d``: ``round(input * 10**d) / 10**d`` (for ``d < 0``: ``round(input /
    10**-d) * 10**-d``), PyTorch's formula.  An integer tensor is returned as a copy."""
    if decimals == 0 or not input.dtype.is_floating_point:
        return _rounding("round", input)
    scale = 10.0 ** builtins.abs(decimals)
    if decimals > 0:
        return div(_rounding("round", mul(input, scale)), scale)
    return mul(_rounding("round", div(input, scale)), scale)


def frac(input):
    """The fractional part, ``input - trunc(input)``, with the sign of ``input`` (``frac(inf)``
    is ``nan``, as in PyTorch); its gradient is 1.  Floating point tensors only."""
    _float_only("frac", input)
    return dispatch("frac", input)


def tan(input):
    """The tangent, elementwise (radians); integer inputs give float32."""
    return dispatch("tan", input)


def asin(input):
    """The arcsine, elementwise (``nan`` outside ``[-1, 1]``)."""
    return dispatch("asin", input)


def acos(input):
    """The arccosine, elementwise (``nan`` outside ``[-1, 1]``)."""
    return dispatch("acos", input)


def atan(input):
    """The arctangent, elementwise, in ``(-pi/2, pi/2)``."""
    return dispatch("atan", input)


def sinh(input):
    """The hyperbolic sine, elementwise."""
    return dispatch("sinh", input)


def cosh(input):
    """The hyperbolic cosine, elementwise."""
    return dispatch("cosh", input)


def asinh(input):
    """The inverse hyperbolic sine, elementwise."""
    return dispatch("asinh", input)


def acosh(input):
    """The inverse hyperbolic cosine, elementwise (``nan`` below 1)."""
    return dispatch("acosh", input)


def atanh(input):
    """The inverse hyperbolic tangent, elementwise (``atanh(1) = inf``, ``nan`` outside
    ``[-1, 1]``)."""
    return dispatch("atanh", input)


def arcsin(input):
    """Another name of :func:`asin`."""
    return asin(input)


def arccos(input):
    """Another name of :func:`acos`."""
    return acos(input)


def arctan(input):
    """Another name of :func:`atan`."""
    return atan(input)


def isnan(input):
    """True where an element is NaN; a ``bool`` tensor (all false for integers)."""
    return dispatch("isnan", input)


def isinf(input):
    """True where an element is +inf or -inf; a ``bool`` tensor."""
    return dispatch("isinf", input)


def isfinite(input):
    """True where an element is neither NaN nor infinite; a ``bool`` tensor."""
    return dispatch("isfinite", input)


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """``input`` with NaN replaced by ``nan``, +inf by ``posinf`` and -inf by ``neginf``
    (by default the largest and the lowest finite value of ``input``'s dtype), as
    ``torch.nan_to_num``.  The gradient is 1 at finite elements and 0 at the replaced
    ones.  An integer or bool tensor is returned as a copy."""
    if not input.dtype.is_floating_point:
        return input.clone()
    return dispatch("nan_to_num", input, **_nan_to_num_values(input, nan, posinf, neginf))


def _nan_to_num_values(input, nan, posinf, neginf) -> dict:
    """``nan_to_num``'s attributes for floating-point ``input``: the replacements, the
    infinities' defaulting to the largest and lowest finite values of its dtype."""
    info = np.finfo(input.dtype.np)
    return dict(nan=builtins.float(nan),
                posinf=builtins.float(info.max if posinf is None else posinf),
                neginf=builtins.float(info.min if neginf is None else neginf))


def clamp_min(input, min):
    """Each element at least ``min``: ``clamp(input, min=min)``."""
    return clamp(input, min=min)


def clamp_max(input, max):
    """Each element at most ``max``: ``clamp(input, max=max)``."""
    return clamp(input, max=max)


def clip(input, min=None, max=None):
    """Another name of :func:`clamp`."""
    return clamp(input, min, max)


def _tensor_only(name, *xs):
    from .._errors import op_error
    from ..tensor import Tensor
    for x in xs:
        if not isinstance(x, Tensor):
            raise op_error(TypeError, name, f"expected a tensor, got {type(x).__name__} "
                           f"({x!r}), as PyTorch does")


def logical_and(input, other):
    """True where both elements are nonzero (NaN counts as nonzero); a ``bool`` tensor.
    Any dtypes, broadcast like numpy."""
    _tensor_only("logical_and", input, other)
    return dispatch("logical_and", input, other)


def logical_or(input, other):
    """True where either element is nonzero (NaN counts as nonzero); a ``bool`` tensor."""
    _tensor_only("logical_or", input, other)
    return dispatch("logical_or", input, other)


def logical_xor(input, other):
    """True where exactly one of the two elements is nonzero; a ``bool`` tensor."""
    _tensor_only("logical_xor", input, other)
    return dispatch("logical_xor", input, other)


# ---------------------------------------------------------------- numpy implementations
def _quiet(f):
    def impl(*xs):
        with np.errstate(all="ignore"):
            return f(*xs)
    return impl


def _round_impl(x):
    return np.rint(x)


def _logaddexp_impl(a, b):
    with np.errstate(invalid="ignore"):
        same_inf = np.isinf(a) & (a == b)
        m = np.maximum(a, b)
        out = m + np.log1p(np.exp(-np.abs(a - b)))
    return np.where(same_inf, a, out)


def _lerp_impl(start, end, weight):
    diff = end - start
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(np.abs(weight) < 0.5, start + weight * diff, end - diff * (1 - weight))


# ---------------------------------------------------------------- VJP rules
_LN2, _LN10 = math.log(2.0), math.log(10.0)


def _zero_vjp(ctx, g):
    return (mul(g, 0.0),)


def _asin_vjp(ctx, g):
    x = ctx.inputs[0]           # PyTorch: grad * (1 - x * x).rsqrt()
    return (mul(g, rsqrt(sub(1.0, mul(x, x)))),)


def _acos_vjp(ctx, g):
    x = ctx.inputs[0]
    return (neg(mul(g, rsqrt(sub(1.0, mul(x, x))))),)


def _atan2_vjp(ctx, g):
    """``d atan2(a, b) = (b da - a db) / (a^2 + b^2)``; PyTorch's zeros where ``a = b = 0``."""
    a, b = ctx.inputs
    denom = add(mul(a, a), mul(b, b))
    zero = eq(denom, 0)
    ga = where(zero, 0.0, div(mul(g, b), denom)) if _need(ctx, 0) else None
    gb = where(zero, 0.0, neg(div(mul(g, a), denom))) if _need(ctx, 1) else None
    return ga, gb


def _hypot_vjp(ctx, g):
    a, b = ctx.inputs
    out = ctx.outputs[0]
    return (div(mul(g, a), out) if _need(ctx, 0) else None,
            div(mul(g, b), out) if _need(ctx, 1) else None)


def _fmod_vjp(ctx, g):
    """``fmod(a, b) = a - b * trunc(a / b)``: ``g`` and ``-g * trunc(a / b)`` (PyTorch's)."""
    a, b = ctx.inputs
    return (g if _need(ctx, 0) else None,
            neg(mul(g, trunc(div(a, b)))) if _need(ctx, 1) else None)


# ---------------------------------------------------------------- records: prims
def _in(lo, hi):
    return lambda rng, shape: rng.uniform(lo, hi, shape)


def _off_half(rng, shape):
    """Values whose rounding is not near a tie (finite differences see no jump)."""
    x = rng.standard_normal(shape) * 3
    u = rng.uniform(0.1, 0.4, shape)
    return np.asarray(np.floor(x) + np.where(x > 0, u, 1 - u))


_unary("log1p", _quiet(np.log1p), lambda ctx, g: (div(g, add(ctx.inputs[0], 1.0)),),
       "math.log1p({0})", samples=_unary_samples(_in(-0.5, 2.0)))
_unary("expm1", np.expm1, lambda ctx, g: (mul(g, add(ctx.outputs[0], 1.0)),), "math.expm1({0})")
_unary("log2", _quiet(np.log2), lambda ctx, g: (div(g, mul(ctx.inputs[0], _LN2)),),
       "math.log2({0})", samples=_unary_samples(_positive))
_unary("log10", _quiet(np.log10), lambda ctx, g: (div(g, mul(ctx.inputs[0], _LN10)),),
       "math.log10({0})", samples=_unary_samples(_positive))
_unary("ceil", np.ceil, _zero_vjp, "math.ceil({0})", promote="same",
       samples=_unary_samples(_off_half))
_unary("trunc", np.trunc, _zero_vjp, "math.trunc({0})", promote="same",
       samples=_unary_samples(_off_half))
_unary("round", _round_impl, _zero_vjp, "math.round({0})", promote="same",
       samples=_unary_samples(_off_half))
_unary("tan", np.tan,
       lambda ctx, g: (mul(g, add(mul(ctx.outputs[0], ctx.outputs[0]), 1.0)),), "math.tan({0})",
       samples=_unary_samples(_in(-1.2, 1.2)))
_unary("asin", _quiet(np.arcsin), _asin_vjp, "math.asin({0})",
       samples=_unary_samples(_in(-0.9, 0.9)))
_unary("acos", _quiet(np.arccos), _acos_vjp, "math.acos({0})",
       samples=_unary_samples(_in(-0.9, 0.9)))
_unary("atan", np.arctan, lambda ctx, g: (div(g, add(mul(ctx.inputs[0], ctx.inputs[0]), 1.0)),),
       "math.atan({0})")
_unary("sinh", np.sinh, lambda ctx, g: (mul(g, cosh(ctx.inputs[0])),), "math.sinh({0})")
_unary("cosh", np.cosh, lambda ctx, g: (mul(g, sinh(ctx.inputs[0])),), "math.cosh({0})")
_unary("asinh", np.arcsinh,
       lambda ctx, g: (mul(g, rsqrt(add(mul(ctx.inputs[0], ctx.inputs[0]), 1.0))),),
       "math.asinh({0})")
_unary("acosh", _quiet(np.arccosh),
       lambda ctx, g: (mul(g, rsqrt(sub(mul(ctx.inputs[0], ctx.inputs[0]), 1.0))),),
       "math.acosh({0})", samples=_unary_samples(_in(1.2, 3.0)))
_unary("atanh", _quiet(np.arctanh),
       lambda ctx, g: (div(g, sub(1.0, mul(ctx.inputs[0], ctx.inputs[0]))),), "math.atanh({0})",
       samples=_unary_samples(_in(-0.9, 0.9)))
_binary("atan2", np.arctan2, _atan2_vjp, "math.atan2({0}, {1})", promote="float")
_binary("hypot", np.hypot, _hypot_vjp, "math.hypot({0}, {1})")
_binary("fmod", _quiet(np.fmod), _fmod_vjp, "math.fmod({0}, {1})",
        samples=_binary_samples(_normal, _away_from_zero))


# ---------------------------------------------------------------- binary and ternary
def atan2(input, other):
    """The angle of the point ``(other, input)``: ``atan(input / other)`` in the right
    quadrant, in ``[-pi, pi]``; integer inputs give float32.  Its gradient is
    ``(other, -input) / (input^2 + other^2)``, zero at the origin (PyTorch's)."""
    return dispatch("atan2", input, other)


def arctan2(input, other):
    """Another name of :func:`atan2`."""
    return atan2(input, other)


def hypot(input, other):
    """``sqrt(input^2 + other^2)`` without overflow or underflow on the way; floating point
    tensors only (as in PyTorch)."""
    _float_only("hypot", input, other)
    return dispatch("hypot", input, other)


def fmod(input, other):
    """The C remainder ``input - other * trunc(input / other)``: the sign of the dividend
    (``fmod(-5, 3)`` is -2), unlike :func:`remainder` (the sign of the divisor).  Floats:
    ``fmod(x, 0)`` and ``fmod(inf, y)`` are ``nan``; gradients ``g`` and ``-g * trunc(input /
    other)``.  Integers: an integer result computed in float64 (exact below 2^53 in
    magnitude); a zero divisor raises eagerly on the CPU, as in PyTorch."""
    if _integral(input) and _integral(other):
        input, other = _wrapped_ints(input, other)
        _check_int_divisor("fmod", other)
        q = _int_result(trunc(div(_double(input), _double(other))), input, other)
        return sub(input, mul(other, q))
    return dispatch("fmod", input, other)


def logaddexp(input, other):
    """``log(exp(input) + exp(other))`` without overflow: ``max + log1p(exp(-|input -
    other|))``, and ``input`` where both are the same infinity (PyTorch's formula).
    Floating point tensors only."""
    _float_only("logaddexp", input, other)
    return dispatch("logaddexp", input, other)


def lerp(input, end, weight):
    """Linear interpolation ``input + weight * (end - input)``, computed as PyTorch does:
    ``end - (end - input) * (1 - weight)`` where ``|weight| >= 0.5`` (exact at ``weight =
    1``).  ``weight`` is a number or a tensor (all three broadcast); ``input`` and ``end``
    (and a tensor ``weight``) must share one floating point dtype, as in PyTorch."""
    _check_lerp("lerp", input, end, weight)
    return dispatch("lerp", input, end, weight)


def _check_lerp(name, input, end, weight):
    from .._errors import DTypeError, op_error
    from ..tensor import Tensor
    _tensor_only(name, input, end)
    tensors = [t for t in (input, end, weight) if isinstance(t, Tensor)]
    if builtins.any(t.dtype is not input.dtype for t in tensors) or not input.dtype.is_floating_point:
        raise op_error(DTypeError, name, "expected floating point tensors of one dtype, got "
                       + ", ".join(t.dtype.name for t in tensors) + ", as PyTorch does")


def _addc(name, input, tensor1, tensor2, value):
    from .._errors import DTypeError, op_error
    if name.rstrip("_") == "addcdiv" and _integral(tensor1) and _integral(tensor2):
        raise op_error(DTypeError, name, "integer division with addcdiv is not "
                       "supported (PyTorch: no longer): use input + value * trunc(tensor1 "
                       "/ tensor2)")
    if builtins.all(_integral(x) for x in (input, tensor1, tensor2)):
        if isinstance(value, builtins.float):
            raise op_error(DTypeError, name, "for integer tensors the value must not be a "
                           "float, as in PyTorch")
    _tensor_only(name, input, tensor1, tensor2)
    return dispatch(name, input, tensor1, tensor2, value=value)


def addcmul(input, tensor1, tensor2, *, value=1):
    """``input + value * tensor1 * tensor2``, elementwise (all three broadcast)."""
    return _addc("addcmul", input, tensor1, tensor2, value)


def addcdiv(input, tensor1, tensor2, *, value=1):
    """``input + value * tensor1 / tensor2``, elementwise (all three broadcast); integer
    ``tensor1`` and ``tensor2`` raise, as in PyTorch."""
    return _addc("addcdiv", input, tensor1, tensor2, value)


# ---------------------------------------------------------------- records: composites
def _composite(name, impl, decomp, samples, promote="same", dtype=None):
    """A pointwise op computed by ``decomp`` (eagerly too, so autograd goes through its parts;
    tracing records it whole and ``decompose`` expands it)."""
    register(OpDef(name, "pointwise", pw_meta(name, dtype), impl, decomp=decomp,
                   composite=True, promote=promote, samples=samples))


def _exp2_decomp(x):
    return pow(2.0, x)


def _frac_decomp(x):
    return sub(x, trunc(x))


def _isnan_decomp(x):
    return ne(x, x)


def _isinf_decomp(x):
    if not x.dtype.is_floating_point:
        return ne(x, x)                     # all false
    return eq(abs(x), math.inf)


def _isfinite_decomp(x):
    if not x.dtype.is_floating_point:
        return eq(x, x)                     # all true
    return lt(abs(x), math.inf)


def _nan_to_num_decomp(x, *, nan, posinf, neginf):
    out = where(eq(x, math.inf), posinf, x)
    out = where(eq(x, -math.inf), neginf, out)
    return where(ne(x, x), nan, out)


def _logical(bitwise):
    def decomp(a, b):
        return bitwise(a.to(dt.bool_), b.to(dt.bool_))
    return decomp


def _logaddexp_decomp(a, b):
    m = maximum(a, b)
    out = add(m, log1p(exp(neg(abs(sub(a, b))))))
    return where(bitwise_and(eq(abs(a), math.inf), eq(a, b)), a, out)


def _lerp_decomp(start, end, weight):
    diff = sub(end, start)
    return where(lt(abs(weight), 0.5), add(start, mul(weight, diff)),
                 sub(end, mul(diff, sub(1.0, weight))))


def _addcmul_decomp(x, t1, t2, *, value):
    return add(x, mul(t1 if value == 1 else mul(t1, value), t2))


def _addcdiv_decomp(x, t1, t2, *, value):
    return add(x, div(t1 if value == 1 else mul(t1, value), t2))


def _special(rng, shape=(8,)):
    """Normal values with NaN, +-inf, +-0 among them."""
    x = rng.standard_normal(shape)
    x[:5] = [np.nan, np.inf, -np.inf, 0.0, -0.0]
    return x


def _predicate_samples(rng):
    return [SampleInput((_special(rng),), grad=()),
            SampleInput((rng.standard_normal((3, 4)),), grad=()),
            SampleInput((rng.integers(-5, 5, (4,)),), grad=())]


_composite("exp2", np.exp2, _exp2_decomp, _unary_samples(), promote="float")
_composite("frac", lambda x: x - np.trunc(x), _frac_decomp, _unary_samples(_off_half))
for _name, _np, _decomp in [("isnan", np.isnan, _isnan_decomp), ("isinf", np.isinf, _isinf_decomp),
                            ("isfinite", np.isfinite, _isfinite_decomp)]:
    _composite(_name, _np, _decomp, _predicate_samples, promote=None, dtype=dt.bool_)
_composite("nan_to_num", lambda x, nan, posinf, neginf: np.nan_to_num(
               x, nan=nan, posinf=posinf, neginf=neginf), _nan_to_num_decomp,
           lambda rng: [SampleInput((_special(rng),), {"nan": 0.0, "posinf": 5.0, "neginf": -7.0},
                                    grad=()),
                        SampleInput((rng.standard_normal((3, 4)),),
                                    {"nan": 1.5, "posinf": 2.0, "neginf": -3.0})])


def _logical_samples(rng):
    return [SampleInput((_special(rng), rng.integers(-1, 2, (8,))), grad=()),
            SampleInput((rng.standard_normal((3, 1)) > 0, rng.standard_normal((4,)) > 0), grad=())]


for _name, _np, _bits in [("logical_and", np.logical_and, bitwise_and),
                          ("logical_or", np.logical_or, bitwise_or),
                          ("logical_xor", np.logical_xor, bitwise_xor)]:
    _composite(_name, _np, _logical(_bits), _logical_samples, promote=None, dtype=dt.bool_)
_composite("logaddexp", _logaddexp_impl, _logaddexp_decomp, _binary_samples())
_composite("lerp", _lerp_impl, _lerp_decomp, lambda rng: [
    SampleInput((rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), 0.3)),
    SampleInput((rng.standard_normal((3, 4)), rng.standard_normal((4,)), 0.75)),
    SampleInput((rng.standard_normal((2, 3)), rng.standard_normal((2, 3)),
                 rng.uniform(-0.2, 1.2, (2, 3))))])
_composite("addcmul", lambda x, a, b, value: x + value * a * b, _addcmul_decomp, lambda rng: [
    SampleInput((rng.standard_normal((3, 4)), rng.standard_normal((3, 4)),
                 rng.standard_normal((4,))), {"value": 1}),
    SampleInput((rng.standard_normal((4,)), rng.standard_normal((3, 1)),
                 rng.standard_normal((3, 4))), {"value": -0.5})])
_composite("addcdiv", lambda x, a, b, value: x + value * a / b, _addcdiv_decomp, lambda rng: [
    SampleInput((rng.standard_normal((3, 4)), rng.standard_normal((3, 4)),
                 _away_from_zero(rng, (4,))), {"value": 1}),
    SampleInput((rng.standard_normal((4,)), rng.standard_normal((3, 1)),
                 _away_from_zero(rng, (3, 4))), {"value": 2.5})])
