"""View and in-place semantics: writes through any view reach the base and every
other view; version counters catch tensors modified after being saved."""

import numpy as np
import pytest

import minaot
from minaot.testing import assert_close, gradcheck

pytestmark = pytest.mark.tensor


def base():
    return minaot.tensor(np.arange(12.0).reshape(3, 4))


def test_mutate_transposed_slice_read_through_other_view():
    a = base()
    t = a.t()[1:3]                 # rows 1..2 of a.T = columns 1..2 of a
    other = a[:, 1]
    t.mul_(10)
    assert other.tolist() == [10.0, 50.0, 90.0]
    assert a[0].tolist() == [0.0, 10.0, 20.0, 3.0]


def test_setitem_with_slices_and_steps():
    a = base()
    a[:, ::2] = 0
    assert a.tolist() == [[0, 1, 0, 3], [0, 5, 0, 7], [0, 9, 0, 11]]
    a[1] = minaot.tensor([1.0, 2.0, 3.0, 4.0])
    assert a[1].tolist() == [1, 2, 3, 4]
    a[2, 1:3] = minaot.tensor([7.0])            # broadcast
    assert a[2].tolist() == [0, 7, 7, 11]


def test_inplace_on_expanded_view_raises():
    x = minaot.ones(3, 1)
    e = x.expand(3, 4)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        e.add_(1)


def test_version_counter_shared_by_views():
    a = base()
    v = a[0]
    assert a._version == v._version == 0
    v.add_(1)
    assert a._version == 1 and v._version == 1
    a.zero_()
    assert v._version == 2


def test_metadata_inplace_ops():
    a = base()
    a.t_()
    assert a.shape == (4, 3) and a.stride() == (1, 4)
    a.unsqueeze_(0)
    assert a.shape == (1, 4, 3)
    a.squeeze_(0)
    assert a.shape == (4, 3)
    a.transpose_(0, 1)
    assert a.tolist() == np.arange(12.0).reshape(3, 4).tolist()


def test_inplace_result_dtype_rules():
    i = minaot.tensor([1, 2])
    with pytest.raises(TypeError, match="can't be cast to the desired output type int64"):
        i.mul_(2.5)
    f = minaot.tensor([1.0, 2.0])
    f.add_(minaot.tensor([1, 1]))          # int into float is fine
    assert f.tolist() == [2.0, 3.0]
    with pytest.raises(ValueError, match="doesn't match the broadcast shape"):
        f.add_(minaot.ones(2, 2))


def test_copy_and_fill_through_views():
    a = minaot.zeros(2, 3)
    a[0].copy_(minaot.tensor([1.0, 2.0, 3.0]))
    a[:, 2].fill_(9)
    assert a.tolist() == [[1, 2, 9], [0, 0, 9]]


def test_gradient_through_mutated_view_of_intermediate():
    x = minaot.tensor([1.0, 2.0, 3.0, 4.0], dtype=minaot.float64, requires_grad=True)

    def f(x):
        y = x * 2
        y[1:3].mul_(x[:2])            # y = [2x0, 2x1*x0, 2x2*x1, 2x3]
        return y

    y = f(x)
    assert y.tolist() == [2.0, 4.0, 12.0, 8.0]
    gradcheck(f, (x,))


def test_other_views_see_history_of_inplace_base():
    x = minaot.tensor([1.0, 2.0, 3.0], dtype=minaot.float64, requires_grad=True)

    def f(x):
        y = x.clone()
        first = y[0]
        y.mul_(x)                      # y = x * x; `first` now reads x0 * x0
        return first * 3

    gradcheck(f, (x,))
    out = f(x)
    out.backward()
    assert x.grad.tolist() == [6.0, 0.0, 0.0]


def test_version_error_at_backward():
    x = minaot.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    y.add_(1)                          # exp saved its output
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*output 0 of ExpBackward"):
        y.sum().backward()


def test_inplace_on_input_saved_for_backward():
    x = minaot.tensor([1.0, 2.0], requires_grad=True)
    a = x * 1
    b = a * a
    a.mul_(2)
    with pytest.raises(RuntimeError, match="is at version 1; expected version 0"):
        b.sum().backward()


def test_inplace_not_saved_is_fine():
    x = minaot.tensor([1.0, 2.0], requires_grad=True)
    a = x * 1
    b = a + 1                          # add saves nothing
    a.mul_(2)
    b.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_inplace_on_leaf_requires_grad_and_under_no_grad():
    w = minaot.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w.add_(1)
    with pytest.raises(RuntimeError, match="view of a leaf Variable"):
        w[0].mul_(2)
    with minaot.no_grad():
        w.sub_(0.5)
    assert w.tolist() == [0.5, 0.5] and w.requires_grad and w.is_leaf


def test_inplace_makes_tensor_require_grad():
    w = minaot.tensor([2.0, 3.0], requires_grad=True)
    a = minaot.zeros(2)
    a.add_(w)
    assert a.requires_grad and not a.is_leaf
    (a * a).sum().backward()
    assert w.grad.tolist() == [4.0, 6.0]


def test_base_gradient_after_view_write():
    w = minaot.tensor([1.0, 2.0, 3.0], dtype=minaot.float64, requires_grad=True)
    s = minaot.tensor([5.0], dtype=minaot.float64, requires_grad=True)

    def f(w, s):
        b = w * 1
        b[1:2].copy_(s * 2)
        return (b * b).sum()

    gradcheck(f, (w, s))
    f(w, s).backward()
    assert w.grad.tolist() == [2.0, 0.0, 6.0]
    assert s.grad.tolist() == [40.0]
