"""Eager ops on CUDA tensors: each op call runs as a small compiled program.

Eager mode and compiled code share one path to the GPU.  When dispatch meets
an op whose inputs are CUDA tensors, :func:`run` looks up a *program* for
(op, attributes, input shapes, input dtypes) and runs it on the inputs'
device arrays.  Strides are not part of the key: the kernels index through each
array's strides, and Numba compiles one specialisation per layout class (C, F
or any strides) of the arrays it is given.  On a miss the program is built by
the same pipeline a compiled function goes through, on one op::

    trace the op on example CPU tensors (mt) -> functionalize -> decompose
    -> canonicalize, cse, dce -> fuse (kernel.fused + library ops)
    -> per kernel: lower-to-loops -> emit-numba-cuda -> kernel cache (disk)

so ``softmax`` on the GPU is the same fused row kernel that a compiled
``softmax`` gets.  The program is a list of steps: a kernel launch (outputs
allocated first: C order, or for a pointwise op the memory order of its
operands, by the rule the CPU and the tracer apply), or a library call on
device arrays:

* view ops (``reshape``, ``transpose``, ``slice``, ...): a strided device
  array over the same memory, its geometry computed by the op's numpy
  implementation on a stand-in (:mod:`minaot.cuda`); a reshape that needs a
  copy copies first, as numpy's does;
* ``matmul``: the tiled shared-memory kernel of :mod:`minaot.kernels.matmul_cuda`;
* ``gather``, ``scatter_add``, ``argmax``, ``argmin``: the hand-written
  kernels of :mod:`minaot.kernels.index_cuda`;
* ``cumsum``, ``cumprod``, ``logcumsumexp``, ``cumargmax``, ``cumargmin``,
  ``argsort``, ``searchsorted``: the one-thread-per-line (or per-value) kernels of
  :mod:`minaot.kernels.scan_sort_cuda`;
* ``cat``, ``slice_scatter``, ``select_scatter``: device copies into regions
  of a new array;
* ``constant``, ``arange``, ``rand``, ``randn`` (no inputs): the numpy
  implementation on the host, copied over once (the same random numbers as
  on the CPU for the same seed).

A device copy (:func:`copy_into`, with a dtype cast if needed) is itself the
one-kernel program of ``clone`` or ``to``, with the destination array given
as the kernel's output, so in-place ops (``x.add_(y)``: the pure op, then a
copy into ``x``'s memory) and ``.contiguous()`` run on the device too.
Python numbers in an op with CUDA tensors become 0-d device tensors (cached by
value), so a per-step scalar (Adam's bias correction) is a kernel *input* and
every step reuses the same kernel.  Programs live in a dict in the process;
the generated kernel modules live in the on-disk kernel cache
(:mod:`minaot.codegen.kernel_cache`), where Numba keeps their compiled code.
"""

from __future__ import annotations

import numpy as np

from . import cuda as _cuda
from .counters import counters, register_cache

_PROGRAMS: dict = {}
_COPIES: dict = {}
_SCALARS: dict = {}
MAX_PROGRAMS = 4096          # a dict, cleared when it grows past this (shapes that keep changing)
MAX_SCALARS = 256


class _Caches:
    """``minaot.reset()`` forgets the programs (their kernels stay in the disk cache)."""

    def clear_cache(self):
        _PROGRAMS.clear()
        _COPIES.clear()


_CACHES = _Caches()
register_cache(_CACHES)

#: the one-thread-per-line (and per-value) kernels of :mod:`minaot.kernels.scan_sort_cuda`
LINE_OPS = ("cumsum", "cumprod", "logcumsumexp", "cumargmax", "cumargmin", "argsort",
            "searchsorted")
VIEW_OPS = ("reshape", "expand", "transpose", "permute", "unsqueeze", "squeeze", "slice",
            "select", "detach")


def launch_options() -> dict:
    """``emit_numba_cuda`` options: the simulator runs a Python thread per CUDA thread, so
    its blocks stay small; a GPU gets the emitter's defaults."""
    return dict(max_threads=32) if _cuda.is_simulator() else {}


# ---------------------------------------------------------------- tensors <-> arrays
def wrap(arr, root):
    """A CUDA tensor over device array ``arr``, a view of the flat device array ``root``."""
    global _WRAP
    if _WRAP is None:                   # (imported once: a compiled step wraps dozens)
        from .storage import CudaStorage
        from .tensor import Tensor
        _WRAP = Tensor._wrap, CudaStorage
    make, storage = _WRAP
    return make(arr, storage(root))


_WRAP = None


def empty(shape, dtype, strides=None):
    """``(array, root)``: new device memory for ``shape`` (C order unless ``strides``)."""
    return _cuda.empty(tuple(shape), np.dtype(dtype), strides)


