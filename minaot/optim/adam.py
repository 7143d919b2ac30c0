"""Adam and AdamW (``torch.optim.Adam`` and ``AdamW``, without amsgrad).

For each parameter ``p`` with gradient ``g``, at step ``t = 1, 2, ...``::

    g = g + weight_decay * p                   (L2 penalty, not AdamW's decoupled decay)
    m = beta1 * m + (1 - beta1) * g            (first moment, starts at 0)
    v = beta2 * v + (1 - beta2) * g * g        (second moment, starts at 0)
    denom = sqrt(v) / sqrt(1 - beta2**t) + eps
    p = p - lr / (1 - beta1**t) * m / denom    (bias-corrected step)

``fused=True`` (like PyTorch's) runs the update as compiled code:
``minaot.compile`` traces the in-place update above, functionalizes it and
fuses it into one kernel per parameter (Numba on the CPU, CUDA for parameters
on the GPU) that reads ``p, g, m, v`` once and writes ``p, m, v`` (the epilogue
copies the new values in, or the kernel writes them in place).  On the CPU
each parameter's update is one compiled call, its per-step scalars 0-d
tensors, so every step reuses the compiled entry of its parameter's shape.  On
the GPU all the parameters of a group are updated by *one* compiled call over
lists of tensors (PyTorch's multi-tensor ``_fused_adam_``): the host time of
a step is that of one call, not one per parameter, which matters because a
training step on the GPU is bound by the host's time.  There the step
counter of each parameter is a 0-d device tensor and the bias corrections are
computed on the device, so a step copies nothing from the host (PyTorch's
"capturable" Adam).

AdamW decouples the weight decay from the gradient: each step first shrinks
the parameter, ``p = p * (1 - lr * weight_decay)``, then takes Adam's step
without the L2 term.
"""

from __future__ import annotations

import math

from ..dtypes import float64
from ..ops import tensor, zeros, zeros_like
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam, ``torch.optim.Adam``'s formula without amsgrad (see the module docstring).

    ``fused=True`` compiles each parameter's update into one kernel with
    :func:`minaot.compile` (a CUDA kernel for parameters on the GPU)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, fused: bool = False):
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"Adam: invalid lr={lr}, eps={eps} or weight_decay={weight_decay}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"Adam: betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay))
        self.fused = fused
        self._compiled = None
        self._compiled_device = None

    _decoupled = False          # AdamW: weight decay applied to the parameter, not the gradient

    def _update_group(self, params, group):
        if not self.fused:
            return super()._update_group(params, group)
        on_gpu = [p for p in params if p.is_cuda]
        super()._update_group([p for p in params if not p.is_cuda], group)
        if not on_gpu:
            return
        states = [self.state.setdefault(p, {}) for p in on_gpu]
        for p, state in zip(on_gpu, states):
            _init_state(p, state)
            if "step_t" not in state:
                state["step_t"] = zeros((), dtype=float64, device=p.device)
            state["step"] += 1
        if self._compiled_device is None:
            from ..aot import compile
            self._compiled_device = compile(_adam_steps_on_device)
        beta1, beta2 = group["betas"]
        self._compiled_device(on_gpu, [p.grad for p in on_gpu],
                              [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                              [s["step_t"] for s in states], group["lr"], beta1, beta2,
                              group["eps"], group["weight_decay"], self._decoupled)

    def _update(self, p, grad, group, state):
        _init_state(p, state)
        state["step"] += 1
        t = state["step"]
        beta1, beta2 = group["betas"]
        if group["weight_decay"]:
            grad = grad + p * group["weight_decay"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        step_size = group["lr"] / (1 - beta1 ** t)
        if self.fused:
            if self._compiled is None:
                from ..aot import compile
                self._compiled = compile(_adam_step)     # numba on the CPU
            scalars = tensor([step_size, 1 / math.sqrt(1 - beta2 ** t)], dtype=p.dtype,
                             device=p.device)
            self._compiled(p, grad, m, v, scalars, beta1, beta2, group["eps"])
            return
        m.mul_(beta1).add_(grad * (1 - beta1))
        v.mul_(beta2).add_(grad * grad * (1 - beta2))
        denom = v.sqrt() / math.sqrt(1 - beta2 ** t) + group["eps"]
        p.sub_(m / denom * step_size)


class AdamW(Adam):
    """AdamW, ``torch.optim.AdamW``'s formula without amsgrad: Adam with decoupled weight
    decay (``weight_decay`` 0.01 by default), ``p *= 1 - lr * weight_decay`` before each
    Adam step, instead of Adam's ``g += weight_decay * p``."""

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, fused: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, fused)

    def _update(self, p, grad, group, state):
        if group["weight_decay"]:
            p.mul_(1 - group["lr"] * group["weight_decay"])
        super()._update(p, grad, dict(group, weight_decay=0.0), state)


def _init_state(p, state):
    """Adam's state of ``p`` before its first step: step 0, both moments zero."""
    if not state:
        state["step"] = 0
        state["exp_avg"] = zeros_like(p)
        state["exp_avg_sq"] = zeros_like(p)


def _adam_steps_on_device(ps, gs, ms, vs, steps, lr, beta1, beta2, eps, weight_decay,
                          decoupled):
    """The Adam (or, ``decoupled``, AdamW) update of every parameter of ``ps`` in place: one
    function, so one compiled call for all of them (see the module docstring)."""
    for p, g, m, v, step in zip(ps, gs, ms, vs, steps):
        if weight_decay and decoupled:
            p.mul_(1 - lr * weight_decay)
        elif weight_decay:
            g = g + p * weight_decay
        _adam_step_on_device(p, g, m, v, step, lr, beta1, beta2, eps)


def _adam_step_on_device(p, g, m, v, step, lr, beta1, beta2, eps):
    """One parameter's Adam update in place, the step counter ``step`` a float64 0-d tensor
    on the parameter's device (counted up here), the bias corrections computed from it."""
    step.add_(1)
    step_size = lr / (1 - beta1 ** step)
    inv_bc2_sqrt = 1 / (1 - beta2 ** step).sqrt()
    m.mul_(beta1).add_(g * (1 - beta1))
    v.mul_(beta2).add_(g * g * (1 - beta2))
    p.sub_(m / (v.sqrt() * inv_bc2_sqrt.to(p.dtype) + eps) * step_size.to(p.dtype))


def _adam_step(p, g, m, v, scalars, beta1, beta2, eps):
    """One parameter's Adam update in place (traced by ``fused=True``); ``scalars`` holds
    the per-step ``lr / (1 - beta1**t)`` and ``1 / sqrt(1 - beta2**t)``."""
    m.mul_(beta1).add_(g * (1 - beta1))
    v.mul_(beta2).add_(g * g * (1 - beta2))
    p.sub_(m / (v.sqrt() * scalars[1] + eps) * scalars[0])
