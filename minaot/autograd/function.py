"""``minaot.autograd.Function``: user-defined forward and backward.

``MyFn.apply(*args)`` runs ``MyFn.forward(ctx, *args)`` with grad mode off and,
when an input requires grad, gives the tensor outputs a :class:`FunctionNode`
that calls ``MyFn.backward(ctx, *grads)``.  ``ctx.save_for_backward`` keeps
tensors with the same in-place version check as built-in ops.
"""

from __future__ import annotations

from .engine import Node, SavedTensors, edge
from .grad_mode import is_grad_enabled, no_grad


class FunctionCtx:
    """The ``ctx`` a custom :class:`Function`'s ``forward`` and ``backward`` receive.

    ``ctx.save_for_backward(*tensors)`` keeps tensors for the backward (read them
    back as ``ctx.saved_tensors``, version-checked like eager autograd's saved
    tensors); ``ctx.needs_input_grad`` says which inputs need a gradient; other
    attributes set on ``ctx`` are kept as they are."""

    def __init__(self):
        self._saved = None
        self.needs_input_grad = ()
        self._non_differentiable = set()
        self._owner = "Function"

    def save_for_backward(self, *tensors):
        self._saved = SavedTensors(self._owner, "saved tensor", [t for t in tensors])

    @property
    def saved_tensors(self):
        if self._saved is None:
            return ()
        return tuple(self._saved)

    def mark_non_differentiable(self, *tensors):
        self._non_differentiable.update(id(t) for t in tensors)


class FunctionNode(Node):
    def __init__(self, cls, ctx, args, num_outputs):
        super().__init__()
        self.cls = cls
        self.ctx = ctx
        self.num_outputs = num_outputs
        from ..tensor import Tensor
        self.next_functions = tuple(edge(a) if isinstance(a, Tensor) else None for a in args)
        self.metas = [(a.shape, a.dtype) if isinstance(a, Tensor) else None for a in args]

    def name(self):
        return self.cls.__name__ + "Backward"

    def apply(self, grads):
        from ..ops import zeros
        if self.released:
            raise RuntimeError(f"{self.name()}: trying to backward through the graph a second time; "
                               "pass retain_graph=True the first time")
        device = next((g.device for g in grads if g is not None), "cpu")
        grads = [g if g is not None else zeros(shape, dtype=dtype, device=device)
                 for g, (shape, dtype) in zip(grads, self.out_metas)]
        out = self.cls.backward(self.ctx, *grads)
        if not isinstance(out, tuple):
            out = (out,)
        _check_count(self.cls, out, len(self.next_functions))
        out = out[:len(self.next_functions)]
        result = []
        for g, meta, e in zip(out, self.metas, self.next_functions):
            if g is None or e is None:
                result.append(None)
                continue
            if tuple(g.shape) != tuple(meta[0]):
                raise RuntimeError(f"{self.cls.__name__}.backward returned a gradient of shape "
                                   f"{tuple(g.shape)} for an input of shape {tuple(meta[0])}")
            result.append(g)
        return result

    def release(self):
        super().release()
        if self.ctx._saved is not None:
            self.ctx._saved.freed = True


