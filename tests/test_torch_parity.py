"""Behaviours where minaot once differed from PyTorch (found by differential runs against
torch 2.x), each checked against the value PyTorch gives, written out (no torch needed):
eager, and compiled where the compiled path had its own way to go wrong."""

import math

import numpy as np
import pytest

import minaot
from minaot.testing import assert_close
from runs import compiled

T = minaot.tensor


# ------------------------------------------------------------------ operands and methods
def test_numpy_scalars_are_python_numbers_and_arrays_are_tensors():
    x = minaot.ones(2)
    y = x / np.sqrt(np.float64(4.0))
    assert y.dtype is minaot.float32 and y.tolist() == [0.5, 0.5]
    assert (np.float32(1) - x).tolist() == [0.0, 0.0]
    assert (minaot.ones(2, dtype=minaot.int64) * np.int64(3)).dtype is minaot.int64
    z = x + np.array([1.0, 2.0])
    assert z.dtype is minaot.float64 and z.tolist() == [2.0, 3.0]


def test_where_method_takes_the_condition_first():
    x = T([-1.0, 2.0])
    assert x.where(x > 0, 0.0).tolist() == [0.0, 2.0]
    assert compiled(lambda x: x.where(x > 0, 0.0) * 2)(x).tolist() == [0.0, 4.0]


def test_invert_is_bitwise_on_int64_and_logical_on_bool():
    assert (~T([0, 1, 2])).tolist() == [-1, -2, -3]
    assert (~T([True, False])).tolist() == [False, True]
    with pytest.raises(TypeError, match="bitwise_not"):
        ~T([1.0])


def test_format_of_a_0d_tensor():
    assert f"{T(1.5):.2f}" == "1.50"
    assert f"{T([1.0])}" == str(T([1.0]))


def test_setitem_drops_leading_size_one_axes_of_the_value():
    x = minaot.zeros(3)
    x[0] = T([9.0])
    y = minaot.zeros(2, 3)
    y[1] = minaot.ones(1, 1, 3)
    assert x.tolist() == [9.0, 0.0, 0.0] and y.tolist() == [[0.0] * 3, [1.0] * 3]

    def f(x, v):
        x[0] = v
        return x * 1
    assert compiled(f)(minaot.zeros(3), T([5.0])).tolist() == [5.0, 0.0, 0.0]


def test_clamp_of_an_int_tensor_with_float_bounds_is_float():
    out = T([1, 2, 3]).clamp(min=1.5, max=2.5)
    assert out.dtype is minaot.float32 and out.tolist() == [1.5, 2.0, 2.5]
    assert T([1, 2, 3]).clamp(min=2).tolist() == [2, 2, 3]


def test_var_and_std_take_unbiased_positionally():
    a = np.array([[1.0, 2.0, 4.0], [0.0, 1.0, 5.0]])
    assert_close(T(a).std(1, False), T(a.std(1)))
    assert_close(T(a).var(False), T(a.var()))
    assert_close(T(a).var(1, True, True), T(a.var(1, ddof=1, keepdims=True)))


# ------------------------------------------------------------------ gradients
def test_changing_a_quotient_in_place_keeps_its_backward():
    a, b = T([1.0, 2.0], requires_grad=True), T([3.0, 4.0], requires_grad=True)
    y = a / b
    y += 1
    y.sum().backward()
    assert_close(a.grad, T([1 / 3, 1 / 4]))
    assert_close(b.grad, T([-1 / 9, -2 / 16]))


@pytest.mark.parametrize("run", ["eager", "compiled"])
def test_max_with_dim_sends_the_gradient_to_the_returned_index(run):
    x = T([[2.0, 2.0, 1.0], [0.0, 3.0, 3.0]], requires_grad=True)
    fn = lambda x: x.max(1)[0].sum() + x.min(1, keepdim=True).values.sum()   # noqa: E731
    (fn(x) if run == "eager" else compiled(fn)(x)).backward()
    assert x.grad.tolist() == [[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]
    v, i = x.max(1)
    assert v.tolist() == [2.0, 3.0] and i.tolist() == [0, 1]
    v = x.detach().requires_grad_().max(1).values
    v.mul_(2)                       # allowed: max's backward reads the indices, not v
    v.sum().backward()


@pytest.mark.parametrize("run", ["eager", "compiled"])
def test_std_where_the_deviation_is_zero_has_zero_gradient(run):
    x = T([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]], requires_grad=True)
    fn = lambda x: x.std(1).sum()    # noqa: E731
    (fn(x) if run == "eager" else compiled(fn)(x)).backward()
    assert_close(x.grad, T([[0.0, 0.0, 0.0], [-0.5, 0.0, 0.5]]))


@pytest.mark.parametrize("run", ["eager", "compiled"])
def test_logsumexp_of_infinite_rows(run):
    x = T([[-math.inf, -math.inf], [math.inf, 1.0], [1.0, 2.0]])
    fn = lambda x: x.logsumexp(1)    # noqa: E731
    out = fn(x) if run == "eager" else compiled(fn)(x)
    assert out.tolist()[:2] == [-math.inf, math.inf]
    assert_close(out[2], T(np.log(np.exp(1.0) + np.exp(2.0)), dtype=minaot.float32))


def test_pow_gradients_at_zero():
    x = T([0.0, 2.0], requires_grad=True)
    (x ** 0).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]
    e = T([0.0, 2.0], requires_grad=True)
    with np.errstate(all="ignore"):
        (minaot.zeros(2) ** e).sum().backward()
    assert e.grad.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("run", ["eager", "compiled"])
