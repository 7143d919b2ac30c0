"""``Optimizer``: parameter groups, per-parameter state, ``zero_grad`` and ``step``.

An optimizer holds *param groups*: dicts with a ``"params"`` list and the
hyper-parameters for those parameters (``lr``, ``momentum``, ...), filled in
from the constructor's defaults, so different parts of a network can train
with different settings.  ``state[p]`` keeps what a method carries from step
to step for parameter ``p`` (momentum buffers, Adam's moments).  ``step()``
runs under ``no_grad`` and changes the parameters *in place*, so modules and
compiled modules that hold them see the new values.
"""

from __future__ import annotations

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor


class Optimizer:
    """Base class of the optimizers: param groups, per-parameter ``state``, ``step``.

    ``params`` is an iterable of leaf tensors, or of dicts (``{"params": [...], "lr":
    ...}``) that override ``defaults`` for their parameters.  A subclass writes
    ``_update(p, grad, group, state)``, the update of one parameter (and may write
    ``_update_group(params, group)`` to update a group's parameters together)."""

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state = {}
        self.param_groups = []
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict):
        group = dict(group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__} can only optimize tensors, got "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{type(self).__name__}: can't optimize a non-leaf tensor "
                                 f"(shape {p.shape})")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True):
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad = p.grad.detach()
                    p.grad.zero_()

    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns ``closure()``'s loss."""
        loss = None
        if closure is not None:
            from ..autograd.grad_mode import enable_grad
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                if params:
                    self._update_group(params, group)
        return loss

    def _update_group(self, params, group):
        """Update ``params`` (those of ``group`` with a gradient); by default one at a time.
        A subclass may update them together (Adam's fused update on the GPU)."""
        for p in params:
            self._update(p, p.grad, group, self.state.setdefault(p, {}))

    def _update(self, p, grad, group, state):
        raise NotImplementedError

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params"]
        return "\n".join(lines + [")"])
