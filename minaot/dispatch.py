"""Dispatch: how a call like ``minaot.add(a, 2)`` runs.

1. *Promote*: Python numbers become 0-d constant tensors and inputs are cast
   to the op's computation dtype (PyTorch's promotion rules, see
   :mod:`minaot.dtypes`).  Casts are ordinary ``to`` ops, so tracing sees them.
2. *Check* devices, then run the op's meta rule: a bad shape raises here, with
   the op, the shapes and the user's line, before anything is computed.
3. *Run*: while tracing, the tracer records the op on fake tensors; eagerly,
   the numpy implementation runs, or, for CUDA tensors, the op's compiled
   one-op program (:mod:`minaot.cuda_eager`).  View ops wrap a view of the
   input's storage; in-place ops run their pure twin and write the result back.

Devices: all tensors of an op must be on one device, except that a 0-d CPU
tensor may join CUDA tensors (it is copied over, as PyTorch allows), and
Python numbers become constants on the op's device.
4. *Autograd*: when grad mode is on and an input requires grad, the outputs get
   an :class:`~minaot.autograd.engine.OpNode` holding the op's VJP rule.
"""

from __future__ import annotations

import numpy as np

from . import dtypes as dt
from ._errors import DeviceError, DTypeError, ShapeError, op_error
from .autograd.grad_mode import is_grad_enabled
from .layout import conform, is_dense
from .ops.registry import Meta, OpDef, get_op
from .tensor import Tensor

# Set by minaot.tracing while a function is traced: an object with
# ``run(op, inputs, attrs, meta)`` and ``run_inplace(op, inputs, attrs)``.
_tracer = None


def tracing() -> bool:
    return _tracer is not None


def eager_host_values(t):
    """``t``'s numpy values when they can be read now, for free: eagerly (not while tracing)
    and on the CPU; otherwise None.  The value checks PyTorch makes eagerly (a class index
    out of range, an integer division by zero) use it: traced, compiled and CUDA code have
    no values to look at."""
    if _tracer is not None or not isinstance(t, Tensor) or t.is_cuda or getattr(t, "_is_fake", False):
        return None
    return t.numpy()


def dispatch(name: str, *inputs, **attrs):
    """Run the registered op ``name`` on ``inputs`` with attributes ``attrs``."""
    op = get_op(name)
    if op.kind == "inplace":
        return _inplace(op, inputs, attrs)
    inputs = _promote(op, inputs)
    inputs = _check_devices(op, inputs)
    meta = op.meta(*inputs, **attrs)
    if _tracer is not None:
        return _tracer.run(op, inputs, attrs, meta)
    if op.composite:
        if inputs and inputs[0].is_cuda:
            from .devices import device_scope
            with device_scope("cuda"):      # rand(...)/zeros(...) inside land on the GPU
                return op.decomp(*inputs, **attrs)
        return op.decomp(*inputs, **attrs)
    out = _run_eager(op, inputs, attrs, meta)
    _record_autograd(op, inputs, out, attrs)
    return out


# ---------------------------------------------------------------- promotion
def constant(value, dtype) -> Tensor:
    """A 0-d tensor holding a Python number (a constant op while tracing)."""
    return dispatch("constant", value=_py(value, dtype), shape=(), dtype=dtype.name)


def _py(value, dtype):
    """``value`` as the Python number a constant of ``dtype`` holds: an integer wrapped into
    the dtype's range (``int8_tensor + 200`` adds -56, as PyTorch's does)."""
    if dtype.category == 2:
        return float(value)
    if dtype.category == 1:
        return dt.wrap_int(value, dtype)
    return bool(value)


