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
2. Random programs (tests/program_gen.py) the same way.
3. Results: fresh memory in numpy's order-K layout; errors: a bad gather index, an op with
   no device implementation.
4. ``minaot.compile``/``aot_function``/``aot_module`` on CUDA tensors: the backend chosen by
   device, device errors, input mutation and views of inputs on the device, gradients,
   and a small MLP trained on the device against CPU eager.
5. Random programs on CUDA tensors (pure with gradients; in-place with aliasing).
"""

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from numba import config

import minaot
import minaot.nn.functional as F
from minaot import cuda as mc
from minaot import cuda_backend as cb
from minaot.codegen.cuda_runtime import cuda_module
from minaot.cuda_eager import view_array
from minaot.ir import parse
from minaot.kernels.cuda_library import flat

cuda = cuda_module()                    # raises, naming what is missing, without a target
if config.ENABLE_CUDASIM:
    sys.setswitchinterval(1e-4)         # the simulator's threads hand over faster

from program_gen import inplace_programs, pure_programs  # noqa: E402
from test_aot_ops import CASES, DTYPES, check_inference  # noqa: E402
from test_aot_properties import PROPERTY, check_inplace, check_pure  # noqa: E402
from test_joint import DIFF, check_gradients  # noqa: E402

pytestmark = pytest.mark.cuda
EXAMPLES = 25                           # random programs per property
# small blocks, as in tests/cuda_cases.py: grid-stride loops and block-stride reductions take
# several turns even at these sizes, and the simulator starts fewer threads per launch; full
# reductions of 16 or more elements take the two-pass path of large ones
SMALL = dict(max_threads=8, max_blocks=4, block_rows_min=8, grid_reduce_min=16)


def to_device(a: np.ndarray):
    """A device copy of ``a`` with ``a``'s strides (``a`` dense in some axis order)."""
    a = np.array(a, order="K")
    if a.size == 0:
        return mc.empty(a.shape, a.dtype)[0]
    span = np.lib.stride_tricks.as_strided(a, (a.size,), (a.itemsize,))
    return mc.strided(mc.to_device(np.array(span)), 0, a.shape, a.strides)


def to_host(d) -> np.ndarray:
    """A host copy of the device array ``d`` with ``d``'s strides."""
    if d.size == 0:
        return np.empty(d.shape, d.dtype)
    span = flat(d)[0].copy_to_host()
    return np.lib.stride_tricks.as_strided(span, tuple(d.shape), tuple(d.strides))


def on_device(graph, example_inputs):
    """A compiler for the CPU-side checks: the graph runs as a CudaProgram on device copies
    of the inputs; its results come back to the host."""
    program = cb.CudaProgram(graph, **SMALL)

    def run(*args):
        outs = program.run_arrays([to_device(a._data) for a in args])
        return [minaot.Tensor._wrap(to_host(o)) for o, _ in outs]
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


# ---------------------------------------------------------------- 3. results and errors
RESULTS = """
func.func @f(%0: tensor<2x3xf32>) -> (tensor<3x2xf32>, tensor<3x2xf32>, tensor<4x3xf32>, tensor<f32>, tensor<2x3xf32>) {
  %1 = prim.transpose %0 {dim0 = 0, dim1 = 1} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  %2 = prim.constant {dtype = "float32", shape = [], value = 2.0} : () -> tensor<f32>
  %3 = prim.mul %0, %2 : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  %4 = prim.slice %3 {dim = 0, start = 0, stop = 1, step = 1} : (tensor<2x3xf32>) -> tensor<1x3xf32>
  %5 = prim.expand %4 {shape = [4, 3]} : (tensor<1x3xf32>) -> tensor<4x3xf32>
  func.return %1, %1, %5, %2, %3 : tensor<3x2xf32>, tensor<3x2xf32>, tensor<4x3xf32>, tensor<f32>, tensor<2x3xf32>
}
"""


