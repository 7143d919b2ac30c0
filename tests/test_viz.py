"""minaot.viz: the dot text is read back and checked against the IR it draws.

Oracles: the IR itself (one node per op, argument, block argument and returned value;
one edge per use of a value, labelled with its type, between the right nodes), the
partitioner's report (the highlighted saved values are exactly its saved values, the
marked ops its recomputed ops), and Graphviz's own ``dot`` program, which must accept
every drawing without a warning when it is installed.
"""

from __future__ import annotations

import doctest
import re
import shutil
import subprocess
from collections import Counter

import pytest

import minaot
import minaot.nn.functional as F
import minaot.viz
from minaot import default_partition, min_cut_rematerialization_partition
from minaot.ir import walk
from minaot.ir.printer import Printer
from minaot.viz import SVG, recomputed_ops, short_type, to_dot, to_svg

pytestmark = pytest.mark.joint

NODE = re.compile(r'^\s*(n\d+) \[label="((?:[^"\\]|\\.)*)", (.*), class="(\w+)"\];$')
EDGE = re.compile(r'^\s*(n\d+) -> (n\d+) \[(?:label="((?:[^"\\]|\\.)*)", )?class="value"\];$')
CLUSTER = re.compile(r"^\s*subgraph (cluster_\d+) \{$")


def parse_dot(text):
    """Nodes {id: (label, class)}, edges [(src, dst, label)], cluster ids; every line accounted for."""
    nodes, edges, clusters = {}, [], []
    for line in text.splitlines():
        if m := NODE.match(line):
            nodes[m.group(1)] = (m.group(2).replace("\\n", "\n").replace('\\"', '"'), m.group(4))
        elif m := EDGE.match(line):
            edges.append((m.group(1), m.group(2), m.group(3)))
        elif m := CLUSTER.match(line):
            clusters.append(m.group(1))
        else:
            assert re.match(r'^\s*(digraph ".*" \{|\}|rankdir=\w+;|node \[.*\];|edge \[.*\];|label=.*;)$',
                            line), f"unexpected dot line: {line!r}"
    assert all(s in nodes and d in nodes for s, d, _ in edges), "an edge to an undeclared node"
    return nodes, edges, clusters


def by_class(nodes):
    return Counter(cls for _, cls in nodes.values())


def names(fn):
    p = Printer()
    p.function(fn.op, fn.result_types)
    return p.names


# ---------------------------------------------------------------- graphs at every level
def mlp(x, w1, b1, w2):
    return (F.gelu(x @ w1 + b1) @ w2).pow(2).mean()


def mlp_args(batch=2, sizes=(4, 3, 1)):
    return (minaot.randn(batch, sizes[0]), minaot.randn(sizes[0], sizes[1], requires_grad=True),
            minaot.randn(sizes[1], requires_grad=True), minaot.randn(sizes[1], sizes[2], requires_grad=True))


def _kernel_program():
    programs = []

    def keep(graph, example_inputs):
        programs.append(minaot.numba_compiler(graph, example_inputs))
        return programs[-1]

    def f(x, w, w2):
        return (F.gelu(x @ w) @ w2).softmax(dim=1)      # two kernels around a library matmul

    minaot.aot_function(f, fw_compiler=keep)(minaot.randn(4, 8), minaot.randn(8, 3), minaot.randn(3, 5))
    return programs[0]


@pytest.fixture(scope="module")
def levels():
    joint = minaot.export_joint(mlp, *mlp_args())
    program = _kernel_program()
    loops = [k.loop for k in program.kernels.values()]
    return {
        "mt": minaot.trace(mlp, *mlp_args()),
        "prim_joint": joint,
        "kernel": program.graph,
        **{f"loop_{i}": fn for i, fn in enumerate(loops)},
    }


def expected_counts(fn):
    ops = [op for op in walk(fn) if op.name != "func.return"]
    stored = {op.operands[1] for op in ops if op.name == "memref.store"}
    return {
        "input": sum(1 for a in fn.args if a not in stored),
        "output": len(fn.results) + sum(1 for a in fn.args if a in stored),
        "op": sum(1 for op in ops if not op.regions),
        "blockarg": sum(len(b.args) for op in ops for r in op.regions for b in r.blocks),
        "edges": sum(len(op.operands) for op in walk(fn)),
        "clusters": sum(1 for op in ops if op.regions),
    }


