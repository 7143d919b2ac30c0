"""The functional ops and modules of minaot/ops/nn_extra.py and minaot/nn/layers_extra.py.

The op database (tests/test_ops_db.py, test_aot_ops.py, test_joint.py and the CUDA cases)
runs every registered op's samples eagerly against numpy, through gradcheck, compiled and
on the device.  Here: gradients at the kinks as PyTorch defines them (written out), the
cases finite differences cannot check (padding rows, zero KL targets), one_hot, errors,
the modules and containers eagerly and under ``aot_module``, and PyTorch itself when it is
installed.
"""

import numpy as np
import pytest

import minaot
import minaot.nn.functional as F
from minaot import nn
from minaot.testing import assert_close, gradcheck

pytestmark = pytest.mark.joint


def t64(a, requires_grad=False):
    return minaot.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def grad_of(fn, values):
    x = t64(values, requires_grad=True)
    fn(x).sum().backward()
    return x.grad.numpy()


# ---------------------------------------------------------------- kinks, written out
KINKS = [
    ("relu6", F.relu6, [0.0, 6.0, 3.0, -1.0, 7.0], [0.0, 0.0, 1.0, 0.0, 0.0]),
    ("hardtanh", lambda x: F.hardtanh(x, -2.0, 2.0), [-2.0, 2.0, 0.0], [0.0, 0.0, 1.0]),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.2), [0.0, 1.0, -1.0], [0.2, 1.0, 0.2]),
    ("elu", lambda x: F.elu(x, 1.5), [0.0, 1.0], [1.5, 1.0]),
    ("celu", lambda x: F.celu(x, 2.0), [0.0], [1.0]),
    ("selu", F.selu, [0.0], [1.0507009873554805 * 1.6732632423543772]),
    ("hardsigmoid", F.hardsigmoid, [-3.0, 3.0, 0.0], [0.0, 0.0, 1 / 6]),
    ("hardswish", F.hardswish, [-3.0, 3.0, 0.0, -4.0, 4.0], [0.0, 1.0, 0.5, 0.0, 1.0]),
    ("softplus", F.softplus, [0.0], [0.5]),
    ("logsigmoid", F.logsigmoid, [0.0], [0.5]),
    ("softsign", F.softsign, [0.0], [1.0]),
    ("l1_loss", lambda x: F.l1_loss(x, t64([0.0, 1.0]), reduction="sum"), [0.0, 3.0], [0.0, 1.0]),
    ("smooth_l1", lambda x: F.smooth_l1_loss(x, t64([0.0, 0.0, 0.0]), reduction="sum", beta=0.5),
     [0.0, 0.5, -0.25], [0.0, 1.0, -0.5]),
    ("huber", lambda x: F.huber_loss(x, t64([0.0, 0.0, 0.0]), reduction="sum", delta=0.5),
     [0.0, 0.5, -2.0], [0.0, 0.5, -0.5]),
]


@pytest.mark.parametrize("name,fn,x,grad", KINKS, ids=[k[0] for k in KINKS])
def test_gradients_at_kinks_are_pytorchs(name, fn, x, grad):
    assert_close(grad_of(fn, x), np.array(grad))


@pytest.mark.parametrize("name,fn,x,grad", KINKS, ids=[k[0] for k in KINKS])
def test_gradients_at_kinks_compiled(name, fn, x, grad):
    x = t64(x, requires_grad=True)
    minaot.compile(lambda a: fn(a).sum())(x).backward()
    assert_close(x.grad.numpy(), np.array(grad))


def test_softplus_threshold_and_stability():
    x = t64([-800.0, -30.0, 0.5, 19.0, 21.0, 800.0])
    with np.errstate(over="ignore"):
        ref = np.where(x.numpy() > 20, x.numpy(), np.logaddexp(0, x.numpy()))
    assert_close(F.softplus(x), ref, atol=1e-15)
    assert_close(F.softplus(x, beta=2.0, threshold=1.0),
                 np.where(2 * x.numpy() > 1, x.numpy(), np.logaddexp(0, 2 * x.numpy()) / 2),
                 atol=1e-15)
    assert np.isfinite(grad_of(F.logsigmoid, [-800.0, 800.0])).all()
    assert np.isfinite(grad_of(F.mish, [-800.0, 800.0])).all()


