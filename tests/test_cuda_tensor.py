"""CUDA tensors: storage, transfers, views, in-place ops, every registry op eagerly on the
device, autograd, the tiled matmul kernel, modules and optimizers, against the CPU (numpy)
as the oracle.

Where this process can run CUDA kernels (a GPU, or Numba's simulator switched on with
``NUMBA_ENABLE_CUDASIM=1`` before Numba was imported) the tests run here.  Otherwise the
one test collected runs this file again in a fresh process with the simulator on, and
fails (never skips) if that process cannot run it.  On a GPU machine:
``python -m pytest tests/test_cuda_tensor.py`` runs everything on the GPU.  The simulator
runs one Python thread per CUDA thread, so shapes stay tiny.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import minaot
import minaot.nn as nn
import minaot.nn.functional as F
from minaot.dispatch import dispatch
from minaot.testing import assert_close, op_samples, ops_with_samples, sample_to_tensors

pytestmark = pytest.mark.cuda


def _target():
    from numba import config
    if config.ENABLE_CUDASIM:
        return "simulator"
    return "gpu" if minaot.cuda.is_available() else None


TARGET = _target()
ON_DEVICE = TARGET is not None
if TARGET == "simulator":
    sys.setswitchinterval(1e-4)         # the simulator's threads hand over faster

R = np.random.default_rng(0)


def cpu_and_cuda(*shape, dtype=np.float32):
    x = R.standard_normal(shape).astype(dtype)
    return minaot.tensor(x), minaot.tensor(x, device="cuda")


def same(got, want, **tol):
    """``got`` (CUDA) has ``want``'s (CPU) values, shape and dtype."""
    assert got.device == "cuda", got.device
    assert got.dtype is want.dtype, (got.dtype, want.dtype)
    assert_close(got.cpu(), want, **tol)


# ------------------------------------------------------------------ no CUDA here: rerun
if not ON_DEVICE:
    def test_cuda_tensor_suite_under_the_simulator():
        env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               os.path.abspath(__file__)], cwd=os.path.dirname(os.path.dirname(
                                   os.path.abspath(__file__))), env=env, capture_output=True,
                              text=True, timeout=900)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-6000:]
        assert re.search(r"\d+ passed", out) and not re.search(r"skipped|deselected|error", out), out

    def test_cuda_device_without_gpu_or_simulator_says_what_is_missing():
        from minaot.codegen.cuda_runtime import CudaUnavailableError
        assert not minaot.cuda.is_available() and minaot.cuda.device_count() == 0
        with pytest.raises(CudaUnavailableError, match="NUMBA_ENABLE_CUDASIM=1"):
            minaot.zeros(2, device="cuda")
        with pytest.raises(CudaUnavailableError):
            minaot.ones(3).cuda()


