"""Convolution, pooling and padding layers (PyTorch's names): ``Conv1d``, ``Conv2d``, the
pools, the pads.

Each calls one function of :mod:`minaot.nn.functional` (:mod:`minaot.ops.conv`,
:mod:`minaot.ops.pool`), so eager mode, tracing and ``aot_module`` run the same code.
A convolution's weight and bias start as PyTorch's do: ``kaiming_uniform_(a=sqrt(5))``,
which is ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with ``fan_in = in_channels / groups *
prod(kernel_size)``, and the same bound for the bias, drawn from minaot's default
generator.  A ``padding_mode`` other than ``"zeros"`` pads with :func:`~minaot.nn.functional.pad`
first, as PyTorch's ``Conv2d`` does.
"""

from __future__ import annotations

import math

from .. import dtypes as dt
from ..ops.conv import _ntuple
from . import functional as F
from .layers import _uniform
from .module import Module, Parameter

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """The shared part of ``Conv1d`` and ``Conv2d``."""

    _nd = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        nd, name = self._nd, type(self).__name__
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups:
            raise ValueError("out_channels must be divisible by groups")
        kernel_size = _ntuple(name, "kernel_size", kernel_size, nd)
        stride = _ntuple(name, "stride", stride, nd)
        dilation = _ntuple(name, "dilation", dilation, nd)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                                 "{'valid', 'same'}")
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
        else:
            padding = _ntuple(name, "padding", padding, nd)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, but got "
                             f"padding_mode='{padding_mode}'")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.groups, self.padding_mode = dilation, groups, padding_mode
        # F.pad's tuple (last dim first) for the non-zero padding modes
        if padding == "same":
            pads = []
            for d, k in zip(dilation, kernel_size):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
        elif padding == "valid":
            pads = [(0, 0)] * nd
        else:
            pads = [(p, p) for p in padding]
        self._reversed_padding_repeated_twice = tuple(x for lr in reversed(pads) for x in lr)
        dtype = dt.to_dtype(dtype) if dtype is not None else dt.default_float
        fan_in = in_channels // groups * math.prod(kernel_size)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        self.weight = Parameter(_uniform((out_channels, in_channels // groups) + kernel_size,
                                         bound, dtype))
        if bias:
            self.bias = Parameter(_uniform((out_channels,), bound, dtype))
        else:
            self.register_parameter("bias", None)
        if device is not None:
            self.to(device)

    def _conv(self, input, weight, bias):
        fn = F.conv1d if self._nd == 1 else F.conv2d
        if self.padding_mode != "zeros":
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return fn(input, weight, bias, self.stride, 0, self.dilation, self.groups)
        return fn(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, input):
        return self._conv(input, self.weight, self.bias)

    def extra_repr(self):
        nd = self._nd
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * nd:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """A 1-d convolution layer, as ``torch.nn.Conv1d``: ``weight`` ``(out_channels,
    in_channels / groups, kernel_size)`` and ``bias`` ``(out_channels,)`` start
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (PyTorch's ``kaiming_uniform_(a=sqrt(5))``);
    ``stride``, ``padding`` (an int, ``"valid"`` or ``"same"``), ``dilation``, ``groups``,
    ``bias`` and ``padding_mode`` (``"zeros"``, ``"reflect"``, ``"replicate"``,
    ``"circular"``) as in PyTorch (:func:`minaot.nn.functional.conv1d`)."""

    _nd = 1


class Conv2d(_ConvNd):
    """A 2-d convolution layer, as ``torch.nn.Conv2d``: ``weight`` ``(out_channels,
    in_channels / groups, kh, kw)`` and ``bias`` ``(out_channels,)`` start
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (PyTorch's ``kaiming_uniform_(a=sqrt(5))``);
    ``kernel_size``, ``stride``, ``padding`` (ints, pairs, ``"valid"`` or ``"same"``),
    ``dilation``, ``groups``, ``bias`` and ``padding_mode`` as in PyTorch
    (:func:`minaot.nn.functional.conv2d`)."""

    _nd = 2