def test_inplace_activations_write_the_input():
    x = t64([-1.0, 2.0])
    out = F.leaky_relu(x, 0.5, inplace=True)
    assert out is x
    assert_close(x, np.array([-0.5, 2.0]))


# ---------------------------------------------------------------- what finite differences miss
def test_kl_div_zero_target_counts_nothing():
    x = np.log(np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]))
    t = np.array([[0.0, 0.5, 0.5], [0.3, 0.7, 0.0]])
    xi = t64(x, requires_grad=True)
    loss = F.kl_div(xi, t64(t), reduction="batchmean")
    terms = np.where(t > 0, t * np.log(np.where(t > 0, t, 1)), 0) - t * x
    assert_close(loss, terms.sum() / 2)
    loss.backward()
    assert_close(xi.grad, -t / 2)
    assert_close(F.kl_div(t64(x), t64(t)), terms.mean())
    gradcheck(lambda a: F.kl_div(a, t64(t), reduction="sum"), [t64(x, requires_grad=True)])


def test_embedding_padding_row_gets_no_gradient():
    w = t64(np.arange(12.0).reshape(4, 3), requires_grad=True)
    idx = minaot.tensor(np.array([[1, 3], [3, 0]]))
    out = F.embedding(idx, w, padding_idx=3)
    assert out.shape == (2, 2, 3)
    assert_close(out, np.arange(12.0).reshape(4, 3)[[[1, 3], [3, 0]]])   # values still read
    (out * t64(np.arange(12.0).reshape(2, 2, 3))).sum().backward()
    g = np.zeros((4, 3))
    g[1] += [0, 1, 2]
    g[0] += [9, 10, 11]
    assert_close(w.grad, g)
    w.grad = None
    F.embedding(idx, w, padding_idx=-1).sum().backward()      # -1 is row 3
    assert_close(w.grad, np.array([[1.0] * 3, [1.0] * 3, [0.0] * 3, [0.0] * 3]))
    w2 = t64(np.arange(12.0).reshape(4, 3), requires_grad=True)
    minaot.compile(lambda i, a: F.embedding(i, a, padding_idx=3).sum())(idx, w2).backward()
    assert_close(w2.grad, np.array([[1.0] * 3, [1.0] * 3, [0.0] * 3, [0.0] * 3]))


def test_one_hot():
    idx = minaot.tensor(np.array([[0, 2], [1, 2]]))
    out = F.one_hot(idx)
    assert out.dtype is minaot.int64 and out.shape == (2, 2, 3)
    assert (out.numpy() == np.eye(3, dtype=np.int64)[[[0, 2], [1, 2]]]).all()
    assert F.one_hot(idx, 5).shape == (2, 2, 5)
    compiled = minaot.compile(lambda i: F.one_hot(i, 4) * 2)
    assert (compiled(idx).numpy() == 2 * np.eye(4, dtype=np.int64)[[[0, 2], [1, 2]]]).all()
    with pytest.raises(RuntimeError, match="pass num_classes"):
        minaot.compile(lambda i: F.one_hot(i))(idx)
    with pytest.raises(RuntimeError, match="smaller than num_classes"):
        F.one_hot(idx, 2)
    with pytest.raises(RuntimeError, match="non-negative"):
        F.one_hot(minaot.tensor(np.array([-1, 0])), 3)
    with pytest.raises(RuntimeError, match="int64"):
        F.one_hot(t64([0.0, 1.0]))


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="Halving dimension must be even"):
        F.glu(t64(np.zeros((2, 3))))
    with pytest.raises(ValueError, match="negative values for beta"):
        F.smooth_l1_loss(t64([1.0]), t64([0.0]), beta=-1.0)
    with pytest.raises(ValueError, match="non-positive values for delta"):
        F.huber_loss(t64([1.0]), t64([0.0]), delta=0.0)
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(t64([1.5], requires_grad=True), t64([1.0]))
    with pytest.raises(ValueError, match="different to the input size"):
        F.binary_cross_entropy(t64([0.5, 0.5]), t64([1.0]))
    with pytest.raises(ValueError, match="reduction"):
        F.kl_div(t64([0.0]), t64([1.0]), reduction="batch")
    with pytest.raises(ValueError, match="reduction"):
        F.l1_loss(t64([0.0]), t64([1.0]), reduction="avg")
    with pytest.raises(IndexError, match="out of range"):
        F.embedding(minaot.tensor(np.array([4])), t64(np.zeros((4, 2))))


