"""The autograder's kit in minaot.testing: check_compiled, assert_ir_equal, count_ops,
saved_bytes.

Each checker is tested both ways: it passes on correct compiled results (oracle: eager
mode, the partitioner's own report, counts read off the printed text) and it FAILS,
with a message naming the output or input, on a deliberately broken compiler, a wrong
hand-written "compiled" function, or wrong IR.
"""

from __future__ import annotations

import doctest
import re

import numpy as np
import pytest

import minaot
import minaot.nn.functional as F
import minaot.testing
from minaot import default_partition, min_cut_rematerialization_partition
from minaot.testing import assert_ir_equal, check_compiled, count_ops, saved_bytes

pytestmark = pytest.mark.joint


def R(*shape, grad=False):
    return minaot.randn(*shape, requires_grad=grad)


def mlp(x, w1, b1, w2):
    return (F.gelu(x @ w1 + b1) @ w2).pow(2).mean()


# ---------------------------------------------------------------- check_compiled passes
CORRECT = {
    "view_and_new": (lambda x: (x.t(), x * 2), lambda: (R(3, 4),)),
    "view_with_grad": (lambda x: (x[0], x.sin()), lambda: (R(3, 4, grad=True),)),
    "mutates_input": (lambda x, y: (x.mul_(2), y + x)[1], lambda: (R(3, 4), R(4))),
    "metadata_mutation": (lambda x: x.t_(), lambda: (R(3, 4),)),
    "unsqueeze_": (lambda x: (x.unsqueeze_(0), x.sum())[1], lambda: (R(3, 4),)),
    "dropout": (lambda x: F.dropout(x, 0.5, training=True).sum(), lambda: (R(8, 8, grad=True),)),
    "mlp": (mlp, lambda: (R(8, 4), R(4, 5, grad=True), R(5, grad=True), R(5, 2, grad=True))),
    "softmax": (lambda x: x.softmax(dim=-1), lambda: (R(4, 7, grad=True),)),
    "outputs_alias": (lambda x: (lambda y: (y, y[0]))(x * 2), lambda: (R(3, 4, grad=True),)),
    "returns_input": (lambda x: (x, x + 1), lambda: (R(3),)),
    "unused_input": (lambda x, y: x.exp(), lambda: (R(3, grad=True), R(3, grad=True))),
    "pytree": (lambda d: {"a": d["x"] * 2, "b": [d["x"].sum(), 3]},
               lambda: ({"x": R(2, 2, grad=True)},)),
}


@pytest.mark.parametrize("case", sorted(CORRECT))
def test_check_compiled_passes_on_the_reference_compiler(case):
    fn, make = CORRECT[case]
    check_compiled(fn, *make(), backend="numpy")


@pytest.mark.parametrize("case", ["mlp", "mutates_input", "outputs_alias"])
def test_check_compiled_passes_on_numba(case):
    fn, make = CORRECT[case]
    check_compiled(fn, *make())                      # the default backend, as minaot.compile


def test_check_compiled_leaves_the_callers_inputs_alone():
    x = R(3, 4)
    before = x.numpy().copy()
    check_compiled(lambda t: t.mul_(3), x, backend="numpy")
    np.testing.assert_array_equal(x.numpy(), before)
    assert x._version == 0


def test_check_compiled_keeps_duplicate_and_overlapping_inputs():
    x = R(3, grad=True)
    check_compiled(lambda a, b: a * b, x, x, backend="numpy")          # f(x, x): one input
    base = R(4, 4)

    def write_through_view(a, b):
        b.add_(1)                                  # b is a row of a: a sees the write
        return a * 1

    with pytest.warns(UserWarning, match="overlaps another input"):
        check_compiled(write_through_view, base, base[1], backend="numpy")
    # the right output without the write: both inputs (one storage) are left wrong
    def no_write(a, b):
        out = a * 1
        out[1].add_(1)
        return out

    with pytest.raises(AssertionError, match="input 0 after the call differs"):
        check_compiled(write_through_view, base, base[1], compiled=no_write)


def test_check_compiled_strides_on_request():
    fn = lambda x: x.t() * 2                                            # noqa: E731
    check_compiled(fn, R(3, 4), backend="numpy", check_strides=True)
    with pytest.raises(AssertionError, match=r"output has strides \(3, 1\) compiled, \(1, 4\) eager"):
        check_compiled(fn, R(3, 4), compiled=lambda x: (x.t() * 2).contiguous(), check_strides=True)


# ---------------------------------------------------------------- check_compiled fails
def perturbing(scale=2.0):
    """A broken graph compiler: runs the graph, then scales its first result."""
    def compiler(graph, example_inputs):
        run = minaot.nop(graph, example_inputs)

        def wrong(*args):
            out = run(*args)
            return [out[0] * scale] + list(out[1:])
        return wrong
    return compiler


