"""The eager autograd engine: nodes, saved tensors, backward and grad.

Every op that runs with grad mode on and an input that requires grad gives its
outputs an :class:`OpNode`.  A node knows the op, a :class:`VJPContext` (the
inputs and outputs the VJP rule may read, with the version they had then) and
its ``next_functions``: for each input, the node that made it (or the leaf's
:class:`AccumulateGrad`).  ``backward`` walks the nodes from the roots in
reverse creation order (a topological order), sums the gradients arriving at
each node, calls the VJP rule, and hands the results to the next nodes.

In-place ops move history: the mutated tensor takes the node of the pure op
that computed its new value; a mutated *view* gives its base a
:class:`CopySlices` node (the base's gradient flows around the written region
and into the new value), and views of that base rebuild their history by
replaying their view ops on the base the next time ``grad_fn`` is read.
"""

from __future__ import annotations

import heapq
import itertools
import sys

from .._errors import op_error
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

_seq = itertools.count()


class Node:
    """A backward function: ``apply(grad_outputs) -> grads for next_functions``."""

    def __init__(self):
        self.seq = next(_seq)
        self.next_functions: tuple = ()
        self.released = False

    def name(self) -> str:
        return type(self).__name__

    def apply(self, grads):
        raise NotImplementedError

    def release(self):
        self.released = True

    def __repr__(self) -> str:
        return f"<{self.name()}>"

    # tensor hooks: ``x.register_hook(fn)`` hangs ``fn`` on the node that receives x's
    # gradient (its grad_fn at x's output number, or a leaf's AccumulateGrad), as PyTorch does
    def add_hook(self, nr: int, fn, last: bool = False) -> "RemovableHandle":
        """Run ``fn(grad)`` on the gradient arriving at output ``nr`` before the node uses it;
        a result that is not None replaces the gradient.  ``last`` hooks (retain_grad's) run
        after all the others and see the final gradient."""
        if "hooks" not in self.__dict__:
            self.hooks = {}
        entry = [fn, last]
        self.hooks.setdefault(nr, []).append(entry)
        return RemovableHandle(self.hooks[nr], entry)

    def run_hooks(self, buf):
        """Apply this node's tensor hooks to the gradients in ``buf`` (output nr -> grad)."""
        hooks = self.__dict__.get("hooks")
        if not hooks:
            return
        for nr, entries in hooks.items():
            g = buf.get(nr)
            if g is None:
                continue
            for fn, last in [e for e in entries if not e[1]] + [e for e in entries if e[1]]:
                r = fn(g)
                if r is not None and not last:
                    if tuple(r.shape) != tuple(g.shape):
                        raise RuntimeError(f"hook returned a gradient of shape {tuple(r.shape)} "
                                           f"for a tensor of shape {tuple(g.shape)}")
                    g = r
            buf[nr] = g


class RemovableHandle:
    """What ``register_hook`` returns: ``handle.remove()`` takes the hook off again."""

    def __init__(self, entries, entry):
        self.entries, self.entry = entries, entry

    def remove(self):
        if self.entry in self.entries:
            self.entries.remove(self.entry)


def edge(t):
    """Where a gradient for tensor ``t`` goes: ``(node, output_nr)`` or None."""
    fn = t.grad_fn
    if fn is not None:
        return (fn, t._output_nr)
    if t.requires_grad:
        if t._accumulate_node is None:
            t._accumulate_node = AccumulateGrad(t)
        return (t._accumulate_node, 0)
    return None


class SavedTensors:
    """The tensors a VJP rule may read, checked against in-place changes on access."""

    def __init__(self, owner: str, kind: str, tensors):
        self.owner = owner
        self.kind = kind
        self.items = [(t, t._version) for t in tensors]
        self.freed = False

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        if self.freed:
            raise RuntimeError(
                f"{self.owner}: trying to backward through the graph a second time (or "
                "directly access saved tensors after they have already been freed); "
                "saved values are freed after backward(), pass retain_graph=True the "
                "first time if you need to backward twice")
        t, version = self.items[i]
        if t._version != version:
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified "
                f"by an inplace operation: [{t.dtype.name} {list(t.shape)}], which is "
                f"{self.kind} {i} of {self.owner}, is at version {t._version}; expected "
                f"version {version} instead")
        return t

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class VJPContext:
    """What a VJP rule sees: ``inputs``, ``outputs``, ``attrs``, ``needs_input_grad``."""

    def __init__(self, owner, inputs, outputs, attrs, needs_input_grad):
        self.inputs = SavedTensors(owner, "input", inputs)
        self.outputs = SavedTensors(owner, "output", outputs)
        self.attrs = attrs
        self.needs_input_grad = needs_input_grad
        self.input_metas = [(t.shape, t.dtype) for t in inputs]

    def release(self):
        self.inputs.freed = True
        self.outputs.freed = True


