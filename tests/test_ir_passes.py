"""Tests for the greedy rewrite driver, the PassManager and the passes dce, cse, canonicalize.

The real `prim` dialect is registered elsewhere (from the op registry); here a
minimal stand-in is registered for the duration of each test and the previous
registration (if any) is restored afterwards.
"""

import math
import os

import numpy as np
import pytest

from minaot.ir import (Builder, Dialect, Function, Location, OpSpec, Pass, PassError,
                       PassManager, PatternRewriter, RewriteError, RewritePattern, TensorType,
                       VerifyError, apply_patterns_greedily, get_pass, parse, parse_pipeline,
                       registered_dialects, verify, walk)
from minaot.passes import CSE, DCE, Canonicalize
from minaot.passes.canonicalize import DoubleNeg

pytestmark = pytest.mark.ir


def make_prim_standin():
    d = Dialect("prim")
    for name in ["add", "sub", "mul", "div", "maximum", "minimum"]:
        d.add_op(OpSpec(name, num_operands=2, num_results=1))
    for name in ["neg", "exp"]:
        d.add_op(OpSpec(name, num_operands=1, num_results=1))
    d.add_op(OpSpec("constant", num_operands=0, num_results=1, required_attrs=("value",)))
    d.add_op(OpSpec("reshape", num_operands=1, num_results=1, required_attrs=("shape",)))
    d.add_op(OpSpec("permute", num_operands=1, num_results=1, required_attrs=("perm",)))
    d.add_op(OpSpec("rand", num_operands=0, num_results=1, required_attrs=("seed",), pure=False))
    return d


def make_test_dialect():
    d = Dialect("test")
    d.add_op(OpSpec("map", num_results=1))              # pure, with a region
    d.add_op(OpSpec("yield", num_results=0, pure=False))
    d.add_op(OpSpec("effect", num_results=0, pure=False))
    return d


@pytest.fixture(autouse=True)
def dialects():
    with registered_dialects(make_prim_standin(), make_test_dialect()):
        yield


def run(text, *passes):
    """Parse, run passes (verifying after each), return the printed result."""
    fn = parse(text)
    PassManager(list(passes)).run(fn)
    return str(fn)


def body(text):
    """The lines of a printed function between the signature and the closing brace."""
    return [line.strip() for line in text.splitlines()[1:-1]]


def canon(text, **options):
    return body(run(text, Canonicalize(**options)))


# --- canonicalize: each pattern fires, and a case where it must not -----------------------

def test_mul_by_one_both_sides_and_any_splat_shape():
    text = """func.func @f(%0: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %1 = prim.constant {value = 1.0} : () -> tensor<f32>
  %2 = prim.mul %0, %1 : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %3 = prim.constant {value = 1} : () -> tensor<4xf32>
  %4 = prim.mul %3, %2 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  func.return %4, %2 : tensor<4xf32>, tensor<4xf32>
}"""
    assert canon(text) == ["func.return %0, %0 : tensor<4xf32>, tensor<4xf32>"]


def test_mul_by_one_not_when_broadcasting_changes_the_type():
    text = """func.func @f(%0: tensor<8xf32>) -> (tensor<4x8xf32>) {
  %1 = prim.constant {value = 1.0} : () -> tensor<4x8xf32>
  %2 = prim.mul %0, %1 : (tensor<8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  func.return %2 : tensor<4x8xf32>
}"""
    assert run(text, "canonicalize") == text
    two = text.replace("value = 1.0", "value = 2.0")
    assert run(two, "canonicalize") == two


