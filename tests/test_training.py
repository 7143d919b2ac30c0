"""Training with aot_module: compiled and eager runs agree step by step."""

import copy

import numpy as np
import pytest

import minaot
from minaot import nn, optim
from minaot.testing import assert_close

pytestmark = pytest.mark.joint
STEPS = 20
TOL = dict(rtol=1e-5, atol=1e-5)


def make_mlp():
    """A 2-layer MLP with BatchNorm1d, GELU, Dropout and LayerNorm between the layers.

    The first layer has no bias, as usual before a batch norm: the batch norm
    cancels it, so its exact gradient is 0 and Adam (which divides by the
    gradient's running RMS) would turn float32 rounding noise into full-size
    steps, in eager and compiled alike but not the same ones."""
    minaot.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32, bias=False), nn.BatchNorm1d(32), nn.GELU(), nn.Dropout(0.2),
                         nn.LayerNorm(32), nn.Linear(32, 4))


def dataset():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((STEPS, 16, 8)).astype(np.float32) * 2 + 0.5
    y = np.argmax(x @ rng.standard_normal((8, 4)), axis=-1)      # a learnable labelling
    return x, y


def train(model, make_opt, steps=STEPS):
    """``steps`` optimizer steps from seed 1; returns the losses."""
    opt = make_opt(model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    xs, ys = dataset()
    losses = []
    minaot.manual_seed(1)                   # one seed: the dropout masks of all steps follow
    for x, y in zip(xs[:steps], ys[:steps]):
        opt.zero_grad()
        loss = loss_fn(model(minaot.tensor(x)), minaot.tensor(y))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-4),
    "adam": lambda ps: optim.Adam(ps, lr=1e-2),
}


@pytest.mark.parametrize("partition_fn", [None, minaot.min_cut_rematerialization_partition],
                         ids=["default", "min_cut"])
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_compiled_training_matches_eager(opt, partition_fn):
    eager = make_mlp()
    compiled = minaot.aot_module(copy.deepcopy(eager), partition_fn=partition_fn)
    minaot.reset()
    losses_eager = train(eager, OPTIMIZERS[opt])
    losses_compiled = train(compiled, OPTIMIZERS[opt])
    assert np.mean(losses_compiled[-5:]) < 0.7 * np.mean(losses_compiled[:5])   # it learns
    np.testing.assert_allclose(losses_compiled, losses_eager, **TOL)
    for (name, a), b in zip(eager.state_dict().items(), compiled.orig_module.state_dict().values()):
        assert_close(b, a, **TOL, msg=name + ": ")
    assert compiled.orig_module[1].num_batches_tracked.item() == STEPS
    counts = minaot.counters["aot"]
    assert counts["compiles"] == 1 and counts["cache_hits"] == STEPS - 1
    assert counts["bw_compiles"] == 1

    # eval: another graph (running stats, no dropout), same answer as eager
    eager.eval(), compiled.eval()
    x = minaot.tensor(dataset()[0][0])
    assert_close(compiled(x), eager(x), **TOL)
    assert counts["compiles"] == 2
    compiled.train()
    compiled(x)
    assert counts["compiles"] == 2                                # train() reuses the first graph


def test_parameters_are_the_original_parameters():
    model = make_mlp()
    compiled = minaot.aot_module(model)
    assert isinstance(compiled, nn.Module)
    assert [id(p) for p in compiled.parameters()] == [id(p) for p in model.parameters()]
    assert [n for n, _ in compiled.named_buffers()] == \
        ["orig_module." + n for n, _ in model.named_buffers()]
    compiled.eval()
    assert not model.training and not model[3].training
    compiled.train()
    assert model.training and model[3].training


def test_buffers_are_written_back_as_plain_state():
    minaot.manual_seed(3)
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3, momentum=0.5))
    bn = model[1]
    compiled = minaot.aot_module(model)
    x = minaot.randn(6, 3) * 2 + 1
    compiled(x).sum().backward()
    h = model[0](x).detach().numpy()            # what the batch norm saw
    assert_close(bn.running_mean, minaot.tensor(0.5 * h.mean(0)))
    assert_close(bn.running_var, minaot.tensor(0.5 + 0.5 * h.var(0, ddof=1)))
    assert bn.num_batches_tracked.item() == 1
    for b in bn.buffers():                       # no autograd history from the copy-back
        assert b.is_leaf and not b.requires_grad
    compiled(x)
    assert minaot.counters["aot"]["cache_hits"] >= 1 and bn.num_batches_tracked.item() == 2
    compiled.eval()
    compiled(x)
    assert bn.num_batches_tracked.item() == 2                     # eval does not update


def test_one_submodule_in_eval_mode_gets_its_own_graph():
    model = make_mlp()
    compiled = minaot.aot_module(model)
    minaot.reset()
    x = minaot.tensor(dataset()[0][0])
    compiled(x)
    model[3].eval()                                               # dropout off, batch norm still training
    minaot.manual_seed(5)
    out = compiled(x)
    assert minaot.counters["aot"]["compiles"] == 2
    reference = copy.deepcopy(model)
    eager_out = reference(x)                                      # no random draw in either
    assert_close(out, eager_out, **TOL)


def test_shared_module_gradients_match_eager():
    minaot.manual_seed(4)
    lin = nn.Linear(5, 5)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    twin = copy.deepcopy(model)
    assert twin[0] is twin[2]
    x = minaot.randn(3, 5)
    model(x).sum().backward()
    minaot.aot_module(twin)(x).sum().backward()
    assert_close(twin[0].weight.grad, model[0].weight.grad)
    assert_close(twin[0].bias.grad, model[0].bias.grad)


@pytest.mark.parametrize("partition_fn", [minaot.default_partition,
                                          minaot.min_cut_rematerialization_partition])
def test_unused_random_draw_keeps_the_stream_aligned(partition_fn):
    def f(x):
        minaot.rand(7)                       # nothing reads it, but it advances the generator
        return minaot.nn.functional.dropout(x, 0.5) * x

    x = minaot.randn(4, 6, requires_grad=True)
    minaot.manual_seed(9)
    expected = f(x)
    after_eager = minaot.rand(3)
    xc = x.detach().requires_grad_()
    minaot.manual_seed(9)
    got = minaot.aot_function(f, partition_fn=partition_fn)(xc)
    assert_close(got, expected)
    assert_close(minaot.rand(3), after_eager)
    got.sum().backward()
    expected.sum().backward()
    assert_close(xc.grad, x.grad)
