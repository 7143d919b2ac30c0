"""nn.Module, Parameter and the layers, against numpy formulas."""

import copy
import math

import numpy as np
import pytest

import minaot
from minaot import nn
from minaot.testing import assert_close, gradcheck

pytestmark = pytest.mark.joint
F64 = minaot.float64


def t64(a, requires_grad=False):
    return minaot.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def np_(t):
    return t.detach().numpy()


# ---------------------------------------------------------------- Module and Parameter
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.scale = nn.Parameter(minaot.ones(2))
        self.register_buffer("count", minaot.zeros(()))
        self.register_buffer("scratch", minaot.zeros(2), persistent=False)
        self.note = "plain attribute"

    def forward(self, x):
        return self.fc(x) * self.scale


def test_parameter_requires_grad_and_shares_memory():
    t = minaot.zeros(3)
    p = nn.Parameter(t)
    assert isinstance(p, minaot.Tensor) and p.requires_grad and p.is_leaf
    t.numpy()[0] = 5.0
    assert p.detach().numpy()[0] == 5.0
    assert not nn.Parameter(minaot.zeros(2), requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:")


def test_registration_and_traversal():
    b = Block()
    assert [n for n, _ in b.named_parameters()] == ["scale", "fc.weight", "fc.bias"]
    assert [n for n, _ in b.named_buffers()] == ["count", "scratch"]
    assert list(b.children()) == [b.fc]
    assert list(b.modules()) == [b, b.fc]
    assert b.note == "plain attribute" and "note" not in b._parameters
    assert list(b.state_dict()) == ["scale", "count", "fc.weight", "fc.bias"]   # scratch not persistent
    with pytest.raises(TypeError, match="Parameter"):
        b.scale = minaot.ones(2)            # a plain tensor cannot replace a parameter
    b.count = minaot.ones(())               # a buffer can be reassigned
    assert b.count.item() == 1.0
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        b.missing
    del b.scale
    assert [n for n, _ in b.named_parameters()] == ["fc.weight", "fc.bias"]


def test_shared_parameters_come_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]


def test_state_dict_round_trip():
    minaot.manual_seed(1)
    a = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.Linear(5, 2))
    a(minaot.randn(6, 4))                       # move the running stats away from their init
    minaot.manual_seed(2)
    b = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.Linear(5, 2))
    sd = a.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                        "1.running_var", "1.num_batches_tracked", "2.weight", "2.bias"]
    assert not any(v.requires_grad for v in sd.values())
    res = b.load_state_dict(sd)
    assert res.missing_keys == [] and res.unexpected_keys == []
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert_close(y, x, msg=name + ": ")
    a.eval(), b.eval()
    x = minaot.randn(3, 4)
    assert_close(b(x), a(x))
    w = b[0].weight
    b.load_state_dict(sd)
    assert b[0].weight is w                     # loaded in place, the Parameter object stays


def test_load_state_dict_errors():
    m = nn.Linear(3, 2)
    sd = m.state_dict()
    with pytest.raises(RuntimeError, match="missing keys \\['bias'\\]"):
        m.load_state_dict({"weight": sd["weight"]})
    res = m.load_state_dict({"weight": sd["weight"], "extra": minaot.zeros(1)}, strict=False)
    assert res.missing_keys == ["bias"] and res.unexpected_keys == ["extra"]
    with pytest.raises(RuntimeError, match="size mismatch for weight"):
        m.load_state_dict({"weight": minaot.zeros(2, 2), "bias": sd["bias"]})


def test_train_eval_and_zero_grad():
    m = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    assert m.training and m[1].training
    assert m.eval() is m and not m.training and not m[1].training
    m.train()
    assert m[0].training
    m(minaot.randn(2, 3)).sum().backward()
    assert m[0].weight.grad is not None
    m.zero_grad(set_to_none=False)
    assert np.all(m[0].weight.grad.numpy() == 0)
    m.zero_grad()
    assert m[0].weight.grad is None


