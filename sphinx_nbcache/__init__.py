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
__all__ = ["__version__", "setup"]


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point (``extensions = ["myst_nb", "sphinx_nbcache"]``)."""
    from .sphinxext import setup as _setup

    return _setup(app)
