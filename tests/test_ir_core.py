"""Tests for minaot.ir: types, core data structures, printer/parser round trip,
the verifier, dialect registry and the builder."""

import math

import pytest

from minaot.ir import (Block, Builder, Dialect, Function, IndexType, Location, MemRefType,
                       Operation, OpSpec, ParseError, Region, ScalarType, TensorType,
                       VerifyError, get_dialect, lookup_op, parse, parse_module,
                       parse_type, register_dialect, registered_dialects,
                       unregister_dialect, verify, walk)

pytestmark = pytest.mark.ir

F32_4x8 = TensorType((4, 8), "f32")
F32_8 = TensorType((8,), "f32")
F32_0D = TensorType((), "f32")


def _same_shape_verify(op):
    if op.operands and op.results and op.operands[0].type != op.results[0].type:
        raise VerifyError("result type must equal the first operand's type")


def make_test_dialect():
    d = Dialect("test")
    d.add_op(OpSpec("add", num_operands=2, num_results=1))
    d.add_op(OpSpec("mul", num_operands=2, num_results=1))
    d.add_op(OpSpec("neg", num_operands=1, num_results=1, verify=_same_shape_verify))
    d.add_op(OpSpec("constant", num_operands=0, num_results=1, required_attrs=("value",)))
    d.add_op(OpSpec("split", num_operands=1, num_results=(1, None)))
    d.add_op(OpSpec("print", num_results=0, pure=False))
    d.add_op(OpSpec("map", num_operands=range(1, 4), num_results=1))
    d.add_op(OpSpec("yield", num_results=0, pure=False))
    return d


@pytest.fixture
def test_dialect():
    with registered_dialects(make_test_dialect()):
        yield get_dialect("test")


def roundtrip(fn, debuginfo=False):
    """print -> parse -> print gives the same text; returns the parsed function."""
    text = fn.format(debuginfo=debuginfo)
    again = parse(text)
    assert again.format(debuginfo=debuginfo) == text
    assert str(parse(str(fn))) == str(fn)
    return again


def example_function():
    fn = Function("f", [F32_4x8, F32_8])
    b = Builder.at_end(fn.body)
    x, w = fn.args
    add = b.create("mt.add", [x, w], [F32_4x8])
    s = b.create("mt.sum", [add.result], [TensorType((4, 1), "f32")], {"keepdim": True, "dim": [1]})
    b.create("mt.constant", [], [F32_0D], {"value": 2.0})
    b.create("mt.split", [s.result], [TensorType((2, 1), "f32")] * 2, {"dim": 0, "sizes": [2, 2]})
    fn.set_results([add.result, s.result])
    return fn


EXAMPLE_TEXT = """\
func.func @f(%0: tensor<4x8xf32>, %1: tensor<8xf32>) -> (tensor<4x8xf32>, tensor<4x1xf32>) {
  %2 = mt.add %0, %1 : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %3 = mt.sum %2 {dim = [1], keepdim = true} : (tensor<4x8xf32>) -> tensor<4x1xf32>
  %4 = mt.constant {value = 2.0} : () -> tensor<f32>
  %5, %6 = mt.split %3 {dim = 0, sizes = [2, 2]} : (tensor<4x1xf32>) -> (tensor<2x1xf32>, tensor<2x1xf32>)
  func.return %2, %3 : tensor<4x8xf32>, tensor<4x1xf32>
}"""


# --- types ---------------------------------------------------------------------------

def test_type_printing_and_parsing():
    cases = {
        "tensor<4x8xf32>": TensorType((4, 8), "f32"),
        "tensor<f32>": TensorType((), "f32"),
        "tensor<0x3xi64>": TensorType((0, 3), "i64"),
        "tensor<2xi1>": TensorType([2], "i1"),
        "memref<4x8xf64>": MemRefType((4, 8), "f64"),
        "f32": ScalarType("f32"),
        "i1": ScalarType("i1"),
        "index": IndexType(),
    }
    for text, ty in cases.items():
        assert str(ty) == text
        assert parse_type(text) == ty
        assert hash(parse_type(text)) == hash(ty)