# ------------------------------------------------------------------ creation and transfers
class TestCreationAndTransfers:
    __test__ = ON_DEVICE

    def test_is_available(self):
        assert minaot.cuda.is_available() and minaot.cuda.device_count() >= 1
        assert minaot.cuda.is_simulator() == (TARGET == "simulator")

    @pytest.mark.parametrize("value, dtype", [
        (2.5, minaot.float32), (-0.0, minaot.float32), (0.0, minaot.float64),
        (1.0, minaot.float64), (-1, minaot.int64), (5, minaot.int64), (2**40 + 3, minaot.int64),
        (True, minaot.bool), (False, minaot.bool), (float("nan"), minaot.float32),
        (float("-inf"), minaot.float64)])
    def test_full_by_memset_or_kernel(self, value, dtype):
        """``full`` on a GPU fills by a driver memset where the value's bytes repeat every 4
        bytes (2.5 f32, 0.0, -1, True), else by a copy kernel (1.0 f64, 5 i64): the same
        values either way, every element, odd sizes included."""
        for shape in [(), (1,), (3, 5), (1027,)]:
            got = minaot.full(shape, value, dtype=dtype, device="cuda")
            want = np.full(shape, value, dtype=dtype.np)
            assert got.dtype is dtype and got.shape == want.shape
            np.testing.assert_array_equal(got.cpu().numpy(), want)
            if dtype.is_floating_point:
                assert (np.signbit(got.cpu().numpy()) == np.signbit(want)).all()

    def test_creation_functions_take_device(self):
        c = dict(device="cuda")
        pairs = [(minaot.zeros(2, 3, **c), minaot.zeros(2, 3)),
                 (minaot.ones(4, dtype=minaot.float64, **c), minaot.ones(4, dtype=minaot.float64)),
                 (minaot.full((2, 2), 7, **c), minaot.full((2, 2), 7)),
                 (minaot.arange(5, **c), minaot.arange(5)),
                 (minaot.arange(0.5, 2.0, 0.5, **c), minaot.arange(0.5, 2.0, 0.5)),
                 (minaot.tensor([[1, 2], [3, 4]], **c), minaot.tensor([[1, 2], [3, 4]])),
                 (minaot.tensor(2.5, **c), minaot.tensor(2.5)),
                 (minaot.as_tensor(np.eye(2), **c), minaot.as_tensor(np.eye(2)))]
        like = minaot.ones(2, 3, device="cuda")
        pairs += [(minaot.zeros_like(like), minaot.zeros(2, 3)),
                  (minaot.ones_like(like), minaot.ones(2, 3)),
                  (minaot.full_like(like, 3.0), minaot.full((2, 3), 3.0))]
        for got, want in pairs:
            same(got, want)
        e = minaot.empty_like(like)
        assert e.device == "cuda" and e.shape == (2, 3) and e.dtype is minaot.float32
        for make in (minaot.rand, minaot.randn):
            minaot.manual_seed(3)
            want = make(3, 4)
            minaot.manual_seed(3)
            got = make(3, 4, device="cuda")
            same(got, want)                     # drawn on the host: the same numbers
        r = minaot.randn_like(like)
        assert r.device == "cuda" and r.shape == (2, 3)
        g = minaot.zeros(2, device="cuda", requires_grad=True)
        assert g.is_leaf and g.requires_grad and g.device == "cuda"

    @pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
    def test_round_trips(self, dtype):
        for shape in [(), (0,), (5,), (2, 3, 4)]:
            host = np.asarray(R.standard_normal(shape) * 3).astype(dtype)
            t = minaot.tensor(host)
            g = t.to("cuda")
            assert g.device == "cuda" and g.is_cuda and g.shape == shape and g.dtype is t.dtype
            assert g.cuda() is g and t.cpu() is t
            back = g.cpu()
            assert back.device == "cpu" and back.is_contiguous()
            np.testing.assert_array_equal(back.numpy(), host)
            back.numpy()[...] = 1                                  # a copy: g is unchanged
            np.testing.assert_array_equal(g.cpu().numpy(), host)

    def test_transfer_of_views_and_dtypes(self):
        x, _ = cpu_and_cuda(3, 4)
        g = x.t().cuda()                        # a non-contiguous CPU view
        np.testing.assert_array_equal(g.cpu().numpy(), x.t().numpy())
        back = g[:, 1:3].cpu()                  # a non-contiguous GPU view
        np.testing.assert_array_equal(back.numpy(), x.t().numpy()[:, 1:3])
        h = x.to("cuda", minaot.float64)
        assert h.device == "cuda" and h.dtype is minaot.float64
        assert x.to(device="cuda").device == "cuda"
        assert minaot.tensor(g).device == "cpu"     # tensor(data) copies to the CPU

    def test_host_only_conversions(self):
        _, g = cpu_and_cuda(2, 3)
        with pytest.raises(TypeError, match=r"\.cpu\(\)"):
            g.numpy()
        with pytest.raises(TypeError, match=r"\.cpu\(\)"):
            np.asarray(g)
        assert g.tolist() == g.cpu().tolist()
        assert g[1, 2].item() == g.cpu().numpy()[1, 2]
        assert "device='cuda'" in repr(g)

    def test_gradient_flows_back_through_moves(self):
        x = minaot.tensor(R.standard_normal((2, 3)), requires_grad=True)
        y = (x.cuda() * 3).exp().sum()
        assert y.device == "cuda" and y.grad_fn is not None
        y.backward()
        assert x.grad.device == "cpu"
        assert_close(x.grad, 3 * np.exp(3 * x.detach().numpy()))
        w = minaot.tensor([1.0, 2.0], device="cuda", requires_grad=True)
        (w.cpu() ** 2).sum().backward()
        assert w.grad.device == "cuda"
        np.testing.assert_allclose(w.grad.cpu().numpy(), [2.0, 4.0])


