"""Stochastic gradient descent with momentum, dampening, weight decay and Nesterov.

For each parameter ``p`` with gradient ``g`` (``torch.optim.SGD``)::

    g = g + weight_decay * p
    if momentum:
        buf = g                                      (first step)
        buf = momentum * buf + (1 - dampening) * g   (later steps)
        g = g + momentum * buf  if nesterov  else  buf
    p = p - lr * g
"""

from __future__ import annotations

from .optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent, ``torch.optim.SGD``'s formula (see the module docstring).

    ``momentum``, ``dampening``, ``weight_decay`` (an L2 penalty added to the
    gradient) and ``nesterov`` as in PyTorch."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: invalid lr={lr}, momentum={momentum} or "
                             f"weight_decay={weight_decay} (must be >= 0)")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _update(self, p, grad, group, state):
        if group["weight_decay"]:
            grad = grad + p * group["weight_decay"]
        momentum = group["momentum"]
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.clone()
            else:
                buf.mul_(momentum).add_(grad * (1 - group["dampening"]))
            grad = grad + buf * momentum if group["nesterov"] else buf
        p.sub_(grad * group["lr"])