def test_results_are_fresh_and_keep_numpys_layout():
    """A view of an input, one value twice, a broadcast view, a program constant: each result
    gets memory of its own, laid out as the CPU backend's copy (numpy's order K)."""
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    program = cb.CudaProgram(parse(RESULTS), **SMALL)
    dev = to_device(x)
    for call in range(2):
        res = program.run_arrays([dev])
        roots = [root for _, root in res]
        assert len({id(r) for r in roots}) == len(roots)      # no two results share memory
        wants = [x.T, x.T, np.broadcast_to(x[:1] * 2, (4, 3)), np.float32(2), x * 2]
        for k, ((arr, _), want) in enumerate(zip(res, wants)):
            want = np.array(want, order="K")                   # the CPU backend's copy
            assert tuple(arr.strides) == want.strides, k
            np.testing.assert_array_equal(to_host(arr), want)
        np.testing.assert_array_equal(to_host(dev), x)         # the input is untouched
        to_host(res[3][0])[...] = 0                            # (a host copy: no effect)
        mc.strided(res[3][1], 0, (1,), (4,)).copy_to_device(np.zeros(1, np.float32))
    # the constant is the program's own: writing to a returned copy did not change it


def test_keep_order_copy():
    host = np.arange(60, dtype=np.float64).reshape(3, 4, 5)
    dev = to_device(host)
    for name, attrs, fn in [("permute", dict(dims=(2, 0, 1)), lambda p: p.transpose(2, 0, 1)),
                            ("slice", dict(dim=1, start=0, stop=4, step=2), lambda p: p[:, ::2]),
                            ("expand", dict(shape=(2, 3, 4, 5)), lambda p: np.broadcast_to(p, (2, 3, 4, 5)))]:
        view, _ = view_array(dev, name, attrs)
        got, _ = cb.copy_keep_order(view)
        want = np.array(fn(host), order="K")
        assert tuple(got.strides) == want.strides, name
        np.testing.assert_array_equal(to_host(got), want)


def test_gather_index_out_of_range_raises_naming_the_op():
    x = minaot.randn(3, 4)
    f = minaot.aot_function(lambda x, i: x.gather(1, i), fw_compiler=on_device)
    good = minaot.tensor([[0, 3], [1, 0], [2, 2]])
    np.testing.assert_allclose(f(x, good).numpy(), np.take_along_axis(x.numpy(), good.numpy(), 1))
    for bad in (4, -1):         # negative indices are out of range too, as in PyTorch
        with pytest.raises(IndexError, match="gather: index out of range"):
            f(x, minaot.tensor([[0, bad], [1, 1], [2, 2]]))
            # on a GPU the error reaches the host asynchronously: raised by the call if it
            # arrived in time (a replayed call is quick), else at the next read
            minaot.cuda.synchronize()
        f(x, good)                              # the error code was reset


class _LateWord:
    """Patches :class:`minaot.cuda_errors.ErrorWord` so that the host does not see a code
    after the call (as on a busy GPU, whose kernels have not run yet) until ``arrived`` is
    set or the host waits."""
    arrived = False
    real_read = None

    @staticmethod
    def done(word):
        return _LateWord.arrived

    @staticmethod
    def read(word, wait):
        if wait or _LateWord.arrived:           # arrived: as if the kernels had finished
            return _LateWord.real_read(word, True)
        return 0


def test_an_index_error_found_late_is_raised_at_the_next_read_or_call(monkeypatch):
    from minaot.cuda_errors import ErrorWord
    monkeypatch.setattr(_LateWord, "real_read", ErrorWord.read)
    monkeypatch.setattr(ErrorWord, "done", _LateWord.done)
    monkeypatch.setattr(ErrorWord, "read", _LateWord.read)
    monkeypatch.setattr(_LateWord, "arrived", False)
    x = minaot.randn(3, 4).cuda()
    good = minaot.tensor([[0, 3], [1, 0], [2, 2]]).cuda()
    bad = minaot.tensor([[0, 4], [1, 1], [2, 2]]).cuda()
    f = minaot.compile(lambda x, i: x.gather(1, i) * 2)
    y = f(x, bad)                       # the GPU has not told the host yet: no error here
    with pytest.raises(IndexError, match=r"gather: index out of range \(inputs \(3, 4\), \(3, 2\)\)"
                       r".*earlier call"):
        y.cpu()                         # a read waits for the GPU, and raises its error
    want = np.take_along_axis(x.cpu().numpy(), good.cpu().numpy(), 1) * 2
    np.testing.assert_allclose(f(x, good).cpu().numpy(), want, rtol=1e-6)     # reset
    f(x, bad)
    _LateWord.arrived = True
    with pytest.raises(IndexError, match="earlier call"):
        f(x, good)                      # the next call raises before it launches anything
    np.testing.assert_allclose(f(x, good).cpu().numpy(), want, rtol=1e-6)
    with pytest.raises(IndexError, match=r"at loc\(.*\)$"):
        f(x, bad)                       # the copy arrived before the call ended: raised by it
    _LateWord.arrived = False
    f(x, bad)
    with pytest.raises(IndexError, match="earlier call"):
        minaot.cuda.synchronize()


