"""einsum: Einstein summation, a composite of views, ``mul``, ``sum`` and ``matmul``.

``einsum("bij,bjk->bik", a, b)`` names each axis of each operand with a letter;
a letter in the output is kept, a letter that is not is summed over, and one
letter in several operands multiplies them along it (their sizes must be equal,
or 1, which broadcasts).  ``...`` stands for the axes not named, broadcast
between operands like numpy's; a letter twice in one operand takes the diagonal.
Without ``->`` the output is ``...`` followed by the letters that appear once,
in ASCII order (capitals first), as in PyTorch.

The op is *composite*, as PyTorch's (``CompositeImplicitAutograd``): it runs as
its decomposition eagerly and while tracing, so autograd, functionalization and
the compiler see only ops they already know, and a result that is a view of its
operand (``"ij->ji"``, ``"ii->i"`` of a contiguous matrix) is a view, as in
PyTorch.  The decomposition:

1. take each operand's *diagonals* (a letter repeated in it): a reshape that
   merges the repeated axes and a strided slice;
2. *contract* left to right, two at a time (PyTorch's order without opt_einsum),
   each tensor carrying the names of its axes.  Axes summed after this pair that
   only one side holds are summed first; axes both hold and that are summed make
   the pair a ``matmul`` (the axes both keep are its batch, each side's own axes
   are flattened into its rows and columns); with no such axis the pair is a
   broadcasting ``mul``.  One operand alone is summed over its summed axes;
3. a permute and a reshape put the axes in the output's order.  A computed
   result is made contiguous, so a ``view`` that works on PyTorch's result
   works on it.

The registry record holds the shape rule (which raises the errors, naming the
equation and the shapes), the numpy reference (``np.einsum``) and the samples;
dispatching ``einsum`` by name records one ``mt.einsum`` op that ``decompose``
expands into the same parts.
"""

from __future__ import annotations

import builtins
import math
from typing import NamedTuple

import numpy as np

from .. import dtypes as dt
from .._errors import DTypeError, ShapeError, op_error
from ..dispatch import dispatch
from .meta import device_of
from .registry import Meta, OpDef, SampleInput, get_op, register

_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class Equation(NamedTuple):
    """A parsed equation for operands of given shapes.  An axis is named by its letter,
    or, for an axis that ``...`` covers, by an int: its place counted from the right end
    of the ellipsis (1 is the last), so that ellipses line up from the right."""

    inputs: tuple       # per operand: the name of each of its axes
    output: tuple       # the output's axes, in order
    summed: tuple       # the other axes, in order of first appearance
    sizes: dict         # axis name -> its size (broadcast over the operands)
    terms: tuple        # per operand: its subscripts as written ("...", letters)
    out_term: str       # the output's subscripts, explicit ("..." where the ellipsis goes)


def _fail(kind, equation, shapes, message):
    shown = ", ".join(str(tuple(s)) for s in shapes)
    return op_error(kind, "einsum", f"{message} (equation {equation!r}, operand shapes {shown})")


def _split_term(term, what, equation, shapes):
    """``(letters before, has ellipsis, letters after)`` of one term of the equation."""
    if "..." in term:
        i = term.index("...")
        before, after = term[:i], term[i + 3:]
        if "." in before or "." in after:
            raise _fail(ValueError, equation, shapes, f"{what} has a '.' that is not part of its one "
                        "ellipsis '...'")
        ellipsis = True
    else:
        if "." in term:
            raise _fail(ValueError, equation, shapes, f"{what} has a '.' that is not part of an "
                        "ellipsis '...'")
        before, after, ellipsis = term, "", False
    for c in before + after:
        if c not in _LETTERS:
            raise _fail(ValueError, equation, shapes, f"invalid subscript {c!r} in {what}: "
                        "subscripts are letters a-z and A-Z")
    return before, ellipsis, after


