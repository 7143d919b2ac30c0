"""Tracing: run a Python function on fake tensors and record every op as ``mt`` IR.

``trace(fn, *example_inputs)`` replaces each input tensor by a
:class:`FakeTensor` of the same shape, dtype, device and strides, makes it an
argument of a new ``func.func``, and runs ``fn``.  Every op the function calls
goes through the dispatcher, which hands it to the active :class:`Tracer`: the
registry's meta rule gives the result's shape and dtype (so a shape error is
the same error as in eager mode), and the tracer appends an ``mt.<op>`` with
the user's ``file:line``.  Nothing is computed.  View ops still make real
*views* of the fake tensors' (uninitialised, never read) memory, so strides and
aliasing behave exactly as in eager mode; in-place ops are recorded as written
(``mt.mul_``), and the tensor object afterwards stands for the op's result.

Gradient flow is part of the program, so the trace records where eager
autograd would cut it: ``x.detach()`` is an ``mt.detach`` op (an alias with no
VJP), and an op run under ``no_grad`` reads each of its inputs that requires
grad through an ``mt.detach``, so its results carry no gradient, as in eager.
The joint pass then sends no gradient through them.

A fake tensor has no values, so Python control flow that depends on them
(``if x.sum() > 0``, ``float(x)``, ``x.item()``, ``x.numpy()``) raises a
:class:`TraceError` that names the op and points at the user's line.
"""

from __future__ import annotations

import re

from dataclasses import dataclass

import numpy as np

from . import dispatch as _dispatch
from . import pytree
from ._errors import MinaotError, format_location, user_location
from .autograd.grad_mode import is_grad_enabled
from .dialects import type_of_meta
from .ir import Builder, Function, Location
from .ir.types import TensorType
from .layout import dense_layout, empty_with, follows_operands, result_strides
from .storage import Storage
from .tensor import Tensor


class TraceError(MinaotError):
    """Something a trace cannot record: data-dependent control flow, unsupported Python."""


def _trace_error(what: str, hint: str = "") -> TraceError:
    loc = user_location()
    text = f"{what} while tracing: a traced tensor has a shape and a dtype but no values"
    if hint:
        text += f"; {hint}"
    where = format_location(loc)
    if where:
        text += f"\n  at {where}"
    return TraceError(text)


class _TensorOutput:
    """Marks where a tensor result goes among a traced function's output leaves."""

    def __repr__(self):
        return "<tensor>"


TENSOR_OUTPUT = _TensorOutput()


class FakeTensor(Tensor):
    """A tensor with shape, dtype, device and strides but no values, standing for an IR value."""

    _is_fake = True

    @classmethod
    def _make(cls, arr: np.ndarray, storage: Storage, value, requires_grad=False, leaf=True):
        t = cls._wrap(arr, storage)
        t._value = value
        t._requires_grad = requires_grad
        t._leaf = leaf
        return t

    @property
    def grad_fn(self):
        return None

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad=True):
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def is_leaf(self):
        return self._leaf

    def detach(self):
        return _dispatch.dispatch("detach", self)

    def detach_(self):
        tracer = _dispatch._tracer
        if tracer is not None and id(self._storage) in getattr(tracer, "input_storages", ()):
            raise _trace_error("detach_() on an input of the traced function (or a view of one)",
                               "call detach() on it instead, or detach it before the call")
        self._value = self.detach()._value
        self._requires_grad, self._leaf = False, True
        return self

    # ---- everything that needs values is an error while tracing
    def item(self):
        raise _trace_error("item() on a traced tensor", "keep the value as a tensor")

    def __bool__(self):
        raise _trace_error("data-dependent control flow (bool() of a traced tensor)",
                           "use minaot.where(cond, a, b) instead of `if`")

    def __float__(self):
        raise _trace_error("float() of a traced tensor")

    def __int__(self):
        raise _trace_error("int() of a traced tensor")

    def __index__(self):
        raise _trace_error("using a traced tensor as an index")

    def numpy(self):
        raise _trace_error("numpy() on a traced tensor")

    def tolist(self):
        raise _trace_error("tolist() on a traced tensor")

    def __array__(self, dtype=None, copy=None):
        raise _trace_error("converting a traced tensor to a numpy array")

    def backward(self, *args, **kwargs):
        raise _trace_error("backward() inside a traced function",
                           "compile the forward and let minaot build the backward")

    def __repr__(self):
        return f"FakeTensor(shape={self.shape}, dtype={self.dtype.name}, value={self._value!r})"


def _fake_memory(meta_shape, dtype) -> np.ndarray:
    return np.empty(meta_shape, dtype=dtype.np)     # never read: only its geometry matters