def test_replayed_calls_match_eager():
    """From the third call with a geometry a program replays its recorded launches on a GPU
    (minaot/cuda_replay.py), as one CUDA graph (minaot/cuda_graph.py); new values, new
    memory, a new geometry and overlapping inputs must all give eager's results.  Under the
    simulator nothing is recorded."""
    def fn(x, w, b):
        h = F.gelu(x @ w + b, approximate="tanh")
        return F.layer_norm(h, (h.shape[-1],)), h.sum(0)

    f = minaot.compile(fn)
    rng = np.random.default_rng(0)
    kept = []                               # every call's inputs in memory of their own
    for shape in [(6, 5), (6, 5), (6, 5), (7, 5), (6, 5), (7, 5), (7, 5)]:
        x = rng.standard_normal(shape).astype(np.float32)
        w = rng.standard_normal((5, 3)).astype(np.float32)
        b = rng.standard_normal(3).astype(np.float32)
        kept.append([minaot.tensor(a).cuda() for a in (x, w, b)])
        got = f(*kept[-1])
        want = fn(*[minaot.tensor(a) for a in (x, w, b)])
        for g, e in zip(got, want):
            np.testing.assert_allclose(g.cpu().numpy(), e.numpy(), rtol=1e-5, atol=1e-5)
    programs = _programs(f)                 # one per shape: (6, 5) called 4 times, (7, 5) 3
    assert len(programs) == 2
    if config.ENABLE_CUDASIM:
        assert all(p.recordings is None and p.replays == 0 for p in programs)
    else:
        from minaot.cuda_replay import checking
        assert sorted(p.replays for p in programs) == ([3, 4] if checking() else [1, 2]), \
            [p.recording_failures for p in programs]
        from minaot import cuda_graph
        if cuda_graph.enabled():            # each replay launched its program's graph
            recordings = [r for p in programs for r in p.recordings.values()]
            graphs = [r.graph for r in recordings]
            assert all(isinstance(g, cuda_graph.Graph) for g in graphs), \
                [r.no_graph for r in recordings]
            assert sorted(g.launches for g in graphs) == sorted(p.replays for p in programs)
            assert all(len(g.execs) == g.launches for g in graphs)   # new memory each time
        before = sorted(p.replays for p in programs)
        buf = minaot.randn(60).cuda()           # inputs that share memory: the ordinary path
        x, w, b = buf[:30].view(6, 5), buf[15:30].view(5, 3), buf[27:30]
        for _ in range(2):
            got = f(x, w, b)
            want = fn(x.cpu(), w.cpu(), b.cpu())
            for g, e in zip(got, want):
                np.testing.assert_allclose(g.cpu().numpy(), e.numpy(), rtol=1e-5, atol=1e-5)
        assert sorted(p.replays for p in programs) == before


def _programs(f):
    """The CudaPrograms a ``minaot.compile``d function holds."""
    out = []
    for entry in f.cache.values():
        runner = getattr(entry, "runner", None)
        for p in ([runner.fw, runner._bw] if runner is not None else [entry.compiled]):
            if isinstance(p, cb.CudaProgram):
                out.append(p)
    return out


def test_an_op_without_a_device_implementation_is_named():
    g = minaot.trace(lambda x: x @ x, minaot.randn(3, 3))   # an mt graph: mt.matmul
    with pytest.raises(NotImplementedError, match="mt.matmul"):
        cb.CudaProgram(g)


# ---------------------------------------------------------------- 4. compiled functions on CUDA tensors
def cuda_copy(t):
    """``t`` on the GPU with the same values and requires_grad (a leaf)."""
    return t.detach().cuda().requires_grad_(t.requires_grad)


def assert_same(got, want, what=""):
    """A CUDA result equals a CPU one: device, shape, dtype, requires_grad and values."""
    assert got.is_cuda, f"{what}: not a CUDA tensor"
    assert got.shape == want.shape and got.dtype is want.dtype, (what, got.shape, want.shape)
    assert got.requires_grad == want.requires_grad, f"{what}: requires_grad"
    np.testing.assert_allclose(got.detach().cpu().numpy(), want.detach().numpy(), rtol=1e-5,
                               atol=1e-6, err_msg=what)


