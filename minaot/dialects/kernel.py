"""The ``kernel`` dialect: fused regions of prim ops.

``kernel.fused`` holds, in its region, a group of prim ops that one generated
kernel computes.  Its operands are the tensors the kernel reads; its results
are the tensors it writes; the region's block arguments stand for the
operands and ``kernel.yield`` names the results.  Attributes: ``domain`` (the
iteration shape S), ``reduce`` (the axes of S reduced inside the kernel;
the other axes are the parallel outer loop) and ``in_maps`` (for each input,
the axis of S each of its axes follows, ``none`` for a broadcast axis: an
index map, as MLIR's linalg has).  A kernel made by ``mix-reductions`` also
has ``columns`` (the axes its column reductions reduce, over chunks of rows)
and ``column_chunks`` (how many chunks); a column reduction that pass did not
merge may have ``column_chunks`` alone (the GPU's chunking of its rows, which
``lower-to-loops`` uses instead of its own).  Ops outside ``kernel.fused``
(matmul, gather, views of kernel inputs ...) stay prim ops: library calls.
"""

from __future__ import annotations

from ..ir.dialect import Dialect, OpSpec, VerifyError, register_dialect


def _verify_fused(op):
    if len(op.regions) != 1:
        raise VerifyError("kernel.fused needs one region", op)
    block = op.regions[0].block
    if len(block.args) != len(op.operands):
        raise VerifyError(f"kernel.fused has {len(op.operands)} operands but its region takes "
                          f"{len(block.args)} arguments", op)
    for a, v in zip(block.args, op.operands):
        if a.type != v.type:
            raise VerifyError(f"kernel.fused region argument {a.type} does not match operand {v.type}", op)
    if not block.ops or block.ops[-1].name != "kernel.yield":
        raise VerifyError("kernel.fused region must end in kernel.yield", op)
    got = [v.type for v in block.ops[-1].operands]
    if got != [r.type for r in op.results]:
        raise VerifyError("kernel.yield types do not match kernel.fused results", op)
    domain = op.attributes.get("domain")
    maps = op.attributes.get("in_maps")
    if maps is not None:
        if len(maps) != len(op.operands):
            raise VerifyError("kernel.fused needs one input map per operand", op)
        for m, v in zip(maps, op.operands):
            if len(m) != len(v.type.shape) or any(
                    d is not None and not (0 <= d < len(domain) and domain[d] == n)
                    for d, n in zip(m, v.type.shape)):
                raise VerifyError(f"kernel.fused input map {m} does not fit {v.type} in domain {domain}", op)
    for ax in op.attributes.get("reduce", ()):
        if not 0 <= ax < len(domain):
            raise VerifyError(f"kernel.fused reduces axis {ax} outside its domain {domain}", op)
    columns = op.attributes.get("columns")
    if columns is not None:
        if set(columns) & set(op.attributes["reduce"]) or not all(0 <= a < len(domain) for a in columns):
            raise VerifyError(f"kernel.fused column axes {columns} must be axes of {domain} "
                              f"that the rows do not reduce", op)
    chunks = op.attributes.get("column_chunks")
    if columns is not None or chunks is not None:
        rows = domain[columns[0]] if columns is not None else domain[0]
        if not isinstance(chunks, int) or chunks < 1 or rows % chunks:
            raise VerifyError(f"kernel.fused column_chunks {chunks} must divide the "
                              f"{rows} rows", op)


KERNEL = Dialect("kernel")
KERNEL.add_op(OpSpec("kernel.fused", verify=_verify_fused, required_attrs=("domain", "reduce")))
KERNEL.add_op(OpSpec("kernel.yield", num_results=0, pure=False))   # a terminator: never dead
register_dialect(KERNEL)
