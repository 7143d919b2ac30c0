"""The examples on the docs pages really run and print what the pages say they print.

A page marks an example with a MyST comment line that starts with ``% doctest``
(invisible in the built page), followed by a ```` ```python ```` block and, later, a
```` ```text ```` block: the test runs the code in a fresh namespace, with the seed and
the counters reset, and compares its standard output with the text block (trailing
spaces ignored).  A page whose printed IR drifts from what the code prints fails here,
not in a reader's terminal.

Only pages under ``docs/`` are searched, so a new marked example is tested without
touching this file.
"""

from __future__ import annotations

import contextlib
import io
import pathlib
import runpy
import re

import pytest

import minaot

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
_EXAMPLE = re.compile(r"^% doctest[^\n]*\n+```python\n(?P<code>.*?)```\n.*?```text\n(?P<out>.*?)```",
                      re.S | re.M)


def _examples():
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        if "_build" in page.parts or page.parts[len(DOCS.parts)] == "tutorials":
            continue
        text = page.read_text(encoding="utf-8")
        for k, m in enumerate(_EXAMPLE.finditer(text)):
            line = text.count("\n", 0, m.start()) + 1
            found.append(pytest.param(page, line, m.group("code"), m.group("out"),
                                      id=f"{page.relative_to(DOCS)}:{line}"))
    return found


EXAMPLES = _examples()


def _normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def test_landing_page_example_is_marked():
    ids = [p.id for p in EXAMPLES]
    assert any(i.startswith("index.md:") for i in ids), \
        "docs/index.md has no `% doctest` example: the five-line example must be tested"


@pytest.mark.parametrize("page, line, code, expected", EXAMPLES)
def test_docs_example_prints_what_the_page_shows(page, line, code, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINAOT_PRINT_IR", raising=False)
    minaot.manual_seed(0)
    minaot.reset()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(code, f"{page.name}:{line}", "exec"), {"__name__": "__main__"})
    got, want = _normalise(buf.getvalue()), _normalise(expected)
    assert got == want, (f"{page.relative_to(DOCS)}:{line}: the example prints something else "
                         f"than the page shows.\n--- printed:\n{got}\n--- page:\n{want}")


# ---------------------------------------------------------------- concept pages vs their tutorial
# A concept page that says "the outputs below come from" its tutorial shows IR printed by that
# tutorial: every IR line of its text blocks must be in the tutorial's output today.
TUTORIALS = DOCS.parent / "tutorials"
IR_PAGES = ["concepts/tensors.md", "concepts/ir.md", "concepts/functionalization.md"]
_TUTORIAL_REF = re.compile(r"\{ref\}`sphx_glr_tutorials_(plot_\w+)\.py`")
_IR_LINE = re.compile(r"^\s*(func\.func @|%\d+ = |func\.return\b|\}$)")


@pytest.mark.parametrize("page", IR_PAGES)
def test_concept_page_ir_is_what_its_tutorial_prints(page, tmp_path, monkeypatch, capsys):
    text = (DOCS / page).read_text(encoding="utf-8")
    tutorial = TUTORIALS / (_TUTORIAL_REF.search(text).group(1) + ".py")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINAOT_PRINT_IR", raising=False)
    minaot.manual_seed(0)
    minaot.reset()
    runpy.run_path(str(tutorial), run_name="__main__")
    printed = {line.strip() for line in capsys.readouterr().out.splitlines()}
    doctested = [m.span() for m in _EXAMPLE.finditer(text)]      # checked by the test above
    missing = []
    for block in re.finditer(r"```text\n(.*?)```", text, re.S):
        if any(start <= block.start() < end for start, end in doctested):
            continue
        missing += [line for line in block.group(1).splitlines()
                    if _IR_LINE.match(line) and line.strip() not in printed]
    assert not missing, (f"{page}: IR lines that {tutorial.name} no longer prints:\n  "
                         + "\n  ".join(missing))
