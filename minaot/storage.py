"""Storage: the memory a tensor and all its views share.

A :class:`Storage` owns one buffer and a version counter.  A Tensor is a
strided window (shape, strides, offset) onto a storage; views share the
storage, so a write through any of them is seen by all, and the version
counter (bumped by every in-place op) lets autograd detect that a tensor saved
for backward was modified.

The CPU storage keeps a numpy array; each tensor keeps a numpy *view* of it
(``tensor._data``), so numpy does the strided indexing.  :class:`CudaStorage`
has the same small interface (``device``, ``version``, ``root``, ``nbytes``,
``data_ptr``, ``offset_of``, ``bump``): its root is a flat Numba device array
and each CUDA tensor's ``_data`` is a strided device array over it (see
:mod:`minaot.cuda`), so views share GPU memory exactly as CPU views share host
memory.
"""

from __future__ import annotations

import numpy as np


class Storage:
    """CPU memory: a numpy array (``root``) plus a version counter."""

    device = "cpu"

    def __init__(self, root: np.ndarray):
        self.root = root
        self.version = 0

    @property
    def nbytes(self) -> int:
        return self.root.nbytes

    def data_ptr(self) -> int:
        return self.root.__array_interface__["data"][0]

    def offset_of(self, arr: np.ndarray) -> int:
        """Offset of ``arr``'s first element from the root, in elements."""
        if arr.size == 0:
            return 0
        ptr = arr.__array_interface__["data"][0]
        return (ptr - self.data_ptr()) // arr.itemsize

    def bump(self):
        self.version += 1

    def __repr__(self) -> str:
        return f"Storage(cpu, {self.root.nbytes} bytes, version={self.version})"


class CudaStorage:
    """GPU memory: a flat Numba device array (``root``) plus a version counter."""

    device = "cuda"

    def __init__(self, root):
        self.root = root
        self.version = 0

    @property
    def nbytes(self) -> int:
        return self.root.size * self.root.dtype.itemsize

    def data_ptr(self) -> int:
        from .cuda import pointer
        return pointer(self.root)

    def offset_of(self, arr) -> int:
        """Offset of ``arr``'s first element from the root, in elements."""
        if arr.size == 0:
            return 0
        from .cuda import pointer
        return (pointer(arr) - self.data_ptr()) // arr.dtype.itemsize

    def view(self, offset: int, shape, strides):
        """A device array over the root: ``offset`` and ``strides`` in elements."""
        from .cuda import strided
        item = self.root.dtype.itemsize
        return strided(self.root, offset * item, shape, tuple(s * item for s in strides))

    def bump(self):
        self.version += 1

    def __repr__(self) -> str:
        return f"Storage(cuda, {self.nbytes} bytes, version={self.version})"