def test_tensor_type_properties():
    t = TensorType([4, 8], "f32")
    assert t.shape == (4, 8) and t.rank == 2 and t.numel == 32 and t.nbytes == 128
    assert TensorType((), "f64").numel == 1 and TensorType((), "f64").nbytes == 8
    assert TensorType((3,), "i64").nbytes == 24 and TensorType((5,), "i1").nbytes == 5
    assert t.with_shape((2,)) == TensorType((2,), "f32")
    assert TensorType((4,), "f32") != TensorType((4,), "f64")
    assert TensorType((4,), "f32") != MemRefType((4,), "f32")


def test_bad_types():
    with pytest.raises(ValueError):
        TensorType((4,), "f16")
    with pytest.raises(ValueError):
        TensorType((-1,), "f32")
    for text in ["tensor<4xf16>", "tensor<?xf32>", "float", "tensor<4x8>"]:
        with pytest.raises(ValueError):
            parse_type(text)


# --- core: values, ops, blocks ------------------------------------------------------

def test_operation_basics():
    fn = example_function()
    add, s, c, split = fn.ops
    assert add.dialect == "mt" and add.opname == "add"
    assert s.attributes == {"keepdim": True, "dim": (1,)}  # list normalised to tuple
    assert split.attributes["sizes"] == (2, 2)
    assert len(split.results) == 2 and split.results[1].index == 1
    with pytest.raises(ValueError):
        split.result
    assert add.parent is fn.body and add.parent_op is fn.op
    assert fn.results == (add.result, s.result)
    assert fn.result_types == (F32_4x8, TensorType((4, 1), "f32"))
    assert [op.name for op in fn.ops] == ["mt.add", "mt.sum", "mt.constant", "mt.split"]
    assert fn.body.ops[-1].name == "func.return"


def test_attributes_are_checked():
    x = Function("f", [F32_8]).args[0]
    with pytest.raises(TypeError):
        Operation("test.neg", [x], [F32_8], {"value": {1: 2}})
    with pytest.raises(TypeError):
        Operation("test.neg", [x], ["tensor<8xf32>"])
    with pytest.raises(TypeError):
        Operation("test.neg", ["x"], [F32_8])
    with pytest.raises(ValueError):
        Operation("noDialect", [x], [F32_8])


def test_uses_and_replace():
    fn = Function("f", [F32_8, F32_8])
    x, y = fn.args
    b = Builder.at_end(fn.body)
    a = b.create("test.add", [x, x], [F32_8])
    m = b.create("test.mul", [a.result, y], [F32_8])
    assert x.uses == [(a, 0), (a, 1)] and x.users == [a]
    assert a.result.users == [m] and x.is_block_arg
    m.set_operand(1, x)
    assert y.uses == [] and (m, 1) in x.uses and x.users == [a, m]
    x.replace_all_uses_with(y)
    assert x.uses == [] and a.operands == (y, y) and m.operands == (a.result, y)
    m.operands = [y, a.result]
    assert a.result.uses == [(m, 1)] and y.uses.count((m, 0)) == 1
    assert a.result.defining_op is a and y.defining_op is None and y.is_block_arg


def test_erase():
    fn = Function("f", [F32_8])
    x = fn.args[0]
    b = Builder.at_end(fn.body)
    a = b.create("test.neg", [x], [F32_8])
    n = b.create("test.neg", [a.result], [F32_8])
    with pytest.raises(ValueError, match="still used"):
        a.erase()
    n.erase()
    assert a.result.uses == [] and n.parent is None and fn.body.ops == [a]
    a.erase()
    assert x.uses == [] and fn.body.ops == []
    # force leaves a dangling use that the verifier reports
    a = b.create("test.neg", [x], [F32_8])
    fn.set_results([a.result])
    a.erase(force=True)
    assert fn.results[0] is a.result