def test_add_zero_sub_zero():
    text = """func.func @f(%0: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %1 = prim.constant {value = 0.0} : () -> tensor<f32>
  %2 = prim.add %1, %0 : (tensor<f32>, tensor<4xf32>) -> tensor<4xf32>
  %3 = prim.add %2, %1 : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %4 = prim.sub %3, %1 : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %5 = prim.sub %1, %4 : (tensor<f32>, tensor<4xf32>) -> tensor<4xf32>
  func.return %4, %5 : tensor<4xf32>, tensor<4xf32>
}"""
    # 0 - x is not x: the last sub stays
    assert canon(text) == [
        "%1 = prim.constant {value = 0.0} : () -> tensor<f32>",
        "%2 = prim.sub %1, %0 : (tensor<f32>, tensor<4xf32>) -> tensor<4xf32>",
        "func.return %0, %2 : tensor<4xf32>, tensor<4xf32>",
    ]


def test_double_neg():
    text = """func.func @f(%0: tensor<3xf32>) -> (tensor<3xf32>, tensor<3xf32>) {
  %1 = prim.neg %0 : (tensor<3xf32>) -> tensor<3xf32>
  %2 = prim.neg %1 : (tensor<3xf32>) -> tensor<3xf32>
  %3 = prim.neg %2 : (tensor<3xf32>) -> tensor<3xf32>
  func.return %2, %3 : tensor<3xf32>, tensor<3xf32>
}"""
    # neg(neg(x)) -> x; the third neg is then neg(x) and must stay
    assert canon(text) == [
        "%1 = prim.neg %0 : (tensor<3xf32>) -> tensor<3xf32>",
        "func.return %0, %1 : tensor<3xf32>, tensor<3xf32>",
    ]


def test_reshape_patterns():
    text = """func.func @f(%0: tensor<2x6xf32>) -> (tensor<12xf32>, tensor<2x6xf32>, tensor<2x6xf32>) {
  %1 = prim.reshape %0 {shape = [3, 4]} : (tensor<2x6xf32>) -> tensor<3x4xf32>
  %2 = prim.reshape %1 {shape = [12]} : (tensor<3x4xf32>) -> tensor<12xf32>
  %3 = prim.reshape %2 {shape = [2, 6]} : (tensor<12xf32>) -> tensor<2x6xf32>
  %4 = prim.reshape %0 {shape = [2, 6]} : (tensor<2x6xf32>) -> tensor<2x6xf32>
  func.return %2, %3, %4 : tensor<12xf32>, tensor<2x6xf32>, tensor<2x6xf32>
}"""
    assert canon(text) == [
        "%1 = prim.reshape %0 {shape = [12]} : (tensor<2x6xf32>) -> tensor<12xf32>",
        "func.return %1, %0, %0 : tensor<12xf32>, tensor<2x6xf32>, tensor<2x6xf32>",
    ]
    single = """func.func @f(%0: tensor<2x6xf32>) -> (tensor<12xf32>) {
  %1 = prim.reshape %0 {shape = [12]} : (tensor<2x6xf32>) -> tensor<12xf32>
  func.return %1 : tensor<12xf32>
}"""
    assert run(single, "canonicalize") == single


@pytest.mark.task_3_3
def test_permute_patterns():
    x = np.arange(24).reshape(2, 3, 4)
    p1, p2 = (1, 2, 0), (1, 0, 2)
    composed = tuple(p1[i] for i in p2)
    assert np.array_equal(x.transpose(p1).transpose(p2), x.transpose(composed))
    text = """func.func @f(%0: tensor<2x3x4xf32>) -> (tensor<4x3x2xf32>) {
  %1 = prim.permute %0 {perm = [1, 2, 0]} : (tensor<2x3x4xf32>) -> tensor<3x4x2xf32>
  %2 = prim.permute %1 {perm = [1, 0, 2]} : (tensor<3x4x2xf32>) -> tensor<4x3x2xf32>
  func.return %2 : tensor<4x3x2xf32>
}"""
    assert composed == (2, 1, 0)
    assert canon(text) == [
        "%1 = prim.permute %0 {perm = [2, 1, 0]} : (tensor<2x3x4xf32>) -> tensor<4x3x2xf32>",
        "func.return %1 : tensor<4x3x2xf32>",
    ]
    # permute then its inverse composes to the identity, which folds away
    inverse = """func.func @f(%0: tensor<2x3x4xf32>) -> (tensor<2x3x4xf32>) {
  %1 = prim.permute %0 {perm = [1, 2, 0]} : (tensor<2x3x4xf32>) -> tensor<3x4x2xf32>
  %2 = prim.permute %1 {perm = [2, 0, 1]} : (tensor<3x4x2xf32>) -> tensor<2x3x4xf32>
  func.return %2 : tensor<2x3x4xf32>
}"""
    assert canon(inverse) == ["func.return %0 : tensor<2x3x4xf32>"]
    single = """func.func @f(%0: tensor<2x3xf32>) -> (tensor<3x2xf32>) {
  %1 = prim.permute %0 {perm = [1, 0]} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  func.return %1 : tensor<3x2xf32>
}"""
    assert run(single, "canonicalize") == single


