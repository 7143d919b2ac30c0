"""Dialects (namespaces of ops) and the verifier.

A `Dialect` is a name plus a table of `OpSpec`s, one per op it knows. An
OpSpec says what the verifier can check without knowing the op's meaning:
how many operands and results, which attributes must be present, whether the
op is *pure* (no side effects, so DCE may delete it and CSE may merge it),
and optionally a `verify(op)` function for op-specific rules (shapes,
dtypes) that raises `VerifyError`.

`verify(fn)` checks a whole function: every op is known to a registered
dialect and passes its spec; SSA holds (each value defined once, and before
every use: earlier in the same block, or in an enclosing block, or as a
block argument of an enclosing block); use lists agree with operands; and
`func.return` is the last op and returns the declared result types. The
error names the op by its printed line and location, so a broken pass points
at the exact op and at the user's source line.

The `func` dialect is registered here. Other dialects (`mt`, `prim`, ...)
are registered by their own modules with `register_dialect`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

from .core import Block, Function, Operation, walk
from .printer import op_line


class VerifyError(Exception):
    """An IR invariant is broken. str() gives the message and the op's printed line."""

    def __init__(self, message: str, op: Operation | None = None):
        self.message, self.op = message, op
        text = message if op is None else f"{message}\n  {op_line(op)}"
        super().__init__(text)


def _count_ok(expected, n: int) -> bool:
    if expected is None:
        return True
    if isinstance(expected, int):
        return n == expected
    if isinstance(expected, range):
        return n in expected
    lo, hi = expected  # (min, max); max None means no upper bound
    return n >= lo and (hi is None or n <= hi)


def _count_text(expected) -> str:
    if isinstance(expected, int):
        return str(expected)
    if isinstance(expected, range):
        return f"{expected.start} to {expected.stop - 1}"
    lo, hi = expected
    return f"at least {lo}" if hi is None else f"{lo} to {hi}"


@dataclass
class OpSpec:
    """What the verifier knows about one op.

    num_operands / num_results: None (any number), an int (exactly), a range,
    or a (min, max) tuple where max may be None ("at least min")."""

    name: str  # "add" or "prim.add"
    verify: Callable[[Operation], None] | None = None
    num_operands: int | range | tuple | None = None
    num_results: int | range | tuple | None = None
    required_attrs: tuple[str, ...] = ()
    pure: bool = True


@dataclass
class Dialect:
    """A namespace of ops (``mt``, ``prim``, ``kernel``, ``scf``, ...): a name and an
    :class:`OpSpec` per op, added with ``add_op`` and made known with
    :func:`register_dialect`."""

    name: str
    ops: dict[str, OpSpec] = field(default_factory=dict)  # short name -> spec

    def add_op(self, spec: OpSpec) -> OpSpec:
        short = spec.name
        if "." in short:
            prefix, short = short.split(".", 1)
            if prefix != self.name:
                raise ValueError(f"op {spec.name} does not belong to dialect {self.name}")
        self.ops[short] = spec
        return spec


_DIALECTS: dict[str, Dialect] = {}


def register_dialect(dialect: Dialect, merge: bool = False) -> Dialect | None:
    """Register `dialect` under its name and return the dialect it displaced (or None).

    If one of that name exists: replace it, or with `merge=True` register a new
    Dialect holding the old ops plus the new ones (new specs win). The old
    object is never changed, so the caller can put it back."""
    old = _DIALECTS.get(dialect.name)
    if merge and old is not None and old is not dialect:
        dialect = Dialect(dialect.name, {**old.ops, **dialect.ops})
    _DIALECTS[dialect.name] = dialect
    return old


def unregister_dialect(name: str) -> Dialect | None:
    """Remove the dialect registered as ``name``; returns it (or None)."""
    return _DIALECTS.pop(name, None)


def get_dialect(name: str) -> Dialect | None:
    """The dialect registered as ``name``, or None."""
    return _DIALECTS.get(name)


@contextmanager
def registered_dialects(*dialects: Dialect):
    """Register dialects for the duration of a `with` block (tests), then restore."""
    saved = {d.name: _DIALECTS.get(d.name) for d in dialects}
    for d in dialects:
        register_dialect(d)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                unregister_dialect(name)
            else:
                register_dialect(old)


def lookup_op(full_name: str) -> OpSpec | None:
    """The OpSpec for "dialect.op", or None if the dialect or the op is unknown."""
    if "." not in full_name:
        return None
    prefix, short = full_name.split(".", 1)
    dialect = _DIALECTS.get(prefix)
    return None if dialect is None else dialect.ops.get(short)