def test_erase_op_with_region_drops_inner_uses():
    fn = Function("f", [F32_8])
    x = fn.args[0]
    body = Block([ScalarType("f32")])
    Builder.at_end(body).create("test.yield", [x], [])
    m = Builder.at_end(fn.body).create("test.map", [x], [F32_8], regions=[Region([body])])
    assert len(x.uses) == 2
    m.erase()
    assert x.uses == []


def test_block_insertion_and_moves():
    fn = Function("f", [F32_8])
    x = fn.args[0]
    b = Builder.at_end(fn.body)
    a = b.create("test.neg", [x], [F32_8])
    c = b.create("test.neg", [x], [F32_8])
    d = Operation("test.neg", [x], [F32_8])
    fn.body.insert_before(d, c)
    e = Operation("test.neg", [x], [F32_8])
    fn.body.insert_after(e, a)
    assert fn.body.ops == [a, e, d, c] and fn.body.index(d) == 2
    a.move_after(c)
    assert fn.body.ops == [e, d, c, a]
    a.move_before(e)
    assert fn.body.ops == [a, e, d, c]
    with pytest.raises(ValueError):
        fn.body.append(a)  # already in a block


def test_walk_is_preorder():
    fn = Function("f", [F32_8])
    x = fn.args[0]
    b = Builder.at_end(fn.body)
    n = b.create("test.neg", [x], [F32_8])
    inner = Block([ScalarType("f32")])
    ib = Builder.at_end(inner)
    i1 = ib.create("test.neg", [inner.args[0]], [ScalarType("f32")])
    y = ib.create("test.yield", [i1.result], [])
    m = b.create("test.map", [n.result], [F32_8], regions=[Region([inner])])
    ret = fn.set_results([m.result])
    assert list(fn.walk()) == [n, m, i1, y, ret]
    assert list(walk(m)) == [m, i1, y]
    assert m.regions[0].block is inner and inner.parent_op is m and i1.parent_op is m


def test_clone_op_and_function():
    fn = example_function()
    copy = fn.clone()
    assert str(copy) == str(fn)
    assert all(a is not b for a, b in zip(copy.walk(), fn.walk()))
    assert copy.args[0] is not fn.args[0]
    copy.ops[2].erase()
    assert str(copy) != str(fn) and len(fn.ops) == 4
    # op.clone with a value map
    add = fn.ops[0]
    other = Function("g", [F32_4x8, F32_8])
    vm = {fn.args[0]: other.args[0], fn.args[1]: other.args[1]}
    new = other.body.append(add.clone(vm))
    assert new.operands == tuple(other.args) and vm[add.result] is new.result
    assert new.attributes == add.attributes and new.loc == add.loc


def test_set_results_replaces_return():
    fn = Function("f", [F32_8, F32_0D])
    ret = fn.set_results([fn.args[0]])
    assert fn.result_types == (F32_8,)
    ret2 = fn.set_results([fn.args[1], fn.args[0]])
    assert ret2 is ret and fn.result_types == (F32_0D, F32_8) and len(fn.body.ops) == 1
    assert fn.ops == []


# --- printing and parsing ------------------------------------------------------------

def test_golden_example():
    fn = example_function()
    assert str(fn) == EXAMPLE_TEXT
    assert str(parse(EXAMPLE_TEXT)) == EXAMPLE_TEXT
    roundtrip(fn)


def test_op_str_uses_function_numbering():
    fn = example_function()
    assert str(fn.ops[1]) == "%3 = mt.sum %2 {dim = [1], keepdim = true} : (tensor<4x8xf32>) -> tensor<4x1xf32>"
    assert repr(fn.ops[3].results[1]) == "<Value %6 : tensor<2x1xf32>>"
    assert repr(fn.args[1]) == "<Value %1 : tensor<8xf32>>"


def test_names_are_stable_and_dense():
    fn = example_function()
    assert fn.format() == fn.format()
    fn.ops[2].erase()  # the constant
    assert "%4, %5 = mt.split" in str(fn)
    roundtrip(fn)


