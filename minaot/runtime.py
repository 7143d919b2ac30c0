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
"""

from __future__ import annotations

from .autograd.engine import replay_views
from .autograd.grad_mode import is_grad_enabled
from .dispatch import check_inplace_allowed, commit_inplace, set_metadata_inplace


def copy_back_mutations(meta, args, outs):
    for info, arg in zip(meta.inputs, args):
        if info.mutates_data:
            new = outs[info.graph_output]
            if (new.shape == arg.shape and new.dtype == arg.dtype and new.device == arg.device
                    and not (is_grad_enabled() and (arg.requires_grad or new.requires_grad))):
                # what ``arg.copy_(new)`` does without autograd, minus its first copy (the
                # pure ``copy`` twin would copy ``new`` only to copy it again); when a
                # backend wrote the new value into ``arg``'s own memory (``reinplace``)
                # nothing moves and only the version counter is bumped
                check_inplace_allowed("copy_", arg)
                commit_inplace("copy_", arg, new)
            else:
                arg.copy_(new)


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
            set_metadata_inplace(arg, replay_views(info.meta_chain, arg))


def epilogue(meta, args, outs):
    copy_back_mutations(meta, args, outs)
    user = user_outputs(meta, args, outs)
    replay_metadata_mutations(meta, args)
    return user
