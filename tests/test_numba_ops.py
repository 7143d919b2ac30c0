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