def test_roundtrip_all_attribute_kinds():
    attrs = {
        "i": 3, "neg": -7, "big": 2**62, "f": 2.0, "small": 1e-05, "tenth": 0.1, "huge": 1e300,
        "pinf": math.inf, "ninf": -math.inf, "nan": math.nan, "negzero": -0.0,
        "t": True, "fl": False, "none": None, "s": 'say "hi"\\n\n\tü', "empty_s": "",
        "tup": [1, 2.5, [True, None, ["x"]]], "empty": [], "a-b": 1, "inf": 5, "é": 2,
    }
    fn = Function("attrs", [F32_0D])
    op = Builder.at_end(fn.body).create("mt.thing", [fn.args[0]], [F32_0D], attrs)
    fn.set_results([op.result])
    again = roundtrip(fn)
    got = again.ops[0].attributes
    assert set(got) == set(attrs)
    for k, v in attrs.items():
        if k == "nan":
            assert math.isnan(got[k])
        elif k == "negzero":
            assert math.copysign(1, got[k]) == -1
        else:
            assert got[k] == op.attributes[k] and type(got[k]) is type(op.attributes[k])
    text = str(fn)
    assert 'neg = -7' in text and "small = 1e-05" in text and "pinf = inf" in text
    assert "ninf = -inf" in text and "t = true" in text and "none = none" in text
    assert 'tup = [1, 2.5, [true, none, ["x"]]]' in text and '"a-b" = 1' in text
    assert "inf = 5" in text and '"\\u00e9" = 2' in text
    assert text.index("a-b") < text.index("big") < text.index("empty")  # sorted keys


def test_roundtrip_types_and_no_results():
    fn = Function("types", [F32_0D, ScalarType("f64"), ScalarType("i1"), IndexType(),
                            MemRefType((4, 8), "f32"), TensorType((2,), "i64")])
    b = Builder.at_end(fn.body)
    b.create("test.print", [fn.args[3], fn.args[4]], [])  # no results: no '='
    c = b.create("test.constant", [], [ScalarType("i64")], {"value": 1})  # no operands
    fn.set_results([fn.args[0], c.result, fn.args[3]])
    text = roundtrip(fn).format()
    assert "  test.print %3, %4 : (index, memref<4x8xf32>) -> ()" in text
    assert "%6 = test.constant {value = 1} : () -> i64" in text
    assert text.startswith("func.func @types(%0: tensor<f32>, %1: f64, %2: i1, %3: index, "
                           "%4: memref<4x8xf32>, %5: tensor<2xi64>) -> (tensor<f32>, i64, index) {")


def test_roundtrip_empty_function():
    fn = Function("nothing")
    fn.set_results([])
    assert str(fn) == "func.func @nothing() -> () {\n  func.return\n}"
    roundtrip(fn)


def build_region_function():
    """A function with nested regions, several regions, block args, multiple blocks."""
    f32 = ScalarType("f32")
    fn = Function("regions", [F32_8, F32_8])
    x, y = fn.args
    b = Builder.at_end(fn.body, loc=Location("model.py", 3))
    # region 1: a payload block with two args; it uses an outer value too (x)
    payload = Block([f32, f32])
    pb = Builder.at_end(payload, loc=Location("model.py", 4))
    s = pb.create("arith.addf", payload.args, [f32])
    inner = Block([f32])  # a region nested in the payload
    Builder.at_end(inner).create("test.yield", [inner.args[0]], [])
    n = pb.create("test.map", [x], [F32_8], regions=[Region([inner])])
    pb.create("test.yield", [s.result, n.result], [])
    # region 2: two blocks, the first without arguments
    blk0, blk1 = Block(), Block([IndexType()])
    Builder.at_end(blk0).create("test.yield", [], [])
    Builder.at_end(blk1).create("test.yield", [blk1.args[0]], [])
    m = b.create("test.map", [x, y], [F32_8, F32_8], {"kind": "zip"},
                 regions=[Region([payload]), Region([blk0, blk1])])
    fn.set_results(list(m.results))
    return fn