# ------------------------------------------------------------------ the caching allocator
class TestCachingAllocator:
    __test__ = ON_DEVICE

    def test_round_size(self):
        from minaot.cuda import round_size
        assert [round_size(n) for n in (1, 512, 513, 1 << 20)] == [512, 512, 1024, 1 << 20]
        assert round_size((1 << 20) + 1) == 2 << 20 and round_size(5 << 20) == 6 << 20

    def test_a_freed_block_is_reused_and_a_live_one_is_not(self):
        import gc
        mc = minaot.cuda
        gc.collect()
        a = minaot.zeros(1000, device="cuda")
        pa = a.data_ptr()
        b = minaot.zeros(1000, device="cuda")
        assert b.data_ptr() != pa                       # a is alive: its block is not reused
        inuse = mc.memory_allocated()
        assert inuse >= 2 * 4000 and mc.memory_reserved() >= inuse
        del a
        gc.collect()
        assert mc.memory_allocated() == inuse - 4096    # 4000 bytes: a block of 4096
        c = minaot.ones(1000, device="cuda")            # same rounded size: a's block again
        assert c.data_ptr() == pa
        np.testing.assert_array_equal(c.cpu().numpy(), np.ones(1000, np.float32))
        np.testing.assert_array_equal(b.cpu().numpy(), np.zeros(1000, np.float32))

    def test_a_view_keeps_its_block(self):
        import gc
        gc.collect()
        x = minaot.arange(12.0, device="cuda")
        ptr = x.data_ptr()
        v = x.reshape(3, 4)[1:, ::2].t()                # a view of a view of x
        del x
        gc.collect()
        others = [minaot.full((12,), 7.0, device="cuda", dtype=minaot.float64) for _ in range(4)]
        assert all(o.data_ptr() != ptr for o in others)     # x's block is still v's memory
        np.testing.assert_array_equal(v.cpu().numpy(), np.arange(12.0).reshape(3, 4)[1:, ::2].T)
        del v, others
        gc.collect()                                    # now five free blocks of that size
        again = [minaot.zeros(12, device="cuda", dtype=minaot.float64) for _ in range(5)]
        assert ptr in [a.data_ptr() for a in again]

    def test_programs_reuse_their_intermediates(self):
        import gc
        mc = minaot.cuda
        f = minaot.compile(lambda x: (x.exp() @ x.t()).sum(0) + 1.0)
        x = minaot.tensor(R.standard_normal((8, 8)).astype(np.float32), device="cuda")
        want = f(x).cpu().numpy()
        gc.collect()
        reserved = mc.memory_reserved()
        for _ in range(3):
            np.testing.assert_allclose(f(x).cpu().numpy(), want, rtol=1e-6)
        gc.collect()
        assert mc.memory_reserved() == reserved         # every call found its blocks in the pool

    def test_empty_cache_releases_free_blocks_only(self):
        import gc
        mc = minaot.cuda
        keep = minaot.ones(3000, device="cuda")
        drop = minaot.ones(5000, device="cuda")
        del drop
        gc.collect()
        mc.empty_cache()
        assert mc.memory_reserved() == mc.memory_allocated() > 0
        np.testing.assert_array_equal(keep.cpu().numpy(), np.ones(3000, np.float32))

    def test_an_allocation_that_runs_out_of_memory_releases_the_pool_once(self):
        from minaot.cuda import CachingAllocator
        made, fail = [], [False]

        class Block:                    # device memory's stand-in: an address
            def __init__(self, size):
                self.device_pointer = 4096 * (1 + len(made))

        def new_block(size):
            if fail[0]:
                fail[0] = False
                raise RuntimeError("cuMemAlloc results in CUDA_ERROR_OUT_OF_MEMORY")
            made.append(size)
            return Block(size)
        pool = CachingAllocator(new_block)
        blk, size = pool.take(100)
        pool.give(blk, size)
        assert pool.reserved == 512 and pool.allocated == 0
        fail[0] = True
        blk2, size2 = pool.take(5000)                   # fails, releases the free block, retries
        assert size2 == 5120 and pool.reserved == 5120 and pool.free == {}
        fail[0] = True
        with pytest.raises(RuntimeError, match="OUT_OF_MEMORY"):
            pool.take(9000)                             # nothing free to release: the error
        assert made == [512, 5120]


# ------------------------------------------------------------------ views and in-place ops
VIEWS = [("t", lambda t: t.t()), ("row", lambda t: t[1]), ("slice", lambda t: t[:, 1:4:2]),
         ("unsqueeze", lambda t: t.unsqueeze(0)), ("view", lambda t: t.view(2, 2, 5)),
         ("permute", lambda t: t.view(4, 5, 1).permute(2, 0, 1)),
         ("expand", lambda t: t[:, :1].expand(4, 3)), ("narrow", lambda t: t.narrow(1, 2, 2)),
         ("squeeze", lambda t: t[:1].squeeze(0)), ("flatten", lambda t: t.flatten()),
         ("detach", lambda t: t.detach())]