def test_compile_picks_the_cuda_backend_for_cuda_tensors():
    def f(x, b):
        return minaot.softmax(x * 2.0 + b, dim=1), (x - x.mean()).abs().sum(dim=0)

    x, b = minaot.randn(4, 8), minaot.randn(8)
    want = f(x, b)
    cf = minaot.compile(f)
    before = minaot.counters["cuda"]["graphs"]
    for _ in range(2):
        got = cf(x.cuda(), b.cuda())
        for k, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"output {k}")
    assert minaot.counters["cuda"]["graphs"] == before + 1 and len(cf.cache) == 1
    cpu = cf(x, b)                          # CPU tensors: a second entry, through numba
    assert not cpu[0].is_cuda and len(cf.cache) == 2
    got = minaot.aot_function(f)(x.cuda(), b.cuda())      # aot_function's default too
    assert_same(got[0], want[0])


def test_devices_that_do_not_fit_raise():
    from minaot._errors import DeviceError
    x = minaot.randn(3)
    with pytest.raises(DeviceError, match="argument 0 .* on cpu and tensor argument 1 .* on cuda"):
        minaot.compile(lambda a, b: a + b)(x, x.cuda())
    with pytest.raises(DeviceError, match="numba_compiler runs on cpu tensors, but the inputs are cuda"):
        minaot.compile(lambda a: a + 1, backend="numba")(x.cuda())
    with pytest.raises(DeviceError, match="cuda_compiler runs on cuda tensors"):
        minaot.compile(lambda a: a + 1, backend="cuda")(x)
    s = minaot.tensor(2.0)                   # a 0-d CPU tensor with CUDA ones: a scalar
    got = minaot.compile(lambda a, s: a * s)(x.cuda(), s)
    assert_same(got, x * s)


def test_input_mutation_views_and_metadata_on_the_device():
    def f(x, y):
        x.mul_(2.0)
        y.t_()
        return x.t(), x[1], y * 1.0

    ex, ey = minaot.randn(3, 4), minaot.randn(2, 3)
    cx, cy = ex.cuda(), ey.cuda()
    vx = cx._version
    want = f(ex, ey)
    got = minaot.compile(f, backend="cuda")(cx, cy)
    for k, (g, w) in enumerate(zip(got, want)):
        assert_same(g, w, f"output {k}")
    assert_same(cx, ex, "x afterwards")
    assert_same(cy, ey, "y afterwards")
    assert cx._version > vx
    assert cy.shape == (3, 2) and cy.stride() == ey.stride()
    for g, w in zip(got[:2], want[:2]):     # views of the caller's x, as in eager
        assert g._storage is cx._storage
        assert (g.stride(), g.storage_offset()) == (w.stride(), w.storage_offset())
    assert got[2]._storage is not cy._storage


def test_compiled_results_keep_the_eager_layout():
    """As ``torch.compile``: a compiled result has the strides its eager version has
    (``x.t() * 2`` column-major), with gradients through it; C-ordered results untouched."""
    def f(x, b):
        return x.t() * 2, (b.expand(3, 4) + x.t()).exp(), (x * 3).sum(1)

    ex, eb = minaot.randn(4, 3), minaot.randn(3, 1)
    cx = ex.cuda().requires_grad_()
    ex.requires_grad_()
    compiled = minaot.compile(f, backend="cuda")
    for call in range(2):                   # the second call is replayed on a GPU
        want, got = f(ex, eb), compiled(cx, eb.cuda())
        for k, (g, w) in enumerate(zip(got, want)):
            assert g.stride() == w.stride(), (call, k, g.stride(), w.stride())
            assert_same(g, w, f"call {call} output {k}")
    sum(t.sum() for t in got).backward()
    sum(t.sum() for t in want).backward()
    np.testing.assert_allclose(cx.grad.cpu().numpy(), ex.grad.numpy(), rtol=1e-5, atol=1e-5)


