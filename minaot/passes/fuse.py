"""fuse: group prim ops into ``kernel.fused`` regions, one generated kernel each.

The idea.  A kernel iterates over a *domain* shape S.  Some axes of S may be
*reduced* inside the kernel (R); the others are the parallel outer loop.  Each
value in a group has a *dims map*: for each of its axes, the axis of S it
follows, or None (constant along it: broadcast).  A value that follows an
axis in R is *inner* (recomputed inside each inner loop that needs it); the
others are *outer* (one scalar per outer point, kept in a register).  So one
kernel holds a pointwise chain (R empty), a reduction with its pointwise
prologue and epilogue, or a whole row computation: softmax is max over the
row, exp and sum over the row, then a divide - three inner loops in one
kernel, with the row's max and sum in registers.

Walking the graph in order, an op joins the group of one of its operands when:

* pointwise: its result follows the group's domain (same shape S, or S reduced
  over R) and every group operand's dims map agrees with the result's;
* a shape-only view (reshape adding or dropping 1s, expand, transpose,
  permute, unsqueeze, squeeze) of a group value: its dims map is remapped, no
  data moves;
* a reduction (sum, prod, amax, amin) of a value covering all of S: over R (a
  second reduction of the row), or, if the group reduces nothing yet, it
  starts reducing those axes;
* and joining creates no cycle (no operand comes from work that itself
  depends on this group).

Everything else is a *library call* that stays a prim op: matmul (BLAS),
gather, cat, scatters, random numbers; views of kernel inputs (slices, selects,
transposes) are zero-copy strided views the kernel reads through.  Constants
are copied into each kernel that uses them, as literals.

Two rewrites then merge groups: a pointwise group read by one other kernel
only (and perhaps returned by the graph) moves into it (*vertical*), and two
independent kernels over one domain that read a common input become one
(*horizontal*).

Values live in registers inside a kernel; a kernel writes only the values that
other kernels or library calls read, or that the graph returns.  A value read
by several kernels is computed once, in its own group, and written to memory:
recomputing a pointwise chain in every consumer would save one write and one
read per consumer, but can multiply work along fan-outs (Inductor caps it for
the same reason), and every kernel that reads it here is memory-bound anyway.
One case is always a win, and is done after grouping
(:func:`recompute_cheap_inputs`): a kernel that reads a value another kernel
made by a single pointwise op whose operands are all in memory already (graph
inputs, library results, their views), at most one of them as large as the
result, computes the value itself: reading the operands costs what reading the
result would, and the other kernel need not write it.  Layer norm's backward
reads ``x - mean`` in the column reduction of the weight gradient and in the
row kernel of the input gradient: with a copy in each, neither kernel writes
it.
"""

from __future__ import annotations

from ..dialects import kernel as _kernel  # noqa: F401  (registers the dialect)
from ..ir import Block, Builder, Function, Operation, Pass, Region
from ..ir.pass_manager import register_pass
from .prim_to_scalar import REDUCE, fusible

REMAPS = {"reshape", "expand", "transpose", "permute", "unsqueeze", "squeeze"}


def pointwise_dims(shape, domain, reduce):
    """Dims map of a pointwise result of ``shape`` in a kernel over ``domain`` reducing
    ``reduce``: the whole domain, the domain with reduced axes kept as 1, or without them.

    The map has one entry per axis of the value: the domain axis it follows, or None
    (size 1, broadcast).  ``shape == domain`` follows every axis; with reduced axes,
    ``shape`` may be the domain with those axes kept as 1 (``keepdim=True``) or
    dropped.  Any other shape does not fit the kernel: None."""
    # BEGIN TASK 7.1: dims maps: which kernel axis each axis of a value follows
    n = len(domain)
    shape, domain = tuple(shape), tuple(domain)
    if shape == domain:
        return tuple(range(n))
    if reduce and shape == tuple(1 if i in reduce else s for i, s in enumerate(domain)):
        return tuple(None if i in reduce else i for i in range(n))
    if reduce and shape == tuple(s for i, s in enumerate(domain) if i not in reduce):
        return tuple(i for i in range(n) if i not in reduce)
    return None
    # END TASK 7.1


def reduction_dims(n, axes, keepdim):
    return (tuple(None if i in axes else i for i in range(n)) if keepdim
            else tuple(i for i in range(n) if i not in axes))


class Group:
    def __init__(self, gid, shape, reduce=()):
        self.id = gid
        self.shape = tuple(shape)
        self.reduce = frozenset(reduce)
        self.ops = []
        self.dims = {}          # value -> dims map (tuple of S-axis or None per value axis)


