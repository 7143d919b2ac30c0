"""``python -m minaot demo``: the main job.  ``python -m minaot explain`` comes with the compiler."""

from __future__ import annotations

import argparse
import sys


def demo(args) -> int:
    """Eager tensors and autograd: fit a small linear model with SGD."""
    import numpy as np

    import minaot

    minaot.manual_seed(0)
    print("minaot", minaot.__version__, "- eager tensors and autograd")
    x = minaot.randn(256, 3)
    true_w = minaot.tensor([[2.0], [-1.0], [0.5]])
    y = x @ true_w + 0.3
    w = minaot.zeros(3, 1, requires_grad=True)
    b = minaot.zeros(1, requires_grad=True)
    print(f"data: x {x.shape}, y {y.shape}; parameters w {w.shape}, b {b.shape}")
    view = x[:2, 1:]
    print(f"a view x[:2, 1:] shares storage: shape {view.shape}, stride {view.stride()}, "
          f"base is x: {view._base is x}")
    lr = 0.1
    steps = args.steps
    for step in range(steps + 1):
        loss = ((x @ w + b - y) ** 2).mean()
        w.grad = None
        b.grad = None
        loss.backward()
        with minaot.no_grad():
            w.sub_(w.grad * lr)
            b.sub_(b.grad * lr)
        if step % max(1, steps // 5) == 0:
            bar = "#" * int(20 * step / steps) + "." * (20 - int(20 * step / steps))
            print(f"  step {step:4d} [{bar}] loss {loss.item():.6f}")
    print("learned w:", np.round(w.detach().numpy().ravel(), 3), "b:", np.round(b.item(), 3))
    print("loss graph:", loss.grad_fn.name(), "->",
          ", ".join(e[0].name() for e in loss.grad_fn.next_functions if e is not None))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="minaot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="run the demo")
    p.add_argument("--steps", type=int, default=100)
    p.set_defaults(func=demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
