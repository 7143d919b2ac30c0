"""Storage: the memory a tensor and all its views share.

A :class:`Storage` owns one buffer and a version counter.  A Tensor is a
strided window (shape, strides, offset) onto a storage; views share the
storage, so a write through any of them is seen by all, and the version
counter (bumped by every in-place op) lets autograd detect that a tensor saved
for backward was modified.

The CPU storage keeps a numpy array; each tensor keeps a numpy *view* of it
(``tensor._data``), so numpy does the strided indexing.  A later device (CUDA)
adds another Storage class with the same small interface: ``device``,
``version``, ``root`` (the array every view is a window of), ``nbytes``.
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