def test_repr_is_readable():
    m = nn.Sequential(nn.Linear(3, 4), nn.GELU(approximate="tanh"), nn.Dropout(0.1))
    assert repr(m) == ("Sequential(\n"
                       "  (0): Linear(in_features=3, out_features=4, bias=True)\n"
                       "  (1): GELU(approximate='tanh')\n"
                       "  (2): Dropout(p=0.1)\n"
                       ")")


def test_deepcopy_keeps_parameters_and_buffers():
    m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    c = copy.deepcopy(m)
    assert isinstance(c[0].weight, nn.Parameter) and c[0].weight is not m[0].weight
    assert_close(c[0].weight, m[0].weight)
    assert [n for n, _ in c.named_buffers()] == [n for n, _ in m.named_buffers()]


# ---------------------------------------------------------------- layers
def test_linear_formula_and_init():
    minaot.manual_seed(7)
    lin = nn.Linear(5, 3, dtype=F64)
    bound = 1 / math.sqrt(5)
    rng = np.random.Generator(np.random.PCG64(7))        # the default generator's stream
    w_expected = rng.random((3, 5)) * 2 * bound - bound
    b_expected = rng.random(3) * 2 * bound - bound
    assert_close(lin.weight, t64(w_expected))
    assert_close(lin.bias, t64(b_expected))
    x = np.random.default_rng(0).standard_normal((4, 5))
    assert_close(lin(t64(x)), t64(x @ w_expected.T + b_expected))
    no_bias = nn.Linear(5, 3, bias=False)
    assert no_bias.bias is None and len(list(no_bias.parameters())) == 1
    assert np.all(np.abs(np_(nn.Linear(100, 50).weight)) <= 0.1)


def test_activations():
    x = np.random.default_rng(1).standard_normal((4, 6))
    assert_close(nn.ReLU()(t64(x)), t64(np.maximum(x, 0)))
    erf = np.vectorize(math.erf)
    assert_close(nn.GELU()(t64(x)), t64(0.5 * x * (1 + erf(x / math.sqrt(2)))))
    tanh_form = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    assert_close(nn.GELU("tanh")(t64(x)), t64(tanh_form))
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")


def test_layer_norm_formula_and_gradient():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 5))
    ln = nn.LayerNorm((4, 5), dtype=F64)
    w, b = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    ln.load_state_dict({"weight": t64(w), "bias": t64(b)})
    mu = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    assert_close(ln(t64(x)), t64((x - mu) / np.sqrt(var + 1e-5) * w + b))
    gradcheck(lambda x, w, b: minaot.nn.functional.layer_norm(x, (4, 5), w, b),
              [t64(x, True), t64(w, True), t64(b, True)])


def np_batch_norm(x, mean, var, w, b, eps=1e-5):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * w.reshape(shape) \
        + b.reshape(shape)


@pytest.mark.parametrize("shape", [(8, 3), (5, 3, 4)])
def test_batch_norm_training_and_running_stats(shape):
    rng = np.random.default_rng(3)
    bn = nn.BatchNorm1d(3, momentum=0.2, dtype=F64)
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    bn.load_state_dict({**bn.state_dict(), "weight": t64(w), "bias": t64(b)})
    dims = (0,) if len(shape) == 2 else (0, 2)
    n = np.prod([shape[d] for d in dims])
    rm, rv = np.zeros(3), np.ones(3)
    for step in range(3):
        x = rng.standard_normal(shape) * 2 + 1
        mean, var = x.mean(axis=dims), x.var(axis=dims)           # biased for normalising
        assert_close(bn(t64(x)), t64(np_batch_norm(x, mean, var, w, b)))
        rm = 0.8 * rm + 0.2 * mean
        rv = 0.8 * rv + 0.2 * var * n / (n - 1)                   # unbiased for the running var
        assert_close(bn.running_mean, t64(rm))
        assert_close(bn.running_var, t64(rv))
        assert bn.num_batches_tracked.item() == step + 1
    assert not bn.running_mean.requires_grad and bn.running_mean.is_leaf
    bn.eval()
    x = rng.standard_normal(shape)
    assert_close(bn(t64(x)), t64(np_batch_norm(x, rm, rv, w, b)))
    assert bn.num_batches_tracked.item() == 3                     # eval does not count


