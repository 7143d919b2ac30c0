"""Every op: the registry records and the public functions that call them.

Importing this package registers all ops (each module registers the records it
defines).  ``minaot.add`` and friends are re-exported from here.
"""

from .registry import OPS, Meta, OpDef, SampleInput, all_ops, get_op, register  # noqa: F401
from .pointwise import (  # noqa: F401
    abs, add, bitwise_and, bitwise_or, bitwise_xor, bool, clamp, cos, div, double, eq, erf, exp,
    float, floor, floor_divide, ge, gelu, gt, le, log, logical_not, long, lt, masked_fill,
    maximum, minimum, mul, ne, neg, pow, reciprocal, relu, remainder, rsqrt, sigmoid, sign, sin,
    sqrt, sub, tanh, to, type_as, where,
)
from .reductions import (  # noqa: F401
    all, amax, amin, any, argmax, argmin, log_softmax, logsumexp, max, mean, min, norm, prod,
    softmax, std, sum, var,
)
from .views import (  # noqa: F401
    broadcast_to, chunk, clone, contiguous, expand, expand_as, flatten, getitem, index_put,
    index_put_, index_select,
    narrow, permute, reshape, select, select_scatter, setitem, slice_scatter, split, squeeze, t,
    transpose, unbind, unsqueeze, view, view_as,
)
from .creation import (  # noqa: F401
    arange, as_tensor, empty, empty_like, from_numpy, full, full_like, ones, ones_like, rand,
    rand_like, randn, randn_like, tensor, zeros, zeros_like,
)
from .other import (  # noqa: F401
    add_, bmm, cat, clamp_, concat, copy_, div_, exp_, fill_, gather, masked_fill_, matmul, mm,
    mul_, neg_, pow_, relu_, scatter_add, squeeze_, stack, sub_, sum_to, t_, transpose_,
    unsqueeze_, zero_,
)
from .einsum import einsum  # noqa: F401
from .nn import cross_entropy, dropout, layer_norm, linear, mse_loss, nll_loss  # noqa: F401
from ..autograd.function import _register_custom_vjp_op

_register_custom_vjp_op()


def square(input):
    """``input * input``, elementwise."""
    return mul(input, input)


# ``from minaot.ops import *`` exports the op functions, not the submodules.
__all__ = sorted(name for name, obj in list(globals().items())
                 if not name.startswith("_") and callable(obj)
                 and getattr(obj, "__module__", "").startswith("minaot.ops"))
