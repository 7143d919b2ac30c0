"""
The joint graph and partitioning
================================

To train through a compiled function, minaot builds one *joint* graph that
computes the outputs and the gradients together, then cuts it into a forward
graph and a backward graph.  Where it cuts decides what the forward must
*save* for the backward (activation memory) and what the backward
*recomputes*.  This tutorial builds the joint graph of a small MLP and
compares the default partitioner (save what eager autograd saves) with the
min-cut rematerialization partitioner, then sweeps its ``memory_budget``.
Along the way it draws the partitioned graphs with :mod:`minaot.viz` and plots
the trade-off between saved memory and recomputed work with matplotlib.
"""

import functools
import shutil

import minaot
from minaot import default_partition, min_cut_rematerialization_partition
from minaot.ops.registry import get_op
from minaot.testing import check_compiled, count_ops, saved_bytes
from minaot.viz import recomputed_ops, to_dot, to_svg

minaot.manual_seed(0)


def mlp(x, *params):
    """Linear layers with GELU between them; mean squared output as the loss."""
    h = x
    layers = len(params) // 2
    for i in range(layers):
        h = h @ params[2 * i] + params[2 * i + 1]
        if i < layers - 1:
            h = minaot.gelu(h)
    return (h ** 2).mean()


def show(graph, **options):
    """The graph as a picture (SVG) when Graphviz's ``dot`` is installed, else the
    first lines of its dot text (paste the whole text into any Graphviz viewer)."""
    if shutil.which("dot"):
        return to_svg(graph, **options)
    lines = to_dot(graph, **options).splitlines()
    print("\n".join(lines[:8] + [f"... ({len(lines)} lines; install Graphviz to see the picture)"]))


def make_params(sizes):
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        params.append((minaot.randn(fan_in, fan_out) / fan_in ** 0.5).requires_grad_())
        params.append(minaot.zeros(fan_out, requires_grad=True))
    return params


# %%
# The joint graph
# ---------------
# :func:`minaot.export_joint` traces the function, functionalizes and
# decomposes it, then runs each op's VJP rule (the same rules eager autograd
# uses) under an IR builder, in reverse order.  The joint function takes the
# *primals* (the inputs) and one *tangent* per output that requires grad, and
# returns the outputs followed by the gradients of the inputs that require
# grad.  Here: one hidden layer of width 3, a batch of 2.

x_small = minaot.randn(2, 4)
small = make_params([4, 3, 1])
joint = minaot.export_joint(mlp, x_small, *small)
print(joint)
print(joint.joint_info)

# %%
# The forward part is the top of the graph (down to the loss ``prim.div``);
# everything after it reads the tangent ``%5`` and is the backward.  The
# backward of ``gelu`` (the derivative of ``erf`` is ``2/sqrt(pi) * exp(-x^2)``)
# and of the two matmuls (a transpose and a matmul per gradient) are plain
# ``prim`` ops.

# %%
# Default partition: save what eager autograd saves
# --------------------------------------------------
# The forward returns the loss followed by every value it computed that the
# backward reads; the backward takes those saved values followed by the
# tangents.  The partition report lists them with their sizes.

n_out = joint.joint_info.num_fwd_outputs
fw, bw = default_partition(joint, n_out)
print(fw)
print(fw.partition_report)

# %%
# Pictures of a partition
# -----------------------
# :func:`minaot.viz.to_dot` draws any function as Graphviz ``dot`` text: ops
# are nodes, each use of a value is an edge labelled with its type, inputs are
# blue and outputs green.  Given the pair ``(fw, bw)`` it draws both graphs
# and puts each *saved* value in an orange box between them: fed by the
# forward op that computes it, feeding the backward ops that read it.
# :func:`minaot.viz.to_svg` renders the text with Graphviz (constants are left
# out here to keep the picture small).  The default partition saves ten values:

show((fw, bw), constants=False, attributes=False)