def test_clamp_passes_the_whole_gradient_on_its_bounds(run):
    x = T([-0.5, 0.0, 0.5, 1.0, 2.0], requires_grad=True)
    fn = lambda x: x.clamp(0.0, 1.0).sum()     # noqa: E731
    (fn(x) if run == "eager" else compiled(fn)(x)).backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_function_backward_must_return_a_gradient_per_input():
    class Scale(minaot.autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2                        # one gradient for two inputs

    x = T([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"incorrect number of gradients \(expected 2, got 1\)"):
        Scale.apply(x, 3.0).sum().backward()


@pytest.mark.parametrize("change", [lambda y: y.t_(), lambda y: y.transpose_(0, 1),
                                    lambda y: y.unsqueeze_(0), lambda y: y.squeeze_()])
def test_metadata_inplace_ops_bump_the_version(change):
    x = T(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x * 1
    z = y * y                      # saves y as (2, 3)
    change(y)
    assert y._version == 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_metadata_inplace_op_in_a_compiled_function_is_functional():
    def f(x):
        y = x * 1
        z = y * y
        y.t_()
        return z.sum() + y.sum()
    x = T(np.arange(6.0).reshape(2, 3), requires_grad=True)
    compiled(f)(x).backward()
    assert_close(x.grad, T(2 * np.arange(6.0).reshape(2, 3) + 1))


# ------------------------------------------------------------------ compiled functions
@pytest.mark.parametrize("fn", [lambda a, b: a * 2, lambda a, b: a * b.argmax(),
                                lambda a, b: a * b.detach()],
                         ids=["unused", "argmax", "detach"])
def test_an_input_no_gradient_reaches_keeps_grad_none(fn):
    a, b = minaot.randn(3, requires_grad=True), minaot.randn(3, requires_grad=True)
    compiled(fn)(a, b).sum().backward()
    assert a.grad is not None and b.grad is None


def test_a_compiled_optimizer_step_updates_a_leaf_under_no_grad():
    def step(p, g, lr):
        with minaot.no_grad():
            p.sub_(lr * g)

    def through_detach(p):
        p.detach().mul_(2)

    w = minaot.ones(3, requires_grad=True)
    compiled(step)(w, minaot.ones(3), 0.5)
    assert w.tolist() == [0.5] * 3 and w.is_leaf and w.requires_grad and w.grad_fn is None
    compiled(through_detach)(w)
    assert w.tolist() == [1.0] * 3 and w.is_leaf
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        compiled(lambda p: p.mul_(2))(w)        # with grad on: refused, as in eager


# ------------------------------------------------------------------ reductions over dim=()
@pytest.mark.parametrize("dim", [(), []], ids=["tuple", "list"])
@pytest.mark.parametrize("op,want", [("sum", 15.0), ("mean", 2.5), ("amax", 5.0), ("amin", 0.0),
                                     ("var", 3.5), ("std", 1.8708287477493286)])
def test_an_empty_dim_list_reduces_every_dim(op, want, dim):
    """PyTorch reads ``dim=()`` as every dim (``x.sum(dim=())`` is ``x.sum()``), eager and
    compiled; with ``keepdim`` the result is (1, 1)."""
    x = T(np.arange(6.0, dtype=np.float32).reshape(2, 3))
    for run in (lambda f: f(x), lambda f: compiled(f)(x)):
        got = run(lambda x: getattr(x, op)(dim=dim))
        assert got.shape == () and math.isclose(got.item(), want, rel_tol=1e-6)
        kept = run(lambda x: getattr(x, op)(dim=dim, keepdim=True))
        assert kept.shape == (1, 1) and math.isclose(kept.item(), want, rel_tol=1e-6)


# ------------------------------------------------------------------ prod
XP = np.array([[2.0, 0.0, -3.0, 0.5], [0.0, 4.0, 0.0, 1.0], [1.5, -2.0, 4.0, 0.5]], np.float32)


@pytest.mark.parametrize("kwargs,want,grad", [
    ({}, 0.0, [[0.0] * 4] * 3),                                  # two zeros in all: no gradient
    ({"dim": 1}, [0.0, 0.0, -6.0],                                # one zero, two, none
     [[0.0, -3.0, 0.0, 0.0], [0.0] * 4, [-4.0, 3.0, -1.5, -12.0]]),
    ({"dim": -1}, [0.0, 0.0, -6.0], [[0.0, -3.0, 0.0, 0.0], [0.0] * 4, [-4.0, 3.0, -1.5, -12.0]]),
    ({"dim": 0, "keepdim": True}, [[0.0, 0.0, 0.0, 0.25]],
     [[0.0, -8.0, 0.0, 0.5], [3.0, 0.0, -12.0, 0.25], [0.0, 0.0, 0.0, 0.5]]),
])
def test_prod_values_and_gradients_with_zeros_match_pytorch(kwargs, want, grad):
    """Values and gradients torch 2.13 gives for ``x.prod(**kwargs).sum().backward()``: the
    gradient at an element is the product of the others, so with one zero in a slice
    only the zero gets one, and with two none does.  Eager and compiled (where the
    gradient has no branch on the values: it is one ``where`` formula)."""
    for f in ((lambda fn: fn), compiled):
        x = T(XP, requires_grad=True)
        out = f(lambda x: x.prod(**kwargs))(x)
        assert out.dtype is minaot.float32
        assert_close(out, T(np.array(want, np.float32)))
        out.sum().backward()
        assert_close(x.grad, T(np.array(grad, np.float32)))


@pytest.mark.parametrize("run", ["eager", "compiled"])
def test_prod_of_one_zero_infinities_and_nan(run):
    f = (lambda fn: fn) if run == "eager" else compiled
    for data, grad in [([2.0, 0.0, 3.0], [0.0, 6.0, 0.0]),
                       ([math.inf, 2.0], [math.nan, math.inf]),     # inf / inf, as in PyTorch
                       ([math.nan, 0.0], [0.0, math.nan])]:
        x = T(data, requires_grad=True)
        f(lambda x: x.prod() * 1)(x).backward()
        np.testing.assert_array_equal(x.grad.numpy(), np.array(grad, np.float32))


def _product_of_others(a, dim):
    """numpy oracle of prod's gradient (ones as the cotangent): at each element, the product
    of the other elements of its slice along ``dim`` (every element when ``dim`` is None)."""
    if dim is None:
        flat = a.reshape(-1)
        return np.array([np.prod(np.delete(flat, k)) for k in range(flat.size)]).reshape(a.shape)
    m = np.moveaxis(a, dim, -1)
    out = np.empty_like(m)
    for k in range(m.shape[-1]):
        out[..., k] = np.prod(np.delete(m, k, axis=-1), axis=-1)
    return np.moveaxis(out, -1, dim)


@pytest.mark.parametrize("seed", range(4))
def test_prod_random_inputs_with_zeros_against_numpy_and_torch(seed):
    """Random float64 inputs, a few of them zero, every dim: values against ``np.prod``,
    gradients against the product of the others, eager and compiled; and against torch
    when it is installed."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 1.5, (3, 4, 2)) * rng.choice([-1.0, 1.0], (3, 4, 2))
    a[rng.random(a.shape) < 0.15] = 0.0
    try:
        import torch
    except ImportError:
        torch = None
    for dim in (None, 0, 1, 2, -1):
        kw = {} if dim is None else {"dim": dim}
        for f in ((lambda fn: fn), compiled):
            x = T(a, requires_grad=True)
            out = f(lambda x: x.prod(**kw))(x)
            assert_close(out, T(np.prod(a, axis=dim)))
            out.sum().backward()
            assert_close(x.grad, T(_product_of_others(a, dim)))
        if torch is not None:
            tx = torch.tensor(a, requires_grad=True)
            tout = tx.prod(**kw)
            tout.sum().backward()
            assert_close(out, T(tout.detach().numpy()))
            assert_close(x.grad, T(tx.grad.numpy()))


def test_prod_dtypes_and_errors():
    """Integer and bool inputs are multiplied as int64, ``dtype`` casts first; ``dim`` is one
    int (PyTorch's prod takes no tuple)."""
    for f in ((lambda fn: fn), compiled):
        i = f(lambda x: x.prod(1))(T([[1, 2], [3, 4]]))
        assert i.dtype is minaot.int64 and i.tolist() == [2, 12]
        assert f(lambda x: x.prod(dtype=minaot.float64))(T([2, 3])).dtype is minaot.float64
    assert T([True, True]).prod().dtype is minaot.int64
    assert T([True, False]).prod().tolist() == 0
    assert minaot.prod(T([2.0, 3.0]), dtype=minaot.float64).tolist() == 6.0
    assert T(3.0).prod(0).shape == () and T(3.0).prod(0, keepdim=True).tolist() == 3.0
    assert minaot.zeros(0, 3).prod(0).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(TypeError, match=r"prod: dim must be an int"):
        T(XP).prod((0, 1))
    with pytest.raises(IndexError, match=r"prod: dimension out of range"):
        T(XP).prod(2)


# ------------------------------------------------------------------ all, any, norm, masked_fill
X6 = np.array([[1.0, 0.0, -2.0], [0.0, 0.0, 0.0]], np.float32)
MASK = np.array([[True, False, True], [False, False, True]])


@pytest.mark.parametrize("run", ["eager", "compiled"])
def test_all_and_any_give_bool_tensors(run):
    f = (lambda fn: fn) if run == "eager" else compiled
    x = T(X6)
    assert f(lambda x: x.all())(x).tolist() is False
    assert f(lambda x: x.all(dim=1))(x).tolist() == [False, False]
    assert f(lambda x: x.any(1))(x).tolist() == [True, False]
    got = f(lambda x: x.any(0, keepdim=True))(x)
    assert got.dtype is minaot.bool and got.tolist() == [[True, False, True]]
    assert f(lambda x: minaot.all(x != 5))(x).tolist() is True
    assert T([float("nan")]).all().tolist() is True          # nan is nonzero, as in PyTorch


@pytest.mark.parametrize("kwargs,want,grad", [
    ({}, 2.2360680103302, [[0.4472136, 0.0, -0.8944272], [0.0, 0.0, 0.0]]),
    ({"dim": 1}, [2.2360680103302, 0.0], [[0.4472136, 0.0, -0.8944272], [0.0, 0.0, 0.0]]),
    ({"p": 1, "dim": 1}, [3.0, 0.0], [[1.0, 0.0, -1.0], [0.0, 0.0, 0.0]]),
    ({"p": math.inf, "dim": 1}, [2.0, 0.0], [[0.0, 0.0, -1.0], [0.0, 0.0, 0.0]]),
    ({"p": 3, "dim": 1}, [2.080083823051904, 0.0], [[0.23112042, 0.0, -0.92448169], [0.0, 0.0, 0.0]]),
])
def test_norm_values_and_gradients_match_pytorch(kwargs, want, grad):
    """Values and gradients torch 2.13 gives for ``x.norm(**kwargs).sum().backward()``; a
    zero row has norm 0 and gradient 0 (not nan)."""
    for f in ((lambda fn: fn), compiled):
        x = T(X6, requires_grad=True)
        out = f(lambda x: x.norm(**kwargs))(x)
        assert_close(out, T(np.array(want, np.float32)), rtol=1e-5, atol=1e-6)
        out.sum().backward()
        assert_close(x.grad, T(np.array(grad, np.float32)), rtol=1e-5, atol=1e-6)


def test_norm_keepdim_p0_and_errors():
    x = T(X6, requires_grad=True)
    out = x.norm(p=0)                   # the number of nonzero elements
    assert out.tolist() == 2.0
    out.backward()                      # a zero gradient (PyTorch leaves .grad None)
    assert x.grad.tolist() == [[0.0] * 3] * 2
    x = T(X6)
    assert minaot.norm(x, dim=1, keepdim=True).shape == (2, 1)
    with pytest.raises(TypeError, match="norm: expected a floating point tensor"):
        T([1, 2]).norm()
    with pytest.raises(NotImplementedError, match="norm: p = 0.5"):
        x.norm(p=0.5)


def test_masked_fill_matches_pytorch():
    m = T(MASK)
    for f in ((lambda fn: fn), compiled):
        x = T(X6, requires_grad=True)
        out = f(lambda x, m: x.masked_fill(m, -1.5))(x, m)
        assert out.tolist() == [[-1.5, 0.0, -1.5], [0.0, 0.0, -1.5]]
        (out * T(np.arange(6.0, dtype=np.float32).reshape(2, 3))).sum().backward()
        assert x.grad.tolist() == [[0.0, 1.0, 0.0], [3.0, 4.0, 0.0]]
    # an int tensor keeps its dtype (the value is cast), a mask broadcasts, in place works
    got = T([[1, 0, 3], [0, 0, 0]]).masked_fill(m, 2.7)
    assert got.dtype is minaot.int64 and got.tolist() == [[2, 0, 2], [0, 0, 2]]
    assert T(X6).masked_fill(m[0], 0.0).tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    y = T(X6) * 1
    assert y.masked_fill_(m, 3.0) is y and y.tolist() == [[3.0, 0.0, 3.0], [0.0, 0.0, 3.0]]
    with pytest.raises(TypeError, match="masked_fill: expected a bool mask, got int64"):
        T(X6).masked_fill(T([[1, 0, 1], [0, 0, 1]]), 1.0)


# ------------------------------------------------------------------ cross_entropy options
CE_X = np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 2.0], [0.3, 0.2, 0.1], [2.0, 0.0, -2.0]], np.float32)
CE_T = np.array([0, 2, -100, 1])          # row 2 has the default ignore_index
CE_W = np.array([1.0, 2.0, 0.5], np.float32)


@pytest.mark.parametrize("kwargs,want,grad", [
    ({}, [1.263028], [[-0.256259, 0.209511, 0.046748], [0.041569, 0.013837, -0.055406],
                      [0.0, 0.0, 0.0], [0.288938, -0.29423, 0.005292]]),
    ({"weight": CE_W}, [1.668893], [[-0.21965, 0.17958, 0.04007], [0.017815, 0.00593, -0.023746],
                                    [0.0, 0.0, 0.0], [0.495322, -0.504394, 0.009072]]),
    ({"label_smoothing": 0.2}, [1.360806],
     [[-0.211814, 0.187288, 0.024526], [0.019347, -0.008385, -0.010962],
      [0.0, 0.0, 0.0], [0.266716, -0.249785, -0.01693]]),
    ({"weight": CE_W, "label_smoothing": 0.2, "reduction": "sum"}, [5.900353],
     [[-0.627735, 0.516149, 0.111586], [0.012315, -0.107043, 0.094728],
      [0.0, 0.0, 0.0], [1.522491, -1.518264, -0.004227]]),
    ({"weight": CE_W, "reduction": "none"}, [1.464369, 0.090892, 0.0, 4.285863],
     [[-0.768776, 0.628532, 0.140244], [0.062354, 0.020756, -0.08311],
      [0.0, 0.0, 0.0], [1.733627, -1.765379, 0.031752]]),
], ids=["plain", "weight", "smoothing", "weight-smoothing-sum", "weight-none"])
def test_cross_entropy_weight_ignore_index_and_label_smoothing(kwargs, want, grad):
    """Values and input gradients torch 2.13 gives (target -100 is ignored by default)."""
    kw = dict(kwargs)
    weight = (T(kw.pop("weight")),) if "weight" in kw else ()     # an argument: no closures
    for f in ((lambda fn: fn), compiled):
        x = T(CE_X, requires_grad=True)
        out = f(lambda x, t, *w: minaot.nn.functional.cross_entropy(x, t, *w, **kw))(
            x, T(CE_T), *weight)
        assert_close(out.reshape(-1), T(np.array(want, np.float32)), rtol=1e-5, atol=1e-5)
        out.sum().backward()
        assert_close(x.grad, T(np.array(grad, np.float32)), rtol=1e-4, atol=1e-5)


def test_cross_entropy_probabilities_with_weight_and_smoothing():
    p = T(np.array([[0.2, 0.5, 0.3], [1.0, 0.0, 0.0], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]], np.float32))
    x = T(CE_X, requires_grad=True)
    out = minaot.nn.functional.cross_entropy(x, p, T(CE_W), label_smoothing=0.1)
    assert math.isclose(out.item(), 1.555915, rel_tol=1e-5)
    out.backward()
    assert_close(x.grad, T(np.array([[0.023645, -0.032418, 0.008773], [-0.201637, -0.006116, 0.207753],
                                     [0.037704, 0.000349, -0.038053], [0.163985, -0.119211, -0.044774]],
                                    np.float32)), rtol=1e-4, atol=1e-5)


