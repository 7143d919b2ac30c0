"""emit-numba-cpu: a loop function -> the Python source of one Numba kernel.

This is a translation, not a pass (like MLIR's ``translateModuleToLLVMIR``):
it walks the loop IR once and prints one Python statement per op.  The
``scf.parallel`` loop becomes ``prange``, ``scf.for`` a ``range`` loop
whose carried values are plain variables reassigned by ``scf.yield``,
``memref.load``/``store`` are array indexing, and each ``arith``/``math``
op is one expression from the table below.  Scalars are numbered in the
order the loop IR defines them, buffers are ``in0 ...``/``out0 ...`` and
loop indices are named after the domain axis they walk (``i0``, ``i1``), so
the printed IR and the source can be read side by side.

Two rules measured on this machine (see the Numba notes): constants are
typed (``np.float32(0.5)``; a bare ``0.5`` would turn float32 arithmetic into
float64), and the element loop is a ``prange`` so LLVM vectorizes it.  The
``fastmath`` flags allow reassociation (vectorized sums) and contraction
(FMA) but keep NaN and infinity semantics (no ``nnan``/``ninf``): ``max``
must propagate NaN as numpy does.  ``arith.maximumf``/``minimumf`` are
LLVM's ``llvm.maximum``/``llvm.minimum`` (:mod:`minaot.kernels.minmax`), which
mean exactly that and vectorize, also as the accumulator of a row max.
``error_model="numpy"`` makes ``x / 0`` an infinity, as in numpy, instead of
an exception.  Integer ops on the integer types narrower than 64 bits
(``i32 i16 i8 ui8``) are wrapped in their type (``np.int8(...)``): Numba
computes them in 64 bits, and a value must wrap around at each op as PyTorch's
does (``int8`` 100 + 100 is -56 before it is divided or compared); a float
becomes an ``i16 i8 ui8`` through ``int32`` (``np.int8(np.int32(x))``), as C
compilers convert it, so a float beyond the narrow range wraps around as it
does in numpy and PyTorch (``1000.7`` as int8 is -24, ``-1.5`` as uint8 255).
"""

from __future__ import annotations

import math

from ..ir import Function

FASTMATH = "{'contract', 'reassoc', 'nsz', 'arcp', 'afn'}"
NP_TYPE = {"f32": "np.float32", "f64": "np.float64", "i64": "np.int64", "i32": "np.int32",
           "i16": "np.int16", "i8": "np.int8", "ui8": "np.uint8", "i1": "np.bool_"}
#: integer types narrower than Numba's 64-bit arithmetic: op results are wrapped in them
NARROW_INT = ("i32", "i16", "i8", "ui8")
INT = ("i64",) + NARROW_INT

BINARY = {"arith.addf": "{0} + {1}", "arith.subf": "{0} - {1}", "arith.mulf": "{0} * {1}",
          "arith.divf": "{0} / {1}", "arith.addi": "{0} + {1}", "arith.subi": "{0} - {1}",
          "arith.muli": "{0} * {1}", "arith.andi": "{0} & {1}", "arith.ori": "{0} | {1}",
          "arith.xori": "{0} ^ {1}", "arith.shli": "{0} << {1}", "arith.shrsi": "{0} >> {1}",
          "arith.maxsi": "max({0}, {1})", "arith.minsi": "min({0}, {1})",
          # NaN-propagating, like numpy.maximum and MLIR's maximumf (the CPU emitter uses
          # CPU_BINARY's intrinsics instead; the CUDA emitter shares this table)
          "arith.maximumf": "{0} if ({0} > {1} or {0} != {0}) else {1}",
          "arith.minimumf": "{0} if ({0} < {1} or {0} != {0}) else {1}",
          "math.powf": "{T}({0} ** {1})", "math.copysign": "np.copysign({0}, {1})",
          "math.atan2": "{T}(np.arctan2({0}, {1}))", "math.hypot": "{T}(np.hypot({0}, {1}))",
          "arith.remf": "{T}(np.fmod({0}, {1}))"}
#: the same meaning as LLVM's llvm.maximum/llvm.minimum (minaot.kernels.minmax), which
#: vectorize, also as the accumulator of a row max
CPU_BINARY = {**BINARY, "arith.maximumf": "maximumf({0}, {1})",
              "arith.minimumf": "minimumf({0}, {1})"}
UNARY = {"arith.negf": "-{0}", "math.exp": "np.exp({0})", "math.log": "np.log({0})",
         "math.sin": "np.sin({0})", "math.cos": "np.cos({0})", "math.tanh": "np.tanh({0})",
         "math.sqrt": "np.sqrt({0})", "math.rsqrt": "{T}(1) / np.sqrt({0})",
         "math.absf": "abs({0})", "math.absi": "abs({0})", "math.erf": "{T}(math.erf({0}))",
         "math.floor": "np.floor({0})", "math.round": "{T}(np.rint({0}))"}
