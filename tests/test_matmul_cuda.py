"""The GPU matmul kernels of ``kernels/matmul_cuda.py`` against numpy: the register-blocked
kernel (every blocking of this target, forced K splits, operands of every layout, edges,
batches and broadcasting, float32 and float64), the tiled kernel it replaced, how the
blocking and the K split are chosen, and ``benchmarks/matmul_cuda.py --sim``.

Where this process can run CUDA kernels (a GPU, or Numba's simulator switched on with
``NUMBA_ENABLE_CUDASIM=1`` before Numba was imported) the tests run here.  Otherwise the
one test collected runs this file again in a fresh process with the simulator on, and
fails (never skips) if that process cannot run it.  On a GPU the shapes are larger, so
that the edges of the GPU's 128 x 128 tiles and its K splits are crossed.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import minaot

pytestmark = pytest.mark.cuda
HERE = os.path.dirname(os.path.abspath(__file__))


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

# (M, K, N): odd sizes crossing the tiles' edges (the simulator's tiles are 4 or 2 wide)
if TARGET == "gpu":
    SIZES = [(1, 1, 1), (7, 5, 3), (33, 65, 1), (65, 7, 33), (130, 300, 129), (257, 1000, 70),
             (1, 513, 257), (300, 17, 10), (10, 2000, 200)]
else:
    SIZES = [(1, 1, 1), (7, 5, 3), (1, 7, 9), (9, 1, 6), (6, 13, 5), (3, 17, 2)]


def host(arr):
    return minaot.cuda.to_host(arr)


def device(x, transposed=False):
    """A device array with ``x``'s values; ``transposed``: a transposed view of the
    transpose's C-order copy (the layout of ``W.T`` and ``dy.T``)."""
    if transposed:
        return minaot.tensor(np.ascontiguousarray(np.swapaxes(x, -1, -2)),
                             device="cuda").transpose(-1, -2)._data
    return minaot.tensor(x, device="cuda")._data


def check(got, want, dtype, k):
    tol = (1e-5 if dtype == np.float32 else 1e-12) * max(1.0, np.sqrt(k)) * 4
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


# ------------------------------------------------------------------ no CUDA here: rerun
if not ON_DEVICE:
    def test_matmul_suite_under_the_simulator():
        env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               os.path.abspath(__file__)], cwd=os.path.dirname(HERE), env=env,
                              capture_output=True, text=True, timeout=900)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-6000:]
        assert re.search(r"\d+ passed", out) and not re.search(r"skipped|deselected|error", out), out

    def test_matmul_benchmark_checks_its_results_under_the_simulator():
        proc = subprocess.run([sys.executable, os.path.join(os.path.dirname(HERE), "benchmarks",
                                                            "matmul_cuda.py"), "--sim"],
                              capture_output=True, text=True, timeout=600)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-5000:]
        for row in ("fc1 fwd", "fc2 dW", "batched", "train step: the 8 products"):
            assert f"| {row}" in out, out
        assert "checked against numpy" in out and "minaot blocked" in out, out


