"""Passes and the PassManager that runs them.

A `Pass` is an object with a `name` and a `run(fn)` method that changes the
function in place, and a `stats` dict of counters (`"dce.erased": 3`).
Passes register themselves by name (`register_pass`), so a pipeline can be
written as text: `parse_pipeline("canonicalize,cse,dce")`, with options as
`fuse{max-ops=64}`.

The PassManager runs passes in order and does the bookkeeping that makes a
compiler debuggable (the same features as `mlir-opt`):

- verify the IR after every pass (`verify_each`), so a broken pass is caught
  right where it broke the IR, not three passes later;
- print the IR after every pass (`print_after_all`, or `MINAOT_PRINT_IR=1`),
  or only after the passes that changed it (`print_after_change`);
- time each pass and merge the passes' statistics (`report()`, or
  `MINAOT_PRINT_STATS=1`);
- on failure, raise PassError naming the pass and keep a *reproducer*: the
  IR just before the failing pass plus the pipeline, as text that parses
  (and, with `reproducer_dir`, a file `<pass>.mir`).
"""

from __future__ import annotations

import importlib
import os
import sys
import time

from .core import Function
from .dialect import verify


class Pass:
    """Base class of passes: set `name`, implement `run(fn)`, count things in `stats`."""

    name = "unnamed-pass"

    def __init__(self):
        self.stats: dict[str, int] = {}

    def run(self, fn: Function) -> None:
        raise NotImplementedError

    def count(self, key: str, n: int = 1) -> None:
        """Add n to the statistic `<pass name>.<key>`."""
        k = f"{self.name}.{key}"
        self.stats[k] = self.stats.get(k, 0) + n


class PassError(Exception):
    """A pass failed (raised or broke the IR); names the pass and carries the reproducer."""

    def __init__(self, message: str, pass_name: str):
        super().__init__(message)
        self.pass_name = pass_name


# --- registry and textual pipelines ------------------------------------------------

_PASSES: dict[str, type] = {}


def register_pass(cls: type) -> type:
    """Class decorator: make a :class:`Pass` subclass nameable in pipelines by its ``name``."""
    _PASSES[cls.name] = cls
    return cls


def get_pass(name: str, **options) -> Pass:
    """A new instance of the pass registered as `name`.

    Passes live in `minaot/passes/<name with - as _>.py`; if the name is not
    registered yet, that module is imported (which registers it)."""
    if name not in _PASSES:
        importlib.import_module("minaot.passes")
    if name not in _PASSES:
        module = "minaot.passes." + name.replace("-", "_")
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
    if name not in _PASSES:
        raise KeyError(f"unknown pass {name!r}; registered: {', '.join(sorted(_PASSES))}")
    return _PASSES[name](**options)


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside {...}."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "{") - (ch == "}")
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _option_value(text: str):
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)


def parse_pipeline(text: str) -> list[Pass]:
    """`"canonicalize,cse,fuse{max-ops=64}"` -> [Canonicalize(), CSE(), Fuse(max_ops=64)]."""
    passes = []
    for item in _split_top_level(text):
        name, options = item, {}
        if "{" in item:
            if not item.endswith("}"):
                raise ValueError(f"bad pipeline element {item!r}")
            name, body = item[:-1].split("{", 1)
            for opt in _split_top_level(body):
                key, _, value = opt.partition("=")
                options[key.strip().replace("-", "_")] = _option_value(value.strip()) if value else True
        passes.append(get_pass(name.strip(), **options))
    return passes


# --- the pass manager ------------------------------------------------------------------

def _env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