@pytest.mark.parametrize("level", ["mt", "prim_joint", "kernel", "loop_0", "loop_1"])
def test_one_node_per_op_and_one_edge_per_use(levels, level):
    fn = levels[level]
    nodes, edges, clusters = parse_dot(to_dot(fn))
    want = expected_counts(fn)
    got = by_class(nodes)
    for cls in ("input", "output", "op", "blockarg"):
        assert got[cls] == want[cls], (cls, got, want)
    assert len(nodes) == sum(want[c] for c in ("input", "output", "op", "blockarg"))
    assert len(edges) == want["edges"]
    assert len(clusters) == want["clusters"]
    if level.startswith("loop") or level == "kernel":
        assert want["clusters"] >= 1 and want["blockarg"] >= 1
    # every edge is labelled with the type of the value it carries
    assert Counter(label for _, _, label in edges) == \
        Counter(short_type(v.type) for op in walk(fn) for v in op.operands)


@pytest.mark.parametrize("level", ["mt", "prim_joint"])
def test_edges_connect_the_definition_to_each_use(levels, level):
    fn = levels[level]
    nm = names(fn)
    nodes, edges, _ = parse_dot(to_dot(fn))

    def node_key(nid):
        label, cls = nodes[nid]
        if cls == "input":
            return re.match(r"input \d+: (%\d+)", label).group(1)
        if cls == "output":
            return label
        return label.split(" = ")[0]          # the op's result names, "%7"

    got = Counter((node_key(s), node_key(d)) for s, d, _ in edges)
    want = Counter()
    for op in fn.ops:
        for v in op.operands:
            want[(nm[v], ", ".join(nm[r] for r in op.results))] += 1
    for i, v in enumerate(fn.results):
        want[(nm[v], f"output {i}")] += 1
    assert got == want


def test_region_operands_bind_block_arguments_and_results_leave_the_terminator(levels):
    fn = levels["kernel"]
    nm = names(fn)
    nodes, edges, clusters = parse_dot(to_dot(fn))
    by_label = {label.split("\n")[0].split(" = ")[0].split(":")[0]: nid
                for nid, (label, cls) in nodes.items()}
    yields = [nid for nid, (label, _) in nodes.items() if label == "kernel.yield"]
    fused = [op for op in fn.ops if op.name == "kernel.fused"]
    assert len(yields) == len(fused) == len(clusters) == 2
    for op, y in zip(fused, yields):
        args = op.regions[0].block.args
        for v, a in zip(op.operands, args):
            src = by_label.get(nm[v]) or by_label[f"input {fn.args.index(v)}"]
            assert (src, by_label[nm[a]]) in {(s, d) for s, d, _ in edges}
        assert sum(1 for s, _, _ in edges if s == y) == sum(len(r.uses) for r in op.results)


def test_collapsed_regions_are_one_node(levels):
    fn = levels["kernel"]
    nodes, edges, clusters = parse_dot(to_dot(fn, regions="collapse"))
    assert not clusters and by_class(nodes)["blockarg"] == 0
    assert by_class(nodes)["op"] == len(fn.ops)
    assert len(edges) == sum(len(op.operands) for op in fn.body.ops)
    fused = [label for label, cls in nodes.values() if "kernel.fused" in label]
    assert fused and all(re.search(r"\[\d+ ops: .*\]", label) for label in fused)
    # a loop nest collapsed: one node, fed by the buffers and the hoisted constants it reads
    loop = levels["loop_0"]
    nodes, edges, _ = parse_dot(to_dot(loop, regions="collapse"))
    top = [op for op in loop.ops]
    nest = [op for op in top if op.regions]
    assert by_class(nodes)["op"] == len(top)
    outside = {v for v in loop.args} | {r for op in top for r in op.results}
    reads = {v for op in nest for inner in walk(op) for v in inner.operands if v in outside}
    assert len(edges) == len(reads) + sum(len(op.operands) for op in top)