# %%
# Min-cut rematerialization
# -------------------------
# The min-cut partitioner builds a flow network over the forward values: each
# value costs its byte size, data dependencies cannot be cut, and the values
# the backward reads must be available to it.  A minimum cut (networkx max-flow) is the
# cheapest set of values to save; the cheap pointwise ops between the cut and
# the backward are *recomputed* there.  Graph inputs and the results of
# matmuls, reductions and random ops are never recomputed.  Of a view and its
# base, of equal bytes, the base is saved: the weight gradient reads ``x.T``,
# and the forward saves ``x`` itself while the backward remakes the transpose
# (a view costs nothing to remake).

fw_mc, bw_mc = min_cut_rematerialization_partition(joint, n_out)
print(fw_mc.partition_report)
print(bw_mc)

# %%
# The recomputed ops are the first lines of the backward graph: it adds the
# bias to the saved product ``x @ w1`` again and rebuilds the GELU
# intermediates from that instead of loading them.  (The product is saved, not
# the pre-activation ``x @ w1 + b1`` of the same bytes: a matmul writes its
# result anyway, while the pre-activation lives only in the fused GELU kernel's
# registers, so saving it would cost the forward one more write.)  In the
# picture they are red: a backward op counts as *recomputed* when it needs no
# tangent and computes a value the forward computes too
# (:func:`minaot.viz.recomputed_ops`).  Seven saved values instead of ten, four
# of them graph inputs:

show((fw_mc, bw_mc), constants=False, attributes=False)

# %%
# :mod:`minaot.testing` has the checks an autograder needs for this.
# :func:`~minaot.testing.saved_bytes` reads the saved bytes off a pair (the
# same number as the report), :func:`~minaot.testing.count_ops` counts ops:

print("saved bytes:", saved_bytes(fw, bw), "default,", saved_bytes(fw_mc, bw_mc), "min-cut")
print("erf in the backward:", count_ops(bw, "erf"), "default,", count_ops(bw_mc, "erf"), "min-cut")

# %%
# and :func:`~minaot.testing.check_compiled` runs a function eagerly and
# compiled, on clones of the inputs, and compares the outputs, the gradients
# (through a random cotangent), the inputs afterwards and which outputs alias
# which inputs.  Both partitions compute what eager autograd computes:

for name, part in [("default", default_partition), ("min-cut", min_cut_rematerialization_partition)]:
    check_compiled(mlp, x_small, *small, backend="numpy", partition_fn=part, rtol=1e-5, atol=1e-6)
    print(f"{name}: outputs and gradients equal eager")

# %%
# Saved bytes for a bigger MLP
# ----------------------------
# Three hidden layers of width 32, a batch of 64.

x = minaot.randn(64, 16)
params = make_params([16, 32, 32, 32, 4])
joint = minaot.export_joint(mlp, x, *params)
n_out = joint.joint_info.num_fwd_outputs
fw_d, bw_d = default_partition(joint, n_out)
fw_m, bw_m = min_cut_rematerialization_partition(joint, n_out)
rd, rm = fw_d.partition_report, fw_m.partition_report
print(f"default: {len(rd.saved):2d} saved values, {rd.saved_bytes:6d} bytes, "
      f"{len(rd.recomputed):2d} ops recomputed")
print(f"min-cut: {len(rm.saved):2d} saved values, {rm.saved_bytes:6d} bytes, "
      f"{len(rm.recomputed):2d} ops recomputed")
print(f"rematerialization saves {rd.saved_bytes - rm.saved_bytes} bytes "
      f"({100 * (1 - rm.saved_bytes / rd.saved_bytes):.0f}%)")

# %%
# A memory budget
# ---------------
# At ``memory_budget=1.0`` the min-cut partitioner still saves a value that
# feeds a backward matmul directly (the matmul would materialize it anyway).
# Lower budgets lift those bans one at a time, largest saving first, until the
# saved bytes fall to ``min + budget * (max - min)``; at 0 only values that
# may never be recomputed are kept.  Each row is one partition of the same
# joint graph:

print(f"{'budget':>7} | {'saved values':>12} | {'saved bytes':>11} | {'recomputed ops':>14}")
print("-" * 56)
for budget in [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]:
    fw_b, _ = min_cut_rematerialization_partition(joint, n_out, memory_budget=budget)
    r = fw_b.partition_report
    print(f"{budget:7.1f} | {len(r.saved):12d} | {r.saved_bytes:11d} | {len(r.recomputed):14d}")
