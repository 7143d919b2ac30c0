"""viz: draw IR as Graphviz ``dot`` text (and SVG, when Graphviz is installed).

Printed IR reads top to bottom; a picture shows the data flow at a glance.
:func:`to_dot` turns any function, at any level of the pipeline, into the
source of a Graphviz drawing, as plain text, so nothing beyond minaot is
needed to produce it:

* every op is a node (``%7 = prim.add`` and its attributes; a constant shows
  its value);
* every *use* of a value is an edge from the node that defines it to the
  node that reads it, labelled with the value's type (``2x3xf32`` for
  ``tensor<2x3xf32>``; memrefs, scalars and ``index`` as printed);
* the function's arguments are input nodes (blue) and each returned value
  goes to an output node (green); at the loop level, where a kernel returns
  nothing and writes its results through ``memref.store``, an argument that
  is stored to is drawn as an output buffer (green) instead;
* an op with regions (``kernel.fused``, ``scf.for``, ``scf.parallel``) is a
  *cluster*, a box labelled with the op, holding its block arguments (small
  ellipses), its nested ops and its terminator: the op's operands flow into
  the block arguments they bind, and its results flow out of the terminator
  (``kernel.yield``, ``scf.yield``) that yields them.  With
  ``regions="collapse"`` the op is one node instead, listing the ops it
  holds, with an edge from each outside value its region reads.

For a partitioned pair, ``to_dot((fw, bw))`` draws the forward and the
backward side by side: each *saved* value is one highlighted (orange) node
between them, fed by the forward op that computes it and feeding the backward
ops that read it; backward ops that *recompute* a forward value (see
:func:`recomputed_ops`) are marked in red.

Every node and edge carries a ``class`` attribute (``input``, ``output``,
``op``, ``blockarg``, ``saved``, ``recomputed``; edges ``value``), which
Graphviz copies into SVG, so the drawing can be styled and tested.
:func:`to_svg` runs Graphviz's ``dot`` program on the text.

Example::

    >>> import minaot
    >>> from minaot.viz import to_dot
    >>> def f(x):
    ...     return x.sin() * x
    >>> print(to_dot(minaot.trace(f, minaot.randn(3))))
    digraph "f" {
      rankdir=TB;
      node [fontsize=10];
      edge [fontsize=9, fontcolor="#444444"];
      n0 [label="input 0: %0", shape=invhouse, style=filled, fillcolor="#dbeafe", class="input"];
      n1 [label="%1 = mt.sin", shape=box, style=rounded, class="op"];
      n2 [label="%2 = mt.mul", shape=box, style=rounded, class="op"];
      n3 [label="output 0", shape=house, style=filled, fillcolor="#dcfce7", class="output"];
      n0 -> n1 [label="3xf32", class="value"];
      n1 -> n2 [label="3xf32", class="value"];
      n0 -> n2 [label="3xf32", class="value"];
      n2 -> n3 [label="3xf32", class="value"];
    }

Rendered (``to_svg``, or ``dot -Tsvg``), ``%0`` feeds both the ``sin`` and
the ``mul``: two edges, one per use.
"""

from __future__ import annotations

import shutil
import subprocess

from .ir import Function, Operation, TensorType, parse
from .ir.dialect import is_pure
from .ir.printer import Printer, format_attr, format_attr_dict

INPUT_STYLE = 'shape=invhouse, style=filled, fillcolor="#dbeafe"'
OUTPUT_STYLE = 'shape=house, style=filled, fillcolor="#dcfce7"'
OP_STYLE = "shape=box, style=rounded"
CONST_STYLE = 'shape=plaintext, fontcolor="#555555"'
BLOCKARG_STYLE = 'shape=ellipse, style=dashed'
SAVED_STYLE = 'shape=box, style="filled,bold", fillcolor="#fed7aa", color="#c2410c", penwidth=2'
RECOMPUTED_STYLE = 'shape=box, style="rounded,filled", fillcolor="#fecaca", color="#b91c1c"'
MAX_ATTR_CHARS = 48