def test_broken_forward_compiler_fails_on_the_output():
    with pytest.raises(AssertionError, match=r"check_compiled\(f\): output\[1\] differs from eager"):
        def f(x):
            return x.t(), x.sin()                 # output 0 is a view: not from the graph
        check_compiled(f, R(3, 4), backend="numpy", fw_compiler=perturbing())


def test_broken_backward_compiler_fails_on_the_gradient():
    args = (R(8, 4), R(4, 5, grad=True), R(5, grad=True), R(5, 2, grad=True))
    check_compiled(mlp, *args, backend="numpy", bw_compiler=perturbing(1.0))   # control
    with pytest.raises(AssertionError, match=r"the gradient of input 1 differs from eager"):
        check_compiled(mlp, *args, backend="numpy", bw_compiler=perturbing(1.5))


def test_gradient_check_uses_sum_or_random_cotangents():
    x = R(5, grad=True)
    for grad in ("sum", "random"):
        check_compiled(lambda t: t.exp(), x, backend="numpy", grad=grad)
        with pytest.raises(AssertionError, match="gradient of input 0"):
            check_compiled(lambda t: t.exp(), x, backend="numpy", grad=grad,
                           bw_compiler=perturbing(-1.0))
    check_compiled(lambda t: t.exp(), x, backend="numpy", grad=None, bw_compiler=perturbing(-1.0))


def test_detached_output_fails_the_gradient_check_and_says_why():
    with pytest.raises(AssertionError, match=r"gradient of input 0 differs.*output requires grad "
                                             r"in eager mode but not compiled"):
        check_compiled(lambda t: t * 3, R(4, grad=True), compiled=lambda t: (t * 3).detach())


def test_missing_input_mutation_fails_on_the_input():
    def f(x, y):
        x.mul_(2)
        return y + x

    with pytest.raises(AssertionError, match=r"input 0 after the call differs from eager"):
        check_compiled(f, R(3, 4), R(4), compiled=lambda x, y: y + 2 * x)


def test_broken_compiler_of_a_mutated_input_fails():
    def f(x):
        x.add_(1)
        return x.sum(dim=0)

    # the graph's results: the new value of x, then the sum; perturbing the first
    # breaks only the copy-back into the caller's tensor (and the output, its view)
    with pytest.raises(AssertionError, match="differs from eager"):
        check_compiled(f, R(3, 4), backend="numpy", fw_compiler=perturbing())


def test_missing_metadata_mutation_fails():
    with pytest.raises(AssertionError, match=r"input 0 after the call has shape \(3, 4\).*compiled, "
                                             r"shape \(4, 3\)"):
        check_compiled(lambda x: x.t_().sum(), R(3, 4), compiled=lambda x: x.t().sum())


def test_output_that_should_be_a_view_fails():
    with pytest.raises(AssertionError, match=r"output\[0\] is a view of input 0 in eager mode, but "
                                             r"compiled it is a new tensor"):
        check_compiled(lambda x: (x.t(), x + 1), R(3, 4),
                       compiled=lambda x: (x.t().clone(), x + 1))


def test_output_that_should_not_be_a_view_fails():
    with pytest.raises(AssertionError, match=r"output is a new tensor, not a view of input 0 in eager "
                                             r"mode, but compiled it shares the storage of input 0"):
        check_compiled(lambda x: x.reshape(12).clone(), R(3, 4), compiled=lambda x: x.reshape(12))


def test_output_that_should_be_the_input_itself_fails():
    with pytest.raises(AssertionError, match=r"output\[0\] is input 0 itself in eager mode"):
        check_compiled(lambda x: (x, x * 2), R(3), compiled=lambda x: (x[:], x * 2))


def test_view_with_the_wrong_layout_fails():
    with pytest.raises(AssertionError, match=r"output is a view of input 0 in both, but with strides"):
        check_compiled(lambda x: x[1:], minaot.ones(4), compiled=lambda x: x[:3])


def test_outputs_aliasing_each_other_fail_when_they_stop():
    def f(x):
        y = x * 2
        return y, y[0]

    with pytest.raises(AssertionError, match=r"output\[0\] and output\[1\] share storage in eager "
                                             r"mode, but do not compiled"):
        check_compiled(f, R(3, 4), compiled=lambda x: (x * 2, (x * 2)[0]))
    with pytest.raises(AssertionError, match=r"do not share storage in eager mode, but do compiled"):
        check_compiled(lambda x: (x * 2, x * 2), R(3), compiled=lambda x: (lambda y: (y, y[:]))(x * 2))