def fold(op, a, b, dtype, shape=""):
    """Run canonicalize on `op(constant a, constant b)` and return the folded body."""
    t = f"tensor<{shape}{dtype}>"
    if b is None:
        ops = f"""  %0 = prim.constant {{value = {a}}} : () -> {t}
  %1 = prim.{op} %0 : ({t}) -> {t}
  func.return %1 : {t}"""
    else:
        ops = f"""  %0 = prim.constant {{value = {a}}} : () -> {t}
  %1 = prim.constant {{value = {b}}} : () -> {t}
  %2 = prim.{op} %0, %1 : ({t}, {t}) -> {t}
  func.return %2 : {t}"""
    return canon(f"func.func @f() -> ({t}) {{\n{ops}\n}}")


def folded_value(lines):
    assert len(lines) == 2 and lines[0].startswith("%0 = prim.constant {value = ")
    return parse_value(lines[0])


def parse_value(line):
    text = line.split("{value = ")[1].split("}")[0]
    return float(text) if any(c in text for c in ".ena") else int(text)


@pytest.mark.task_3_2
def test_constant_folding_f32_rounds_through_float32():
    got = folded_value(fold("add", 0.1, 0.2, "f32"))
    assert got == float(np.float32(0.1) + np.float32(0.2)) and got != 0.1 + 0.2
    assert folded_value(fold("add", 0.1, 0.2, "f64")) == 0.1 + 0.2
    assert folded_value(fold("div", 1.0, 0.0, "f32")) == math.inf
    assert math.isnan(folded_value(fold("maximum", "nan", 1.0, "f32")))
    assert folded_value(fold("minimum", 3.0, -2.5, "f64")) == -2.5
    assert folded_value(fold("neg", 2.5, None, "f32")) == -2.5
    assert folded_value(fold("mul", 3.0, 4.0, "f32", shape="4x8x")) == 12.0  # splats fold too


@pytest.mark.task_3_2
def test_constant_folding_i64_uses_integer_arithmetic():
    lines = fold("sub", 3, 10, "i64")
    assert lines[0] == "%0 = prim.constant {value = -7} : () -> tensor<i64>"
    assert folded_value(fold("mul", 2**62, 4, "i64")) == 0  # wraps like int64
    assert folded_value(fold("maximum", 5, 9, "i64")) == 9
    assert folded_value(fold("neg", 5, None, "i64")) == -5
    assert len(fold("div", 7, 2, "i64")) == 4  # integer division: not folded


