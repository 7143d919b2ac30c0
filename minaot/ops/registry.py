"""The op registry: each op is one record, read by every stage.

An :class:`OpDef` says everything minaot knows about an op:

* ``name`` and ``kind``: ``pointwise``, ``reduction``, ``view`` (the result
  shares storage with input 0), ``inplace`` (writes into input 0; ``pure`` names
  its out-of-place twin), ``random``, ``creation`` or ``other``;
* ``meta(*inputs, **attrs)``: the shape-and-dtype rule.  It receives anything
  with ``.shape`` and ``.dtype`` (real tensors, fake tensors, IR types through
  :class:`Meta`) and returns a :class:`Meta` (or a tuple of them); bad shapes
  raise here, the same way in eager mode and while tracing;
* ``impl(*arrays, **attrs)``: the numpy implementation, the reference semantics;
* ``vjp(ctx, *grad_outputs)``: the backward rule, written with minaot's own op
  API so the same rule runs eagerly and records IR in the joint pass;
* ``decomp(*inputs, **attrs)``: optional decomposition into simpler ops;
  a ``composite`` op runs its decomposition eagerly (so autograd flows
  through the parts and it needs no VJP rule) while tracing records it whole;
* ``scalar``: for pointwise ops, the scalar expression codegen emits;
* ``samples(rng)``: sample inputs for the op-database tests.

Eager dispatch (:mod:`minaot.dispatch`), tracing, the interpreter, autograd,
the joint pass and codegen all look ops up here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple


class Meta(NamedTuple):
    """Shape, dtype and device of a tensor that need not exist."""

    shape: tuple
    dtype: Any
    device: str = "cpu"

    @property
    def ndim(self) -> int:
        return len(self.shape)


@dataclass
class SampleInput:
    """One call of an op for the tests: tensor arguments as numpy arrays,
    Python numbers as they are, keyword attributes, and which inputs to
    differentiate (by default every floating-point array)."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    grad: tuple | None = None
    name: str = ""


@dataclass
class OpDef:
    """One op, defined once: every stage reads this record.

    - ``name``, ``kind`` (one of ``KINDS``: pointwise, reduction, view, inplace,
      random, creation, other);
    - ``meta(*metas, **attrs) -> Meta``: the shape/dtype rule, which also raises
      the shape errors (eagerly, while tracing and in the verifier);
    - ``impl(*arrays, **attrs)``: the numpy implementation, the reference semantics;
    - ``vjp(ctx, grad) -> grads``: the VJP rule, written with minaot's ops;
    - ``decomp``: the decomposition into prims, if the op is not a prim;
    - ``scalar``: the per-element expression codegen emits (pointwise ops);
    - ``samples(rng) -> [SampleInput]``: inputs for the op-database tests;
    - ``pure``: an in-place op's out-of-place twin; ``promote``: the dtype
      promotion of a pointwise op; ``composite``: eager mode runs ``decomp``."""

    name: str
    kind: str
    meta: Callable
    impl: Callable
    vjp: Callable | None = None
    decomp: Callable | None = None
    scalar: Any = None
    samples: Callable | None = None
    pure: str | None = None          # in-place ops: the out-of-place twin
    promote: Any = None              # pointwise: "same", "float", "bool"; or None
    num_outputs: int = 1
    composite: bool = False           # eager runs ``decomp`` (autograd flows through its parts)
    public: Callable | None = None    # the minaot.<name> function that calls it
    doc: str = ""

    @property
    def differentiable(self) -> bool:
        return self.vjp is not None

    def __repr__(self) -> str:
        return f"<op {self.name} ({self.kind})>"


OPS: dict[str, OpDef] = {}

KINDS = ("pointwise", "reduction", "view", "inplace", "random", "creation", "other")


def register(op: OpDef) -> OpDef:
    """Add ``op`` to the registry (``OPS``); an unknown kind or a second record of a name raises."""
    if op.kind not in KINDS:
        raise ValueError(f"op {op.name}: unknown kind {op.kind!r}")
    if op.name in OPS:
        raise ValueError(f"op {op.name} registered twice")
    OPS[op.name] = op
    for listener in _ON_REGISTER:
        listener(op)
    return op


#: callbacks run for each op registered from now on (the ``mt`` and ``prim`` dialects add
#: it, so an op a user registers after ``import minaot`` traces and verifies like ours)
_ON_REGISTER: list[Callable] = []


def get_op(name: str) -> OpDef:
    """The record of the op called ``name`` (raises ``NotImplementedError`` if there is none)."""
    try:
        return OPS[name]
    except KeyError:
        raise NotImplementedError(f"unknown op {name!r}: not in minaot's op registry") from None


def all_ops() -> list[OpDef]:
    """Every registered op, sorted by name."""
    return [OPS[k] for k in sorted(OPS)]
