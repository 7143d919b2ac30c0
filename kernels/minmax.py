"""NaN-propagating max and min for Numba kernels, as LLVM's ``llvm.maximum``/``llvm.minimum``.

``arith.maximumf`` (MLIR's name, numpy's ``np.maximum``) returns NaN when
either operand is NaN.  Written in Python, that is two comparisons and a
branch, ``a if (a > b or a != a) else b``, and LLVM cannot vectorize a loop
that reduces with it: a row ``amax`` (softmax's first pass) ran one element
at a time.  LLVM has an intrinsic with exactly numpy's meaning,
``llvm.maximum``, that its loop vectorizer knows as a reduction (since LLVM
17): the row max becomes vector ``max`` instructions plus a NaN check, about
as fast as a row sum.  Numba has no name for it, so each function here is a
Numba *intrinsic* that emits the call, like the bit casts in
:mod:`minaot.kernels.bits`.

The call carries the ``nsz`` fast-math flag (the kernels' flags include it):
which of ``-0.0`` and ``+0.0`` is the larger does not matter, and without the
flag x86 needs extra instructions to order them.  Generated kernels import
these names (``from minaot.kernels.minmax import maximumf, minimumf``) and
keep ``cache=True``: the instruction is compiled into the kernel's own
machine code.  Both operands must have one float type (float32 or float64);
anything else is a typing error that names the function.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import config, types
from numba.core.errors import TypingError
from numba.extending import intrinsic


def _minmax(llvm_name, name):
    """An intrinsic ``name(a, b)`` for two floats of one type that calls ``llvm_name``."""

    def typer(typingctx, a, b):
        if a != b or a not in (types.float32, types.float64):
            raise TypingError(f"{name} takes two float32 or two float64, got ({a}, {b})")

        def codegen(context, builder, signature, args):
            ty = args[0].type
            fn = builder.module.declare_intrinsic(llvm_name, [ty], ir.FunctionType(ty, [ty, ty]))
            return builder.call(fn, list(args), fastmath=("nsz",))

        return a(a, b), codegen

    typer.__name__ = name
    typer.__qualname__ = name
    return intrinsic(typer)


maximumf = _minmax("llvm.maximum", "maximumf")
minimumf = _minmax("llvm.minimum", "minimumf")

if config.DISABLE_JIT:
    # NUMBA_DISABLE_JIT=1 runs kernels as plain Python (for a debugger), and an intrinsic
    # cannot run there: the same meaning, written out.
    def maximumf(a, b):     # noqa: F811
        """NaN-propagating max (pure Python: Numba's JIT is disabled)."""
        return a if (a != a or a > b) else b

    def minimumf(a, b):     # noqa: F811
        """NaN-propagating min (pure Python: Numba's JIT is disabled)."""
        return a if (a != a or a < b) else b

__all__ = ["maximumf", "minimumf"]