def _broadcast_dims(out_dims, out_shape, in_shape):
    """Dims map of an operand of shape ``in_shape`` broadcast to an op result.

    Numpy broadcasting lines the operand's axes up with the result's from the right;
    an operand axis of size 1 against a larger result axis is broadcast (None), any
    other follows what the result's axis follows in ``out_dims``."""
    # BEGIN TASK 7.1
    lead = len(out_shape) - len(in_shape)
    return tuple(None if s == 1 and out_shape[lead + j] != 1 else out_dims[lead + j]
                 for j, s in enumerate(in_shape))
    # END TASK 7.1


def _remap_dims(name, attrs, dims, in_shape, out_shape):
    """Dims map of a shape-only view of a value with map ``dims``, or None if not shape-only."""
    if name in ("transpose", "permute"):
        perm = list(range(len(dims)))
        if name == "transpose":
            perm[attrs["dim0"]], perm[attrs["dim1"]] = perm[attrs["dim1"]], perm[attrs["dim0"]]
        else:
            perm = list(attrs["dims"])
        return tuple(dims[p] for p in perm)
    if name == "expand":
        lead = len(out_shape) - len(in_shape)
        return (None,) * lead + tuple(None if s == 1 and t != 1 else d
                                      for d, s, t in zip(dims, in_shape, out_shape[lead:]))
    # reshape / unsqueeze / squeeze: allowed when only size-1 axes come or go
    kept_in = [(s, d) for s, d in zip(in_shape, dims) if s != 1]
    kept_out = [s for s in out_shape if s != 1]
    if [s for s, _ in kept_in] != kept_out:
        return None
    it = iter(d for _, d in kept_in)
    return tuple(None if s == 1 else next(it) for s in out_shape)


def depends_on(v, g, group_of) -> bool:
    """Does value ``v`` depend on group ``g``?  A kernel runs as a unit, so reaching any op
    of another group means depending on all of that group's inputs.  (Asked whenever an
    op would join ``g`` through one operand while reading ``v``: if ``v`` depends on ``g``,
    joining would make a cycle.)

    Walk backwards from ``v`` through defining ops (block arguments end a path); a
    value computed in ``g`` answers yes; a value computed in another group continues
    from the operands of *all* that group's ops (each group once); a value in no group
    continues from its defining op's operands."""
    # BEGIN TASK 7.2: the fusion legality check: would joining a group make a cycle?
    stack, seen, groups = [v], set(), set()
    while stack:
        u = stack.pop()
        if u in seen or u.is_block_arg:
            continue
        seen.add(u)
        h = group_of.get(u)
        if h is g:
            return True
        if h is None:
            stack.extend(u.defining_op.operands)
        elif id(h) not in groups:
            groups.add(id(h))
            stack.extend(w for op in h.ops for w in op.operands)
    return False
    # END TASK 7.2


