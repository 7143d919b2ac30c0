"""The ``"numba"`` backend: a graph compiler that runs fused Numba kernels.

``numba_compiler(graph, example_inputs)`` takes a ``prim`` graph (a forward,
a backward or an inference graph) through the lower half of the pipeline::

    prim --fuse--> kernel --lower-to-loops--> loop --approximate-math--> loop
         --emit-numba-cpu--> Python source --kernel cache--> Numba function

and returns a callable.  At run time it walks the graph's ops in order: a
``kernel.fused`` op allocates its outputs and calls its kernel; any other op
(matmul, gather, cat, views of kernel inputs, random numbers) is a library
call that runs the op's numpy implementation, views zero-copy.  Each value
is dropped after its last use, so peak memory follows the graph, not its
length.  Results never share memory with the inputs (as for every compiler:
see :mod:`minaot.compilers`), except the new value of a mutated input that a
kernel wrote into that input's own memory (*reinplacing*, for inference graphs
whose ``graph.reinplace`` says which result is which input's new data; see
:mod:`minaot.reinplace`): the runtime's copy back then moves nothing.

``MINAOT_PRINT_KERNELS=1`` prints each kernel's source as it is built; every
stage is kept on the returned callable (``.stages``) for ``explain``.
"""

from __future__ import annotations

import os
import time

import numpy as np

from .compilers import fresh_results
from .codegen.kernel_cache import KernelCompileError, load_kernel, record_first_call
from .codegen.numba_cpu import emit_numba_cpu
from .counters import counters
from .dtypes import from_ir
from .ir import PassManager, run_op, verify
from .ops.registry import get_op
from .passes.lower_to_loops import lower_kernel
from .program_plan import plan_slots
from .reinplace import kernel_step, reinplace_plan, returned_as_is, writes_in_place
from .tensor import Tensor


def _approximate(loop_fn):
    try:
        from .passes.approximate_math import approximate_math
    except ImportError:         # the pass is optional: without it, libm calls stay
        return
    approximate_math(loop_fn)


class Kernel:
    """One generated kernel: its loop IR, its source and the Numba function."""

    def __init__(self, kop, graph_name):
        self.op = kop
        self.name = f"{graph_name}_{kop.attributes['name']}"
        self.loop = lower_kernel(kop, self.name, recompute_costly=False)
        _approximate(self.loop)
        verify(self.loop)
        fused = sorted({o.opname for o in kop.regions[0].block.ops[:-1]})
        # the user's file:line stays out of the source (it is in error messages instead),
        # so the same kernel built from another line or file hits the same cache entry
        self.header = f"minaot kernel {self.name} | from prim: {', '.join(fused)} (fused by `fuse`)"
        self.source = emit_numba_cpu(self.loop, self.header)
        if os.environ.get("MINAOT_PRINT_KERNELS"):
            print(self.source)
        self.fn = load_kernel(self.source, self.name, str(kop.loc))
        self.out_specs = [(tuple(r.type.shape), from_ir(r.type.dtype).np) for r in kop.results]
        self.called = False

    def writes_in_place(self, operand: int, result: int) -> bool:
        """May result ``result`` be stored into the buffer of operand ``operand``?  (See
        :func:`minaot.reinplace.writes_in_place`.)"""
        return writes_in_place(self.op, self.loop, operand, result)

    def __call__(self, ins, into=None):
        """Run on ``ins``; ``into`` maps a result index to the operand index whose array
        the result is written into (see ``reinplace`` in :class:`NumbaProgram`)."""
        outs = [np.empty(s, d) for s, d in self.out_specs]
        if into:
            for r, i in into.items():
                a = ins[i]
                if isinstance(a, np.ndarray) and a.flags.writeable and 0 not in a.strides:
                    outs[r] = a
        ins = [a if isinstance(a, np.ndarray) else np.asarray(a) for a in ins]   # numpy scalars
        try:
            self.fn(*ins, *outs)
        except Exception as exc:
            if self.called:
                raise
            raise KernelCompileError(
                f"Numba could not compile kernel {self.name} for the ops at {self.op.loc}: "
                f"{type(exc).__name__}: {exc}\n  source: {getattr(self.fn, 'py_func', self.fn).__code__.co_filename}"
            ) from exc
        if not self.called:
            self.called = True
            record_first_call(self.fn)
        return outs


def _library_call(op):
    """Run a non-kernel op with its numpy implementation; a view op returns a real view
    (values are never written in place here, so sharing memory is safe)."""
    opdef = get_op(op.opname)
    if opdef.kind == "view":
        attrs = dict(op.attributes)
        return lambda ins: [np.asarray(opdef.impl(*ins, **attrs))]   # x[1] of 1-d: a scalar
    return lambda ins: run_op(op, ins)


class NumbaProgram:
    """A compiled graph: steps to run in order, and every stage for printing."""

    def __init__(self, graph):
        t0 = time.perf_counter()
        self.prim = str(graph)
        g = graph.clone()
        pm = PassManager(["fuse"], verify_each=True)
        pm.run(g)
        self.graph = g
        self.kernels = {}
        self.steps = []
        plan = plan_slots(g)
        self.reinplaced = set()             # result positions written into their input
        into_of = reinplace_plan(g, getattr(graph, "reinplace", None) or {}, plan.last_use,
                                 plan.keep)
        for k, op in enumerate(g.ops):
            if op.name == "kernel.fused":
                kern = Kernel(op, g.name)
                self.kernels[kern.name] = kern
                run = kernel_step(g, k, kern, into_of, self.reinplaced)
            else:
                run = _library_call(op)
            self.steps.append((run, *plan.step(k, op)))
        self.n_slots, self.arg_slots, self.result_slots = \
            plan.n_slots, plan.arg_slots, plan.result_slots
        self.as_is = returned_as_is(graph, self.reinplaced)
        self.compile_time = time.perf_counter() - t0
        counters["numba"]["graphs"] += 1
        counters["numba"]["kernels"] += len(self.kernels)

    def run_arrays(self, arrays):
        env = [None] * self.n_slots
        for s, a in zip(self.arg_slots, arrays):
            env[s] = a
        for run, ins, outs, drop in self.steps:
            res = run([env[i] for i in ins])
            for s, r in zip(outs, res):
                env[s] = r
            for s in drop:
                env[s] = None
        return [env[s] for s in self.result_slots]

    def __call__(self, *args):
        arrays = [a._data if isinstance(a, Tensor) else np.asarray(a) for a in args]
        return fresh_results(self.run_arrays(arrays), arrays, wrap=True, reused=self.as_is)

    def stage_text(self) -> str:
        parts = [f"== kernel level\n{self.graph}"]
        for k in self.kernels.values():
            parts.append(f"== loop level: {k.name}\n{k.loop}")
            parts.append(f"== Numba source: {k.name}\n{k.source}")
        return "\n\n".join(parts)
