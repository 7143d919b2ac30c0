"""Neural-network building blocks: ``Module``, ``Parameter``, layers, losses, and ``functional``."""

from . import functional  # noqa: F401
from .module import Module, Parameter  # noqa: F401
from .layers import (  # noqa: F401
    GELU, BatchNorm1d, CrossEntropyLoss, Dropout, LayerNorm, Linear, MSELoss, ReLU, Sequential,
)

__all__ = ["Module", "Parameter", "Linear", "ReLU", "GELU", "LayerNorm", "BatchNorm1d", "Dropout",
           "Sequential", "MSELoss", "CrossEntropyLoss"]
