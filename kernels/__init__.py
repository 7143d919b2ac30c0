"""Code that runs under Numba: hand-written library kernels and launch helpers.

Installed as ``minaot.kernels`` (see the ``package_dir`` mapping in setup.cfg).
"""
