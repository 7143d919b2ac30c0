"""Course tasks: the pipeline cut into numbered assignments, and a student copy without them.

A *task* is one or a few functions of the real code whose bodies are marked
with comment lines, after the docstring::

    def default_partition(joint, num_fwd_outputs):
        \"\"\"Save every value the forward computes that the backward reads.\"\"\"
        # BEGIN TASK 6.1: save every forward value the backward reads
        ...the real code...
        # END TASK 6.1

Task ``N.M`` belongs to stage ``N`` of the pipeline (1 tensor ops and VJP
rules, 2 tracing and the IR, ... 9 CUDA codegen).  A task may span several
functions: each of its blocks has its own ``BEGIN``/``END`` pair, and the first
``BEGIN`` of the task carries the one-line goal.  Its tests carry
``@pytest.mark.task_N_M`` and depend only on that task and earlier ones.

``python -m minaot.course strip --upto N DEST`` writes a student copy of the
repository where the body of every block of task ``N.1`` and later is
``raise NotImplementedError("Task N.M: <goal>")`` (signature, docstring and
the marker lines stay, so the student sees where to write); ``--upto N.M``
starts at one task.  In that copy the tests of earlier tasks pass and
``pytest -m task_N_1`` fails with the message.  ``check`` verifies the
markers (matched, not nested, around whole statements of one function body,
after its docstring), that every task has tests and a registered pytest
marker, and that no test is marked for a task that does not exist.  ``list``
prints the task table (``--markdown`` for the docs page).

Markers are found with :mod:`tokenize` (real comments only, never text inside
a string) and checked with :mod:`ast`; nothing here imports the code it reads.
"""

from __future__ import annotations

import argparse
import ast
import configparser
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tokenize
from dataclasses import dataclass, field

BEGIN = re.compile(r"#\s*BEGIN TASK (\d+)\.(\d+)\s*(?::\s*(.*?))?\s*$")
END = re.compile(r"#\s*END TASK (\d+)\.(\d+)\s*$")
LOOSE = re.compile(r"#\s*(BEGIN|END)\s+TASK\b", re.IGNORECASE)   # a marker that may be mistyped
TEST_MARK = re.compile(r"task_(\d+)_(\d+)$")

#: never copied into a student copy when the tree is walked (not a git checkout)
SKIP_DIRS = {".git", ".venv", "venv", "_build", "__pycache__", ".pytest_cache", ".hypothesis",
             "build", "dist", ".mypy_cache", ".ruff_cache", ".ipynb_checkpoints", ".whl"}


@dataclass
class Block:
    """One marked region: lines ``begin``..``end`` (1-based, the marker lines) of ``path``."""

    task: tuple
    path: str                   # relative to the root, with forward slashes
    begin: int
    end: int
    indent: str
    function: str               # qualified name of the function it sits in
    goal: str = ""              # as written on this block's BEGIN line (may be empty)
    stripped: bool = False      # its body is the student copy's raise


@dataclass
class Task:
    """One course task: its number ``(stage, n)`` (named ``"6.1"``, marked ``task_6_1``),
    its one-line goal, the marked source regions that make it up, and its tests."""

    id: tuple                   # (stage, number)
    goal: str = ""
    blocks: list = field(default_factory=list)
    tests: list = field(default_factory=list)     # "tests/file.py::name" of each marked test

    @property
    def name(self) -> str:
        return f"{self.id[0]}.{self.id[1]}"

    @property
    def mark(self) -> str:
        return f"task_{self.id[0]}_{self.id[1]}"


class CourseError(Exception):
    """Markers that are not well formed."""


def parse_task(text: str) -> tuple:
    """``"6"`` -> (6, 0) (the whole stage), ``"6.2"`` -> (6, 2)."""
    m = re.fullmatch(r"(\d+)(?:\.(\d+))?", text.strip())
    if not m:
        raise ValueError(f"a task is N or N.M (e.g. 6 or 6.1), got {text!r}")
    return int(m.group(1)), int(m.group(2) or 0)


