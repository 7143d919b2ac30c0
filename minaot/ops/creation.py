"""Creation ops: constants, ``zeros``/``ones``/``full``/``arange``/``empty``,
random tensors, and ``tensor``/``from_numpy``.

Inside a traced function these record ``constant``/``arange``/``rand``/``randn``
ops (no inputs), so the graph builds them itself.

``device="cuda"`` makes the values on the host (the op's numpy implementation,
so ``rand``/``randn`` draw the same numbers as on the CPU for the same seed) and
copies them to the GPU once, except ``full`` (``zeros``, ``ones``...), which a
kernel fills on the GPU; without ``device=`` a tensor goes to
:func:`~minaot.devices.default_device` (the CPU unless dispatch is running a
composite op's decomposition for CUDA inputs).
"""

from __future__ import annotations

import builtins

import numpy as np

from .._errors import ShapeError, op_error
from .. import dtypes as dt
from .. import random as _random
from ..dispatch import dispatch, tracing
from .registry import Meta, OpDef, SampleInput, register


def _shape(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(int(s) for s in size)


def _dtype(dtype, default=None):
    return dt.to_dtype(dtype) if dtype is not None else (default or dt.default_float)


def _finish(t, requires_grad, device):
    from ..devices import default_device, move
    if device is None:
        device = default_device()
    if str(device) != "cpu":
        t = move(t, device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False):
    """A tensor of shape ``size`` filled with ``fill_value`` (dtype from the value unless
    given), on ``device`` (``"cpu"`` or ``"cuda"``)."""
    if dtype is None:
        dtype = dt.result_type(fill_value)
    dtype = dt.to_dtype(dtype)
    if dtype.category == 1:             # 1000 as int8 raises; -1 as uint8 is 255 (PyTorch)
        dt.check_fits(fill_value, dtype, "full")
        value = dt.wrap_int(builtins.int(fill_value), dtype)
    else:
        value = (builtins.float if dtype.category == 2 else builtins.bool)(fill_value)
    if not tracing():
        from ..devices import default_device
        if str(default_device() if device is None else device) == "cuda":
            return _finish(_cuda_full(value, _shape((size,)), dtype), requires_grad, "cuda")
    t = dispatch("constant", value=value, shape=_shape((size,)), dtype=dtype.name)
    return _finish(t, requires_grad, device)


def _cuda_full(value, shape, dtype):
    """``full`` on the GPU: a driver memset where the value's bytes allow one
    (:func:`minaot.cuda.memset_fill`), else the value (a cached 0-d CUDA tensor) broadcast
    and copied by a kernel.  (Made on the host and uploaded, it would make the host wait
    for every kernel queued before it: a pageable host-to-device copy is synchronous.)"""
    from ..codegen.cuda_runtime import cuda_module
    from ..cuda import memset_fill, strided
    from ..cuda_eager import copy_into, empty, scalar, wrap
    cuda_module()           # raises, saying what is missing, without a GPU or simulator
    out, root = empty(shape, dtype.np)
    if not memset_fill(out, value):
        one = scalar(value, dtype)._data
        copy_into(out, strided(one, 0, shape, (0,) * len(shape)))
    return wrap(out, root)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``; float32 unless ``dtype``."""
    return full(_shape(size), 0, dtype=_dtype(dtype), device=device, requires_grad=requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of ones: ``ones(2, 3)`` or ``ones((2, 3))``; float32 unless ``dtype``."""
    return full(_shape(size), 1, dtype=_dtype(dtype), device=device, requires_grad=requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    """A tensor whose values must not be read before they are written (zeros here)."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def zeros_like(input, *, dtype=None, device=None, requires_grad=False):
    """Zeros with ``input``'s shape, dtype and device (unless given)."""
    return zeros(input.shape, dtype=dtype or input.dtype, device=device or input.device,
                 requires_grad=requires_grad)


def ones_like(input, *, dtype=None, device=None, requires_grad=False):
    """Ones with ``input``'s shape, dtype and device (unless given)."""
    return ones(input.shape, dtype=dtype or input.dtype, device=device or input.device,
                requires_grad=requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False):
    """``fill_value`` with ``input``'s shape, dtype and device (unless given)."""
    return full(input.shape, fill_value, dtype=dtype or input.dtype,
                device=device or input.device, requires_grad=requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad=False):
    """An uninitialised tensor like ``input`` (see :func:`empty`)."""
    return zeros_like(input, dtype=dtype, device=device, requires_grad=requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    """``start, start + step, ...`` below ``end`` (``arange(5)`` is 0..4), like numpy's;
    int64 for integer arguments, float32 otherwise, unless ``dtype``."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        dtype = dt.result_type(start, end, step)
    t = dispatch("arange", start=start, end=end, step=step, dtype=dt.to_dtype(dtype).name)
    return _finish(t, requires_grad, device)


def _random_tensor(name, size, dtype, generator, device, requires_grad):
    dtype = _dtype(dtype)
    if not dtype.is_floating_point:
        raise TypeError(f"{name}: expected a floating point dtype, got {dtype.name}")
    shape = _shape(size)
    if generator is not None and not tracing():
        from ..tensor import Tensor
        t = Tensor._wrap(_RANDOM_IMPL[name](shape, dtype.name, _random._gen(generator)))
    else:
        t = dispatch(name, shape=shape, dtype=dtype.name)
    return _finish(t, requires_grad, device)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform random numbers in [0, 1) from ``generator`` (the global one by default,
    see :func:`minaot.manual_seed`); drawn on the host, so a GPU tensor gets the same
    numbers as a CPU one."""
    return _random_tensor("rand", size, dtype, generator, device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal random numbers (see :func:`rand` for the generator and devices)."""
    return _random_tensor("randn", size, dtype, generator, device, requires_grad)


def rand_like(input, *, dtype=None, generator=None, device=None):
    """:func:`rand` with ``input``'s shape, dtype and device (unless given)."""
    return rand(input.shape, dtype=dtype or input.dtype, generator=generator,
                device=device or input.device)


def randn_like(input, *, dtype=None, generator=None, device=None):
    """:func:`randn` with ``input``'s shape, dtype and device (unless given)."""
    return randn(input.shape, dtype=dtype or input.dtype, generator=generator,
                 device=device or input.device)


# ---------------------------------------------------------------- tensor / from_numpy
def _array_from_data(data, dtype):
    """A fresh numpy array (never sharing memory with ``data``) for ``tensor(data)``."""
    from ..tensor import Tensor
    if isinstance(data, Tensor):
        data = data.detach()._host()
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in _flat(data)):
        data = _nested_to_numpy(data)
    python_data = not isinstance(data, (np.ndarray, np.generic))
    arr = np.array(data, copy=True)
    if dtype is not None:
        d = dt.to_dtype(dtype)
        if python_data and d.category == 1 and arr.size and arr.dtype.kind in "iuf":
            for v in (arr.min(), arr.max()):    # Python numbers out of range raise (PyTorch);
                dt.check_fits(v.item(), d, "tensor")    # a numpy array's values wrap
    elif arr.dtype.kind == "f" and not isinstance(data, (np.ndarray, np.floating)):
        d = dt.default_float
    elif arr.dtype.kind == "f" and arr.dtype.itemsize < 4:
        d = dt.float32
    else:
        d = dt.from_numpy_dtype(arr.dtype)
    return np.array(arr, dtype=d.np, order="C")


def _flat(data):
    for x in data:
        if isinstance(x, (list, tuple)):
            yield from _flat(x)
        else:
            yield x


def _nested_to_numpy(data):
    from ..tensor import Tensor
    if isinstance(data, Tensor):
        return data.detach()._host()
    if isinstance(data, (list, tuple)):
        return [_nested_to_numpy(x) for x in data]
    return data


def tensor(data, *, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of ``data`` (nested lists, numbers, numpy arrays).  While
    tracing, a constant of the graph (its values kept in the op's attributes), as PyTorch's
    tracers lift a tensor made inside the traced function."""
    from .. import dispatch as _dispatch
    from ..tensor import Tensor
    array = _array_from_data(data, dtype)
    if _dispatch._tracer is not None and not isinstance(data, Tensor):
        value = _nested_tuple(array.tolist()) if array.ndim else array.item()
        t = dispatch("constant", value=value, shape=tuple(array.shape),
                     dtype=dt.to_dtype(array.dtype).name)
        return _finish(t, requires_grad, device)
    t = Tensor._wrap(array)
    return _finish(t, requires_grad, device)


def _nested_tuple(v):
    return tuple(_nested_tuple(x) for x in v) if isinstance(v, list) else v


def as_tensor(data, dtype=None, device=None):
    """``data`` as a tensor, sharing memory where it can (a tensor, a numpy array on the CPU)."""
    from ..tensor import Tensor
    if isinstance(data, Tensor):
        out = data if dtype is None else data.to(dtype)
        return out if device is None else out.to(device)
    if isinstance(data, np.ndarray) and (dtype is None or dt.to_dtype(dtype).np == data.dtype) \
            and (device is None or str(device) == "cpu"):
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray):
    """A tensor sharing memory with ``array`` (of a dtype minaot has: float32, float64,
    int64, int32, int16, int8, uint8 or bool)."""
    from ..tensor import Tensor
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    if array.dtype not in dt._BY_NP:
        raise TypeError(f"from_numpy: unsupported dtype {array.dtype}; minaot supports "
                        f"{dt._NAMES}")
    if any(s < 0 for s in array.strides):
        raise ValueError("from_numpy: at least one stride in the given numpy array is negative; "
                         "copy it first (array.copy())")
    if not array.flags.writeable:
        raise ValueError("from_numpy: the given numpy array is not writable")
    return Tensor._wrap(array)


# ---------------------------------------------------------------- records
def _constant_meta(*, value, shape, dtype):
    return Meta(tuple(shape), dt.from_name(dtype), "cpu")


def _constant_impl(*, value, shape, dtype):
    return np.full(shape, value, dtype=dt.from_name(dtype).np)


def _arange_meta(*, start, end, step, dtype):
    if step == 0:
        raise op_error(ShapeError, "arange", "step must be nonzero")
    if (end - start) * step < 0:        # as PyTorch: an empty range the other way is an error
        raise op_error(ShapeError, "arange", f"upper bound and lower bound inconsistent with "
                       f"step sign (start={start}, end={end}, step={step})")
    n = builtins.max(0, int(np.ceil((end - start) / step)))
    return Meta((n,), dt.from_name(dtype), "cpu")


def _arange_impl(*, start, end, step, dtype):
    d = dt.from_name(dtype)
    if d.category == 1 and d is not dt.int64:       # counted in int64 (or float64), then
        with np.errstate(invalid="ignore"):         # wrapped: arange(-3, 3, dtype=uint8)
            return np.arange(start, end, step).astype(d.np)     # is 253, 254, 255, 0, 1, 2
    return np.arange(start, end, step, dtype=d.np)


def _rand_impl(shape, dtype, rng):
    return rng.random(shape, dtype=np.float64).astype(dt.from_name(dtype).np)


def _randn_impl(shape, dtype, rng):
    return rng.standard_normal(shape, dtype=np.float64).astype(dt.from_name(dtype).np)


_RANDOM_IMPL = {"rand": _rand_impl, "randn": _randn_impl}

register(OpDef("constant", "creation", _constant_meta, _constant_impl, scalar="{value}",
               samples=lambda rng: [SampleInput((), {"value": 2.5, "shape": (2, 3), "dtype": "float32"}),
                                    SampleInput((), {"value": 3, "shape": (), "dtype": "int64"})]))
register(OpDef("arange", "creation", _arange_meta, _arange_impl,
               samples=lambda rng: [SampleInput((), {"start": 0, "end": 5, "step": 1, "dtype": "int64"}),
                                    SampleInput((), {"start": 0.5, "end": 2.0, "step": 0.5, "dtype": "float32"})]))
for _name in ("rand", "randn"):
    register(OpDef(_name, "random",
                   lambda *, shape, dtype: Meta(tuple(shape), dt.from_name(dtype), "cpu"),
                   (lambda impl: lambda *, shape, dtype: impl(shape, dtype, _random._gen(None)))(
                       _RANDOM_IMPL[_name]),
                   samples=lambda rng: [SampleInput((), {"shape": (3, 4), "dtype": "float32"}),
                                        SampleInput((), {"shape": (5,), "dtype": "float64"})]))


# ---------------------------------------------------------------- more creation functions
# Compositions of the records above (``arange``, ``constant``, ``rand``/``randn``) and of
# pointwise ops, so they trace and run on both backends like those.
def eye(n, m=None, *, dtype=None, device=None, requires_grad=False):
    """The ``n`` x ``m`` (``m = n`` by default) matrix with ones on the main diagonal and
    zeros elsewhere, float32 unless ``dtype``, as ``torch.eye``: ``arange(n)[:, None] ==
    arange(m)`` cast to the dtype."""
    from .pointwise import eq, to
    m = n if m is None else m
    if n < 0 or m < 0:
        raise op_error(ShapeError, "eye", f"n and m must be non-negative, got n={n}, m={m}")
    rows = arange(n, device=device).reshape(n, 1)
    t = to(eq(rows, arange(m, device=device)), _dtype(dtype))
    if requires_grad:
        t.requires_grad_(True)
    return t


def _linspace_values(start, end, steps, np_dtype):
    """PyTorch's ``linspace`` values in ``np_dtype``: the first half counted up from
    ``start``, the second half down from ``end`` (so both ends are exact)."""
    if steps == 1:
        return np.array([start], dtype=np.float64).astype(np_dtype)
    work = np.dtype(np_dtype if np.issubdtype(np_dtype, np.floating) else np.float64).type
    start, end = work(start), work(end)
    step = (end - start) / work(steps - 1)
    i = np.arange(steps)
    half = steps // 2
    vals = np.where(i < half, start + step * i.astype(work),
                    end - step * (steps - 1 - i).astype(work))
    return vals.astype(np_dtype)


def _number(x, name):
    from ..tensor import Tensor
    if isinstance(x, Tensor):
        if x.numel() != 1:
            raise op_error(ShapeError, name, f"expects a number or a 0-d tensor, got shape "
                           f"{tuple(x.shape)}")
        return x.item()
    return x


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False):
    """``steps`` evenly spaced values from ``start`` to ``end`` (both included), float32
    unless ``dtype``, as ``torch.linspace`` (the same values: the first half is counted up
    from ``start``, the second half down from ``end``).  Made on the host: while tracing, a
    constant of the graph."""
    start, end = _number(start, "linspace"), _number(end, "linspace")
    if steps < 0:
        raise op_error(ShapeError, "linspace", f"number of steps must be non-negative, got {steps}")
    d = _dtype(dtype)
    for v in (start, end):
        dt.check_fits(v, d, "linspace")
    return tensor(_linspace_values(start, end, int(steps), d.np), dtype=d, device=device,
                  requires_grad=requires_grad)


def logspace(start, end, steps, base=10.0, *, dtype=None, device=None, requires_grad=False):
    """``base ** linspace(start, end, steps)``: ``steps`` values evenly spaced on a log
    scale, float32 unless ``dtype``, as ``torch.logspace``."""
    start, end = _number(start, "logspace"), _number(end, "logspace")
    if steps < 0:
        raise op_error(ShapeError, "logspace", f"number of steps must be non-negative, got {steps}")
    d = _dtype(dtype)
    exps = _linspace_values(start, end, int(steps), np.float64)
    return tensor(np.power(float(base), exps).astype(d.np), dtype=d, device=device,
                  requires_grad=requires_grad)


# Tensor.new_*: a new tensor with the tensor's dtype and device unless given.
def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
    """``Tensor.new_full``: ``fill_value`` in shape ``size``, with this tensor's dtype and
    device unless given."""
    return full(_shape((size,)), fill_value, dtype=dtype or self.dtype,
                device=device or self.device, requires_grad=requires_grad)


def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
    """``Tensor.new_zeros``: zeros of shape ``size`` (``new_zeros(2, 3)`` or
    ``new_zeros((2, 3))``), with this tensor's dtype and device unless given."""
    return zeros(_shape(size), dtype=dtype or self.dtype, device=device or self.device,
                 requires_grad=requires_grad)


def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
    """``Tensor.new_ones``: ones of shape ``size``, with this tensor's dtype and device
    unless given."""
    return ones(_shape(size), dtype=dtype or self.dtype, device=device or self.device,
                requires_grad=requires_grad)


def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
    """``Tensor.new_empty``: an uninitialised tensor (see :func:`empty`) of shape
    ``size``, with this tensor's dtype and device unless given."""
    return empty(_shape(size), dtype=dtype or self.dtype, device=device or self.device,
                 requires_grad=requires_grad)


def new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
    """``Tensor.new_tensor``: a copy of ``data`` as a tensor with this tensor's dtype and
    device unless given (whatever ``data``'s own dtype)."""
    return tensor(data, dtype=dtype or self.dtype, device=device or self.device,
                  requires_grad=requires_grad)


def randint(low=0, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad=False):
    """Random integers uniform in ``[low, high)``, of shape ``size``, int64 unless
    ``dtype``, as ``torch.randint`` (``randint(high, size)`` or ``randint(low, high,
    size)``).  ``low + floor(rand * (high - low))`` from a float64 :func:`rand`, so they
    come from the same generator, trace and compile like ``rand`` (not the same numbers as
    PyTorch's)."""
    from .pointwise import add, floor, mul, to
    if size is None:                    # randint(high, size)
        low, high, size = 0, low, high
    if high is None or size is None:
        raise op_error(TypeError, "randint", "expects randint(high, size) or "
                       "randint(low, high, size)")
    if not low < high:
        raise op_error(ValueError, "randint", f"random_ expects 'from' to be less than 'to', "
                       f"but got from={low} >= to={high}")
    u = rand(_shape((size,)), generator=generator, dtype=dt.float64, device=device)
    t = to(add(floor(mul(u, float(high - low))), float(low)), _dtype(dtype, dt.int64))
    if requires_grad:
        t.requires_grad_(True)
    return t


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False):
    """A random permutation of ``0 .. n-1`` (int64 unless ``dtype``) from ``generator``
    (the global one by default), drawn on the host, as ``torch.randperm`` (not the same
    numbers).  Eager only: while tracing it raises (minaot's traced random ops are
    ``rand`` and ``randn``)."""
    from .. import dispatch as _dispatch
    if _dispatch._tracer is not None:
        from ..tracing import _trace_error
        raise _trace_error("randperm", "draw the permutation outside the compiled function "
                           "and pass it in")
    if n < 0:
        raise op_error(ValueError, "randperm", f"n must be non-negative, got {n}")
    perm = _random._gen(generator).permutation(int(n))
    return tensor(perm, dtype=_dtype(dtype, dt.int64), device=device,
                  requires_grad=requires_grad)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None):
    """Normal random numbers ``mean + std * randn``, as ``torch.normal``: ``mean`` and
    ``std`` numbers with a ``size``, or tensors (broadcast; the result has their shape,
    dtype and device).  No gradient flows to ``mean`` or ``std``."""
    from ..autograd import no_grad
    from ..tensor import Tensor
    from .meta import broadcast_shapes
    from .pointwise import add, mul
    tensors = [x for x in (mean, std) if isinstance(x, Tensor)]
    if isinstance(std, (int, builtins.float)) and std < 0:
        raise op_error(ValueError, "normal", f"std must be non-negative, got {std}")
    if tensors:
        shape = broadcast_shapes("normal", *(tuple(t.shape) for t in tensors))
        if size is not None and _shape((size,)) != shape:
            raise op_error(ShapeError, "normal", f"size {size} does not match the shape "
                           f"{shape} of mean and std")
        dtype = dtype or tensors[0].dtype
        device = device or tensors[0].device
    elif size is None:
        raise op_error(TypeError, "normal", "expects tensors mean/std, or numbers and a size")
    else:
        shape = _shape((size,))
    with no_grad():
        z = randn(shape, generator=generator, dtype=dtype, device=device)
        return add(mul(z, std), mean)


def uniform_(input, a=0.0, b=1.0, *, generator=None):
    """``Tensor.uniform_``: fill ``input`` in place with numbers uniform in ``[a, b)``
    from ``generator`` (drawn on the host, like :func:`rand`); returns ``input``."""
    from .pointwise import add, mul
    u = rand(tuple(input.shape), generator=generator, dtype=input.dtype, device=input.device)
    return input.copy_(add(mul(u, float(b) - float(a)), float(a)))


def normal_(input, mean=0.0, std=1.0, *, generator=None):
    """``Tensor.normal_``: fill ``input`` in place with normal numbers of ``mean`` and
    ``std`` from ``generator`` (drawn on the host, like :func:`randn`); returns ``input``."""
    from .pointwise import add, mul
    z = randn(tuple(input.shape), generator=generator, dtype=input.dtype, device=input.device)
    return input.copy_(add(mul(z, float(std)), float(mean)))


_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "int64": "LongTensor",
               "int32": "IntTensor", "int16": "ShortTensor", "int8": "CharTensor",
               "uint8": "ByteTensor", "bool": "BoolTensor"}


def tensor_type(self, dtype=None, non_blocking=False):
    """``Tensor.type``: without ``dtype``, the type's name (``"minaot.FloatTensor"``, as
    PyTorch's ``"torch.FloatTensor"``; ``minaot.cuda.`` on a GPU); with one, the tensor cast
    to it (itself when it has it already): a minaot dtype, a dtype name, or such a name
    (``"minaot.DoubleTensor"``, also spelled ``"torch.DoubleTensor"``)."""
    from .pointwise import to
    if dtype is None:
        where = "minaot.cuda." if self.is_cuda else "minaot."
        return where + _TYPE_NAMES[self.dtype.name]
    if isinstance(dtype, str) and dtype.endswith("Tensor"):
        short = dtype.rsplit(".", 1)[-1]
        names = {v: k for k, v in _TYPE_NAMES.items()}
        if short not in names:
            raise op_error(TypeError, "type", f"invalid type {dtype!r}; minaot has "
                           f"{', '.join(sorted(names))}")
        dtype = names[short]
    d = dt.to_dtype(dtype)
    return self if d is self.dtype else to(self, d)
