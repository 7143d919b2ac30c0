"""emit-numba-cuda on real graphs: every CUDA kernel's result equals the reference interpreter.

These tests need a CUDA target: a GPU, or Numba's simulator, which must be switched on
(``NUMBA_ENABLE_CUDASIM=1``) before Numba is imported.  The normal test run imports Numba
early, so ``test_cuda_codegen.py`` runs this file in a fresh process with the simulator on.
On a GPU machine run it directly: ``python -m pytest tests/cuda_cases.py``.  Without either,
importing this file fails (no silent skip).

Each graph is traced and fused as the numba backend does it; each ``kernel.fused`` op is
lowered to its loop function and run through the generated CUDA module, every other op
through the interpreter.  The simulator runs one Python thread per CUDA thread, so shapes
stay at 32 or below and blocks small (``SMALL``: 8 threads, at most 4 blocks, so grid-stride
loops and block-stride reductions take several turns, and reductions of 8 or more get a
block); the GPU runs the same configurations, so each test checks the same kernel forms on
both.
"""

import re
import sys

import numpy as np
import pytest
from numba import config

import minaot
import minaot.nn.functional as F
from minaot.codegen.cuda_runtime import cuda_module, run_loop_function_cuda
from minaot.codegen.numba_cuda import ROW_REGISTERS_MANY_LOADS, emit_numba_cuda
from minaot.ir import interpret, parse, run_op
from minaot.passes.fuse import fuse
from minaot.passes.lower_to_loops import lower_kernel
from minaot.passes.mix_reductions import mix_reductions

cuda_module()                           # raises, naming what is missing, without a target
SIMULATOR = bool(config.ENABLE_CUDASIM)
if SIMULATOR:
    sys.setswitchinterval(1e-4)         # the simulator's threads hand over faster (5x here)

pytestmark = pytest.mark.cuda

SMALL = dict(max_threads=8, max_blocks=4, block_rows_min=8)
R = np.random.default_rng(0)


def t(*shape, dtype=np.float32):
    return minaot.from_numpy(R.standard_normal(shape).astype(dtype))


def graphs(fn, *args, grad=False):
    """The prim graphs aot_function hands to its compilers, with the arrays each was run on
    (with ``grad``: forward then backward, the backward run by ``backward()`` of ones)."""
    seen = []

    def capture(g, example_inputs):
        run = minaot.nop(g.clone(), example_inputs)

        def record(*a):
            seen.append((g.clone(), [x.numpy().copy() for x in a]))
            return run(*a)
        return record

    with minaot.set_grad_enabled(grad):
        out = minaot.aot_function(fn, fw_compiler=capture, bw_compiler=capture)(*args)
        if grad:
            outs = out if isinstance(out, tuple) else (out,)
            sum(o.sum() for o in outs).backward()
    return seen


def run_on_cuda(graph, arrays, rows_per_chunk=None, **options):
    """Run a prim graph with its kernels on CUDA; returns (results, {kernel: source}).
    With ``rows_per_chunk``, ``mix-reductions`` runs after ``fuse`` (as the CUDA backend
    runs it), with chunks of at least that many rows."""
    g = fuse(graph.clone())
    if rows_per_chunk is not None:
        mix_reductions(g, rows_per_chunk=rows_per_chunk)
    env = dict(zip(g.args, arrays))
    sources = {}
    for op in g.ops:
        ins = [env[v] for v in op.operands]
        if op.name == "kernel.fused":
            loop = lower_kernel(op, f"{g.name}_{op.attributes['name']}")
            sources[loop.name] = emit_numba_cuda(loop, **options)
            outs = run_loop_function_cuda(loop, *ins, **options)
        else:
            outs = run_op(op, ins)
        env.update(zip(op.results, outs))
    return [env[v] for v in g.results], sources