# ---------------------------------------------------------------- reading markers
def _comments(source: str):
    """(line number, column, text) of every comment in ``source``."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [(t.start[0], t.start[1], t.string) for t in tokens if t.type == tokenize.COMMENT]


def _functions(tree):
    """(qualified name, node) of every function in ``tree``, outer ones first."""
    out = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((prefix + child.name, child))
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)
    visit(tree, "")
    return out


def _has_docstring(fn) -> bool:
    first = fn.body[0]
    return (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str))


def _enclosing_body(tree, begin, end):
    """The function whose body has whole statements strictly between lines ``begin`` and
    ``end`` and none crossing them: (qualified name, node, statements), or None."""
    best = None
    between = [s for s in ast.walk(tree) if isinstance(s, ast.stmt) and begin < s.lineno < end]
    for name, fn in _functions(tree):
        # the END line may follow the function's last statement (a comment is not a node)
        if not (fn.lineno < begin <= fn.end_lineno):
            continue
        if any(s.lineno > fn.end_lineno for s in between):
            continue
        inside = [s for s in fn.body if begin < s.lineno and s.end_lineno < end]
        crossing = [s for s in fn.body if s.lineno <= begin <= s.end_lineno
                    or s.lineno <= end <= s.end_lineno]
        if inside and not crossing:
            best = (name, fn, inside)       # later entries are nested deeper: keep the innermost
    return best


def read_blocks(path: str, rel: str) -> list[Block]:
    """The marked blocks of one Python file; raises CourseError naming the line."""
    with open(path, encoding="utf-8") as f:
        source = f.read()
    if "TASK" not in source.upper():
        return []
    lines = source.splitlines()
    blocks, open_ = [], None
    for line, col, text in _comments(source):
        where = f"{rel}:{line}"
        b, e = BEGIN.match(text), END.match(text)
        if not (b or e):
            if LOOSE.match(text):
                raise CourseError(f"{where}: malformed task marker {text!r} (write "
                                  "'# BEGIN TASK N.M: goal' or '# END TASK N.M')")
            continue
        if lines[line - 1][:col].strip():
            raise CourseError(f"{where}: a task marker must be alone on its line")
        if b:
            if open_ is not None:
                raise CourseError(f"{where}: BEGIN TASK {b.group(1)}.{b.group(2)} inside TASK "
                                  f"{open_[0][0]}.{open_[0][1]} (opened at line {open_[1]}); "
                                  "task blocks do not nest")
            open_ = ((int(b.group(1)), int(b.group(2))), line, lines[line - 1][:col], b.group(3) or "")
            continue
        task = (int(e.group(1)), int(e.group(2)))
        if open_ is None:
            raise CourseError(f"{where}: END TASK {task[0]}.{task[1]} without a BEGIN")
        if task != open_[0]:
            raise CourseError(f"{where}: END TASK {task[0]}.{task[1]} closes BEGIN TASK "
                              f"{open_[0][0]}.{open_[0][1]} (line {open_[1]})")
        if lines[line - 1][:col] != open_[2]:
            raise CourseError(f"{where}: END TASK {task[0]}.{task[1]} is not indented like its BEGIN")
        body = [x.strip() for x in lines[open_[1]:line - 1]]
        stripped = len(body) == 1 and body[0].startswith(
            f'raise NotImplementedError("Task {task[0]}.{task[1]}: ')
        blocks.append(Block(task, rel, open_[1], line, open_[2], "", open_[3], stripped))
        open_ = None
    if open_ is not None:
        raise CourseError(f"{rel}:{open_[1]}: BEGIN TASK {open_[0][0]}.{open_[0][1]} is never closed")
    if blocks:
        tree = ast.parse(source, filename=rel)
        for blk in blocks:
            found = _enclosing_body(tree, blk.begin, blk.end)
            tid = f"{blk.task[0]}.{blk.task[1]}"
            if found is None:
                raise CourseError(f"{rel}:{blk.begin}: TASK {tid} must surround whole statements "
                                  "of one function body")
            name, fn, inside = found
            if any(s.col_offset != len(blk.indent) for s in inside):
                raise CourseError(f"{rel}:{blk.begin}: TASK {tid} markers must be indented like "
                                  f"the statements of {name}")
            if _has_docstring(fn) and fn.body[0] in inside:
                raise CourseError(f"{rel}:{blk.begin}: TASK {tid} must start after the docstring "
                                  f"of {name} (students keep it)")
            blk.function = name
    return blocks


# ---------------------------------------------------------------- the repository
def source_files(root: str) -> list[str]:
    """Files of the repository, relative to ``root``: git's tracked and untracked-but-not-
    ignored files when ``root`` is a git checkout, else a walk that skips virtual
    environments, build output and caches."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=root, capture_output=True, check=True).stdout
        in_git = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root,
                                capture_output=True, text=True, check=True).stdout.strip()
        if os.path.realpath(in_git) == os.path.realpath(root):
            files = sorted({p for p in out.decode().split("\0") if p})
            return [p for p in files if os.path.isfile(os.path.join(root, p))
                    and not os.path.islink(os.path.join(root, p))]
    except (OSError, subprocess.CalledProcessError):
        pass
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")):
                continue
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                files.append(os.path.relpath(full, root).replace(os.sep, "/"))
    return files


