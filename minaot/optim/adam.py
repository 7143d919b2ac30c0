"""Adam (``torch.optim.Adam``, without amsgrad).

For each parameter ``p`` with gradient ``g``, at step ``t = 1, 2, ...``::

    g = g + weight_decay * p                   (L2 penalty, not AdamW's decoupled decay)
    m = beta1 * m + (1 - beta1) * g            (first moment, starts at 0)
    v = beta2 * v + (1 - beta2) * g * g        (second moment, starts at 0)
    denom = sqrt(v) / sqrt(1 - beta2**t) + eps
    p = p - lr / (1 - beta1**t) * m / denom    (bias-corrected step)
"""

from __future__ import annotations

import math

from ..ops import zeros_like
from .optimizer import Optimizer


class Adam(Optimizer):
    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"Adam: invalid lr={lr}, eps={eps} or weight_decay={weight_decay}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"Adam: betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay))

    def _update(self, p, grad, group, state):
        if not state:
            state["step"] = 0
            state["exp_avg"] = zeros_like(p)
            state["exp_avg_sq"] = zeros_like(p)
        state["step"] += 1
        t = state["step"]
        beta1, beta2 = group["betas"]
        if group["weight_decay"]:
            grad = grad + p * group["weight_decay"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.mul_(beta1).add_(grad * (1 - beta1))
        v.mul_(beta2).add_(grad * grad * (1 - beta2))
        step_size = group["lr"] / (1 - beta1 ** t)
        denom = v.sqrt() / math.sqrt(1 - beta2 ** t) + group["eps"]
        p.sub_(m / denom * step_size)