def test_cross_entropy_targets_out_of_range_raise():
    x = T(CE_X[:2])
    for bad in (-1, 3):
        with pytest.raises(IndexError, match=f"cross_entropy: target {bad} is out of bounds for 3 classes"):
            minaot.nn.functional.cross_entropy(x, T(np.array([0, bad])))
        with pytest.raises(IndexError, match="out of bounds"):
            compiled(lambda x, t: minaot.nn.functional.cross_entropy(x, t))(x, T(np.array([0, bad])))
    # every target ignored: nan, as in PyTorch; a custom ignore_index
    assert math.isnan(minaot.nn.functional.cross_entropy(x, T(np.array([-100, -100]))).item())
    got = minaot.nn.functional.nll_loss(x, T(np.array([1, 7])), ignore_index=7)
    assert got.item() == -2.0
    with pytest.raises(IndexError, match="gather: index -1 is out of bounds"):
        minaot.gather(x, 1, T(np.array([[0], [-1]])))


def test_cross_entropy_loss_module_keeps_its_weight_as_a_buffer():
    m = minaot.nn.CrossEntropyLoss(weight=T(CE_W), label_smoothing=0.2, reduction="sum")
    assert "weight" in dict(m.named_buffers())
    assert math.isclose(m(T(CE_X), T(CE_T)).item(), 5.900353, rel_tol=1e-5)


