"""Sphinx configuration for the minaot docs.

Build (warnings are errors, as in CI):

    .venv/bin/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

Markdown pages are read by myst-parser; the tutorials in ``../tutorials`` are
sphinx-gallery scripts, executed at build time, so every printed IR on the
tutorial pages is real output of the code next to it.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the repository root, for an uninstalled checkout

import minaot  # noqa: E402

project = "minaot"
author = "the minaot authors"
copyright = "minaot authors"  # noqa: A001
release = minaot.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.graphviz",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

# Pictures (the pipeline on the landing page, graphs drawn by minaot.viz) are Graphviz
# ``dot`` source rendered at build time by Debian's ``graphviz`` package.  SVG keeps the
# text sharp and the nodes' links clickable.
graphviz_output_format = "svg"
graphviz_dot_args = ["-Gfontname=Helvetica", "-Nfontname=Helvetica", "-Efontname=Helvetica"]

# Tutorials that draw with matplotlib get their figures on the page when matplotlib is
# installed (the partitioning tutorial plots saved bytes against recomputed work).
try:
    import matplotlib  # noqa: F401
    _SCRAPERS, _RESET = ("matplotlib",), ("matplotlib",)
except ImportError:
    _SCRAPERS, _RESET = (), ()

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "tutorials/*.ipynb"]
nitpicky = False

# MyST: ``` fences with a language, {eval-rst} blocks for autodoc directives
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_default_options = {"undoc-members": False}
autodoc_typehints = "none"
napoleon_google_docstring = True
napoleon_numpy_docstring = True

sphinx_gallery_conf = {
    "examples_dirs": "../tutorials",
    "gallery_dirs": "tutorials",
    "filename_pattern": r"/plot_",          # execute the plot_*.py scripts at build time
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": _SCRAPERS,            # figures drawn with matplotlib, if it is installed
    "reset_modules": _RESET,                # close figures between tutorials; each seeds itself
    "abort_on_example_error": True,         # a failing tutorial fails the build
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
}

html_theme = "alabaster"
html_title = f"minaot {release}"
html_theme_options = {
    "description": "a small, readable ahead-of-time autograd compiler",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "230px",
}
pygments_style = "sphinx"
