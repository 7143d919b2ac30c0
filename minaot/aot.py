"""``aot_function`` and ``compile``: trace once per input signature, compile, reuse.

A call flattens its arguments, builds a *guard key* (the pytree structure;
per tensor its shape, strides, storage offset, dtype, device and
requires_grad; which arguments are the same tensor or share storage; grad
mode; the non-tensor arguments' values) and looks the key up in the
function's cache.  A miss compiles a new entry:

    trace -> functionalize -> decompose -> canonicalize, cse, dce -> compiler

and a hit reuses it; ``minaot.counters["aot"]`` counts both.  Inference (no
input requires grad, or grad mode off) compiles one graph with
``inference_compiler``.

The tensors' device is part of the key, and picks the compilers an entry uses
when none were given: the reference interpreter (``aot_function``) or
``numba_compiler`` (``compile``) for CPU tensors, ``cuda_compiler`` for CUDA
tensors, whose compiled program keeps everything on the GPU.  Inputs on two
devices raise ``DeviceError`` (a 0-d CPU tensor among CUDA tensors is a scalar,
moved over as in eager), and so does a compiler that cannot run on the inputs'
device.  The runtime wrapper (:mod:`minaot.runtime`) then
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
from ._errors import DeviceError
from .autograd.grad_mode import is_grad_enabled, no_grad
from .compilers import default_compiler, get_backend, nop, numba_compiler
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
            # the array's shape and byte strides with the dtype say what shape, element
            # strides and dtype say, without computing them (this runs at every call)
            data, storage = x._data, x._storage
            parts.append((data.shape, data.strides, x._dtype.name, storage.device,
                          x.requires_grad, objs.setdefault(id(x), len(objs)),
                          stores.setdefault(id(storage), len(stores))))
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


def device_of(aot, leaves) -> str:
    """The one device of the tensor arguments ("cpu" without any); 0-d CPU tensors go with
    CUDA tensors (scalars), any other mix raises ``DeviceError`` naming two arguments."""
    tensors = [(i, x) for i, x in enumerate(leaves) if isinstance(x, Tensor)]
    cuda = [(i, x) for i, x in tensors if x.is_cuda]
    if not cuda:
        return "cpu"
    cpu = [(i, x) for i, x in tensors if not x.is_cuda and x.ndim > 0]
    if cpu:
        (i, a), (j, b) = cpu[0], cuda[0]
        raise DeviceError(
            f"{aot.name}: expected all tensor arguments on one device, but tensor argument {i} "
            f"(shape {a.shape}) is on {a.device} and tensor argument {j} (shape {b.shape}) on "
            f"{b.device}; move them with .to(device), .cuda() or .cpu()")
    return "cuda"


def _check_device(aot, compiler, device):
    devices = getattr(compiler, "devices", None)
    if devices is not None and device not in devices:
        name = getattr(compiler, "__name__", type(compiler).__name__)
        raise DeviceError(
            f"{aot.name}: the compiler {name} runs on {' and '.join(devices)} tensors, but the "
            f"inputs are {device} tensors; use backend='cuda' (minaot.cuda_compiler) for CUDA "
            "tensors, or leave the compiler out to pick one by the inputs' device")


class CompiledEntry:
    """One specialisation: the graphs, the compiled callables and the epilogue metadata."""

    def __init__(self, aot, leaves, spec):
        self.aot = aot
        self.spec = spec
        self.fallback = False
        self.device = device_of(aot, leaves)
        self.fw_compiler, self.bw_compiler, self.inference_compiler = aot.compilers_for(self.device)
        self.partition_fn = aot.partition_fn
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
            # which results are the new data of which input: a backend may write them
            # into the input's own memory (the numba backend's reinplacing)
            graph.reinplace = {info.graph_output: i for i, info in enumerate(meta.inputs)
                               if info.mutates_data and not info.mutates_metadata}
            self.compiled = self.inference_compiler(graph, args)
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
            user = epilogue(self.meta, args, outs, self.trace_info.out_layouts)
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
                 decompositions=None, inference_compiler=None, cpu_compiler=nop):
        self.fn = fn
        self.name = getattr(fn, "__name__", "fn")
        self.fw_compiler = fw_compiler              # None: by the inputs' device
        self.bw_compiler = bw_compiler
        self.inference_compiler = inference_compiler
        self.cpu_compiler = cpu_compiler
        self.partition_fn = partition_fn
        self.decompositions = decompositions
        self.cache = {}
        functools.update_wrapper(self, fn)
        register_cache(self)

    def clear_cache(self):
        self.cache.clear()

    def compilers_for(self, device):
        """(fw, bw, inference) compilers for inputs on ``device``: the given ones, else
        :func:`~minaot.compilers.default_compiler`; each checked to run on ``device``."""
        fw = self.fw_compiler or default_compiler(device, self.cpu_compiler)
        bw = self.bw_compiler or fw
        inference = self.inference_compiler or fw
        for c in (fw, bw, inference):
            _check_device(self, c, device)
        return fw, bw, inference

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
    ``compiler(graph, example_inputs) -> callable`` (default: :func:`minaot.nop` for CPU
    tensors, :func:`minaot.cuda_compiler` for CUDA tensors);
    ``partition_fn(joint, num_fwd_outputs) -> (fw, bw)`` splits the joint
    graph; ``decompositions`` adds or overrides entries of the decomposition
    table (``{op: fn}``)."""
    return AOTFunction(fn, fw_compiler, bw_compiler, partition_fn, decompositions,
                       inference_compiler)


def compile(fn=None, backend="auto", **kwargs):
    """The short form: ``minaot.compile(fn)`` (usable as a decorator).

    ``fn`` may be an :class:`~minaot.nn.Module`: as ``torch.compile(module)``, the result
    is a module (:class:`~minaot.aot_module.OptimizedModule`) whose call runs the compiled
    forward, with the original module's parameters and buffers as graph inputs (training
    works: gradients reach the original parameters), and whose ``parameters()``,
    ``state_dict()`` (keys prefixed ``_orig_mod.``, as in PyTorch), ``train()``/``eval()``
    and attributes are the original module's.

    ``"auto"`` (the default) picks by the device of the inputs: ``"numba"`` for CPU
    tensors (fused, generated Numba kernels), ``"cuda"`` for CUDA tensors (generated CUDA
    kernels, the whole program on the GPU); ``"numpy"`` runs the reference interpreter;
    a compiler function works too.

    Like ``torch.compile`` (and unlike :func:`aot_function`, whose default is
    AOTAutograd's :func:`default_partition`), training graphs are split by
    :func:`min_cut_rematerialization_partition` unless ``partition_fn`` is given:
    fewer saved activations, cheap pointwise ops recomputed inside the backward's
    kernels."""
    if fn is None:
        return lambda f: compile(f, backend=backend, **kwargs)
    from .nn.module import Module
    if isinstance(fn, Module):
        from .aot_module import OptimizedModule
        return OptimizedModule(fn, backend=backend, **kwargs)
    if kwargs.get("partition_fn") is None:
        from .passes.partition import min_cut_rematerialization_partition
        kwargs["partition_fn"] = min_cut_rematerialization_partition
    if backend == "auto":
        return AOTFunction(fn, cpu_compiler=numba_compiler, **kwargs)
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
