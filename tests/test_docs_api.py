"""The API reference (docs/api.md) documents every public name, and every public name has a docstring.

Building the docs takes minutes; these checks take a second and fail with the name to
fix.  They read the autodoc directives in docs/api.md (``.. autofunction:: minaot.add``,
``.. automodule:: minaot.ir`` with ``:members:``, ...), import each target, and collect
the objects they document.  A public name is documented when its object is among them
(so ``minaot.no_grad`` is covered by ``.. autoclass:: minaot.autograd.no_grad``: the same
object).  Data (dtypes, ``counters``) has no docstring; the page must name it in its text.

Public names are the ``__all__`` of minaot and of its public subpackages.  A name
reachable as ``minaot.X`` but missing from ``minaot.__all__`` fails too: add it to
``__all__`` in minaot/__init__.py and a directive to docs/api.md.
"""

from __future__ import annotations

import importlib
import inspect
import pathlib
import re

import pytest

import minaot

ROOT = pathlib.Path(__file__).resolve().parent.parent
API = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")

# modules whose __all__ is the public API
WITH_ALL = ["minaot", "minaot.nn", "minaot.optim", "minaot.autograd", "minaot.ir", "minaot.passes"]
# modules documented as a whole (``automodule :members:``): what they define is public
WITHOUT_ALL = ["minaot.testing", "minaot.pytree", "minaot.nn.functional", "minaot.viz"]
# visible as minaot.X because ``from .ops import *`` brings them, documented under
# minaot.ops.registry, deliberately not in minaot.__all__
REGISTRY_NAMES = {"Meta", "OpDef", "SampleInput", "all_ops", "get_op", "register"}

_DIRECTIVE = re.compile(r"^\.\. auto(\w+):: *(\S+)\n((?:   +:[^\n]*\n)*)", re.M)


def _resolve(target: str, kind: str = "module"):
    """The object a dotted autodoc target names, found as autodoc finds it: the longest
    importable module prefix, then attributes.  For anything but ``automodule`` the last
    part is an attribute (``minaot.tensor`` is the function, not the module)."""
    parts = target.split(".")
    for k in range(len(parts) if kind == "module" else len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for attr in parts[k:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(target)


def _module_members(mod):
    """What ``automodule:: mod`` with ``:members:`` documents: ``__all__``, or the public
    names the module defines itself (autodoc's rule for imported names)."""
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n, o in vars(mod).items() if not n.startswith("_")
                 and getattr(o, "__module__", None) == mod.__name__]
    return [getattr(mod, n) for n in names]


def _directives():
    return [(m.group(1), m.group(2), m.group(3)) for m in _DIRECTIVE.finditer(API)]


def _documented_ids():
    ids = set()
    for kind, target, options in _directives():
        obj = _resolve(target, kind)
        ids.add(id(obj))
        if kind == "module" and ":members:" in options and ":no-members:" not in options:
            ids.update(id(o) for o in _module_members(obj))
    return ids


def _public_names():
    out = []
    for modname in WITH_ALL:
        mod = importlib.import_module(modname)
        out += [(modname, n) for n in mod.__all__]
    for modname in WITHOUT_ALL:
        mod = importlib.import_module(modname)
        out += [(modname, n) for n, o in vars(mod).items() if not n.startswith("_")
                and (inspect.isfunction(o) or inspect.isclass(o))
                and getattr(o, "__module__", None) == modname]
    return out


def _is_data(obj) -> bool:
    return not (inspect.isroutine(obj) or inspect.isclass(obj))


def _has_own_docstring(obj) -> bool:
    doc = obj.__doc__ if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    if not doc or not doc.strip():
        return False
    # a dataclass or NamedTuple without a docstring gets "Name(field, ...)" generated
    return not doc.startswith(f"{getattr(obj, '__name__', '')}(")


PUBLIC = _public_names()


def test_every_directive_in_api_md_imports():
    bad = []
    for kind, target, _ in _directives():
        try:
            _resolve(target, kind)
        except (ImportError, AttributeError) as exc:
            bad.append(f".. auto{kind}:: {target}  ({type(exc).__name__}: {exc})")
    assert not bad, "docs/api.md names objects that do not exist:\n  " + "\n  ".join(bad)


def test_public_api_is_listed_in_all():
    for mod in (minaot, minaot.nn, minaot.optim, minaot.autograd):
        visible = {n for n in dir(mod) if not n.startswith("_")
                   and not inspect.ismodule(getattr(mod, n))}
        extra = visible - set(mod.__all__) - (REGISTRY_NAMES if mod is minaot else set())
        assert not extra, (f"{mod.__name__} has public names missing from its __all__: "
                           f"{sorted(extra)}; add them to __all__ and to docs/api.md")
        missing = set(mod.__all__) - set(dir(mod))
        assert not missing, f"{mod.__name__}.__all__ lists names it lacks: {sorted(missing)}"


@pytest.mark.parametrize("modname, name", PUBLIC, ids=[f"{m}.{n}" for m, n in PUBLIC])
def test_public_name_has_docstring_and_is_in_api_md(modname, name):
    obj = getattr(importlib.import_module(modname), name)
    qual = f"{modname}.{name}"
    if _is_data(obj):
        assert re.search(re.escape(qual) + r"\b", API), \
            f"{qual} is public data: docs/api.md must name it in its text"
        return
    assert _has_own_docstring(obj), \
        f"{qual} (defined in {getattr(obj, '__module__', '?')}) has no docstring"
    assert id(obj) in DOCUMENTED, \
        f"{qual} is public but no autodoc directive in docs/api.md documents it"


DOCUMENTED = _documented_ids()


def test_the_check_notices_a_missing_entry():
    """The checks above can fail: a function api.md never names is not documented."""
    def not_in_the_docs():
        """A docstring, but no directive."""
    assert id(not_in_the_docs) not in DOCUMENTED
    assert _has_own_docstring(not_in_the_docs)
    assert not _has_own_docstring(lambda: None)
