"""Train-step benchmark (issue 6, workload 4): one MLP training step, several ways.

The model: 784 -> 1024 -> 1024 -> 10, ``Linear, GELU, Linear, GELU, Linear``,
cross-entropy loss against integer labels, Adam (lr 1e-3), batch 512,
float32.  One step is ``zero_grad; loss = model(x, y); loss.backward();
opt.step()``, on a fixed batch (data loading is not what is measured).

Two rows: GELU in its exact erf form (``nn.GELU()``, PyTorch's default) and
in its tanh form.  Columns:

* numpy eager: forward, backward and Adam written by hand in numpy (the erf
  of the exact GELU is the Abramowitz-Stegun 7.1.26 rational approximation,
  |error| < 1.5e-7, since numpy has no erf);
* minaot eager: ``minaot.nn`` modules, eager autograd, ``minaot.optim.Adam``;
* minaot numba: the same model (with its loss) compiled by ``minaot.aot_module``
  with ``numba_compiler`` as forward and backward compiler (default
  partitioner), and ``Adam(fused=True)`` (each parameter's update one compiled
  kernel); notes under the table give the same with the min-cut partitioner
  and with the eager Adam;
* torch eager: the same architecture and initial weights in PyTorch;
* torch.compile: ``torch.compile`` of that model (``--no-torch-compile``
  leaves it out: its cold compile takes 10-20 s here).

All implementations start from the same weights; the first step's loss of
each is checked against numpy's before anything is timed.

    .venv/bin/python benchmarks/train_step.py [--quick] [--no-torch-compile] [--source] [--per-kernel]
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time

import _common as C  # first: sets thread counts before numpy is imported
from _common import np, torch

import minaot
from minaot import nn

BATCH, SIZES, LR = 512, (784, 1024, 1024, 10), 1e-3
BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


class MLPWithLoss(nn.Module):
    """The MLP and its loss as one module, so that ``aot_module`` compiles both."""

    def __init__(self, approximate):
        super().__init__()
        layers = []
        for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(SIZES) - 2:
                layers.append(nn.GELU(approximate))
        self.net = nn.Sequential(*layers)
        self.loss = nn.CrossEntropyLoss()

    def forward(self, x, y):
        return self.loss(self.net(x), y)


# --- numpy: forward, backward and Adam by hand --------------------------------------

_SQRT1_2 = np.float32(1 / math.sqrt(2))
_INV_SQRT_2PI = np.float32(1 / math.sqrt(2 * math.pi))
_C0 = np.float32(math.sqrt(2 / math.pi))


def _erf(x):
    """Abramowitz & Stegun 7.1.26, |error| < 1.5e-7."""
    a = np.abs(x)
    t = 1.0 / (1.0 + np.float32(0.3275911) * a)
    poly = t * (np.float32(0.254829592) + t * (np.float32(-0.284496736) + t * (
        np.float32(1.421413741) + t * (np.float32(-1.453152027) + t * np.float32(1.061405429)))))
    return np.copysign(1.0 - poly * np.exp(-a * a), x)


def gelu_fwd_bwd(approximate):
    """``(forward(h) -> (a, saved), backward(saved, da) -> dh)`` for one GELU form."""
    if approximate == "tanh":
        def fwd(h):
            th = np.tanh(_C0 * (h + np.float32(0.044715) * h * h * h))
            return 0.5 * h * (1 + th), (h, th)

        def bwd(saved, da):
            h, th = saved
            dinner = _C0 * (1 + np.float32(3 * 0.044715) * h * h)
            return da * (0.5 * (1 + th) + 0.5 * h * (1 - th * th) * dinner)
    else:
        def fwd(h):
            cdf = 0.5 * (1 + _erf(h * _SQRT1_2))
            return h * cdf, (h, cdf)

        def bwd(saved, da):
            h, cdf = saved
            return da * (cdf + h * _INV_SQRT_2PI * np.exp(-0.5 * h * h))
    return fwd, bwd


class NumpyMLP:
    def __init__(self, weights, approximate):
        self.params = [np.array(w) for w in weights]      # W1, b1, W2, b2, W3, b3
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0
        self.gelu, self.gelu_bwd = gelu_fwd_bwd(approximate)

    def step(self, x, y):
        W1, b1, W2, b2, W3, b3 = self.params
        h1 = x @ W1.T + b1
        a1, s1 = self.gelu(h1)
        h2 = a1 @ W2.T + b2
        a2, s2 = self.gelu(h2)
        z = a2 @ W3.T + b3
        zmax = z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z - zmax).sum(axis=1, keepdims=True)) + zmax
        n = len(y)
        loss = (lse[:, 0] - z[np.arange(n), y]).mean()
        dz = np.exp(z - lse)
        dz[np.arange(n), y] -= 1
        dz /= n
        grads = [None] * 6
        grads[4], grads[5] = dz.T @ a2, dz.sum(axis=0)
        dh2 = self.gelu_bwd(s2, dz @ W3)
        grads[2], grads[3] = dh2.T @ a1, dh2.sum(axis=0)
        dh1 = self.gelu_bwd(s1, dh2 @ W2)
        grads[0], grads[1] = dh1.T @ x, dh1.sum(axis=0)
        self.adam(grads)
        return loss

    def adam(self, grads):
        self.t += 1
        b1, b2 = BETAS
        step = LR / (1 - b1 ** self.t)
        corr = math.sqrt(1 - b2 ** self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= step * m / (np.sqrt(v) / corr + ADAM_EPS)


# --- the others ---------------------------------------------------------------------

def minaot_step(model, opt, x, y):
    opt.zero_grad()
    loss = model(x, y)
    loss.backward()
    opt.step()
    return loss


def torch_model(weights, approximate):
    layers = []
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        lin = torch.nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(weights[2 * i]))
            lin.bias.copy_(torch.from_numpy(weights[2 * i + 1]))
        layers.append(lin)
        if i < len(SIZES) - 2:
            layers.append(torch.nn.GELU(approximate=approximate))
    return torch.nn.Sequential(*layers)


def torch_step(model, opt, x, y):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss


def compiled_variant_step(approximate, partition_fn=None, fused=True):
    """The compiled column with another partitioner or the eager Adam (notes under the table)."""
    minaot.manual_seed(0)
    rng = np.random.default_rng(0)
    x = minaot.tensor(rng.standard_normal((BATCH, SIZES[0]), dtype=np.float32))
    y = minaot.tensor(rng.integers(0, SIZES[-1], BATCH))
    model = minaot.aot_module(MLPWithLoss(approximate), fw_compiler=minaot.numba_compiler,
                              bw_compiler=minaot.numba_compiler, partition_fn=partition_fn)
    opt = nn_adam(model, fused=fused)
    return lambda: minaot_step(model, opt, x, y)


def implementations(approximate, with_torch_compile):
    """``{column: step()}`` for one GELU form, all from the same initial weights."""
    minaot.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], BATCH)
    eager = MLPWithLoss(approximate)
    weights = [p.detach().numpy().copy() for p in eager.parameters()]
    twin = MLPWithLoss(approximate)
    twin.load_state_dict(eager.state_dict())
    compiled = minaot.aot_module(twin, fw_compiler=minaot.numba_compiler,
                                 bw_compiler=minaot.numba_compiler)
    mx, my = minaot.tensor(x), minaot.tensor(y)
    eager_opt = nn_adam(eager)
    compiled_opt = nn_adam(compiled, fused=True)
    npm = NumpyMLP(weights, approximate)
    fns = {"numpy eager": lambda: npm.step(x, y),
           "minaot eager": lambda: minaot_step(eager, eager_opt, mx, my),
           "minaot numba": lambda: minaot_step(compiled, compiled_opt, mx, my)}
    if torch is not None:
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        tm = torch_model(weights, approximate)
        topt = torch.optim.Adam(tm.parameters(), lr=LR, betas=BETAS, eps=ADAM_EPS)
        fns["torch eager"] = lambda: torch_step(tm, topt, tx, ty)
        if with_torch_compile:
            tc = torch_model(weights, approximate)
            tcc = torch.compile(tc)
            tcopt = torch.optim.Adam(tc.parameters(), lr=LR, betas=BETAS, eps=ADAM_EPS)
            fns["torch.compile"] = lambda: torch_step(tcc, tcopt, tx, ty)
    return fns, compiled


def nn_adam(model, fused=False):
    """minaot's Adam; ``fused=True`` (one compiled Numba kernel per parameter) where the
    installed minaot has it."""
    import inspect
    kw = {"fused": True} if fused and "fused" in inspect.signature(minaot.optim.Adam).parameters \
        else {}
    return minaot.optim.Adam(model.parameters(), lr=LR, betas=BETAS, eps=ADAM_EPS, **kw)


def _loss(r):
    return float(r.item() if hasattr(r, "item") else r)


def main():
    os.environ.setdefault("MINAOT_CACHE_DIR", tempfile.mkdtemp(prefix="minaot-bench-"))
    with_tc = "--no-torch-compile" not in sys.argv
    rows, notes = [], []
    for approximate in ("none", "tanh"):
        name = f"(4) MLP train step, GELU {'erf' if approximate == 'none' else 'tanh'}"
        fns, compiled = implementations(approximate, with_tc)
        times, first_loss = [], None
        for col in C.COLUMNS:
            fn = fns.get(col)
            if fn is None:
                times.append(None)
                continue
            t0 = time.perf_counter()
            loss = _loss(fn())
            first = time.perf_counter() - t0
            if first_loss is None:
                first_loss = loss
            elif abs(loss - first_loss) > 1e-4 * max(1.0, abs(first_loss)):
                raise AssertionError(f"{name}: {col} first loss {loss} != numpy's {first_loss}")
            times.append(C.time_it(fn, warmup=2, repeat=10))
            if col in ("minaot numba", "torch.compile"):
                notes.append(f"{name}: {col} first step (compile) {first:.2f} s")
        rows.append((name, times))
        for what, kw in (("the min-cut partitioner",
                          {"partition_fn": minaot.min_cut_rematerialization_partition}),
                         ("eager (unfused) Adam", {"fused": False})):
            t_v = C.time_it(compiled_variant_step(approximate, **kw), warmup=2, repeat=10)
            notes.append(f"{name}: minaot numba with {what}: {C.fmt_time(t_v)} "
                         f"({times[0] / t_v:.1f}x)")
        notes.append(f"{name}: minaot kernels generated (fw + bw): "
                     f"{C.kernel_count(compiled.compiled)}")
        if "--source" in sys.argv:
            for prog in C.numba_programs(compiled.compiled):
                print(prog.stage_text())
        if "--per-kernel" in sys.argv:
            notes.append(f"{name}: where the compiled step's time goes\n"
                         + C.kernel_report(compiled.compiled, fns["minaot numba"]))
    print(C.machine())
    print()
    print(C.table(rows, title="Train step: median time per step (speed-up vs numpy eager)"))
    print()
    print("\n".join(notes))


if __name__ == "__main__":
    main()