def _result_memory(op, inputs, meta, attrs) -> np.ndarray:
    """Fake memory laid out as eager's result would be (PyTorch's rule,
    :mod:`minaot.layout`): a pointwise result takes its operands' memory order, so
    ``x.t() * 2`` is column-major, and a later ``reshape`` copies in the trace exactly
    when it copies in eager; other results are C-contiguous."""
    shape = tuple(meta.shape)
    if follows_operands(op, attrs):
        strides = result_strides(shape, np.dtype(meta.dtype.np).itemsize,
                                 [t._data for t in inputs if getattr(t, "_is_fake", False)])
        return empty_with(shape, meta.dtype.np, strides)
    return _fake_memory(shape, meta.dtype)


def _loc():
    loc = user_location()
    return Location(loc[0], loc[1]) if loc else None


class Tracer:
    """Records ops into one ``func.func`` while the function runs on fake tensors."""

    def __init__(self, func: Function, input_storages=()):
        self.func = func
        func.no_grad_writes = set()     # in-place ops recorded under no_grad
        self.builder = Builder.at_end(func.body)
        self.input_storages = set(input_storages)   # ids of the inputs' fake storages

    def _values(self, op, inputs):
        vals = []
        for t in inputs:
            if not getattr(t, "_is_fake", False):
                raise _trace_error(
                    f"{op.name} uses a tensor of shape {t.shape} that is not an input of the "
                    "traced function", "pass it as an argument (parameters and buffers are "
                    "inputs too)")
            vals.append(t._value)
        return vals

    def _record(self, name, operands, result_types, attrs):
        return self.builder.create(f"mt.{name}", operands, result_types, dict(attrs), loc=_loc())

    def _cut_under_no_grad(self, op, inputs, operands, first=0):
        """Under ``no_grad`` eager records no history: a differentiable op reads
        each input that requires grad (from ``first`` on) through ``detach``."""
        if is_grad_enabled() or (op.vjp is None and not op.composite):
            return operands
        return [self._record("detach", [v], [v.type], {}).result
                if i >= first and t.requires_grad else v
                for i, (t, v) in enumerate(zip(inputs, operands))]

    def run(self, op, inputs, attrs, meta):
        """Record the out-of-place op ``op`` (a registry record) applied to the fake tensors
        ``inputs``; ``meta`` is what its meta rule computed (a tuple of them for several
        results).  Appends one ``mt.<name>`` op reading the inputs' IR values and returns
        a fresh :class:`FakeTensor` per result, standing for that result's IR value.

        A result requires grad when grad mode is on, the op is differentiable (a VJP or
        composite), an input requires grad and the result is floating point.  A view op's
        result shares its input's fake storage (``op.impl`` on ``input._data`` makes the
        view) and remembers its base and view chain, unless it is ``detach`` (no VJP):
        an alias that autograd does not see as a view.  Other results get fresh memory
        laid out as eager's would be (:func:`_result_memory`)."""
        # BEGIN TASK 2.2: record one op while tracing (IR op + fake tensors for its results)
        operands = self._cut_under_no_grad(op, inputs, self._values(op, inputs))
        metas = meta if op.num_outputs > 1 else (meta,)
        irop = self._record(op.name, operands, [type_of_meta(m) for m in metas], attrs)
        grad = (is_grad_enabled() and (op.vjp is not None or op.composite)
                and any(t.requires_grad for t in inputs))
        outs = []
        for m, value in zip(metas, irop.results):
            rg = grad and m.dtype.is_floating_point
            if op.kind == "view":
                src = inputs[0]
                arr = op.impl(src._data, **attrs)
                out = FakeTensor._make(arr, src._storage, value, rg, leaf=not rg)
                if op.vjp is not None:      # detach: an alias, but no autograd view
                    out._base = src._base if src._base is not None else src
                    out._view_chain = src._view_chain + ((op.name, dict(attrs)),)
            else:
                arr = _result_memory(op, inputs, m, attrs)
                out = FakeTensor._make(arr, Storage(arr), value, rg, leaf=not rg)
            outs.append(out)
        return outs[0] if op.num_outputs == 1 else tuple(outs)
        # END TASK 2.2

    def run_inplace(self, op, inputs, attrs):
        from .ops.registry import get_op

        target = inputs[0]
        pure = get_op(op.pure)
        _dispatch.check_inplace_allowed(op.name, target)
        if pure.kind == "view":
            meta = pure.meta(target, **attrs)
            irop = self._record(op.name, self._values(op, [target]), [type_of_meta(meta)], attrs)
            target._data = pure.impl(target._data, **attrs)
            target._value = irop.result
            target._storage.bump()
            return target
        promoted = _dispatch._promote(pure, inputs)
        meta = pure.meta(*promoted, **attrs)
        _dispatch.check_writable(op.name, target, meta)
        operands = [target] + list(promoted[1:])
        # the target keeps its own history (as in eager); only what is written is cut
        operands = self._cut_under_no_grad(pure, operands, self._values(op, operands), first=1)
        irop = self._record(op.name, operands, [target._value.type], attrs)
        if not is_grad_enabled():       # a write autograd does not see (functionalize)
            self.func.no_grad_writes.add(irop)
        target._value = irop.result
        target._storage.bump()
        if is_grad_enabled() and any(getattr(t, "requires_grad", False) for t in promoted):
            target._requires_grad = True
            target._leaf = False
        return target


