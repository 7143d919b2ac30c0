"""Builder: create ops at an insertion point.

Passes and the tracer build IR the same way: put a Builder somewhere (at the
end of a block, or before/after an op), then call `create(...)` repeatedly;
each new op goes right after the previous one. The builder also carries a
current location (`builder.loc = Location("train.py", 12)`) that new ops get
when no `loc` is given, which is how every op ends up knowing the user's
source line.

    b = Builder.at_end(fn.body)
    y = b.create("prim.add", [x, x], [x.type]).result
"""

from __future__ import annotations

from .core import Block, Location, Operation


class Builder:
    """Creates ops at an insertion point: the end of a block, or just before an op.

    Make one with :meth:`at_end`, :meth:`before` or :meth:`after`; each
    :meth:`create` inserts its op after the previous one.  ``loc`` is the location
    new ops get when ``create`` is not given one."""

    def __init__(self, block: Block | None = None, before: Operation | None = None,
                 loc: Location | None = None):
        self.block = block      # where new ops go ...
        self.anchor = before    # ... just before this op, or at the end when None
        self.loc = loc          # default location of new ops

    @classmethod
    def at_end(cls, block: Block, loc: Location | None = None) -> Builder:
        return cls(block, None, loc)

    @classmethod
    def before(cls, op: Operation, loc: Location | None = None) -> Builder:
        return cls(op.parent, op, loc)

    @classmethod
    def after(cls, op: Operation, loc: Location | None = None) -> Builder:
        block = op.parent
        i = block.index(op)
        nxt = block.ops[i + 1] if i + 1 < len(block.ops) else None
        return cls(block, nxt, loc)

    def insert(self, op: Operation) -> Operation:
        """Insert an existing (detached) op at the insertion point."""
        if self.block is None:
            raise ValueError("builder has no insertion point")
        if self.anchor is None:
            self.block.append(op)
        else:
            self.block.insert_before(op, self.anchor)
        return op

    def create(self, name: str, operands=(), result_types=(), attributes=None,
               regions=(), loc: Location | None = None) -> Operation:
        op = Operation(name, operands, result_types, attributes, regions,
                       loc if loc is not None else self.loc)
        return self.insert(op)
