"""sphinx-nbcache: execute a Sphinx project's notebooks in parallel, cache them, re-execute
only what changed.

Data flow of one build, package by package::

    plan/ (find stale) -> execute/ (run in parallel) -> store/ (keep) -> notebooks/merge (merge)
    -> sphinxext/ (render through myst-nb, report as warnings)

``engine/`` conducts that flow for every front door: ``sphinxext/`` (Sphinx), ``api``
(Python), ``cli/`` (the ``nbcache`` command) and ``rest`` (HTTP). ``workflows/`` holds the
features built on it: reading other notebooks' results, notebooks as functions, variants.

This module imports nothing of the package: ``setup`` hands Sphinx the extension module
(``sphinxext``), and the Python API's functions are loaded on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "read_notebook", "read_notebooks", "run", "run_notebook", "setup"]

#: the Python API's functions: name -> the module that defines them
_LAZY = {
    "read_notebook": "sphinx_nbcache.workflows.reads",
    "read_notebooks": "sphinx_nbcache.workflows.reads",
    "run": "sphinx_nbcache.workflows.calls",
    "run_notebook": "sphinx_nbcache.workflows.calls",
}


def __getattr__(name: str) -> Any:
    """The Python API's functions, imported on first use (never with Sphinx)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Jupyter Server's entry point: ``jupyter server
    --ServerApp.jpserver_extensions="{'sphinx_nbcache': True}"`` serves ``/nbcache/run/``."""
    return [{"module": "sphinx_nbcache.rest"}]


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point (``extensions = ["myst_nb", "sphinx_nbcache"]``): loads the
    extension proper, :mod:`sphinx_nbcache.sphinxext`, which declares what it is."""
    app.setup_extension("sphinx_nbcache.sphinxext")
    extension = app.extensions["sphinx_nbcache.sphinxext"]  # what it declared, declared again
    return {
        "version": __version__,
        "parallel_read_safe": extension.parallel_read_safe,
        "parallel_write_safe": extension.parallel_write_safe,
    }
