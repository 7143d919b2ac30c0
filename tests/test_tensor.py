"""The Tensor: creation, dtypes and promotion, numpy sharing, views and strides."""

import numpy as np
import pytest

import minaot
from minaot.testing import assert_close

pytestmark = pytest.mark.tensor


def test_creation_and_default_dtype():
    t = minaot.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert t.dtype is minaot.float32 and t.shape == (2, 2) and t.ndim == 2 and t.numel() == 4
    assert minaot.tensor([1, 2]).dtype is minaot.int64
    assert minaot.tensor([True, False]).dtype is minaot.bool
    assert minaot.tensor(np.zeros(3)).dtype is minaot.float64        # numpy keeps its dtype
    assert minaot.tensor(3.5).shape == ()
    assert minaot.zeros(2, 3).shape == (2, 3)
    assert minaot.ones((4,), dtype=minaot.int64).tolist() == [1, 1, 1, 1]
    assert minaot.full((2,), 7.0).tolist() == [7.0, 7.0]
    assert minaot.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert minaot.arange(0, 1, 0.25).dtype is minaot.float32
    assert minaot.empty(3).shape == (3,)
    x = minaot.randn(3, 2)
    assert minaot.zeros_like(x).shape == (3, 2) and minaot.ones_like(x).dtype is minaot.float32
    assert minaot.full_like(x, 2).tolist() == [[2.0, 2.0]] * 3
    assert x.device == "cpu" and str(x.device) == "cpu"


def test_unknown_dtype_is_a_clear_error():
    with pytest.raises(TypeError, match="unknown dtype"):
        minaot.zeros(3, dtype="complex64")
    with pytest.raises(TypeError, match="unsupported dtype"):
        minaot.from_numpy(np.zeros(3, dtype=np.complex64))


def test_promotion_follows_pytorch():
    i = minaot.tensor([1, 2, 3])
    f = minaot.tensor([1.0, 2.0, 3.0])
    d = minaot.tensor([1.0], dtype=minaot.float64)
    assert (i * 2.5).dtype is minaot.float32          # numpy would say float64
    assert (i * 2).dtype is minaot.int64
    assert (f * 2).dtype is minaot.float32
    assert (f + d).dtype is minaot.float64
    assert (f + minaot.tensor(1.0, dtype=minaot.float64)).dtype is minaot.float32   # 0-d loses
    assert (i + minaot.tensor(1.5, dtype=minaot.float64)).dtype is minaot.float64   # higher category wins
    assert (i / i).dtype is minaot.float32
    assert (f > 1).dtype is minaot.bool
    assert i.sum().dtype is minaot.int64
    assert minaot.tensor([True, True]).sum().item() == 2


def test_seeded_random_is_reproducible():
    minaot.manual_seed(3)
    a = minaot.randn(4)
    minaot.manual_seed(3)
    b = minaot.randn(4)
    assert a.tolist() == b.tolist()
    g = minaot.Generator().manual_seed(5)
    c = minaot.rand(3, generator=g)
    g.manual_seed(5)
    assert minaot.rand(3, generator=g).tolist() == c.tolist()
    assert ((c >= 0) & (c < 1) if hasattr(c, "__and__") else True) is not None


def test_numpy_shares_memory_both_ways():
    a = np.arange(6.0).reshape(2, 3)
    t = minaot.from_numpy(a)
    t.add_(1)
    assert a[0, 0] == 1.0
    n = t.numpy()
    n[1, 2] = 100
    assert t[1, 2].item() == 100
    assert np.shares_memory(t.numpy(), a)
    c = minaot.tensor(a)        # tensor() copies
    c.zero_()
    assert a[0, 0] == 1.0


def test_views_share_storage_and_strides():
    x = minaot.arange(12.0).reshape(3, 4).clone()
    assert x.stride() == (4, 1) and x.is_contiguous()
    t = x.t()
    assert t.shape == (4, 3) and t.stride() == (1, 4) and not t.is_contiguous()
    assert t._base is x
    s = x[:, ::2]
    assert s.shape == (3, 2) and s.stride() == (4, 2) and s.storage_offset() == 0
    r = x[1]
    assert r.shape == (4,) and r.storage_offset() == 4 and r._base is x
    assert x[1:, 1:].storage_offset() == 5
    assert x[None, :, None].shape == (1, 3, 1, 4)
    assert x[..., 1].shape == (3,)
    e = x[:, :1].expand(3, 5)
    assert e.stride() == (4, 0)
    assert x.view(-1).shape == (12,) and x.view(2, 6)._base is x
    assert x.unsqueeze(0).shape == (1, 3, 4) and x.unsqueeze(0).squeeze(0).shape == (3, 4)
    assert x.flatten().shape == (12,)
    assert x.permute(1, 0).shape == (4, 3)
    assert x.transpose(0, 1).stride() == (1, 4)
    p0, p1 = x.split(2, dim=1)
    assert p0.shape == (3, 2) and p1._base is x
    assert [c.shape for c in x.chunk(2, 0)] == [(2, 4), (1, 4)]