def check(fn, *args, grad=False, rtol=1e-5, atol=1e-6, **options):
    """Every graph of ``fn`` (forward, and backward with ``grad``) on CUDA equals the
    interpreter; returns the generated sources."""
    options = {**SMALL, **options}
    sources = {}
    for graph, arrays in graphs(fn, *args, grad=grad):
        want = interpret(graph, *arrays, wrap=False)
        got, src = run_on_cuda(graph, arrays, **options)
        sources.update(src)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, g.shape, w.dtype, w.shape)
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    assert sources, "no kernel ran on CUDA"
    return "\n".join(sources.values())


ROW = "cuda.blockIdx.x"          # one block per row
THREAD = "cuda.grid(1)"          # one thread per work item
ONE_BLOCK = "# one block:"       # the code outside any scf.parallel


def test_gelu_tanh_pointwise_grid_stride():
    src = check(lambda x, w, b: F.gelu(x * w + b, approximate="tanh"), t(32), t(32), t(32))
    assert THREAD in src and "math.tanh(" in src and "np.float32(0.044715)" in src


def test_gelu_erf():
    assert "math.erf(" in check(lambda x: F.gelu(x), t(6, 5))


def test_softmax_block_per_row():
    src = check(lambda x: minaot.softmax(x, dim=1), t(5, 32))
    # 8 threads, part of one warp: the row's max and sum are combined by shuffles alone
    assert ROW in src and src.count("cuda.shfl_xor_sync(0xff, ") == 6
    assert "sm_f32" not in src


def test_row_and_column_kernels_with_a_block_per_work_item():
    """SMALL's 4 blocks stride over the rows and column groups of the cases here; with a
    block for every work item there is no stride loop (grid_walk), same results: softmax,
    layer_norm forward and backward (rows and a column walk)."""
    x, w, b = t(6, 32), t(32), t(32)
    src = check(lambda x: minaot.softmax(x, dim=1), x, max_blocks=65535)
    assert "flat = cuda.blockIdx.x   # a block for every work item" in src and "gridDim" not in src
    src = check(lambda x, w, b: F.layer_norm(x, (32,), w, b), x.requires_grad_(),
                w.requires_grad_(), b.requires_grad_(), grad=True, max_blocks=65535,
                rtol=1e-4, atol=1e-5)
    assert "flat = cuda.blockIdx.x   # a block for every work item" in src
    assert "gridDim.x):" not in src

    def f(x, y):
        return (x * y).sum(dim=0), x.amax(dim=0)
    for blocks in (1, 65535):
        src = check(f, t(64, 12), t(64, 12), rtol=1e-5, atol=1e-5, column_lanes_min=4,
                    max_blocks=blocks)
        assert "lane = tid // 4" in src
        assert ("group = cuda.blockIdx.x   # a block for every work item" in src) == (blocks > 1)
        assert ("for group in range(cuda.blockIdx.x, " in src) == (blocks == 1)


def test_block_reductions_over_several_warps():
    """Two and four warps per block: shuffles in each warp, then the warps' values through
    shared memory; max, min, sum, int sum and a float64 variance."""
    x = t(3, 128)
    for threads in (64, 128):
        src = check(lambda x: (minaot.softmax(x, dim=1), x.amax(dim=1), x.amin(dim=1),
                               (x > 0).sum(dim=1), x.double().var(dim=1)), x,
                    max_threads=threads, rtol=1e-5, atol=1e-6)
        assert f"sm_f32_w0[{'tid'} // 32] = " in src and "cuda.shfl_xor_sync" in src


def test_block_reductions_without_warp_shuffles():
    """``warp_shuffle=False``: the shared-memory tree, a barrier per step."""
    src = check(lambda x: (minaot.softmax(x, dim=1), (x > 0).sum(dim=1)), t(5, 64),
                max_threads=64, warp_shuffle=False)
    assert "shfl" not in src and src.count("cuda.syncthreads()") >= 8


def test_full_reduction_in_half_a_warp():
    """A block of fewer than 32 threads shuffles within its lanes only (mask 0xffff)."""
    src = check(lambda x: x.sum() + x.amax(), t(16), block_rows_min=4, max_threads=16,
                rtol=1e-5, atol=1e-6)
    assert "cuda.shfl_xor_sync(0xffff, " in src


