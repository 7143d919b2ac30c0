"""Random minaot programs for property-based tests (hypothesis strategies).

A generated :class:`Program` is Python source: a function of a few tensor
inputs whose body is 3-12 lines of minaot calls, e.g.::

    def program(x0, x1):
        v2 = x0.transpose(0, 1)
        v3 = (v2 * x1.sigmoid())
        v4 = v3.sum(dim=1, keepdim=True)
        return (v4, v2)

Being source, a failing example that hypothesis prints is a program one can
paste and run.  The builder keeps the program well-formed by running every
line, as it writes it, on *shadow* tensors: zero-filled inputs with the real
shapes and layouts.  The shadows give each value's shape, strides, storage and
view chain, so a step only uses operands it fits (broadcasting partners,
matmul partners, in-place targets without internal overlap, ...).

Values stay finite and well conditioned through a crude *bound* per storage:
inputs lie in [-2, 2], ``tanh``/``sigmoid`` bound by 1, a sum of n elements
by n times its input, and so on.  An op that would push a bound past
``LIMIT`` gets its operand squashed with ``tanh`` first; ``exp`` only sees
values bounded by ``EXP_LIMIT``; divisions only divide by ``c``,
``u * u + 1`` or ``u.sigmoid() + 0.5``.

Two kinds of programs:

* ``pure`` (:func:`pure_programs`): pointwise ops, reductions, views and
  matmul; differentiable; no in-place op.
* ``inplace`` (:func:`inplace_programs`): the same pure ops (no matmul) plus
  ``add_``/``sub_``/``mul_``/``div_``/``copy_``/``zero_``/``neg_``/``relu_``/``fill_``
  on inputs, intermediates and on (temporary or named) views of them, and
  metadata mutations ``t_``/``transpose_``/``unsqueeze_``/``squeeze_``.
  In-place targets never have internal overlap (eager raises there) and never
  have an ``expand`` in their view chain (functionalize cannot write those
  back and says so: see the test file's notes).
"""

from __future__ import annotations

import itertools
import linecache
import math
import re
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

import minaot
from minaot.dispatch import has_internal_overlap, partial_overlap

MAX_NUMEL = 48
MAX_RANK = 4
LIMIT = 50.0
EXP_LIMIT = 4.0
SCALARS = (0.5, -1.5, 2.0, 3.0)
DIVISORS = (2.0, -4.0, 0.5)
FILL = 7.0          # what the caller's base holds outside a non-contiguous input


# ---------------------------------------------------------------- inputs
@dataclass(frozen=True)
class InputSpec:
    """One tensor argument: its shape, how the caller lays it out, whether it requires grad.

    ``layout`` is ``contiguous``, ``transposed`` (the caller passes
    ``base.transpose(-1, -2)``) or ``strided`` (the caller passes
    ``base[1::2]``: an offset and a step)."""

    shape: tuple
    layout: str = "contiguous"
    requires_grad: bool = False

    def base_shape(self):
        s = list(self.shape)
        if self.layout == "transposed":
            s[-1], s[-2] = s[-2], s[-1]
        elif self.layout == "strided":
            s[0] = 2 * s[0] + 1
        return tuple(s)

    def make(self, values: np.ndarray, dtype):
        """``(tensor, base)``: the caller's tensor holding ``values`` and the tensor owning its
        memory (the same one for contiguous inputs)."""
        base = minaot.full(self.base_shape(), FILL, dtype=dtype)
        view = self.view_of(base)
        view.copy_(minaot.tensor(values, dtype=dtype))
        if self.layout == "contiguous":
            t = base
        else:
            t = view.detach()
        if self.requires_grad:
            t.requires_grad_(True)
        return t, base

    def view_of(self, base):
        if self.layout == "transposed":
            return base.transpose(-1, -2)
        if self.layout == "strided":
            return base[1::2]
        return base

    def __repr__(self):
        extra = "" if self.layout == "contiguous" else f", {self.layout}"
        return f"{self.shape}{extra}{', requires_grad' if self.requires_grad else ''}"


# ---------------------------------------------------------------- programs
_counter = itertools.count()