def test_roundtrip_regions():
    fn = build_region_function()
    text = str(fn)
    assert """\
  %2, %3 = test.map %0, %1 {kind = "zip"} ({
  ^bb0(%4: f32, %5: f32):
    %6 = arith.addf %4, %5 : (f32, f32) -> f32
    %7 = test.map %0 ({
    ^bb0(%8: f32):
      test.yield %8 : (f32) -> ()
    }) : (tensor<8xf32>) -> tensor<8xf32>
    test.yield %6, %7 : (f32, tensor<8xf32>) -> ()
  }, {
  ^bb0:
    test.yield : () -> ()
  ^bb1(%9: index):
    test.yield %9 : (index) -> ()
  }) : (tensor<8xf32>, tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>)
  func.return %2, %3 : tensor<8xf32>, tensor<8xf32>""" in text
    again = roundtrip(fn)
    roundtrip(fn, debuginfo=True)
    m = again.ops[0]
    assert len(m.regions) == 2 and len(m.regions[1].blocks) == 2
    assert m.regions[0].block.ops[1].operands[0] is again.args[0]  # outer value inside region


def test_debuginfo_locations():
    fn = Function("f", [F32_8], loc=Location("model.py", 1))
    b = Builder.at_end(fn.body, loc=Location("my dir/tra\"in.py", 12))
    n = b.create("test.neg", [fn.args[0]], [F32_8])
    m = b.create("test.neg", [n.result], [F32_8], loc=Location("other.py", 99))
    k = b.create("test.neg", [m.result], [F32_8], loc=None)
    k.loc = None
    fn.set_results([k.result])
    plain = fn.format()
    assert "loc(" not in plain
    text = fn.format(debuginfo=True)
    assert '%1 = test.neg %0 : (tensor<8xf32>) -> tensor<8xf32> loc("my dir/tra\\"in.py":12)' in text
    assert 'loc("other.py":99)' in text and text.endswith('} loc("model.py":1)')
    again = roundtrip(fn, debuginfo=True)
    assert [op.loc for op in again.ops] == [Location('my dir/tra"in.py', 12), Location("other.py", 99), None]
    assert again.loc == Location("model.py", 1)
    # the parser accepts a loc even where the printer would not print one
    assert parse(text).format() == plain


def test_parse_named_values_and_module():
    text = """
    // two functions; any value names are fine
    func.func @first(%x: tensor<4xf32>) -> tensor<4xf32> {
      %y = test.neg %x : (tensor<4xf32>) -> tensor<4xf32>
      func.return %y : tensor<4xf32>
    }

    func.func @second() {
      func.return
    }
    """
    fns = parse_module(text)
    assert [f.name for f in fns] == ["first", "second"]
    assert fns[0].args[0].name_hint == "x" and fns[0].ops[0].result.name_hint == "y"
    assert fns[0].result_types == (TensorType((4,), "f32"),)
    assert str(fns[0]).splitlines()[1] == "  %1 = test.neg %0 : (tensor<4xf32>) -> tensor<4xf32>"
    assert fns[1].result_types == ()
    with pytest.raises(ParseError, match="exactly one function"):
        parse(text)


def test_function_attributes_roundtrip():
    fn = Function("f", [F32_8])
    fn.op.attributes["visibility"] = "private"
    fn.set_results([fn.args[0]])
    assert str(fn).startswith('func.func @f(%0: tensor<8xf32>) -> (tensor<8xf32>) attributes {visibility = "private"} {')
    roundtrip(fn)


