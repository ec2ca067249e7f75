"""sphinx-nbcache: execute a Sphinx project's notebooks in parallel, cache them, re-execute
only what changed.

Data flow of one build, module by module::

    plan.py (find stale) -> execute/ (run in parallel) -> store/ (keep) -> merge.py (merge)
    -> sphinxext/ (render through myst-nb, report as warnings)

``setup`` is the Sphinx entry point; it imports Sphinx lazily so the CLI and the Python API
(``api``) never need it.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "read_notebook", "read_notebooks", "run", "run_notebook", "setup"]

_LAZY = {
    "read_notebook": "workflows",
    "read_notebooks": "workflows",
    "run": "calls",
    "run_notebook": "calls",
}


def __getattr__(name: str) -> Any:
    """The Python API's functions, imported on first use (never with Sphinx)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Jupyter Server's entry point: ``jupyter server
    --ServerApp.jpserver_extensions="{'sphinx_nbcache': True}"`` serves ``/nbcache/run/``."""
    return [{"module": "sphinx_nbcache.rest"}]


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point (``extensions = ["myst_nb", "sphinx_nbcache"]``)."""
    from .sphinxext import setup as _setup

    return _setup(app)