def test_hidden_constants(levels):
    fn = levels["prim_joint"]
    consts = [op for op in fn.ops if op.opname == "constant"]
    assert consts
    full = parse_dot(to_dot(fn))
    bare = parse_dot(to_dot(fn, constants=False))
    assert by_class(full[0])["op"] - by_class(bare[0])["op"] == len(consts)
    assert len(full[1]) - len(bare[1]) == sum(len(c.result.uses) for c in consts)
    assert not any("prim.constant" in label for label, _ in bare[0].values())


def test_options_and_inputs():
    g = minaot.trace(lambda x: x.sum(dim=0, keepdim=True), minaot.randn(3, 2))
    text = to_dot(g)
    assert "{dim = [0], keepdim = true}" in text.replace("\\n", "\n")
    assert "keepdim" not in to_dot(g, attributes=False)
    assert 'label="3x2xf32"' in text and "3x2xf32" not in to_dot(g, edge_labels=False)
    assert "rankdir=LR;" in to_dot(g, rankdir="LR")
    assert 'label="a title"' in to_dot(g, title="a title")
    assert to_dot(str(g)) == text                            # printed text is parsed
    assert to_dot(minaot.nop(g, None)) == text               # a compiled callable's graph
    with pytest.raises(ValueError, match="regions must be"):
        to_dot(g, regions="flat")
    with pytest.raises(TypeError, match="to_dot draws"):
        to_dot(42)
    with pytest.raises(TypeError, match="one function or a"):
        to_dot((g, g, g))


# ---------------------------------------------------------------- partitioned pairs
CASES = {
    "mlp": (mlp, lambda: mlp_args()),
    "mlp_deep": (mlp, lambda: mlp_args(8, (6, 16, 2))),
    "cos3": (lambda x: x.cos().cos().cos(), lambda: (minaot.randn(10, 10, requires_grad=True),)),
    "sin_plus_cube": (lambda x, y: (x.sin() * y).pow(3).sum(dim=1),
                      lambda: (minaot.randn(4, 5, requires_grad=True), minaot.randn(5, requires_grad=True))),
    "softmax": (lambda x: x.softmax(dim=1).pow(2).sum(), lambda: (minaot.randn(4, 6, requires_grad=True),)),
}
PARTS = {
    "default": default_partition,
    "min_cut": min_cut_rematerialization_partition,
    "budget_0": lambda j, n: min_cut_rematerialization_partition(j, n, memory_budget=0.0),
}