def test_softmax_with_the_default_launch_configuration():
    src = check(lambda x: minaot.softmax(x, dim=1), t(3, 32), max_threads=256, max_blocks=65535,
                block_rows_min=32)
    assert ROW in src and "cuda.shared.array(32, np.float32)" in src


def test_softmax_short_rows_one_thread_per_row():
    src = check(lambda x: minaot.softmax(x, dim=1), t(6, 5))
    assert THREAD in src and ROW not in src


def test_softmax_over_dim0():
    check(lambda x: minaot.softmax(x, dim=0), t(12, 7))


def test_log_softmax():
    check(lambda x: minaot.log_softmax(x, dim=-1), t(5, 9))


def test_layer_norm_forward():
    src = check(lambda x, w, b: F.layer_norm(x, (16,), w, b), t(6, 16), t(16), t(16), rtol=1e-4,
                atol=1e-5)
    assert ROW in src


def test_layer_norm_forward_and_backward():
    x, w, b = (a.requires_grad_() for a in (t(6, 16), t(16), t(16)))
    check(lambda x, w, b: F.layer_norm(x, (16,), w, b), x, w, b, grad=True, rtol=1e-4, atol=1e-5)


def test_sum_over_last_dim():
    assert ROW in check(lambda x, s, b: (x * s + b).sum(dim=1), t(8, 24), t(8, 1), t(24),
                        rtol=1e-5, atol=1e-5)


def test_reduce_middle_axis_of_3d():
    check(lambda x: x.amax(dim=1, keepdim=True) - x.sum(dim=1, keepdim=True), t(3, 9, 5),
          rtol=1e-5, atol=1e-5)


def test_column_sum_chunked_two_kernels_and_scratch():
    def f(x, y):
        return (x * y).sum(dim=0) * 2.0, x.amax(dim=0)
    src = check(f, t(32, 12), t(12), rtol=1e-5, atol=1e-5)
    # the scratch buffers are made on the device once (no host copy, no allocation per call);
    # the column walk's work items are their elements, so each starts from the buffer's fill
    # and writes its element whole: no fill kernel (value_before_walk)
    assert "cuda.device_array((" in src and "= scratch()" in src and "def fill(" not in src
    assert "np.full" not in src
    again = check(f, t(32, 12), t(12), rtol=1e-5, atol=1e-5)   # new values, the same module:
    assert again == src                                        # its buffers written again
    assert "_0_launch(" in src and "_1_launch(" in src                # two kernels, in order
    # one thread per (chunk, column), the partial sums in registers while the rows go by
    assert "c = flat // 12" in src and "tmp1_elem = np.float32(-np.inf)   # the buffer's fill" in src
    assert "tmp1[c, i1] = tmp1_elem" in src
    check(lambda x, y: (x * y, (x * y).sum(dim=0)), t(32, 5), t(32, 5), rtol=1e-5, atol=1e-5)


def _renumbered(lines, outer):
    """IR lines with the values they define (not those in ``outer``) renumbered by +100."""
    mine = {int(n) for line in lines for n in re.findall(r"%(\d+)", line)}
    mine -= {int(n) for line in outer for n in re.findall(r"%(\d+)", line)}
    return [re.sub(r"%(\d+)", lambda m: f"%{int(m.group(1)) + 100}" if int(m.group(1)) in mine
                   else m.group(0), line) for line in lines]