def parse(equation, shapes) -> Equation:
    """Check ``equation`` against the operands' ``shapes`` and name every axis; raises
    naming the equation and the shapes when they do not fit."""
    if not isinstance(equation, str):
        raise op_error(TypeError, "einsum", f"the equation must be a string, got {type(equation).__name__}")
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    if "->" in rhs or "-" in lhs or ">" in lhs or "-" in rhs or ">" in rhs:
        raise _fail(ValueError, equation, shapes, "the equation has a '-' or '>' that is not its one '->'")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise _fail(ValueError, equation, shapes, f"the equation has subscripts for {len(terms)} "
                    f"operand{'s' if len(terms) != 1 else ''} but {len(shapes)} were given")
    inputs, sizes, counts, has_ellipsis, longest = [], {}, {}, False, 0
    for k, (term, shape) in enumerate(zip(terms, shapes)):
        before, ellipsis, after = _split_term(term, f"operand {k}'s subscripts {term!r}", equation, shapes)
        named = len(before) + len(after)
        covered = len(shape) - named
        if covered < 0 or (covered and not ellipsis):
            raise _fail(ShapeError, equation, shapes,
                        f"operand {k} has {len(shape)} dimension{'s' if len(shape) != 1 else ''} but "
                        f"its subscripts {term!r} name {named}"
                        + (" and have no ellipsis" if not ellipsis else ""))
        has_ellipsis |= ellipsis
        longest = builtins.max(longest, covered)
        names = list(before) + list(range(covered, 0, -1)) + list(after)
        own = {}
        for name, n in zip(names, shape):
            if name in own and own[name] != n:
                raise _fail(ShapeError, equation, shapes, f"subscript {name} is repeated in operand "
                            f"{k} but its sizes differ ({own[name]} and {n})")
            own[name] = n
            if isinstance(name, str):
                counts[name] = counts.get(name, 0) + 1
        for name, n in own.items():
            seen = sizes.get(name)
            if seen is not None and n != seen and 1 not in (n, seen):
                what = (f"subscript {name}" if isinstance(name, str)
                        else f"the ellipsis' dimension {name} from the right")
                raise _fail(ShapeError, equation, shapes, f"{what} has size {n} in operand {k}, which "
                            f"does not broadcast with size {seen} seen before")
            sizes[name] = n if seen in (None, 1) else seen
        inputs.append(tuple(names))
    ellipsis_axes = list(range(longest, 0, -1))
    if not arrow:
        letters = sorted(c for c, n in counts.items() if n == 1)
        output = ellipsis_axes + letters
        out_term = ("..." if has_ellipsis else "") + "".join(letters)
    else:
        before, ellipsis, after = _split_term(rhs, f"the output's subscripts {rhs!r}", equation, shapes)
        for c in before + after:
            if c not in counts:
                raise _fail(ValueError, equation, shapes,
                            f"output subscript {c} does not appear in any operand's subscripts")
            if (before + after).count(c) > 1:
                raise _fail(ValueError, equation, shapes, f"output subscript {c} appears more than once")
        output = list(before) + (ellipsis_axes if ellipsis else []) + list(after)
        out_term = rhs
    kept = set(output)
    summed = []
    for names in inputs:
        for name in names:
            if name not in kept and name not in summed:
                summed.append(name)
    return Equation(tuple(inputs), tuple(output), tuple(summed), sizes, tuple(terms), out_term)


