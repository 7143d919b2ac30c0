"""emit-numba-cuda: a loop function -> Numba CUDA kernels and a launcher that runs them.

This is the CUDA twin of :mod:`emit-numba-cpu <minaot.codegen.numba_cpu>`:
the same walk over the loop IR, one Python statement per op, the same value
names (``in0``, ``out0``, ``i0``, ``acc4``, ``v7``), ``arith`` ops as the
same expressions, typed constants (``np.float32(0.5)``: a bare ``0.5`` is
a float64 in Numba).  ``math`` ops call the ``math`` module, which Numba
CUDA compiles to libdevice (``math.exp`` on a float32 is ``__nv_expf``), so
``approximate-math`` is not run on this path.  What changes is how loops
become threads (MLIR's ``map-to-gpu``):

* Each top-level ``scf.parallel`` becomes one kernel.  Its loop, and any
  ``scf.for`` nested alone inside it whose iterations are independent (each
  iteration stores to elements indexed by the loop's own index, and reads
  nothing the loop writes), are *collapsed* into one flat range of work
  items: ``i0 = flat // 8``, ``i1 = flat % 8``.  A store that sits above a
  collapsed loop is done by the work item whose inner indices are 0.  A
  sequential loop with an independent loop alone inside it is interchanged:
  a column reduction's chunk ``c`` walks its rows ``r`` in order, updating
  ``partial[c, i1]`` for each column, so the work items are the (c, i1)
  pairs, each walking the rows, and neighbouring threads read neighbouring
  columns (coalesced loads); ``partial[c, i1]`` stays in a register while
  the rows go by (one load before the walk, one store after).
* Pointwise kernels (no reduction left inside the work item): one thread per
  work item, in a grid-stride loop, ``for flat in range(cuda.grid(1), N,
  cuda.gridsize(1))``; the grid is chosen from N.
* Row kernels (the work item holds ``scf.for`` reductions of at least
  ``block_rows_min`` iterations: softmax, layer_norm, a sum over the last
  dim): one block per row (the block's number is its row; blocks stride
  over the rows only when the grid has fewer blocks than rows, see
  :meth:`grid_walk`).  All threads of
  the block run the row's code together ("block context"); each reduction
  nest is split over the threads (``for i1 in range(tid, 4096, 256)``), the
  threads' partial values are combined in shared memory (a tree of
  ``cuda.syncthreads()`` steps) and the result, read back from
  ``shared[0]``, is in every thread: the row's max or sum is an ordinary
  value afterwards, as on the CPU.  Independent ``scf.for`` loops in the row
  (softmax's final normalize-and-store loop) are split over the threads;
  stores of row values are done by thread 0.  Shorter reductions run one
  thread per row, serially, as on the CPU.  Every loop of a row is split the
  same way (thread ``t`` takes elements ``t, t + 256, ...``), so a buffer the
  row walks several times (softmax's input: max, sum, normalize) is read from
  global memory once and kept: each thread reads back only what it kept
  itself, no barrier needed (:meth:`plan_row_cache`).  A walk counts its
  iterations (``for k in range(16): i1 = tid + 256 * k``) so that the
  compiler unrolls it and each thread has several loads in flight; a thread
  then keeps its 16 elements of the row in ``cuda.local.array(16, ...)``
  indexed by ``k``, which the compiler puts in registers, and a row of walks
  that do not count is kept in a shared array of the whole row.
* ``arith.maximumf``/``minimumf`` (NaN-propagating) call ``maximumf`` and
  ``minimumf`` of :mod:`minaot.kernels.minmax_cuda`: one PTX instruction on
  sm_80 and later, where the comparisons written out cost softmax an eighth
  of its time.
* A column walk (the first loop of a chunked column reduction, after the
  interchange) is shared by several threads per work item when it is long:
  a block takes 32 neighbouring columns, 8 threads per column each reduce
  every 8th row, and the parts are combined in shared memory
  (:meth:`column_kernel`): 8 times the threads, each with loads in flight.
* Code outside every ``scf.parallel`` (full reductions: ``x.sum()``) runs as
  one kernel of a single block, in block context, while it is small; a full
  reduction of ``grid_reduce_min`` (2^16) or more iterations runs in two
  passes over a grid: every block reduces its share into a partial value,
  then a second kernel combines the partials (and the loops after the
  reduction use every block's threads).
* ``memref.alloc`` scratch buffers (the partial results of a chunked column
  reduction) are device arrays made at the module's first launch and kept
  for the launches after (stream order makes the reuse safe); each launch
  fills them with their reduction's identity first, unless the first
  kernel to touch a buffer writes every element of it from that identity
  (a column walk, :meth:`value_before_walk`: no fill launch); the two
  loops of a column reduction are two kernels, launched in order, so the
  second reads what the first wrote.  When one block's threads write a
  scratch buffer and read it later in the same kernel, a
  ``cuda.syncthreads()`` separates the two.

The module holds the kernels, one :class:`~minaot.codegen.cuda_runtime.Launcher`
per kernel (``k0_launch = Launcher(k0, blocks, threads)``: the kernel with its
grid and block sizes, fixed numbers computed here from the static shapes,
configured once; it skips Numba's per-call argument typing after the first
call) and ``launch(*arrays)``, a plain Python function that takes the buffers
(inputs then outputs, device arrays or host arrays), fills the scratch buffers
and calls each kernel's launcher in order.
Rank-0 buffers travel as shape-(1,) arrays.  Under the simulator
(``NUMBA_ENABLE_CUDASIM=1``), where kernels run as Python, ``math`` is
swapped for numpy's functions so that ``log(0)`` is ``-inf`` as on the GPU
instead of a Python exception.  An IR form this mapping does not handle
raises ``NotImplementedError`` naming the op; no kernel is ever guessed.
"""

from __future__ import annotations

import math

from ..ir import Function, walk
from .numba_cpu import BINARY as CPU_BINARY
from .numba_cpu import CMP, NP_TYPE, _Emitter as _CpuNames, cast, literal, narrow

LOOPS = ("scf.for", "scf.parallel")
BINARY = {k: v for k, v in CPU_BINARY.items() if k.startswith("arith.")}
BINARY.update({"math.powf": "{T}({0} ** {1})", "math.copysign": "{T}(math.copysign({0}, {1}))",
               # one PTX instruction each on sm_80 and later (minaot.kernels.minmax_cuda)
               "arith.maximumf": "maximumf({0}, {1})", "arith.minimumf": "minimumf({0}, {1})"})
UNARY = {"arith.negf": "-{0}", "math.absf": "abs({0})", "math.absi": "abs({0})",
         "math.rsqrt": "{T}(1) / {T}(math.sqrt({0}))"}
UNARY.update({f"math.{f}": f"{{T}}(math.{f}({{0}}))"
              for f in ("exp", "log", "sin", "cos", "tanh", "sqrt", "erf")})
# Numba's math.floor returns an int64: only for values that are not integers already (inf
# and nan, and any float of 2^52 or more, are their own floor)
UNARY["math.floor"] = "({T}(math.floor({0})) if abs({0}) < {T}(4503599627370496.0) else {0})"
# more pointwise: libdevice functions (ceil and trunc return an int64 too, as floor does);
# round is half to even from floor, no rint (libdevice rint has no simulator version):
# floor + 1 above a half and on a half to an odd floor, and the input's sign on a zero
UNARY.update({f"math.{f}": f"{{T}}(math.{f}({{0}}))"
              for f in ("log1p", "expm1", "log2", "log10", "tan", "asin", "acos", "atan",
                        "sinh", "cosh", "asinh", "acosh", "atanh")})
UNARY["math.ceil"] = "({T}(math.ceil({0})) if abs({0}) < {T}(4503599627370496.0) else {0})"
UNARY["math.trunc"] = "({T}(math.trunc({0})) if abs({0}) < {T}(4503599627370496.0) else {0})"
UNARY["math.round"] = ("({T}(math.copysign(math.floor({0}) + ((({0} - math.floor({0})) > 0.5) or "
                       "((({0} - math.floor({0})) == 0.5) and (math.floor({0}) % 2 != 0))), {0}))"
                       " if abs({0}) < {T}(4503599627370496.0) else {0})")
BINARY.update({"math.atan2": "{T}(math.atan2({0}, {1}))", "math.hypot": "{T}(math.hypot({0}, {1}))",
               "arith.remf": "{T}(math.fmod({0}, {1}))"})
#: only ``approximate-math`` makes these, and it does not run on the CUDA path
UNSUPPORTED = {"arith.bitcast": "no bit casts in the CUDA emitter yet"}

#: reduction combiners a block can split over its threads: (float, int) identities
COMBINERS = {"arith.addf": (0.0, 0), "arith.addi": (0.0, 0),
             "arith.mulf": (1.0, 1), "arith.muli": (1.0, 1),
             "arith.maximumf": (-math.inf, None), "arith.minimumf": (math.inf, None),
             "arith.maxsi": (None, "min"), "arith.minsi": (None, "max")}

#: value types ``cuda.shfl_xor_sync`` moves between a warp's lanes
SHUFFLE_TYPES = ("f32", "f64", "i32", "i64")

MAX_THREADS = 256          # threads per block, at most
MAX_BLOCKS = 65535         # blocks of a grid, at most (grid-stride loops do the rest)
#: blocks of a pointwise kernel's grid, at most: about 16 blocks of 256 threads per SM of an
#: H100, each thread walking several items.  A block per 256 items cost a (4096, 1024)
#: bias + GELU kernel 35.6 us on the H100, 2112 blocks 24.7 us (and a copy 29.7 -> 21.5
#: us): fewer blocks to schedule, and the compiler overlaps one item's loads with the
#: previous item's work
POINTWISE_MAX_BLOCKS = 2048
BLOCK_ROWS_MIN = 32        # a reduction this long or longer gets a block of threads
GRID_REDUCE_MIN = 1 << 16  # a full reduction this long or longer runs in two passes over a grid
MAX_PARTIALS = 1024        # blocks of a full reduction's first pass, at most
ROW_CACHE_BYTES = 32768    # shared memory a row kernel may use to keep rows it reads again
COLUMN_LANES_MIN = 16      # a column walk this long or longer is shared by several threads
ROW_UNROLL_LOADS = 2       # a row kernel unrolls its walks if none reads more global buffers
ROW_REGISTERS = 48         # ... and is then held to this many registers per thread
ROW_REGISTERS_TWO_LOADS = 40   # ... or this many when a walk reads two global buffers
COLUMN_REGISTERS = 48      # register budget of a column walk shared by several threads
#: scalar ops that make a pointwise kernel's prologue (computed by every thread before its
#: work items: Adam's bias corrections, float64 powers) worth sharing among several items
COSTLY_SCALAR = ("math.powf", "math.exp", "math.log", "math.sqrt", "math.tanh", "math.erf",
                 "arith.divf")
PROLOGUE_ITEMS = 4         # work items per thread of such a kernel, when that still leaves
PROLOGUE_MIN_BLOCKS = 512  # this many blocks (on the H100, Adam's update of a (1024, 1024)
                           # weight 42.5 -> 22.5 us, of a 1024-bias 6.3 -> 10.5 us on 1 block)
