"""Functionalization and the aot_function inference runtime: compiled == eager,
outputs and the state of every input afterwards (values, shapes, strides, aliasing)."""

import warnings

import numpy as np
import pytest

import minaot
from minaot.passes.functionalize import functionalize
from minaot.testing import assert_close

pytestmark = pytest.mark.functionalize


def clone_args(args):
    return [a.clone() if isinstance(a, minaot.Tensor) else a for a in args]


def run_both(fn, *make_args):
    """Run ``fn`` eagerly and compiled on equal fresh inputs; return both results and inputs."""
    eager_args = [m() for m in make_args]
    comp_args = [m() for m in make_args]
    want = fn(*eager_args)
    got = minaot.aot_function(fn)(*comp_args)
    return want, got, eager_args, comp_args


def same_state(a, b):
    assert a.shape == b.shape and a.stride() == b.stride(), (a.shape, b.shape, a.stride(), b.stride())
    assert_close(a, b)


def arange(*shape):
    return lambda: minaot.arange(float(np.prod(shape))).reshape(*shape).clone()


@pytest.mark.task_4_2
def test_1_input_data_mutation_copied_back():
    def f(a):
        a.mul_(2)
        return a + 1

    want, got, ea, ca = run_both(f, arange(2, 3))
    same_state(got, want)
    same_state(ca[0], ea[0])
    graph, meta = functionalize(minaot.trace(f, minaot.ones(2, 3)))
    assert not any(op.name.endswith("_") for op in graph.ops)
    assert meta.inputs[0].mutates_data and meta.num_mutated_inputs == 1
    assert ca[0]._version == 1


@pytest.mark.parametrize("body", ["t_", "unsqueeze_"])
@pytest.mark.task_4_1
def test_2_metadata_mutation_replayed(body):
    def f(a):
        getattr(a, body)(*(() if body == "t_" else (0,)))
        return a + 1

    want, got, ea, ca = run_both(f, arange(2, 3))
    same_state(got, want)
    same_state(ca[0], ea[0])
    assert ca[0].shape == ea[0].shape != (2, 3)


@pytest.mark.task_4_2
def test_3_mutation_through_view_of_input():
    def f(a):
        a.view(-1).add_(1)
        return a * 2

    def g(a):
        b = a[0]
        b.mul_(2)
        return a.sum()

    for fn in (f, g):
        want, got, ea, ca = run_both(fn, arange(2, 3))
        same_state(got, want)
        same_state(ca[0], ea[0])


@pytest.mark.task_4_2
def test_4_mutation_of_view_of_intermediate():
    def f(a):
        b = a * 2
        c = b[:, 0]
        c.zero_()
        return b

    want, got, ea, ca = run_both(f, arange(2, 3))
    same_state(got, want)
    same_state(ca[0], ea[0])


@pytest.mark.parametrize("which", ["view", "t_and_add", "slice"])
@pytest.mark.task_4_1
def test_5_outputs_aliasing_inputs_are_real_views(which):
    fns = {"view": lambda a: a.view(-1), "t_and_add": lambda a: (a.t(), a + 1),
           "slice": lambda a: a[1:]}
    fn = fns[which]
    a = arange(3, 4)()
    out = minaot.aot_function(fn)(a)
    first = out[0] if isinstance(out, tuple) else out
    want = fn(arange(3, 4)())
    want_first = want[0] if isinstance(want, tuple) else want
    assert first._base is a and first.shape == want_first.shape and first.stride() == want_first.stride()
    first.mul_(10)                                      # mutating the output changes the input
    assert a.sum().item() != arange(3, 4)().sum().item()
    assert np.shares_memory(first.numpy(), a.numpy())


@pytest.mark.task_4_1
def test_6_outputs_share_storage():
    def f(a):
        b = a * 2
        return b, b.view(-1)

    b, v = minaot.aot_function(f)(arange(2, 3)())
    assert v._base is b and np.shares_memory(b.numpy(), v.numpy())
    b.add_(1)
    assert_close(v, b.view(-1))


def test_7_duplicate_and_overlapping_inputs():
    def f(a, b):
        a.add_(1)
        return b * 2

    x_e, x_c = arange(3)(), arange(3)()
    want = f(x_e, x_e)
    got = minaot.aot_function(f)(x_c, x_c)
    same_state(got, want)
    same_state(x_c, x_e)

    base_e, base_c = arange(4)(), arange(4)()
    want = f(base_e[0:2], base_e[1:3])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        got = minaot.aot_function(f)(base_c[0:2], base_c[1:3])
    same_state(got, want)
    same_state(base_c, base_e)
    assert any("overlaps" in str(x.message) for x in w)

    # non-overlapping views of one base are fine as separate inputs
    base_e, base_c = arange(4)(), arange(4)()
    want = f(base_e[0:2], base_e[2:4])
    got = minaot.aot_function(f)(base_c[0:2], base_c[2:4])
    same_state(got, want)
    same_state(base_c, base_e)


def test_8_non_tensor_inputs_and_outputs_pass_through():
    def f(x, n, opts):
        return {"y": x * n, "n": n + 1, "none": None, "pair": (opts["k"], x.sum())}

    x = arange(3)()
    want = f(x, 3, {"k": "v"})
    got = minaot.aot_function(f)(x, 3, {"k": "v"})
    assert got["n"] == 4 and got["none"] is None and got["pair"][0] == "v"
    assert_close(got["y"], want["y"])
    assert_close(got["pair"][1], want["pair"][1])


