"""View ops: results share storage with their input (kind ``view``).

Eagerly, each impl returns a numpy *view* of the input array, which the
dispatcher wraps as a tensor on the same storage, remembering the op in the
view's ``_view_chain``.  ``reshape`` is a view: when the input's strides do not
allow one, the public function first makes a contiguous copy (so in the IR a
reshape that copies reads ``clone`` then ``reshape``), and ``view`` raises.

Indexing (``t[0, 1:3, None]``) is a chain of ``select``, ``slice`` and
``unsqueeze``; ``split``/``chunk``/``unbind`` are several slices or selects.
The pure ``*_scatter`` ops are the inverses used by VJPs and by
functionalization: they return a copy of the base with a region replaced.
"""

from __future__ import annotations

import builtins

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import dtypes as dt
from .._errors import DTypeError, ShapeError, op_error
from ..dispatch import dispatch
from .meta import device_of, wrap_dim
from .registry import Meta, OpDef, SampleInput, register


# ---------------------------------------------------------------- shape helpers
def infer_shape(op, shape, numel):
    """``shape`` with one ``-1`` resolved so that it holds ``numel`` elements; a
    ``ShapeError`` naming ``op`` if it cannot."""
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise op_error(ShapeError, op, f"only one dimension can be inferred, got {shape}")
    known = 1
    for s in shape:
        if s != -1:
            if s < 0:
                raise op_error(ShapeError, op, f"invalid shape dimension {s} in {shape}")
            known *= s
    if -1 in shape:
        if known == 0 or numel % known:
            raise op_error(ShapeError, op, f"shape {shape} is invalid for input of size {numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise op_error(ShapeError, op, f"shape {shape} is invalid for input of size {numel}")
    return shape


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def _viewable(x, shape) -> bool:
    try:
        np.reshape(x._data, shape, copy=False)
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------- public functions
def reshape(input, *shape):
    """``input`` with a new shape (one entry may be ``-1``): a view when the strides
    allow it, otherwise a copy, as in PyTorch."""
    shape = infer_shape("reshape", _shape_arg(shape), input.numel())
    if shape == input.shape:
        return dispatch("reshape", input, shape=shape)
    if not _viewable(input, shape):
        input = dispatch("clone", input)            # a C-contiguous copy
    return dispatch("reshape", input, shape=shape)


def view(input, *shape):
    """A view of ``input`` with a new shape (one entry may be ``-1``).

    Raises when the strides do not allow a view (use :func:`reshape`, which copies)."""
    shape = infer_shape("view", _shape_arg(shape), input.numel())
    if not _viewable(input, shape):
        raise op_error(RuntimeError, "view",
                       f"view size {shape} is not compatible with input tensor's size "
                       f"{input.shape} and stride {input.stride()} (at least one dimension "
                       "spans across two contiguous subspaces); use .reshape(...) instead")
    return dispatch("reshape", input, shape=shape)


def view_as(input, other):
    """``input.view(other.shape)``."""
    return view(input, other.shape)


def flatten(input, start_dim=0, end_dim=-1):
    """A view (or copy, like :func:`reshape`) with axes ``start_dim..end_dim`` merged into one."""
    if input.ndim == 0:
        return reshape(input, (1,))
    s = wrap_dim("flatten", start_dim, input.ndim)
    e = wrap_dim("flatten", end_dim, input.ndim)
    shape = input.shape[:s] + (_numel(input.shape[s:e + 1]),) + input.shape[e + 1:]
    return reshape(input, shape)


def transpose(input, dim0, dim1):
    """A view with axes ``dim0`` and ``dim1`` swapped (no copy: the strides swap)."""
    n = input.ndim
    return dispatch("transpose", input, dim0=wrap_dim("transpose", dim0, n),
                    dim1=wrap_dim("transpose", dim1, n))


def t(input):
    """The transpose of a matrix (a 0-d or 1-d tensor is returned as a view of itself)."""
    if input.ndim > 2:
        raise op_error(ShapeError, "t", f"expects a tensor with <= 2 dimensions, got shape {input.shape}")
    if input.ndim < 2:
        return dispatch("transpose", input, dim0=0, dim1=0) if input.ndim == 1 else \
            dispatch("reshape", input, shape=input.shape)
    return dispatch("transpose", input, dim0=0, dim1=1)


def permute(input, *dims):
    """A view with the axes reordered: axis ``i`` of the result is axis ``dims[i]`` of ``input``."""
    dims = _shape_arg(dims)
    n = input.ndim
    perm = tuple(wrap_dim("permute", d, n) for d in dims)
    if sorted(perm) != list(range(n)):
        raise op_error(ShapeError, "permute", f"dims {dims} are not a permutation of {n} dims")
    return dispatch("permute", input, dims=perm)


def movedim(input, source, destination):
    """A view with axes ``source`` (an int or a sequence) moved to positions
    ``destination``, the other axes keeping their order (``torch.movedim``)."""
    n = input.ndim
    src = (source,) if isinstance(source, int) else tuple(source)
    dst = (destination,) if isinstance(destination, int) else tuple(destination)
    if len(src) != len(dst):
        raise op_error(ShapeError, "movedim", f"source {source} and destination {destination} "
                       "must have the same number of dims")
    src = tuple(wrap_dim("movedim", d, n) for d in src)
    dst = tuple(wrap_dim("movedim", d, n) for d in dst)
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise op_error(ShapeError, "movedim", f"repeated dim in source {source} or "
                       f"destination {destination}")
    rest = iter(d for d in range(n) if d not in src)
    placed = dict(zip(dst, src))
    return permute(input, *[placed[i] if i in placed else next(rest) for i in range(n)])


moveaxis = movedim


def expand(input, *sizes):
    """A view that repeats size-1 axes to ``sizes`` (``-1`` keeps an axis) with stride 0.

    No memory is copied; several elements of the result share one memory location,
    so writing into it in place is refused."""
    sizes = _shape_arg(sizes)
    lead = len(sizes) - input.ndim
    if lead < 0:
        raise op_error(ShapeError, "expand",
                       f"the number of sizes provided ({len(sizes)}) must be greater or equal "
                       f"to the number of dimensions in the tensor ({input.ndim})")
    shape = []
    for i, s in enumerate(sizes):
        if i < lead:
            if s < 0:
                raise op_error(ShapeError, "expand", f"-1 is not allowed in a leading, non-existing dimension")
            shape.append(s)
            continue
        cur = input.shape[i - lead]
        if s == -1:
            s = cur
        if cur != 1 and cur != s:
            raise op_error(ShapeError, "expand",
                           f"the expanded size of the tensor ({s}) must match the existing size "
                           f"({cur}) at non-singleton dimension {i}; target sizes {sizes}, "
                           f"tensor shape {input.shape}")
        shape.append(s)
    return dispatch("expand", input, shape=tuple(shape))


def expand_as(input, other):
    """``input.expand(other.shape)``."""
    return expand(input, other.shape)


def broadcast_to(input, shape):
    """``input`` expanded to ``shape`` by numpy's broadcasting rules (a view)."""
    return expand(input, shape)


def unsqueeze(input, dim):
    """A view with a new axis of size 1 at position ``dim``."""
    return dispatch("unsqueeze", input, dim=wrap_dim("unsqueeze", dim, input.ndim + 1))


def squeeze(input, dim=None):
    """A view without size-1 axes: all of them, or only those in ``dim`` (an int or a tuple)."""
    if dim is None:
        dims = tuple(i for i, s in enumerate(input.shape) if s == 1)
    else:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        dims = tuple(sorted({wrap_dim("squeeze", d, input.ndim) for d in dims}))
        dims = tuple(d for d in dims if input.shape[d] == 1)
    return dispatch("squeeze", input, dims=dims)


def narrow(input, dim, start, length):
    """A view of ``length`` elements of axis ``dim``, starting at ``start``."""
    dim = wrap_dim("narrow", dim, input.ndim)
    size = input.shape[dim]
    if not -size <= start <= size:
        raise op_error(IndexError, "narrow", f"start {start} is out of range [{-size}, {size}] "
                       f"for dimension {dim} of shape {tuple(input.shape)}")
    if start < 0:
        start += size
    if length < 0 or start + length > size:
        raise op_error(ShapeError, "narrow", f"start ({start}) + length ({length}) exceeds "
                       f"dimension {dim} of shape {tuple(input.shape)}" if length >= 0 else
                       f"length must be non-negative, got {length}")
    return dispatch("slice", input, dim=dim, start=start, stop=start + length, step=1)


def select(input, dim, index):
    """A view of index ``index`` along axis ``dim``, which is removed (``x[:, 2]`` is
    ``select(x, 1, 2)``)."""
    dim = wrap_dim("select", dim, input.ndim)
    size = input.shape[dim]
    if not -size <= index < size:
        raise op_error(IndexError, "select",
                       f"index {index} is out of bounds for dimension {dim} with size {size}")
    return dispatch("select", input, dim=dim, index=index % size)


def _slice(input, dim, start, stop, step):
    size = input.shape[dim]
    if step is not None and step <= 0:
        raise op_error(ValueError, "slice", f"step must be greater than zero, got {step}")
    start, stop, step = slice(start, stop, step).indices(size)
    stop = builtins.max(stop, start)
    return dispatch("slice", input, dim=dim, start=start, stop=stop, step=step)


def getitem(input, index):
    """``input[index]``.  Basic indexing (ints, slices with positive steps, None and
    Ellipsis) gives a view.  An *advanced* index among them (an integer tensor, list or
    array; or a boolean mask) gives a copy, as in PyTorch: integers pick positions along
    their dim (negative ones count from the end; the index's shape replaces the dim), a mask
    of ``m`` dims keeps the positions where it is true (its ``m`` dims become one).  Several
    advanced indices (``x[rows, cols]``) are broadcast together and pick one element per
    position (:func:`_advanced_getitem`).  The gradient flows through ``gather`` (repeated
    positions accumulate).  A boolean mask needs its values, so it is eager only: while
    tracing it raises (the result's shape would depend on data; use ``where`` or
    ``masked_fill``)."""
    if not isinstance(index, tuple):
        index = (index,)
    advanced = [k for k, i in enumerate(index) if _is_advanced(i)]
    if advanced:
        return _advanced_getitem(input, index, advanced)
    n_real = builtins.sum(1 for i in index if i is not None and i is not Ellipsis)
    if n_real > input.ndim:
        raise op_error(IndexError, "getitem",
                       f"too many indices for tensor of dimension {input.ndim}")
    if Ellipsis in index:
        k = index.index(Ellipsis)
        index = index[:k] + (slice(None),) * (input.ndim - n_real) + index[k + 1:]
    out = input
    dim = 0
    for i in index:
        if i is None:
            out = dispatch("unsqueeze", out, dim=dim)
            dim += 1
        elif isinstance(i, slice):
            if i != slice(None):                 # `:` keeps the dim as it is
                out = _slice(out, dim, i.start, i.stop, i.step)
            dim += 1
        elif isinstance(i, (int, np.integer)):
            out = select(out, dim, int(i))
        else:
            raise op_error(TypeError, "getitem", f"unsupported index {i!r}")
    if out is input:
        out = dispatch("reshape", input, shape=input.shape)   # x[...] is a view of x
    return out


def _is_advanced(i) -> bool:
    from ..tensor import Tensor
    return isinstance(i, (Tensor, list, np.ndarray))


def _is_mask(i) -> bool:
    """Is the advanced index ``i`` (a tensor, list or array) boolean (or a uint8 tensor,
    which PyTorch still takes as a mask)?  Asked without making a tensor of it (while
    tracing that would add a constant to the graph)."""
    from ..tensor import Tensor
    if isinstance(i, Tensor):
        return i.dtype is dt.bool_ or i.dtype is dt.uint8
    return np.asarray(i).dtype == np.bool_


def _as_index(i, device):
    """An advanced index as a tensor: lists and arrays become int64 (or bool) tensors.  As
    in PyTorch an index tensor is int64, int32 or bool, or uint8, taken as a mask (with
    PyTorch's deprecation warning); int16, int8 and floats raise ``IndexError``."""
    from ..tensor import Tensor
    if isinstance(i, Tensor):
        if i.dtype is dt.uint8:
            import warnings
            warnings.warn("indexing with dtype minaot.uint8 is now deprecated, please use a "
                          "dtype minaot.bool instead", UserWarning, stacklevel=4)
            return i.bool()
        if i.dtype not in (dt.int64, dt.int32, dt.bool_):
            raise op_error(IndexError, "getitem", "tensors used as indices must be long, int, "
                           f"byte or bool tensors, got {i.dtype.name}")
        return i
    from .creation import tensor
    a = np.asarray(i)
    if a.dtype != np.bool_:
        if a.size == 0:
            a = a.astype(np.int64)
        elif not np.issubdtype(a.dtype, np.integer):
            raise op_error(IndexError, "getitem", "tensors used as indices must be long, int or "
                           f"bool tensors (got a list of {a.dtype})")
        a = a.astype(np.int64)
    return tensor(a, device=device)        # while tracing: a constant of the graph


def _split_advanced(input, index, advanced):
    """``(basic, k, idx, d)``: the subscript with ``:`` where the advanced index ``idx`` (at
    position ``k``) stands (one per mask dim), and the dim of the basic part's result that
    the advanced index applies to."""
    k = advanced[0]
    idx = _as_index(index[k], input.device)
    width = idx.ndim if idx.dtype is dt.bool_ else 1
    basic = index[:k] + (slice(None),) * width + index[k + 1:]
    n_real = builtins.sum(1 for i in basic if i is not None and i is not Ellipsis)
    d = 0
    for i in index[:k]:
        if i is Ellipsis:
            d += input.ndim - n_real
        elif i is None or isinstance(i, slice):
            d += 1
    return basic, k, idx, d


def _check_mask(op, mask, k, base, d):
    """A boolean mask (subscript position ``k``) must have the shape of ``base``'s dims from
    ``d`` on that it covers, as PyTorch checks."""
    covered = tuple(base.shape[d:d + mask.ndim])
    if tuple(mask.shape) != covered:
        raise op_error(IndexError, op, f"the shape of the mask {list(mask.shape)} at index {k} "
                       f"does not match the shape of the indexed tensor {list(covered)}")


def _mask_values(mask):
    """A boolean mask index's values (numpy); while tracing it raises: the result's shape
    would depend on them."""
    from .. import dispatch as _dispatch
    if _dispatch._tracer is not None or getattr(mask, "_is_fake", False):
        from ..tracing import _trace_error
        raise _trace_error("boolean mask indexing (x[mask])",
                           "its result's shape depends on the mask's values; use "
                           "minaot.where(mask, x, 0) or x.masked_fill(~mask, 0)")
    return mask._host()


def _advanced_getitem(input, index, advanced):
    """``input[index]`` with advanced indices (positions ``advanced`` of ``index``).

    As in PyTorch: ints and slices apply first (a view, ``base``, with ``:`` where each
    advanced index stands; a mask of ``m`` dims stands for ``m`` of them and becomes one
    integer index over those dims taken as one: the positions of its true elements).  One
    advanced index is the simplest case.  The integer indices are broadcast
    together to a shape ``B`` and pick one element of their dims per position of ``B``.
    If the advanced indices are next to each other in the subscript (ints between them do
    not count), ``B`` replaces their dims where they stand; otherwise ``B`` comes first
    (``x[[0, 1], :, [1, 2]]`` has shape ``(2, x.shape[1])``).  The dims they index are merged
    into one (moved to the front first when apart) and the indices into one position of
    the merged dim, ``(i * n1 + j) * n2 + ...``, taken by a single ``gather``."""
    base, order, at, merged_shape, flat = _plan_advanced(input, index, advanced, "getitem")
    if order is not None:
        base = permute(base, *order)
    return _take(base.reshape(merged_shape), at, flat, op="getitem")


def _plan_advanced(input, index, advanced, op):
    """Where the advanced indices of ``index`` pick: ``(base, order, at, merged_shape,
    flat)``.  ``base`` is the view the basic part of the subscript makes; ``order`` the
    permutation of its dims that brings the indexed dims together (None: they are); after
    it, ``merged_shape`` merges them into dim ``at``, and ``flat`` (shape ``B``, int64) holds
    the position in that dim for every element picked."""
    from .creation import tensor
    from .meta import broadcast_shapes
    from .pointwise import add, mul
    widths = {}
    idxs = {}
    for k in advanced:
        idx = _as_index(index[k], input.device)
        if idx.dtype.is_floating_point:
            raise op_error(IndexError, op, "tensors used as indices must be long, int or "
                           f"bool tensors, got {idx.dtype.name}")
        idxs[k] = idx
        widths[k] = idx.ndim if idx.dtype is dt.bool_ else 1
    used = builtins.sum(widths.get(k, 1) for k, i in enumerate(index)
                        if i is not None and i is not Ellipsis)
    if used > input.ndim:
        raise op_error(IndexError, op, f"too many indices for tensor of dimension {input.ndim}")
    expanded, where_k = [], {}
    for k, i in enumerate(index):        # Ellipsis written out; each advanced index as `:`s
        if i is Ellipsis:
            expanded += [slice(None)] * (input.ndim - used)
        elif k in idxs:
            where_k[k] = len(expanded)
            expanded += [slice(None)] * widths[k]
        else:
            expanded.append(i)
    if input.ndim - used and not any(i is Ellipsis for i in index):
        expanded += [slice(None)] * (input.ndim - used)
    base = getitem(input, tuple(expanded))
    dim_of, d = [], 0                    # the dim of `base` that each entry of `expanded` becomes
    for i in expanded:
        dim_of.append(d)
        if i is None or isinstance(i, slice):
            d += 1
    # one integer index per advanced index, in subscript order: a mask of `m` dims gives the
    # positions of its true elements in those dims taken as one (np.flatnonzero)
    dims, ints, shown = [], [], []
    for k in advanced:
        first, idx = dim_of[where_k[k]], idxs[k]
        if idx.dtype is dt.bool_:
            _check_mask(op, idx, k, base, first)
            positions = np.flatnonzero(_mask_values(idx)).astype(np.int64)
            ints.append(tensor(positions, device=base.device))
        else:
            ints.append(_in_range(idx.long(), base.shape[first], first, op))
        dims += range(first, first + widths[k])
        shown += [list(ints[-1].shape)] * widths[k]     # as PyTorch: one per dim of a mask
    try:
        shape = broadcast_shapes(op, *(tuple(i.shape) for i in ints))
    except ShapeError:
        raise op_error(IndexError, op, "shape mismatch: indexing tensors could not be "
                       "broadcast together with shapes "
                       f"{', '.join(str(s) for s in shown)}") from None
    # next to each other: no slice, None or Ellipsis between the first and the last
    span = expanded[where_k[advanced[0]]:where_k[advanced[-1]] + widths[advanced[-1]]]
    together = all(not isinstance(i, slice) and i is not None for j, i in enumerate(span)
                   if not any(where_k[k] <= where_k[advanced[0]] + j < where_k[k] + widths[k]
                              for k in advanced))
    order = None
    shape_p = tuple(base.shape)
    at = dim_of[where_k[advanced[0]]]
    if not together:
        order = dims + [i for i in range(base.ndim) if i not in dims]
        shape_p = tuple(base.shape[i] for i in order)
        at = 0
    flat, pos = None, at
    for i, k in zip(ints, advanced):
        n = int(np.prod(shape_p[pos:pos + widths[k]]))
        pos += widths[k]
        i = i.expand(shape) if tuple(i.shape) != shape else i
        flat = i if flat is None else add(mul(flat, n), i)
    merged_shape = shape_p[:at] + (int(np.prod(shape_p[at:pos])),) + shape_p[pos:]
    return base, order, at, merged_shape, flat


def _index_put(input, index, advanced, value, accumulate=False):
    """``input[index] = value`` (``accumulate``: ``+=``, repeated positions adding up) for
    advanced indices: the view of the basic part gets a new value, computed functionally and
    copied in with ``copy_`` (so the write reaches ``input`` and its views, and autograd sees
    an in-place op).  The new value: ``value`` broadcast to the shape ``input[index]`` has,
    added into zeros at the picked positions by ``scatter_add`` (and so are their counts);
    where a position was picked it holds the value (the mean of the values written to one
    position several times: PyTorch leaves which of them wins undefined, and with equal
    values, ``x[i] = 0``, every choice agrees), elsewhere the old element."""
    from ..tensor import Tensor
    from .creation import ones_like, tensor, zeros_like
    from .other import scatter_add
    from .pointwise import add, div, floor_divide, gt, where
    base, order, at, merged_shape, flat = _plan_advanced(input, index, advanced, "setitem")
    _check_no_overlap(base, index, advanced, value, accumulate)
    view = permute(base, *order) if order is not None else base
    merged = view.reshape(merged_shape)
    n = flat.numel()
    picked = merged_shape[:at] + tuple(flat.shape) + merged_shape[at + 1:]
    if not isinstance(value, Tensor):
        value = tensor(value, dtype=input.dtype, device=input.device)
    elif value.dtype is not input.dtype:       # PyTorch converts numbers, not tensors
        raise op_error(DTypeError, "setitem", "index_put requires the source and destination "
                       f"dtypes to match, got {input.dtype.name} for the destination and "
                       f"{value.dtype.name} for the source")
    try:
        value = value.expand(picked) if tuple(value.shape) != picked else value
    except ShapeError:
        raise op_error(ShapeError, "setitem", f"shape mismatch: value tensor of shape "
                       f"{list(value.shape)} cannot be broadcast to indexing result of shape "
                       f"{list(picked)}") from None
    rows = merged_shape[:at] + (n,) + merged_shape[at + 1:]
    along = [1] * len(merged_shape)
    along[at] = n
    where_to = flat.reshape(tuple(along)).expand(rows)
    work = merged if input.dtype is not dt.bool_ else merged.long()
    vals = value.reshape(rows).to(work.dtype)
    summed = scatter_add(zeros_like(work), at, where_to, vals)
    if accumulate:
        new = add(work, summed)
    else:
        count = scatter_add(zeros_like(work), at, where_to, ones_like(vals))
        hit = gt(count, 0)
        safe = where(hit, count, ones_like(count))
        mean = div(summed, safe) if work.dtype.is_floating_point else floor_divide(summed, safe)
        new = where(hit, mean, work)
    if input.dtype is dt.bool_:
        new = new.bool()
    new = new.reshape(view.shape)
    if order is not None:
        new = permute(new, *[order.index(i) for i in range(len(order))])
    base.copy_(new)


def _check_no_overlap(base, index, advanced, value, accumulate):
    """PyTorch's ``index_put_`` refuses a value or an index tensor that shares memory with
    the tensor written to (the basic part of the subscript, ``base``), fully or partly
    (:func:`~minaot.dispatch.overlap_status`), eagerly; except where it is a
    ``masked_fill_`` (one boolean mask, one value, no ``accumulate``), which reads the value
    first."""
    from .. import dispatch as _dispatch
    from ..tensor import Tensor
    if _dispatch._tracer is not None:
        return
    one = not isinstance(value, Tensor) or value.numel() == 1
    if not accumulate and one and len(advanced) == 1 and _is_mask(index[advanced[0]]):
        return
    for other in [value] + [index[k] for k in advanced]:
        if isinstance(other, Tensor) and _dispatch.overlap_status(base, other) is not None:
            raise _dispatch.overlap_error("index_put_", base, other)


def index_put_(input, indices, values, accumulate=False):
    """``input[indices] = values`` in place (``accumulate=True``: ``input[indices] +=
    values``, repeated positions adding up), ``indices`` a tuple of index tensors, as
    ``torch.Tensor.index_put_``.  As in PyTorch, ``values`` or an index that shares memory
    with ``input`` (``x[idx] = x[2:4]``) raises: clone it first (one boolean mask with one
    value is ``masked_fill_``, which may)."""
    indices = tuple(indices)
    _index_put(input, indices, list(range(len(indices))), values, accumulate)
    return input


def index_put(input, indices, values, accumulate=False):
    """Out-of-place :func:`index_put_`: a copy of ``input`` with ``values`` put at ``indices``."""
    return index_put_(dispatch("clone", input), indices, values, accumulate)


def _in_range(idx, n, d, op, wrap=True):
    """``idx`` checked against dim ``d`` of size ``n``, with ``wrap`` negative positions
    counted from the end: positions outside ``[-n, n)`` (``[0, n)`` without ``wrap``) raise,
    when the values can be seen (eagerly, on the CPU)."""
    from ..dispatch import eager_host_values
    from .pointwise import add, lt, where
    values = eager_host_values(idx)
    if values is not None:
        if values.size:
            bad = values[(values < (-n if wrap else 0)) | (values >= n)]
            if bad.size:
                raise op_error(IndexError, op, f"index {int(bad[0])} is out of bounds for "
                               f"dimension {d} with size {n}")
        if not (values < 0).any():
            return idx
    return where(lt(idx, 0), add(idx, n), idx) if wrap else idx


def _take(x, d, idx, op="index_select"):
    """``x`` with dim ``d`` replaced by ``idx``'s dims, holding ``x``'s slices at the
    positions ``idx`` names (in ``[0, size)``), by a ``gather`` with ``idx`` broadcast over
    the other dims (no copy of the index)."""
    from .other import gather
    idx = _in_range(idx, x.shape[d], d, op, wrap=False)
    flat = idx.reshape(-1)
    shape = list(x.shape)
    shape[d] = flat.shape[0]
    along = [1] * x.ndim
    along[d] = flat.shape[0]
    out = gather(x, d, flat.reshape(tuple(along)).expand(tuple(shape)))
    return out.reshape(tuple(x.shape[:d]) + tuple(idx.shape) + tuple(x.shape[d + 1:]))


def index_select(input, dim, index):
    """The slices of ``input`` along ``dim`` at the positions of ``index`` (a 1-d or 0-d
    int64 or int32 tensor, positions in ``[0, size)``), in that order: a copy, as
    ``torch.index_select``.  Differentiable in ``input`` (through ``gather``)."""
    dim = wrap_dim("index_select", dim, input.ndim)
    if index.ndim > 1 or index.dtype not in (dt.int64, dt.int32):
        raise op_error(IndexError, "index_select", "index must be a 1-d (or 0-d) int64 or int32 "
                       f"tensor, got shape {tuple(index.shape)} and dtype {index.dtype.name}")
    return _take(input, dim, index.long().reshape(-1))


def setitem(input, index, value):
    """``t[index] = value``: a copy into the view ``t[index]``.  Leading size-1 axes of
    ``value`` beyond the view's rank are dropped first (``x[0] = t.unsqueeze(0)``), as
    PyTorch's indexing does.  With a boolean mask (``t[mask] = 0.5``) and a number or a
    one-element value it is ``masked_fill_`` on the basic part (no data-dependent shape, so
    it compiles too); other advanced subscripts (``t[idx] = v``, ``t[i, j] = v``) write
    through :func:`_index_put`, which refuses a ``v`` that shares memory with ``t``, as
    PyTorch's ``index_put_`` does."""
    from ..tensor import Tensor
    if not isinstance(index, tuple):
        index = (index,)
    advanced = [k for k, i in enumerate(index) if _is_advanced(i)]
    if advanced:
        small = not isinstance(value, Tensor) or value.numel() == 1
        if not (len(advanced) == 1 and _is_mask(index[advanced[0]]) and small):
            _index_put(input, index, advanced, value)
            return
        basic, k, idx, d = _split_advanced(input, index, advanced)
        target = getitem(input, basic)
        _check_mask("setitem", idx, k, target, d)
        mask = idx.reshape((1,) * d + tuple(idx.shape) + (1,) * (target.ndim - d - idx.ndim))
        if isinstance(value, Tensor):
            value = value.reshape(())
        target.masked_fill_(mask, value)
        return
    target = getitem(input, index)
    if isinstance(value, Tensor) and value.ndim > target.ndim:
        extra = value.ndim - target.ndim
        if all(n == 1 for n in value.shape[:extra]):
            value = value.reshape(value.shape[extra:])
    target.copy_(value)


def split(input, split_size_or_sections, dim=0):
    """A tuple of views along ``dim``: pieces of ``split_size_or_sections`` elements
    (the last may be smaller), or of the listed sizes."""
    dim = wrap_dim("split", dim, input.ndim)
    size = input.shape[dim]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        sizes = [builtins.min(step, size - s) for s in range(0, size, step)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != size:
            raise op_error(ShapeError, "split",
                           f"split sizes {sizes} do not sum to dimension {dim} of size {size}")
    out, start = [], 0
    for s in sizes:
        out.append(dispatch("slice", input, dim=dim, start=start, stop=start + s, step=1))
        start += s
    return tuple(out)


def chunk(input, chunks, dim=0):
    """A tuple of ``chunks`` views along ``dim`` of equal size (the last may be smaller)."""
    dim = wrap_dim("chunk", dim, input.ndim)
    size = input.shape[dim]
    step = -(-size // chunks) if size else 1
    return split(input, step, dim)


def unbind(input, dim=0):
    """A tuple of the views ``select(input, dim, i)`` for every index ``i`` of axis ``dim``."""
    dim = wrap_dim("unbind", dim, input.ndim)
    return tuple(select(input, dim, i) for i in range(input.shape[dim]))


def clone(input):
    """A copy of ``input`` in fresh memory (same shape and layout; gradient flows through).

    As PyTorch's ``clone()`` (``memory_format=torch.preserve_format``), the copy keeps
    the memory order of the input: ``x.t().clone()`` is column-major, with ``x.t()``'s
    strides (see :mod:`minaot.layout`).  :func:`contiguous` copies into C order."""
    if input.is_contiguous():
        return dispatch("clone", input)
    return dispatch("clone", input, memory_format="preserve")


def contiguous(input):
    """``input`` itself if it is contiguous (row-major, no gaps), else a contiguous copy."""
    return input if input.is_contiguous() else dispatch("clone", input)


def slice_scatter(input, src, dim=0, start=None, end=None, step=1):
    """A copy of ``input`` with ``input[start:end:step]`` along ``dim`` replaced by ``src``.

    The pure counterpart of writing through a slice: functionalization emits it."""
    dim = wrap_dim("slice_scatter", dim, input.ndim)
    start, end, step = slice(start, end, step).indices(input.shape[dim])
    return dispatch("slice_scatter", input, src, dim=dim, start=start, stop=builtins.max(end, start), step=step)


def select_scatter(input, src, dim, index):
    """A copy of ``input`` with ``select(input, dim, index)`` replaced by ``src``.

    The pure counterpart of writing through ``x[i]``: functionalization emits it."""
    dim = wrap_dim("select_scatter", dim, input.ndim)
    return dispatch("select_scatter", input, src, dim=dim, index=index % input.shape[dim])


# ---------------------------------------------------------------- numpy implementations
def _np_reshape(x, shape):
    # a view whenever the layout allows (eager checks viewability before it promises a
    # view); in a pure prim graph a value's layout is the runtime's business, so copy then
    return np.reshape(x, shape)


def _np_expand(x, shape):
    lead = len(shape) - x.ndim
    strides = (0,) * lead + tuple(0 if (s == 1 and t != 1) else st
                                  for s, t, st in zip(x.shape, shape[lead:], x.strides))
    return as_strided(x, shape=shape, strides=strides, writeable=x.flags.writeable)


def _np_slice(x, dim, start, stop, step):
    return x[(slice(None),) * dim + (slice(start, stop, step), Ellipsis)]


def _np_select(x, dim, index):
    return x[(slice(None),) * dim + (index, Ellipsis)]


def _np_slice_scatter(base, src, dim, start, stop, step):
    out = base.copy()
    _np_slice(out, dim, start, stop, step)[...] = src
    return out


def _np_select_scatter(base, src, dim, index):
    out = base.copy()
    _np_select(out, dim, index)[...] = src
    return out


# ---------------------------------------------------------------- meta rules
def _meta(fn):
    def meta(x, **attrs):
        return Meta(fn(x.shape, **attrs), x.dtype, device_of(x))
    return meta


def _transpose_shape(shape, dim0, dim1):
    s = list(shape)
    if s:
        s[dim0], s[dim1] = s[dim1], s[dim0]
    return tuple(s)


def _slice_shape(shape, dim, start, stop, step):
    s = list(shape)
    s[dim] = len(range(start, stop, step))
    return tuple(s)


def _select_shape(shape, dim, index):
    return tuple(shape[:dim]) + tuple(shape[dim + 1:])


def _unsqueeze_shape(shape, dim):
    return tuple(shape[:dim]) + (1,) + tuple(shape[dim:])


def _squeeze_shape(shape, dims):
    return tuple(s for i, s in enumerate(shape) if i not in dims)


def _reshape_meta(x, *, shape):
    if _numel(shape) != _numel(x.shape):
        raise op_error(ShapeError, "reshape", f"shape {shape} is invalid for input of size {_numel(x.shape)}")
    return Meta(tuple(shape), x.dtype, device_of(x))


def _scatter_meta(name, region):
    def meta(base, src, **attrs):
        want = region(base.shape, **attrs)
        if tuple(src.shape) != want:
            raise op_error(ShapeError, name,
                           f"expected src of shape {want} for base {base.shape}, got {src.shape}")
        return Meta(base.shape, base.dtype, device_of(base))
    return meta


# ---------------------------------------------------------------- VJP rules
def _slice_vjp(ctx, g):
    shape, dtype = ctx.input_metas[0]
    from .creation import zeros
    base = zeros(shape, dtype=dtype, device=g.device)
    a = ctx.attrs
    return (dispatch("slice_scatter", base, g, **a),)


def _select_vjp(ctx, g):
    shape, dtype = ctx.input_metas[0]
    from .creation import zeros
    base = zeros(shape, dtype=dtype, device=g.device)
    return (dispatch("select_scatter", base, g, **ctx.attrs),)


def _permute_vjp(ctx, g):
    perm = ctx.attrs["dims"]
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return (dispatch("permute", g, dims=tuple(inv)),)


def _slice_scatter_vjp(region_op):
    def vjp(ctx, g):
        a = ctx.attrs
        gb = gs = None
        if ctx.needs_input_grad[0]:
            src_shape, src_dtype = ctx.input_metas[1]
            from .creation import zeros
            gb = dispatch(region_op + "_scatter", g, zeros(src_shape, dtype=g.dtype, device=g.device), **a)
        if ctx.needs_input_grad[1]:
            gs = dispatch(region_op, g, **a)
        return gb, gs
    return vjp


def _view_samples(*cases):
    def samples(rng):
        return [SampleInput((rng.standard_normal(shape),), attrs) for shape, attrs in cases]
    return samples


register(OpDef("reshape", "view", _reshape_meta, _np_reshape,
               vjp=lambda ctx, g: (dispatch("reshape", g, shape=ctx.input_metas[0][0]),),
               samples=_view_samples(((3, 4), {"shape": (2, 6)}), ((2, 3, 4), {"shape": (24,)}),
                                     ((), {"shape": (1, 1)}))))
register(OpDef("transpose", "view", _meta(_transpose_shape),
               lambda x, dim0, dim1: np.swapaxes(x, dim0, dim1),
               vjp=lambda ctx, g: (dispatch("transpose", g, **ctx.attrs),),
               samples=_view_samples(((3, 4), {"dim0": 0, "dim1": 1}),
                                     ((2, 3, 4), {"dim0": 0, "dim1": 2}))))
register(OpDef("permute", "view", _meta(lambda shape, dims: tuple(shape[d] for d in dims)),
               lambda x, dims: np.transpose(x, dims), vjp=_permute_vjp,
               samples=_view_samples(((2, 3, 4), {"dims": (2, 0, 1)}))))
register(OpDef("expand", "view", lambda x, *, shape: Meta(tuple(shape), x.dtype, device_of(x)),
               _np_expand,
               vjp=lambda ctx, g: (g,),
               samples=_view_samples(((3, 1), {"shape": (3, 4)}), ((4,), {"shape": (2, 3, 4)}))))
register(OpDef("unsqueeze", "view", _meta(_unsqueeze_shape),
               lambda x, dim: np.expand_dims(x, dim),
               vjp=lambda ctx, g: (dispatch("reshape", g, shape=ctx.input_metas[0][0]),),
               samples=_view_samples(((3, 4), {"dim": 1}), ((3,), {"dim": 0}))))
register(OpDef("squeeze", "view", _meta(_squeeze_shape),
               lambda x, dims: np.squeeze(x, axis=dims) if dims else x[...],
               vjp=lambda ctx, g: (dispatch("reshape", g, shape=ctx.input_metas[0][0]),),
               samples=_view_samples(((3, 1, 4, 1), {"dims": (1, 3)}), ((1,), {"dims": (0,)}))))
register(OpDef("slice", "view", _meta(_slice_shape), _np_slice, vjp=_slice_vjp,
               samples=_view_samples(((5, 4), {"dim": 0, "start": 1, "stop": 4, "step": 2}),
                                     ((3, 6), {"dim": 1, "start": 0, "stop": 3, "step": 1}))))
register(OpDef("select", "view", _meta(_select_shape), _np_select, vjp=_select_vjp,
               samples=_view_samples(((3, 4), {"dim": 0, "index": 1}),
                                     ((3, 4), {"dim": 1, "index": 3}), ((3,), {"dim": 0, "index": 2}))))
register(OpDef("slice_scatter", "other", _scatter_meta("slice_scatter", _slice_shape),
               _np_slice_scatter, vjp=_slice_scatter_vjp("slice"),
               samples=lambda rng: [SampleInput((rng.standard_normal((5, 4)), rng.standard_normal((2, 4))),
                                                {"dim": 0, "start": 1, "stop": 4, "step": 2})]))
register(OpDef("select_scatter", "other", _scatter_meta("select_scatter", _select_shape),
               _np_select_scatter, vjp=_slice_scatter_vjp("select"),
               samples=lambda rng: [SampleInput((rng.standard_normal((3, 4)), rng.standard_normal((4,))),
                                                {"dim": 0, "index": 2})]))
register(OpDef("clone", "other", lambda x, **_: Meta(x.shape, x.dtype, device_of(x)),
               lambda x, memory_format="contiguous": np.array(
                   x, copy=True, order="K" if memory_format == "preserve" else "C"),
               vjp=lambda ctx, g: (g,),
               scalar="{0}", samples=_view_samples(((3, 4), {}))))

# ``detach``: the same memory, cut from autograd.  A view op with no VJP rule:
# it aliases its input (so a write through ``x.detach()`` reaches ``x``, and
# functionalization tracks it like any view) but no gradient flows through it,
# and as a *non-differentiable* view its result is no autograd view of the
# input (no ``_base``, as in PyTorch).  The tracer records it for ``detach()``
# and for the inputs of ops run under ``no_grad``; once the joint graph exists
# it is an identity and is removed (:mod:`minaot.passes.strip_autograd`).
register(OpDef("detach", "view", lambda x: Meta(x.shape, x.dtype, device_of(x)),
               lambda x: x.view(), samples=_view_samples(((3, 4), {}), ((), {})),
               doc="an alias of the input that stops gradient flow"))


# ---------------------------------------------------------------- compositions of the ops above
# PyTorch's other shape functions, written with the view ops above (and ``index_select``,
# ``cat``, ``where``, ``arange``): autograd, tracing and both backends see only those.
def _dims_arg(dims):
    return (dims,) if isinstance(dims, int) else tuple(dims)


def swapaxes(input, axis0, axis1):
    """Another name of :func:`transpose` (a view), as ``torch.swapaxes``."""
    return transpose(input, axis0, axis1)


def swapdims(input, dim0, dim1):
    """Another name of :func:`transpose` (a view), as ``torch.swapdims``."""
    return transpose(input, dim0, dim1)


def reshape_as(input, other):
    """``input.reshape(other.shape)``: a view when the strides allow it, else a copy."""
    return reshape(input, tuple(other.shape))


def numel(input):
    """The number of elements of ``input`` (a Python int), as ``torch.numel``."""
    return input.numel()


def nelement(input):
    """Another name of ``numel`` (``Tensor.nelement``)."""
    return input.numel()


def ndimension(input):
    """The number of dims of ``input`` (``Tensor.ndimension``, ``Tensor.dim``)."""
    return input.ndim


def flip(input, dims):
    """A copy of ``input`` with the order of the elements reversed along ``dims`` (an int
    or a sequence), as ``torch.flip`` (a copy, never a view: minaot's views, like
    PyTorch's, have no negative strides).  Each dim is an ``index_select`` with the
    positions ``n-1, ..., 0``."""
    from .creation import arange
    if input.ndim == 0:                 # PyTorch: dims 0 and -1 name the scalar's one "axis"
        for d in _dims_arg(dims):
            wrap_dim("flip", d, 0)
        return dispatch("clone", input)
    dims = tuple(wrap_dim("flip", d, input.ndim) for d in _dims_arg(dims))
    if len(set(dims)) != len(dims):
        raise op_error(ShapeError, "flip", f"dim {dims} appears multiple times in the list of dims")
    out = input
    for d in dims:
        n = input.shape[d]
        out = index_select(out, d, arange(n - 1, -1, -1, device=input.device))
    return out if dims else dispatch("clone", input)


def fliplr(input):
    """``flip(input, 1)``: the columns in reverse order (``input`` needs 2 dims or more)."""
    if input.ndim < 2:
        raise op_error(ShapeError, "fliplr", f"input must be >= 2-d, got shape {tuple(input.shape)}")
    return flip(input, 1)


def flipud(input):
    """``flip(input, 0)``: the rows in reverse order (``input`` needs 1 dim or more)."""
    if input.ndim < 1:
        raise op_error(ShapeError, "flipud", "input must be >= 1-d, got a 0-d tensor")
    return flip(input, 0)


def roll(input, shifts, dims=None):
    """A copy of ``input`` with its elements shifted by ``shifts`` along ``dims`` (ints or
    sequences of the same length); elements pushed past the end come back at the start.
    Without ``dims`` the tensor is flattened, rolled and given its shape back, as
    ``torch.roll``.  Each dim is a ``cat`` of two slices."""
    from .other import cat
    if dims is None:
        if not isinstance(shifts, int) and len(shifts) != 1:
            raise op_error(ShapeError, "roll", f"shifts {shifts} need dims: only one shift "
                           "is allowed without them")
        shift = shifts if isinstance(shifts, int) else shifts[0]
        return reshape(roll(flatten(input), shift, 0), tuple(input.shape))
    shifts, dims = _dims_arg(shifts), _dims_arg(dims)
    if len(shifts) != len(dims):
        raise op_error(ShapeError, "roll", f"shifts and dimensions must align: shifts "
                       f"{len(shifts)}, dims {len(dims)}")
    out = input
    for s, d in zip(shifts, dims):
        d = wrap_dim("roll", d, input.ndim)
        n = input.shape[d]
        s = s % n if n else 0
        if s:
            out = cat([narrow(out, d, n - s, s), narrow(out, d, 0, n - s)], d)
    return dispatch("clone", input) if out is input else out


def diagonal(input, offset=0, dim1=0, dim2=1):
    """A view of the diagonal of ``input`` in the plane of dims ``dim1`` and ``dim2``
    (``offset`` > 0 above the main diagonal, < 0 below); those dims are removed and the
    diagonal becomes the last dim, as ``torch.diagonal``.

    minaot has no ``as_strided`` op, so the view is built from view ops its passes know:
    the two dims are moved to the end, merged into one (``reshape``, a view when one of
    them lies just outside the other in memory: any contiguous matrix or batch of
    matrices, also transposed), and the diagonal is a ``slice`` of that dim with step
    ``n + 1``.  When the layout allows no such merge (dims 0 and 2 of a contiguous 3-d
    tensor, a column slice ``x[:, :3]``, an expanded tensor) it raises rather than silently
    returning a copy; ``x.contiguous().diagonal()`` (after ``movedim`` bringing the two dims
    together if needed) copies on purpose.  :func:`diag` and :func:`~minaot.trace`, which do
    not promise a view, take any layout."""
    view = _diagonal_view(input, offset, dim1, dim2)
    if view is None:
        raise op_error(RuntimeError, "diagonal", f"dims {dim1} and {dim2} of a tensor of shape "
                       f"{tuple(input.shape)} and stride {input.stride()} cannot be merged "
                       "into one by a view, and minaot has no as_strided op to make this "
                       "view; copy first, e.g. "
                       f"x.movedim(({dim1}, {dim2}), (-2, -1)).contiguous().diagonal({offset}, -2, -1)")
    return view


def _diagonal_dims(input, offset, dim1, dim2, op="diagonal"):
    d1 = wrap_dim(op, dim1, input.ndim)
    d2 = wrap_dim(op, dim2, input.ndim)
    if d1 == d2:
        raise op_error(ShapeError, op, f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    rows, cols = input.shape[d1], input.shape[d2]
    k = offset
    length = builtins.max(0, builtins.min(rows, cols - k) if k >= 0 else builtins.min(rows + k, cols))
    return d1, d2, length


def _diagonal_view(input, offset, dim1, dim2):
    """:func:`diagonal` as a view made of ``permute``, ``reshape`` and ``slice``, or None
    when the layout allows none."""
    d1, d2, length = _diagonal_dims(input, offset, dim1, dim2)
    for a, b, k in ((d1, d2, offset), (d2, d1, -offset)):
        moved = movedim(input, (a, b), (-2, -1))
        rows, cols = moved.shape[-2:]
        merged = tuple(moved.shape[:-2]) + (rows * cols,)
        if _viewable(moved, merged):
            break
    else:
        return None
    flat = dispatch("reshape", moved, shape=merged)
    if length == 0:
        return dispatch("slice", flat, dim=flat.ndim - 1, start=0, stop=0, step=1)
    start = k if k >= 0 else -k * cols
    step = cols + 1
    return dispatch("slice", flat, dim=flat.ndim - 1, start=start,
                    stop=start + (length - 1) * step + 1, step=step)


def _diagonal_copy(input, offset=0, dim1=0, dim2=1):
    """A copy of ``diagonal(input, offset, dim1, dim2)`` for any layout: the view when
    there is one, cloned, else an advanced index (a ``gather``) of the two dims."""
    from .creation import arange
    view = _diagonal_view(input, offset, dim1, dim2)
    if view is not None:
        return dispatch("clone", view)
    d1, d2, length = _diagonal_dims(input, offset, dim1, dim2)
    moved = movedim(input, (d1, d2), (-2, -1))
    rows = arange(builtins.max(0, -offset), builtins.max(0, -offset) + length, device=input.device)
    cols = arange(builtins.max(0, offset), builtins.max(0, offset) + length, device=input.device)
    return getitem(moved, (Ellipsis, rows, cols))


def repeat(input, *sizes):
    """``Tensor.repeat``: a copy of ``input`` repeated ``sizes[i]`` times along dim ``i``
    (``sizes`` may have more entries than ``input`` has dims: new leading dims), as
    ``torch.Tensor.repeat`` (numpy's ``tile``).  An ``expand`` of a view with a size-1 dim
    before each dim, copied once (``clone``) and reshaped."""
    sizes = _shape_arg(sizes)
    if len(sizes) < input.ndim:
        raise op_error(ShapeError, "repeat", "number of dimensions of repeat dims can not be "
                       f"smaller than number of dimensions of tensor ({len(sizes)} < {input.ndim})")
    if any(s < 0 for s in sizes):
        raise op_error(ShapeError, "repeat", f"repeats can not be negative, got {sizes}")
    shape = (1,) * (len(sizes) - input.ndim) + tuple(input.shape)
    spread = tuple(x for s in shape for x in (1, s))
    wide = tuple(x for r, s in zip(sizes, shape) for x in (r, s))
    out = dispatch("clone", expand(reshape(input, spread), wide))
    return dispatch("reshape", out, shape=tuple(r * s for r, s in zip(sizes, shape)))


def tile(input, dims):
    """``input`` repeated ``dims[i]`` times along dim ``i``, as ``torch.tile``: like
    :func:`repeat`, but a ``dims`` shorter than ``input.ndim`` is padded with leading 1s."""
    dims = _dims_arg(dims)
    return repeat(input, (1,) * (input.ndim - len(dims)) + dims)


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """A copy of ``input`` with each element repeated along ``dim`` (``None``: of the
    flattened input), consecutively: ``[a, a, b, b]``, as ``torch.repeat_interleave``.

    ``repeats`` is an int (every element that many times) or an int64 tensor: 0-d
    or of one element (the same for all), or 1-d with one count per element along
    ``dim``; then the result is ``index_select(input, dim, positions)`` and its gradient
    is summed back to each element.  ``output_size`` (the result's size along ``dim``, the
    sum of the counts) is checked against the counts eagerly, as PyTorch does.  A tensor
    of counts that is an input of a traced function (``minaot.compile``) has no values
    there, so it needs ``output_size``, as ``torch.compile`` does, and the positions are
    computed in the graph (``(m, n)`` comparisons for ``m`` outputs of ``n`` counts; an
    ``output_size`` larger than the sum repeats the last element); counts made inside the
    function (``minaot.tensor([2, 1])``) are constants, known while tracing.

    ``repeat_interleave(repeats)`` with a 1-d tensor of counts alone gives those positions:
    ``repeat_interleave(tensor([2, 0, 1]))`` is ``tensor([0, 0, 2])``."""
    from ..tensor import Tensor
    if repeats is None:
        return _repeat_positions(input, output_size)
    if isinstance(repeats, Tensor):
        return _repeat_interleave_tensor(input, repeats, dim, output_size)
    if not isinstance(repeats, (int, np.integer)) or isinstance(repeats, bool):
        raise op_error(TypeError, "repeat_interleave", "repeats must be an int or an integer "
                       f"tensor, got {type(repeats).__name__}")
    repeats = int(repeats)
    if repeats < 0:
        raise op_error(ShapeError, "repeat_interleave", f"repeats can not be negative, got {repeats}")
    if dim is None:
        input, dim = flatten(input), 0
    d = wrap_dim("repeat_interleave", dim, input.ndim)
    shape = tuple(input.shape)
    if output_size is not None and output_size != shape[d] * repeats:
        raise op_error(RuntimeError, "repeat_interleave", f"Invalid output_size, expected "
                       f"{shape[d] * repeats} but got {output_size}")
    wide = shape[:d + 1] + (repeats,) + shape[d + 1:]
    out = dispatch("clone", expand(unsqueeze(input, d + 1), wide))
    return dispatch("reshape", out, shape=shape[:d] + (shape[d] * repeats,) + shape[d + 1:])


def _repeat_interleave_tensor(input, repeats, dim, output_size):
    if repeats.ndim > 1:
        raise op_error(RuntimeError, "repeat_interleave", "repeats must be 0-dim or 1-dim "
                       f"tensor, got shape {tuple(repeats.shape)}")
    if dim is None:
        input, dim = flatten(input), 0
    d = wrap_dim("repeat_interleave", dim, input.ndim)
    n = input.shape[d] if input.ndim else 1
    one = repeats.ndim == 0 or repeats.shape[0] == 1
    if not one and repeats.shape[0] != n:
        raise op_error(RuntimeError, "repeat_interleave", "repeats must have the same size as "
                       f"input along dim, but got repeats.size(0) = {repeats.shape[0]} and "
                       f"input.size({d}) = {n}")
    return index_select(input, d, _repeat_positions(repeats, output_size, n if one else None))


def _check_counts_dtype(repeats):
    if repeats.dtype is not dt.int64:
        raise op_error(NotImplementedError, "repeat_interleave", "repeats must be an int64 "
                       f"tensor, got {repeats.dtype.name} (not implemented for it in PyTorch "
                       "either)")


def _known_counts(repeats):
    """``repeats``' values when they are known without running anything (eagerly, or a
    constant of the traced graph, ``minaot.tensor([1, 2])`` inside the function), else
    None."""
    from .. import dispatch as _dispatch
    if not getattr(repeats, "_is_fake", False):
        return repeats._host().astype(np.int64) if _dispatch._tracer is None else None
    op = repeats._value.defining_op
    if op is None or op.opname != "constant":
        return None
    return np.broadcast_to(np.asarray(op.attributes["value"], np.int64), repeats.shape)


def _repeat_positions(repeats, output_size, spread=None):
    """``repeat_interleave(repeats)``: position ``i`` written ``repeats[i]`` times (int64);
    with ``spread``, the one count of a 0-d or one-element ``repeats`` for each of
    ``spread`` positions.  When the counts are known (:func:`_known_counts`) the positions
    are computed from them, checked as PyTorch checks them (none negative; their sum is
    ``output_size`` when given); otherwise (while tracing) position ``k < output_size`` is
    the number of cumulative sums ``<= k``."""
    from .creation import arange, tensor
    from .pointwise import clamp, ge
    from .reductions import sum as _sum
    from .scan_sort import cumsum
    if spread is None and repeats.ndim != 1:
        raise op_error(RuntimeError, "repeat_interleave", "repeat_interleave only accept 1D "
                       f"vector as repeat, got shape {tuple(repeats.shape)}")
    _check_counts_dtype(repeats)
    counts = _known_counts(repeats)
    if counts is not None:
        if spread is not None:
            counts = np.broadcast_to(counts.reshape(1), (spread,))
        if (counts < 0).any():
            raise op_error(RuntimeError, "repeat_interleave", "repeats can not be negative, got "
                           f"{counts[counts < 0][0]}")
        total = int(counts.sum())
        if output_size is not None and counts.size and output_size != total:
            raise op_error(RuntimeError, "repeat_interleave", "allocated size does not match "
                           f"required size (output_size={output_size}, the repeats sum to {total})")
        positions = np.repeat(np.arange(counts.size), counts)
        return tensor(positions.astype(np.int64), device=repeats.device)
    if output_size is None:
        from ..tracing import _trace_error
        raise _trace_error("repeat_interleave with a tensor of repeats",
                           "the result's size is the sum of the repeats; pass output_size= "
                           "(that sum), as torch.compile needs too, or an int")
    if spread is not None:
        repeats = expand(reshape(repeats, (1,)), (spread,))
    n = repeats.shape[0]
    if n == 0:
        return arange(0, device=repeats.device)
    ends = cumsum(repeats, 0)
    k = arange(output_size, device=repeats.device)
    positions = _sum(ge(unsqueeze(k, 1), unsqueeze(ends, 0)), 1)
    return clamp(positions, max=n - 1)


def broadcast_tensors(*tensors):
    """The tensors expanded to their common broadcast shape (views), as
    ``torch.broadcast_tensors``."""
    from .meta import broadcast_shapes
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    shape = broadcast_shapes("broadcast_tensors", *(tuple(t.shape) for t in tensors))
    return tuple(expand(t, shape) for t in tensors)


def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids from 1-d tensors ``x0, x1, ...`` of sizes ``n0, n1, ...``: the
    ``i``-th result holds ``xi`` along dim ``i`` of shape ``(n0, n1, ...)`` (views made by
    ``expand``).  ``indexing="xy"`` swaps the first two dims (``(n1, n0, ...)``), as numpy's
    default; ``"ij"`` is PyTorch's default."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise op_error(ValueError, "meshgrid", f"indexing must be 'ij' or 'xy', got {indexing!r}")
    for t in tensors:
        if t.ndim > 1:
            raise op_error(ShapeError, "meshgrid", f"expects 0-d or 1-d tensors, got shape "
                           f"{tuple(t.shape)}")
    flat = [reshape(t, (-1,)) for t in tensors]
    swap = indexing == "xy" and len(flat) >= 2
    if swap:
        flat[0], flat[1] = flat[1], flat[0]
    shape = tuple(t.shape[0] for t in flat)
    out = []
    for i, t in enumerate(flat):
        along = [1] * len(flat)
        along[i] = shape[i]
        out.append(expand(dispatch("reshape", t, shape=tuple(along)), shape))
    if swap:
        out[0], out[1] = out[1], out[0]
    return tuple(out)


def _tri_mask(input, diagonal, lower):
    """Bool (rows, cols): ``col - row <= diagonal`` (``lower``) or ``>= diagonal``."""
    from .creation import arange
    from .pointwise import ge, le, sub
    if input.ndim < 2:
        raise op_error(ShapeError, "tril" if lower else "triu", "input tensor must have at "
                       f"least 2 dimensions, got shape {tuple(input.shape)}")
    rows, cols = input.shape[-2:]
    diff = sub(arange(cols, device=input.device),
               unsqueeze(arange(rows, device=input.device), 1))
    return le(diff, diagonal) if lower else ge(diff, diagonal)


def _zero_of(input):
    from .creation import zeros
    return zeros((), dtype=input.dtype, device=input.device)


def tril(input, diagonal=0):
    """A copy of ``input``, of shape ``(..., rows, cols)``, with the elements above diagonal
    ``diagonal`` zeroed: the lower triangle, as ``torch.tril`` (``diagonal`` > 0 keeps that
    many diagonals above the main one).  A ``where`` with a mask made by ``arange``."""
    from .pointwise import where
    return where(_tri_mask(input, diagonal, True), input, _zero_of(input))


def triu(input, diagonal=0):
    """A copy of ``input`` with the elements below diagonal ``diagonal`` zeroed: the upper
    triangle, as ``torch.triu``."""
    from .pointwise import where
    return where(_tri_mask(input, diagonal, False), input, _zero_of(input))


def tril_(input, diagonal=0):
    """In place :func:`tril`; returns ``input``."""
    return input.copy_(tril(input, diagonal))


def triu_(input, diagonal=0):
    """In place :func:`triu`; returns ``input``."""
    return input.copy_(triu(input, diagonal))


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """Matrices with the last dim of ``input`` (size ``n``) on their diagonal ``offset``, of
    size ``n + |offset|`` in dims ``dim1`` and ``dim2`` of the result (counted in the
    result's dims; the other dims are ``input``'s others), zeros elsewhere, as
    ``torch.diag_embed``.  A ``where`` with a diagonal mask; the gradient is the diagonal
    of the incoming one."""
    from .creation import arange, zeros
    from .other import cat
    from .pointwise import eq, sub, where
    n_out = input.ndim + 1
    d1 = wrap_dim("diag_embed", dim1, n_out)
    d2 = wrap_dim("diag_embed", dim2, n_out)
    if d1 == d2:
        raise op_error(ShapeError, "diag_embed", f"diagonal dimensions cannot be identical "
                       f"{dim1}, {dim2}")
    n = input.shape[-1] if input.ndim else 1
    if input.ndim == 0:
        input = reshape(input, (1,))
    k = abs(offset)
    size = n + k
    x = input
    if k:
        x = cat([x, zeros(tuple(x.shape[:-1]) + (k,), dtype=x.dtype, device=x.device)], -1)
    # the value at (i, i + offset) is x[i] for offset >= 0, at (j - offset, j) it is x[j] else
    vals = unsqueeze(x, -1) if offset >= 0 else unsqueeze(x, -2)
    cols = arange(size, device=input.device)
    mask = eq(sub(cols, unsqueeze(cols, 1)), offset)
    out = where(mask, vals, _zero_of(input))
    return movedim(out, (n_out - 2, n_out - 1), (d1, d2))


def diag(input, diagonal=0):
    """For a 1-d ``input``: the square matrix with ``input`` on diagonal ``diagonal``
    (:func:`diag_embed`); for a 2-d one: a copy of its diagonal ``diagonal``
    (:func:`diagonal`, cloned), as ``torch.diag``."""
    if input.ndim == 1:
        return diag_embed(input, diagonal, 0, 1)
    if input.ndim != 2:
        raise op_error(ShapeError, "diag", f"matrix or a vector expected, got shape "
                       f"{tuple(input.shape)}")
    return _diagonal_copy(input, diagonal, 0, 1)
