"""The integer dtypes int32, int16, int8 and uint8 (minaot/dtypes.py) against PyTorch: the
promotion table for every pair of dtypes and for Python and numpy scalars; pointwise,
reduction, scan, sort and index ops eagerly and compiled with the numba backend (one kernel
per op chain, so wrapping around in the middle of a fused kernel is checked); casts,
creation functions, numpy round trips, overflow errors; the IR spelling (i32 i16 i8 ui8)
and the generated kernels' typed constants and casts; and, in a fresh process, the same ops
on CUDA tensors under Numba's simulator (eager and ``backend="cuda"``)."""

import itertools
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import minaot
from minaot import dtypes as dt

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.tensor

DTYPES = ["float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"]
INTS = ["int32", "int16", "int8", "uint8", "int64"]
TD = {name: getattr(torch, name) for name in DTYPES}


def mdt(name):
    return dt.from_name(name)


def values(name, shape, seed=0):
    """Integers of dtype ``name`` with its extremes (int64: +-2^40, where ``//`` through
    float64 is still exact) and small values, so that sums and products wrap around."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(name)
    lo, hi = max(int(info.min), -300), min(int(info.max), 300)
    a = rng.integers(lo, hi + 1, shape).astype(name)
    a.flat[0] = min(int(info.max), 2**40)
    a.flat[1] = max(int(info.min), -2**40)
    return a


def to_np(out):
    if isinstance(out, torch.Tensor):
        return str(out.dtype).replace("torch.", ""), out.detach().numpy()
    return out.dtype.name, out.detach().cpu().numpy()


def same(got, want, what):
    (gd, g), (wd, w) = to_np(got), to_np(want)
    assert gd == wd, f"{what}: dtype {gd}, PyTorch's {wd}"
    assert g.shape == w.shape, f"{what}: shape {g.shape}, PyTorch's {w.shape}"
    if g.dtype.kind == "f":
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5, err_msg=what)
    else:
        np.testing.assert_array_equal(g, w, err_msg=what)


# ------------------------------------------------------------------ promotion
class _Shape:
    def __init__(self, dtype, ndim):
        self.dtype, self.ndim = dtype, ndim


@pytest.mark.parametrize("a,b", list(itertools.product(DTYPES, repeat=2)))
def test_promotion_of_every_pair_matches_torch(a, b):
    assert minaot.promote_types(mdt(a), mdt(b)).name == str(torch.promote_types(TD[a], TD[b]))[6:]
    for na, nb in [(1, 1), (1, 0), (0, 1), (0, 0)]:
        want = torch.result_type(torch.zeros((1,) * na, dtype=TD[a]), torch.zeros((1,) * nb, dtype=TD[b]))
        got = dt.result_type(_Shape(mdt(a), na), _Shape(mdt(b), nb))
        assert got.name == str(want)[6:], (a, b, na, nb)
    # and what add really returns (the dispatcher's promotion), eagerly
    x = minaot.ones(2, dtype=mdt(a))
    y = minaot.ones((), dtype=mdt(b))
    if "bool" not in (a, b) or a == b:
        assert (x + y).dtype.name == str((torch.ones(2, dtype=TD[a]) + torch.ones((), dtype=TD[b])).dtype)[6:]


@pytest.mark.parametrize("a", DTYPES)
@pytest.mark.parametrize("scalar", [True, 3, -1, 200, 2**40, 2.5, np.int64(7), np.float64(0.5),
                                    ], ids=repr)
def test_promotion_with_python_and_numpy_scalars_matches_torch(a, scalar):
    want = torch.result_type(torch.zeros(2, dtype=TD[a]), scalar)
    assert dt.result_type(_Shape(mdt(a), 1), scalar).name == str(want)[6:]
    if a != "bool":
        t = torch.tensor([1, 2], dtype=TD[a])
        same(minaot.tensor([1, 2], dtype=mdt(a)) * scalar, t * scalar, f"{a} * {scalar!r}")


def test_the_examples_of_the_brief():
    i32 = minaot.tensor([1, 2], dtype=minaot.int32)
    assert (i32 + minaot.tensor([1, 2])).dtype is minaot.int64
    assert (i32 + 1).dtype is minaot.int32
    assert (i32 + minaot.ones(2)).dtype is minaot.float32
    assert (minaot.ones(2, dtype=minaot.uint8) + minaot.ones(2, dtype=minaot.int8)).dtype is minaot.int16
    assert (minaot.tensor([True, False]) + i32).dtype is minaot.int32
    assert (i32 / i32).dtype is minaot.float32 and minaot.true_divide(i32, 2).dtype is minaot.float32
    assert i32.sum().dtype is minaot.int64 and i32.prod().dtype is minaot.int64
    assert i32.cumsum(0).dtype is minaot.int64 and i32.argmax().dtype is minaot.int64
    assert minaot.int is minaot.int32 and minaot.short is minaot.int16
    assert minaot.float is minaot.float32 and minaot.long is minaot.int64


# ------------------------------------------------------------------ ops, eager and compiled
OPS = {
    "add": lambda M, x, y: x + y, "sub": lambda M, x, y: x - y, "mul": lambda M, x, y: x * y,
    "add_scalar": lambda M, x, y: x + 100, "mul_scalar": lambda M, x, y: x * 1000,
    "wrapped_scalar": lambda M, x, y: x + 2**33 + 7, "rsub": lambda M, x, y: 3 - x,
    "div": lambda M, x, y: x / 7, "floordiv": lambda M, x, y: x // 7,
    "floordiv_neg": lambda M, x, y: x // -3, "mod": lambda M, x, y: x % 5,
    "mod_neg": lambda M, x, y: x % -3, "fmod": lambda M, x, y: M.fmod(x, 3),
    "neg": lambda M, x, y: -x, "abs": lambda M, x, y: x.abs(), "sign": lambda M, x, y: x.sign(),
    "pow2": lambda M, x, y: x ** 2, "pow3": lambda M, x, y: x.pow(3),
    "sqrt": lambda M, x, y: x.abs().sqrt(), "exp": lambda M, x, y: (x % 5).exp(),
    "maximum": lambda M, x, y: M.maximum(x, y), "minimum": lambda M, x, y: M.minimum(x, y),
    "eq": lambda M, x, y: x == y, "lt": lambda M, x, y: x < y, "ge_scalar": lambda M, x, y: x >= 3,
    "lt_float": lambda M, x, y: x < 2.5, "where": lambda M, x, y: M.where(x > y, x, y),
    "where_scalar": lambda M, x, y: M.where(x > 0, x, 5), "clamp": lambda M, x, y: x.clamp(-5, 50),
    "clamp_float": lambda M, x, y: x.clamp(0.5), "relu": lambda M, x, y: M.relu(x),
    "and": lambda M, x, y: x & y, "or": lambda M, x, y: x | 5, "xor": lambda M, x, y: x ^ y,
    "invert": lambda M, x, y: ~x,
    "float": lambda M, x, y: x.float(), "double": lambda M, x, y: x.double(),
    "long": lambda M, x, y: x.long(), "bool": lambda M, x, y: x.bool(),
    "int": lambda M, x, y: x.int(), "short": lambda M, x, y: x.short(),
    "char": lambda M, x, y: x.char(), "byte": lambda M, x, y: x.byte(),
    # toward zero, then around for the narrow dtypes (a float beyond int32 is undefined:
    # x86 gives INT_MIN, a GPU saturates; so is PyTorch's)
    "float_to_int": lambda M, x, y: ((x % 100000).float() * 1.7 - 0.5).to(x.dtype),
    "with_int64": lambda M, x, y: x + y.long(), "with_float": lambda M, x, y: x * y.float(),
    "with_uint8": lambda M, x, y: x + y.byte(), "uint8_int8": lambda M, x, y: x.byte() + y.char(),
    "with_bool": lambda M, x, y: x + (y > 0), "with_0d": lambda M, x, y: x + M.tensor(5),
    "with_0d_float": lambda M, x, y: x + M.tensor(1.5, dtype=M.float64),
    "chain": lambda M, x, y: ((x * y + 7) // 2 > x).to(x.dtype) * x - y,
    "isnan": lambda M, x, y: x.isnan(), "round": lambda M, x, y: x.round(),
    "logical_and": lambda M, x, y: M.logical_and(x, y),
    "masked_fill": lambda M, x, y: x.masked_fill(x > y, 7),
    "addcmul": lambda M, x, y: M.addcmul(x, x, y, value=2),
    # reductions, scans, sorting
    "sum": lambda M, x, y: x.sum(), "sum_dim": lambda M, x, y: x.sum(0),
    "sum_own_dtype": lambda M, x, y: x.sum(1, dtype=x.dtype), "prod": lambda M, x, y: (x % 3).prod(1),
    "amax": lambda M, x, y: x.amax(1), "amin": lambda M, x, y: x.amin(0),
    "max": lambda M, x, y: x.max(), "min": lambda M, x, y: x.min(),
    "argmax": lambda M, x, y: x.argmax(1), "argmin": lambda M, x, y: x.argmin(),
    "all": lambda M, x, y: x.all(), "any": lambda M, x, y: x.any(1),
    "count_nonzero": lambda M, x, y: M.count_nonzero(x), "nansum": lambda M, x, y: x.nansum(),
    "cumsum": lambda M, x, y: x.cumsum(1), "cumsum_own_dtype": lambda M, x, y: x.cumsum(0, dtype=x.dtype),
    "diff": lambda M, x, y: x.diff(),
    "matmul": lambda M, x, y: (x % 4) @ (y % 4).t(), "trace": lambda M, x, y: x[:, :3].trace(),
    # shapes
    "cat": lambda M, x, y: M.cat([x, y.byte()]), "stack": lambda M, x, y: M.stack([x, y]),
    "flip": lambda M, x, y: x.flip(0), "roll": lambda M, x, y: x.roll(1, 1),
    "tril": lambda M, x, y: x.tril(), "getitem": lambda M, x, y: x[1:, ::2],
}
#: ops with more than one result (or a data-dependent shape): eager only, or one at a time
MULTI = {
    "max_dim": lambda M, x, y: tuple(x.max(1)), "min_dim": lambda M, x, y: tuple(x.min(0)),
    "sort": lambda M, x, y: tuple(x.sort(1)), "argsort": lambda M, x, y: x.argsort(0, descending=True),
    "topk": lambda M, x, y: tuple(x.topk(2, 1)), "aminmax": lambda M, x, y: tuple(M.aminmax(x)),
}
#: refused as PyTorch refuses them
REFUSED = {
    "mean": lambda M, x, y: x.mean(), "var": lambda M, x, y: x.var(),
    "softmax": lambda M, x, y: x.softmax(0), "requires_grad": lambda M, x, y: x.requires_grad_(),
    "inplace_float": lambda M, x, y: x.clone().mul_(1.5), "div_": lambda M, x, y: x.clone().div_(2),
    "pow_negative": lambda M, x, y: x ** -1, "lerp": lambda M, x, y: M.lerp(x, y, 0.5),
    "floordiv_zero": lambda M, x, y: x // 0, "mod_zero": lambda M, x, y: x % M.zeros_like(x),
    "matmul_mixed": lambda M, x, y: x @ y.double().t(),
}


def _inputs(name):
    a, b = values(name, (3, 4), 0), values(name, (3, 4), 1)
    return (torch.from_numpy(a.copy()), torch.from_numpy(b.copy()),
            minaot.from_numpy(a.copy()), minaot.from_numpy(b.copy()))


def _expected(name, table):
    ta, tb, _, _ = _inputs(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {k: f(torch, ta, tb) for k, f in table.items()}


@pytest.mark.parametrize("name", INTS)
def test_ops_eagerly_match_torch(name):
    want = _expected(name, {**OPS, **MULTI})
    _, _, x, y = _inputs(name)
    for k, f in {**OPS, **MULTI}.items():
        got = f(minaot, x, y)
        if isinstance(got, tuple):
            for i, (g, w) in enumerate(zip(got, want[k])):
                same(g, w, f"{name} {k}[{i}]")
        else:
            same(got, want[k], f"{name} {k}")


@pytest.mark.parametrize("name", INTS)
def test_ops_compiled_match_torch(name):
    """Every op of ``OPS`` in one compiled function: its kernels fuse many of them, so a
    value that must wrap around in the middle of a kernel is checked too."""
    want = _expected(name, OPS)
    f = minaot.compile(lambda x, y: tuple(op(minaot, x, y) for op in OPS.values()), backend="numba")
    _, _, x, y = _inputs(name)
    for k, got in zip(OPS, f(x, y)):
        same(got, want[k], f"{name} {k} (compiled)")
    want = _expected(name, MULTI)
    for k, op in MULTI.items():
        got = minaot.compile(lambda x, y: op(minaot, x, y), backend="numba")(x, y)
        pairs = zip(got, want[k]) if isinstance(got, tuple) else [(got, want[k])]
        for i, (g, w) in enumerate(pairs):
            same(g, w, f"{name} {k}[{i}] (compiled)")


@pytest.mark.parametrize("name", ["int32", "uint8"])
def test_refusals_match_torch(name):
    ta, tb, x, y = _inputs(name)
    for k, f in REFUSED.items():
        with pytest.raises(Exception):
            f(torch, ta, tb)
        with pytest.raises((RuntimeError, TypeError, ValueError)):
            f(minaot, x, y)


def test_integer_overflow_wraps_like_torch():
    for name in ("int8", "uint8", "int16", "int32"):
        info = np.iinfo(name)
        a = np.array([info.max, info.min, 0], dtype=name)
        t, m = torch.from_numpy(a.copy()), minaot.from_numpy(a.copy())
        f = minaot.compile(lambda x: (x + 1, x - 1, x * 3, -x, x.abs(), (x + x) // 3), backend="numba")
        for got_eager, got_comp, want in zip(
                (m + 1, m - 1, m * 3, -m, m.abs(), (m + m) // 3), f(m),
                (t + 1, t - 1, t * 3, -t, t.abs(), (t + t) // 3)):
            same(got_eager, want, name)
            same(got_comp, want, name + " compiled")


def test_inplace_ops_keep_the_integer_dtype():
    x = minaot.tensor([1, 2], dtype=minaot.int8)
    assert x.add_(200) is x and x.tolist() == [-55, -54] and x.dtype is minaot.int8
    x.add_(minaot.tensor([1, 2], dtype=minaot.uint8))      # int16 result written back as int8
    assert x.tolist() == [-54, -52]
    y = minaot.tensor([1, 2], dtype=minaot.int32)
    y.copy_(minaot.tensor([1.5, -2.7]))
    assert y.tolist() == [1, -2] and y.dtype is minaot.int32
    y += minaot.tensor([10, 20])
    assert y.tolist() == [11, 18] and y.dtype is minaot.int32
    with pytest.raises(minaot._errors.DTypeError, match="float32 can't be cast .* int32"):
        y *= 1.5


# ------------------------------------------------------------------ index tensors
IDX = {
    "getitem": lambda M, x, i: x[:, i],
    "index_select": lambda M, x, i: M.index_select(x, 1, i),
    "gather": lambda M, x, i: M.gather(x, 1, i.reshape(1, -1).expand(3, -1)),
    "scatter": lambda M, x, i: M.scatter(M.zeros(3, 5), 1, i.reshape(1, -1), 1.0),
    "scatter_add": lambda M, x, i: M.zeros(3, 5).scatter_add(1, i.reshape(1, -1), M.ones(1, 4)),
    "index_add": lambda M, x, i: M.zeros(3, 5).index_add(1, i, M.ones(3, 4)),
    "index_put": lambda M, x, i: M.zeros(5).index_put((i,), M.tensor(1.0)),
    "embedding": lambda M, x, i: M.nn.functional.embedding(i, x.t().contiguous()),
}


@pytest.mark.parametrize("name", ["int32", "int64"])
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_int32_index_tensors_are_accepted_where_torch_accepts_them(name, compiled):
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    i = np.array([0, 4, 2, 2], dtype=name)
    for k, f in IDX.items():
        want = f(torch, torch.from_numpy(x), torch.from_numpy(i))
        run = (lambda g: minaot.compile(g, backend="numba")) if compiled else (lambda g: g)
        got = run(lambda a, b: f(minaot, a, b))(minaot.from_numpy(x), minaot.from_numpy(i))
        same(got, want, f"{k} with a {name} index")


def test_index_dtypes_torch_refuses():
    x = minaot.arange(15.0).reshape(3, 5)
    for name in ("int16", "int8"):
        i = minaot.tensor([0, 2], dtype=mdt(name))
        with pytest.raises(IndexError, match="long, int, byte or bool"):
            x[:, i]
        with pytest.raises(IndexError, match="int64 or int32"):
            minaot.index_select(x, 1, i)
        with pytest.raises(minaot._errors.DTypeError, match="int64 or int32"):
            minaot.gather(x, 1, i.reshape(1, 2))
        with pytest.raises(minaot._errors.DTypeError, match="int64 or int32"):
            minaot.nn.functional.embedding(i, x)
    i32 = minaot.tensor([0, 2], dtype=minaot.int32)
    with pytest.raises(minaot._errors.DTypeError, match="int64 index"):
        minaot.take(x, i32)                     # torch.take wants a long index
    with pytest.raises(RuntimeError, match="int64"):
        minaot.nn.functional.one_hot(i32)
    with pytest.raises(minaot._errors.DTypeError, match="int64 class indices"):
        minaot.nn.functional.cross_entropy(minaot.zeros(2, 3), i32)
    # uint8 class targets are taken (PyTorch: "Long or Byte")
    logits = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    same(minaot.nn.functional.cross_entropy(minaot.from_numpy(logits), minaot.tensor([0, 2], dtype=minaot.uint8)),
         torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.tensor([0, 2], dtype=torch.uint8)),
         "cross_entropy with uint8 targets")


def test_uint8_index_is_a_mask_as_in_torch():
    x = minaot.tensor([5, 6, 7])
    with pytest.warns(UserWarning, match="uint8 is now deprecated"):
        assert x[minaot.tensor([0, 1, 1], dtype=minaot.uint8)].tolist() == [6, 7]
    assert [1, 2, 3][minaot.tensor(1, dtype=minaot.int32)] == 2       # __index__
    assert [1, 2, 3][minaot.tensor(2, dtype=minaot.uint8)] == 3


# ------------------------------------------------------------------ creation and conversion
def test_creation_functions_take_the_new_dtypes():
    for name in ("int32", "int16", "int8", "uint8"):
        d, td = mdt(name), TD[name]
        for make in (lambda M, d: M.zeros(2, 3, dtype=d), lambda M, d: M.ones(4, dtype=d),
                     lambda M, d: M.full((2,), 7, dtype=d), lambda M, d: M.arange(5, dtype=d),
                     lambda M, d: M.arange(0, 300, 100, dtype=d), lambda M, d: M.eye(3, dtype=d),
                     lambda M, d: M.linspace(0, 6, 4, dtype=d),
                     lambda M, d: M.tensor([[1, 2], [3, 4]], dtype=d),
                     lambda M, d: M.full((2,), -1, dtype=d) if d not in (torch.uint8, minaot.uint8)
                     else M.full((2,), 255, dtype=d)):
            same(make(minaot, d), make(torch, td), name)
        assert minaot.randint(0, 5, (3,), dtype=d).dtype is d
        assert minaot.randperm(5, dtype=d).dtype is d
        assert minaot.zeros_like(minaot.ones(2, dtype=d)).dtype is d
        assert minaot.ones(2, dtype=d).new_zeros(3).dtype is d
        assert minaot.ones(2, dtype=d).new_full((2,), 3.5).tolist() == [3, 3]
        assert minaot.tensor([1, 2], dtype=name).dtype is d           # names work too
    same(minaot.arange(-3, 3, dtype=minaot.uint8), torch.arange(-3, 3, dtype=torch.uint8), "arange")
    assert minaot.full((2,), -1, dtype=minaot.uint8).tolist() == [255, 255]     # as torch


def test_out_of_range_numbers_raise_where_torch_raises():
    err = minaot._errors.ValueOverflowError
    for make in (lambda M: M.full((2,), 1000, dtype=M.int8),
                 lambda M: M.tensor([1000], dtype=M.int8),
                 lambda M: M.tensor(300, dtype=M.uint8),
                 lambda M: M.zeros(2, dtype=M.int8).fill_(1000),
                 lambda M: M.ones(2, dtype=M.int8).clamp(-1000, 1000),
                 lambda M: M.ones(2, dtype=M.uint8).clamp_(3, 1000),
                 lambda M: M.ones(2, dtype=M.int8).masked_fill(M.tensor([True, False]), 1000),
                 lambda M: M.where(M.tensor([True, False]), M.ones(2, dtype=M.int8), 1000),
                 lambda M: M.linspace(0, 300, 4, dtype=M.int8)):
        with pytest.raises(RuntimeError, match="without overflow"):
            make(torch)
        with pytest.raises(err, match="without overflow"):
            make(minaot)
    assert issubclass(err, RuntimeError) and issubclass(err, OverflowError)
    # but a Python number in arithmetic wraps around, and a numpy array's values too
    same(minaot.ones(2, dtype=minaot.int8) + 1000, torch.ones(2, dtype=torch.int8) + 1000, "add")
    same(minaot.tensor(np.array([1000]), dtype=minaot.int8),
         torch.tensor(np.array([1000]), dtype=torch.int8), "tensor of an array")
    same(minaot.tensor([-1], dtype=minaot.uint8), torch.tensor([-1], dtype=torch.uint8), "-1 as uint8")
    same(minaot.zeros(2, dtype=minaot.uint8).fill_(-1), torch.zeros(2, dtype=torch.uint8).fill_(-1), "fill_")
    same(minaot.tensor([5, 2], dtype=minaot.uint8).clamp(-5),
         torch.tensor([5, 2], dtype=torch.uint8).clamp(-5), "clamp of uint8 at -5")


def test_conversions_and_numpy_round_trips():
    for name in ("int32", "int16", "int8", "uint8"):
        a = values(name, (2, 3))
        t = minaot.from_numpy(a)
        assert t.dtype is mdt(name) and np.shares_memory(t.numpy(), a)
        assert t.numpy().dtype == a.dtype and t.element_size() == a.itemsize
        assert t.stride() == (3, 1)
        assert minaot.tensor(a).dtype is mdt(name) and np.shares_memory(minaot.as_tensor(a).numpy(), a)
        assert minaot.tensor(a.astype(np.float64)).to(name).numpy().dtype == a.dtype
        assert t.tolist() == a.tolist() and isinstance(t[0, 0].item(), int)
        for method, want in (("int", "int32"), ("short", "int16"), ("char", "int8"), ("byte", "uint8"),
                             ("long", "int64"), ("float", "float32"), ("double", "float64"),
                             ("bool", "bool")):
            same(getattr(t, method)(), getattr(torch.from_numpy(a.copy()), method)(), f"{name}.{method}()")
        assert t.type() == "minaot." + torch.from_numpy(a).type().split(".")[1]
        assert t.type("torch.ShortTensor").dtype is minaot.int16
    assert minaot.tensor(np.int32(5)).dtype is minaot.int32
    assert minaot.tensor(np.array([1, 2], np.uint16)).dtype is minaot.int32    # no uint16: widened
    assert repr(minaot.tensor([1, 2], dtype=minaot.int8)) == "tensor([1, 2], dtype=minaot.int8)"
    assert not minaot.uint8.is_signed and minaot.int8.is_signed and not minaot.bool.is_signed
    import pickle
    assert pickle.loads(pickle.dumps(minaot.uint8)) is minaot.uint8
    with pytest.raises(TypeError, match="unsupported dtype uint16"):
        minaot.from_numpy(np.zeros(2, np.uint16))


# ------------------------------------------------------------------ the IR and the kernels
def test_ir_spells_the_new_dtypes_and_parses_them_back():
    from minaot.ir import parse_type

    for name, ir in (("int32", "i32"), ("int16", "i16"), ("int8", "i8"), ("uint8", "ui8")):
        assert mdt(name).ir == ir and dt.from_ir(ir) is mdt(name)
        assert str(parse_type(f"tensor<4x8x{ir}>")) == f"tensor<4x8x{ir}>"
        assert parse_type(f"tensor<4x8x{ir}>").nbytes == 32 * mdt(name).itemsize
        g = minaot.trace(lambda x: x + 1, minaot.ones(4, dtype=mdt(name)))
        text = str(g)
        assert f"tensor<4x{ir}>" in text
        assert str(minaot.ir.parse(text)) == text


def test_kernels_wrap_narrow_integers_and_cast_through_int32(capsys, monkeypatch):
    monkeypatch.setenv("MINAOT_PRINT_KERNELS", "1")
    f = minaot.compile(lambda x, y: ((x + y) > 3, (x.float() * 1.5).to(minaot.int8), x.amax()),
                       backend="numba")
    x = minaot.tensor([100, -100, 7], dtype=minaot.int8)
    outs = f(x, x)
    src = capsys.readouterr().out
    assert "np.int8(v" in src and "np.int8(np.int32(" in src and "np.int8(-128)" in src
    assert outs[0].tolist() == [False, True, True]          # 100 + 100 wraps to -56
    assert outs[1].tolist() == [-106, 106, 10] and outs[2].item() == 100


def test_constant_folding_wraps_in_the_narrow_dtype():
    from minaot.passes.canonicalize import fold_constants
    g = minaot.ir.parse("""
