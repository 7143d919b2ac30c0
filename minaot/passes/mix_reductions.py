"""mix-reductions: one kernel for a row reduction and a column reduction of the same rows.

The idea.  Layer norm's backward reduces the same two tensors in two directions:
the weight and bias gradients sum ``g * xhat`` and ``g`` over the rows (a column
reduction, ``reduce = [0]``), the input gradient sums ``g * w * xhat`` over each
row (a row reduction, ``reduce = [1]``).  ``fuse`` gives each its own kernel,
since a kernel has one set of reduced axes, so the backward reads ``x`` and ``g``
twice: once walking columns, once walking rows.  On a GPU that second read is
about a third of the backward's time.

Both can be one kernel when the column reduction is split into chunks of rows
(as ``lower-to-loops`` splits every column reduction): a work item takes a chunk
of rows and walks them one after the other, doing for each row what the row
kernel does, and adding the row's elements into the chunk's partial column sums
as they go by; the partial sums of all chunks are combined afterwards, a small
column reduction of its own.  ``x`` and ``g`` are read once.  (Inductor calls
this a *mix-order reduction*.)

This pass finds such pairs among the ``kernel.fused`` ops that ``fuse`` made and
merges each into one op: its region holds both kernels' ops, its results are the
row kernel's then the column kernel's, and a ``columns`` attribute names the
axes the column reductions reduce (``reduce`` keeps the row axes);
``column_chunks`` says how many chunks of rows there are.  A pair merges when:

* both have the same two-dimensional domain, the row kernel reduces axis 1 and
  the column kernel axis 0 (and the column kernel's outputs are all reduced: no
  full-size output streams out of it);
* they read a common input over the whole domain (otherwise nothing is saved);
* neither depends on the other;
* there are at least two chunks of ``rows_per_chunk`` rows (``ROWS_PER_CHUNK``).

Every other column reduction over a two-dimensional domain gets the same chunking
(a ``column_chunks`` attribute alone), so that it too runs as many work items on
the GPU: ``lower-to-loops`` splits a column reduction into at most 16 chunks of
its own, right for a CPU's few cores, and on a GPU 16 chunks of 1024 columns are
16,384 threads, each walking 256 rows one load after the other.  (Measured on the
H100: the train step's GELU backward with its bias gradient, a (4096, 1024)
column reduction that also writes a full-size result, 264 us with 16 chunks.)
Many chunks are combined in two steps (``lower-to-loops``' ``combine_chunks``).

The CUDA backend runs it after ``fuse``; the CPU backend does not (its column
reductions run 16 chunks on a few cores, and reading the rows twice there costs
little next to the arithmetic).
"""

from __future__ import annotations

from ..dialects import kernel as _kernel  # noqa: F401  (registers the dialect)
from ..ir import Block, Builder, Function, Operation, Pass, Region
from ..ir.pass_manager import register_pass
from .fuse import _topological_order
from .lower_to_loops import _chunks, reads_reduction, region_dims
from .prim_to_scalar import REDUCE

#: rows a chunk of a mixed kernel walks in order: 16384 rows make 512 chunks, enough
#: work items for every SM of an H100 twice over; a chunk's partial sums are one row
#: of a scratch buffer, written once
ROWS_PER_CHUNK = 32