ROW_REGISTER_VALUES = 32   # a thread keeps at most this many values of rows read again in registers
ROW_REGISTERS_BESIDE_ROWS = 24   # registers a row kernel gets beside the values it keeps
ROW_REGISTERS_MANY_LOADS = 128   # budget of a row kernel keeping rows whose walks read 3+ buffers
COLUMN_PART_VALUES = 32    # a thread keeps at most this many partial column sums of a row group
ROW_GROUP_REGISTERS = 112  # budget of a row group keeping partial column sums in registers


def combine(comb: str, a: str, b: str, dtype: str) -> str:
    """The expression of reduction combiner ``comb`` (``arith.addf``, ``arith.maxsi``...)
    of the values ``a`` and ``b`` of IR type ``dtype`` (a narrow integer wrapped in it)."""
    return narrow(BINARY[comb].format(a, b, T=NP_TYPE[dtype]), comb, dtype)


def _identity(combiner: str, dtype: str):
    f, i = COMBINERS[combiner]
    if dtype in ("f32", "f64"):
        return f
    from ..dtypes import from_ir, iinfo
    lo, hi = iinfo(from_ir(dtype))
    return {0: 0, 1: 1, "min": lo, "max": hi}[i]


def _body(loop):
    return loop.regions[0].block


def _trip(loop):
    return loop.attributes["upper"] - loop.attributes["lower"]


def _carried(op):
    return op.name == "scf.for" and bool(op.operands)


def _inside(op):
    """Every op nested in ``op``'s regions."""
    return list(walk(op))[1:]


def _pow2ceil(n):
    return 1 << max(n - 1, 0).bit_length()


def _where(op):
    return f" ({op.loc})" if op.loc is not None else ""


def _accesses(op, buf) -> bool:
    """Is ``op`` a load or store of ``buf``?"""
    return ((op.name == "memref.load" and op.operands[0] is buf)
            or (op.name == "memref.store" and op.operands[1] is buf))


def _buffers_touched(ops):
    loads, stores = set(), set()
    for o in ops:
        if o.name == "memref.load":
            loads.add(o.operands[0])
        elif o.name == "memref.store":
            stores.add(o.operands[1])
    return loads, stores


def _independent(loop) -> bool:
    """May the iterations of ``loop`` run on different threads?  Yes if every store inside
    indexes the loop's own index directly (each iteration writes its own elements), and a
    buffer both read and written inside is always read and written at that same index
    (each iteration updates its own elements: a column reduction's partial sums).

    An ``scf.parallel`` always may; an ``scf.for`` that carries values (a reduction)
    never does.  Otherwise look at every ``memref.load``/``store`` nested inside
    (:func:`_inside`, :func:`_buffers_touched`): each store must have the loop's own
    induction variable (the first block argument) among its indices, and for each
    buffer that is both loaded and stored inside, all its loads and stores must use
    the very same index values (``is``) as the first of them."""
    # BEGIN TASK 9.2: may a loop's iterations run on different threads? (dependence check)
    if loop.name == "scf.parallel":
        return True
    if loop.operands:
        return False
    ops = _inside(loop)
    iv = _body(loop).args[0]
    loads, stores = _buffers_touched(ops)
    at = {}
    for o in ops:
        if o.name == "memref.store" and not any(i is iv for i in o.operands[2:]):
            return False
        if o.name in ("memref.load", "memref.store"):
            buf, idx = (o.operands[0], o.operands[1:]) if o.name == "memref.load" else (o.operands[1], o.operands[2:])
            if buf in loads and buf in stores:
                first = at.setdefault(buf, idx)
                if len(first) != len(idx) or any(a is not b for a, b in zip(first, idx)):
                    return False
    return True
    # END TASK 9.2


def _apart(loop, ops) -> bool:
    """Do ``ops`` (around ``loop``) leave alone what ``loop`` writes, and write nothing it reads?"""
    loads, stores = _buffers_touched(_inside(loop))
    o_loads, o_stores = _buffers_touched(o for op in ops for o in walk(op))
    return not (stores & (o_loads | o_stores)) and not (loads & o_stores)


def _work_items(par):
    """The loops whose iterations become work items (the ``scf.parallel`` and the loops nested
    alone in it that may run in parallel, outermost first), and a sequential ``scf.for`` to run
    inside each work item around the last of them, or None.

    The second case is a loop interchange: in a column reduction's first loop, each chunk
    ``c`` walks its rows ``r`` in order and, per row, updates ``partial[c, i1]`` for every
    column; the columns do not depend on each other, so the work items are the (c, i1)
    pairs, each walking the rows: neighbouring threads read neighbouring columns."""
    levels = [par]
    while True:
        blk = _body(levels[-1])
        ops = blk.ops[:-1]
        loops = [o for o in ops if o.name in LOOPS]
        if len(loops) != 1 or loops[0].name != "scf.for" or loops[0].operands:
            return levels, None
        inner = loops[0]
        rest = [o for o in ops if o is not inner]
        if _independent(inner) and _apart(inner, rest):
            levels.append(inner)
            continue
        iblk = _body(inner)
        iops = iblk.ops[:-1]
        iloops = [o for o in iops if o.name in LOOPS]
        if (len(iloops) == 1 and iloops[0].name == "scf.for" and not iloops[0].operands
                and not any(o.name in LOOPS or o.name == "memref.store" for o in iops if o is not iloops[0])
                and _independent(iloops[0])
                and _apart(iloops[0], rest + [o for o in iops if o is not iloops[0]])):
            return levels + [iloops[0]], inner
        return levels, None


def _row_group(ops):
    """The loop of a work item that walks a group of rows in order, each with reductions
    a block shares (a mixed row and column kernel's chunk, :mod:`mix-reductions
    <minaot.passes.mix_reductions>`): the one loop among ``ops``, a non-carrying
    ``scf.for`` with carried loops inside; or None."""
    loops = [o for o in ops if o.name in LOOPS]
    if (len(loops) == 1 and loops[0].name == "scf.for" and not _carried(loops[0])
            and any(_carried(o) for o in _inside(loops[0]))
            and not any(o.name == "memref.store" for o in ops)):
        return loops[0]
    return None


def _promotable(loop, fixed=()):
    """Buffers that ``loop`` reads and writes at one element only, whose indices are fixed
    before the loop starts (or are among the values ``fixed``: the indices of the work item,
    after an interchange): that element can live in a register for the whole loop (one load
    before, one store after), as a column reduction's ``partial[c, i1]`` over its rows."""
    inside = _inside(loop)
    defined = {id(v) for o in [loop] + inside for v in o.results}
    defined |= {id(a) for o in [loop] + inside for reg in o.regions for a in reg.block.args}
    defined -= {id(v) for v in fixed}
    loads, stores = _buffers_touched(inside)
    out = {}
    touched = [o.operands[0] if o.name == "memref.load" else o.operands[1] for o in inside
               if o.name in ("memref.load", "memref.store")]
    for buf in dict.fromkeys(touched):      # in program order: the same source every time
        if buf not in loads or buf not in stores:
            continue
        idxs = [o.operands[1:] if o.name == "memref.load" else o.operands[2:] for o in inside
                if o.name in ("memref.load", "memref.store")
                and (o.operands[0] if o.name == "memref.load" else o.operands[1]) is buf]
        first = idxs[0]
        if (all(len(i) == len(first) and all(a is b for a, b in zip(i, first)) for i in idxs)
                and not any(id(v) in defined for v in first)):
            out[buf] = first
    return out


def reduction_nest(loop):
    """The levels of the reduction nest that starts at the carried ``scf.for`` ``loop``
    (outermost first) and each carried value's combiner op name.

    A nest is one ``scf.for`` per reduced axis, each inner one starting from its
    parent's carried values and yielded back unchanged; the innermost yields
    ``combine(acc, x)`` where ``acc`` is used nowhere else.  Then the iterations may be
    split over threads, each starting from the identity, and the parts combined in any
    order."""
    levels = [loop]
    while True:
        blk = _body(levels[-1])
        inner = [o for o in blk.ops[:-1] if o.name in LOOPS]
        if not (len(inner) == 1 and inner[0].name == "scf.for"
                and list(inner[0].operands) == list(blk.args[1:])
                and list(blk.ops[-1].operands) == list(inner[0].results)
                and all(len(a.uses) == 1 for a in blk.args[1:])):
            break
        if any(o.name == "memref.store" for o in blk.ops if o is not inner[0]):
            raise NotImplementedError(f"emit-numba-cuda: a store inside a reduction nest{_where(loop)}")
        levels.append(inner[0])
    blk = _body(levels[-1])
    combiners = []
    for arg, y in zip(blk.args[1:], blk.ops[-1].operands):
        op = y.defining_op
        if (op is None or op.parent is not blk or op.name not in COMBINERS
                or not any(a is arg for a in op.operands) or len(arg.uses) != 1 or len(y.uses) != 1):
            raise NotImplementedError(
                f"emit-numba-cuda: scf.for{_where(loop)} carries a value that is not a plain "
                f"reduction (combined by {op.name if op is not None else 'nothing'}); only "
                f"{', '.join(sorted(COMBINERS))} reductions are split over a block")
        combiners.append(op.name)
    if any(o.name == "memref.store" for o in _inside(levels[-1])):
        raise NotImplementedError(f"emit-numba-cuda: a store inside a reduction nest{_where(loop)}")
    return levels, combiners


def _nest_trip(loop):
    n, cur = _trip(loop), loop
    while True:
        inner = [o for o in _body(cur).ops if _carried(o)]
        if len(inner) != 1:
            return n
        cur = inner[0]
        n *= _trip(cur)


def _unflatten(flat, levels, names):
    """Lines binding each level's index from one flat work-item index.

    ``levels`` are loops, outermost first, collapsed into one range of
    ``prod(trips)`` work items, row-major: the last level varies fastest.  With
    ``stride_k`` the product of the trip counts of the levels inside level k, level
    k's index is ``flat // stride_k % trip_k`` (no ``// 1``, and no ``%`` for the
    outermost level), plus the loop's lower bound when it is not 0.  ``names`` maps
    each loop's induction variable (its body's first argument) to its name; e.g.
    ``["i0 = flat // 8", "i1 = flat % 8"]`` for loops of 4 and 8 iterations."""
    # BEGIN TASK 9.1: bind each collapsed loop's index from one flat work-item index
    lines, stride = [], 1
    strides = []
    for lv in reversed(levels):
        strides.append(stride)
        stride *= _trip(lv)
    strides.reverse()
    for k, (lv, s) in enumerate(zip(levels, strides)):
        expr = flat if s == 1 else f"{flat} // {s}"
        if k > 0:
            expr = f"{expr} % {_trip(lv)}"
        lo = lv.attributes["lower"]
        lines.append(f"{names[_body(lv).args[0]]} = {f'{lo} + ' if lo else ''}{expr}")
    return lines
    # END TASK 9.1


NP_ITEMSIZE = {"f32": 4, "f64": 8, "i32": 4, "i64": 8, "i16": 2, "i8": 1, "ui8": 1, "i1": 1}


class _RowCache:
    """A buffer's row kept in the array ``name`` while a row kernel runs a row: a shared
    array of the whole row, or (``per_thread`` set) a thread's own elements of it in a
    local array of ``per_thread`` values, indexed by the walk's count (registers)."""

    def __init__(self, name, last_store, per_thread=None):
        self.name = name
        self.last_store = last_store    # the loop whose stores go to global memory too
        self.per_thread = per_thread    # elements of the row each thread keeps, in registers
        self.filled = False             # has a walk over the row been emitted (values kept)?

    def at(self, iv, count):
        """The element of loop index ``iv``: in registers, the ``count``-th of this thread's."""
        if self.per_thread is None:
            return f"{self.name}[{iv}]"
        if count is None:
            raise AssertionError("emit-numba-cuda: a row kept in registers read by a walk "
                                 "that does not count its iterations")
        return f"{self.name}[{count}]"