def test_only_the_first_kernel_to_touch_a_scratch_buffer_skips_its_fill():
    """value_before_walk, on a column sum's loop IR edited by hand.  The column walk run
    twice in a row (the second adds every row again onto the first one's sums): the first
    walk writes the buffer whole from its fill, the second loads it; no fill kernel.  The
    combining loop run once before the walk (it reads the fill): the buffer is filled by a
    kernel at every launch and the walk loads it.  Each result twice, the same module: a
    buffer left as the previous launch wrote it would give other numbers the second time."""
    x = R.standard_normal((64, 12)).astype(np.float32)
    text = str(lower_kernel(fuse(graphs(lambda a: a.sum(dim=0), minaot.from_numpy(x))[0][0])
                            .ops[0], "k"))
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "scf.parallel" in line)
    end = next(i for i, line in enumerate(lines) if i > start and line == "  }) : () -> ()")
    ret = next(i for i, line in enumerate(lines) if "func.return" in line)
    head, walk, combine, tail = lines[:start], lines[start:end + 1], lines[end + 1:ret], lines[ret:]
    sums = x.astype(np.float64).sum(0)
    for body, want, filled in ((walk + _renumbered(walk, head) + combine, 2 * sums, False),
                               (_renumbered(combine, head) + walk + combine, sums, True)):
        loop = parse("\n".join(head + body + tail))
        src = emit_numba_cuda(loop, **SMALL)
        assert ("def fill(buf, value):" in src) == filled
        assert ("fill_tmp0(tmp0_flat, np.float32(0.0))" in src) == filled
        assert src.count("the buffer's fill") == (0 if filled else 1)
        assert re.search(r"tmp0_elem\w* = tmp0\[v\d+, v\d+\]\n", src)     # a walk that loads
        for _ in range(2):
            (got,) = run_loop_function_cuda(loop, x, **SMALL)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_column_walk_shared_by_several_threads_per_column():
    # 64 rows: chunks of 8 rows, each (chunk, column) walk shared by 2 threads (rows 0, 2, ...
    # and 1, 3, ...), the parts combined in shared memory and added to the scratch's fill
    def f(x, y):
        return (x * y).sum(dim=0), x.amax(dim=0)
    src = check(f, t(64, 12), t(64, 12), rtol=1e-5, atol=1e-5, column_lanes_min=4)
    assert "lane = tid // 4" in src and "for k in range(4):" in src and "r = lane + 2 * k" in src
    assert "j = np.float32(0.0)      # the value before the walk (the buffer's fill)" in src
    assert "tmp0[c, i1] = j + tmp0_part" in src
    assert "tmp1[c, i1] = maximumf(j, tmp1_part)" in src   # amax: NaN wins (minmax_cuda)
    same = check(f, t(64, 12), t(64, 12), rtol=1e-5, atol=1e-5, column_lanes_min=1000)
    assert "lane" not in same and "tmp0_elem = np.float32(0.0)" in same     # one thread per walk


def test_rows_read_again_are_kept_in_registers_or_shared_memory():
    src = check(lambda x: minaot.softmax(x, dim=-1), t(4, 32))
    # three walks over each row of x: global memory is read in the first only; each of the 8
    # threads keeps its 4 elements in a local array indexed by the walk's count (registers)
    assert "row_in0 = cuda.local.array(4, np.float32)" in src
    assert src.count("= in0[i0, ") == 1 and src.count("= row_in0[k]") == 2
    assert src.count("for k in range(4):") == 3
    plain = check(lambda x: minaot.softmax(x, dim=-1), t(4, 32), row_cache_bytes=0, unroll=False)
    assert "row_in0" not in plain and plain.count("= in0[i0, ") == 3
    # walks that do not count their iterations keep the row in shared memory, as does a row
    # of more values per thread than ROW_REGISTER_VALUES (40 > 32)
    for src in (check(lambda x: minaot.softmax(x, dim=-1), t(4, 32), unroll=False),
                check(lambda x: minaot.softmax(x, dim=-1), t(2, 320))):
        assert "row_in0 = cuda.shared.array(" in src and "cuda.local.array" not in src
        assert src.count("= in0[i0, ") == 1 and src.count("= row_in0[i1") == 2
    # layer_norm forward and backward: x in the forward; the gradient and x-hat in the backward
    src = check(lambda x, w, b: F.layer_norm(x, (32,), w, b, 1e-5),
                t(5, 32).requires_grad_(), t(32).requires_grad_(), t(32).requires_grad_(),
                grad=True, rtol=1e-4, atol=1e-5)
    assert src.count("cuda.local.array(4, np.float32)   # this thread's part of a row") == 3
    # the backward's walks read three global buffers: unrolled all the same, for the
    # registers, under the larger budget
    assert f"max_registers={ROW_REGISTERS_MANY_LOADS})" in src


