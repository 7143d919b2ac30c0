"""Bit casts for Numba kernels: reinterpret a float's bits as an integer and back.

``arith.bitcast`` (MLIR's name) reads the 32 bits of an ``f32`` as an
``i32`` without changing them, or the other way; ``approximate-math`` uses it
to build powers of two (``2**k`` is the float whose bits are
``(k + 127) << 23``) and to read a float's exponent.  Numba has no scalar
bit cast (``np.float32(x).view(np.int32)`` works on arrays only), so each
function here is a Numba *intrinsic*: at compile time it emits one LLVM
``bitcast`` instruction, which costs nothing, inlines into the calling kernel
and vectorizes with it (a ``<16 x float>`` to ``<16 x i32>`` cast is free).

Generated kernels import these names (``from minaot.kernels.bits import
...``) and keep ``cache=True``: the instruction is compiled into the
kernel's own machine code, so a cached kernel loads without this module's
help.  Each function accepts exactly its source type (``bitcast_f32_to_i32``
takes a float32): a float64 passed by mistake is a typing error that names
the function, never a silent conversion.
"""

from __future__ import annotations

from numba.core import config, types
from numba.core.errors import TypingError
from numba.extending import intrinsic


def _bitcast(src, dst, name):
    """An intrinsic ``name(x: src) -> dst`` that reinterprets the bits of x."""

    def typer(typingctx, x):
        if x != src:
            raise TypingError(f"{name} takes a {src}, got {x}")

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(dst))

        return dst(src), codegen

    typer.__name__ = name
    typer.__qualname__ = name
    return intrinsic(typer)


bitcast_f32_to_i32 = _bitcast(types.float32, types.int32, "bitcast_f32_to_i32")
bitcast_i32_to_f32 = _bitcast(types.int32, types.float32, "bitcast_i32_to_f32")
bitcast_f64_to_i64 = _bitcast(types.float64, types.int64, "bitcast_f64_to_i64")
bitcast_i64_to_f64 = _bitcast(types.int64, types.float64, "bitcast_i64_to_f64")

if config.DISABLE_JIT:
    # NUMBA_DISABLE_JIT=1 runs kernels as plain Python (for a debugger), and an intrinsic
    # cannot run there: numpy's array view does the same reinterpretation.
    import numpy as _np

    def _py_bitcast(src, dst, name):
        def cast(x):
            return _np.array(x, dtype=src).view(dst)[()]
        cast.__name__ = cast.__qualname__ = name
        cast.__doc__ = f"{name} in pure Python (Numba's JIT is disabled)."
        return cast

    bitcast_f32_to_i32 = _py_bitcast(_np.float32, _np.int32, "bitcast_f32_to_i32")
    bitcast_i32_to_f32 = _py_bitcast(_np.int32, _np.float32, "bitcast_i32_to_f32")
    bitcast_f64_to_i64 = _py_bitcast(_np.float64, _np.int64, "bitcast_f64_to_i64")
    bitcast_i64_to_f64 = _py_bitcast(_np.int64, _np.float64, "bitcast_i64_to_f64")

__all__ = ["bitcast_f32_to_i32", "bitcast_i32_to_f32", "bitcast_f64_to_i64", "bitcast_i64_to_f64"]