@dataclass(repr=False)
class Program:
    """A generated function: input specs, body lines and the names it returns."""

    inputs: list
    lines: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    seed: int = 0

    def source(self) -> str:
        args = ", ".join(f"x{i}" for i in range(len(self.inputs)))
        body = [f"    {line}" for line in self.lines]
        ret = f"    return ({', '.join(self.outputs)},)"
        return "\n".join([f"def program({args}):"] + body + [ret]) + "\n"

    def function(self):
        """The program as a Python function (its source registered so tracebacks show it)."""
        src = self.source()
        filename = f"<program {next(_counter)}>"
        linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
        namespace = {"minaot": minaot}
        exec(compile(src, filename, "exec"), namespace)
        return namespace["program"]

    def make_inputs(self, dtype):
        """Fresh ``(tensors, bases)`` for one run; equal on every call (seeded)."""
        rng = np.random.default_rng(self.seed)
        pairs = [spec.make(rng.uniform(-2, 2, spec.shape), dtype) for spec in self.inputs]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def __repr__(self):
        specs = "; ".join(f"x{i}: {s!r}" for i, s in enumerate(self.inputs))
        return f"Program(seed={self.seed}; {specs})\n{self.source()}"

    def _repr_pretty_(self, p, cycle):          # what hypothesis prints for a failing example
        p.text(repr(self))


# ---------------------------------------------------------------- the builder
def _numel(shape):
    return int(np.prod(shape, dtype=np.int64))


def _broadcast(a, b):
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        return None


def _matmul_shape(a, b):
    if not a or not b:
        return None
    try:
        return tuple(np.matmul(np.zeros(a), np.zeros(b)).shape)
    except ValueError:
        return None


def _index(ndim, dim, item):
    """Source for indexing dim ``dim`` with ``item`` (``v[:, 1:3]``)."""
    return "[" + ", ".join([":"] * dim + [item]) + "]"


