"""Matrix multiplication on the GPU: from a tiled kernel to a register-blocked one.

``C = A @ B`` with ``A`` of shape (M, K) and ``B`` of shape (K, N): ``2 M N K``
floating-point operations on ``M K + K N`` inputs.  The work is in reading the
inputs fast enough to keep the arithmetic units busy, and this module shows two
steps of that.

**Step 1, tiling (``matmul_tiled``, kept as the teaching step).**  The naive
kernel gives each thread one element ``C[i, j]`` and lets it read row ``i`` of A
and column ``j`` of B from global memory: every element of A is read N times,
every element of B M times, and global memory is slow.  Tiling cuts the reads
by a factor of ``TILE``.  C is cut into ``TILE x TILE`` tiles; one block of
``TILE x TILE`` threads computes one tile, each thread one element of it.  The
shared dimension K is walked in steps of ``TILE``: at each step the block loads
one ``TILE x TILE`` tile of A (the tile's rows, the step's columns) and one of B
(the step's rows, the tile's columns) into *shared memory*, every thread loading
one element of each, then ``cuda.syncthreads()`` waits until both tiles are
complete, and each thread adds the ``TILE`` products of its row of the A tile and
its column of the B tile to its running sum, reading only shared memory.  A
second ``syncthreads()`` keeps any thread from overwriting the tiles before all
have finished reading them.  Each element of A is now read from global memory
N / TILE times instead of N.

**Why that is still slow.**  Shared memory is on-chip but not free: each
multiply-add of the tiled kernel needs two shared-memory loads (one element of
A, one of B), and an SM can issue far fewer shared loads than multiply-adds per
cycle.  The tiled kernel is bound by shared-memory traffic at a few TFLOP/s.

**Step 2, register blocking (``matmul_blocked``, the kernel used).**  Each
thread computes a ``TM x TN`` patch of C (8 x 8 for float32 on a GPU) held in
*registers* (``cuda.local.array`` of a constant size, indexed only by the
counters of loops with constant trip counts, so the compiler unrolls them and
keeps every element in a register).  A block of ``(BM/TM) x (BN/TN)`` = 256
threads computes a ``BM x BN`` tile of C (128 x 128).  The shared tiles are
``BM x BK`` of A and ``BK x BN`` of B (BK = 8).  At each of the BK steps of a
tile a thread reads TM values of A's column and TN values of B's row from shared
memory into registers and does their TM * TN products (an outer product): 16
shared loads for 64 multiply-adds instead of 128, an arithmetic intensity of 4
multiply-adds per shared load instead of 0.5.  Global memory gains the same way:
a block loads ``(BM + BN) * BK`` elements per ``BM * BN * BK`` multiply-adds, 64
per element loaded instead of 8.

The details that keep it fast:

* A thread's patch is spread out, not one contiguous 8 x 8 square: thread
  ``(ty, tx)`` owns two groups of ``VEC`` = 4 neighbouring columns, ``tx * 4 +
  (0..3)`` and ``64 + tx * 4 + (0..3)``, and likewise two groups of 4 rows.  So
  at each step the 16 threads of a half-warp read 64 consecutive elements of
  B's shared row (at most 2 threads per bank) and store 64 consecutive elements
  of a row of C (coalesced).  (``VEC = 1`` gives the fully strided patch, rows
  ``ty + 16 i`` and columns ``tx + 16 j``: no bank conflict at all, yet it ran
  at 15 TF/s on the H100 where ``VEC = 4`` runs at 19.)  Each group of 4 is
  read with one 16-byte load (``load4`` of :mod:`minaot.kernels.vector_cuda`:
  ``ld.shared.v4.f32``, 4 shared loads per step instead of 16).  Measured on
  the H100 that changed nothing (21 TF/s either way): the shared loads were
  not what bounds the kernel; registers are (below).
* Registers: 64 sums, 16 operands, the next step's 8 elements and the
  addresses come to about 200 registers a thread, so only one block of 256
  threads fits on an SM (65536 registers).  Capping the kernel at 128 registers
  (``Blocking.regs``, Numba's ``max_registers``) fits two blocks, so one
  block's loads and barriers overlap the other's arithmetic; the compiler
  spills a few values that are used once a step to local memory, and the
  kernel runs 5-12% faster (measured on the H100: 21 TF/s on (4096, 1024) @
  (1024, 1024)).
* A's tile is stored *transposed* in shared memory, ``[k, row]``: then the TM
  values a thread needs at step ``k`` lie in one row of the shared array, as B's
  do, and a warp reads two addresses of it (a broadcast), not a column.  Each
  shared row is padded by a few elements so that the transposing store does not
  put the 32 threads of a warp in the same few banks.
* Global loads are coalesced whatever the operand's layout: the loads of a tile
  are spread over the 256 threads so that neighbouring threads read neighbouring
  addresses, walking the tile along the axis with the smaller stride.  For ``A``
  row-major that is K; for a transposed view (``dy.T`` in a weight gradient) it
  is M.  The walk is a compile-time choice: one kernel variant per layout of A
  and of B, chosen at launch from the strides.  Operands are read through their
  strides, so any view works without a copy.
* Double buffering: two shared tiles of each operand.  While the block computes
  on one, each thread already holds the next step's elements in registers
  (loaded before the computation, so the global loads are in flight during
  it) and stores them into the other buffer afterwards.  One ``syncthreads()``
  per step suffices: a buffer written at step ``t`` was last read at ``t - 2``.
  The loads are not behind a branch (``if k0 < k_hi``: past the end of K they are
  masked to zero anyway): with one, the compiler placed them after the products,
  and every step waited for loads it had just issued (H100: 34 -> 40 TF/s on
  4096^3 without the branch).
* Edges: a load outside A or B gives zero (adding zero products changes
  nothing), and a thread stores only the elements of its patch inside C.

**Step 3, vectorized global loads (``matmul_vectorized``, used for float32 where the
operands allow it).**  The blocked kernel spills (64-184 bytes of local memory a
thread at its budget of 128 registers): each element it loads costs a 64-bit
address computed from three indices (``a[z, row, k]``: three multiplies by
strides and a negative-index check each), and 8 such loads a step take registers
and instructions.  The vectorized kernel takes A and B as flat 1-d arrays with
element strides (an address is ``a0 + row * a_m + k * a_k``, whose invariant part
the compiler hoists out of the loop) and has each thread load its share of a tile
as groups of 4 neighbours along the operand's contiguous axis, one 16-byte load
each (``load4_flat``): 2 loads a step instead of 8, and no spills.  Its inner loop
over the BK steps is written out (:func:`_unrolled`), so that the shared-memory
addresses are a base plus constants: Nsight Compute counted 1.56 instructions per
multiply-add instruction with the loop rolled, 1.30 written out.  On the H100 it
runs at 32-40 TF/s (blocked: 26-41; cuBLAS: 39-54).  It needs the contiguous
axis's length to be a multiple of 4, the other strides multiples of 4 and the
first element 16-byte aligned (:func:`vector_layout`, checked at every launch);
other operands, and float64, take the blocked kernel.

**Asynchronous copies.**  A group of 4 that lies along a shared tile's row (A with M
fast, B with N fast) need not pass through the thread's registers: on GPUs of compute
capability 8.0 or later the vectorized kernel copies it from global to shared memory
with ``cp.async`` (:func:`~minaot.kernels.vector_cuda.copy4_async`) straight into the
buffer of the next step, and waits for its copies before that step's barrier.  That
frees the registers that held the group (the weight gradients' kernel, both operands
copied, no longer spills) and the stores that moved it: on the H100 ``dy.T @ h`` 210 ->
193 us.  A group along K belongs to four rows of the transposed tile; as four 4-byte
copies it measured slower (four times the L1 requests), so it still goes through
registers (:data:`ASYNC_COPY` turns the copies off).

**Fewer, fatter threads.**  Without the spills and most of the address work, the
vectorized kernel is bound by how fast the SM's schedulers issue its instructions
(Nsight Compute on a weight gradient: 1.13 instructions a multiply-add, a warp
ready but another one picked half of the time).  So its float32 blocking gives each
thread a 16 x 8 patch, 128 threads a 128 x 128 tile, with no register cap (about
250 registers: two blocks of 4 warps an SM, the shape of cuBLAS's ``128x128x8``
SIMT kernels): a step reads 6 groups of 4 for 128 multiply-adds instead of 4 for
64, and each block's barrier holds up 4 warps instead of 8.  On the H100 the
training step's five large products went 950 -> 894 us (:data:`BLOCKINGS_F32`;
cuBLAS: 815).  The blocked kernel, which would spill with such patches, keeps 256
threads of 8 x 8 (``Blocking.fallback``).

**Split-K.**  A product with few output tiles and a long K (the weight
gradients: 1024 x 784 outputs summed over a batch of 4096) gives too few blocks
to fill the GPU.  Then K is split into ``splits`` ranges, each block computes
one tile over one range into a scratch array of ``splits`` partial results, and
a second kernel adds them up (in a fixed order: the result does not depend on
scheduling).

**Batches and shapes.**  The grid's third axis walks the batch and the K splits
(``blockIdx.z``, striding by ``gridDim.z`` past 65535); numpy's rules (1-d
operands, broadcasting batch axes) are applied by :func:`matmul` with views
before the launch.  Kernels are compiled per dtype, blocking and layout, once
per process; float32 sums in float32, float64 in float64 (the zero that starts
every sum is passed in with the array's dtype: a Python ``0.0`` would make the
sums float64).  Float64 and other dtypes use a 64 x 64 tile with 4 x 4 patches
(their registers are twice as wide); float32 products too narrow for a
128-wide tile (the last layer's 10 outputs) use it as well, and so do products
whose 128 x 128 tiles fill under half the GPU when K is too short to split
(16 products of 256 x 256: :func:`plan`).

Numba's simulator runs one Python thread per CUDA thread, so there the
blockings are tiny (4 threads a block: ``SIMULATOR_BLOCKINGS``) and split-K
starts at small sizes, so that the simulator runs the same code paths (edges,
batches, layouts, splits, float64) as the GPU does at real sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import cuda, from_dtype, types   # a global: the simulator swaps in its own ``cuda``

from .vector_cuda import async_wait, copy4_async, load4, load4_flat, store4

#: the side of a tile of the tiled kernel: a block has TILE x TILE threads
TILE = 16
#: the tiled kernel's tile under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)
SIMULATOR_TILE = 4
MAX_GRID_Z = 65535
MAX_GRID_Y = 65535


@dataclass(frozen=True)
class Blocking:
    """The shape of the register-blocked kernel's work: a block computes a ``bm x bn`` tile
    of C in steps of ``bk`` along K; each thread a ``tm x tn`` patch, made of groups of
    ``vec`` neighbouring rows and columns (see :func:`_make_blocked`); shared rows padded
    by ``pad`` elements."""
    bm: int
    bn: int
    bk: int
    tm: int
    tn: int
    pad: int
    vec: int = 1
    regs: int = 0       # registers per thread the compiler may use (0: its own choice)
    #: the blocking the blocked kernel runs where the vectorized one cannot (the same
    #: ``bm x bn`` tiles, so the same grid and K splits; None: this one)
    fallback: "Blocking | None" = None

    def blocked(self) -> "Blocking":
        """This blocking as the blocked kernel runs it: :attr:`fallback` where there is
        one (that kernel holds a step's elements in scalar registers and spills with
        the vectorized kernel's 16 x 8 patches)."""
        return self.fallback if self.fallback is not None else self

    @property
    def block(self):
        """The block's threads, ``(x, y)``: x walks C's columns, y its rows."""
        return (self.bn // self.tn, self.bm // self.tm)

    @property
    def threads(self) -> int:
        return (self.bn // self.tn) * (self.bm // self.tm)

    def check(self):
        n = self.threads
        if self.bm % self.tm or self.bn % self.tn or (self.bm * self.bk) % n \
                or (self.bk * self.bn) % n or self.tm % self.vec or self.tn % self.vec:
            raise ValueError(f"matmul: blocking {self} does not divide its tiles among its "
                             f"{n} threads")
        fb = self.fallback
        if fb is not None and ((fb.bm, fb.bn) != (self.bm, self.bn) or self.bk % fb.bk):
            raise ValueError(f"matmul: blocking {self}: its fallback must have the same "
                             f"tiles and a K step that divides {self.bk}")
        if fb is not None:
            fb.check()


#: float32 on a GPU: 128 x 128 tiles in K steps of 8, 128 threads of 16 x 8 patches (no
#: register cap: 128 sums, 24 operands and the addresses take about 250 registers, so two
#: blocks of 4 warps fit on an SM, as cuBLAS's ``sm80_xmma_gemm_..._128x128x8`` kernels
#: have it); where the vectorized kernel cannot run, the blocked one with 256 threads of
#: 8 x 8 patches capped at 128 registers.  64 x 64 (4 x 4 each) for narrow C, and for C
#: with a dimension of a few elements (the train step's 10 classes) 64 x 16 tiles (64
#: threads; the vectorized kernel can take them) and 16 x 128 (128 threads).  On the
#: H100, for the step's three products with a 10: h @ W3.T 45 -> 24 us with 64 x 16,
#: dy.T @ h 39 -> 29 us with 16 x 128; for its five large products (CUPTI) 950 -> 894 us
#: with the 128-thread blocks instead of 256 threads of 8 x 8 patches in steps of 16
#: (and 256 x 128 tiles for the forward's), with the pads only where needed (see
#: ``_make_vectorized``): ``h @ W2.T`` 200 -> 193, ``x @ W1.T`` 152 -> 148, ``dy @ W2``
#: 207 -> 191, the weight gradients 194 and 196 -> 181 and 182.
BLOCKINGS_F32 = (Blocking(128, 128, 8, 16, 8, 4, vec=4,
                          fallback=Blocking(128, 128, 8, 8, 8, 4, vec=4, regs=128)),
                 Blocking(64, 64, 8, 4, 4, 4, vec=4),
                 Blocking(64, 16, 16, 4, 4, 4, vec=4),
                 Blocking(16, 128, 16, 4, 4, 4, vec=4))
#: float64 (and every other dtype) on a GPU: 64 x 64 tiles (256 threads, 4 x 4 each)
BLOCKINGS_WIDE = (Blocking(64, 64, 8, 4, 4, 4),)
#: under the simulator: 4 threads a block of 8 x 4 patches in groups of 4 (the GPU's
#: 16 x 8 float32 path: load4, the vectorized kernel where the operands allow it; the
#: blocked kernel with 8 threads of 4 x 4 otherwise), of 2 x 2 neighbours, or of 1 x 1
SIMULATOR_BLOCKINGS = (Blocking(16, 8, 4, 8, 4, 4, vec=4,
                                fallback=Blocking(16, 8, 4, 4, 4, 4, vec=4)),
                       Blocking(4, 4, 2, 2, 2, 1, vec=2), Blocking(2, 2, 2, 1, 1, 1))
SIMULATOR_SMS = 4

#: split K until the grid has this many blocks per SM (two of the float32 blocks fit on one) ...
BLOCKS_PER_SM = 2
#: ... but give each split at least this much of K (GPU; simulator: SIMULATOR_MIN_SPLIT)
MIN_SPLIT = 256
SIMULATOR_TARGET_BLOCKS = 8
SIMULATOR_MIN_SPLIT = 4

_KERNELS = {}
_SMS = []
#: whether the vectorized kernel copies the groups that lie along its shared tiles' rows
#: asynchronously (``cp.async``; only on GPUs of compute capability 8.0 or later)
ASYNC_COPY = True
_CC = []


# --------------------------------------------------------------------------- step 1: tiled
def _make_tiled(dtype: np.dtype, tile: int):
    """The tiled kernel for ``dtype`` and ``tile`` (both compiled in: the shared tiles'
    element type and size must be constants)."""
    element = from_dtype(dtype)
    TILE = tile     # noqa: N806  (a constant for Numba, read by the kernel below)

    @cuda.jit
    def matmul_tiled(a, b, c, zero):
        """c[z] = a[z] @ b[z] for each batch z; a (Z, M, K), b (Z, K, N), c (Z, M, N)."""
        tile_a = cuda.shared.array((TILE, TILE), element)
        tile_b = cuda.shared.array((TILE, TILE), element)
        tx = cuda.threadIdx.x                   # column inside the tile
        ty = cuda.threadIdx.y                   # row inside the tile
        row = cuda.blockIdx.y * TILE + ty
        col = cuda.blockIdx.x * TILE + tx
        m, k = a.shape[1], a.shape[2]
        n = b.shape[2]
        for z in range(cuda.blockIdx.z, c.shape[0], cuda.gridDim.z):
            acc = zero
            for start in range(0, k, TILE):
                # each thread loads one element of each tile (zero outside the matrices)
                tile_a[ty, tx] = a[z, row, start + tx] if row < m and start + tx < k else zero
                tile_b[ty, tx] = b[z, start + ty, col] if start + ty < k and col < n else zero
                cuda.syncthreads()              # both tiles are complete
                for i in range(TILE):
                    acc += tile_a[ty, i] * tile_b[i, tx]
                cuda.syncthreads()              # everyone is done reading them
            if row < m and col < n:
                c[z, row, col] = acc

    return matmul_tiled


# --------------------------------------------------------------------------- step 2: blocked
def _outer_product(blocking: Blocking, vload: bool):
    """The device function ``outer(kk, shared_a, shared_b, buf, row_t, col_t, acc, col_a,
    row_b)``: step ``kk`` of a tile, a thread's TM values of A's column and TN of B's row at
    ``kk`` read from the shared tiles (in groups of 4 with ``load4`` when ``vload``), their
    TM x TN products added to its patch ``acc``.  The thread's ``i``-th row is ``row_t +
    (i // VEC) * TY * VEC + i % VEC`` of the tile, its ``j``-th column likewise."""
    TM, TN, VEC = blocking.tm, blocking.tn, blocking.vec      # noqa: N806
    TX, TY = blocking.block                                 # noqa: N806

    @cuda.jit(device=True)
    def outer(kk, shared_a, shared_b, buf, row_t, col_t, acc, col_a, row_b):
        if vload:       # (a constant: Numba compiles only the branch taken)
            for g in range(TM // 4):
                v = load4(shared_a, buf, kk, row_t + g * TY * 4)
                col_a[4 * g], col_a[4 * g + 1] = v[0], v[1]
                col_a[4 * g + 2], col_a[4 * g + 3] = v[2], v[3]
            for g in range(TN // 4):
                v = load4(shared_b, buf, kk, col_t + g * TX * 4)
                row_b[4 * g], row_b[4 * g + 1] = v[0], v[1]
                row_b[4 * g + 2], row_b[4 * g + 3] = v[2], v[3]
        else:
            for i in range(TM):
                col_a[i] = shared_a[buf, kk, row_t + (i // VEC) * TY * VEC + i % VEC]
            for j in range(TN):
                row_b[j] = shared_b[buf, kk, col_t + (j // VEC) * TX * VEC + j % VEC]
        for i in range(TM):
            for j in range(TN):
                acc[i * TN + j] += col_a[i] * row_b[j]
    return outer


def _store_patch(blocking: Blocking, c_vec: bool = False):
    """The device function ``store(out, zs, acc, row0, col0, row_t, col_t, m, n)``: a thread's
    patch into ``out[zs]``, the elements inside its (m, n) only.  ``c_vec`` (``out`` a
    C-contiguous float32 array, 16-byte aligned, N a multiple of 4; patches in groups of
    4 columns): each group inside C goes out as one 16-byte store."""
    TM, TN, VEC = blocking.tm, blocking.tn, blocking.vec      # noqa: N806
    TX, TY = blocking.block                                 # noqa: N806
    VSTORE = c_vec and VEC == 4                             # noqa: N806

    @cuda.jit(device=True)
    def store(out, zs, acc, row0, col0, row_t, col_t, m, n):
        for i in range(TM):
            row = row0 + row_t + (i // VEC) * TY * VEC + i % VEC
            if row < m:
                if VSTORE:      # (a constant: Numba compiles only the branch taken)
                    for g in range(TN // 4):
                        col = col0 + col_t + g * TX * 4
                        if col < n:         # (N a multiple of 4: the whole group is inside)
                            store4(out, zs, row, col, acc[i * TN + 4 * g],
                                   acc[i * TN + 4 * g + 1], acc[i * TN + 4 * g + 2],
                                   acc[i * TN + 4 * g + 3])
                else:
                    for j in range(TN):
                        col = col0 + col_t + (j // VEC) * TX * VEC + j % VEC
                        if col < n:
                            out[zs, row, col] = acc[i * TN + j]
    return store


def _make_blocked(dtype: np.dtype, blocking: Blocking, a_k_fast: bool, b_n_fast: bool,
                  c_vec: bool = False):
    """The register-blocked kernel for ``dtype``, ``blocking`` and the operands' layouts
    (``a_k_fast``: A's K axis has the smaller stride; ``b_n_fast``: B's N axis has;
    ``c_vec``: the output takes 16-byte stores, see :func:`_store_patch`)."""
    blocking.check()
    element = from_dtype(dtype)
    BM, BN, BK, TM, TN = blocking.bm, blocking.bn, blocking.bk, blocking.tm, blocking.tn  # noqa: N806
    TX, TY = blocking.block                                 # noqa: N806  threads along N, M
    NT = TX * TY                                            # noqa: N806
    LA, LB = BM * BK // NT, BK * BN // NT                   # noqa: N806  loads per thread
    SA, SB = BM + blocking.pad, BN + blocking.pad           # noqa: N806  padded shared rows
    PATCH = TM * TN                 # noqa: N806  (array sizes must be constants, not expressions)
    VEC = blocking.vec                                      # noqa: N806
    # groups of 4 four-byte values read from the shared tiles as one 16-byte load each
    # (load4; the tiles 16-byte aligned, their rows a multiple of 16 bytes); the simulator
    # runs the same code (load4 is Python there) but its shared arrays take no alignment
    VLOAD = VEC == 4 and dtype.itemsize == 4 and (SA * 4) % 16 == 0 and (SB * 4) % 16 == 0  # noqa: N806
    ALIGNED = VLOAD and not _simulator()                    # noqa: N806
    # a thread's i-th row of its patch is  (i // VEC) * TY * VEC + ty * VEC + i % VEC,
    # its j-th column  (j // VEC) * TX * VEC + tx * VEC + j % VEC: groups of VEC neighbours
    # (VEC = 1: rows ty + i * TY, columns tx + j * TX)

    @cuda.jit(device=True)
    def a_slot(e):
        """(row, k) inside A's tile of the ``e``-th element loaded: neighbouring ``e`` are
        neighbours along A's axis of smaller stride."""
        if a_k_fast:
            return e // BK, e % BK
        return e % BM, e // BM

    @cuda.jit(device=True)
    def b_slot(e):
        """(k, col) inside B's tile of the ``e``-th element loaded."""
        if b_n_fast:
            return e // BN, e % BN
        return e % BK, e // BK

    @cuda.jit(device=True)
    def load(a, b, next_a, next_b, z, row0, col0, k0, k_hi, m, n, tid, zero):
        """The next step's elements of A's and B's tiles into this thread's registers."""
        for r in range(LA):
            i, kk = a_slot(tid + r * NT)
            row, k = row0 + i, k0 + kk
            next_a[r] = a[z, row, k] if row < m and k < k_hi else zero
        for r in range(LB):
            kk, j = b_slot(tid + r * NT)
            k, col = k0 + kk, col0 + j
            next_b[r] = b[z, k, col] if k < k_hi and col < n else zero

    outer = _outer_product(blocking, VLOAD)
    store = _store_patch(blocking, c_vec)
    options = {"max_registers": blocking.regs} if blocking.regs and not _simulator() else {}

    @cuda.jit(**options)
    def matmul_blocked(a, b, out, zero, splits, k_split):
        """out[z * splits + s] = a[z][:, K_s] @ b[z][K_s, :] for each batch z and each range
        K_s = [s * k_split, (s + 1) * k_split) of K; a (Z, M, K), b (Z, K, N)."""
        if ALIGNED:     # (a constant: Numba compiles only the branch taken)
            shared_a = cuda.shared.array((2, BK, SA), element, alignment=16)
            shared_b = cuda.shared.array((2, BK, SB), element, alignment=16)
        else:
            shared_a = cuda.shared.array((2, BK, SA), element)  # A's tile, transposed: [k, row]
            shared_b = cuda.shared.array((2, BK, SB), element)  # B's tile: [k, col]
        acc = cuda.local.array(PATCH, element)            # this thread's patch of C
        col_a = cuda.local.array(TM, element)               # A's values at one k
        row_b = cuda.local.array(TN, element)               # B's values at one k
        next_a = cuda.local.array(LA, element)              # the next step's tile elements
        next_b = cuda.local.array(LB, element)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * TX + tx
        row_t, col_t = ty * VEC, tx * VEC                   # where this thread's groups start
        row0 = cuda.blockIdx.y * BM
        col0 = cuda.blockIdx.x * BN
        m, kdim, n = a.shape[1], a.shape[2], b.shape[2]
        for zs in range(cuda.blockIdx.z, out.shape[0], cuda.gridDim.z):
            z = zs // splits
            k0 = (zs % splits) * k_split
            k_hi = min(kdim, k0 + k_split)
            for i in range(PATCH):
                acc[i] = zero
            load(a, b, next_a, next_b, z, row0, col0, k0, k_hi, m, n, tid, zero)
            step = 0
            while k0 < k_hi:
                buf = step % 2
                for r in range(LA):                         # registers -> shared tile
                    i, kk = a_slot(tid + r * NT)
                    shared_a[buf, kk, i] = next_a[r]
                for r in range(LB):
                    kk, j = b_slot(tid + r * NT)
                    shared_b[buf, kk, j] = next_b[r]
                cuda.syncthreads()                          # the tiles are complete
                k0 += BK                                    # in flight during the products
                load(a, b, next_a, next_b, z, row0, col0, k0, k_hi, m, n, tid, zero)
                for kk in range(BK):                        # BK outer products
                    outer(kk, shared_a, shared_b, buf, row_t, col_t, acc, col_a, row_b)
                step += 1
            store(out, zs, acc, row0, col0, row_t, col_t, m, n)
            cuda.syncthreads()          # the next batch's first tile may reuse buffer 0

    return matmul_blocked


# --------------------------------------------------------------------------- step 3: vectorized
def vectorizable(blocking: Blocking) -> bool:
    """Whether ``blocking`` can run :func:`_make_vectorized`'s kernel: groups of 4 along K
    (``bk`` a multiple of 4) that divide evenly among the threads, patches in groups of 4."""
    n4 = 4 * blocking.threads
    return (blocking.vec == 4 and blocking.bk % 4 == 0 and (blocking.bm * blocking.bk) % n4 == 0
            and (blocking.bk * blocking.bn) % n4 == 0
            and (blocking.bm + blocking.pad) % 4 == 0 and (blocking.bn + blocking.pad) % 4 == 0)


def _make_vectorized(blocking: Blocking, a_k_fast: bool, b_n_fast: bool, k_exact: bool,
                     c_vec: bool = False, async_copy: bool = False):
    """The register-blocked float32 kernel with 16-byte global loads, for operands whose
    fast axis is contiguous (see :func:`vector_layout`).  A and B come in as flat 1-d
    arrays and element strides, so that an element's address is one multiply-add per
    axis on plain integers (no per-index wraparound), and each thread loads its share of
    a tile as groups of 4 neighbours along the operand's fast axis with ``load4_flat``.

    What a tile step costs besides its multiply-adds is kept small:

    - A thread's groups sit at the same rows of A and columns of B at every step, so
      where each starts is worked out once (``a_at``, ``b_at``), less the step's
      ``k``: a step adds ``k * a_k``.  Rows past A's end are *clamped* to its last
      rows instead of masked: they only feed rows of C past its end, which are never
      stored (columns of B likewise).
    - ``k_exact`` (K a multiple of BK, so every split is whole tile steps): no step
      reads past K, and the loads carry no mask at all; the prefetch after the last
      step reloads that step's tile instead of reading past the split.  Otherwise the
      groups past the split's end are zeros.
    - A group that lies along the shared tile's rows (A with M fast, B with N fast)
      goes into it with one 16-byte store (``store4``), not four; and with ``c_vec``
      the patch goes out to C in 16-byte stores too (:func:`_store_patch`)."""
    element = from_dtype(np.float32)
    BM, BN, BK, TM, TN = blocking.bm, blocking.bn, blocking.bk, blocking.tm, blocking.tn  # noqa: N806
    TX, TY = blocking.block                                 # noqa: N806
    NT = TX * TY                                            # noqa: N806
    GA, GB = BM * BK // (4 * NT), BK * BN // (4 * NT)       # noqa: N806  groups per thread
    NA, NB = 4 * GA, 4 * GB                                 # noqa: N806
    # a shared row is padded only where groups are stored across the rows (K fast): there
    # the pad spreads a warp's scalar stores over the banks; elsewhere it only misaligns
    # the rows of 16-byte copies (the weight gradients, no pad: 194 -> 182 us on the H100)
    SA = BM + blocking.pad if a_k_fast else BM              # noqa: N806
    SB = BN if b_n_fast else BN + blocking.pad              # noqa: N806
    PATCH = TM * TN                                         # noqa: N806
    KG, MG, NG = BK // 4, BM // 4, BN // 4                  # noqa: N806  groups along each axis
    ALIGNED = not _simulator()                              # noqa: N806
    # groups that lie along the shared tile's rows go there by asynchronous copies
    ASYNC_A = async_copy and not a_k_fast                   # noqa: N806
    ASYNC_B = async_copy and b_n_fast                       # noqa: N806
    ASYNC = ASYNC_A or ASYNC_B                              # noqa: N806

    @cuda.jit(device=True)
    def a_group(g):
        """(row, k) inside A's tile of the first element of the ``g``-th group of 4."""
        if a_k_fast:
            return g // KG, (g % KG) * 4
        return (g % MG) * 4, g // MG

    @cuda.jit(device=True)
    def b_group(g):
        """(k, col) inside B's tile of the first element of the ``g``-th group of 4."""
        if b_n_fast:
            return g // NG, (g % NG) * 4
        return (g % KG) * 4, g // KG

    @cuda.jit(device=True)
    def starts(a_at, b_at, a_k_of, b_k_of, tid, row0, col0, m, n, a_m, a_k, b_k, b_n):
        """Where each of this thread's groups starts in A and B at k = 0 (clamped rows and
        columns; the fast axis has stride 1), and its k inside the tile."""
        for r in range(GA):
            i, kk = a_group(tid + r * NT)
            a_k_of[r] = kk
            if a_k_fast:
                a_at[r] = min(row0 + i, m - 1) * a_m + kk
            else:                           # (M a multiple of 4 here)
                a_at[r] = min(row0 + i, m - 4) + kk * a_k
        for r in range(GB):
            kk, j = b_group(tid + r * NT)
            b_k_of[r] = kk
            if b_n_fast:
                b_at[r] = kk * b_k + min(col0 + j, n - 4)
            else:
                b_at[r] = min(col0 + j, n - 1) * b_n + kk

    @cuda.jit(device=True)
    def load(a, a_off, b, b_off, next_a, next_b, a_at, b_at, a_k_of, b_k_of, k0, k_hi, zero,
             shared_a, shared_b, tid, nbuf):
        """The groups of the step at ``k0`` into this thread's registers (``a_off``: the
        batch's start in A plus ``k0``'s offset; ``b_off`` likewise), or, for an operand
        copied asynchronously, straight into the tiles of buffer ``nbuf``."""
        for r in range(GA):
            if ASYNC_A:
                i, kk = a_group(tid + r * NT)
                copy4_async(shared_a, nbuf, kk, i, a, a_off + a_at[r],
                            k_exact or k0 + a_k_of[r] < k_hi)
            else:
                if k_exact or k0 + a_k_of[r] < k_hi:
                    v = load4_flat(a, a_off + a_at[r])
                else:
                    v = (zero, zero, zero, zero)
                next_a[4 * r], next_a[4 * r + 1], next_a[4 * r + 2], next_a[4 * r + 3] = v
        for r in range(GB):
            if ASYNC_B:
                kk, j = b_group(tid + r * NT)
                copy4_async(shared_b, nbuf, kk, j, b, b_off + b_at[r],
                            k_exact or k0 + b_k_of[r] < k_hi)
            else:
                if k_exact or k0 + b_k_of[r] < k_hi:
                    v = load4_flat(b, b_off + b_at[r])
                else:
                    v = (zero, zero, zero, zero)
                next_b[4 * r], next_b[4 * r + 1], next_b[4 * r + 2], next_b[4 * r + 3] = v

    @cuda.jit(device=True)
    def to_shared(shared_a, shared_b, buf, next_a, next_b, tid):
        """This thread's groups from its registers into the tiles of buffer ``buf``."""
        for r in range(GA):
            i, kk = a_group(tid + r * NT)
            if ASYNC_A:
                pass                        # (copied there by load)
            elif a_k_fast:                  # a group along k: four rows of the [k, row] tile
                for q in range(4):
                    shared_a[buf, kk + q, i] = next_a[4 * r + q]
            else:
                store4(shared_a, buf, kk, i, next_a[4 * r], next_a[4 * r + 1],
                       next_a[4 * r + 2], next_a[4 * r + 3])
        for r in range(GB):
            kk, j = b_group(tid + r * NT)
            if ASYNC_B:
                pass
            elif b_n_fast:
                store4(shared_b, buf, kk, j, next_b[4 * r], next_b[4 * r + 1],
                       next_b[4 * r + 2], next_b[4 * r + 3])
            else:
                for q in range(4):
                    shared_b[buf, kk + q, j] = next_b[4 * r + q]

    # outer(0, ...); ...; outer(BK - 1, ...), the steps of a tile written out
    products = _unrolled(_outer_product(blocking, True), BK, 8)
    store = _store_patch(blocking, c_vec)

    options = {"max_registers": blocking.regs} if blocking.regs and not _simulator() else {}

    @cuda.jit(**options)
    def matmul_vectorized(a, a_z, a_m, a_k, b, b_z, b_k, b_n, out, m, kdim, n, zero, splits,
                          k_split):
        """out[z * splits + s] = A[z][:, K_s] @ B[z][K_s, :], as :func:`_make_blocked`'s
        kernel; A's element (z, i, k) is ``a[z * a_z + i * a_m + k * a_k]``, B's likewise."""
        if ALIGNED:
            shared_a = cuda.shared.array((2, BK, SA), element, alignment=16)
            shared_b = cuda.shared.array((2, BK, SB), element, alignment=16)
        else:
            shared_a = cuda.shared.array((2, BK, SA), element)  # A's tile, transposed: [k, row]
            shared_b = cuda.shared.array((2, BK, SB), element)  # B's tile: [k, col]
        acc = cuda.local.array(PATCH, element)
        col_a = cuda.local.array(TM, element)
        row_b = cuda.local.array(TN, element)
        next_a = cuda.local.array(NA, element)
        next_b = cuda.local.array(NB, element)
        a_at = cuda.local.array(GA, types.int64)
        b_at = cuda.local.array(GB, types.int64)
        a_k_of = cuda.local.array(GA, types.int64)
        b_k_of = cuda.local.array(GB, types.int64)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * TX + tx
        row_t, col_t = ty * 4, tx * 4
        row0 = cuda.blockIdx.y * BM
        col0 = cuda.blockIdx.x * BN
        starts(a_at, b_at, a_k_of, b_k_of, tid, row0, col0, m, n, a_m, a_k, b_k, b_n)
        for zs in range(cuda.blockIdx.z, out.shape[0], cuda.gridDim.z):
            z = zs // splits
            k0 = (zs % splits) * k_split
            k_hi = min(kdim, k0 + k_split)
            a_off, b_off = z * a_z + k0 * a_k, z * b_z + k0 * b_k
            a_step, b_step = BK * a_k, BK * b_k
            for i in range(PATCH):
                acc[i] = zero
            load(a, a_off, b, b_off, next_a, next_b, a_at, b_at, a_k_of, b_k_of, k0, k_hi, zero,
                 shared_a, shared_b, tid, 0)
            step = 0
            while k0 < k_hi:
                buf = step % 2
                to_shared(shared_a, shared_b, buf, next_a, next_b, tid)
                if ASYNC:
                    async_wait()                # this thread's copies into buf have landed
                cuda.syncthreads()
                k0 += BK
                if not k_exact or k0 < k_hi:    # k_exact, last step: reload it (no branch:
                    a_off += a_step             # the compiler makes these selects)
                    b_off += b_step
                # no ``if k0 < k_hi`` around the loads: a branch here let the compiler
                # place them after the products
                load(a, a_off, b, b_off, next_a, next_b, a_at, b_at, a_k_of, b_k_of, k0, k_hi,
                     zero, shared_a, shared_b, tid, 1 - buf)
                products(shared_a, shared_b, buf, row_t, col_t, acc, col_a, row_b)
                step += 1
            if ASYNC:
                async_wait()                    # the copies past the last step, before reuse
            store(out, zs, acc, row0, col0, row_t, col_t, m, n)
            cuda.syncthreads()

    return matmul_vectorized


def _unrolled(step, count: int, nargs: int):
    """A device function ``f(x1, ..., x_nargs)`` that calls ``step(0, x1, ...)``, ...,
    ``step(count - 1, x1, ...)``, written out one call after the other.  Numba has no
    ``#pragma unroll`` and LLVM leaves a loop of ``count`` 64-multiply-add bodies rolled;
    written out, each call's ``kk`` is a constant, so the shared-memory addresses become
    a base register plus constant offsets instead of 64-bit index arithmetic at every
    step (Nsight Compute on the H100: 1.56 instructions issued per multiply-add with the
    loop rolled, 1.30 written out)."""
    args = ", ".join(f"x{i}" for i in range(nargs))
    lines = [f"def unrolled({args}):"] + [f"    step({kk}, {args})" for kk in range(count)]
    scope = {"step": step}
    exec("\n".join(lines), scope)     # noqa: S102  (the text is made right here)
    return cuda.jit(device=True)(scope["unrolled"])


def vector_layout(arr, fast: int):
    """``(flat, strides)``: a 3-d device array as a flat float32 array over its memory and its
    strides in elements, if :func:`_make_vectorized`'s kernel can read it in groups of 4
    along axis ``fast`` (stride 1, a length that is a multiple of 4, the other strides
    multiples of 4, the first element 16-byte aligned); otherwise None."""
    if arr.dtype != np.float32:
        return None
    shape, strides = tuple(arr.shape), tuple(int(s) // 4 for s in arr.strides)
    if strides[fast] != 1 or shape[fast] % 4:
        return None
    for ax in range(3):
        if ax != fast and shape[ax] > 1 and (strides[ax] % 4 or strides[ax] < 0):
            return None
    from minaot.cuda import pointer, strided
    if pointer(arr) % 16:
        return None
    span = 1 + sum((d - 1) * s for d, s in zip(shape, strides) if d > 0)
    strides = tuple(s if d > 1 else 0 for d, s in zip(shape, strides))
    return strided(arr, 0, (span,), (4,)), strides


#: rows of C a grid of ``sum_splits`` covers at once (its threads walk the rest), for
#: blocks of 256 threads (a narrow C's blocks have fewer threads and the grid more rows)
SUM_ROWS = 128
#: blocks of ``sum_splits4``'s grid at most (its threads walk the rest)
SUM_MAX_BLOCKS = 2048


def _make_sum(splits: int):
    """The kernel ``sum_splits(parts, c)``: c[z] = parts[z * splits] + ... + parts[z *
    splits + splits - 1], in that order.  A thread per column ``j`` of a row ``i`` (the
    grid's x and y, at most ``SUM_ROWS`` rows: each thread walks several), walking the
    batch.  ``splits`` is compiled in, so the loop over the partial results is written out
    and a thread's ``splits`` loads are in flight together; with ``splits`` a run-time
    value each load waited for the add before it (on the H100 the four sums of a step,
    38 us, ran at a third of copy speed)."""
    SPLITS = splits     # noqa: N806  (a constant for Numba)

    @cuda.jit
    def sum_splits(parts, c):
        zs, m, n = c.shape
        j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        if j < n:
            for i in range(cuda.blockIdx.y, m, cuda.gridDim.y):
                for z in range(zs):
                    acc = parts[z * SPLITS, i, j]
                    for s in range(1, SPLITS):
                        acc += parts[z * SPLITS + s, i, j]
                    c[z, i, j] = acc
    return sum_splits


def _make_sum4(splits: int):
    """The kernel ``sum_splits4(parts, c)``: :func:`_make_sum`'s sums, in the same order,
    for float32 C-ordered ``parts`` and ``c`` (16-byte aligned, N a multiple of 4): a
    thread takes 4 neighbouring columns at a time, with 16-byte loads and stores, and
    the threads of the grid walk C's groups of 4 in memory order (on the H100 the step's
    three sums 29 -> 16 us)."""
    SPLITS = splits     # noqa: N806  (a constant for Numba)

    @cuda.jit
    def sum_splits4(parts, c):
        zs, m, n = c.shape
        groups = n // 4
        total = zs * m * groups
        e = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        while e < total:
            row = e // groups
            j = (e - row * groups) * 4
            z = row // m
            i = row - z * m
            v0, v1, v2, v3 = load4(parts, z * SPLITS, i, j)
            for s in range(1, SPLITS):
                w0, w1, w2, w3 = load4(parts, z * SPLITS + s, i, j)
                v0 += w0
                v1 += w1
                v2 += w2
                v3 += w3
            store4(c, z, i, j, v0, v1, v2, v3)
            e += cuda.gridDim.x * cuda.blockDim.x
    return sum_splits4


def sum_kernel(splits: int, vec: bool = False):
    key = ("sum4" if vec else "sum", int(splits))
    if key not in _KERNELS:
        _KERNELS[key] = (_make_sum4 if vec else _make_sum)(*key[1:])
    return _KERNELS[key]


# --------------------------------------------------------------------------- choosing
def _simulator() -> bool:
    from numba import config
    return bool(config.ENABLE_CUDASIM)


def async_copies() -> bool:
    """Whether the vectorized kernels copy tiles asynchronously here: :data:`ASYNC_COPY`,
    on a GPU that has ``cp.async`` (compute capability 8.0 or later) or the simulator."""
    if not ASYNC_COPY:
        return False
    if _simulator():
        return True
    if not _CC:
        _CC.append(tuple(cuda.get_current_device().compute_capability))
    return _CC[0] >= (8, 0)


def default_tile() -> int:
    return SIMULATOR_TILE if _simulator() else TILE


def tiled_kernel(dtype, tile: int = TILE):
    key = ("tiled", np.dtype(dtype), int(tile))
    if key not in _KERNELS:
        _KERNELS[key] = _make_tiled(*key[1:])
    return _KERNELS[key]


def blocked_kernel(dtype, blocking: Blocking, a_k_fast: bool, b_n_fast: bool,
                   c_vec: bool = False):
    key = ("blocked", np.dtype(dtype), blocking, bool(a_k_fast), bool(b_n_fast),
           bool(c_vec) and np.dtype(dtype) == np.float32)
    if key not in _KERNELS:
        _KERNELS[key] = _make_blocked(*key[1:])
    return _KERNELS[key]


def vectorized_kernel(blocking: Blocking, a_k_fast: bool, b_n_fast: bool, k_exact: bool = False,
                      c_vec: bool = False, async_copy: bool | None = None):
    if async_copy is None:
        async_copy = async_copies()
    key = ("vectorized", blocking, bool(a_k_fast), bool(b_n_fast), bool(k_exact), bool(c_vec),
           bool(async_copy))
    if key not in _KERNELS:
        _KERNELS[key] = _make_vectorized(*key[1:])
    return _KERNELS[key]


def blockings(dtype) -> tuple:
    """The blockings for ``dtype`` here, the widest first."""
    if _simulator():
        return SIMULATOR_BLOCKINGS
    return BLOCKINGS_F32 if np.dtype(dtype) == np.float32 else BLOCKINGS_WIDE


def ranked_blockings(dtype, m: int, n: int) -> list:
    """The blockings for ``dtype``, best first: the widest, unless a narrower one wastes
    much less of its tiles on C's edges (a tile of C computes all its elements, inside C
    or not)."""
    options = blockings(dtype)

    def cost(bl):
        padded = -(-m // bl.bm) * bl.bm * (-(-n // bl.bn) * bl.bn)
        return padded * (1.5 ** options.index(bl))   # a narrower blocking runs slower
    return sorted(options, key=cost)


def choose_blocking(dtype, m: int, n: int) -> Blocking:
    return ranked_blockings(dtype, m, n)[0]


def plan(dtype, z: int, m: int, k: int, n: int, blocking: Blocking | None = None,
         split_k: int | None = None):
    """``(blocking, splits, k_split)`` for a product of ``z`` (m, k) @ (k, n) matrices:
    the best-ranked blocking with K split to fill the GPU; but when that still gives
    under half a wave of blocks because K is too short to split (the batched 256 x 256
    products) a narrower blocking with at least twice as many blocks.  (Where K was
    split, a narrower blocking with more splits measured slower: (10, 4096) @ (4096,
    1024).)"""
    options = [blocking] if blocking is not None else ranked_blockings(dtype, m, n)
    chosen = None
    for bl in options:
        tiles = z * -(-m // bl.bm) * -(-n // bl.bn)
        splits, k_split = choose_splits(tiles, k, bl.bk, split_k)
        blocks = tiles * splits
        if chosen is None:
            chosen = (bl, splits, k_split, blocks)
            if 2 * blocks > _target_blocks() or splits > 1:
                break
        elif blocks >= 2 * chosen[3]:
            chosen = (bl, splits, k_split, blocks)
            break
    return chosen[:3]


def _sm_count() -> int:
    if _simulator():
        return SIMULATOR_SMS
    if not _SMS:
        _SMS.append(int(cuda.get_current_device().MULTIPROCESSOR_COUNT))
    return _SMS[0]


def _target_blocks() -> int:
    if _simulator():
        return SIMULATOR_TARGET_BLOCKS
    return BLOCKS_PER_SM * _sm_count()


def choose_splits(tiles: int, k: int, bk: int, split_k: int | None = None):
    """``(splits, k_split)``: K cut into ``splits`` ranges of ``k_split`` (a multiple of
    ``bk``) when ``tiles`` blocks fill less than half the GPU's block slots, so that
    ``tiles * splits`` blocks fill at most one wave; ``split_k`` forces a count."""
    if split_k is None:
        slots = _target_blocks()
        if 2 * tiles > slots:
            return 1, max(k, 1)
        least = SIMULATOR_MIN_SPLIT if _simulator() else MIN_SPLIT
        split_k = min(slots // tiles, k // least)
    split_k = max(1, min(int(split_k), -(-k // bk)))
    if split_k == 1:
        return 1, max(k, 1)
    k_split = -(-(-(-k // split_k)) // bk) * bk
    return -(-k // k_split), k_split


# --------------------------------------------------------------------------- launching
_SCRATCH = {}           # dtype -> flat device array for split-K's partial results
_SCRATCH_VIEWS = {}     # (dtype, shape) -> a view of it


def scratch(shape, dtype):
    """A device array of ``shape`` for split-K's partial results, over one buffer per
    dtype that grows when a product needs more and is never freed.  Sharing it is safe
    because all of minaot's kernels run in order on one stream: a product's partial
    results are summed before the next product's kernel can overwrite them.  (No
    allocation per call: allocating and freeing cost more than small products do.)"""
    dtype = np.dtype(dtype)
    key = (dtype, tuple(int(s) for s in shape))
    view = _SCRATCH_VIEWS.get(key)
    if view is None:
        size = int(np.prod(key[1], dtype=np.int64))
        buf = _SCRATCH.get(dtype)
        if buf is None or buf.size < size:
            buf = cuda.device_array(max(size, 2 * (0 if buf is None else buf.size)), dtype)
            _SCRATCH[dtype] = buf
            for k in [k for k in _SCRATCH_VIEWS if k[0] == dtype]:
                del _SCRATCH_VIEWS[k]
        view = _SCRATCH_VIEWS[key] = buf[:size].reshape(key[1])
    from minaot import cuda_replay
    if cuda_replay.ACTIVE is not None:      # a replayed call asks for the buffer again
        cuda_replay.ACTIVE.buffer(view, lambda: scratch(shape, dtype))
    return view


_LAUNCHERS = {}         # (kernel, grid, block) -> its kept launch
_PLANS = {}             # (dtype, z, m, k, n, a_k_fast, b_n_fast) -> (launch, splits, k_split, sum launch)


def _launcher(kernel, grid, block):
    """``kernel[grid, block]`` as a :class:`~minaot.codegen.cuda_runtime.Launcher`, made once:
    Numba's per-call argument typing runs once per argument geometry, not at every product."""
    key = (kernel, grid, block)
    run = _LAUNCHERS.get(key)
    if run is None:
        from minaot.codegen.cuda_runtime import Launcher
        run = _LAUNCHERS[key] = Launcher(kernel, grid, block)
    return run


def matmul_3d(a, b, c, tile: int | None = None, *, blocking: Blocking | None = None,
              split_k: int | None = None, vectorized: bool = True):
    """``c[z] = a[z] @ b[z]`` on device arrays of shapes (Z, M, K), (Z, K, N), (Z, M, N),
    with any strides.  ``tile``: the tiled kernel with that tile (the teaching step);
    otherwise the register-blocked kernel, with ``blocking`` and ``split_k`` chosen from
    the shapes unless given, as its vectorized variant where the operands allow it (and
    ``vectorized`` is left on)."""
    z, m, n = tuple(c.shape)
    k = int(a.shape[2])
    if c.size == 0:
        return
    zero = c.dtype.type(0)
    if tile is not None:
        grid = (-(-n // tile), -(-m // tile), min(z, MAX_GRID_Z))
        _launcher(tiled_kernel(c.dtype, tile), grid, (tile, tile))(a, b, c, zero)
        return
    a_k_fast = abs(a.strides[2]) <= abs(a.strides[1])
    b_n_fast = abs(b.strides[2]) <= abs(b.strides[1])
    # 16-byte stores of C's patches: float32, N a multiple of 4, C in C order and aligned
    # (a split product stores to its scratch array, which always is)
    c_vec = c.dtype == np.float32 and n % 4 == 0
    c_ok = c_vec and tuple(c.strides) == (m * n * 4, n * 4, 4) and _pointer(c) % 16 == 0
    key = (c.dtype, z, m, k, n, a_k_fast, b_n_fast, c_ok, ASYNC_COPY)
    auto = blocking is None and split_k is None
    chosen = _PLANS.get(key) if auto else None
    if len(_PLANS) > 4096:                      # shapes that keep changing: start again
        _PLANS.clear()
    if chosen is None:      # the blocking, split and grids depend only on the key: made once
        blocking, splits, k_split = plan(c.dtype, z, m, k, n, blocking, split_k)
        c_vec = c_vec if splits > 1 else c_ok
        fallback = blocking.blocked()
        kernel = blocked_kernel(c.dtype, fallback, a_k_fast, b_n_fast, c_vec)
        grid = (-(-n // blocking.bn), -(-m // blocking.bm), min(z * splits, MAX_GRID_Z))
        sum_launch = None
        if splits > 1 and c_ok:                 # 4 columns a thread, 16-byte loads and stores
            threads = 32 if _simulator() else 256
            blocks = min(-(-(z * m * n // 4) // threads), 4 if _simulator() else SUM_MAX_BLOCKS)
            sum_launch = _launcher(sum_kernel(splits, True), blocks, threads)
        elif splits > 1:
            threads = 32 if _simulator() else min(256, max(32, 1 << (n - 1).bit_length()))
            rows = SUM_ROWS if _simulator() else SUM_ROWS * 256 // threads     # narrow C: more
            sum_launch = _launcher(sum_kernel(splits), (-(-n // threads), min(m, rows)),
                                   threads)
        vector = None
        if c.dtype == np.float32 and vectorizable(blocking):
            k_exact = k > 0 and k % blocking.bk == 0    # every split whole tile steps (K = 0:
            # the masked variant, which loads nothing)
            vector = _launcher(vectorized_kernel(blocking, a_k_fast, b_n_fast, k_exact, c_vec),
                               grid, blocking.block)
        chosen = (_launcher(kernel, grid, fallback.block), splits, k_split, sum_launch, vector)
        if auto:
            _PLANS[key] = chosen
    launch, splits, k_split, sum_launch, vector = chosen
    out = c if splits == 1 else scratch((z * splits, m, n), c.dtype)
    flat_a = flat_b = None
    if vector is not None and vectorized:
        flat_a = vector_layout(a, 2 if a_k_fast else 1)
        flat_b = vector_layout(b, 2 if b_n_fast else 1) if flat_a is not None else None
    if flat_b is not None:
        (fa, sa), (fb, sb) = flat_a, flat_b
        vector(fa, *sa, fb, *sb, out, m, k, n, zero, splits, k_split)
    else:
        launch(a, b, out, zero, splits, k_split)
    if splits > 1:
        sum_launch(out, c)


def _pointer(arr) -> int:
    from minaot.cuda import pointer
    return pointer(arr)


def matmul(a, b, tile: int | None = None, **options):
    """``(c, root)``: numpy's ``a @ b`` for device arrays (1-d operands, broadcast batch
    axes), ``c`` a new C-order device array over the flat device array ``root``.
    ``tile`` and ``options`` go to :func:`matmul_3d`."""
    from minaot.cuda_eager import empty, view_array

    def as_view(arr, name, **attrs):
        return view_array(arr, name, attrs)[0]

    if a.ndim == 2 and b.ndim == 2:     # the common case, without the generic view ops
        return _matmul_2d(a, b, tile, **options)
    vec_a, vec_b = a.ndim == 1, b.ndim == 1
    if vec_a:
        a = as_view(a, "unsqueeze", dim=0)              # (K,) -> (1, K)
    if vec_b:
        b = as_view(b, "unsqueeze", dim=1)              # (K,) -> (K, 1)
    a_shape, b_shape = tuple(a.shape), tuple(b.shape)   # (the simulator's shapes refuse [-1])
    m, k = a_shape[-2:]
    n = b_shape[-1]
    batch = tuple(np.broadcast_shapes(a_shape[:-2], b_shape[:-2]))
    z = int(np.prod(batch, dtype=np.int64))
    a3 = as_view(as_view(a, "expand", shape=batch + (m, k)), "reshape", shape=(z, m, k))
    b3 = as_view(as_view(b, "expand", shape=batch + (k, n)), "reshape", shape=(z, k, n))
    c, root = empty(batch + (m, n), a.dtype)
    matmul_3d(a3, b3, as_view(c, "reshape", shape=(z, m, n)), tile, **options)
    shape = batch + ((m,) if not vec_a else ()) + ((n,) if not vec_b else ())
    return as_view(c, "reshape", shape=shape), root


def _matmul_2d(a, b, tile, **options):
    """:func:`matmul` of two matrices: the (1, M, K), (1, K, N) and (1, M, N) views that
    :func:`matmul_3d` takes are made directly over the operands' memory (one device array
    each), not by the generic view ops (which cost tens of microseconds of host time each)."""
    from minaot.cuda import empty, strided
    (m, k), n = tuple(a.shape), int(b.shape[1])
    item = a.dtype.itemsize
    c, root = empty((m, n), a.dtype)
    a3 = strided(a, 0, (1, m, k), (m * k * item,) + tuple(a.strides))
    b3 = strided(b, 0, (1, k, n), (k * n * item,) + tuple(b.strides))
    c3 = strided(c, 0, (1, m, n), (m * n * item,) + tuple(c.strides))
    matmul_3d(a3, b3, c3, tile, **options)
    return c, root
