"""Recording and replaying a CUDA program's launches (minaot/cuda_replay.py), on stand-ins.

Replays only happen on a GPU (the simulator has no driver launches to replay); there the
CUDA suites run with ``MINAOT_CUDA_REPLAY=check``, which replays every program's first
call and checks its results against the suites' oracles (see the issue note).  Here, without
a GPU, the bookkeeping itself is checked with stand-in arrays, launches and pool: which
memory each pointer is found in, how a replay puts the new addresses into the words, the
order of takes and gives, and every reason a recording must fail.
"""

import numpy as np
import pytest

from minaot import cuda as mc
from minaot import cuda_replay as cr


class Ptr:
    def __init__(self, value):
        self.value = value

    def __int__(self):
        return self.value


class Mem:
    def __init__(self, address):
        self.device_pointer = Ptr(address)


class Arr:
    """A stand-in device array: an address, a shape, strides (bytes) and a dtype."""

    def __init__(self, address, shape, dtype=np.float32, strides=None):
        self.dtype = np.dtype(dtype)
        self.shape = tuple(shape)
        self.strides = tuple(strides) if strides is not None else tuple(
            s * self.dtype.itemsize for s in mc.c_strides(shape))
        self.size = int(np.prod(shape))
        self.gpu_data = Mem(address)


class Plan:
    """A stand-in kept launch: ``pointers`` are (word, argument) pairs as in cuda_runtime."""

    def __init__(self, name, pointers, log):
        self.name, self.pointers, self.stream, self.config, self.handle = name, pointers, 0, (1, 1), name
        self.driver_launch = lambda stream, config, handle, *words: log.append((handle, words))


class Pool:
    """Blocks at the addresses given, handed out in order, given back to a free list."""

    simulator = False

    def __init__(self, addresses):
        self.fresh = list(addresses)
        self.free = []
        self.log = []

    def take(self, nbytes):
        block = self.free.pop() if self.free else Mem(self.fresh.pop(0))
        self.log.append(("take", int(block.device_pointer)))
        return block, nbytes

    def give(self, block, size):
        self.log.append(("give", int(block.device_pointer)))
        self.free.append(block)

    def address(self, block):
        return int(block.device_pointer)


@pytest.fixture
def stand_in_roots(monkeypatch):
    """Results of a replay made as stand-ins over the replay's blocks."""
    monkeypatch.setattr(mc, "root_over", lambda pool, block, size, n, dtype:
                        Arr(int(block.device_pointer), (n,), dtype))
    monkeypatch.setattr(mc, "strided", lambda root, offset, shape, strides:
                        Arr(int(root.gpu_data.device_pointer) + offset, shape, root.dtype, strides))


def record_two_kernels(x, y, fixed=()):
    """Record: t = k1(x[1:], const) into a new block; u = k2(t, y) into a new block; t dies
    before u is allocated (so the pool hands t's block to u); the result is u."""
    log = []
    k1, k2 = Plan("k1", [(0, 0), (1, 1), (3, 2)], log), Plan("k2", [(0, 0), (1, 1), (2, 2)], log)
    rec = cr.Recording([x, y], list(fixed))
    t_block = Mem(9000)
    t = Arr(9000, (8,))
    rec.allocated(t, t_block, 32, 8, np.dtype(np.float32))
    rec.launched(k1, [x.gpu_data.device_pointer.value + 4, 0 if not fixed else 777, 7, 9000])
    rec.freed(t_block)
    u = Arr(9000, (8,))
    rec.allocated(u, t_block, 32, 8, np.dtype(np.float32))
    rec.launched(k2, [9000, y.gpu_data.device_pointer.value, 9000 + 16])
    return rec, log, u


def test_a_replay_puts_each_pointer_where_its_memory_is_now(stand_in_roots):
    x, y = Arr(1000, (9,)), Arr(5000, (4,))
    rec, log, u = record_two_kernels(x, y)
    assert rec.failed is None
    u_view = Arr(9000 + 8, (2,), strides=(8,))
    assert rec.finish([x, y], [(u_view, u), (y, None)]) is rec
    pool = Pool([20000, 30000])
    x2, y2 = Arr(3000, (9,)), Arr(7000, (4,))
    out = rec.replay([x2, y2], pool)
    # k1's words: x's new address + 4, the null pointer kept, the scalar kept, t's new block
    # k2's words: u's block (t's, given back and taken again), y's new address, u's + 16
    assert log == [("k1", (3004, 0, 7, 20000)), ("k2", (20000, 7000, 20016))]
    assert pool.log == [("take", 20000), ("give", 20000), ("take", 20000)]
    (arr, root), (same, none) = out
    assert int(arr.gpu_data.device_pointer) == 20008 and arr.shape == (2,) and arr.strides == (8,)
    assert int(root.gpu_data.device_pointer) == 20000 and root.shape == (8,)
    assert same is y2 and none is None


