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
On a GPU the word lives in pinned host memory mapped into the device's address
space (``cuda.mapped_array``): a kernel that meets a bad index writes its code
straight into host memory, so the host reads the word without a copy, an event
or a wait (a word written once per call would cost a device-to-host copy and an
event per call: about 55 us of host time each on the H100, and a query of that
event at every later call, 9 us more).  The error is raised at the first of:

* the end of that same call, when the code has already arrived (always under
  Numba's simulator, which runs kernels synchronously, so there the error is
  raised by the call that made it; there the word is a device array copied to
  the host after the call);
* the start of any later compiled call on the GPU (:func:`raise_pending`), before
  it launches anything, when the code has arrived by then;
* any read of device values by the host (``.numpy()``, ``.item()``,
  ``.cpu()``, :func:`minaot.cuda.synchronize`), which waits for the GPU first.

The message names the op, its input shapes and source line, and says that the
error comes from an earlier call.  A program's word is set back to 0 once its
error has been raised.  Codes are only ever written (never cleared) by kernels,
so reading the word while kernels still run can only miss a code that is on
its way, never report an error that did not happen.
"""

from __future__ import annotations

import weakref

import numpy as np

_QUEUED: "weakref.WeakSet" = weakref.WeakSet()   # programs whose word may hold a code


class ErrorWord:
    """One program's error word: ``device`` is what its kernels write, ``host`` what the
    host reads (on a GPU the same mapped host memory; under the simulator a device array
    and its copy)."""

    def __init__(self, cuda, simulator: bool):
        self.simulator = simulator
        self.cuda = cuda
        if simulator:
            self.device = cuda.to_device(np.zeros(1, np.int32))
            self.host = np.zeros(1, np.int32)
        else:
            self.host = self.device = cuda.mapped_array(1, np.int32)
            self.host[0] = 0

    def queue(self) -> None:
        """Make the codes of the kernels queued so far readable by the host, without
        waiting: nothing to do on a GPU (the kernels write host memory); a copy under the
        simulator (whose kernels have all run)."""
        if self.simulator:
            self.host[0] = self.device.copy_to_host()[0]

    def done(self) -> bool:
        """Is the code the host sees final for the calls made so far?  On a GPU only after
        a wait (:meth:`read` with ``wait``)."""
        return self.simulator

    def read(self, wait: bool) -> int:
        """The code (0: no error) as far as the host knows it; ``wait``: after every kernel
        queued so far has finished."""
        if wait and not self.simulator:
            self.cuda.synchronize()
        return int(self.host[0])

    def reset(self) -> None:
        if self.simulator:
            self.device.copy_to_device(np.zeros(1, np.int32))
        else:
            self.cuda.synchronize()         # no kernel still in flight writes a code later
        self.host[0] = 0


def queued(program) -> None:
    """``program`` ran kernels that may write its word: check it at the next call or host read."""
    _QUEUED.add(program)


def raise_pending(wait: bool = False, current=None) -> None:
    """Raise the error of a program whose kernels wrote a code (see the module docstring).
    ``wait``: wait for the kernels in flight (the host is about to read device values);
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
