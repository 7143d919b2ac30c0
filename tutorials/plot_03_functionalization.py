"""
Functionalization: in-place ops and views become a pure graph
=============================================================

A compiler wants a *pure* graph: every op makes a new value, nothing is
written in place, no two values share memory.  Users write in-place ops and
views.  :func:`~minaot.passes.functionalize.functionalize` bridges the two: it
turns a traced ``mt`` program into a pure graph plus a record
(``ViewAndMutationMeta``) of what the program did to its inputs and which
outputs are views; after the compiled graph runs, a small runtime *epilogue*
replays those effects on the caller's tensors.  The result: the compiled call
behaves exactly like the eager call, inputs included.  This is what PyTorch's
AOTAutograd does.
"""

import minaot
from minaot.passes.functionalize import functionalize
from minaot.testing import assert_close

minaot.manual_seed(0)


def show(fn, *args):
    """Print the traced mt graph, the functionalized graph and its metadata."""
    mt_graph = minaot.trace(fn, *args)
    print(mt_graph)
    pure, meta = functionalize(mt_graph)
    print(pure)
    print(meta)


# %%
# A mutated input
# ---------------
# ``a.mul_(2)`` in the function must double the caller's tensor.  The traced
# ``mt`` graph records ``mt.mul_`` as written.  After functionalization the
# graph is pure: ``prim.mul`` makes the new value of ``a``, later reads use
# it, and the graph *returns* it first.  The metadata says input 0 had its
# data mutated, and where the new value is among the graph's outputs.


def double_then_add(a):
    a.mul_(2)
    return a + 1


show(double_then_add, minaot.ones(3))

# %%
# Running it through :func:`minaot.aot_function`: ``print_compile`` shows the
# graph the compiler receives (functionalized, decomposed to prims and
# cleaned up).  The epilogue copies the graph's new ``a`` into the caller's
# tensor, so the caller sees the same thing as after an eager call.

compiled = minaot.aot_function(double_then_add, fw_compiler=minaot.print_compile)
a_eager, a_comp = minaot.arange(3.0), minaot.arange(3.0)
out_eager, out_comp = double_then_add(a_eager), compiled(a_comp)
print("eager:    out", out_eager, " a afterwards", a_eager)
print("compiled: out", out_comp, " a afterwards", a_comp)
assert_close(out_comp, out_eager)
assert_close(a_comp, a_eager)

# %%
# Mutation through a view
# -----------------------
# ``b = a[0]`` is a view of ``a``; writing into ``b`` writes into ``a``.
# Functionalization remembers every view as *its base plus the chain of view
# ops* that made it.  An in-place op on a view computes the new value of the
# view, then writes it back into the base with the scatter op of each view
# step (``prim.select_scatter`` for an integer index, ``prim.slice_scatter``
# for a slice; a transpose or reshape is inverted).  Later reads of ``a``
# (here ``a.sum()``) see the scattered base.


def scale_first_row(a):
    b = a[0]
    b.mul_(2)
    return a.sum()


show(scale_first_row, minaot.ones(2, 3))

# %%
# The same thing through two view steps, a transpose and a slice with a step.
# The pure twin of ``zero_`` is ``mt.fill``, not a prim yet, and the
# transpose is read twice: the functionalized graph is correct but not tidy.


def zero_every_other_column(a):
    a.t()[::2].zero_()
    return a.sum(dim=0)


show(zero_every_other_column, minaot.ones(2, 4))

# %%
# ``aot_function`` then decomposes ``fill`` into a prim and runs
# ``canonicalize``, ``cse`` and ``dce``; ``print_compile`` shows the graph the
# compiler receives:

x_eager, x_comp = minaot.arange(8.0).reshape(2, 4), minaot.arange(8.0).reshape(2, 4)
zero_every_other_column(x_eager)
minaot.aot_function(zero_every_other_column, fw_compiler=minaot.print_compile)(x_comp)
print("caller's tensor after the compiled call:\n", x_comp)
assert_close(x_comp, x_eager)

# %%
# Mutation of a view of an intermediate works the same way, except that
# nothing has to be copied back: the base is the function's own tensor.


def zero_first_column(a):
    b = a * 2
    c = b[:, 0]
    c.zero_()
    return b


show(zero_first_column, minaot.ones(2, 3))