def test_wrong_structure_and_dtype_fail():
    with pytest.raises(AssertionError, match=r"returns \[Tensor, Tensor\], eager returns "
                                             r"\(Tensor, Tensor\)"):
        check_compiled(lambda x: (x, x + 1), R(3), compiled=lambda x: [x, x + 1])
    with pytest.raises(AssertionError, match=r"dtype minaot.float64 compiled.*dtype minaot.float32 eager"):
        check_compiled(lambda x: x + 1, R(3), compiled=lambda x: (x + 1).double())
    with pytest.raises(AssertionError, match=r"output\['b'\]\[1\] is 4 compiled, 3 eager"):
        check_compiled(lambda x: {"a": x, "b": [x, 3]}, R(2),
                       compiled=lambda x: {"a": x, "b": [x, 4]})


def test_check_compiled_rejects_bad_arguments():
    with pytest.raises(ValueError, match="grad must be"):
        check_compiled(lambda x: x, R(3), grad="mean")
    with pytest.raises(TypeError, match="compiled= is given"):
        check_compiled(lambda x: x, R(3), compiled=lambda x: x, fw_compiler=minaot.nop)


# ---------------------------------------------------------------- assert_ir_equal
def _golden():
    def f(x, y):
        return (x * y).sum(dim=1)
    return f, minaot.trace(f, R(2, 3), R(3))


def test_assert_ir_equal_ignores_whitespace():
    _, g = _golden()
    text = str(g)
    messy = "\n\n".join("      " + re.sub(r", ", " ,   ", line) + "   " for line in text.splitlines())
    assert_ir_equal(g, messy)
    assert_ir_equal(text, g)
    assert_ir_equal(g, g.clone())


def test_assert_ir_equal_shows_a_unified_diff():
    _, g = _golden()
    wrong = str(g).replace("mt.mul", "mt.add").replace("dim = [1]", "dim = [0]")
    with pytest.raises(AssertionError) as info:
        assert_ir_equal(g, wrong)
    msg = str(info.value)
    assert msg.startswith("IR differs from the expected text (- expected, + actual)")
    assert "--- expected" in msg and "+++ actual" in msg
    assert re.search(r"^-%2 = mt\.add %0, %1", msg, re.M)
    assert re.search(r"^\+%2 = mt\.mul %0, %1", msg, re.M)
    assert re.search(r"^-%3 = mt\.sum %2 \{dim = \[0\]", msg, re.M)
    assert re.search(r"^ func\.return %3", msg, re.M)          # context line
    with pytest.raises(AssertionError, match=r"^golden: IR differs"):
        assert_ir_equal(g, wrong, msg="golden: ")


def test_assert_ir_equal_renames_ssa_values_on_request():
    _, g = _golden()
    renamed = (str(g).replace("%0", "%x").replace("%1", "%y").replace("%2", "%p")
               .replace("%3", "%s"))
    with pytest.raises(AssertionError, match="IR differs"):
        assert_ir_equal(g, renamed)
    assert_ir_equal(g, renamed, rename_values=True)
    # renaming keeps the structure: using %x where %y was used is still a difference
    swapped = renamed.replace("mt.mul %x, %y", "mt.mul %y, %x")
    with pytest.raises(AssertionError, match="SSA names renumbered"):
        assert_ir_equal(g, swapped, rename_values=True)


def test_assert_ir_equal_with_regions():
    g = minaot.trace(lambda x: (x.exp() * 2).sum(), R(4, 4))
    program = minaot.numba_compiler(g, None)
    text = str(program.graph)
    assert "kernel.fused" in text and "^bb0" in text
    assert_ir_equal(program, text.replace("^bb0", "^bb7").replace("%", "%v"), rename_values=True)


# ---------------------------------------------------------------- count_ops
def _count_in_text(text, pattern):
    return len(re.findall(pattern, text))


def test_count_ops_matches_the_printed_text():
    x = R(4, 3, grad=True)
    joint = minaot.export_joint(lambda t: (t * t).sin().sum() + t.cos().sum(), x)
    text = str(joint)
    for name in ["prim.mul", "prim.sin", "prim.cos", "prim.sum", "prim.add", "prim.neg"]:
        assert count_ops(joint, name) == _count_in_text(text, rf"= {re.escape(name)} ")
    assert count_ops(joint, "mul") == count_ops(joint, "prim.mul") > 0
    assert count_ops(joint, "matmul") == 0
    total = count_ops(joint)
    assert sum(total.values()) == len(joint.ops) + 1              # + func.return
    assert count_ops(text, "prim.mul") == count_ops(joint, "prim.mul")   # parsed text
    fw, bw = default_partition(joint, 1)
    assert count_ops((fw, bw), "sin") == count_ops(fw, "sin") + count_ops(bw, "sin")


def test_count_ops_short_name_spans_dialects_but_not_other_ops():
    g = minaot.trace(lambda x: x + x.sin(), R(3))
    assert count_ops(g, "add") == count_ops(g, "mt.add") == 1
    assert count_ops(g, "prim.add") == 0
    assert count_ops(g, "adds") == 0