# ---------------------------------------------------------------- the decomposition
def _diagonals(x, names):
    """``x`` with each repeated axis name taken once, along the diagonal: the repeated axes
    are brought next to each other, merged by a reshape (``n ** k`` elements) and read
    with the step ``1 + n + ... + n ** (k - 1)`` that goes from ``(i, i, ...)`` to
    ``(i + 1, i + 1, ...)``."""
    from .views import permute, reshape
    names = list(names)
    while True:
        dup = next((a for a in names if names.count(a) > 1), None)
        if dup is None:
            return x, names
        pos = [i for i, a in enumerate(names) if a == dup]
        first, k = pos[0], len(pos)
        order = ([i for i in range(len(names)) if i < first and i not in pos] + pos
                 + [i for i in range(len(names)) if i > first and i not in pos])
        if order != list(range(len(names))):
            x = permute(x, order)
            names = [names[i] for i in order]
        n = x.shape[first]
        x = reshape(x, x.shape[:first] + (n ** k,) + x.shape[first + k:])
        step = builtins.sum(n ** j for j in range(k)) if n > 1 else 1
        x = dispatch("slice", x, dim=first, start=0, stop=n ** k, step=step)
        names = names[:first + 1] + names[first + k:]


def _grouped(x, names, groups):
    """``x`` (its axes named ``names``) as one axis per group of ``groups`` (lists of
    names), in that order, each the product of its names' sizes: a permute and a reshape,
    each left out when it would change nothing.  An axis in no group must have size 1
    (it is dropped); an empty group is a new axis of size 1."""
    from .views import permute, reshape
    order = [a for g in groups for a in g]
    perm = [names.index(a) for a in order] + [i for i, a in enumerate(names) if a not in order]
    if perm != list(range(len(names))):
        x = permute(x, perm)
    sizes, shape = list(x.shape), []
    for g in groups:
        shape.append(math.prod(sizes[:len(g)]))
        del sizes[:len(g)]
    return reshape(x, tuple(shape)) if tuple(shape) != tuple(x.shape) else x


def _contract(equation, a, an, b, bn, summed, layout):
    """The product of ``a`` and ``b`` (their axes named ``an`` and ``bn``), summed over
    the names in ``summed``; returns the result and its axes' names.  A name an operand
    lacks, or holds with size 1, broadcasts.  PyTorch's ``sumproduct_pair``: a summed
    name that only one side holds is summed on that side first; the summed names both
    hold make it a ``matmul`` of (batch, rows, k) by (batch, k, columns), with the names
    both hold as the batch; without any it is a broadcasting ``mul``."""
    from .other import matmul
    from .pointwise import mul
    from .reductions import sum
    from .views import reshape

    def held(x, names):
        return {n for n, s in zip(names, x.shape) if s != 1}
    ha, hb = held(a, an), held(b, bn)
    batch, rows, cols, inner = [], [], [], []
    for n in layout:
        if n in summed:
            if n in ha and n in hb:
                inner.append(n)
        elif n in ha:
            (batch if n in hb else rows).append(n)
        elif n in hb:
            cols.append(n)
    a_only = [i for i, n in enumerate(an) if n in summed and n in ha and n not in hb]
    b_only = [i for i, n in enumerate(bn) if n in summed and n in hb and n not in ha]
    if a_only:
        a, an = sum(a, a_only), [n for i, n in enumerate(an) if i not in a_only]
    if b_only:
        b, bn = sum(b, b_only), [n for i, n in enumerate(bn) if i not in b_only]
    if not inner:
        names = [n for n in layout if n not in summed and (n in an or n in bn)]
        a = _grouped(a, an, [[n] if n in an else [] for n in names])      # size 1 where absent
        b = _grouped(b, bn, [[n] if n in bn else [] for n in names])
        return mul(a, b), names
    if a.dtype is dt.bool_:
        raise op_error(DTypeError, "einsum", f"equation {equation!r} sums a product of bool operands "
                       "(a matmul), which PyTorch does not support for bool either")
    if rows and cols and layout.index(cols[-1]) < layout.index(rows[0]):
        return _contract(equation, b, bn, a, an, summed, layout)   # then the result is in order
    lead = [batch] if batch else []
    out = matmul(_grouped(a, an, lead + [rows, inner]), _grouped(b, bn, lead + [inner, cols]))
    names = batch + rows + cols
    shape = tuple(a.shape[an.index(n)] for n in batch + rows) + tuple(b.shape[bn.index(n)] for n in cols)
    return (reshape(out, shape) if shape != tuple(out.shape) else out), names


