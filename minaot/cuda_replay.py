"""Replaying a compiled CUDA program: a call as a list of launches, recorded once.

A call of a :class:`~minaot.cuda_backend.CudaProgram` walks its graph in
Python: for each op it makes device arrays (outputs, views), chooses launch
configurations, converts arguments and launches kernels.  The GPU work is the
same at every call with the same input geometry; only the addresses change.
On an H100 the Python time of a call was the larger part of small and medium
programs (about 450 us for layer_norm's forward and backward, whose kernels
take 530 us; most of the 8.5 ms of a training step whose kernels take 3).

So a program *records* one call and *replays* it afterwards, as a CUDA graph
would, but by hand, with the launches the program already makes:

* **Recording** (the second call with a geometry: by then every launch of the
  program has its kept plan, :class:`~minaot.codegen.cuda_runtime.Launcher`).
  The call runs as usual, and hooks note, in order, each allocation from the
  caching allocator (``take``), each block given back (``give``: an
  intermediate's last use), each request for a shared scratch buffer
  (``buffer``, split-K's partial sums) and each launch: the kernel handle, its
  configuration and its argument words.  Every data pointer among the words is
  located in the memory live at that moment: input ``i`` at offset ``o``,
  allocation ``j`` at offset ``o``, a scratch buffer, or memory of the program
  itself (its constants, its error word, the scratch buffers its generated
  kernel modules made once), which stays where it is.  The
  results are noted the same way (allocation, offset, shape, strides).
* **Replaying** (every later call with that geometry): walk the events;
  ``take`` takes a block of the same size from the pool, ``give`` gives it
  back, a launch copies its words and puts in each pointer the base address of
  its source plus the offset, and calls the driver.  Then device arrays are
  made for the results only.  No views, no argument typing, no Python per op.

What makes this safe.  Kernels and their configurations depend only on the
inputs' shapes, strides and dtypes, which key the recordings; scalar words
(sizes, split counts) are the same for a key.  Every kernel runs on the one
stream, so a block given back at the same point of the sequence can be taken
again at once, as in the recorded call.  A recording *fails*, and the program
runs its ordinary path for that key from then on, when anything happens that a
replay would not redo: a launch through Numba's own call (no plan), a host
array copied to the device (``rand``), a device array read on the host, a
pointer that lies in no memory the recording knows, inputs whose memory
overlaps (their aliasing might differ at the next call), a result that is not
a fresh allocation or an input returned as is.  Replays need the inputs'
memory not to overlap either; where it does, that call takes the ordinary path.

Under Numba's simulator nothing is recorded: kernels run as Python there, with
no driver launches to replay.  ``MINAOT_CUDA_REPLAY=0`` switches replaying
off; ``MINAOT_CUDA_REPLAY=check`` replays every program's first call (for tests, see
:func:`checking`).  ``cuda_backend.CudaProgram.replays`` counts the replayed calls.
"""

from __future__ import annotations

import contextlib
import os
import threading

from . import cuda_graph as _graph

#: the Recording being made in this process, or None (the hooks in minaot.cuda,
#: minaot.codegen.cuda_runtime and minaot.kernels.matmul_cuda read it)
ACTIVE = None
#: recordings tried per program and geometry before that geometry runs the ordinary path
ATTEMPTS = 2

TAKE, GIVE, BUFFER, LAUNCH = range(4)


def enabled() -> bool:
    return os.environ.get("MINAOT_CUDA_REPLAY", "1") != "0"


def checking() -> bool:
    """``MINAOT_CUDA_REPLAY=check``: every program's first call with a geometry runs, is
    recorded and is replayed, and returns the replay's results (so that test suites whose
    programs run once check replays against their oracles)."""
    return os.environ.get("MINAOT_CUDA_REPLAY") == "check"


class _Fixed:
    """The source of a pointer into the program's own memory: left as it is."""


FIXED = _Fixed()


def address(arr) -> int:
    """The device address of ``arr``'s first element (0 for an empty array)."""
    if not arr.size:
        return 0
    addr = arr.__dict__.get("_minaot_addr")         # noted by minaot.cuda's views and roots
    return addr if addr is not None else int(arr.gpu_data.device_pointer)


def span(arr) -> int:
    from .cuda import _span
    return _span(arr.shape, arr.strides, arr.dtype.itemsize)


def _extent(arr):
    """``(first byte, end byte)`` of a device array's elements (non-negative strides)."""
    start = address(arr)
    return start, start + span(arr)


