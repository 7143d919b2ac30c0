"""The ``cuda`` backend (minaot/cuda_backend.py): compiled programs on the device equal eager.

Like tests/cuda_cases.py, these need a CUDA target: a GPU, or Numba's simulator switched
on (``NUMBA_ENABLE_CUDASIM=1``) before Numba is imported.  ``test_cuda_compile.py`` runs
this file in a fresh process with the simulator on; on a GPU machine run it directly
(``python -m pytest tests/cuda_compile_cases.py``).  Without either, importing it fails
(never a silent skip).  Shapes stay tiny (the simulator runs a Python thread per CUDA
thread).

1. The op database: every registry op, forward (float32 and float64) and backward, through
   a :class:`~minaot.cuda_backend.CudaProgram`, equals eager on the CPU, with the checks of
   tests/test_aot_ops.py and tests/test_joint.py.  The compiler ``on_device`` runs the
   program on device copies of the CPU inputs and copies the results back (strides kept),
   so the CPU-side checks apply unchanged; everything between is on the device.
2. Random programs (tests/program_gen.py), a few examples, the same way.
3. The device-array helpers (views, copies that keep the layout, overlap) against numpy,
   and the errors: a bad gather index, an op with no device implementation.
"""

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from numba import config

import minaot
from minaot import cuda_backend as cb
from minaot.codegen.cuda_runtime import cuda_module

cuda = cuda_module()                    # raises, naming what is missing, without a target
if config.ENABLE_CUDASIM:
    sys.setswitchinterval(1e-4)         # the simulator's threads hand over faster

from program_gen import inplace_programs, pure_programs  # noqa: E402
from test_aot_ops import CASES, DTYPES, check_inference  # noqa: E402
from test_aot_properties import PROPERTY, check_inplace, check_pure  # noqa: E402
from test_joint import DIFF, check_gradients  # noqa: E402

pytestmark = pytest.mark.cuda
EXAMPLES = 4                            # random programs per property
# small blocks, as in tests/cuda_cases.py: grid-stride loops and block-stride reductions take
# several turns even at these sizes, and the simulator starts fewer threads per launch; full
# reductions of 16 or more elements take the two-pass path of large ones
SMALL = dict(max_threads=8, max_blocks=4, block_rows_min=8, grid_reduce_min=16)


def to_device(a: np.ndarray):
    """A device copy of ``a`` with ``a``'s strides (``a`` dense in some axis order)."""
    a = np.array(a, order="K")
    if a.size == 0:
        return cb.empty(a.shape, a.dtype)
    span = np.lib.stride_tricks.as_strided(a, (a.size,), (a.itemsize,))
    return cb.strided_view(cuda.to_device(np.array(span)), a.shape, a.strides)


def to_host(d) -> np.ndarray:
    """A host copy of the device array ``d`` with ``d``'s strides."""
    if d.size == 0:
        return np.empty(d.shape, d.dtype)
    span = cb.flat(d)[0].copy_to_host()
    return np.lib.stride_tricks.as_strided(span, tuple(d.shape), tuple(d.strides))


def on_device(graph, example_inputs):
    """A compiler for the CPU-side checks: the graph runs as a CudaProgram on device copies
    of the inputs; its results come back to the host."""
    program = cb.CudaProgram(graph, **SMALL)

    def run(*args):
        outs = program.run_arrays([to_device(a._data) for a in args])
        return [minaot.Tensor._wrap(to_host(o)) for o in outs]
    run.program = program
    return run


# ---------------------------------------------------------------- 1. the op database
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("op,i,sample", CASES, ids=[f"{op.name}-{i}" for op, i, s in CASES])
def test_cuda_inference_matches_eager(op, i, sample, dtype):
    check_inference(op, i, sample, dtype, on_device)


@pytest.mark.parametrize("op,i,sample", DIFF, ids=[f"{op.name}-{i}" for op, i, s in DIFF])
def test_cuda_gradients_match_eager(op, i, sample):
    check_gradients(op, sample, on_device)


# ---------------------------------------------------------------- 2. random programs
@settings(PROPERTY, max_examples=EXAMPLES)
@given(prog=pure_programs(max_ops=6))
def test_random_pure_programs_on_cuda(prog):
    check_pure(prog, on_device, minaot.min_cut_rematerialization_partition, minaot.float32)


