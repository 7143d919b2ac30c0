"""``aot_module``: compile a whole ``nn.Module``, parameters and buffers as graph inputs.

A module's forward reads its parameters and buffers as attributes, but a
compiled graph may only read its inputs.  So the module is turned into a flat
function of ``(params, buffers, modes, *args)``: a *functional call* that,
for the duration of one forward, swaps every parameter and buffer slot of the
module tree for the given tensors and runs the original ``forward``.  One
:func:`~minaot.aot_function` compiles that function:

* parameters are inputs that require grad, so the training path builds the
  joint graph and the compiled backward's gradients land in the real
  parameters' ``.grad``, as in eager;
* buffers are inputs that the forward mutates (BatchNorm's running stats and
  counter): functionalization turns that into graph outputs that the
  runtime's copy-back epilogue writes into the real buffers;
* ``modes`` is every submodule's ``training`` flag.  It is part of the
  arguments, so ``aot_function``'s guard key holds it and ``train()`` and
  ``eval()`` each get their own graph.

The compiled module *is* a :class:`~minaot.nn.Module` that holds the original
as ``orig_module``: its ``parameters()`` are the original's parameters (an
optimizer built on either updates both), ``state_dict`` and ``train``/``eval``
reach through to it.  Python attributes other than the training flags (a
Dropout's ``p``, say) are baked into the graph at the first call.
"""

from __future__ import annotations

from .aot import aot_function
from .nn.module import Module


def _slots(module, store):
    """``(owner, name, tensor)`` for every non-empty parameter or buffer slot, in
    module order.  A tensor shared by two slots appears twice (the trace gives
    the same object passed twice one graph input)."""
    return [(m, name, t) for m in module.modules() for name, t in getattr(m, store).items()
            if t is not None]


class AOTModule(Module):
    """What :func:`aot_module` returns: a Module whose forward runs the compiled graphs."""

    def __init__(self, module, **compile_kwargs):
        super().__init__()
        self.orig_module = module
        self.training = module.training
        self.compiled = aot_function(self._functional_call, **compile_kwargs)

    def _functional_call(self, params, buffers, modes, args, kwargs):
        """Run the original forward with the given tensors in the parameter and buffer slots."""
        mod = self.orig_module
        slots = [(m, "_parameters", n) for m, n, _ in _slots(mod, "_parameters")] + \
                [(m, "_buffers", n) for m, n, _ in _slots(mod, "_buffers")]
        saved = [getattr(m, store)[n] for m, store, n in slots]
        modules = list(mod.modules())
        saved_modes = [m.training for m in modules]
        try:
            for (m, store, n), t in zip(slots, list(params) + list(buffers)):
                getattr(m, store)[n] = t
            for m, flag in zip(modules, modes):
                object.__setattr__(m, "training", flag)
            return mod.forward(*args, **kwargs)
        finally:
            for (m, store, n), t in zip(slots, saved):
                getattr(m, store)[n] = t
            for m, flag in zip(modules, saved_modes):
                object.__setattr__(m, "training", flag)

    def forward(self, *args, **kwargs):
        mod = self.orig_module
        params = tuple(t for _, _, t in _slots(mod, "_parameters"))
        buffers = tuple(t for _, _, t in _slots(mod, "_buffers"))
        modes = tuple(m.training for m in mod.modules())
        return self.compiled(params, buffers, modes, args, kwargs)

    def extra_repr(self):
        return "compiled"


def aot_module(module, fw_compiler=None, bw_compiler=None, partition_fn=None,
               decompositions=None):
    """Compile ``module``'s forward ahead of time; returns a Module (see :class:`AOTModule`).

    ``fw_compiler``, ``bw_compiler``, ``partition_fn`` and ``decompositions``
    are passed to :func:`~minaot.aot_function`."""
    if not isinstance(module, Module):
        raise TypeError(f"aot_module expects an nn.Module, got {type(module).__name__}")
    return AOTModule(module, fw_compiler=fw_compiler, bw_compiler=bw_compiler,
                     partition_fn=partition_fn, decompositions=decompositions)