@pytest.mark.task_3_2
def test_constant_folding_chain_and_location():
    text = """func.func @f(%0: tensor<f32>) -> (tensor<f32>, tensor<f32>) {
  %1 = prim.constant {value = 1.0} : () -> tensor<f32> loc("m.py":1)
  %2 = prim.constant {value = 2.0} : () -> tensor<f32> loc("m.py":2)
  %3 = prim.add %1, %2 : (tensor<f32>, tensor<f32>) -> tensor<f32> loc("m.py":3)
  %4 = prim.mul %3, %3 : (tensor<f32>, tensor<f32>) -> tensor<f32> loc("m.py":4)
  %5 = prim.mul %0, %4 : (tensor<f32>, tensor<f32>) -> tensor<f32> loc("m.py":5)
  func.return %4, %5 : tensor<f32>, tensor<f32>
}"""
    fn = parse(text)
    p = Canonicalize()
    PassManager([p]).run(fn)
    assert body(fn.format(debuginfo=True)) == [
        '%1 = prim.constant {value = 9.0} : () -> tensor<f32> loc("m.py":4)',
        '%2 = prim.mul %0, %1 : (tensor<f32>, tensor<f32>) -> tensor<f32> loc("m.py":5)',
        "func.return %1, %2 : tensor<f32>, tensor<f32>",
    ]
    assert p.stats["canonicalize.rewrites"] == 2
    assert p.stats["canonicalize.fold-constants"] == 2
    assert p.stats["canonicalize.erased"] == 5  # 2 replaced ops + 3 dead constants


@pytest.mark.task_3_2
def test_no_folding_of_non_constants_or_mixed_dtypes():
    text = """func.func @f(%0: tensor<f32>) -> (tensor<f32>, tensor<f32>) {
  %1 = prim.constant {value = 2.0} : () -> tensor<f32>
  %2 = prim.add %0, %1 : (tensor<f32>, tensor<f32>) -> tensor<f32>
  %3 = prim.constant {value = 2} : () -> tensor<i64>
  %4 = prim.add %1, %3 : (tensor<f32>, tensor<i64>) -> tensor<f32>
  func.return %2, %4 : tensor<f32>, tensor<f32>
}"""
    assert run(text, "canonicalize") == text


def test_disabled_patterns():
    text = """func.func @f(%0: tensor<4xf32>) -> (tensor<4xf32>) {
  %1 = prim.constant {value = 1.0} : () -> tensor<f32>
  %2 = prim.mul %0, %1 : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  func.return %2 : tensor<4xf32>
}"""
    assert run(text, Canonicalize(disabled=["mul-by-one"])) == text
    assert run(text, *parse_pipeline("canonicalize{disabled=mul-by-one}")) == text
    assert run(text, "canonicalize") != text


def test_canonicalize_output_verifies_with_the_real_prim_dialect():
    """Once the op registry exists, the rewritten IR must pass its (stricter) verifiers."""
    real = pytest.importorskip("minaot.dialects")
    text = """func.func @f(%0: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<3x2xf32>, tensor<2x3xf32>) {
  %1 = prim.constant {dtype = "float32", shape = [], value = 1.5} : () -> tensor<f32>
  %2 = prim.constant {dtype = "float32", shape = [], value = 2.0} : () -> tensor<f32>
  %3 = prim.mul %1, %2 : (tensor<f32>, tensor<f32>) -> tensor<f32>
  %4 = prim.constant {dtype = "float32", shape = [], value = 3.0} : () -> tensor<f32>
  %5 = prim.sub %3, %4 : (tensor<f32>, tensor<f32>) -> tensor<f32>
  %6 = prim.constant {dtype = "float32", shape = [2, 3], value = 1.0} : () -> tensor<2x3xf32>
  %7 = prim.mul %0, %6 : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %8 = prim.sub %7, %5 : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  %9 = prim.permute %0 {dims = [1, 0]} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  %10 = prim.permute %9 {dims = [1, 0]} : (tensor<3x2xf32>) -> tensor<2x3xf32>
  %11 = prim.permute %10 {dims = [1, 0]} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  %12 = prim.mul %4, %6 : (tensor<f32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return %8, %11, %12 : tensor<2x3xf32>, tensor<3x2xf32>, tensor<2x3xf32>
}"""
    with registered_dialects(real.PRIM):
        fn = parse(text)
        verify(fn)
        PassManager("canonicalize,cse,dce").run(fn)
    assert body(str(fn)) == [
        "%1 = prim.permute %0 {dims = [1, 0]} : (tensor<2x3xf32>) -> tensor<3x2xf32>",
        '%2 = prim.constant {dtype = "float32", shape = [2, 3], value = 3.0} : () -> tensor<2x3xf32>',
        "func.return %0, %1, %2 : tensor<2x3xf32>, tensor<3x2xf32>, tensor<2x3xf32>",
    ]