def test_mixed_row_and_column_kernel_keeps_partial_column_sums_in_registers():
    """mix-reductions: layer_norm's backward as one kernel whose blocks each walk a chunk of
    rows, adding every row into the chunk's partial column sums kept in registers (started
    from the fill, no fill launch), stored once; then the chunks are combined."""
    args = lambda n, c: (t(n, c).requires_grad_(), t(c).requires_grad_(), t(c).requires_grad_())  # noqa
    ln = lambda x, w, b: F.layer_norm(x, (x.shape[1],), w, b, 1e-5)  # noqa
    src = check(ln, *args(64, 32), grad=True, rtol=1e-4, atol=1e-5, rows_per_chunk=32)
    assert "a group of 32 rows walked in order" in src
    assert src.count("cuda.local.array(4, np.float32)   # this thread's partial column sums") == 2
    assert src.count("# the chunk's partial sums, stored once") == 2
    assert "fill_tmp" not in src
    # 64 chunks of one row: their partial sums combined by a chunked column reduction (its
    # own partial buffers tmp2, tmp3); blocks stride over the chunks (4 blocks)
    src = check(ln, *args(64, 32), grad=True, rtol=1e-4, atol=1e-5, rows_per_chunk=1)
    assert "a group of 1 row walked" in src and "tmp3[" in src and "gridDim.x):" in src
    # 12 columns on 8 threads: the walk cannot count, the partial sums stay in memory
    src = check(ln, *args(64, 12), grad=True, rtol=1e-4, atol=1e-5, rows_per_chunk=32)
    assert "a group of 32 rows walked in order" in src and "part_" not in src
    assert "fill_tmp0(" in src


def test_plain_column_kernel_with_many_chunks():
    """A GELU backward with its bias gradient (a column reduction that also writes the
    full-size input gradient, so it mixes with nothing) in 64 chunks of one row, the GPU's
    chunking scaled down: one thread per chunk and column, then the 64 partial sums of
    each column combined in two steps (tmp1)."""
    def f(x, w, b):
        return F.gelu(x * w + b, approximate="tanh")
    src = check(f, t(64, 8).requires_grad_(), t(8).requires_grad_(), t(8).requires_grad_(),
                grad=True, rtol=1e-4, atol=1e-5, rows_per_chunk=1)
    assert "one thread per work item (512)" in src and "tmp1[" in src, src


def test_pointwise_kernel_with_a_costly_scalar_prologue_shares_it(monkeypatch):
    """Adam's bias corrections: float64 powers of a 0-d step computed by every thread before
    its work items; such a kernel gives each thread 4 items (a quarter of the blocks) when
    enough blocks remain, so the prologue runs once per 4 elements.  (On the H100: Adam's
    update of a (1024, 1024) weight 42.5 -> 22.5 us.)"""
    def f(x, step):
        return x * (1.0 / (1 - 0.9 ** (step + 1)))
    from minaot.codegen import numba_cuda
    x = t(16, 16)
    step = minaot.tensor(3.0, dtype=minaot.float64)
    monkeypatch.setattr(numba_cuda, "PROLOGUE_MIN_BLOCKS", 8)  # the GPU's 512, for 256 elements
    src = check(f, x, step, rtol=1e-5, atol=1e-6, max_threads=8, max_blocks=64)
    assert "one thread per 4 work items (256 in all): each thread computes the scalars" in src
    assert re.search(r"Launcher\(\w+, 8, 8\)", src), src         # 32 blocks of 8 threads / 4
    monkeypatch.setattr(numba_cuda, "PROLOGUE_MIN_BLOCKS", 9)  # too few blocks would be left
    src = check(f, x, step, rtol=1e-5, atol=1e-6, max_threads=8, max_blocks=64)
    assert re.search(r"Launcher\(\w+, 32, 8\)", src), src
    # without a costly scalar: one item per thread, as before
    src = check(lambda x: x * 2.0 + 1.0, x, max_threads=8, max_blocks=64)
    assert "one thread per work item (256)" in src and re.search(r"Launcher\(\w+, 32, 8\)", src)


