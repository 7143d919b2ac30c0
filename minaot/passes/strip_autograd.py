"""strip-autograd: remove the ops that only steer differentiation.

Two ops exist in a traced program only to tell the joint pass how gradients
flow; their value is their operand:

* ``detach`` (``x.detach()``, and the inputs of ops run under ``no_grad``): no
  VJP rule, so no gradient passes through it;
* ``custom_vjp`` (a user ``autograd.Function``): its VJP calls the user's
  backward instead of differentiating the inlined forward;
* ``straight_through(new, old)`` (an in-place write autograd does not see):
  the value of ``new``, whose gradient goes to ``old``.

Once the joint graph is built (or when no joint graph is needed, on the
inference path) they have done their job, and the pass replaces each by the
value it wraps, so partitioners, fusion and the backends never see them.
"""

from __future__ import annotations

from minaot.ir.core import Function
from minaot.ir.pass_manager import Pass, register_pass

# op name -> which operand its result is
_WRAPPED = {
    "detach": lambda op: op.operands[0],
    "custom_vjp": lambda op: op.operands[op.attributes["n_in"]],
    "straight_through": lambda op: op.operands[0],
}


def strip_autograd_ops(fn: Function) -> int:
    """Replace every ``detach``, ``custom_vjp`` and ``straight_through`` op by the operand
    it wraps; returns how many."""
    n = 0
    for op in list(fn.ops):
        wrapped = _WRAPPED.get(op.opname)
        if wrapped is not None:
            op.result.replace_all_uses_with(wrapped(op))
            op.erase()
            n += 1
    return n


class StripAutograd(Pass):
    name = "strip-autograd"

    def run(self, fn: Function) -> None:
        self.count("stripped", strip_autograd_ops(fn))


register_pass(StripAutograd)