def _einsum_decomp(*operands, equation):
    from .reductions import sum
    eq = parse(equation, [tuple(x.shape) for x in operands])
    layout = list(eq.output + eq.summed)
    out, names = _diagonals(operands[0], eq.inputs[0])
    computed = len(operands) > 1
    for k in range(1, len(operands)):
        later = {n for ns in eq.inputs[k + 1:] for n in ns}
        summed = {n for n in eq.summed if n not in later}
        b, bn = _diagonals(operands[k], eq.inputs[k])
        out, names = _contract(equation, out, names, b, bn, summed, layout)
    dims = [i for i, n in enumerate(names) if n in eq.summed]
    if len(operands) == 1 and dims:             # one operand: its summed axes (even of size 1)
        out = sum(out, dims)
        names = [n for i, n in enumerate(names) if i not in dims]
        computed = True
    out = _grouped(out, names, [[n] if n in names else [] for n in eq.output])
    return out.contiguous() if computed else out


# ---------------------------------------------------------------- the record
def _sums(eq) -> bool:
    """Does the decomposition call ``sum`` (which makes bool operands int64, as in
    PyTorch)?  One operand: when it has summed axes; several: when a summed axis is
    longer than 1 (one of size 1 everywhere is only dropped)."""
    if len(eq.inputs) == 1:
        return bool(eq.summed)
    return any(eq.sizes[n] != 1 for n in eq.summed)


def _einsum_meta(*operands, equation):
    eq = parse(equation, [tuple(x.shape) for x in operands])
    first = operands[0].dtype
    for x in operands[1:]:
        if x.dtype is not first:
            raise _fail(DTypeError, equation, [x.shape for x in operands],
                        f"operands must have one dtype, as in PyTorch, got {first.name} and {x.dtype.name}")
    dtype = dt.int64 if first is dt.bool_ and _sums(eq) else first
    return Meta(tuple(eq.sizes[a] for a in eq.output), dtype, device_of(*operands))


def _np_einsum(*arrays, equation):
    """The numpy reference: ``np.einsum`` with the output written out, the operands'
    size-1 axes broadcast first (numpy broadcasts only the ellipsis)."""
    eq = parse(equation, [a.shape for a in arrays])
    arrays = [np.broadcast_to(a, tuple(eq.sizes[n] for n in names)) for a, names in zip(arrays, eq.inputs)]
    if any(a.dtype == np.bool_ for a in arrays) and _sums(eq):     # summed as integers
        arrays = [a.astype(np.int64) for a in arrays]
    out_term, ellipsis_summed = eq.out_term, 0
    if not any("..." in t for t in eq.terms):
        out_term = out_term.replace("...", "")
    elif "..." not in out_term:                     # numpy keeps the ellipsis: sum it here
        out_term = "..." + out_term
        ellipsis_summed = builtins.max([n for n in eq.sizes if isinstance(n, int)], default=0)
    out = np.einsum(",".join(eq.terms) + "->" + out_term, *arrays)
    return np.asarray(out).sum(axis=tuple(range(ellipsis_summed))) if ellipsis_summed else np.asarray(out)


