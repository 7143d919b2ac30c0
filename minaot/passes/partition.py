"""partition: split a joint graph into a forward and a backward graph.

Both partitioners take ``(joint, num_fwd_outputs)`` and return ``(fw, bw)``.
The forward returns the user outputs followed by the *saved* values; the
backward takes the saved values followed by the tangents and returns the
gradients.  What differs is the choice of saved values:

* :func:`default_partition` saves what eager autograd would: every value the
  forward computes (for its outputs) that the backward reads.
* :func:`min_cut_rematerialization_partition` builds a flow network over the
  values that do not depend on tangents.  Each value ``v`` is split into
  ``v_in -> v_out`` with the cost of saving it (its byte size, doubled when
  the value is not *materialized*: when every user would fuse it, so saving
  it costs a write the forward would not do otherwise); data edges
  ``v_out -> user_in`` cannot be cut; graph inputs and values that must not be
  recomputed (outputs of matmuls, reductions, random ops) hang off the source;
  values the backward needs hang off the sink.  A minimum cut (networkx
  max-flow) is the cheapest set of values to save; everything on the sink side
  is recomputed in the backward.  Pointwise and view ops are cheap to
  recompute once fused.  Ties go to the cut closer to the backward, i.e. to
  fewer recomputed ops (the capacity is ``bytes * 10**6 + distance``), except
  between a view and its base: of equal bytes the base is saved and the view
  remade in the backward (a view costs nothing to remake, while a saved view
  of a graph input is copied by a runtime that gives each saved value its own
  memory).

``memory_budget`` (1.0 by default) trades recomputation for memory: at 1.0 a
value the forward computes that feeds a backward matmul directly is saved, not
recomputed (it would be materialized anyway, PyTorch's
"ban_recompute_materialized_backward"); lowering the budget lifts those bans
one at a time, largest byte saving per recomputed op first, until the saved
bytes fall to ``min + budget * (max - min)``; at 0 only graph inputs and
values that may never be recomputed are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..dialects import meta_of_type  # noqa: F401  (kept for readers: types carry shapes)
from ..ir import Function
from ..ops.registry import get_op

RECOMPUTABLE_KINDS = ("pointwise", "view", "creation")
#: ops a fused kernel can read a value in without it ever being written to memory
FUSIBLE_KINDS = ("pointwise", "view", "creation", "reduction", "random")
INF = float("inf")
#: added to a view's capacity: of a view and its base, of equal bytes, the base is saved
VIEW_TIE = 101


@dataclass
class PartitionReport:
    """What a partitioner decided: saved values, their bytes, recomputed ops."""

    partitioner: str
    saved: list = field(default_factory=list)        # (description, type, nbytes)
    recomputed: list = field(default_factory=list)   # op names recomputed in the backward

    @property
    def saved_bytes(self) -> int:
        return sum(n for _, _, n in self.saved)

    def __str__(self):
        lines = [f"// partition ({self.partitioner}): {len(self.saved)} saved values, "
                 f"{self.saved_bytes} bytes; {len(self.recomputed)} ops recomputed in the backward"]
        for desc, t, n in self.saved:
            lines.append(f"//   saved {desc}: {t} ({n} bytes)")
        if self.recomputed:
            lines.append("//   recomputed: " + ", ".join(self.recomputed))
        return "\n".join(lines)


# ---------------------------------------------------------------- graph helpers
def _info(joint):
    info = getattr(joint, "joint_info", None)
    if info is not None:
        return info.num_primals
    return sum(1 for a in joint.args if not (a.name_hint or "").startswith("tangents"))


def _depends_on_tangents(joint, num_primals):
    tang = set(joint.args[num_primals:])
    dep = set(tang)
    for op in joint.ops:
        if any(v in dep for v in op.operands):
            dep.update(op.results)
    return dep


def _slice(outputs, stop):
    """Ops needed to compute ``outputs`` when the values in ``stop`` are given."""
    needed, stack, seen = set(), list(outputs), set()
    while stack:
        v = stack.pop()
        if v in seen or v in stop:
            continue
        seen.add(v)
        op = v.owner if not v.is_block_arg else None
        if op is None:
            continue
        needed.add(op)
        stack.extend(op.operands)
    return needed


def extract(joint: Function, inputs, outputs, name: str, keep=()) -> Function:
    """A new function with ``inputs`` as arguments computing ``outputs`` (cloned ops, joint order),
    plus the ops that compute the values in ``keep`` even if no output reads them."""
    needed = _slice(list(outputs) + list(keep), set(inputs))
    fn = Function(name, [v.type for v in inputs])
    mapping = dict(zip(inputs, fn.args))
    for op in joint.ops:
        if op not in needed:
            continue
        for v in op.operands:
            if v not in mapping:
                raise ValueError(f"partition: {op.name} needs a value that is neither saved nor "
                                 f"computable in {name}")
        clone = op.clone(mapping)
        fn.body.append(clone)
        for a, b in zip(op.results, clone.results):
            mapping[a] = b
    missing = [v for v in outputs if v not in mapping]
    if missing:
        raise ValueError(f"partition: {name} cannot compute an output of type {missing[0].type}")
    fn.set_results([mapping[v] for v in outputs])
    for a, b in zip(inputs, fn.args):
        b.name_hint = a.name_hint
    return fn


def _describe(v, joint):
    if v.is_block_arg:
        return v.name_hint or f"arg{joint.args.index(v)}"
    return v.owner.name


def _build(joint, num_fwd_outputs, saved, partitioner):
    num_primals = _info(joint)
    primals = joint.args[:num_primals]
    tangents = joint.args[num_primals:]
    results = list(joint.results)
    fwd_outs, grads = results[:num_fwd_outputs], results[num_fwd_outputs:]
    order = {v: i for i, v in enumerate(primals)}
    for i, op in enumerate(joint.ops):
        for r in op.results:
            order[r] = len(primals) + i
    saved = sorted(set(saved), key=lambda v: order[v])
    # Every random op of the forward runs in the forward, in program order, even one
    # whose draw nothing reads: it still advances the generator, as in eager.
    tdep = _depends_on_tangents(joint, num_primals)
    draws = [r for op in joint.ops if get_op(op.opname).kind == "random"
             for r in op.results if r not in tdep]
    fw = extract(joint, primals, fwd_outs + saved, joint.name.replace("_joint", "") + "_fw",
                 keep=draws)
    bw = extract(joint, saved + tangents, grads, joint.name.replace("_joint", "") + "_bw")
    in_fw = _slice(fwd_outs + saved, set(primals))
    in_bw = _slice(grads, set(saved) | set(tangents))
    report = PartitionReport(partitioner)
    for v in saved:
        report.saved.append((_describe(v, joint), str(v.type), v.type.nbytes))
    report.recomputed = [op.name for op in joint.ops
                         if op in in_fw and op in in_bw and op.opname != "constant"]
    fw.partition_report = bw.partition_report = report
    fw.num_saved = bw.num_saved = len(saved)
    return fw, bw


# ---------------------------------------------------------------- default
def default_partition(joint: Function, num_fwd_outputs: int):
    """Save every value the forward computes that the backward reads (eager autograd's choice).

    The forward is the slice of the joint that computes the first ``num_fwd_outputs``
    results from the primals (:func:`_slice`); its values are the primals and those
    ops' results.  The backward is the slice computing the gradients (the other
    results) given the forward's values and the tangents.  Saved: each forward value
    that a backward op reads, and each gradient that is itself a forward value.
    :func:`_build` makes the two functions."""
    # BEGIN TASK 6.1: the default partition: save every forward value the backward reads
    num_primals = _info(joint)
    primals = list(joint.args[:num_primals])
    fwd_ops = _slice(list(joint.results)[:num_fwd_outputs], set(primals))
    fw_values = set(primals) | {r for op in fwd_ops for r in op.results}
    bw_ops = _slice(list(joint.results)[num_fwd_outputs:], fw_values | set(joint.args[num_primals:]))
    saved = {v for op in bw_ops for v in op.operands if v in fw_values}
    saved |= {v for v in list(joint.results)[num_fwd_outputs:] if v in fw_values}
    return _build(joint, num_fwd_outputs, saved, "default")
    # END TASK 6.1


# ---------------------------------------------------------------- min-cut
def _recomputable(op) -> bool:
    return get_op(op.opname).kind in RECOMPUTABLE_KINDS


def _materialized(v) -> bool:
    """Is ``v`` in memory whether or not it is saved?  A graph input is; so is the result
    of an op no kernel fuses (a matmul writes its product), and a value returned or read
    by such an op (a matmul's operand, a cat's).  A value made by a fusible op all of
    whose users are fusible lives only in registers inside a fused kernel: saving it
    costs an extra write in the forward and an extra read in the backward (PyTorch's
    ``is_materialized``, whose ``is_fusible(node, user)`` asks it of both ends).  So of
    a linear layer's product ``x @ W.T`` and its ``+ bias``, equal in bytes, the product
    is saved and the backward adds the bias again inside its fused kernel."""
    if v.is_block_arg or get_op(v.owner.opname).kind not in FUSIBLE_KINDS:
        return True
    return any(u.name == "func.return" or get_op(u.opname).kind not in FUSIBLE_KINDS
               for u in v.users)


def _solve(joint, num_fwd_outputs, soft_banned):
    """The values to save: a minimum cut of the flow network described in the module
    docstring, over the *candidates* (the primals and every result that does not
    depend on the tangents).

    Each candidate ``v`` is an edge ``("in", id(v)) -> ("out", id(v))`` of capacity
    ``v.type.nbytes * 10**6 + distance`` (plus ``VIEW_TIE`` for a view's result;
    ``distance``: 1 for a value a backward op reads, one more per step further from the
    backward, at most 100), with the bytes counted twice for a value that is not
    materialized (:func:`_materialized`): layer
    norm's ``x - mean`` costs as many bytes as ``x`` but would be written only to be
    saved, so ``x`` (an input, in memory anyway) and the small ``mean`` are saved.
    Primals, and forward values whose op may not be recomputed (``_recomputable``) or that are in
    ``soft_banned``, hang off ``"source"``; ``("out", v)`` goes to ``"sink"`` when a
    backward op (one with a tangent-dependent result) reads ``v``, or ``v`` is a
    gradient result, and to ``("in", r)`` of each candidate result ``r`` of its other
    users, all with infinite capacity.  After ``networkx.minimum_cut``, a value is
    saved when its ``in`` node is on the source side and its ``out`` node is not.
    Returns a set of values (empty if the network has no source or no sink)."""
    # BEGIN TASK 6.2: the min-cut flow network: choose the saved values by a minimum cut
    import networkx as nx

    num_primals = _info(joint)
    primals = list(joint.args[:num_primals])
    tdep = _depends_on_tangents(joint, num_primals)
    fwd_ops = _slice(list(joint.results)[:num_fwd_outputs], set(primals))
    fw_values = {r for op in fwd_ops for r in op.results}
    candidates = list(primals) + [r for op in joint.ops for r in op.results if r not in tdep]
    cand = set(candidates)
    # distance from the backward: 1 for values a backward op reads, +1 per step away
    dist = {}
    for v in reversed(candidates):
        ds = [1 if u.results and any(r in tdep for r in u.results) else dist.get(u.results[0], 100) + 1
              for u in v.users if u.name != "func.return"]
        dist[v] = min(ds + [100])
    g = nx.DiGraph()
    for v in candidates:
        vid = id(v)
        weight = v.type.nbytes * (1 if _materialized(v) else 2)
        op = None if v.is_block_arg else v.owner
        # a view costs what its base costs, plus a tie-breaker: save the base, remake the view
        view = op is not None and get_op(op.opname).kind == "view"
        g.add_edge(("in", vid), ("out", vid),
                   capacity=weight * 10**6 + min(dist[v], 100) + (VIEW_TIE if view else 0))
        banned = op is None or (v in fw_values and (not _recomputable(op) or v in soft_banned))
        if banned:
            g.add_edge("source", ("in", vid), capacity=INF)
        for u in v.users:
            if u.name == "func.return":
                continue
            if any(r in tdep for r in u.results):
                g.add_edge(("out", vid), "sink", capacity=INF)
            else:
                for r in u.results:
                    if r in cand:
                        g.add_edge(("out", vid), ("in", id(r)), capacity=INF)
    for v in list(joint.results)[num_fwd_outputs:]:       # a gradient that needs no tangent
        if v in cand:
            g.add_edge(("out", id(v)), "sink", capacity=INF)
    if "sink" not in g or "source" not in g:
        return set()
    _, (reachable, _) = nx.minimum_cut(g, "source", "sink")
    by_id = {id(v): v for v in candidates}
    return {by_id[vid] for (kind, vid) in (n for n in reachable if isinstance(n, tuple))
            if kind == "in" and ("out", vid) not in reachable}
    # END TASK 6.2


def _materialized_bans(joint, num_fwd_outputs):
    """Forward values that feed a backward matmul directly (saving them is free: they
    would be materialized anyway)."""
    num_primals = _info(joint)
    tdep = _depends_on_tangents(joint, num_primals)
    fwd_ops = _slice(list(joint.results)[:num_fwd_outputs], set(joint.args[:num_primals]))
    bans = set()
    for op in fwd_ops:
        for r in op.results:
            users = list(r.users)
            while users:
                u = users.pop()
                if u.name == "func.return":
                    continue
                if get_op(u.opname).kind == "view":
                    users.extend(u.result.users)
                elif u.opname == "matmul" and any(x in tdep for x in u.results):
                    bans.add(r)
    return bans


def min_cut_rematerialization_partition(joint: Function, num_fwd_outputs: int,
                                        memory_budget: float = 1.0):
    """Save the cheapest set of values (min cut); recompute cheap ops in the backward."""
    if not 0.0 <= memory_budget <= 1.0:
        raise ValueError(f"memory_budget must be in [0, 1], got {memory_budget}")
    bans = _materialized_bans(joint, num_fwd_outputs)

    def cost(saved):
        return sum(v.type.nbytes for v in saved)

    saved = _solve(joint, num_fwd_outputs, bans)
    if memory_budget < 1.0 and bans:
        floor = _solve(joint, num_fwd_outputs, set())
        target = cost(floor) + memory_budget * (cost(saved) - cost(floor))
        remaining = sorted(bans, key=lambda v: -v.type.nbytes)
        while cost(saved) > target and remaining:
            remaining.pop(0)
            saved = _solve(joint, num_fwd_outputs, set(remaining))
        if cost(saved) > target:
            saved = floor
    name = "min_cut" if memory_budget == 1.0 else f"min_cut(memory_budget={memory_budget})"
    return _build(joint, num_fwd_outputs, saved, name)
