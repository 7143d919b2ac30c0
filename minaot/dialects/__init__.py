"""The dialects of minaot's IR, built from the op registry.

* ``mt``   — the program as written: every registry op, views and in-place ops included;
* ``prim`` — pure ops only: no op aliases or mutates; high-level ops decomposed.

(``func`` lives in :mod:`minaot.ir.dialect`.)  Importing this package registers them.
"""

from .tensor_dialects import MT, PRIM, PRIM_OPS, TypeMeta, meta_of_type, type_of_meta  # noqa: F401
