"""detach() and no_grad inside compiled functions: the trace records where eager
autograd cuts gradient flow (an ``mt.detach``), the joint graph sends nothing
through it, and the fw/bw graphs no longer hold it.  Oracles: numpy formulas
and the eager function."""

import numpy as np
import pytest

import minaot
from minaot.testing import assert_close

pytestmark = pytest.mark.joint
MINCUT = minaot.min_cut_rematerialization_partition


def leaf(shape, seed, requires_grad=True):
    a = np.random.default_rng(seed).standard_normal(shape)
    return minaot.tensor(a, dtype=minaot.float64, requires_grad=requires_grad)


def pair(shape, seed):
    """The same values twice: one leaf for eager, one for the compiled function."""
    return leaf(shape, seed), leaf(shape, seed)


def graphs(fn, *inputs, partition_fn=None):
    seen = {}

    def keep(name):
        def compiler(graph, example):
            seen[name] = graph
            return minaot.nop(graph, example)
        return compiler

    cf = minaot.aot_function(fn, keep("fw"), keep("bw"), partition_fn=partition_fn)
    out = cf(*inputs)
    out.backward()
    return seen["fw"], seen["bw"]


def grads_of(tensors):
    """``.grad`` of each tensor; an input the output does not depend on counts as zero
    (a compiled function returns a zero gradient where eager leaves ``.grad`` None)."""
    return [np.zeros(t.shape) if t.grad is None else t.grad.numpy() for t in tensors]


# ---------------------------------------------------------------- detach()
@pytest.mark.parametrize("partition_fn", [minaot.default_partition, MINCUT],
                         ids=["default", "mincut"])
def test_x_times_detached_x_has_gradient_x(partition_fn):
    f = lambda x: (x * x.detach()).sum()           # noqa: E731
    xe, xc = pair((5,), 0)
    f(xe).backward()
    cf = minaot.aot_function(f, partition_fn=partition_fn)
    out = cf(xc)
    assert out.requires_grad
    out.backward()
    x = xc.detach().numpy()
    assert_close(xc.grad.numpy(), x)               # d/dx sum(x * c) = c = x, not 2x
    assert_close(xc.grad, xe.grad)


def test_detach_is_recorded_then_stripped():
    x = leaf((4,), 1)
    f = lambda x: (x * x.sum().detach()).sum()     # noqa: E731
    traced = minaot.trace(f, x)
    assert [op.opname for op in traced.ops].count("detach") == 1
    fw, bw = graphs(f, x)
    assert "detach" not in str(fw) + str(bw)
    joint = minaot.export_joint(f, x)
    assert "detach" not in str(joint)
    s = x.detach().numpy().sum()
    assert_close(x.grad.numpy(), np.full(4, s))    # without the detach it would be 2 * s


def test_detached_outputs_match_eager():
    def f(x):
        y = x * 2
        return x.detach(), y.detach(), y, y.detach().reshape(2, 2)

    xe, xc = pair((4,), 2)
    want, got = f(xe), minaot.aot_function(f)(xc)
    assert [o.requires_grad for o in got] == [o.requires_grad for o in want] == \
        [False, False, True, False]
    for g, w in zip(got, want):
        assert_close(g.detach(), w.detach())
        assert g.is_leaf == w.is_leaf
    # x.detach() is an alias of the caller's tensor, as in eager: a write through it is
    # allowed (it is no autograd view of the leaf) and reaches x
    assert np.shares_memory(got[0].numpy(), xc.detach().numpy())
    got[0].add_(1)
    want[0].add_(1)
    assert_close(xc.detach(), xe.detach())
    got[2].sum().backward()
    want[2].sum().backward()
    assert_close(xc.grad, xe.grad)


def test_detach_inplace_on_intermediate_cuts_gradient():
    def f(x):
        h = x * 2
        h.detach_()
        return (h * x).sum()

    xe, xc = pair((3,), 3)
    f(xe).backward()
    minaot.aot_function(f)(xc).backward()
    assert_close(xc.grad.numpy(), 2 * xc.detach().numpy())
    assert_close(xc.grad, xe.grad)


def test_detach_inplace_on_input_is_a_trace_error():
    def f(x):
        x.detach_()
        return x * 2

    with pytest.raises(minaot.TraceError, match="detach_"):
        minaot.aot_function(f)(leaf((3,), 4))


# ---------------------------------------------------------------- no_grad
def test_no_grad_block_matches_eager():
    def f(x, w):
        with minaot.no_grad():
            s = (x * w).sum()                      # a value computed without history
            t = x.exp()
            with minaot.enable_grad():
                u = (x * 3).sin()                  # history again
        y = x * s + t + u
        return y.sum(), s, t, u

    xe, xc = pair((4,), 5)
    we, wc = pair((4,), 6)
    want, got = f(xe, we), minaot.aot_function(f)(xc, wc)
    assert [o.requires_grad for o in got] == [o.requires_grad for o in want] == \
        [True, False, False, True]
    for g, w in zip(got, want):
        assert_close(g.detach(), w.detach())
    (want[0] + want[3].sum()).backward()
    (got[0] + got[3].sum()).backward()
    x, w = xc.detach().numpy(), wc.detach().numpy()
    assert_close(xc.grad.numpy(), (x * w).sum() + 6 * np.cos(3 * x))
    for g, e in zip(grads_of([xc, wc]), grads_of([xe, we])):
        assert_close(g, e)


def test_no_grad_function_outputs_do_not_require_grad():
    def f(x):
        with minaot.no_grad():
            return x * 2, x.sum()

    x = leaf((3,), 7)
    out = minaot.aot_function(f)(x)
    assert not any(o.requires_grad for o in out)
    assert [o.requires_grad for o in f(x)] == [False, False]