def test_count_ops_inside_kernel_regions():
    g = minaot.trace(lambda x, w: ((x @ w).exp() * 2 + 1).sum(dim=1), R(4, 8), R(8, 3))
    from minaot.ir import PassManager
    from minaot.passes.decompose import Decompose
    from minaot.passes.functionalize import functionalize
    fx, _ = functionalize(g)
    PassManager([Decompose(None), "canonicalize", "cse", "dce"]).run(fx)
    program = minaot.numba_compiler(fx, None)
    kg = program.graph
    assert count_ops(kg, "kernel.fused") == 1
    assert count_ops(kg, "prim.exp") == 1                                  # inside the kernel
    assert count_ops(kg, "prim.exp", nested=False) == 0
    assert count_ops(kg, "prim.matmul", nested=False) == 1                 # a library call
    kernel = next(iter(program.kernels.values()))
    loop_text = str(kernel.loop)
    assert count_ops(kernel.loop, "memref.load") == _count_in_text(loop_text, r"memref\.load ")
    assert count_ops(kernel.loop, "scf.for") + count_ops(kernel.loop, "scf.parallel") >= 2
    assert count_ops(kernel.loop, "scf.parallel", nested=False) == 1


def test_count_ops_rejects_what_is_not_a_graph():
    with pytest.raises(TypeError, match="expected a Function"):
        count_ops(42, "add")


# ---------------------------------------------------------------- saved_bytes
SAVED_CASES = {
    "cos3": (lambda x: x.cos().cos().cos(), lambda: (R(10, 10, grad=True),)),
    "cube": (lambda x: x * x * x, lambda: (R(3, grad=True),)),
    "mlp": (mlp, lambda: (R(16, 8), R(8, 32, grad=True), R(32, grad=True), R(32, 4, grad=True))),
    "softmax": (lambda x: x.softmax(dim=1).pow(2).sum(), lambda: (R(4, 6, grad=True),)),
}
PARTITIONERS = {
    "default": default_partition,
    "min_cut": min_cut_rematerialization_partition,
    "budget_0.5": lambda j, n: min_cut_rematerialization_partition(j, n, memory_budget=0.5),
    "budget_0": lambda j, n: min_cut_rematerialization_partition(j, n, memory_budget=0.0),
}


@pytest.mark.parametrize("part", sorted(PARTITIONERS))
@pytest.mark.parametrize("case", sorted(SAVED_CASES))
def test_saved_bytes_matches_the_partition_report(case, part):
    fn, make = SAVED_CASES[case]
    joint = minaot.export_joint(fn, *make())
    fw, bw = PARTITIONERS[part](joint, joint.joint_info.num_fwd_outputs)
    assert saved_bytes(fw, bw) == fw.partition_report.saved_bytes
    assert saved_bytes((fw, bw)) == saved_bytes(fw, bw)


def test_saved_bytes_by_hand():
    x = R(10, 10, grad=True)                       # 400 bytes in float32
    joint = minaot.export_joint(lambda t: t.cos().cos().cos(), x)
    assert saved_bytes(default_partition(joint, 1)) == 3 * 400         # x, cos x, cos cos x
    assert saved_bytes(min_cut_rematerialization_partition(joint, 1)) == 400   # x alone


def test_saved_bytes_of_parsed_graphs_needs_the_count():
    joint = minaot.export_joint(lambda t: t.cos().cos().cos(), R(10, 10, grad=True))
    fw, bw = default_partition(joint, 1)
    fw2, bw2 = minaot.ir.parse(str(fw)), minaot.ir.parse(str(bw))
    with pytest.raises(ValueError, match="pass num_saved="):
        saved_bytes(fw2, bw2)
    assert saved_bytes(fw2, bw2, num_saved=3) == 1200
    _, bw_other = default_partition(minaot.export_joint(lambda t: t.cos().cos().cos(),
                                                        R(5, 5, grad=True)), 1)
    with pytest.raises(ValueError, match="are not the backward's first 3 arguments"):
        saved_bytes(fw, bw_other)


def test_saved_bytes_of_a_compiled_training_step():
    graphs = []

    def keep(graph, example_inputs):
        graphs.append(graph)
        return minaot.nop(graph, example_inputs)

    args = (R(16, 8), R(8, 32, grad=True), R(32, grad=True), R(32, 4, grad=True))
    f = minaot.aot_function(mlp, fw_compiler=keep, bw_compiler=keep,
                            partition_fn=min_cut_rematerialization_partition)
    f(*args).backward()
    fw, bw = graphs
    assert saved_bytes(fw, bw) == fw.partition_report.saved_bytes > 0


# ---------------------------------------------------------------- the docstring examples
def test_docstring_examples_run():
    result = doctest.testmod(minaot.testing, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 15 and result.failed == 0
