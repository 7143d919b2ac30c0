"""Four neighbouring elements in one load, store or copy: ``load4``, ``store4``, ``copy4_async``.

The register-blocked matmul (:mod:`minaot.kernels.matmul_cuda`) reads, at each
step of its inner loop, 8 values of A's shared tile and 8 of B's, and does 64
multiply-adds with them.  Each group of 4 of those values lies at neighbouring
addresses, 16 bytes aligned.  A GPU can read such a group with one instruction
(PTX ``ld.shared.v4.f32``), so a step needs 4 shared-memory loads instead of
16, and shared-memory bandwidth stops capping the loop.  Numba does not emit
that instruction on its own: it reads an array element by element, and LLVM
joins neighbouring loads only where it can prove their alignment, which it
cannot through Numba's index arithmetic.

``load4(arr, i, j, k)`` is a Numba-CUDA *intrinsic* that says it directly: it
computes the address of ``arr[i, j, k]`` (no negative-index wraparound: the
indices are known to be in range) and loads a ``<4 x float>`` vector from it,
declared 16-byte aligned, then returns the four elements as a tuple.  LLVM's
NVPTX backend turns that into one ``ld.shared.v4.f32`` when ``arr`` is a shared
array (it finds the address space from the array's declaration).  The caller
guarantees the alignment: the array is declared with ``alignment=16``, its rows
are a multiple of 16 bytes and ``k`` a multiple of 4; a misaligned vector load
is a fault on the GPU, not a slow path.  Elements of 4 bytes only (float32,
int32): 16 bytes is the widest load a thread has.

``store4(arr, i, j, k, v0, v1, v2, v3)`` is the same for a 16-byte store
(``st.shared.v4.f32`` or ``st.global.v4.f32``): the vectorized matmul puts a
group of 4 values into its shared tile with one, and a thread's patch of C
goes out in them where C allows it.  ``load4_flat(arr, i)`` loads from a 1-d
array (the vectorized matmul's flat operands).

``copy4_async(dst, i, j, k, src, at, valid)`` copies ``src[at : at + 4]`` of a
global array to ``dst[i, j, k : k + 4]`` of a shared one without passing through
registers (PTX ``cp.async.cg.shared.global``, compute capability 8.0 and later;
Numba has no name for it, so the intrinsic emits it as inline assembly), and
``async_wait()`` waits until the thread's copies have landed
(``cp.async.wait_all``).  The vectorized matmul copies the next step's tile with
them while it computes on the current one.

Under Numba's CUDA simulator kernels run as Python, and these are plain
Python functions with the same meaning (any dtype, no alignment needed; the
copies are done at once, so there is nothing to wait for), so the simulator
suites run the same kernel code.
"""

from __future__ import annotations

from numba import config


def _py_load4(arr, i, j, k):
    """``(arr[i, j, k], ..., arr[i, j, k + 3])`` (Python: the simulator runs kernels as Python)."""
    return arr[i, j, k], arr[i, j, k + 1], arr[i, j, k + 2], arr[i, j, k + 3]


def _py_load4_flat(arr, i):
    """``(arr[i], ..., arr[i + 3])`` (Python, for the simulator)."""
    return arr[i], arr[i + 1], arr[i + 2], arr[i + 3]


def _py_store4(arr, i, j, k, v0, v1, v2, v3):
    """``arr[i, j, k : k + 4] = v0, v1, v2, v3`` (Python, for the simulator)."""
    arr[i, j, k], arr[i, j, k + 1], arr[i, j, k + 2], arr[i, j, k + 3] = v0, v1, v2, v3


def _py_copy4_async(dst, i, j, k, src, at, valid):
    """``dst[i, j, k : k + 4] = src[at : at + 4]``, or zeros where not ``valid`` (Python, for
    the simulator: the copy is done at once, so ``async_wait`` has nothing to wait for)."""
    if valid:
        dst[i, j, k], dst[i, j, k + 1] = src[at], src[at + 1]
        dst[i, j, k + 2], dst[i, j, k + 3] = src[at + 2], src[at + 3]
    else:
        for q in range(4):
            dst[i, j, k + q] = 0


def _py_async_wait():
    """Nothing to wait for under the simulator (its copies are done when asked for)."""


if config.ENABLE_CUDASIM:
    load4 = _py_load4
    load4_flat = _py_load4_flat
    store4 = _py_store4
    copy4_async = _py_copy4_async
    async_wait = _py_async_wait
