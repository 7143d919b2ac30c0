"""The IR data structures: Value, Operation, Block, Region, Function.

This is MLIR in miniature. A program is a graph of *operations*; each op reads
SSA *values* (its operands) and defines new values (its results). Ops live in
*blocks* (an ordered list of ops plus block arguments), blocks live in
*regions*, and an op may own regions (a loop body, a kernel payload), so the
IR nests. A function is a `func.func` op whose single region holds one block:
the block arguments are the function's parameters and the last op is
`func.return`.

Every value keeps its list of uses, `(op, operand_index)`, so "who reads this
value?" is one attribute away. All edits go through methods that keep the use
lists right (`set_operand`, `replace_all_uses_with`, `erase`); passes should
never assign to the private fields directly.

Attributes are plain Python values (int, float, bool, str, None, and tuples
of those); a list given at creation becomes a tuple, so attributes are
hashable and compare by value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .types import Type


@dataclass(frozen=True)
class Location:
    """Where an op came from in the user's code; printed `loc("file.py":12)`."""

    file: str
    line: int

    def __str__(self):
        from .printer import format_string

        return f"loc({format_string(self.file)}:{self.line})"


def normalize_attr(value):
    """Check an attribute value and turn lists into tuples (numpy scalars into Python)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return tuple(normalize_attr(v) for v in value)
    raise TypeError(
        "attribute values must be int, float, bool, str, None or tuples of those, "
        f"got {type(value).__name__}: {value!r}"
    )


class Value:
    """An SSA value: defined once (by an op result or a block argument), used many times."""

    def __init__(self, type: Type, owner, index: int, name_hint: str | None = None):
        if not isinstance(type, Type):
            raise TypeError(f"a Value needs an IR type, got {type!r}")
        self.type = type
        self.owner = owner  # the defining Operation, or the Block for a block argument
        self.index = index  # result number, or argument number
        self.uses: list[tuple[Operation, int]] = []
        self.name_hint = name_hint  # e.g. "x": used by code generators for readable names

    @property
    def defining_op(self) -> Operation | None:
        """The op that defines this value (None for a block argument)."""
        return self.owner if isinstance(self.owner, Operation) else None

    @property
    def is_block_arg(self) -> bool:
        return isinstance(self.owner, Block)

    @property
    def users(self) -> list[Operation]:
        """The ops that read this value, each once, in the order of the use list."""
        seen = []
        for op, _ in self.uses:
            if not any(op is s for s in seen):
                seen.append(op)
        return seen

    def replace_all_uses_with(self, new: Value) -> None:
        if new is self:
            return
        for op, i in list(self.uses):
            op.set_operand(i, new)

    def __repr__(self):
        from .printer import value_name

        return f"<Value {value_name(self)} : {self.type}>"


class Operation:
    """One op: `%r = name %a, %b {attrs} (regions) : (types) -> types`."""

    def __init__(self, name: str, operands=(), result_types=(), attributes=None,
                 regions=(), loc: Location | None = None):
        if "." not in name:
            raise ValueError(f"op name {name!r} must be 'dialect.op'")
        self.name = name
        self.attributes = {str(k): normalize_attr(v) for k, v in (attributes or {}).items()}
        self.loc = loc
        self.parent: Block | None = None
        self._operands: list[Value] = []
        for v in operands:
            self._add_operand(v)
        for t in result_types:
            if not isinstance(t, Type):
                raise TypeError(f"{name}: result type must be an IR type, got {t!r}")
        self._results = tuple(Value(t, self, i) for i, t in enumerate(result_types))
        self.regions: list[Region] = []
        for r in regions:
            if r.parent is not None:
                raise ValueError("region already belongs to an op")
            r.parent = self
            self.regions.append(r)

    # --- names -------------------------------------------------------------
    @property
    def dialect(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def opname(self) -> str:
        return self.name.split(".", 1)[1]

    # --- operands and results -----------------------------------------------
    def _add_operand(self, v: Value) -> None:
        if not isinstance(v, Value):
            raise TypeError(f"{self.name}: operand must be a Value, got {v!r}")
        v.uses.append((self, len(self._operands)))
        self._operands.append(v)

    @property
    def operands(self) -> tuple[Value, ...]:
        return tuple(self._operands)

    @operands.setter
    def operands(self, values) -> None:
        self._drop_operand_uses()
        self._operands = []
        for v in values:
            self._add_operand(v)

    def set_operand(self, i: int, v: Value) -> None:
        if not isinstance(v, Value):
            raise TypeError(f"{self.name}: operand must be a Value, got {v!r}")
        self._operands[i].uses.remove((self, i))
        self._operands[i] = v
        v.uses.append((self, i))

    def _drop_operand_uses(self) -> None:
        for i, v in enumerate(self._operands):
            v.uses.remove((self, i))

    @property
    def results(self) -> tuple[Value, ...]:
        return self._results

    @property
    def result(self) -> Value:
        if len(self._results) != 1:
            raise ValueError(f"{self.name} has {len(self._results)} results, not one")
        return self._results[0]

    # --- position in the IR -------------------------------------------------
    @property
    def parent_op(self) -> Operation | None:
        """The op whose region contains this op (e.g. the func.func)."""
        if self.parent is None or self.parent.parent is None:
            return None
        return self.parent.parent.parent

    def _detach(self) -> None:
        if self.parent is not None:
            self.parent.ops.remove(self)
            self.parent = None

    def move_before(self, other: Operation) -> None:
        self._detach()
        other.parent.insert_before(self, other)

    def move_after(self, other: Operation) -> None:
        self._detach()
        other.parent.insert_after(self, other)

    def erase(self, force: bool = False) -> None:
        """Remove this op from its block and drop its operand uses.

        Raises if a result is still used, unless `force` (the users then hold
        dangling values, which the verifier reports)."""
        if not force:
            for r in self._results:
                if r.uses:
                    users = ", ".join(u.name for u in r.users)
                    raise ValueError(f"cannot erase {self.name}: result #{r.index} is still used by {users}")
        for region in self.regions:
            for block in region.blocks:
                for op in list(block.ops):
                    op.erase(force=True)
        self._drop_operand_uses()
        self._detach()

    # --- copying -------------------------------------------------------------
    def clone(self, value_map: dict | None = None) -> Operation:
        """A copy of this op (not inserted anywhere), regions included.

        Operands found in `value_map` are replaced; the new results (and block
        args of cloned regions) are added to `value_map`, old -> new."""
        vm = {} if value_map is None else value_map
        regions = [r.clone(vm) for r in self.regions]
        new = Operation(self.name, [vm.get(v, v) for v in self._operands],
                        [r.type for r in self._results], dict(self.attributes), regions, self.loc)
        for old, res in zip(self._results, new._results):
            res.name_hint = old.name_hint
            vm[old] = res
        return new

    def __str__(self):
        from .printer import print_op

        return print_op(self)

    def __repr__(self):
        return f"<Operation {self.name}>"


class Block:
    """An ordered list of ops, with block arguments (the values a region receives)."""

    def __init__(self, arg_types=()):
        self.args: list[Value] = []
        self.ops: list[Operation] = []
        self.parent: Region | None = None
        for t in arg_types:
            self.add_arg(t)

    def add_arg(self, type: Type, name_hint: str | None = None) -> Value:
        v = Value(type, self, len(self.args), name_hint)
        self.args.append(v)
        return v

    @property
    def parent_op(self) -> Operation | None:
        return None if self.parent is None else self.parent.parent

    def _adopt(self, op: Operation) -> None:
        if op.parent is not None:
            raise ValueError(f"{op.name} is already in a block; use move_before/move_after")
        op.parent = self

    def append(self, op: Operation) -> Operation:
        self._adopt(op)
        self.ops.append(op)
        return op

    def insert_before(self, op: Operation, anchor: Operation) -> Operation:
        """Insert `op` just before `anchor` (which must be in this block)."""
        i = self.index(anchor)
        self._adopt(op)
        self.ops.insert(i, op)
        return op

    def insert_after(self, op: Operation, anchor: Operation) -> Operation:
        """Insert `op` just after `anchor` (which must be in this block)."""
        i = self.index(anchor)
        self._adopt(op)
        self.ops.insert(i + 1, op)
        return op

    def index(self, op: Operation) -> int:
        for i, o in enumerate(self.ops):
            if o is op:
                return i
        raise ValueError(f"{op.name} is not in this block")

    def clone(self, value_map: dict) -> Block:
        new = Block()
        for a in self.args:
            value_map[a] = new.add_arg(a.type, a.name_hint)
        for op in self.ops:
            new.append(op.clone(value_map))
        return new

    def __repr__(self):
        return f"<Block with {len(self.args)} args, {len(self.ops)} ops>"


class Region:
    """A list of blocks owned by an op (minaot uses one block per region)."""

    def __init__(self, blocks=()):
        self.parent: Operation | None = None
        self.blocks: list[Block] = []
        for b in blocks:
            self.add_block(b)

    def add_block(self, block: Block) -> Block:
        if block.parent is not None:
            raise ValueError("block already belongs to a region")
        block.parent = self
        self.blocks.append(block)
        return block

    @property
    def block(self) -> Block:
        """The single block of this region."""
        if len(self.blocks) != 1:
            raise ValueError(f"region has {len(self.blocks)} blocks, not one")
        return self.blocks[0]

    def clone(self, value_map: dict) -> Region:
        return Region([b.clone(value_map) for b in self.blocks])


class Function:
    """A function: a thin wrapper around its `func.func` op.

    The op (`fn.op`) is what lives in the IR: name "func.func", attribute
    `sym_name`, one region with one block. The wrapper adds the things a
    reader wants: the arguments, the body ops, the returned values, and the
    declared result types (`result_types`, set by `set_results` or by the
    parser from the signature; the verifier checks `func.return` against it).
    """

    def __init__(self, name: str, arg_types=(), ops=(), loc: Location | None = None):
        self.op = Operation("func.func", attributes={"sym_name": name},
                            regions=[Region([Block(arg_types)])], loc=loc)
        self.result_types: tuple[Type, ...] = ()
        for op in ops:
            self.body.append(op)

    @property
    def name(self) -> str:
        return self.op.attributes["sym_name"]

    @name.setter
    def name(self, value: str) -> None:
        self.op.attributes["sym_name"] = value

    @property
    def loc(self) -> Location | None:
        return self.op.loc

    @property
    def body(self) -> Block:
        return self.op.regions[0].blocks[0]

    @property
    def args(self) -> list[Value]:
        return self.body.args

    @property
    def return_op(self) -> Operation | None:
        ops = self.body.ops
        return ops[-1] if ops and ops[-1].name == "func.return" else None

    @property
    def ops(self) -> list[Operation]:
        """The body ops in order, without the final func.return."""
        ops = list(self.body.ops)
        return ops[:-1] if self.return_op is not None else ops

    @property
    def results(self) -> tuple[Value, ...]:
        """The values returned by func.return."""
        ret = self.return_op
        return ret.operands if ret is not None else ()

    def set_results(self, values) -> Operation:
        """Create (or replace) the func.return; the result types follow the values."""
        values = list(values)
        ret = self.return_op
        if ret is not None:
            ret.operands = values
        else:
            ret = self.body.append(Operation("func.return", values))
        self.result_types = tuple(v.type for v in values)
        return ret

    def walk(self) -> Iterator[Operation]:
        """All ops of the body in pre-order (nested regions included, func.return too)."""
        return walk(self.body)

    def clone(self) -> Function:
        """A deep copy: new ops, new values, same text."""
        new = Function(self.name)
        new.op = self.op.clone()  # replaces the empty func.func made by the constructor
        new.result_types = self.result_types
        if getattr(self, "reinplace", None) is not None:   # results that are inputs' new data
            new.reinplace = dict(self.reinplace)
        return new

    def format(self, debuginfo: bool = False) -> str:
        from .printer import print_function

        return print_function(self, debuginfo=debuginfo)

    def __str__(self):
        return self.format()

    def __repr__(self):
        return f"<Function @{self.name}: {len(self.args)} args, {len(self.body.ops)} ops>"


def walk(root) -> Iterator[Operation]:
    """Pre-order walk over ops: an op comes before the ops nested in its regions.

    `root` may be a Function, an Operation (included itself), a Block or a Region.
    The list is taken up front per block, so erasing the current op is safe."""
    if isinstance(root, Function):
        root = root.body
    if isinstance(root, Operation):
        yield root
        for region in root.regions:
            yield from walk(region)
    elif isinstance(root, Region):
        for block in root.blocks:
            yield from walk(block)
    elif isinstance(root, Block):
        for op in list(root.ops):
            yield from walk(op)
    else:
        raise TypeError(f"cannot walk {root!r}")
