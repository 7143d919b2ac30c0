"""Types of IR values.

Every SSA value in the IR has a type, and types print exactly as MLIR prints
them, so a printed function reads like MLIR text:

    tensor<4x8xf32>   a 4x8 tensor of float32 (a value: no identity, no aliasing)
    tensor<f32>       a 0-d tensor
    memref<4x8xf32>   a 4x8 buffer (used by the loop level, after bufferization)
    f32 f64 i64 i32 i16 i8 ui8 i1
                      scalars (inside kernel payloads and loops): floats, signed
                      integers, MLIR's unsigned ``ui8`` and ``i1`` (bool)
    index             a loop index / array subscript

Types are frozen dataclasses: they are hashable and compare by value, so
`TensorType((4,), "f32") == parse_type("tensor<4xf32>")`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Element types and their size in bytes.
ITEMSIZE = {"f32": 4, "f64": 8, "i64": 8, "i32": 4, "i16": 2, "i8": 1, "ui8": 1, "i1": 1}
DTYPES = tuple(ITEMSIZE)


class Type:
    """Base class of all IR types (used for isinstance checks)."""


def _check_dtype(dtype: str) -> None:
    if dtype not in ITEMSIZE:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")


def _normalize_shape(shape) -> tuple[int, ...]:
    dims = tuple(int(d) for d in shape)
    if any(d < 0 for d in dims):
        raise ValueError(f"negative dimension in shape {dims}")
    return dims


@dataclass(frozen=True)
class ScalarType(Type):
    """A scalar type: ``f32``, ``f64``, ``i64``, ``i32``, ``i16``, ``i8``, ``ui8`` or ``i1``
    (the loop level's values)."""

    dtype: str

    def __post_init__(self):
        _check_dtype(self.dtype)

    def __str__(self):
        return self.dtype


@dataclass(frozen=True)
class IndexType(Type):
    """``index``: a loop induction variable or a subscript."""

    def __str__(self):
        return "index"


class _Shaped:
    """Shape helpers shared by TensorType and MemRefType."""

    shape: tuple[int, ...]
    dtype: str

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def itemsize(self) -> int:
        return ITEMSIZE[self.dtype]

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize

    def _body(self) -> str:
        return "".join(f"{d}x" for d in self.shape) + self.dtype


@dataclass(frozen=True)
class TensorType(_Shaped, Type):
    """``tensor<4x8xf32>``: an immutable value of a static shape and a dtype.

    ``rank``, ``numel``, ``itemsize`` and ``nbytes`` describe it; ``with_shape`` and
    ``with_dtype`` make a related type."""

    shape: tuple[int, ...]
    dtype: str

    def __post_init__(self):
        object.__setattr__(self, "shape", _normalize_shape(self.shape))  # lists -> tuple
        _check_dtype(self.dtype)

    def __str__(self):
        return f"tensor<{self._body()}>"

    def with_shape(self, shape) -> TensorType:
        return TensorType(shape, self.dtype)

    def with_dtype(self, dtype: str) -> TensorType:
        return TensorType(self.shape, dtype)


@dataclass(frozen=True)
class MemRefType(_Shaped, Type):
    """``memref<4x8xf32>``: a buffer (writable memory) of a static shape, at the loop level."""

    shape: tuple[int, ...]
    dtype: str

    def __post_init__(self):
        object.__setattr__(self, "shape", _normalize_shape(self.shape))
        _check_dtype(self.dtype)

    def __str__(self):
        return f"memref<{self._body()}>"


_SHAPED_RE = re.compile(r"(tensor|memref)<((?:\d+x)*)([a-z0-9]+)>")


def parse_type(text: str) -> Type:
    """Parse the printed form of a type: `tensor<4x8xf32>`, `f32`, `index`, ..."""
    text = text.strip()
    if text == "index":
        return IndexType()
    if text in ITEMSIZE:
        return ScalarType(text)
    m = _SHAPED_RE.fullmatch(text)
    if m is None or m.group(3) not in ITEMSIZE:
        raise ValueError(f"not a type: {text!r}")
    shape = tuple(int(d) for d in m.group(2).split("x") if d)
    cls = TensorType if m.group(1) == "tensor" else MemRefType
    return cls(shape, m.group(3))
