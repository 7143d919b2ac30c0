"""The two ways the op-parity test files run a function: eagerly and compiled.

``RUNS[name](fn)`` is ``fn`` itself (``"eager"``) or ``minaot.compile(fn, backend="numba")``
(``"compiled"``); the files parametrize over ``RUNS`` so that every check runs both ways."""

import minaot


def compiled(fn):
    """``fn`` compiled by the Numba backend."""
    return minaot.compile(fn, backend="numba")


RUNS = {"eager": lambda fn: fn, "compiled": compiled}
