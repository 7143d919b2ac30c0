"""Eager autograd: backward, grad, accumulation, grad modes, retain_graph,
create_graph, custom Functions.  Oracles: hand-derived gradients and gradcheck."""

import numpy as np
import pytest

import minaot
from minaot.testing import assert_close, gradcheck

pytestmark = pytest.mark.tensor


def test_backward_and_accumulation():
    x = minaot.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0, 6.0]
    (x * 3).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0, 9.0]
    x.grad = None
    (x ** 2).mean().backward()
    assert_close(x.grad, minaot.tensor([2 / 3, 4 / 3, 2.0]))


def test_broadcasting_gradients_are_summed():
    a = minaot.ones(3, 4, requires_grad=True)
    b = minaot.ones(4, requires_grad=True)
    c = minaot.ones(3, 1, requires_grad=True)
    (a * b + c).sum().backward()
    assert b.grad.tolist() == [3.0] * 4
    assert c.grad.tolist() == [[4.0]] * 3


def test_backward_with_gradient_and_nonscalar_error():
    x = minaot.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        y.backward()
    y.backward(minaot.tensor([1.0, 10.0]))
    assert x.grad.tolist() == [2.0, 20.0]


def test_autograd_grad_does_not_accumulate():
    x = minaot.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    (g,) = minaot.autograd.grad(y, x)
    assert g.tolist() == [2.0, 4.0] and x.grad is None
    z = x * 2
    w = (z * z).sum()
    (gz,) = minaot.autograd.grad(w, [z])
    assert gz.tolist() == [4.0, 8.0]


def test_no_grad_enable_grad_detach():
    x = minaot.ones(2, requires_grad=True)
    with minaot.no_grad():
        y = x * 2
        with minaot.enable_grad():
            z = x * 2
    assert not y.requires_grad and z.requires_grad
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf

    @minaot.no_grad()
    def f(t):
        return t * 2
    assert not f(x).requires_grad
    assert minaot.is_grad_enabled()


def test_retain_graph_and_second_backward():
    x = minaot.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp()).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert_close(x.grad, 2 * np.exp(np.array([1.0, 2.0], dtype=np.float32)))
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_double_backward_with_create_graph():
    x = minaot.tensor([1.0, 2.0], dtype=minaot.float64, requires_grad=True)
    y = (x ** 3).sum()
    (g,) = minaot.autograd.grad(y, x, create_graph=True)
    assert g.requires_grad
    (h,) = minaot.autograd.grad(g.sum(), x)
    assert h.tolist() == [6.0, 12.0]


def test_requires_grad_rules():
    i = minaot.tensor([1, 2])
    with pytest.raises(RuntimeError, match="only tensors of floating point dtype can require gradients"):
        i.requires_grad_()
    x = minaot.ones(2, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="only change requires_grad flags of leaf"):
        y.requires_grad_(False)
    assert not (x > 0).requires_grad
    assert not x.argmax().requires_grad


def test_grad_through_views_and_reductions():
    x = minaot.tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    gradcheck(lambda x: x.t()[1:, ::2].sum(0) * x[0, :2], (x,))
    gradcheck(lambda x: x.softmax(1).amax(0).log_softmax(0), (x,))
    gradcheck(lambda x: minaot.cat([x, x * 2], 1).reshape(6, 4).var(0), (x,))


class Square(minaot.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 2 * x


class ScaleBy(minaot.autograd.Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.k = k
        return x * k

    @staticmethod
    def backward(ctx, g):
        return g * ctx.k, None


def test_custom_function():
    x = minaot.tensor([1.0, 3.0], dtype=minaot.float64, requires_grad=True)
    y = Square.apply(x)
    assert y.grad_fn.name() == "SquareBackward"
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 6.0]
    gradcheck(lambda x: ScaleBy.apply(Square.apply(x), 3.0), (x,))


def test_custom_function_saved_tensor_version_check():
    x = minaot.tensor([1.0, 3.0], requires_grad=True)
    a = x * 1
    y = Square.apply(a)
    a.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_backward_inputs_argument():
    a = minaot.ones(2, requires_grad=True)
    b = minaot.ones(2, requires_grad=True)
    (a * b * 3).sum().backward(inputs=[a])
    assert a.grad.tolist() == [3.0, 3.0] and b.grad is None


class TestGradientStealing:
    """A leaf's first gradient is taken without a copy when nothing else can see it (as
    PyTorch's AccumulateGrad does); every case that could share memory still copies."""

    @pytest.fixture
    def steals(self, monkeypatch):
        from minaot.autograd import engine
        log, orig = [], engine.AccumulateGrad.steal

        def spy(node, buf):
            log.append(orig(node, buf))
            return log[-1]
        monkeypatch.setattr(engine.AccumulateGrad, "steal", spy)
        return log

    def test_a_fresh_gradient_is_taken(self, steals):
        x = minaot.randn(4, 5, requires_grad=True)
        (x * 3).sum().backward()
        assert steals == [True]
        np.testing.assert_allclose(x.grad.numpy(), 3)
        (x * 3).sum().backward()                    # the second one adds into it
        np.testing.assert_allclose(x.grad.numpy(), 6)

    def test_one_gradient_for_two_leaves_is_copied(self, steals):
        a, b = minaot.randn(3, requires_grad=True), minaot.randn(3, requires_grad=True)
        (a + b).sum().backward()
        assert a.grad._storage is not b.grad._storage
        a.grad.add_(1)
        np.testing.assert_allclose(b.grad.numpy(), 1)
        np.testing.assert_allclose(a.grad.numpy(), 2)

    def test_the_users_gradient_is_copied(self, steals):
        x, g = minaot.randn(3, requires_grad=True), minaot.ones(3)
        x.backward(g)
        x.grad.add_(1)
        np.testing.assert_allclose(g.numpy(), 1)
        assert steals == [False]

    def test_a_gradient_the_backward_keeps_is_copied(self, steals):
        kept = []

        class Keep(minaot.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x * 1

            @staticmethod
            def backward(ctx, g):
                out = g * 2
                kept.append(out)
                return out

        x = minaot.randn(3, requires_grad=True)
        Keep.apply(x).sum().backward()
        assert steals == [False]
        x.grad.add_(1)
        np.testing.assert_allclose(kept[0].numpy(), 2)

    def test_compiled_gradients_are_taken(self, steals):
        f = minaot.compile(lambda x, w: (x @ w).relu().sum())
        x = minaot.randn(4, 5, requires_grad=True)
        w = minaot.randn(5, 6, requires_grad=True)
        f(x, w).backward()
        assert steals == [True, True]
        xe, we = x.detach().requires_grad_(), w.detach().requires_grad_()
        (xe @ we).relu().sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), xe.grad.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(w.grad.numpy(), we.grad.numpy(), rtol=1e-5, atol=1e-6)