def scalar(value, dtype):
    """A 0-d CUDA tensor holding the Python number ``value`` (cached: never written to)."""
    key = (type(value), repr(value), dtype.name)       # repr: -0.0 is not 0.0, nan is nan
    t = _SCALARS.get(key)
    if t is None:
        if len(_SCALARS) >= MAX_SCALARS:
            _SCALARS.clear()
        t = _SCALARS[key] = wrap(*_cuda.from_host(np.array(value, dtype=dtype.np)))
    return t


# ---------------------------------------------------------------- views
def view_array(arr, name, attrs):
    """``(view, root)``: view op ``name`` applied to device array ``arr``: a view of
    ``arr``'s memory (``root`` None) or, for a reshape the strides do not allow, a view of
    a contiguous copy (``root`` that copy's memory)."""
    from .ops.registry import get_op
    stand = _cuda.geometry(arr)
    root = None
    if name == "reshape":
        try:
            v = np.reshape(stand, attrs["shape"], copy=False)
        except ValueError:              # numpy would copy: so do we, on the device
            arr, root = contiguous_copy_root(arr)
            stand = _cuda.geometry(arr)
            v = np.reshape(stand, attrs["shape"], copy=False)
    else:
        v = np.asarray(get_op(name).impl(stand, **attrs))
    return _cuda.view_like(arr, v, stand), root


# ---------------------------------------------------------------- copies
def copy_into(dst, src) -> None:
    """Write device array ``src`` (same shape; broadcast views welcome) into device array
    ``dst`` (any strides), casting to ``dst``'s dtype: one generated kernel."""
    if tuple(dst.shape) != tuple(src.shape):
        raise ValueError(f"copy_into: shapes {tuple(src.shape)} and {tuple(dst.shape)} differ")
    if dst.size == 0:
        return
    if (src is dst or (dst.dtype == src.dtype and tuple(dst.strides) == tuple(src.strides)
                       and _cuda.pointer(dst) == _cuda.pointer(src))):
        return                          # the same memory: a copy onto itself moves nothing
    dst, src = _in_memory_order(dst, src)
    key = (tuple(dst.shape), np.dtype(src.dtype).str, np.dtype(dst.dtype).str)
    launch = _COPIES.get(key)
    if launch is None:
        launch = _COPIES[key] = _copy_kernel(tuple(dst.shape), np.dtype(src.dtype),
                                             np.dtype(dst.dtype))
    launch(src, dst)


def _in_memory_order(dst, src):
    """``dst`` and ``src`` with their axes permuted alike so that ``dst``'s strides fall
    from the first axis to the last (views, no copy).  The copy kernel walks its shape in
    C order, neighbouring threads along the last axis: in ``dst``'s memory order its
    writes are coalesced, and so are its reads when ``src`` has the same order (a copy
    that keeps a transposed layout; walked in the transposed order, it ran 6x slower on
    the H100)."""
    n = len(dst.shape)
    if n < 2:
        return dst, src
    big = [d for d in range(n) if dst.shape[d] != 1]      # (a size-1 axis has any stride)
    walk = sorted(big, key=lambda d: (-abs(dst.strides[d]), d))
    if walk == big:
        return dst, src
    order = [d for d in range(n) if dst.shape[d] == 1] + walk

    def permuted(arr):
        return _cuda.strided(arr, 0, [arr.shape[d] for d in order],
                             [arr.strides[d] for d in order])
    return permuted(dst), permuted(src)


def _copy_kernel(shape, src_dtype, dst_dtype):
    """The launcher of the one kernel of ``clone`` (or ``to`` when the dtypes differ)."""
    from . import dtypes as dt
    from .dispatch import dispatch
    src = dt.from_numpy_dtype(src_dtype)
    dst = dt.from_numpy_dtype(dst_dtype)
    if src is dst:
        graph = _prim_graph(lambda x: dispatch("clone", x), [(shape, src)], "copy")
    else:
        graph = _prim_graph(lambda x: dispatch("to", x, dtype=dst.name), [(shape, src)], "cast")
    (kop,) = [o for o in graph.ops if o.name == "kernel.fused"]
    return _Kernel(kop, f"eager_copy_{src.name}_{dst.name}").launch


def contiguous_copy_root(arr):
    """``(copy, root)``: a C-contiguous copy of device array ``arr``."""
    out, root = empty(arr.shape, arr.dtype)
    copy_into(out, arr)
    return out, root


def contiguous_copy(arr):
    """A C-contiguous copy of device array ``arr`` (it keeps its memory alive)."""
    return contiguous_copy_root(arr)[0]


def clone_tensor(t):
    """A new CUDA tensor with ``t``'s values, C order (no autograd)."""
    out, root = contiguous_copy_root(t._data)
    return wrap(out, root)