func.func @f() -> (tensor<ui8>) {
  %0 = prim.constant {dtype = "uint8", shape = [], value = 200} : () -> tensor<ui8>
  %1 = prim.add %0, %0 : (tensor<ui8>, tensor<ui8>) -> tensor<ui8>
  func.return %1 : tensor<ui8>
}""")
    (add,) = [op for op in g.ops if op.name == "prim.add"]
    assert fold_constants(add) == 144


# ------------------------------------------------------------------ CUDA (Numba's simulator)
SIMULATED = r"""
import numpy as np, minaot, torch, warnings
warnings.simplefilter("ignore")
import tests.test_int_dtypes as T
names = ["int32", "int8", "uint8"]
ops = {k: T.OPS[k] for k in ("add", "mul_scalar", "wrapped_scalar", "floordiv_neg", "mod", "neg",
                             "abs", "sign", "maximum", "lt", "where_scalar", "clamp", "xor",
                             "invert", "float_to_int", "char", "byte", "uint8_int8", "chain",
                             "sum", "sum_own_dtype", "prod", "amax", "amin", "argmax", "all",
                             "any", "cumsum", "cumsum_own_dtype", "matmul", "cat", "flip")}
for name in names:
    ta, tb, x, y = T._inputs(name)
    gx, gy = x.cuda(), y.cuda()
    comp = minaot.compile(lambda a, b: tuple(f(minaot, a, b) for f in ops.values()), backend="cuda")
    for k, got in zip(ops, comp(gx, gy)):
        want = ops[k](torch, ta, tb)
        assert got.device == "cuda", k
        T.same(got.cpu(), want, f"{name} {k} (cuda compiled)")
        T.same(ops[k](minaot, gx, gy).cpu(), want, f"{name} {k} (cuda eager)")
    for k in ("sort", "topk", "max_dim"):
        for g, w in zip(T.MULTI[k](minaot, gx, gy), T.MULTI[k](torch, ta, tb)):
            T.same(g.cpu(), w, f"{name} {k} (cuda eager)")
    cai = gx.__cuda_array_interface__
    assert cai["typestr"] == np.dtype(name).str and cai["shape"] == (3, 4), cai
    print(name, "ok", flush=True)
