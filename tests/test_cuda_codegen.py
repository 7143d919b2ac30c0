"""emit-numba-cuda: the generated source and launch configuration (no CUDA needed), and the
CUDA kernels' results under Numba's simulator (tests/cuda_cases.py, in a fresh process:
the simulator must be on before Numba is imported, and this process imported it long ago)."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import minaot
from minaot.codegen.numba_cpu import emit_numba_cpu
from minaot.codegen.numba_cuda import (COLUMN_REGISTERS, ROW_GROUP_REGISTERS, ROW_REGISTERS_MANY_LOADS,
                                       emit_numba_cuda, launch_config)
from minaot.ir import parse
from minaot.passes.fuse import fuse
from minaot.passes.lower_to_loops import lower_kernel

from test_fuse import prim_graph

pytestmark = pytest.mark.cuda

HERE = os.path.dirname(os.path.abspath(__file__))


def loop_fns(fn, *shapes):
    args = [minaot.from_numpy(np.ones(s, np.float32)) for s in shapes]
    g = fuse(prim_graph(fn, *args))
    return [lower_kernel(op, f"k{i}") for i, op in enumerate(o for o in g.ops if o.name == "kernel.fused")]


def softmax(x):
    return minaot.softmax(x, dim=1)


def test_cuda_cases_pass_under_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           os.path.join(HERE, "cuda_cases.py")],
                          cwd=os.path.dirname(HERE), env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"\d+ passed", out) and "skipped" not in out and "deselected" not in out, out


def test_source_uses_the_cpu_emitters_value_names():
    (k,) = loop_fns(softmax, (4, 64))
    cpu, gpu = emit_numba_cpu(k), emit_numba_cuda(k)
    names = set(re.findall(r"^\s+((?:v|acc)\d+) = ", gpu, re.M))
    assert names and names <= set(re.findall(r"^\s+((?:v|acc)\d+) = ", cpu, re.M))
    assert "@cuda.jit(cache=True, max_registers=48)\ndef k0(in0, out0):" in gpu
    assert "def launch(in0, out0):" in gpu
    assert "np.float32(-np.inf)" in gpu and "math.exp(" in gpu and "np.exp(" not in gpu


def test_row_kernels_unroll_light_walks_under_a_register_budget():
    """plan_unroll: a row whose walks read at most two global buffers counts its iterations
    (unrolled) and gets a register budget (48 for one buffer, 40 for two); a row reading
    three does neither."""
    (one,) = loop_fns(lambda x: (x * x).sum(dim=1), (4, 1024))
    src = emit_numba_cuda(one)
    assert "@cuda.jit(cache=True, max_registers=48)" in src and "for k in range(4):" in src
    (light,) = loop_fns(lambda x, w: (x * w).sum(dim=1), (4, 1024), (1024,))
    src = emit_numba_cuda(light)
    assert "@cuda.jit(cache=True, max_registers=40)" in src and "for k in range(4):" in src
    (heavy,) = loop_fns(lambda x, y, z: (x * y * z).sum(dim=1), (4, 1024), (4, 1024), (4, 1024))
    src = emit_numba_cuda(heavy)
    assert "max_registers" not in src and "in range(tid, 1024, 256):" in src
    assert "for k in range(" not in src
    (kept,) = loop_fns(lambda x, y, z: (x * y * z).sum(dim=1, keepdim=True) * x * y,
                       (4, 1024), (4, 1024), (4, 1024))
    src = emit_numba_cuda(kept)
    assert f"@cuda.jit(cache=True, max_registers={ROW_REGISTERS_MANY_LOADS})" in src
    assert src.count("cuda.local.array(4, np.float32)") == 2 and "in range(tid, " not in src
    # an explicit budget applies to every kernel; unroll=False unrolls nothing
    src = emit_numba_cuda(heavy, max_registers=64)
    assert "@cuda.jit(cache=True, max_registers=64)" in src
    src = emit_numba_cuda(light, unroll=False)
    assert "max_registers" not in src and "for k in range(" not in src


def test_mixed_kernel_source_at_benchmark_scale():
    """mix-reductions at layer_norm's backward shape of the benchmark (rows cut to 1024,
    the same per-block code): blocks of 256 threads each walk 32 rows, keep 16 partial
    sums per column reduction and thread in registers under ROW_GROUP_REGISTERS, store
    them once; 32 chunks are combined per column directly."""
    from minaot.passes.mix_reductions import mix_reductions
    from test_mix_reductions import graphs, layer_norm
    args = [minaot.from_numpy(np.ones(s, np.float32)).requires_grad_() for s in ((1024, 4096), (4096,), (4096,))]
    (_, _), (bw, _) = graphs(layer_norm, *args)
    g = mix_reductions(fuse(bw.clone()))
    (k,) = [op for op in g.ops if op.name == "kernel.fused"]
    loop = lower_kernel(k, "k")
    src = emit_numba_cuda(loop)
    assert f"@cuda.jit(cache=True, max_registers={ROW_GROUP_REGISTERS})" in src
    assert src.count("cuda.local.array(16, np.float32)   # this thread's partial column sums") == 2
    assert src.count("cuda.local.array(16, np.float32)   # this thread's part of a row") == 2
    assert "for r in range(32):" in src and "def fill(" not in src
    assert [(b, t) for _, b, t in launch_config(loop)] == [(32, 256), (4096, 32)]


def test_a_grid_with_a_block_per_work_item_has_no_stride_loop():
    """grid_walk: a row kernel (and a column walk) whose grid has a block for every work
    item binds the work item to the block; a grid smaller than the work strides over it."""
    (k,) = loop_fns(softmax, (4, 64))
    src = emit_numba_cuda(k)
    assert "\n    flat = cuda.blockIdx.x   # a block for every work item\n    i0 = flat\n" in src
    assert "gridDim" not in src
    src = emit_numba_cuda(k, max_blocks=2)
    assert "\n    for flat in range(cuda.blockIdx.x, 4, cuda.gridDim.x):\n        i0 = flat\n" in src
    (cols,) = loop_fns(lambda x: x.sum(dim=0), (1024, 64))
    src = emit_numba_cuda(cols)
    assert "group = cuda.blockIdx.x   # a block for every work item" in src
    assert f"@cuda.jit(cache=True, max_registers={COLUMN_REGISTERS})" in src
    assert "the next group may write" not in src
    src = emit_numba_cuda(cols, max_blocks=1)
    assert "for group in range(cuda.blockIdx.x, " in src and "the next group may write" in src


def test_launch_configuration_follows_the_sizes():
    (pw,) = loop_fns(lambda x: x * 2.0 + 1.0, (64, 64))
    assert launch_config(pw) == [("k0", 16, 256)]            # 4096 elements, one thread each
    assert launch_config(pw, max_blocks=4) == [("k0", 4, 256)]       # grid-stride loop
    (wide,) = loop_fns(softmax, (100, 300))
    assert launch_config(wide) == [("k0", 100, 256)]         # a block per row
    (narrow,) = loop_fns(softmax, (100, 64))
    assert launch_config(narrow) == [("k0", 100, 64)]
    (short,) = loop_fns(softmax, (100, 16))
    assert launch_config(short) == [("k0", 1, 100)]          # 16 < 32: a thread per row
    (full,) = loop_fns(lambda x: x.sum(), (50, 40))
    assert launch_config(full) == [("k0", 1, 256)]           # one block
    assert launch_config(full, grid_reduce_min=1000) == [    # two passes over a grid
        ("k0_0", 8, 256), ("k0_1", 1, 8)]
    (big,) = loop_fns(lambda x: x - x.mean(), (1 << 20,))
    assert launch_config(big) == [("k0_0", 1024, 256), ("k0_1", 4096, 256)]
    (cols,) = loop_fns(lambda x: x.sum(dim=0), (64, 48))
    assert [c[0] for c in launch_config(cols)] == ["k0_0", "k0_1"]   # chunks, then columns


def test_pointwise_kernel_source():
    (k,) = loop_fns(lambda x, b: (x + b).relu(), (4, 8), (8,))
    src = emit_numba_cuda(k)
    assert "for flat in range(cuda.grid(1), 32, cuda.gridsize(1)):" in src
    # the work item's index, declared non-negative, binds the loops' indices
    assert "flat = nonnegative(flat)\n        i0 = flat // 8\n        i1 = flat % 8\n" in src
    assert "k0_launch = Launcher(k0, 1, 32)" in src and "k0_launch(in0, in1, out0)" in src
    assert "syncthreads" not in src
    # x and the result have the domain's shape and are read and written at the item's own
    # indices: by the flat index where contiguous; the broadcast bias by its own index
    assert "load_at(in0, flat, (i0, i1))" in src and "store_at(out0, flat, (i0, i1), " in src
    assert "= in1[i1]" in src and "from minaot.kernels.flat_cuda import load_at, nonnegative, store_at" in src
    # a column walk's item reads by the element's C-order offset; a row kernel and a 1-d
    # buffer index as before
    (cols,) = loop_fns(lambda x: (x * 2.0).sum(dim=0), (64, 48))
    assert re.search(r"= load_at\(in0, (\w+) \* 48 \+ (\w+), \(\1, \2\)\)",
                     emit_numba_cuda(cols))
    (row,) = loop_fns(softmax, (4, 64))
    (vec,) = loop_fns(lambda x: x * 2.0, (32,))
    assert "load_at" not in emit_numba_cuda(row) + emit_numba_cuda(vec)


def test_unsupported_forms_raise_naming_the_op(monkeypatch):
    import minaot.codegen.numba_cuda as numba_cuda
    (pw,) = loop_fns(lambda x: x.tanh(), (8,))
    monkeypatch.setitem(numba_cuda.UNSUPPORTED, "math.tanh", "not in this test")
    with pytest.raises(NotImplementedError, match="math.tanh"):
        emit_numba_cuda(parse(str(pw)))
    monkeypatch.undo()
    (full,) = loop_fns(lambda x: x.sum(), (64,))
    text = str(full)
    assert text.count("arith.addf") == 1
    with pytest.raises(NotImplementedError, match="arith.subf"):
        emit_numba_cuda(parse(text.replace("arith.addf", "arith.subf")))


def test_max_threads_is_a_power_of_two():
    (k,) = loop_fns(softmax, (4, 8))
    with pytest.raises(ValueError, match="power of two"):
        emit_numba_cuda(k, max_threads=48)


def _kernel_lines(body):
    from minaot.codegen.numba_cuda import FREE, SITE, _Kernel
    k = _Kernel("k", "")
    k.lines = [line.replace("<site>", SITE).replace("<free>", FREE)
               for line in body.strip("\n").splitlines()]
    return k


def test_free_barriers_go_only_where_another_barrier_separates_two_runs():
    from minaot.codegen.numba_cuda import _free_barriers
    site = "    cuda.syncthreads()<site>\n    a = sm_f32_w{n}[0]\n    cuda.syncthreads()<free>\n"

    def body(text, depth):
        return "".join("    " * depth + line + "\n" for line in text.splitlines())

    two = "for r in range(32):\n" + body(site.format(n=0) + site.format(n=1), 0)
    one = "for r in range(32):\n" + body(site.format(n=0), 0)
    nested = ("for r in range(32):\n" + body(site.format(n=0), 0) + "    for q in range(4):\n"
              + body(site.format(n=1), 1))
    top = "".join(line.strip() + "\n" for line in site.format(n=0).splitlines())
    cases = {two: 2, one: 0, nested: 0, top: 1, "if x:\n" + site.format(n=0): 0}
    for text, dropped in cases.items():
        k = _kernel_lines(body(text, 1))
        out = _free_barriers(k)
        assert len(k.lines) - len(out) == dropped, text
        assert not any("\x00" in line for line in out)
        assert sum("syncthreads" in line for line in out) == text.count("syncthreads") - dropped


def test_two_reductions_of_a_walked_row_share_no_array_and_keep_one_barrier_each():
    # a block walks several rows (a grid smaller than the rows): max and sum of softmax
    # each read their own array of warps' values, so the barrier after each read goes
    (k,) = loop_fns(lambda x: minaot.softmax(x, dim=1), (64, 512))
    src = emit_numba_cuda(k, max_threads=128, max_blocks=8)
    body = src[src.index("@cuda.jit"):src.index("# each launch")]
    assert "for flat in range(cuda.blockIdx.x, 64, cuda.gridDim.x):" in body
    assert "sm_f32_w0[tid // 32] = " in body and "sm_f32_w1[tid // 32] = " in body
    assert body.count("cuda.syncthreads()") == 2 and "shared memory is free" not in body
    # one reduction in the walk keeps the barrier after its read
    (k,) = loop_fns(lambda x: x.sum(dim=1), (64, 512))
    body = emit_numba_cuda(k, max_threads=128, max_blocks=8)
    assert body.count("cuda.syncthreads()") == 2 and "shared memory is free" in body
