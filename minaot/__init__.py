"""minaot: a small, readable ahead-of-time autograd compiler."""

__version__ = "0.1.0"