def _test_marks(path: str) -> list[tuple]:
    """(task, test name) for each ``pytest.mark.task_N_M`` in a test file.  A mark in the
    decorators of a function or class (``pytest.param(..., marks=...)`` in a parametrize
    list included) names it; a mark in another statement (``pytestmark = ...``, a module
    level list of params) names the enclosing class, or ``<module>``."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    found = []

    def marks_in(node):
        out = []
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute):
                m = TEST_MARK.match(sub.attr)
                base = sub.value
                if m and ((isinstance(base, ast.Attribute) and base.attr == "mark")
                          or (isinstance(base, ast.Name) and base.id == "mark")):
                    out.append((int(m.group(1)), int(m.group(2))))
        return out

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                for d in child.decorator_list:
                    found.extend((t, name) for t in marks_in(d))
                if isinstance(child, ast.ClassDef):
                    visit(child, name + "::")
            else:
                found.extend((t, prefix.rstrip(":") or "<module>") for t in marks_in(child))
    visit(tree, "")
    return found


def registered_markers(root: str) -> set:
    """Marker names listed in setup.cfg's ``[tool:pytest] markers``."""
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(root, "setup.cfg"), encoding="utf-8")
    text = cfg.get("tool:pytest", "markers", fallback="")
    return {line.split(":")[0].strip() for line in text.splitlines() if line.strip()}


def collect(root: str) -> dict:
    """Every task of the repository at ``root``: {(N, M): Task}, with blocks and tests."""
    tasks = {}
    files = source_files(root)
    for rel in files:
        if not rel.endswith(".py") or rel.startswith("tests/"):
            continue
        for blk in read_blocks(os.path.join(root, rel), rel):
            t = tasks.setdefault(blk.task, Task(blk.task))
            t.blocks.append(blk)
            if blk.goal and not t.goal:
                t.goal = blk.goal
    for rel in files:
        if rel.startswith("tests/") and rel.endswith(".py"):
            for task, name in _test_marks(os.path.join(root, rel)):
                tasks.setdefault(task, Task(task)).tests.append(f"{rel}::{name}")
    return dict(sorted(tasks.items()))


def stripped_tasks(root: str) -> list[str]:
    """Names of the tasks whose code was stripped (``root`` is a student copy), in order."""
    return [t.name for t in collect(root).values() if t.blocks and all(b.stripped for b in t.blocks)]


def check(root: str) -> list[str]:
    """Problems with the tasks of the repository at ``root`` (empty: all is well)."""
    try:
        tasks = collect(root)
    except (CourseError, SyntaxError) as e:
        return [str(e)]
    problems = []
    markers = registered_markers(root)
    goals = {}
    for t in tasks.values():
        if not t.blocks:
            problems.append(f"tests are marked {t.mark} ({', '.join(t.tests[:3])}) but no code "
                            f"has TASK {t.name} markers")
            continue
        if not t.tests:
            problems.append(f"TASK {t.name} ({t.blocks[0].path}) has no test marked "
                            f"@pytest.mark.{t.mark}")
        if not t.goal:
            problems.append(f"{t.blocks[0].path}:{t.blocks[0].begin}: TASK {t.name} has no goal "
                            "(write '# BEGIN TASK N.M: <one-line goal>' on its first block)")
        for blk in t.blocks:
            if blk.goal and blk.goal != t.goal:
                problems.append(f"{blk.path}:{blk.begin}: TASK {t.name} states another goal "
                                f"than its first block ({t.goal!r})")
        seen = set()
        for blk in t.blocks:
            key = (blk.path, blk.function)
            if key in seen:
                problems.append(f"{blk.path}:{blk.begin}: TASK {t.name} has two blocks in "
                                f"{blk.function}; use one")
            seen.add(key)
        if t.mark not in markers:
            problems.append(f"marker {t.mark} is not registered in setup.cfg [tool:pytest] markers")
        goals[t.id] = t.goal
    stages = {}
    for n, m in goals:
        stages.setdefault(n, []).append(m)
    for n, ms in sorted(stages.items()):
        if sorted(ms) != list(range(1, len(ms) + 1)):
            problems.append(f"stage {n}: tasks are numbered {', '.join(f'{n}.{m}' for m in sorted(ms))}; "
                            f"number them {n}.1, {n}.2, ... without gaps")
    return problems


# ---------------------------------------------------------------- the student copy
def strip_source(source: str, blocks, start: tuple, goals: dict) -> str:
    """``source`` with the body of every block of a task >= ``start`` replaced by
    ``raise NotImplementedError("Task N.M: <goal>")`` (``goals``: task -> goal)."""
    lines = source.splitlines(keepends=True)
    for blk in sorted(blocks, key=lambda b: -b.begin):
        if blk.task < start:
            continue
        message = f"Task {blk.task[0]}.{blk.task[1]}: {goals[blk.task]}"
        lines[blk.begin:blk.end - 1] = [f"{blk.indent}raise NotImplementedError({json.dumps(message)})\n"]
    return "".join(lines)