@pytest.mark.parametrize("text, message, line, col", [
    ("func.func @f(%0: tensor<4xf32>) -> (tensor<4xf32>) {\n  %1 = test.neg %9 : (tensor<4xf32>) -> tensor<4xf32>\n}",
     "use of undefined value %9", 2, 17),
    ("func.func @f(%0: tensor<4xf32>) -> () {\n  %1 = test.neg %0 : (tensor<4xf16>) -> tensor<4xf32>\n}",
     "unknown type 'tensor<4xf16>'", 2, 23),
    ("func.func @f(%0: tensor<4xf32>) -> () {\n  %1 = test.neg %0 : (tensor<8xf32>) -> tensor<4xf32>\n}",
     "type mismatch for %0", 2, 17),
    ("func.func @f(%0: tensor<4xf32>) -> () {\n  %1 = test.neg %0 # (tensor<4xf32>) -> tensor<4xf32>\n}",
     "unexpected character '#'", 2, 20),
    ("func.func @f(%0: tensor<4xf32>) -> () {\n  %1 = test.neg %0\n}",
     "expected :", 3, 1),
    ("func.func @f(%0: tensor<4xf32>) -> () {\n  %0 = test.neg %0 : (tensor<4xf32>) -> tensor<4xf32>\n}",
     "redefinition of %0", 2, 3),
    ("func.func @f(%0: tensor<4xf32>) -> () {\n  %1, %2 = test.neg %0 : (tensor<4xf32>) -> tensor<4xf32>\n}",
     "defines 2 values", 2, 12),
    ("func.func @f() -> () {\n  %1 = test.c {value = @x} : () -> f32\n}",
     "expected an attribute value", 2, 24),
    ("func.func @f() -> () {\n  %1 = neg : () -> f32\n}",
     "expected an op name", 2, 8),
])
def test_parse_errors(text, message, line, col):
    with pytest.raises(ParseError) as info:
        parse(text)
    err = info.value
    assert message in str(err)
    assert (err.line, err.col) == (line, col)
    assert text.splitlines()[line - 1] in str(err)  # the offending line is shown


def test_values_defined_in_a_region_are_not_visible_after_it():
    text = """func.func @f(%0: f32) -> () {
  %1 = test.map %0 ({
  ^bb0(%2: f32):
    test.yield %2 : (f32) -> ()
  }) : (f32) -> f32
  test.print %2 : (f32) -> ()
  func.return
}"""
    with pytest.raises(ParseError, match="undefined value %2"):
        parse(text)


def test_unknown_dialect_parses_but_does_not_verify():
    fn = parse("func.func @f(%0: f32) -> (f32) {\n  %1 = weird.op %0 : (f32) -> f32\n  func.return %1 : f32\n}")
    assert fn.ops[0].dialect == "weird"
    with pytest.raises(VerifyError, match="unknown dialect 'weird'"):
        verify(fn)


# --- dialect registry and verifier -----------------------------------------------------

def test_registry_replace_merge_unregister():
    assert lookup_op("func.return") is not None
    first = Dialect("regtest")
    first.add_op(OpSpec("a"))
    second = Dialect("regtest")
    second.add_op(OpSpec("regtest.b"))
    assert register_dialect(first) is None
    assert register_dialect(second) is first  # replaced
    assert lookup_op("regtest.a") is None and lookup_op("regtest.b") is not None
    register_dialect(first)
    old = register_dialect(second, merge=True)
    assert old is first and lookup_op("regtest.a") and lookup_op("regtest.b")
    assert set(first.ops) == {"a"}  # merging never mutates the old dialect
    assert unregister_dialect("regtest") is not None
    assert get_dialect("regtest") is None and unregister_dialect("regtest") is None
    with pytest.raises(ValueError):
        first.add_op(OpSpec("other.c"))


def test_registered_dialects_restores_previous():
    original = Dialect("regtest2")
    register_dialect(original)
    try:
        with registered_dialects(Dialect("regtest2"), Dialect("regtest3")):
            assert get_dialect("regtest2") is not original and get_dialect("regtest3") is not None
        assert get_dialect("regtest2") is original and get_dialect("regtest3") is None
    finally:
        unregister_dialect("regtest2")


def build_verifiable():
    fn = Function("ok", [F32_8, F32_8])
    x, y = fn.args
    b = Builder.at_end(fn.body)
    a = b.create("test.add", [x, y], [F32_8])
    c = b.create("test.constant", [], [F32_8], {"value": 1.0})
    body = Block([ScalarType("f32")])
    Builder.at_end(body).create("test.yield", [body.args[0], a.result], [])
    m = b.create("test.map", [a.result, c.result], [F32_8], regions=[Region([body])])
    s = b.create("test.split", [m.result], [F32_8, F32_8])
    fn.set_results([s.results[1]])
    return fn