class PassManager:
    """Runs passes in order on a function, like ``mlir-opt``.

    ``passes`` is a list of :class:`Pass` objects or names, or a textual pipeline
    (``"canonicalize,cse,dce"``).  ``verify_each`` verifies after every pass;
    ``print_after_all`` (or ``MINAOT_PRINT_IR=1``) prints the IR after each pass,
    ``print_after_change`` only when a pass changed it; ``report()`` gives the
    per-pass times and statistics.  A failing pass raises :class:`PassError` with a
    reproducer (the IR before the pass and the rest of the pipeline), also written
    to ``reproducer_dir`` if given."""

    def __init__(self, passes, verify_each: bool = True, print_after_all: bool = False,
                 print_after_change: bool = False, reproducer_dir: str | None = None):
        if isinstance(passes, str):
            passes = parse_pipeline(passes)
        self.passes = [get_pass(p) if isinstance(p, str) else p for p in passes]
        self.verify_each = verify_each
        self.print_after_all = print_after_all
        self.print_after_change = print_after_change
        self.reproducer_dir = reproducer_dir
        self.timings: list[tuple[str, float]] = []
        self.verify_seconds = 0.0
        self.stats: dict[str, int] = {}
        self.last_reproducer: str | None = None
        self.last_reproducer_path: str | None = None

    @property
    def pipeline(self) -> str:
        return ",".join(p.name for p in self.passes)

    def _verify(self, fn: Function) -> None:
        t0 = time.perf_counter()
        verify(fn)
        self.verify_seconds += time.perf_counter() - t0

    def run(self, fn: Function) -> Function:
        print_all = self.print_after_all or _env_flag("MINAOT_PRINT_IR")
        if self.verify_each:
            try:
                self._verify(fn)
            except Exception as e:
                raise PassError(f"the input of pipeline '{self.pipeline}' does not verify: {e}",
                                "<input>") from e
        for i, p in enumerate(self.passes):
            before = fn.format(debuginfo=True)
            p.stats = {}
            t0 = time.perf_counter()
            ran = False
            try:
                p.run(fn)
                ran = True
                self.timings.append((p.name, time.perf_counter() - t0))
                if self.verify_each:
                    self._verify(fn)
            except Exception as e:
                what = "produced IR that does not verify" if ran else "failed"
                raise self._failure(p, i, before, e, what) from e
            for k, v in p.stats.items():
                self.stats[k] = self.stats.get(k, 0) + v
            if print_all or self.print_after_change:
                after = fn.format(debuginfo=True)
                if print_all or after != before:
                    print(f"// ----- IR after {p.name} -----\n{fn.format()}\n", file=sys.stdout)
        if _env_flag("MINAOT_PRINT_STATS"):
            print(self.report(), file=sys.stdout)
        return fn

    def _failure(self, p: Pass, i: int, before: str, error: Exception, what: str) -> PassError:
        first_line = f"{type(error).__name__}: {error}".splitlines()[0]
        remaining = ",".join(q.name for q in self.passes[i:])
        self.last_reproducer = (
            f"// minaot reproducer: pass '{p.name}' {what}\n"
            f"// error: {first_line}\n"
            f"// pipeline: {remaining}\n"
            f"// full pipeline: {self.pipeline}\n"
            f"{before}\n"
        )
        message = f"pass '{p.name}' {what}: {type(error).__name__}: {error}"
        if self.reproducer_dir is not None:
            os.makedirs(self.reproducer_dir, exist_ok=True)
            path = os.path.join(self.reproducer_dir, f"{p.name}.mir")
            with open(path, "w") as f:
                f.write(self.last_reproducer)
            self.last_reproducer_path = path
            message += f"\nreproducer written to {path}"
        return PassError(message, p.name)

    def report(self) -> str:
        """A table of pass times and statistics."""
        rows = [(name, f"{sec * 1e3:.3f}") for name, sec in self.timings]
        if self.verify_each:
            rows.append(("(verify)", f"{self.verify_seconds * 1e3:.3f}"))
        total = sum(sec for _, sec in self.timings) + self.verify_seconds
        rows.append(("total", f"{total * 1e3:.3f}"))
        width = max([len(r[0]) for r in rows] + [len(k) for k in self.stats] + [10])
        lines = [f"{'pass':<{width}}  time (ms)"]
        lines += [f"{name:<{width}}  {t:>9}" for name, t in rows]
        if self.stats:
            lines += ["", f"{'statistic':<{width}}  {'value':>9}"]
            lines += [f"{k:<{width}}  {self.stats[k]:>9}" for k in sorted(self.stats)]
        return "\n".join(lines)
