"""``minaot.cuda``: is a GPU there, and the device arrays CUDA tensors live in.

A CUDA tensor's memory is a Numba *device array* (``numba.cuda``'s
``DeviceNDArray`` on a GPU; under Numba's simulator, ``NUMBA_ENABLE_CUDASIM=1``,
a ``FakeCUDAArray`` that wraps a numpy array).  Each storage owns one flat
(1-d) device array, its *root*; a tensor's ``_data`` is a strided device array
over the root with the tensor's shape and strides, exactly as a CPU tensor's
``_data`` is a numpy view of its storage.

View ops need the geometry of the result (shape, strides, offset), and numpy
already computes it for every view op: each op's numpy implementation is run
on a *stand-in*, a numpy array with the device array's shape and strides whose
memory is never read or written (``as_strided`` over one anchor element, made
read-only), and the result's geometry is read back.  ``reshape`` is asked
with ``copy=False``, so it answers "not viewable" instead of copying.  So a
view of a CUDA tensor is computed by the same code as a view of a CPU tensor.

Memory comes from a *caching allocator*, as PyTorch's: a root's memory is a
block owned by a pool, and when the root becomes garbage (no tensor, view or
intermediate of a program refers to it any more: every view made here holds
its root) the block goes back to the pool, keyed by its rounded size, and the
next allocation of that size takes it again, with no ``cudaMalloc`` and no
``cudaFree`` (which waits for the whole GPU).  Reuse is safe without events
because all of minaot's work runs on the default stream: a kernel that wrote
the old root's memory runs before any kernel launched later that writes the
new one.  :func:`empty_cache` gives the pooled blocks back to the driver;
:func:`memory_allocated` and :func:`memory_reserved` count the bytes handed
out and held.  Under the simulator the blocks are host byte arrays and the
same pool runs, so the simulator suites exercise its reuse too.

``numba.cuda`` is imported on first use, never by ``import minaot``.  Without
numba-cuda, or without a GPU and without the simulator, the first CUDA tensor
raises :class:`~minaot.codegen.cuda_runtime.CudaUnavailableError`, saying what
is missing; :func:`is_available` answers without raising.
"""

from __future__ import annotations

import heapq
import threading
import weakref

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import cuda_replay as _replay

_ARRAY_CLASS = None       # the DeviceNDArray subclass minaot makes (GPU only)
_ALLOCATOR = None         # the caching allocator (made on first use)


def is_available() -> bool:
    """Can CUDA tensors be made here (a usable GPU, or Numba's CUDA simulator)?"""
    from .codegen.cuda_runtime import CudaUnavailableError, cuda_module
    try:
        cuda_module()
    except CudaUnavailableError:
        return False
    return True


def is_simulator() -> bool:
    """Do CUDA tensors run on Numba's simulator (``NUMBA_ENABLE_CUDASIM=1``)?"""
    from numba import config
    return bool(config.ENABLE_CUDASIM)


def device_count() -> int:
    """GPUs visible (the simulator counts as one)."""
    if not is_available():
        return 0
    return 1 if is_simulator() else len(_cuda().gpus)


def synchronize() -> None:
    """Wait until every kernel launched so far has finished (for timing); raises the error
    a compiled program's kernels found, if any (:mod:`minaot.cuda_errors`)."""
    _cuda().synchronize()
    from .cuda_errors import raise_pending
    raise_pending(wait=True)


def _cuda():
    from .codegen.cuda_runtime import cuda_module
    return cuda_module()


# ---------------------------------------------------------------- geometry
def stand_in(shape, strides, dtype) -> np.ndarray:
    """A read-only numpy array with this geometry (strides in bytes) whose memory is never
    touched: numpy computes views of it, nothing reads it."""
    anchor = np.zeros(1, dtype=dtype)
    return as_strided(anchor, shape=tuple(shape), strides=tuple(strides), writeable=False)


def geometry(arr) -> np.ndarray:
    """``arr``'s stand-in (see :func:`stand_in`)."""
    return stand_in(arr.shape, arr.strides, arr.dtype)


def byte_offset(view: np.ndarray, of: np.ndarray) -> int:
    """How far ``view`` (a numpy view of the stand-in ``of``) starts after ``of``, in bytes."""
    if view.size == 0:
        return 0
    return view.__array_interface__["data"][0] - of.__array_interface__["data"][0]


def c_strides(shape) -> tuple:
    """C-order strides of ``shape``, in elements."""
    out, acc = [], 1
    for s in reversed(tuple(shape)):
        out.append(acc)
        acc *= max(s, 1)
    return tuple(reversed(out))