def test_bce_clamps_the_log_at_minus_100():
    x, t = t64([0.0, 1.0, 0.5]), t64([1.0, 0.0, 1.0])
    assert_close(F.binary_cross_entropy(x, t, reduction="none"),
                 np.array([100.0, 100.0, -np.log(0.5)]))


def test_bce_with_logits_is_stable_and_matches_bce():
    x = np.array([-3.0, -0.5, 0.0, 2.0])
    t = np.array([0.0, 1.0, 0.3, 1.0])
    p = 1 / (1 + np.exp(-x))
    assert_close(F.binary_cross_entropy_with_logits(t64(x), t64(t)),
                 F.binary_cross_entropy(t64(p), t64(t)))
    big = F.binary_cross_entropy_with_logits(t64([-1000.0, 1000.0]), t64([1.0, 0.0]),
                                             reduction="none")
    assert_close(big, np.array([1000.0, 1000.0]))


# ---------------------------------------------------------------- modules
def test_modules_call_their_functions():
    rng = np.random.default_rng(0)
    x = t64(rng.standard_normal((3, 4)))
    y = t64(rng.standard_normal((3, 4)))
    pairs = [(nn.Tanh(), minaot.tanh(x)), (nn.Sigmoid(), minaot.sigmoid(x)), (nn.SiLU(), F.silu(x)),
             (nn.LeakyReLU(0.3), F.leaky_relu(x, 0.3)), (nn.ELU(0.7), F.elu(x, 0.7)),
             (nn.Softplus(2.0, 1.0), F.softplus(x, 2.0, 1.0)), (nn.Identity(7, a=1), x),
             (nn.Softmax(1), minaot.softmax(x, 1)), (nn.LogSoftmax(0), minaot.log_softmax(x, 0)),
             (nn.Softmax(), minaot.softmax(x, 1)), (nn.Mish(), F.mish(x)), (nn.SELU(), F.selu(x)),
             (nn.Hardswish(), F.hardswish(x)), (nn.GLU(), F.glu(x))]
    for m, ref in pairs:
        assert_close(m(x), ref)
    assert_close(nn.Softmax()(t64([1.0, 2.0])), minaot.softmax(t64([1.0, 2.0]), 0))   # 1-d: dim 0
    losses = [(nn.L1Loss(), F.l1_loss(x, y)), (nn.SmoothL1Loss("sum", 0.5), F.smooth_l1_loss(x, y, "sum", 0.5)),
              (nn.HuberLoss("none", 2.0), F.huber_loss(x, y, "none", 2.0)),
              (nn.KLDivLoss("batchmean"), F.kl_div(x, y.exp(), "batchmean")),
              (nn.BCEWithLogitsLoss(pos_weight=t64([1.0, 2.0, 3.0, 4.0])),
               F.binary_cross_entropy_with_logits(x, y.sigmoid(), pos_weight=t64([1.0, 2.0, 3.0, 4.0]))),
              (nn.BCELoss(weight=t64([2.0])), F.binary_cross_entropy(x.sigmoid(), y.sigmoid(), t64([2.0])))]
    for m, ref in losses[:3]:
        assert_close(m(x, y), ref)
    assert_close(losses[3][0](x, y.exp()), losses[3][1])
    assert_close(losses[4][0](x, y.sigmoid()), losses[4][1])
    assert_close(losses[5][0](x.sigmoid(), y.sigmoid()), losses[5][1])
    assert [n for n, _ in nn.BCEWithLogitsLoss(pos_weight=t64([1.0])).named_buffers()] == ["pos_weight"]
    tgt = minaot.tensor(np.array([0, 3, 1]))
    assert_close(nn.NLLLoss(reduction="sum")(x, tgt), F.nll_loss(x, tgt, reduction="sum"))


def test_flatten_unflatten():
    x = minaot.zeros(2, 3, 4, 5)
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 2)(x).shape == (24, 5)
    assert nn.Unflatten(1, (3, 20))(nn.Flatten()(x)).shape == (2, 3, 20)
    assert nn.Unflatten(-1, (-1, 2, 2))(minaot.zeros(3, 8)).shape == (3, 2, 2, 2)
    with pytest.raises(RuntimeError, match="unflattened_size"):
        nn.Unflatten(1, (7, 2))(minaot.zeros(3, 8))


