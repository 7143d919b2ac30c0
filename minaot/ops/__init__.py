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
from .pointwise import (  # noqa: F401  (more pointwise)
    acos, acosh, addcdiv, addcmul, arccos, arcsin, arctan, arctan2, asin, asinh, atan, atan2,
    atanh, ceil, clamp_max, clamp_min, clip, cosh, exp2, expm1, fix, fmod, frac, hypot, isfinite,
    isinf, isnan, lerp, log10, log1p, log2, logaddexp, logical_and, logical_or, logical_xor,
    nan_to_num, round, sinh, tan, trunc,
)
from .reductions import (  # noqa: F401
    all, amax, amin, any, argmax, argmin, log_softmax, logsumexp, max, mean, min, norm, prod,
    softmax, std, sum, var,
)
from .views import (  # noqa: F401
    broadcast_to, chunk, clone, contiguous, expand, expand_as, flatten, getitem, index_put,
    index_put_, index_select,
    movedim, moveaxis, narrow, permute, reshape, select, select_scatter, setitem, slice_scatter, split, squeeze, t,
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
from .scan_sort import (  # noqa: F401
    argsort, cummax, cummin, cumprod, cumprod_, cumsum, cumsum_, logcumsumexp, sort, topk,
)
from .other import (  # noqa: F401  (more in-place)
    abs_, acos_, acosh_, addcdiv_, addcmul_, arctan2_, asin_, asinh_, atan2_, atan_, atanh_,
    ceil_, clamp_max_, clamp_min_, clip_, cosh_, exp2_, expm1_, fmod_, frac_, hypot_, lerp_,
    log10_, log1p_, log2_, log_, logical_and_, logical_or_, logical_xor_, nan_to_num_,
    reciprocal_, round_, sigmoid_, sinh_, sqrt_, tan_, tanh_, trunc_,
)
from .views import (  # noqa: F401
    broadcast_tensors, diag, diag_embed, diagonal, flip, fliplr, flipud, meshgrid, numel, roll,
    repeat_interleave, reshape_as, swapaxes, swapdims, tile, tril, tril_, triu, triu_,
)
from .creation import eye, linspace, logspace, normal, randint, randperm  # noqa: F401
from .linalg import addmm, baddbmm, dot, kron, mv, outer, tensordot  # noqa: F401
# (no ``trace``: minaot.trace is the tracer; torch.trace is the method ``Tensor.trace``)
from .other import (  # noqa: F401
    allclose, argwhere, equal, index_add, index_add_, isclose, masked_select, nonzero, scatter,
    scatter_,
)
from .order_stats import (  # noqa: F401
    kthvalue, median, mode, nanmedian, nanquantile, quantile,
)
from .search_count import (  # noqa: F401
    bincount, bucketize, histc, searchsorted, unique, unique_consecutive,
)
from .einsum import einsum  # noqa: F401
from .nn import cross_entropy, dropout, layer_norm, linear, mse_loss, nll_loss  # noqa: F401
from .nn_extra import (  # noqa: F401
    binary_cross_entropy, binary_cross_entropy_with_logits, celu, cosine_similarity, elu,
    embedding, glu, hardsigmoid, hardswish, hardtanh, huber_loss, kl_div, l1_loss, leaky_relu,
    logsigmoid, mish, normalize, one_hot, pairwise_distance, relu6, selu, silu, smooth_l1_loss,
    softmin, softplus, softsign,
)
from .conv import conv1d, conv2d  # noqa: F401
from .pool import adaptive_avg_pool1d, avg_pool1d, max_pool1d, max_pool2d  # noqa: F401
from .more import (  # noqa: F401  (more parity: compositions of the ops above)
    aminmax, atleast_1d, atleast_2d, atleast_3d, block_diag, column_stack, count_nonzero, cross,
    detach, diff, dist, dstack, get_default_dtype, is_floating_point, is_tensor, nanmean, nansum,
    hstack, rot90, scatter_add_, std_mean, take, true_divide, unflatten, var_mean, vstack,
)
from ..autograd.function import _register_custom_vjp_op

_register_custom_vjp_op()


def square(input):
    """``input * input``, elementwise."""
    return mul(input, input)


# ``from minaot.ops import *`` exports the op functions, not the submodules.
__all__ = sorted(name for name, obj in list(globals().items())
                 if not name.startswith("_") and callable(obj)
                 and getattr(obj, "__module__", "").startswith("minaot.ops"))