def _promote(op: OpDef, inputs):
    mode = op.promote
    if mode is None:
        for x in inputs:
            if not isinstance(x, Tensor):
                raise op_error(TypeError, op.name,
                               f"expected tensors, got {type(x).__name__} ({x!r})")
        return inputs
    inputs = tuple(_from_numpy_operand(x) for x in inputs)
    idx = range(1, len(inputs)) if mode == "where" else range(len(inputs))
    args = [inputs[i] for i in idx]
    for x in args:
        if not isinstance(x, (Tensor, int, float, bool, np.number, np.bool_)):
            raise op_error(TypeError, op.name,
                           f"expected a tensor or a number, got {type(x).__name__}")
    if op.name in _NO_BOOL and any(x is True or x is False or (isinstance(x, Tensor) and x.dtype is dt.bool_)
                                   for x in args):
        raise op_error(DTypeError, op.name, _NO_BOOL[op.name] + " (operands: " + ", ".join(
            f"{x.dtype.name}{list(x.shape)}" if isinstance(x, Tensor) else repr(x) for x in args) + ")")
    target = dt.result_type(*args)
    if mode == "float" and not target.is_floating_point:
        target = dt.default_float
    on_gpu = _tracer is None and any(isinstance(x, Tensor) and x.is_cuda for x in inputs)
    out = list(inputs)
    for i in idx:
        x = out[i]
        if mode == "where" and not isinstance(x, Tensor):
            dt.check_fits(x, target, op.name)   # where(c, int8_t, 1000) raises, as in PyTorch
        if not isinstance(x, Tensor) and on_gpu:
            from .cuda_eager import scalar
            out[i] = scalar(_py(x, target), target)
        elif not isinstance(x, Tensor):
            out[i] = constant(x, target)
        elif x.dtype is not target:
            out[i] = dispatch("to", x, dtype=target.name)
    if mode == "where":
        if not isinstance(out[0], Tensor) or out[0].dtype is not dt.bool_:
            raise op_error(DTypeError, op.name, "condition must be a bool tensor")
    return tuple(out)


#: ops that refuse bool operands, as PyTorch's do (numpy's would compute something)
_NO_BOOL = {
    "sub": "subtraction, the `-` operator, with a bool tensor is not supported; use the `^` "
           "operator or logical_xor() for two masks, `~` or logical_not() to invert one",
    "neg": "negation, the `-` operator, on a bool tensor is not supported; use the `~` "
           "operator or logical_not() to invert a mask",
    **{name: "not implemented for bool tensors, as in PyTorch"
       for name in ("abs", "ceil", "trunc", "round")},
}


def _from_numpy_operand(x):
    """A numpy scalar counts as the Python number it holds (``x / np.sqrt(d)`` stays
    float32, as in PyTorch); a numpy array operand becomes a tensor (a copy)."""
    if isinstance(x, (np.number, np.bool_)):
        return x.item()
    if isinstance(x, np.ndarray):
        from .ops.creation import tensor
        return tensor(x)
    return x


def _check_devices(op: OpDef, inputs):
    """The inputs, all on one device: a 0-d CPU tensor among CUDA tensors is moved over
    (PyTorch's rule for CPU scalars); any other mix raises, naming both devices."""
    devices = {str(t.device) for t in inputs}
    if len(devices) <= 1:
        return inputs
    if all(t.is_cuda or t.ndim == 0 for t in inputs):
        from .devices import move
        return tuple(t if t.is_cuda else move(t, "cuda") for t in inputs)
    first = next(i for i, t in enumerate(inputs) if str(t.device) != str(inputs[0].device))
    a, b = inputs[0], inputs[first]
    raise op_error(DeviceError, op.name,
                   f"expected all tensors to be on the same device, but found at least two "
                   f"devices, {a.device} and {b.device}! (input 0 of shape {a.shape} is on "
                   f"{a.device}, input {first} of shape {b.shape} on {b.device}); move them "
                   "with .to(device), .cuda() or .cpu()")


# ---------------------------------------------------------------- eager
def _run_eager(op: OpDef, inputs, attrs, meta):
    if inputs and inputs[0].is_cuda:
        from . import cuda_eager
        if op.kind == "view":
            arr, copied = cuda_eager.view_array(inputs[0]._data, op.name, attrs)
            storage = None
            if copied is not None:
                from .storage import CudaStorage
                storage = CudaStorage(copied)
            return _make_view(inputs[0], arr, op, attrs, storage)
        return cuda_eager.run(op, inputs, attrs, meta)
    arrays = [t._data for t in inputs]
    if op.kind == "view":
        arr = op.impl(arrays[0], **attrs)
        return _make_view(inputs[0], arr, op, attrs)
    res = op.impl(*arrays, **attrs)
    if op.num_outputs == 1:
        return _wrap_result(res, meta, arrays, op, attrs)
    return tuple(_wrap_result(r, m, arrays, op, attrs) for r, m in zip(res, meta))


