"""Errors that name the op, the shapes and the user's source line.

Every error minaot raises for bad input goes through :func:`op_error`, which
finds the first stack frame outside the minaot package (the user's line) and
appends it to the message, so ``a + b`` with mismatched shapes reads::

    add: shapes (3, 4) and (5,) cannot be broadcast together
      at my_script.py:12:  c = a + b
"""

from __future__ import annotations

import linecache
import os
import sys

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_PKG_ROOT = os.path.dirname(_PKG_DIR)


def _in_package(filename: str) -> bool:
    filename = os.path.abspath(filename)
    return filename.startswith(_PKG_DIR + os.sep)


def user_frame():
    """The innermost stack frame that is not inside minaot (or None)."""
    f = sys._getframe(1)
    while f is not None and _in_package(f.f_code.co_filename):
        f = f.f_back
    return f


def user_location():
    """``(filename, lineno)`` of the user's current line, or ``None``."""
    f = user_frame()
    if f is None:
        return None
    return (f.f_code.co_filename, f.f_lineno)


def format_location(loc) -> str:
    if loc is None:
        return ""
    filename, lineno = loc
    line = linecache.getline(filename, lineno).strip()
    short = os.path.relpath(filename) if not filename.startswith("<") else filename
    if len(short) > len(filename):
        short = filename
    return f"{short}:{lineno}" + (f":  {line}" if line else "")


class MinaotError(RuntimeError):
    """Base class of minaot's own errors."""


class ShapeError(MinaotError, ValueError):
    """Shapes that do not fit the op (broadcasting, matmul, reshape, ...)."""


class DTypeError(MinaotError, TypeError):
    """A dtype the op cannot take, or a result that cannot be cast back."""


class DeviceError(MinaotError):
    """Tensors of different devices meet in one op, or a device is missing."""


def op_error(kind, op_name: str, message: str, loc=None):
    """Build an error of class ``kind`` naming the op and the user's line."""
    if loc is None:
        loc = user_location()
    where = format_location(loc)
    text = f"{op_name}: {message}"
    if where:
        text += f"\n  at {where}"
    return kind(text)


class IntegerDivisionByZero(ZeroDivisionError, RuntimeError):
    """An integer divided by 0 (``//`` or ``%``).  PyTorch raises a ``RuntimeError`` here;
    this is both that and Python's ``ZeroDivisionError``."""


class ValueOverflowError(MinaotError, OverflowError):
    """A Python number too large for the integer dtype it is stored in (``full``, ``fill_``,
    ``where``, ``clamp`` or ``tensor`` of 1000 as int8).  PyTorch raises a ``RuntimeError``;
    this is both that and Python's ``OverflowError`` (numpy's)."""