def batchnorm_like(x, w, running):
    """A BatchNorm-style step: the running stat is updated in place under no_grad
    from a value that requires grad."""
    y = x @ w
    with minaot.no_grad():
        running.mul_(0.9).add_(y.mean(0) * 0.1)
    return (y - y.mean(0)).relu().sum()


def test_inplace_buffer_update_under_no_grad():
    we, wc = pair((3, 2), 8)
    run_e, run_c = minaot.zeros(2, dtype=minaot.float64), minaot.zeros(2, dtype=minaot.float64)
    cf = minaot.aot_function(batchnorm_like)
    minaot.reset()
    for step in range(2):
        x = leaf((5, 3), 10 + step, requires_grad=False)
        batchnorm_like(x, we, run_e).backward()
        cf(x, wc, run_c).backward()
        assert_close(run_c, run_e)
        assert run_c.is_leaf and run_c.grad_fn is None and not run_c.requires_grad
        assert_close(wc.grad, we.grad)
    c = minaot.counters["aot"]
    assert c["compiles"] == 1 and c["cache_hits"] == 1     # the buffer stayed a plain tensor


def test_batchnorm_module_running_stats_have_no_history():
    minaot.manual_seed(0)
    model = minaot.nn.Sequential(minaot.nn.Linear(3, 4), minaot.nn.BatchNorm1d(4))
    compiled = minaot.aot_module(model)
    bn = model[1]
    minaot.reset()
    for step in range(2):
        x = leaf((6, 3), 20 + step, requires_grad=False).float()
        before = bn.running_mean.numpy().copy()
        h = model[0](x).detach().numpy()
        compiled(x).sum().backward()
        assert_close(bn.running_mean.numpy(), 0.9 * before + 0.1 * h.mean(0), rtol=1e-5, atol=1e-6)
        for b in bn.buffers():
            assert b.is_leaf and b.grad_fn is None and not b.requires_grad
    assert minaot.counters["aot"]["compiles"] == 1 and minaot.counters["aot"]["cache_hits"] == 1


# ---------------------------------------------------------------- both, against eager
def mixed(x, w):
    h = (x @ w).tanh()
    centre = h.detach().mean(0)
    with minaot.no_grad():
        scale = h.abs().amax() + 1
        shadow = h * 2
    z = (h - centre) / scale * (h + shadow).sin()
    return z.sum() + minaot.logsumexp(h, 1).sum() + (h * h.detach()).mean()


@pytest.mark.parametrize("backend", ["nop", "numba"])
@pytest.mark.parametrize("partition_fn", [minaot.default_partition, MINCUT],
                         ids=["default", "mincut"])
def test_mixed_detach_and_no_grad_gradients_match_eager(partition_fn, backend):
    xe, xc = pair((5, 3), 30)
    we, wc = pair((3, 4), 31)
    want = mixed(xe, we)
    if backend == "nop":
        cf = minaot.aot_function(mixed, partition_fn=partition_fn)
    else:
        cf = minaot.compile(mixed, backend=backend, partition_fn=partition_fn)
    got = cf(xc, wc)
    assert_close(got, want)
    want.backward()
    got.backward()
    assert_close(xc.grad, xe.grad)
    assert_close(wc.grad, we.grad)


def test_detach_does_not_change_gradients_where_eager_agrees():
    # logsumexp subtracts a detached max; its gradient is still softmax (numpy oracle)
    x = leaf((3, 4), 40)
    minaot.aot_function(lambda x: minaot.logsumexp(x, 1).sum())(x).backward()
    a = x.detach().numpy()
    e = np.exp(a - a.max(1, keepdims=True))
    assert_close(x.grad.numpy(), e / e.sum(1, keepdims=True))


# ---------------------------------------------------------------- writes that keep history
def test_add_through_a_detached_alias_matches_eager():
    def f(x):
        h = x * 2
        h.detach().add_(1)                         # new data, h's history unchanged
        return (h * x).sum()

    xe, xc = pair((3,), 50)
    want, got = f(xe), minaot.aot_function(f)(xc)
    assert_close(got, want)
    want.backward()
    got.backward()
    assert_close(xc.grad, xe.grad)


@pytest.mark.parametrize("how", ["detached alias", "no_grad", "no_grad view", "detached view"])
def test_scaling_write_hidden_from_autograd(how):
    def f(x):
        h = x * 2
        if how == "no_grad":
            with minaot.no_grad():
                h.mul_(3)
        elif how == "no_grad view":
            with minaot.no_grad():
                h[1:].mul_(3)
        elif how == "detached view":
            h.detach()[:2].mul_(x.detach()[1:])
        else:
            h.detach().mul_(3)
        return (h * h).sum() + h[1:].sum()

    xe, xc = pair((3,), 51)
    want = f(xe)
    want.backward()
    got = minaot.aot_function(f)(xc)
    got.backward()
    assert_close(got, want)
    assert_close(xc.grad, xe.grad)     # the write is not differentiated (was 3x too large)


def test_hidden_write_into_an_input_keeps_its_gradient():
    def f(x, y):
        with minaot.no_grad():
            y.mul_(3)                      # y is a non-leaf input: its history stays
        return (y * x).sum()

    for run in (f, minaot.aot_function(f)):
        x = minaot.tensor([1.0, 2.0], requires_grad=True)
        y0 = minaot.tensor([0.5, 0.25], requires_grad=True)
        y = y0 * 2
        run(x, y).backward()
        assert y.tolist() == [3.0, 1.5]
        assert x.grad.tolist() == [3.0, 1.5]       # PyTorch: [3.0, 1.5] and [2.0, 4.0]
        assert y0.grad.tolist() == [2.0, 4.0]
