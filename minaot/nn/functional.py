"""``minaot.nn.functional``: the functional layer API (PyTorch names)."""

from ..ops import (  # noqa: F401
    cross_entropy, dropout, gelu, layer_norm, linear, log_softmax, mse_loss, nll_loss, relu,
    sigmoid, softmax, tanh,
)
from ..ops import (  # noqa: F401
    binary_cross_entropy, binary_cross_entropy_with_logits, celu, cosine_similarity, elu,
    embedding, glu, hardsigmoid, hardswish, hardtanh, huber_loss, kl_div, l1_loss, leaky_relu,
    logsigmoid, mish, normalize, one_hot, pairwise_distance, relu6, selu, silu, smooth_l1_loss,
    softmin, softplus, softsign,
)
from ..ops.conv import conv1d, conv2d, pad  # noqa: F401
from ..ops.nn import dropout2d  # noqa: F401
from ..ops.pool import (  # noqa: F401
    adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool1d, adaptive_max_pool2d,
    avg_pool1d, avg_pool2d, max_pool1d, max_pool2d,
)
