"""Grad mode: whether ops record autograd history (``no_grad``, ``enable_grad``)."""

from __future__ import annotations

import functools
import threading

_state = threading.local()


def is_grad_enabled() -> bool:
    """Whether ops record autograd history now (false inside :class:`no_grad`)."""
    return getattr(_state, "enabled", True)


def _set(enabled: bool):
    _state.enabled = bool(enabled)


class _GradModeContext:
    """Base of the grad-mode switches: a context manager and a decorator."""

    enabled = True

    def __enter__(self):
        self._prev = is_grad_enabled()
        _set(self.enabled)
        return self

    def __exit__(self, *exc):
        _set(self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradModeContext):
    """Ops inside do not record history (optimizers update parameters here)."""

    enabled = False


class enable_grad(_GradModeContext):
    """Turn history recording back on inside a ``no_grad`` block."""

    enabled = True


class set_grad_enabled:
    """``set_grad_enabled(False)`` as a call sets the mode; as a context manager it restores it."""

    def __init__(self, mode: bool):
        self._prev = is_grad_enabled()
        self.mode = bool(mode)
        _set(self.mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set(self._prev)
        return False