@settings(PROPERTY, max_examples=EXAMPLES)
@given(prog=inplace_programs())
def test_random_inplace_programs_on_cuda(prog):
    check_inplace(prog, on_device, minaot.float64, grad_mode=False)


# ---------------------------------------------------------------- 3. helpers and errors
def _views(a):
    yield "transpose", lambda p: p.T
    yield "slice", lambda p: p[1:, ::2]
    yield "select", lambda p: p[:, 1]
    yield "expand", lambda p: np.broadcast_to(p[:, None, :], (p.shape[0], 3, p.shape[1]))
    yield "scalar", lambda p: p[(1, 2, Ellipsis)]


def test_views_share_the_device_memory_with_numpys_geometry():
    host = np.arange(20, dtype=np.float32).reshape(4, 5)
    dev = to_device(host)
    for name, fn in _views(host):
        want = fn(host)
        got = cb.view_like(dev, fn)
        assert tuple(got.shape) == want.shape and tuple(got.strides) == want.strides, name
        np.testing.assert_array_equal(to_host(got), want, err_msg=name)
        assert cb.may_share_memory(got, dev), name
    cb.copy_into(cb.view_like(dev, lambda p: p[2]), to_device(np.full(5, -1, np.float32)))
    host[2] = -1                                  # a write through a view reaches the base
    np.testing.assert_array_equal(to_host(dev), host)


def test_reshape_views_when_the_strides_allow_and_copies_otherwise():
    host = np.arange(24, dtype=np.int64).reshape(2, 3, 4)
    dev = to_device(host)
    v = cb.reshape(dev, (6, 4))
    assert cb.may_share_memory(v, dev)
    t = cb.view_like(dev, lambda p: p.transpose(2, 0, 1))
    assert cb.may_share_memory(cb.reshape(t, (4, 6)), dev)          # (2, 3) merge: a view
    c = cb.reshape(t, (24,))
    assert not cb.may_share_memory(c, dev)
    np.testing.assert_array_equal(to_host(c), host.transpose(2, 0, 1).reshape(24))


def test_copies_keep_the_layout_like_numpys_order_k():
    host = np.arange(60, dtype=np.float64).reshape(3, 4, 5)
    dev = to_device(host)
    for fn in (lambda p: p.transpose(2, 0, 1), lambda p: p[:, ::2, 1:], lambda p: p[:, :1, :].T,
               lambda p: np.broadcast_to(p[:, :, :1], (3, 4, 5))):
        got = cb.copy_keep_order(cb.view_like(dev, fn))
        want = np.array(fn(host), order="K")
        assert tuple(got.strides) == want.strides
        np.testing.assert_array_equal(to_host(got), want)


def test_results_are_fresh():
    a = to_device(np.arange(6, dtype=np.float32).reshape(2, 3))
    b = cb.view_like(a, lambda p: p.T)
    e = cb.view_like(a, lambda p: np.broadcast_to(p[:1], (4, 3)))
    own = cb.empty((3,), np.float32)
    out = cb.fresh_device_results([b, own, own, e], [a])
    assert not cb.may_share_memory(out[0], a) and tuple(out[0].strides) == tuple(b.strides)
    assert out[1] is own and not cb.may_share_memory(out[2], own)
    host = np.broadcast_to(np.arange(3, dtype=np.float32)[None], (4, 3))
    assert tuple(out[3].strides) == np.array(host, order="K").strides       # as on the CPU
    np.testing.assert_array_equal(to_host(out[3]), np.broadcast_to([[0, 1, 2]], (4, 3)))


def test_gather_index_out_of_range_raises_naming_the_op():
    x = minaot.randn(3, 4)
    f = minaot.aot_function(lambda x, i: x.gather(1, i), fw_compiler=on_device)
    good = minaot.tensor([[0, 3], [1, -4], [2, 2]])
    np.testing.assert_allclose(f(x, good).numpy(), np.take_along_axis(x.numpy(), good.numpy() % 4, 1))
    with pytest.raises(IndexError, match="gather: index out of range"):
        f(x, minaot.tensor([[0, 4], [1, 1], [2, 2]]))
    f(x, good)                                  # the error code was reset


def test_an_op_without_a_device_implementation_is_named():
    g = minaot.trace(lambda x: x @ x, minaot.randn(3, 3))   # an mt graph: mt.matmul
    with pytest.raises(NotImplementedError, match="mt.matmul"):
        cb.CudaProgram(g)
