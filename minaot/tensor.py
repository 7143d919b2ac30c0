"""The Tensor: numpy storage, views, in-place ops and eager autograd metadata.

A Tensor is a strided window onto a :class:`~minaot.storage.Storage`.  It
keeps a numpy view of the storage in ``_data``, so numpy does all strided
indexing, and views made by view ops share the storage.  A CUDA tensor keeps a
strided Numba device array over a :class:`~minaot.storage.CudaStorage` instead
(``t.to("cuda")``, ``t.cuda()``, ``device="cuda"``); its values reach the host
only through ``.cpu()`` (or ``item()``/``tolist()``/printing, which copy).  The autograd fields
are PyTorch's: ``requires_grad`` (leaves), ``grad_fn`` and ``_output_nr``
(non-leaves), ``grad``, ``_base`` and the chain of view ops that made a view
from its base (``_view_chain``), which autograd replays to rebuild a view's
history after an in-place op changed its base.

Every operation lives in :mod:`minaot.ops`; the methods here only forward to
those functions, so each op is defined once.
"""

from __future__ import annotations

import numpy as np

from . import cuda as _cuda  # noqa: F401  (minaot.cuda: is_available(), synchronize(), ...)
from . import dtypes as _dt
from .storage import Storage


class device:
    """A device: ``device("cpu")`` or ``device("cuda")``; compares equal to its name."""

    def __init__(self, type: str):
        if isinstance(type, device):
            type = type.type
        type = str(type)
        if type.startswith("cuda"):
            type = "cuda"
        if type not in ("cpu", "cuda"):
            raise ValueError(f"unknown device {type!r}: expected 'cpu' or 'cuda'")
        self.type = type

    def __eq__(self, other):
        if isinstance(other, device):
            return self.type == other.type
        if isinstance(other, str):
            return self.type == device(other).type
        return NotImplemented

    def __hash__(self):
        return hash(self.type)

    def __str__(self):
        return self.type

    def __repr__(self):
        return f"device(type='{self.type}')"