# ---------------------------------------------------------------- programs
def _prim_graph(fn, specs, name):
    """The fused prim graph of ``fn`` traced on example CPU tensors of ``specs``
    ((shape, dtype) each): the pipeline of a compiled function, run on one op."""
    from .autograd.grad_mode import no_grad
    from .ir import PassManager
    from .passes.decompose import Decompose
    from .passes.functionalize import functionalize
    from .passes.strip_autograd import strip_autograd_ops
    from .tensor import Tensor
    from .tracing import trace
    examples = [Tensor._wrap(np.empty(shape, dtype.np)) for shape, dtype in specs]
    with no_grad():
        graph = trace(fn, *examples, name=name)
    graph, _ = functionalize(graph)
    PassManager([Decompose(None), "canonicalize", "cse", "dce"]).run(graph)
    strip_autograd_ops(graph)
    _drop_empty_reductions(graph)
    PassManager(["dce", "fuse"], verify_each=True).run(graph)
    return graph


def _drop_empty_reductions(graph):
    """A sum/prod/amax/amin over no axes (``x.sum()`` of a 0-d tensor) is its input: use the
    input instead (lower-to-loops does not lower a reduction without axes)."""
    for op in list(graph.ops):
        if op.name in ("prim.sum", "prim.prod", "prim.amax", "prim.amin") and not op.attributes["dim"] \
                and op.results[0].type == op.operands[0].type:
            op.results[0].replace_all_uses_with(op.operands[0])