def test_containers_register_what_they_hold():
    ml = nn.ModuleList([nn.Linear(2, 3), nn.ReLU()])
    ml.append(nn.Linear(3, 1))
    assert len(ml) == 3 and isinstance(ml[-1], nn.Linear) and len(ml[1:]) == 2
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    del ml[1]
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    ml.insert(0, nn.Tanh())
    assert isinstance(ml[0], nn.Tanh) and list(ml.state_dict())[0] == "1.weight"
    md = nn.ModuleDict({"enc": nn.Linear(2, 2), "act": nn.GELU()})
    md["dec"] = nn.Linear(2, 1)
    assert list(md.keys()) == ["enc", "act", "dec"] and "act" in md and len(md) == 3
    assert list(md.state_dict()) == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    assert isinstance(md.pop("act"), nn.GELU) and "act" not in md
    pl = nn.ParameterList([minaot.ones(2), nn.Parameter(minaot.zeros(3))])
    pl.append(minaot.ones(1))
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in pl)
    assert list(pl.state_dict()) == ["0", "1", "2"] and len(list(pl.parameters())) == 3
    assert pl[-1].shape == (1,)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(6, 4, padding_idx=0)
        self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 3)])
        self.acts = nn.ModuleDict({"a": nn.SiLU(), "b": nn.LeakyReLU(0.1)})
        self.scales = nn.ParameterList([minaot.ones(4), minaot.ones(3)])

    def forward(self, idx):
        h = self.emb(idx)
        h = self.acts["a"](self.blocks[0](h) * self.scales[0])
        return self.acts["b"](self.blocks[1](h) * self.scales[1]).sum()


def test_aot_module_sees_container_parameters():
    minaot.manual_seed(0)
    net = Net().to(minaot.float64)
    idx = minaot.tensor(np.array([[0, 1, 2], [5, 0, 3]]))
    names = [n for n, _ in net.named_parameters()]
    assert names == ["emb.weight", "blocks.0.weight", "blocks.0.bias", "blocks.1.weight",
                     "blocks.1.bias", "scales.0", "scales.1"]
    net(idx).backward()
    eager = {n: p.grad.numpy().copy() for n, p in net.named_parameters()}
    assert (eager["emb.weight"][0] == 0).all() and eager["scales.1"].any()
    net.zero_grad()
    compiled = minaot.aot_module(net)
    out = compiled(idx)
    out.backward()
    for n, p in net.named_parameters():
        assert_close(p.grad, eager[n], rtol=1e-10, atol=1e-12)


def test_embedding_init_is_seeded_normal_with_zero_padding_row():
    minaot.manual_seed(3)
    a = nn.Embedding(200, 50, padding_idx=-1)
    minaot.manual_seed(3)
    b = nn.Embedding(200, 50, padding_idx=-1)
    assert a.padding_idx == 199 and (a.weight.detach().numpy()[199] == 0).all()
    assert (a.weight.detach().numpy() == b.weight.detach().numpy()).all()
    w = a.weight.detach().numpy()[:199]
    assert abs(w.mean()) < 0.05 and abs(w.std() - 1) < 0.05
    frozen = nn.Embedding.from_pretrained(t64(np.eye(3)))
    assert not frozen.weight.requires_grad
    assert_close(frozen(minaot.tensor(np.array([2]))), np.eye(3)[[2]])


# ---------------------------------------------------------------- PyTorch, when installed
def _torch_cases():
    return [
        ("silu", {}), ("leaky_relu", {"negative_slope": 0.2}), ("elu", {"alpha": 1.3}),
        ("selu", {}), ("celu", {"alpha": 0.7}), ("softplus", {}),
        ("softplus", {"beta": 2.0, "threshold": 3.0}), ("softsign", {}),
        ("hardtanh", {"min_val": -2.0, "max_val": 2.0}), ("relu6", {}), ("hardsigmoid", {}),
        ("hardswish", {}), ("logsigmoid", {}), ("mish", {}), ("softmin", {"dim": 0}),
        ("glu", {"dim": 1}), ("normalize", {}), ("normalize", {"p": 1.0, "dim": 0}),
    ]


@pytest.mark.parametrize("name,kw", _torch_cases(), ids=[f"{n}-{i}" for i, (n, _) in
                                                         enumerate(_torch_cases())])