class Function:
    """Subclass with static ``forward(ctx, *args)`` and ``backward(ctx, *grads)``."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass must define forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a Function subclass must define backward(ctx, ...)")

    @classmethod
    def apply(cls, *args):
        from ..dispatch import _tracer
        from ..tensor import Tensor

        if _tracer is not None:
            return trace_function(_tracer, cls, args)
        ctx = FunctionCtx()
        ctx._owner = cls.__name__ + "Backward"
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with no_grad():
            out = cls.forward(ctx, *args)
        single = not isinstance(out, tuple)
        outs = (out,) if single else out
        inputs_by_id = {id(a) for a in args if isinstance(a, Tensor)}
        outs = tuple(o.detach() if isinstance(o, Tensor) and id(o) in inputs_by_id else o for o in outs)
        if is_grad_enabled() and any(ctx.needs_input_grad):
            node = FunctionNode(cls, ctx, args, len(outs))
            node.out_metas = [(o.shape, o.dtype) if isinstance(o, Tensor) else ((), None) for o in outs]
            for i, o in enumerate(outs):
                if isinstance(o, Tensor) and o.dtype.is_floating_point \
                        and id(o) not in ctx._non_differentiable:
                    o._grad_fn = node
                    o._output_nr = i
        return outs[0] if single else outs


def _check_count(cls, grads, n_inputs):
    """``backward`` returns one gradient per ``forward`` argument (``None`` for those that
    need none); more is allowed only when the extra ones are ``None`` (PyTorch's rule)."""
    if len(grads) < n_inputs or any(g is not None for g in grads[n_inputs:]):
        raise RuntimeError(f"function {cls.__name__}Backward returned an incorrect number of "
                           f"gradients (expected {n_inputs}, got {len(grads)})")


# ---------------------------------------------------------------- inside traced programs
#
# While tracing, ``Function.apply`` records the user's forward inline and then,
# for each tensor output, one ``custom_vjp`` op whose operands are (the tensor
# inputs, that output, the saved tensors).  The op is the identity on the
# output, so the forward computes what the user's forward computed; its VJP
# rule calls the user's ``backward`` (recorded like any VJP), and gives no
# gradient to the inlined forward ops.  After the joint graph exists the ops
# are dropped (the ``strip-autograd`` pass, minaot/passes/strip_autograd.py).

_TRACED = {}     # key -> (Function class, ctx, output metas, tensor-arg positions)


def trace_function(tracer, cls, args):
    from ..dispatch import dispatch
    from ..tensor import Tensor

    ctx = FunctionCtx()
    ctx._owner = cls.__name__ + "Backward"
    ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
    with no_grad():
        out = cls.forward(ctx, *args)
    single = not isinstance(out, tuple)
    outs = (out,) if single else out
    tensor_args = [a for a in args if isinstance(a, Tensor)]
    positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    saved = [t for t, _ in ctx._saved.items] if ctx._saved is not None else []
    tensor_outs = [o for o in outs if isinstance(o, Tensor)]
    key = len(_TRACED)
    _TRACED[key] = (cls, ctx, [(o.shape, o.dtype) for o in tensor_outs], positions, len(args))
    requires = any(ctx.needs_input_grad) and is_grad_enabled()
    new_outs, k = [], 0
    for o in outs:
        if not isinstance(o, Tensor):
            new_outs.append(o)
            continue
        r = dispatch("custom_vjp", *tensor_args, o, *saved, fn=cls.__qualname__, key=key,
                     n_in=len(tensor_args), out_index=k, n_out=len(tensor_outs))
        r._requires_grad = requires and r.dtype.is_floating_point
        r._leaf = not r._requires_grad
        new_outs.append(r)
        k += 1
    return new_outs[0] if single else tuple(new_outs)


def _custom_meta(*xs, fn, key, n_in, out_index, n_out):
    from ..ops.registry import Meta
    o = xs[n_in]
    return Meta(tuple(o.shape), o.dtype, str(o.device))


def _custom_vjp(vctx, g):
    import copy

    from ..ops import zeros
    a = vctx.attrs
    cls, fctx, out_metas, positions, n_args = _TRACED[a["key"]]
    n_in = a["n_in"]
    operands = list(vctx.inputs)
    ctx = copy.copy(fctx)
    ctx._saved = SavedTensors(ctx._owner, "saved tensor", operands[n_in + 1:])
    grads = [g if j == a["out_index"] else zeros(shape, dtype=dtype, device=g.device)
             for j, (shape, dtype) in enumerate(out_metas)]
    res = cls.backward(ctx, *grads)
    res = res if isinstance(res, tuple) else (res,)
    _check_count(cls, res, n_args)
    tensor_grads = [res[p] if p < len(res) else None for p in positions]
    return tuple(tensor_grads) + (None,) * (len(operands) - n_in)


def _register_custom_vjp_op():
    from ..ops.registry import OpDef, register
    register(OpDef("custom_vjp", "other", _custom_meta,
                   lambda *xs, fn, key, n_in, out_index, n_out: xs[n_in], vjp=_custom_vjp,
                   doc="identity on operand n_in; its VJP calls a user Function's backward"))