class _ColumnPart:
    """A chunk's partial column sums kept in registers while a row group walks its rows
    (:meth:`_CudaEmitter.plan_column_parts`): each thread holds its ``per`` columns of the
    scratch row ``buf[idx]`` in the local array ``name``, indexed by the walk's count."""

    def __init__(self, name, loop, idx, per, fill):
        self.name = name
        self.loop = loop        # the walk over the columns that updates them
        self.idx = idx          # the element's indices (the last is the walk's own index)
        self.per = per
        self.fill = fill        # the starting value: the buffer's fill

    def at(self, count):
        if self.per == 1:
            return f"{self.name}[0]"
        if count is None:
            raise AssertionError("emit-numba-cuda: partial column sums in registers updated "
                                 "by a walk that does not count its iterations")
        return f"{self.name}[{count}]"


class _Kernel:
    """One ``@cuda.jit`` function being written."""

    def __init__(self, name, comment):
        self.name = name
        self.comment = comment
        self.lines = []
        self.shared = {}        # dtype -> number of shared arrays used at once
        self.warp_shared = {}   # dtype -> number of arrays of warps' values (one per reduction)
        self.threads = 1
        self.blocks = 1
        self.uses_tid = False
        self.grid = False       # do loops and stores go over all the blocks' threads (grid context)?
        self.caches = []        # (array name, length, dtype, in registers? or what they hold): rows kept
        self.unroll = True      # may its walks over global memory count their iterations?
        self.max_registers = None   # register budget per thread given to the compiler


