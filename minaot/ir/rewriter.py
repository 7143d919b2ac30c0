"""Local rewrites: RewritePattern, PatternRewriter and a greedy driver.

A pattern looks at one op and, if it matches, replaces it with something
simpler: `prim.neg(prim.neg(x)) -> x`. It says whether it changed anything by
returning True. All edits go through the `PatternRewriter`, which inserts new
ops before the op being rewritten (copying its location, so the user's
source line survives the rewrite) and erases ops that become dead.

`apply_patterns_greedily` is MLIR's greedy driver in small: sweep over every
op (pre-order, so an op's operands have already been simplified), erase
trivially dead pure ops, try the patterns in order on the rest, and repeat
until a whole sweep changes nothing. A set of patterns that keeps undoing
each other would loop forever, so the number of sweeps is capped
(`max_iterations=10`, as in MLIR) and hitting the cap raises RewriteError
naming the last pattern that fired. Set `MINAOT_DEBUG_REWRITE=1` to print
each rewrite as it happens.
"""

from __future__ import annotations

import os
import sys

from .core import Function, Operation, Value, walk
from .dialect import is_trivially_dead
from .printer import op_line


class RewriteError(Exception):
    """The greedy driver did not converge (the message names the last pattern that fired),
    or ``replace_op`` was given results of the wrong number or types."""

    pass


class RewritePattern:
    """Base class: set `name` (and optionally `op_name`), implement match_and_rewrite."""

    name = "unnamed-pattern"
    op_name: str | None = None  # when set, the driver only offers ops with this name

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> bool:
        raise NotImplementedError


class PatternRewriter:
    """The only way patterns should change the IR."""

    def __init__(self):
        self.op: Operation | None = None  # the op being rewritten
        self.erased = 0  # ops erased, dead ones included

    def create(self, name: str, operands=(), result_types=(), attributes=None,
               regions=(), loc=None) -> Operation:
        """Create an op just before the op being rewritten, with its location by default."""
        new = Operation(name, operands, result_types, attributes, regions,
                        loc if loc is not None else self.op.loc)
        self.op.parent.insert_before(new, self.op)
        return new

    def insert(self, new: Operation) -> Operation:
        """Insert an existing (detached) op, e.g. a clone, before the op being rewritten."""
        self.op.parent.insert_before(new, self.op)
        return new

    def replace_all_uses_with(self, old: Value, new: Value) -> None:
        old.replace_all_uses_with(new)

    def replace_op(self, op: Operation, new_values) -> None:
        """Replace op's results by new_values (a list of values, or an op's results), then erase op."""
        if isinstance(new_values, Operation):
            new_values = new_values.results
        elif isinstance(new_values, Value):
            new_values = [new_values]
        new_values = list(new_values)
        if len(new_values) != len(op.results):
            raise RewriteError(f"replace_op: {op.name} has {len(op.results)} results, "
                               f"got {len(new_values)} replacement values")
        for old, new in zip(op.results, new_values):
            if old.type != new.type:
                raise RewriteError(f"replace_op: {op.name} result of type {old.type} "
                                   f"replaced by a value of type {new.type}")
            old.replace_all_uses_with(new)
        self.erase_op(op)

    def erase_op(self, op: Operation) -> None:
        """Erase op, then any op that only it used (if pure)."""
        producers = [v.defining_op for v in op.operands if v.defining_op is not None]
        op.erase()
        self.erased += 1
        for p in producers:
            if p.parent is not None and is_trivially_dead(p):
                self.erase_op(p)


def _is_attached(op: Operation, root: Operation) -> bool:
    """Is op still inside root (i.e. not erased by an earlier rewrite)?"""
    while op is not root:
        block = op.parent
        if block is None or block.parent is None or block.parent.parent is None:
            return False
        op = block.parent.parent
    return True


def apply_patterns_greedily(fn: Function, patterns, max_iterations: int = 10,
                            disabled=(), stats: dict | None = None) -> int:
    """Apply patterns until nothing changes; return the number of rewrites.

    `disabled` holds pattern names to skip. If `stats` is given, it counts the
    rewrites per pattern name and the erased ops under "erased".

    One sweep visits every op of `fn` in pre-order (`walk`), skipping ops an earlier
    rewrite erased (`_is_attached`); a trivially dead op is erased, otherwise the
    patterns are tried in order (only those whose `op_name` matches, if set) and the
    first that returns True ends the op's turn. Sweeps repeat until one changes
    nothing; after `max_iterations` sweeps that all changed something, raise
    RewriteError naming the last pattern that fired."""
    # BEGIN TASK 3.1: the greedy rewrite driver (sweep, match, repeat until nothing changes)
    patterns = [p for p in patterns if p.name not in disabled]
    debug = os.environ.get("MINAOT_DEBUG_REWRITE", "") not in ("", "0")
    rewriter = PatternRewriter()
    rewrites, last = 0, None
    stats = {} if stats is None else stats
    for _ in range(max_iterations):
        changed = False
        for op in list(walk(fn)):
            if not _is_attached(op, fn.op):
                continue
            if is_trivially_dead(op):
                rewriter.op = op
                rewriter.erase_op(op)
                changed = True
                continue
            line = op_line(op) if debug else ""
            for pattern in patterns:
                if pattern.op_name is not None and pattern.op_name != op.name:
                    continue
                rewriter.op = op
                if pattern.match_and_rewrite(op, rewriter):
                    rewrites += 1
                    last = pattern.name
                    stats[pattern.name] = stats.get(pattern.name, 0) + 1
                    changed = True
                    if debug:
                        print(f"[rewrite] {pattern.name}: {line}", file=sys.stderr)
                    break
        if not changed:
            stats["erased"] = stats.get("erased", 0) + rewriter.erased
            return rewrites
    raise RewriteError(f"did not converge after {max_iterations} iterations; "
                       f"last pattern that fired: {last}")
    # END TASK 3.1