# ------------------------------------------------------------------ the blocked kernel
class TestBlocked:
    __test__ = ON_DEVICE

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    @pytest.mark.parametrize("layout", ["nn", "nt", "tn", "tt"])
    @pytest.mark.parametrize("mkn", SIZES)
    def test_layouts_and_edges(self, mkn, layout, dtype):
        from minaot.kernels.matmul_cuda import matmul
        m, k, n = mkn
        a = R.standard_normal((m, k)).astype(dtype)
        b = R.standard_normal((k, n)).astype(dtype)
        c, root = matmul(device(a, layout[0] == "t"), device(b, layout[1] == "t"))
        check(host(c), a @ b, dtype, k)

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    def test_every_blocking_and_forced_splits(self, dtype):
        from minaot.kernels.matmul_cuda import blockings, matmul
        m, k, n = SIZES[-1] if TARGET == "gpu" else (6, 13, 5)
        a = R.standard_normal((m, k)).astype(dtype)
        b = R.standard_normal((k, n)).astype(dtype)
        for blocking in blockings(dtype):
            for split_k in (1, 2, 3, k):                # k: as many splits as K steps
                c, _ = matmul(device(a, True), device(b), blocking=blocking, split_k=split_k)
                check(host(c), a @ b, dtype, k)

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    @pytest.mark.parametrize("sa,sb", [((2, 3, 4), (4, 5)), ((3, 5), (2, 5, 6)),
                                       ((2, 1, 3, 5), (4, 5, 2)), ((4,), (2, 4, 3)),
                                       ((2, 3, 4), (4,)), ((7,), (7,)), ((1, 0), (0, 3)),
                                       ((2, 3, 0), (0, 4)), ((0, 2, 3), (3, 4))])
    def test_batches_broadcasting_and_vectors(self, sa, sb, dtype):
        a = R.standard_normal(sa).astype(dtype)
        b = R.standard_normal(sb).astype(dtype)
        got = minaot.tensor(a, device="cuda") @ minaot.tensor(b, device="cuda")
        want = a @ b
        assert got.shape == want.shape and got.dtype.np == dtype
        check(got.cpu().numpy(), want, dtype, sa[-1])

    def test_transposed_batched_operands_and_forced_splits(self):
        from minaot.kernels.matmul_cuda import matmul
        a = R.standard_normal((3, 9, 6)).astype(np.float32)        # used as a[z].T
        b = R.standard_normal((3, 9, 5)).astype(np.float32)
        for split_k in (None, 2):
            c, _ = matmul(device(np.swapaxes(a, 1, 2), True), device(b), split_k=split_k)
            check(host(c), np.swapaxes(a, 1, 2) @ b, np.float32, 9)

    def test_broadcast_operand_with_zero_strides(self):
        x = R.standard_normal((5, 3)).astype(np.float32)
        ga = minaot.tensor(x, device="cuda").expand(4, 5, 3)       # stride 0 on the batch
        gb = minaot.tensor(R.standard_normal((4, 3, 2)).astype(np.float32), device="cuda")
        check((ga @ gb).cpu().numpy(), np.broadcast_to(x, (4, 5, 3)) @ gb.cpu().numpy(),
              np.float32, 3)

    def test_float32_sums_stay_float32(self):
        # values whose float32 and float64 sums differ: the kernel must round like float32
        from minaot.kernels.matmul_cuda import matmul
        k = 64
        a = np.full((1, k), 1.0, np.float32)
        b = np.full((k, 1), 1e-8, np.float32)
        b[0, 0] = 1.0
        c, _ = matmul(device(a), device(b), split_k=1)
        want32 = np.float32(1.0)
        for v in b[1:, 0]:
            want32 = np.float32(want32 + v)
        assert host(c)[0, 0] == want32 == np.float32(1.0)

    @pytest.mark.parametrize("layout", ["nn", "nt", "tn", "tt"])
    def test_vectorized_kernel_runs_where_the_operands_allow_it(self, layout, monkeypatch):
        # fast axes of a multiple of 4 take the 16-byte-load kernel (edges, K splits, a
        # batch; K a multiple of the tile's BK or not); a length that is not, or a
        # misaligned start, takes the blocked kernel
        from minaot.kernels import matmul_cuda as mc
        taken = []

        def spy(arr, fast, _layout=mc.vector_layout):
            out = _layout(arr, fast)
            taken.append(out is not None)
            return out
        monkeypatch.setattr(mc, "vector_layout", spy)
        wide = mc.blockings(np.float32)[0]
        assert mc.vectorizable(wide)
        sizes = ([(260, 132, 136), (4, 1032, 128)] if TARGET == "gpu"
                 else [(9, 12, 8), (4, 16, 5), (8, 14, 12)])
        for m, k, n in sizes:
            for split_k in (None, 2):
                a = R.standard_normal((m, k)).astype(np.float32)
                b = R.standard_normal((k, n)).astype(np.float32)
                taken.clear()
                c, _ = mc.matmul(device(a, layout[0] == "t"), device(b, layout[1] == "t"),
                                 blocking=wide, split_k=split_k)
                check(host(c), a @ b, np.float32, k)
                fast_a = k if layout[0] == "n" else m
                fast_b = n if layout[1] == "n" else k
                assert taken == ([True, fast_b % 4 == 0] if fast_a % 4 == 0 else [False]), taken
        # a view that starts one element in is not 16-byte aligned: the blocked kernel
        a = R.standard_normal((8, 13)).astype(np.float32)
        b = R.standard_normal((12, 8)).astype(np.float32)
        shifted = minaot.tensor(a, device="cuda")[:, 1:]
        taken.clear()
        c, _ = mc.matmul(shifted._data, device(b), blocking=wide)
        check(host(c), a[:, 1:] @ b, np.float32, 12)
        assert taken == [False]

    @pytest.mark.parametrize("n", [12, 5])
    def test_split_sums_of_batches(self, n):
        # N a multiple of 4 (float32, C in C order): the 16-byte sum kernel; otherwise the
        # scalar one; both add the partial products in split order
        from minaot.kernels import matmul_cuda as mc
        a = R.standard_normal((3, 8, 40)).astype(np.float32)
        b = R.standard_normal((3, 40, n)).astype(np.float32)
        c, _ = mc.matmul(device(a), device(b), split_k=3)
        check(host(c), a @ b, np.float32, 40)
        assert ("sum4" if n % 4 == 0 else "sum", 3) in mc._KERNELS

    @pytest.mark.parametrize("layout", ["nn", "nt", "tn", "tt"])
    def test_async_copies_give_the_register_loads_products_bit_for_bit(self, layout,
                                                                        monkeypatch):
        # A with M fast and B with N fast go to the shared tiles by cp.async (the simulator:
        # a Python copy); the sums are added in the same order either way, so the products
        # are equal to the last bit, with K a multiple of the K step or not, split or not
        from minaot.kernels import matmul_cuda as mc
        if TARGET == "gpu" and not mc.async_copies():
            pytest.fail("a GPU without cp.async (compute capability < 8.0): check the "
                        "register path only")
        wide = mc.blockings(np.float32)[0]
        sizes = ([(260, 160, 136), (132, 1032, 128), (4, 36, 8)] if TARGET == "gpu"
                 else [(9, 12, 8), (8, 14, 12), (4, 16, 4)])
        for m, k, n in sizes:
            a = R.standard_normal((2, m, k)).astype(np.float32)
            b = R.standard_normal((2, k, n)).astype(np.float32)
            da, db = device(a, layout[0] == "t"), device(b, layout[1] == "t")
            for split_k in (None, 2):
                got = {}
                for on in (True, False):
                    monkeypatch.setattr(mc, "ASYNC_COPY", on)
                    c, _ = mc.matmul(da, db, blocking=wide, split_k=split_k)
                    got[on] = host(c)
                check(got[True], a @ b, np.float32, k)
                np.testing.assert_array_equal(got[True], got[False])
        kernels = {key[1:] for key in mc._KERNELS if key[0] == "vectorized"}
        a_k_fast, b_n_fast = layout[0] == "n", layout[1] == "n"
        assert any(key[:3] == (wide, a_k_fast, b_n_fast) and key[-1] for key in kernels)
        assert any(key[:3] == (wide, a_k_fast, b_n_fast) and not key[-1] for key in kernels)

    def test_operands_the_vectorized_kernel_cannot_read_take_the_fallback_blocking(self):
        # the float32 blocking's 16 x 8 patches (the simulator's 8 x 4) run in the
        # vectorized kernel; an A that starts one element in (not 16-byte aligned) takes
        # the blocked kernel with the blocking's fallback (same tiles, more threads of
        # smaller patches); edges crossed, K a multiple of the K step or not, split or not
        from minaot.kernels import matmul_cuda as mc
        wide = mc.blockings(np.float32)[0]
        fallback = wide.blocked()
        assert fallback is wide.fallback and (fallback.bm, fallback.bn) == (wide.bm, wide.bn)
        assert fallback.threads > wide.threads and wide.tm == 2 * wide.tn
        sizes = ([(600, 100, 300), (513, 64, 260)] if TARGET == "gpu"
                 else [(20, 12, 9), (33, 16, 17)])
        for m, k, n in sizes:
            a = R.standard_normal((m, k + 1)).astype(np.float32)
            b = R.standard_normal((k, n)).astype(np.float32)
            db = device(b, True)
            for split_k in (1, 2):
                mc._KERNELS.clear()
                c, _ = mc.matmul(device(a[:, 1:]), db, blocking=wide, split_k=split_k)
                check(host(c), a[:, 1:] @ b, np.float32, k)
                shifted = minaot.tensor(a, device="cuda")[:, 1:]
                d, _ = mc.matmul(shifted._data, db, blocking=wide, split_k=split_k)
                check(host(d), a[:, 1:] @ b, np.float32, k)
                kinds = {key[:3] for key in mc._KERNELS}
                assert ("vectorized", wide, True) in kinds
                assert ("blocked", np.dtype(np.float32), fallback) in kinds
                assert not any(key[0] == "blocked" and key[2] == wide for key in mc._KERNELS)

    def test_vectorized_kernel_on_a_broadcast_batch(self):
        from minaot.kernels import matmul_cuda as mc
        wide = mc.blockings(np.float32)[0]
        x = R.standard_normal((8, 12)).astype(np.float32)
        w = R.standard_normal((3, 12, 4)).astype(np.float32)
        ga = minaot.tensor(x, device="cuda").expand(3, 8, 12)          # stride 0 on the batch
        c, _ = mc.matmul(ga._data, minaot.tensor(w, device="cuda")._data, blocking=wide)
        check(host(c), x @ w, np.float32, 12)

    def test_tiled_kernel_still_computes_the_product(self):
        from minaot.kernels.matmul_cuda import default_tile, matmul
        a = R.standard_normal((9, 7)).astype(np.float32)
        b = R.standard_normal((5, 7)).astype(np.float32)            # used transposed
        c, _ = matmul(device(a), device(b.T, True), tile=default_tile())
        check(host(c), a @ b.T, np.float32, 7)