def _reinplace_cases():
    from minaot.optim.adam import _adam_step, _adam_step_on_device, _adam_steps_on_device

    def old_value_after_copy_in(a, b):
        s = a * 2
        a.copy_(b)
        return s + 1

    def transposed_read(a):
        a.copy_(a + a.t())
        return a.sum()

    def reduction_of_mutated(a):
        a.sub_(a.sum(dim=1, keepdim=True))
        return a * 1

    def view_read_after(a, b):
        row = a[1]
        a.mul_(2)
        b.add_(a)
        return row + 1, a

    def each_other(a, b):
        old_a = a * 1
        a.copy_(b * 2)
        b.copy_(old_a + 1)

    def broadcast(a, w):
        a.mul_(w).add_(1)
        return a.sum()

    r = np.random.default_rng(7)
    m = [r.standard_normal((4, 6)).astype(np.float32) for _ in range(4)]
    m[3] = np.abs(m[3])
    return {
        # (fn, input arrays, how many results are written in place)
        "adam": (lambda p, g, m_, v, s: _adam_step(p, g, m_, v, s, 0.9, 0.999, 1e-8),
                 m + [np.array([1e-3, 1.0], np.float32)], 3),
        "adam-capturable": (lambda p, g, m_, v, t: _adam_step_on_device(p, g, m_, v, t, 1e-3, 0.9,
                                                                        0.999, 1e-8),
                            m + [np.array(0.0)], 4),
        # two parameters: each 0-d step counter is written in place by one small kernel
        # (see fuse._merge_groups), so all eight results are written in place
        "adam-two-parameters": (
            lambda p, g, m_, v, t, q, h, mq, vq, tq: _adam_steps_on_device(
                [p, q], [g, h], [m_, mq], [v, vq], [t, tq], 1e-3, 0.9, 0.999, 1e-8, 0.0, False),
            m + [np.array(0.0)] + [a[0].copy() for a in m] + [np.array(3.0)], 8),
        "old-value-after-copy-in": (old_value_after_copy_in, m[:2], None),
        "transposed-read": (transposed_read, [m[0][:, :4].copy()], 0),
        "reduction-of-mutated": (reduction_of_mutated, m[:1], None),
        "view-read-after": (view_read_after, m[:2], None),
        "each-other": (each_other, m[:2], None),
        "broadcast": (broadcast, [m[0], m[1][0]], None),
    }


@pytest.mark.parametrize("case", list(_reinplace_cases()))
def test_reinplacing_on_the_device_matches_eager(case):
    """Reinplacing (minaot/reinplace.py) in the cuda backend: the new value of a mutated input
    is written into the caller's device memory when nothing reads the old value afterwards;
    outputs and every input afterwards equal eager, and the caller's memory is kept."""
    fn, arrays, n_inplace = _reinplace_cases()[case]
    programs = []

    def compiler(graph, example_inputs):
        programs.append(cb.CudaProgram(graph, **SMALL))
        return programs[-1]
    compiled = minaot.aot_function(fn, inference_compiler=compiler, fw_compiler=compiler)
    for _ in range(2):                      # the second call reuses the compiled entry
        eager = [minaot.tensor(a) for a in arrays]
        dev = [minaot.tensor(a).cuda() for a in arrays]
        pointers = [mc.pointer(t._data) for t in dev]
        want, got = fn(*eager), compiled(*dev)
        want = want if isinstance(want, tuple) else (want,)
        got = got if isinstance(got, tuple) else (got,)
        for k, (g, w) in enumerate(zip(got, want)):
            if w is not None:
                assert_same(g, w, f"output {k}")
        for k, (d, e, ptr) in enumerate(zip(dev, eager, pointers)):
            assert_same(d, e, f"input {k} afterwards")
            assert mc.pointer(d._data) == ptr, f"input {k} left its memory"
    if n_inplace is not None:
        assert len(programs[0].reinplaced) == n_inplace


def test_a_reinplaced_input_that_is_a_non_contiguous_view():
    base = minaot.randn(6, 8)
    eager = base.clone()
    dev = base.cuda()
    minaot.compile(lambda a: a.mul_(3), backend="cuda")(dev[:, ::2])
    eager[:, ::2].mul_(3)
    np.testing.assert_allclose(dev.cpu().numpy(), eager.numpy(), rtol=1e-6)