class _Fuser:
    def __init__(self, fn: Function, max_ops=64):
        self.fn = fn
        self.max_ops = max_ops
        self.group_of = {}      # value -> Group (values computed inside a group)
        self.groups = []

    def _can_join(self, g, op):
        """May ``op`` join group ``g``?  Not if ``g`` already has ``max_ops`` ops, nor if
        an operand from outside ``g`` depends on ``g`` (:func:`depends_on`)."""
        # BEGIN TASK 7.2
        if len(g.ops) >= self.max_ops:
            return False
        return not any(self.group_of.get(v) is not g and depends_on(v, g, self.group_of)
                       for v in op.operands)
        # END TASK 7.2

    def _try_pointwise(self, g, op):
        out_shape = tuple(op.result.type.shape)
        dims = pointwise_dims(out_shape, g.shape, g.reduce)
        if dims is None:
            return None
        for v in op.operands:
            if self.group_of.get(v) is g:
                want = _broadcast_dims(dims, out_shape, tuple(v.type.shape))
                have = g.dims[v]
                if any(h is not None and h != w for h, w in zip(have, want)):
                    return None
        return dims

    def _add(self, g, op, dims):
        g.ops.append(op)
        g.dims[op.result] = dims
        self.group_of[op.result] = g

    def _new_group(self, shape, reduce=()):
        g = Group(len(self.groups), shape, reduce)
        self.groups.append(g)
        return g

    def _place(self, op):
        name = op.opname
        cands = []
        for v in op.operands:
            g = self.group_of.get(v)
            if g is not None and g not in cands:
                cands.append(g)
        if op.name == "prim.constant" or (name not in REMAPS and not fusible(op)):
            return None
        if name not in REDUCE and name not in REMAPS:
            for g in cands:
                if self._can_join(g, op):
                    dims = self._try_pointwise(g, op)
                    if dims is not None:
                        return self._add(g, op, dims)
            g = self._new_group(op.result.type.shape)
            return self._add(g, op, tuple(range(len(g.shape))))
        if name in REMAPS:
            src = op.operands[0]
            g = self.group_of.get(src)
            if g is not None and self._can_join(g, op):
                dims = _remap_dims(name, dict(op.attributes), g.dims[src],
                                   tuple(src.type.shape), tuple(op.result.type.shape))
                if dims is not None:
                    return self._add(g, op, dims)
            return None                 # a library view of an input or of a kernel output
        if name in REDUCE:
            src = op.operands[0]
            axes = frozenset(op.attributes["dim"])
            keep = op.attributes["keepdim"]
            g = self.group_of.get(src)
            full = g is not None and g.dims[src] == tuple(range(len(g.shape)))
            if full and self._can_join(g, op) and axes and (g.reduce == axes or not g.reduce):
                if not g.reduce and not all(d == tuple(range(len(g.shape))) or d is None
                                            for d in g.dims.values()):
                    g = None
                if g is not None:
                    g.reduce = axes
                    return self._add(g, op, reduction_dims(len(g.shape), axes, keep))
            g = self._new_group(src.type.shape, axes)
            return self._add(g, op, reduction_dims(len(g.shape), axes, keep))
        return None

    def run(self):
        for op in self.fn.ops:
            if _inlined_constant(op):
                continue
            self._place(op)
        return [g for g in self.groups if g.ops]


def _input_map(g, v):
    """Dims map of the kernel input ``v``: from the first op of ``g`` that reads it."""
    for op in g.ops:
        if v in op.operands:
            if op.opname in REDUCE:
                return tuple(range(len(g.shape)))
            r = op.results[0]
            return _broadcast_dims(g.dims[r], tuple(r.type.shape), tuple(v.type.shape))
    raise AssertionError("not an input of the group")


def _inlined_constant(op):
    """Splat constants are copied into each kernel that reads them, as literals."""
    return op is not None and op.name == "prim.constant" and fusible(op)


def _externals(g, group_of):
    ext = []
    for op in g.ops:
        for v in op.operands:
            if group_of.get(v) is g or _inlined_constant(v.defining_op):
                continue
            if v not in ext:
                ext.append(v)
    return ext


def _outside_users(g, group_of):
    """Ops outside group ``g`` (func.return included) that read its values, by group (None: not a kernel)."""
    members = set(map(id, g.ops))
    users = []
    for op in g.ops:
        for r in op.results:
            for u in r.users:
                if id(u) not in members:
                    users.append((u, group_of.get(u.results[0]) if u.results else None))
    return users


def _axis_map(g, h, group_of):
    """How the domain axes of pointwise group ``g`` map onto ``h``'s, read off ``h``'s uses
    of ``g``'s full-domain values; None if some use does not fit."""
    m = None
    for op in h.ops:
        for v in op.operands:
            if group_of.get(v) is not g:
                continue
            if tuple(v.type.shape) != g.shape or g.dims[v] != tuple(range(len(g.shape))) \
                    or op.opname in REMAPS or op.opname in REDUCE:
                return None
            here = _broadcast_dims(h.dims[op.results[0]], tuple(op.results[0].type.shape), g.shape)
            if any(a is None and n != 1 for a, n in zip(here, g.shape)) or (m is not None and here != m):
                return None
            m = here
    return m