class TestViews:
    __test__ = ON_DEVICE

    @pytest.mark.parametrize("name,fn", VIEWS, ids=[v[0] for v in VIEWS])
    def test_views_share_storage(self, name, fn):
        x, g = cpu_and_cuda(4, 5)
        vx, vg = fn(x), fn(g)
        assert vg._storage is g._storage
        assert (vg.shape, vg.stride(), vg.storage_offset()) == (vx.shape, vx.stride(), vx.storage_offset())
        np.testing.assert_array_equal(vg.cpu().numpy(), vx.numpy())
        if name != "expand":                    # writes through the view reach the base
            vx.mul_(10)
            vg.mul_(10)
            np.testing.assert_array_equal(g.cpu().numpy(), x.numpy())

    @pytest.mark.parametrize("name,fn", VIEWS, ids=[v[0] for v in VIEWS])
    def test_clone_keeps_the_memory_order_and_contiguous_makes_c_order(self, name, fn):
        """``clone()`` is PyTorch's ``preserve_format``: the copy of ``x.t()`` is
        column-major, as on the CPU; ``contiguous()`` copies into C order."""
        x, g = cpu_and_cuda(4, 5)
        assert fn(g).clone()._storage is not g._storage
        for a, b in ((fn(x).clone(), fn(g).clone()), (fn(x).contiguous(), fn(g).contiguous())):
            assert b.stride() == a.stride()
            np.testing.assert_array_equal(b.cpu().numpy(), a.numpy())
        x3, g3 = cpu_and_cuda(3, 4, 5)
        for perm in ((1, 0, 2), (2, 1, 0), (0, 2, 1), (2, 0, 1)):
            a, b = x3.permute(*perm).clone(), g3.permute(*perm).clone()
            assert b.stride() == a.stride()
            np.testing.assert_array_equal(b.cpu().numpy(), a.numpy())

    def test_pointwise_results_take_all_operands_memory_order(self):
        """TensorIterator's rule over every operand (the CPU's, ``minaot.layout``), not the
        first full-shape one's: a broadcast first operand leaves the order to the others."""
        x, g = cpu_and_cuda(3, 1)
        y, h = cpu_and_cuda(4, 3)
        z, k = cpu_and_cuda(3, 8)
        cases = [lambda a, b, c: a.expand(3, 4) + b.t(), lambda a, b, c: b.t() + a,
                 lambda a, b, c: c[:, ::2] + b.t(), lambda a, b, c: b.t() * 2,
                 lambda a, b, c: (a * b.t()).exp(), lambda a, b, c: b.t()[::2].clone()]
        for n, f in enumerate(cases):
            want, got = f(x, y, z), f(g, h, k)
            assert got.stride() == want.stride(), n
            np.testing.assert_allclose(got.cpu().numpy(), want.numpy(), rtol=1e-6)

    def test_setitem_and_version(self):
        x, g = cpu_and_cuda(3, 4)
        v = g._version
        g[1] = 5.0
        x[1] = 5.0
        g[:, 2] = minaot.tensor([7.0, 8.0, 9.0], device="cuda")
        x[:, 2] = minaot.tensor([7.0, 8.0, 9.0])
        g[0, :2] = minaot.tensor([1.5, 2.5])    # copy_ from the CPU
        x[0, :2] = minaot.tensor([1.5, 2.5])
        assert g._version > v
        np.testing.assert_array_equal(g.cpu().numpy(), x.numpy())

    def test_reshape_copies_only_when_numpy_would(self):
        x, g = cpu_and_cuda(3, 4)
        r = g.t().reshape(12)
        assert r._storage is not g._storage
        np.testing.assert_array_equal(r.cpu().numpy(), x.t().reshape(12).numpy())
        assert g.reshape(2, 6)._storage is g._storage
        with pytest.raises(RuntimeError, match="view size"):
            g.t().view(12)
        c = g.t().contiguous()
        assert c.is_contiguous() and c._storage is not g._storage
        assert g.contiguous() is g

    def test_cuda_array_interface(self):
        _, g = cpu_and_cuda(3, 4)
        cai = g.__cuda_array_interface__
        assert cai["shape"] == (3, 4) and cai["strides"] is None and cai["typestr"] == "<f4"
        assert cai["data"][0] == g.data_ptr() == g._storage.data_ptr() and cai["version"] == 3
        v = g.t()[1:]
        cai = v.__cuda_array_interface__
        assert cai["strides"] == (4, 16) and cai["data"][0] == g.data_ptr() + 4 * v.storage_offset()
        with pytest.raises(RuntimeError, match="requires grad"):
            g.clone().requires_grad_().__cuda_array_interface__
        assert not hasattr(minaot.ones(2), "__cuda_array_interface__")
        if TARGET == "gpu":                     # another library reads it without a copy
            from numba import cuda
            arr = cuda.as_cuda_array(v)
            arr[0, 0] = 42.0                    # v[0, 0] is g.t()[1, 0], which is g[0, 1]
            assert g[0, 1].item() == 42.0

    @pytest.mark.parametrize("op", ["add_", "sub_", "mul_", "div_", "clamp_", "relu_", "zero_",
                                    "fill_", "copy_", "exp_", "neg_", "pow_"])
    def test_inplace_ops(self, op):
        x, g = cpu_and_cuda(3, 4)
        args = {"add_": (2.0,), "sub_": (minaot.tensor([1.0, 2, 3]),), "mul_": (-3,),
                "div_": (4.0,), "clamp_": (-0.5, 0.5), "relu_": (), "zero_": (), "fill_": (1.5,),
                "copy_": (minaot.tensor([[1.0], [2], [3], [4]]),), "exp_": (), "neg_": (),
                "pow_": (2,)}[op]                 # the targets are (4, 3): transposed views
        gargs = [a.cuda() if isinstance(a, minaot.Tensor) else a for a in args]
        for target, a in ((x.t(), args), (g.t(), gargs)):   # through a transposed view
            before = target._version
            assert getattr(target, op)(*a) is target
            assert target._version == before + 1
        np.testing.assert_allclose(g.cpu().numpy(), x.numpy(), rtol=1e-6)