class _CudaEmitter:
    def __init__(self, fn: Function, max_threads, max_blocks, block_rows_min, grid_reduce_min,
                 row_cache_bytes=ROW_CACHE_BYTES, column_lanes_min=COLUMN_LANES_MIN, unroll=True,
                 warp_shuffle=True, max_registers=None):
        self.fn = fn
        self.max_registers = max_registers
        self.unroll = unroll
        self.warp_shuffle = warp_shuffle
        self.warp_site = False      # was the last reduction combined by shuffles and shared memory?
        self.row_cache_bytes = row_cache_bytes
        self.column_lanes_min = column_lanes_min
        self.cached = {}                    # buffer -> its _RowCache, in the row kernel being written
        self.colparts = {}                  # buffer -> its _ColumnPart, in the row group being written
        self.row_group = None               # the loop of a row kernel's work item over its rows
        self.counted = None                 # the count of the walk being written, if it counts
        self.max_threads, self.max_blocks, self.block_rows_min = max_threads, max_blocks, block_rows_min
        self.grid_reduce_min = grid_reduce_min
        for op in fn.walk():
            if op.name in UNSUPPORTED:
                raise NotImplementedError(f"emit-numba-cuda: {op.name}{_where(op)}: {UNSUPPORTED[op.name]}")
            if op.name == "memref.alloc" and op.parent is not fn.body:
                raise NotImplementedError(f"emit-numba-cuda: memref.alloc inside a loop{_where(op)}")
        # name every value exactly as emit-numba-cpu does, so both sources read alike
        cpu = _CpuNames(fn, parallel=False)
        self.params = [cpu.name(a, a.name_hint) for a in fn.args]
        cpu.block(fn.body, 1)
        self.names, self.used = cpu.names, cpu.used
        self.scratch = []       # (name, memref type, fill)
        self.self_filled = set()    # names of scratch buffers whose first kernel writes them whole
        for op in fn.body.ops:
            if op.name == "memref.alloc":
                name = self.fresh(f"tmp{len(self.scratch)}")
                self.names[op.result] = name
                self.scratch.append((name, op.result.type, op.attributes["fill"]))
        self.params += [s[0] for s in self.scratch]
        loads, stores = _buffers_touched(fn.walk())
        self.rw = loads & stores            # buffers written and read back in the kernel
        self.k = None
        self.promoted = {}                  # buffer -> the variable holding its one element
        self.flat_items = None              # (flat index, axis indices, trips) of a pointwise item
        self.linear_items = False           # in a kernel of one thread per work item
        self.flat_used = False              # whether any kernel reads or writes by load_at/store_at
        self.nonnegative_used = False       # ... or declares a work-item index non-negative
        self.partials = []                  # (name, blocks, dtype): first-pass results of full reductions
        self.finished = {}                  # full reduction -> (its partial buffers, their number)
        # names the kernels' own code uses, kept apart from the values' names
        self._tid, self._flat, self._width, self._j, self._gtid, self._k = (
            self.fresh(n) for n in ("tid", "flat", "width", "j", "gtid", "k"))

    def fresh(self, base):
        n, k = base, 1
        while n in self.used:
            n, k = f"{base}_{k}", k + 1
        self.used.add(n)
        return n

    def emit(self, depth, text):
        self.k.lines.append("    " * depth + text)

    # --- scalars and memory ------------------------------------------------
    def index(self, values):
        return ", ".join(self.names[v] for v in values) if values else "0"

    def scalar(self, op, depth):
        n = op.name
        if n == "arith.constant":
            return
        ops = [self.names[v] for v in op.operands]
        r = op.results[0]
        t = str(r.type)
        T = NP_TYPE.get(t)
        if n == "memref.load" and op.operands[0] in self.promoted:
            expr = self.promoted[op.operands[0]]
        elif n == "memref.load" and op.operands[0] in self.colparts:
            expr = self.colparts[op.operands[0]].at(self.counted)
        elif n == "memref.load" and op.operands[0] in self.cached:
            c = self.cached[op.operands[0]]
            i = self.names[op.operands[-1]]
            if c.filled:
                expr = c.at(i, self.counted)
            else:                   # the first walk over the row: read it, keep it
                self.emit(depth, f"{self.names[r]} = {ops[0]}[{self.index(op.operands[1:])}]")
                expr = self.names[r]
                self.emit(depth, f"{c.at(i, self.counted)} = {expr}")
                return
        elif n == "memref.load" and (at := self.element_at(op.operands[0], op.operands[1:])):
            expr = f"load_at({ops[0]}, {at}, ({self.index(op.operands[1:])}))"
        elif n == "memref.load":
            expr = f"{ops[0]}[{self.index(op.operands[1:])}]"
        elif n in BINARY:
            expr = narrow(BINARY[n].format(*ops, T=T), n, t)
        elif n in UNARY:
            expr = narrow(UNARY[n].format(*ops, T=T), n, t)
        elif n in ("arith.cmpf", "arith.cmpi"):
            p = op.attributes["predicate"]
            expr = (f"({ops[0]} < {ops[1]} or {ops[0]} > {ops[1]})" if p == "one"
                    else f"{ops[0]} {CMP[p]} {ops[1]}")
        elif n == "arith.select":
            expr = f"{ops[1]} if {ops[0]} else {ops[2]}"
        elif n == "arith.cast":
            expr = cast(ops[0], str(op.operands[0].type), t)
        else:
            raise NotImplementedError(f"emit-numba-cuda: no code for {n}{_where(op)}")
        self.emit(depth, f"{self.names[r]} = {expr}")

    def store_text(self, op):
        v, buf = self.names[op.operands[0]], self.names[op.operands[1]]
        if op.operands[1] in self.promoted:
            return f"{self.promoted[op.operands[1]]} = {v}"
        if op.operands[1] in self.colparts:
            return f"{self.colparts[op.operands[1]].at(self.counted)} = {v}"
        if at := self.element_at(op.operands[1], op.operands[2:]):
            return f"store_at({buf}, {at}, ({self.index(op.operands[2:])}), {v})"
        return f"{buf}[{self.index(op.operands[2:])}] = {v}"

    def bind_items(self, flat, levels, depth, declare=False):
        """Lines binding each collapsed loop's index from the work-item index ``flat``
        (:func:`_unflatten`); with ``declare`` (kernels of one thread per pointwise work
        item) after one that declares ``flat`` non-negative (``nonnegative`` of
        :mod:`minaot.kernels.flat_cuda`, an ``llvm.assume``): a work item's index never
        is, and knowing it the compiler drops the fix-ups of Python's ``//`` and ``%``
        for negative numbers and the indices' wraparound checks.  On the H100 the train
        step's bias + GELU kernels 15.0 -> 12.3 us (sm_90: 61 -> 45 instructions an
        element).  Items that walk a loop of their own (the GELU backward's chunks of
        rows with their bias-gradient sums) ran slower with it, 28.7 -> 38.4 us, though
        ``ptxas`` counts about the same instructions; they, the column walks and the row
        kernels do without."""
        if declare:
            self.nonnegative_used = True
            self.emit(depth, f"{flat} = nonnegative({flat})")
        for line in _unflatten(flat, levels, self.names):
            self.emit(depth, line)

    def element_at(self, buf, indices) -> str:
        """Where the element ``buf[indices]`` (two axes or more) lies in the buffer's memory if
        the buffer is C-contiguous, as an expression: the work item's flat index when a
        pointwise item reads or writes a buffer of the domain's shape at its own indices,
        else ``(i0 * n1 + i1) * n2 + i2 ...``.  The access then goes through
        ``load_at``/``store_at`` (:mod:`minaot.kernels.flat_cuda`), which use it where the
        buffer turns out C-contiguous and the indices and strides otherwise.  ``""``
        (index as before) for a buffer of one axis (its index is its offset) and outside
        kernels of one thread per work item: in the row kernels the offsets cost more than
        they save (on the H100 layer_norm's mixed backward kernel 336 -> 393 us with them;
        with them in the others, the train step's GELU backward with its column sums
        30.0 -> 28.8 us, Adam's updates 15.2 -> 14.1 and 10.8 -> 9.1)."""
        if len(indices) < 2 or not self.linear_items:
            return ""
        self.flat_used = True
        names = [self.names[v] for v in indices]
        if self.flat_items is not None:
            flat, ivs, trips = self.flat_items
            if tuple(buf.type.shape) == trips and tuple(names) == ivs:
                return flat
        expr = names[0]
        for name, size in zip(names[1:], buf.type.shape[1:]):
            expr = f"({expr}) * {size} + {name}" if "+" in expr else f"{expr} * {size} + {name}"
        return expr

    def writes_rw(self, ops):
        return any(o.name == "memref.store" and o.operands[1] in self.rw
                   and o.operands[1] not in self.colparts for o in ops)

    # --- thread context: one thread runs the code alone (the CPU emitter's walk) ------
    def serial(self, ops, depth, pad=False):
        """``pad``: ops of a loop body, which needs a statement even when all was hoisted."""
        start = len(self.k.lines)
        for op in ops:
            if op.name in ("scf.yield", "func.return"):
                continue
            if op.name in LOOPS:
                blk = _body(op)
                for arg, res, init in zip(blk.args[1:], op.results, op.operands):
                    self.emit(depth, f"{self.names[arg]} = {self.names[init]}")
                lo, hi = op.attributes["lower"], op.attributes["upper"]
                self.emit(depth, f"for {self.names[blk.args[0]]} in range({hi if lo == 0 else f'{lo}, {hi}'}):")
                self.serial(blk.ops, depth + 1, pad=not blk.args[1:])
                for arg, v in zip(blk.args[1:], blk.ops[-1].operands):
                    if self.names[arg] != self.names[v]:
                        self.emit(depth + 1, f"{self.names[arg]} = {self.names[v]}")
            elif op.name == "memref.store" and op.operands[1] in self.cached:
                c = self.cached[op.operands[1]]
                self.emit(depth, f"{c.at(self.names[op.operands[-1]], self.counted)} = "
                                 f"{self.names[op.operands[0]]}")
                if op.parent_op is c.last_store:    # earlier walks' stores are overwritten
                    self.emit(depth, self.store_text(op))
            elif op.name == "memref.store":
                self.emit(depth, self.store_text(op))
            else:
                self.scalar(op, depth)
        if pad and len(self.k.lines) == start:
            self.emit(depth, "pass")

    # --- block context: every thread of the block runs the code, values are uniform ---
    def uniform(self, ops, depth, guard=()):
        """``guard``: extra conditions under which a store here is the one to do."""
        for op in ops:
            if op.name in ("scf.yield", "func.return"):
                continue
            if op.name == "memref.store":
                self.emit(depth, f"if {' and '.join((self.first_thread,) + tuple(guard))}:")
                self.emit(depth + 1, self.store_text(op))
                if op.operands[1] in self.rw:
                    self.emit(depth, "cuda.syncthreads()")
            elif _carried(op) and op in self.finished:
                self.finish_reduction(op, depth)
            elif _carried(op):
                self.block_reduction(op, depth)
                self.walked(op)
            elif op is self.row_group:
                self.rows_of_group(op, depth, guard)
            elif op.name in LOOPS:
                blk = _body(op)
                iv, lo, hi = self.names[blk.args[0]], op.attributes["lower"], op.attributes["upper"]
                inner = _inside(op)
                if any(_carried(o) for o in inner):
                    # every thread walks this loop; the reductions inside use the whole block
                    self.emit(depth, f"for {iv} in range({hi if lo == 0 else f'{lo}, {hi}'}):")
                    self.uniform(blk.ops, depth + 1, guard)
                    continue
                if _independent(op):        # the block's (or grid's) threads share the iterations
                    levels, around = _work_items(op)
                    if len(levels) == 1 and around is None:
                        at = self.shared_loop(depth, iv, lo, hi, self.lane(), self.lanes(), op)
                        self.serial(blk.ops, at, pad=True)
                        self.walked(op)
                    else:
                        work = math.prod(_trip(lv) for lv in levels)
                        self.emit(depth, f"for {self._j} in range({self.lane()}, {work}, {self.lanes()}):")
                        self.bind_items(self._j, levels, depth + 1)
                        self.work_item(levels, around, depth + 1, row=False)
                else:                   # iterations depend on each other: thread 0 runs them
                    self.emit(depth, f"if {' and '.join((self.first_thread,) + tuple(guard))}:")
                    self.serial([op], depth + 1)
                if self.writes_rw(inner):
                    self.emit(depth, "cuda.syncthreads()")
            else:
                self.scalar(op, depth)

    def tid(self):
        self.k.uses_tid = True
        return self._tid

    def shared_loop(self, depth, iv, lo, hi, lane, lanes, loop) -> int:
        """Emit the head of ``loop`` over ``range(lo, hi)``, whose iterations ``lanes`` threads
        share (this one starting at ``lane``); returns the depth of its body.

        When every thread has the same number of iterations the loop counts them,
        ``for k in range(16): i1 = tid + 256 * k``: a constant trip count that the compiler
        unrolls, so a thread issues several loads before it waits for the first (one load
        in flight per thread is not enough to keep HBM busy).  The price is registers;
        :meth:`plan_unroll` decides, per row kernel, whether to pay it.  (Unrolling only the
        walks that read global memory was slower on every kernel measured.)"""
        n = hi - lo
        reads = self.unroll and self.k.unroll
        if reads and n % lanes == 0 and n // lanes > 1:
            self.emit(depth, f"for {self._k} in range({n // lanes}):")
            self.emit(depth + 1, f"{iv} = {f'{lo} + ' if lo else ''}{lane} + {lanes} * {self._k}")
            self.counted = self._k
        else:
            self.emit(depth, f"for {iv} in range({f'{lo} + ' if lo else ''}{lane}, {hi}, {lanes}):")
            self.counted = None
        return depth + 1

    def lane(self):
        """This thread's number among the threads that share a loop: its block's, or in
        grid context every block's."""
        if self.k.grid:
            self.tid()
            return self._gtid
        return self.tid()

    def lanes(self):
        return self.k.threads * (self.k.blocks if self.k.grid else 1)

    @property
    def first_thread(self):
        return f"{self.lane()} == 0"

    def shared(self, dtype, k):
        self.k.shared[dtype] = max(self.k.shared.get(dtype, 0), k + 1)
        return f"sm_{dtype}_{k}"

    def block_reduction(self, loop, depth, partials=None):
        """A reduction nest split over the block's threads, combined in shared memory.

        In grid context the nest's iterations are split over every block's threads; each
        block's combined part is stored to ``partials[k][blockIdx.x]`` by its thread 0 (the
        first pass of a two-pass full reduction) and the result is not available here."""
        levels, combiners = reduction_nest(loop)
        accs = [self.names[a] for a in _body(loop).args[1:]]
        for lv in levels:                       # every level's carried value is this thread's part
            for a, name in zip(_body(lv).args[1:], accs):
                self.names[a] = name
        dtypes = [str(a.type) for a in _body(loop).args[1:]]
        for name, comb, t in zip(accs, combiners, dtypes):
            self.emit(depth, f"{name} = {literal(_identity(comb, t), t)}")
        lane, lanes = self.lane(), self.lanes()
        if len(levels) == 1:
            lo, hi = loop.attributes["lower"], loop.attributes["upper"]
            self.shared_loop(depth, self.names[_body(loop).args[0]], lo, hi, lane, lanes, loop)
        else:
            flat = self._j
            total = math.prod(_trip(lv) for lv in levels)
            self.emit(depth, f"for {flat} in range({lane}, {total}, {lanes}):")
            self.bind_items(flat, levels, depth + 1)
        for k, lv in enumerate(levels):
            blk = _body(lv)
            rest = [o for o in blk.ops[:-1] if k + 1 == len(levels) or o is not levels[k + 1]]
            self.serial(rest, depth + 1)
        innermost = _body(levels[-1])
        for name, v in zip(accs, innermost.ops[-1].operands):
            self.emit(depth + 1, f"{name} = {self.names[v]}")
        results = self.tree(accs, combiners, dtypes, depth)
        if partials is not None:
            self.emit(depth, f"if {self.tid()} == 0:")
            for res, part in zip(results, partials):
                self.emit(depth + 1, f"{part}[cuda.blockIdx.x] = {res}")
            return
        self.publish(loop, results, accs, combiners, dtypes, depth)

    def finish_reduction(self, loop, depth):
        """The second pass of a two-pass full reduction: the block combines the first pass's
        per-block parts (``self.finished[loop]``); the result is in every thread."""
        partials, count = self.finished[loop]
        _, combiners = reduction_nest(loop)
        accs = [self.names[a] for a in _body(loop).args[1:]]
        dtypes = [str(a.type) for a in _body(loop).args[1:]]
        for name, comb, t in zip(accs, combiners, dtypes):
            self.emit(depth, f"{name} = {literal(_identity(comb, t), t)}")
        self.emit(depth, f"for {self._j} in range({self.tid()}, {count}, {self.k.threads}):")
        for name, part, comb, t in zip(accs, partials, combiners, dtypes):
            self.emit(depth + 1, f"{name} = {combine(comb, name, f'{part}[{self._j}]', t)}")
        results = self.tree(accs, combiners, dtypes, depth)
        self.publish(loop, results, accs, combiners, dtypes, depth)

    def tree(self, accs, combiners, dtypes, depth):
        """Combine the block's threads' values of ``accs``; returns, for each, the expression
        that holds the block's result (a register in every thread, or ``sm[0]``).

        With warp shuffles (the default, for 32- and 64-bit values): each warp combines its
        32 values in registers, ``v = v + cuda.shfl_xor_sync(mask, v, 16)``, then 8, 4, 2, 1
        (after the five steps every lane holds the warp's value); lane 0 of each warp stores
        it in an array of this reduction's own (``sm_f32_w0``), one barrier, and every
        thread combines the warps' values.  At most two barriers in all (the second, after
        the result is read, is :meth:`publish`'s, and :func:`_free_barriers` takes it out
        where nothing could overwrite the array before another barrier).
        Otherwise a shared-memory tree: halve the active threads each step, each adding its
        partner's part, a barrier per step; the result is in ``sm[0]``."""
        tid = self.tid()
        threads = self.k.threads
        warps = -(-threads // 32)
        shuffle = self.warp_shuffle and all(t in SHUFFLE_TYPES for t in dtypes)
        self.warp_site = shuffle and warps > 1
        sms = []
        count = {}
        for t in dtypes if not shuffle else ():
            sms.append(self.shared(t, count.get(t, 0)))
            count[t] = count.get(t, 0) + 1
        for t in dtypes if self.warp_site else ():     # arrays of this reduction's own
            n = self.k.warp_shared.get(t, 0)
            self.k.warp_shared[t] = n + 1
            sms.append(f"sm_{t}_w{n}")
        if shuffle:
            mask = 0xFFFFFFFF if threads >= 32 else (1 << threads) - 1
            steps = []
            o = min(16, threads // 2)
            while o >= 1:
                steps.append(o)
                o //= 2
            self.emit(depth, "# each warp combines its threads' values in registers (shuffles)")
            for name, comb, t in zip(accs, combiners, dtypes):
                other = self.fresh(f"other_{t}")
                self.used.discard(other)        # the same name in every reduction of this type
                for o in steps:
                    self.emit(depth, f"{other} = cuda.shfl_xor_sync({mask:#x}, {name}, {o})")
                    self.emit(depth, f"{name} = {combine(comb, name, other, t)}")
            if warps == 1:
                return list(accs)
            self.emit(depth, f"if {tid} % 32 == 0:      # lane 0 of each warp")
            for sm, name in zip(sms, accs):
                self.emit(depth + 1, f"{sm}[{tid} // 32] = {name}")
            self.emit(depth, "cuda.syncthreads()" + SITE)
            for sm, name, comb, t in zip(sms, accs, combiners, dtypes):
                self.emit(depth, f"{name} = {sm}[0]")
                for w in range(1, warps):
                    self.emit(depth, f"{name} = {combine(comb, name, f'{sm}[{w}]', t)}")
            return list(accs)
        for sm, name in zip(sms, accs):
            self.emit(depth, f"{sm}[{tid}] = {name}")
        self.emit(depth, "cuda.syncthreads()")
        width = self._width
        self.emit(depth, f"{width} = {threads // 2}")
        self.emit(depth, f"while {width} > 0:")
        self.emit(depth + 1, f"if {tid} < {width}:")
        for sm, comb, t in zip(sms, combiners, dtypes):
            left, right = self.fresh(f"left_{t}"), self.fresh(f"right_{t}")
            self.used -= {left, right}      # the same two names in every reduction of this type
            self.emit(depth + 2, f"{left} = {sm}[{tid}]")
            self.emit(depth + 2, f"{right} = {sm}[{tid} + {width}]")
            self.emit(depth + 2, f"{sm}[{tid}] = {combine(comb, left, right, t)}")
        self.emit(depth + 1, "cuda.syncthreads()")
        self.emit(depth + 1, f"{width} //= 2")
        return [f"{sm}[0]" for sm in sms]

    def publish(self, loop, results, accs, combiners, dtypes, depth):
        """Every thread reads the combined value (and adds the loop's initial value)."""
        for res, name, init, comb, t in zip(results, accs, loop.operands, combiners, dtypes):
            if res != name:
                self.emit(depth, f"{name} = {res}")
            ident = init.defining_op
            if not (ident is not None and ident.name == "arith.constant"
                    and ident.attributes["value"] == _identity(comb, t)):
                self.emit(depth, f"{name} = {combine(comb, self.names[init], name, t)}")
        self.emit(depth, "cuda.syncthreads()     # everyone has read the result: shared memory is "
                  "free" + (FREE if self.warp_site else ""))     # (FREE: it may go, _free_barriers)
        for res, name in zip(loop.results, accs):
            self.names[res] = name

    # --- threads per block --------------------------------------------------------------
    def block_threads(self, ops):
        trips = [1]
        for op in ops:
            for o in walk(op):
                if o.name in LOOPS:
                    trips.append(_nest_trip(o) if _carried(o) else _trip(o))
        return min(self.max_threads, _pow2ceil(max(trips)))

    # --- kernels ------------------------------------------------------------------------
    def needed(self, own):
        """Top-level scalar ops (loads of rank-0 inputs, arithmetic on them) that ``own``
        reads: every kernel recomputes the ones it needs."""
        top = {id(o) for o in self.fn.body.ops}
        mine = {id(o) for o in own}
        need, stack = set(), [v for op in own for o in walk(op) for v in o.operands]
        while stack:
            d = stack.pop().defining_op
            if d is None or id(d) not in top or id(d) in mine or id(d) in need:
                continue
            if d.name in ("arith.constant", "memref.alloc"):
                continue
            if d in self.finished:          # its second pass: combine the first pass's parts
                need.add(id(d))
                stack.extend(d.operands)
                continue
            if d.name in LOOPS or d.name == "memref.store":
                raise NotImplementedError(
                    f"emit-numba-cuda: {d.name}{_where(d)} computes a value that another kernel "
                    "of the same loop function reads")
            need.add(id(d))
            stack.extend(d.operands)
        return [o for o in self.fn.body.ops if id(o) in need]

    def start_kernel(self, name, comment):
        self.k = _Kernel(name, comment)
        return self.k

    def serial_kernel(self, name, own):
        k = self.start_kernel(name, "one block: the code outside any scf.parallel")
        k.threads = self.block_threads(own)
        self.uniform(self.needed(own) + own, 1)
        return k

    def grid_eligible(self, own) -> bool:
        """May this code outside any ``scf.parallel`` run over a grid of blocks: is there a full
        reduction of at least ``grid_reduce_min`` iterations, and are the other loops ones whose
        iterations the grid's threads can share (no barrier across blocks is ever needed)?"""
        reductions = [op for op in own if _carried(op)]
        if not reductions or max(_nest_trip(op) for op in reductions) < self.grid_reduce_min:
            return False
        loads, stores = _buffers_touched(o for op in own for o in walk(op))
        if (loads | stores) & self.rw:
            return False
        for op in own:
            inner = _inside(op)
            if op.name in LOOPS and any(o.name in LOOPS and o is not op for o in inner) and \
                    not _carried(op):
                return False
            if op.name == "scf.for" and not _carried(op) and not _independent(op):
                return False
            if _carried(op) and any(o.name == "memref.store" for o in inner):
                return False
        return True

    def grid_kernels(self, name, own):
        """Code outside any ``scf.parallel`` with large full reductions, over a grid of blocks:
        each full reduction is a first-pass kernel (every block reduces a share of the
        iterations into one partial value); the loops and stores between and after run in
        kernels of their own, where every block combines the partials it reads (the second
        pass) and the blocks' threads share the loops' iterations."""
        out, pending = [], []
        for op in own:
            if _carried(op):
                effects = [o for o in pending if o.name in LOOPS or o.name == "memref.store"]
                if effects:
                    out.append(self.grid_effects_kernel(name, effects))
                pending = []
                out.append(self.partials_kernel(name, op))
            else:
                pending.append(op)
        effects = [o for o in pending if o.name in LOOPS or o.name == "memref.store"]
        if effects:
            out.append(self.grid_effects_kernel(name, effects))
        return out

    def partials_kernel(self, name, loop):
        total = _nest_trip(loop)
        k = self.start_kernel(name, "")
        k.grid = True
        k.threads = min(self.max_threads, _pow2ceil(total))
        k.blocks = max(1, min(self.max_blocks, MAX_PARTIALS, -(-total // k.threads)))
        k.comment = (f"full reduction, first pass: each of {k.blocks} blocks reduces a share of "
                     f"{total} iterations to one partial value")
        parts = []
        for a in _body(loop).args[1:]:
            parts.append(self.fresh(f"part{len(self.partials)}"))
            self.partials.append((parts[-1], k.blocks, str(a.type)))
        self.params += parts
        self.uniform(self.needed([loop]), 1)
        self.block_reduction(loop, 1, partials=parts)
        self.finished[loop] = (parts, k.blocks)
        return k

    def grid_effects_kernel(self, name, ops):
        work = max([1] + [math.prod(_trip(lv) for lv in _work_items(op)[0]) for op in ops
                          if op.name in LOOPS])
        k = self.start_kernel(name, "")
        k.grid = True
        # enough threads for the loops, and for combining the partial values of a reduction
        parts = max([1] + [n for _, n in self.finished.values()])
        k.threads = min(self.max_threads, _pow2ceil(max(work, parts)))
        k.blocks = max(1, min(self.max_blocks, -(-work // k.threads)))
        k.comment = (f"grid of {k.blocks} blocks: the loops' {work} iterations shared by every "
                     "block's threads, full reductions combined from their partial values")
        self.uniform(self.needed(ops) + ops, 1)
        return k

    def parallel_kernel(self, name, par):
        levels, around = _work_items(par)
        work = math.prod(_trip(lv) for lv in levels)
        body = list(_body(levels[-1]).ops) + ([o for o in _body(around).ops] if around else [])
        reductions = [o for op in body for o in walk(op) if _carried(o)]
        row = bool(reductions) and max(_nest_trip(o) for o in reductions) >= self.block_rows_min
        ivs = [self.names[_body(lv).args[0]] for lv in levels]
        flat = self._flat
        if row:
            k = self.start_kernel(name, f"one block per work item ({work}), its threads share the reductions")
            k.threads = self.block_threads(body)
            k.blocks = max(1, min(work, self.max_blocks))
            self.k.lines.extend(self.lines_for_needed([par], depth=1, uniform=True))
            depth = self.grid_walk(flat, "cuda.blockIdx.x", "cuda.gridDim.x", work, k.blocks)
        elif (split := self.lane_split(levels, around)) is not None:
            return self.column_kernel(name, par, levels, around, split, work)
        else:
            k = self.start_kernel(name, f"one thread per work item ({work})")
            k.threads = max(1, min(self.max_threads, work))
            self.linear_items = True
            blocks = -(-work // k.threads)
            costly = sorted({o.name for o in self.needed([par]) if o.name in COSTLY_SCALAR})
            if costly and blocks >= PROLOGUE_ITEMS * PROLOGUE_MIN_BLOCKS:
                # every thread computes the scalars first: let each take several items
                blocks = -(-blocks // PROLOGUE_ITEMS)
                k.comment = (f"one thread per {PROLOGUE_ITEMS} work items ({work} in all): each "
                             f"thread computes the scalars ({', '.join(costly)}) once")
            k.blocks = max(1, min(blocks, self.max_blocks, POINTWISE_MAX_BLOCKS))
            self.k.lines.extend(self.lines_for_needed([par], depth=1, uniform=False))
            self.emit(1, f"for {flat} in range(cuda.grid(1), {work}, cuda.gridsize(1)):")
            depth = 2
        self.bind_items(flat, levels, depth, declare=not row and around is None)
        if not row and around is None and all(lv.attributes["lower"] == 0 for lv in levels):
            self.flat_items = (flat, tuple(ivs), tuple(_trip(lv) for lv in levels))
        if row and around is None:
            ops = _body(levels[-1]).ops
            self.row_group = _row_group(ops)
            if self.row_group is not None:
                k.comment = (f"one block per work item ({work}), a group of {_trip(self.row_group)} row"
                             f"{'s' if _trip(self.row_group) != 1 else ''} "
                             "walked in order, its threads share each row's reductions")
                self.plan_column_parts(levels)
                ops = _body(self.row_group).ops
            self.plan_row_cache(ops)
            self.plan_unroll(ops)
        self.work_item(levels, around, depth, row)
        self.cached, self.colparts, self.row_group, self.flat_items = {}, {}, None, None
        self.linear_items = False
        return k

    def grid_walk(self, var, first, stride, work, blocks) -> int:
        """Bind ``var`` to this block's work item (a row, a group of columns); returns the
        depth of the code that follows.

        When the grid has fewer blocks than work items, they stride over the work, ``for
        var in range(first, work, stride)``.  When it has a block for every work item, there
        is no loop: ``var = first``, and the work item's code is the kernel's body.  The
        loop, run once by each block, cost the row kernels of the benchmarks up to a sixth
        of their time on the H100 (layer_norm's forward 241 us with it, 200 us without;
        softmax 227 us, 218 us): the compiler keeps values live across its back edge.
        (Pointwise kernels keep their grid-stride loop: a thread there takes several
        work items when the work is larger than the grid.)"""
        if blocks < work:
            self.emit(1, f"for {var} in range({first}, {work}, {stride}):")
            return 2
        self.emit(1, f"{var} = {first}   # a block for every work item")
        return 1

    # --- column walks shared by several threads ----------------------------------------
    def lane_split(self, levels, around):
        """May the rows of an interchanged column walk be shared by several threads per work
        item?  ``{buffer: (indices, combiner)}`` for the elements it updates, or None.

        Yes when the walk is long enough (``column_lanes_min`` rows), the block has room for
        two or more threads per work item, every element it updates in registers is a plain
        reduction (``elem = combine(elem, x)``, the loaded value used by that combine only)
        and it stores nothing else, and the levels above it only compute indices.  Then
        each thread can reduce every ``S``-th row from the identity, and the parts be
        combined in any order afterwards."""
        if around is None or _trip(around) < self.column_lanes_min or self.max_threads < 4:
            return None
        lv = levels[-1]
        for d, level in enumerate(levels[:-1]):
            nxt = around if d == len(levels) - 2 else levels[d + 1]
            if any(o.name in LOOPS or o.name == "memref.store" for o in _body(level).ops[:-1]
                   if o is not nxt):
                return None
        promoted = _promotable(around, [_body(lv).args[0]])
        inside = _inside(around)
        if not promoted or any(o.name == "memref.store" and o.operands[1] not in promoted
                               for o in inside):
            return None
        out = {}
        for buf, idx in promoted.items():
            loads = [o for o in inside if o.name == "memref.load" and o.operands[0] is buf]
            stores = [o for o in inside if o.name == "memref.store" and o.operands[1] is buf]
            if len(loads) != 1 or len(stores) != 1:
                return None
            old, new = loads[0].result, stores[0].operands[0]
            comb = new.defining_op
            if (comb is None or comb.name not in COMBINERS or len(old.uses) != 1 or len(new.uses) != 1
                    or old.uses[0][0] is not comb or str(new.type) not in NP_TYPE):
                return None
            out[buf] = (idx, comb.name)
        return out

    def value_before_walk(self, buf, idx, levels, around) -> str:
        """The value of the element ``buf[idx]`` that a work item's walk starts from: a load,
        or, when this walk is the first to touch ``buf``, a scratch buffer whose work items
        are its elements one to one, the buffer's fill itself.

        A chunked column reduction's partial sums ``tmp[c, i1]`` start at the reduction's
        identity.  Filling the buffer is a kernel launch of its own before the walk (two for
        layer_norm's weight and bias gradients), host time at every call; when the walk's
        work items are exactly the buffer's elements (``idx`` the levels' own indices, in
        order, over the buffer's shape), nothing in the work item touches the buffer
        outside the walk ``around``, and no earlier kernel of the module reads or writes
        the buffer, each work item starts from the fill and its store writes the element
        whole, so the fill launch is dropped (:attr:`self_filled`)."""
        element = f"{self.names[buf]}[{self.index(idx)}]"
        alloc = None if buf.is_block_arg else buf.owner
        if (alloc is None or alloc.name != "memref.alloc"
                or levels[0].parent is not self.fn.body):
            return element
        ivs = [_body(lv).args[0] for lv in levels]
        shape = tuple(buf.type.shape)
        if (len(idx) != len(ivs) or any(a is not b for a, b in zip(idx, ivs))
                or tuple(lv.attributes["upper"] for lv in levels) != shape
                or any(lv.attributes["lower"] != 0 for lv in levels)):
            return element
        inside = {id(o) for o in walk(around)}
        loads, stores = _buffers_touched(o for o in walk(levels[0]) if id(o) not in inside)
        if buf in loads or buf in stores:
            return element
        for op in self.fn.body.ops:
            if op is levels[0]:
                break
            loads, stores = _buffers_touched(walk(op))
            if buf in loads or buf in stores:
                return element
        self.self_filled.add(self.names[buf])
        return literal(alloc.attributes["fill"], str(buf.type.dtype))

    def column_kernel(self, name, par, levels, around, split, work):
        """A column walk (the first pass of a chunked column reduction) with ``S`` threads per
        work item: a block takes ``W`` neighbouring work items (neighbouring columns: each
        row's loads are coalesced), thread ``lane * W + col`` walks the rows ``lane, lane + S,
        ...`` of work item ``col`` from the reductions' identities, the ``S`` parts of each
        work item meet in shared memory and its first thread adds them to the element (the
        value before the walk: the scratch buffer's fill)."""
        threads = self.max_threads
        width = min(32, threads // 2)
        lanes = min(threads // width, _pow2ceil(_trip(around)))
        groups = -(-work // width)
        k = self.start_kernel(name, f"column walk: {width} work items ({work} in all) per block, "
                                    f"each shared by {lanes} threads taking every {lanes}th row")
        k.threads = width * lanes
        k.blocks = max(1, min(groups, self.max_blocks))
        # given no budget, the compiler took 32 registers and unrolled the walk less:
        # layer_norm's weight and bias gradients 244 us; held to 48 (it takes them all),
        # 210 us on the H100
        k.max_registers = COLUMN_REGISTERS
        tid = self.tid()
        lane, col, group, flat = (self.fresh(n) for n in ("lane", "col", "group", "item"))
        self.k.lines.extend(self.lines_for_needed([par], depth=1, uniform=False))
        self.emit(1, f"{lane} = {tid} // {width}")
        self.emit(1, f"{col} = {tid} % {width}")
        d = self.grid_walk(group, "cuda.blockIdx.x", "cuda.gridDim.x", groups, k.blocks)
        self.emit(d, f"{flat} = {group} * {width} + {col}")
        self.bind_items(flat, levels, d)
        parts = {}
        for buf, (idx, comb) in split.items():
            t = str(buf.type.dtype)
            parts[buf] = self.fresh(f"{self.names[buf]}_part")
            self.promoted[buf] = parts[buf]
            self.emit(d, f"{parts[buf]} = {literal(_identity(comb, t), t)}")
        self.emit(d, f"if {flat} < {work}:")
        for n, level in enumerate(levels[:-1]):
            nxt = around if n == len(levels) - 2 else levels[n + 1]
            self.serial([o for o in _body(level).ops[:-1] if o is not nxt], d + 1)
        lo, hi = around.attributes["lower"], around.attributes["upper"]
        self.shared_loop(d + 1, self.names[_body(around).args[0]], lo, hi, lane, lanes, around)
        self.serial([o for o in _body(around).ops[:-1] if o is not levels[-1]], d + 2)
        self.serial(_body(levels[-1]).ops[:-1], d + 2, pad=True)
        self.promoted = {}
        count, sms = {}, {}
        for buf in split:
            t = str(buf.type.dtype)
            sms[buf] = self.shared(t, count.get(t, 0))
            count[t] = count.get(t, 0) + 1
            self.emit(d, f"{sms[buf]}[{tid}] = {parts[buf]}")
        self.emit(d, "cuda.syncthreads()")
        self.emit(d, f"if {lane} == 0 and {flat} < {work}:")
        for buf, (idx, comb) in split.items():
            t = str(buf.type.dtype)
            part, j = parts[buf], self._j
            self.emit(d + 1, f"for {j} in range(1, {lanes}):")
            self.emit(d + 2, f"{part} = {combine(comb, part, f'{sms[buf]}[{j} * {width} + {col}]', t)}")
            elem = f"{self.names[buf]}[{self.index(idx)}]"
            before = self.value_before_walk(buf, idx, levels, around)
            self.emit(d + 1, f"{self._j} = {before}      # the value before the walk"
                             + ("" if before == elem else " (the buffer's fill)"))
            self.emit(d + 1, f"{elem} = {combine(comb, self._j, part, t)}")
        if k.blocks < groups:      # blocks stride over the groups
            self.emit(d, "cuda.syncthreads()     # the shared parts are read: the next group may write")
        return k

    # --- rows kept in shared memory ---------------------------------------------------
    def split_loop(self, op) -> bool:
        """Is ``op`` a loop of a row's code that the block's threads share one level deep,
        ``for i in range(tid, n, threads)``: a one-level reduction, or an independent loop
        with no loop inside?"""
        if op.name != "scf.for" or op.attributes["lower"] != 0:
            return False
        if any(o.name in LOOPS for o in _inside(op)):
            return False
        if _carried(op):
            return op not in self.finished
        return _independent(op)

    def plan_unroll(self, ops):
        """Unroll a row kernel's walks, and budget its registers, by the loads of its walks.

        An unrolled walk issues all its loads before it waits for the first, and the
        compiler keeps them all in registers: softmax's kernel took 110 registers per
        thread, so 2 blocks of 256 threads fit on an SM, and ran at 0.64 of copy speed on
        the H100.  Held to ``ROW_REGISTERS`` (48) it took 40, with no spills, and ran at
        0.89: more blocks per SM hide the barriers of the row reductions.  A walk that
        reads more global buffers needs more registers for the same unrolling (layer_norm's
        backward row kernel reads three: 240 registers unrolled, and spills under any
        budget that leaves room for a second block); such a kernel is not unrolled, and
        the compiler takes what it needs (72, no spills: 488 us against 645 unrolled).
        So: a row kernel whose every walk reads at most ``ROW_UNROLL_LOADS`` buffers from
        global memory (a row kept in shared memory counts on the walk that fills it) is
        unrolled and given the budget; any other is not unrolled.  A walk reading two
        buffers spills some registers under any budget (layer_norm's forward: the weight
        and the bias); there a smaller budget, ``ROW_REGISTERS_TWO_LOADS`` (40), that fits
        six blocks on an SM instead of five, was faster (241 us against 276 us, 80 bytes of
        spills against 48), while softmax's one-buffer walks were faster at 48 (226 us
        against 234 us).  (Copying the kept rows into shared memory in walks of their
        own, before the walks that compute, was slower on all three row kernels: each
        unrolled load costs its own 64-bit address, and the copies spilled too.)  These
        budgets were measured while every block looped over its rows; without that loop
        (:meth:`grid_walk`) budgets from 40 to 64 ran within 2% of each other.

        A kernel keeping rows in registers (:meth:`plan_row_cache`) must count its walks,
        however many buffers they read: its budget is at least the values kept plus
        ``ROW_REGISTERS_BESIDE_ROWS``, and ``ROW_REGISTERS_MANY_LOADS`` (128) where a walk
        reads more than two (layer_norm's backward rows: 330 us at 128, 342-350 us
        unbudgeted at 116 registers, 387 us at 96 with spills)."""
        filled, heaviest = set(), 0
        for op in ops:
            if op.name not in LOOPS:
                continue
            loads = {o.operands[0] for o in walk(op) if o.name == "memref.load"
                     and o.operands[0] not in self.colparts}
            count = 0
            for buf in loads:
                if buf in self.cached:
                    if buf in filled:
                        continue
                    filled.add(buf)
                count += 1
            heaviest = max(heaviest, count)
        kept = (sum(c.per_thread or 0 for c in self.cached.values())
                + sum(p.per for p in self.colparts.values()))
        if self.colparts:
            self.k.max_registers = ROW_GROUP_REGISTERS
        elif kept:        # rows in registers: their walks must count, whatever they read
            self.k.max_registers = (ROW_REGISTERS_MANY_LOADS if heaviest > ROW_UNROLL_LOADS else
                                    max(ROW_REGISTERS if heaviest < 2 else ROW_REGISTERS_TWO_LOADS,
                                        kept + ROW_REGISTERS_BESIDE_ROWS))
        elif heaviest > ROW_UNROLL_LOADS:
            self.k.unroll = False
        elif self.unroll:
            self.k.max_registers = ROW_REGISTERS if heaviest < 2 else ROW_REGISTERS_TWO_LOADS

    def plan_row_cache(self, ops):
        """Pick the buffers that a row's code walks more than once, to keep on chip.

        Every loop of a row is split over the block's threads the same way (thread ``t``
        takes elements ``t, t + threads, ...``), so a thread reads in a later walk exactly
        the elements it read, or wrote, in an earlier one.  A buffer every access of which
        is ``buf[row indices..., i]`` in such a loop over ``range(n)`` (``i`` the loop's
        index, the row indices the same values everywhere) can then live in a shared array
        of ``n`` elements for the row: the first walk reads global memory and keeps the
        values, later walks read the shared array, and only the last walk that writes the
        buffer writes global memory (the earlier writes are overwritten anyway).  No barrier
        is needed: each thread reads back only its own elements.  A buffer of one row in all
        (a weight every row reads) stays in the caches of the GPU; the others are taken by
        how many walks they save.

        Where the walks will count their iterations (``unroll``, and a row of ``per``
        elements per thread, ``per`` > 1), a thread's elements go in a local array of
        ``per`` values indexed by the count: all indices are constants once the walks are
        unrolled, and the compiler keeps the array in registers (on the H100, softmax 212 us
        against 217 us in shared memory, layer_norm's backward rows 330 us against 370 us),
        while a thread keeps at most ``ROW_REGISTER_VALUES`` values.  The others go in a
        shared array of the whole row, indexed by the element, while they fit in
        ``row_cache_bytes``."""
        loops = [op for op in ops if self.split_loop(op)]
        where = {}                              # buffer -> [(loop, op)]
        for op in ops:
            for o in walk(op):
                if o.name not in ("memref.load", "memref.store"):
                    continue
                buf = o.operands[0] if o.name == "memref.load" else o.operands[1]
                if buf in self.colparts:
                    continue
                loop = o.parent_op
                where.setdefault(buf, []).append((loop if loop in loops else None, o))
        picks = []
        for buf, uses in where.items():
            saved = self.cache_saving(buf, uses)
            if saved:
                n = uses[0][0].attributes["upper"]
                picks.append((-saved, len(picks), buf, n))
        budget = self.row_cache_bytes
        room = ROW_REGISTER_VALUES if self.unroll else 0
        threads = self.k.threads
        for _, _, buf, n in sorted(picks):
            per = n // threads if n % threads == 0 else 0
            registers = 1 < per <= room     # every walk counts its `per` iterations
            if registers:
                room -= per
            else:
                nbytes = n * int(NP_ITEMSIZE[str(buf.type.dtype)])
                if nbytes > budget:
                    continue
                budget -= nbytes
            name = self.fresh(f"row_{self.names[buf]}")
            stores = [loop for loop, o in where[buf] if o.name == "memref.store"]
            self.cached[buf] = _RowCache(name, stores[-1] if stores else None,
                                         per if registers else None)
            self.k.caches.append((name, per if registers else n, str(buf.type.dtype), registers))

    def plan_column_parts(self, levels):
        """Keep a row group's partial column sums in registers while it walks its rows.

        The chunk ``c`` of a mixed kernel adds each of its rows into ``partial[c, i1]``, in
        a walk of the row split over the threads like every walk (thread ``t`` takes the
        columns ``t, t + 256, ...``).  So each thread updates the same elements of the
        chunk's partial row for every row of the chunk, and nothing else touches them: a
        thread keeps its ``per`` of them in a local array indexed by the walk's count
        (registers, as rows read again are), starting from the buffer's fill, and stores
        them once after the last row.  A load and a store per element of every row, and a
        barrier per row, become one store per element of the chunk.

        A buffer qualifies when every access to it in the kernel is in one walk of the
        group, at ``[the work item's indices..., the walk's index]``, the work items are
        the buffer's rows one to one and no earlier kernel touches it (so the kept values
        start from the buffer's fill and the fill launch is dropped, :meth:`whole_fill`),
        the walk's trip count is a multiple of the block's threads and the values kept
        stay within ``COLUMN_PART_VALUES``.  Any other stays in global memory: a load and
        a store per element and row, correct but slower.

        Their register budget is ``ROW_GROUP_REGISTERS`` (112): layer_norm's backward, rows
        of x and the gradient kept (32 values per thread) and two partial sums (32 more),
        took 150 registers unbudgeted (one block per SM, 385 us for its module on the
        H100); 128: 370 us; 112: 336 us; 104: 349 us; 96 and less spill heavily (536 us).
        Partial sums in a shared array of the whole row instead were slower at every
        budget (474 us at 112)."""
        if not self.unroll:
            return
        group, threads = self.row_group, self.k.threads
        par = levels[0]
        defined = {id(v) for o in walk(group) for v in o.results}
        defined |= {id(a) for o in walk(group) for reg in o.regions for a in reg.block.args}
        room = COLUMN_PART_VALUES
        for loop in _body(group).ops:
            if not self.split_loop(loop) or _carried(loop) or _trip(loop) % threads:
                continue
            per = _trip(loop) // threads
            iv = _body(loop).args[0]
            loads, stores = _buffers_touched(_inside(loop))
            touched = [o.operands[0] if o.name == "memref.load" else o.operands[1]
                       for o in _inside(loop) if o.name in ("memref.load", "memref.store")]
            for buf in [b for b in dict.fromkeys(touched) if b in loads and b in stores]:
                acc = [o for o in walk(par) if _accesses(o, buf)]
                if per > room or any(o.parent_op is not loop for o in acc):
                    continue
                idxs = [o.operands[1:] if o.name == "memref.load" else o.operands[2:] for o in acc]
                first = idxs[0]
                if (any(len(i) != len(first) or any(a is not b for a, b in zip(i, first)) for i in idxs)
                        or first[-1] is not iv or any(id(v) in defined for v in first[:-1])):
                    continue
                fill = self.whole_fill(buf, first, levels)
                if fill is None:
                    continue
                room -= per
                name = self.fresh(f"part_{self.names[buf]}")
                self.colparts[buf] = _ColumnPart(name, loop, first, per, fill)
                self.k.caches.append((name, per, str(buf.type.dtype), "partial column sums"))

    def whole_fill(self, buf, idx, levels):
        """The fill of the scratch buffer ``buf`` if the work items (``levels``) write its
        elements ``buf[work item's indices..., i]`` whole and first (no earlier kernel
        touches it), as a literal; else None."""
        alloc = None if buf.is_block_arg else buf.owner
        if alloc is None or alloc.name != "memref.alloc" or levels[0].parent is not self.fn.body:
            return None
        ivs = [_body(lv).args[0] for lv in levels]
        shape = tuple(buf.type.shape)
        if (len(idx) != len(ivs) + 1 or any(a is not b for a, b in zip(idx, ivs))
                or tuple(_trip(lv) for lv in levels) != shape[:-1]
                or any(lv.attributes["lower"] for lv in levels)):
            return None
        for op in self.fn.body.ops:
            if op is levels[0]:
                break
            if any(_accesses(o, buf) for o in walk(op)):
                return None
        self.self_filled.add(self.names[buf])
        return literal(alloc.attributes["fill"], str(buf.type.dtype))

    def rows_of_group(self, loop, depth, guard):
        """The row group's loop over its rows, every thread walking it (the reductions
        inside use the whole block), between the partial column sums' start in registers
        and their one store (:meth:`plan_column_parts`)."""
        for buf, p in self.colparts.items():
            self.emit(depth, f"for {self._k} in range({p.per}):")
            self.emit(depth + 1, f"{p.name}[{self._k}] = {p.fill}   # the buffer's fill: "
                                 "the group writes its row whole")
        blk = _body(loop)
        iv, lo, hi = self.names[blk.args[0]], loop.attributes["lower"], loop.attributes["upper"]
        self.emit(depth, f"for {iv} in range({hi if lo == 0 else f'{lo}, {hi}'}):")
        self.uniform(blk.ops, depth + 1, guard)
        for buf, p in self.colparts.items():
            self.emit(depth, f"for {self._k} in range({p.per}):   # the chunk's partial sums, stored once")
            self.emit(depth + 1, f"{self.names[_body(p.loop).args[0]]} = {self.tid()} + {self.k.threads} * {self._k}")
            self.emit(depth + 1, f"{self.names[buf]}[{self.index(p.idx)}] = {p.name}[{self._k}]")

    def cache_saving(self, buf, uses) -> int:
        """Global-memory walks saved by keeping ``buf``'s row in shared memory (0: it cannot be,
        or nothing is saved); ``uses`` are its ``(loop, access)`` pairs in one row's code."""
        if any(loop is None for loop, _ in uses) or buf.type.rank < 1:
            return 0
        n = uses[0][0].attributes["upper"]
        if math.prod(buf.type.shape) <= n:       # one row for every work item: the GPU caches it
            return 0
        row = None
        order = {}
        for loop, o in uses:
            idx = o.operands[1:] if o.name == "memref.load" else o.operands[2:]
            if loop.attributes["upper"] != n or not idx or idx[-1] is not _body(loop).args[0]:
                return 0
            inner = {id(v) for x in [loop] + _inside(loop) for v in x.results}
            if any(id(v) in inner or v.defining_op is None and v is _body(loop).args[0]
                   for v in idx[:-1]):
                return 0
            if row is None:
                row = idx[:-1]
            elif len(row) != len(idx) - 1 or any(a is not b for a, b in zip(row, idx[:-1])):
                return 0
            kinds = order.setdefault(id(loop), [])
            if o.name == "memref.load" and "store" in kinds:
                return 0                        # read back in the walk that wrote it
            kinds.append(o.name.split(".")[1])
        walks = list(order.values())
        loads = sum("load" in k for k in walks)
        stores = sum("store" in k for k in walks)
        first_reads = "load" in walks[0] and "store" not in walks[0]
        # walks that read global memory without the cache, and stores overwritten later
        return (loads - (1 if first_reads else 0)) + max(stores - 1, 0)

    def walked(self, loop):
        """After a walk over the row: the cached buffers it touched are in shared memory."""
        touched = _buffers_touched(_inside(loop))
        for buf, c in self.cached.items():
            if buf in touched[0] or buf in touched[1]:
                c.filled = True

    def work_item(self, levels, around, depth, row):
        """The code of one work item (its indices are bound): each level's own ops, outermost
        first, a store above the innermost level done only where the inner indices are 0."""
        ivs = [self.names[_body(lv).args[0]] for lv in levels]
        write_back = []
        for d, lv in enumerate(levels):
            if around is not None and d == len(levels) - 1:
                # the interchanged sequential loop, inside the work item; the elements it
                # updates stay in registers while it runs
                if not row:
                    for buf, idx in _promotable(around, [_body(lv).args[0]]).items():
                        name = self.fresh(f"{self.names[buf]}_elem")
                        elem = f"{self.names[buf]}[{self.index(idx)}]"
                        before = self.value_before_walk(buf, idx, levels, around)
                        self.emit(depth, f"{name} = {before}" + (
                            "" if before == elem else "   # the buffer's fill: the walk writes it whole"))
                        self.promoted[buf] = name
                        write_back.append(f"{elem} = {name}")
                lo, hi = around.attributes["lower"], around.attributes["upper"]
                self.emit(depth, f"for {self.names[_body(around).args[0]]} in range("
                                 f"{hi if lo == 0 else f'{lo}, {hi}'}):")
                depth += 1
                pre = [o for o in _body(around).ops[:-1] if o is not lv]
                self.uniform(pre, depth) if row else self.serial(pre, depth)
            nxt = around if around is not None and d == len(levels) - 2 else (
                levels[d + 1] if d + 1 < len(levels) else None)
            ops = [o for o in _body(lv).ops[:-1] if o is not nxt]
            inner_first = tuple(f"{iv} == {lvl.attributes['lower']}"
                                for iv, lvl in zip(ivs[d + 1:], levels[d + 1:]))
            if row:
                self.uniform(ops, depth, guard=inner_first)
            elif inner_first:
                for op in ops:
                    if op.name == "memref.store":
                        self.emit(depth, f"if {' and '.join(inner_first)}:")
                        self.emit(depth + 1, self.store_text(op))
                    else:
                        self.serial([op], depth)
            else:
                self.serial(ops, depth, pad=True)
        for line in write_back:
            self.emit(depth - 1, line)
        self.promoted = {}

    def lines_for_needed(self, own, depth, uniform):
        saved = self.k.lines
        self.k.lines = []
        need = self.needed(own)
        if uniform:
            self.uniform(need, depth)
        elif need:
            self.serial(need, depth)
        lines, self.k.lines = self.k.lines, saved
        return lines

    def kernels(self):
        top = [o for o in self.fn.body.ops if o.name not in ("func.return", "arith.constant", "memref.alloc")]
        phases, run = [], []
        for op in top:
            if op.name == "scf.parallel":
                phases += [run, [op]] if run else [[op]]
                run = []
            else:
                run.append(op)
        if run:
            phases.append(run)
        # a run of scalar ops alone has no effect: the kernels that read them recompute them
        phases = [p for p in phases if any(o.name in LOOPS or o.name == "memref.store" for o in p)]
        out = []
        for p in phases:
            if len(p) == 1 and p[0].name == "scf.parallel":
                out.append(self.parallel_kernel(self.fn.name, p[0]))
            elif self.grid_eligible(p):
                out += self.grid_kernels(self.fn.name, p)
            else:
                out.append(self.serial_kernel(self.fn.name, p))
        for i, k in enumerate(out):
            k.name = self.fn.name if len(out) == 1 else f"{self.fn.name}_{i}"
        return out


#: markers at the end of a generated line (taken off by :func:`_free_barriers`): the barrier of
#: a warp-shuffle reduction before its threads read the warps' values, and the one after
SITE, FREE = "\x00site", "\x00free"


def _free_barriers(k: _Kernel) -> list[str]:
    """``k``'s lines without the barriers that only kept a warp-shuffle reduction's array of
    warps' values from being overwritten while threads still read it, where nothing can
    overwrite it before another barrier anyway (and without the markers that say which).

    Each such reduction has an array of its own (``sm_f32_w0``, ...), written again only
    when the same reduction runs again.  A reduction outside every loop runs once: its
    barrier after the read protects nothing.  Two or more reductions in one loop body, none
    in a loop nested in it, run in turn, and each one's own barrier (the one before its
    read) lies between two runs of any other: layer_norm's backward row (two reductions)
    goes from four barriers to two (on the H100 its module 336 -> 326 us, 0.83 -> 0.88 of
    the copy-bound time).  A reduction alone in its loop, or with another one in a loop
    nested in its own, keeps its barrier."""
    lines = list(k.lines)

    def indent(i):
        return len(lines[i]) - len(lines[i].lstrip(" "))

    def parent(i):
        """The header line of the block holding line ``i``, or None at the kernel's top."""
        for j in range(i - 1, -1, -1):
            if lines[j].strip() and indent(j) < indent(i):
                return j
        return None

    sites = [i for i, line in enumerate(lines) if line.endswith(SITE)]
    drop = set()
    for at, line in enumerate(lines):
        if not line.endswith(FREE):
            continue
        p = parent(at)
        if p is None:
            drop.add(at)
        elif lines[p].strip().startswith(("for ", "while ")):     # (inside an if: kept)
            end = next((j for j in range(p + 1, len(lines))
                        if lines[j].strip() and indent(j) <= indent(p)), len(lines))
            inside = [a for a in sites if p < a < end]
            if len(inside) >= 2 and all(parent(a) == p for a in inside):
                drop.add(at)
    return [line.removesuffix(SITE).removesuffix(FREE) for i, line in enumerate(lines)
            if i not in drop]


def _kernel_text(k: _Kernel, params, tid, gtid, max_registers=None) -> list[str]:
    registers = max_registers or k.max_registers
    jit = "cache=True" + (f", max_registers={registers}" if registers else "")
    lines = [f"@cuda.jit({jit})", f"def {k.name}({', '.join(params)}):"]
    if k.uses_tid:
        lines.append(f"    {tid} = cuda.threadIdx.x")
    if k.grid:
        lines.append(f"    {gtid} = cuda.blockIdx.x * {k.threads} + {tid}")
    for dtype, count in sorted(k.shared.items()):
        for i in range(count):
            lines.append(f"    sm_{dtype}_{i} = cuda.shared.array({k.threads}, {NP_TYPE[dtype]})")
    warps = -(-k.threads // 32)
    for dtype, count in sorted(k.warp_shared.items()):
        for i in range(count):
            lines.append(f"    sm_{dtype}_w{i} = cuda.shared.array({warps}, {NP_TYPE[dtype]})"
                         f"   # the warps' values of one reduction")
    for name, n, dtype, registers in k.caches:
        if registers:
            what = registers if isinstance(registers, str) else "part of a row read again"
            lines.append(f"    {name} = cuda.local.array({n}, {NP_TYPE[dtype]})   "
                         f"# this thread's {what} (registers)")
        else:
            lines.append(f"    {name} = cuda.shared.array({n}, {NP_TYPE[dtype]})   # a row read again")
    return lines + (_free_barriers(k) or ["    pass"]) + ["", ""]


def launch_config(fn: Function, **options) -> list[tuple[str, int, int]]:
    """(kernel name, blocks, threads per block) of each kernel ``emit_numba_cuda`` makes."""
    e = _CudaEmitter(fn, options.get("max_threads", MAX_THREADS), options.get("max_blocks", MAX_BLOCKS),
                     options.get("block_rows_min", BLOCK_ROWS_MIN),
                     options.get("grid_reduce_min", GRID_REDUCE_MIN),
                     options.get("row_cache_bytes", ROW_CACHE_BYTES),
                     options.get("column_lanes_min", COLUMN_LANES_MIN), options.get("unroll", True),
                     options.get("warp_shuffle", True))
    return [(k.name, k.blocks, k.threads) for k in e.kernels()]


def emit_numba_cuda(fn: Function, header: str = "", *, max_threads: int = MAX_THREADS,
                    max_blocks: int = MAX_BLOCKS, block_rows_min: int = BLOCK_ROWS_MIN,
                    grid_reduce_min: int = GRID_REDUCE_MIN,
                    row_cache_bytes: int = ROW_CACHE_BYTES,
                    column_lanes_min: int = COLUMN_LANES_MIN, unroll: bool = True,
                    warp_shuffle: bool = True, max_registers: int | None = None) -> str:
    """Python source of a module defining ``fn``'s CUDA kernels and ``launch(*arrays)``.

    ``max_threads`` caps the threads of a block (a power of two is used for reductions),
    ``max_blocks`` the blocks of a grid, reductions of ``block_rows_min`` iterations or
    more are split over a block's threads (shorter ones run in one thread per row), and full
    reductions of ``grid_reduce_min`` iterations or more run in two passes over a grid.
    ``warp_shuffle=False`` combines a block's parts by the shared-memory tree alone (the
    form before warp shuffles, kept to compare); ``max_registers`` gives every kernel
    that register budget (by default only unrolled row kernels get one,
    :meth:`_CudaEmitter.plan_unroll`)."""
    if max_threads < 1 or max_threads & (max_threads - 1):
        raise ValueError(f"emit-numba-cuda: max_threads must be a power of two, got {max_threads}")
    e = _CudaEmitter(fn, max_threads, max_blocks, block_rows_min, grid_reduce_min, row_cache_bytes,
                     column_lanes_min, unroll, warp_shuffle, max_registers)
    kernels = e.kernels()
    lines = [f"# {line}" for line in header.splitlines()]
    runtime = "Launcher, as_vector" if any(a.type.rank == 0 for a in fn.args) else "Launcher"
    lines += ["import math", "", "import numpy as np", "from numba import config, cuda", "",
              f"from minaot.codegen.cuda_runtime import {runtime}"]
    flat_names = ({"load_at", "store_at"} if e.flat_used else set()) | \
        ({"nonnegative"} if e.nonnegative_used else set())
    if flat_names:
        lines.append(f"from minaot.kernels.flat_cuda import {', '.join(sorted(flat_names))}")
    if any(o.name in ("arith.maximumf", "arith.minimumf") for o in walk(fn.body)):
        lines.append("from minaot.kernels.minmax_cuda import maximumf, minimumf")
    lines += ["",
              "if config.ENABLE_CUDASIM:   # kernels run as Python: IEEE results (log(0) = -inf), "
              "not exceptions",
              "    from minaot.codegen.cuda_runtime import SIM_MATH as math",
              "    from minaot.codegen.cuda_simulator import install",
              "    install()                # shared arrays allocated under a lock", "", ""]
    for k in kernels:
        lines.append(f"# {k.comment}")
        lines += _kernel_text(k, e.params, e._tid, e._gtid, e.max_registers)
    fill = e.fresh("fill")
    filled = [(name, t, value) for name, t, value in e.scratch if name not in e.self_filled]
    if filled:
        lines += ["# scratch buffers start filled with their reduction's identity",
                  "@cuda.jit(cache=True)", f"def {fill}(buf, value):",
                  "    for i in range(cuda.grid(1), buf.size, cuda.gridsize(1)):",
                  "        buf[i] = value", "", ""]
    bufs = fn.args
    args = e.params[:len(bufs)]
    scratch = [name for name, _, _ in e.scratch] + [name for name, _, _ in e.partials]
    if scratch:
        lines += ["# scratch buffers: made at the first launch, reused by every launch after (all",
                  "# kernels run on the default stream, so a launch's fill, or the first kernel",
                  "# that writes a buffer whole, waits for the kernels of the launch before)",
                  "_SCRATCH = []", "", "",
                  "def scratch():",
                  "    if not _SCRATCH:",
                  "        _SCRATCH[:] = ["]
        for name, t, _ in e.scratch:
            shape = ", ".join(str(d) for d in t.shape)
            lines.append(f"            cuda.device_array(({shape},), {NP_TYPE[t.dtype]}),   # {name}")
        for name, count, dtype in e.partials:
            lines.append(f"            cuda.device_array({count}, {NP_TYPE[dtype]}),   # {name}")
        lines.append("        ]")
        if filled:
            views = ", ".join(f"_SCRATCH[{i}].reshape({math.prod(t.shape)})"
                              for i, (name, t, _) in enumerate(e.scratch) if name not in e.self_filled)
            lines += ["        # flat views of the buffers that are filled, made once too",
                      f"        _SCRATCH.extend([{views}])"]
        lines += ["    return _SCRATCH", "", ""]
    lines += ["# each launch kept configured: Numba types the arguments once per geometry, not",
              "# at every call (minaot.codegen.cuda_runtime.Launcher)"]
    fills = []
    for name, t, value in filled:       # not those whose first kernel writes every element
        size = math.prod(t.shape)
        threads = min(e.max_threads, size)
        fills.append((f"{fill}_{name}", name, literal(value, t.dtype)))
        lines.append(f"{fill}_{name} = Launcher({fill}, {min(e.max_blocks, -(-size // threads))}, "
                     f"{threads})")
    for k in kernels:
        lines.append(f"{k.name}_launch = Launcher({k.name}, {k.blocks}, {k.threads})")
    lines += ["", ""]
    lines.append(f"def launch({', '.join(args)}):")
    lines.append(f'    """Run {fn.name} on its buffers (inputs, then outputs): {len(kernels)} kernel'
                 f'{"s" if len(kernels) != 1 else ""}, in order."""')
    for name, v in zip(args, bufs):
        if v.type.rank == 0:
            lines.append(f"    {name} = as_vector({name})     # rank 0 travels as shape (1,)")
    if scratch:
        names = scratch + [f"{name}_flat" for name, _, _ in filled]
        lines.append(f"    {', '.join(names)}{',' if len(names) == 1 else ''} = scratch()")
    for launcher, name, value in fills:
        lines.append(f"    {launcher}({name}_flat, {value})")
    for k in kernels:
        lines.append(f"    {k.name}_launch({', '.join(e.params)})")
    lines.append("")
    return "\n".join(lines)