def is_pure(op: Operation) -> bool:
    """True if the op's spec says it has no side effects. Unknown ops are not pure."""
    spec = lookup_op(op.name)
    return spec is not None and spec.pure


def is_trivially_dead(op: Operation) -> bool:
    """A pure op none of whose results is used can be deleted."""
    return is_pure(op) and all(not r.uses for r in op.results)


# --- the verifier -------------------------------------------------------------

def _is_attr_value(value) -> bool:
    if isinstance(value, tuple):
        return all(_is_attr_value(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def verify_op(op: Operation) -> None:
    """Check one op against its dialect's spec (not SSA: see verify)."""
    spec = lookup_op(op.name)
    if spec is None:
        if op.dialect not in _DIALECTS:
            raise VerifyError(f"unknown dialect '{op.dialect}' (op {op.name}); is it registered?", op)
        raise VerifyError(f"unknown op '{op.name}' in dialect '{op.dialect}'", op)
    for what, expected, n in (("operands", spec.num_operands, len(op.operands)),
                              ("results", spec.num_results, len(op.results))):
        if not _count_ok(expected, n):
            raise VerifyError(f"{op.name} expects {_count_text(expected)} {what}, got {n}", op)
    for key, value in op.attributes.items():
        if not _is_attr_value(value):
            raise VerifyError(f"{op.name}: attribute '{key}' = {value!r} is not an int, float, "
                              "bool, str, None or tuple of those (lists must be tuples)", op)
    for attr in spec.required_attrs:
        if attr not in op.attributes:
            raise VerifyError(f"{op.name} requires attribute '{attr}'", op)
    if spec.verify is not None:
        try:
            spec.verify(op)
        except VerifyError as e:
            if e.op is not None:
                raise
            msg = e.message if e.message.startswith(op.name) else f"{op.name}: {e.message}"
            raise VerifyError(msg, op) from e
        except Exception as e:  # a crash inside a verify function still names the op
            raise VerifyError(f"{op.name}: verifier raised {type(e).__name__}: {e}", op) from e


def _verify_block(block: Block, visible: set, defined: set) -> None:
    visible = visible | set(block.args)
    defined.update(block.args)
    for op in block.ops:
        if op.parent is not block:
            raise VerifyError(f"{op.name} is in a block but its parent link points elsewhere", op)
        verify_op(op)
        for i, v in enumerate(op.operands):
            if v not in visible:
                raise VerifyError(f"{op.name} operand #{i} is used before it is defined "
                                  "(or is defined in a region that does not enclose this op)", op)
            if not any(u is op and j == i for u, j in v.uses):
                raise VerifyError(f"{op.name} operand #{i} is missing from its value's use list", op)
        if op.name == "func.return" and op is not block.ops[-1]:
            raise VerifyError("func.return must be the last op of the function body", op)
        for region in op.regions:
            for inner in region.blocks:
                _verify_block(inner, visible, defined)
        for r in op.results:
            if r in defined:
                raise VerifyError(f"{op.name} result #{r.index} is defined twice", op)
            defined.add(r)
        visible |= set(op.results)


def verify(fn: Function) -> None:
    """Check the whole function; raise VerifyError naming the first bad op."""
    body = fn.body
    if fn.op.name != "func.func" or len(fn.op.regions) != 1 or len(fn.op.regions[0].blocks) != 1:
        raise VerifyError(f"@{fn.name}: a function is a func.func op with one region of one block")
    _verify_block(body, set(), set())
    ret = fn.return_op
    if ret is None:
        raise VerifyError(f"@{fn.name}: the function body must end in func.return")
    got = tuple(v.type for v in ret.operands)
    if got != tuple(fn.result_types):
        want = ", ".join(map(str, fn.result_types)) or "nothing"
        have = ", ".join(map(str, got)) or "nothing"
        raise VerifyError(f"func.return returns ({have}) but @{fn.name} declares ({want})", ret)
    for op in walk(fn):
        if op.name == "func.return" and op.parent is not body:
            raise VerifyError("func.return may only appear at the end of the function body", op)


FUNC = Dialect("func")
FUNC.add_op(OpSpec("func", num_operands=0, num_results=0, required_attrs=("sym_name",), pure=False))
FUNC.add_op(OpSpec("return", num_results=0, pure=False))
FUNC.add_op(OpSpec("call", required_attrs=("callee",), pure=False))
register_dialect(FUNC)
