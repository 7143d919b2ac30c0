"""minaot.ir: a small MLIR-style IR.

    types.py         tensor<4x8xf32>, f32, index, memref<...>
    core.py          Value, Operation, Block, Region, Function, walk
    printer.py       IR -> text (stable %0, %1 names)
    parser.py        text -> IR (parse, parse_module)
    dialect.py       Dialect, OpSpec, the registry, verify
    builder.py       Builder: create ops at an insertion point
    rewriter.py      RewritePattern, PatternRewriter, apply_patterns_greedily
    pass_manager.py  Pass, PassManager, pass registry, textual pipelines

Round trip: `str(parse(str(fn))) == str(fn)`.
"""

from .builder import Builder
from .interpreter import interpret, run_op
from .core import Block, Function, Location, Operation, Region, Value, walk
from .dialect import (Dialect, OpSpec, VerifyError, get_dialect, is_pure, is_trivially_dead,
                      lookup_op, register_dialect, registered_dialects, unregister_dialect,
                      verify, verify_op)
from .parser import ParseError, parse, parse_module
from .pass_manager import Pass, PassError, PassManager, get_pass, parse_pipeline, register_pass
from .printer import op_line, print_function, print_op
from .rewriter import PatternRewriter, RewriteError, RewritePattern, apply_patterns_greedily
from .types import (DTYPES, ITEMSIZE, IndexType, MemRefType, ScalarType, TensorType, Type,
                    parse_type)

__all__ = [
    "interpret", "run_op", "Builder", "Block", "Function", "Location", "Operation", "Region", "Value", "walk",
    "Dialect", "OpSpec", "VerifyError", "get_dialect", "is_pure", "is_trivially_dead",
    "lookup_op", "register_dialect", "registered_dialects", "unregister_dialect", "verify",
    "verify_op", "ParseError", "parse", "parse_module", "Pass", "PassError", "PassManager",
    "get_pass", "parse_pipeline", "register_pass", "op_line", "print_function", "print_op",
    "PatternRewriter", "RewriteError", "RewritePattern", "apply_patterns_greedily",
    "DTYPES", "ITEMSIZE", "IndexType", "MemRefType", "ScalarType", "TensorType", "Type",
    "parse_type",
]
