"""More layers (PyTorch's names): activations, shape helpers, containers, losses, ``Embedding``.

Each activation and loss calls one function of :mod:`minaot.nn.functional`, so eager
mode, tracing and ``aot_module`` run the same code.  The containers ``ModuleList``,
``ModuleDict`` and ``ParameterList`` register what they hold under the names ``"0"``,
``"1"``, ... (or the dict's keys), so ``parameters()``, ``state_dict()``, ``.cuda()`` and
``aot_module`` see it, as they see a ``Sequential``'s layers.
"""

from __future__ import annotations


from .. import dtypes as dt
from .. import ops
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from . import functional as F
from .module import Module, Parameter


# ---------------------------------------------------------------- activations
class _Activation(Module):
    """A parameterless module calling ``fn(input, **self.kwargs)``."""

    fn = None

    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs

    def forward(self, input):
        return type(self).fn(input, **self.kwargs)

    def extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())


class Tanh(_Activation):
    """``tanh(x)``."""
    fn = staticmethod(ops.tanh)


class Sigmoid(_Activation):
    """``sigmoid(x)``."""
    fn = staticmethod(ops.sigmoid)


class SiLU(_Activation):
    """``x * sigmoid(x)`` (:func:`minaot.nn.functional.silu`)."""
    fn = staticmethod(F.silu)

    def __init__(self, inplace: bool = False):
        super().__init__(inplace=inplace)


class Mish(SiLU):
    """``x * tanh(softplus(x))`` (:func:`minaot.nn.functional.mish`)."""
    fn = staticmethod(F.mish)


class LeakyReLU(_Activation):
    """``x`` for ``x > 0``, else ``negative_slope * x``."""
    fn = staticmethod(F.leaky_relu)

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__(negative_slope=negative_slope, inplace=inplace)


class ELU(_Activation):
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``."""
    fn = staticmethod(F.elu)

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__(alpha=alpha, inplace=inplace)


class CELU(_Activation):
    """``x`` for ``x > 0``, else ``alpha * (exp(x / alpha) - 1)``."""
    fn = staticmethod(F.celu)

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__(alpha=alpha, inplace=inplace)


class SELU(SiLU):
    """``scale * elu(x, alpha)`` with PyTorch's constants."""
    fn = staticmethod(F.selu)


class Softplus(_Activation):
    """``log(1 + exp(beta * x)) / beta`` (``x`` where ``beta * x > threshold``)."""
    fn = staticmethod(F.softplus)

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__(beta=beta, threshold=threshold)


class Softsign(_Activation):
    """``x / (1 + |x|)``."""
    fn = staticmethod(F.softsign)


class LogSigmoid(_Activation):
    """``log(sigmoid(x))``, computed stably."""
    fn = staticmethod(F.logsigmoid)


class Hardtanh(_Activation):
    """``x`` limited to ``[min_val, max_val]``."""
    fn = staticmethod(F.hardtanh)

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__(min_val=min_val, max_val=max_val, inplace=inplace)


class ReLU6(SiLU):
    """``hardtanh(x, 0, 6)``."""
    fn = staticmethod(F.relu6)


class Hardsigmoid(SiLU):
    """``relu6(x + 3) / 6``."""
    fn = staticmethod(F.hardsigmoid)


class Hardswish(SiLU):
    """``x * relu6(x + 3) / 6``."""
    fn = staticmethod(F.hardswish)


class GLU(_Activation):
    """``a * sigmoid(b)`` for the two halves ``a``, ``b`` of the input along ``dim``."""
    fn = staticmethod(F.glu)

    def __init__(self, dim: int = -1):
        super().__init__(dim=dim)


def _softmax_dim(ndim):
    """PyTorch's legacy choice of axis when ``dim=None``: 0 for 0-, 1- and 3-d inputs, else 1."""
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(Module):
    """``softmax(x, dim)`` (``dim=None``: PyTorch's legacy implicit axis)."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return ops.softmax(input, _softmax_dim(input.ndim) if self.dim is None else self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """``log_softmax(x, dim)``."""

    def forward(self, input):
        return ops.log_softmax(input, _softmax_dim(input.ndim) if self.dim is None else self.dim)


class Softmin(Softmax):
    """``softmax(-x, dim)``."""

    def forward(self, input):
        return F.softmin(input, _softmax_dim(input.ndim) if self.dim is None else self.dim)


# ---------------------------------------------------------------- shapes
class Identity(Module):
    """Returns its input; any constructor arguments are ignored (as in PyTorch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Flatten(Module):
    """``input.flatten(start_dim, end_dim)``; by default keeps the batch axis."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return ops.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Splits axis ``dim`` into ``unflattened_size`` (which may hold one -1)."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input):
        d = self.dim % input.ndim if input.ndim else 0
        shape = tuple(input.shape[:d]) + self.unflattened_size + tuple(input.shape[d + 1:])
        known = 1
        for s in self.unflattened_size:
            known *= s if s != -1 else 1
        if -1 not in self.unflattened_size and known != input.shape[d]:
            raise RuntimeError(f"Unflatten: unflattened_size {self.unflattened_size} does not "
                               f"multiply to dimension {self.dim} of size {input.shape[d]}")
        return ops.reshape(input, shape)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


# ---------------------------------------------------------------- containers
class ModuleList(Module):
    """A list of modules, registered as submodules ``"0"``, ``"1"``, ...; it has no forward."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, idx):
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range")
        return idx % n

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return type(self)(mods[idx])
        return mods[self._index(idx)]

    def __setitem__(self, idx, module):
        self.add_module(str(self._index(idx)), module)

    def __delitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            del mods[idx]
        else:
            del mods[self._index(idx)]
        self._modules.clear()
        for i, m in enumerate(mods):          # renumber, as PyTorch does
            self.add_module(str(i), m)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules):
        return self.extend(modules)

    def append(self, module):
        """Add ``module`` at the end."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        """Append each of ``modules``."""
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, module):
        """Insert ``module`` before position ``index``."""
        mods = list(self._modules.values())
        mods.insert(index, module)
        self._modules.clear()
        for i, m in enumerate(mods):
            self.add_module(str(i), m)


class ModuleDict(Module):
    """An ordered dict of modules, registered as submodules under their keys."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def __contains__(self, key):
        return key in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        """The keys, in insertion order."""
        return self._modules.keys()

    def values(self):
        """The modules, in insertion order."""
        return self._modules.values()

    def items(self):
        """``(key, module)`` pairs, in insertion order."""
        return self._modules.items()

    def pop(self, key):
        """Remove ``key`` and return its module."""
        return self._modules.pop(key)

    def clear(self):
        """Remove every module."""
        self._modules.clear()

    def update(self, modules):
        """Add the modules of a mapping or of ``(key, module)`` pairs."""
        items = modules.items() if hasattr(modules, "items") else modules
        for k, m in items:
            self[k] = m


