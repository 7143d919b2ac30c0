"""Optimizers: update parameters in place from their ``.grad`` (PyTorch's formulas)."""

from .optimizer import Optimizer  # noqa: F401
from .sgd import SGD  # noqa: F401
from .adam import Adam, AdamW  # noqa: F401

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]