print(f"{'default':>7} | {len(rd.saved):12d} | {rd.saved_bytes:11d} | {len(rd.recomputed):14d}")

# %%
# Memory against recomputed work
# ------------------------------
# Counting ops hides their size.  The work a backward redoes is better
# measured in element operations: each recomputed pointwise op costs one
# operation per element of its result (views and constants cost nothing).
# The same sweep, with finer budgets, as a plot: each point is one partition,
# saved bytes against recomputed work.  (The saved bytes include saved graph
# inputs, as the partition report does: ``x`` and the weights.)


def recomputed_work(fw, bw):
    """Element operations the backward spends recomputing forward values."""
    return sum(r.type.numel for op in recomputed_ops(fw, bw)
               if get_op(op.opname).kind == "pointwise" for r in op.results)


budgets = [i / 20 for i in range(20, -1, -1)]
points = []
for budget in budgets:
    fw_b, bw_b = min_cut_rematerialization_partition(joint, n_out, memory_budget=budget)
    points.append((recomputed_work(fw_b, bw_b), saved_bytes(fw_b, bw_b)))
default_point = (recomputed_work(fw_d, bw_d), saved_bytes(fw_d, bw_d))
print("default:", default_point, "| min-cut, budget 1.0:", points[0], "| budget 0.0:", points[-1])

try:
    import matplotlib.pyplot as plt
except ImportError:                        # the docs extra installs it; the numbers above stand
    plt = None
    print("matplotlib is not installed: no plot")

if plt is not None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(budgets, [b / 1024 for _, b in points], "o-", label="min-cut")
    left.axhline(default_point[1] / 1024, color="tab:red", linestyle="--", label="default")
    left.set_xlabel("memory_budget")
    left.set_ylabel("saved for the backward (KiB)")
    left.set_title("saved bytes by budget")
    left.invert_xaxis()
    left.legend()
    right.plot([w / 1000 for w, _ in points], [b / 1024 for _, b in points], "o-", label="min-cut sweep")
    right.plot([default_point[0] / 1000], [default_point[1] / 1024], "s", color="tab:red",
               markersize=9, label="default")
    for budget, (w, b) in zip(budgets, points):
        if budget in (1.0, 0.5, 0.0):
            right.annotate(f"budget {budget}", (w / 1000, b / 1024), textcoords="offset points",
                           xytext=(6, 6))
    right.set_xlabel("recomputed in the backward (thousand element ops)")
    right.set_ylabel("saved for the backward (KiB)")
    right.set_title("memory against recomputed work")
    right.legend()
    for ax in (left, right):
        ax.set_ylim(bottom=0)
    fig.tight_layout()

# %%
# Any function with the signature ``partition_fn(joint, num_fwd_outputs) ->
# (fw, bw)`` can be the partitioner, so a budget is passed with
# ``functools.partial``.

# %%
# Training through aot_function: the backward is compiled lazily
# ---------------------------------------------------------------
# With inputs that require grad, :func:`minaot.aot_function` builds the joint
# graph, partitions it and compiles the forward; the compiled forward runs,
# keeps the saved values, and the outputs get one autograd node that runs the
# backward graph.  The backward is compiled only when a backward first
# reaches it.  A compiler that records its calls shows this:

compiled = []


def recording_compiler(graph, example_inputs):
    compiled.append(graph.name)
    return minaot.nop(graph, example_inputs)


train_step = minaot.aot_function(
    mlp, fw_compiler=recording_compiler, bw_compiler=recording_compiler,
    partition_fn=functools.partial(min_cut_rematerialization_partition, memory_budget=0.5))
loss = train_step(x, *params)
print("after the forward: ", compiled)
loss.backward()
print("after backward():  ", compiled)
print("loss", loss.item(), "| grad of the last bias:", params[-1].grad)

# %%
# ``print_compile`` prints each graph with its partition report, which is
# the quickest way to see what a training step saves:

p = minaot.tensor([0.5, -1.0, 2.0], requires_grad=True)
g = minaot.aot_function(lambda t: t.cos().cos().cos(), fw_compiler=minaot.print_compile,
                        partition_fn=min_cut_rematerialization_partition)
g(p).sum().backward()