class ParameterList(Module):
    """A list of parameters, registered as ``"0"``, ``"1"``, ...; a plain tensor appended
    becomes a :class:`Parameter` (as in PyTorch)."""

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.extend(values)

    @staticmethod
    def _as_param(value):
        if isinstance(value, Tensor) and not isinstance(value, Parameter):
            return Parameter(value)
        return value

    def _index(self, idx):
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range")
        return idx % n

    def __getitem__(self, idx):
        ps = list(self._parameters.values())
        if isinstance(idx, slice):
            return ParameterList(ps[idx])
        return ps[self._index(idx)]

    def __setitem__(self, idx, value):
        self.register_parameter(str(self._index(idx)), self._as_param(value))

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def __iadd__(self, values):
        return self.extend(values)

    def append(self, value):
        """Add ``value`` (a Parameter, or a tensor made one) at the end."""
        self.register_parameter(str(len(self)), self._as_param(value))
        return self

    def extend(self, values):
        """Append each of ``values``."""
        for v in values:
            self.append(v)
        return self

    def __repr__(self):
        lines = [f"({i}): Parameter of shape {tuple(p.shape)} ({p.dtype.name})"
                 for i, p in enumerate(self)]
        return "ParameterList(" + "".join("\n  " + line for line in lines) + ("\n)" if lines else ")")


# ---------------------------------------------------------------- losses
class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction


class NLLLoss(_Loss):
    """``nll_loss(input, target, weight, ignore_index, reduction)`` as a module."""

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class L1Loss(_Loss):
    """``l1_loss(input, target, reduction)`` as a module."""

    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """``smooth_l1_loss(input, target, reduction, beta)`` as a module."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0):
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """``huber_loss(input, target, reduction, delta)`` as a module."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input, target):
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class BCELoss(_Loss):
    """``binary_cross_entropy(input, target, weight, reduction)``; ``weight`` is a buffer."""

    def __init__(self, weight=None, reduction: str = "mean"):
        super().__init__(reduction)
        self.register_buffer("weight", weight)

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """``binary_cross_entropy_with_logits(input, target, weight, reduction, pos_weight)``;
    ``weight`` and ``pos_weight`` are buffers."""

    def __init__(self, weight=None, reduction: str = "mean", pos_weight=None):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class KLDivLoss(_Loss):
    """``kl_div(input, target, reduction, log_target)`` as a module."""

    def __init__(self, reduction: str = "mean", log_target: bool = False):
        super().__init__(reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


# ---------------------------------------------------------------- embedding
class Embedding(Module):
    """A lookup table of ``num_embeddings`` vectors of size ``embedding_dim``: ``weight``
    starts N(0, 1) from the default generator, with the ``padding_idx`` row zeroed; that
    row gets no gradient (:func:`minaot.nn.functional.embedding`)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx=None, dtype=None,
                 _weight=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} must be within "
                                 f"num_embeddings {num_embeddings}")
            padding_idx %= num_embeddings
        self.padding_idx = padding_idx
        if _weight is None:
            dtype = dt.to_dtype(dtype) if dtype is not None else dt.default_float
            with no_grad():
                w = ops.randn(num_embeddings, embedding_dim, dtype=dtype)
                if padding_idx is not None:
                    w[padding_idx].fill_(0.0)
            _weight = w
        elif tuple(_weight.shape) != (num_embeddings, embedding_dim):
            raise ValueError(f"Embedding: _weight of shape {tuple(_weight.shape)} is not "
                             f"({num_embeddings}, {embedding_dim})")
        self.weight = Parameter(_weight)

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx=None):
        """An Embedding whose weight is ``embeddings`` (2-d); frozen unless ``freeze=False``."""
        if embeddings.ndim != 2:
            raise ValueError("Embedding.from_pretrained: embeddings must be 2-dimensional")
        m = cls(embeddings.shape[0], embeddings.shape[1], padding_idx, _weight=embeddings)
        m.weight.requires_grad_(not freeze)
        return m

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self):
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


__all__ = ["Tanh", "Sigmoid", "SiLU", "Mish", "LeakyReLU", "ELU", "CELU", "SELU", "Softplus",
           "Softsign", "LogSigmoid", "Hardtanh", "ReLU6", "Hardsigmoid", "Hardswish", "GLU",
           "Softmax", "LogSoftmax", "Softmin", "Identity", "Flatten", "Unflatten", "ModuleList",
           "ModuleDict", "ParameterList", "NLLLoss", "L1Loss", "SmoothL1Loss", "HuberLoss",
           "BCELoss", "BCEWithLogitsLoss", "KLDivLoss", "Embedding"]

