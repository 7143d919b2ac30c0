"""Print the IR as text: one generic syntax for every op.

    %2 = mt.add %0, %1 : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
    %3 = mt.sum %2 {dim = [1], keepdim = true} : (tensor<4x8xf32>) -> tensor<4x1xf32>
    %5, %6 = mt.split %3 {dim = 0, sizes = [2, 2]} : (tensor<4x1xf32>) -> (tensor<2x1xf32>, tensor<2x1xf32>)

Values get the names %0, %1, ... from one counter in textual order (function
arguments first, then each op's results, then the block arguments and ops of
its regions), so printing the same IR twice gives the same text and golden
tests can compare strings. Attributes print sorted by key. With
`debuginfo=True` each op line ends in its location, `loc("train.py":12)`.
The parser (parser.py) reads exactly this format back.
"""

from __future__ import annotations

import json
import math
import re

from .core import Block, Function, Operation, Value


def format_string(s: str) -> str:
    """A double-quoted string with escapes (JSON rules, so the parser can use json.loads)."""
    return json.dumps(s)


def format_attr(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value)  # 2.0, 1e-05, inf, -inf: repr round-trips exactly
    if isinstance(value, str):
        return format_string(value)
    if isinstance(value, (tuple, list)):  # lists only appear if a pass broke the rules
        return "[" + ", ".join(format_attr(v) for v in value) + "]"
    raise TypeError(f"cannot print attribute value {value!r}")


def _format_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else format_string(key)


def format_attr_dict(attrs: dict) -> str:
    items = ", ".join(f"{_format_key(k)} = {format_attr(attrs[k])}" for k in sorted(attrs))
    return "{" + items + "}"


def _types(values) -> str:
    return ", ".join(str(v.type) for v in values)


class Printer:
    """Turns ops into lines of text, naming values as it first meets them."""

    def __init__(self, debuginfo: bool = False):
        self.debuginfo = debuginfo
        self.names: dict[Value, str] = {}
        self.lines: list[str] = []

    def name(self, v: Value) -> str:
        if v not in self.names:
            self.names[v] = f"%{len(self.names)}"
        return self.names[v]

    def _loc(self, op: Operation) -> str:
        return f" {op.loc}" if self.debuginfo and op.loc is not None else ""

    def function(self, op: Operation, result_types) -> None:
        body = op.regions[0].blocks[0]
        args = ", ".join(f"{self.name(a)}: {a.type}" for a in body.args)
        results = ", ".join(str(t) for t in result_types)
        extra = {k: v for k, v in op.attributes.items() if k != "sym_name"}
        attrs = f" attributes {format_attr_dict(extra)}" if extra else ""
        sym = op.attributes.get("sym_name", "?")
        self.lines.append(f"func.func @{sym}({args}) -> ({results}){attrs} {{")
        for inner in body.ops:
            self.op(inner, "  ")
        self.lines.append("}" + self._loc(op))

    def op_head(self, op: Operation) -> str:
        """Everything before the regions: `%r = name %a, %b {attrs}`."""
        text = ""
        if op.results:
            text = ", ".join(self.name(r) for r in op.results) + " = "
        text += op.name
        if op.operands:
            text += " " + ", ".join(self.name(v) for v in op.operands)
        if op.attributes:
            text += " " + format_attr_dict(op.attributes)
        return text

    def op_tail(self, op: Operation) -> str:
        """Everything after the regions: the type signature and the location."""
        if op.name == "func.return":
            sig = f" : {_types(op.operands)}" if op.operands else ""
        else:
            res = _types(op.results)
            if len(op.results) != 1:
                res = f"({res})"
            sig = f" : ({_types(op.operands)}) -> {res}"
        return sig + self._loc(op)

    def op(self, op: Operation, indent: str) -> None:
        if op.name == "func.func":
            raise ValueError("nested func.func ops are not supported")
        head = indent + self.op_head(op)
        if not op.regions:
            self.lines.append(head + self.op_tail(op))
            return
        self.lines.append(head + " ({")
        for i, region in enumerate(op.regions):
            if i > 0:
                self.lines.append(indent + "}, {")
            for j, block in enumerate(region.blocks):
                self.block(block, j, indent)
        self.lines.append(indent + "})" + self.op_tail(op))

    def block(self, block: Block, number: int, indent: str) -> None:
        args = ", ".join(f"{self.name(a)}: {a.type}" for a in block.args)
        self.lines.append(f"{indent}^bb{number}" + (f"({args})" if block.args else "") + ":")
        for op in block.ops:
            self.op(op, indent + "  ")

    def text(self) -> str:
        return "\n".join(self.lines)


def print_function(fn: Function, debuginfo: bool = False) -> str:
    """The text of ``fn`` (what ``str(fn)`` gives); ``debuginfo=True`` adds each op's
    ``loc("file":line)``."""
    p = Printer(debuginfo)
    p.function(fn.op, fn.result_types)
    return p.text()


def _printer_for(op: Operation, debuginfo: bool) -> Printer:
    """A printer that already knows the names of the enclosing function, if any."""
    top = op
    while top.parent_op is not None:
        top = top.parent_op
    p = Printer(debuginfo)
    if top.name == "func.func" and top is not op:
        p.function(top, ())  # only to number the values the same way as the full print
        p.lines = []
    return p


def print_op(op: Operation, debuginfo: bool = False, regions: bool = True) -> str:
    """One op as text, with the value names it has in its function's printout.

    With `regions=False` the region bodies are abbreviated to `({...})`, which
    gives the one-line form used in error messages."""
    p = _printer_for(op, debuginfo)
    if op.name == "func.func":  # the bare op does not know its result types; print the Function
        p.function(op, ())
    elif regions or not op.regions:
        p.op(op, "")
    else:
        p.lines.append(p.op_head(op) + " ({...})" + p.op_tail(op))
    return p.text()


def op_line(op: Operation) -> str:
    """The op's one-line form with its location: what error messages show."""
    return print_op(op, debuginfo=True, regions=False)


def value_name(v: Value) -> str:
    """The name `%N` that v has in the printout of its function (or `%?`)."""
    owner = v.owner if isinstance(v.owner, Operation) else v.owner.parent_op
    if owner is None:
        return "%?"
    p = _printer_for(owner, False)
    if owner.name == "func.func":
        p.function(owner, ())
    else:
        p.op(owner, "")
    return p.names.get(v, "%?")