def _merge_groups(fuser, fn, stats):
    """Vertical: a pointwise group read only by one other kernel (and perhaps returned by
    the graph) moves into it, unless the group is smaller than that kernel's domain and
    returns the new data of a mutated input (``fn.reinplace``, see :mod:`minaot.reinplace`):
    a kernel over a larger domain would store that value by a broadcast store, which
    cannot overwrite the input in place (other threads still read the old value), so the
    runtime would copy it back after the call; in a kernel of its own it is written in
    place (fused Adam's 0-d step counters, one per parameter).
    Horizontal: two independent kernels over the same domain that read a common input
    become one (the input is read once), and so do any two independent one-element
    kernels (a launch saved, nothing to lose)."""
    groups, group_of = fuser.groups, fuser.group_of
    pos = {id(op): k for k, op in enumerate(fn.ops)}
    results = list(fn.results)
    mutations = {results[k] for k in (getattr(fn, "reinplace", None) or {})}

    def absorb(g, h, axis_map, stat):
        """Move g's ops into h (program order kept); g's domain axis a is h's axis_map[a]."""
        for op in g.ops:
            for r in op.results:
                h.dims[r] = tuple(axis_map[a] if a is not None else None for a in g.dims[r])
                group_of[r] = h
        h.ops = sorted(h.ops + g.ops, key=lambda o: pos[id(o)])
        g.ops = []
        stats[stat] = stats.get(stat, 0) + 1
    merged = True
    while merged:
        merged = False
        live = [g for g in groups if g.ops]

        def reads(h, g):            # does group h depend on group g?
            return any(group_of.get(v) is not h and depends_on(v, g, group_of)
                       for op in h.ops for v in op.operands)
        for g in live:
            # the graph returning a value of g does not stop g from moving: the kernel it
            # joins stores that value (fused Adam: the new moment is returned, and read by
            # the parameter update); a library call reading it does
            users = [(u, h) for u, h in _outside_users(g, group_of) if u.name != "func.return"]
            targets = {id(h) for _, h in users}
            if g.reduce or len(targets) != 1 or users[0][1] is None:
                continue
            if any(op.opname in REMAPS or op.opname in REDUCE for op in g.ops):
                continue
            h = users[0][1]
            if _numel(g.shape) < _numel(h.shape) and any(r in mutations for op in g.ops
                                                         for r in op.results):
                continue
            m = _axis_map(g, h, group_of)
            if m is None or len(g.ops) + len(h.ops) > fuser.max_ops:
                continue
            absorb(g, h, m, "fuse.merged_vertical")
            merged = True
            break
        if merged:
            continue
        for i, g in enumerate(live):
            ext_g = set(_externals(g, group_of))
            for h in live[i + 1:]:
                if (g.shape, g.reduce) != (h.shape, h.reduce) \
                        or not (ext_g & set(_externals(h, group_of)) or _numel(g.shape) == 1) \
                        or len(g.ops) + len(h.ops) > fuser.max_ops or reads(h, g) or reads(g, h):
                    continue
                absorb(g, h, tuple(range(len(g.shape))), "fuse.merged_horizontal")
                merged = True
                break
            if merged:
                break


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _views_leave_kernels(g, group_of):
    """A view computed in a kernel but read outside it is redone outside, as a library view
    of the kernel's output of its source: the kernel stores the smaller tensor, and an
    expand outside is a free stride-0 view."""
    members = set(map(id, g.ops))
    memo = {}

    def outside(v):
        op = v.defining_op
        if group_of.get(v) is not g or op.opname not in REMAPS:
            return v
        if v not in memo:
            src = outside(op.operands[0])
            clone = op.clone({op.operands[0]: src})
            g.ops[-1].parent.insert_after(clone, g.ops[-1])
            memo[v] = clone.results[0]
        return memo[v]

    for op in list(g.ops):
        if op.opname not in REMAPS:
            continue
        r = op.results[0]
        for u in list(r.users):
            if id(u) not in members:
                new = outside(r)
                for k, v in enumerate(u.operands):
                    if v is r:
                        u.set_operand(k, new)


def _in_memory_elements(v):
    """Elements read to load ``v``, if it is in memory before any kernel runs (a graph
    input, a library call's result, a zero-copy view of either: a broadcast reads only
    its source); None if a kernel would have to compute it."""
    while not v.is_block_arg:
        op = v.owner
        if op.name == "prim.constant":
            return 1 if _inlined_constant(op) else v.type.numel
        if op.dialect == "prim" and (op.opname in REMAPS or op.opname in ("slice", "select")):
            v = op.operands[0]
            continue
        if op.dialect == "prim" and (fusible(op) or op.opname in REDUCE):
            return None
        break
    return v.type.numel


def _cheap(op) -> bool:
    """A pointwise prim op worth computing again in a kernel that reads its result: its
    operands are all in memory (:func:`_in_memory_elements`) and at most one has more
    than an eighth of the result's elements, so reading them again costs about what
    reading the result would."""
    if op is None or op.dialect != "prim" or len(op.results) != 1:
        return False
    if op.opname in REDUCE or op.opname in REMAPS or op.opname == "constant" or not fusible(op):
        return False
    sizes = [_in_memory_elements(v) for v in op.operands]
    return None not in sizes and sum(8 * n > op.result.type.numel for n in sizes) <= 1