else:
    from llvmlite import ir
    from numba import types
    from numba.core.errors import TypingError
    from numba.cuda.extending import intrinsic
    try:
        from numba.cuda import cgutils      # numba-cuda keeps its own copy
    except ImportError:                     # the CUDA target inside older Numbas
        from numba.core import cgutils

    def _check(name, arr, ndim, indices):
        if not (isinstance(arr, types.Array) and arr.ndim == ndim and arr.layout == "C"
                and arr.dtype in (types.float32, types.int32)):
            raise TypingError(f"{name} takes a {ndim}-d C-contiguous float32 or int32 array, "
                              f"got {arr}")
        for ind in indices:
            if not isinstance(ind, types.Integer):
                raise TypingError(f"{name} takes integer indices, got {ind}")
        return types.UniTuple(arr.dtype, 4)

    def _vector_pointer(context, builder, signature, args, n_indices):
        """A pointer to ``<4 x element>`` at ``arr[indices]`` (the call's first argument and
        the ``n_indices`` after it), no negative-index wraparound."""
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        inds = [context.cast(builder, v, t, types.intp)
                for v, t in zip(args[1:1 + n_indices], signature.args[1:1 + n_indices])]
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, inds, wraparound=False)
        element = context.get_value_type(aryty.dtype)
        return builder.bitcast(ptr, ir.VectorType(element, 4).as_pointer(ptr.type.addrspace))

    def _codegen(result):
        """The code of a 16-byte load of the element at the given indices and its 3 neighbours."""
        def codegen(context, builder, signature, args):
            vec_ptr = _vector_pointer(context, builder, signature, args, len(args) - 1)
            vec = builder.load(vec_ptr, align=16)
            values = [builder.extract_element(vec, ir.Constant(ir.IntType(32), n))
                      for n in range(4)]
            return context.make_tuple(builder, result, values)
        return codegen

    @intrinsic
    def load4(typingctx, arr, i, j, k):
        """``arr[i, j, k : k + 4]`` as a 4-tuple, in one 16-byte load (see the module's text)."""
        result = _check("load4", arr, 3, (i, j, k))
        return result(arr, i, j, k), _codegen(result)

    @intrinsic
    def load4_flat(typingctx, arr, i):
        """``arr[i : i + 4]`` of a 1-d array as a 4-tuple, in one 16-byte load."""
        result = _check("load4_flat", arr, 1, (i,))
        return result(arr, i), _codegen(result)

    @intrinsic
    def store4(typingctx, arr, i, j, k, v0, v1, v2, v3):
        """``arr[i, j, k : k + 4] = v0, v1, v2, v3`` in one 16-byte store (the same alignment
        rules as :func:`load4`)."""
        _check("store4", arr, 3, (i, j, k))
        for v in (v0, v1, v2, v3):
            if v != arr.dtype:
                raise TypingError(f"store4 stores {arr.dtype} values, got {v}")

        def codegen(context, builder, signature, args):
            vec_ptr = _vector_pointer(context, builder, signature, args, 3)
            vec = ir.Constant(vec_ptr.type.pointee, ir.Undefined)
            for n, v in enumerate(args[4:]):
                vec = builder.insert_element(vec, v, ir.Constant(ir.IntType(32), n))
            builder.store(vec, vec_ptr, align=16)
            return context.get_dummy_value()
        return types.void(arr, i, j, k, v0, v1, v2, v3), codegen

    def _address(builder, ptr, addrspace, bits):
        """``ptr`` as an integer address in ``addrspace`` (3: shared, 1: global)."""
        byte = ir.IntType(8)
        ptr = builder.bitcast(ptr, byte.as_pointer(ptr.type.addrspace))
        if ptr.type.addrspace != addrspace:
            ptr = builder.addrspacecast(ptr, byte.as_pointer(addrspace))
        return builder.ptrtoint(ptr, ir.IntType(bits))

    @intrinsic
    def copy4_async(typingctx, dst, i, j, k, src, at, valid):
        """``dst[i, j, k : k + 4] = src[at : at + 4]`` as one asynchronous 16-byte copy from
        global to shared memory (PTX ``cp.async.cg.shared.global``, compute capability 8.0
        or later), or zeros where ``valid`` is false (the copy's source size is then 0:
        nothing is read).  The copy goes around the thread's registers; it has landed
        after :func:`async_wait`, and the block's other threads see it after the
        ``syncthreads()`` that follows.  Both addresses 16-byte aligned."""
        _check("copy4_async", dst, 3, (i, j, k))
        _check("copy4_async", src, 1, (at,))
        if src.dtype != dst.dtype or not isinstance(valid, types.Boolean):
            raise TypingError(f"copy4_async copies between arrays of one dtype where a "
                              f"boolean says so; got {src.dtype} into {dst.dtype}, {valid}")

        def codegen(context, builder, signature, args):
            dst_ptr = _vector_pointer(context, builder, signature, args, 3)
            src_ptr = _vector_pointer(context, builder, types.none(*signature.args[4:6]),
                                      args[4:6], 1)
            i32 = ir.IntType(32)
            size = builder.select(context.cast(builder, args[6], signature.args[6],
                                               types.boolean),
                                  ir.Constant(i32, 16), ir.Constant(i32, 0))
            # ``~{memory}``: the compiler may not move shared loads and stores across it
            copy = ir.InlineAsm(ir.FunctionType(ir.VoidType(), [i32, ir.IntType(64), i32]),
                                "cp.async.cg.shared.global [$0], [$1], 16, $2;",
                                "r,l,r,~{memory}", side_effect=True)
            builder.call(copy, [_address(builder, dst_ptr, 3, 32),
                                _address(builder, src_ptr, 1, 64), size])
            return context.get_dummy_value()
        return types.void(dst, i, j, k, src, at, valid), codegen

    @intrinsic
    def async_wait(typingctx):
        """Wait until this thread's :func:`copy4_async` copies have landed (PTX
        ``cp.async.wait_all``)."""
        def codegen(context, builder, signature, args):
            wait = ir.InlineAsm(ir.FunctionType(ir.VoidType(), []), "cp.async.wait_all;",
                                "~{memory}", side_effect=True)
            builder.call(wait, [])
            return context.get_dummy_value()
        return types.void(), codegen


__all__ = ["load4", "load4_flat", "store4", "copy4_async", "async_wait"]