#: more pointwise: numpy's function of the same meaning, typed back ({T}) to the result
UNARY.update({f"math.{f}": f"{{T}}(np.{np_name}({{0}}))" for f, np_name in (
    ("log1p", "log1p"), ("expm1", "expm1"), ("log2", "log2"), ("log10", "log10"),
    ("ceil", "ceil"), ("trunc", "trunc"), ("tan", "tan"), ("asin", "arcsin"),
    ("acos", "arccos"), ("atan", "arctan"), ("sinh", "sinh"), ("cosh", "cosh"),
    ("asinh", "arcsinh"), ("acosh", "arccosh"), ("atanh", "arctanh"))})
CMP = {"oeq": "==", "une": "!=", "olt": "<", "ole": "<=", "ogt": ">", "oge": ">=",
       "eq": "==", "ne": "!=", "slt": "<", "sle": "<=", "sgt": ">", "sge": ">="}


def narrow(expr: str, op_name: str, type: str) -> str:
    """``expr``, the value of integer op ``op_name`` (``arith.addi``, ``math.absi``...),
    wrapped in its result ``type`` when that is narrower than 64 bits (Numba would keep
    64: ``int8`` 100 + 100 must be -56, not 200, as in PyTorch)."""
    if type in NARROW_INT and op_name.endswith("i"):
        return f"{NP_TYPE[type]}({expr})"
    return expr


def cast(expr: str, have: str, type: str) -> str:
    """``arith.cast`` of ``expr`` from type ``have`` to ``type``: a numpy constructor; a
    float becomes an integer narrower than 32 bits through int32, which then wraps, as
    numpy's and PyTorch's (C) casts do (a direct conversion of a float beyond the narrow
    range would be undefined)."""
    if type in ("i16", "i8", "ui8") and have in ("f32", "f64"):
        return f"{NP_TYPE[type]}(np.int32({expr}))"
    return f"{NP_TYPE[type]}({expr})"


def literal(value, type: str) -> str:
    if type == "index":
        return str(int(value))
    if type == "i1":
        return "True" if value else "False"
    if type in INT:         # wrapped into the type's range: np.uint8(-1) would not run in numpy
        from ..dtypes import from_ir, wrap_int
        return f"{NP_TYPE[type]}({wrap_int(value, from_ir(type))})"
    if math.isnan(value):
        return f"{NP_TYPE[type]}(np.nan)"
    if math.isinf(value):
        return f"{NP_TYPE[type]}({'-' if value < 0 else ''}np.inf)"
    return f"{NP_TYPE[type]}({float(value)!r})"


#: below this many elements a kernel runs on one thread: starting threads costs more than
#: it saves, and a serial kernel compiles about twice as fast
PARALLEL_MIN_ELEMENTS = 1 << 15


