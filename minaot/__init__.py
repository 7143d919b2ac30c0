"""minaot: a small, readable ahead-of-time autograd compiler.

``import minaot`` gives PyTorch-like eager tensors (numpy storage, views,
in-place ops, autograd) and, stage by stage, the compiler that traces,
functionalizes, differentiates, partitions, fuses and lowers them to Numba.
"""

__version__ = "0.1.0"

import os as _os

# Numba's OpenMP workers spin after each parallel kernel, stealing cores from the BLAS
# threads of the matmul that usually comes next (measured on 2 cores: a matmul after a
# kernel 7.7 ms spinning, 3.7 ms passive; benchmarks/README.md).  Set before Numba starts
# its pool; a user's own setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import dtypes as _dtypes
from .dtypes import DType  # noqa: F401
from .tensor import Tensor, device  # noqa: F401
from . import ops as _ops  # registers every op
from .ops import *  # noqa: F401,F403
from .ops import OPS as _OPS  # noqa: F401
from .random import Generator, initial_seed, manual_seed  # noqa: F401
from . import autograd  # noqa: F401
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401
from . import nn  # noqa: F401
from . import optim  # noqa: F401
from . import ir  # noqa: F401
from . import pytree  # noqa: F401
from . import dialects  # noqa: F401  (registers the mt and prim dialects)
from .tracing import FakeTensor, TraceError, trace  # noqa: F401
from .counters import counters, reset  # noqa: F401
from .compilers import cuda_compiler, nop, numba_compiler, print_compile  # noqa: F401
from .passes.decompose import get_decompositions  # noqa: F401
from .aot import aot_function, compile, export_joint  # noqa: F401
from .aot_module import aot_module  # noqa: F401
from .passes.joint import build_joint  # noqa: F401
from .passes.partition import default_partition, min_cut_rematerialization_partition  # noqa: F401
from .tensor import _install_methods

float32 = _dtypes.float32
float64 = _dtypes.float64
int64 = _dtypes.int64
int32 = _dtypes.int32
int16 = _dtypes.int16
int8 = _dtypes.int8
uint8 = _dtypes.uint8
bool = _dtypes.bool_  # noqa: A001  (minaot.bool, like torch.bool)
float = _dtypes.float32  # noqa: A001
double = _dtypes.float64
long = _dtypes.int64
int = _dtypes.int32  # noqa: A001  (torch.int is int32)
short = _dtypes.int16
promote_types = _dtypes.promote_types

_install_methods()
del _install_methods

# The public names: what ``from minaot import *`` gives, and what docs/api.md documents
# (tests/test_docs_api.py checks that each has a docstring and an entry there).  The op
# functions are minaot.ops' names; the submodules (nn, optim, autograd, ir, testing, ...)
# are reached as attributes and are not listed.  The op registry's own names
# (OpDef, get_op, register, ...) live in minaot.ops.registry.
__all__ = sorted(
    set(_ops.__all__) - {"Meta", "OpDef", "SampleInput", "all_ops", "get_op", "register"}
    | {
        "DType", "Tensor", "device", "float32", "float64", "int64", "int32", "int16", "int8",
        "uint8", "bool", "float", "double", "long", "int", "short", "promote_types", "Generator",
        "initial_seed", "manual_seed", "enable_grad", "is_grad_enabled",
        "no_grad", "set_grad_enabled", "FakeTensor", "TraceError", "trace", "counters", "reset",
        "nop", "numba_compiler", "cuda_compiler", "print_compile", "get_decompositions",
        "aot_function", "compile", "export_joint", "aot_module", "build_joint", "default_partition",
        "min_cut_rematerialization_partition",
    })