# --- the greedy driver ------------------------------------------------------------------

class SwapAddOperands(RewritePattern):
    """Deliberately never converges: a + b -> b + a -> a + b ..."""
    name, op_name = "swap-add", "prim.add"

    def match_and_rewrite(self, op, rewriter):
        a, b = op.operands
        new = rewriter.create("prim.add", [b, a], [op.result.type])
        rewriter.replace_op(op, new)
        return True


ADD_TEXT = """func.func @f(%0: tensor<4xf32>, %1: tensor<4xf32>) -> (tensor<4xf32>) {
  %2 = prim.add %0, %1 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  func.return %2 : tensor<4xf32>
}"""


@pytest.mark.task_3_1
def test_greedy_driver_reports_non_convergence():
    fn = parse(ADD_TEXT)
    with pytest.raises(RewriteError, match="did not converge after 10 iterations; "
                                           "last pattern that fired: swap-add"):
        apply_patterns_greedily(fn, [SwapAddOperands()])
    with pytest.raises(RewriteError, match="after 3 iterations"):
        apply_patterns_greedily(fn, [SwapAddOperands()], max_iterations=3)
    verify(fn)  # the IR is still valid
    assert apply_patterns_greedily(fn, [SwapAddOperands()], disabled=["swap-add"]) == 0
    with pytest.raises(PassError, match="canonicalize") as info:
        PassManager([Canonicalize(patterns=[SwapAddOperands()])]).run(fn)
    assert isinstance(info.value.__cause__, RewriteError)


@pytest.mark.task_3_1
def test_greedy_driver_erases_dead_pure_ops_but_keeps_impure(monkeypatch, capsys):
    text = """func.func @f(%0: tensor<4xf32>) -> (tensor<4xf32>) {
  %1 = prim.exp %0 : (tensor<4xf32>) -> tensor<4xf32>
  %2 = prim.rand {seed = 0} : () -> tensor<4xf32>
  %3 = prim.neg %0 : (tensor<4xf32>) -> tensor<4xf32>
  %4 = prim.neg %3 : (tensor<4xf32>) -> tensor<4xf32>
  func.return %4 : tensor<4xf32>
}"""
    monkeypatch.setenv("MINAOT_DEBUG_REWRITE", "1")
    fn = parse(text)
    stats = {}
    assert apply_patterns_greedily(fn, [DoubleNeg()], stats=stats) == 1
    assert body(str(fn)) == ["%1 = prim.rand {seed = 0} : () -> tensor<4xf32>",
                             "func.return %0 : tensor<4xf32>"]
    assert stats == {"double-neg": 1, "erased": 3}
    err = capsys.readouterr().err
    # the dead exp was erased first, so the neg is printed as %3 at that moment
    assert "[rewrite] double-neg: %3 = prim.neg %2 : (tensor<4xf32>) -> tensor<4xf32>" in err


def test_pattern_rewriter_checks_and_locations():
    fn = parse(ADD_TEXT)
    add = fn.ops[0]
    add.loc = Location("u.py", 5)
    r = PatternRewriter()
    r.op = add
    neg = r.create("prim.neg", [fn.args[0]], [add.result.type])
    assert fn.body.ops[0] is neg and neg.loc == Location("u.py", 5)
    other = r.create("prim.neg", [fn.args[0]], [add.result.type], loc=Location("v.py", 1))
    assert other.loc == Location("v.py", 1)
    with pytest.raises(RewriteError, match="type"):
        r.replace_op(add, [r.create("prim.constant", [], [TensorType((), "f32")], {"value": 0.0}).result])
    with pytest.raises(RewriteError, match="1 results, got 2"):
        r.replace_op(add, [fn.args[0], fn.args[1]])
    r.replace_op(add, neg)
    assert fn.results == (neg.result,) and add.parent is None
    r.replace_all_uses_with(neg.result, other.result)
    r.op = fn.return_op
    r.erase_op(neg)
    verify(fn)