def recompute_cheap_inputs(fuser, fn: Function, stats) -> None:
    """Compute again, in each kernel that reads it, a value another kernel computes by one
    cheap op (:func:`_cheap`), instead of reading it from memory; the kernel that made
    it writes it only if something else still reads it (see the module docstring)."""
    for g in [g for g in fuser.groups if g.ops]:
        for v in _externals(g, fuser.group_of):
            h = fuser.group_of.get(v)
            if h is None or h is g or not _cheap(v.owner):
                continue
            dims = _input_map(g, v)
            readers = [op for op in g.ops if v in op.operands]
            copy = v.owner.clone({})
            readers[0].parent.insert_before(copy, readers[0])
            for op in readers:
                for k, x in enumerate(op.operands):
                    if x is v:
                        op.set_operand(k, copy.result)
            g.ops.insert(0, copy)
            g.dims[copy.result] = dims
            fuser.group_of[copy.result] = g
            stats["fuse.recomputed"] = stats.get("fuse.recomputed", 0) + 1


def fuse(fn: Function, stats=None, max_ops=64) -> Function:
    """Rewrite ``fn`` in place: each group of prim ops becomes one ``kernel.fused``."""
    stats = {} if stats is None else stats
    fuser = _Fuser(fn, max_ops)
    fuser.run()
    _merge_groups(fuser, fn, stats)
    recompute_cheap_inputs(fuser, fn, stats)
    groups = [g for g in fuser.groups if g.ops]
    for g in groups:
        _views_leave_kernels(g, fuser.group_of)
    returned = set(fn.results)
    for g in groups:
        members = set(id(o) for o in g.ops)
        outputs = []
        for op in g.ops:
            for r in op.results:
                if r in returned or any(id(u) not in members for u in r.users):
                    outputs.append(r)
        if not outputs:         # every reader computes the values itself now
            for op in reversed(g.ops):
                op.erase(force=True)
            continue
        ext = _externals(g, fuser.group_of)
        block = Block([v.type for v in ext])
        mapping = dict(zip(ext, block.args))
        body = Builder.at_end(block)
        for op in g.ops:
            for v in op.operands:
                if v not in mapping and _inlined_constant(v.defining_op):
                    c = v.owner.clone({})
                    block.append(c)
                    mapping[v] = c.result
            clone = op.clone(mapping)
            block.append(clone)
            for a, b in zip(op.results, clone.results):
                mapping[a] = b
        body.create("kernel.yield", [mapping[v] for v in outputs], [])
        last = g.ops[-1]
        kop = Operation("kernel.fused", ext, [v.type for v in outputs],
                        {"domain": tuple(g.shape), "reduce": tuple(sorted(g.reduce)),
                         "in_maps": tuple(_input_map(g, v) for v in ext),
                         "name": f"k{g.id}"}, [Region([block])], loc=last.loc)
        last.parent.insert_after(kop, last)
        for v, new in zip(outputs, kop.results):
            v.replace_all_uses_with(new)
        for op in reversed(g.ops):
            op.erase(force=True)
        stats["fuse.kernels"] = stats.get("fuse.kernels", 0) + 1
        stats["fuse.fused_ops"] = stats.get("fuse.fused_ops", 0) + len(g.ops)
        stats["fuse.stored"] = stats.get("fuse.stored", 0) + len(outputs)
    _topological_order(fn)
    from .dce import DCE
    DCE().run(fn)
    return fn


def _topological_order(fn: Function) -> None:
    """Restore def-before-use order, keeping the original order where it is already right.

    A kernel sits where its last op was; a library call that read one of its
    earlier values now comes before the kernel and moves down after it."""
    ops = fn.ops
    placed = set(fn.args)
    waiting = []                    # ops whose operands are not all placed yet
    order = []

    def ready(op):
        return all(v in placed for v in op.operands)

    for op in ops:
        waiting.append(op)
        progress = True
        while progress:
            progress = False
            for w in list(waiting):
                if ready(w):
                    waiting.remove(w)
                    order.append(w)
                    placed.update(w.results)
                    progress = True
    assert not waiting, "fuse made a cycle"
    ret = fn.return_op
    for op in order:
        op.move_before(ret)


class Fuse(Pass):
    name = "fuse"

    def run(self, fn):
        fuse(fn, self.stats)


register_pass(Fuse)
