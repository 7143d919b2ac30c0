"""How a compiled program keeps its values: one slot per value, freed after its last use.

Both graph compilers that run a fused graph step by step (the ``numba`` backend's
:class:`~minaot.numba_backend.NumbaProgram` and the ``cuda`` backend's
:class:`~minaot.cuda_backend.CudaProgram`) hold the values of a run in a flat list, an
*environment*: the graph's arguments first, then every op's results in program order.
A step reads its operands' slots, writes its results' slots and then clears the slots
of the operands it used for the last time, so that a long graph holds only the values
still needed (peak memory follows the graph's width, not its length).  The graph's
results are never cleared: the caller receives them at the end.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SlotPlan:
    """``slot`` (value -> index), ``last_use`` (value -> index of the last op reading it)
    and ``keep`` (the graph's results, never dropped) of one graph."""

    slot: dict
    last_use: dict
    keep: set
    arg_slots: list
    result_slots: list

    @property
    def n_slots(self) -> int:
        return len(self.slot)

    def step(self, k, op):
        """``(operand slots, result slots, slots to clear after the step)`` of op ``k``."""
        drop = [self.slot[v] for v in dict.fromkeys(op.operands)
                if self.last_use[v] == k and v not in self.keep]
        return [self.slot[v] for v in op.operands], [self.slot[r] for r in op.results], drop


def plan_slots(g) -> SlotPlan:
    """The :class:`SlotPlan` of function ``g`` (its ops in order, then ``func.return``)."""
    slot = {v: i for i, v in enumerate(g.args)}
    for op in g.ops:
        for r in op.results:
            slot[r] = len(slot)
    last_use = {}
    for k, op in enumerate(g.ops):
        for v in op.operands:
            last_use[v] = k
    return SlotPlan(slot, last_use, set(g.results), [slot[v] for v in g.args],
                    [slot[v] for v in g.results])
