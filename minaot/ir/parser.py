"""Parse the text printed by printer.py back into IR.

A small hand-written recursive-descent parser. First the text is cut into
tokens (`%x`, `@f`, `^bb0`, `tensor<4xf32>`, numbers, strings, names, and
punctuation); then one method per grammar rule reads them:

    function := 'func.func' @name '(' args ')' ['->' types] ['attributes' attr-dict]
                '{' op* '}' [loc]
    op       := [results '='] op-name [operands] [attr-dict] ['(' region, ... ')']
                ':' '(' types ')' '->' (type | '(' types ')') [loc]
    region   := '{' (^bbN ['(' args ')'] ':' op*)* '}'

`func.return %a, %b : T1, T2` is the one op with a shorter signature. Ops of
any dialect parse (whether an op is known is the verifier's business), value
names may be anything (`%0`, `%x`), and `//` starts a comment. Errors raise
ParseError with the line, the column and the offending line of text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from . import types as _types
from .core import Block, Function, Location, Operation, Region, Value


class ParseError(Exception):
    """Text that is not valid IR: the message names the line and column and points at it."""

    def __init__(self, message: str, line: int, col: int, source_line: str):
        self.message, self.line, self.col, self.source_line = message, line, col, source_line
        super().__init__(f"{message} (line {line}, column {col})\n  {source_line}\n  {' ' * (col - 1)}^")


@dataclass
class Token:
    kind: str
    text: str
    line: int
    col: int


_TOKEN_RE = re.compile(r"""
    (?P<skip>  [ \t\r\n]+ | //[^\n]* )
  | (?P<string> "(?:[^"\\\n]|\\.)*" )
  | (?P<type>   (?:tensor|memref)<[^<>\n]*> )
  | (?P<value>  %[\w.$]+ )
  | (?P<symbol> @[\w.$]+ )
  | (?P<block>  \^[\w.$]+ )
  | (?P<arrow>  -> )
  | (?P<number> -?\d+(?:\.\d*)?(?:[eE][+-]?\d+)? | -inf\b )
  | (?P<ident>  [A-Za-z_][\w.$]* )
  | (?P<punct>  [(){}\[\],:=] )