def test_saved_inputs_are_the_callers_device_tensors():
    """A saved input (a matmul operand) is the caller's CUDA tensor, not a device copy, and an
    in-place change before backward raises, as in eager (tests/test_joint.py on the CPU)."""
    def f(a, b):
        return (a @ b).relu().sum()

    a = minaot.randn(4, 5).cuda().requires_grad_()
    b = minaot.randn(5, 3).cuda().requires_grad_()
    ea = a.detach().cpu().requires_grad_()
    eb = b.detach().cpu().requires_grad_()
    cf = minaot.aot_function(f)
    out = cf(a, b)
    saved = [out.grad_fn.saved.items[j][0] for j in range(len(out.grad_fn.saved))]
    inputs = {mc.pointer(a._data), mc.pointer(b._data)}
    assert sum(mc.pointer(t._data) in inputs for t in saved) == 2
    out.backward()
    f(ea, eb).backward()
    assert_same(a.grad, ea.grad, "a.grad")
    assert_same(b.grad, eb.grad, "b.grad")
    out = cf(a, b)
    with minaot.no_grad():
        b.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()


def test_gradients_through_a_compiled_cuda_function():
    def f(x, w, b):
        return F.gelu(x @ w + b).sum(dim=1), (x @ w).amax()

    x, w, b = minaot.randn(5, 4), minaot.randn(4, 3, requires_grad=True), minaot.randn(3, requires_grad=True)
    cx, cw, cb_ = (cuda_copy(t) for t in (x, w, b))
    want = f(x, w, b)
    got = minaot.compile(f)(cx, cw, cb_)
    for k, (g, o) in enumerate(zip(got, want)):
        assert_same(g, o, f"output {k}")
    (want[0].sum() + want[1] * 3.0).backward()
    (got[0].sum() + got[1] * 3.0).backward()
    for name, (g, e) in {"w": (cw, w), "b": (cb_, b)}.items():
        assert g.grad.is_cuda
        np.testing.assert_allclose(g.grad.cpu().numpy(), e.grad.numpy(), rtol=1e-5, atol=1e-5,
                                   err_msg=name)


class MLP(minaot.nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = minaot.nn.Linear(6, 16)
        self.l2 = minaot.nn.Linear(16, 3)

    def forward(self, x, y):
        return F.cross_entropy(self.l2(F.gelu(self.l1(x))), y)


def train_alongside(eager, compiled, model, opt_e, opt_c, batches):
    """Optimizer steps of a CPU ``eager`` model and of ``compiled`` (``aot_module`` of
    ``model``, on the GPU) on the same ``(x, y)`` batches: at each step the loss is a CUDA
    tensor that requires grad and equals eager's, and every parameter of ``model`` and its
    gradient are CUDA tensors, the gradients equal to eager's."""
    for step, (x, y) in enumerate(batches):
        for opt in (opt_e, opt_c):
            opt.zero_grad()
        loss_e = eager(x, y)
        loss_e.backward()
        loss_c = compiled(x.cuda(), y.cuda())
        assert loss_c.is_cuda and loss_c.requires_grad
        loss_c.backward()
        np.testing.assert_allclose(loss_c.item(), loss_e.item(), rtol=1e-5, err_msg=f"step {step}")
        for (name, pe), pc in zip(eager.named_parameters(), model.parameters()):
            assert pc.is_cuda and pc.grad.is_cuda
            np.testing.assert_allclose(pc.grad.cpu().numpy(), pe.grad.numpy(), rtol=1e-4,
                                       atol=1e-5, err_msg=f"{name} at step {step}")
        opt_e.step()
        opt_c.step()


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adam-fused", "adam-fused-decay",
                                       "adamw-fused"])
def test_training_an_mlp_on_the_device_matches_cpu_eager(optimizer):
    """aot_module on a model moved to the GPU: parameters stay there (the same objects), the
    loss and the gradients are CUDA tensors, and a few optimizer steps track CPU eager (the
    fused optimizers: one compiled update of all the parameters on the GPU, against the
    unfused update on the CPU)."""
    minaot.manual_seed(0)
    eager = MLP()
    model = MLP()
    model.load_state_dict(eager.state_dict())
    model.cuda()
    params = list(model.parameters())
    compiled = minaot.aot_module(model)
    make = {"sgd": lambda ps, f: minaot.optim.SGD(ps, lr=0.1, momentum=0.9),
            "adam": lambda ps, f: minaot.optim.Adam(ps, lr=1e-2),
            "adam-fused": lambda ps, f: minaot.optim.Adam(ps, lr=1e-2, fused=f),
            "adam-fused-decay": lambda ps, f: minaot.optim.Adam(ps, lr=1e-2, weight_decay=0.1,
                                                                fused=f),
            "adamw-fused": lambda ps, f: minaot.optim.AdamW(ps, lr=1e-2, weight_decay=0.1,
                                                            fused=f)}[optimizer]
    opt_e, opt_c = make(eager.parameters(), False), make(compiled.parameters(), True)
    rng = np.random.default_rng(1)
    batches = [(minaot.tensor(rng.standard_normal((8, 6)), dtype=minaot.float32),
                minaot.tensor(rng.integers(0, 3, 8))) for _ in range(3)]
    train_alongside(eager, compiled, model, opt_e, opt_c, batches)
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    if optimizer.endswith("fused"):             # one compiled entry, one call per step
        assert len(opt_c._compiled_device.cache) == 1
    for (name, pe), pc in zip(eager.named_parameters(), model.parameters()):
        assert pc.is_cuda
        np.testing.assert_allclose(pc.detach().cpu().numpy(), pe.detach().numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=name)


