"""dtypes: the element types minaot knows, and PyTorch's type promotion.

A :class:`DType` names a numpy dtype and the short IR spelling used in printed
types (``tensor<4x8xf32>``; MLIR's names: ``f32 f64 i64 i32 i16 i8 ui8 i1``).
Promotion follows PyTorch, not numpy: a Python number only lifts the result to
a higher *category* (bool < int < float), and then to the default dtype of that
category (``float32``, ``int64``); tensors of the same category promote to the
wider one (``uint8`` with ``int8`` to ``int16``, the smallest signed type that
holds both).  So ``float32_tensor * 2.5`` stays ``float32`` (numpy would agree)
but ``int64_tensor * 2.5`` is ``float32`` (numpy would say ``float64``), and
``int32_tensor + 1`` stays ``int32``.

Integer arithmetic wraps around on overflow, as in PyTorch (two's complement:
``int8`` 127 + 1 is -128, ``uint8`` 0 - 1 is 255); a Python number that meets a
narrower integer tensor in arithmetic wraps the same way (``int32_tensor +
2**32`` adds 0).
"""

from __future__ import annotations

import numpy as np


class DType:
    """An element type: ``minaot.float32``, ``float64``, ``int64``, ``int32``, ``int16``,
    ``int8``, ``uint8`` or ``bool``."""

    def __init__(self, name: str, np_dtype, ir: str, category: int):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.ir = ir
        self.category = category  # 0 bool, 1 integer, 2 floating
        self.itemsize = self.np.itemsize

    @property
    def is_floating_point(self) -> bool:
        return self.category == 2

    @property
    def is_signed(self) -> bool:
        """As ``torch.dtype.is_signed``: false for ``uint8`` and ``bool``."""
        return self.category == 2 or (self.category == 1 and self.np.kind == "i")

    def __repr__(self) -> str:
        return f"minaot.{self.name}"

    def __reduce__(self):
        return (from_name, (self.name,))


float32 = DType("float32", np.float32, "f32", 2)
float64 = DType("float64", np.float64, "f64", 2)
int64 = DType("int64", np.int64, "i64", 1)
int32 = DType("int32", np.int32, "i32", 1)
int16 = DType("int16", np.int16, "i16", 1)
int8 = DType("int8", np.int8, "i8", 1)
uint8 = DType("uint8", np.uint8, "ui8", 1)
bool_ = DType("bool", np.bool_, "i1", 0)

ALL = (float32, float64, int64, int32, int16, int8, uint8, bool_)
#: the integer dtypes, narrowest first
INTEGER = (uint8, int8, int16, int32, int64)
_BY_NAME = {d.name: d for d in ALL}
# PyTorch's other names (torch.float, torch.double, torch.long, torch.int, torch.short)
_BY_NAME.update({"float": float32, "double": float64, "long": int64, "int": int32,
                 "short": int16, "bool_": bool_})
_BY_IR = {d.ir: d for d in ALL}
_BY_NP = {d.np: d for d in ALL}

default_float = float32

_NAMES = "float32, float64, int64, int32, int16, int8, uint8 and bool"


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
    raise TypeError(f"unknown dtype {x!r}: minaot supports {_NAMES}")


def from_numpy_dtype(npd) -> DType:
    """The dtype a numpy array of dtype ``npd`` becomes in a tensor: its own where minaot
    has it; float16 becomes float32, uint16 int32 and the other integers int64 (wide
    enough for their values, except uint64's above 2^63)."""
    npd = np.dtype(npd)
    if npd in _BY_NP:
        return _BY_NP[npd]
    if npd.kind == "f":
        return float32 if npd.itemsize <= 4 else float64
    if npd.kind == "u" and npd.itemsize <= 2:
        return int32
    if npd.kind in "iu":
        return int64
    if npd.kind == "b":
        return bool_
    raise TypeError(f"unsupported numpy dtype {npd}: minaot supports {_NAMES}")


def iinfo(dtype: DType) -> tuple[int, int]:
    """``(lowest, highest)`` value of an integer (or bool) dtype."""
    if dtype.category == 0:
        return 0, 1
    info = np.iinfo(dtype.np)
    return int(info.min), int(info.max)


def wrap_int(value: int, dtype: DType) -> int:
    """``value`` wrapped into ``dtype``'s range (two's complement), as a C cast and
    PyTorch's arithmetic do: ``wrap_int(300, uint8)`` is 44, ``wrap_int(-1, uint8)`` 255.
    Values beyond int64 are left as they are (PyTorch raises on them; so does numpy)."""
    value = int(value)
    if dtype is int64 or dtype.category != 1 or not -2**63 <= value < 2**64:
        return value
    bits = 8 * dtype.itemsize
    value &= (1 << bits) - 1
    if dtype.is_signed and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


def fits(value, dtype: DType) -> bool:
    """Can the Python number ``value`` be stored in ``dtype`` without overflow (PyTorch's
    ``overflows`` test, which ``full``, ``fill_``, ``where`` and ``tensor`` apply)?  For an
    unsigned dtype negative integers down to ``-max`` count (they wrap, as ``a - b`` is
    ``a + 255 * b`` in uint8); a float must lie within the range (NaN and infinities only
    fit floats and bool)."""
    if dtype.category != 1 or isinstance(value, (bool, np.bool_)):
        return True
    lo, hi = iinfo(dtype)
    if isinstance(value, (int, np.integer)):
        value = int(value)
        return (-hi <= value <= hi) if lo == 0 else lo <= value <= hi
    value = float(value)
    return value == value and lo <= value <= hi       # NaN fails


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
    if a.category == 1 and a.is_signed != b.is_signed:
        return _BY_NP[np.promote_types(a.np, b.np)]     # uint8 with int8: int16, as torch
    return a if a.itemsize >= b.itemsize else b


def promote_types(a: DType, b: DType) -> DType:
    """The dtype two tensors of dtypes ``a`` and ``b`` promote to (``torch.promote_types``)."""
    return _wider(to_dtype(a), to_dtype(b))


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
    def tensor(a):                  # a numpy scalar (np.int32(1)) counts as a number
        return isinstance(getattr(a, "dtype", None), DType)
    dims = _promote_group(a.dtype for a in args if tensor(a) and a.ndim > 0)
    zero = _promote_group(a.dtype for a in args if tensor(a) and a.ndim == 0)
    nums = [scalar_category(a) for a in args if not tensor(a)]
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


def check_fits(value, dtype: DType, op: str):
    """Raise, as PyTorch does, when the Python number ``value`` overflows ``dtype`` (see
    :func:`fits`): ``full``, ``fill_``, ``where``, ``clamp``, ``masked_fill`` and ``tensor``
    refuse such a value, where arithmetic (``int8_tensor + 1000``) wraps it around."""
    if not fits(value, dtype):
        from ._errors import ValueOverflowError, op_error
        raise op_error(ValueOverflowError, op, f"value {value!r} cannot be converted to type "
                       f"{dtype.name} without overflow")