def test_verify_accepts_valid_ir(test_dialect):
    verify(build_verifiable())
    verify(parse(str(build_verifiable())))


def _error_for(fn):
    with pytest.raises(VerifyError) as info:
        verify(fn)
    return str(info.value)


def test_verify_wrong_operand_count(test_dialect):
    fn = Function("f", [F32_8])
    b = Builder.at_end(fn.body, loc=Location("model.py", 7))
    bad = b.create("test.add", [fn.args[0]], [F32_8])
    fn.set_results([bad.result])
    msg = _error_for(fn)
    assert msg.startswith("test.add expects 2 operands, got 1\n")
    assert "%1 = test.add %0 : (tensor<8xf32>) -> tensor<8xf32>" in str(fn)
    assert '  %1 = test.add %0 : (tensor<8xf32>) -> tensor<8xf32> loc("model.py":7)' in msg


def test_verify_result_count_and_ranges(test_dialect):
    fn = Function("f", [F32_8])
    b = Builder.at_end(fn.body)
    b.create("test.map", [], [F32_8])
    msg = _error_for(fn)
    assert "test.map expects 1 to 3 operands, got 0" in msg and "%1 = test.map : () -> tensor<8xf32>" in msg
    fn = Function("g", [F32_8])
    Builder.at_end(fn.body).create("test.split", [fn.args[0]], [])
    assert "test.split expects at least 1 results, got 0" in _error_for(fn)


def test_verify_use_before_definition(test_dialect):
    fn = Function("f", [F32_8])
    b = Builder.at_end(fn.body)
    first = b.create("test.neg", [fn.args[0]], [F32_8])
    second = b.create("test.neg", [first.result], [F32_8])
    fn.set_results([second.result])
    verify(fn)
    second.move_before(first)
    line = str(fn).splitlines()[1].strip()
    assert line == "%1 = test.neg %2 : (tensor<8xf32>) -> tensor<8xf32>"
    msg = _error_for(fn)
    assert "test.neg operand #0 is used before it is defined" in msg and line in msg


def test_verify_return_type_mismatch(test_dialect):
    fn = Function("f", [F32_8, F32_0D])
    ret = fn.set_results([fn.args[0]])
    verify(fn)
    ret.set_operand(0, fn.args[1])
    msg = _error_for(fn)
    assert "func.return returns (tensor<f32>) but @f declares (tensor<8xf32>)" in msg
    assert "func.return %1 : tensor<f32>" in msg


def test_verify_unknown_op_and_missing_attr(test_dialect):
    fn = Function("f", [F32_8])
    op = Builder.at_end(fn.body).create("test.bogus", [fn.args[0]], [F32_8])
    fn.set_results([op.result])
    msg = _error_for(fn)
    assert "unknown op 'test.bogus'" in msg and "%1 = test.bogus %0" in msg
    fn = Function("g")
    c = Builder.at_end(fn.body).create("test.constant", [], [F32_0D])
    fn.set_results([c.result])
    assert "test.constant requires attribute 'value'" in _error_for(fn)


def test_verify_op_specific_rule(test_dialect):
    fn = Function("f", [F32_8])
    op = Builder.at_end(fn.body).create("test.neg", [fn.args[0]], [F32_0D])
    fn.set_results([op.result])
    msg = _error_for(fn)
    assert msg.startswith("test.neg: result type must equal the first operand's type")
    assert "%1 = test.neg %0 : (tensor<8xf32>) -> tensor<f32>" in msg


