"""minaot.passes: whole-function transformations, one pass per file.

Each pass is a `Pass` subclass with a `name` and registers itself with
`register_pass`, so pipelines can name it: `parse_pipeline("canonicalize,cse,dce")`.
`get_pass(name)` finds a pass not imported yet in `minaot/passes/<name>.py`
(with `-` written as `_`).
"""

from minaot.ir.pass_manager import Pass, PassManager, get_pass, parse_pipeline, register_pass

from .canonicalize import Canonicalize
from .cse import CSE
from .dce import DCE

__all__ = ["Pass", "PassManager", "get_pass", "parse_pipeline", "register_pass",
           "Canonicalize", "CSE", "DCE"]