def test_activations_match_pytorch(name, kw):
    torch = pytest.importorskip("torch")
    x = np.array([[-30.0, -6.0, -3.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 6.0, 11.0, 25.0]] * 2)
    x[1] *= 0.3
    x[1, 4] = 0.1
    xt = torch.tensor(x, requires_grad=True)
    ref = getattr(torch.nn.functional, name)(xt, **kw)
    ref.backward(torch.ones_like(ref) * torch.arange(ref.numel()).reshape(ref.shape).double())
    xm = t64(x, requires_grad=True)
    out = getattr(F, name)(xm, **kw)
    assert_close(out, ref.detach().numpy(), atol=1e-12)
    out.backward(t64(np.arange(out.numel()).reshape(out.shape)))
    # rtol 1e-6: PyTorch's celu gradient is off by ~1e-7 relative in float64 at x/alpha = -8.6
    assert_close(xm.grad, xt.grad.numpy(), rtol=1e-6, atol=1e-12)


def test_distances_and_losses_match_pytorch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    a[1] = 0.0
    b[0, :2] = a[0, :2]
    p, q = rng.uniform(0.05, 0.95, (3, 5)), rng.uniform(0, 1, (3, 5))
    w, pw = rng.uniform(0.5, 2, (5,)), rng.uniform(0.5, 3, (5,))
    cases = [
        ("cosine_similarity", (a, b), {}), ("cosine_similarity", (a, b[0]), {"dim": 0}),
        ("pairwise_distance", (a, b), {}), ("pairwise_distance", (a, b), {"p": 1.0, "keepdim": True}),
        ("pairwise_distance", (a[0], b[0]), {}),
    ]
    for r in ("mean", "sum", "none"):
        cases += [("l1_loss", (a, b), {"reduction": r}),
                  ("smooth_l1_loss", (a, b), {"reduction": r, "beta": 0.5}),
                  ("huber_loss", (a, b), {"reduction": r, "delta": 0.5}),
                  ("binary_cross_entropy", (p, q), {"reduction": r}),
                  ("binary_cross_entropy_with_logits", (a * 10, q), {"reduction": r})]
    for r in ("mean", "sum", "none", "batchmean"):
        cases += [("kl_div", (np.log(p), q), {"reduction": r}),
                  ("kl_div", (np.log(p), np.log(q)), {"reduction": r, "log_target": True})]
    for name, arrays, kw in cases:
        ts = [torch.tensor(v, requires_grad=True) for v in arrays]
        ms = [t64(v, requires_grad=True) for v in arrays]
        ref, out = getattr(tf, name)(*ts, **kw), getattr(F, name)(*ms, **kw)
        assert_close(out, ref.detach().numpy(), atol=1e-12, msg=f"{name} {kw}: ")
        ref.sum().backward()
        out.sum().backward()
        for m, t in zip(ms, ts):
            assert_close(m.grad, t.grad.numpy(), atol=1e-10, msg=f"{name} {kw} grad: ")
    # weights are constants (PyTorch does not differentiate them)
    ref = tf.binary_cross_entropy_with_logits(torch.tensor(a), torch.tensor(q), torch.tensor(w),
                                              pos_weight=torch.tensor(pw))
    out = F.binary_cross_entropy_with_logits(t64(a), t64(q), t64(w), pos_weight=t64(pw))
    assert_close(out, ref.numpy())
    ref = tf.binary_cross_entropy(torch.tensor(p), torch.tensor(q), torch.tensor(w), reduction="sum")
    assert_close(F.binary_cross_entropy(t64(p), t64(q), t64(w), reduction="sum"), ref.numpy())
    idx = np.array([[0, 2, 1], [2, 3, 0]])
    wt = torch.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    wm = t64(wt.detach().numpy(), requires_grad=True)
    ref = tf.embedding(torch.tensor(idx), wt, padding_idx=2)
    out = F.embedding(minaot.tensor(idx), wm, padding_idx=2)
    assert_close(out, ref.detach().numpy())
    (ref * ref).sum().backward()
    (out * out).sum().backward()
    assert_close(wm.grad, wt.grad.numpy())
    assert (F.one_hot(minaot.tensor(idx)).numpy() == tf.one_hot(torch.tensor(idx)).numpy()).all()