class _Emitter:
    def __init__(self, fn: Function, parallel=True):
        self.fn = fn
        self.parallel = parallel
        self.names = {}
        self.lines = []
        self.used = set()
        self.counter = 0

    def name(self, v, hint=None):
        if v not in self.names:
            base = hint or f"v{self.counter}"
            self.counter += 1
            n, k = base, 1
            while n in self.used:
                n, k = f"{base}_{k}", k + 1
            self.used.add(n)
            self.names[v] = n
        return self.names[v]

    def emit(self, depth, text):
        self.lines.append("    " * depth + text)

    def block(self, block, depth):
        for op in block.ops:
            self.op(op, depth)

    def op(self, op, depth):
        """Emit the Python statement(s) of loop-IR op ``op`` at indentation ``depth``.

        Operands are referred to by the names already given (``self.names``); each
        result gets a fresh name (:meth:`name`).  ``func.return`` and ``scf.yield``
        emit nothing.  ``scf.parallel`` / ``scf.for`` become ``for <iv> in
        prange(hi)`` / ``range(hi)`` (``range(lo, hi)`` when ``lo != 0``; ``prange``
        only when ``self.parallel``); the carried values of an ``scf.for`` are plain
        variables set to their initial values before the loop and reassigned from the
        ``scf.yield`` operands at the end of the body, and the loop's results are those
        variables; a body left empty gets ``pass``.  ``memref.load``/``store`` index the
        buffer (``buf[i, j]``, ``buf[()]`` at rank 0), ``memref.alloc`` is an ``np.full``
        of its fill value, ``arith.constant`` is no statement (its name is the typed
        :func:`literal`), ``arith``/``math`` ops are one expression from ``BINARY``,
        ``UNARY`` (``{T}`` is the result's numpy type; an integer op's value on a type
        narrower than 64 bits wrapped by :func:`narrow`), ``CMP`` (``une``/``one``...),
        ``arith.select`` a conditional expression, ``arith.cast`` a numpy constructor
        (:func:`cast`) and ``arith.bitcast`` a call of ``bitcast_<from>_to_<to>``.  Anything else
        raises ``NotImplementedError`` naming the op and its location."""
        # BEGIN TASK 8.1: emit-numba-cpu: one Python statement per loop-IR op
        n = op.name
        ops = [self.names[v] for v in op.operands]
        if n in ("func.return", "scf.yield"):
            return
        if n == "scf.parallel" or n == "scf.for":
            blk = op.regions[0].block
            iv = self.name(blk.args[0], blk.args[0].name_hint)
            for res, arg, init in zip(op.results, blk.args[1:], ops):
                acc = self.name(arg, f"acc{self.counter}")
                self.names[res] = acc
                self.emit(depth, f"{acc} = {init}")
            rng = "prange" if n == "scf.parallel" and self.parallel else "range"
            lo, hi = op.attributes["lower"], op.attributes["upper"]
            self.emit(depth, f"for {iv} in {rng}({hi if lo == 0 else f'{lo}, {hi}'}):")
            start = len(self.lines)
            self.block(blk, depth + 1)
            yld = blk.ops[-1]
            for arg, v in zip(blk.args[1:], yld.operands):
                self.emit(depth + 1, f"{self.names[arg]} = {self.names[v]}")
            if len(self.lines) == start:        # everything was hoisted out of this loop
                self.emit(depth + 1, "pass")
            return
        if n == "memref.store":
            self.emit(depth, f"{ops[1]}[{self.index(ops[2:])}] = {ops[0]}")
            return
        r = op.results[0]
        t = str(r.type)
        if n == "arith.constant":
            self.names[r] = literal(op.attributes["value"], op.attributes["type"])
            return
        out = self.name(r)
        if n == "memref.alloc":
            shape = ", ".join(str(d) for d in r.type.shape)
            expr = f"np.full(({shape},), {literal(op.attributes['fill'], r.type.dtype)})"
        elif n == "memref.load":
            expr = f"{ops[0]}[{self.index(ops[1:])}]"
        elif n in CPU_BINARY:
            expr = narrow(CPU_BINARY[n].format(*ops, T=NP_TYPE.get(t)), n, t)
        elif n in UNARY:
            expr = narrow(UNARY[n].format(*ops, T=NP_TYPE.get(t)), n, t)
        elif n in ("arith.cmpf", "arith.cmpi"):
            p = op.attributes["predicate"]
            expr = (f"({ops[0]} < {ops[1]} or {ops[0]} > {ops[1]})" if p == "one"
                    else f"{ops[0]} {CMP[p]} {ops[1]}")
        elif n == "arith.select":
            expr = f"{ops[1]} if {ops[0]} else {ops[2]}"
        elif n == "arith.cast":
            expr = cast(ops[0], str(op.operands[0].type), t)
        elif n == "arith.bitcast":
            expr = f"bitcast_{str(op.operands[0].type)}_to_{t}({ops[0]})"
        else:
            raise NotImplementedError(f"emit-numba-cpu: no code for {n} ({op.loc})")
        self.emit(depth, f"{out} = {expr}")
        # END TASK 8.1

    @staticmethod
    def index(idx):
        return ", ".join(idx) if idx else "()"


def emit_numba_cpu(fn: Function, header: str = "") -> str:
    """Python source of a module defining the kernel ``fn`` as a Numba function."""
    work = max((a.type.numel for a in fn.args), default=0)
    parallel = work >= PARALLEL_MIN_ELEMENTS and any(op.name == "scf.parallel" for op in fn.walk())
    e = _Emitter(fn, parallel)
    args = [e.name(a, a.name_hint) for a in fn.args]
    e.block(fn.body, 1)
    body = e.lines or ["    pass"]
    names = {op.name for op in fn.walk()}
    lines = [f"# {line}" for line in header.splitlines()]
    lines += ["import math", "", "import numpy as np", "from numba import njit, prange"]
    if "arith.bitcast" in names:
        lines.append("from minaot.kernels.bits import "
                     "bitcast_f32_to_i32, bitcast_i32_to_f32, bitcast_f64_to_i64, bitcast_i64_to_f64")
    if names & {"arith.maximumf", "arith.minimumf"}:
        lines.append("from minaot.kernels.minmax import maximumf, minimumf")
    lines += ["", "", f"@njit(parallel={parallel}, fastmath={FASTMATH}, error_model='numpy', cache=True)",
              f"def {fn.name}({', '.join(args)}):", *body, ""]
    return "\n".join(lines)
