"""functionalize: a traced ``mt`` program with views and in-place ops -> a pure graph
plus the metadata the runtime needs to keep eager semantics.

The idea (PyTorch's functionalization, in miniature).  Every ``mt`` value
belongs to a *base*: a graph argument or the result of a non-view op.  A view
is remembered as its base plus the chain of view ops that made it; it emits
nothing where it was written.  For each base the pass keeps the *current*
functional value and a version number.

* Reading a value replays its view chain on the current value of its base
  (``prim.slice``, ``prim.transpose`` ...), cached until the base changes, so a
  read after a mutation through any alias sees the mutation.
* An in-place op ``x.op_(y)`` emits its pure twin ``op(x, y)``; the new value is
  written back into the base by walking the view chain outwards with the
  scatter op of each step (``prim.slice_scatter``, ``prim.select_scatter``; a
  transpose, permute or reshape is inverted), and the base's version goes up.
* A metadata op (``t_``, ``unsqueeze_``) only extends the tensor's view chain.
* ``detach`` is a view like the others (an alias that stops gradients): reads
  replay it, and a write through it lands in the base unchanged.
* A write autograd does not see (under ``no_grad`` or through a detached
  alias) keeps the base's history, as in eager: the new base value is wrapped
  as ``straight_through(new, old)``, whose gradient goes to the value before
  the write and nothing to what was written.

Afterwards no op mutates or aliases.  The graph returns, first, the new value
of every graph input whose data was mutated (the runtime copies it into the
caller's tensor), then the values the user outputs need.  Outputs that alias an
input are not returned at all: the runtime rebuilds them as real views of the
caller's tensor by replaying their view chain; outputs that alias each other
share one returned base.  Input metadata mutations are replayed the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..dialects import PRIM_OPS, meta_of_type, type_of_meta
from ..ir import Builder, Function, Pass
from ..ops.registry import get_op


class FunctionalizeError(Exception):
    """A mutation that cannot be expressed functionally."""


@dataclass
class InputInfo:
    mutates_data: bool = False
    mutates_metadata: bool = False
    meta_chain: tuple = ()          # view ops to replay on the caller's tensor afterwards
    graph_output: int | None = None  # which graph output holds the new data
    # every write happened under no_grad or through a detached alias: the runtime copies
    # the new data in without autograd (PyTorch's mutations_hidden_from_autograd), so a
    # leaf that requires grad may be updated (a hand-written optimizer step)
    mutations_hidden_from_autograd: bool = False
    # a metadata op (``t_``) ran on a view of this input: no data changed, but eager
    # bumps the version counter the input shares with its views
    bumps_version: bool = False


@dataclass
class OutputInfo:
    kind: str                        # non_alias | is_input | alias_of_input | alias_of_output
    index: int | None = None         # graph output (non_alias / alias_of_output) or input index
    chain: tuple = ()                # view ops (name, attrs) from the base to the output


@dataclass
class ViewAndMutationMeta:
    """What the runtime epilogue needs (PyTorch's ViewAndMutationMeta)."""

    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    num_mutated_inputs: int = 0

    def __str__(self):
        lines = []
        for i, info in enumerate(self.inputs):
            flags = [n for n, on in (("data", info.mutates_data), ("metadata", info.mutates_metadata)) if on]
            lines.append(f"input {i}: {'mutated ' + '+'.join(flags) if flags else 'not mutated'}"
                         + (f" (replay {_chain_str(info.meta_chain)})" if info.meta_chain else ""))
        for i, out in enumerate(self.outputs):
            where = "" if out.index is None else f" {out.index}"
            lines.append(f"output {i}: {out.kind}{where}" + (f" via {_chain_str(out.chain)}" if out.chain else ""))
        return "\n".join(lines)


def _chain_str(chain):
    return " -> ".join(name for name, _ in chain)


def emit_name(opname: str) -> str:
    """The dialect a pure op lands in: ``prim`` if it is a prim op, else ``mt`` (decomposed later)."""
    return f"prim.{opname}" if opname in PRIM_OPS else f"mt.{opname}"


def _result_types(opdef, values, attrs):
    m = opdef.meta(*[meta_of_type(v.type) for v in values], **attrs)
    return [type_of_meta(x) for x in (m if opdef.num_outputs > 1 else (m,))]


class _Functionalizer:
    def __init__(self, fn: Function):
        self.fn = fn
        self.out = Function(fn.name, [a.type for a in fn.args])
        self.b = Builder.at_end(self.out.body)
        self.base = {}      # mt value -> its base (mt value)
        self.chain = {}     # mt value -> ((op name, attrs, loc), ...)
        self.cur = {}       # base -> current functional value
        self.version = {}   # base -> number of writes so far
        self.cache = {}     # mt value -> (version, functional value)
        self.seen_writes = set()    # bases written by an in-place op autograd sees
        self.hidden = getattr(fn, "no_grad_writes", set())
        self.meta_written = set()   # bases a metadata op (t_, ...) ran on, or on a view of
        for a, na in zip(fn.args, self.out.args):
            self._new_base(a, na)

    def _new_base(self, v, value):
        self.base[v], self.chain[v] = v, ()
        self.cur[v], self.version[v] = value, 0

    def emit(self, opname, operands, attrs, loc):
        opdef = get_op(opname)
        types = _result_types(opdef, operands, attrs)
        return self.b.create(emit_name(opname), operands, types, dict(attrs), loc=loc).result

    def read(self, v):
        """The functional value of mt value ``v`` now.

        A base (empty chain) is its current value ``self.cur[base]``; a view replays its
        chain of ``(op name, attrs, loc)`` steps on that value with :meth:`emit`.  The
        replayed value is cached in ``self.cache[v]`` together with the base's version,
        and reused while ``self.version[base]`` has not changed (no write since)."""
        # BEGIN TASK 4.1: read a value: replay its view chain on its base's current value
        base, chain = self.base[v], self.chain[v]
        if not chain:
            return self.cur[base]
        hit = self.cache.get(v)
        if hit is not None and hit[0] == self.version[base]:
            return hit[1]
        value = self.cur[base]
        for name, attrs, loc in chain:
            value = self.emit(name, [value], attrs, loc)
        self.cache[v] = (self.version[base], value)
        return value
        # END TASK 4.1

    def write(self, base, chain, src, loc):
        """Make ``src`` the new contents of the region ``chain`` of ``base``.

        Replay the chain's prefixes on the base's current value (the value each step
        viewed), then walk the chain backwards: each step puts the new value of its
        region into its parent (:meth:`_scatter_step`), until the base itself has a new
        value.  Store it as ``self.cur[base]`` and bump ``self.version[base]``."""
        # BEGIN TASK 4.2: write a value back into its base through the view chain
        parents = [self.cur[base]]
        for name, attrs, vloc in chain[:-1]:
            parents.append(self.emit(name, [parents[-1]], attrs, vloc))
        new = src
        for (name, attrs, _), parent in reversed(list(zip(chain, parents))):
            new = self._scatter_step(name, attrs, parent, new, loc)
        self.cur[base] = new
        self.version[base] += 1
        # END TASK 4.2

    def _scatter_step(self, name, attrs, parent, src, loc):
        """The new value of ``parent`` after its view ``name(parent, **attrs)`` became
        ``src``: ``slice``/``select`` scatter ``src`` into ``parent``
        (``slice_scatter``/``select_scatter`` with the same attributes); a transpose or
        permute is undone by its inverse; ``reshape``, ``unsqueeze``, ``squeeze`` and
        ``expand`` reshape back (an expanded view, with fewer elements than it shows,
        cannot be written back: :class:`FunctionalizeError`); ``detach`` is the whole
        parent."""
        # BEGIN TASK 4.2
        if name == "detach":                 # an alias of the whole parent
            return src
        if name in ("slice", "select"):
            return self.emit(f"{name}_scatter", [parent, src], attrs, loc)
        if name == "transpose":
            return self.emit("transpose", [src], attrs, loc)
        if name == "permute":
            inv = [0] * len(attrs["dims"])
            for i, d in enumerate(attrs["dims"]):
                inv[d] = i
            return self.emit("permute", [src], {"dims": tuple(inv)}, loc)
        if name in ("reshape", "unsqueeze", "squeeze", "expand"):
            if parent.type.numel != src.type.numel:
                raise FunctionalizeError(
                    f"in-place write through an expanded view (shape {src.type.shape} over "
                    f"{parent.type.shape}) cannot be written back to its base")
            return self.emit("reshape", [src], {"shape": tuple(parent.type.shape)}, loc)
        raise FunctionalizeError(f"cannot write back through view op {name}")
        # END TASK 4.2

    def run(self):
        for op in self.fn.ops:
            opdef = get_op(op.opname)
            attrs = dict(op.attributes)
            if opdef.kind == "view":
                src = op.operands[0]
                r = op.result
                self.base[r] = self.base[src]
                self.chain[r] = self.chain[src] + ((opdef.name, attrs, op.loc),)
            elif opdef.kind == "inplace":
                try:
                    self._inplace(op, opdef, attrs)
                except FunctionalizeError as exc:       # name the op and the user's line
                    raise _located(exc, op) from None
            else:
                values = [self.read(v) for v in op.operands]
                types = _result_types(opdef, values, attrs)
                new = self.b.create(emit_name(opdef.name), values, types, attrs, loc=op.loc)
                for r, nv in zip(op.results, new.results):
                    self._new_base(r, nv)
        return self._finish()

    def _inplace(self, op, opdef, attrs):
        target, r = op.operands[0], op.result
        pure = get_op(opdef.pure)
        base = self.base[target]
        if pure.kind == "view":                      # t_, unsqueeze_, ...: metadata only
            self.meta_written.add(base)
            self.base[r] = base
            self.chain[r] = self.chain[target] + ((pure.name, attrs, op.loc),)
            return
        values = [self.read(v) for v in op.operands]
        new = self.emit(pure.name, values, attrs, op.loc)
        if new.type.dtype != target.type.dtype:
            new = self.emit("to", [new], {"dtype": _dtype_name(target.type.dtype)}, op.loc)
        old = self.cur[base]
        self.write(base, self.chain[target], new, op.loc)
        self.base[r], self.chain[r] = base, self.chain[target]
        if op in self.hidden or _has_detach(self.chain[target]):
            # A write autograd does not see (under no_grad, or through
            # ``x.detach()``) changes the data of the base, not its history:
            # eager passes the base's gradient straight to its value before the
            # write.  ``straight_through(new, old)`` says exactly that.
            self.cur[base] = self.emit("straight_through", [self.cur[base], old], {}, op.loc)
            return
        self.seen_writes.add(base)
        if self.chain[target]:
            self.cache[r] = self.cache[target] = (self.version[base], new)

    def _finish(self):
        meta = ViewAndMutationMeta()
        graph_outputs = []
        final = getattr(self.fn, "trace_info", None)
        finals = final.final_values if final is not None else list(self.fn.args)
        arg_index = {a: i for i, a in enumerate(self.fn.args)}
        for i, a in enumerate(self.fn.args):
            info = InputInfo()
            if self.version[a] > 0:
                info.mutates_data = True
                info.mutations_hidden_from_autograd = a not in self.seen_writes
                info.graph_output = len(graph_outputs)
                graph_outputs.append(self.cur[a])
            fv = finals[i]
            if self.base[fv] is a and self.chain[fv]:
                info.mutates_metadata = True
                info.meta_chain = tuple((n, at) for n, at, _ in self.chain[fv])
            info.bumps_version = a in self.meta_written
            meta.inputs.append(info)
        meta.num_mutated_inputs = len(graph_outputs)
        results = list(self.fn.results)
        by_base = {}
        for r in results:
            by_base.setdefault(self.base[r], []).append(r)
        base_output = {}
        for r in results:
            base, chain = self.base[r], tuple((n, at) for n, at, _ in self.chain[r])
            if base in arg_index:
                i = arg_index[base]
                fv = finals[i]
                if self.base[fv] is base and self.chain[fv] == self.chain[r]:
                    meta.outputs.append(OutputInfo("is_input", i))
                else:
                    meta.outputs.append(OutputInfo("alias_of_input", i, chain))
            elif len(by_base[base]) == 1:
                meta.outputs.append(OutputInfo("non_alias", len(graph_outputs)))
                graph_outputs.append(self.read(r))
            else:
                if base not in base_output:
                    base_output[base] = len(graph_outputs)
                    graph_outputs.append(self.cur[base])
                meta.outputs.append(OutputInfo("alias_of_output", base_output[base], chain))
        self.out.set_results(graph_outputs)
        return self.out, meta


def _has_detach(chain) -> bool:
    return any(name == "detach" for name, _, _ in chain)


def _dtype_name(ir_dtype):
    from ..dtypes import from_ir
    return from_ir(ir_dtype).name


def _located(exc: FunctionalizeError, op) -> FunctionalizeError:
    """``exc`` with the in-place op's name, shapes and the user's source line added."""
    from .._errors import format_location
    text = str(exc)
    shapes = ", ".join(str(v.type) for v in op.operands)
    text = f"{op.opname}({shapes}): {text}"
    if op.loc is not None:
        text += f"\n  at {format_location((op.loc.file, op.loc.line))}"
    return FunctionalizeError(text)


def functionalize(fn: Function):
    """Return ``(pure_function, ViewAndMutationMeta)`` for a traced ``mt`` function."""
    from .dce import DCE
    out, meta = _Functionalizer(fn).run()
    DCE().run(out)
    return out, meta


class Functionalize(Pass):
    """The pass-manager form: replaces the function's body; the metadata is kept in ``self.meta``."""

    name = "functionalize"

    def run(self, fn):
        out, self.meta = functionalize(fn)
        _replace_body(fn, out)
        self.count("functionalize.mutations", sum(i.mutates_data for i in self.meta.inputs))


def _replace_body(fn: Function, new: Function):
    """Move ``new``'s body into ``fn`` (same arguments), keeping the object identity."""
    mapping = dict(zip(new.args, fn.args))
    for op in list(fn.body.ops):
        op.erase(force=True)
    for op in list(new.body.ops):
        if op.name == "func.return":
            continue
        clone = op.clone(mapping)
        fn.body.append(clone)
        for a, b in zip(op.results, clone.results):
            mapping[a] = b
    fn.set_results([mapping.get(v, v) for v in new.results])