def strip(root: str, dest: str, upto: tuple) -> dict:
    """Write the student copy of ``root`` to ``dest``, stripping tasks ``upto`` and later.

    ``upto`` is (N, 0) for the whole stage N and later, (N, M) for task N.M and later.
    Returns {path: [task names stripped]}."""
    tasks = collect(root)
    problems = [p for p in check(root) if "has no test" not in p]
    if problems:
        raise CourseError("the task markers are not well formed:\n  " + "\n  ".join(problems))
    if os.path.exists(dest) and os.listdir(dest):
        raise CourseError(f"{dest} exists and is not empty")
    by_file = {}
    for t in tasks.values():
        for blk in t.blocks:
            by_file.setdefault(blk.path, []).append(blk)
    goals = {t.id: t.goal for t in tasks.values()}
    stripped = {}
    for rel in source_files(root):
        src, out = os.path.join(root, rel), os.path.join(dest, rel)
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        blocks = [b for b in by_file.get(rel, []) if b.task >= upto]
        if not blocks:
            shutil.copy2(src, out)
            continue
        with open(src, encoding="utf-8") as f:
            text = f.read()
        with open(out, "w", encoding="utf-8") as f:
            f.write(strip_source(text, blocks, upto, goals))
        shutil.copystat(src, out)
        stripped[rel] = sorted({f"{b.task[0]}.{b.task[1]}" for b in blocks})
    return stripped


# ---------------------------------------------------------------- the task table
def _where(task, markdown):
    """``file: fn1, fn2; file2: fn3`` for the blocks of ``task``."""
    files = {}
    for b in task.blocks:
        files.setdefault(b.path, []).append(b.function)
    if markdown:
        return "; ".join(f"`{p}`: " + ", ".join(f"`{f}`" for f in fns) for p, fns in files.items())
    return "; ".join(f"{p}: " + ", ".join(fns) for p, fns in files.items())


def table(tasks, markdown=False) -> str:
    """The task list: a markdown table (docs/teaching.md holds it), or plain text."""
    rows = []
    for t in tasks.values():
        where = _where(t, markdown)
        rows.append((t.name, t.goal, where, f"`{t.mark}`" if markdown else t.mark, str(len(t.tests))))
    if markdown:
        out = ["| Task | Goal | Where | Marker |", "|---|---|---|---|"]
        out += [f"| {n} | {g} | {w} | {m} |" for n, g, w, m, _ in rows]
        return "\n".join(out)
    out = []
    for n, g, w, m, k in rows:
        out.append(f"{n:>5}  {g}\n       {w}\n       pytest -m {m}  ({k} tests)")
    return "\n".join(out)


def repo_root() -> str:
    """The checkout this module sits in (the parent of the ``minaot`` package)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None) -> int:
    """``python -m minaot.course check | list | strip --upto N[.M] DEST``; returns the exit code."""
    p = argparse.ArgumentParser(prog="python -m minaot.course", description=__doc__.splitlines()[0])
    p.add_argument("--root", default=None, help="the repository (default: this checkout)")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("strip", help="write a student copy without tasks N.x and later")
    s.add_argument("--upto", required=True, help="first stripped task: N (stage) or N.M")
    s.add_argument("dest")
    sub.add_parser("check", help="verify the markers and that every task has tests")
    lst = sub.add_parser("list", help="print the tasks")
    lst.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv)
    root = os.path.abspath(args.root or repo_root())
    try:
        if args.cmd == "check":
            problems = check(root)
            for line in problems:
                print(f"course check: {line}", file=sys.stderr)
            if not problems:
                tasks = collect(root)
                print(f"course check: {len(tasks)} tasks, "
                      f"{sum(len(t.blocks) for t in tasks.values())} marked blocks, "
                      f"{sum(len(t.tests) for t in tasks.values())} marked tests: ok")
            return 1 if problems else 0
        if args.cmd == "list":
            print(table(collect(root), markdown=args.markdown))
            return 0
        upto = parse_task(args.upto)
        done = strip(root, args.dest, upto)
        names = sorted({n for ns in done.values() for n in ns}, key=parse_task)
        print(f"wrote {args.dest}: tasks {', '.join(names) or '(none)'} stripped in "
              f"{len(done)} files")
        return 0
    except (CourseError, ValueError) as e:
        print(f"course: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