# --- DCE ----------------------------------------------------------------------------------

def test_dce_removes_dead_chains_and_keeps_impure_and_unknown():
    text = """func.func @f(%0: tensor<4xf32>) -> (tensor<4xf32>) {
  %1 = prim.exp %0 : (tensor<4xf32>) -> tensor<4xf32>
  %2 = prim.neg %1 : (tensor<4xf32>) -> tensor<4xf32>
  %3 = prim.add %2, %1 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %4 = prim.rand {seed = 1} : () -> tensor<4xf32>
  %5 = weird.op %0 : (tensor<4xf32>) -> tensor<4xf32>
  test.effect %0 : (tensor<4xf32>) -> ()
  %6 = prim.neg %0 : (tensor<4xf32>) -> tensor<4xf32>
  func.return %6 : tensor<4xf32>
}"""
    fn = parse(text)
    dce = DCE()
    dce.run(fn)  # weird.op does not verify, so no PassManager here
    assert body(str(fn)) == [
        "%1 = prim.rand {seed = 1} : () -> tensor<4xf32>",
        "%2 = weird.op %0 : (tensor<4xf32>) -> tensor<4xf32>",
        "test.effect %0 : (tensor<4xf32>) -> ()",
        "%3 = prim.neg %0 : (tensor<4xf32>) -> tensor<4xf32>",
        "func.return %3 : tensor<4xf32>",
    ]
    assert dce.stats == {"dce.erased": 3}


def test_dce_inside_regions():
    text = """func.func @f(%0: f32) -> (f32) {
  %1 = test.map %0 ({
  ^bb0(%2: f32):
    %3 = prim.neg %2 : (f32) -> f32
    %4 = prim.exp %2 : (f32) -> f32
    test.yield %4 : (f32) -> ()
  }) : (f32) -> f32
  %5 = test.map %0 ({
  ^bb0(%6: f32):
    test.yield %6 : (f32) -> ()
  }) : (f32) -> f32
  func.return %1 : f32
}"""
    out = body(run(text, "dce"))
    assert "prim.neg" not in " ".join(out) and len(out) == 6  # the unused map went too


# --- CSE ----------------------------------------------------------------------------------

def test_cse_merges_equal_pure_ops():
    text = """func.func @f(%0: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %1 = prim.exp %0 : (tensor<4xf32>) -> tensor<4xf32>
  %2 = prim.exp %0 : (tensor<4xf32>) -> tensor<4xf32>
  %3 = prim.add %1, %0 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %4 = prim.add %2, %0 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %5 = prim.add %0, %2 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  func.return %4, %5 : tensor<4xf32>, tensor<4xf32>
}"""
    fn = parse(text)
    cse = CSE()
    PassManager([cse]).run(fn)
    assert body(str(fn)) == [
        "%1 = prim.exp %0 : (tensor<4xf32>) -> tensor<4xf32>",
        "%2 = prim.add %1, %0 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>",
        "%3 = prim.add %0, %1 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>",  # operand order matters
        "func.return %2, %3 : tensor<4xf32>, tensor<4xf32>",
    ]
    assert cse.stats == {"cse.merged": 2}


def test_cse_keeps_different_attributes_types_and_impure_ops():
    text = """func.func @f() -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %0 = prim.constant {value = 1.0} : () -> tensor<4xf32>
  %1 = prim.constant {value = 2.0} : () -> tensor<4xf32>
  %2 = prim.constant {value = 0.0} : () -> tensor<4xf32>
  %3 = prim.constant {value = 0.0} : () -> tensor<8xf32>
  %4 = prim.constant {value = -0.0} : () -> tensor<4xf32>
  %5 = prim.constant {value = 1} : () -> tensor<4xf32>
  %6 = prim.rand {seed = 0} : () -> tensor<4xf32>
  %7 = prim.rand {seed = 0} : () -> tensor<4xf32>
  func.return %0, %1, %2, %3, %4, %5, %6, %7 : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}"""
    assert run(text, "cse") == text


