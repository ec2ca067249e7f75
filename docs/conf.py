"""Sphinx configuration of the sphinx-nbcache documentation, built by the extension itself."""

import os
from importlib.metadata import version as _version

_HERE = os.path.dirname(os.path.abspath(__file__))

project = "sphinx-nbcache"
author = "sphinx-nbcache developers"
copyright = "sphinx-nbcache developers"
release = _version("sphinx-nbcache")
version = ".".join(release.split(".")[:2])

extensions = ["myst_nb", "sphinx_nbcache"]
root_doc = "index"
exclude_patterns = ["_build", ".nbcache", "**.ipynb_checkpoints", "conf.py"]

# --- execution: myst-nb's options, carried out by sphinx-nbcache -----------------
nb_execution_mode = "cache"
nbcache_path = os.path.join(_HERE, ".nbcache")
nb_execution_timeout = 60
nb_execution_raise_on_error = True  # an example that fails is a docs bug
# `nbcache freeze`: the API page prints run times; they are noise in frozen results
nbcache_freeze_normalise = [[r"\d+\.\d+ s per cell: \([^)]*\)", "<run time>"]]
# text notebooks read through jupytext (MyST .md notebooks are read by myst-nb itself)
nb_custom_formats = {
    ".py": ["jupytext.reads", {"fmt": "py:percent"}],
    ".Rmd": ["jupytext.reads", {"fmt": "Rmd"}],
}

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# furo, as the field's docs sites use (the `docs` extra installs it)
html_theme = "furo"
html_title = f"sphinx-nbcache {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": True,
    "top_of_page_buttons": [],  # no "view source" / "edit" buttons: no public repository yet
}