def test_9_recompile_on_new_shape_and_cache_hit():
    minaot.reset()
    cf = minaot.aot_function(lambda x: x.sin() + 1)
    cf(minaot.ones(3))
    cf(minaot.ones(3))
    cf(minaot.ones(4))
    cf(minaot.ones(4, dtype=minaot.float64))
    c = minaot.counters["aot"]
    assert c["compiles"] == 3 and c["cache_hits"] == 1 and c["cache_misses"] == 3
    minaot.reset()
    assert minaot.counters["aot"]["compiles"] == 0 and not cf.cache


def test_10_mutating_leaf_requiring_grad_raises_like_eager():
    def f(a):
        a.mul_(2)
        return a

    with pytest.raises(RuntimeError, match="leaf Variable that requires grad") as eager:
        f(minaot.ones(2, requires_grad=True))
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad") as comp:
        minaot.aot_function(f)(minaot.ones(2, requires_grad=True))
    assert str(eager.value).splitlines()[0] == str(comp.value).splitlines()[0]


def test_no_grad_calls_take_the_inference_path():
    seen = []

    def compiler(graph, inputs):
        seen.append(graph)
        return minaot.nop(graph, inputs)

    x = minaot.ones(3, requires_grad=True)
    with minaot.no_grad():
        y = minaot.aot_function(lambda x: x * 2, inference_compiler=compiler)(x)
    assert len(seen) == 1 and not y.requires_grad


GOLDEN_1 = ("""
func.func @f(%0: tensor<3xf32>) -> (tensor<3xf32>) {
  %1 = mt.constant {dtype = "float32", shape = [], value = 2.0} : () -> tensor<f32>
  %2 = mt.mul_ %0, %1 : (tensor<3xf32>, tensor<f32>) -> tensor<3xf32>
  %3 = mt.constant {dtype = "float32", shape = [], value = 1.0} : () -> tensor<f32>
  %4 = mt.add %2, %3 : (tensor<3xf32>, tensor<f32>) -> tensor<3xf32>
  func.return %4 : tensor<3xf32>
}""", """
func.func @f(%0: tensor<3xf32>) -> (tensor<3xf32>, tensor<3xf32>) {
  %1 = prim.constant {dtype = "float32", shape = [], value = 2.0} : () -> tensor<f32>
  %2 = prim.mul %0, %1 : (tensor<3xf32>, tensor<f32>) -> tensor<3xf32>
  %3 = prim.constant {dtype = "float32", shape = [], value = 1.0} : () -> tensor<f32>
  %4 = prim.add %2, %3 : (tensor<3xf32>, tensor<f32>) -> tensor<3xf32>
  func.return %2, %4 : tensor<3xf32>, tensor<3xf32>
}""")

GOLDEN_3 = ("""
func.func @g(%0: tensor<2x3xf32>) -> (tensor<f32>) {
  %1 = mt.select %0 {dim = 0, index = 0} : (tensor<2x3xf32>) -> tensor<3xf32>
  %2 = mt.constant {dtype = "float32", shape = [], value = 2.0} : () -> tensor<f32>
  %3 = mt.mul_ %1, %2 : (tensor<3xf32>, tensor<f32>) -> tensor<3xf32>
  %4 = mt.sum %0 {dim = [0, 1], keepdim = false} : (tensor<2x3xf32>) -> tensor<f32>
  func.return %4 : tensor<f32>
}""", """
func.func @g(%0: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<f32>) {
  %1 = prim.constant {dtype = "float32", shape = [], value = 2.0} : () -> tensor<f32>
  %2 = prim.select %0 {dim = 0, index = 0} : (tensor<2x3xf32>) -> tensor<3xf32>
  %3 = prim.mul %2, %1 : (tensor<3xf32>, tensor<f32>) -> tensor<3xf32>
  %4 = prim.select_scatter %0, %3 {dim = 0, index = 0} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %5 = prim.sum %4 {dim = [0, 1], keepdim = false} : (tensor<2x3xf32>) -> tensor<f32>
  func.return %4, %5 : tensor<2x3xf32>, tensor<f32>
}""")


def test_golden_functionalize_scenarios_1_and_3():
    def f(a):
        a.mul_(2)
        return a + 1

    def g(a):
        b = a[0]
        b.mul_(2)
        return a.sum()

    for fn, x, (before, after) in [(f, minaot.ones(3), GOLDEN_1), (g, minaot.ones(2, 3), GOLDEN_3)]:
        traced = minaot.trace(fn, x)
        assert str(traced).strip() == before.strip()
        graph, _ = functionalize(traced)
        assert str(graph).strip() == after.strip()
        minaot.ir.verify(graph)


def test_decompositions_table_and_user_override():
    table = minaot.get_decompositions(["gelu", minaot.nn.functional.layer_norm])
    assert set(table) == {"gelu", "layer_norm"}
    seen = []

    def my_gelu(x, approximate):
        seen.append(approximate)
        return x * minaot.sigmoid(x * 1.702)

    cf = minaot.aot_function(lambda x: minaot.gelu(x), decompositions={minaot.gelu: my_gelu})
    x = minaot.randn(5)
    assert_close(cf(x), x * minaot.sigmoid(x * 1.702))
    assert seen == ["none"]


def test_print_compile_prints_the_graph(capsys):
    minaot.aot_function(lambda x: x.exp() * 2, fw_compiler=minaot.print_compile)(minaot.ones(2))
    text = capsys.readouterr().out
    assert "prim.exp" in text and "func.func" in text


def test_compile_short_form():
    @minaot.compile(backend="numpy")
    def f(x, y):
        return (x @ y).relu().softmax(-1)

    x, y = minaot.randn(3, 4), minaot.randn(4, 5)
    assert_close(f(x, y), (x @ y).relu().softmax(-1))
    with pytest.raises(ValueError, match="unknown backend"):
        minaot.compile(lambda x: x, backend="nope")