# ---------------------------------------------------------------- pools
class _MaxPoolNd(Module):
    _fn = None

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input):
        return type(self)._fn(input, self.kernel_size, self.stride, self.padding, self.dilation,
                              ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """``max_pool1d`` as a module (:func:`minaot.nn.functional.max_pool1d`); ``stride``
    defaults to ``kernel_size``."""
    _fn = staticmethod(F.max_pool1d)


class MaxPool2d(_MaxPoolNd):
    """``max_pool2d`` as a module (:func:`minaot.nn.functional.max_pool2d`); ``stride``
    defaults to ``kernel_size``; ``return_indices`` returns ``(values, indices)``."""
    _fn = staticmethod(F.max_pool2d)


class AvgPool1d(Module):
    """``avg_pool1d`` as a module (:func:`minaot.nn.functional.avg_pool1d`)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__()
        self.kernel_size = _ntuple("AvgPool1d", "kernel_size", kernel_size, 1)
        self.stride = _ntuple("AvgPool1d", "stride", stride if stride is not None
                              else kernel_size, 1)
        self.padding = _ntuple("AvgPool1d", "padding", padding, 1)
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, input):
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    """``avg_pool2d`` as a module (:func:`minaot.nn.functional.avg_pool2d`), with
    ``count_include_pad`` and ``divisor_override``."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AdaptivePool(Module):
    _fn = None

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return type(self)._fn(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptivePool):
    """``adaptive_avg_pool1d`` as a module (:func:`minaot.nn.functional.adaptive_avg_pool1d`)."""
    _fn = staticmethod(F.adaptive_avg_pool1d)


class AdaptiveAvgPool2d(_AdaptivePool):
    """``adaptive_avg_pool2d`` as a module (:func:`minaot.nn.functional.adaptive_avg_pool2d`);
    ``AdaptiveAvgPool2d(1)`` (or ``(1, 1)``) is the global average pool."""
    _fn = staticmethod(F.adaptive_avg_pool2d)


class _AdaptiveMaxPool(_AdaptivePool):
    def __init__(self, output_size, return_indices=False):
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, input):
        return type(self)._fn(input, self.output_size, self.return_indices)


class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    """``adaptive_max_pool1d`` as a module (:func:`minaot.nn.functional.adaptive_max_pool1d`)."""
    _fn = staticmethod(F.adaptive_max_pool1d)


class AdaptiveMaxPool2d(_AdaptiveMaxPool):
    """``adaptive_max_pool2d`` as a module (:func:`minaot.nn.functional.adaptive_max_pool2d`)."""
    _fn = staticmethod(F.adaptive_max_pool2d)


# ---------------------------------------------------------------- padding
class _PadNd(Module):
    """``F.pad(input, padding, mode)``: ``padding`` an int (every side) or PyTorch's tuple,
    ``(left, right)`` for 1-d, ``(left, right, top, bottom)`` for 2-d."""

    _nd, _mode = 0, "constant"

    def __init__(self, padding):
        super().__init__()
        if isinstance(padding, int):
            padding = (padding,) * (2 * self._nd)
        self.padding = tuple(padding)

    def forward(self, input):
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self):
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value):
        super().__init__(padding)
        self.value = value

    def forward(self, input):
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pads the last dim with ``value`` (``F.pad(x, padding, value=value)``)."""
    _nd = 1


class ConstantPad2d(_ConstantPadNd):
    """Pads the last two dims with ``value`` (``F.pad(x, padding, value=value)``)."""
    _nd = 2


class ZeroPad1d(ConstantPad1d):
    """Pads the last dim with zeros."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """Pads the last two dims with zeros."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    """Pads the last dim with its reflection (``mode="reflect"``)."""
    _nd, _mode = 1, "reflect"


class ReflectionPad2d(_PadNd):
    """Pads the last two dims with their reflection (``mode="reflect"``)."""
    _nd, _mode = 2, "reflect"


class ReplicationPad1d(_PadNd):
    """Pads the last dim with copies of its edge values (``mode="replicate"``)."""
    _nd, _mode = 1, "replicate"


class ReplicationPad2d(_PadNd):
    """Pads the last two dims with copies of their edge values (``mode="replicate"``)."""
    _nd, _mode = 2, "replicate"


class CircularPad1d(_PadNd):
    """Pads the last dim with its values wrapped around (``mode="circular"``)."""
    _nd, _mode = 1, "circular"


class CircularPad2d(_PadNd):
    """Pads the last two dims with their values wrapped around (``mode="circular"``)."""
    _nd, _mode = 2, "circular"


__all__ = ["Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d",
           "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
           "ConstantPad1d", "ConstantPad2d", "ZeroPad1d", "ZeroPad2d", "ReflectionPad1d",
           "ReflectionPad2d", "ReplicationPad1d", "ReplicationPad2d", "CircularPad1d",
           "CircularPad2d"]