def _quote(text: str) -> str:
    """A dot string literal: quotes and backslashes escaped, newlines as ``\\n``."""
    text = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\n", "\\n") + '"'


def short_type(t) -> str:
    """The edge label of a value's type: ``2x3xf32`` for ``tensor<2x3xf32>``, others as printed."""
    if isinstance(t, TensorType):
        return str(t)[len("tensor<"):-1]
    return str(t)


def _is_constant(op) -> bool:
    return op.opname == "constant" and not op.operands


def _attr_text(op) -> str:
    attrs = dict(op.attributes)
    if _is_constant(op) and "value" in attrs:
        return format_attr(attrs["value"])
    if not attrs:
        return ""
    text = format_attr_dict(attrs)
    return text if len(text) <= MAX_ATTR_CHARS else text[:MAX_ATTR_CHARS - 4] + " ...}"


def _as_function(graph):
    if isinstance(graph, Function):
        return graph
    if isinstance(graph, str):
        return parse(graph)
    if isinstance(graph, Operation) and graph.name == "func.func":
        fn = Function(graph.attributes.get("sym_name", "fn"))
        fn.op = graph
        return fn
    inner = getattr(graph, "graph", None)               # a compiled callable keeping its graph
    if isinstance(inner, Function):
        return inner
    raise TypeError(f"to_dot draws a Function (or its text, or a (fw, bw) pair), "
                    f"got {type(graph).__name__}")