def test_verify_structure(test_dialect):
    # missing func.return
    fn = Function("f", [F32_8])
    assert "must end in func.return" in _error_for(fn)
    # func.return not last
    fn = Function("f", [F32_8])
    fn.set_results([fn.args[0]])
    Builder.at_end(fn.body).create("test.print", [fn.args[0]], [])
    assert "func.return must be the last op" in _error_for(fn)
    # a region value used outside the region
    fn = Function("f", [ScalarType("f32")])
    body = Block([ScalarType("f32")])
    inner = Builder.at_end(body).create("test.neg", [body.args[0]], [ScalarType("f32")])
    Builder.at_end(body).create("test.yield", [inner.result], [])
    b = Builder.at_end(fn.body)
    b.create("test.map", [fn.args[0]], [ScalarType("f32")], regions=[Region([body])])
    b.create("test.print", [inner.result], [])
    fn.set_results([])
    msg = _error_for(fn)
    assert "test.print operand #0 is used before it is defined" in msg


def test_verify_detects_dangling_use_after_forced_erase(test_dialect):
    fn = Function("f", [F32_8])
    n = Builder.at_end(fn.body).create("test.neg", [fn.args[0]], [F32_8])
    fn.set_results([n.result])
    n.erase(force=True)
    assert "func.return operand #0 is used before it is defined" in _error_for(fn)


def test_verify_rejects_list_attributes_set_after_creation(test_dialect):
    fn = Function("f", [F32_8])
    n = Builder.at_end(fn.body).create("test.neg", [fn.args[0]], [F32_8])
    fn.set_results([n.result])
    n.attributes["axes"] = [0]
    assert "attribute 'axes' = [0] is not an int" in _error_for(fn)


def test_verify_detects_broken_use_list(test_dialect):
    fn = Function("f", [F32_8])
    n = Builder.at_end(fn.body).create("test.neg", [fn.args[0]], [F32_8])
    fn.set_results([n.result])
    fn.args[0].uses.clear()
    assert "missing from its value's use list" in _error_for(fn)


# --- builder ---------------------------------------------------------------------------

def test_builder_insertion_points_and_loc():
    fn = Function("f", [F32_8])
    x = fn.args[0]
    b = Builder.at_end(fn.body)
    b.loc = Location("a.py", 1)
    first = b.create("test.neg", [x], [F32_8])
    last = b.create("test.neg", [first.result], [F32_8], loc=Location("b.py", 2))
    before = Builder.before(last).create("test.neg", [x], [F32_8])
    after = Builder.after(first, loc=Location("c.py", 3))
    a1 = after.create("test.neg", [x], [F32_8])
    a2 = after.create("test.neg", [x], [F32_8])
    tail = Builder.after(last).create("test.print", [x], [])
    assert fn.body.ops == [first, a1, a2, before, last, tail]
    assert first.loc == Location("a.py", 1) and last.loc == Location("b.py", 2)
    assert a2.loc == Location("c.py", 3) and before.loc is None
    clone = Builder.at_end(fn.body).insert(first.clone())
    assert fn.body.ops[-1] is clone and clone.operands == (x,)


# --- property: any attribute dictionary survives print -> parse ---------------------------

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # hypothesis is a test extra; the tests above cover the same ground
    given = None


def _typed(value):
    """Compare attribute values with their types, floats by repr (nan == nan, 0.0 != -0.0)."""
    if isinstance(value, tuple):
        return tuple(_typed(v) for v in value)
    return (type(value).__name__, repr(value))


if given is not None:
    _leaves = (st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1)
               | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8))
    _values = st.recursive(_leaves, lambda inner: st.lists(inner, max_size=3), max_leaves=8)
    _keys = st.from_regex(r"[a-z_][a-z0-9_]{0,5}", fullmatch=True) | st.text(min_size=1, max_size=4)

    @given(st.dictionaries(_keys, _values, max_size=4))
    @settings(deadline=None)
    def test_attribute_roundtrip_property(attrs):
        fn = Function("p", [F32_0D])
        op = Builder.at_end(fn.body).create("any.op", [fn.args[0]], [F32_0D], attrs)
        fn.set_results([op.result])
        again = roundtrip(fn)
        got = again.ops[0].attributes
        assert {k: _typed(v) for k, v in got.items()} == {k: _typed(v) for k, v in op.attributes.items()}
