"""Shape and dtype rules shared by many ops (the ``meta`` of the op records).

A meta rule sees only shapes, dtypes and devices, so the same rule serves eager
calls, fake tensors while tracing and IR verification.  Errors name the op and
the shapes; :func:`~minaot._errors.op_error` adds the user's line.
"""

from __future__ import annotations

from .. import dtypes as dt
from .._errors import ShapeError, op_error
from .registry import Meta


def device_of(*inputs) -> str:
    return str(inputs[0].device) if inputs else "cpu"


def broadcast_shapes(op: str, *shapes) -> tuple:
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        size = 1
        for s in shapes:
            j = i - (ndim - len(s))
            if j < 0:
                continue
            d = s[j]
            if d == 1:
                continue
            if size != 1 and d != size:
                raise op_error(ShapeError, op,
                               "shapes " + " and ".join(str(tuple(x)) for x in shapes) +
                               f" cannot be broadcast together (dimension {i}: {size} vs {d})")
            size = d
        out.append(size)
    return tuple(out)


def wrap_dim(op: str, dim: int, ndim: int) -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise op_error(IndexError, op,
                       f"dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                       f"but got {dim})")
    return dim % n


def wrap_dims(op: str, dim, ndim: int) -> tuple:
    """Normalise ``dim`` (None, int or sequence) to a sorted tuple of non-negative dims.
    An empty sequence means every dim, as ``None`` does (PyTorch: ``x.sum(dim=())`` is
    ``x.sum()``)."""
    if dim is None or (not isinstance(dim, int) and len(dim) == 0):
        return tuple(range(ndim))
    if isinstance(dim, int):
        dim = (dim,)
    dims = sorted({wrap_dim(op, d, ndim) for d in dim})
    if ndim == 0:
        return ()
    return tuple(dims)


def pointwise(op: str, dtype=None):
    """Meta rule of a broadcasting pointwise op.  Promotion already made the
    inputs agree (``where``'s condition aside), so the result takes the last
    input's dtype unless the op fixes it (comparisons give ``bool``)."""
    def meta(*inputs, **attrs):
        shape = broadcast_shapes(op, *[t.shape for t in inputs])
        return Meta(shape, dtype or inputs[-1].dtype, device_of(*inputs))
    return meta


def reduced_shape(shape, dims, keepdim) -> tuple:
    if keepdim:
        return tuple(1 if i in dims else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in dims)


def reduction(op: str, dtype=None, float_only=False):
    def meta(x, *, dim, keepdim, **attrs):
        if float_only and not x.dtype.is_floating_point:
            raise op_error(TypeError, op,
                           f"input dtype must be floating point, got {x.dtype.name}")
        for d in dim:
            if not 0 <= d < max(x.ndim, 1):
                raise op_error(IndexError, op, f"dimension {d} out of range for shape {x.shape}")
        return Meta(reduced_shape(x.shape, dim, keepdim), dtype or x.dtype, device_of(x))
    return meta


def long_index(op: str, index, kind=None):
    """An index tensor as int64, as the index ops take it: ``int64`` and ``int32`` indices
    are accepted (PyTorch's ``gather``, ``scatter``, ``index_add``, ``index_select`` and
    ``embedding`` take both); other dtypes raise ``kind`` (a ``DTypeError`` by default)."""
    if index.dtype is dt.int64:
        return index
    if index.dtype is dt.int32:
        return index.long()
    from .._errors import DTypeError
    raise op_error(kind or DTypeError, op, f"expected an int64 or int32 index, got "
                   f"{index.dtype.name}")