class _Dot:
    """Accumulates the lines of one ``digraph``: nodes, edges, clusters."""

    def __init__(self, regions, constants, attributes, edge_labels):
        if regions not in ("cluster", "collapse"):
            raise ValueError(f"regions must be 'cluster' or 'collapse', got {regions!r}")
        self.regions, self.constants = regions, constants
        self.attributes, self.edge_labels = attributes, edge_labels
        self.lines: list[str] = []
        self.edges: list[str] = []   # written last, outside every cluster (an edge statement
                                     # inside a cluster would pull both its nodes into it)
        self.indent = "  "
        self.count = 0
        self.src: dict = {}          # Value -> id of the node its edges start from
        self.op_nodes: dict = {}     # Operation -> its node id (terminators: where results leave)
        self.hidden: set = set()     # values of constants not drawn

    def new_id(self, prefix="n") -> str:
        self.count += 1
        return f"{prefix}{self.count - 1}"

    def node(self, label, style, cls, nid=None) -> str:
        nid = nid or self.new_id()
        self.lines.append(f"{self.indent}{nid} [label={_quote(label)}, {style}, class={_quote(cls)}];")
        return nid

    def edge(self, value, dst):
        if value in self.hidden:
            return
        src = self.src[value]
        label = f"label={_quote(short_type(value.type))}, " if self.edge_labels else ""
        self.edges.append(f"  {src} -> {dst} [{label}class=\"value\"];")

    def open_cluster(self, label, style):
        cid = self.new_id("cluster_")
        self.lines.append(f"{self.indent}subgraph {cid} {{")
        self.indent += "  "
        self.lines.append(f"{self.indent}label={_quote(label)}; {style};")

    def close_cluster(self):
        self.indent = self.indent[:-2]
        self.lines.append(f"{self.indent}}}")

    # ------------------------------------------------------------ one function
    def function(self, fn, names, *, bound=None, redirect=None, marked=(), output_label=None):
        """Draw ``fn``'s arguments, ops and outputs.

        ``bound``: arguments whose edges start at an existing node (the saved values);
        ``redirect``: result positions whose edges go to an existing node instead of a
        new output node; ``marked``: ops drawn as recomputed."""
        bound, redirect = bound or {}, redirect or {}
        stored = {op.operands[1] for op in fn.walk() if op.name == "memref.store"}
        for i, a in enumerate(fn.args):
            if a in bound:
                self.src[a] = bound[a]
                continue
            hint = f" ({a.name_hint})" if a.name_hint else ""
            if a in stored:
                self.src[a] = self.node(f"output buffer {i}: {names[a]}{hint}", OUTPUT_STYLE, "output")
            else:
                self.src[a] = self.node(f"input {i}: {names[a]}{hint}", INPUT_STYLE, "input")
        for op in fn.body.ops:
            if op.name == "func.return":
                for i, v in enumerate(op.operands):
                    if i in redirect:
                        self.edge(v, redirect[i])
                    else:
                        label = output_label(i) if output_label else f"output {i}"
                        self.edge(v, self.node(label, OUTPUT_STYLE, "output"))
            else:
                self.op(op, names, marked)

    def op(self, op, names, marked):
        if _is_constant(op) and not self.constants:
            self.hidden.update(op.results)
            return
        head = ", ".join(names[r] for r in op.results)
        head = f"{head} = {op.name}" if head else op.name
        attrs = _attr_text(op) if self.attributes else ""
        if op.regions and self.regions == "cluster":
            self.cluster(op, head, attrs, names, marked)
            return
        if op.regions:                                   # collapsed: one node for the whole op
            inner = [o.name for r in op.regions for b in r.blocks for o in b.ops]
            summary = ", ".join(dict.fromkeys(o.split(".", 1)[1] for o in inner))
            label = "\n".join(x for x in (head, attrs, f"[{len(inner)} ops: {summary}]") if x)
            nid = self.node(label, OP_STYLE, "op")
            reads = list(op.operands) + [v for v in _captured(op) if v not in op.operands]
            for v in reads:
                self.edge(v, nid)
        else:
            label = f"{head}\n{attrs}" if attrs else head
            if op in marked:
                nid = self.node(label + "\n(recomputed)", RECOMPUTED_STYLE, "recomputed")
            else:
                nid = self.node(label, CONST_STYLE if _is_constant(op) else OP_STYLE, "op")
            for v in op.operands:
                self.edge(v, nid)
        self.op_nodes[op] = nid
        for r in op.results:
            self.src[r] = nid

    def cluster(self, op, head, attrs, names, marked):
        self.open_cluster(f"{head} {attrs}".strip(), 'style="rounded,filled"; fillcolor="#f5f5f5"')
        blocks = [b for r in op.regions for b in r.blocks]
        single = len(blocks) == 1 and len(blocks[0].args) >= len(op.operands)
        term = blocks[0].ops[-1] if single and blocks[0].ops else None
        yields = term is not None and len(term.operands) == len(op.results)
        entry = None
        if not (single and yields):                      # no clean mapping: a head node
            entry = self.node(head, OP_STYLE, "op")
            for v in op.operands:
                self.edge(v, entry)
        for b in blocks:
            for a in b.args:
                self.src[a] = self.node(f"{names[a]}: {a.type}", BLOCKARG_STYLE, "blockarg")
        if entry is None:
            args = blocks[0].args
            for v, a in zip(op.operands, args[len(args) - len(op.operands):]):
                self.edge(v, self.src[a])
        for b in blocks:
            for inner in b.ops:
                self.op(inner, names, marked)
        for r in op.results:             # they flow out of the terminator that yields them
            self.src[r] = entry if entry is not None else self.op_nodes[term]
        self.close_cluster()

    def text(self, name, header=()) -> str:
        body = "\n".join(self.lines + self.edges)
        head = "\n".join(f"  {h}" for h in header)
        return f"digraph {_quote(name)} {{\n{head}\n{body}\n}}"


def _captured(op):
    """Values defined outside ``op`` that its regions read."""
    inside = set()
    for r in op.regions:
        for b in r.blocks:
            inside.update(b.args)
    reads = []
    for r in op.regions:
        for b in r.blocks:
            for inner in _walk_block(b):
                inside.update(inner.results)
                for blk in (bb for rr in inner.regions for bb in rr.blocks):
                    inside.update(blk.args)
    for r in op.regions:
        for b in r.blocks:
            for inner in _walk_block(b):
                for v in inner.operands:
                    if v not in inside and v not in reads:
                        reads.append(v)
    return reads