class Builder:
    """Writes one program line by line, keeping shadow tensors and value bounds."""

    def __init__(self, draw, inputs, inplace):
        self.draw = draw
        self.inplace = inplace
        self.permuting = True       # (restriction 4, lifted: its bug is fixed)
        self.negated = set()        # storages whose current value is a negation (restriction 1)
        self.program = Program(list(inputs))
        shadows = [spec.make(np.zeros(spec.shape), minaot.float64)[0].detach() for spec in inputs]
        self.env = {f"x{i}": t for i, t in enumerate(shadows)}
        self.inputs = shadows
        self.names = list(self.env)
        self.bound = {id(t._storage): 2.0 for t in shadows}
        self.exprs = set()

    # -------------------------------------------------------- helpers
    def shape(self, name):
        return self.env[name].shape

    def b(self, name):
        return self.bound[id(self.env[name]._storage)]

    def pick(self, names=None):
        names = self.names if names is None else names
        recent = names[-3:]
        return self.draw(st.one_of(st.sampled_from(recent), st.sampled_from(names)))

    def is_negated(self, name):
        return id(self.env[name]._storage) in self.negated

    def squash(self, name, limit=LIMIT):
        """Source for ``name``, squashed with tanh when its bound is above ``limit``; its bound."""
        if self.b(name) > limit:
            return f"{name}.tanh()", 1.0
        return name, self.b(name)

    def emit(self, expr, bound):
        """Add ``vN = expr``; returns the new name (None when the value would be empty or too
        big, or when the program already computes ``expr``: see the module notes)."""
        if expr in self.exprs:
            return None
        name = f"v{len(self.names)}"
        line = f"{name} = {expr}"
        with minaot.no_grad():
            exec(line, {"minaot": minaot}, self.env)
        t = self.env[name]
        if t.numel() == 0 or t.numel() > MAX_NUMEL or t.ndim > MAX_RANK:
            del self.env[name]
            return None
        key = id(t._storage)
        self.bound[key] = max(self.bound.get(key, 0.0), bound)
        if expr.startswith("(-"):
            self.negated.add(key)
        self.program.lines.append(line)
        self.names.append(name)
        self.exprs.add(expr)
        return name

    def mutate(self, stmt, target, bound, metadata=False):
        """Add an in-place statement that writes values bounded by ``bound`` into ``target``."""
        with minaot.no_grad():
            exec(stmt, {"minaot": minaot}, self.env)
        key = id(self.env[target]._storage)
        self.bound[key] = max(self.bound[key], bound)
        if stmt == f"{target}.neg_()":
            self.negated.add(key)
        elif not metadata:
            self.negated.discard(key)
        self.program.lines.append(stmt)

    # -------------------------------------------------------- pure steps
    def unary(self):
        v = self.pick()
        op = self.draw(st.sampled_from(["neg", "tanh", "sigmoid", "relu", "exp", "pow"]))
        if op == "exp":
            src, b = self.squash(v, EXP_LIMIT)
            return self.emit(f"{src}.exp()", math.exp(b))
        if op == "pow":
            k = self.draw(st.sampled_from([2, 3]))
            src, b = self.squash(v, LIMIT ** (1 / k))
            return self.emit(f"({src} ** {k})", b ** k)
        if op in ("tanh", "sigmoid"):
            return self.emit(f"{v}.{op}()", 1.0)
        if op == "neg":
            if self.is_negated(v):                  # no -(-v): canonicalize folds it (restriction 1)
                return self.emit(f"{v}.tanh()", 1.0)
            return self.emit(f"(-{v})", self.b(v))
        return self.emit(f"{v}.relu()", self.b(v))

    def partner(self, v, fits):
        """A value ``u`` with ``fits(u)`` true, or None."""
        cands = [u for u in self.names if fits(u)]
        others = [u for u in cands if u != v]
        return self.pick(others or cands) if cands else None

    def binary(self):
        v = self.pick()
        op = self.draw(st.sampled_from(["+", "-", "*"]))
        if self.draw(st.booleans()):
            c = self.draw(st.sampled_from(SCALARS))
            src, b = self.squash(v, LIMIT / abs(c)) if op == "*" else self.squash(v)
            bound = b * abs(c) if op == "*" else b + abs(c)
            expr = f"({src} {op} {c})" if self.draw(st.booleans()) else f"({c} {op} {src})"
            return self.emit(expr, bound)
        u = self.partner(v, lambda u: (s := _broadcast(self.shape(v), self.shape(u))) is not None
                         and _numel(s) <= MAX_NUMEL)
        if u is None:
            return None
        if op == "*":
            (a, ba), (c, bc) = self.squash(v, math.sqrt(LIMIT)), self.squash(u, math.sqrt(LIMIT))
            return self.emit(f"({a} * {c})", ba * bc)
        (a, ba), (c, bc) = self.squash(v), self.squash(u)
        return self.emit(f"({a} {op} {c})", ba + bc)

    def div(self):
        v = self.pick()
        form = self.draw(st.sampled_from(["const", "square", "sigmoid", "rdiv"]))
        if form == "const":
            c = self.draw(st.sampled_from(DIVISORS))
            return self.emit(f"({v} / {c})", self.b(v) / abs(c))
        u = self.partner(v, lambda u: (s := _broadcast(self.shape(v), self.shape(u))) is not None
                         and _numel(s) <= MAX_NUMEL)
        if u is None:
            return None
        us, _ = self.squash(u, math.sqrt(LIMIT))
        if form == "square":
            return self.emit(f"({v} / ({us} * {us} + 1.0))", self.b(v))
        if form == "sigmoid":
            return self.emit(f"({v} / ({u}.sigmoid() + 0.5))", 2 * self.b(v))
        return self.emit(f"(2.0 / ({us} * {us} + 1.0))", 2.0)

    def reduction(self):
        v = self.pick([n for n in self.names if self.env[n].ndim >= 1])
        op = self.draw(st.sampled_from(["sum", "mean", "amax"]))
        shape = self.shape(v)
        if op == "sum" and self.draw(st.integers(0, 4)) == 0:
            src, b = self.squash(v, LIMIT / _numel(shape))
            return self.emit(f"{src}.sum()", b * _numel(shape))
        dim = self.draw(st.integers(-len(shape), len(shape) - 1))
        keep = self.draw(st.booleans())
        src, b = (self.squash(v, LIMIT / shape[dim]) if op == "sum" else (v, self.b(v)))
        return self.emit(f"{src}.{op}(dim={dim}, keepdim={keep})",
                         b * shape[dim] if op == "sum" else b)

    def view(self):
        v = self.pick()
        shape = self.shape(v)
        nd = len(shape)
        kinds = ["reshape", "unsqueeze"] + (["slice", "select"] if nd >= 1 else []) + \
                (["transpose", "transpose", "permute"] if nd >= 2 and self.permuting else []) + \
                (["expand"] if 1 in shape or nd < MAX_RANK else []) + \
                (["squeeze"] if 1 in shape else [])
        if not self.reshapes(shape):
            kinds.remove("reshape")
        kind = self.draw(st.sampled_from(kinds))
        return self.emit(self.view_expr(v, kind), self.b(v))

    def view_expr(self, v, kind):
        shape = self.shape(v)
        nd = len(shape)
        draw = self.draw
        if kind == "transpose":
            d0, d1 = draw(st.lists(st.integers(0, nd - 1), min_size=2, max_size=2, unique=True))
            d1 = d1 - nd if draw(st.booleans()) else d1
            return f"{v}.transpose({d0}, {d1})"
        if kind == "permute":
            perm = draw(st.permutations(range(nd)))
            if list(perm) == list(range(nd)):               # no no-op views (restriction 1)
                perm = perm[1:] + perm[:1]
            return f"{v}.permute({', '.join(map(str, perm))})"
        if kind == "unsqueeze":
            return f"{v}.unsqueeze({draw(st.integers(-nd - 1, nd))})"
        if kind == "squeeze":
            d = draw(st.sampled_from([i for i, s in enumerate(shape) if s == 1]))
            return f"{v}.squeeze({d})"
        if kind == "expand":
            new = [draw(st.integers(2, 3)) if s == 1 and draw(st.booleans()) else -1
                   for s in shape]
            if nd < MAX_RANK and (all(s == -1 for s in new) or draw(st.booleans())):
                new = [draw(st.integers(1, 3))] + new
            if all(s == -1 for s in new):                   # no no-op views (restriction 1)
                return f"{v}.unsqueeze(0)"
            return f"{v}.expand({', '.join(map(str, new))})"
        if kind == "slice":
            dims = [d for d in range(nd) if shape[d] >= 2] or list(range(nd))
            d = draw(st.sampled_from(dims))
            n = shape[d]
            start = draw(st.integers(0, n - 1))
            stop = draw(st.integers(start + 1, n))
            step = draw(st.sampled_from([1, 1, 2]))
            if n == 1:                                      # no no-op views (restriction 1)
                return f"{v}{_index(nd, d, '0')}"
            if (start, stop, step) == (0, n, 1):
                start = 1
            item = f"{start}:{stop}" + (f":{step}" if step != 1 else "")
            return f"{v}{_index(nd, d, item)}"
        if kind == "select":
            d = draw(st.integers(0, nd - 1))
            i = draw(st.integers(-shape[d], shape[d] - 1))
            return f"{v}{_index(nd, d, str(i))}"
        new = draw(st.sampled_from(self.reshapes(shape)))
        return f"{v}.reshape({', '.join(map(str, new))}{',' if len(new) == 1 else ''})"

    def reshapes(self, shape):
        """Target shapes for ``reshape``: flatten, merge two neighbours, split a dim, add a 1;
        never ``shape`` itself (restriction 1)."""
        nd = len(shape)
        cands = [(-1,)] if nd != 1 else []
        for d in range(nd - 1):
            cands.append(shape[:d] + (shape[d] * shape[d + 1],) + shape[d + 2:])
        for d in range(nd):
            for f in (2, 3):
                if shape[d] % f == 0 and shape[d] > f and nd < MAX_RANK:
                    cands.append(shape[:d] + (f, shape[d] // f) + shape[d + 1:])
        if nd < MAX_RANK:
            cands.append((1,) + shape)
        cands = [c for c in cands if c != shape]
        return cands

    def matmul(self):
        v = self.pick([n for n in self.names if self.env[n].ndim >= 1])
        options = []
        for u in self.names:
            su = self.shape(u)
            for t in (False, True):
                if t and len(su) < 2:
                    continue
                ush = su[:-2] + (su[-1], su[-2]) if t else su
                out = _matmul_shape(self.shape(v), ush)
                if out is not None and _numel(out) <= MAX_NUMEL and len(out) >= 1:
                    options.append((u, t))
        if not options:
            return None
        u, t = self.draw(st.sampled_from(options))
        k = self.shape(v)[-1]
        (a, ba), (c, bc) = self.squash(v, math.sqrt(LIMIT / k)), self.squash(u, math.sqrt(LIMIT / k))
        rhs = f"{c}.transpose(-1, -2)" if t else c
        return self.emit(f"({a} @ {rhs})", k * ba * bc)

    # -------------------------------------------------------- in-place steps
    def writable(self, t):
        """In-place ops may write into ``t``: no internal overlap (eager raises), no ``expand``
        in its view chain (restriction 3)."""
        return (t.numel() > 0 and not has_internal_overlap(t)
                and "expand" not in [name for name, _ in t._view_chain])

    def inplace_op(self):
        targets = [n for n in self.names if self.writable(self.env[n])]
        if not targets:
            return None
        v = self.pick(targets)
        target_expr = v
        tshape = self.shape(v)
        if self.draw(st.integers(0, 2)) == 0:            # through a temporary view
            nd = len(tshape)
            kinds = ["slice", "select"] if nd >= 1 else []
            kinds += ["transpose"] if nd >= 2 and self.permuting else []
            if kinds:
                target_expr = self.view_expr(v, self.draw(st.sampled_from(kinds)))
                with minaot.no_grad():
                    tmp = eval(target_expr, {"minaot": minaot}, self.env)
                if not self.writable(tmp):
                    return None
                tshape = tmp.shape
        op = self.draw(st.sampled_from(["add_", "sub_", "mul_", "div_", "copy_",
                                        "zero_", "neg_", "relu_", "fill_"]))
        b = self.b(v)
        if op == "neg_" and self.is_negated(v):
            op = "relu_"                            # no neg_ of a negation (restriction 1)
        if op in ("zero_", "neg_", "relu_"):
            return self.mutate(f"{target_expr}.{op}()", v, b)
        if op == "fill_":
            return self.mutate(f"{target_expr}.fill_(1.5)", v, max(b, 1.5))
        if op == "div_":
            return self.mutate(f"{target_expr}.div_({self.draw(st.sampled_from(DIVISORS))})",
                               v, b / 0.5)
        use_scalar = op != "copy_" and self.draw(st.booleans())
        if use_scalar or (op == "mul_" and b > LIMIT):
            c = self.draw(st.sampled_from((0.5, -1.0) if op == "mul_" else SCALARS))
            return self.mutate(f"{target_expr}.{op}({c})", v, b * abs(c) if op == "mul_" else b + abs(c))
        with minaot.no_grad():
            written = eval(target_expr, {"minaot": minaot}, self.env)
        # a partner whose memory partly overlaps the written elements is refused eagerly (as
        # PyTorch refuses it) unless squashed into a new tensor; keep only runnable programs
        u = self.partner(v, lambda u: _broadcast(tshape, self.shape(u)) == tuple(tshape)
                         and not (partial_overlap(written, self.env[u])
                                  and self.squash(u)[0] == u))
        if u is None:
            return None
        if op == "mul_":
            src, bu = self.squash(u, 1.0)
            return self.mutate(f"{target_expr}.mul_({src})", v, b * bu)
        src, bu = self.squash(u)
        new = bu if op == "copy_" else b + bu
        return self.mutate(f"{target_expr}.{op}({src})", v, new)

    def metadata_op(self):
        v = self.pick()
        shape = self.shape(v)
        nd = len(shape)
        kinds = (["t_"] if nd == 2 and self.permuting else []) + \
                (["transpose_"] if nd >= 2 and self.permuting else []) + \
                (["unsqueeze_"] if nd < MAX_RANK else []) + (["squeeze_"] if 1 in shape else [])
        if not kinds:
            return None
        kind = self.draw(st.sampled_from(kinds))
        if kind == "t_":
            stmt = f"{v}.t_()"
        elif kind == "transpose_":
            d0, d1 = self.draw(st.lists(st.integers(0, nd - 1), min_size=2, max_size=2, unique=True))
            stmt = f"{v}.transpose_({d0}, {d1})"
        elif kind == "unsqueeze_":
            stmt = f"{v}.unsqueeze_({self.draw(st.integers(-nd - 1, nd))})"
        else:
            stmt = f"{v}.squeeze_({self.draw(st.sampled_from([i for i, s in enumerate(shape) if s == 1]))})"
        return self.mutate(stmt, v, self.b(v), metadata=True)

    # -------------------------------------------------------- the whole program
    def build(self, n_ops):
        if self.inplace:
            steps = [self.unary, self.binary, self.view, self.view, self.reduction,
                     self.inplace_op, self.inplace_op, self.inplace_op, self.metadata_op]
        else:
            steps = [self.unary, self.unary, self.binary, self.binary, self.div,
                     self.reduction, self.view, self.view, self.matmul]
        tries = 0
        while len(self.program.lines) < n_ops and tries < 4 * n_ops:
            tries += 1
            step = self.draw(st.sampled_from(steps))
            if step in (self.reduction, self.matmul) and \
                    not any(self.env[n].ndim >= 1 for n in self.names):
                continue
            step()
        created = self.names[len(self.program.inputs):]
        first = (created or self.names)[-1]
        lines = self.program.lines
        defined = {line.split(" = ")[0]: i for i, line in enumerate(lines) if " = " in line}
        unused = [n for n in created[:-1]
                  if not any(re.search(rf"\b{n}\b", line) for line in lines[defined[n] + 1:])]
        extra = self.draw(st.lists(st.sampled_from(unused or self.names), max_size=2))
        if unused and self.draw(st.booleans()):
            extra.append(self.draw(st.sampled_from(self.names)))
        self.program.outputs = [first] + extra
        self.program.seed = self.draw(st.integers(0, 2**32 - 1))
        return self.program


# ---------------------------------------------------------------- strategies
@st.composite
def input_specs(draw, grad: bool, max_inputs=3):
    """1-3 input specs around a main shape: the main shape, lower-rank broadcasting
    partners, a matmul partner (k, n), or a scalar tensor; some non-contiguous."""
    rank = draw(st.integers(1, 3))
    main = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    shapes = [main]
    for _ in range(draw(st.integers(0, max_inputs - 1))):
        kind = draw(st.sampled_from(["same", "broadcast", "matrix", "scalar"]))
        if kind == "same":
            shapes.append(main)
        elif kind == "broadcast":
            k = draw(st.integers(1, rank))
            shapes.append(tuple(1 if draw(st.booleans()) else s for s in main[rank - k:]))
        elif kind == "matrix":
            shapes.append((main[-1], draw(st.integers(1, 3))))
        else:
            shapes.append(())
    specs = []
    for s in shapes:
        layouts = ["contiguous", "contiguous"] + (["transposed"] if len(s) >= 2 else []) + \
                  (["strided"] if len(s) >= 1 else [])
        specs.append(InputSpec(s, draw(st.sampled_from(layouts)),
                               grad and draw(st.booleans())))
    if grad and not any(s.requires_grad for s in specs):
        i = draw(st.integers(0, len(specs) - 1))
        specs[i] = InputSpec(specs[i].shape, specs[i].layout, True)
    return specs


@st.composite
def pure_programs(draw, max_ops=12):
    """Differentiable programs of 3..max_ops ops; at least one input requires grad."""
    specs = draw(input_specs(grad=True))
    n = draw(st.integers(3, max_ops))
    return Builder(draw, specs, inplace=False).build(n)


@st.composite
def inplace_programs(draw, max_ops=12):
    """Programs of 3..max_ops ops mixing views, pure ops and in-place ops; nothing requires grad."""
    specs = draw(input_specs(grad=False, max_inputs=2))
    n = draw(st.integers(3, max_ops))
    return Builder(draw, specs, inplace=True).build(n)
