"""Packaging: setup.cfg lists every package, README and .ci/run agree."""

import configparser
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_setup_cfg_lists_every_package():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    listed = set(cfg["options"]["packages"].split())
    found = set()
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, "minaot")):
        dirnames[:] = [d for d in dirnames if not d.startswith("__")]
        if "__init__.py" in filenames:
            found.add(os.path.relpath(dirpath, ROOT).replace(os.sep, "."))
    found.add("minaot.kernels")
    assert found == listed, f"missing: {found - listed}, extra: {listed - found}"


def test_kernels_importable_as_minaot_kernels():
    import minaot.kernels
    assert os.path.samefile(os.path.dirname(minaot.kernels.__file__), os.path.join(ROOT, "kernels"))


def test_readme_commands_are_what_ci_runs():
    readme = open(os.path.join(ROOT, "README.md")).read()
    block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1).strip().splitlines()
    setup_cmd, test_cmd = block[0], block[1]
    ci = open(os.path.join(ROOT, ".ci", "run")).read()
    assert setup_cmd in ci and test_cmd in ci
    assert "python -m minaot demo" in setup_cmd and "pytest" in test_cmd


def test_demo_runs():
    from minaot.__main__ import main
    assert main(["demo", "--steps", "20"]) == 0