def _walk_block(block):
    for op in block.ops:
        yield op
        for r in op.regions:
            for b in r.blocks:
                yield from _walk_block(b)


def _names(fn) -> dict:
    p = Printer()
    p.function(fn.op, fn.result_types)
    return p.names


def _header(rankdir, label=None):
    lines = [f"rankdir={rankdir};", 'node [fontsize=10];', 'edge [fontsize=9, fontcolor="#444444"];']
    if label:
        lines.append(f"label={_quote(label)}; labelloc=t; fontsize=12;")
    return lines


# ---------------------------------------------------------------- the public functions
def recomputed_ops(fw, bw, num_saved=None) -> list:
    """The ops of ``bw`` that recompute a value the forward ``fw`` computes.

    A backward op counts if it is pure, reads no tangent, and matches a forward
    op: same name, attributes and result types, and operands that are the same
    values, matching the backward's saved arguments to the forward's saved
    results (the last ``num_saved``).  Constants are not counted (they cost
    nothing), as in the partitioner's report; for a pair straight from a
    partitioner the names equal ``fw.partition_report.recomputed``."""
    from .testing import _num_saved

    n = _num_saved(fw, bw) if num_saved is None else num_saved
    key_of = {a: ("arg", i) for i, a in enumerate(fw.args)}
    table = {}

    def key(op, tokens):
        operands = tuple(tokens.get(v) for v in op.operands)
        if op.regions or not is_pure(op) or None in operands:
            return None
        return (op.name, tuple(sorted(op.attributes.items())), operands,
                tuple(r.type for r in op.results))

    for op in fw.ops:
        k = key(op, key_of)
        if k is not None:
            token = table.setdefault(k, len(table))
            for j, r in enumerate(op.results):
                key_of[r] = ("op", token, j)
    saved_out = list(fw.results)[len(fw.results) - n:] if n else []
    tokens = {a: key_of.get(v) for a, v in zip(bw.args[:n], saved_out)}
    found = []
    for op in bw.ops:
        k = key(op, tokens)
        if k is not None and k in table:
            for j, r in enumerate(op.results):
                tokens[r] = ("op", table[k], j)
            if not _is_constant(op):
                found.append(op)
    return found


def _describe_saved(v, fn) -> str:
    if v.is_block_arg:
        return v.name_hint or f"arg{fn.args.index(v)}"
    return v.owner.name


def _pair_to_dot(fw, bw, num_saved, rankdir, opts):
    from .testing import _num_saved

    n = _num_saved(fw, bw) if num_saved is None else num_saved
    saved_out = list(fw.results)[len(fw.results) - n:] if n else []
    recomputed = recomputed_ops(fw, bw, n)
    nbytes = sum(v.type.nbytes for v in saved_out)
    title = (f"@{fw.name} | @{bw.name}: {n} saved values, {nbytes} bytes; "
             f"{len(recomputed)} ops recomputed in the backward")
    d = _Dot(**opts)
    fw_names, bw_names = _names(fw), _names(bw)
    saved_nodes = []
    d.open_cluster("saved for the backward", 'style="dashed,rounded"; color="#c2410c"')
    for i, (v, a) in enumerate(zip(saved_out, bw.args[:n])):
        label = (f"saved {i}: {_describe_saved(v, fw)}\n{v.type}, {v.type.nbytes} bytes\n"
                 f"(fw {fw_names[v]}, bw {bw_names[a]})")
        saved_nodes.append(d.node(label, SAVED_STYLE, "saved"))
    d.close_cluster()
    first_saved = len(fw.results) - n
    d.open_cluster(f"forward @{fw.name}", 'style=rounded; color="#1d4ed8"')
    d.function(fw, fw_names, redirect={first_saved + i: s for i, s in enumerate(saved_nodes)})
    d.close_cluster()
    d.open_cluster(f"backward @{bw.name}", 'style=rounded; color="#15803d"')
    d.function(bw, bw_names, bound=dict(zip(bw.args[:n], saved_nodes)), marked=set(recomputed),
               output_label=lambda i: f"output {i} (gradient)")
    d.close_cluster()
    return d.text(f"{fw.name} + {bw.name}", _header(rankdir, title))


