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