def mixed_chunks(rows: int, rows_per_chunk: int = ROWS_PER_CHUNK) -> int:
    """Chunks of a mixed kernel over ``rows`` rows: the most chunks of at least
    ``rows_per_chunk`` rows each that divide the rows evenly (1: do not mix)."""
    return max([c for c in range(1, rows // rows_per_chunk + 1) if rows % c == 0] or [1])


def _full_inputs(k) -> set:
    """The operands ``k`` reads over its whole domain (identity index map)."""
    n = len(k.attributes["domain"])
    return {v for v, m in zip(k.operands, k.attributes["in_maps"])
            if list(m) == list(range(n))}


def _column_kernel(k) -> bool:
    """A column reduction whose outputs are all reduced over the rows (none follows axis 0)
    and whose reductions read no other reduction of the kernel (one pass over the rows)."""
    if tuple(k.attributes["reduce"]) != (0,) or "columns" in k.attributes:
        return False
    dims = region_dims(k)
    block = k.regions[0].block
    if any(0 in dims[v] for v in block.ops[-1].operands):
        return False
    reductions = [o for o in block.ops[:-1] if o.opname in REDUCE]
    return bool(reductions) and not any(reads_reduction(o.operands[0]) for o in reductions)


def _row_kernel(k) -> bool:
    return tuple(k.attributes["reduce"]) == (1,) and "columns" not in k.attributes and any(
        o.opname in REDUCE for o in k.regions[0].block.ops[:-1])


def _downstream(op) -> set:
    """Ids of the ops that read, directly or not, a result of ``op``."""
    seen, stack = set(), [op]
    while stack:
        o = stack.pop()
        for r in o.results:
            for u in r.users:
                if id(u) not in seen:
                    seen.add(id(u))
                    stack.append(u)
    return seen


def merge(row, col, chunks) -> Operation:
    """One ``kernel.fused`` doing the work of the row kernel ``row`` and the column kernel
    ``col`` (results: ``row``'s, then ``col``'s), inserted where ``row`` is."""
    ins, maps = [], []
    for k in (row, col):
        for v, m in zip(k.operands, k.attributes["in_maps"]):
            if v not in ins:
                ins.append(v)
                maps.append(tuple(m))
    block = Block([v.type for v in ins])
    outs = []
    for k in (row, col):
        src = k.regions[0].block
        mapping = {a: block.args[ins.index(v)] for a, v in zip(src.args, k.operands)}
        for op in src.ops[:-1]:
            clone = op.clone(mapping)
            block.append(clone)
            for a, b in zip(op.results, clone.results):
                mapping[a] = b
        outs += [mapping[v] for v in src.ops[-1].operands]
    Builder.at_end(block).create("kernel.yield", outs, [])
    attrs = {"domain": tuple(row.attributes["domain"]), "reduce": (1,), "columns": (0,),
             "column_chunks": chunks, "in_maps": tuple(maps), "name": row.attributes["name"]}
    kop = Operation("kernel.fused", ins, [v.type for v in outs], attrs, [Region([block])],
                    loc=row.loc)
    row.parent.insert_after(kop, row)
    for old, new in zip(list(row.results) + list(col.results), kop.results):
        old.replace_all_uses_with(new)
    row.erase(force=True)
    col.erase(force=True)
    return kop


def mix_reductions(fn: Function, stats=None, rows_per_chunk: int = ROWS_PER_CHUNK) -> Function:
    """Merge each row kernel with a column kernel over the same rows (see the module
    docstring); rewrites ``fn`` in place."""
    stats = {} if stats is None else stats
    merged = True
    while merged:
        merged = False
        kernels = [op for op in fn.ops if op.name == "kernel.fused"]
        for row in [k for k in kernels if _row_kernel(k)]:
            domain = tuple(row.attributes["domain"])
            chunks = mixed_chunks(domain[0], rows_per_chunk) if len(domain) == 2 else 1
            if chunks < 2:
                continue
            for col in [k for k in kernels if _column_kernel(k)]:
                if (tuple(col.attributes["domain"]) != domain
                        or not _full_inputs(row) & _full_inputs(col)
                        or id(col) in _downstream(row) or id(row) in _downstream(col)):
                    continue
                merge(row, col, chunks)
                stats["mix-reductions.merged"] = stats.get("mix-reductions.merged", 0) + 1
                merged = True
                break
            if merged:
                break
    for k in [op for op in fn.ops if op.name == "kernel.fused"]:
        domain = tuple(k.attributes["domain"])
        if (len(domain) == 2 and tuple(k.attributes["reduce"]) == (0,)
                and "columns" not in k.attributes and "column_chunks" not in k.attributes):
            chunks = mixed_chunks(domain[0], rows_per_chunk)
            if chunks > _chunks(domain[0]):     # more than lower-to-loops makes on its own
                k.attributes["column_chunks"] = chunks
                stats["mix-reductions.chunked"] = stats.get("mix-reductions.chunked", 0) + 1
    _topological_order(fn)
    return fn


class MixReductions(Pass):
    name = "mix-reductions"

    def run(self, fn):
        mix_reductions(fn, self.stats)


register_pass(MixReductions)
