"""joint: a pure forward graph -> one graph computing outputs *and* gradients.

The joint function takes ``(primals..., tangents...)`` and returns
``(outputs..., grads...)``.  It starts as a copy of the forward; then, walking
the forward ops in reverse, each op's VJP rule (the same rule eager autograd
runs) is called on fake tensors bound to the op's values in the joint graph,
so its ops are *recorded* rather than computed.  Gradients that reach one value
from several uses are added.  Only values that depend on an input requiring
grad take part; outputs that do not require grad (or are integer/bool) get
no tangent; an input requiring grad that no output depends on gets a zero
gradient.  ``detach`` has no VJP rule, so nothing flows through it (the trace
records it for ``detach()`` and under ``no_grad``).  The recorded ops are then
decomposed to prims like any traced code, and ``detach`` and ``custom_vjp``,
identities from here on, are stripped (:mod:`minaot.passes.strip_autograd`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..autograd.engine import VJPContext, apply_vjp
from ..dtypes import from_ir
from ..ir import Builder, Function
from ..ops.registry import get_op
from ..storage import Storage
from .strip_autograd import strip_autograd_ops


@dataclass
class JointInfo:
    """How the joint function's arguments and results are laid out."""

    num_primals: int
    num_fwd_outputs: int
    tangent_mask: list          # per forward output: does it get a tangent?
    grad_mask: list             # per primal: does the joint return its gradient?

    @property
    def num_tangents(self):
        return sum(self.tangent_mask)


def _requires_grad(fw: Function, input_mask):
    """Which values of ``fw`` take part in the gradient: {value: bool}.

    An argument does if its entry of ``input_mask`` is true.  An op's results do if
    the op has a VJP rule, one of its operands takes part, and the result is a
    floating-point tensor (``f32``/``f64``): integer and bool values carry no
    gradient, and nothing flows through an op without a rule (``detach``)."""
    # BEGIN TASK 5.1: find the values that carry gradients (requires-grad analysis)
    rg = dict(zip(fw.args, input_mask))
    for op in fw.ops:
        opdef = get_op(op.opname)
        flows = opdef.vjp is not None and any(rg.get(v, False) for v in op.operands)
        for r in op.results:
            rg[r] = flows and r.type.dtype in ("f32", "f64")
    return rg
    # END TASK 5.1


def _backpropagate(fw_ops, rg, grads, fake):
    """Walk the forward ops in reverse and record each op's VJP rule into the joint graph.

    ``grads`` maps forward values to the fake tensors holding their gradients so far
    (the outputs' tangents to start with) and is updated in place; ``fake(v)`` is the
    fake tensor standing for forward value ``v`` in the joint graph; ``rg[v]`` says
    whether ``v`` takes part (:func:`_requires_grad`).

    An op is skipped when none of its results has a gradient, none of its operands
    takes part, or it has no VJP rule.  Otherwise its results' missing gradients are
    zeros (``minaot.ops.zeros`` of the result's shape and dtype), the rule runs
    through ``apply_vjp`` with a ``VJPContext`` of fakes of the op's operands and
    results, its attributes, and ``needs_input_grad`` from ``rg``; each gradient
    returned for an operand that takes part is added to ``grads`` (a value used
    several times gets the sum).  The joint's tracer is active while this runs, so
    the ops of every rule are appended to the joint graph rather than computed."""
    # BEGIN TASK 5.2: backpropagate: record each op's VJP in reverse and sum gradients
    from ..ops import zeros
    for op in reversed(fw_ops):
        gouts = [grads.get(r) for r in op.results]
        if all(g is None for g in gouts) or not any(rg[v] for v in op.operands):
            continue
        opdef = get_op(op.opname)
        if opdef.vjp is None:
            continue
        gouts = [g if g is not None else zeros(r.type.shape, dtype=from_ir(r.type.dtype))
                 for g, r in zip(gouts, op.results)]
        ins = [fake(v) for v in op.operands]
        outs = [fake(r) for r in op.results]
        needs = tuple(bool(rg[v]) for v in op.operands)
        ctx = VJPContext(opdef.name, ins, outs, dict(op.attributes), needs)
        for v, g in zip(op.operands, apply_vjp(opdef, ctx, gouts)):
            if g is None or not rg[v]:
                continue
            grads[v] = g if v not in grads else grads[v] + g
    # END TASK 5.2


def build_joint(fw: Function, input_mask, name=None):
    """Return ``(joint, JointInfo)`` for forward graph ``fw`` and the inputs that require grad."""
    from .. import dispatch as _dispatch
    from ..tracing import FakeTensor, Tracer
    from .dce import DCE
    from .decompose import decompose

    rg = _requires_grad(fw, input_mask)
    tangent_mask = [bool(rg[r]) for r in fw.results]
    joint = Function(name or f"{fw.name}_joint",
                     [a.type for a in fw.args] + [r.type for r, t in zip(fw.results, tangent_mask) if t])
    for i, a in enumerate(joint.args):
        a.name_hint = f"primals_{i + 1}" if i < len(fw.args) else f"tangents_{i - len(fw.args) + 1}"
    mapping = dict(zip(fw.args, joint.args))
    for op in fw.ops:
        clone = op.clone(mapping)
        joint.body.append(clone)
        for a, b in zip(op.results, clone.results):
            mapping[a] = b

    fakes = {}

    def fake(value):
        if value not in fakes:
            arr = np.empty(value.type.shape, dtype=from_ir(value.type.dtype).np)
            fakes[value] = FakeTensor._make(arr, Storage(arr), value)
        return fakes[value]

    grads = {}

    class _AtEnd(Tracer):
        def __init__(self):
            self.builder = Builder.at_end(joint.body)

    previous = _dispatch._tracer
    _dispatch._tracer = _AtEnd()
    try:
        tangents = iter(joint.args[len(fw.args):])
        for r, t in zip(fw.results, tangent_mask):
            if t:       # a value returned twice (CSE merged two outputs) gets both tangents
                g = fake(next(tangents))
                grads[r] = g if r not in grads else grads[r] + g
        _backpropagate(fw.ops, rg, grads, lambda v: fake(mapping[v]))
        grad_values, grad_mask = [], []
        for a, need in zip(fw.args, input_mask):
            g = grads.get(a) if need else None
            # an input no gradient reaches (unused, or used through argmax, detach or a
            # where's condition only) gets none: its .grad stays None, as in PyTorch
            grad_mask.append(g is not None)
            if g is not None:
                grad_values.append(g._value)
    finally:
        _dispatch._tracer = previous
    joint.set_results([mapping[r] for r in fw.results] + grad_values)
    decompose(joint)
    strip_autograd_ops(joint)       # detach / custom_vjp: identities from here on
    DCE().run(joint)
    info = JointInfo(len(fw.args), len(fw.results), tangent_mask, grad_mask)
    joint.joint_info = info
    return joint, info
