"""dtypes: the four element types minaot knows, and PyTorch's type promotion.

A :class:`DType` names a numpy dtype and the short IR spelling used in printed
types (``tensor<4x8xf32>``).  Promotion follows PyTorch, not numpy: a Python
number only lifts the result to a higher *category* (bool < int < float), and
then to the default dtype of that category (``float32``, ``int64``); tensors of
the same category promote to the wider one.  So ``float32_tensor * 2.5`` stays
``float32`` (numpy would agree) but ``int64_tensor * 2.5`` is ``float32`` (numpy
would say ``float64``).
"""

from __future__ import annotations

import numpy as np


class DType:
    """An element type: ``minaot.float32``, ``float64``, ``int64`` or ``bool``."""

    def __init__(self, name: str, np_dtype, ir: str, category: int):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.ir = ir
        self.category = category  # 0 bool, 1 integer, 2 floating
        self.itemsize = self.np.itemsize

    @property
    def is_floating_point(self) -> bool:
        return self.category == 2

    def __repr__(self) -> str:
        return f"minaot.{self.name}"

    def __reduce__(self):
        return (from_name, (self.name,))


float32 = DType("float32", np.float32, "f32", 2)
float64 = DType("float64", np.float64, "f64", 2)
int64 = DType("int64", np.int64, "i64", 1)
bool_ = DType("bool", np.bool_, "i1", 0)

ALL = (float32, float64, int64, bool_)
_BY_NAME = {d.name: d for d in ALL}
_BY_NAME.update({"float": float32, "double": float64, "long": int64, "bool_": bool_})
_BY_IR = {d.ir: d for d in ALL}
_BY_NP = {d.np: d for d in ALL}

default_float = float32


def from_name(name: str) -> DType:
    return _BY_NAME[name]


def from_ir(ir: str) -> DType:
    return _BY_IR[ir]


def to_dtype(x) -> DType:
    """Accept a DType, a numpy dtype (or type), a Python type or a name."""
    if isinstance(x, DType):
        return x
    if x is float:
        return default_float
    if x is int:
        return int64
    if x is bool:
        return bool_
    if isinstance(x, str) and x in _BY_NAME:
        return _BY_NAME[x]
    try:
        npd = np.dtype(x)
    except TypeError:
        npd = None
    if npd is not None and npd in _BY_NP:
        return _BY_NP[npd]
    raise TypeError(
        f"unknown dtype {x!r}: minaot supports float32, float64, int64 and bool")


def from_numpy_dtype(npd) -> DType:
    npd = np.dtype(npd)
    if npd in _BY_NP:
        return _BY_NP[npd]
    if npd.kind == "f":
        return float32 if npd.itemsize <= 4 else float64
    if npd.kind in "iu":
        return int64
    if npd.kind == "b":
        return bool_
    raise TypeError(f"unsupported numpy dtype {npd}: minaot supports float32, float64, int64 and bool")


def scalar_category(value) -> int:
    if isinstance(value, (bool, np.bool_)):
        return 0
    if isinstance(value, (int, np.integer)):
        return 1
    return 2


def _default_for_category(cat: int) -> DType:
    return (bool_, int64, default_float)[cat]


def _wider(a: DType, b: DType) -> DType:
    if a.category != b.category:
        return a if a.category > b.category else b
    return a if a.itemsize >= b.itemsize else b


def _promote_group(dtypes):
    result = None
    for d in dtypes:
        result = d if result is None else _wider(result, d)
    return result


def result_type(*args) -> DType:
    """PyTorch-style promotion over tensors (anything with ``.dtype`` and ``.ndim``)
    and Python numbers.  Three priority groups: tensors with dimensions, 0-d
    tensors, Python numbers.  A lower group changes the result only when its
    category is higher (then 0-d tensors give their own dtype, numbers the
    default dtype of their category)."""
    dims = _promote_group(a.dtype for a in args if hasattr(a, "dtype") and a.ndim > 0)
    zero = _promote_group(a.dtype for a in args if hasattr(a, "dtype") and a.ndim == 0)
    nums = [scalar_category(a) for a in args if not hasattr(a, "dtype")]
    result = dims
    if zero is not None and (result is None or zero.category > result.category):
        result = zero
    if nums:
        cat = max(nums)
        if result is None or cat > result.category:
            result = _default_for_category(cat)
    if result is None:
        raise TypeError("result_type needs at least one argument")
    return result