def _span(shape, strides, itemsize) -> int:
    """Bytes from the first element to the end of the last (non-negative strides)."""
    if any(s == 0 for s in shape):
        return 0
    return sum((s - 1) * st for s, st in zip(shape, strides)) + itemsize


# ---------------------------------------------------------------- the caching allocator
SMALL_BLOCK = 1 << 20       # requests up to 1 MiB are rounded up to a multiple of 512 bytes,
SMALL_ROUND = 512           # larger ones to a multiple of 2 MiB (PyTorch's two block pools)
LARGE_ROUND = 2 << 20


def round_size(nbytes: int) -> int:
    """The size of the block that serves a request of ``nbytes`` (its pool key)."""
    step = SMALL_ROUND if nbytes <= SMALL_BLOCK else LARGE_ROUND
    return max(step, -(-nbytes // step) * step)


class CachingAllocator:
    """Blocks of device memory, handed out and taken back without freeing them.

    ``new_block(size)`` makes a block of ``size`` bytes (device memory on a GPU, a
    host byte array under the simulator); the pool owns every block it made.  ``take``
    returns the free block of the request's rounded size with the lowest address (as
    PyTorch's allocator chooses among blocks of one size), or a new one; ``give`` puts a
    block back (called by the finalizer of the array that used it, when that array is
    garbage).  Blocks are reused only at exactly their rounded size, so a pool of many
    sizes holds memory that the driver could give to others: :meth:`release` drops the
    free blocks (the driver frees them), and an allocation that fails for lack of
    memory releases the free blocks and tries once more.

    Lowest address first, rather than the block given back last: which blocks are free at
    a point of a training step repeats from step to step, but the order in which they were
    given back does not (it follows when Python drops the arrays), so only this choice
    hands a step's intermediates the same addresses at every step, and a replayed call
    the same table of addresses, for which its CUDA graph is launched as it is
    (:mod:`minaot.cuda_graph`).

    ``give`` may run inside a garbage collection that interrupts ``take`` in the same
    thread, hence the reentrant lock."""

    def __init__(self, new_block, simulator=False):
        self.new_block = new_block
        self.simulator = simulator      # blocks are host byte arrays (Numba's simulator)
        self.free = {}                  # rounded size -> blocks not in use
        self.lock = threading.RLock()
        self.allocated = 0              # bytes of the blocks in use
        self.reserved = 0               # bytes of every block the pool holds
        self.hits = self.misses = 0
        self.releases = 0               # calls of release() that dropped blocks (cuda_replay)

    def take(self, nbytes: int):
        """``(block, size)``: a block of at least ``nbytes`` bytes, ``size`` its real size."""
        size = round_size(nbytes)
        with self.lock:
            blocks = self.free.get(size)
            if blocks:
                self.hits += 1
                self.allocated += size
                return heapq.heappop(blocks)[1], size
        try:
            block = self.new_block(size)
        except Exception as exc:        # out of memory: give the free blocks back, once
            if "OUT_OF_MEMORY" not in str(exc) or not self.release():
                raise
            block = self.new_block(size)
        with self.lock:
            self.misses += 1
            self.allocated += size
            self.reserved += size
        return block, size

    def address(self, block) -> int:
        """The device address of a block this pool made."""
        if self.simulator:
            return block.__array_interface__["data"][0]
        return int(block.device_pointer)

    def give(self, block, size: int) -> None:
        rec = _replay.ACTIVE
        if rec is not None:
            rec.freed(block)
        address = self.address(block)
        with self.lock:
            heapq.heappush(self.free.setdefault(size, []), (address, block))
            self.allocated -= size

    def release(self) -> int:
        """Drop every free block; the bytes released."""
        with self.lock:
            freed = sum(size * len(blocks) for size, blocks in self.free.items())
            self.free.clear()
            self.reserved -= freed
            self.releases += bool(freed)
        return freed


def _allocator() -> CachingAllocator:
    global _ALLOCATOR
    if _ALLOCATOR is None:
        if is_simulator():
            _ALLOCATOR = CachingAllocator(lambda size: np.empty(size, np.uint8), simulator=True)
        else:
            cuda = _cuda()
            _ALLOCATOR = CachingAllocator(lambda size: cuda.current_context().memalloc(size))
    return _ALLOCATOR


def empty_cache() -> None:
    """Give the memory the allocator holds but no tensor uses back to the driver (as
    ``torch.cuda.empty_cache``)."""
    if _ALLOCATOR is None:
        return
    _ALLOCATOR.release()
    if not is_simulator():
        pending = getattr(_cuda().current_context(), "deallocations", None)
        if pending is not None:         # Numba frees lazily: free now
            pending.clear()


def memory_allocated() -> int:
    """Bytes of device memory in use by arrays (blocks, so rounded up; 0 before any)."""
    return 0 if _ALLOCATOR is None else _ALLOCATOR.allocated


def memory_reserved() -> int:
    """Bytes of device memory the allocator holds: in use or pooled for reuse."""
    return 0 if _ALLOCATOR is None else _ALLOCATOR.reserved


# ---------------------------------------------------------------- device arrays
def allocate(n: int, dtype):
    """A new flat device array of ``n`` elements (uninitialised): a storage's root.

    Its memory is a block of the caching allocator, given back when the root is garbage.
    Every array over the root made here (:func:`strided`) holds the root, so the block is
    back in the pool only when nothing can read or write it any more.  Under the
    simulator the root is a numpy array over a host block, through a ``_Window`` that
    every numpy view of it holds (numpy makes a view's base the first non-array owner):
    the ``_Window``'s death returns the block."""
    dtype, n = np.dtype(dtype), max(int(n), 0)
    if n == 0:
        return _cuda().device_array(0, dtype=dtype)
    pool = _allocator()
    block, size = pool.take(n * dtype.itemsize)
    root = root_over(pool, block, size, n, dtype)
    rec = _replay.ACTIVE
    if rec is not None:
        rec.allocated(root, block, size, n, dtype)
    return root


def root_over(pool, block, size: int, n: int, dtype):
    """The flat device array of ``n`` elements over ``block`` (of ``size`` bytes, taken from
    ``pool``), which gives the block back to the pool when it is garbage."""
    if pool.simulator:
        from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
        holder = _Window(block, block.__array_interface__["data"][0], (n,), (dtype.itemsize,), dtype)
        root = FakeCUDAArray(np.asarray(holder))
    else:
        cls = _array_class()
        if _FAST_VIEWS == "checked":    # as a view (below): the attributes set directly
            root = cls.__new__(cls)
            root.__dict__.update(ndim=1, shape=(n,), strides=(dtype.itemsize,), dtype=dtype,
                                 size=n, alloc_size=n * dtype.itemsize, gpu_data=block, stream=0,
                                 _minaot_addr=int(block.device_pointer))
        else:
            root = cls((n,), (dtype.itemsize,), dtype, gpu_data=block)
        holder = root
    weakref.finalize(holder, pool.give, block, size).atexit = False
    return root


def memset_fill(arr, value) -> bool:
    """Fill the C-contiguous device array ``arr`` with ``value`` by the driver's memset when
    its byte pattern repeats every 4 bytes (any 4-byte or 1-byte value, 0 of any dtype):
    True if done, False where a kernel must fill it (or under the simulator, or while a
    call is recorded for replay: :mod:`minaot.cuda_replay` replays launches only).

    A memset is queued on the legacy default stream behind the kernels before it, and
    the host does not wait.  It costs a few microseconds of host time, against a copy
    kernel's tens: ``loss.backward()`` makes its seed gradient this way at every step."""
    if hasattr(arr, "_ary") or _replay.ACTIVE is not None or not arr.size:
        return False
    raw = np.asarray(value, dtype=arr.dtype).tobytes()
    if len(raw) == 8 and raw[:4] == raw[4:]:
        raw = raw[:4]
    nbytes = arr.size * arr.dtype.itemsize
    from numba.cuda.cudadrv.driver import driver
    if raw.count(raw[:1]) == len(raw):
        driver.cuMemsetD8(pointer(arr), raw[0], nbytes)
    elif len(raw) == 4:
        driver.cuMemsetD32(pointer(arr), int.from_bytes(raw, "little"), nbytes // 4)
    else:
        return False
    return True


def to_device(host: np.ndarray):
    """A new flat device array holding ``host``'s elements in C order."""
    if _replay.ACTIVE is not None:      # an upload is no kernel launch: it cannot be replayed
        _replay.ACTIVE.fail("a host array is copied to the device")
    flat = np.ascontiguousarray(host).reshape(-1)
    root = allocate(flat.size, flat.dtype)
    if flat.size:
        root.copy_to_device(flat)
    return root


def from_host(host: np.ndarray):
    """``(array, root)``: a new C-order device array with ``host``'s values and shape."""
    host = np.asarray(host)
    root = to_device(host)
    item = host.dtype.itemsize
    return strided(root, 0, host.shape, tuple(s * item for s in c_strides(host.shape))), root


def pointer(arr) -> int:
    """The address of ``arr``'s first element (a host address under the simulator)."""
    addr = arr.__dict__.get("_minaot_addr")     # noted by the views and roots made here
    if addr is not None:
        return addr
    if hasattr(arr, "_ary"):                        # the simulator's FakeCUDAArray
        return arr._ary.__array_interface__["data"][0]
    if arr.size == 0:
        return arr.__cuda_array_interface__["data"][0]
    return arr.device_ctypes_pointer.value      # (a fifth of the array interface's time)


class _Window:
    """Host memory described by the array interface, kept alive by ``owner`` (simulator)."""

    def __init__(self, owner, address, shape, strides, dtype):
        self.owner = owner
        self.__array_interface__ = {"data": (address, False), "shape": shape, "strides": strides,
                                    "typestr": dtype.str, "version": 3}


def strided(base, byte_start: int, shape, strides):
    """A device array over ``base``'s memory, starting ``byte_start`` bytes after ``base``'s
    first element, with ``shape`` and ``strides`` (bytes).  No copy: a view."""
    shape, strides = tuple(map(int, shape)), tuple(map(int, strides))
    dtype = base.dtype
    span = _span(shape, strides, dtype.itemsize)
    if hasattr(base, "_ary"):                       # simulator: a numpy view of the same memory
        from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
        if span == 0:
            return FakeCUDAArray(np.empty(shape, dtype))
        return FakeCUDAArray(np.asarray(_Window(base._ary, pointer(base) + byte_start, shape,
                                                strides, dtype)))
    cls = _array_class()
    if span == 0:
        return cls(shape, strides, dtype)
    root = base.__dict__.get("_minaot_root", base)
    out = None
    if _FAST_VIEWS:
        out = _fast_view(cls, root, pointer(base) + byte_start, shape, strides, dtype, span)
    if out is None:
        out = cls(shape, strides, dtype, gpu_data=base.gpu_data.view(byte_start, byte_start + span))
    out._minaot_root = root             # the memory stays in use while a view lives
    return out


# Making a view the ordinary way (``DeviceNDArray(..., gpu_data=mem.view(a, b))``) costs
# several microseconds of host time: Numba wraps the view's pointer in an ``OwnedPointer``
# (a weak proxy, a reference count and a finalizer, to keep the allocation alive) and
# builds a ``dummyarray`` description of the geometry.  minaot's views keep their root
# array alive themselves (``_minaot_root``), and a compiled program makes a hundred views
# per training step, so on a GPU they are made directly: a bare memory pointer
# (:func:`_view_pointer_class`: its driver-level pointer object made only when Numba asks
# for it) and the array's attributes set as ``DeviceNDArrayBase.__init__`` would set
# them, plus the address (``_minaot_addr``, read by :func:`pointer`), the dummyarray made
# only when Numba asks for it.  The first view is made both ways and compared; if this
# Numba sets other attributes, every view is made the ordinary way.
_FAST_VIEWS = True                  # True: not tried yet; "checked"; False: the ordinary way
_VIEW_POINTER = None


def _fast_view(cls, root, address, shape, strides, dtype, span):
    """The view (see above), or None where this Numba's arrays are not what it assumes."""
    global _FAST_VIEWS, _VIEW_POINTER
    if _FAST_VIEWS is True:             # the first one: check it against Numba's own
        try:
            _VIEW_POINTER = _view_pointer_class()
            out = _fast_view_unchecked(cls, root, address, shape, strides, dtype, span)
            ordinary = cls(shape, strides, dtype, gpu_data=out.gpu_data)
            made = {"_dummy", "_dummy_array", "_minaot_addr"}
            same = (set(vars(ordinary)) - made == set(vars(out)) - made
                    and all(getattr(ordinary, k) == getattr(out, k)
                            for k in ("ndim", "shape", "strides", "dtype", "size", "alloc_size"))
                    and ordinary._numba_type_ == out._numba_type_
                    and ordinary.device_ctypes_pointer.value == address
                    and int(out.gpu_data.device_pointer) == address)
        except Exception:
            same = False
        _FAST_VIEWS = "checked" if same else False
        return out if same else None
    return _fast_view_unchecked(cls, root, address, shape, strides, dtype, span)


def _fast_view_unchecked(cls, root, address, shape, strides, dtype, span):
    mem = root.gpu_data
    gpu_data = _VIEW_POINTER(mem.context, address, span, mem.owner)
    out = cls.__new__(cls)
    size = 1
    for n in shape:
        size *= n
    out.__dict__.update(ndim=len(shape), shape=shape, strides=strides, dtype=dtype, size=size,
                        alloc_size=span, gpu_data=gpu_data, stream=0, _minaot_addr=address)
    return out


def _view_pointer_class():
    """Numba's ``MemoryPointer`` for a view's memory, made cheaply: the attributes its
    constructor sets, with the driver-level pointer object (``device_pointer``, a
    ``CUdeviceptr``) made on first use from the address, which most views never need."""
    from ctypes import c_size_t

    from numba.cuda.cudadrv import driver

    class ViewPointer(driver.MemoryPointer):
        def __init__(self, context, address, size, owner):
            self.__dict__.update(context=context, _address=address, size=size,
                                 _cuda_memsize_=size, is_managed=False, refct=1, _owner=owner)

        @property
        def device_pointer(self):
            p = self.__dict__.get("_device_pointer")
            if p is None:
                p = self.__dict__["_device_pointer"] = driver.binding.CUdeviceptr(self._address)
            return p

        handle = device_pointer

        @property
        def device_ctypes_pointer(self):
            return c_size_t(self._address)

        @property
        def device_pointer_value(self):
            return self._address or None

    return ViewPointer


def view_like(base, numpy_view: np.ndarray, stand: np.ndarray):
    """The device array that ``numpy_view``, a view of ``stand`` (``base``'s stand-in),
    describes over ``base``'s memory."""
    return strided(base, byte_offset(numpy_view, stand), numpy_view.shape, numpy_view.strides)


def empty(shape, dtype, strides=None):
    """``(array, root)``: a new device array of ``shape`` (C order, or ``strides`` in
    elements, which must be a dense layout) over a new flat root."""
    dtype = np.dtype(dtype)
    n = 1
    for s in shape:
        n *= int(s)
    root = allocate(n, dtype)
    if strides is None:
        strides = c_strides(shape)
    return strided(root, 0, shape, tuple(s * dtype.itemsize for s in strides)), root


def to_host(arr) -> np.ndarray:
    """A new numpy array with ``arr``'s values (``arr``'s strides when it is dense).  The host
    waits for the GPU here, so an error that kernels found is raised first
    (:mod:`minaot.cuda_errors`), as PyTorch raises a device-side assert at such a read."""
    from .cuda_errors import raise_pending
    if _replay.ACTIVE is not None:
        _replay.ACTIVE.fail("a device array is read on the host")
    raise_pending(wait=True)
    if hasattr(arr, "_ary"):
        return np.array(arr._ary, copy=True, order="K")
    if arr.size == 0:
        return np.empty(arr.shape, arr.dtype)
    dense = 0 not in arr.strides and \
        _span(arr.shape, arr.strides, arr.dtype.itemsize) == arr.size * arr.dtype.itemsize
    if not dense:           # a copy_to_host would move the whole span (or 0-stride axes)
        from .cuda_eager import contiguous_copy
        arr = contiguous_copy(arr)
    return arr.copy_to_host()


def _array_class():
    """``DeviceNDArray`` with numpy's ``reshape(shape, copy=False)``: a view when the
    strides allow one, else ``ValueError`` (numba's own raises NotImplementedError and
    takes no ``copy``), so numpy code that asks "is this viewable?" gets numpy's answer."""
    global _ARRAY_CLASS
    if _ARRAY_CLASS is not None:
        return _ARRAY_CLASS
    from numba.cuda.cudadrv.devicearray import DeviceNDArray

    class CudaArray(DeviceNDArray):
        @property
        def _dummy(self):
            # Numba's geometry helper, made on first use (views made by ``_fast_view``
            # skip it: most are never asked)
            d = self.__dict__.get("_dummy_array")
            if d is None:
                from numba.cuda.cudadrv import dummyarray
                d = self.__dict__["_dummy_array"] = dummyarray.Array.from_desc(
                    0, self.shape, self.strides, self.dtype.itemsize)
            return d

        @_dummy.setter
        def _dummy(self, value):
            self.__dict__["_dummy_array"] = value

        def reshape(self, *shape, order="C", copy=None):
            if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
                shape = tuple(shape[0])
            stand = geometry(self)
            try:
                v = np.reshape(stand, shape, order=order, copy=False)
            except ValueError:
                raise ValueError(f"reshape of a device array of shape {self.shape} and strides "
                                 f"{self.strides} to {tuple(shape)} needs a copy") from None
            return strided(self, byte_offset(v, stand), v.shape, v.strides)

    _ARRAY_CLASS = CudaArray
    return CudaArray