class TinyCNN(minaot.nn.Module):
    """Convolution, BatchNorm2d (running statistics written back on the device), pools and
    padding: the composite ops of minaot/ops/conv.py and pool.py on the device."""

    def __init__(self):
        super().__init__()
        self.conv = minaot.nn.Conv2d(2, 4, 3, padding=1, groups=2)
        self.bn = minaot.nn.BatchNorm2d(4)
        self.conv1d = minaot.nn.Conv1d(4, 3, 2, stride=2, padding_mode="circular", padding=1)
        self.fc = minaot.nn.Linear(3, 2)

    def forward(self, x, y):
        h = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2, ceil_mode=True)      # (N, 4, 3, 2)
        h = F.avg_pool2d(F.pad(h, (1, 0, 0, 1), mode="reflect"), 2, 1, count_include_pad=False)
        h = self.conv1d(h.flatten(2))                                            # (N, 3, L)
        h = F.adaptive_avg_pool1d(h, 1).flatten(1) + F.adaptive_max_pool1d(h, 1).flatten(1)
        return F.cross_entropy(self.fc(h), y)


def test_training_a_small_cnn_on_the_device_matches_cpu_eager():
    """aot_module of a CNN on the GPU: loss, gradients and BatchNorm's running statistics
    equal CPU eager's for a few SGD steps."""
    minaot.manual_seed(0)
    eager, model = TinyCNN(), TinyCNN()
    model.load_state_dict(eager.state_dict())
    model.cuda()
    compiled = minaot.aot_module(model)
    opt_e = minaot.optim.SGD(eager.parameters(), lr=0.1)
    opt_c = minaot.optim.SGD(compiled.parameters(), lr=0.1)
    rng = np.random.default_rng(2)
    batches = [(minaot.tensor(rng.standard_normal((2, 2, 5, 4)), dtype=minaot.float32),
                minaot.tensor(rng.integers(0, 2, 2))) for _ in range(2)]
    train_alongside(eager, compiled, model, opt_e, opt_c, batches)
    for name in ("running_mean", "running_var"):
        got = getattr(model.bn, name)
        assert got.is_cuda
        np.testing.assert_allclose(got.cpu().numpy(), getattr(eager.bn, name).numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=name)
    assert int(model.bn.num_batches_tracked.cpu().item()) == 2


# ---------------------------------------------------------------- 5. random programs on CUDA tensors
def cuda_inputs(prog, dtype):
    """The program's inputs on the GPU, laid out as on the CPU: each base moved, then the
    caller's view of it taken again (so transposed and strided inputs stay so)."""
    tensors, bases = [], []
    for spec, base in zip(prog.inputs, prog.make_inputs(dtype)[1]):
        b = base.detach().cuda()
        t = b if spec.layout == "contiguous" else spec.view_of(b).detach()
        tensors.append(t.requires_grad_(spec.requires_grad))
        bases.append(b)
    return tensors, bases


