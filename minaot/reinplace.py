"""Reinplacing: write the new value of a mutated input straight into that input's memory.

A function that mutates an input (``p.sub_(...)`` in an optimizer step) becomes a
pure graph that *returns* the input's new value; the runtime's epilogue then copies
that value into the caller's tensor (:mod:`minaot.runtime`).  The graph result lives
in a fresh buffer, so a step moves the data twice: the kernel writes the new value,
the epilogue copies it in.  Inductor's *reinplacing* removes the second move: when
nothing can read the old value any more, the kernel that computes the new value may
store it into the input's own memory, and the epilogue's copy becomes a copy of an
array onto itself, which moves nothing.

Two questions decide whether that is safe, one about the graph and one about the
kernel:

* :func:`reinplace_plan` (the graph): the result is the new value of input ``a``
  (``aot_function`` records this on inference graphs as ``graph.reinplace``), it is
  computed by a fused kernel that reads ``a``, it is not returned twice, ``a`` is
  not itself a result, and no op after that kernel reads ``a`` or a view of ``a``
  (views made by library ops are followed).
* :func:`writes_in_place` (the kernel): the kernel is pointwise, reads ``a`` with
  the identity index map and the result's type, and in its loop IR every load of
  ``a`` comes before the first store of the result, at the same indices.  Each
  element is then read before it is overwritten, by the iteration (CPU) or thread
  (GPU) that overwrites it, so no other iteration can see a new value too early.

Both backends that run fused kernels (:mod:`minaot.numba_backend` and
:mod:`minaot.cuda_backend`) ask these two questions when they build a program; at
run time they still check the actual array (writable, no broadcast strides, and on
the GPU a dense layout) and fall back to a fresh buffer when it does not qualify.
"""

from __future__ import annotations

from .ir.core import walk
from .ops.registry import get_op


def reinplace_plan(g, hint, last_use, keep) -> dict:
    """``{step: {kernel result: kernel operand}}`` for fused graph ``g``: the graph results
    that are the new value of a mutated input (``hint``: graph result position -> argument
    position) and may be written into that input's memory.  ``last_use`` and ``keep`` come
    from :func:`minaot.program_plan.plan_slots`.  The kernel's own condition is
    :func:`writes_in_place`, which the backend checks once the kernel is lowered."""
    out = {}
    results = list(g.results)
    for res_pos, arg_pos in hint.items():
        r, a = results[res_pos], g.args[arg_pos]
        op = r.defining_op
        if (op is None or op.name != "kernel.fused" or results.count(r) != 1 or a in keep
                or a.type != r.type or a not in op.operands):
            continue
        k = g.ops.index(op)
        aliases, ok = {a}, True
        for j, other in enumerate(g.ops):        # views of the input made by library ops
            if any(v in aliases for v in other.operands):
                if other is op:
                    if sum(v in aliases for v in other.operands) != 1 or a not in other.operands:
                        ok = False
                elif other.name != "kernel.fused" and get_op(other.opname).kind == "view":
                    aliases.update(other.results)
                    if any(x in keep for x in other.results):
                        ok = False
                elif j >= k:
                    ok = False
        if ok and all(last_use.get(v, -1) <= k for v in aliases) and \
                all(last_use.get(v, -1) < k for v in aliases if v is not a):
            out.setdefault(k, {})[op.results.index(r)] = list(op.operands).index(a)
    return out


def writes_in_place(kop, loop, operand: int, result: int) -> bool:
    """May result ``result`` of the ``kernel.fused`` op ``kop`` (lowered to ``loop``) be
    stored into the buffer of its operand ``operand``?  See the module docstring."""
    if kop.attributes.get("reduce") or list(kop.operands).count(kop.operands[operand]) != 1:
        return False
    if kop.operands[operand].type != kop.results[result].type:
        return False
    if list(kop.attributes["in_maps"][operand]) != list(range(len(kop.attributes["domain"]))):
        return False
    src, dst = loop.args[operand], loop.args[len(kop.operands) + result]
    loads, stores = [], []
    for pos, op in enumerate(walk(loop)):
        if op.name == "memref.load" and op.operands[0] is src:
            loads.append((pos, tuple(op.operands[1:])))
        elif op.name == "memref.store" and op.operands[1] is dst:
            stores.append((pos, tuple(op.operands[2:])))
    if not stores:
        return False
    first_store = min(p for p, _ in stores)
    index = stores[0][1]
    return (all(i == index for _, i in loads + stores)
            and all(p < first_store for p, _ in loads))


def kernel_step(g, k, kern, into_of, reinplaced: set):
    """The ``run`` of step ``k``, the fused kernel ``kern``: the kernel itself, or a call that
    writes some results into operands (``into_of`` from :func:`reinplace_plan`, kept where
    :func:`writes_in_place` agrees); those results' graph positions join ``reinplaced``."""
    into = {r: i for r, i in into_of.get(k, {}).items() if kern.writes_in_place(i, r)}
    results = list(g.results)
    for r in into:
        reinplaced.add(results.index(kern.op.results[r]))
    return (lambda ins: kern(ins, into)) if into else kern


def returned_as_is(graph, reinplaced: set) -> set:
    """Result positions a backend returns as they are even when they are an input: the
    reinplaced ones, and a training forward's saved inputs (``graph.may_return_inputs``,
    set by :mod:`minaot.training`)."""
    return reinplaced | set(getattr(graph, "may_return_inputs", ()))
