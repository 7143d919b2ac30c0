"""lower-to-loops: each ``kernel.fused`` becomes a loop function over buffers.

The idea.  A kernel computes tensors over its *domain* S, reducing the axes
R.  Lowered, it is a function ``@k(in buffers..., out buffers...)`` whose
body is a loop nest: a ``scf.parallel`` over the first outer (non-reduced)
axis, ``scf.for`` over the other outer axes, and inside, per element of the
outer axes:

* each reduction is one ``scf.for`` nest over R carrying an accumulator
  (``iter_args``), whose body computes the reduced value element by element;
* values that do not depend on R (*outer* values: a row's max, its sum, the
  normalizer ``rsqrt(var + eps)``) are computed once per outer element and
  stay in registers: they are SSA values, never stored;
* values that depend on R (*inner* values) are recomputed inside each
  inner loop that needs them, straight from the loads, when that is cheap
  (``x - max``);
* outputs are stored at the end: outer outputs once per outer element, inner
  outputs in one last loop over R.  With ``recompute_costly=False`` (the CPU
  backend), a *costly* inner value an output is made of (one that calls
  ``exp``, ``log``, ``tanh`` ...) and that a reduction loop already computes
  is stored into the output's buffer by that loop and read back by the last
  one: softmax's sum loop stores ``exp(x - max)``, the last loop divides it in
  place, and each element costs one ``exp``, not two.

Indexing comes from each value's *dims map* (which domain axis each of its
axes follows, or None for a broadcast axis that reads index 0); it is
recomputed here from the region with the same rules ``fuse`` used, so a
view folded into a kernel costs nothing: a transpose is a permuted index
list.  Scalar ops come from :mod:`prim_to_scalar`, constants are hoisted to
the top of the function.
"""

from __future__ import annotations

from ..dialects import loop as _loop  # noqa: F401  (registers scf and memref)
from ..ir import Block, Builder, Function, IndexType, MemRefType, Operation, Pass, Region, ScalarType
from ..ir.pass_manager import register_pass
from .fuse import REMAPS, _remap_dims, pointwise_dims
from .prim_to_scalar import REDUCE, ScalarBuilder, combine, identity, lower_op


def region_dims(kop) -> dict:
    """Dims map of every value of a kernel.fused region: inputs from ``in_maps``, each op's
    result from its operands' maps (the same rules ``fuse`` applied)."""
    block = kop.regions[0].block
    domain, reduce = tuple(kop.attributes["domain"]), set(kop.attributes["reduce"])
    dims = dict(zip(block.args, kop.attributes["in_maps"]))
    for op in block.ops[:-1]:
        name = op.opname
        r = op.results[0]
        shape = tuple(r.type.shape)
        if name == "constant":          # a splat: the same along every axis
            dims[r] = pointwise_dims(shape, domain, reduce) or (None,) * len(shape)
            continue
        if name in REMAPS:
            src = op.operands[0]
            dims[r] = _remap_dims(name, dict(op.attributes), dims[src], tuple(src.type.shape), shape)
        elif name in REDUCE:
            d, axes = dims[op.operands[0]], set(op.attributes["dim"])
            dims[r] = (tuple(None if i in axes else a for i, a in enumerate(d))
                       if op.attributes["keepdim"] else tuple(a for i, a in enumerate(d) if i not in axes))
        else:
            out = []
            for k, n in enumerate(shape):
                found = None
                for v in op.operands:
                    j = k - (len(shape) - len(v.type.shape))
                    if v in dims and j >= 0 and v.type.shape[j] == n and dims[v][j] is not None:
                        found = dims[v][j]
                        break
                out.append(found)
            if any(a is None and n != 1 for a, n in zip(out, shape)):   # only splats read
                out = list(pointwise_dims(shape, domain, reduce) or out)
            dims[r] = tuple(out)
        if dims[r] is None:
            raise ValueError(f"lower-to-loops: {op.name} does not fit kernel domain "
                             f"{kop.attributes['domain']}")
    return dims


class _Scope:
    """Where scalar code goes: a block, the loop indices in force, the values computed there."""

    def __init__(self, block, idx, parent=None):
        self.block = block
        self.builder = Builder.at_end(block)
        self.idx = idx
        self.env = {}
        self.parent = parent
        self.depth = parent.depth + 1 if parent is not None else 0

    def lookup(self, v):
        s = self
        while s is not None:
            if v in s.env:
                return s.env[v]
            s = s.parent
        return None

    def chain(self):
        """This scope and its ancestors, outermost first."""
        out, s = [], self
        while s is not None:
            out.append(s)
            s = s.parent
        return out[::-1]


