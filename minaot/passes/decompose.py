"""decompose: high-level ops -> prim ops, through a decomposition table.

The table maps an op name to a function written with minaot's own op API (the
``decomp`` field of the op's registry record: ``gelu``, ``softmax``,
``log_softmax``, ``layer_norm``, ``linear``, ``mse_loss``, ``cross_entropy``,
``var``, ``mean``, ``dropout``, ...).  To expand one op, the pass *traces* its
decomposition: fake tensors stand for the op's operands, the function runs, and
the ops it records are inserted in place of the op.  Recorded ops that are
prims get their ``prim.`` name; the others are expanded in turn.  Users add or
override entries with ``decompositions={op: fn}`` (op as a name or as the
public function, e.g. ``minaot.gelu``).  Like an MLIR full conversion, the pass
fails if an op is left that is neither a prim nor in the table.
"""

from __future__ import annotations

from ..dialects import PRIM_OPS
from ..ir import Builder, Function, Pass
from ..ops.registry import OPS, get_op


class DecomposeError(Exception):
    """An op left that is neither a prim nor in the decomposition table, or a
    decomposition that returned the wrong type; names the op."""

    pass


def _op_name(key) -> str:
    if isinstance(key, str):
        return key.split(".")[-1]
    name = getattr(key, "__name__", None)
    if name in OPS:
        return name
    raise KeyError(f"decompositions: {key!r} does not name a registered op")


def default_decompositions() -> dict:
    """Every registry op's own decomposition."""
    return {op.name: op.decomp for op in OPS.values() if op.decomp is not None}


def get_decompositions(ops) -> dict:
    """Table entries for ``ops`` (names or public functions), like PyTorch's helper."""
    table = default_decompositions()
    out = {}
    for key in ops:
        name = _op_name(key)
        if name not in table:
            raise KeyError(f"no decomposition registered for {name!r}")
        out[name] = table[name]
    return out


def _trace_into(builder: Builder, fn, op):
    """Run ``fn`` on fake tensors bound to ``op``'s operands; record before ``op``."""
    import numpy as np

    from .. import dispatch as _dispatch
    from ..dtypes import from_ir
    from ..storage import Storage
    from ..tracing import FakeTensor, Tracer

    class _Here(Tracer):
        def __init__(self):
            self.builder = builder

    fakes = []
    for v in op.operands:
        arr = np.empty(v.type.shape, dtype=from_ir(v.type.dtype).np)
        fakes.append(FakeTensor._make(arr, Storage(arr), v))
    previous = _dispatch._tracer
    _dispatch._tracer = _Here()
    try:
        out = fn(*fakes, **dict(op.attributes))
    finally:
        _dispatch._tracer = previous
    return out


def decompose(fn: Function, decompositions=None, stats=None) -> Function:
    table = default_decompositions()
    user = {_op_name(k): v for k, v in (decompositions or {}).items()}
    table.update(user)
    work = list(fn.ops)
    while work:
        op = work.pop(0)
        if op.dialect not in ("mt", "prim"):
            continue
        name = op.opname
        if name in user or (op.dialect == "mt" and name not in PRIM_OPS):
            if name not in table:
                raise DecomposeError(f"{op.name} is not a prim op and has no decomposition; "
                                     "pass decompositions={...} to add one")
            builder = Builder.before(op, loc=op.loc)
            before = set(map(id, fn.ops))
            out = _trace_into(builder, table[name], op)
            outs = out if isinstance(out, (tuple, list)) else (out,)
            for r, new in zip(op.results, outs):
                if new._value.type != r.type:
                    raise DecomposeError(f"decomposition of {name} returned {new._value.type}, "
                                         f"expected {r.type}")
                r.replace_all_uses_with(new._value)
            op.erase()
            fresh = [o for o in fn.ops if id(o) not in before]
            for o in fresh:
                if o.loc is None:
                    o.loc = op.loc
            work = fresh + work
            if stats is not None:
                stats[f"decompose.{name}"] = stats.get(f"decompose.{name}", 0) + 1
        elif op.dialect == "mt":
            _rename(op, f"prim.{name}")
    return fn


def _rename(op, new_name):
    if get_op(op.opname).kind == "inplace":
        raise DecomposeError(f"{op.name} must be functionalized before decomposition")
    b = Builder.before(op, loc=op.loc)
    new = b.create(new_name, list(op.operands), [r.type for r in op.results],
                   dict(op.attributes), loc=op.loc)
    for a, c in zip(op.results, new.results):
        a.replace_all_uses_with(c)
    op.erase()


class Decompose(Pass):
    name = "decompose"

    def __init__(self, decompositions=None):
        super().__init__()
        self.decompositions = decompositions

    def run(self, fn):
        decompose(fn, self.decompositions, self.stats)
