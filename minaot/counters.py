"""Counters: what the compiler did (compiles, cache hits and misses, kernels...).

``minaot.counters`` is a nested dict, ``counters["aot"]["cache_hits"]``;
``minaot.reset()`` zeroes it and forgets every compiled artifact.
"""

from __future__ import annotations

import weakref
from collections import Counter, defaultdict

counters: defaultdict = defaultdict(Counter)
_caches: "weakref.WeakSet" = weakref.WeakSet()


def register_cache(obj):
    """Anything with a ``clear_cache()`` method that ``reset()`` should clear."""
    _caches.add(obj)


def reset():
    """Zero ``minaot.counters`` and empty every compiled function's cache.

    The kernel files on disk (``$MINAOT_CACHE_DIR``) are kept: a kernel compiled
    again is loaded from there."""
    counters.clear()
    for obj in list(_caches):
        obj.clear_cache()
