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


def _functional_call(mod, params, buffers, modes, args, kwargs):
    """Run ``mod``'s forward with the given tensors in its parameter and buffer slots and
    the given training flags, then put the module's own back."""
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


def _call_compiled(compiled, mod, args, kwargs):
    """Call the compiled functional call with ``mod``'s current parameters, buffers and
    training flags."""
    params = tuple(t for _, _, t in _slots(mod, "_parameters"))
    buffers = tuple(t for _, _, t in _slots(mod, "_buffers"))
    modes = tuple(m.training for m in mod.modules())
    return compiled(params, buffers, modes, args, kwargs)


class AOTModule(Module):
    """What :func:`aot_module` returns: a Module whose forward runs the compiled graphs."""

    def __init__(self, module, **compile_kwargs):
        super().__init__()
        self.orig_module = module
        self.training = module.training
        self.compiled = aot_function(self._functional_call, **compile_kwargs)

    def _functional_call(self, params, buffers, modes, args, kwargs):
        """Run the original forward with the given tensors in the parameter and buffer slots."""
        return _functional_call(self.orig_module, params, buffers, modes, args, kwargs)

    def forward(self, *args, **kwargs):
        return _call_compiled(self.compiled, self.orig_module, args, kwargs)

    def extra_repr(self):
        return "compiled"


class OptimizedModule(Module):
    """What ``minaot.compile(module)`` returns, as ``torch.compile(module)`` does: a Module
    holding the original as its one submodule ``_orig_mod``, whose call runs the compiled
    forward (parameters and buffers as graph inputs, see :class:`AOTModule`).

    Like PyTorch's ``OptimizedModule``: ``parameters()`` are the original's (named
    ``_orig_mod.<name>``, and so are the ``state_dict`` keys), ``train()``/``eval()`` and
    ``training`` are the original's, and reading, setting or deleting any other attribute
    reaches the original (``compiled.fc``, ``compiled.p = 0.5``); ``len()`` too.  Gradients
    of a training step land in the original parameters' ``.grad``, buffer updates in its
    buffers.  Python attributes other than the training flags are baked into the graph at
    the first call of a signature, as for :func:`aot_module`."""

    _own = frozenset({"_orig_mod", "_compiled", "forward", "__dict__"})

    def __init__(self, module, **compile_kwargs):
        from .aot import compile as _compile
        Module.__init__(self)
        self._modules["_orig_mod"] = module

        def forward_of_module(params, buffers, modes, args, kwargs):
            return _functional_call(module, params, buffers, modes, args, kwargs)
        forward_of_module.__name__ = f"{type(module).__name__}_forward"
        object.__setattr__(self, "_compiled", _compile(forward_of_module, **compile_kwargs))

    @property
    def training(self):
        return self._orig_mod.training

    @training.setter
    def training(self, value):           # Module.__init__ and train() set it: the original's
        modules = self.__dict__.get("_modules")
        if modules and "_orig_mod" in modules:
            object.__setattr__(modules["_orig_mod"], "training", value)

    def forward(self, *args, **kwargs):
        return _call_compiled(self._compiled, self._orig_mod, args, kwargs)

    def __getattr__(self, name):
        modules = self.__dict__.get("_modules")
        if modules is None or "_orig_mod" not in modules:
            raise AttributeError(name)
        if name == "_orig_mod":
            return modules["_orig_mod"]
        return getattr(modules["_orig_mod"], name)

    def __setattr__(self, name, value):
        if hasattr(type(self), name) or name in self._own:
            return Module.__setattr__(self, name, value)
        return setattr(self._orig_mod, name, value)

    def __delattr__(self, name):
        if hasattr(type(self), name) or name in self._own:
            return Module.__delattr__(self, name)
        return delattr(self._orig_mod, name)

    def __len__(self):
        return len(self._orig_mod)

    def __dir__(self):
        own = object.__dir__(self)
        return sorted(set(dir(self._orig_mod)) | set(own))


def aot_module(module, fw_compiler=None, bw_compiler=None, partition_fn=None,
               decompositions=None):
    """Compile ``module``'s forward ahead of time; returns a Module (see :class:`AOTModule`).

    ``fw_compiler``, ``bw_compiler``, ``partition_fn`` and ``decompositions``
    are passed to :func:`~minaot.aot_function`."""
    if not isinstance(module, Module):
        raise TypeError(f"aot_module expects an nn.Module, got {type(module).__name__}")
    return AOTModule(module, fw_compiler=fw_compiler, bw_compiler=bw_compiler,
                     partition_fn=partition_fn, decompositions=decompositions)