class Tensor:
    """An n-dimensional array with PyTorch semantics on top of numpy storage."""

    __array_priority__ = 1000  # numpy scalars defer to our reflected operators
    _is_fake = False

    def __init__(self, data=None, *, dtype=None, requires_grad=False):
        from .creation import _array_from_data

        arr = _array_from_data(data, dtype)
        self._set(arr, Storage(arr))
        self._requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------------ internals
    @classmethod
    def _wrap(cls, arr: np.ndarray, storage: Storage | None = None) -> "Tensor":
        """Make a tensor around a numpy array (a new storage unless given), or around a
        device array and its :class:`~minaot.storage.CudaStorage`."""
        t = cls.__new__(cls)
        if storage is None:
            if not isinstance(arr, np.ndarray):
                raise TypeError(f"Tensor._wrap: a {type(arr).__name__} needs its storage")
            storage = Storage(arr)
        t._set(arr, storage)
        t._requires_grad = False
        return t

    def _set(self, arr: np.ndarray, storage: Storage):
        self._data = arr
        self._storage = storage
        self._dtype = _dt.from_numpy_dtype(arr.dtype)
        self._grad_fn = None
        self._output_nr = 0
        self._base = None
        self._view_chain = ()
        self._view_version = 0
        self._grad = None               # (not through the validating setter: a hot path)
        self._accumulate_node = None

    # ------------------------------------------------------------------ metadata
    @property
    def shape(self) -> tuple:
        return tuple(self._data.shape)

    def size(self, dim=None):
        if dim is None:
            return self.shape
        return self.shape[dim]

    @property
    def dtype(self):
        return self._dtype

    @property
    def device(self) -> device:
        return device(self._storage.device)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def stride(self, dim=None):
        """Strides in elements (not bytes), like PyTorch."""
        st = tuple(s // self._dtype.itemsize for s in self._data.strides)
        return st if dim is None else st[dim]

    def storage_offset(self) -> int:
        return self._storage.offset_of(self._data)

    def is_contiguous(self) -> bool:
        if self.numel() == 0:          # PyTorch: an empty tensor is contiguous, whatever its strides
            return True
        expected = 1
        for size, st in reversed(list(zip(self.shape, self.stride()))):
            if size == 1:
                continue
            if st != expected:
                return False
            expected *= size
        return True

    def element_size(self) -> int:
        return self._dtype.itemsize

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def grad(self):
        """The gradient accumulated by ``backward()`` (None until then).  An assigned
        gradient must be None or a tensor of this tensor's shape, dtype and device, as in
        PyTorch."""
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError("assigned grad expected to be a Tensor or None but got grad of "
                                f"type {type(value).__name__}")
            if value is self:
                raise RuntimeError("can't assign a tensor as its own grad")
            problem = ("size" if value.shape != self.shape else
                       "dtype" if value._dtype is not self._dtype else
                       "device" if value.device != self.device else None)
            if problem:
                mine = {"size": self.shape, "dtype": self._dtype, "device": self.device}[problem]
                theirs = {"size": value.shape, "dtype": value._dtype,
                          "device": value.device}[problem]
                raise RuntimeError(f"assigned grad has data of a different {problem}: a "
                                   f"gradient of {problem} {theirs} for a tensor of {problem} "
                                   f"{mine}")
        self._grad = value

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad or self.grad_fn is not None

    @requires_grad.setter
    def requires_grad(self, value: bool):
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if self.grad_fn is not None:
            if not requires_grad:
                raise RuntimeError(
                    "you can only change requires_grad flags of leaf variables; "
                    "use detach() to get a tensor that does not require grad")
            return self
        if requires_grad and not self._dtype.is_floating_point:
            raise RuntimeError(
                f"only tensors of floating point dtype can require gradients (got {self._dtype})")
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def grad_fn(self):
        """The autograd node that made this tensor (None for leaves).

        A view whose base was modified in place after the view was made gets a
        fresh history: the view ops are replayed on the base."""
        if self._base is not None and self._view_version != self._storage.version:
            from .autograd.engine import refresh_view_grad_fn
            refresh_view_grad_fn(self)
        return self._grad_fn

    @property
    def _version(self) -> int:
        return self._storage.version

    def data_ptr(self) -> int:
        if self.is_cuda:
            from .cuda import pointer
            return pointer(self._data)
        return self._data.__array_interface__["data"][0]

    @property
    def is_cuda(self) -> bool:
        return self._storage.device == "cuda"

    # ------------------------------------------------------------------ devices
    def cuda(self) -> "Tensor":
        """This tensor on the GPU (itself if it is there already); differentiable."""
        return self.to("cuda")

    def cpu(self) -> "Tensor":
        """This tensor in host memory (itself if it is there already); differentiable."""
        return self.to("cpu")

    def _host(self) -> np.ndarray:
        """The values as a numpy array: ``_data`` itself on the CPU, a copy from a GPU."""
        if self.is_cuda:
            from .cuda import to_host
            return to_host(self._data)
        return self._data

    @property
    def __cuda_array_interface__(self) -> dict:
        """The CUDA Array Interface (version 3), so CuPy, PyTorch or Numba read this
        tensor's GPU memory without a copy (PyTorch's rules: CUDA tensors only, and not
        while they require grad)."""
        if not self.is_cuda:
            raise AttributeError(f"can't get __cuda_array_interface__ on a {self.device} tensor; "
                                 "move it with .cuda() first")
        if self.requires_grad:
            raise RuntimeError("can't get __cuda_array_interface__ on a tensor that requires "
                               "grad; use tensor.detach()")
        strides = None if self.is_contiguous() else tuple(s * self._dtype.itemsize
                                                          for s in self.stride())
        # minaot launches on the legacy default stream: 1 tells a consumer to wait for it
        stream = None if _cuda.is_simulator() else 1
        return {"shape": self.shape, "strides": strides, "typestr": self._data.dtype.str,
                "data": (self.data_ptr() if self.numel() else 0, False), "version": 3,
                "stream": stream}

    # ------------------------------------------------------------------ conversion
    def numpy(self) -> np.ndarray:
        """A numpy array that shares memory with this tensor (CPU only)."""
        if self.is_cuda:
            raise TypeError("can't convert a cuda device tensor to numpy: numpy() shares "
                            "memory and a GPU tensor's memory is not host memory; use "
                            "tensor.cpu() to copy it to the host first")
        if self.requires_grad:
            raise RuntimeError(
                "can't call numpy() on a tensor that requires grad; use tensor.detach().numpy()")
        return self._data

    def tolist(self):
        return self._host().tolist()

    def item(self):
        if self.numel() != 1:
            raise RuntimeError(
                f"a tensor with {self.numel()} elements cannot be converted to a Python scalar")
        return self._host().reshape(()).item()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(
                f"boolean value of a tensor with {self.numel()} elements is ambiguous")
        return bool(self.item())

    def __index__(self):
        if self._dtype.category != 1 or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    def __array__(self, dtype=None, copy=None):
        if self.is_cuda:
            raise TypeError("can't convert a cuda device tensor to a numpy array; use "
                            "tensor.cpu() to copy it to the host first")
        arr = self._data
        return arr if dtype is None else arr.astype(dtype)

    def __repr__(self) -> str:
        body = np.array2string(self._host(), separator=", ", precision=4, prefix="tensor(")
        extras = []
        if self._dtype not in (_dt.float32, _dt.int64, _dt.bool_):
            extras.append(f"dtype={self._dtype!r}")
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    def __hash__(self):
        return id(self)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __deepcopy__(self, memo):
        out = self.detach().clone()
        out._requires_grad = self._requires_grad and self.is_leaf
        if self.grad is not None:
            out.grad = self.grad.detach().clone()
        memo[id(self)] = out
        return out

    # ------------------------------------------------------------------ autograd
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        from .autograd.engine import backward
        backward([self], [gradient], retain_graph=retain_graph,
                 create_graph=create_graph, inputs=inputs)

    # ------------------------------------------------------------------ hooks
    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed, before it is used; a
        returned tensor replaces the gradient.  Returns a handle whose ``remove()`` takes
        the hook off.  As in PyTorch, a leaf's hooks run before ``.grad`` is accumulated."""
        from .autograd.engine import edge
        self._check_hookable("register_hook")
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        node, nr = edge(self)
        return node.add_hook(nr, hook)

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` at the next ``backward()``
        (accumulated like a leaf's); a no-op on a leaf, as in PyTorch."""
        import weakref
        from .autograd.engine import edge
        self._check_hookable("retain_grad")
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.is_leaf or self.__dict__.get("_retains_grad"):
            return
        me = weakref.ref(self)

        def keep(g):
            t = me()
            if t is not None:
                t.grad = g.detach().clone() if t.grad is None else t.grad + g.detach()
        node, nr = edge(self)
        node.add_hook(nr, keep, last=True)
        self._retains_grad = True

    @property
    def retains_grad(self) -> bool:
        """Does ``backward()`` keep this non-leaf tensor's gradient (:meth:`retain_grad`)?"""
        return not self.is_leaf and bool(self.__dict__.get("_retains_grad"))

    def _check_hookable(self, what):
        if getattr(self, "_is_fake", False):
            from .tracing import TraceError
            raise TraceError(f"{what} inside a traced or compiled function is not supported: "
                             "register it on the compiled function's inputs or outputs")

    @property
    def data(self) -> "Tensor":
        """This tensor's values, without its autograd history: ``detach()``.  (PyTorch gives
        ``.data`` a version counter of its own; here it shares this tensor's, so a write
        through ``.data`` to a tensor saved for backward is caught, not ignored.)"""
        return self.detach()

    @data.setter
    def data(self, other: "Tensor"):
        """``x.data = y``: ``x`` now holds ``y``'s values (shares its memory), keeping its own
        autograd identity (``requires_grad``, ``.grad``)."""
        if not isinstance(other, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(other).__name__}")
        self._check_hookable("setting .data")
        if other.dtype is not self.dtype or other.device != self.device:
            raise RuntimeError(f"data set to a tensor of {other.dtype} on {other.device}; this "
                               f"tensor is {self.dtype} on {self.device}")
        self._data, self._storage = other._data, other._storage
        self._base, self._view_chain, self._view_version = None, (), 0

    def detach(self) -> "Tensor":
        """A tensor sharing storage with this one, cut from the autograd graph."""
        t = Tensor._wrap(self._data, self._storage)
        return t

    def detach_(self) -> "Tensor":
        self._grad_fn = None
        self._requires_grad = False
        return self


def _install_methods():
    """Tensor methods forward to the functions in :mod:`minaot.ops` (each op defined once)."""
    from . import ops

    plain = [
        # pointwise
        "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "sin", "cos", "tanh",
        "sqrt", "rsqrt", "abs", "sigmoid", "relu", "maximum", "minimum", "clamp",
        "eq", "ne", "lt", "le", "gt", "ge", "reciprocal", "square", "erf",
        "logical_not", "sign", "masked_fill", "floor", "floor_divide", "remainder",
        "bitwise_and", "bitwise_or", "bitwise_xor",
        # more pointwise
        "log1p", "expm1", "exp2", "log2", "log10", "ceil", "trunc", "fix", "round", "frac",
        "tan", "asin", "acos", "atan", "arcsin", "arccos", "arctan", "sinh", "cosh", "asinh",
        "acosh", "atanh", "isnan", "isinf", "isfinite", "nan_to_num", "clamp_min", "clamp_max",
        "clip", "logical_and", "logical_or", "logical_xor", "atan2", "arctan2", "hypot", "fmod",
        "logaddexp", "lerp", "addcmul", "addcdiv",
        # reductions
        "sum", "prod", "mean", "amax", "amin", "max", "min", "var", "std", "argmax", "argmin",
        "softmax", "log_softmax", "logsumexp", "all", "any", "norm",
        # scans and sorting
        "cumsum", "sort", "argsort", "topk", "cumprod", "cummax", "cummin", "logcumsumexp",
        "median", "nanmedian", "kthvalue", "mode", "quantile", "nanquantile",
        "unique", "unique_consecutive", "bincount", "histc",
        # views and shapes
        "view", "reshape", "transpose", "t", "permute", "expand", "expand_as", "unsqueeze",
        "squeeze", "flatten", "split", "chunk", "gather", "index_select", "contiguous", "clone",
        "matmul", "to", "float", "double", "long", "bool", "type_as", "view_as", "unbind",
        "narrow", "select", "index_put", "movedim", "moveaxis",
        # in-place
        "add_", "sub_", "mul_", "div_", "copy_", "zero_", "fill_", "clamp_", "relu_",
        "t_", "transpose_", "unsqueeze_", "squeeze_", "neg_", "exp_", "pow_", "masked_fill_",
        "index_put_", "cumsum_", "cumprod_",
        # more in-place
        "sigmoid_", "tanh_", "sqrt_", "abs_", "log_", "reciprocal_", "clip_", "clamp_min_",
        "clamp_max_", "log1p_", "expm1_", "exp2_", "log2_", "log10_", "ceil_", "trunc_", "round_",
        "frac_", "tan_", "asin_", "acos_", "atan_", "sinh_", "cosh_", "asinh_", "acosh_", "atanh_",
        "nan_to_num_", "atan2_", "arctan2_", "hypot_", "fmod_", "lerp_", "addcmul_", "addcdiv_",
        "logical_and_", "logical_or_", "logical_xor_",
    ]
    plain += [
        # more shapes, linear algebra, comparisons and indexing (compositions of the above)
        "flip", "fliplr", "flipud", "roll", "diagonal", "swapaxes", "swapdims", "tile",
        "repeat_interleave", "reshape_as", "tril", "triu", "tril_", "triu_", "diag",
        "diag_embed", "dot", "mv", "outer", "addmm", "baddbmm", "kron", "allclose",
        "isclose", "equal", "scatter", "scatter_", "index_add", "index_add_",
        "masked_select", "nonzero", "argwhere",
    ]
    plain += [
        # more parity (minaot/ops/more.py), and ops that had no method yet
        "mm", "bmm", "scatter_add", "scatter_add_", "is_floating_point", "true_divide",
        "unflatten", "aminmax", "count_nonzero", "nansum", "nanmean", "diff", "dist", "cross",
        "take", "rot90",
    ]
    for name in plain:
        setattr(Tensor, name, getattr(ops, name))

    # methods PyTorch has only on Tensor (no torch.<name> function)
    from .ops import creation as _creation, views as _views
    Tensor.repeat = _views.repeat
    Tensor.nelement = _views.nelement
    Tensor.ndimension = _views.ndimension
    for name in ("new_zeros", "new_ones", "new_full", "new_empty", "new_tensor", "uniform_",
                 "normal_"):
        setattr(Tensor, name, getattr(_creation, name))
    Tensor.type = _creation.tensor_type
    for name, dtype in (("int", _dt.int32), ("short", _dt.int16), ("char", _dt.int8),
                        ("byte", _dt.uint8)):
        setattr(Tensor, name, _cast_method(name, dtype))
    from .ops import linalg as _linalg
    Tensor.trace = _linalg.trace            # minaot.trace is the tracer
    Tensor.__add__ = lambda a, b: ops.add(a, b)
    Tensor.__radd__ = lambda a, b: ops.add(b, a)
    Tensor.__sub__ = lambda a, b: ops.sub(a, b)
    Tensor.__rsub__ = lambda a, b: ops.sub(b, a)
    Tensor.__mul__ = lambda a, b: ops.mul(a, b)
    Tensor.__rmul__ = lambda a, b: ops.mul(b, a)
    Tensor.__truediv__ = lambda a, b: ops.div(a, b)
    Tensor.__rtruediv__ = lambda a, b: ops.div(b, a)
    Tensor.__floordiv__ = lambda a, b: ops.floor_divide(a, b)
    Tensor.__rfloordiv__ = lambda a, b: ops.floor_divide(b, a)
    Tensor.__mod__ = lambda a, b: ops.remainder(a, b)
    Tensor.__rmod__ = lambda a, b: ops.remainder(b, a)
    Tensor.__pow__ = lambda a, b: ops.pow(a, b)
    Tensor.__rpow__ = lambda a, b: ops.pow(b, a)
    Tensor.__matmul__ = lambda a, b: ops.matmul(a, b)
    Tensor.__rmatmul__ = lambda a, b: ops.matmul(b, a)
    Tensor.__neg__ = lambda a: ops.neg(a)
    Tensor.__pos__ = lambda a: a
    Tensor.__abs__ = lambda a: ops.abs(a)
    Tensor.__eq__ = lambda a, b: ops.eq(a, b)
    Tensor.__ne__ = lambda a, b: ops.ne(a, b)
    Tensor.__lt__ = lambda a, b: ops.lt(a, b)
    Tensor.__le__ = lambda a, b: ops.le(a, b)
    Tensor.__gt__ = lambda a, b: ops.gt(a, b)
    Tensor.__ge__ = lambda a, b: ops.ge(a, b)
    Tensor.where = lambda self, condition, other: ops.where(condition, self, other)
    Tensor.where.__doc__ = "``x.where(condition, y)`` is ``where(condition, x, y)`` (PyTorch's order)."
    Tensor.__invert__ = _invert
    Tensor.__and__ = lambda a, b: ops.bitwise_and(a, b)
    Tensor.__rand__ = lambda a, b: ops.bitwise_and(b, a)
    Tensor.__or__ = lambda a, b: ops.bitwise_or(a, b)
    Tensor.__ror__ = lambda a, b: ops.bitwise_or(b, a)
    Tensor.__xor__ = lambda a, b: ops.bitwise_xor(a, b)
    Tensor.__rxor__ = lambda a, b: ops.bitwise_xor(b, a)
    Tensor.__format__ = _format
    Tensor.__iadd__ = lambda a, b: ops.add_(a, b)
    Tensor.__isub__ = lambda a, b: ops.sub_(a, b)
    Tensor.__imul__ = lambda a, b: ops.mul_(a, b)
    Tensor.__itruediv__ = lambda a, b: ops.div_(a, b)
    Tensor.__getitem__ = ops.getitem
    Tensor.__setitem__ = ops.setitem
    Tensor.T = property(lambda a: ops.permute(a, tuple(reversed(range(a.ndim)))))
    Tensor.mT = property(lambda a: ops.transpose(a, -2, -1))
    Tensor.__hash__ = lambda a: id(a)


def _cast_method(name, dtype):
    """``Tensor.int()`` and its kin: methods only, as in PyTorch (``minaot.int`` is the
    dtype ``int32``, as ``torch.int``)."""
    def method(self):
        from .ops import to
        return to(self, dtype)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"``self.to(minaot.{dtype.name})``."
    return method


def _invert(a):
    """``~a``: logical not of a bool tensor, bitwise not (``-a - 1``, which wraps around in
    the tensor's dtype: ``~uint8(1)`` is 254) of an integer one."""
    from . import ops
    if a.dtype is _dt.bool_:
        return ops.logical_not(a)
    if a.dtype.category == 1:
        return ops.sub(ops.neg(a), 1)
    from ._errors import op_error
    raise op_error(TypeError, "bitwise_not", f"not defined for {a.dtype.name} tensors "
                   "(only bool and integer ones)")


def _format(a, spec):
    """``f"{t:.2f}"`` formats the number of a one-element 0-d tensor, as in PyTorch."""
    if a.ndim == 0:
        return format(a.item(), spec)
    return object.__format__(a, spec)
