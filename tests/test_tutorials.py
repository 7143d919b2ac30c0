"""Every tutorial script runs to completion (the docs build executes them too).

The scripts are found by globbing ``tutorials/plot_*.py``, so a new tutorial is
tested without touching this file.  Each runs as ``__main__`` (``runpy``) in a
fresh temporary working directory, with the random seed and the counters reset
so the order of the tests does not matter.
"""

from __future__ import annotations

import pathlib
import runpy

import pytest

import minaot

TUTORIALS = sorted((pathlib.Path(__file__).resolve().parent.parent / "tutorials").glob("plot_*.py"))


def test_tutorials_are_found():
    assert TUTORIALS, "no tutorials/plot_*.py found"


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs(path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINAOT_PRINT_IR", raising=False)
    minaot.manual_seed(0)
    minaot.reset()
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert out.strip(), f"{path.name} printed nothing: a tutorial should show what it teaches"
