"""``minaot.nn.functional``: the functional layer API (PyTorch names)."""

from ..ops import (  # noqa: F401
    cross_entropy, dropout, gelu, layer_norm, linear, log_softmax, mse_loss, nll_loss, relu,
    sigmoid, softmax, tanh,
)
