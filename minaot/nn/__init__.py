"""Neural-network building blocks: ``Module``, ``Parameter``, layers, losses, and ``functional``."""

from . import functional  # noqa: F401
from .module import Module, Parameter  # noqa: F401
from .layers import (  # noqa: F401
    GELU, BatchNorm1d, BatchNorm2d, CrossEntropyLoss, Dropout, Dropout2d, LayerNorm, Linear,
    MSELoss, ReLU, Sequential,
)

__all__ = ["Module", "Parameter", "Linear", "ReLU", "GELU", "LayerNorm", "BatchNorm1d",
           "BatchNorm2d", "Dropout", "Dropout2d", "Sequential", "MSELoss", "CrossEntropyLoss"]
from .layers_extra import (  # noqa: F401
    CELU, ELU, GLU, SELU, BCELoss, BCEWithLogitsLoss, Embedding, Flatten, Hardsigmoid, Hardswish,
    Hardtanh, HuberLoss, Identity, KLDivLoss, L1Loss, LeakyReLU, LogSigmoid, LogSoftmax, Mish,
    ModuleDict, ModuleList, NLLLoss, ParameterList, ReLU6, Sigmoid, SiLU, SmoothL1Loss, Softmax,
    Softmin, Softplus, Softsign, Tanh, Unflatten,
)
from .layers_extra import __all__ as _extra_all

__all__ += _extra_all
from .layers_conv import (  # noqa: F401
    AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d, AvgPool1d,
    AvgPool2d, CircularPad1d, CircularPad2d, ConstantPad1d, ConstantPad2d, Conv1d, Conv2d,
    MaxPool1d, MaxPool2d, ReflectionPad1d, ReflectionPad2d, ReplicationPad1d, ReplicationPad2d,
    ZeroPad1d, ZeroPad2d,
)
from .layers_conv import __all__ as _conv_all

__all__ += _conv_all
