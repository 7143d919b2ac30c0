"""The course kit (minaot/course.py): marker checks, the student copy, and for every stage
N a copy stripped from N in which the earlier tasks' tests pass and task N.1's tests fail
with its ``NotImplementedError("Task N.1: ...")``.

The per-stage runs start pytest in the copy (its own ``minaot`` comes first on the path)
on the test files that hold the selected marks only, so each takes a few seconds; the
full collection of the student copy (``pytest -m task_6_1`` collects every test file) is
checked once, on the copy with every task stripped.
"""

import ast
import os
import subprocess
import sys
import textwrap

import pytest

from minaot import course

ROOT = course.repo_root()
TASKS = course.collect(ROOT)
STAGES = sorted({n for n, _ in TASKS})
STRIPPED = course.stripped_tasks(ROOT)

# In a student copy the kit cannot strip what is already gone: these tests are for the
# full repository (the tasks' own tests are what students run).
pytestmark = pytest.mark.skipif(bool(STRIPPED), reason=f"a student copy: tasks {', '.join(STRIPPED)} "
                                "are stripped; the kit's self-test runs on the full repository")


def run(args, cwd, timeout=600):
    env = dict(os.environ, PYTHONPATH=str(cwd))
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def pytest_in(copy, tasks, *extra):
    """Run the tests marked for ``tasks`` in ``copy``: (exit code, output)."""
    files = sorted({test.split("::")[0] for t in tasks for test in t.tests})
    expr = " or ".join(t.mark for t in tasks)
    return run(["-m", "pytest", "-p", "no:cacheprovider", "-q", *extra, "-m", expr, *files], copy)


@pytest.fixture(scope="module")
def stripped_all(tmp_path_factory):
    dest = tmp_path_factory.mktemp("course") / "all"
    course.strip(ROOT, str(dest), (1, 0))
    return dest


# ---------------------------------------------------------------- markers
def test_check_passes_on_the_repository():
    assert course.check(ROOT) == []
    assert STAGES == list(range(1, max(STAGES) + 1))
    for t in TASKS.values():
        assert t.goal and t.blocks and t.tests, t


def test_docs_page_lists_the_tasks():
    with open(os.path.join(ROOT, "docs", "teaching.md"), encoding="utf-8") as f:
        page = f.read()
    table = course.table(TASKS, markdown=True)
    assert table in page, ("docs/teaching.md is out of date; paste the output of "
                           "`python -m minaot.course list --markdown`:\n" + table)


def test_cli_check_and_list():
    code, out = run(["-m", "minaot.course", "check"], ROOT)
    assert code == 0 and ": ok" in out, out
    code, out = run(["-m", "minaot.course", "list", "--markdown"], ROOT)
    assert code == 0 and "| 6.2 |" in out and "`task_6_2`" in out, out


def make_repo(tmp_path, module, tests="", markers=("task_1_1",)):
    """A tiny repository (no git: the walk is used) with one module and one test file."""
    (tmp_path / "pkg").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text(textwrap.dedent(module))
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_mod.py").write_text(textwrap.dedent(tests))
    (tmp_path / "setup.cfg").write_text(
        "[tool:pytest]\nmarkers =\n" + "".join(f"    {m}: x\n" for m in markers))
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "big.py").write_text("x = 1\n")
    return str(tmp_path)


GOOD = '''
def f(x):
    """Double x."""
    # BEGIN TASK 1.1: double a number
    y = x * 2
    return y
    # END TASK 1.1


class C:
    def g(self):
        """A method."""
        # BEGIN TASK 1.1
        return 3
        # END TASK 1.1


TEXT = """
# BEGIN TASK 9.9: inside a string, not a marker
"""
'''
GOOD_TESTS = '''
import pytest

@pytest.mark.task_1_1
def test_f():
    pass
'''