# ------------------------------------------------------------------ every op of the registry
SKIP_KINDS = ("creation",)
CASES = [(op, i, s) for op in ops_with_samples() if op.kind not in SKIP_KINDS
         and op.name not in ("rand", "randn") for i, s in enumerate(op_samples(op))]
GRAD_CASES = [(op, i, s) for op, i, s in CASES if op.differentiable or
              (op.composite and op.kind != "random")]
FORWARD_DTYPES = [minaot.float32] if TARGET == "gpu" else [minaot.float32, minaot.float64]


def _cuda_args(args, requires_grad=False):
    return [a.detach().cuda().requires_grad_(requires_grad and a.dtype.is_floating_point)
            if isinstance(a, minaot.Tensor) else a for a in args]


class TestOps:
    __test__ = ON_DEVICE

    @pytest.mark.parametrize("dtype", FORWARD_DTYPES, ids=lambda d: d.name)
    @pytest.mark.parametrize("op,i,sample", CASES, ids=[f"{op.name}-{i}" for op, i, s in CASES])
    def test_forward_equals_cpu(self, op, i, sample, dtype):
        args = sample_to_tensors(sample, dtype=dtype)
        minaot.manual_seed(0)
        want = dispatch(op.name, *args, **sample.kwargs)
        minaot.manual_seed(0)
        got = dispatch(op.name, *_cuda_args(args), **sample.kwargs)
        wants = want if isinstance(want, tuple) else (want,)
        gots = got if isinstance(got, tuple) else (got,)
        for g, w in zip(gots, wants):
            same(g, w, rtol=1e-5, atol=1e-5)

    @pytest.mark.parametrize("op,i,sample", GRAD_CASES, ids=[f"{op.name}-{i}" for op, i, s in GRAD_CASES])
    def test_gradients_equal_cpu(self, op, i, sample):
        args = sample_to_tensors(sample, dtype=minaot.float64, requires_grad=True)
        grads = []
        for a in (args, _cuda_args(args, requires_grad=True)):
            out = dispatch(op.name, *a, **sample.kwargs)
            outs = [o for o in (out if isinstance(out, tuple) else (out,)) if o.requires_grad]
            if not outs:                        # an integer result (to int64): no gradient
                assert out.device == a[0].device
                return
            weights = [minaot.tensor(np.linspace(-1, 1, o.numel()).reshape(o.shape), device=o.device)
                       for o in outs]
            sum((o * w).sum() for o, w in zip(outs, weights)).backward()
            grads.append([t.grad for t in a if isinstance(t, minaot.Tensor) and t.requires_grad])
        for want, got in zip(*grads):
            assert (want is None) == (got is None)
            if want is not None:
                same(got, want, rtol=1e-7, atol=1e-7)

    def test_backward_through_a_chain(self):
        rng = np.random.default_rng(1)
        data = [rng.standard_normal(s) for s in [(6, 5), (5, 8), (8,), (8,), (8, 3)]]
        target = np.array([0, 2, 1, 1, 0, 2])
        grads = []
        for dev in ("cpu", "cuda"):
            x, w1, b1, g1, w2 = [minaot.tensor(d, dtype=minaot.float64, device=dev, requires_grad=True)
                                 for d in data]
            h = F.gelu(x @ w1 + b1)
            h = F.layer_norm(h, (8,), weight=g1)
            logits = (h.tanh() @ w2).softmax(dim=1).log()
            loss = F.nll_loss(logits, minaot.tensor(target, device=dev)) + (h ** 2).mean()
            loss.backward()
            grads.append([loss] + [t.grad for t in (x, w1, b1, g1, w2)])
        for want, got in zip(*grads):
            same(got, want, rtol=1e-9, atol=1e-9)

    def test_mixed_devices_raise_naming_op_and_devices(self):
        x, g = cpu_and_cuda(2, 3)
        with pytest.raises(minaot._errors.DeviceError) as info:
            g + x
        text = str(info.value)
        assert text.startswith("add: ") and "cuda and cpu" in text and "(2, 3)" in text
        assert "test_cuda_tensor.py" in text            # the user's line
        with pytest.raises(minaot._errors.DeviceError, match=r"^matmul: .*cpu and cuda"):
            x @ g.t()
        same(g * minaot.tensor(2.0), x * 2.0)            # a 0-d CPU tensor may join (PyTorch)

    def test_python_scalars_are_kernel_inputs(self):
        _, g = cpu_and_cuda(3, 4)
        g * 1.5
        misses = minaot.counters["cuda_eager"]["program_misses"]
        for k in range(3):
            same(g * (k + 0.25), minaot.tensor(g.cpu().numpy() * (k + 0.25)))
        assert minaot.counters["cuda_eager"]["program_misses"] == misses

    def test_small_launches_are_quiet_without_silencing_the_users_kernels(self):
        # (matched by message: numba-cuda's NumbaPerformanceWarning is a class of its own,
        # not numba.core.errors' one)
        import warnings
        from numba import cuda
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            minaot.ones(3, device="cuda") * 2.0          # a one-block eager op
            minaot.ones(5, device="cuda").sum()          # a new geometry: Numba's own call
        assert not [w for w in seen if "under-utilization" in str(w.message)], seen
        assert not [f for f in warnings.filters if f[1] and "under-utilization" in f[1].pattern]
        if TARGET == "gpu":                 # the simulator never gives this warning
            @cuda.jit
            def users_kernel(a):
                a[cuda.grid(1)] = 1.0
            with pytest.warns(Warning, match="under-utilization"):
                users_kernel[1, 1](cuda.device_array(1, np.float32))

    def test_an_op_without_a_cuda_implementation_says_so(self):
        from minaot.cuda_eager import _library_step
        from minaot.ir import Operation
        with pytest.raises(NotImplementedError, match=r"^my_op: the op custom_vjp has no CUDA"):
            _library_step(Operation("prim.custom_vjp"), "my_op")

    def test_reductions_and_rows_on_wider_shapes(self):
        x, g = cpu_and_cuda(5, 33)                      # rows long enough for a block each
        for fn in (lambda t: t.softmax(dim=1), lambda t: t.sum(dim=0), lambda t: t.amax(),
                   lambda t: F.layer_norm(t, (33,)), lambda t: t.var(dim=1),
                   lambda t: t.t().logsumexp(dim=0), lambda t: t.argmax(dim=1)):
            same(fn(g), fn(x), rtol=1e-5, atol=1e-5)

    def test_line_ops_on_strided_empty_and_0d_inputs(self):
        """cumsum's one-thread-per-line kernel on transposed, sliced, empty and 0-d inputs,
        forward and from the end (its gradient), equals the CPU exactly."""
        x, g = cpu_and_cuda(3, 4, 5)
        for fn in (lambda t: t.cumsum(0), lambda t: t.transpose(0, 2).cumsum(1),
                   lambda t: t[:, 1::2].cumsum(-1), lambda t: t.long().cumsum(2),
                   lambda t: t[1, 2, 3].cumsum(0), lambda t: t[:, :0].cumsum(1),
                   lambda t: (t > 0).cumsum(0)):
            same(fn(g), fn(x), rtol=0, atol=0)
        xs = x.detach().requires_grad_()
        gs = g.detach().requires_grad_()
        w = minaot.tensor(R.standard_normal((3, 4, 5)).astype(np.float32))
        for t, ww in ((xs, w), (gs, w.cuda())):
            (t.transpose(0, 1).cumsum(0).transpose(0, 1) * ww).sum().backward()
        same(gs.grad, xs.grad, rtol=0, atol=0)

    def test_sort_argsort_topk_on_strided_inputs_with_ties(self):
        """argsort's merge-sort kernel: lines of 1 to 11 elements (0 to 4 merge passes, so
        the result starts in either buffer), ties and NaN (stable, NaN largest), strided
        inputs; sort and topk values and gradients, eager and compiled, equal the CPU."""
        a = R.integers(0, 4, (11, 3, 5)).astype(np.float32)
        a[2, 1, 3] = a[7, 1, 3] = a[0, 0, 0] = np.nan
        x, g = minaot.tensor(a), minaot.tensor(a, device="cuda")
        for n in range(1, 12):
            for desc in (False, True):
                same(g[:n].argsort(0, descending=desc), x[:n].argsort(0, descending=desc))
        for fn in (lambda t: t.transpose(0, 2).sort(2, descending=True),
                   lambda t: t[:, 1::2].sort(0), lambda t: minaot.where(t == t, t, 9.0).long().sort(1),
                   lambda t: (t > 1).sort(0, descending=True), lambda t: t[1, 1, 1].sort(),
                   lambda t: t.topk(4, dim=0), lambda t: t.topk(2, dim=1, largest=False),
                   lambda t: t[:, :0].sort(1)):
            for got, want in zip(fn(g), fn(x)):
                same(got, want, rtol=0, atol=0)
        w = minaot.tensor(R.standard_normal((3, 3, 5)).astype(np.float32))
        grads = []
        for t, ww in ((x, w), (g, w.cuda())):
            f = lambda t, ww: ((t.topk(3, dim=0).values * ww).sum()      # noqa: E731
                               + (t.sort(2).values * t.detach()).sum())
            for run in (f, minaot.compile(f)):
                leaf = t.detach().requires_grad_()
                run(leaf, ww).backward()
                grads.append(leaf.grad)
        same(grads[2], grads[0], rtol=1e-6, atol=1e-6)
        same(grads[3], grads[0], rtol=1e-6, atol=1e-6)

    def test_more_line_kernels_on_strided_inputs(self):
        """cumprod, logcumsumexp, cumargmax/cumargmin (behind cummax/cummin) and
        searchsorted on transposed, sliced, 0-d and empty inputs, with ties, zeros, NaN and
        infinities, equal the CPU; the compositions on them (median, mode, quantile, histc)
        eagerly and compiled, with gradients; unique and bincount run on the host and come
        back to the device."""
        a = R.integers(-2, 3, (4, 3, 5)).astype(np.float32)
        a[1, 2, 3] = a[3, 0, 0] = np.nan
        a[2, 1, 1] = np.inf
        x, g = minaot.tensor(a), minaot.tensor(a, device="cuda")
        ints = lambda t: minaot.where(t.isfinite(), t, 0.0).long()     # noqa: E731
        for fn in (lambda t: t.cumprod(0), lambda t: t.transpose(0, 2).cumprod(1),
                   lambda t: ints(t).cumprod(2), lambda t: t[1, 2, 3].cumprod(0),
                   lambda t: t[:, :0].cumprod(1), lambda t: t.logcumsumexp(2),
                   lambda t: t[:, 1::2].logcumsumexp(0), lambda t: t.cummax(0),
                   lambda t: t.transpose(0, 1).cummin(2), lambda t: ints(t).cummax(1),
                   lambda t: (t > 0).cummin(0), lambda t: t[2, 2, 2].cummax(0),
                   lambda t: minaot.searchsorted(minaot.sort(t[0], 1).values, t[1:].transpose(
                       0, 1).reshape(3, -1), right=True),
                   lambda t: minaot.searchsorted(t[0, 0].sort().values, t),
                   lambda t: minaot.bucketize(t[:, 1::2], t[0, 0].sort().values)):
            outs, wants = fn(g), fn(x)
            for got, want in zip(*((outs, wants) if isinstance(outs, tuple) else
                                   ((outs,), (wants,)))):
                same(got, want, rtol=1e-6, atol=0)
        b = np.nan_to_num(a, nan=1.0, posinf=2.0)
        x, g = minaot.tensor(b), minaot.tensor(b, device="cuda")
        w = minaot.tensor(R.standard_normal((4, 3)).astype(np.float32))
        grads = []
        for t, ww in ((x, w), (g, w.cuda())):
            def f(t, ww):
                return ((t.cumprod(2).sum(2) * ww).sum() + t.median(2).values.sum()
                        + (t.mode(0).values * ww[0, :, None]).sum() + t.quantile(0.3, 1).sum()
                        + t.cummax(1).values.sum() + t.logcumsumexp(0).sum() + t.median())
            for run in (f, minaot.compile(f)):
                leaf = t.detach().requires_grad_()
                out = run(leaf, ww)
                out.backward()
                grads.append((out, leaf.grad))
        for out, grad in grads[1:]:                   # CPU compiled, CUDA eager and compiled
            assert_close(out.detach().cpu(), grads[0][0].detach(), rtol=1e-5)
            assert_close(grad.cpu(), grads[0][1], rtol=1e-5, atol=1e-5)
        assert grads[2][1].device == grads[3][1].device == "cuda"
        same(minaot.compile(lambda t: t.histc(5, -2, 2))(g), x.histc(5, -2, 2))
        u, inv, counts = minaot.unique(g, return_inverse=True, return_counts=True)
        for got, want in zip((u, inv, counts), minaot.unique(x, return_inverse=True,
                                                             return_counts=True)):
            same(got, want)
        same(minaot.bincount(g.long().reshape(-1) + 2), minaot.bincount(x.long().reshape(-1) + 2))

    def test_prod_over_rows_columns_and_all_with_the_block_split(self):
        """Products long enough to be split over a block's threads (rows of 33, a full
        product of 165, columns of 40): the parts start from 1 and are multiplied
        together; one zero, and the int64 accumulator too."""
        rng = np.random.default_rng(3)
        a = rng.uniform(0.8, 1.25, (5, 33)) * rng.choice([-1.0, 1.0], (5, 33))
        a[2, 7] = 0.0
        x, g = minaot.tensor(a.astype(np.float32)), minaot.tensor(a.astype(np.float32), device="cuda")
        for fn in (lambda t: t.prod(1), lambda t: t.prod(), lambda t: t.t().contiguous().prod(0),
                   lambda t: (t * 2).prod(1, keepdim=True)):
            same(fn(g), fn(x), rtol=1e-5, atol=1e-6)
        k = rng.choice([1, 1, 1, 2, -1], (40, 3))
        xi, gi = minaot.tensor(k), minaot.tensor(k, device="cuda")
        for fn in (lambda t: t.prod(0), lambda t: t.prod()):
            same(fn(gi), fn(xi), rtol=0, atol=0)
        assert gi.prod(0).cpu().tolist() == np.prod(k, 0).tolist()