@dataclass
class TraceInfo:
    """How the traced function's Python arguments and results map to the IR function."""

    in_spec: object
    out_spec: object
    out_leaves: list        # non-tensor output leaves as they are; tensors as TENSOR_OUTPUT
    arg_of_leaf: list       # per flat input leaf: the function argument it is, or None
    final_values: list      # per function argument: the IR value its tensor stands for at the end
    out_layouts: list = None  # per tensor result: its eager layout (:func:`minaot.layout.dense_layout`)


def _fake_inputs(leaves, func: Function):
    """Fake tensors for the tensor leaves.  The same tensor object passed twice
    becomes one argument (one fake); different tensors that share storage get
    fakes that share fake storage, with the same strides and offsets."""
    storages = {}
    by_id = {}
    fakes = []
    arg_of_leaf = []
    for x in leaves:
        if not isinstance(x, Tensor):
            fakes.append(x)
            arg_of_leaf.append(None)
            continue
        if id(x) in by_id:
            fake = by_id[id(x)]
            fakes.append(fake)
            arg_of_leaf.append(func.args.index(fake._value))
            continue
        key = id(x._storage)
        if key not in storages:
            root = x._storage.root
            storages[key] = (Storage(np.empty(root.shape, dtype=root.dtype)), x._storage)
        fake_storage, real = storages[key]
        flat = fake_storage.root.reshape(-1)
        arr = np.lib.stride_tricks.as_strided(flat[real.offset_of(x._data):], shape=x.shape,
                                              strides=x._data.strides)
        value = func.body.add_arg(TensorType(x.shape, x.dtype.ir))
        fake = FakeTensor._make(arr, fake_storage, value, x.requires_grad, leaf=x.is_leaf)
        by_id[id(x)] = fake
        fakes.append(fake)
        arg_of_leaf.append(len(func.args) - 1)
    return fakes, arg_of_leaf


def trace(fn, *example_inputs, name: str | None = None) -> Function:
    """Trace ``fn`` on fake versions of ``example_inputs`` into an ``mt`` function.

    Inputs and outputs may be nested tuples/lists/dicts; tensors become
    function arguments and results, other values are baked in.  The returned
    :class:`~minaot.ir.Function` carries ``trace_info`` (a :class:`TraceInfo`)."""
    if _dispatch._tracer is not None:
        raise TraceError("trace() called while another function is being traced")
    leaves, in_spec = pytree.flatten(example_inputs)
    name = name or getattr(fn, "__name__", "fn")
    func = Function(re.sub(r"\W", "_", name.replace("<", "").replace(">", "")) or "fn")
    fakes, arg_of_leaf = _fake_inputs(leaves, func)
    tracer = Tracer(func, {id(x._storage) for x in fakes if isinstance(x, Tensor)})
    _dispatch._tracer = tracer
    try:
        out = fn(*pytree.unflatten(fakes, in_spec))
    finally:
        _dispatch._tracer = None
    out_leaves, out_spec = pytree.flatten(out)
    results = []
    kept = []
    layouts = []
    for x in out_leaves:
        if isinstance(x, Tensor):
            if not x._is_fake:
                raise TraceError(f"the traced function returned a tensor of shape {x.shape} that "
                                 "it did not compute from its inputs")
            results.append(x._value)
            layouts.append(dense_layout(x._data))
            kept.append(TENSOR_OUTPUT)
        else:
            kept.append(x)
    func.set_results(results)
    arg_fakes = {}
    for x, a in zip(fakes, arg_of_leaf):
        if a is not None:
            arg_fakes[a] = x
    final = [arg_fakes[a]._value for a in range(len(func.args))]
    func.trace_info = TraceInfo(in_spec, out_spec, kept, arg_of_leaf, final, layouts)
    return func