def test_check_and_strip_a_small_repository(tmp_path):
    root = make_repo(tmp_path / "repo", GOOD, GOOD_TESTS)
    assert course.check(root) == []
    (t,) = course.collect(root).values()
    assert t.name == "1.1" and t.goal == "double a number" and t.tests == ["tests/test_mod.py::test_f"]
    assert [b.function for b in t.blocks] == ["f", "C.g"]
    dest = tmp_path / "student"
    course.strip(root, str(dest), (1, 0))
    text = (dest / "pkg" / "mod.py").read_text()
    assert "y = x * 2" not in text and "return 3" not in text
    assert text.count('raise NotImplementedError("Task 1.1: double a number")') == 2
    assert '    """Double x."""\n    # BEGIN TASK 1.1: double a number\n    raise' in text
    assert "        raise NotImplementedError" in text           # the method's indentation
    assert not (dest / ".venv").exists()
    ns = {}
    exec(compile(text, "mod.py", "exec"), ns)
    with pytest.raises(NotImplementedError, match="Task 1.1: double a number"):
        ns["f"](1)
    assert course.stripped_tasks(str(dest)) == ["1.1"] and course.stripped_tasks(root) == []
    assert course.check(str(dest)) == []                     # a student copy still checks
    kept = tmp_path / "kept"
    course.strip(root, str(kept), (2, 0))                  # nothing from stage 2 on
    assert (kept / "pkg" / "mod.py").read_text() == textwrap.dedent(GOOD)
    with pytest.raises(course.CourseError, match="not empty"):
        course.strip(root, str(kept), (1, 0))


@pytest.mark.parametrize("module,message", [
    ("def f():\n    # BEGIN TASK 1.1: x\n    return 1\n", "never closed"),
    ("def f():\n    return 1\n    # END TASK 1.1\n", "without a BEGIN"),
    ("def f():\n    # BEGIN TASK 1.1: x\n    # BEGIN TASK 1.2: y\n    return 1\n"
     "    # END TASK 1.2\n    # END TASK 1.1\n", "do not nest"),
    ("def f():\n    # BEGIN TASK 1.1: x\n    return 1\n    # END TASK 1.2\n", "closes BEGIN TASK 1.1"),
    ("# BEGIN TASK 1.1: x\nA = 1\n# END TASK 1.1\n", "one function body"),
    ("def f(x):\n    if x:\n        # BEGIN TASK 1.1: x\n        return 1\n        # END TASK 1.1\n"
     "    return 2\n", "one function body"),
    ("def f(x):\n    # BEGIN TASK 1.1: x\n    return 1\n  # END TASK 1.1\n", "not indented like"),
    ('def f():\n    # BEGIN TASK 1.1: x\n    """doc"""\n    return 1\n    # END TASK 1.1\n',
     "after the docstring"),
    ("def f():\n    # begin task 1.1: x\n    return 1\n", "malformed task marker"),
    ("def f():\n    return 1  # BEGIN TASK 1.1: x\n", "alone on its line"),
])
def test_check_reports_malformed_markers(tmp_path, module, message):
    root = make_repo(tmp_path, module, GOOD_TESTS)
    problems = course.check(root)
    assert len(problems) == 1 and message in problems[0], problems


def test_check_reports_missing_tests_goals_markers_and_numbering(tmp_path):
    module = ("def f():\n    # BEGIN TASK 1.1\n    return 1\n    # END TASK 1.1\n\n\n"
              "def g():\n    # BEGIN TASK 1.3: g\n    return 1\n    # END TASK 1.3\n")
    tests = GOOD_TESTS + "\n\n@pytest.mark.task_4_2\ndef test_nothing():\n    pass\n"
    problems = "\n".join(course.check(make_repo(tmp_path, module, tests)))
    assert "TASK 1.1" in problems and "has no goal" in problems
    assert "TASK 1.3 (pkg/mod.py) has no test" in problems
    assert "task_1_3 is not registered" in problems
    assert "marked task_4_2" in problems and "no code has TASK 4.2" in problems
    assert "stage 1: tasks are numbered 1.1, 1.3" in problems


