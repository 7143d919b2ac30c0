"""``scatter_add`` with an index smaller than ``src``: only the part of ``src`` that the
index covers is added, and ``src``'s gradient has ``src``'s shape (zero elsewhere)."""

import numpy as np

import minaot
from minaot.testing import assert_close, gradcheck


def test_scatter_add_with_a_smaller_index_has_src_shaped_gradients():
    rng = np.random.default_rng(0)
    x, s = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    idx = minaot.tensor([[1, 0]])
    want = x.copy()
    want[1, 0] += s[0, 0]
    want[0, 1] += s[0, 1]
    tx = minaot.tensor(x, dtype=minaot.float64, requires_grad=True)
    ts = minaot.tensor(s, dtype=minaot.float64, requires_grad=True)
    out = minaot.scatter_add(tx, 0, idx, ts)
    assert_close(out.detach(), want)
    out.sum().backward()
    assert_close(ts.grad, np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
    gradcheck(lambda a, b: minaot.scatter_add(a, 0, idx, b), [tx, ts])
