"""Graph compilers: ``compiler(graph, example_inputs) -> callable``.

A compiled callable takes the graph's inputs as tensors and returns its
results as a list of *fresh* tensors: a result never shares memory with an
input (the runtime may overwrite an input with its mutated value while a
saved value is still needed for the backward).  ``nop`` runs the reference interpreter (the
accuracy baseline); ``print_compile`` prints the graph first.  Backends for
``minaot.compile(fn, backend=...)`` are looked up by name here.

A compiler may say which devices its programs run on (``compiler.devices``):
``nop``, ``print_compile`` and ``numba_compiler`` take CPU tensors,
``cuda_compiler`` CUDA tensors.  ``aot_function`` checks it against the device of
the inputs, and its default (no compiler given) picks by that device:
:func:`default_compiler`.
"""

from __future__ import annotations

import numpy as np

from .ir import interpret


def fresh_results(results, inputs, wrap=False, reused=()):
    """Results as arrays no other result or input shares memory with: a graph may return
    one value twice (after CSE), or an input, but the caller gets distinct tensors, as
    in eager.  A copy keeps the layout.  ``reused``: positions of results a backend wrote
    into the memory of the input they are the new value of, on purpose (the epilogue's
    copy back then moves nothing); they stay as they are."""
    from .tensor import Tensor
    seen = list(inputs)
    out = []
    for pos, r in enumerate(results):
        r = np.asarray(r)
        if pos in reused and any(r is a for a in inputs):
            pass
        elif not r.flags.writeable or any(np.may_share_memory(r, a) for a in seen):
            r = np.array(r, order="K")
        seen.append(r)
        out.append(Tensor._wrap(r) if wrap else r)
    return out


def nop(graph, example_inputs):
    """Run ``graph`` with the reference interpreter."""
    def run(*args):
        out = interpret(graph, *args)
        out = list(out) if isinstance(out, tuple) else [out]
        return fresh_results([o._data for o in out], [a._data for a in args], wrap=True)
    run.graph = graph
    return run


def print_compile(graph, example_inputs):
    """Print ``graph`` (and its partition report, if it has one), then run it with ``nop``."""
    report = getattr(graph, "partition_report", None)
    print(graph)
    if report is not None:
        print(report)
    return nop(graph, example_inputs)


def numba_compiler(graph, example_inputs):
    """Fuse ``graph`` and run it as generated Numba kernels (see :mod:`minaot.numba_backend`)."""
    from .numba_backend import NumbaProgram
    return NumbaProgram(graph)


def cuda_compiler(graph, example_inputs):
    """Fuse ``graph`` and run it on the GPU as generated CUDA kernels, CUDA tensors in and out
    (see :mod:`minaot.cuda_backend`); under Numba's simulator too."""
    from .cuda_backend import CudaProgram
    return CudaProgram(graph)


nop.devices = print_compile.devices = numba_compiler.devices = ("cpu",)
cuda_compiler.devices = ("cuda",)

BACKENDS = {"numpy": nop, "nop": nop, "interpreter": nop, "numba": numba_compiler,
            "cuda": cuda_compiler}


def default_compiler(device, cpu=nop):
    """The compiler for inputs on ``device`` when none is given: ``cpu`` for CPU tensors
    (``nop`` for ``aot_function``, ``numba_compiler`` for ``minaot.compile``) and
    ``cuda_compiler`` for CUDA tensors."""
    return cuda_compiler if str(device) == "cuda" else cpu


def get_backend(name):
    if callable(name):
        return name
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; known: 'auto' (by the inputs' device), "
                         f"{', '.join(sorted(BACKENDS))}") from None