def _freeze(x):
    if isinstance(x, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        return tuple(_freeze(v) for v in x)
    return x


def program_for(op, inputs, attrs):
    """The cached program of ``op`` for these inputs' shapes and dtypes (built on a miss)."""
    key = (op.name, _freeze(attrs), tuple((t.shape, t.dtype.name) for t in inputs))
    prog = _PROGRAMS.get(key)
    if prog is None:
        counters["cuda_eager"]["program_misses"] += 1
        if len(_PROGRAMS) >= MAX_PROGRAMS:
            _PROGRAMS.clear()
        prog = _PROGRAMS[key] = Program(op, [(t.shape, t.dtype) for t in inputs], attrs)
    else:
        counters["cuda_eager"]["program_hits"] += 1
    return prog


def run(op, inputs, attrs, meta):
    """Dispatch's eager step for an op whose inputs are CUDA tensors: its outputs."""
    prog = program_for(op, inputs, attrs)
    metas = meta if op.num_outputs > 1 else (meta,)
    layouts = [_result_strides(op, inputs, m, attrs) for m in metas]
    outs = prog.run([t._data for t in inputs], layouts)
    tensors = []
    for (arr, root), m in zip(outs, metas):
        if tuple(arr.shape) != tuple(m.shape) or np.dtype(arr.dtype) != m.dtype.np:
            raise AssertionError(f"{op.name} on CUDA made {arr.dtype}{tuple(arr.shape)}, its meta "
                                 f"rule says {m.dtype.name}{tuple(m.shape)}")
        tensors.append(wrap(arr, root))
    return tensors[0] if op.num_outputs == 1 else tuple(tensors)


def _result_strides(op, inputs, meta, attrs):
    """Element strides for a result, the rule the CPU and the tracer apply
    (:func:`minaot.layout.result_strides`, TensorIterator's): a pointwise result, and
    ``clone()`` (PyTorch's ``preserve_format``), takes the memory order of its operands,
    broadcast ones included (``x.t() * 2`` is column-major, and so is
    ``x.expand(3, 4) + y.t()``); everything else is C order (None)."""
    from .layout import follows_operands, result_strides
    if not follows_operands(op, attrs):
        return None
    shape = tuple(meta.shape)
    if all(t.shape == shape and t.is_contiguous() for t in inputs):
        return None                     # the common case, without the stand-ins below
    item = np.dtype(meta.dtype.np).itemsize
    strides = result_strides(shape, item, [_cuda.geometry(t._data) for t in inputs])
    return None if strides is None else tuple(s // item for s in strides)


class Program:
    """One op's compiled steps, run on device arrays."""

    def __init__(self, op, specs, attrs):
        from .dispatch import dispatch
        self.name = op.name
        fn = lambda *xs: dispatch(op.name, *xs, **attrs)     # noqa: E731
        self.graph = _prim_graph(fn, specs, f"eager_{op.name}")
        g = self.graph
        slot = {v: i for i, v in enumerate(g.args)}
        for o in g.ops:
            for r in o.results:
                slot[r] = len(slot)
        self.n_slots = len(slot)
        self.n_args = len(g.args)
        self.steps = []
        for k, o in enumerate(g.ops):
            if o.name == "kernel.fused":
                run = _Kernel(o, f"eager_{op.name}_{o.attributes['name']}")
                kind = "kernel"
            else:
                run, kind = _library_step(o, op.name)
            self.steps.append((kind, run, [slot[v] for v in o.operands], [slot[r] for r in o.results]))
        self.results = [slot[v] for v in g.results]

    def run(self, arrays, layouts):
        """``[(array, root)]`` per result: fresh memory, never an input's."""
        env = list(arrays) + [None] * (self.n_slots - self.n_args)
        roots = {}                  # slot -> the fresh root its array is (a view of)
        want = {s: lay for s, lay in zip(self.results, layouts) if lay is not None}
        for kind, run, ins, outs in self.steps:
            if kind == "kernel":
                res = run([env[i] for i in ins], [want.get(s) for s in outs])
            else:
                res = run([env[i] for i in ins])
            for s, (arr, root) in zip(outs, res):
                env[s] = arr
                if root is not None:
                    roots[s] = root
                elif kind == "view" and ins[0] in roots:
                    roots[s] = roots[ins[0]]
        out, used = [], set()
        for s in self.results:
            arr, root = env[s], roots.get(s)
            shared = root is None or id(root) in used or any(
                st == 0 and n > 1 for st, n in zip(arr.strides, arr.shape))
            if shared:              # an input's memory, or another result's: copy
                copy, root = empty(arr.shape, arr.dtype, want.get(s))
                copy_into(copy, arr)
                arr = copy
            used.add(id(root))
            out.append((arr, root))
        return out


class _Kernel:
    """One ``kernel.fused`` op as a generated CUDA module: ``launch(*inputs, *outputs)``."""

    def __init__(self, kop, name):
        from .codegen.cuda_runtime import load_launcher
        from .dtypes import from_ir
        from .ir import verify
        from .passes.lower_to_loops import lower_kernel
        self.loop = lower_kernel(kop, name)
        verify(self.loop)
        fused = sorted({o.opname for o in kop.regions[0].block.ops[:-1]})
        header = f"minaot eager CUDA kernel {name} | from prim: {', '.join(fused)}"
        self.launch, self.source = load_launcher(self.loop, header, **launch_options())
        self.out_specs = [(tuple(r.type.shape), from_ir(r.type.dtype).np) for r in kop.results]

    def __call__(self, ins, layouts=None):
        layouts = layouts or [None] * len(self.out_specs)
        outs = [empty(shape, dtype, lay) for (shape, dtype), lay in zip(self.out_specs, layouts)]
        if any(a.size for a, _ in outs):
            self.launch(*ins, *[a for a, _ in outs])
        return outs


# ---------------------------------------------------------------- library steps
def _library_step(op, eager_name):
    """``(run, kind)`` for a non-kernel op of a program: ``run(arrays) -> [(array, root)]``."""
    name = op.opname
    attrs = dict(op.attributes)
    if name in VIEW_OPS:
        return (lambda ins: [view_array(ins[0], name, attrs)]), "view"
    if name in ("constant", "arange", "rand", "randn"):
        from .ir import run_op

        return (lambda ins: [_cuda.from_host(run_op(op, [])[0])]), "make"
    if name == "matmul":
        from .kernels.matmul_cuda import matmul
        return (lambda ins: [matmul(*ins)]), "call"
    if name == "cat":
        return (lambda ins: [_cat(ins, attrs["dim"])]), "call"
    if name in ("slice_scatter", "select_scatter"):
        region = name.split("_")[0]
        return (lambda ins: [_scatter_region(ins[0], ins[1], region, attrs)]), "call"
    if name in ("gather", "scatter_add", "argmax", "argmin"):
        from .kernels import index_cuda
        fn = getattr(index_cuda, name)
        return (lambda ins: [fn(*ins, **attrs)]), "call"
    if name in LINE_OPS:
        from .kernels import scan_sort_cuda
        fn = getattr(scan_sort_cuda, name)
        return (lambda ins: [fn(*ins, **attrs)]), "call"
    raise NotImplementedError(
        f"{eager_name}: the op {name} has no CUDA implementation yet (it is a library call "
        "outside the generated kernels); run it on the CPU (tensor.cpu())")


def _cat(arrays, dim):
    shape = list(arrays[0].shape)
    shape[dim] = sum(a.shape[dim] for a in arrays)
    out, root = empty(shape, arrays[0].dtype)
    start = 0
    for a in arrays:
        n = a.shape[dim]
        region, _ = view_array(out, "slice", dict(dim=dim, start=start, stop=start + n, step=1))
        copy_into(region, a)
        start += n
    return out, root


def _scatter_region(base, src, region, attrs):
    out, root = contiguous_copy_root(base)
    target, _ = view_array(out, region, attrs)
    copy_into(target, src)
    return out, root