# %%
# Metadata mutation
# -----------------
# ``a.t_()`` changes the caller's tensor's *shape and strides*, not its data.
# The graph computes with the transposed view; the metadata records the view
# chain, and the epilogue replays it on the caller's tensor.


def transpose_in_place(a):
    a.t_()
    return a + 1


show(transpose_in_place, minaot.ones(2, 3))
m = minaot.arange(6.0).reshape(2, 3)
minaot.aot_function(transpose_in_place)(m)
print("caller's tensor afterwards: shape", m.shape, "stride", m.stride())

# %%
# The four kinds of output
# ------------------------
# Each output of the user's function is one of:
#
# * ``non_alias``: a fresh tensor; the graph returns it;
# * ``is_input``: the input tensor itself; the runtime returns the caller's
#   tensor object;
# * ``alias_of_input``: a view of an input; the graph does *not* return it,
#   the runtime rebuilds it as a real view of the caller's tensor by replaying
#   its view chain (so writing into it writes into the input, as in eager);
# * ``alias_of_output``: a view of another output's base; the graph returns
#   the base once and the runtime makes the views from it, so the outputs share
#   storage as in eager.


def four_kinds(a):
    b = a * 2
    return a, a.t(), b, b.view(-1), a + 1


show(four_kinds, minaot.ones(2, 3))

a = minaot.arange(6.0).reshape(2, 3)
same, at, b, bflat, fresh = minaot.aot_function(four_kinds)(a)
print("is_input        :", same is a)
print("alias_of_input  :", at._storage is a._storage, "stride", at.stride())
print("alias_of_output :", bflat._storage is b._storage)
print("non_alias       :", fresh._storage is not a._storage)
at[0, 1] = 100.0        # a real view: the write reaches the caller's tensor
print("a after writing through the returned view:\n", a)

# %%
# Duplicate inputs
# ----------------
# ``f(x, x)`` with a mutation of one argument: in eager mode the other
# argument sees the write, because they are the same tensor.  The cache key
# records which arguments are the same tensor, so this call pattern gets its
# own graph, where both arguments are one graph input.


def add_one_then_read_other(a, b):
    a.add_(1)
    return b * 2


y_eager, y_comp = minaot.zeros(3), minaot.zeros(3)
f = minaot.aot_function(add_one_then_read_other)
print("eager   :", add_one_then_read_other(y_eager, y_eager), y_eager)
print("compiled:", f(y_comp, y_comp), y_comp)

# %%
# Inputs that overlap in memory without being the same tensor, with one of
# them mutated, cannot be separate pure inputs; minaot runs such a call
# eagerly with a one-time warning rather than give a wrong answer.

import warnings  # noqa: E402

base_eager, base_comp = minaot.arange(4.0), minaot.arange(4.0)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    r = f(base_comp[0:2], base_comp[1:3])
print("warning:", caught[0].message if caught else None)
print("eager   :", add_one_then_read_other(base_eager[0:2], base_eager[1:3]), base_eager)
print("compiled:", r, base_comp)

# %%
# Decompositions
# --------------
# After functionalization, high-level ops are expanded into ``prim`` ops by a
# decomposition table (each entry is written with minaot's op API and traced
# like user code).  ``softmax`` becomes the max-subtracted exponentials:

minaot.aot_function(lambda x: minaot.softmax(x, dim=-1), fw_compiler=minaot.print_compile)(
    minaot.randn(2, 3))

# %%
# A user can add or override entries.  Here ``gelu`` is replaced by the
# sigmoid approximation ``x * sigmoid(1.702 x)``:


def sigmoid_gelu(x, approximate="none"):
    return x * minaot.sigmoid(1.702 * x)


g = minaot.aot_function(minaot.gelu, fw_compiler=minaot.print_compile,
                        decompositions={minaot.gelu: sigmoid_gelu})
v = minaot.randn(4)
print("exact gelu :", minaot.gelu(v))
print("override   :", g(v))

# %%
# Guards and the cache
# --------------------
# A compiled function keeps one entry per *guard key*: the shapes, strides,
# dtypes, devices and ``requires_grad`` of the inputs, which inputs are the
# same tensor or share storage, and grad mode.  Another shape recompiles; the
# same shape is a cache hit.  ``minaot.counters`` shows both.

minaot.reset()
h = minaot.aot_function(lambda x: (x * 2).sum())
h(minaot.randn(3))
h(minaot.randn(3))
h(minaot.randn(5))
print(dict(minaot.counters["aot"]))