def disjoint(starts, spans) -> bool:
    """Do the extents ``[start, start + span)`` overlap nowhere (empty ones ignored)?"""
    ext = sorted((a, a + n) for a, n in zip(starts, spans) if n)
    return all(x[1] <= y[0] for x, y in zip(ext, ext[1:]))


class Recording:
    """One recorded call of a program (see the module's text); ``failed`` says why not."""

    def __init__(self, arrays, fixed):
        self.thread = threading.get_ident()
        self.n_inputs = len(arrays)
        self.spans = [span(a) for a in arrays]
        self.failed = None if disjoint([address(a) for a in arrays], self.spans) \
            else "inputs share memory"
        self.events = []
        self.allocs = []            # per allocation: (nbytes, n, dtype)
        self.blocks = {}            # id(block) -> allocation index, while it is live
        self.roots = {}             # id(root array) -> allocation index
        self.n_buffers = 0
        # (start, end, source): the memory live now; a source is an index into a replay's
        # table of base addresses (inputs, then allocations, then buffers) or FIXED
        self.live = [(*_extent(a), i) for i, a in enumerate(arrays)]
        self.live += [(*_extent(a), FIXED) for a in fixed]
        self.results = None

    # ------------------------------------------------------------------ hooks
    def fail(self, why: str) -> None:
        if self.failed is None and threading.get_ident() == self.thread:
            self.failed = why

    def allocated(self, root, block, size, n, dtype) -> None:
        if threading.get_ident() != self.thread:
            return
        j = len(self.allocs)
        self.allocs.append((size, n, dtype))
        self.blocks[id(block)] = j
        self.roots[id(root)] = j
        start = address(root)
        self.live.append((start, start + n * dtype.itemsize, ("alloc", j)))
        self.events.append((TAKE, j))

    def freed(self, block) -> None:
        j = self.blocks.pop(id(block), None)
        if j is None:
            return
        self.live = [r for r in self.live if r[2] != ("alloc", j)]
        self.events.append((GIVE, j))

    def buffer(self, view, resolve) -> None:
        if threading.get_ident() != self.thread:
            return
        b = self.n_buffers
        self.n_buffers += 1
        self.live.append((*_extent(view), ("buffer", b)))
        self.events.append((BUFFER, b, resolve))

    def launched(self, plan, words) -> None:
        if threading.get_ident() != self.thread or self.failed:
            return
        patches = []
        for w, i in plan.pointers:
            source = self.locate(words[w])
            if source is None:
                self.failed += (f" (argument {i} of {getattr(plan, 'name', 'a kernel')}, "
                                f"address {words[w]:#x})")
                return
            if source[0] is not FIXED:
                patches.append((w, *source))
        self.events.append((LAUNCH, plan, list(words), tuple(patches)))

    def locate(self, pointer):
        """``(source, offset)`` of a data pointer, or None (and the recording fails)."""
        if not pointer:
            return FIXED, 0
        for start, end, source in reversed(self.live):
            if start <= pointer < end:
                return source, pointer - start
        self.fail("a kernel argument lies in memory the recording does not know")
        return None

    def finish(self, arrays, out):
        """Note the results ``[(array, root)]`` of the recorded call; the Recording, or None
        if it failed."""
        live = set(self.blocks.values())         # allocations not given back
        results = []
        for arr, root in out:
            if self.failed:
                break
            inp = next((i for i, a in enumerate(arrays) if arr is a), None)
            j = self.roots.get(id(root)) if root is not None else None
            if inp is not None and root is None:
                results.append(("input", inp))
            elif j is not None and arr.size and j in live:
                results.append(("alloc", j, address(arr) - address(root), tuple(arr.shape),
                                tuple(arr.strides)))
            else:
                self.fail("a result is neither a new allocation nor an input")
        if self.failed:
            return None
        self.results = results
        kept = {r[1] for r in results if r[0] == "alloc"}
        self.release = sorted(live - kept)     # intermediates still live: given back at the end
        # the sources' table: inputs, then allocations, then buffers
        base = self.n_inputs
        nb = base + len(self.allocs)

        def index(source):
            if isinstance(source, int):
                return source
            return (base if source[0] == "alloc" else nb) + source[1]
        events = []
        for ev in self.events:
            if ev[0] == LAUNCH:
                events.append(ev[:3] + (tuple((w, index(s), off) for w, s, off in ev[3]),))
            else:
                events.append(ev)
        self.events = events
        self.table_size = nb + self.n_buffers
        self.blocks = self.roots = self.live = None
        # a CUDA graph of the launches, made at the first replay (minaot/cuda_graph.py):
        # None until then, False where there is none (graphs off, a launch not kept with
        # its configuration as with stand-ins in tests, or ``no_graph`` says why not)
        self.n_launches = sum(ev[0] == LAUNCH for ev in events)
        self.graph = None if (_graph.enabled() and self.n_launches and all(
            getattr(ev[1], "dims", None) for ev in events if ev[0] == LAUNCH)) else False
        self.no_graph = None
        return self

    # ------------------------------------------------------------------ replay
    def replay(self, arrays, pool):
        """Run the recorded call on ``arrays`` (same geometry, checked by the caller);
        ``[(array, root)]`` per result, or None where these inputs' memory overlaps."""
        table = [0] * self.table_size
        for i, a in enumerate(arrays):
            table[i] = address(a)
        if not disjoint(table[:self.n_inputs], self.spans):
            return None
        if self.graph is not False:
            taken = self._graph_replay(table, pool)
            if taken is not None:
                return self._results(arrays, pool, taken)
        return self._results(arrays, pool, self._walk(table, pool, True))

    def _walk(self, table, pool, launching: bool):
        """Walk the events: take and give blocks (filling the table), and where
        ``launching``, launch each kernel with its words; the blocks taken."""
        base = self.n_inputs
        allocs, taken = self.allocs, [None] * len(self.allocs)
        block_address = pool.address
        for ev in self.events:
            kind = ev[0]
            if kind == LAUNCH:
                if launching:
                    words = ev[2].copy()
                    for w, src, off in ev[3]:
                        words[w] = table[src] + off
                    plan = ev[1]
                    plan.driver_launch(plan.stream, plan.config, plan.handle, *words)
            elif kind == TAKE:
                j = ev[1]
                block, size = taken[j] = pool.take(allocs[j][0])
                table[base + j] = block_address(block)
            elif kind == GIVE:
                pool.give(*taken[ev[1]])
                taken[ev[1]] = None
            else:
                table[base + len(allocs) + ev[1]] = address(ev[2]())
        return taken

    def _graph_replay(self, table, pool):
        """The pool's takes and gives and the buffer requests first (they fill the table),
        then the launches as one CUDA graph, built at the first replay; the blocks taken,
        or None where the launches must go one by one (the pool gave memory back to the
        driver meanwhile, which a block the graph would use may be part of, or the graph
        cannot be built or launched).

        The pool's lock is held from the first take to the launch: the blocks of
        intermediates are given back before the kernels that use them are queued, and
        another thread must not take one and queue its own work on it in between (in a
        replay launched one by one, or in the ordinary path, a block goes back only after
        its kernels are queued)."""
        with getattr(pool, "lock", None) or contextlib.nullcontext():
            releases = getattr(pool, "releases", 0)
            taken = self._walk(table, pool, False)
            graph = self.graph
            if getattr(pool, "releases", 0) == releases:
                try:
                    if graph is None:
                        graph = _graph.build(
                            [ev[1:] for ev in self.events if ev[0] == LAUNCH], table)
                        if graph.__class__ is str:
                            self.graph, self.no_graph = False, graph
                            return self._give_back(pool, taken)
                        self.graph = graph
                    if graph.launch(table):
                        return taken
                except _graph.GraphError as exc:
                    self.graph, self.no_graph = False, str(exc)
            return self._give_back(pool, taken)

    @staticmethod
    def _give_back(pool, taken):
        for t in taken:
            if t is not None:
                pool.give(*t)
        return None

    def _results(self, arrays, pool, taken):
        from .cuda import root_over, strided
        allocs = self.allocs
        out, roots = [], {}
        for res in self.results:
            if res[0] == "input":
                out.append((arrays[res[1]], None))
                continue
            _, j, offset, shape, strides = res
            root = roots.get(j)
            if root is None:
                block, size = taken[j]
                taken[j] = None
                root = roots[j] = root_over(pool, block, size, allocs[j][1], allocs[j][2])
            out.append((strided(root, offset, shape, strides), root))
        for j in self.release:
            if taken[j] is not None:
                pool.give(*taken[j])
        return out


def record(arrays, fixed):
    """Start recording (the hooks note what follows, in this thread); returns the Recording."""
    global ACTIVE
    ACTIVE = Recording(arrays, fixed)
    return ACTIVE


def stop() -> None:
    global ACTIVE
    ACTIVE = None
