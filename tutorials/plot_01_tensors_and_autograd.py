"""
Tensors, views, in-place ops and autograd
=========================================

minaot's eager :class:`minaot.Tensor` behaves like a PyTorch tensor: a strided
window onto a shared storage, with views, in-place ops, a version counter per
storage and reverse-mode autograd.  Everything the compiler does later has to
reproduce what this eager mode does, so this is the reference behaviour.
"""

import numpy as np

import minaot
from minaot.testing import assert_close, gradcheck

minaot.manual_seed(0)

# %%
# Storage, shape and strides
# --------------------------
# A tensor is a window (shape, strides in elements, storage offset) onto a
# storage.  ``arange(12).reshape(3, 4)`` is a contiguous row-major 3x4 window.

a = minaot.arange(12.0).reshape(3, 4)
print(a)
print("shape", a.shape, "stride", a.stride(), "dtype", a.dtype, "device", a.device)

# %%
# Views share the storage
# -----------------------
# ``t()``, slicing with steps, ``reshape`` of a contiguous tensor, ``expand``
# ... make *views*: new windows onto the same memory.  Only the strides and the
# offset change; nothing is copied.

at = a.t()
col = a[:, 1::2]          # every other column
print("a.t():      shape", at.shape, "stride", at.stride(), "contiguous", at.is_contiguous())
print("a[:, 1::2]: shape", col.shape, "stride", col.stride(), "offset", col.storage_offset())
print("same storage:", at._storage is a._storage, col._storage is a._storage)

# %%
# In-place ops write through views
# --------------------------------
# A write through any view is seen by the base and by every other view,
# because they all read the same memory.  Each in-place op bumps the storage's
# version counter.

print("version before:", a._storage.version)
col.mul_(10)              # scale columns 1 and 3 of a
a[0].zero_()              # zero row 0 of a, through another view
print(a)
print("a.t()[1] sees it:", at[1])
print("version after:", a._storage.version)

# %%
# ``numpy()`` shares memory too, as it does in PyTorch on the CPU:

arr = a.numpy()
arr[2, 0] = -1.0
print(a[2])

# %%
# Autograd
# --------
# Operations on tensors that require grad record a graph of backward nodes;
# ``backward()`` walks it in reverse and accumulates into ``.grad`` of the
# leaves.  The backward of each op is its VJP rule from the op registry.

x = minaot.tensor([0.5, -1.0, 2.0], requires_grad=True)
y = x.sin()
loss = (y * y).sum()
print("loss.grad_fn:", loss.grad_fn, "<- y.grad_fn:", y.grad_fn)
loss.backward()
print("x.grad          :", x.grad)
expected = np.sin(2 * np.array([0.5, -1.0, 2.0]))    # d/dx sin(x)^2 = sin(2x)
print("sin(2x) in numpy:", expected)
assert_close(x.grad, minaot.tensor(expected, dtype=minaot.float32))

# %%
# Gradients flow through views and in-place ops: here the second row of ``h``
# is overwritten in place, so no gradient reaches ``w`` through it.

w = minaot.ones(2, 3, requires_grad=True)
h = w * 2
h[1].mul_(0)
h.sum().backward()
print(w.grad)

# %%
# Saved tensors are checked with the version counter
# --------------------------------------------------
# ``sin`` saves its input for the backward.  Modifying that input in place
# afterwards would make the gradient silently wrong, so the backward refuses,
# like PyTorch does.

p = minaot.randn(3, requires_grad=True)
q = p * 1
r = q.sin()               # saves q (version 0)
q.add_(1)                 # q is now at version 1
try:
    r.sum().backward()
except RuntimeError as e:
    print("RuntimeError:", e)

# %%
# An in-place op on a leaf that requires grad is an error too (its gradient
# would be meaningless), except under ``no_grad()``, which is how an optimizer
# updates parameters.

try:
    p.mul_(2)
except RuntimeError as e:
    print("RuntimeError:", e)
with minaot.no_grad():
    p.mul_(2)
print("updated under no_grad:", p.requires_grad, p.is_leaf)

# %%
# ``minaot.autograd.grad`` returns gradients instead of accumulating them:

z = minaot.tensor([1.0, 2.0, 3.0], requires_grad=True)
(gz,) = minaot.autograd.grad((z ** 3).sum(), [z])
print("d/dz sum(z^3) =", gz, " (3 z^2)")

# %%
# Checking gradients: ``gradcheck``
# ---------------------------------
# :func:`minaot.testing.gradcheck` compares the analytic gradient with central
# finite differences in float64.  It is what the op-database tests run for
# every differentiable op, and what a course assignment runs on a student's
# VJP rule.

t = minaot.randn(3, 4, dtype=minaot.float64, requires_grad=True)
print("softmax + tanh:", gradcheck(lambda u: minaot.softmax(u, dim=1).log().sum() + u.tanh().mean(), (t,)))

# %%
# A wrong VJP rule fails it.  ``minaot.autograd.Function`` lets us write one on
# purpose: the derivative of ``x**2`` with a factor 3 instead of 2.


class BadSquare(minaot.autograd.Function):
    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return u * u

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        return g * 3 * u


try:
    gradcheck(BadSquare.apply, (t,))
except AssertionError as e:
    print("AssertionError:", e)

# %%
# The op registry: each op is defined once
# ----------------------------------------
# Every function above ends in one record of the op registry: a kind, a
# shape-and-dtype rule (``meta``), a numpy implementation, a VJP rule and, for
# pointwise ops, the scalar expression code generation will use.  Eager mode,
# tracing, the interpreter, autograd and the joint graph all read it.

op = minaot.ops.get_op("sin")
print(op, "| kind:", op.kind, "| scalar:", op.scalar)
print("meta of a 3x4 float32 input:", op.meta(minaot.randn(3, 4)))
kinds = {}
for rec in minaot.ops.all_ops():
    kinds.setdefault(rec.kind, []).append(rec.name)
for kind, names in sorted(kinds.items()):
    print(f"{kind:10s} {len(names):3d}  e.g. {', '.join(names[:6])}")
