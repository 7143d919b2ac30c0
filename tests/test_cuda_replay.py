"""Recording and replaying a CUDA program's launches (minaot/cuda_replay.py) and launching
them as one CUDA graph (minaot/cuda_graph.py), on stand-ins.

Replays only happen on a GPU (the simulator has no driver launches to replay); there the
CUDA suites run with ``MINAOT_CUDA_REPLAY=check``, which replays every program's first
call and checks its results against the suites' oracles (see the issue note).  Here, without
a GPU, the bookkeeping itself is checked with stand-in arrays, launches and pool: which
memory each pointer is found in, how a replay puts the new addresses into the words, the
order of takes and gives, and every reason a recording must fail; and for graphs, the
kernel parameters a node keeps, which nodes get new words for a new table of addresses,
the instances kept per table, and when a replay launches one by one instead.
"""

import ctypes

import numpy as np
import pytest

from minaot import cuda as mc
from minaot import cuda_graph as cg
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


# ------------------------------------------------------------------ CUDA graphs
class GraphPlan(Plan):
    """A stand-in kept launch with its configuration, as real plans have (so a graph is made)."""

    def __init__(self, name, pointers, log):
        super().__init__(name, pointers, log)
        self.dims = ((1, 1, 1), (32, 1, 1), 0)


class FakeGraph(cg.Graph):
    """A Graph whose driver calls are logged: instances are numbered."""

    def __init__(self, launches, table, log):
        self.log, self.made = log, 0
        super().__init__(launches, table)

    def _build(self):
        self.log.append(("build", [n.plan.name for n in self.nodes], self.table))

    def _instantiate(self):
        self.log.append(("instantiate",))
        self.made += 1
        return self.made

    def _set(self, exe, node):
        self.log.append(("set", exe, node.plan.name, [v.value for v in node.values]))

    def _launch(self, exe):
        self.log.append(("launch", exe))

    def __del__(self):
        pass


def test_a_node_keeps_each_word_as_a_kernel_parameter():
    words = [0, 0, 12, 4, 1000, 3, 4, 16, 4, ctypes.c_float(2.5), True, ctypes.c_int32(-7)]
    node = cg.Node(GraphPlan("k", [], []), words, ((4, 0, 8),))
    assert [ctypes.sizeof(v) for v in node.values] == [8] * 9 + [4, 1, 4]
    assert node.values[9].value == 2.5 and node.values[10].value is True
    assert node.values[11].value == -7 and node.values[9] is not words[9]   # a copy
    assert [node.pointers[i] for i in range(len(words))] == \
        [ctypes.addressof(v) for v in node.values]
    node.put([5000])
    assert node.values[4].value == 5008
    with pytest.raises(cg.GraphError, match="list"):
        cg.Node(GraphPlan("k", [], []), [[1]], ())


def test_a_graph_keeps_an_instance_per_table_and_updates_only_the_nodes_that_changed(
        monkeypatch):
    monkeypatch.setattr(cg, "EXECS", 2)
    log = []
    a = (GraphPlan("a", [], []), [100, 200], ((0, 0, 0), (1, 1, 4)))   # inputs 0 and 1
    b = (GraphPlan("b", [], []), [300, 7], ((0, 2, 0),))              # input 2
    g = FakeGraph([a, b], [100, 196, 300], log)
    assert log == [("build", ["a", "b"], (100, 196, 300))]
    assert g.launch([100, 196, 300]) and g.launch([100, 196, 300])
    assert log[1:] == [("instantiate",), ("launch", 1), ("launch", 1)]      # words as built
    del log[:]
    g.launch([100, 196, 900])               # input 2 moved: a second instance, b's words
    g.launch([100, 196, 300])               # the first table again: its instance as it is
    assert log == [("instantiate",), ("set", 2, "b", [900, 7]), ("launch", 2), ("launch", 1)]
    del log[:]
    g.launch([500, 196, 900])               # a third table: the instance used longest ago
    assert log == [("set", 2, "a", [500, 200]), ("launch", 2)]
    assert g.updates == 2 and g.launches == 5 and len(g.execs) == 2


def test_a_graph_is_not_launched_while_another_thread_launches_it():
    log = []
    g = FakeGraph([(GraphPlan("a", [], []), [100], ((0, 0, 0),))], [100], log)
    g.lock.acquire()
    assert g.launch([100]) is False and ("launch", 1) not in log
    g.lock.release()
    assert g.launch([100]) is True


@pytest.fixture
def fake_graphs(monkeypatch):
    """Recordings build FakeGraphs; the list of the graphs made and the driver log."""
    made, log = [], []

    def build(launches, table):
        made.append(FakeGraph(launches, table, log))
        return made[-1]
    monkeypatch.setattr(cr._graph, "build", build)
    monkeypatch.setattr(cr._graph, "enabled", lambda: True)
    return made, log


def record_two_graph_kernels(x, y):
    """As record_two_kernels, with plans that keep their configuration."""
    log = []
    k1 = GraphPlan("k1", [(0, 0), (1, 1), (3, 2)], log)
    k2 = GraphPlan("k2", [(0, 0), (1, 1), (2, 2)], log)
    rec = cr.Recording([x, y], [])
    t_block = Mem(9000)
    rec.allocated(Arr(9000, (8,)), t_block, 32, 8, np.dtype(np.float32))
    rec.launched(k1, [x.gpu_data.device_pointer.value + 4, 0, 7, 9000])
    rec.freed(t_block)
    u = Arr(9000, (8,))
    rec.allocated(u, t_block, 32, 8, np.dtype(np.float32))
    rec.launched(k2, [9000, y.gpu_data.device_pointer.value, 9000 + 16])
    return rec.finish([x, y], [(u, u)]), log