ROW_REWRITTEN = """
func.func @k0(%0: memref<4x64xf32>, %1: memref<4x64xf32>, %2: memref<4x64xf32>) -> () {
  %3 = arith.constant {type = "f32", value = 0.0} : () -> f32
  scf.parallel {lower = 0, upper = 4} ({
  ^bb0(%4: index):
    scf.for {lower = 0, upper = 64} ({
    ^bb0(%5: index):
      %6 = memref.load %0, %4, %5 : (memref<4x64xf32>, index, index) -> f32
      %7 = math.exp %6 : (f32) -> f32
      memref.store %7, %1, %4, %5 : (f32, memref<4x64xf32>, index, index) -> ()
      scf.yield : () -> ()
    }) : () -> ()
    %8 = scf.for %3 {lower = 0, upper = 64} ({
    ^bb0(%9: index, %10: f32):
      %11 = memref.load %1, %4, %9 : (memref<4x64xf32>, index, index) -> f32
      %12 = arith.addf %10, %11 : (f32, f32) -> f32
      scf.yield %12 : (f32) -> ()
    }) : (f32) -> f32
    scf.for {lower = 0, upper = 64} ({
    ^bb0(%13: index):
      %14 = memref.load %1, %4, %13 : (memref<4x64xf32>, index, index) -> f32
      %15 = arith.divf %14, %8 : (f32, f32) -> f32
      memref.store %15, %1, %4, %13 : (f32, memref<4x64xf32>, index, index) -> ()
      %16 = arith.mulf %15, %15 : (f32, f32) -> f32
      memref.store %16, %2, %4, %13 : (f32, memref<4x64xf32>, index, index) -> ()
      scf.yield : () -> ()
    }) : () -> ()
    scf.yield : () -> ()
  }) : () -> ()
  func.return
}
"""


@pytest.mark.parametrize("unroll", [True, False])
def test_a_row_written_then_read_and_rewritten_goes_to_global_memory_once(unroll):
    # out0 = exp(x) is written, summed, read back and overwritten by out0 / sum: kept in
    # registers (walks that count) or shared memory, the first write is never seen, so only
    # the last walk writes global memory
    fn = parse(ROW_REWRITTEN)
    src = emit_numba_cuda(fn, **SMALL, unroll=unroll)
    # (a parsed function's buffers are named v0: x, v1: out0, v2: out1)
    assert ("row_v1 = cuda.local.array(8, np.float32)" if unroll else
            "row_v1 = cuda.shared.array(64, np.float32)") in src
    assert src.count("v1[v3, ") == 1 and "row_v0" not in src          # x is read once anyway
    assert src.count("= row_v1[k]" if unroll else "= row_v1[v") == 2
    x = R.standard_normal((4, 64)).astype(np.float32)
    out0, out1 = run_loop_function_cuda(fn, x, **SMALL, unroll=unroll)
    want = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out0, want, rtol=1e-5)
    np.testing.assert_allclose(out1, want * want, rtol=1e-5)


def test_column_sum_one_chunk_in_one_block():
    # 7 rows: one chunk, so the chunk loop is an scf.for outside any scf.parallel: one block,
    # its threads share the (chunk, column) pairs, each walking the rows
    src = check(lambda x: x.sum(dim=0), t(7, 5), rtol=1e-5, atol=1e-5)
    assert ONE_BLOCK in src and "for r in range(7):" in src and "tmp0_elem = np.float32(0.0)" in src

    # full-domain outputs stored as the rows stream by: out[c * 7 + r, i1] does not index the
    # chunk, so thread 0 runs the chunk loop
    src = check(lambda x, y: (x * y, (x * y).sum(dim=0)), t(7, 5), t(7, 5), rtol=1e-5, atol=1e-5)
    assert "if tid == 0:" in src


def test_column_sum_into_one_element():
    # no parallel axis at all: the chunk loop and the combine share one block (a barrier between)
    check(lambda x: x.sum(dim=0), t(7, 1), rtol=1e-5, atol=1e-5)
    check(lambda x: x.sum(dim=0), t(32, 1), rtol=1e-5, atol=1e-5)


