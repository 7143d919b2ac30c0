"""An element of an array by its flat index when the array is contiguous: ``load_at``, ``store_at``.

A generated pointwise kernel walks its domain with one flat work index per
item and binds each axis's index from it (``i0 = flat // 1024``, ``i1 = flat %
1024``); then it reads ``in0[i0, i1]``.  On a GPU that index arithmetic is most
of the kernel: Numba turns the 2-d read into a check per index for a negative
value (Python's wraparound) and 64-bit multiplies by the array's strides, on
top of the division and remainder (Nsight Compute on the H100, a compiled ``z *
2`` over (4096, 1024): 20 us at 67% of the multiprocessors' instruction
throughput, 28% of the memory's; PyTorch's kernel 11 us).

Yet when the array's shape is the domain's and the array is C-contiguous, the
element ``[i0, i1]`` is simply element ``flat`` of its memory.  Whether it is
contiguous is known only when the kernel is compiled for its arguments (Numba
types a contiguous device array with layout ``"C"``, a transposed view with
``"A"``), so the emitter writes ``load_at(in0, flat, (i0, i1))`` and this
intrinsic decides at typing time: for a C-contiguous array it loads
``data[flat]`` (the compiler then drops the divisions nobody else uses); for
any other layout it loads ``in0[i0, i1]`` through the strides, without the
wraparound checks (the indices are in range by construction).
``store_at(arr, flat, indices, value)`` is the same for a store.  The emitter
passes other elements' C-order offsets the same way (a column walk's
``load_at(in0, r * 1024 + i1, (r, i1))``): ``flat`` is any offset that equals
the indices' in a C-contiguous array of the buffer's shape.

``nonnegative(flat)`` returns ``flat`` and tells the compiler that it is not
negative (an ``llvm.assume``).  Numba computes ``flat % 1024`` and ``flat //
1024`` with Python's rules for negative numbers and checks every index for a
negative value (wraparound); a work item's index never is negative, and knowing
it the compiler turns the remainder into a mask, the division into a shift, and
drops the checks: ``ptxas`` for sm_90 counts 61 -> 45 instructions an element in
the train step's bias + GELU kernel (and 73 -> 58 with rows of 784).

Under Numba's CUDA simulator these are plain Python functions with the same
meaning.
"""

from __future__ import annotations

from numba import config


def _py_load_at(arr, flat, indices):
    """``arr[indices]`` (Python: the simulator runs kernels as Python)."""
    return arr[indices]


def _py_store_at(arr, flat, indices, value):
    """``arr[indices] = value`` (Python, for the simulator)."""
    arr[indices] = value


def _py_nonnegative(flat):
    """``flat`` (Python, for the simulator)."""
    return flat


if config.ENABLE_CUDASIM:
    load_at = _py_load_at
    store_at = _py_store_at
    nonnegative = _py_nonnegative
else:
    from llvmlite import ir
    from numba import types
    from numba.core.errors import TypingError
    from numba.cuda.extending import intrinsic
    try:
        from numba.cuda import cgutils      # numba-cuda keeps its own copy
        from numba.cuda.np.arrayobj import load_item, store_item
    except ImportError:                     # the CUDA target inside older Numbas
        from numba.core import cgutils
        from numba.np.arrayobj import load_item, store_item

    def _check(name, arr, flat, indices):
        if not isinstance(arr, types.Array):
            raise TypingError(f"{name} takes an array, got {arr}")
        if not isinstance(flat, types.Integer):
            raise TypingError(f"{name} takes an integer flat index, got {flat}")
        if not (isinstance(indices, types.BaseTuple) and len(indices) == arr.ndim
                and all(isinstance(t, types.Integer) for t in indices)):
            raise TypingError(f"{name} takes a tuple of {arr.ndim} integer indices, got {indices}")

    def _pointer(context, builder, aryty, ary, flat, flat_ty, indices, indices_ty):
        """The element's address: ``data + flat`` for a C-contiguous array, else through the
        strides (no wraparound)."""
        if aryty.layout == "C":
            return builder.gep(ary.data, [context.cast(builder, flat, flat_ty, types.intp)])
        inds = [context.cast(builder, builder.extract_value(indices, n), t, types.intp)
                for n, t in enumerate(indices_ty)]
        return cgutils.get_item_pointer(context, builder, aryty, ary, inds, wraparound=False)

    @intrinsic
    def load_at(typingctx, arr, flat, indices):
        """``arr[indices]``, read as element ``flat`` of ``arr``'s memory when ``arr`` is
        C-contiguous (see the module's text)."""
        _check("load_at", arr, flat, indices)

        def codegen(context, builder, signature, args):
            aryty, flat_ty, indices_ty = signature.args
            ary = context.make_array(aryty)(context, builder, args[0])
            ptr = _pointer(context, builder, aryty, ary, args[1], flat_ty, args[2], indices_ty)
            return load_item(context, builder, aryty, ptr)
        return arr.dtype(arr, flat, indices), codegen

    @intrinsic
    def store_at(typingctx, arr, flat, indices, value):
        """``arr[indices] = value``, written as element ``flat`` of ``arr``'s memory when
        ``arr`` is C-contiguous (see the module's text)."""
        _check("store_at", arr, flat, indices)

        def codegen(context, builder, signature, args):
            aryty, flat_ty, indices_ty, value_ty = signature.args
            ary = context.make_array(aryty)(context, builder, args[0])
            ptr = _pointer(context, builder, aryty, ary, args[1], flat_ty, args[2], indices_ty)
            store_item(context, builder, aryty,
                       context.cast(builder, args[3], value_ty, aryty.dtype), ptr)
            return context.get_dummy_value()
        return types.void(arr, flat, indices, value), codegen

    @intrinsic
    def nonnegative(typingctx, flat):
        """``flat``, an integer the compiler may take to be 0 or more (see the module's text)."""
        if not isinstance(flat, types.Integer):
            raise TypingError(f"nonnegative takes an integer, got {flat}")

        def codegen(context, builder, signature, args):
            (value,) = args
            assume = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [ir.IntType(1)]), "llvm.assume")
            builder.call(assume, [builder.icmp_signed(">=", value, ir.Constant(value.type, 0))])
            return value
        return flat(flat), codegen


__all__ = ["load_at", "nonnegative", "store_at"]
