"""Eager autograd: grad mode, the backward engine, and custom Functions."""

from .engine import backward, grad  # noqa: F401
from .function import Function, FunctionCtx  # noqa: F401
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401

__all__ = ["backward", "grad", "Function", "FunctionCtx", "enable_grad", "is_grad_enabled",
           "no_grad", "set_grad_enabled"]