# ---------------------------------------------------------------- the student copy
def test_student_copy_parses_imports_and_collects(stripped_all):
    assert course.stripped_tasks(str(stripped_all)) == [t.name for t in TASKS.values()]
    copied = course.source_files(str(stripped_all))
    assert "minaot/course.py" in copied and not any(p.startswith((".venv/", ".git/")) for p in copied)
    assert not (stripped_all / ".venv").exists() and not (stripped_all / ".git").exists()
    for rel in copied:
        if rel.endswith(".py"):
            ast.parse((stripped_all / rel).read_text(), filename=rel)
    blocks = 0
    for rel in sorted({b.path for t in TASKS.values() for b in t.blocks}):
        lines = (stripped_all / rel).read_text().splitlines()
        for b in course.read_blocks(str(stripped_all / rel), rel):      # markers kept,
            name = f"{b.task[0]}.{b.task[1]}"                            # bodies replaced
            assert b.end == b.begin + 2, (rel, b)
            assert lines[b.begin].strip() == (f'raise NotImplementedError("Task {name}: '
                                              f'{TASKS[b.task].goal}")')
            blocks += 1
    assert blocks == sum(len(t.blocks) for t in TASKS.values())
    code, out = run(["-c", "import minaot, pkgutil, importlib; print(minaot.__file__); "
                           "[importlib.import_module(m.name) for m in "
                           "pkgutil.walk_packages(minaot.__path__, 'minaot.')]"], stripped_all)
    assert code == 0, out
    assert out.startswith(str(stripped_all)), out      # the copy's package, not the checkout's
    code, out = run(["-m", "pytest", "-p", "no:cacheprovider", "-q", "--collect-only"], stripped_all)
    assert code == 0 and "error" not in out.lower().split("collected")[-1], out[-3000:]


def test_cli_strip(tmp_path):
    dest = tmp_path / "student"
    code, out = run(["-m", "minaot.course", "strip", "--upto", "6.2", str(dest)], ROOT)
    assert code == 0 and "6.2, 7.1" in out and "6.1" not in out, out
    part = (dest / "minaot" / "passes" / "partition.py").read_text()
    assert 'raise NotImplementedError("Task 6.2: ' in part and "Task 6.1" not in part
    code, out = run(["-m", "minaot.course", "strip", "--upto", "x", str(tmp_path / "other")], ROOT)
    assert code == 2 and "N or N.M" in out


@pytest.mark.parametrize("stage", STAGES)
def test_stripped_from_stage(stage, tmp_path):
    """In a copy stripped from ``stage``: earlier tasks' tests pass, ``task_N_1`` fails with
    its message."""
    dest = tmp_path / "student"
    course.strip(ROOT, str(dest), (stage, 0))
    earlier = [t for t in TASKS.values() if t.id < (stage, 0)]
    if earlier:
        code, out = pytest_in(dest, earlier, "-x")
        assert code == 0, out[-6000:]
    first = TASKS[(stage, 1)]
    code, out = pytest_in(dest, [first], "-x")
    assert code == 1 and f"Task {first.name}" in out, out[-6000:]


LATER = [t for t in TASKS.values() if t.id[1] > 1]


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("MINAOT_COURSE_EVERY_TASK"),
                    reason="set MINAOT_COURSE_EVERY_TASK=1 for the per-task sweep (about 90 s)")
@pytest.mark.parametrize("task", [t.name for t in LATER])
def test_stripped_from_task(task, tmp_path):
    """Finer than the stages: in a copy stripped from task N.M (M > 1), the tests of every
    earlier task pass and every test of N.M fails (those of N.1 ... are covered above)."""
    tid = course.parse_task(task)
    dest = tmp_path / "student"
    course.strip(ROOT, str(dest), tid)
    code, out = pytest_in(dest, [t for t in TASKS.values() if t.id < tid], "-x")
    assert code == 0, out[-6000:]
    code, out = pytest_in(dest, [TASKS[tid]])
    summary = out.strip().splitlines()[-1]
    assert code == 1 and f"Task {task}" in out and " passed" not in summary, out[-6000:]