def test_cse_reuses_outer_values_in_regions_but_not_the_reverse():
    text = """func.func @f(%0: f32) -> (f32, f32) {
  %1 = prim.exp %0 : (f32) -> f32
  %2 = test.map %0 ({
  ^bb0(%3: f32):
    %4 = prim.exp %0 : (f32) -> f32
    %5 = prim.neg %0 : (f32) -> f32
    test.yield %4, %5 : (f32, f32) -> ()
  }) : (f32) -> f32
  %6 = prim.neg %0 : (f32) -> f32
  func.return %2, %6 : f32, f32
}"""
    out = body(run(text, "cse"))
    assert out[3] == "%4 = prim.neg %0 : (f32) -> f32"
    assert out[4] == "test.yield %1, %4 : (f32, f32) -> ()"
    assert out[6] == "%5 = prim.neg %0 : (f32) -> f32"  # inner neg is not visible here


# --- pass registry, pipelines, PassManager --------------------------------------------------

MESSY = """func.func @f(%0: tensor<4xf32>) -> (tensor<4xf32>) {
  %1 = prim.constant {value = 1.0} : () -> tensor<f32>
  %2 = prim.mul %0, %1 : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %3 = prim.exp %2 : (tensor<4xf32>) -> tensor<4xf32>
  %4 = prim.exp %0 : (tensor<4xf32>) -> tensor<4xf32>
  %5 = prim.add %3, %4 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %6 = prim.neg %5 : (tensor<4xf32>) -> tensor<4xf32>
  func.return %5 : tensor<4xf32>
}"""

CLEAN = """func.func @f(%0: tensor<4xf32>) -> (tensor<4xf32>) {
  %1 = prim.exp %0 : (tensor<4xf32>) -> tensor<4xf32>
  %2 = prim.add %1, %1 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  func.return %2 : tensor<4xf32>
}"""


def test_registry_and_pipeline_parsing():
    assert isinstance(get_pass("dce"), DCE) and isinstance(get_pass("cse"), CSE)
    with pytest.raises(KeyError, match="unknown pass 'no-such-pass'"):
        get_pass("no-such-pass")
    passes = parse_pipeline("canonicalize{max-iterations=3,disabled=a b}, cse,dce")
    assert [p.name for p in passes] == ["canonicalize", "cse", "dce"]
    assert passes[0].max_iterations == 3 and passes[0].disabled == ["a", "b"]


def test_pass_manager_runs_times_and_counts():
    fn = parse(MESSY)
    pm = PassManager("canonicalize,cse,dce")
    assert pm.run(fn) is fn and str(fn) == CLEAN
    assert [name for name, _ in pm.timings] == ["canonicalize", "cse", "dce"]
    assert all(sec >= 0 for _, sec in pm.timings)
    assert pm.stats["canonicalize.rewrites"] == 1 and pm.stats["cse.merged"] == 1
    assert pm.stats["canonicalize.erased"] == 3  # the mul, the constant, the dead neg
    report = pm.report()
    for word in ["canonicalize", "cse", "dce", "(verify)", "total", "cse.merged"]:
        assert word in report
    # passes as instances, names and a mix
    fn2 = parse(MESSY)
    PassManager([Canonicalize(), "cse", DCE()]).run(fn2)
    assert str(fn2) == CLEAN


def test_print_after_all(capsys, monkeypatch):
    monkeypatch.delenv("MINAOT_PRINT_IR", raising=False)
    fn = parse(MESSY)
    PassManager(["cse", "dce"], print_after_all=True).run(fn)
    out = capsys.readouterr().out
    assert out.index("// ----- IR after cse -----") < out.index("// ----- IR after dce -----")
    after_dce = out.split("// ----- IR after dce -----\n")[1]
    assert after_dce.strip() == str(fn)
    # the environment variable does the same
    monkeypatch.setenv("MINAOT_PRINT_IR", "1")
    PassManager(["dce"]).run(parse(MESSY))
    assert "// ----- IR after dce -----" in capsys.readouterr().out