#: pointwise ops that are a function call or a polynomial of dozens of instructions per element
COSTLY = {"exp", "log", "tanh", "erf", "sigmoid", "sin", "cos", "pow"}


def reads_reduction(v) -> bool:
    """Is ``v`` (a value of a kernel's region) computed from a reduction of the region?"""
    stack, seen = [v], set()
    while stack:
        u = stack.pop()
        if u in seen or u.is_block_arg:
            continue
        seen.add(u)
        if u.defining_op.opname in REDUCE:
            return True
        stack.extend(u.defining_op.operands)
    return False


def _chunks(n, most=16, least_rows=8):
    """How many row chunks a column reduction over ``n`` rows is split into (a divisor of n)."""
    return max([c for c in range(1, most + 1) if n % c == 0 and n // c >= least_rows] or [1])


class KernelLowering:
    def __init__(self, kop, name=None, recompute_costly=True):
        self.kop = kop
        self.recompute_costly = recompute_costly
        self.block = kop.regions[0].block
        self.domain = tuple(kop.attributes["domain"])
        self.reduce = tuple(kop.attributes["reduce"])
        self.dims = region_dims(kop)
        ins = [MemRefType(a.type.shape, a.type.dtype) for a in self.block.args]
        outs = [MemRefType(r.type.shape, r.type.dtype) for r in kop.results]
        self.fn = Function(name or kop.attributes.get("name", "kernel"), ins + outs, loc=kop.loc)
        for k, a in enumerate(self.fn.args):
            a.name_hint = f"in{k}" if k < len(ins) else f"out{k - len(ins)}"
        self.buf = dict(zip(self.block.args, self.fn.args[:len(ins)]))
        self.out_bufs = self.fn.args[len(ins):]
        self.const_ops = {}
        self.where = {}                 # scalar -> the scope that computes it

    # --- scalars ---------------------------------------------------------
    def const(self, value, type):
        key = (type, repr(value))
        if key not in self.const_ops:
            t = IndexType() if type == "index" else ScalarType(type)
            self.const_ops[key] = Operation("arith.constant", [], [t],
                                            {"value": value, "type": type}, loc=self.kop.loc)
        return self.const_ops[key].result

    def sb(self, scope, loc=None):
        return ScalarBuilder(scope.builder, self.const, loc or self.kop.loc)

    def is_inner(self, v):
        d = self.dims.get(v)
        return d is not None and any(a in self.reduce for a in d if a is not None)

    def indices(self, scope, dims):
        return [scope.idx[d] if d is not None else self.const(0, "index") for d in dims]

    def home(self, v, scope):
        """The outermost scope around ``scope`` whose loops index every axis ``v`` follows:
        loop-invariant code motion by construction."""
        need = {a for a in self.dims.get(v, ()) if a is not None}
        return next(s for s in scope.chain() if need <= s.idx.keys())

    def value(self, v, scope):
        """The scalar of ``v`` at the current element of ``scope`` (emitting what it needs)."""
        got = scope.lookup(v)
        if got is not None:
            return got
        op = v.defining_op
        if v.is_block_arg:
            at = self.home(v, scope)
            res = at.builder.create("memref.load", [self.buf[v]] + self.indices(at, self.dims[v]),
                                    [ScalarType(v.type.dtype)], loc=self.kop.loc).result
        elif op.opname == "constant":
            return self.const(op.attributes["value"], v.type.dtype)
        elif op.opname in REMAPS:
            return self.value(op.operands[0], scope)
        elif op.opname in REDUCE:
            at = self.home(v, scope)
            res = self.reduction(op, at)
        else:
            args = [self.value(a, scope) for a in op.operands]
            at = max([self.home(v, scope)] + [self.where.get(a, self.top) for a in args],
                     key=lambda s: s.depth)
            res = lower_op(self.sb(at, op.loc), op, args)
        at.env[v] = res
        self.where[res] = at
        return res

    # --- loops -----------------------------------------------------------
    def open_loop(self, scope, kind, upper, axis=None, hint=None):
        """Insert ``kind`` (scf.parallel / scf.for) over ``range(upper)`` into ``scope`` now and
        return its body's scope; code hoisted into ``scope`` later goes before the loop."""
        blk = Block([IndexType()])
        blk.args[0].name_hint = hint or f"i{axis}"
        loop = Operation(kind, [], [], {"lower": 0, "upper": upper}, [Region([blk])], loc=self.kop.loc)
        scope.builder.insert(loop)
        scope.builder = Builder(scope.block, loop)
        idx = dict(scope.idx)
        if axis is not None:
            idx[axis] = blk.args[0]
        inner = _Scope(blk, idx, parent=scope)
        self.opened.append(blk)
        return inner

    def open_outer_loops(self, scope, axes):
        """Loops over the parallel axes (extent-1 axes read index 0): the first is scf.parallel."""
        par = next((a for a in axes if self.domain[a] > 1), None)
        for a in axes:
            if self.domain[a] == 1:
                scope.idx[a] = self.const(0, "index")
            else:
                scope = self.open_loop(scope, "scf.parallel" if a == par else "scf.for",
                                       self.domain[a], a)
        return scope

    def loop_nest(self, scope, axes, carried_types=()):
        """Blocks of a nest of scf.for over ``axes`` (outermost first) and the innermost scope;
        the nest is inserted by close_nest once its body is built."""
        blocks = [Block([IndexType(), *carried_types]) for _ in axes]
        s = scope
        for a, b in zip(axes, blocks):
            b.args[0].name_hint = f"i{a}"
            s = _Scope(b, {**s.idx, a: b.args[0]}, parent=s)
        return blocks, s

    def close_nest(self, scope, axes, blocks, inits, last_values, uppers=None):
        """Yield ``last_values`` from the innermost block and build the scf.for ops outward."""
        uppers = uppers or [self.domain[a] for a in axes]
        Builder.at_end(blocks[-1]).create("scf.yield", list(last_values), [])
        for k in range(len(axes) - 1, -1, -1):
            outer_block = blocks[k - 1] if k else None
            carried = list(outer_block.args[1:]) if outer_block is not None else list(inits)
            op = Operation("scf.for", carried, [v.type for v in carried],
                           {"lower": 0, "upper": uppers[k]}, [Region([blocks[k]])], loc=self.kop.loc)
            if outer_block is not None:
                outer_block.append(op)
                Builder.at_end(outer_block).create("scf.yield", list(op.results), [])
            else:
                scope.builder.insert(op)
                return op.results
        return ()

    def reduction(self, op, scope):
        """Lower the reduction ``op`` (``sum``/``prod``/``amax``/``amin`` over the kernel's reduced
        axes) at ``scope``; returns the reduced scalar.

        Build an ``scf.for`` nest over the reduced axes (:meth:`loop_nest`) carrying one
        accumulator of the result's dtype; in the innermost body, the operand's scalar
        at the current element (:meth:`value`, cast to the result's dtype) is combined
        with the carried accumulator (``combine``); :meth:`close_nest` yields it and
        inserts the nest into ``scope``, starting from the reduction's ``identity``
        constant (:meth:`const`)."""
        # BEGIN TASK 8.2: lower a reduction to an scf.for nest carrying an accumulator
        axes = sorted(self.reduce)
        t = op.result.type.dtype
        blocks, inner = self.loop_nest(scope, axes, [ScalarType(t)])
        v = self.value(op.operands[0], inner)
        sb = self.sb(inner, op.loc)
        new = combine(sb, op.opname, blocks[-1].args[1], sb.cast(v, t))
        (res,) = self.close_nest(scope, axes, blocks, [self.const(identity(op.opname, t), t)], [new])
        self.reduction_scopes.append(inner)
        return res
        # END TASK 8.2

    def chunk_row(self, scope, c, rows):
        """The row index ``c * rows + r`` of row ``r`` (``scope``'s loop) of chunk ``c``."""
        b = scope.builder
        first = b.create("arith.muli", [c, self.const(rows, "index")], [IndexType()]).result
        return b.create("arith.addi", [first, scope.block.args[0]], [IndexType()]).result

    def partial_buffers(self, top, reds, shape):
        """A scratch buffer of ``shape`` for each reduction in ``reds``, filled with its
        identity: the partial values of the chunks (``memref.alloc`` at ``top``)."""
        out = {}
        for op in reds:
            t = op.result.type.dtype
            out[op] = top.builder.create("memref.alloc", [], [MemRefType(shape, t)],
                                         {"fill": identity(op.opname, t)}, loc=self.kop.loc).result
        return out

    def combine_partials(self, outer, reds, partial, chunks, axes):
        """In ``outer`` (loops over the domain ``axes``), each reduction's result: its
        ``chunks`` partial values ``partial[op][c, outer indices...]`` combined in order."""
        for op in reds:
            t = op.result.type.dtype
            blocks, inner = self.loop_nest(outer, ["c"], [ScalarType(t)])
            inner.idx.pop("c")
            sb = self.sb(inner, op.loc)
            part = inner.builder.create("memref.load", [partial[op], blocks[0].args[0]]
                                        + [outer.idx[a] for a in axes], [ScalarType(t)]).result
            new = combine(sb, op.opname, blocks[0].args[1], part)
            (res,) = self.close_nest(outer, ["c"], blocks, [self.const(identity(op.opname, t), t)],
                                     [new], uppers=[chunks])
            outer.env[op.results[0]] = res
            self.where[res] = outer

    def accumulate(self, scope, op, buf, at, value):
        """``buf[at] = combine(buf[at], value())`` for the reduction ``op``, at ``scope``
        (``value`` emits its code after the load of ``buf[at]``)."""
        t = op.result.type.dtype
        sb = self.sb(scope, op.loc)
        old = scope.builder.create("memref.load", [buf] + at, [ScalarType(t)]).result
        new = combine(sb, op.opname, old, sb.cast(value(), t))
        scope.builder.create("memref.store", [new, buf] + at, [])

    def store(self, scope, v, buf):
        at = self.home(v, scope)
        val = self.value(v, at)
        at.builder.create("memref.store", [val, buf] + self.indices(at, self.dims[v]), [],
                          loc=self.kop.loc)

    # --- the two schedules -------------------------------------------------
    def rows(self, top, outer_axes, outputs):
        """Parallel over the outer axes; each reduction an inner loop per outer element."""
        self.row_work(self.open_outer_loops(top, outer_axes), outputs)

    def row_work(self, outer, outputs, skip=()):
        """The work of one outer element (a row) in ``outer``: the reductions (but those in
        ``skip``), then the outputs; inner outputs in one last loop over the reduced axes."""
        for op in self.block.ops[:-1]:                 # reductions in program order
            if op.opname in REDUCE and op not in skip:
                self.value(op.results[0], outer)
        for v, buf in outputs:
            if not self.is_inner(v):
                self.store(outer, v, buf)
        inner_outs = [(v, buf) for v, buf in outputs if self.is_inner(v)]
        kept = {buf: None if self.recompute_costly else self.keep_in_output(v, buf)
                for v, buf in inner_outs}
        inner_outs = [(v, buf) for v, buf in inner_outs if kept[buf] is not v]
        if inner_outs:
            axes = sorted(self.reduce)
            blocks, inner = self.loop_nest(outer, axes)
            for v, buf in inner_outs:
                w = kept[buf]
                if w is not None:           # read back what the reduction loop stored
                    idx = self.indices(inner, self.dims[v])
                    res = inner.builder.create("memref.load", [buf] + idx, [ScalarType(w.type.dtype)],
                                               loc=self.kop.loc).result
                    inner.env[w] = res
                    self.where[res] = inner
                self.store(inner, v, buf)
            self.close_nest(outer, axes, blocks, [], [])

    def keep_in_output(self, v, buf):
        """A costly inner value that an output ``v`` is computed from (``exp(x - max)`` for
        softmax's ``exp(x - max) / sum``), if a reduction loop already computes it: that
        loop also stores it into ``v``'s buffer, and the output loop reads it back instead
        of computing it again (one ``exp`` per element, not two).  Returns the value, or
        None.  Only a value indexed like ``v`` and of its dtype fits the buffer."""
        seen, queue = set(), [v]
        while queue:
            w = queue.pop(0)
            if w in seen or w.is_block_arg or w.defining_op.opname in REDUCE or not self.is_inner(w):
                continue
            seen.add(w)
            queue.extend(w.defining_op.operands)
            if (self.dims[w] != self.dims[v] or tuple(w.type.shape) != tuple(v.type.shape)
                    or w.type.dtype != v.type.dtype or not self.costly(w)):
                continue
            for s in self.reduction_scopes:
                if w in s.env:
                    yld = s.block.ops[-1]
                    Builder.before(yld).create("memref.store", [s.env[w], buf]
                                               + self.indices(s, self.dims[v]), [], loc=self.kop.loc)
                    return w
        return None

    def costly(self, v) -> bool:
        """Does computing ``v`` from this kernel's inputs and reductions call a function
        (exp, log, tanh, ...), which costs more than storing and loading one element?"""
        stack, seen = [v], set()
        while stack:
            u = stack.pop()
            if u in seen or u.is_block_arg or u.defining_op.opname in REDUCE:
                continue
            seen.add(u)
            if u.defining_op.opname in COSTLY:
                return True
            stack.extend(u.defining_op.operands)
        return False

    def columns(self, top, outer_axes, outputs):
        """Reductions over leading axes (column sums): reading a column is a strided walk,
        so split the rows into chunks instead.  Each chunk (in parallel) accumulates whole
        rows into its own row of a partial buffer, and stores the full-domain outputs as the
        rows stream by (a GELU backward and its bias gradient: the pointwise body runs
        once); then, per column, the partials are combined and the epilogue runs.  Every
        load is contiguous and the inner loop vectorizes."""
        reds = [op for op in self.block.ops[:-1] if op.opname in REDUCE]
        n0 = self.domain[0]
        # a GPU's chunking when the CUDA backend set one (mix-reductions), else a CPU's
        chunks = self.kop.attributes.get("column_chunks") or _chunks(n0)
        partial = self.partial_buffers(top, reds, (chunks,) + tuple(self.domain[a] for a in outer_axes))
        c_scope = self.open_loop(top, "scf.parallel" if chunks > 1 else "scf.for", chunks, hint="c")
        c = c_scope.block.args[0]
        r_scope = self.open_loop(c_scope, "scf.for", n0 // chunks, hint="r")
        r_scope.idx[0] = self.chunk_row(r_scope, c, n0 // chunks)
        s = r_scope
        for a in [a for a in self.reduce if a != 0] + list(outer_axes):
            s = self.open_loop(s, "scf.for", self.domain[a], a)
        for op in reds:
            self.accumulate(s, op, partial[op], [c] + [s.idx[a] for a in outer_axes],
                            lambda op=op: self.value(op.operands[0], s))
        for v, buf in outputs:          # full-domain outputs: stored as the rows stream by
            if self.is_inner(v):
                self.store(s, v, buf)
        top.builder = Builder.at_end(top.block)
        if outer_axes == [1] and len(self.domain) == 2:     # many chunks: combined in two steps
            self.combine_chunks(top, reds, partial, chunks,
                                [(v, b) for v, b in outputs if not self.is_inner(v)])
            return
        outer = self.open_outer_loops(top, outer_axes)
        self.combine_partials(outer, reds, partial, chunks, outer_axes)
        for v, buf in outputs:
            if not self.is_inner(v):
                self.store(outer, v, buf)

    def mixed(self, top, outputs):
        """A row kernel and a column kernel in one (``columns`` set, see
        :mod:`mix-reductions <minaot.passes.mix_reductions>`): the rows are split into
        ``column_chunks`` chunks, in parallel; a chunk walks its rows in order and, for
        each, first adds the row into its row of each column reduction's partial buffer
        (one loop over the columns: the row's first walk), then does the row kernel's
        work.  Afterwards the chunks' partial sums are combined per column
        (:meth:`combine_chunks`) and the column outputs stored."""
        cols = set(self.kop.attributes["columns"])

        def column(op):
            d = self.dims[op.operands[0]]
            return {d[i] for i in op.attributes["dim"]} == cols
        col_reds = [op for op in self.block.ops[:-1] if op.opname in REDUCE and column(op)]
        from_cols = set()
        for op in self.block.ops[:-1]:
            if op in col_reds or any(v in from_cols for v in op.operands):
                from_cols.update(op.results)
        n0, n1 = self.domain
        chunks = self.kop.attributes["column_chunks"]
        partial = self.partial_buffers(top, col_reds, (chunks, n1))
        c_scope = self.open_loop(top, "scf.parallel", chunks, hint="c")
        c = c_scope.block.args[0]
        r_scope = self.open_loop(c_scope, "scf.for", n0 // chunks, hint="r")
        r_scope.idx[0] = self.chunk_row(r_scope, c, n0 // chunks)
        s = self.open_loop(r_scope, "scf.for", n1, axis=1)
        for op in col_reds:
            self.accumulate(s, op, partial[op], [c, s.idx[1]],
                            lambda op=op: self.value(op.operands[0], s))
        r_scope.builder = Builder.at_end(r_scope.block)     # the row's work after that walk
        self.row_work(r_scope, [(v, b) for v, b in outputs if v not in from_cols], skip=col_reds)
        top.builder = Builder.at_end(top.block)
        self.combine_chunks(top, col_reds, partial, chunks,
                            [(v, b) for v, b in outputs if v in from_cols])

    def combine_chunks(self, top, reds, partial, chunks, outputs):
        """Per column, combine the ``chunks`` partial values of each column reduction in
        ``reds`` (rows of ``partial[op]``) and store the column ``outputs``.  Many chunks
        (64 or more) are themselves a column reduction over rows, chunked again the same
        way (:func:`_chunks`): a loop per column over 512 rows would read one element per
        row and column, far apart."""
        n1 = self.domain[1]
        c2 = _chunks(chunks) if chunks >= 64 else 1
        if c2 > 1:
            rows2 = chunks // c2
            part2 = self.partial_buffers(top, reds, (c2, n1))
            cs = self.open_loop(top, "scf.parallel", c2, hint="c")
            rs = self.open_loop(cs, "scf.for", rows2, hint="r")
            j = self.chunk_row(rs, cs.block.args[0], rows2)
            s = self.open_loop(rs, "scf.for", n1, axis=1)
            for op in reds:
                self.accumulate(s, op, part2[op], [cs.block.args[0], s.idx[1]], lambda op=op: s.builder.create(
                    "memref.load", [partial[op], j, s.idx[1]], [ScalarType(op.result.type.dtype)]).result)
            top.builder = Builder.at_end(top.block)
            partial, chunks = part2, c2
        outer = self.open_outer_loops(top, [1])
        self.combine_partials(outer, reds, partial, chunks, [1])
        for v, buf in outputs:
            self.store(outer, v, buf)

    def run(self) -> Function:
        outer_axes = [a for a in range(len(self.domain)) if a not in self.reduce]
        outputs = list(zip(self.block.ops[-1].operands, self.out_bufs))
        body = Block()
        # an axis of extent 1 reads index 0 everywhere (a view may drop it, a reduction loop
        # over it has one trip): bound at the top, so every value finds a home
        top = _Scope(body, {a: self.const(0, "index") for a, n in enumerate(self.domain) if n == 1})
        self.top, self.opened, self.reduction_scopes = top, [], []
        leading = self.reduce and outer_axes and max(self.reduce) < min(outer_axes)
        # full-domain outputs are stored while the rows stream by: only if they need no
        # reduction of this kernel (softmax over dim 0 does: it takes the row schedule)
        streamable = not any(self.is_inner(v) and reads_reduction(v) for v, _ in outputs)
        # the chunks accumulate every reduction in one pass over the rows: a reduction of
        # a value that needs another reduction of this kernel first (the variance's sum of
        # (x - mean)^2 over dim 0) cannot be, and takes the row schedule too
        one_pass = not any(reads_reduction(op.operands[0]) for op in self.block.ops[:-1]
                           if op.opname in REDUCE)
        if "columns" in self.kop.attributes:
            self.mixed(top, outputs)
        elif leading and streamable and one_pass and self.domain[0] > 1:
            self.columns(top, outer_axes, outputs)
        else:
            self.rows(top, outer_axes, outputs)
        for blk in self.opened:
            Builder.at_end(blk).create("scf.yield", [], [])
        for c in self.const_ops.values():
            self.fn.body.append(c)
        for op in list(body.ops):
            op._detach()
            self.fn.body.append(op)
        self.fn.set_results([])
        from .dce import DCE
        DCE().run(self.fn)              # constants a rule did not use
        return self.fn


def lower_kernel(kop, name=None, recompute_costly=True) -> Function:
    """The loop function of one ``kernel.fused`` op.

    ``recompute_costly=False`` keeps a costly inner value that a reduction loop computes
    in the output's buffer instead of computing it again (``keep_in_output``): the CPU
    backend asks for it; the CUDA code generator does not handle a store inside a
    reduction loop, so the default is to recompute."""
    return KernelLowering(kop, name, recompute_costly).run()


def lower_to_loops(fn: Function, recompute_costly=True) -> list[Function]:
    """Loop functions for every kernel of ``fn`` (the graph itself keeps its kernel ops)."""
    return [lower_kernel(op, recompute_costly=recompute_costly)
            for op in fn.ops if op.name == "kernel.fused"]


class LowerToLoops(Pass):
    """As a pass: attaches ``fn.kernels`` (name -> loop function) to the graph."""
    name = "lower-to-loops"

    def run(self, fn):
        fn.kernels = {k.name: k for k in lower_to_loops(fn)}
        self.stats["kernels"] = self.stats.get("kernels", 0) + len(fn.kernels)


register_pass(LowerToLoops)
