"""NaN-propagating max and min for CUDA kernels: one instruction where the GPU has one.

``arith.maximumf`` returns NaN when either operand is NaN (numpy's and PyTorch's
``maximum``, and ``amax``, which softmax's first pass is).  Written in Python,
``a if (a > b or a != a) else b``, that is two comparisons, an ``or`` and a
select per element, each waiting for the one before in a reduction's chain.
GPUs of compute capability 8.0 and later have the operation as one
instruction, PTX's ``max.NaN.f32`` (and ``min.NaN.f32``).  Measured on the
H100 on the row softmax of (16384, 4096) float32, rows in registers: 212 us
with the comparisons written out (the same with the comparisons and the
select written directly in LLVM IR), 184-186 us with ``max.NaN.f32``, as fast
as the plain, NaN-dropping ``max``.

Numba has no name for the instruction, so each function here is a Numba-CUDA
*intrinsic* that emits it as inline PTX, like :mod:`minaot.kernels.minmax`
does for the CPU with LLVM's ``llvm.maximum``.  float64 (PTX has no ``.NaN``
form for it) and GPUs older than 8.0 get the comparisons, as LLVM IR.
Generated kernels import these names (``from minaot.kernels.minmax_cuda
import maximumf, minimumf``).  Under Numba's CUDA simulator kernels run as
Python, and the names are plain Python functions with the same meaning.
"""

from __future__ import annotations

from numba import config


def _py_maximumf(a, b):
    """NaN-propagating max (Python: the simulator runs kernels as Python)."""
    return a if (a != a or a > b) else b


def _py_minimumf(a, b):
    """NaN-propagating min (Python: the simulator runs kernels as Python)."""
    return a if (a != a or a < b) else b


if config.ENABLE_CUDASIM:
    maximumf, minimumf = _py_maximumf, _py_minimumf
else:
    from llvmlite import ir
    from numba import cuda, types
    from numba.core.errors import TypingError
    from numba.cuda.extending import intrinsic

    def _has_nan_form() -> bool:
        """Does the GPU kernels are compiled for have ``max.NaN.f32`` (sm_80 and later)?"""
        return cuda.get_current_device().compute_capability >= (8, 0)

    def _minmax(ptx, ordered, name):
        """An intrinsic ``name(a, b)`` for two floats of one type: inline ``ptx`` for
        float32 where the GPU has it, else ``a if (a <ordered> b or a != a) else b``."""

        def typer(typingctx, a, b):
            if a != b or a not in (types.float32, types.float64):
                raise TypingError(f"{name} takes two float32 or two float64, got ({a}, {b})")

            def codegen(context, builder, signature, args):
                x, y = args
                if a == types.float32 and _has_nan_form():
                    f32 = ir.FloatType()
                    fnty = ir.FunctionType(f32, [f32, f32])
                    return builder.asm(fnty, f"{ptx} $0, $1, $2;", "=f,f,f", [x, y], False)
                keep = builder.or_(builder.fcmp_ordered(ordered, x, y),
                                   builder.fcmp_unordered("uno", x, x))
                return builder.select(keep, x, y)

            return a(a, b), codegen

        typer.__name__ = name
        typer.__qualname__ = name
        return intrinsic(typer)

    maximumf = _minmax("max.NaN.f32", ">", "maximumf")
    minimumf = _minmax("min.NaN.f32", "<", "minimumf")

__all__ = ["maximumf", "minimumf"]
