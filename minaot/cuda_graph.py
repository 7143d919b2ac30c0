"""A replayed call as one CUDA graph: its launches made once, then launched together.

A replay (:mod:`minaot.cuda_replay`) still launches a recorded call's kernels one by one,
and each launch costs the host 6-25 us (Python's call into the driver, argument words,
the driver's own work).  A training step's 43 launches took about 1.2 ms of host time on
an H100 machine, more than the kernels' own GPU time; the step was bound by the host.

A CUDA *graph* is the driver's answer: a list of kernel launches (nodes) handed to the
driver once and *instantiated*; afterwards one ``cuGraphLaunch`` runs them all, in order,
on a stream, for a few microseconds of host time.  A recording is exactly such a list:
each launch event has its kernel, grid, block, shared memory and argument words, and the
only thing that changes from call to call is which addresses go into the pointer words
(the replay's *table*: the inputs, the pool's blocks, the scratch buffers).  So:

* At a recording's first replay the pool's takes and gives and the buffer requests are
  done first, which fills the table (the launches change nothing the pool does), and the
  graph is built: one kernel node per launch, each after the previous one, its argument
  words copied into memory the graph keeps (one ctypes value per kernel parameter, as
  ``cuda.core``'s launch makes them, sizes checked against ``cuFuncGetParamInfo``), the
  pointer words holding the table's addresses.  Then it is instantiated and launched.
* At every later replay the table is made the same way and compared with the graph's.
  From step to step it is usually the same (the same tensors come back, and the pool hands
  out its blocks in the same order), and the graph is launched as it is.  Where entries
  differ, only the nodes that use them get their new words
  (``cuGraphExecKernelNodeSetParams``, which changes the next launches of the instantiated
  graph, never one in flight) before the launch.

The results are the same as the launches' one by one: the same kernels, the same words, in
the same order on the same stream.  A graph is not built (and the replay launches one by
one) where the driver bindings (``cuda.bindings``) are missing, a launch has a word this
module cannot lay out, a size disagrees with the driver's, or the driver refuses a step;
``MINAOT_CUDA_GRAPHS=0`` switches graphs off.  Under the simulator nothing is recorded, so
nothing here runs.
"""

from __future__ import annotations

import ctypes
import os
import threading

import numpy as np


#: instantiated graphs kept per recording, one per table of addresses (see Graph.launch)
EXECS = 4


def enabled() -> bool:
    return os.environ.get("MINAOT_CUDA_GRAPHS", "1") != "0"


class GraphError(RuntimeError):
    """The driver refused a step of building or launching a graph (the replay then launches
    its kernels one by one)."""


def _driver():
    from cuda.bindings import driver
    return driver


def _check(result, what):
    err = result[0]
    if int(err) != 0:
        raise GraphError(f"{what}: {err}")
    return result[1] if len(result) == 2 else result[1:]


def _storage(word):
    """A ctypes value holding one kernel parameter, as ``cuda.core``'s launch converts it:
    ctypes values as they are, Python bools as one byte, ints as 8 bytes (pointers, sizes,
    strides), floats as doubles, numpy scalars as their own type."""
    if isinstance(word, ctypes._SimpleCData):
        return type(word)(word.value)
    if isinstance(word, (bool, np.bool_)):
        return ctypes.c_bool(bool(word))
    if isinstance(word, int):
        return ctypes.c_int64(word) if word < 0 else ctypes.c_uint64(word)
    if isinstance(word, float):
        return ctypes.c_double(word)
    if isinstance(word, np.generic):
        return np.ctypeslib.as_ctypes_type(word.dtype)(word.item())
    raise GraphError(f"a kernel argument word of type {type(word).__name__}")


def _function(handle):
    """The ``CUfunction`` of a kept launch's kernel handle (numba-cuda keeps ``cuda.core``'s
    kernel object, whose handle is a ``CUkernel``)."""
    drv = _driver()
    h = handle
    for attr in ("handle", "_handle"):
        if not isinstance(h, (drv.CUfunction, drv.CUkernel)) and hasattr(h, attr):
            h = getattr(h, attr)
    if isinstance(h, drv.CUfunction):
        return h
    if not isinstance(h, drv.CUkernel):
        h = drv.CUkernel(int(h))
    return _check(drv.cuKernelGetFunction(h), "cuKernelGetFunction")


def _stream(stream):
    """A launch's stream as the driver's handle (an int; 0: the default stream), or None."""
    if not stream:
        return 0
    try:
        return int(getattr(stream, "handle", stream) or 0)
    except (TypeError, ValueError):
        return None


def _dim3(d):
    d = (d,) if isinstance(d, int) else tuple(int(x) for x in d)
    return d + (1,) * (3 - len(d))