def _wrap_result(res, meta: Meta, arrays, op: OpDef, attrs) -> Tensor:
    """The op's numpy result as a fresh tensor with PyTorch's dtype and strides
    (:mod:`minaot.layout`)."""
    r = np.asarray(res)
    if r.dtype != meta.dtype.np:
        r = r.astype(meta.dtype.np)
    elif not r.flags.writeable or any(np.may_share_memory(r, a) for a in arrays):
        r = r.copy()
    if r.shape != tuple(meta.shape):
        raise AssertionError(f"op result shape {r.shape} differs from its meta rule {meta.shape}")
    return Tensor._wrap(conform(r, op, attrs, arrays))


def _make_view(src: Tensor, arr, op: OpDef, attrs, storage=None) -> Tensor:
    out = Tensor._wrap(arr, storage or src._storage)
    if op.vjp is not None:      # a view op without a VJP (detach) aliases but is no autograd view
        out._base = src._base if src._base is not None else src
        out._view_chain = src._view_chain + ((op.name, dict(attrs)),)
        out._view_version = src._storage.version
    return out


def _record_autograd(op: OpDef, inputs, out, attrs):
    if op.vjp is None or not is_grad_enabled():
        return
    if not any(t.requires_grad for t in inputs):
        return
    from .autograd.engine import OpNode

    outs = out if isinstance(out, tuple) else (out,)
    node = OpNode(op, inputs, outs, attrs)
    for i, o in enumerate(outs):
        if o.dtype.is_floating_point:
            o._grad_fn = node
            o._output_nr = i


# ---------------------------------------------------------------- in-place
def _inplace(op: OpDef, inputs, attrs):
    """``x.op_(...)``: run the pure twin, then write into ``x`` (or, for
    metadata ops like ``t_``, take the twin's view geometry)."""
    target = inputs[0]
    if _tracer is not None:
        return _tracer.run_inplace(op, inputs, attrs)
    check_inplace_allowed(op.name, target)
    for x in inputs[1:]:
        if isinstance(x, Tensor) and x._storage is target._storage and partial_overlap(target, x):
            raise overlap_error(op.name, target, x)
    if op.name == "copy_" and isinstance(inputs[1], Tensor) and inputs[1].device != target.device:
        from .devices import move              # x.copy_(y) copies across devices
        inputs = (target, move(inputs[1], target.device)) + tuple(inputs[2:])
    pure = get_op(op.pure)
    if pure.kind == "view":                       # t_, transpose_, unsqueeze_, ...
        view = dispatch(pure.name, target, **attrs)
        set_metadata_inplace(target, view)
        return target
    pure_inputs = inputs
    if is_grad_enabled() and any(isinstance(x, Tensor) and x.requires_grad for x in inputs):
        # The twin's VJP may read its first input, which is about to be
        # overwritten: give it a snapshot with the same history instead.
        snapshot = _copy_of(target)
        snapshot._grad_fn, snapshot._output_nr = target.grad_fn, target._output_nr
        snapshot._requires_grad = target._requires_grad
        pure_inputs = tuple(snapshot if x is target else x for x in inputs)
    new = dispatch(pure.name, *pure_inputs, **attrs)
    commit_inplace(op.name, target, new)
    return target


def _copy_of(t: Tensor) -> Tensor:
    """A new tensor with ``t``'s values on ``t``'s device (no autograd)."""
    if t.is_cuda:
        from .cuda_eager import clone_tensor
        return clone_tensor(t)
    return Tensor._wrap(t._data.copy())


def check_inplace_allowed(name: str, target: Tensor):
    if not is_grad_enabled():
        return
    if target.is_leaf and target.requires_grad:
        raise op_error(RuntimeError, name,
                       "a leaf Variable that requires grad is being used in an in-place "
                       f"operation (shape {target.shape}); use it under minaot.no_grad() "
                       "or clone() it first")
    base = target._base
    if base is not None and base.is_leaf and base.requires_grad:
        raise op_error(RuntimeError, name,
                       "a view of a leaf Variable that requires grad is being used in an "
                       f"in-place operation (view shape {target.shape}, base shape {base.shape})")


