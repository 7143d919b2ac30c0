"""The ``"cuda"`` backend: a graph compiler whose program runs on the GPU, start to end.

The CUDA twin of :mod:`minaot.numba_backend`.  ``cuda_compiler(graph,
example_inputs)`` takes a ``prim`` graph through the same lower half of the
pipeline, but the last step emits CUDA::

    prim --fuse--> kernel --lower-to-loops--> loop --emit-numba-cuda--> kernels + launch()

(no ``approximate-math``: on the GPU ``math.exp`` is libdevice's, which is fast
and exact enough).  The returned :class:`CudaProgram` takes CUDA tensors and
returns CUDA tensors.  It walks the graph's ops in order with every value a
Numba *device array* (:mod:`minaot.cuda`): the inputs are the tensors' arrays,
each ``kernel.fused`` op allocates its outputs on the device and calls its
generated ``launch``, and every other op is a library call that runs on the
device too:

* view ops (reshape, transpose, permute, expand, (un)squeeze, slice, select)
  make a device array over the same memory, as eager CUDA views do
  (:func:`minaot.cuda_eager.view_array`); a reshape that no strides can express
  copies first, as numpy's does;
* matmul runs the tiled shared-memory kernel of :mod:`minaot.kernels.matmul_cuda`;
  gather, scatter_add, argmax and argmin the kernels of
  :mod:`minaot.kernels.cuda_library`; the scans (cumsum, cumprod, logcumsumexp,
  cumargmax/cumargmin), argsort and searchsorted the one-thread-per-line kernels
  of :mod:`minaot.kernels.scan_sort_cuda`; cat and the two scatters are device copies
  into regions of a new array;
* constants and ``arange`` are made once, when the program is built, and
  stay on the device; ``rand``/``randn`` draw from minaot's generator on the
  host (so a seed gives the same numbers as on the CPU) and upload them.

Nothing is copied back to the host during a call.  Each value is dropped after
its last use.  Every array the program makes is a view of a flat *root*
allocation (the storage of the CUDA tensor it becomes); the program tracks
each value's root, so a result is returned as is when its root is its own,
and copied when it is (a view of) an input, of another result or of a
program constant, or a broadcast view: results never share memory with the
inputs or with each other, as for every compiler (:mod:`minaot.compilers`).
The copy keeps the layout (numpy's ``order="K"``, like the CPU backend's).
The one exception is *reinplacing* (:mod:`minaot.reinplace`), shared with the
numba backend: the new value of a mutated input may be written into that
input's own memory, and the epilogue's copy back then moves nothing.

An op with no device implementation raises ``NotImplementedError`` naming it
when the program is built.  Gather and scatter_add cannot raise inside a
kernel, so an index out of range sets an error code in a one-element device
array that the program reads after the call (the only device-to-host copy,
and only in programs that hold those ops).
"""

from __future__ import annotations

import math
import os
import time

from . import cuda as _cuda
from . import cuda_replay as _replay
from .codegen.cuda_runtime import cuda_module, load_launcher
from .codegen.kernel_cache import KernelCompileError
from .counters import counters
from .cuda_eager import LINE_OPS
from .cuda_errors import ErrorWord, queued, raise_pending
from .dtypes import from_ir
from .ir import PassManager, run_op, verify
from .passes.lower_to_loops import lower_kernel
from .program_plan import plan_slots
from .reinplace import kernel_step, reinplace_plan, returned_as_is, writes_in_place


# --------------------------------------------------------------------------- device arrays
def keep_order_strides(shape, strides, itemsize):
    """The strides numpy's ``np.array(a, order="K")`` gives a copy of ``a`` (in bytes): C or
    Fortran order if ``a`` is so laid out (ignoring axes of length 1), else the axes ordered
    by decreasing stride."""
    n = len(shape)

    def dense(axes):
        step = itemsize
        for d in axes:
            if shape[d] != 1 and strides[d] != step:
                return False
            step *= shape[d]
        return True

    if dense(range(n - 1, -1, -1)):
        order = list(range(n))
    elif dense(range(n)):
        order = list(range(n - 1, -1, -1))
    else:
        order = sorted(range(n), key=lambda d: -abs(strides[d]))
    out, step = [0] * n, itemsize
    for d in reversed(order):
        out[d] = step
        step *= shape[d]
    return tuple(out)