def test_batch_norm_gradient_and_errors():
    rng = np.random.default_rng(4)
    bn = nn.BatchNorm1d(3, dtype=F64)
    x = t64(rng.standard_normal((6, 3)), True)
    gradcheck(lambda x: bn(x), [x])
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(minaot.randn(1, 3, dtype=F64))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3\)"):
        bn(minaot.randn(4, 2, dtype=F64))
    plain = nn.BatchNorm1d(3, affine=False, track_running_stats=False)
    assert list(plain.parameters()) == [] and list(plain.buffers()) == []
    plain.eval()
    x = rng.standard_normal((5, 3)).astype(np.float32)
    expected = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)
    assert_close(plain(minaot.tensor(x)), minaot.tensor(expected), atol=1e-5)


def test_dropout_seeded_and_eval():
    x = np.random.default_rng(5).standard_normal((50, 40)).astype(np.float32)
    drop = nn.Dropout(0.3)
    minaot.manual_seed(11)
    y1 = np_(drop(minaot.tensor(x)))
    keep = np.random.Generator(np.random.PCG64(11)).random(x.shape) >= 0.3
    np.testing.assert_allclose(y1, np.where(keep, x / np.float32(0.7), 0), rtol=1e-6)
    minaot.manual_seed(11)
    np.testing.assert_array_equal(np_(drop(minaot.tensor(x))), y1)     # same seed, same mask
    assert abs((y1 == 0).mean() - 0.3) < 0.03
    drop.eval()
    np.testing.assert_array_equal(np_(drop(minaot.tensor(x))), x)
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_losses():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    assert_close(nn.MSELoss()(t64(a), t64(b)), t64(((a - b) ** 2).mean()))
    assert_close(nn.MSELoss("sum")(t64(a), t64(b)), t64(((a - b) ** 2).sum()))
    target = np.array([0, 2, 1, 2])
    logp = a - np.log(np.exp(a).sum(axis=1, keepdims=True))
    ce = -logp[np.arange(4), target]
    assert_close(nn.CrossEntropyLoss()(t64(a), minaot.tensor(target)), t64(ce.mean()))
    assert_close(nn.CrossEntropyLoss(reduction="none")(t64(a), minaot.tensor(target)), t64(ce))


def test_sequential_indexing():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU) and isinstance(seq[-1], nn.Linear)
    assert len(seq[:2]) == 2 and list(seq) == [seq[0], seq[1], seq[2]]
    x = minaot.randn(4, 2)
    assert_close(seq(x), seq[2](seq[1](seq[0](x))))


# ---------------------------------------------------------------- optional: against torch
@pytest.mark.parametrize("shape", [(8, 3), (5, 3, 4)])
def test_batch_norm_against_torch(shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    ours, theirs = nn.BatchNorm1d(3, momentum=0.3, dtype=F64), torch.nn.BatchNorm1d(3, momentum=0.3)
    theirs = theirs.double()
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    ours.load_state_dict({**ours.state_dict(), "weight": t64(w), "bias": t64(b)})
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(w))
        theirs.bias.copy_(torch.tensor(b))
    for mode in ("train", "train", "eval"):
        ours.train(mode == "train"), theirs.train(mode == "train")
        x = rng.standard_normal(shape) * 3 + 2
        g = rng.standard_normal(shape)
        xo, xt = t64(x, True), torch.tensor(x, requires_grad=True)
        yo, yt = ours(xo), theirs(xt)
        assert_close(yo, t64(yt.detach().numpy()))
        (yo * t64(g)).sum().backward()
        (yt * torch.tensor(g)).sum().backward()
        for a, t in [(xo, xt), (ours.weight, theirs.weight), (ours.bias, theirs.bias)]:
            assert_close(a.grad, t64(t.grad.numpy()))
        ours.zero_grad(), theirs.zero_grad()
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            assert_close(getattr(ours, name), minaot.tensor(getattr(theirs, name).numpy()),
                         msg=name + ": ")


