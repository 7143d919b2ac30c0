"""Matrix multiplication on the GPU: a tiled kernel that stages blocks in shared memory.

``C = A @ B`` with ``A`` of shape (M, K) and ``B`` of shape (K, N).  The naive
kernel gives each thread one element ``C[i, j]`` and lets it read row ``i``
of A and column ``j`` of B from global memory: every element of A is read N
times, every element of B M times, and global memory is slow.

Tiling cuts the reads by a factor of ``TILE``.  C is cut into ``TILE x TILE``
tiles; one block of ``TILE x TILE`` threads computes one tile, each thread
one element of it.  The shared dimension K is walked in steps of ``TILE``:
at each step the block loads one ``TILE x TILE`` tile of A (the tile's rows,
the step's columns) and one of B (the step's rows, the tile's columns) into
*shared memory*, every thread loading one element of each, then
``cuda.syncthreads()`` waits until both tiles are complete, and each thread
adds the ``TILE`` products of its row of the A tile and its column of the B
tile to its running sum, reading only shared memory (on-chip, about as fast as
registers).  A second ``syncthreads()`` keeps any thread from overwriting the
tiles before all have finished reading them.  Each element of A is now read
from global memory N / TILE times instead of N.  Threads of a tile row read
neighbouring columns, so the loads of a warp are coalesced.

Shapes that are not multiples of ``TILE`` are handled by the edges: a load
outside A or B stores zero in the tile (adding zero products changes
nothing), and a thread outside C computes but does not store.

Batches: the grid's third axis walks the batch (``blockIdx.z``, striding by
``gridDim.z`` past 65535 batches); numpy's rules (1-d operands, broadcasting
batch axes) are applied by :func:`matmul` with views before the launch.  One
kernel is compiled per dtype (float32 sums in float32, float64 in float64) and
tile size, once per process.  Numba's simulator runs one Python thread per
CUDA thread, so there the tile is ``SIMULATOR_TILE`` (16 threads a block, not
256) unless a caller asks for another.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, from_dtype   # a global: the simulator swaps in its own ``cuda``

#: the side of a tile: a block has TILE x TILE threads and two TILE x TILE shared arrays
TILE = 16
#: the tile under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)
SIMULATOR_TILE = 4
MAX_GRID_Z = 65535

_KERNELS = {}


def _make_kernel(dtype: np.dtype, tile: int):
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


def kernel_for(dtype, tile: int = TILE):
    key = (np.dtype(dtype), int(tile))
    if key not in _KERNELS:
        _KERNELS[key] = _make_kernel(*key)
    return _KERNELS[key]


def default_tile() -> int:
    from numba import config
    return SIMULATOR_TILE if config.ENABLE_CUDASIM else TILE


def matmul_3d(a, b, c, tile: int | None = None):
    """``c[z] = a[z] @ b[z]`` on device arrays of shapes (Z, M, K), (Z, K, N), (Z, M, N)."""
    z, m, n = tuple(c.shape)
    if c.size == 0:
        return
    tile = tile or default_tile()
    grid = (-(-n // tile), -(-m // tile), min(z, MAX_GRID_Z))
    kernel_for(c.dtype, tile)[grid, (tile, tile)](a, b, c, c.dtype.type(0))


def matmul(a, b, tile: int | None = None):
    """``(c, root)``: numpy's ``a @ b`` for device arrays (1-d operands, broadcast batch
    axes), ``c`` a new C-order device array over the flat device array ``root``."""
    from minaot.cuda_eager import empty, view_array

    def as_view(arr, name, **attrs):
        return view_array(arr, name, attrs)[0]

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
    matmul_3d(a3, b3, as_view(c, "reshape", shape=(z, m, n)), tile)
    shape = batch + ((m,) if not vec_a else ()) + ((n,) if not vec_b else ())
    return as_view(c, "reshape", shape=shape), root
