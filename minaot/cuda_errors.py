"""Errors found by GPU kernels, reported without making the host wait for the GPU.

A kernel cannot raise.  A compiled program whose kernels check their indices
(``gather``, ``scatter_add``) gives them an error word in device memory; a
kernel that meets a bad index writes a code there, which names the op (and so
its shapes and the user's source line).  Reading that word right after the
program's launches would make the host wait until every kernel queued so far has
finished, once per call: the host could not queue the next kernels while the GPU
ran the last ones.  On the H100 benchmark's training step (batch 4096, forward
and backward each with such a word) not waiting saved about 1 ms of 10.

So the word is read the way PyTorch reports a CUDA device-side assert: later.
After its launches a program queues a copy of its word into pinned host memory
(:meth:`ErrorWord.queue`, which does not wait) and records an event behind it.
The error is raised at the first of:

* the end of that same call, when the copy has already finished (always under
  Numba's simulator, which runs kernels synchronously, so there the error is
  raised by the call that made it);
* the start of any later compiled call on the GPU (:func:`raise_pending`), before
  it launches anything;
* any read of device values by the host (``.numpy()``, ``.item()``,
  ``.cpu()``, :func:`minaot.cuda.synchronize`), which waits for the copy.

The message names the op, its input shapes and source line, and says that the
error comes from an earlier call.  A program's word is set back to 0 once its
error has been raised.  Codes are only ever written (never cleared) by kernels,
so a copy that is still in flight can only turn a 0 into a code: reading the
pinned word early never reports an error that did not happen.
"""

from __future__ import annotations

import weakref

import numpy as np

_QUEUED: "weakref.WeakSet" = weakref.WeakSet()   # programs whose word may hold a code

try:        # the driver-level copy under ``copy_to_host``: half its host time on the H100
    from numba.cuda.cudadrv.driver import device_to_host as _DEVICE_TO_HOST
except ImportError:
    _DEVICE_TO_HOST = None


class ErrorWord:
    """One program's device error word and its pinned host copy."""

    def __init__(self, cuda, simulator: bool):
        self.device = cuda.to_device(np.zeros(1, np.int32))
        self.simulator = simulator
        if simulator:
            self.host, self.event = np.zeros(1, np.int32), None
        else:
            self.host = cuda.pinned_array(1, np.int32)
            self.host[0] = 0
            self.stream = cuda.stream()     # a blocking stream: its copy waits for the kernels
            self.event = cuda.event(timing=False)

    def queue(self) -> None:
        """Copy the word to the host behind the kernels queued so far, without waiting."""
        if self.simulator:
            self.host[0] = self.device.copy_to_host()[0]
            return
        if _DEVICE_TO_HOST is not None:     # Numba's copy without its per-call checks
            _DEVICE_TO_HOST(self.host, self.device, 4, stream=self.stream)
        else:
            self.device.copy_to_host(self.host, stream=self.stream)
        self.event.record(self.stream)

    def done(self) -> bool:
        """Has the last queued copy arrived?"""
        return self.simulator or self.event.query()

    def read(self, wait: bool) -> int:
        """The code (0: no error) as far as the host knows it; ``wait``: after the last copy."""
        if wait and not self.simulator:
            self.event.synchronize()
        return int(self.host[0])

    def reset(self) -> None:
        if not self.simulator:
            self.event.synchronize()
        self.device.copy_to_device(np.zeros(1, np.int32))
        self.host[0] = 0


def queued(program) -> None:
    """``program`` queued its word's copy: check it at the next call or host read."""
    _QUEUED.add(program)


def raise_pending(wait: bool = False, current=None) -> None:
    """Raise the error of a program whose kernels wrote a code (see the module docstring).
    ``wait``: wait for the copies in flight (the host is about to read device values);
    ``current``: the program whose own call just ended (its error is not "earlier")."""
    if not _QUEUED:
        return
    for program in list(_QUEUED):
        word = program.errors
        finished = wait or word.done()
        code = word.read(wait)
        if code:
            _QUEUED.discard(program)
            word.reset()
            raise program.index_error(code, earlier=program is not current)
        if finished:
            _QUEUED.discard(program)