@pytest.mark.parametrize("part", sorted(PARTS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_pair_highlights_the_partitioners_saved_and_recomputed(case, part):
    fn, make = CASES[case]
    joint = minaot.export_joint(fn, *make())
    fw, bw = PARTS[part](joint, joint.joint_info.num_fwd_outputs)
    report = fw.partition_report
    nodes, edges, clusters = parse_dot(to_dot((fw, bw)))
    # the saved values: one highlighted node each, in order, with the report's type and bytes
    saved = [label for label, cls in nodes.values() if cls == "saved"]
    got = [re.match(r"saved (\d+): (.*)\n(.*), (\d+) bytes", s).groups() for s in saved]
    assert [(int(i), d, t, int(b)) for i, d, t, b in got] == \
        [(i, d, t, b) for i, (d, t, b) in enumerate(report.saved)]
    # the saved nodes connect the forward op that computes them to the backward ops that read them
    ids = {label: nid for nid, (label, cls) in nodes.items() if cls == "saved"}
    for i, a in enumerate(bw.args[:fw.num_saved]):
        nid = ids[saved[i]]
        assert sum(1 for s, _, _ in edges if s == nid) == len(a.uses)
        assert sum(1 for _, d, _ in edges if d == nid) == 1
    # the recomputed ops: the report's
    rec = [label.split(" = ")[1].split("\n")[0] for label, cls in nodes.values() if cls == "recomputed"]
    assert rec == report.recomputed
    assert [op.name for op in recomputed_ops(fw, bw)] == report.recomputed
    if part == "default":
        assert rec == []
    # counts: both functions, the saved values shared between them
    n = fw.num_saved
    cls = by_class(nodes)
    assert cls["saved"] == n
    assert cls["input"] == len(fw.args) + len(bw.args) - n
    assert cls["output"] == len(fw.results) - n + len(bw.results)
    assert cls["op"] + cls["recomputed"] == len(fw.ops) + len(bw.ops)
    assert len(edges) == sum(len(op.operands) for g in (fw, bw) for op in g.body.ops)
    assert len(clusters) == 3                                  # forward, saved, backward


def test_min_cut_recomputes_on_the_picture():
    joint = minaot.export_joint(lambda x: x.cos().cos().cos(), minaot.randn(3, requires_grad=True))
    text = to_dot(min_cut_rematerialization_partition(joint, 1))
    nodes, _, _ = parse_dot(text)
    assert sorted(label.split("\n")[0] for label, c in nodes.values() if c == "recomputed") == \
        ["%2 = prim.cos", "%3 = prim.cos"]
    assert "1 saved values, 12 bytes; 2 ops recomputed in the backward" in text


def test_recomputed_ops_ignores_tangent_work_and_random_ops():
    x = minaot.randn(6, requires_grad=True)
    joint = minaot.export_joint(lambda t: F.dropout(t.sin(), 0.5, training=True).sum(), x)
    fw, bw = min_cut_rematerialization_partition(joint, 1)
    assert all(op.opname not in ("rand", "bernoulli", "dropout") for op in recomputed_ops(fw, bw))
    assert [op.name for op in recomputed_ops(fw, bw)] == fw.partition_report.recomputed


# ---------------------------------------------------------------- Graphviz
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


@needs_dot
@pytest.mark.parametrize("level", ["mt", "prim_joint", "kernel", "loop_0"])
@pytest.mark.parametrize("regions", ["cluster", "collapse"])
def test_dot_accepts_every_level(levels, level, regions):
    text = to_dot(levels[level], regions=regions)
    proc = subprocess.run(["dot", "-Tsvg"], input=text, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "<svg" in proc.stdout


@needs_dot
def test_to_svg_of_a_pair():
    joint = minaot.export_joint(mlp, *mlp_args())
    fw, bw = min_cut_rematerialization_partition(joint, 1)
    svg = to_svg((fw, bw), constants=False)
    assert isinstance(svg, SVG) and "<svg" in svg
    assert svg.count('class="node saved"') == len(fw.partition_report.saved)
    assert svg.count('class="node recomputed"') == len(fw.partition_report.recomputed)
    assert svg._repr_html_().startswith('<svg style="max-width:100%; height:auto"')
    assert to_svg(to_dot((fw, bw))) == to_svg((fw, bw))     # dot text is rendered as is


def test_to_svg_without_dot_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(minaot.viz.shutil, "which", lambda name: None)
    g = minaot.trace(lambda x: x + 1, minaot.randn(2))
    with pytest.raises(RuntimeError, match=r"needs Graphviz's `dot`.*apt-get install graphviz"):
        to_svg(g)


@needs_dot
def test_to_svg_reports_bad_dot_text():
    with pytest.raises(RuntimeError, match="dot failed"):
        to_svg("digraph { a -> }")


def test_docstring_examples_run():
    result = doctest.testmod(minaot.viz, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0


# ---------------------------------------------------------------- the picture on the concept page
DOCS_PICTURE = (__import__("pathlib").Path(__file__).resolve().parent.parent
                / "docs" / "concepts" / "joint_and_partitioning_min_cut.dot")


def docs_picture_text():
    """The min-cut partition of the concept page's MLP (batch 2, 4 -> 3 -> 1, GELU), as drawn there."""
    def mlp(x, w1, b1, w2, b2):             # the same name as on the page
        h = F.gelu(x @ w1 + b1)
        return ((h @ w2 + b2) ** 2).mean()

    args = (minaot.randn(2, 4), minaot.randn(4, 3, requires_grad=True), minaot.zeros(3, requires_grad=True),
            minaot.randn(3, 1, requires_grad=True), minaot.zeros(1, requires_grad=True))
    joint = minaot.export_joint(mlp, *args)
    pair = min_cut_rematerialization_partition(joint, joint.joint_info.num_fwd_outputs)
    return to_dot(pair, constants=False, attributes=False) + "\n"


def test_the_docs_picture_is_current():
    assert DOCS_PICTURE.read_text() == docs_picture_text(), \
        f"{DOCS_PICTURE.name} is out of date: regenerate it with `python tests/test_viz.py`"


if __name__ == "__main__":
    DOCS_PICTURE.write_text(docs_picture_text())
    print("wrote", DOCS_PICTURE)