def apply_vjp(op, ctx, grads):
    """Run ``op``'s VJP rule and give each gradient its input's shape and dtype.

    Broadcasting is undone here, once, by summing over broadcast dimensions,
    so VJP rules may return gradients of the broadcast shape."""
    from ..ops import sum_to

    raw = op.vjp(ctx, *grads)
    if not isinstance(raw, (tuple, list)):
        raw = (raw,)
    out = []
    for g, (shape, dtype), need in zip(raw, ctx.input_metas, ctx.needs_input_grad):
        if g is None or not need:
            out.append(None)
            continue
        if g.shape != shape:
            g = sum_to(g, shape)
        if g.dtype is not dtype:
            g = g.to(dtype)
        out.append(g)
    return out


class OpNode(Node):
    """Backward of one registry op."""

    def __init__(self, op, inputs, outputs, attrs):
        super().__init__()
        self.op = op
        self.next_functions = tuple(edge(t) for t in inputs)
        needs = tuple(e is not None for e in self.next_functions)
        self.ctx = VJPContext(self.name(), inputs, outputs, attrs, needs)
        self.num_outputs = len(outputs)

    def name(self) -> str:
        return "".join(p.capitalize() for p in self.op.name.split("_")) + "Backward"

    def apply(self, grads):
        return apply_vjp(self.op, self.ctx, grads)

    def release(self):
        super().release()
        self.ctx.release()


class AccumulateGrad(Node):
    """The sink of a leaf: adds the arriving gradient into ``leaf.grad``."""

    def __init__(self, leaf):
        super().__init__()
        self.variable = leaf

    def apply(self, grads):
        g = grads[0]
        leaf = self.variable
        if g is None:
            return ()
        if is_grad_enabled():                 # create_graph: keep the history
            leaf.grad = g if leaf.grad is None else leaf.grad + g
        elif leaf.grad is None:
            leaf.grad = g.detach().clone()    # a fresh contiguous tensor of its own
        else:
            leaf.grad.add_(g.detach())
        return ()

    def steal(self, buf) -> bool:
        """Take the arriving gradient as ``leaf.grad`` without a copy, if nothing else
        can see it (PyTorch's AccumulateGrad does the same when the gradient's use count
        says the engine holds the only reference).  ``buf`` is the engine's buffer of
        this node, its only holder inside the engine; returns False (and leaves ``buf``
        as it was) when a copy is needed.

        Stolen only when: no ``.grad`` yet and grad mode off; the gradient is a plain
        tensor no one else references (not the user's, not another leaf's, not held by
        a hook), not a view, the only tensor over its memory, contiguous, and of the
        leaf's shape, dtype and device.  Reference counts are CPython's
        (``sys.getrefcount``): every extra holder only makes the engine copy."""
        leaf = self.variable
        g = buf.get(0)
        if (g is None or leaf.grad is not None or is_grad_enabled() or g.requires_grad
                or g._base is not None or g.shape != leaf.shape or g.dtype != leaf.dtype
                or g.device != leaf.device or not g.is_contiguous()):
            return False
        storage = g._storage
        root = storage.root
        if getattr(root, "base", None) is not None and g._data is not root:
            return False                      # a numpy root that is itself a view
        # holders of g: the buffer, the local ``g`` and getrefcount's argument; of the
        # storage: ``g``, the local and the argument; of the root: the storage, ``g._data``
        # (the root itself or a view of it), the local and the argument
        if (sys.getrefcount(g) > 3 or sys.getrefcount(storage) > 3
                or sys.getrefcount(root) > 4):
            return False
        del buf[0]
        leaf.grad = g
        return True


def replay_views(chain, base):
    """Apply the recorded view ops ``chain`` to ``base`` (view replay)."""
    from ..dispatch import dispatch

    t = base
    for name, attrs in chain:
        t = dispatch(name, t, **attrs)
    return t


class CopySlices(Node):
    """History of a base after an in-place write through one of its views.

    Inputs: the base's old value and the written value.  The base's gradient
    flows to the old value except inside the written region, which instead
    flows (through the view ops) to the written value."""

    def __init__(self, base, chain, new):
        super().__init__()
        self.chain = chain
        self.next_functions = (edge(base), edge(new))

    def apply(self, grads):
        g = grads[0]
        grad_base = g.clone()
        replay_views(self.chain, grad_base).zero_()
        grad_new = replay_views(self.chain, g)
        return [grad_base, grad_new]


def rebase_history(target, new):
    """After writing ``new`` into ``target``: move autograd history."""
    base = target._base
    if base is None:
        target._grad_fn = new.grad_fn if new.requires_grad else None
        target._output_nr = new._output_nr
        if target._grad_fn is None and new.requires_grad:   # new is a leaf
            target._grad_fn = _IdentityNode(new)
        return
    base._grad_fn = CopySlices(base, target._view_chain, new)
    base._output_nr = 0
    # every view of base (target included) now has a stale history: grad_fn
    # notices the version change and replays its view ops on base.


class _IdentityNode(Node):
    def __init__(self, src):
        super().__init__()
        self.next_functions = (edge(src),)

    def apply(self, grads):
        return [grads[0]]


def refresh_view_grad_fn(view):
    """Rebuild a view's history from its base (after the base was modified in place)."""
    base = view._base
    view._view_version = view._storage.version
    if not base.requires_grad:
        view._grad_fn = None
        return
    with enable_grad():
        v2 = replay_views(view._view_chain, base)
    view._grad_fn = v2._grad_fn
    view._output_nr = v2._output_nr


