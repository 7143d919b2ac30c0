"""Testing kit for course assignments and autograders.

Numbers:

* ``assert_close(actual, expected)``: tensors (or nested tuples of them) equal
  within dtype-dependent tolerances, with a readable message.
* ``gradcheck(fn, inputs)``: the analytic gradient (the VJP rules through
  ``autograd.grad``) against central finite differences in float64, one input
  element at a time, for a random output cotangent.
* ``check_compiled(fn, *inputs)``: a compiled function behaves as the eager
  one: outputs, gradients, the inputs' state afterwards and aliasing.

Graphs:

* ``assert_ir_equal(actual, expected)``: printed IR against golden text,
  whitespace normalised (and, on request, SSA names), with a unified diff.
* ``count_ops(graph, name)``: how many ops of a kind a graph holds.
* ``saved_bytes(fw, bw)``: what a partitioned forward keeps for the backward.

And the op database's sample inputs (``op_samples``, ``ops_with_samples``,
``sample_to_tensors``), which the op-database tests run everywhere.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter

import numpy as np

from . import dtypes as dt
from . import pytree
from .ops.registry import OpDef, SampleInput, all_ops
from .storage import Storage
from .tensor import Tensor


def _to_numpy(x):
    if isinstance(x, Tensor):
        return x.detach()._data
    return np.asarray(x)


def assert_close(actual, expected, rtol=None, atol=None, *, check_dtype=True, msg=""):
    """Raise ``AssertionError`` with a readable diff unless ``actual`` ≈ ``expected``.

    Default tolerances follow the dtype: float32 ``rtol=1.3e-6, atol=1e-5``,
    float64 ``rtol=1e-7, atol=1e-7``; integers and bools must be equal.
    Nested tuples/lists are compared element by element."""
    if isinstance(actual, (tuple, list)) and isinstance(expected, (tuple, list)):
        if len(actual) != len(expected):
            raise AssertionError(f"{msg}length mismatch: {len(actual)} vs {len(expected)}")
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_close(a, e, rtol, atol, check_dtype=check_dtype, msg=f"{msg}[{i}] ")
        return
    a, e = _to_numpy(actual), _to_numpy(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{msg}shape mismatch: actual {a.shape} vs expected {e.shape}")
    if check_dtype and isinstance(actual, Tensor) and isinstance(expected, Tensor) \
            and actual.dtype is not expected.dtype:
        raise AssertionError(f"{msg}dtype mismatch: actual {actual.dtype} vs expected {expected.dtype}")
    if a.dtype.kind in "biu" and e.dtype.kind in "biu":
        bad = a != e
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise AssertionError(f"{msg}{int(bad.sum())} of {a.size} elements differ; first at "
                                 f"{idx}: {a[idx]} vs {e[idx]}")
        return
    low = np.float32 in (a.dtype, e.dtype)
    rtol = rtol if rtol is not None else (1.3e-6 if low else 1e-7)
    atol = atol if atol is not None else (1e-5 if low else 1e-7)
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    close = np.isclose(a64, e64, rtol=rtol, atol=atol, equal_nan=True)
    if not close.all():
        bad = ~close
        diff = np.array(np.abs(a64 - e64))
        diff[~bad] = 0
        idx = np.unravel_index(np.nanargmax(np.where(bad, diff, -1)), a.shape) if a.ndim else ()
        raise AssertionError(
            f"{msg}tensors are not close: {int(bad.sum())} of {a.size} elements differ "
            f"(rtol={rtol}, atol={atol})\n"
            f"  greatest difference {diff[idx]:.3g} at index {tuple(int(i) for i in idx)}: "
            f"actual {a64[idx]!r} vs expected {e64[idx]!r}")


def _flat_inputs(inputs):
    return [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]


def gradcheck(fn, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, raise_exception=True):
    """Check ``fn``'s gradients against central finite differences in float64.

    ``inputs`` is a tuple; tensors that require grad are checked (they must be
    float64).  ``fn`` may return a tensor or a tuple of tensors; each floating
    point output is weighted by a fixed random cotangent."""
    from .autograd import grad as autograd_grad
    from .autograd import no_grad

    inputs = tuple(inputs)
    wrt = _flat_inputs(inputs)
    for t in wrt:
        if t.dtype is not dt.float64:
            raise ValueError("gradcheck expects float64 inputs that require grad")
    rng = np.random.default_rng(seed)

    def outputs_of(result):
        outs = result if isinstance(result, (tuple, list)) else (result,)
        return [o for o in outs if isinstance(o, Tensor) and o.dtype.is_floating_point]

    outs = outputs_of(fn(*inputs))
    weights = [rng.standard_normal(o.shape) for o in outs]

    def scalar(result):
        return sum(float(np.sum(o.detach()._data * w)) for o, w in zip(outputs_of(result), weights))

    differentiable = [o for o in outs if o.requires_grad]
    if differentiable:
        seeds = [Tensor._wrap(w.astype(o.dtype.np)) for o, w in zip(outs, weights) if o.requires_grad]
        analytic = autograd_grad(differentiable, wrt, seeds, allow_unused=True)
    else:
        analytic = [None] * len(wrt)
    for k, (t, g) in enumerate(zip(wrt, analytic)):
        numeric = np.zeros(t.shape)
        flat = t._data.reshape(-1) if t.is_contiguous() else None
        if flat is None:
            raise ValueError("gradcheck needs contiguous inputs")
        with no_grad():
            for i in range(flat.size):
                orig = flat[i]
                flat[i] = orig + eps
                plus = scalar(fn(*inputs))
                flat[i] = orig - eps
                minus = scalar(fn(*inputs))
                flat[i] = orig
                numeric.reshape(-1)[i] = (plus - minus) / (2 * eps)
        got = np.zeros(t.shape) if g is None else g.detach()._data
        if not np.allclose(got, numeric, rtol=rtol, atol=atol):
            if not raise_exception:
                return False
            err = np.abs(got - numeric)
            i = np.unravel_index(np.argmax(err), err.shape) if err.ndim else ()
            raise AssertionError(
                f"gradcheck failed for input {k} (shape {t.shape}): analytic and numerical "
                f"gradients differ by up to {err.max():.3g}\n  at index {tuple(int(j) for j in i)}: "
                f"analytic {got[i]!r} vs numerical {numeric[i]!r}")
    return True


def op_samples(op: OpDef, seed: int = 0) -> list[SampleInput]:
    """The sample inputs of ``op`` (numpy arrays in float64, ints, bools, Python numbers)."""
    if op.samples is None:
        return []
    return op.samples(np.random.default_rng(seed))


def ops_with_samples(kinds=None):
    """Every registered op that has sample inputs (optionally of some kinds)."""
    return [op for op in all_ops() if op.samples is not None and (kinds is None or op.kind in kinds)]


def sample_to_tensors(sample: SampleInput, dtype=dt.float64, requires_grad=False):
    """Tensors for a sample: float arrays become ``dtype`` (requiring grad when asked),
    integer and bool arrays keep their dtype, Python numbers stay numbers."""
    out = []
    for a in sample.args:
        if isinstance(a, np.ndarray):
            if a.dtype.kind == "f":
                t = Tensor._wrap(np.array(a, dtype=dtype.np, order="C"))
                if requires_grad:
                    t.requires_grad_(True)
            elif a.dtype.kind == "b":
                t = Tensor._wrap(np.array(a, order="C"))
            else:               # int32, int8, uint8...: their own dtype
                t = Tensor._wrap(np.array(a, dtype=dt.from_numpy_dtype(a.dtype).np, order="C"))
            out.append(t)
        else:
            out.append(a)
    return out


# ---------------------------------------------------------------- compiled vs eager
def _clone_tensor(x, memo, roots):
    """A copy of ``x`` that keeps its layout and, with the other inputs, its aliasing.

    Tensors sharing one storage get copies sharing one new storage (the same
    strides and offsets), and the same tensor object passed twice is cloned once,
    so ``f(x, x)``, ``f(x, x[0])`` and ``f(x.t())`` are checked as they were called."""
    if id(x) in memo:
        return memo[id(x)]
    st, arr = x._storage, x._data
    root = getattr(st, "root", None)
    if isinstance(st, Storage) and isinstance(root, np.ndarray) and root.dtype == arr.dtype \
            and (root.flags.c_contiguous or root.flags.f_contiguous) and arr.size:
        if id(st) not in roots:
            new_root = root.copy(order="K")
            roots[id(st)] = (new_root, Storage(new_root))
        new_root, new_st = roots[id(st)]
        flat = new_root.ravel(order="K")                     # a view: root is contiguous
        start = st.offset_of(arr)
        new = np.lib.stride_tricks.as_strided(flat[start:], arr.shape, arr.strides)
        t = Tensor._wrap(new, new_st)
    elif isinstance(st, Storage):
        t = Tensor._wrap(np.array(arr, order="K", copy=True))
    else:                                                    # another device: its own clone
        t = x.detach().clone()
    if x.requires_grad:
        t.requires_grad_(True)
    memo[id(x)] = t
    return t


def _clone_inputs(inputs):
    memo, roots = {}, {}
    return pytree.tree_map(lambda x: _clone_tensor(x, memo, roots) if isinstance(x, Tensor) else x,
                           inputs)


def _leaf_names(obj, prefix):
    """A name per pytree leaf, in flatten order: ``output``, ``output[1]``, ``input 0['w']``."""
    if isinstance(obj, (tuple, list)):
        return [n for i, x in enumerate(obj) for n in _leaf_names(x, f"{prefix}[{i}]")]
    if isinstance(obj, dict):
        return [n for k, x in obj.items() for n in _leaf_names(x, f"{prefix}[{k!r}]")]
    return [prefix]


def _input_names(inputs):
    return [n for i, x in enumerate(inputs) for n in _leaf_names(x, f"input {i}")]


def _structure(obj):
    return repr(pytree.tree_map(lambda x: type(x).__name__, obj)).replace("'", "")


def _compiled_callable(fn, backend, compile_kwargs):
    from .aot import aot_function
    from .compilers import get_backend

    compiler = get_backend(backend)
    fw = compile_kwargs.pop("fw_compiler", compiler)
    bw = compile_kwargs.pop("bw_compiler", compiler)
    inference = compile_kwargs.pop("inference_compiler", fw)
    return aot_function(fn, fw_compiler=fw, bw_compiler=bw, inference_compiler=inference,
                        **compile_kwargs)


def check_compiled(fn, *inputs, backend="numba", compiled=None, grad="random", rtol=None,
                   atol=None, check_strides=False, seed=0, **compile_kwargs):
    """Check that ``fn`` compiled behaves exactly as ``fn`` run eagerly; raise ``AssertionError`` if not.

    ``fn`` runs twice, eagerly and compiled (``aot_function`` with ``backend``'s
    compiler for the forward, the backward and inference; ``compile_kwargs`` such as
    ``fw_compiler=``, ``bw_compiler=``, ``partition_fn=`` or ``decompositions=`` go to
    :func:`minaot.aot_function` and override it), each on its own clone of
    ``inputs``.  The clones keep the inputs' layouts and their aliasing (the same
    tensor twice, or two views of one storage, stay so); the random generator is in
    the same state for both runs, so dropout draws the same mask.  Then, naming the
    output or input that differs:

    1. **outputs**: the same structure; per tensor the same shape, dtype,
       ``requires_grad`` and values (``assert_close`` with ``rtol``/``atol``, by
       default the dtype's tolerances); with ``check_strides=True`` also the same
       strides (off by default: a fresh output's layout is the backend's choice, as
       in PyTorch); other leaves equal;
    2. **aliasing**: an output that is an input itself, or a view of an input
       (shares its storage), is so compiled too, of the same input, with the same
       strides and offset; outputs that share storage with each other eagerly do
       so compiled, and no others;
    3. **inputs afterwards**: every input has the same shape, strides and values
       in both runs (a mutated input was mutated the same way; metadata
       mutations such as ``t_()`` were replayed);
    4. **gradients**, when grad mode is on and an input requires grad: the
       outputs that require grad are differentiated with the same cotangents
       (``grad="random"``: standard normal from ``seed``; ``grad="sum"``: ones,
       the gradient of the sum of the outputs; ``grad=None`` skips this) and
       the gradients of every input that requires grad must be close (an input
       no output depends on: ``None`` and zeros count as equal).

    Pass ``compiled=`` to check a callable you built yourself (an
    ``aot_module``, a student's wrapper) instead of compiling ``fn``.

    Example::

        >>> import minaot
        >>> from minaot.testing import check_compiled
        >>> def f(x, w):
        ...     return (x @ w).relu().sum(dim=1), x.t()
        >>> check_compiled(f, minaot.randn(4, 3), minaot.randn(3, 2, requires_grad=True),
        ...                backend="numpy")
        >>> def broken(graph, example_inputs):        # a compiler that gets it wrong
        ...     run = minaot.nop(graph, example_inputs)
        ...     return lambda *args: [r * 2 for r in run(*args)]
        >>> check_compiled(f, minaot.randn(4, 3), minaot.randn(3, 2), fw_compiler=broken)
        Traceback (most recent call last):
          ...
        AssertionError: check_compiled(f): output[0] differs from eager: tensors are not close: ...
    """
    from .autograd import grad as autograd_grad
    from .autograd.grad_mode import is_grad_enabled
    from .random import default_generator

    if grad not in ("random", "sum", None):
        raise ValueError(f"check_compiled: grad must be 'random', 'sum' or None, got {grad!r}")
    name = getattr(fn, "__name__", "fn")
    if compiled is None:
        compiled = _compiled_callable(fn, backend, compile_kwargs)
    elif compile_kwargs:
        raise TypeError(f"check_compiled: compiled= is given, so {sorted(compile_kwargs)} "
                        "cannot be used")
    head = f"check_compiled({name}): "
    eager_in, comp_in = _clone_inputs(inputs), _clone_inputs(inputs)
    state = default_generator.get_state()
    want = fn(*eager_in)
    default_generator.set_state(state)
    got = compiled(*comp_in)

    # 1. outputs
    want_leaves, want_spec = pytree.flatten(want)
    got_leaves, got_spec = pytree.flatten(got)
    if want_spec != got_spec:
        raise AssertionError(f"{head}the compiled function returns {_structure(got)}, "
                             f"eager returns {_structure(want)}")
    out_names = _leaf_names(want, "output")
    for name_k, w, g in zip(out_names, want_leaves, got_leaves):
        if not isinstance(w, Tensor):
            if isinstance(g, Tensor) or not (g == w or (g != g and w != w)):
                raise AssertionError(f"{head}{name_k} is {g!r} compiled, {w!r} eager")
            continue
        if not isinstance(g, Tensor):
            raise AssertionError(f"{head}{name_k} is a {type(g).__name__} compiled, a Tensor eager")
        if g.shape != w.shape or g.dtype is not w.dtype:
            raise AssertionError(f"{head}{name_k} has shape {g.shape} and dtype {g.dtype} "
                                 f"compiled, shape {w.shape} and dtype {w.dtype} eager")
        if g.requires_grad and not w.requires_grad:
            raise AssertionError(f"{head}{name_k} requires grad compiled but not eager")
        assert_close(g.detach(), w.detach(), rtol, atol, msg=f"{head}{name_k} differs from eager: ")
        if check_strides and g.stride() != w.stride():
            raise AssertionError(f"{head}{name_k} has strides {g.stride()} compiled, "
                                 f"{w.stride()} eager")

    # 2. aliasing
    in_names = _input_names(inputs)
    e_ins = pytree.flatten(eager_in)[0]
    c_ins = pytree.flatten(comp_in)[0]
    tensors = [(n, e, c) for n, e, c in zip(in_names, e_ins, c_ins) if isinstance(e, Tensor)]
    outs = [(n, w, g) for n, w, g in zip(out_names, want_leaves, got_leaves) if isinstance(w, Tensor)]
    for name_k, w, g in outs:
        for name_j, e, c in tensors:
            if (w is e) != (g is c):
                how = "is" if w is e else "is not"
                raise AssertionError(f"{head}{name_k} {how} {name_j} itself in eager mode, "
                                     "but not so compiled")
            we, gc = w._storage is e._storage, g._storage is c._storage
            if we != gc:
                what = "a view of" if we else "a new tensor, not a view of"
                raise AssertionError(
                    f"{head}{name_k} is {what} {name_j} in eager mode, but compiled it "
                    f"{'is a new tensor' if we else 'shares the storage of ' + name_j} "
                    f"(an output that aliases an input must be a real view of it, as in eager)")
            if we and (g.stride(), g.storage_offset()) != (w.stride(), w.storage_offset()):
                raise AssertionError(
                    f"{head}{name_k} is a view of {name_j} in both, but with strides {g.stride()} "
                    f"and offset {g.storage_offset()} compiled, {w.stride()} and "
                    f"{w.storage_offset()} eager")
    for a in range(len(outs)):
        for b in range(a + 1, len(outs)):
            (na, wa, ga), (nb, wb, gb) = outs[a], outs[b]
            we, gc = wa._storage is wb._storage, ga._storage is gb._storage
            if we != gc:
                raise AssertionError(
                    f"{head}{na} and {nb} {'share' if we else 'do not share'} storage in eager "
                    f"mode, but {'do not' if we else 'do'} compiled")

    # 3. the inputs afterwards
    for name_j, e, c in tensors:
        if c.shape != e.shape or c.stride() != e.stride() or \
                c.storage_offset() != e.storage_offset():
            raise AssertionError(
                f"{head}{name_j} after the call has shape {c.shape}, strides {c.stride()} compiled, "
                f"shape {e.shape}, strides {e.stride()} eager (a metadata mutation such as t_() "
                "was not replayed the same way)")
        assert_close(c.detach(), e.detach(), rtol, atol,
                     msg=f"{head}{name_j} after the call differs from eager (an input mutation "
                         "was not copied back the same way): ")

    # 4. gradients
    wrt = [(n, e, c) for n, e, c in tensors if e.requires_grad]
    wrt = list({id(e): (n, e, c) for n, e, c in wrt}.values())     # f(x, x): one gradient
    diff = [(n, w, g) for n, w, g in outs if w.requires_grad]
    if grad is None or not wrt or not diff or not is_grad_enabled():
        return
    rng = np.random.default_rng(seed)
    cots = [rng.standard_normal(w.shape) if grad == "random" else np.ones(w.shape) for _, w, _ in diff]
    cots = [Tensor._wrap(np.asarray(c, dtype=w.dtype.np)) for c, (_, w, _) in zip(cots, diff)]
    ge = autograd_grad([w for _, w, _ in diff], [e for _, e, _ in wrt], cots, allow_unused=True)
    live = [(g, c) for (_, _, g), c in zip(diff, cots) if g.requires_grad]
    if live:
        gc = autograd_grad([g for g, _ in live], [c for _, _, c in wrt], [c for _, c in live],
                           allow_unused=True)
    else:
        gc = [None] * len(wrt)
    lost = [n for n, _, g in diff if not g.requires_grad]
    note = (f" ({', '.join(lost)} requires grad in eager mode but not compiled)" if lost else "")
    for (name_j, e, _), a, b in zip(wrt, gc, ge):
        a = np.zeros(e.shape, e.dtype.np) if a is None else a.detach()._data
        b = np.zeros(e.shape, e.dtype.np) if b is None else b.detach()._data
        assert_close(Tensor._wrap(a), Tensor._wrap(b), rtol, atol,
                     msg=f"{head}the gradient of {name_j} differs from eager{note}: ")


# ---------------------------------------------------------------- golden IR
def _ir_text(x) -> str:
    from .ir import Function, Operation

    if isinstance(x, str):
        return x
    if isinstance(x, (Function, Operation)):
        return str(x)
    graph = getattr(x, "graph", None)              # a compiled callable that keeps its graph
    if isinstance(graph, (Function, Operation)):
        return str(graph)
    raise TypeError(f"expected IR text, a Function or an Operation, got {type(x).__name__}")


_SPACE = re.compile(r"\s+")
_PUNCT = re.compile(r" ?([,(){}\[\]<>:=]) ?")
_SSA = re.compile(r"%[A-Za-z0-9_.$-]+|\^bb[0-9]+")


def _rename_ssa(lines):
    names = {}

    def sub(m):
        old = m.group(0)
        if old not in names:
            kind = "^bb" if old.startswith("^") else "%"
            names[old] = f"{kind}{sum(1 for n in names.values() if n.startswith(kind))}"
        return names[old]
    return [_SSA.sub(sub, line) for line in lines]


def _ir_lines(text, rename):
    lines = [_SPACE.sub(" ", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    return _rename_ssa(lines) if rename else lines


def assert_ir_equal(actual, expected, *, rename_values=False, msg=""):
    """Raise ``AssertionError`` with a unified diff unless ``actual`` prints as ``expected``.

    ``actual`` and ``expected`` are IR text, a :class:`~minaot.ir.Function` or an
    :class:`~minaot.ir.Operation` (printed), or a compiled callable with a ``graph``
    attribute (what :func:`minaot.nop` returns).  Whitespace does not count:
    indentation, blank lines, runs of spaces and spaces around punctuation are
    normalised away, so golden text can be indented inside a test.  With
    ``rename_values=True`` SSA names are renumbered in order of first appearance
    (``%0, %1, ...`` and ``^bb0, ...``), so text with other numbers, or with
    names like ``%x``, matches when the structure does.

    Example::

        >>> import minaot
        >>> from minaot.testing import assert_ir_equal
        >>> def f(x):
        ...     return x.sin() + x
        >>> assert_ir_equal(minaot.trace(f, minaot.randn(3)), '''
        ...     func.func @f(%x: tensor<3xf32>) -> (tensor<3xf32>) {
        ...       %s = mt.sin %x : (tensor<3xf32>) -> tensor<3xf32>
        ...       %y = mt.add %s, %x : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
        ...       func.return %y : tensor<3xf32>
        ...     }''', rename_values=True)
    """
    a_lines = _ir_lines(_ir_text(actual), rename_values)
    e_lines = _ir_lines(_ir_text(expected), rename_values)
    if [_PUNCT.sub(r"\1", x) for x in a_lines] == [_PUNCT.sub(r"\1", x) for x in e_lines]:
        return
    diff = "\n".join(difflib.unified_diff(e_lines, a_lines, "expected", "actual", lineterm=""))
    raise AssertionError(f"{msg}IR differs from the expected text "
                         f"(- expected, + actual{', SSA names renumbered' if rename_values else ''}):"
                         f"\n{diff}")


# ---------------------------------------------------------------- counting
def _functions(graph):
    from .ir import Function, Operation, parse_module

    if isinstance(graph, str):
        return parse_module(graph)
    if isinstance(graph, (Function, Operation)):
        return [graph]
    if isinstance(graph, (tuple, list)):
        return [f for g in graph for f in _functions(g)]
    inner = getattr(graph, "graph", None)
    if isinstance(inner, (Function, Operation)):
        return [inner]
    raise TypeError(f"expected a Function, an Operation, IR text or a tuple of them, "
                    f"got {type(graph).__name__}")


def count_ops(graph, name=None, *, nested=True):
    """How many ops named ``name`` ``graph`` holds.

    ``name`` is a full name (``"prim.add"``) or, without a dialect, the op's own
    name in any dialect (``"add"`` counts ``mt.add`` and ``prim.add``, not
    ``arith.addf``).  ``graph`` is a :class:`~minaot.ir.Function`, an op, IR text
    (parsed; several functions are all counted), a compiled callable with a
    ``graph`` attribute, or a tuple of those such as ``(fw, bw)``.  With
    ``nested=True`` (the default) ops inside regions count too: the prim ops
    fused into a ``kernel.fused`` op, the body of a loop; ``nested=False``
    counts only the top-level ops (a kernel graph's library calls and kernels).
    Without ``name``, a :class:`collections.Counter` of every op's full name.

    Example::

        >>> import minaot
        >>> from minaot.testing import count_ops
        >>> joint = minaot.export_joint(lambda x: (x * x).sin(), minaot.randn(3, requires_grad=True))
        >>> count_ops(joint, "prim.mul"), count_ops(joint, "sin"), count_ops(joint, "cos")
        (4, 1, 1)
    """
    from .ir import Function, walk

    counts = Counter()
    for fn in _functions(graph):
        if nested:
            ops = walk(fn)
        else:
            ops = fn.body.ops if isinstance(fn, Function) else [fn]
        for op in ops:
            if op.name != "func.func":
                counts[op.name] += 1
    if name is None:
        return counts
    if "." in name:
        return counts[name]
    return sum(n for full, n in counts.items() if full.split(".", 1)[1] == name)


# ---------------------------------------------------------------- partitions
def _num_saved(fw, bw):
    for g in (bw, fw):
        n = getattr(g, "num_saved", None)
        if n is not None:
            return n
    hints = [a.name_hint for a in bw.args]
    if any(h is not None for h in hints):
        return sum(1 for h in hints if not (h or "").startswith("tangents"))
    raise ValueError("saved_bytes: cannot tell which of the backward's arguments are saved values "
                     "(the graphs carry no num_saved and no argument names); pass num_saved=")


def saved_bytes(fw, bw=None, *, num_saved=None):
    """Bytes of the values the forward ``fw`` saves for the backward ``bw``.

    The pair is what a partitioner returns (``partition_fn(joint, n) -> (fw,
    bw)``, also accepted as one tuple): the backward's first ``num_saved``
    arguments are the saved values, the last results of the forward.  Saved
    graph inputs count too, as in the partitioner's own report, so the number
    equals ``fw.partition_report.saved_bytes``.  ``num_saved`` defaults to the
    graphs' ``num_saved`` attribute, else to the backward's arguments not named
    ``tangents_*``.

    Example::

        >>> import minaot
        >>> from minaot.testing import saved_bytes
        >>> x = minaot.randn(10, 10, requires_grad=True)
        >>> joint = minaot.export_joint(lambda x: x.cos().cos().cos(), x)
        >>> saved_bytes(minaot.default_partition(joint, 1))     # x, cos(x), cos(cos(x))
        1200
        >>> saved_bytes(minaot.min_cut_rematerialization_partition(joint, 1))   # x
        400
    """
    if bw is None:
        fw, bw = fw
    n = _num_saved(fw, bw) if num_saved is None else num_saved
    saved = list(bw.args[:n])
    out = list(fw.results)[len(fw.results) - n:] if n else []
    if [v.type for v in out] != [v.type for v in saved]:
        raise ValueError(f"saved_bytes: the forward's last {n} results "
                         f"({', '.join(str(v.type) for v in out)}) are not the backward's first "
                         f"{n} arguments ({', '.join(str(v.type) for v in saved)})")
    return sum(v.type.nbytes for v in saved)
