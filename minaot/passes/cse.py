"""Common subexpression elimination.

Two ops compute the same thing when they have the same name, the same
operands (the very same SSA values), the same attributes and the same result
types, and are pure: then the second can be deleted and its uses pointed at
the first. We walk each block in order, keeping a table from that "key" to
the first op seen with it. Ops inside a region may reuse an equal op from an
enclosing block (it is defined before them), but not the other way round, so
each nested block starts from a copy of the enclosing table.

Impure ops (two random draws are not the same value) and ops with regions
are never merged. Attribute values are compared with their Python types and
floats by repr, so `1` and `1.0` and `True` differ, and so do `0.0` and
`-0.0` (which give different results in `1/x`).
"""

from __future__ import annotations

from minaot.ir.core import Block, Function
from minaot.ir.dialect import is_pure
from minaot.ir.pass_manager import Pass, register_pass


def _attr_key(value):
    if isinstance(value, tuple):
        return tuple(_attr_key(v) for v in value)
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)


def op_key(op):
    attrs = tuple(sorted((k, _attr_key(v)) for k, v in op.attributes.items()))
    return (op.name, op.operands, attrs, tuple(r.type for r in op.results))


class CSE(Pass):
    """The ``cse`` pass: merge pure ops with equal names, operands, attributes and result types."""

    name = "cse"

    def run(self, fn: Function) -> None:
        self._block(fn.body, {})

    def _block(self, block: Block, known: dict) -> None:
        known = dict(known)
        for op in list(block.ops):
            for region in op.regions:
                for inner in region.blocks:
                    self._block(inner, known)
            if op.regions or not op.results or not is_pure(op):
                continue
            key = op_key(op)
            first = known.get(key)
            if first is None:
                known[key] = op
                continue
            for old, new in zip(op.results, first.results):
                old.replace_all_uses_with(new)
            op.erase()
            self.count("merged")


register_pass(CSE)