class Node:
    """One launch as a graph node: the parameters' storage, the ``void**`` into it, the
    driver's parameter struct, and which words take which table entries."""

    def __init__(self, plan, words, patches):
        self.values = [_storage(w) for w in words]
        self.pointers = (ctypes.c_void_p * max(len(words), 1))(
            *[ctypes.addressof(v) for v in self.values])
        self.patches = patches              # (word, table index, offset)
        self.plan = plan
        self.params = None
        self.node = None

    def put(self, table) -> None:
        for w, src, off in self.patches:
            self.values[w].value = table[src] + off

    def make_params(self):
        drv = _driver()
        grid, block, shared = self.plan.dims
        fn = _function(self.plan.handle)
        self._check_layout(drv, fn)
        p = drv.CUDA_KERNEL_NODE_PARAMS()
        p.func = fn
        p.gridDimX, p.gridDimY, p.gridDimZ = _dim3(grid)
        p.blockDimX, p.blockDimY, p.blockDimZ = _dim3(block)
        p.sharedMemBytes = int(shared)
        p.kernelParams = ctypes.addressof(self.pointers)
        self.params = p
        return p

    def _check_layout(self, drv, fn) -> None:
        """Each parameter's size as the driver has it (where the driver can say)."""
        get = getattr(drv, "cuFuncGetParamInfo", None)
        if get is None:
            return
        for i, v in enumerate(self.values):
            res = get(fn, i)
            if int(res[0]) != 0:
                if i == 0:                  # this driver cannot say
                    return
                raise GraphError(f"{len(self.values)} words, the kernel has {i} parameters")
            if res[2] != ctypes.sizeof(v):
                raise GraphError(f"parameter {i}: {ctypes.sizeof(v)} bytes, the kernel's "
                                 f"has {res[2]}")
        if int(get(fn, len(self.values))[0]) == 0:
            raise GraphError(f"{len(self.values)} words, the kernel has more parameters")


class Graph:
    """The launches of a recording as a CUDA graph, instantiated for up to :data:`EXECS`
    tables of addresses (see the module's text)."""

    def __init__(self, launches, table):
        """``launches``: ``(plan, words, patches)`` per launch, in order; ``table``: the
        addresses of the first replay."""
        streams = {_stream(plan.stream) for plan, _, _ in launches}
        if len(streams) != 1 or None in streams:
            raise GraphError("launches on several streams")
        self.stream_handle = streams.pop()
        self.nodes = [Node(*launch) for launch in launches]
        self.users = {}                     # table index -> the nodes whose words it fills
        for k, node in enumerate(self.nodes):
            for _, src, _ in node.patches:
                self.users.setdefault(src, set()).add(k)
        self.table = tuple(table)           # the addresses in the graph's own nodes
        for node in self.nodes:
            node.put(self.table)
        self.execs = {}                     # table -> instantiated graph, oldest use first
        self.lock = threading.Lock()
        self.updates = 0                    # nodes given new words (for tests and curiosity)
        self.launches = 0
        self._build()

    def changed(self, old, new) -> list[int]:
        """The nodes whose words differ between the tables ``old`` and ``new``, in order."""
        nodes = set()
        for i, (a, b) in enumerate(zip(old, new)):
            if a != b:
                nodes |= self.users.get(i, set())
        return sorted(nodes)

    def launch(self, table) -> bool:
        """Launch the graph with the addresses of ``table``; False (nothing launched) while
        another thread is launching it.

        An instantiated graph is kept per table, up to :data:`EXECS` of them: a step whose
        results of the previous step are still alive while it runs gets its blocks from the
        pool in two alternating patterns, say, and each has its instance.  A new table
        takes a new instance while there are fewer, else the one used longest ago; either
        gets new words in the nodes where its table differs."""
        key = tuple(table)
        if not self.lock.acquire(blocking=False):
            return False
        try:
            exe = self.execs.pop(key, None)
            if exe is None:
                if len(self.execs) < EXECS:
                    old, exe = self.table, self._instantiate()
                else:
                    old = next(iter(self.execs))
                    exe = self.execs.pop(old)
                for k in self.changed(old, key):
                    node = self.nodes[k]
                    node.put(key)
                    self._set(exe, node)
                    self.updates += 1
            self.execs[key] = exe           # (dicts keep insertion order: last used last)
            self._launch(exe)
            self.launches += 1
            return True
        finally:
            self.lock.release()

    # ------------------------------------------------------------------ the driver
    def _build(self) -> None:
        drv = _driver()
        self.graph = _check(drv.cuGraphCreate(0), "cuGraphCreate")
        deps = []
        for node in self.nodes:
            node.node = _check(drv.cuGraphAddKernelNode(self.graph, deps, len(deps),
                                                        node.make_params()),
                               "cuGraphAddKernelNode")
            deps = [node.node]
        self.stream = drv.CUstream(self.stream_handle)

    def _instantiate(self):
        return _check(_driver().cuGraphInstantiate(self.graph, 0), "cuGraphInstantiate")

    def _set(self, exe, node) -> None:
        _check(_driver().cuGraphExecKernelNodeSetParams(exe, node.node, node.params),
               "cuGraphExecKernelNodeSetParams")

    def _launch(self, exe) -> None:
        _check(_driver().cuGraphLaunch(exe, self.stream), "cuGraphLaunch")

    def __del__(self):
        try:
            drv = _driver()
            for exe in getattr(self, "execs", {}).values():
                drv.cuGraphExecDestroy(exe)
            if getattr(self, "graph", None) is not None:
                drv.cuGraphDestroy(self.graph)
        except Exception:           # interpreter shutdown, or the context is gone
            pass


def build(launches, table):
    """A :class:`Graph`, or the reason (a string) none could be built."""
    if not launches:
        return "no launches"
    try:
        return Graph(launches, table)
    except (GraphError, ImportError, TypeError, AttributeError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