def test_print_after_change(capsys, monkeypatch):
    monkeypatch.delenv("MINAOT_PRINT_IR", raising=False)
    PassManager(["canonicalize", "cse", "dce", "cse"], print_after_change=True).run(parse(MESSY))
    out = capsys.readouterr().out
    assert out.count("// ----- IR after") == 2  # dce and the second cse change nothing
    assert "IR after canonicalize" in out and "IR after cse" in out and "after dce" not in out


class BreaksSSA(Pass):
    """A buggy pass: erases an op that is still used."""
    name = "breaks-ssa"

    def run(self, fn):
        fn.ops[0].erase(force=True)


class Crashes(Pass):
    name = "crashes"

    def run(self, fn):
        raise RuntimeError("oops")


def test_reproducer_on_verification_failure(tmp_path):
    fn = parse(MESSY)
    fn.ops[1].loc = Location("model.py", 42)
    before = fn.format(debuginfo=True)
    pm = PassManager(["cse", BreaksSSA(), "dce"], reproducer_dir=str(tmp_path))
    with pytest.raises(PassError) as info:
        pm.run(fn)
    err = info.value
    assert err.pass_name == "breaks-ssa" and "pass 'breaks-ssa'" in str(err)
    assert isinstance(err.__cause__, VerifyError)
    assert 'loc("model.py":42)' in str(err)  # the error points at the user's line
    repro = pm.last_reproducer
    assert "// pipeline: breaks-ssa,dce" in repro and "// full pipeline: cse,breaks-ssa,dce" in repro
    assert str(parse(repro)) == str(parse(before))  # the reproducer parses: it is the IR before
    assert (tmp_path / "breaks-ssa.mir").read_text() == repro
    assert pm.last_reproducer_path == os.path.join(str(tmp_path), "breaks-ssa.mir")


def test_reproducer_on_exception():
    pm = PassManager(["canonicalize", Crashes()])
    with pytest.raises(PassError, match="pass 'crashes' failed: RuntimeError: oops") as info:
        pm.run(parse(MESSY))
    assert isinstance(info.value.__cause__, RuntimeError)
    assert str(parse(pm.last_reproducer)) == """func.func @f(%0: tensor<4xf32>) -> (tensor<4xf32>) {
  %1 = prim.exp %0 : (tensor<4xf32>) -> tensor<4xf32>
  %2 = prim.exp %0 : (tensor<4xf32>) -> tensor<4xf32>
  %3 = prim.add %1, %2 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  func.return %3 : tensor<4xf32>
}"""  # the IR after canonicalize, before the crash


def test_invalid_input_is_not_blamed_on_a_pass():
    fn = parse(ADD_TEXT)
    fn.result_types = ()
    with pytest.raises(PassError, match="input of pipeline 'dce' does not verify"):
        PassManager(["dce"]).run(fn)
    PassManager(["dce"], verify_each=False).run(fn)  # allowed when verification is off


def test_builder_built_function_through_pipeline():
    f32 = TensorType((4,), "f32")
    fn = Function("g", [f32])
    b = Builder.at_end(fn.body, loc=Location("train.py", 7))
    zero = b.create("prim.constant", [], [TensorType((), "f32")], {"value": 0.0})
    s = b.create("prim.add", [fn.args[0], zero.result], [f32])
    fn.set_results([b.create("prim.neg", [b.create("prim.neg", [s.result], [f32]).result], [f32]).result])
    PassManager("canonicalize,cse,dce").run(fn)
    assert body(str(fn)) == ["func.return %0 : tensor<4xf32>"]
    assert len(list(walk(fn))) == 1

