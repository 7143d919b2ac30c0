"""Dead code elimination.

An op can be deleted when nobody reads its results and deleting it cannot be
observed: its OpSpec says it is *pure* (no side effects). Ops of unknown
dialects and impure ops (random numbers, prints, copies into inputs) are
always kept.

One sweep suffices: walking the ops from last to first visits every user
before the op that defines its operands, so by the time we reach an op all of
its dead users are already gone (and a whole dead chain disappears at once).
"""

from __future__ import annotations

from minaot.ir.core import Function, walk
from minaot.ir.dialect import is_trivially_dead
from minaot.ir.pass_manager import Pass, register_pass


class DCE(Pass):
    """The ``dce`` pass: delete pure ops whose results nobody reads, in one backward sweep."""

    name = "dce"

    def run(self, fn: Function) -> None:
        for op in reversed(list(walk(fn))):
            if op.parent is not None and is_trivially_dead(op):
                op.erase()
                self.count("erased")


register_pass(DCE)
