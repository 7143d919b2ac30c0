"""A small pytree utility: flatten nested tuples/lists/dicts into leaves and back.

``flatten(obj) -> (leaves, spec)`` lists the leaves left to right (dict keys
in insertion order); ``unflatten(leaves, spec)`` rebuilds the structure.
Tensors, numbers, strings and None are leaves; a spec is a plain nested tuple,
so specs compare with ``==`` (the compiled-function cache uses that).
"""

from __future__ import annotations

LEAF = "*"


def flatten(obj):
    """``(leaves, spec)``: the leaves of ``obj`` left to right and its structure."""
    leaves: list = []
    spec = _flatten(obj, leaves)
    return leaves, spec


def _flatten(obj, leaves):
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):       # namedtuple
        return ("namedtuple", type(obj), tuple(_flatten(x, leaves) for x in obj))
    if isinstance(obj, tuple):
        return ("tuple", tuple(_flatten(x, leaves) for x in obj))
    if isinstance(obj, list):
        return ("list", tuple(_flatten(x, leaves) for x in obj))
    if isinstance(obj, dict):
        keys = tuple(obj.keys())
        return ("dict", keys, tuple(_flatten(obj[k], leaves) for k in keys))
    leaves.append(obj)
    return LEAF


def unflatten(leaves, spec):
    """Rebuild the structure ``spec`` (from :func:`flatten`) around ``leaves``."""
    it = iter(leaves)
    out = _unflatten(it, spec)
    rest = list(it)
    if rest:
        raise ValueError(f"unflatten: {len(rest)} leaves left over")
    return out


def _unflatten(it, spec):
    if spec == LEAF:
        return next(it)
    kind = spec[0]
    if kind == "tuple":
        return tuple(_unflatten(it, s) for s in spec[1])
    if kind == "list":
        return [_unflatten(it, s) for s in spec[1]]
    if kind == "dict":
        return {k: _unflatten(it, s) for k, s in zip(spec[1], spec[2])}
    if kind == "namedtuple":
        return spec[1](*[_unflatten(it, s) for s in spec[2]])
    raise ValueError(f"bad pytree spec {spec!r}")


def tree_map(fn, obj):
    """``obj`` with ``fn`` applied to every leaf, the structure kept."""
    leaves, spec = flatten(obj)
    return unflatten([fn(x) for x in leaves], spec)
