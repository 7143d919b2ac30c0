"""The ``mt`` and ``prim`` dialects: one IR op per registry op, checked by its meta rule.

Each op's verifier rebuilds the operands' shapes and dtypes from their IR types
(:class:`TypeMeta`), runs the registry's meta rule with the op's attributes and
compares the result with the op's result types, so the IR is checked by the
very rule eager mode uses.

``prim`` holds the registry ops that have no decomposition and do not mutate:
pointwise arithmetic, ``sum``/``prod``/``amax``/``amin``/``argmax``, pure versions of the
view ops (a ``prim.reshape`` is a new tensor), the ``*_scatter`` ops, ``matmul``,
``cat``, ``gather``, constants and random numbers.
"""

from __future__ import annotations

from .. import dtypes as dt
from .._errors import MinaotError
from ..ir.dialect import Dialect, OpSpec, VerifyError, register_dialect
from ..ir.types import TensorType
from ..ops.registry import _ON_REGISTER, all_ops, get_op


class TypeMeta:
    """Shape/dtype/device of an IR tensor type, shaped like a tensor for meta rules."""

    def __init__(self, shape, dtype, device="cpu"):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.device = device

    @property
    def ndim(self):
        return len(self.shape)


def meta_of_type(t) -> TypeMeta:
    """The registry's view of a tensor type: its shape and minaot dtype."""
    if not isinstance(t, TensorType):
        raise VerifyError(f"expected a tensor type, got {t}")
    return TypeMeta(t.shape, dt.from_ir(t.dtype))


def type_of_meta(meta) -> TensorType:
    """The IR ``TensorType`` of an op's meta (shape and dtype)."""
    return TensorType(tuple(meta.shape), meta.dtype.ir)


def _expected_types(opdef, irop):
    metas = [meta_of_type(v.type) for v in irop.operands]
    attrs = dict(irop.attributes)
    if opdef.kind == "inplace":
        pure = get_op(opdef.pure)
        m = pure.meta(*metas, **attrs)
        if pure.kind == "view":
            return [type_of_meta(m)]
        return [irop.operands[0].type]
    m = opdef.meta(*metas, **attrs)
    ms = m if isinstance(m, tuple) and not hasattr(m, "shape") else (m,)
    return [type_of_meta(x) for x in ms]


def _verifier(opdef):
    def verify(irop):
        try:
            expected = _expected_types(opdef, irop)
        except (MinaotError, ValueError, TypeError, IndexError) as e:
            raise VerifyError(f"{irop.name}: {str(e).splitlines()[0]}", irop) from None
        got = [v.type for v in irop.results]
        if got != expected:
            raise VerifyError(
                f"{irop.name}: result types {', '.join(map(str, got))} do not match the op's "
                f"shape rule, which gives {', '.join(map(str, expected))}", irop)
    return verify


def _spec(dialect_name, opdef):
    return OpSpec(f"{dialect_name}.{opdef.name}", verify=_verifier(opdef),
                  num_results=opdef.num_outputs,
                  pure=opdef.kind not in ("inplace", "random"))


def is_prim(opdef) -> bool:
    return opdef.kind != "inplace" and opdef.decomp is None


MT = Dialect("mt")
PRIM = Dialect("prim")
#: the short names of the ``prim`` ops (grows with ops registered later)
PRIM_OPS: set[str] = set()


def _add(opdef):
    """Every registry op is an ``mt`` op; the pure ones without a decomposition are prims."""
    MT.add_op(_spec("mt", opdef))
    if is_prim(opdef):
        PRIM.add_op(_spec("prim", opdef))
        PRIM_OPS.add(opdef.name)


for _op in all_ops():
    _add(_op)
_ON_REGISTER.append(_add)

register_dialect(MT)
register_dialect(PRIM)
