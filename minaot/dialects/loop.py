"""The loop level: ``scf`` (structured control flow) and ``memref`` (buffers).

After ``lower-to-loops`` a kernel is a function over buffers
(``memref<4096x1024xf32>``: the kernel's inputs, then its outputs) whose body
is a loop nest:

* ``scf.parallel {lower, upper}``: a loop whose iterations are independent
  (each writes its own elements); the CPU code generator makes it a
  ``prange``, the CUDA one a grid of threads.  Its region takes the index.
* ``scf.for {lower, upper} (inits...)``: a sequential loop carrying values
  from one iteration to the next (``iter_args``: accumulators of
  reductions).  Its region takes the index and the carried values and ends
  in ``scf.yield`` of their next values; the op's results are the last ones.
* ``memref.load %buf, %i, %j`` and ``memref.store %v, %buf, %i, %j``.
  Indices are ``index`` values; a broadcast axis reads index 0.
* ``memref.alloc {fill}``: a scratch buffer local to the kernel, filled with
  ``fill`` (the per-chunk partial results of a column reduction).

Bounds are attributes because every shape is static here.  The names and
meanings are MLIR's, so the text reads like MLIR's ``scf``/``memref``.
"""

from __future__ import annotations

from ..ir.dialect import Dialect, OpSpec, VerifyError, register_dialect
from ..ir.types import IndexType, MemRefType


def _verify_loop(op, carried):
    block = op.regions[0].block if len(op.regions) == 1 else None
    if block is None:
        raise VerifyError(f"{op.name} needs one region", op)
    if not block.args or not isinstance(block.args[0].type, IndexType):
        raise VerifyError(f"{op.name}: the region's first argument is the index", op)
    if [a.type for a in block.args[1:]] != [v.type for v in carried]:
        raise VerifyError(f"{op.name}: region arguments after the index must match the "
                          "carried values", op)
    if not block.ops or block.ops[-1].name != "scf.yield":
        raise VerifyError(f"{op.name}: the region must end in scf.yield", op)
    if [v.type for v in block.ops[-1].operands] != [v.type for v in carried]:
        raise VerifyError(f"{op.name}: scf.yield must yield the carried values", op)
    lo, hi = op.attributes.get("lower"), op.attributes.get("upper")
    if not (isinstance(lo, int) and isinstance(hi, int) and lo <= hi):
        raise VerifyError(f"{op.name}: bounds must be integers with lower <= upper", op)


def _verify_for(op):
    _verify_loop(op, op.operands)
    if [r.type for r in op.results] != [v.type for v in op.operands]:
        raise VerifyError("scf.for: results must match the carried values", op)


def _verify_parallel(op):
    if op.operands or op.results:
        raise VerifyError("scf.parallel carries nothing: each iteration stores its own elements", op)
    _verify_loop(op, ())


def _verify_access(op, buf, indices, what):
    if not isinstance(buf.type, MemRefType):
        raise VerifyError(f"{op.name} needs a memref, got {buf.type}", op)
    if len(indices) != buf.type.rank:
        raise VerifyError(f"{op.name}: {len(indices)} indices for a rank-{buf.type.rank} memref", op)
    if any(not isinstance(i.type, IndexType) for i in indices):
        raise VerifyError(f"{op.name}: indices must be index values", op)
    if str(what.type) != buf.type.dtype:
        raise VerifyError(f"{op.name}: {what.type} value for a memref of {buf.type.dtype}", op)


def _verify_load(op):
    _verify_access(op, op.operands[0], op.operands[1:], op.result)


def _verify_store(op):
    _verify_access(op, op.operands[1], op.operands[2:], op.operands[0])


SCF = Dialect("scf")
SCF.add_op(OpSpec("scf.for", verify=_verify_for, required_attrs=("lower", "upper"), pure=False))
SCF.add_op(OpSpec("scf.parallel", verify=_verify_parallel, num_results=0,
                  required_attrs=("lower", "upper"), pure=False))
SCF.add_op(OpSpec("scf.yield", num_results=0, pure=False))
MEMREF = Dialect("memref")
MEMREF.add_op(OpSpec("memref.alloc", num_operands=0, num_results=1, required_attrs=("fill",)))
MEMREF.add_op(OpSpec("memref.load", verify=_verify_load, num_operands=(1, None), num_results=1))
MEMREF.add_op(OpSpec("memref.store", verify=_verify_store, num_operands=(2, None), num_results=0,
                     pure=False))
register_dialect(SCF)
register_dialect(MEMREF)