# ------------------------------------------------------------------ choosing
class TestChoices:
    __test__ = ON_DEVICE

    def test_splits_cover_k_in_whole_steps(self):
        from minaot.kernels.matmul_cuda import choose_splits
        for k in (1, 7, 8, 9, 100, 4096):
            for bk in (2, 8):
                for split_k in (1, 2, 3, 5, 64):
                    splits, k_split = choose_splits(1, k, bk, split_k)
                    assert k_split % bk == 0 or splits == 1
                    assert (splits - 1) * k_split < k <= splits * k_split
                    assert splits <= max(1, -(-k // bk))

    def test_small_grids_split_k_and_full_grids_do_not(self, monkeypatch):
        from minaot.kernels import matmul_cuda as mc
        monkeypatch.setattr(mc, "_target_blocks", lambda: 264)
        monkeypatch.setattr(mc, "_simulator", lambda: False)
        assert mc.choose_splits(256, 4096, 8) == (1, 4096)          # (4096, 1024) outputs
        assert mc.choose_splits(140, 4096, 8) == (1, 4096)          # over half a wave
        assert mc.choose_splits(56, 4096, 8) == (4, 1024)           # (1024, 784) outputs
        assert mc.choose_splits(16, 4096, 8) == (16, 256)           # (10, 1024) outputs
        assert mc.choose_splits(8, 300, 8) == (1, 300)              # K too short to split

    def test_narrow_products_take_the_narrow_blocking(self, monkeypatch):
        from minaot.kernels import matmul_cuda as mc
        monkeypatch.setattr(mc, "_simulator", lambda: False)
        wide, narrow, tall, flat = mc.BLOCKINGS_F32
        assert mc.choose_blocking(np.float32, 4096, 1024) == wide
        assert mc.choose_blocking(np.float32, 1024, 784) == wide
        assert mc.choose_blocking(np.float32, 4096, 10) == tall
        assert mc.choose_blocking(np.float32, 10, 1024) == flat
        assert mc.choose_blocking(np.float32, 256, 256) == wide
        assert mc.choose_blocking(np.float32, 64, 64) == narrow
        assert mc.choose_blocking(np.float64, 4096, 1024) == mc.BLOCKINGS_WIDE[0]

    def test_plans_fill_the_gpu(self, monkeypatch):
        from minaot.kernels import matmul_cuda as mc
        monkeypatch.setattr(mc, "_target_blocks", lambda: 264)
        monkeypatch.setattr(mc, "_simulator", lambda: False)
        wide, narrow, tall, flat = mc.BLOCKINGS_F32
        assert mc.plan(np.float32, 1, 4096, 1024, 1024) == (wide, 1, 1024)
        assert mc.plan(np.float32, 1, 1024, 4096, 784) == (wide, 4, 1024)      # split K
        assert mc.plan(np.float32, 16, 256, 256, 256) == (narrow, 1, 256)      # K too short
        assert mc.plan(np.float32, 1, 4096, 1024, 10) == (tall, 4, 256)
        assert mc.plan(np.float32, 1, 10, 4096, 1024) == (flat, 16, 256)       # no narrower
        assert mc.vectorizable(tall) and not mc.vectorizable(flat)
        assert mc.plan(np.float32, 1, 256, 256, 256, blocking=wide) == (wide, 1, 256)
        # the float32 blocking: 128 threads of 16 x 8, no register cap; its fallback for
        # the blocked kernel 256 threads of 8 x 8 at 128 registers, the same tiles
        assert (wide.threads, wide.tm, wide.tn, wide.bk, wide.regs) == (128, 16, 8, 8, 0)
        assert (wide.fallback.threads, wide.fallback.regs) == (256, 128)
        assert mc.vectorizable(wide)
        with pytest.raises(ValueError, match="fallback"):
            mc.Blocking(128, 128, 8, 16, 8, 4, vec=4, fallback=mc.Blocking(64, 64, 8, 4, 4, 4)
                        ).check()


# ------------------------------------------------------------------ benchmarks/matmul_sass.py
SASS = """
        /*0000*/                   MOV R1, c[0x0][0x28] ;
.L_x_1:
        /*0010*/                   LDS.128 R4, [R2] ;
        /*0020*/                   FFMA R8, R4, R5, R8 ;
        /*0030*/                   FFMA R9, R4, R6, R9 ;
        /*0040*/              @!P0 LDG.E.128 R12, desc[UR4][R10.64] ;
        /*0050*/              @!P1 BRA `(.L_x_1) ;
        /*0060*/                   BRA `(.L_x_2) ;
.L_x_2:
        /*0070*/                   EXIT ;
"""


def test_matmul_sass_finds_the_tile_loop():
    # the offline SASS report's parser (the compile step needs a CUDA toolchain): one
    # backward branch makes one loop; a forward branch none
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))
    try:
        import matmul_sass
    finally:
        sys.path.pop(0)
    (loop,) = matmul_sass.loops(SASS)
    start, end, body = loop
    assert (start, end) == (0x10, 0x50)
    assert body == {"LDS": 1, "FFMA": 2, "LDG": 1, "BRA": 1}
    assert "5 instructions, 2 FFMA, 2.500 per FFMA" in matmul_sass.report(SASS)