""", re.VERBOSE)


def tokenize(text: str) -> list[Token]:
    tokens, pos, line, line_start = [], 0, 1, 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            col = pos - line_start + 1
            raise ParseError(f"unexpected character {text[pos]!r}", line, col, text.splitlines()[line - 1])
        if m.lastgroup != "skip":
            tokens.append(Token(m.lastgroup, m.group(), line, pos - line_start + 1))
        for i, ch in enumerate(m.group()):
            if ch == "\n":
                line, line_start = line + 1, pos + i + 1
        pos = m.end()
    tokens.append(Token("eof", "", line, pos - line_start + 1))
    return tokens


class Parser:
    def __init__(self, text: str):
        self.lines = text.splitlines() or [""]
        self.tokens = tokenize(text)
        self.pos = 0
        self.scopes: list[dict[str, Value]] = []

    # --- token helpers ---------------------------------------------------------
    def peek(self) -> Token:
        return self.tokens[self.pos]

    def at(self, kind: str, text: str | None = None) -> bool:
        tok = self.peek()
        return tok.kind == kind and (text is None or tok.text == text)

    def accept(self, kind: str, text: str | None = None) -> Token | None:
        if self.at(kind, text):
            self.pos += 1
            return self.tokens[self.pos - 1]
        return None

    def expect(self, kind: str, text: str | None = None) -> Token:
        tok = self.accept(kind, text)
        if tok is None:
            found = self.peek().text or "end of input"
            self.error(f"expected {text or kind}, found {found!r}")
        return tok

    def error(self, message: str, tok: Token | None = None):
        tok = tok or self.peek()
        source = self.lines[tok.line - 1] if tok.line <= len(self.lines) else ""
        raise ParseError(message, tok.line, tok.col, source)

    # --- values ----------------------------------------------------------------
    def define(self, tok: Token, value: Value) -> None:
        if any(tok.text in scope for scope in self.scopes):
            self.error(f"redefinition of {tok.text}", tok)
        self.scopes[-1][tok.text] = value
        if not tok.text[1:].isdigit():
            value.name_hint = tok.text[1:]

    def lookup(self, tok: Token) -> Value:
        for scope in reversed(self.scopes):
            if tok.text in scope:
                return scope[tok.text]
        self.error(f"use of undefined value {tok.text}", tok)

    # --- grammar rules -----------------------------------------------------------
    def module(self) -> list[Function]:
        functions = []
        while not self.at("eof"):
            functions.append(self.function())
        return functions

    def function(self) -> Function:
        self.expect("ident", "func.func")
        sym = self.expect("symbol")
        self.scopes = [{}]
        arg_toks, arg_types = self.typed_args()
        result_types = []
        if self.accept("arrow"):
            if self.accept("punct", "("):
                result_types = self.type_list(")")
                self.expect("punct", ")")
            else:
                result_types = [self.type()]
        attrs = self.attr_dict() if self.accept("ident", "attributes") else {}
        fn = Function(sym.text[1:], arg_types)
        fn.op.attributes.update(attrs)
        fn.result_types = tuple(result_types)
        for tok, arg in zip(arg_toks, fn.args):
            self.define(tok, arg)
        self.expect("punct", "{")
        while not self.accept("punct", "}"):
            self.op(fn.body)
        fn.op.loc = self.optional_loc()
        return fn

    def typed_args(self):
        """`(%a: T, %b: T)` -> name tokens and types."""
        toks, tys = [], []
        self.expect("punct", "(")
        while not self.accept("punct", ")"):
            if toks:
                self.expect("punct", ",")
            toks.append(self.expect("value"))
            self.expect("punct", ":")
            tys.append(self.type())
        return toks, tys

    def op(self, block: Block) -> None:
        result_toks = []
        if self.at("value"):
            result_toks.append(self.expect("value"))
            while self.accept("punct", ","):
                result_toks.append(self.expect("value"))
            self.expect("punct", "=")
        name_tok = self.peek()
        if not (self.accept("ident") and "." in name_tok.text):
            self.error(f"expected an op name like 'dialect.op', found {name_tok.text!r}", name_tok)
        if name_tok.text == "func.func":
            self.error("nested func.func is not supported", name_tok)
        operand_toks = []
        if self.at("value"):
            operand_toks.append(self.expect("value"))
            while self.accept("punct", ","):
                operand_toks.append(self.expect("value"))
        operands = [self.lookup(t) for t in operand_toks]
        attrs = self.attr_dict() if self.at("punct", "{") else {}
        regions = []
        if self.accept("punct", "("):
            regions.append(self.region())
            while self.accept("punct", ","):
                regions.append(self.region())
            self.expect("punct", ")")
        operand_types, result_types = self.signature(name_tok.text)
        loc = self.optional_loc()

        if len(operand_types) != len(operands):
            self.error(f"{name_tok.text} has {len(operands)} operands but its signature "
                       f"lists {len(operand_types)} types", name_tok)
        for tok, v, t in zip(operand_toks, operands, operand_types):
            if v.type != t:
                self.error(f"type mismatch for {tok.text}: signature says {t}, value has type {v.type}", tok)
        if len(result_types) != len(result_toks):
            self.error(f"{name_tok.text} defines {len(result_toks)} values but its signature "
                       f"lists {len(result_types)} result types", name_tok)
        op = Operation(name_tok.text, operands, result_types, attrs, regions, loc)
        block.append(op)
        for tok, v in zip(result_toks, op.results):
            self.define(tok, v)

    def signature(self, op_name: str):
        if op_name == "func.return":  # func.return %a, %b : T1, T2
            tys = []
            if self.accept("punct", ":"):
                tys.append(self.type())
                while self.accept("punct", ","):
                    tys.append(self.type())
            return tys, []
        self.expect("punct", ":")
        self.expect("punct", "(")
        operand_types = self.type_list(")")
        self.expect("punct", ")")
        self.expect("arrow")
        if self.accept("punct", "("):
            result_types = self.type_list(")")
            self.expect("punct", ")")
        else:
            result_types = [self.type()]
        return operand_types, result_types

    def region(self) -> Region:
        self.expect("punct", "{")
        region = Region()
        self.scopes.append({})
        while not self.accept("punct", "}"):
            arg_toks, arg_types = [], []
            if self.accept("block"):
                if self.at("punct", "("):
                    arg_toks, arg_types = self.typed_args()
                self.expect("punct", ":")
            elif region.blocks:
                self.error("expected a block label like ^bb1 or '}'")
            block = region.add_block(Block(arg_types))
            for tok, arg in zip(arg_toks, block.args):
                self.define(tok, arg)
            while not (self.at("punct", "}") or self.at("block")):
                self.op(block)
        self.scopes.pop()
        return region

    def type(self) -> _types.Type:
        tok = self.peek()
        if tok.kind not in ("type", "ident"):
            self.error(f"expected a type, found {tok.text!r}")
        self.pos += 1
        try:
            return _types.parse_type(tok.text)
        except ValueError:
            self.error(f"unknown type {tok.text!r}", tok)

    def type_list(self, end: str) -> list:
        tys = []
        while not self.at("punct", end):
            if tys:
                self.expect("punct", ",")
            tys.append(self.type())
        return tys

    def attr_dict(self) -> dict:
        attrs = {}
        self.expect("punct", "{")
        while not self.accept("punct", "}"):
            if attrs:
                self.expect("punct", ",")
            key_tok = self.accept("ident") or self.expect("string")
            key = json.loads(key_tok.text) if key_tok.kind == "string" else key_tok.text
            if key in attrs:
                self.error(f"duplicate attribute {key!r}", key_tok)
            self.expect("punct", "=")
            attrs[key] = self.attr_value()
        return attrs

    def attr_value(self):
        tok = self.peek()
        if self.accept("number"):
            is_float = any(c in tok.text for c in ".eEn")  # 2.0, 1e-05, -inf
            return float(tok.text) if is_float else int(tok.text)
        if self.accept("string"):
            return json.loads(tok.text)
        if self.accept("punct", "["):
            items = []
            while not self.accept("punct", "]"):
                if items:
                    self.expect("punct", ",")
                items.append(self.attr_value())
            return tuple(items)
        keywords = {"true": True, "false": False, "none": None, "inf": float("inf"), "nan": float("nan")}
        if tok.kind == "ident" and tok.text in keywords:
            self.pos += 1
            return keywords[tok.text]
        self.error(f"expected an attribute value, found {tok.text!r}")

    def optional_loc(self) -> Location | None:
        if not self.accept("ident", "loc"):
            return None
        self.expect("punct", "(")
        file = json.loads(self.expect("string").text)
        self.expect("punct", ":")
        line_tok = self.expect("number")
        if not line_tok.text.isdigit():
            self.error("expected a line number", line_tok)
        self.expect("punct", ")")
        return Location(file, int(line_tok.text))


def parse_module(text: str) -> list[Function]:
    """Parse every function in `text` (separated by blank lines, or not)."""
    return Parser(text).module()


def parse(text: str) -> Function:
    """Parse text that holds exactly one function."""
    p = Parser(text)
    functions = p.module()
    if len(functions) != 1:
        p.error(f"expected exactly one function, found {len(functions)}", p.tokens[0])
    return functions[0]