@settings(PROPERTY, max_examples=EXAMPLES)
@given(prog=pure_programs(max_ops=6))
def test_random_pure_programs_with_cuda_tensors(prog):
    """Outputs, requires_grad and gradients of a random weighted sum equal CPU eager."""
    fn = prog.function()
    eager_in, _ = prog.make_inputs(minaot.float32)
    comp_in, _ = cuda_inputs(prog, minaot.float32)
    want = fn(*eager_in)
    got = minaot.compile(fn, partition_fn=minaot.min_cut_rematerialization_partition)(*comp_in)
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        assert_same(g, w, f"output {k}")
    rng = np.random.default_rng(prog.seed + 1)
    weights = [rng.standard_normal(w.shape) for w in want]
    loss_e = sum((w * minaot.tensor(c, dtype=w.dtype)).sum() for w, c in zip(want, weights))
    loss_c = sum((g * minaot.tensor(c, dtype=g.dtype).cuda()).sum() for g, c in zip(got, weights))
    wrt_e = [t for t in eager_in if t.requires_grad]
    wrt_c = [t for t in comp_in if t.requires_grad]
    if loss_e.requires_grad:
        ge = minaot.autograd.grad(loss_e, wrt_e, allow_unused=True)
        gc = minaot.autograd.grad(loss_c, wrt_c, allow_unused=True)
        for k, (a, b) in enumerate(zip(gc, ge)):
            assert (a is None) == (b is None), f"gradient {k}: {a} vs {b}"   # unused: None
            if a is not None:
                np.testing.assert_allclose(a.cpu().numpy(), b.numpy(), rtol=1e-4, atol=1e-4,
                                           err_msg=f"gradient {k}")


def _elements(t):
    """The set of element offsets ``t`` covers in its storage (tiny tensors)."""
    idx = np.indices(t.shape).reshape(t.ndim, -1) if t.ndim else np.zeros((0, 1), int)
    return set((t.storage_offset() + np.asarray(t.stride()) @ idx).tolist()) if t.numel() else set()


def _shares(a, b):
    return a._storage is b._storage and bool(_elements(a) & _elements(b))


@settings(PROPERTY, max_examples=EXAMPLES)
@given(prog=inplace_programs())
def test_random_inplace_programs_with_cuda_tensors(prog):
    """Mutations of inputs and views under no_grad: outputs, the caller's inputs and the memory
    around them, aliasing between outputs and inputs, and version bumps equal CPU eager."""
    fn = prog.function()
    eager_in, eager_bases = prog.make_inputs(minaot.float64)
    before = [t._version for t in eager_in]
    with minaot.no_grad():
        want = fn(*eager_in)
    bumped = [t._version != v for t, v in zip(eager_in, before)]
    cf = minaot.compile(fn)
    for call in ("first call", "cache hit"):
        comp_in, comp_bases = cuda_inputs(prog, minaot.float64)
        before = [t._version for t in comp_in]
        with minaot.no_grad():
            got = cf(*comp_in)
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{call}: output {i}")
        for j, (c, e) in enumerate(zip(comp_in, eager_in)):
            assert (c.shape, c.stride(), c.storage_offset()) == \
                (e.shape, e.stride(), e.storage_offset()), f"{call}: input {j} metadata"
            assert_same(c, e, f"{call}: input {j} afterwards")
            assert (c._version != before[j]) == bumped[j], f"{call}: input {j} version"
        for j, (c, e) in enumerate(zip(comp_bases, eager_bases)):
            assert_same(c, e, f"{call}: memory around input {j}")
        for i, (g, w) in enumerate(zip(got, want)):
            for j, (c, e) in enumerate(zip(comp_in, eager_in)):
                assert (g is c) == (w is e), f"{call}: output {i} is input {j}"
                assert _shares(g, c) == _shares(w, e), f"{call}: output {i} shares input {j}"
            for k in range(i):
                assert _shares(g, got[k]) == _shares(w, want[k]), f"{call}: outputs {k}, {i}"


def test_advanced_indexing_and_bitwise_ops_on_the_device():
    """x[idx], x[:, idx], x[mask], x[mask] = v and & | on CUDA tensors, eager and compiled,
    against numpy."""
    rng = np.random.default_rng(3)
    xn = rng.standard_normal((4, 5)).astype(np.float32)

    def f(x, i):
        x[(x < -1) | (x > 1.5)] = 1.0
        return x[i] * 2, x[:, i.clamp(0, 4)]
    ref = xn.copy()
    ref[(ref < -1) | (ref > 1.5)] = 1.0
    for fn in (f, minaot.compile(f)):
        x, i = minaot.tensor(xn.copy()).cuda(), minaot.tensor([0, -1, 2]).cuda()
        a, b = fn(x, i)
        assert a.is_cuda and b.is_cuda
        np.testing.assert_allclose(a.cpu().numpy(), ref[[0, -1, 2]] * 2)
        np.testing.assert_allclose(b.cpu().numpy(), ref[:, [0, 0, 2]])
        np.testing.assert_allclose(x.cpu().numpy(), ref)
        np.testing.assert_allclose(x[x > 0].cpu().numpy(), ref[ref > 0])