def test_pointers_into_the_programs_own_memory_stay(stand_in_roots):
    x, y = Arr(1000, (9,)), Arr(5000, (4,))
    const = Arr(770, (4,))
    rec, log, u = record_two_kernels(x, y, fixed=[const])
    rec.finish([x, y], [(u, u)])
    rec.replay([Arr(3000, (9,)), Arr(7000, (4,))], Pool([20000]))
    assert log[0] == ("k1", (3004, 777, 7, 20000))


def test_intermediates_still_live_at_the_end_go_back_to_the_pool(stand_in_roots):
    x = Arr(1000, (4,))
    log = []
    k = Plan("k", [(0, 0), (1, 1), (2, 2)], log)
    rec = cr.Recording([x], [])
    a, b = Arr(9000, (4,)), Arr(9100, (4,))
    blocks = Mem(9000), Mem(9100)           # alive, as a pool's blocks are
    rec.allocated(a, blocks[0], 16, 4, np.dtype(np.float32))
    rec.allocated(b, blocks[1], 16, 4, np.dtype(np.float32))
    rec.launched(k, [1000, 9000, 9100])
    rec.finish([x], [(b, b)])
    pool = Pool([40000, 50000])
    (arr, _), = rec.replay([Arr(2000, (4,))], pool)
    assert log == [("k", (2000, 40000, 50000))]
    assert int(arr.gpu_data.device_pointer) == 50000
    assert pool.log == [("take", 40000), ("take", 50000), ("give", 40000)]


def test_scratch_buffers_are_asked_for_again():
    x = Arr(1000, (4,))
    log = []
    k = Plan("k", [(0, 0), (1, 1)], log)
    rec = cr.Recording([x], [])
    now = {"buf": Arr(60000, (16,))}
    rec.buffer(now["buf"], lambda: now["buf"])
    rec.launched(k, [1000, 60000 + 8])
    rec.finish([x], [(x, None)])
    now["buf"] = Arr(70000, (32,))           # the buffer grew meanwhile
    rec.replay([Arr(2000, (4,))], Pool([]))
    assert log == [("k", (2000, 70008))]


@pytest.mark.parametrize("case", ["unknown pointer", "upload", "overlapping inputs",
                                  "result of unknown memory", "freed then used"])
def test_what_makes_a_recording_fail(case):
    x, y = Arr(1000, (9,)), Arr(5000, (4,))
    log = []
    k = Plan("k", [(0, 0), (1, 1)], log)
    if case == "overlapping inputs":
        rec = cr.Recording([x, Arr(1016, (4,))], [])
        assert rec.failed == "inputs share memory"
        return
    rec = cr.Recording([x, y], [])
    if case == "unknown pointer":
        rec.launched(k, [1000, 123456])
        assert "does not know" in rec.failed
    elif case == "upload":
        rec.fail("a host array is copied to the device")
        assert rec.finish([x, y], []) is None
    elif case == "result of unknown memory":
        assert rec.finish([x, y], [(Arr(1000, (2,)), Arr(1000, (9,)))]) is None
        assert "neither" in rec.failed
    elif case == "freed then used":
        block = Mem(9000)
        rec.allocated(Arr(9000, (4,)), block, 16, 4, np.dtype(np.float32))
        rec.freed(block)
        rec.launched(k, [1000, 9000])
        assert "does not know" in rec.failed


def test_a_replay_refuses_inputs_that_overlap(stand_in_roots):
    x, y = Arr(1000, (9,)), Arr(5000, (4,))
    rec, log, u = record_two_kernels(x, y)
    rec.finish([x, y], [(u, u)])
    assert rec.replay([Arr(3000, (9,)), Arr(3008, (4,))], Pool([1])) is None
    assert log == []


def test_disjoint():
    assert cr.disjoint([0, 10, 20], [10, 10, 5])
    assert not cr.disjoint([0, 9], [10, 10])
    assert cr.disjoint([0, 0], [0, 10])          # an empty array overlaps nothing


def test_programs_record_nothing_under_the_simulator_or_when_switched_off(monkeypatch):
    monkeypatch.setenv("MINAOT_CUDA_REPLAY", "0")
    assert not cr.enabled()
    monkeypatch.setenv("MINAOT_CUDA_REPLAY", "check")
    assert cr.enabled() and cr.checking()
    monkeypatch.delenv("MINAOT_CUDA_REPLAY")
    assert cr.enabled() and not cr.checking()
