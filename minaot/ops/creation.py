"""Creation ops: constants, ``zeros``/``ones``/``full``/``arange``/``empty``,
random tensors, and ``tensor``/``from_numpy``.

Inside a traced function these record ``constant``/``arange``/``rand``/``randn``
ops (no inputs), so the graph builds them itself.
"""

from __future__ import annotations

import builtins

import numpy as np

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
    if device is not None and str(device) != "cpu":
        t = t.to(device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False):
    if dtype is None:
        dtype = dt.result_type(fill_value)
    dtype = dt.to_dtype(dtype)
    value = (builtins.float if dtype.category == 2 else builtins.int if dtype.category == 1
             else builtins.bool)(fill_value)
    t = dispatch("constant", value=value, shape=_shape((size,)), dtype=dtype.name)
    return _finish(t, requires_grad, device)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return full(_shape(size), 0, dtype=_dtype(dtype), device=device, requires_grad=requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return full(_shape(size), 1, dtype=_dtype(dtype), device=device, requires_grad=requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def zeros_like(input, *, dtype=None, device=None, requires_grad=False):
    return zeros(input.shape, dtype=dtype or input.dtype, device=device or input.device,
                 requires_grad=requires_grad)


def ones_like(input, *, dtype=None, device=None, requires_grad=False):
    return ones(input.shape, dtype=dtype or input.dtype, device=device or input.device,
                requires_grad=requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False):
    return full(input.shape, fill_value, dtype=dtype or input.dtype,
                device=device or input.device, requires_grad=requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad=False):
    return zeros_like(input, dtype=dtype, device=device, requires_grad=requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
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
    return _random_tensor("rand", size, dtype, generator, device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    return _random_tensor("randn", size, dtype, generator, device, requires_grad)


def rand_like(input, *, dtype=None, generator=None):
    return rand(input.shape, dtype=dtype or input.dtype, generator=generator)


def randn_like(input, *, dtype=None, generator=None):
    return randn(input.shape, dtype=dtype or input.dtype, generator=generator)


# ---------------------------------------------------------------- tensor / from_numpy
def _array_from_data(data, dtype):
    """A fresh numpy array (never sharing memory with ``data``) for ``tensor(data)``."""
    from ..tensor import Tensor
    if isinstance(data, Tensor):
        data = data.detach()._data
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in _flat(data)):
        data = _nested_to_numpy(data)
    arr = np.array(data, copy=True)
    if dtype is not None:
        d = dt.to_dtype(dtype)
    elif arr.dtype.kind == "f" and not isinstance(data, np.ndarray):
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
        return data.detach()._data
    if isinstance(data, (list, tuple)):
        return [_nested_to_numpy(x) for x in data]
    return data


def tensor(data, *, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of ``data`` (nested lists, numbers, numpy arrays)."""
    from ..tensor import Tensor
    t = Tensor._wrap(_array_from_data(data, dtype))
    return _finish(t, requires_grad, device)


def as_tensor(data, dtype=None):
    from ..tensor import Tensor
    if isinstance(data, Tensor):
        return data if dtype is None else data.to(dtype)
    if isinstance(data, np.ndarray) and (dtype is None or dt.to_dtype(dtype).np == data.dtype):
        return from_numpy(data)
    return tensor(data, dtype=dtype)


def from_numpy(array: np.ndarray):
    """A tensor sharing memory with ``array`` (float32/float64/int64/bool only)."""
    from ..tensor import Tensor
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    if array.dtype not in (np.float32, np.float64, np.int64, np.bool_):
        raise TypeError(f"from_numpy: unsupported dtype {array.dtype}; minaot supports "
                        "float32, float64, int64 and bool")
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
        raise ValueError("arange: step must be nonzero")
    n = builtins.max(0, int(np.ceil((end - start) / step)))
    return Meta((n,), dt.from_name(dtype), "cpu")


def _arange_impl(*, start, end, step, dtype):
    return np.arange(start, end, step, dtype=dt.from_name(dtype).np)


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
