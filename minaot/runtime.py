"""The runtime wrapper around a compiled graph: the epilogue that keeps eager semantics.

A compiled graph is pure; what the user's function did to its inputs and which
outputs were views is recorded in a :class:`ViewAndMutationMeta`
(``functionalize``).  After the graph runs, in this order:

1. every input whose data was mutated gets the graph's new value copied in
   (``copy_``, which bumps its version counter as eager would);
2. each user output is produced: a fresh graph result, the caller's input
   itself, a real view of the caller's input (its view chain replayed), or a
   view of another output's base (so the outputs share storage as in eager);
3. inputs whose metadata changed (``t_``, ``unsqueeze_``) get the same view
   ops replayed in place.

Before that, a fresh result is given the dense layout its eager version had
(``x.t() * 2`` keeps ``x.t()``'s column-major strides in eager, ``softmax`` is
C-contiguous: :mod:`minaot.layout`), with one copy when it differs, because
compilers write C order and ``nop`` numpy's order, and ``torch.compile`` too gives
its outputs eager's strides.
"""

from __future__ import annotations

import numpy as np

from .autograd.engine import replay_views
from .autograd.grad_mode import is_grad_enabled, no_grad
from .dispatch import (check_inplace_allowed, commit_inplace, has_internal_overlap,
                       set_metadata_inplace)
from .layout import empty_with, same_layout
from .storage import Storage


def copy_back_mutations(meta, args, outs):
    for info, arg in zip(meta.inputs, args):
        if info.mutates_data:
            new = outs[info.graph_output]
            if info.mutations_hidden_from_autograd and is_grad_enabled():
                with no_grad():         # written under no_grad: autograd must not see it
                    copy_back_mutations(_only(meta, info), [arg], outs)
                continue
            if (new.shape == arg.shape and new.dtype == arg.dtype and new.device == arg.device
                    and not (is_grad_enabled() and (arg.requires_grad or new.requires_grad))):
                # what ``arg.copy_(new)`` does without autograd, minus its first copy (the
                # pure ``copy`` twin would copy ``new`` only to copy it again); when a
                # backend wrote the new value into ``arg``'s own memory (``reinplace``)
                # nothing moves and only the version counter is bumped
                check_inplace_allowed("copy_", arg)
                if new._data is arg._data and not has_internal_overlap(arg):
                    arg._storage.bump()     # the backend wrote into arg's memory: no copy
                    arg._view_version = arg._storage.version
                else:
                    commit_inplace("copy_", arg, new)
            else:
                arg.copy_(new)


def _only(meta, info):
    """``meta`` reduced to the one input ``info`` (for a copy back under ``no_grad``)."""
    from dataclasses import replace
    return replace(meta, inputs=[replace(info, mutations_hidden_from_autograd=False)])


def user_outputs(meta, args, outs):
    user = []
    for o in meta.outputs:
        if o.kind == "non_alias":
            user.append(outs[o.index])
        elif o.kind == "is_input":
            user.append(args[o.index])
        elif o.kind == "alias_of_input":
            user.append(replay_views(o.chain, args[o.index]))
        else:                                           # alias_of_output
            user.append(replay_views(o.chain, outs[o.index]) if o.chain else outs[o.index])
    return user


def replay_metadata_mutations(meta, args):
    for info, arg in zip(meta.inputs, args):
        if info.mutates_metadata:
            set_metadata_inplace(arg, replay_views(info.meta_chain, arg))   # bumps the version
        elif info.bumps_version and not info.mutates_data:
            arg._storage.bump()         # ``t_`` on a view of ``arg``, as eager counts it


def match_eager_layouts(meta, outs, layouts):
    """Give each fresh result the dense layout its eager version had (``layouts``:
    :attr:`minaot.tracing.TraceInfo.out_layouts`, from :func:`minaot.layout.dense_layout`),
    keeping the tensor object, and so its ``grad_fn``: ``x.t() * 2`` compiled is
    column-major, as eager and ``torch.compile`` give it.  On a GPU too (CUDA eager
    follows the same rule): a copy kernel into new memory of that layout."""
    for o, want in zip(meta.outputs, layouts):
        if want is None or o.kind != "non_alias":
            continue
        t = outs[o.index]
        a = t._data
        strides = None if want == "C" else want        # layout.py's None is C order
        if not isinstance(a, np.ndarray):
            from .cuda import geometry      # a numpy stand-in with the device array's strides
            if t.is_cuda and not same_layout(geometry(a), strides):
                _cuda_relayout(t, strides)
            continue
        if same_layout(a, strides):
            continue
        new = empty_with(a.shape, a.dtype, strides)
        new[...] = a
        t._data, t._storage = new, Storage(new)


def _cuda_relayout(t, strides) -> None:
    """``t``'s values in new device memory with byte ``strides`` (None: C order)."""
    from .cuda_eager import copy_into, empty
    from .storage import CudaStorage
    a = t._data
    item = a.dtype.itemsize
    new, root = empty(a.shape, a.dtype, None if strides is None else
                      tuple(s // item for s in strides))
    copy_into(new, a)
    t._data, t._storage = new, CudaStorage(root)


def epilogue(meta, args, outs, layouts=None):
    if layouts is not None:
        match_eager_layouts(meta, outs, layouts)
    copy_back_mutations(meta, args, outs)
    user = user_outputs(meta, args, outs)
    replay_metadata_mutations(meta, args)
    return user