def copy_keep_order(arr):
    """``(copy, root)``: a fresh device copy of ``arr`` laid out by ``keep_order_strides``."""
    from .cuda_eager import copy_into
    item = arr.dtype.itemsize
    strides = keep_order_strides(tuple(arr.shape), tuple(arr.strides), item)
    out, root = _cuda.empty(tuple(arr.shape), arr.dtype, tuple(s // item for s in strides))
    copy_into(out, arr)
    return out, root


def _broadcast(arr) -> bool:
    return any(n > 1 and s == 0 for n, s in zip(arr.shape, arr.strides))


# --------------------------------------------------------------------------- library ops
# Each builder gets the op and the program and returns ``run(arrays) -> [(array, root)]``:
# ``root`` is the new flat allocation the array is a view of, or None when the array is a
# view of its first input (its root is that input's).
def _result(op):
    (r,) = op.results
    return tuple(r.type.shape), from_ir(r.type.dtype).np


def _view(op, program):
    from .cuda_eager import view_array
    name, attrs = op.opname, dict(op.attributes)
    return lambda ins: [view_array(ins[0], name, attrs)]


def _matmul(op, program):
    from .kernels.matmul_cuda import matmul
    return lambda ins: [matmul(*ins)]


def _index_op(op, program):
    from .kernels import cuda_library
    fn = getattr(cuda_library, op.opname)
    attrs = dict(op.attributes)
    if op.opname in ("gather", "scatter_add"):
        attrs.update(errors=program.errors.device, code=program.error_code(op))
    return lambda ins: [fn(*ins, **attrs)]


def _line_op(op, program):
    """``cumsum``, ``cumprod``, ``logcumsumexp``, ``cumargmax``/``cumargmin``, ``argsort``,
    ``searchsorted``: the one-thread-per-line (or per-value) kernels of
    :mod:`minaot.kernels.scan_sort_cuda`."""
    from .kernels import scan_sort_cuda
    fn = getattr(scan_sort_cuda, op.opname)
    attrs = dict(op.attributes)
    return lambda ins: [fn(*ins, **attrs)]


def _cat(op, program):
    from .cuda_eager import copy_into, view_array
    shape, dtype = _result(op)
    dim = op.attributes["dim"]

    def run(ins):
        out, root = _cuda.empty(shape, dtype)
        start = 0
        for x in ins:
            n = x.shape[dim]
            part, _ = view_array(out, "slice", dict(dim=dim, start=start, stop=start + n, step=1))
            copy_into(part, x)
            start += n
        return [(out, root)]
    return run


def _scatter_into(op, program):
    """``slice_scatter``/``select_scatter``: a copy of the base with ``src`` in one region."""
    from .cuda_eager import contiguous_copy_root, copy_into, view_array
    region = op.opname.split("_")[0]
    attrs = dict(op.attributes)

    def run(ins):
        base, src = ins
        out, root = contiguous_copy_root(base)
        part, _ = view_array(out, region, attrs)
        copy_into(part, src)
        return [(out, root)]
    return run


def _made_once(op, program):
    """Constants and ``arange``: computed on the host once, kept on the device."""
    (value,) = run_op(op, [])
    arr, root = _cuda.from_host(value)
    program.constants.add(id(root))
    program.keep.append(root)
    return lambda ins: [(arr, root)]


def _random(op, program):
    """``rand``/``randn`` from minaot's generator (the CPU's numbers for a seed), uploaded."""
    return lambda ins: [_cuda.from_host(run_op(op, [])[0])]


VIEWS = ("reshape", "transpose", "permute", "expand", "unsqueeze", "squeeze", "slice", "select",
         "detach")
LIBRARY = {"matmul": _matmul, "gather": _index_op, "scatter_add": _index_op,
           "argmax": _index_op, "argmin": _index_op,
           "cat": _cat,
           "slice_scatter": _scatter_into, "select_scatter": _scatter_into,
           "constant": _made_once, "arange": _made_once, "rand": _random, "randn": _random}
LIBRARY.update({name: _view for name in VIEWS})
LIBRARY.update({name: _line_op for name in LINE_OPS})


# --------------------------------------------------------------------------- the program
_MAX_RECORDINGS = 64         # input geometries a program keeps recordings (or counts) for


class OperandMemory(int):
    """The root of a kernel result written into the memory of operand number ``self``
    (reinplacing): the result's root is that operand's."""


class CudaKernel:
    """One generated kernel module: its loop IR, its CUDA source and its ``launch``."""

    def __init__(self, kop, graph_name, options):
        self.op = kop
        self.name = f"{graph_name}_{kop.attributes['name']}"
        self.loop = lower_kernel(kop, self.name)
        verify(self.loop)
        self.options = options
        fused = sorted({o.opname for o in kop.regions[0].block.ops[:-1]})
        self.header = f"minaot kernel {self.name} | from prim: {', '.join(fused)} (fused by `fuse`)"
        self.launch, self.source = load_launcher(self.loop, self.header, **options)
        if os.environ.get("MINAOT_PRINT_KERNELS"):
            print(self.source)
        self.out_specs = [(tuple(r.type.shape), from_ir(r.type.dtype).np) for r in kop.results]
        self.called = False

    def launch_config(self):
        """(kernel, blocks, threads) of each CUDA kernel in the module, in launch order."""
        from .codegen.numba_cuda import launch_config
        return launch_config(self.loop, **self.options)

    def writes_in_place(self, operand: int, result: int) -> bool:
        """May result ``result`` be stored into the buffer of operand ``operand``?  (See
        :func:`minaot.reinplace.writes_in_place`.)"""
        return writes_in_place(self.op, self.loop, operand, result)

    def __call__(self, ins, into=None):
        """Run on ``ins``; ``into`` maps a result index to the operand index whose array the
        result is written into (reinplacing, see :class:`CudaProgram`): that result comes
        back as ``(operand's array, OperandMemory(operand))``."""
        if into:
            outs = []
            for r, (s, d) in enumerate(self.out_specs):
                i = into.get(r)
                a = ins[i] if i is not None else None
                if a is not None and 0 not in a.strides:
                    outs.append((a, OperandMemory(i)))
                else:
                    outs.append(_cuda.empty(s, d))
        else:
            outs = [_cuda.empty(s, d) for s, d in self.out_specs]
        if not any(math.prod(s) for s, _ in self.out_specs):
            return outs
        try:
            self.launch(*ins, *[a for a, _ in outs])
        except Exception as exc:
            if self.called:
                raise
            raise KernelCompileError(
                f"Numba could not compile or launch CUDA kernel {self.name} for the ops at "
                f"{self.op.loc}: {type(exc).__name__}: {exc}") from exc
        self.called = True
        return outs


def default_options() -> dict:
    """``emit-numba-cuda`` launch options: the emitter's defaults on a GPU; small blocks on the
    simulator, which runs a Python thread per CUDA thread."""
    return dict(max_threads=32) if _cuda.is_simulator() else {}


class CudaProgram:
    """A compiled graph on the GPU: steps to run in order, and every stage for printing.

    ``options`` go to ``emit-numba-cuda`` (``max_threads``, ``max_blocks``,
    ``block_rows_min``, ``grid_reduce_min``); by default :func:`default_options`."""

    def __init__(self, graph, **options):
        t0 = time.perf_counter()
        cuda = cuda_module()
        options = options or default_options()
        self.prim = str(graph)
        g = graph.clone()
        PassManager(["fuse", "mix-reductions"], verify_each=True).run(g)
        self.graph = g
        self.kernels = {}
        self.constants = set()          # ids of the roots of program constants (never returned)
        self.keep = []                  # ... and the roots themselves
        self.checked = []               # ops that report bad indices through self.errors
        self.errors = ErrorWord(cuda, _cuda.is_simulator()) if any(       # see minaot/cuda_errors.py
            op.opname in ("gather", "scatter_add") for op in g.ops if op.dialect == "prim") else None
        self.steps = []
        plan = plan_slots(g)
        self.reinplaced = set()             # result positions written into their input
        into_of = reinplace_plan(g, getattr(graph, "reinplace", None) or {}, plan.last_use,
                                 plan.keep)
        for k, op in enumerate(g.ops):
            if op.name == "kernel.fused":
                kern = CudaKernel(op, g.name, options)
                self.kernels[kern.name] = kern
                run = kernel_step(g, k, kern, into_of, self.reinplaced)
            else:
                build = LIBRARY.get(op.opname) if op.dialect == "prim" else None
                if build is None:
                    raise NotImplementedError(
                        f"cuda backend: no device implementation of {op.name} (at {op.loc}); "
                        f"prim ops it runs outside fused kernels: {', '.join(sorted(LIBRARY))}")
                run = build(op, self)
            self.steps.append((run, *plan.step(k, op)))
        self.n_slots, self.arg_slots, self.result_slots = \
            plan.n_slots, plan.arg_slots, plan.result_slots
        self.as_is = returned_as_is(graph, self.reinplaced)
        # recorded calls, by input geometry (see minaot/cuda_replay.py): none under the
        # simulator, where no driver launches happen, nor in programs that draw random numbers
        self.recordings = {} if (_replay.enabled() and not _cuda.is_simulator() and not any(
            op.opname in ("rand", "randn") for op in g.ops if op.dialect == "prim")) else None
        self.replays = 0
        # MINAOT_CUDA_REPLAY=check (tests): a first call runs, is recorded, and is replayed, and
        # the replay's results are returned; not for programs that write into their inputs
        self.replay_check = _replay.checking() and not self.reinplaced
        self.recording_failures = []        # why recordings failed (for tests and curiosity)
        self.compile_time = time.perf_counter() - t0
        counters["cuda"]["graphs"] += 1
        counters["cuda"]["kernels"] += len(self.kernels)

    def error_code(self, op) -> int:
        """The code a library kernel writes to ``self.errors`` when ``op``'s indices are bad."""
        self.checked.append(op)
        return len(self.checked)

    def index_error(self, code: int, earlier: bool) -> IndexError:
        """The error of the op whose kernel wrote ``code`` to ``self.errors``; ``earlier``: it
        is raised after the call that ran the kernel (see :mod:`minaot.cuda_errors`)."""
        op = self.checked[code - 1]
        shapes = ", ".join(str(tuple(v.type.shape)) for v in op.operands)
        when = ("; found by the GPU in an earlier call of the compiled function: CUDA kernels "
                "report errors asynchronously, at the next compiled call or read of device "
                "values, as PyTorch's device-side asserts do") if earlier else ""
        return IndexError(f"{op.opname}: index out of range (inputs {shapes}) at {op.loc}{when}")

    def run_arrays(self, arrays, record=None):
        """Run the program on device arrays (the graph's inputs); returns ``(array, root)``
        per result, each root a fresh allocation no other result or input shares.

        ``record``, a list, gets ``(step, input arrays, output arrays)`` for every step (the
        benchmarks time each kernel alone with them)."""
        raise_pending()                         # an error an earlier call's kernels found
        if record is None and self.recordings is not None:
            out = self._replayed(arrays)
            if out is not None:
                return out
        return self._run(arrays, record)

    # ------------------------------------------------------------------ replaying
    def _replayed(self, arrays):
        """The results of a replayed call (:mod:`minaot.cuda_replay`), or None: this call takes
        the ordinary path (and is recorded, at the second call with this geometry)."""
        key = tuple([(a.shape, a.strides, a.dtype) for a in arrays])
        rec = self.recordings.get(key)
        if rec is None and self.replay_check:   # test mode: ordinary, recorded, then replayed
            self._run(arrays, None)
            self._record(key, arrays, _replay.ATTEMPTS)
            rec = self.recordings[key]
        if rec is None:                         # the first call with this geometry
            if len(self.recordings) >= _MAX_RECORDINGS:
                self.recordings.clear()
            self.recordings[key] = 1
            return None
        if rec.__class__ is int:                # n: record now (attempt n); 0: given up
            return self._record(key, arrays, rec) if rec else None
        out = rec.replay(arrays, _cuda._allocator())
        if out is None:                         # these inputs' memory overlaps
            return None
        self.replays += 1
        self._queue_errors()
        return out

    def _record(self, key, arrays, attempt):
        """Run the ordinary path, recorded; keep the recording if it succeeded."""
        fixed = list(self.keep) + ([self.errors.device] if self.errors is not None else [])
        for kern in self.kernels.values():      # a module's scratch buffers, made once
            fixed += getattr(kern.launch, "__globals__", {}).get("_SCRATCH", [])
        rec = _replay.record(arrays, fixed)
        try:
            out = self._run(arrays, None)
        finally:
            _replay.stop()
        done = rec.finish(arrays, out) if rec.failed is None else None
        if done is None:
            self.recording_failures.append(rec.failed)
            self.recordings[key] = attempt + 1 if attempt < _replay.ATTEMPTS else 0
        else:
            self.recordings[key] = done
        return out

    def _queue_errors(self):
        if self.errors is not None:             # read back without waiting for the GPU
            self.errors.queue()
            queued(self)
            raise_pending(current=self)

    def _run(self, arrays, record):
        env = [None] * self.n_slots
        roots = [None] * self.n_slots           # None: an input's memory
        for s, a in zip(self.arg_slots, arrays):
            env[s] = a
        for run, ins, outs, drop in self.steps:
            res = run([env[i] for i in ins])
            if record is not None:
                record.append((run, [env[i] for i in ins], [arr for arr, _ in res]))
            for s, (arr, root) in zip(outs, res):
                env[s] = arr
                if root is None:                    # a view of the first operand
                    root = roots[ins[0]] if ins else None
                elif root.__class__ is OperandMemory:   # written into an operand's memory
                    root = roots[ins[root]]
                roots[s] = root
            for s in drop:
                env[s] = roots[s] = None
        self._queue_errors()
        out, used = [], set()
        for pos, s in enumerate(self.result_slots):
            arr, root = env[s], roots[s]
            if pos in self.as_is and any(arr is a for a in arrays):
                pass                                # that input, on purpose
            elif root is None or id(root) in used or id(root) in self.constants or _broadcast(arr):
                arr, root = copy_keep_order(arr)
            used.add(id(root))
            out.append((arr, root))
        return out

    def __call__(self, *args):
        from .cuda_eager import wrap
        from .tensor import Tensor
        arrays = []
        for i, t in enumerate(args):
            if not isinstance(t, Tensor):
                raise TypeError(f"cuda backend: argument {i} of {self.graph.name} is a "
                                f"{type(t).__name__}, expected a tensor")
            if not t.is_cuda:
                if t.ndim:
                    raise TypeError(
                        f"cuda backend: argument {i} of {self.graph.name} (shape {t.shape}) is a "
                        "CPU tensor; the program runs on CUDA tensors (move it with .cuda())")
                t = t.detach().cuda()               # a 0-d CPU tensor is a scalar: moved, as eager
            arrays.append(t._data)
        return [wrap(arr, root) for arr, root in self.run_arrays(arrays)]

    def stage_text(self) -> str:
        parts = [f"== kernel level\n{self.graph}"]
        for k in self.kernels.values():
            parts.append(f"== loop level: {k.name}\n{k.loop}")
            parts.append(f"== CUDA source: {k.name}\n{k.source}")
        return "\n\n".join(parts)