def _einsum_samples(rng):
    """Contractions of each kind.  A single operand that is only permuted or read along
    a diagonal is a view of it, which a whole ``mt.einsum`` op in a compiled graph is
    not; those are tested through :func:`einsum` itself (tests/test_torch_parity.py)."""
    r = rng.standard_normal
    return [
        SampleInput((r((3, 4)), r((4, 5))), {"equation": "ij,jk->ik"}, name="matmul"),
        SampleInput((r((2, 3, 4)), r((2, 4, 5))), {"equation": "bij,bjk->bik"}, name="bmm"),
        SampleInput((r((3, 4)), r((4, 5))), {"equation": "ij,jk->ki"}, name="transposed output"),
        SampleInput((r((2, 3, 4, 5)), r((2, 6, 4, 5))), {"equation": "bqhd,bkhd->bhqk"}, name="attention"),
        SampleInput((r((4,)), r((4,))), {"equation": "i,i->"}, name="dot"),
        SampleInput((r((3,)), r((4,))), {"equation": "i,j->ij"}, name="outer"),
        SampleInput((r((2, 3)), r((4, 5))), {"equation": "ab,cd->dbca"}, name="outer, permuted"),
        SampleInput((r((4, 4)),), {"equation": "ii"}, name="trace"),
        SampleInput((r((3, 2, 3)),), {"equation": "iji->j"}, name="diagonal apart, summed"),
        SampleInput((r((2, 1, 3, 4)), r((3, 4, 2))), {"equation": "...ij,...jk->...ik"},
                    name="ellipsis broadcast"),
        SampleInput((r((4, 2, 3)),), {"equation": "...ij->j"}, name="ellipsis summed"),
        SampleInput((r((2, 1)), r((3, 4))), {"equation": "ij,jk->ik"}, name="size-1 subscript"),
        SampleInput((r((2, 3)), r((4, 3, 5)), r((2, 5))), {"equation": "bn,anm,bm->ba"},
                    name="three operands"),
        SampleInput((r(()), r((3,))), {"equation": ",i->i"}, name="0-d operand"),
        SampleInput((r((2, 3)), r((3, 2))), {"equation": "Ab,bC"}, name="capitals"),
    ]


register(OpDef("einsum", "other", _einsum_meta, _np_einsum, decomp=_einsum_decomp, composite=True,
               samples=_einsum_samples, doc="Einstein summation (composite)"))


# ---------------------------------------------------------------- the public function
def _subscript(n):
    if n is Ellipsis:
        return "..."
    if isinstance(n, int) and 0 <= n < 26:
        return chr(ord("A") + n)
    if isinstance(n, int) and 26 <= n < 52:
        return chr(ord("a") + n - 26)
    raise op_error(ValueError, "einsum", f"a subscript in a sublist must be an int in [0, 52) or "
                   f"Ellipsis, got {n!r}")


def einsum(equation, *operands):
    """Einstein summation over ``operands``, as ``torch.einsum``.

    ``einsum("ij,jk->ik", a, b)`` is ``a @ b``: each letter names an axis, letters in
    several operands are multiplied along, letters missing from the output (after
    ``->``) are summed over.  ``...`` covers the axes not named (broadcast between
    operands); a letter repeated in one operand takes its diagonal (``"ii->i"``); size-1
    axes broadcast.  Without ``->`` the output is ``...`` then the letters that appear
    once, in ASCII order.  The operands may also be given as one list, or in the sublist
    form ``einsum(a, [0, 1], b, [1, 2], [0, 2])``.

    Composite: it runs as views, ``mul``, ``sum`` and ``matmul`` (pairs contracted left
    to right, by ``matmul`` where they share a summed axis), eagerly and while tracing,
    so it differentiates and compiles like its parts.  All operands must have one dtype.
    """
    from ..tensor import Tensor
    if not isinstance(equation, str):                       # the sublist form
        args = (equation,) + operands
        terms = ["".join(_subscript(n) for n in sub) for sub in args[1::2]]
        equation = ",".join(terms)
        if len(args) % 2 == 1:
            equation += "->" + "".join(_subscript(n) for n in args[-1])
            operands = args[:-1:2]
        else:
            operands = args[::2]
    elif len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise op_error(ValueError, "einsum", f"equation {equation!r}: at least one operand is needed")
    for k, x in enumerate(operands):
        if not isinstance(x, Tensor):
            raise op_error(TypeError, "einsum", f"equation {equation!r}: operand {k} is a "
                           f"{type(x).__name__}, not a tensor")
    get_op("einsum").meta(*operands, equation=equation)     # the errors, before any work
    return _einsum_decomp(*operands, equation=equation)
