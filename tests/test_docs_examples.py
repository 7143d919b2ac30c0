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