def test_full_reductions_in_one_block():
    src = check(lambda x: (x.sum() * 2.0, x.amax(), x.mean()), t(6, 5), rtol=1e-5, atol=1e-5)
    assert ONE_BLOCK in src
    check(lambda x: x - x.mean(), t(20), rtol=1e-5, atol=1e-6)


def test_full_reductions_in_two_passes_over_a_grid():
    # grid_reduce_min=16: these small reductions take the path of large ones (first pass:
    # every block reduces a share into a partial value; second: blocks combine the partials)
    two = dict(grid_reduce_min=16)
    src = check(lambda x: (x.sum() * 2.0, x.amax(), x.mean()), t(6, 5), rtol=1e-5, atol=1e-5, **two)
    assert "part0[cuda.blockIdx.x] = " in src and "range(gtid, 30, 32)" in src and ONE_BLOCK not in src
    # the second reduction reads the first one's result: its first pass combines the partials
    src = check(lambda x: ((x - x.mean()) ** 2).mean(), t(40), rtol=1e-5, atol=1e-6, **two)
    assert src.count("[cuda.blockIdx.x] = ") == 2 and "for j in range(tid, 4, 8):" in src
    check(lambda x: x - x.mean(), t(20), rtol=1e-5, atol=1e-6, **two)
    a = minaot.from_numpy(R.integers(-50, 50, (4, 16)).astype(np.int64))
    check(lambda a: (a.sum(), a.amin()), a, rtol=0, atol=0, **two)


def test_broadcast_and_transposed_inputs():
    check(lambda x, y: x.t() * y + 1.0, t(5, 3), t(3, 5))
    check(lambda x, s, b: x * s + b, t(4, 6), t(4, 1), t(6))
    check(lambda x, y: x * y.sum(), t(4, 6), t(3))          # a rank-0 kernel output feeds another


def test_int64_and_bool():
    a = minaot.from_numpy(np.arange(12, dtype=np.int64).reshape(3, 4))
    b = minaot.from_numpy(np.array([1, -2, 3, -4], dtype=np.int64))
    check(lambda a, b: (a * b - a).amax(dim=1) + (a > b).sum(dim=1), a, b, rtol=0, atol=0)
    long = minaot.from_numpy(R.integers(-50, 50, (4, 16)).astype(np.int64))
    check(lambda a: (a.amax(dim=1), a.amin(dim=1), a.sum(dim=1)), long, rtol=0, atol=0)
    check(lambda x, y: minaot.where(x > y, x, y * 2.0), t(10), t(10))


def test_float64():
    x, y = t(4, 6, dtype=np.float64).abs(), t(4, 6, dtype=np.float64).abs()
    check(lambda x, y: (x.exp() * y).sum(dim=1).sqrt(), x, y, rtol=1e-12, atol=1e-12)
    check(lambda x: minaot.softmax(x, dim=1), t(3, 16, dtype=np.float64), rtol=1e-12, atol=1e-12)


def test_other_pointwise_ops_and_casts():
    check(lambda x: x.sigmoid() + x.tanh() * x.abs() - x.sign(), t(20))
    check(lambda x: x.clamp(-0.5, 0.5) + minaot.maximum(x, x * 0.5), t(20))
    check(lambda x: (x > 0).float() + x.to(minaot.float64).float(), t(12))
    check(lambda x: x.sum() * 2.0, t(3, 3), rtol=1e-5, atol=1e-6)


def test_nan_and_inf_follow_numpy():
    x = minaot.from_numpy(np.array([[1.0, np.nan, 3.0] + [0.5] * 13,
                                    [-np.inf, 2.0, 0.0] + [-1.0] * 13], dtype=np.float32))
    src = check(lambda x: (x.amax(dim=1), x / 0.0, minaot.maximum(x, x * 0.0), x.amin(dim=1)), x)
    assert ROW in src                    # NaN goes through the warp shuffles
    check(lambda x: x.abs().log(), minaot.from_numpy(np.array([0.0, 1.0, 2.0], np.float32)))
