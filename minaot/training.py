"""The training path of ``aot_function``: joint graph, partition, compiled
forward and a lazily compiled backward that plug into eager autograd.

At compile time the pure forward graph gets its joint graph (``joint``),
which the partitioner splits into ``fw`` (outputs + saved values) and ``bw``
(saved values + tangents -> gradients).  Only ``fw`` is compiled now; ``bw`` is
compiled the first time a backward reaches it.  At run time the compiled
forward runs on the inputs (no history is recorded inside it), and the outputs
that need gradients get one :class:`CompiledFunctionBackward` node whose edges
point at the inputs that require grad - to eager autograd the whole compiled
function is one op.  The epilogue then runs with grad mode on, so a mutated
input's copy-back and the views rebuilt on inputs get their usual history.
"""

from __future__ import annotations

from .autograd.engine import Node, SavedTensors, edge
from .autograd.grad_mode import is_grad_enabled, no_grad
from .counters import counters
from .ir import PassManager
from .passes.joint import build_joint
from .passes.partition import default_partition
from .runtime import epilogue


class CompiledFunctionBackward(Node):
    """One autograd node for a whole compiled forward."""

    def __init__(self, program, saved, args):
        super().__init__()
        self.program = program
        self.saved = SavedTensors("CompiledFunctionBackward", "saved tensor", saved)
        self.next_functions = tuple(edge(a) if need else None
                                    for a, need in zip(args, program.info.grad_mask))
        self.num_outputs = program.info.num_tangents
        self.tangent_metas = program.tangent_metas

    def apply(self, grads):
        from .ops import zeros
        if is_grad_enabled():
            raise RuntimeError(
                "double backward through a function compiled with minaot (create_graph=True) "
                "is not supported; differentiate the eager function instead")
        if self.saved is None:
            raise RuntimeError(
                "CompiledFunctionBackward: trying to backward through the graph a second time; "
                "saved values are freed after backward(), pass retain_graph=True the first time")
        tangents = [(g if g is not None else zeros(shape, dtype=dtype, device=self.program.device))
                    .contiguous() for g, (shape, dtype) in zip(grads, self.tangent_metas)]
        bw = self.program.backward()
        out = bw(*self.saved, *tangents)        # SavedTensors: an input changed in place raises
        out = [out] if not isinstance(out, (list, tuple)) else list(out)
        it = iter(out)
        return [next(it) if need else None for need in self.program.info.grad_mask]

    def release(self):
        super().release()
        self.saved = None


class TrainingProgram:
    """The compiled forward, the (lazy) backward and their layouts."""

    def __init__(self, entry, graph, meta, args):
        self.entry = entry              # the aot entry: its compilers, chosen for its device
        self.device = entry.device
        self.meta = meta
        mask = [a.requires_grad for a in args]
        joint, info = build_joint(graph, mask)
        self.joint, self.info = joint, info
        partition = entry.partition_fn or default_partition
        fw, bw = partition(joint, info.num_fwd_outputs)
        for g in (fw, bw):
            PassManager(["canonicalize", "cse", "dce"]).run(g)
        self.fw_graph, self.bw_graph = fw, bw
        # saved values that are inputs themselves (a matmul's operands): the backward gets
        # the caller's tensor, not a copy, and its version counter is checked when the
        # backward reads it, as PyTorch's save_for_backward does; the compiler may return
        # the input as is (``graph.may_return_inputs``).  Not for inputs the function
        # mutates: there the saved value is the old data, which the epilogue overwrites.
        n = info.num_fwd_outputs
        untouched = {i for i, m in enumerate(meta.inputs)
                     if not (m.mutates_data or m.mutates_metadata)}
        fw_args = list(fw.args)
        self.saved_inputs = {j - n: fw_args.index(r) for j, r in enumerate(fw.results)
                             if j >= n and r in fw_args and fw_args.index(r) in untouched}
        fw.may_return_inputs = {j + n for j in self.saved_inputs}
        self.report = getattr(fw, "partition_report", None)
        self.tangent_metas = [(tuple(r.type.shape), _dtype(r.type.dtype))
                              for r, t in zip(graph.results, info.tangent_mask) if t]
        self.fw = entry.fw_compiler(fw, args)
        self._bw = None
        counters["aot"]["compiled_graphs"] += 1

    def backward(self):
        if self._bw is None:
            self._bw = self.entry.bw_compiler(self.bw_graph, None)
            counters["aot"]["bw_compiles"] += 1
        return self._bw

    def __call__(self, args):
        with no_grad():
            outs = self.fw(*[a.detach() for a in args])
        outs = [outs] if not isinstance(outs, (list, tuple)) else list(outs)
        n = self.info.num_fwd_outputs
        fw_outs, saved = outs[:n], outs[n:]
        if is_grad_enabled() and any(self.info.tangent_mask):
            for j, i in self.saved_inputs.items():
                saved[j] = args[i].detach()         # shares the caller's version counter
            node = CompiledFunctionBackward(self, saved, args)
            k = 0
            for o, t in zip(fw_outs, self.info.tangent_mask):
                if t:
                    o._grad_fn, o._output_nr = node, k
                    k += 1
        return epilogue(self.meta, args, fw_outs, self.entry.trace_info.out_layouts)


def _dtype(ir):
    from .dtypes import from_ir
    return from_ir(ir)


def compile_training(entry, graph, meta, args):
    return TrainingProgram(entry, graph, meta, args)