def test_a_replay_takes_its_blocks_then_launches_the_graph(stand_in_roots, fake_graphs):
    made, log = fake_graphs
    rec, launched = record_two_graph_kernels(Arr(1000, (9,)), Arr(5000, (4,)))
    assert rec.graph is None                # made at the first replay
    pool = Pool([20000])
    (arr, _), = rec.replay([Arr(3000, (9,)), Arr(7000, (4,))], pool)
    assert pool.log == [("take", 20000), ("give", 20000), ("take", 20000)]
    assert int(arr.gpu_data.device_pointer) == 20000
    assert launched == []                   # nothing launched one by one
    graph, = made
    assert rec.graph is graph and log[0][0] == "build" and log[-1] == ("launch", 1)
    # the nodes' words: k1 (x + 4, null, 7, t), k2 (u, y, u + 16), t and u one block
    assert [[v.value for v in n.values] for n in graph.nodes] == \
        [[3004, 0, 7, 20000], [20000, 7000, 20016]]
    rec.replay([Arr(3000, (9,)), Arr(7000, (4,))], Pool([20000]))
    assert len(made) == 1 and log[-1] == ("launch", 1) and graph.updates == 0


def test_the_pool_stays_locked_from_the_first_take_to_the_graph_launch(stand_in_roots,
                                                                      fake_graphs):
    """The intermediates' blocks go back to the pool before the graph that uses them is
    queued: no other thread may take one in between."""
    made, log = fake_graphs
    rec, _ = record_two_graph_kernels(Arr(1000, (9,)), Arr(5000, (4,)))

    class Lock:
        held = False

        def __enter__(self):
            self.held = True

        def __exit__(self, *exc):
            self.held = False

    class LockedPool(Pool):
        lock = Lock()

        def take(self, nbytes):
            self.log.append(("locked", self.lock.held))
            return super().take(nbytes)
    pool = LockedPool([20000])
    original = FakeGraph._launch
    FakeGraph._launch = lambda self, exe: log.append(("launch locked", pool.lock.held))
    try:
        rec.replay([Arr(3000, (9,)), Arr(7000, (4,))], pool)
    finally:
        FakeGraph._launch = original
    assert ("locked", False) not in pool.log and ("launch locked", True) in log
    assert not pool.lock.held


def test_a_replay_launches_one_by_one_where_the_pool_gave_memory_back(stand_in_roots,
                                                                      fake_graphs):
    """Blocks taken and given back during the bookkeeping may be freed by the driver when
    the pool runs out of memory and releases its free blocks; a graph launched afterwards
    would use freed memory, so the launches go one by one, in between the takes."""
    made, log = fake_graphs
    rec, launched = record_two_graph_kernels(Arr(1000, (9,)), Arr(5000, (4,)))

    class ReleasingPool(Pool):
        releases = 0

        def take(self, nbytes):
            self.releases += 1
            return super().take(nbytes)
    pool = ReleasingPool([20000, 30000, 40000])
    rec.replay([Arr(3000, (9,)), Arr(7000, (4,))], pool)
    assert made == [] and rec.graph is None
    assert launched == [("k1", (3004, 0, 7, 20000)), ("k2", (20000, 7000, 20016))]
    assert pool.log[:3] == [("take", 20000), ("give", 20000), ("take", 20000)]
    assert pool.log[3] == ("give", 20000)   # bookkeeping undone, then done again
    assert pool.log[4:] == [("take", 20000), ("give", 20000), ("take", 20000)]


def test_a_graph_that_cannot_be_built_leaves_the_launches_one_by_one(stand_in_roots,
                                                                     monkeypatch):
    monkeypatch.setattr(cr._graph, "enabled", lambda: True)
    calls = []
    monkeypatch.setattr(cr._graph, "build", lambda *a: calls.append(1) or "no driver")
    rec, launched = record_two_graph_kernels(Arr(1000, (9,)), Arr(5000, (4,)))
    for _ in range(2):
        rec.replay([Arr(3000, (9,)), Arr(7000, (4,))], Pool([20000]))
    assert rec.graph is False and rec.no_graph == "no driver" and calls == [1]  # tried once
    assert launched == [("k1", (3004, 0, 7, 20000)), ("k2", (20000, 7000, 20016))] * 2


def test_no_graph_where_graphs_are_off(monkeypatch):
    monkeypatch.setenv("MINAOT_CUDA_GRAPHS", "0")
    rec, _ = record_two_graph_kernels(Arr(1000, (9,)), Arr(5000, (4,)))
    assert rec.graph is False


def test_the_pool_hands_out_the_free_block_with_the_lowest_address():
    """Whatever the order blocks come back in, the same free blocks give the same takes:
    a replayed call then meets the same addresses at every step (one graph instance)."""
    class Block:
        def __init__(self, address):
            self.device_pointer = Ptr(address)
    pool = mc.CachingAllocator(lambda size: None)
    blocks = [Block(a) for a in (3000, 1000, 2000)]
    for order in ([0, 1, 2], [2, 0, 1], [1, 2, 0]):
        for i in order:
            pool.give(blocks[i], 512)
        taken = [pool.take(100)[0] for _ in range(3)]
        assert [int(b.device_pointer) for b in taken] == [1000, 2000, 3000]
