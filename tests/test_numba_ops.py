"""Every op of the registry through backend "numba": forward (float32 and float64) and
gradients equal eager, with the same aliasing and input-mutation semantics as the
reference interpreter (the same checks as tests/test_aot_ops.py and tests/test_joint.py,
with the numba compiler).  The op samples come from the registry (minaot.testing)."""

import pytest

import minaot

from test_aot_ops import CASES, DTYPES, check_inference
from test_joint import DIFF, check_gradients

pytestmark = pytest.mark.codegen


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("op,i,sample", CASES, ids=[f"{op.name}-{i}" for op, i, s in CASES])
def test_numba_inference_matches_eager(op, i, sample, dtype):
    check_inference(op, i, sample, dtype, minaot.numba_compiler)


@pytest.mark.parametrize("op,i,sample", DIFF, ids=[f"{op.name}-{i}" for op, i, s in DIFF])
def test_numba_gradients_match_eager(op, i, sample):
    check_gradients(op, sample, minaot.numba_compiler)


COLUMN_CHAINS = {
    "var0": lambda x: x.var(0),
    "std0_standardize": lambda x: (x - x.mean(0)) / x.std(0),
    "logsumexp0": lambda x: x.logsumexp(0),
    "exp_sum_after_amax0": lambda x: (x - x.amax(0)).exp().sum(0),
    "softmax0_sum0": lambda x: x.softmax(0).sum(0),
    "var01_3d": lambda x: x.unsqueeze(2).expand(16, 8, 3).var((0, 1)),
}


@pytest.mark.parametrize("name", sorted(COLUMN_CHAINS))
def test_a_reduction_over_leading_axes_that_needs_another_one_matches_eager(name):
    """A kernel reducing over dim 0 twice, the second over values that need the first
    (the variance's mean): the chunked column schedule cannot do that in one pass over
    the rows, so the kernel takes the row schedule (it once summed the wrong values)."""
    import numpy as np
    from minaot.testing import assert_close
    fn = COLUMN_CHAINS[name]
    a = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    assert_close(minaot.compile(fn)(minaot.tensor(a)), fn(minaot.tensor(a)), rtol=1e-4, atol=1e-5)
    x, y = minaot.tensor(a, requires_grad=True), minaot.tensor(a, requires_grad=True)
    minaot.compile(lambda x: fn(x).square().sum())(x).backward()
    fn(y).square().sum().backward()
    assert_close(x.grad, y.grad, rtol=1e-3, atol=1e-4)