# ------------------------------------------------------------------ the tiled matmul
class TestMatmul:
    __test__ = ON_DEVICE

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    @pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((9, 7), (7, 6)), ((4,), (4, 5)),
                                       ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 5)),
                                       ((2, 1, 3, 5), (4, 5, 2)), ((1, 0), (0, 3))])
    def test_matmul_equals_numpy(self, sa, sb, dtype):
        a = R.standard_normal(sa).astype(dtype)
        b = R.standard_normal(sb).astype(dtype)
        got = minaot.tensor(a, device="cuda") @ minaot.tensor(b, device="cuda")
        want = a @ b
        assert got.shape == want.shape and got.dtype.np == dtype
        np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-5, atol=1e-5)

    def test_module_tile_and_strided_operands(self):
        from minaot.kernels.matmul_cuda import TILE, matmul
        a = R.standard_normal((TILE + 1, 5)).astype(np.float32)
        b = R.standard_normal((TILE + 2, 5)).astype(np.float32)     # used transposed
        ga, gb = minaot.tensor(a, device="cuda"), minaot.tensor(b, device="cuda")
        c, _ = matmul(ga._data, gb.t()._data, tile=TILE)            # the GPU's tile size
        np.testing.assert_allclose(minaot.cuda.to_host(c), a @ b.T, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose((ga @ gb.t()).cpu().numpy(), a @ b.T, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ modules and optimizers
def _model():
    minaot.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.LayerNorm(8), nn.Linear(8, 3))


class TestModules:
    __test__ = ON_DEVICE

    def test_module_cuda_moves_parameters_in_place(self):
        m = _model()
        params = list(m.parameters())
        m(minaot.ones(2, 4)).sum().backward()
        assert m.cuda() is m
        assert [id(p) for p in m.parameters()] == [id(p) for p in params]
        for p in m.parameters():
            assert p.device == "cuda" and p.is_leaf and p.requires_grad
            assert p.grad.device == "cuda" and isinstance(p, nn.Parameter)
        bn = nn.BatchNorm1d(3).cuda()
        assert all(b.device == "cuda" for b in bn.buffers())
        bn(minaot.randn(4, 3, device="cuda"))
        assert m.cpu() is m and all(p.device == "cpu" for p in m.parameters())

    @pytest.mark.parametrize("make_opt", [lambda p: minaot.optim.SGD(p, lr=0.1, momentum=0.9,
                                                                      weight_decay=0.01),
                                          lambda p: minaot.optim.Adam(p, lr=0.01)],
                             ids=["SGD", "Adam"])
    def test_optimizer_steps_equal_cpu(self, make_opt):
        x = R.standard_normal((6, 4)).astype(np.float32)
        y = np.array([0, 2, 1, 1, 0, 2])
        results = []
        for dev in ("cpu", "cuda"):
            m = _model().to(dev)
            opt = make_opt(m.parameters())
            for _ in range(3):
                opt.zero_grad()
                loss = F.cross_entropy(m(minaot.tensor(x, device=dev)), minaot.tensor(y, device=dev))
                loss.backward()
                opt.step()
            results.append([loss] + list(m.parameters()))
        for want, got in zip(*results):
            same(got.detach(), want.detach(), rtol=1e-5, atol=1e-6)
