"""The layers: ``Linear``, activations, normalisations, ``Dropout``, ``Sequential``, losses.

Each layer owns its parameters and buffers and calls one op (or a few) from
:mod:`minaot.nn.functional` in ``forward``, so eager mode, tracing and
``aot_module`` all run the same code.  Initial values follow PyTorch and are
drawn from minaot's default generator, so ``minaot.manual_seed`` makes a
network reproducible.

``BatchNorm1d`` and ``BatchNorm2d`` are the layers with state that changes in the
forward: in training they normalise with the batch's mean and *biased* variance
and then update their ``running_mean``/``running_var`` buffers in place,
``running = (1 - momentum) * running + momentum * batch_stat``, using the
*unbiased* variance, and count ``num_batches_tracked``; in eval mode they
normalise with the running statistics.
"""

from __future__ import annotations

import math
from collections import OrderedDict

from .. import dtypes as dt
from .. import ops
from ..autograd.grad_mode import no_grad
from . import functional as F
from .module import Module, Parameter


def _uniform(shape, bound, dtype):
    """U(-bound, bound) from the default generator (``torch.nn.init.uniform_``)."""
    with no_grad():
        return ops.rand(*shape, dtype=dtype) * (2 * bound) - bound


class Linear(Module):
    """``y = x @ weight.T + bias``; weight and bias start as U(-1/sqrt(in), 1/sqrt(in))
    (PyTorch's kaiming-uniform with a=sqrt(5) works out to that bound)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        dtype = dt.to_dtype(dtype) if dtype is not None else dt.default_float
        bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
        self.weight = Parameter(_uniform((out_features, in_features), bound, dtype))
        if bias:
            self.bias = Parameter(_uniform((out_features,), bound, dtype))
        else:
            self.register_parameter("bias", None)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class ReLU(Module):
    """``relu(x)`` as a module (no parameters)."""

    def forward(self, input):
        return F.relu(input)


class GELU(Module):
    """``gelu(x, approximate)`` as a module (``"none"``: erf, ``"tanh"``: the tanh formula)."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class LayerNorm(Module):
    """Layer normalisation over the last ``len(normalized_shape)`` axes.

    With ``elementwise_affine`` (the default) it has a ``weight`` (ones) and, if
    ``bias``, a ``bias`` (zeros) of shape ``normalized_shape``."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        dtype = dt.to_dtype(dtype) if dtype is not None else dt.default_float
        if elementwise_affine:
            self.weight = Parameter(ops.ones(self.normalized_shape, dtype=dtype))
            if bias:
                self.bias = Parameter(ops.zeros(self.normalized_shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class _BatchNorm(Module):
    """Batch normalisation per channel (dim 1); subclasses say which input ranks they take.

    ``momentum`` must be a number (PyTorch's ``momentum=None``, a cumulative
    average, needs the counter's value in Python and is not supported)."""

    _ranks = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype=None):
        super().__init__()
        if momentum is None:
            raise NotImplementedError(f"{type(self).__name__}: momentum=None (cumulative "
                                      "average) is not supported; pass a number")
        self.num_features, self.eps, self.momentum = num_features, eps, float(momentum)
        self.affine, self.track_running_stats = affine, track_running_stats
        dtype = dt.to_dtype(dtype) if dtype is not None else dt.default_float
        if affine:
            self.weight = Parameter(ops.ones(num_features, dtype=dtype))
            self.bias = Parameter(ops.zeros(num_features, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", ops.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", ops.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", ops.zeros((), dtype=dt.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def _check_input(self, input):
        raise NotImplementedError

    def forward(self, input):
        self._check_input(input)
        dims = (0,) + tuple(range(2, input.ndim))
        shape = (1, self.num_features) + (1,) * (input.ndim - 2)     # broadcast per channel
        if self.training or not self.track_running_stats:
            n = input.numel() // self.num_features
            if n <= 1:
                raise ValueError(f"{type(self).__name__}: expected more than 1 value per "
                                 f"channel when training, got input of shape "
                                 f"{tuple(input.shape)}")
            mean = input.mean(dims, keepdim=True)
            var = input.var(dims, correction=0, keepdim=True)
            if self.training and self.track_running_stats:
                m = self.momentum
                with no_grad():
                    self.running_mean.mul_(1 - m).add_(mean.detach().reshape(-1) * m)
                    unbiased = var.detach().reshape(-1) * (n / (n - 1))
                    self.running_var.mul_(1 - m).add_(unbiased * m)
                    self.num_batches_tracked.add_(1)
        else:
            mean = self.running_mean.reshape(shape)
            var = self.running_var.reshape(shape)
        y = (input - mean) * ops.rsqrt(var + self.eps)
        if self.affine:
            y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
        return y

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over ``(N, C)`` or ``(N, C, L)`` inputs, per channel ``C``.

    ``momentum`` must be a number (PyTorch's ``momentum=None``, a cumulative
    average, needs the counter's value in Python and is not supported)."""

    def _check_input(self, input):
        if input.ndim not in (2, 3) or input.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm1d({self.num_features}): expected input of shape (N, "
                             f"{self.num_features}) or (N, {self.num_features}, L), got "
                             f"{tuple(input.shape)}")


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over ``(N, C, H, W)`` inputs, per channel ``C`` (statistics over
    ``N``, ``H`` and ``W``), as ``torch.nn.BatchNorm2d``: in training the batch's mean and
    biased variance, and the running statistics updated in place with the unbiased
    variance; in eval mode the running statistics.  ``momentum`` must be a number."""

    def _check_input(self, input):
        if input.ndim != 4:
            raise ValueError(f"expected 4D input (got {input.ndim}D input)")
        if input.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2d({self.num_features}): expected input of shape (N, "
                             f"{self.num_features}, H, W), got {tuple(input.shape)}")


class Dropout2d(Module):
    """Zeroes whole channels (each ``(n, c)`` plane) with probability ``p`` in training,
    scaling the rest by ``1/(1-p)`` (:func:`minaot.nn.functional.dropout2d`); the identity
    in eval mode."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(Module):
    """Zeroes each element with probability ``p`` in training (scaling the rest by
    ``1/(1-p)``); the identity in eval mode.  The mask comes from the default
    generator."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability has to be between 0 and 1, but got {p}")
        self.p = p

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Sequential(Module):
    """Runs its modules in order; ``Sequential(a, b)`` or ``Sequential(OrderedDict(...))``."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return mods[idx]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def forward(self, input):
        for m in self._modules.values():
            input = m(input)
        return input


class MSELoss(Module):
    """``mse_loss(input, target, reduction)`` as a module."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class CrossEntropyLoss(Module):
    """Cross entropy of logits ``(N, C)`` against class indices ``(N,)`` or probabilities
    ``(N, C)``, with a class ``weight``, ``ignore_index`` and ``label_smoothing`` as in
    PyTorch (:func:`minaot.cross_entropy`)."""

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__()
        self.register_buffer("weight", weight)      # module state, as in PyTorch
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction,
                               self.label_smoothing)
