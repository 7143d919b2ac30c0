"""Every op of the registry through backend "numba": forward (float32 and float64) and
gradients equal eager, with the same aliasing and input-mutation semantics as the
reference interpreter.  The op samples come from the registry (minaot.testing)."""

import numpy as np
import pytest

import minaot
from minaot.dispatch import dispatch
from minaot.testing import assert_close, gradcheck, sample_to_tensors

from test_aot_ops import CASES, DTYPES, _check_same, _fresh, _op_fn
from test_joint import DIFF

pytestmark = pytest.mark.codegen
NUMBA = minaot.numba_compiler


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("op,i,sample", CASES, ids=[f"{op.name}-{i}" for op, i, s in CASES])
def test_numba_inference_matches_eager(op, i, sample, dtype):
    eager_args, positions = _fresh(sample, dtype)
    comp_args, _ = _fresh(sample, dtype)
    fn = _op_fn(op, sample.kwargs, positions, eager_args)
    eager_in = [eager_args[k] for k in positions]
    comp_in = [comp_args[k] for k in positions]
    with minaot.no_grad():
        minaot.manual_seed(1234)
        want = fn(*eager_in)
        minaot.manual_seed(1234)
        got = minaot.aot_function(fn, fw_compiler=NUMBA)(*comp_in)
    _check_same(got, want, eager_in, comp_in, f"{op.name} sample {i} (numba)")


@pytest.mark.parametrize("op,i,sample", DIFF, ids=[f"{op.name}-{i}" for op, i, s in DIFF])
def test_numba_gradients_match_eager(op, i, sample):
    args = sample_to_tensors(sample, requires_grad=True)
    pos = [k for k, a in enumerate(args) if isinstance(a, minaot.Tensor)]

    def fn(*ts):
        full = list(args)
        for k, t in zip(pos, ts):
            full[k] = t
        return dispatch(op.name, *full, **sample.kwargs)

    tensors = [args[k] for k in pos]
    cf = minaot.aot_function(fn, fw_compiler=NUMBA, bw_compiler=NUMBA)
    out_c, out_e = cf(*tensors), fn(*tensors)
    assert_close(out_c, out_e)
    wrt = [t for t in tensors if t.requires_grad]
    if out_e.requires_grad and out_c.requires_grad:
        seed = minaot.tensor(np.random.default_rng(0).standard_normal(out_e.shape))
        ge = minaot.autograd.grad(out_e, wrt, seed, allow_unused=True)
        gc = minaot.autograd.grad(out_c, wrt, seed, allow_unused=True)
        for a, b in zip(gc, ge):
            if b is None:
                assert a is None or float(a.abs().sum()) == 0
            else:
                assert_close(a, b)
        gradcheck(cf, tensors)