# ---------------------------------------------------------------- the engine
def _collect(roots):
    """Nodes reachable from ``roots`` and how many edges point at each."""
    deps = {}
    seen = set()
    stack = [n for n in roots if n is not None]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for e in node.next_functions:
            if e is None:
                continue
            nxt = e[0]
            deps[id(nxt)] = deps.get(id(nxt), 0) + 1
            stack.append(nxt)
    return deps


def _run(roots, root_grads, retain_graph, create_graph, capture=None, accumulate=True):
    """Propagate ``root_grads`` from ``roots`` (a list of (node, output_nr)).

    ``capture`` maps (id(node), output_nr) -> slot: the gradient arriving there
    is recorded instead of (or before) being used; with ``accumulate=False``
    leaves' ``.grad`` is left alone (``autograd.grad``)."""
    deps = _collect([n for n, _ in roots])
    buffers = {}
    nodes = {}
    for (node, nr), g in zip(roots, root_grads):
        buf = buffers.setdefault(id(node), {})
        buf[nr] = g if nr not in buf else buf[nr] + g
        nodes[id(node)] = node
    captured = {}
    heap = []
    for node in nodes.values():
        if deps.get(id(node), 0) == 0:
            heapq.heappush(heap, (-node.seq, id(node), node))
    with set_grad_enabled(create_graph):
        while heap:
            _, _, node = heapq.heappop(heap)
            buf = buffers.pop(id(node), {})
            node.run_hooks(buf)
            if capture is not None:
                for nr, g in buf.items():
                    if (id(node), nr) in capture:
                        captured[capture[(id(node), nr)]] = g
            if isinstance(node, AccumulateGrad) and not accumulate:
                grads_out = ()
            elif isinstance(node, AccumulateGrad) and capture is None and node.steal(buf):
                grads_out = ()
            elif any(g is not None for g in buf.values()):
                n_out = getattr(node, "num_outputs", 1)
                grads_out = node.apply([buf.get(i) for i in range(n_out)])
                if not retain_graph:
                    node.release()
            else:
                grads_out = [None] * len(node.next_functions)
            for e, g in zip(node.next_functions, grads_out):
                if e is None:
                    continue
                nxt, nr = e
                b = buffers.setdefault(id(nxt), {})
                if g is not None:
                    b[nr] = g if b.get(nr) is None else b[nr] + g
                deps[id(nxt)] -= 1
                if deps[id(nxt)] == 0:
                    heapq.heappush(heap, (-nxt.seq, id(nxt), nxt))
            grads_out = g = buf = None        # drop this step's references (see steal)
    return captured


def _root_grads(tensors, grads, create_graph):
    from ..ops import ones_like

    roots, values = [], []
    for i, (t, g) in enumerate(zip(tensors, grads)):
        if not t.requires_grad:
            raise RuntimeError(
                f"element {i} of tensors does not require grad and does not have a grad_fn")
        if g is None:
            if t.numel() != 1:
                raise op_error(RuntimeError, "backward",
                               f"grad can be implicitly created only for scalar outputs "
                               f"(got a tensor of shape {t.shape}); pass gradient=")
            g = ones_like(t)
        elif tuple(g.shape) != t.shape:
            raise op_error(RuntimeError, "backward",
                           f"mismatch in shape: grad_output has shape {tuple(g.shape)} and "
                           f"output has shape {t.shape}")
        roots.append(edge(t))
        values.append(g if create_graph else g.detach())
    return roots, values


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the leaves."""
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    if retain_graph is None:
        retain_graph = create_graph
    roots, values = _root_grads(tensors, grad_tensors, create_graph)
    if inputs is not None:
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        grads = grad(tensors, inputs, grad_tensors, retain_graph=retain_graph,
                      create_graph=create_graph, allow_unused=True)
        with set_grad_enabled(create_graph):
            for t, g in zip(inputs, grads):
                if g is not None:
                    AccumulateGrad(t).apply([g])
        return
    _run(roots, values, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated)."""
    from ..tensor import Tensor

    single = isinstance(outputs, Tensor)
    outputs = [outputs] if single else list(outputs)
    single_in = isinstance(inputs, Tensor)
    inputs = [inputs] if single_in else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    if retain_graph is None:
        retain_graph = create_graph
    roots, values = _root_grads(outputs, grad_outputs, create_graph)
    capture = {}
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"input {i} of autograd.grad does not require grad")
        node, nr = edge(t)
        capture[(id(node), nr)] = i
    captured = _run(roots, values, retain_graph, create_graph, capture=capture,
                    accumulate=False)
    result = []
    for i, t in enumerate(inputs):
        g = captured.get(i)
        if g is None and not allow_unused:
            raise RuntimeError(
                f"one of the differentiated tensors (input {i}, shape {t.shape}) appears "
                "to not have been used in the graph; set allow_unused=True if this is "
                "the desired behavior")
        result.append(g)
    return tuple(result)