xf = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
for iname in ("int32", "int64"):
    i = np.array([0, 4, 2, 2], dtype=iname)
    for k in ("getitem", "index_select", "gather", "scatter_add", "index_add", "embedding"):
        want = T.IDX[k](torch, torch.from_numpy(xf), torch.from_numpy(i))
        f = lambda a, b, k=k: T.IDX[k](minaot, a, b)
        with minaot.devices.device_scope("cuda"):
            got = f(minaot.from_numpy(xf).cuda(), minaot.from_numpy(i).cuda())
            comp = minaot.compile(f, backend="cuda")(minaot.from_numpy(xf).cuda(), minaot.from_numpy(i).cuda())
        T.same(got.cpu(), want, f"{k} {iname} (cuda eager)")
        T.same(comp.cpu(), want, f"{k} {iname} (cuda compiled)")
    print(iname, "index ok", flush=True)
print("all ok")
"""


@pytest.mark.cuda
def test_cuda_eager_and_compiled_under_the_simulator():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    env.setdefault("NUMBA_ENABLE_CUDASIM", "1")        # NUMBA_ENABLE_CUDASIM=0: on the GPU
    proc = subprocess.run([sys.executable, "-c", SIMULATED], cwd=root, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0 and "all ok" in proc.stdout, proc.stdout + proc.stderr
