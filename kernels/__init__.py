"""Code that runs under Numba: hand-written library kernels and launch helpers.

Installed as ``minaot.kernels`` (see the ``package_dir`` mapping in setup.cfg).

Under Numba's CUDA simulator, importing any of them first puts
:mod:`minaot.codegen.cuda_simulator`'s fixes in place (shared arrays allocated
under a lock): without them a kernel with shared tiles, such as the blocked
matmul, now and then computes with a private copy in one thread.
"""

from numba import config as _config

if _config.ENABLE_CUDASIM:
    from minaot.codegen.cuda_simulator import install as _install

    _install()