# ------------------------------------------------------------------ losses over (N, C, d...)
def _np_log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


@pytest.mark.parametrize("shape", [(5,), (4, 5, 3), (2, 5, 3, 2)])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_class_losses_take_unbatched_and_spatial_inputs(shape, reduction):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape)
    t = rng.integers(0, 5, () if len(shape) == 1 else (shape[0],) + shape[2:])
    w = rng.uniform(0.5, 2.0, 5)
    # the oracle: every position a row of (N', C), in numpy
    rows = np.moveaxis(x, 0 if len(shape) == 1 else 1, -1).reshape(-1, 5)
    trows = t.reshape(-1)
    terms = -_np_log_softmax(rows, 1)[np.arange(len(trows)), trows] * w[trows]
    want = {"none": terms.reshape(t.shape), "sum": terms.sum(),
            "mean": terms.sum() / w[trows].sum()}[reduction]
    f = nn.functional
    xt = minaot.tensor(x, requires_grad=True)
    got = f.cross_entropy(xt, minaot.tensor(t), weight=minaot.tensor(w), reduction=reduction)
    assert got.shape == np.shape(want)
    assert_close(got, want)
    lp = minaot.tensor(_np_log_softmax(x, 0 if len(shape) == 1 else 1))
    assert_close(f.nll_loss(lp, minaot.tensor(t), weight=minaot.tensor(w), reduction=reduction),
                 want)
    gradcheck(lambda a: f.cross_entropy(a, minaot.tensor(t), reduction=reduction,
                                        label_smoothing=0.1).sum(),
              [minaot.tensor(x, requires_grad=True)])
    compiled = minaot.compile(lambda a, b: f.cross_entropy(a, b, weight=minaot.tensor(w),
                                                           reduction=reduction))
    assert_close(compiled(minaot.tensor(x), minaot.tensor(t)), want)


def test_spatial_probability_targets_and_bad_target_shapes():
    rng = np.random.default_rng(0)
    x, p = rng.standard_normal((2, 3, 4)), rng.uniform(0.0, 1.0, (2, 3, 4))
    f = nn.functional
    want = -(p * _np_log_softmax(x, 1)).sum(1)
    assert_close(f.cross_entropy(minaot.tensor(x), minaot.tensor(p), reduction="none"), want)
    assert_close(f.cross_entropy(minaot.tensor(x), minaot.tensor(p)), want.mean())
    with pytest.raises(ValueError, match=r"expected target \(2, 4\)"):
        f.cross_entropy(minaot.tensor(x), minaot.tensor(np.zeros((2, 3), np.int64)))
    with pytest.raises(ValueError, match="0-d target"):
        f.nll_loss(minaot.tensor(x[0, :, 0]), minaot.tensor(np.zeros(1, np.int64)))


def test_class_losses_over_spatial_inputs_match_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal((3, 4, 2, 2)).astype(np.float32), rng.integers(0, 4, (3, 2, 2))
    t[0, 0, 0] = 2
    ours = minaot.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    a = nn.functional.cross_entropy(ours, minaot.tensor(t), ignore_index=2, label_smoothing=0.2)
    b = torch.nn.functional.cross_entropy(theirs, torch.tensor(t), ignore_index=2,
                                          label_smoothing=0.2)
    a.backward()
    b.backward()
    assert_close(a, b.detach().numpy(), atol=1e-5)
    assert_close(ours.grad, theirs.grad.numpy(), atol=1e-5)
