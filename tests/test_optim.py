"""SGD and Adam against hand-written numpy updates (and torch.optim, where installed)."""

import numpy as np
import pytest

import minaot
from minaot import nn, optim
from minaot.testing import assert_close

pytestmark = pytest.mark.joint
STEPS = 6


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((3, 4)), rng.standard_normal(4)]


def grad_sequence(seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal((3, 4)), rng.standard_normal(4)] for _ in range(STEPS)]


def run_minaot(opt_cls, params, grads, dtype=np.float64, **kw):
    ps = [nn.Parameter(minaot.tensor(p.astype(dtype))) for p in params]
    opt = opt_cls(ps, **kw)
    history = []
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = minaot.tensor(g.astype(dtype))
        opt.step()
        history.append([p.detach().numpy().copy() for p in ps])
    return history


def np_sgd(params, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    ps = [p.copy() for p in params]
    bufs = [None] * len(ps)
    history = []
    for gs in grads:
        for i, g in enumerate(gs):
            d = g + weight_decay * ps[i]
            if momentum:
                bufs[i] = d.copy() if bufs[i] is None else momentum * bufs[i] + (1 - dampening) * d
                d = d + momentum * bufs[i] if nesterov else bufs[i]
            ps[i] = ps[i] - lr * d
        history.append([p.copy() for p in ps])
    return history


def np_adam(params, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    ps = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in ps]
    v = [np.zeros_like(p) for p in ps]
    history = []
    b1, b2 = betas
    for t, gs in enumerate(grads, start=1):
        for i, g in enumerate(gs):
            g = g + weight_decay * ps[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat = m[i] / (1 - b1 ** t)
            v_hat = v[i] / (1 - b2 ** t)
            ps[i] = ps[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
        history.append([p.copy() for p in ps])
    return history


SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
    dict(lr=0.05, momentum=0.8, weight_decay=0.1, nesterov=True),
]
ADAM_CONFIGS = [
    dict(lr=0.01),
    dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
]


@pytest.mark.parametrize("kw", SGD_CONFIGS)
def test_sgd_matches_numpy(kw):
    params, grads = make_params(), grad_sequence()
    for got, want in zip(run_minaot(optim.SGD, params, grads, **kw), np_sgd(params, grads, **kw)):
        assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kw", ADAM_CONFIGS)
def test_adam_matches_numpy(kw):
    params, grads = make_params(), grad_sequence()
    for got, want in zip(run_minaot(optim.Adam, params, grads, **kw), np_adam(params, grads, **kw)):
        assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_float32_updates_stay_float32():
    params, grads = make_params(), grad_sequence()
    got = run_minaot(optim.Adam, params, grads, dtype=np.float32, lr=0.01)
    assert got[-1][0].dtype == np.float32
    assert_close(got[-1], np_adam(params, grads, lr=0.01)[-1], rtol=1e-5, atol=1e-6)


def test_param_groups_zero_grad_and_skipped_params():
    a, b, c = (nn.Parameter(minaot.ones(2, dtype=minaot.float64)) for _ in range(3))
    opt = optim.SGD([{"params": [a]}, {"params": [b, c], "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["momentum"] == 0.9          # filled in from the defaults
    a.grad = minaot.ones(2, dtype=minaot.float64)
    b.grad = minaot.ones(2, dtype=minaot.float64)
    opt.step()                                               # c has no grad: untouched, no state
    assert_close(a, minaot.full((2,), 0.9, dtype=minaot.float64))
    assert_close(b, minaot.full((2,), 0.5, dtype=minaot.float64))
    assert_close(c, minaot.ones(2, dtype=minaot.float64))
    assert c not in opt.state and "momentum_buffer" in opt.state[a]
    opt.zero_grad(set_to_none=False)
    assert np.all(a.grad.numpy() == 0) and c.grad is None
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_step_is_in_place_and_not_recorded():
    lin = nn.Linear(3, 1)
    w = lin.weight
    data_ptr = w.data_ptr()
    lin(minaot.randn(4, 3)).sum().backward()
    optim.Adam(lin.parameters(), lr=0.1).step()
    assert lin.weight is w and w.data_ptr() == data_ptr and w.is_leaf and w.grad_fn is None


def test_bad_arguments():
    p = nn.Parameter(minaot.ones(2))
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


@pytest.mark.parametrize("opt_cls, kw", [(optim.SGD, dict(lr=0.1, momentum=0.9)),
                                         (optim.Adam, dict(lr=0.05))])
def test_training_a_linear_regression_converges(opt_cls, kw):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 3))
    y = x @ np.array([[1.5], [-2.0], [0.5]]) + 0.3
    minaot.manual_seed(0)
    model = nn.Linear(3, 1, dtype=minaot.float64)
    opt = opt_cls(model.parameters(), **kw)
    loss_fn = nn.MSELoss()
    for _ in range(200):
        opt.zero_grad()
        loss = loss_fn(model(minaot.tensor(x)), minaot.tensor(y))
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3
    assert_close(model.bias, minaot.tensor([0.3], dtype=minaot.float64), atol=0.05)


# ---------------------------------------------------------------- optional: against torch
@pytest.mark.parametrize("name, kw", [("SGD", c) for c in SGD_CONFIGS] +
                         [("Adam", c) for c in ADAM_CONFIGS])
def test_against_torch(name, kw):
    torch = pytest.importorskip("torch")
    params, grads = make_params(), grad_sequence()
    tps = [torch.tensor(p, requires_grad=True) for p in params]
    topt = getattr(torch.optim, name)(tps, **kw)
    ours = run_minaot(getattr(optim, name), params, grads, **kw)
    for step, gs in enumerate(grads):
        for p, g in zip(tps, gs):
            p.grad = torch.tensor(g)
        topt.step()
        assert_close(ours[step], [p.detach().numpy() for p in tps], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kw", ADAM_CONFIGS)
def test_fused_adam_matches_numpy(kw):
    params, grads = make_params(), grad_sequence()
    got_all = run_minaot(optim.Adam, params, grads, fused=True, **kw)
    for got, want in zip(got_all, np_adam(params, grads, **kw)):
        assert_close(got, want, rtol=1e-10, atol=1e-12)
