"""Linear algebra built on ``matmul``: ``dot``, ``mv``, ``outer``, ``addmm``, ``baddbmm``,
``tensordot``, ``kron`` and ``trace``.

Each is a composition of registered ops (``matmul``, ``mul``, ``add``, ``permute``,
``reshape``, ``diagonal``, ``sum``), so autograd, tracing and both backends see only those;
none is an op record of its own.
"""

from __future__ import annotations

import builtins

from .. import dtypes as dt
from .._errors import DTypeError, ShapeError, op_error
from .meta import wrap_dim


def _same_dtype(op, a, b):
    if a.dtype is not b.dtype:
        raise op_error(DTypeError, op, f"expected both inputs to have the same dtype, got "
                       f"{a.dtype.name} and {b.dtype.name}")


def dot(input, other):
    """The dot product of two 1-d tensors of the same size and dtype (a 0-d tensor), as
    ``torch.dot``."""
    from .other import matmul
    if input.ndim != 1 or other.ndim != 1:
        raise op_error(ShapeError, "dot", f"1D tensors expected, but got {input.ndim}D and "
                       f"{other.ndim}D tensors")
    if input.shape != other.shape:
        raise op_error(ShapeError, "dot", "inconsistent tensor size, expected tensor "
                       f"[{input.shape[0]}] and src [{other.shape[0]}] to have the same number "
                       "of elements, but got different sizes")
    _same_dtype("dot", input, other)
    return matmul(input, other)


def mv(input, vec):
    """The product of a matrix ``(n, m)`` and a vector ``(m,)``: a ``(n,)`` tensor, as
    ``torch.mv``."""
    from .other import matmul
    if input.ndim != 2 or vec.ndim != 1:
        raise op_error(ShapeError, "mv", f"vector + matrix @ vector expected, got shapes "
                       f"{tuple(input.shape)} and {tuple(vec.shape)}")
    return matmul(input, vec)


def outer(input, vec2):
    """The outer product of two 1-d tensors: ``out[i, j] = input[i] * vec2[j]`` (dtypes
    promote as in ``mul``), as ``torch.outer``."""
    from .pointwise import mul
    from .views import unsqueeze
    if input.ndim != 1 or vec2.ndim != 1:
        raise op_error(ShapeError, "outer", f"expects 1-d tensors, got shapes "
                       f"{tuple(input.shape)} and {tuple(vec2.shape)}")
    return mul(unsqueeze(input, 1), unsqueeze(vec2, 0))


def _scaled_sum(op, input, product, beta, alpha):
    """``beta * input + alpha * product`` with ``input`` broadcast to ``product``'s shape;
    with ``beta == 0`` ``input`` is ignored (its NaNs do not propagate), as in PyTorch."""
    from .pointwise import add, mul
    from .views import expand
    try:
        input = expand(input, tuple(product.shape))
    except ShapeError:
        raise op_error(ShapeError, op, f"input of shape {tuple(input.shape)} does not "
                       f"broadcast to the product's shape {tuple(product.shape)}") from None
    if alpha != 1:
        product = mul(product, alpha)
    if beta == 0:
        if not input.requires_grad:
            return product
        # PyTorch: the input's values are ignored, but it gets a (zero) gradient
        from .creation import zeros_like
        from .pointwise import where
        return add(product, where(zeros_like(product, dtype=dt.bool_), input, 0.0))
    return add(input if beta == 1 else mul(input, beta), product)


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """``beta * input + alpha * (mat1 @ mat2)`` for matrices ``mat1`` ``(n, m)`` and
    ``mat2`` ``(m, p)``; ``input`` broadcasts to ``(n, p)``, as ``torch.addmm``."""
    from .other import mm
    return _scaled_sum("addmm", input, mm(mat1, mat2), beta, alpha)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """``beta * input + alpha * (batch1 @ batch2)`` for batches of matrices ``(b, n, m)``
    and ``(b, m, p)``; ``input`` broadcasts to ``(b, n, p)``, as ``torch.baddbmm``."""
    from .other import bmm
    return _scaled_sum("baddbmm", input, bmm(batch1, batch2), beta, alpha)


def tensordot(a, b, dims=2):
    """The sum of products of ``a`` and ``b`` over the dims ``dims`` names: an int ``k``
    (the last ``k`` dims of ``a`` with the first ``k`` of ``b``) or a pair of lists
    ``([a dims], [b dims])``.  The result's dims are ``a``'s others, then ``b``'s, as
    ``torch.tensordot``.  One ``matmul`` of the two, permuted and reshaped to matrices."""
    from .other import matmul
    from .views import permute, reshape
    if isinstance(dims, int):
        if dims < 0:
            raise op_error(ValueError, "tensordot", f"expects dims >= 0, but got dims={dims}")
        if dims > builtins.min(a.ndim, b.ndim):
            raise op_error(ShapeError, "tensordot", f"dims {dims} is larger than the number "
                           f"of dims of the inputs ({a.ndim} and {b.ndim})")
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        da, db = dims
        da = [da] if isinstance(da, int) else list(da)
        db = [db] if isinstance(db, int) else list(db)
        if len(da) != len(db):
            raise op_error(ShapeError, "tensordot", "both dimension lists should have same "
                           f"length, got {da} and {db}")
        da = [wrap_dim("tensordot", d, a.ndim) for d in da]
        db = [wrap_dim("tensordot", d, b.ndim) for d in db]
    for i, j in zip(da, db):
        if a.shape[i] != b.shape[j]:
            raise op_error(ShapeError, "tensordot", f"contracted dimensions need to match, but "
                           f"first has size {a.shape[i]} in dim {i} and second has size "
                           f"{b.shape[j]} in dim {j}")
    _same_dtype("tensordot", a, b)
    fa = [d for d in range(a.ndim) if d not in da]
    fb = [d for d in range(b.ndim) if d not in db]
    k = 1
    for d in da:
        k *= a.shape[d]
    sa = [a.shape[d] for d in fa]
    sb = [b.shape[d] for d in fb]
    ma = reshape(permute(a, *(fa + da)), (-1 if k else _prod(sa), k))
    mb = reshape(permute(b, *(db + fb)), (k, _prod(sb)))
    return reshape(matmul(ma, mb), tuple(sa + sb))


def _prod(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def kron(input, other):
    """The Kronecker product: with both padded to the same number of dims by leading 1s,
    ``out[i * m + j] = input[i] * other[j]`` in every dim (``m`` the size of ``other``'s),
    as ``torch.kron``.  A ``mul`` of interleaved views, reshaped."""
    from .pointwise import mul
    from .views import reshape
    n = builtins.max(input.ndim, other.ndim)
    sa = (1,) * (n - input.ndim) + tuple(input.shape)
    sb = (1,) * (n - other.ndim) + tuple(other.shape)
    a = reshape(input, tuple(x for s in sa for x in (s, 1)))
    b = reshape(other, tuple(x for s in sb for x in (1, s)))
    return reshape(mul(a, b), tuple(x * y for x, y in zip(sa, sb)))


def trace(input):
    """The sum of the main diagonal of a 2-d tensor (a 0-d tensor; int64 for integer
    inputs), as ``torch.trace``."""
    from .reductions import sum
    from .views import _diagonal_copy
    if input.ndim != 2:
        raise op_error(ShapeError, "trace", f"expected a matrix, got shape {tuple(input.shape)}")
    if input.dtype is dt.bool_:
        raise op_error(NotImplementedError, "trace", "not implemented for bool tensors")
    return sum(_diagonal_copy(input))