def to_dot(graph, *, regions="cluster", constants=True, attributes=True, edge_labels=True,
           rankdir="TB", title=None, num_saved=None) -> str:
    """Graphviz ``dot`` source that draws ``graph``.

    ``graph`` is a :class:`~minaot.ir.Function` at any level (``mt``, ``prim``,
    ``kernel``, loop), its printed text, a compiled callable with a ``graph``
    attribute, or a partitioned pair ``(fw, bw)``.  Options: ``regions``
    (``"cluster"``: a region op is a box holding its ops; ``"collapse"``: one
    node), ``constants`` (``False`` leaves constant ops and their edges out),
    ``attributes`` (op attributes in the node labels), ``edge_labels`` (types on
    the edges), ``rankdir`` (``"TB"`` top to bottom, ``"LR"`` left to right),
    ``title``, and for a pair ``num_saved`` (default: the graphs' ``num_saved``).

    Nodes: one per function argument (``class="input"``; ``"output"`` for a
    loop-level buffer that is stored to), one per op without regions
    (``"op"``, or ``"recomputed"``), one per block argument of a region
    (``"blockarg"``), one per returned value (``"output"``; a pair's saved
    values are one ``"saved"`` node each instead).  Edges: one per use of a
    value (``class="value"``), a region op's operands going to the block
    arguments they bind.  See the module docstring for a picture of the rules.
    """
    opts = dict(regions=regions, constants=constants, attributes=attributes,
                edge_labels=edge_labels)
    if isinstance(graph, (tuple, list)):
        if len(graph) != 2:
            raise TypeError(f"to_dot draws one function or a (fw, bw) pair, got {len(graph)} items")
        fw, bw = (_as_function(g) for g in graph)
        return _pair_to_dot(fw, bw, num_saved, rankdir, opts)
    fn = _as_function(graph)
    d = _Dot(**opts)
    d.function(fn, _names(fn))
    return d.text(fn.name, _header(rankdir, title))


class SVG(str):
    """SVG text that Jupyter and sphinx-gallery show as a picture (``_repr_svg_``/``_repr_html_``)."""

    def _repr_svg_(self):
        return str(self)

    def _repr_html_(self):
        """The ``<svg>`` element alone (no XML prolog), scaled down to the page's width."""
        text = str(self)
        if "<svg" not in text:
            return text
        text = text[text.find("<svg"):]
        return text.replace("<svg", '<svg style="max-width:100%; height:auto"', 1)


def to_svg(graph, **kwargs) -> SVG:
    """Render ``graph`` (anything :func:`to_dot` takes, or dot text) to SVG with Graphviz's ``dot``.

    Needs the ``dot`` program on the ``PATH`` (Debian/Ubuntu: ``apt-get install
    graphviz``; macOS: ``brew install graphviz``; conda: ``conda install
    graphviz``).  Without it, :func:`to_dot`'s text still works: save it as a
    ``.dot`` file and open it in any Graphviz viewer."""
    text = graph if isinstance(graph, str) and graph.lstrip().startswith("digraph") \
        else to_dot(graph, **kwargs)
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(
            "to_svg needs Graphviz's `dot` program, which is not on the PATH; install Graphviz "
            "(apt-get install graphviz, brew install graphviz or conda install graphviz), or use "
            "to_dot() and render its text elsewhere")
    proc = subprocess.run([dot, "-Tsvg"], input=text, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dot failed (exit code {proc.returncode}): {proc.stderr.strip()}")
    return SVG(proc.stdout)
