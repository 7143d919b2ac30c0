"""The kernel cache: generated source as importable files, Numba's machine code beside it.

Numba can keep compiled machine code on disk (``cache=True``), but only for
functions that live in a real file: a function made by ``exec`` has no file
and cannot be cached.  So every generated kernel is written to
``$MINAOT_CACHE_DIR`` (default ``~/.cache/minaot``, created 0700) as a module
named by a hash of its text and of the versions of minaot, Numba and numpy,
imported from that file and registered in ``sys.modules`` (a cached Numba
function whose module is missing from ``sys.modules`` crashes the next
process that loads it).  A second process finds the file, imports it, and
Numba loads the machine code instead of compiling.

Files are written atomically (a temporary file, then ``os.replace``), so two
processes compiling the same kernel both succeed.  The first line of each
file holds the hash of the rest; a file whose text does not match (truncated,
edited, corrupted) is deleted and written again, never imported.
``minaot.counters["kernels"]`` counts source hits and misses and, after a
kernel's first call, whether Numba compiled it or loaded it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile

from ..counters import counters

_LOADED = {}        # module name -> kernel function, in this process


def cache_dir() -> str:
    path = os.environ.get("MINAOT_CACHE_DIR")
    if not path:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "minaot")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def _versions() -> str:
    import numba
    import numpy

    from .. import __version__
    return f"minaot {__version__} numba {numba.__version__} numpy {numpy.__version__}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class KernelCompileError(RuntimeError):
    """Numba rejected a generated kernel: names the graph op and the generated file."""


def _read_valid(path: str):
    """The file's text if its first line's hash matches the rest, else None."""
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
            rest = f.read()
    except (OSError, UnicodeDecodeError):
        return None
    if not first.startswith("# minaot-kernel sha256=") or first.split("=", 1)[1].strip() != _digest(rest):
        return None
    return rest


def _write_atomic(path: str, text: str) -> None:
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".py", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"# minaot-kernel sha256={_digest(text)}\n{text}")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def source_path(source: str, name: str) -> tuple[str, str]:
    """(module name, file path) of a kernel's source in the cache."""
    key = _digest(source + "\n" + _versions())[:24]
    module = f"minaot_k_{name}_{key}"
    return module, os.path.join(cache_dir(), module + ".py")


def load_kernel(source: str, name: str, what: str = ""):
    """The Numba function ``name`` defined by ``source``, through the on-disk cache."""
    module, path = source_path(source, name)
    if module in _LOADED:
        return _LOADED[module]
    if _read_valid(path) == source:
        counters["kernels"]["source_hits"] += 1
    else:
        if os.path.exists(path):
            counters["kernels"]["corrupt_rebuilt"] += 1
            _drop_numba_cache(path)
        counters["kernels"]["source_misses"] += 1
        _write_atomic(path, source)
    spec = importlib.util.spec_from_file_location(module, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module] = mod
    try:
        spec.loader.exec_module(mod)
    except Exception as exc:
        del sys.modules[module]
        raise KernelCompileError(f"generated kernel {name} ({what}) does not import: {exc}\n"
                                 f"  source: {path}") from exc
    fn = getattr(mod, name)
    _LOADED[module] = fn
    return fn


def _drop_numba_cache(path: str) -> None:
    """Remove Numba's index and machine code kept for a source file we are replacing."""
    base = os.path.splitext(os.path.basename(path))[0]
    pycache = os.path.join(os.path.dirname(path), "__pycache__")
    if os.path.isdir(pycache):
        for f in os.listdir(pycache):
            if f.startswith(base + "."):
                try:
                    os.unlink(os.path.join(pycache, f))
                except OSError:
                    pass


def record_first_call(fn) -> None:
    """After a kernel's first call: count whether Numba compiled it or loaded its machine code."""
    stats = getattr(fn, "stats", None)
    if stats is None:
        return
    counters["kernels"]["numba_cache_hits"] += sum(stats.cache_hits.values())
    counters["kernels"]["numba_compiles"] += sum(stats.cache_misses.values())
