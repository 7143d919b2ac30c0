"""The reference interpreter: run any ``mt`` or ``prim`` function with numpy.

Each op runs the numpy implementation from its registry record, so the
interpreter is the oracle every backend is compared with.  Values are numpy
arrays; arguments are the callers' arrays themselves (numpy views of the
tensors' storage), so an ``mt`` function that mutates an input or writes
through a view does exactly what the eager program did.  ``prim`` ops are
pure: their view ops return copies, so no result aliases anything.
"""

from __future__ import annotations

import numpy as np

from .core import Function


def _as_array(x):
    from ..tensor import Tensor
    if isinstance(x, Tensor):
        return x._data
    return np.asarray(x)


def run_op(op, ins):
    """Run one ``mt.*``/``prim.*`` IR op on numpy arrays; returns a list of arrays."""
    from ..dtypes import from_ir
    from ..ops.registry import get_op

    if op.name == "kernel.fused":            # a fused group: run its region's prim ops
        block = op.regions[0].block
        env = dict(zip(block.args, ins))
        for inner in block.ops[:-1]:
            env.update(zip(inner.results, run_op(inner, [env[v] for v in inner.operands])))
        return [env[v] for v in block.ops[-1].operands]
    opdef = get_op(op.opname)
    attrs = dict(op.attributes)
    if opdef.kind == "inplace":
        pure = get_op(opdef.pure)
        if pure.kind == "view":
            return [pure.impl(ins[0], **attrs)]
        new = pure.impl(*ins, **attrs)
        np.copyto(ins[0], new, casting="unsafe")
        return [ins[0]]
    res = opdef.impl(*ins, **attrs)
    results = list(res) if opdef.num_outputs > 1 else [res]
    out = []
    for r, v in zip(results, op.results):
        want = from_ir(v.type.dtype).np
        r = np.asarray(r)
        if opdef.kind == "view" and op.dialect == "mt":
            out.append(r)                       # a real view: aliasing is the point of mt
        else:
            fresh = r.dtype != want or any(np.may_share_memory(r, a) for a in ins)
            out.append(np.array(r, dtype=want) if fresh or not r.flags.writeable else r)
    return out


def interpret(fn: Function, *args, wrap: bool = True):
    """Run ``fn`` on ``args`` (tensors or arrays); returns its results as tensors
    (a single tensor when the function has one result).

    An environment maps each IR value to its numpy array: the arguments first, then,
    op by op in order, the results of :func:`run_op` on the arrays of the op's
    operands.  ``wrap=False`` returns the result arrays as a list."""
    # BEGIN TASK 2.1: run a function op by op on numpy arrays (the reference interpreter)
    from ..tensor import Tensor

    if len(args) != len(fn.args):
        raise TypeError(f"@{fn.name} takes {len(fn.args)} arguments, got {len(args)}")
    env = {v: _as_array(a) for v, a in zip(fn.args, args)}
    for op in fn.ops:
        outs = run_op(op, [env[v] for v in op.operands])
        for v, r in zip(op.results, outs):
            env[v] = r
    results = [env[v] for v in fn.results]
    if not wrap:
        return results
    tensors = [Tensor._wrap(r if r.flags.writeable else r.copy()) for r in results]
    return tensors[0] if len(tensors) == 1 else tuple(tensors)
    # END TASK 2.1