def test_reshape_is_a_view_when_possible_and_view_refuses_otherwise():
    x = minaot.arange(6.0).reshape(2, 3)
    assert x.reshape(3, 2)._base is x._base is not None   # views of views share the root base
    x = x.clone()
    assert x.reshape(3, 2)._base is x
    t = x.t()
    r = t.reshape(6)              # not viewable: a copy
    assert r._base is not x and r.tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    with pytest.raises(RuntimeError, match="view size .* is not compatible"):
        t.view(6)


def test_ops_on_noncontiguous_views():
    x = minaot.arange(12.0).reshape(3, 4)
    v = x.t()[1:, ::2]
    assert_close(v * 2, minaot.tensor(np.arange(12.0).reshape(3, 4).T[1:, ::2] * 2), check_dtype=False)
    assert v.contiguous().is_contiguous()


def test_reductions_and_argmax_and_max():
    x = minaot.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    assert x.sum().item() == 18.0
    assert x.sum(dim=1).tolist() == [8.0, 10.0]
    assert x.sum(dim=(0, 1), keepdim=True).shape == (1, 1)
    assert x.mean(-1).tolist() == pytest.approx([8 / 3, 10 / 3])
    assert x.amax(0).tolist() == [7.0, 5.0, 3.0]
    assert x.argmax(1).tolist() == [1, 0]
    assert x.argmax().item() == 3
    v, i = x.max(1)
    assert v.tolist() == [5.0, 7.0] and i.tolist() == [1, 0]
    assert x.max().item() == 7.0
    assert minaot.max(x, minaot.zeros(3) + 4).tolist() == [[4.0, 5.0, 4.0], [7.0, 4.0, 4.0]]
    assert x.var().item() == pytest.approx(np.var(x.numpy(), ddof=1))
    assert x.var(1, correction=0).tolist() == pytest.approx(np.var(x.numpy(), 1).tolist())


def test_cat_stack_gather_where_clamp():
    a = minaot.ones(2, 3)
    b = minaot.zeros(1, 3)
    assert minaot.cat([a, b]).shape == (3, 3)
    assert minaot.stack([a, a], 1).shape == (2, 2, 3)
    x = minaot.tensor([[1.0, 2.0], [3.0, 4.0]])
    idx = minaot.tensor([[0, 0], [1, 0]])
    assert minaot.gather(x, 1, idx).tolist() == [[1.0, 1.0], [4.0, 3.0]]
    assert minaot.where(x > 2, x, 0.0).tolist() == [[0.0, 0.0], [3.0, 4.0]]
    assert x.clamp(min=1.5, max=3.5).tolist() == [[1.5, 2.0], [3.0, 3.5]]


def test_casting():
    x = minaot.tensor([1.7, -2.2])
    assert x.to(minaot.int64).tolist() == [1, -2]
    assert x.long().dtype is minaot.int64 and x.double().dtype is minaot.float64
    assert minaot.tensor([1, 0]).float().dtype is minaot.float32
    assert x.to(minaot.float32) is x


def test_matmul_shapes():
    assert (minaot.ones(2, 3) @ minaot.ones(3, 4)).shape == (2, 4)
    assert (minaot.ones(5, 2, 3) @ minaot.ones(3, 4)).shape == (5, 2, 4)
    assert (minaot.ones(3) @ minaot.ones(3)).shape == ()
    assert (minaot.ones(3) @ minaot.ones(3, 2)).shape == (2,)
    assert (minaot.ones(2, 3) @ minaot.ones(3)).shape == (2,)


def test_nn_functional():
    F = minaot.nn.functional
    x = minaot.randn(4, 3)
    w, b = minaot.randn(5, 3), minaot.randn(5)
    assert_close(F.linear(x, w, b), x @ w.t() + b)
    assert_close(F.softmax(x, 1).sum(1), minaot.ones(4), atol=1e-6)
    ln = F.layer_norm(x, (3,))
    assert_close(ln.mean(1), minaot.zeros(4), atol=1e-6)
    target = minaot.tensor([0, 2, 1, 1])
    ce = F.cross_entropy(x, target)
    assert_close(ce, F.nll_loss(F.log_softmax(x, 1), target))
    assert F.mse_loss(x, x).item() == 0.0
    minaot.manual_seed(0)
    d1 = F.dropout(x, 0.5)
    minaot.manual_seed(0)
    d2 = F.dropout(x, 0.5)
    assert d1.tolist() == d2.tolist()
    kept = d1 != 0
    assert_close(d1[kept] if False else d1, minaot.where(kept, x * 2, 0.0))
    assert F.dropout(x, 0.5, training=False) is x
    assert F.gelu(x).shape == x.shape and F.relu(x).min().item() >= 0


def test_repr_and_item():
    t = minaot.tensor([1.0, 2.0], requires_grad=True)
    assert "requires_grad=True" in repr(t)
    assert "grad_fn=<MulBackward>" in repr(t * 2)
    assert minaot.tensor(3.0).item() == 3.0
    with pytest.raises(RuntimeError, match="cannot be converted to a Python scalar"):
        minaot.ones(2).item()


def test_to_other_tensor_takes_its_dtype_and_device():
    a = minaot.ones(2)
    b = minaot.zeros(3, dtype=minaot.float64)
    c = a.to(b)
    assert c.dtype is minaot.float64 and c.device == b.device
    np.testing.assert_array_equal(c.numpy(), np.ones(2))
