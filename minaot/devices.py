"""Moving tensors between devices: ``t.to("cuda")``, ``t.cuda()``, ``t.cpu()``.

A move is a copy into new memory on the other device (never a view: the two
devices do not share memory), and it is differentiable like PyTorch's
``ToCopyBackward``: the gradient of ``x.cuda()`` flows back to the CPU tensor
``x``, moved back to the CPU.  While a function is traced for compilation, a
move records nothing and returns its input: the traced graph has no devices,
the compiled program runs on the device of its inputs.

:func:`default_device` is the device that creation functions given no
``device=`` use (the CPU unless set): dispatch sets it to the GPU while the
decomposition of a composite op with CUDA inputs runs, so a ``rand(...)`` or
``zeros(...)`` inside it lands beside the op's inputs.
"""

from __future__ import annotations

import contextlib

import numpy as np

from .autograd.function import Function

_DEFAULT = ["cpu"]


def default_device() -> str:
    return _DEFAULT[-1]


@contextlib.contextmanager
def device_scope(device):
    """Creation functions without ``device=`` make tensors on ``device`` inside."""
    _DEFAULT.append(str(device))
    try:
        yield
    finally:
        _DEFAULT.pop()


def copy_to(t, device):
    """A copy of ``t``'s values on the other device ``device`` (no autograd): a new,
    C-contiguous tensor."""
    from .storage import CudaStorage
    from .tensor import Tensor
    if str(device) == "cuda":
        from .cuda import from_host
        arr, root = from_host(t._data)
        return Tensor._wrap(arr, CudaStorage(root))
    return Tensor._wrap(np.asarray(t._host(), order="C"))


class ToCopy(Function):
    """A move between devices (PyTorch's ``ToCopyBackward``): the gradient moves back."""

    @staticmethod
    def forward(ctx, x, device):
        ctx.source = str(x.device)
        return copy_to(x, device)

    @staticmethod
    def backward(ctx, g):
        return move(g, ctx.source), None


def move(t, device):
    """``t`` on ``device``: ``t`` itself if it is there, else a differentiable copy."""
    from . import dispatch
    from .tensor import device as _device
    device = _device(device)
    if t.device == device or dispatch._tracer is not None:
        return t
    if str(device) == "cuda":
        from .codegen.cuda_runtime import cuda_module
        cuda_module()           # raises, saying what is missing, without a GPU or simulator
    return ToCopy.apply(t, str(device))
