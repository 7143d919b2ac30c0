"""Reinplacing in the numba backend: the new value of a mutated input is written straight into
the input's memory when nothing reads the old value afterwards, and the epilogue's copy back
then moves nothing.  Oracle: eager, including the state of every input afterwards."""

import numpy as np
import pytest

import minaot
from minaot.numba_backend import NumbaProgram


def compile_and_keep(fn):
    programs = []

    def compiler(graph, example_inputs):
        prog = NumbaProgram(graph)
        programs.append(prog)
        return prog
    return minaot.aot_function(fn, fw_compiler=compiler, bw_compiler=compiler,
                               inference_compiler=compiler), programs


def run_both(fn, *arrays):
    compiled, programs = compile_and_keep(fn)
    for _ in range(2):                      # the second call reuses the compiled entry
        eager_in2 = [minaot.tensor(a) for a in arrays]
        comp_in = [minaot.tensor(a) for a in arrays]
        storages = [t._data for t in comp_in]
        want = fn(*eager_in2)
        got = compiled(*comp_in)
        if want is None:
            assert got is None
        for w, g in zip(want if isinstance(want, tuple) else (want,),
                        got if isinstance(got, tuple) else (got,)):
            if w is not None:
                np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-6, atol=1e-6)
        for e, c, s in zip(eager_in2, comp_in, storages):
            np.testing.assert_allclose(c.numpy(), e.numpy(), rtol=1e-6, atol=1e-6)
            assert c._data is s or np.shares_memory(c._data, s)     # still the caller's memory
    return programs[0]


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_an_optimizer_style_update_writes_into_its_inputs():
    from minaot.optim.adam import _adam_step
    p, g, m, v = (rand(8, 16, seed=i) for i in range(4))
    v = np.abs(v)
    scalars = np.array([1e-3, 1.0], np.float32)
    prog = run_both(lambda p, g, m, v, s: _adam_step(p, g, m, v, s, 0.9, 0.999, 1e-8),
                    p, g, m, v, scalars)
    assert len(prog.reinplaced) == 3


def test_the_old_value_read_after_a_copy_in():
    def fn(a, b):
        s = a * 2
        a.copy_(b)
        return s + 1
    run_both(fn, rand(4, 5), rand(4, 5, seed=1))


def test_transposed_read_of_the_mutated_input_is_not_written_in_place():
    def fn(a):
        a.copy_(a + a.t())
        return a.sum()
    prog = run_both(fn, rand(6, 6))
    assert not prog.reinplaced


def test_a_reduction_of_the_mutated_input():
    def fn(a):
        a.sub_(a.sum(dim=1, keepdim=True))
        return a * 1
    run_both(fn, rand(5, 7))


def test_a_view_read_after_the_mutation_and_a_returned_input():
    def fn(a, b):
        row = a[1]
        a.mul_(2)
        b.add_(a)
        return row + 1, a
    run_both(fn, rand(3, 4), rand(3, 4, seed=2))


def test_two_mutated_inputs_reading_each_other():
    def fn(a, b):
        old_a = a * 1
        a.copy_(b * 2)
        b.copy_(old_a + 1)
        return None
    run_both(fn, rand(4, 4), rand(4, 4, seed=3))


@pytest.mark.parametrize("shape", [(7,), (3, 1, 5)])
def test_broadcast_operands_and_shapes(shape):
    def fn(a, w):
        a.mul_(w).add_(1)
        return a.sum()
    run_both(fn, rand(*shape), rand(*shape[-1:], seed=4))


def test_a_mutated_input_that_is_a_non_contiguous_view():
    base = minaot.tensor(rand(6, 8))
    eager = minaot.tensor(base.numpy().copy())
    compiled, programs = compile_and_keep(lambda a: a.mul_(3))
    compiled(base[:, ::2])
    eager[:, ::2].mul_(3)
    np.testing.assert_allclose(base.numpy(), eager.numpy())


def test_a_kernel_that_loads_the_old_value_after_storing_the_new_one_is_not_reinplaced():
    """The order rule of ``Kernel.writes_in_place``, on the kernel's loop IR: today's emitter
    loads the old ``a`` first (so it may write the new ``a`` in place); the same loop with
    the new value stored before the old one is loaded must not be written in place."""
    from minaot.ir import parse

    def fn(a, b):
        t = b + 1
        s = a * 2 + b
        a.copy_(t)
        return s
    prog = run_both(fn, rand(4, 6), rand(4, 6, seed=5))
    (kern,) = prog.kernels.values()
    a_operand, new_a = 1, 1                     # kernel.fused %b, %a -> (s, new a)
    assert kern.op.operands[a_operand] is prog.graph.args[0]
    assert prog.reinplaced and kern.writes_in_place(a_operand, new_a)
    text = str(kern.loop)
    lines = text.splitlines()
    load_a = next(i for i, ln in enumerate(lines) if f"memref.load %{a_operand}," in ln)
    store_new = next(i for i, ln in enumerate(lines) if f"memref.store" in ln
                     and f", %{len(kern.op.operands) + new_a}," in ln)
    # move the old a's load (and the ops before the first store that need it) after the store
    block = lines[load_a:store_new + 1]
    moved = [ln for ln in block if "memref.store" in ln and f"%{len(kern.op.operands) + new_a}," in ln]
    deps = [ln for ln in block if ln not in moved]
    needed = [ln for ln in deps if "memref.load %0" in ln or "arith.addf %10, %5" in ln]
    assert len(needed) == 2                     # the printed loop of today's pipeline
    rest = [ln for ln in deps if ln not in needed]
    lines[load_a:store_new + 1] = needed + moved + rest
    kern.loop = parse("\n".join(lines))
    assert not kern.writes_in_place(a_operand, new_a)