def overlap_status(a: Tensor, b: Tensor):
    """How ``a`` and ``b`` share memory, PyTorch's ``get_overlap_status``: ``"full"`` (the
    same tensor, or the same byte range with the same strides), ``"partial"`` (some memory
    in common otherwise: the same range with other strides, ``x`` and ``x.t()``, counts),
    or None (none, or "too hard": only tensors whose elements are dense and each stored
    once are compared, by the byte range they cover)."""
    if a is b:
        return "full"
    if a._storage is not b._storage or not a.numel() or not b.numel():
        return None
    if not (is_dense(a.shape, a.stride(), 1) and is_dense(b.shape, b.stride(), 1)):
        return None                     # PyTorch gives up too ("too hard")
    a0, b0 = a.data_ptr(), b.data_ptr()
    a1, b1 = a0 + a.numel() * a.element_size(), b0 + b.numel() * b.element_size()
    if (a0, a1) == (b0, b1):
        return "full" if a.stride() == b.stride() else "partial"
    return "partial" if a0 < b1 and b0 < a1 else None


def partial_overlap(a: Tensor, b: Tensor) -> bool:
    """Do ``a`` and ``b`` share some memory without being the same elements?  PyTorch's
    test before an in-place op (:func:`overlap_status` is ``"partial"``)."""
    return overlap_status(a, b) == "partial"


def overlap_error(name: str, target: Tensor, x: Tensor) -> RuntimeError:
    """PyTorch's refusal to write into ``target`` from ``x`` that shares its memory."""
    return op_error(RuntimeError, name,
                    "unsupported operation: some elements of the input tensor (shape "
                    f"{x.shape}, stride {x.stride()}) and the written-to tensor (shape "
                    f"{target.shape}, stride {target.stride()}) refer to a single memory "
                    "location; clone() the input first")


def has_internal_overlap(t: Tensor) -> bool:
    return any(st == 0 and size > 1 for size, st in zip(t.shape, t.stride()))


def check_writable(name: str, target: Tensor, new_meta):
    if tuple(new_meta.shape) != target.shape:
        raise op_error(ShapeError, name,
                       f"output with shape {target.shape} doesn't match the broadcast "
                       f"shape {tuple(new_meta.shape)}")
    if new_meta.dtype.category > target.dtype.category:
        raise op_error(DTypeError, name,
                       f"result type {new_meta.dtype.name} can't be cast to the desired "
                       f"output type {target.dtype.name}")
    if has_internal_overlap(target):
        raise op_error(RuntimeError, name,
                       "unsupported operation: more than one element of the written-to "
                       f"tensor (shape {target.shape}, stride {target.stride()}) refers to a "
                       "single memory location; clone() the tensor first")


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    """``a`` and ``b`` are the same elements of the same memory (same start, shape, strides)."""
    return a is b or (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
                      and a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype)


def commit_inplace(name: str, target: Tensor, new: Tensor):
    """Write ``new`` into ``target``'s memory and move autograd history over."""
    check_writable(name, target, new)
    if target.is_cuda:
        from .cuda_eager import copy_into
        copy_into(target._data, new._data)
    elif not _same_array(target._data, new._data):     # a copy onto itself moves nothing
        np.copyto(target._data, new._data, casting="unsafe")
    target._storage.bump()
    if is_grad_enabled() and (new.requires_grad or target.requires_grad):
        from .autograd.engine import rebase_history
        rebase_history(target, new)
    else:
        target._view_version = target._storage.version


def set_metadata_inplace(target: Tensor, view: Tensor):
    """``t_()``-style ops: the tensor takes the geometry of ``view``.

    Like every in-place op this bumps the version counter (as PyTorch does),
    so a backward that saved the tensor in its old shape raises instead of
    reading it transposed."""
    target._data = view._data
    if target._base is not None:
        target._view_chain = view._view_chain
    if view._grad_fn is not None:
        target._grad_fn = view._grad_fn
        target._output_nr = view._output_nr
    target._storage.bump()
    target._view_version = target._storage.version