# ------------------------------------------------------------------ hooks, retain_grad, .data
def test_retain_grad_keeps_and_accumulates_a_non_leaf_gradient():
    x = T([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    z = (y * y).sum()
    z.backward(retain_graph=True)
    assert y.grad.tolist() == [4.0, 8.0] and y.retains_grad and not x.retains_grad
    z.backward()
    assert y.grad.tolist() == [8.0, 16.0]           # accumulated, as in PyTorch
    x.retain_grad()                                 # a leaf: nothing to do
    with pytest.raises(RuntimeError, match="requires_grad=False"):
        T([1.0]).retain_grad()


def test_register_hook_replaces_the_gradient_and_can_be_removed():
    x = T([1.0, 2.0], requires_grad=True)
    y = x * 3
    handle = y.register_hook(lambda g: g * 10)
    y.sum().backward(retain_graph=True)
    assert x.grad.tolist() == [30.0, 30.0]
    handle.remove()
    x.grad = None
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
    # retain_grad sees the gradient after every other hook, whatever the order
    x.grad = None
    seen = []
    y3 = x * 1
    y3.register_hook(lambda g: seen.append(g.tolist()))
    y3.retain_grad()
    y3.register_hook(lambda g: g * 2)
    y3.sum().backward()
    assert seen == [[1.0, 1.0]] and y3.grad.tolist() == [2.0, 2.0] and x.grad.tolist() == [2.0, 2.0]
    # a leaf's hook runs before .grad is accumulated; autograd.grad sees hooks too
    x.grad = None
    x.register_hook(lambda g: g + 1)
    (x * 1).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
    assert minaot.autograd.grad((x * 1).sum(), x)[0].tolist() == [2.0, 2.0]
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        T([1.0]).register_hook(lambda g: g)


def test_hooks_on_compiled_inputs_and_outputs_and_not_inside():
    f = compiled(lambda x: (x * x).sum(dim=0))
    x = T([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    x.register_hook(lambda g: g * 0.5)
    out = f(x)
    out.register_hook(lambda g: g * 4)
    out.retain_grad()
    out.sum().backward()
    assert out.grad.tolist() == [4.0, 4.0]
    assert x.grad.tolist() == [[4.0, 8.0], [12.0, 16.0]]      # 2x * 4 * 0.5
    with pytest.raises(minaot.TraceError, match="retain_grad inside a traced or compiled"):
        compiled(lambda x: (x * 2).retain_grad())(x)


def test_data_is_the_values_without_history_and_can_be_replaced():
    x = T([1.0, 2.0], requires_grad=True)
    d = x.data
    assert not d.requires_grad and d.is_leaf
    d.add_(1)                                       # the same memory
    assert x.tolist() == [2.0, 3.0]
    x.data = minaot.zeros(2)
    assert x.tolist() == [0.0, 0.0] and x.requires_grad and x.is_leaf
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
    with pytest.raises(RuntimeError, match="float64"):
        x.data = minaot.zeros(2, dtype=minaot.float64)


# ------------------------------------------------------------------ //, % and floor
def test_floor_divide_and_remainder_match_pytorch():
    """Values and gradients torch 2.13 gives; the quotient rounds down and the remainder has
    the divisor's sign (Python's rules), eager and compiled."""
    for f in ((lambda fn: fn), compiled):
        a = T([5.0, -5.0, 7.5], requires_grad=True)
        b = T([2.0, 2.0, -2.0], requires_grad=True)
        q, r = f(lambda a, b: (a // b, a % b))(a, b)
        assert q.tolist() == [2.0, -3.0, -4.0] and r.tolist() == [1.0, 1.0, -0.5]
        r.sum().backward()
        assert a.grad.tolist() == [1.0, 1.0, 1.0] and b.grad.tolist() == [-2.0, 3.0, 4.0]
        assert f(lambda b: 7 % b)(T([2.0, -3.0])).tolist() == [1.0, -2.0]
        assert f(lambda a: a // 2.5)(T([5, -3])).tolist() == [2.0, -2.0]
        x = f(lambda a: (a // 0.0, a % 0.0))(T([5.0, -5.0]))
        assert x[0].tolist() == [math.inf, -math.inf] and all(math.isnan(v) for v in x[1].tolist())
        ints = f(lambda a, b: (a // b, a % b, a // 2, a % -2, 7 // b))(T([5, -5, 7]), T([2, 2, -3]))
        assert [t.tolist() for t in ints] == [[2, -3, -3], [1, 1, -2], [2, -3, 3], [-1, -1, -1],
                                             [3, 3, -3]]
        assert ints[0].dtype is minaot.int64
    assert minaot.floor(T([-1.5, 2.0, 0.5])).tolist() == [-2.0, 2.0, 0.0]
    assert T([3, -3]).floor().tolist() == [3, -3]


def test_float_floor_divide_and_remainder_go_through_fmod_as_pytorch():
    """``1.0 // 0.1`` is 9.0 in PyTorch (and numpy, and Python): 0.1 is a little above one
    tenth, and the quotient is worked out from ``fmod``, not by rounding ``1.0 / 0.1`` to
    10.0 first; ``1.0 % 0.1`` is 0.09999999999999995.  The values below are torch 2.13's,
    eager and compiled, float64 and float32; then numpy's on random operands."""
    a = [1.0, 1.0, -1.0, 0.3, 7.0, 2.5, -0.0, 1.0, -1.0, 0.0, -5.5, math.inf]
    b = [0.1, 0.2, 0.1, 0.1, 0.7, -0.5, 3.0, math.inf, math.inf, -2.0, 2.0, 2.0]
    q64 = [9.0, 4.0, -10.0, 2.0, 10.0, -5.0, -0.0, 0.0, -1.0, -0.0, -3.0, math.nan]
    q32 = [9.0, 4.0, -10.0, 3.0, 10.0, -5.0, -0.0, 0.0, -1.0, -0.0, -3.0, math.nan]
    r64 = [0.09999999999999995, 0.19999999999999996, 5.551115123125783e-17,
           0.09999999999999998, 4.440892098500626e-16, 0.0, -0.0, 1.0, math.inf, 0.0, 0.5,
           math.nan]
    for f in ((lambda fn: fn), compiled):
        for dtype, want_q in ((minaot.float64, q64), (minaot.float32, q32)):
            q, r = f(lambda x, y: (x // y, x % y))(T(a, dtype=dtype), T(b, dtype=dtype))
            got = q.numpy()
            np.testing.assert_array_equal(got, np.array(want_q, dtype.np))
            assert list(np.signbit(got[:-1])) == list(np.signbit(np.array(want_q[:-1])))
            if dtype is minaot.float64:
                np.testing.assert_array_equal(r.numpy(), np.array(r64))
    rng = np.random.default_rng(0)
    x = rng.standard_normal(2000) * 10 ** rng.uniform(-3, 3, 2000)
    y = rng.standard_normal(2000) * 10 ** rng.uniform(-3, 3, 2000)
    for dtype in (np.float64, np.float32):
        xs, ys = x.astype(dtype), y.astype(dtype)
        q, r = T(xs) // T(ys), T(xs) % T(ys)
        np.testing.assert_array_equal(q.numpy(), np.floor_divide(xs, ys))
        np.testing.assert_array_equal(r.numpy(), np.remainder(xs, ys))


def test_integer_division_by_zero_raises_like_pytorch():
    for op in (lambda a, b: a // b, lambda a, b: a % b):
        with pytest.raises(RuntimeError, match="integer division by zero") as info:
            op(T([5, -5]), T([1, 0]))
        assert isinstance(info.value, ZeroDivisionError)
        with pytest.raises(ZeroDivisionError):
            op(T([5, -5]), 0)


# ------------------------------------------------------------------ &, |, ^
def test_bitwise_and_or_xor_match_pytorch():
    i, j = T([[5, -3, 7], [2, 9, -8]]), T([3, 6, -1])
    a, b = T([True, False, True]), T([True, True, False])
    for run in (lambda f, *xs: f(*xs), lambda f, *xs: compiled(f)(*xs)):
        assert run(lambda x, y: x & y, i, j).tolist() == [[1, 4, 7], [2, 0, -8]]
        assert run(lambda x, y: x | y, i, j).tolist() == [[7, -1, -1], [3, 15, -1]]
        assert run(lambda x, y: x ^ y, i, j).tolist() == [[6, -5, -8], [1, 15, 7]]
        assert run(lambda x: x & 6, i).tolist() == [[4, 4, 6], [2, 0, 0]]
        assert run(lambda y: 6 | y, j).tolist() == [7, 6, -1]
        assert run(lambda x, y: x & y, a, b).tolist() == [True, False, False]
        assert run(lambda x, y: x | y, a, b).tolist() == [True, True, True]
        assert run(lambda x, y: x ^ y, a, b).tolist() == [False, True, True]
        assert run(lambda x: x ^ True, a).tolist() == [False, True, False]
        r = run(lambda x, y: x & y, a, j)
        assert r.dtype is minaot.int64 and r.tolist() == [1, 0, 1]
    x = minaot.randn(3)
    m = compiled(lambda x: x.masked_fill((x > 0) & (x < 0.5), 0.0))(x)
    np.testing.assert_array_equal(m.numpy(), np.where((x.numpy() > 0) & (x.numpy() < 0.5), 0, x.numpy()))
    with pytest.raises(TypeError, match="bitwise_or: not defined for float32"):
        x | a


# ------------------------------------------------------------------ AdamW
@pytest.mark.parametrize("fused", [False, True], ids=["plain", "fused"])
@pytest.mark.parametrize("kwargs,want", [
    ({}, [[0.20153654, -1.29713643], [1.69566774, -0.04922428]]),
    ({"weight_decay": 0.5}, [[0.14693248, -1.14306831], [1.43298209, -0.06961545]]),
], ids=["default-decay", "decay-0.5"])
def test_adamw_takes_pytorchs_steps(kwargs, want, fused):
    """Three steps of ``torch.optim.AdamW(lr=0.1, **kwargs)`` on ``sum(w**3) + sum(w)``:
    the parameters torch 2.13 ends with (decoupled decay, 0.01 by default)."""
    w = T(np.array([[0.5, -1.0], [2.0, 0.25]], np.float32), requires_grad=True)
    opt = minaot.optim.AdamW([w], lr=0.1, fused=fused, **kwargs)
    for _ in range(3):
        opt.zero_grad()
        ((w * w * w).sum() + w.sum()).backward()
        opt.step()
    assert_close(w.detach(), T(np.array(want, np.float32)), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ what PyTorch refuses
def test_bool_subtraction_and_negation_raise_like_pytorch():
    m = T([True, False])
    for fn in (lambda: m - T([True, True]), lambda: 1 - m, lambda: m - 1,
               lambda: T([1.0, 2.0]) - m, lambda: -m, lambda: T([1, 2]).clone().sub_(m)):
        with pytest.raises(RuntimeError, match="bool tensor is not supported"):
            fn()
    assert (m + m).tolist() == [True, False] and (m * m).tolist() == [True, False]
    assert (~m).tolist() == [False, True] and (m ^ T([True, True])).tolist() == [False, True]
    with pytest.raises(RuntimeError, match="bool"):
        compiled(lambda a: a - a)(m)


def test_narrow_out_of_range_raises_like_pytorch():
    x = minaot.arange(5)
    assert x.narrow(0, -2, 2).tolist() == [3, 4] and x.narrow(0, 5, 0).tolist() == []
    with pytest.raises(RuntimeError, match=r"start \(3\) \+ length \(4\) exceeds"):
        x.narrow(0, 3, 4)
    with pytest.raises(IndexError, match="out of range"):
        x.narrow(0, 6, 0)
    with pytest.raises(RuntimeError, match="non-negative"):
        x.narrow(0, 1, -1)


def test_arange_with_the_wrong_step_sign_raises_like_pytorch():
    assert minaot.arange(0).tolist() == [] and minaot.arange(2, 2).tolist() == []
    assert minaot.arange(3, 0, -1).tolist() == [3, 2, 1]
    for args in [(-3,), (3, 1), (1, 3, -1)]:
        with pytest.raises(RuntimeError, match="inconsistent with step sign"):
            minaot.arange(*args)
    with pytest.raises(RuntimeError, match="step must be nonzero"):
        minaot.arange(1, 3, 0)


def test_grad_setter_checks_like_pytorch():
    x = minaot.ones(3, requires_grad=True)
    x.grad = minaot.full((3,), 2.0)
    assert x.grad.tolist() == [2.0, 2.0, 2.0]
    x.grad = None
    assert x.grad is None
    with pytest.raises(RuntimeError, match="different size"):
        x.grad = minaot.ones(4)
    with pytest.raises(RuntimeError, match="different dtype"):
        x.grad = minaot.ones(3, dtype=minaot.float64)
    with pytest.raises(TypeError, match="Tensor or None"):
        x.grad = 5
    with pytest.raises(RuntimeError, match="its own grad"):
        x.grad = x
    assert x.grad is None


@pytest.mark.parametrize("case", ["add_", "copy_", "setitem", "transpose", "view"])
def test_partially_overlapping_inplace_raises_like_pytorch(case):
    x = minaot.arange(6.0)
    with pytest.raises(RuntimeError, match="refer to a single memory location"):
        if case == "add_":
            x[1:].add_(x[:-1])
        elif case == "copy_":
            x[1:].copy_(x[:-1])
        elif case == "setitem":
            x[1:] = x[:-1]
        elif case == "transpose":
            y = x[:4].view(2, 2)
            y.add_(y.t())
        else:
            x.view(2, 3)[0].mul_(x[1:4])
    assert x.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]     # nothing was written


def test_fully_overlapping_or_disjoint_inplace_runs_like_pytorch():
    x = minaot.arange(6.0)
    x.add_(x)                                   # the same elements: allowed
    x[:3].add_(x[3:])                           # disjoint
    x[::2].add_(x[1::2])                        # interleaved, not dense: PyTorch does not look
    assert x.tolist() == [16.0, 10.0, 20.0, 6.0, 18.0, 10.0]


def test_movedim_moves_axes_like_pytorch():
    x = minaot.tensor(np.arange(24.0).reshape(2, 3, 4))
    assert x.movedim(1, -1).shape == (2, 4, 3) and x.movedim(-1, 0).shape == (4, 2, 3)
    assert minaot.movedim(x, (0, 1), (2, 0)).shape == (3, 4, 2)
    assert_close(minaot.moveaxis(x, 0, 2), np.moveaxis(x.numpy(), 0, 2))
    assert x.movedim(0, 1)._storage is x._storage           # a view
    with pytest.raises(ValueError, match="same number"):
        x.movedim((0, 1), 2)
    with pytest.raises(ValueError, match="repeated"):
        x.movedim((0, 0), (1, 2))


# ------------------------------------------------------------------ cumsum
@pytest.mark.parametrize("run", ["eager", "compiled"])
def test_cumsum_values_dtypes_and_gradient_match_pytorch(run):
    """What torch 2.13 gives: the gradient is the reversed cumsum of the incoming one; a
    float32 line is summed in float64 (1e8 + 1 - 1e8 keeps its 1); bool sums as int64."""
    f = (lambda fn: fn) if run == "eager" else compiled
    x = T([[1.0, -2.0, 3.5], [0.25, 4.0, -1.0]], requires_grad=True)
    y = f(lambda x: x.cumsum(-1))(x)
    assert y.tolist() == [[1.0, -1.0, 2.5], [0.25, 4.25, 3.25]]
    (y * T([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])).sum().backward()
    assert x.grad.tolist() == [[6.0, 5.0, 3.0], [1.5, 2.5, 2.0]]
    assert f(lambda x: x.cumsum(0))(T([1e8, 1.0, -1e8])).tolist() == [1e8, 1e8, 1.0]
    b = f(lambda x: x.cumsum(0))(T([[True, False], [True, True]]))
    assert b.dtype is minaot.int64 and b.tolist() == [[1, 0], [2, 1]]


# ------------------------------------------------------------------ sort, argsort, topk
@pytest.mark.parametrize("run", ["eager", "compiled"])
def test_sort_and_topk_values_indices_and_gradients_match_pytorch(run):
    """What torch 2.13 gives with ``stable=True``: ties keep their order, NaN is the largest
    value; the gradient of the values goes back to the positions they came from."""
    f = (lambda fn: fn) if run == "eager" else compiled
    data = [[0.5, -1.0, 2.0, 0.5], [3.0, math.nan, -2.0, 3.0]]
    x = T(data, requires_grad=True)
    v, i = f(lambda x: minaot.sort(x, dim=1, descending=True, stable=True))(x)
    assert str(v.tolist()) == "[[2.0, 0.5, 0.5, -1.0], [nan, 3.0, 3.0, -2.0]]"
    assert i.tolist() == [[2, 0, 3, 1], [1, 0, 3, 2]]
    (v * T([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])).sum().backward()
    assert x.grad.tolist() == [[2.0, 4.0, 1.0, 3.0], [6.0, 5.0, 8.0, 7.0]]
    x = T(data, requires_grad=True)
    v, i = f(lambda x: x.topk(1, dim=0, largest=False))(x)
    assert v.tolist() == [[0.5, -1.0, -2.0, 0.5]] and i.tolist() == [[0, 0, 1, 0]]
    (v * T([[1.0, 2.0, 3.0, 4.0]])).sum().backward()
    assert x.grad.tolist() == [[1.0, 2.0, 0.0, 4.0], [0.0, 0.0, 3.0, 0.0]]
    assert f(lambda x: minaot.argsort(x, stable=True))(T([2, 0, 2, 1])).tolist() == [1, 3, 0, 2]


# ------------------------------------------------------------------ einsum
EINSUM_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ij,kj", [(3, 4), (5, 4)]), ("ij,jk->ki", [(3, 4), (4, 5)]),
    ("bhqk,bkhd->bqhd", [(2, 4, 3, 6), (2, 6, 4, 5)]), ("i,i->", [(4,), (4,)]),
    ("i,j", [(3,), (4,)]), ("ab,cd->dbca", [(2, 3), (4, 5)]), ("ii", [(4, 4)]), ("ii->i", [(4, 4)]),
    ("iji->j", [(3, 2, 3)]), ("iii->i", [(3, 3, 3)]), ("ijk->kj", [(3, 4, 5)]), ("ji", [(3, 4)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (3, 4, 2)]), ("...ij,...jk", [(5, 2, 3), (2, 1, 3, 4)]),
    ("...ij->j", [(4, 2, 3)]), ("ij->...ij", [(2, 3)]), ("i...->...", [(2, 3, 4)]),
    ("ij,jk->ik", [(2, 1), (3, 4)]), ("ij,ij->ij", [(1, 3), (2, 1)]), ("i,i->", [(1,), (3,)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]), ("ij,jk,kl->li", [(2, 3), (3, 4), (4, 5)]),
    (",i->i", [(), (3,)]), ("aB,b", [(2, 3), (3,)]), (" i j -> j i ", [(2, 3)]), ("i->", [(0,)]),
    ("ij,jk->ik", [(2, 0), (0, 3)]), ("ijk,jil->kl", [(2, 3, 4), (3, 2, 5)]), ("ii,ij->j", [(3, 3), (3, 4)]),
]


def _np_einsum_of(equation, arrays):
    """numpy's einsum where it has PyTorch's meaning: numpy does not sum an ellipsis that
    the output leaves out, so those few cases are summed here."""
    if equation == "...ij->j":
        return np.einsum("...ij->...j", arrays[0]).sum(0)
    if equation == "i...->...":
        return arrays[0].sum(0)
    if equation == "ij->...ij":
        return arrays[0]
    return np.einsum(equation.replace(" ", ""), *arrays)


@pytest.mark.parametrize("equation,shapes", EINSUM_CASES, ids=[e for e, _ in EINSUM_CASES])
def test_einsum_against_numpy_finite_differences_and_torch(equation, shapes):
    """Values against numpy's einsum (and torch's when it is installed), gradients against
    central differences in float64, compiled against eager; a result that is a view of
    the operand in PyTorch (a permute, a diagonal) is one here too."""
    from minaot.testing import gradcheck
    rng = np.random.default_rng(len(equation))
    arrays = [rng.standard_normal(s) for s in shapes]
    xs = [T(a, dtype=minaot.float64, requires_grad=True) for a in arrays]
    out = minaot.einsum(equation, *xs)
    assert_close(out, T(np.asarray(_np_einsum_of(equation, arrays)), dtype=minaot.float64))
    gradcheck(lambda *t: minaot.einsum(equation, *t), xs)
    got = compiled(lambda *t: minaot.einsum(equation, *t))(*xs)
    assert got.shape == out.shape
    assert_close(got, out)
    try:
        import torch
    except ImportError:
        return
    want = torch.einsum(equation, *[torch.tensor(a) for a in arrays])
    assert out.shape == tuple(want.shape)
    assert_close(out, T(want.numpy()))
    ta = torch.tensor(arrays[0])
    is_view = len(arrays) == 1 and torch.einsum(equation, ta).data_ptr() == ta.data_ptr()
    assert np.shares_memory(out.detach().numpy(), xs[0].detach().numpy()) == is_view


def test_einsum_implicit_output_views_and_forms():
    """Without '->' the output is the ellipsis then the letters that appear once, capitals
    first (ASCII order); a permute or a diagonal of one operand is a view, eager and
    compiled (writing through it writes the operand); the operands may come as one
    list, or in the sublist form."""
    assert minaot.einsum("aB,b", minaot.ones(2, 3), minaot.ones(3)).shape == (3, 2, 3)
    assert minaot.einsum("ba,...", minaot.ones(2, 3), minaot.ones(4, 5)).shape == (4, 5, 3, 2)
    assert minaot.einsum("Ab,bC", minaot.ones(2, 3), minaot.ones(3, 4)).shape == (2, 4)

    def transpose_and_scale(x):
        y = minaot.einsum("ij->ji", x)
        y.mul_(2)
        return y

    def zero_diagonal(x):
        minaot.einsum("ii->i", x).zero_()
        return x * 1

    for run in ((lambda f: f), compiled):
        x = T(np.arange(6.0, dtype=np.float32).reshape(2, 3))
        y = run(transpose_and_scale)(x)
        assert x.tolist() == [[0.0, 2.0, 4.0], [6.0, 8.0, 10.0]] and y.shape == (3, 2)
        assert np.shares_memory(y.numpy(), x.numpy())
        assert run(zero_diagonal)(minaot.ones(2, 2)).tolist() == [[0.0, 1.0], [1.0, 0.0]]
    a, b = T([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), T([1.0, 0.0, 2.0])
    assert minaot.einsum("ij,j->i", [a, b]).tolist() == [7.0, 16.0]
    assert minaot.einsum("ij,j->i", (a, b)).tolist() == [7.0, 16.0]
    assert minaot.einsum(a, [0, 1], b, [1], [0]).tolist() == [7.0, 16.0]
    assert minaot.einsum(a, [Ellipsis, 27], b, [27]).tolist() == [7.0, 16.0]
    assert minaot.einsum("ij->", a).tolist() == 21.0


def test_einsum_dtypes_like_pytorch():
    """Integers stay int64; bool operands give bool unless something is summed (int64),
    and a summed product of bools is refused, as PyTorch's bmm refuses them."""
    i = T([[1, 2], [3, 4]])
    for run in ((lambda f: f), compiled):
        out = run(lambda a, b: minaot.einsum("ij,jk->ik", a, b))(i, i)
        assert out.dtype is minaot.int64 and out.tolist() == [[7, 10], [15, 22]]
    m = T([[True, False, True], [True, True, True]])
    assert minaot.einsum("ij->i", m).tolist() == [2, 3]
    assert minaot.einsum("i,i->i", m[0], m[1]).dtype is minaot.bool
    assert minaot.einsum("i->", minaot.ones(1, dtype=minaot.bool)).dtype is minaot.int64
    with pytest.raises(TypeError, match=r"^einsum: equation 'i,i' sums a product of bool"):
        minaot.einsum("i,i", m[0], m[1])


@pytest.mark.parametrize("args,error,match", [
    (("ij->jj", (3, 3)), ValueError, r"output subscript j appears more than once"),
    (("ij->k", (3, 3)), ValueError, r"output subscript k does not appear in any operand"),
    (("ij", (2,)), ValueError, r"operand 0 has 1 dimension but its subscripts 'ij' name 2"),
    (("ij,jk", (2, 3)), ValueError, r"subscripts for 2 operands but 1 were given"),
    (("ij", (2, 3), (2,)), ValueError, r"subscripts for 1 operand but 2 were given"),
    (("i1", (2,)), ValueError, r"invalid subscript '1'"),
    (("i.j", (2, 3)), ValueError, r"'.' that is not part of an ellipsis"),
    (("...i...", (2,)), ValueError, r"not part of its one ellipsis"),
    (("i,i->i", (2,), (3,)), ValueError, r"subscript i has size 3 in operand 1, which does not broadcast "
                                         r"with size 2"),
    (("i...,i...->...", (2, 3), (2, 4)), ValueError, r"the ellipsis' dimension 1 from the right has size 4"),
    (("ii", (2, 3)), ValueError, r"subscript i is repeated in operand 0 but its sizes differ \(2 and 3\)"),
    (("ij->i->j", (2, 3)), ValueError, r"not its one '->'"),
])
def test_einsum_errors_name_the_op_equation_and_shapes(args, error, match):
    equation, *shapes = args
    with pytest.raises(error, match=match) as info:
        minaot.einsum(equation, *[minaot.ones(*s) for s in shapes])
    text = str(info.value)
    assert text.startswith("einsum: ") and repr(equation) in text
    assert ", ".join(str(tuple(s)) for s in shapes) in text and "test_torch_parity.py" in text


def test_einsum_errors_on_operands():
    with pytest.raises(ValueError, match=r"^einsum: equation 'ij': at least one operand"):
        minaot.einsum("ij")
    with pytest.raises(TypeError, match=r"^einsum: equation 'ij': operand 0 is a ndarray"):
        minaot.einsum("ij", np.ones((2, 3)))
    with pytest.raises(TypeError, match=r"^einsum: operands must have one dtype, as in PyTorch, got "
                                        r"float32 and float64"):
        minaot.einsum("ij,j->i", minaot.ones(2, 3), minaot.ones(3, dtype=minaot.float64))
    with pytest.raises(ValueError, match=r"^einsum: a subscript in a sublist must be an int in \[0, 52\)"):
        minaot.einsum(minaot.ones(2), [52])


def test_review_findings_match_pytorch():
    """Cases a review of the parity ops found (values from torch 2.13)."""
    x = T(np.arange(1.0, 10.0).reshape(3, 3))
    x.fill_(x[0, 0])                                # one value of the target itself
    assert x.tolist() == [[1.0] * 3] * 3
    a = T([20.0, -20.0, 0.3], requires_grad=True)   # saturated sigmoid: no NaN gradient
    minaot.nn.functional.binary_cross_entropy(a.sigmoid(), T([1.0, 0.0, 1.0])).backward()
    assert np.isfinite(a.grad.numpy()).all()
    assert_close(a.grad, [0.0, 6.8705e-10, -0.14185], rtol=1e-3, atol=1e-9)
    assert_close(minaot.hypot(T([1.0, 2.0]), T([3, 4])), [3.1622777, 4.4721360])
    assert_close(minaot.logaddexp(T([1.0, 2.0]), T([3, 4])), [3.1269281, 4.1269279])
    with pytest.raises(TypeError, match="addcdiv"):
        minaot.addcdiv(T([1.0]), T([3]), T([2]))
    v = T([1.0, 2.0, 4.0])
    d = minaot.diff(v, n=0)
    assert d is not v and d._storage is not v._storage and d.tolist() == [1.0, 2.0, 4.0]
    assert minaot.flip(T(3.0), (0,)).tolist() == 3.0


def test_bool_rounding_and_abs_raise_and_addmm_beta0_gives_a_zero_gradient():
    m = T([True, False])
    for fn in (m.abs, m.abs_, m.ceil, m.ceil_, m.trunc_, m.round_):
        with pytest.raises(RuntimeError, match="bool"):
            fn()
    i = T([[float("nan"), 1.0]], requires_grad=True)
    ones = minaot.ones(1, 2)
    r = minaot.addmm(i, ones.t(), ones, beta=0)     # the input's NaN is ignored ...
    r.sum().backward()
    assert r.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert i.grad.tolist() == [[0.0, 0.0]]          # ... and its gradient is zero, not None
