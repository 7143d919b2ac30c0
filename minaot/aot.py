"""``aot_function`` and ``compile``: trace once per input signature, compile, reuse.

A call flattens its arguments, builds a *guard key* (the pytree structure;
per tensor its shape, strides, storage offset, dtype, device and
requires_grad; which arguments are the same tensor or share storage; grad
mode; the non-tensor arguments' values) and looks the key up in the
function's cache.  A miss compiles a new entry:

    trace -> functionalize -> decompose -> canonicalize, cse, dce -> compiler

and a hit reuses it; ``minaot.counters["aot"]`` counts both.  Inference (no
input requires grad, or grad mode off) compiles one graph with
``inference_compiler``.  The runtime wrapper (:mod:`minaot.runtime`) then
applies the epilogue: input mutations copied back, aliased outputs rebuilt
as views, input metadata mutations replayed.

Inputs that overlap in memory while one of them is mutated cannot be
expressed as separate graph inputs; such a call runs eagerly, with a one-time
warning, never with a wrong answer.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from . import pytree
from .autograd.grad_mode import is_grad_enabled, no_grad
from .compilers import get_backend, nop
from .counters import counters, register_cache
from .ir import PassManager
from .passes.decompose import Decompose
from .passes.functionalize import functionalize
from .tensor import Tensor
from .tracing import TENSOR_OUTPUT, trace


def _leaf_key(x):
    if isinstance(x, (int, float, bool, str, type(None))):
        return (type(x), x)
    return (type(x), id(x))


def guard_key(leaves, spec):
    """Everything a compiled entry was specialised on.

    Not the storage offset: the graph never sees it (outputs that are views of an
    input are replayed from that input's view chain), so batches sliced out of one
    big tensor share one entry, as in PyTorch."""
    objs, stores = {}, {}
    parts = [spec, is_grad_enabled()]
    for x in leaves:
        if isinstance(x, Tensor):
            parts.append((x.shape, x.stride(), x.dtype.name, str(x.device),
                          x.requires_grad, objs.setdefault(id(x), len(objs)),
                          stores.setdefault(id(x._storage), len(stores))))
        else:
            parts.append(_leaf_key(x))
    return tuple(parts)


def _overlapping_mutation(meta, args) -> bool:
    for i, info in enumerate(meta.inputs):
        if not (info.mutates_data or info.mutates_metadata):
            continue
        for j, other in enumerate(args):
            if j != i and other._storage is args[i]._storage and \
                    np.shares_memory(other._data, args[i]._data):
                return True
    return False


class CompiledEntry:
    """One specialisation: the graphs, the compiled callables and the epilogue metadata."""

    def __init__(self, aot, leaves, spec):
        self.aot = aot
        self.spec = spec
        self.fallback = False
        flat_fn = _flat_function(aot.fn, spec)
        mt_graph = trace(flat_fn, *leaves, name=getattr(aot.fn, "__name__", "fn"))
        info = mt_graph.trace_info
        self.trace_info = info
        self.arg_leaves = [info.arg_of_leaf.index(a) for a in range(len(mt_graph.args))]
        args = [leaves[i] for i in self.arg_leaves]
        self.mt_graph = mt_graph
        graph, meta = functionalize(mt_graph)
        self.meta = meta
        if _overlapping_mutation(meta, args):
            self.fallback = True
            warnings.warn(f"minaot: {aot.name} mutates an input that overlaps another input in "
                          "memory; this call pattern runs eagerly", stacklevel=4)
            return
        pm = PassManager([Decompose(aot.decompositions), "canonicalize", "cse", "dce"],
                         verify_each=True)
        pm.run(graph)
        self.graph = graph
        self.pass_manager = pm
        self.training = is_grad_enabled() and any(a.requires_grad for a in args)
        if self.training:
            from .training import compile_training
            self.runner = compile_training(self, graph, meta, args)
        else:
            from .passes.strip_autograd import strip_autograd_ops
            strip_autograd_ops(graph)
            PassManager(["dce"]).run(graph)
            compiler = aot.inference_compiler or aot.fw_compiler
            self.compiled = compiler(graph, args)
            counters["aot"]["compiled_graphs"] += 1

    def run(self, leaves):
        if self.fallback:
            args, kwargs = pytree.unflatten(leaves, self.spec)
            return self.aot.fn(*args, **kwargs)
        args = [leaves[i] for i in self.arg_leaves]
        if self.training:
            user = self.runner(args)
        else:
            with no_grad():
                outs = _as_list(self.compiled(*args))
            from .runtime import epilogue
            user = epilogue(self.meta, args, outs)
        it = iter(user)
        out_leaves = [next(it) if k is TENSOR_OUTPUT else k for k in self.trace_info.out_leaves]
        return pytree.unflatten(out_leaves, self.trace_info.out_spec)


def _as_list(out):
    if isinstance(out, Tensor):
        return [out]
    return list(out)


def _flat_function(fn, spec):
    def flat(*leaves):
        args, kwargs = pytree.unflatten(list(leaves), spec)
        return fn(*args, **kwargs)
    return flat


class AOTFunction:
    """The callable ``aot_function`` returns: same signature as ``fn``, cached per guard key."""

    def __init__(self, fn, fw_compiler=None, bw_compiler=None, partition_fn=None,
                 decompositions=None, inference_compiler=None):
        self.fn = fn
        self.name = getattr(fn, "__name__", "fn")
        self.fw_compiler = fw_compiler or nop
        self.bw_compiler = bw_compiler or self.fw_compiler
        self.inference_compiler = inference_compiler
        self.partition_fn = partition_fn
        self.decompositions = decompositions
        self.cache = {}
        functools.update_wrapper(self, fn)
        register_cache(self)

    def clear_cache(self):
        self.cache.clear()

    def __call__(self, *args, **kwargs):
        leaves, spec = pytree.flatten((args, kwargs))
        key = guard_key(leaves, spec)
        entry = self.cache.get(key)
        if entry is None:
            counters["aot"]["cache_misses"] += 1
            counters["aot"]["compiles"] += 1
            entry = CompiledEntry(self, leaves, spec)
            self.cache[key] = entry
        else:
            counters["aot"]["cache_hits"] += 1
        return entry.run(leaves)


def aot_function(fn, fw_compiler=None, bw_compiler=None, partition_fn=None, decompositions=None,
                 inference_compiler=None):
    """Compile ``fn`` ahead of time; returns a callable with the same signature.

    ``fw_compiler``/``bw_compiler``/``inference_compiler`` are
    ``compiler(graph, example_inputs) -> callable`` (default :func:`minaot.nop`);
    ``partition_fn(joint, num_fwd_outputs) -> (fw, bw)`` splits the joint
    graph; ``decompositions`` adds or overrides entries of the decomposition
    table (``{op: fn}``)."""
    return AOTFunction(fn, fw_compiler, bw_compiler, partition_fn, decompositions,
                       inference_compiler)


def compile(fn=None, backend="numba", **kwargs):
    """The short form: ``minaot.compile(fn, backend="numba")`` (usable as a decorator).

    ``"numba"`` (the default) fuses and generates Numba kernels; ``"numpy"`` runs the
    reference interpreter; a compiler function works too."""
    if fn is None:
        return lambda f: compile(f, backend=backend, **kwargs)
    compiler = get_backend(backend)
    return aot_function(fn, fw_compiler=compiler, bw_compiler=compiler,
                        inference_compiler=compiler, **kwargs)


def export_joint(fn, *args, decompositions=None):
    """The joint forward+backward graph of ``fn`` for ``args`` (like AOTAutograd's joint export).

    Its arguments are the flat tensor inputs (``primals_i``) then one tangent
    per output that requires grad (``tangents_i``); it returns the forward's
    outputs then the gradients of the inputs that require grad.  The layout
    is in ``joint.joint_info``."""
    from .passes.joint import build_joint

    leaves, spec = pytree.flatten((args, {}))
    graph = trace(_flat_function(fn, spec), *leaves, name=getattr(fn, "__name__", "fn"))
    fx, _ = functionalize(graph)
    PassManager([Decompose(decompositions), "canonicalize", "cse", "dce"]).run(fx)
    tensors = [x for x in leaves if isinstance(x, Tensor)]
    uniq = list({id(t): t for t in tensors}.values())
    joint, _ = build_joint(fx, [t.requires_grad for t in uniq])
    return joint
